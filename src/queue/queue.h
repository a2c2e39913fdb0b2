/* queue/queue.h: queue semantics over a journal: get, open/close/abort, peek,
 * waiters and expiry. Single-threaded (the loop thread). */
#ifndef DARNER_QUEUE_QUEUE_H
#define DARNER_QUEUE_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "journal/format.h"
#include "journal/journal.h"
#include "util/list.h"

struct registry;
struct qconf;

/* Items up to this size are records in a segment, received and handed out
 * whole in memory; larger ones are blob files, streamed both ways. */
#define QUEUE_INLINE_MAX (256 * 1024)

/* Priority levels: 0 (most urgent) to 9. A queue's items of its default
 * level are in its own journal; each other level that has items is a lane,
 * a hidden queue of its own named "<queue>\x1f<level>" (a name no client
 * can send), created on first use; it stays (queue/lanes.c). */
#define QUEUE_LEVELS 10
#define QUEUE_LANE_MARK '\x1f'
/* Delayed items wait in buckets by due time (queue/delay.c): hidden queues
 * named "<queue>\x1e<level><h|d><generation 0-9a-z><10 hex digits: due / width>". */
#define QUEUE_BUCKET_MARK '\x1e'
#define QUEUE_BUCKET_SUFFIX 14
#define QUEUE_NAME_MAX (250 + QUEUE_BUCKET_SUFFIX) /* a client's longest name and a hidden queue's suffix */
/* A queue with delayed items: its name and its buckets' suffix fit a name's
 * longest (the origin of each fired copy is its bucket's name). */
#define QUEUE_DELAYED_NAME_MAX (250 - QUEUE_BUCKET_SUFFIX)

enum queue_kind {
    QK_QUEUE,  /* a queue clients name */
    QK_LANE,   /* one priority level of a queue */
    QK_BUCKET, /* delayed items of a queue, of one level, due in one time range */
};
/* Ids of lane L start at (L + 1) << 44, so items of one queue never share
 * an id (the cas of gets, the origin of a dead letter) whatever their lane. */
#define QUEUE_LANE_ID_SHIFT 44

struct lanes {
    struct queue *q[QUEUE_LEVELS]; /* by level; NULL: none (the default level is the queue's own journal) */
    uint64_t vt[QUEUE_LEVELS];     /* weighted policy: each level's virtual time */
    uint64_t vnow;                 /* the virtual time of the last level served */
};

struct queue {
    struct registry *reg; /* borrowed; owns this queue */
    char *name;           /* the name's bytes, NUL-terminated for logs */
    size_t name_len;
    char *dir; /* the queue's folder */
    uint64_t dir_id;
    struct jnl *jnl;           /* NULL while closed: use registry_jnl() */
    struct list lru;           /* in registry->lru while jnl is open */
    struct list flush_link;    /* in registry->flushq while appends wait to be written */
    struct jnl_stats parked;   /* the counts when the journal was last closed */
    uint64_t parked_oldest_ms; /* and its next item's add time (0: none) */
    int parked_valid;
    struct list waiters;             /* struct qwaiter, first come first served */
    struct list opens;               /* struct qopen of every connection */
    uint64_t total_items;            /* items set since start */
    uint64_t discarded;              /* items dropped to make room (discard_old_when_full) */
    uint64_t expired;                /* items dropped because they expired */
    uint64_t transactions, canceled; /* items handed out open, and given back (Kestrel's names) */
    uint64_t removed;                /* items taken for good: plain gets and confirmed opens */
    uint64_t lease_expired;          /* open items given back because their lease ran out */
    uint64_t dead_lettered;          /* items sent to its dead-letter queue */
    uint64_t redeliveries;           /* hand-outs of items handed out before */
    uint64_t flushes;                /* flush commands */
    uint64_t create_ms;              /* when this server made or first opened the queue */
    int pinned;                      /* its journal must stay open (an item moving out) */
    int opened_due;                  /* its journal opened while another's moves ran: queue_opened is owed */
    int may_expire;                  /* it may hold items with an expiry: the sweep looks at it */
    uint64_t sweep_epoch;            /* the last sweep pass that looked at it */
    uint64_t age_ms;                 /* age of the last item handed out */
    const struct qconf *conf;        /* its settings: in the registry's config file, never copied (a
                                        lane has its queue's) */
    int kind;                        /* enum queue_kind */
    int level;                       /* a lane's or bucket's level; -1: a queue clients name */
    size_t suffix_len;               /* a lane's or bucket's name: the bytes after its queue's name */
    struct queue *parent;            /* a lane or bucket: the queue it is part of (NULL until linked) */
    struct lanes *lanes;             /* the queue's lanes; NULL: it has none */
    struct delays *delays;           /* the queue's delay buckets; NULL: it has none */
    struct dbucket *bucket;          /* a bucket: its due range and firing state */
    uint64_t empty_since;            /* a lane: when it was first seen empty (0: it is not) */
    struct queue *hnext;             /* registry hash chain */
    struct list fanout_link;         /* a fanout child (name "parent+child"): in its parent's group */
    struct list all;                 /* registry's list of queues */
};

