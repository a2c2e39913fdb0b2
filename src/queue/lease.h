/* queue/lease.h: the leases of open items (queue/lease.c). */
#ifndef DARNER_QUEUE_LEASE_H
#define DARNER_QUEUE_LEASE_H

#include <stddef.h>
#include <stdint.h>

struct qopen;

#define LEASE_NONE SIZE_MAX /* qopen.lease_idx of an item without a lease */

struct lease_heap {
    struct qopen **h; /* a min-heap by lease_ms */
    size_t n, cap;
};

/* Gives o (a new one, or one with a lease) the deadline. Returns 0 or
 * -ENOMEM (o keeps what it had). */
int lease_set(struct lease_heap *lh, struct qopen *o, uint64_t deadline_ms);
/* Drops o's lease, if it has one. */
void lease_clear(struct lease_heap *lh, struct qopen *o);
/* The open item whose lease ends first, or NULL. */
struct qopen *lease_top(const struct lease_heap *lh);
void lease_heap_free(struct lease_heap *lh);

#endif
