/* tests/crash/crash_model.h: what the workload was promised.
 *
 * Items are named by a tag (0, 1, 2, ... in the order their appends began).
 * An item's payload, flags and length follow from the workload seed and its
 * tag, and its add_ms field carries CM_TAG_BASE + tag, so anything a
 * recovered journal hands out can be named and checked byte for byte.
 *
 * The model keeps, per item, the calls that changed its state (append,
 * removal by get or confirm or clear, restore, the start and the end of a
 * transfer to another queue), each with the span [b, e) of event-log
 * positions the call covered, the hand-outs that counted a delivery, and the
 * list of sync points that completed. From these cm_expect() tells, for a
 * crash after k events, which states each item may be found in (live, gone,
 * or in transfer) and the bounds of its delivery count. */
#ifndef DARNER_TESTS_CRASH_MODEL_H
#define DARNER_TESTS_CRASH_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define CM_TAG_BASE (UINT64_C(1) << 40) /* add_ms of the item tagged t: CM_TAG_BASE + t */
/* Where the workload's transfers go: folder q-99, which is never opened
 * here (this journal's part of a move is its XFER, then CONFIRM or RESTORE);
 * their reason is JF_REASON_BURIED, as for get q/bury. */
#define CM_XFER_DIR 99

/* What an item is in one journal. A bit each: an item's class after a crash
 * is the set of states the disk may hold it in. */
enum cm_state {
    CM_GONE = 1, /* removed, or not appended yet */
    CM_LIVE = 2, /* handed out by jnl_head (or held open) */
    /* leaving for another queue (its XFER written, no CONFIRM or RESTORE
     * yet): never handed out here, found by jnl_next_xfer after a reopen */
    CM_XFER = 4,
};

/* The classes with one state: nothing about the item was under way after
 * the last completed sync point. Any other set (two or three states) means
 * a change was: the disk may hold the state before or after any of them. */
enum cm_class {
    CM_MUSTNOT = CM_GONE,   /* removed by the last completed sync point (or never appended), untouched since */
    CM_MUST = CM_LIVE,      /* live at the last completed sync point, untouched since */
    CM_MUST_XFER = CM_XFER, /* in transfer at the last completed sync point, untouched since */
};

/* Whether class c leaves the item more than one state. */
static inline int cm_may(uint8_t c) { return (c & (c - 1)) != 0; }

struct cm_tr {
    uint32_t b, e; /* the call spanned events [b, e) */
    uint32_t seq;  /* its place among calls and sync points (a call may write nothing) */
    uint8_t state; /* enum cm_state: the item's state after it */
};

/* A hand-out open (jnl_hold_head): it counts a delivery, and queues the
 * record (OPEN or COUNT) carrying the new count, written at the next flush
 * (events from b on). */
struct cm_hand {
    uint32_t b;
    uint32_t seq;
};

struct cm_item {
    uint32_t len;
    uint8_t blob;        /* appended as a blob file */
    uint8_t state, open; /* in the live run, now (state: enum cm_state) */
    struct cm_tr *tr;
    size_t ntr, captr;
    struct cm_hand *ho; /* its hand-outs, in order: the live count is nho */
    size_t nho, capho;
};

struct cm_sync {
    uint32_t start, end; /* jnl_sync_fds() was called at event start; its last fsync ended before end */
    uint32_t seq;        /* calls with a lower seq were made before it */
};

struct cm_model {
    uint64_t seed;
    struct cm_item *it;
    size_t nit, capit;
    struct cm_sync *sy;
    size_t nsy, capsy;
    size_t lo;    /* no item below this tag is live */
    uint32_t seq; /* the next cm_tr or cm_sync's seq */
};

/* What a crash after k events must leave. cls has one class per tag (a set
 * of enum cm_state bits), and the bounds of the delivery count it may come
 * back with: at least the hand-outs a completed sync point made durable, at
 * most those begun before the crash (open items come back given back). */
struct cm_expect {
    uint8_t *cls;
    uint32_t *dlo, *dhi;
    size_t n;
    int acked_any;             /* some item was appended before a completed sync point */
    long sync;                 /* index of the last completed sync point, or -1 */
    size_t started;            /* items whose append began before the crash: tags [0, started) */
    size_t nmust, nmay, nxfer; /* items that must come back, may, must be in transfer */
};

void cm_init(struct cm_model *m, uint64_t seed);
void cm_free(struct cm_model *m);

/* A new item of len bytes; returns its tag. */
uint32_t cm_new_item(struct cm_model *m, uint32_t len, int blob);
/* The payload of tag: len bytes into buf. */
void cm_fill(const struct cm_model *m, uint32_t tag, unsigned char *buf, size_t len);
/* The memcache flags the item of tag carries. */
uint32_t cm_flags(const struct cm_model *m, uint32_t tag);

/* A call spanning events [b, e) left the item in state (enum cm_state). */
void cm_set(struct cm_model *m, uint32_t tag, uint32_t b, uint32_t e, uint8_t state);
/* The item was handed out open at event b (its delivery count goes up). */
void cm_hand_out(struct cm_model *m, uint32_t tag, uint32_t b);
/* A sync point completed: every call recorded before it is durable (its
 * writes, and the records it queued, which the sync writes first). */
void cm_sync(struct cm_model *m, uint32_t start, uint32_t end);
/* The item the live journal must hand out next: the lowest live tag not held
 * open (given-back items and the read cursor's items, oldest first; items
 * in transfer are not live), or -1. */
long cm_head(struct cm_model *m);

/* Fills e (e->cls is allocated here, for cm_expect_free) for a crash after
 * the first k events. */
void cm_expect(const struct cm_model *m, uint32_t k, struct cm_expect *e);
void cm_expect_free(struct cm_expect *e);

#endif