/* The queue clients know q by: q, or the queue q is a lane of. */
static inline struct queue *queue_top(struct queue *q) { return q->parent ? q->parent : q; }

/* A holder's count of its open items on one queue (the max_open check):
 * an open item going counts itself out, so it never needs a walk of them
 * all, except after stale is set (the queue itself went). */
struct open_tally {
    const struct queue *q; /* the top queue counted */
    size_t n;
    int stale; /* n is not known: count again */
};

/* An item held open by one connection. */
struct qopen {
    struct list conn_link; /* in the connection's list */
    struct list q_link;    /* in queue->opens */
    struct queue *q;
    struct jnl_node *node;
    uint64_t lease_ms;        /* given back at this loop time (ms), if lease_idx != LEASE_NONE */
    size_t lease_idx;         /* its place in the registry's lease heap */
    struct open_tally *tally; /* its holder's count, told when it goes; may be NULL */
};

/* What a waiter is told. */
enum qwait_event {
    QWAIT_READY, /* an item may be there: try a get now; return 1 if served */
    QWAIT_GONE,  /* the queue was deleted: the waiter is over */
};

struct qwaiter {
    struct list link;
    /* the queue name, while waiting for a queue that does not exist yet */
    const char *name;
    size_t name_len;
    /* Called with the waiter already taken off the queue's list. For
     * QWAIT_READY, return 1 if it was served, or 0 after putting itself back
     * at the front (queue_wait_front), which ends this round of wake-ups. */
    int (*cb)(struct qwaiter *w, enum qwait_event ev);
};

/* An item handed out, for the caller to send. Exactly one of data (len bytes,
 * the caller frees) and fd (read len bytes from off; the caller closes) is set. */
struct qitem {
    struct jnl_item where; /* the item in its journal */
    struct queue *from;    /* the queue of that journal (a lane of the queue asked, or itself) */
    uint32_t flags;
    uint64_t len;
    char *data;
    int fd; /* a large item: its payload is read from fd at off, through io */
    const struct jio *io;
    uint64_t off;
};

enum qget_mode { QGET_REMOVE, QGET_OPEN, QGET_PEEK };

/* Hands out the head item (expired ones are dropped on the way).
 * QGET_OPEN also returns the new open record in *open, which the caller links
 * into its own list by conn_link. Returns 0, -ENOENT when the queue has no
 * item, or -errno. */
int queue_get(struct queue *q, enum qget_mode mode, struct qopen **open, struct qitem *out);
/* The same for one journal: q itself, never its lanes. */
int queue_get_lane(struct queue *q, enum qget_mode mode, struct qopen **open, struct qitem *out);
/* The ticket (a new reference, or NULL) of the ack records the last
 * queue_get, queue_confirm or queue_restore on q queued: an answer that
 * reports the removal waits for it (jnl_ack_ticket). */
