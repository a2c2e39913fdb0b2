/* enqueue.h: what a set does before and around its append, shared by the
 * memcache port (conn_set.c) and the HTTP API (http_api.c): its due time
 * by the settings of each queue it goes to, the refusal of a bad delay,
 * the queues it stores a copy in (an alias's destinations, fanout
 * children), and storing those copies. */
#ifndef DARNER_ENQUEUE_H
#define DARNER_ENQUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "journal/journal.h"
#include "proto/parse.h"
#include "queue/registry.h"

/* The queues one set stores a copy in: each destination (the queue named,
 * or an alias's destination queues), unless it is fanout_only, and every
 * fanout child of each. */
struct enq_target {
    struct queue *q;
    uint64_t due; /* the destination's: its default_delay (0: at once) */
};

struct enq_targets {
    struct enq_target one[4]; /* most sets: no allocation */
    struct enq_target *q;
    size_t n, cap;
};

/* The expiry (Unix ms; 0 none, 1 already past) of memcache exptime e: 0
 * none, < 0 past, up to 1,000,000 seconds from now, else a Unix time. */
uint64_t enq_expiry_ms(int64_t exptime);
/* Why a set of key k at time now, of an item expiring at expire_ms (Unix
 * ms, 0 none: enq_expiry_ms), is refused by the settings of its queue,
 * or of any destination when it names an alias; NULL: it is not. A
 * streamed set asks before its data comes; enq_targets asks it too. */
const char *enq_refusal(struct registry *r, const struct proto_key *k, uint64_t expire_ms, uint64_t now);
/* Fills t (initialized here; the caller frees it with enq_targets_free)
 * with the queues a set of key k at time now stores copies in, made if
 * missing, each with its due time; or, when the settings of the queue or of
 * any alias destination refuse its delay, sets *why (as enq_refusal) and
 * makes no queue (t empty). *why is NULL otherwise. Returns 0 or -errno. */
int enq_targets(struct registry *r, const struct proto_key *k, uint64_t expire_ms, uint64_t now, struct enq_targets *t,
                const char **why);
void enq_targets_free(struct enq_targets *t);
/* Whether the set must wait for an fsync: sync_opt (/sync), or a target
 * whose fsync policy is "always". */
int enq_wants_sync(struct registry *r, const struct enq_targets *t, int sync_opt);
/* Stores a copy in each of t's queues now, each under its own limits and
 * at its own due time (attrs' visible_ms is not used); *first_id (unless
 * NULL) gets the id of the first one (queue_put_id). 0 when every copy
 * is stored; QADMIT_FULL when some queue's limits refused its copy (the
 * others are kept); -errno at the first error. */
int enq_store_copies(const struct enq_targets *t, const struct jnl_attrs *attrs, const char *data, size_t len,
                     uint64_t *first_id);

#endif
