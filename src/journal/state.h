/* journal/state.h: a journal's state as its records define it, and the one
 * place that changes it.
 *
 * Every state change of a journal is a record: a segment record appended at
 * the tail (jst_apply_rec) or an ack record (jst_apply_ack). The live path
 * writes a record and then applies it; recovery and darner-journal read
 * records and apply them; a replicated log will apply them the same way. So
 * the three cannot disagree about what a record means. Appending (I/O) and
 * applying (memory only, no I/O) stay separate steps. */
#ifndef DARNER_JOURNAL_STATE_H
#define DARNER_JOURNAL_STATE_H

#include <stdint.h>

#include "journal/format.h"
#include "journal/journal.h"
#include "util/list.h"

struct jst {
    /* the tail: the id the next record gets, payload bytes appended so far */
    uint64_t next_id, tail_cum;
    /* the read cursor: the next entry never handed out (entry r_idx of the
     * batch at r_seg/r_off; an index past the batch's last entry means the
     * batch after it), and the payload bytes before it */
    uint64_t r_seg, r_off, r_id, r_cum;
    uint32_t r_idx;
    /* live items behind the cursor */
    struct list returned;   /* given back (or open before a restart); sorted by id */
    struct jnl_node *by_id; /* the same nodes as a treap by id: O(log n) inserts and finds */
    struct list open;       /* held open by an owner */
    uint64_t nnodes, nopen, node_bytes, open_bytes;
    uint64_t nxfer, xfer_bytes; /* of the open ones, those in transfer (held by the state itself) */
    uint64_t low_seg;           /* the lowest segment a live item is in, when low_valid */
    uint64_t low_count;         /* how many live items are in it, when low_valid */
    int low_valid;
    /* a delay bucket's firing: items up to fire's key (due, id) are
     * visible in their lane (fired of them); the FIRINGs after it, in
     * order, are not known durable yet (each names the lane and the id of
     * its last copy: 0 for none) */
    struct jfire {
        uint64_t due, id, fired;
        uint64_t lane_dir, lane_id;
    } fire, *pend;
    size_t npend, cappend;
    uint64_t ack_max_id; /* the highest item id an ack record named (recovery) */
};

/* An empty state: no live items, every count 0 (a new journal then sets
 * next_id and r_id to 1; recovery sets them from the files). */
void jst_init(struct jst *s);
/* Frees every node; the state is empty (cursor and tail kept). */
void jst_free_nodes(struct jst *s);

/* Applies a segment record found (or just written) at the tail: checks its
 * place in the id sequence, then counts it. A moved copy keeps the id it
 * had and takes no new one. Returns 0, or -EBADMSG (out of sequence: the
 * record does not belong here, nothing is changed). */
int jst_apply_rec(struct jst *s, const struct jf_rec *r);

/* Applies one ack record. hint (may be NULL) is the node the record is
 * about when the caller has it, which spares a search. *out (may be NULL)
 * gets the node the record created or changed, or NULL. Nodes created here
 * are given back (no owner); CONFIRM and FLUSH free theirs, so the caller
 * must drop its pointers to them. Returns 0, -ENOMEM, or -EBADMSG for a
 * type this version does not know. */
int jst_apply_ack(struct jst *s, const struct jf_ack *a, struct jnl_node *hint, struct jnl_node **out);

/* Memory-only changes that write no record: handing a given-back node to an
 * owner, and giving it back (the item is live on disk either way). A node
 * in transfer (XFER) is held by the state itself: jst_in_xfer(). */
void jst_hold(struct jst *s, struct jnl_node *n, void *owner);
void jst_release(struct jst *s, struct jnl_node *n);

static inline int jst_in_xfer(const struct jst *s, const struct jnl_node *n) { return n->owner == (const void *)s; }

/* The live node of item id, or NULL (a linear search over live items). */
struct jnl_node *jst_find(struct jst *s, uint64_t id);
/* The lowest segment a live item is in, or UINT64_MAX if none. */
uint64_t jst_lowest_live_seg(const struct jst *s);
/* Calls fn for each live node: given-back ones by id, then open ones. fn
 * must not free nodes. */
void jst_each(const struct jst *s, void (*fn)(void *ctx, const struct jnl_node *n), void *ctx);

#endif