struct jnl_ticket *queue_ack_ticket(struct queue *q);
/* Confirms an open item: removed for good; o is freed. */
int queue_confirm(struct qopen *o);
/* Gives an open item back to the head of its queue (after the queue's
 * retry_delay, if it has one); o is freed. Wakes waiters. An item handed
 * out as often as the queue's max_deliveries allows goes to its
 * dead-letter queue instead (queue_dead_letter). */
void queue_abort(struct qopen *o);
/* The same, the item visible again only delay_ms from now (if it is not a
 * dead letter then): get q/abort/delay=, and the queue's retry_delay. */
void queue_abort_delay(struct qopen *o, uint64_t delay_ms);
/* The same, without the max_deliveries check: for an open whose answer
 * never reached its client. */
void queue_release(struct qopen *o);
/* Sends an open item to the queue's dead-letter queue (get q/bury); o is
 * freed. If it cannot go there, it is given back. Returns 0 or -errno. */
int queue_bury(struct qopen *o);

enum qadmit { QADMIT_OK, QADMIT_FULL, QADMIT_TOO_LARGE };
/* Whether q takes an item of len bytes now, under its max_items, max_size
 * and max_item_size. When it is full and discard_old_when_full is set, its
 * oldest items (not held open) are dropped first to make room, counted in
 * discarded. Returns a QADMIT_* value or -errno. */
int queue_admit(struct queue *q, uint64_t len);

/* Appends an item and wakes waiters. a->add_ms is set to now when 0; the
 * queue's max_age caps a->expire_ms. Borrows a and data. */
int queue_put(struct queue *q, const struct jnl_attrs *a, const void *data, size_t len);
/* The same; *id (unless NULL) gets the item's id in the journal it went to
 * (a delayed item's in its bucket: it takes another when it fires). */
int queue_put_id(struct queue *q, const struct jnl_attrs *a, const void *data, size_t len, uint64_t *id);
/* The same, but the item is written with the other appends of this loop
 * turn (registry_flush): *ticket (a reference the caller drops with
 * jnl_ticket_put) says whether it was; *id (unless NULL) gets its id, as
 * queue_put_id. Waiters are woken now: a get of an item not yet written
 * writes it first. */
int queue_put_deferred(struct queue *q, const struct jnl_attrs *a, const void *data, size_t len,
                       struct jnl_ticket **ticket, uint64_t *id);
/* Drops q's head h (from q's journal j), which has expired: moved to the
 * queue's expire_to_queue first, as a set there without an expiry, when it
 * has one. Returns 0 or -errno (the item stays). */
int queue_expire_head(struct queue *q, struct jnl *j, const struct jnl_head *h);
/* Drops q's expired items from its head on, at most max; *removed counts
 * them. Returns 0, 1 when it stopped at max with more expired, or -errno. */
int queue_expire(struct queue *q, uint64_t now, uint64_t max, uint64_t *removed);
/* One step of the periodic sweep (r->sweep_epoch names the pass): the open
 * queues that may hold expiring items, each up to its max_expire_sweep,
 * at most budget items in all. Returns 1 when the budget ran out before
 * the pass was over (call again), else 0. */
int queue_sweep(struct registry *r, uint64_t now, uint64_t budget, uint64_t *removed);
/* Deletes the queues that are empty (nothing open, no waiter) and older
 * than their max_queue_age, at most budget of them. Returns 1 when the
 * budget ran out (call again), else 0. */
int queue_sweep_old(struct registry *r, uint64_t now, size_t budget);
/* The journal holds records not written yet: the registry writes them with
 * the others of this loop turn. */
void queue_note_pending(struct queue *q);

/* Puts a removed item back at the head (its removal was never answered). */
int queue_restore(struct queue *q, const struct jnl_item *it);
/* Appends a complete streamed item (consumed either way) and wakes waiters. */
int queue_put_blob(struct queue *q, struct jnl_blob *b, const struct jnl_attrs *a);
/* Removes every item, open ones included (their open records are freed). */
int queue_flush(struct queue *q);

void queue_wait(struct queue *q, struct qwaiter *w);
void queue_wait_front(struct queue *q, struct qwaiter *w);
void queue_unwait(struct qwaiter *w);
/* Serves waiters while items are there. */
void queue_wake(struct queue *q);

void qitem_release(struct qitem *it);
/* Reads the payload of head h of journal j into *out: whole in memory, or
 * (over QUEUE_INLINE_MAX) as an fd to read from. Returns 0 or -errno
 * (-EBADMSG: damaged). */
int queue_load_payload(struct jnl *j, const struct jnl_head *h, struct qitem *out);

/* ---- priority lanes (queue/lanes.c) ---- */
/* What a queue's name says it is (enum queue_kind): a lane
 * ("<queue>\x1f<digit>") or a bucket name sets *level and *suffix (the
 * bytes after the queue's name). */
int queue_name_kind(const char *name, size_t len, int *level, size_t *suffix);
/* The first item id of a new journal of queue q (a lane's depends on its
 * level; any other's is 1). */
uint64_t queue_first_id(const struct queue *q);
/* The level of the items in journal queue q (a lane's, or its default). */
unsigned queue_level_of(const struct queue *q);
/* The journal queues of q (a queue clients name) at level: its lane there,
 * then q itself at its default level; into out, returns how many (0-2). */
int queue_at_level(struct queue *q, unsigned level, struct queue *out[2]);
/* queue_get over q's levels, by its priority_policy (q has lanes). */
int queue_lanes_get(struct queue *q, enum qget_mode mode, struct qopen **open, struct qitem *out);
/* Items (open ones included) q holds at level. */
uint64_t queue_level_items(struct queue *q, unsigned level);
/* Drops the oldest item not held open of q's least urgent level that has
 * one (discard_old_when_full). Returns 0, -ENOENT (none), or -errno. */
int queue_lanes_discard(struct queue *q);

/* ---- transfers (queue/transfer.c) ---- */
/* The name of q's dead-letter queue (dead_letter_queue, or "<q>_errors")
 * into out; returns its length, 0 when it names no queue it could be (too
 * long, or q itself). */
size_t queue_dlq_name(const struct queue *q, char out[JF_ORIGIN_MAX + 1]);
/* Moves node n of q's journal (given back, or held open: the caller drops
 * its hold) to q's dead-letter queue, which is made if need be; the copy
 * keeps n's delivery count and names q, n's id and reason. On failure the
 * item stays in q, given back. Returns 0 or -errno. */
int queue_dead_letter(struct queue *q, struct jnl_node *n, uint8_t reason);
/* Gives node n of q's journal (given back, or held open: the caller drops
 * its hold) back later: moved into q's delay bucket for due, visible then
 * at its level, its count and expiry kept. On failure it stays given back
 * now. Returns 0 or -errno. */
int queue_delay_node(struct queue *q, struct jnl_node *n, uint64_t due);
/* Whether the item has been handed out as often as q's max_deliveries
 * allows (never for an item that is a dead letter itself). */
int queue_over_deliveries(const struct queue *q, const struct jnl_item *it);
/* Moves up to max (at most QUEUE_KICK_MAX) dead letters from q's head back
 * to the queues they came from, their delivery counts reset; stops at the
 * first item that is not a dead letter. *kicked counts them. Returns 0 or
 * -errno. */
#define QUEUE_KICK_MAX 1000
int queue_kick(struct queue *q, uint64_t max, uint64_t *kicked);
/* Called once q's journal j is opened: finishes the moves a crash cut
 * short, and sends to the dead-letter queue the items open before it that
 * reached max_deliveries. */
void queue_opened(struct queue *q, struct jnl *j);

/* Wall-clock milliseconds. */
uint64_t queue_now_ms(void);

#endif
