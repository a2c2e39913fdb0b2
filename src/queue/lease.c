/* queue/lease.c: the deadlines of open items (leases), in a binary
 * min-heap: a lease is set, moved or dropped in O(log n), and the soonest
 * is always at the top. Bounded by the open items, so kept in memory. */
#include "queue/lease.h"

#include "queue/queue.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

static void put(struct lease_heap *lh, size_t i, struct qopen *o)
{
    lh->h[i] = o;
    o->lease_idx = i;
}

static void up(struct lease_heap *lh, size_t i)
{
    struct qopen *o = lh->h[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (lh->h[parent]->lease_ms <= o->lease_ms)
            break;
        put(lh, i, lh->h[parent]);
        i = parent;
    }
    put(lh, i, o);
}

static void down(struct lease_heap *lh, size_t i)
{
    struct qopen *o = lh->h[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= lh->n)
            break;
        if (child + 1 < lh->n && lh->h[child + 1]->lease_ms < lh->h[child]->lease_ms)
            child++;
        if (o->lease_ms <= lh->h[child]->lease_ms)
            break;
        put(lh, i, lh->h[child]);
        i = child;
    }
    put(lh, i, o);
}

int lease_set(struct lease_heap *lh, struct qopen *o, uint64_t deadline_ms)
{
    if (o->lease_idx != LEASE_NONE) {
        o->lease_ms = deadline_ms;
        up(lh, o->lease_idx);
        down(lh, o->lease_idx);
        return 0;
    }
    if (lh->n == lh->cap) {
        size_t cap = lh->cap ? lh->cap * 2 : 16;
        struct qopen **h = realloc(lh->h, cap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        lh->h = h;
        lh->cap = cap;
    }
    o->lease_ms = deadline_ms;
    put(lh, lh->n++, o);
    up(lh, o->lease_idx);
    return 0;
}

void lease_clear(struct lease_heap *lh, struct qopen *o)
{
    size_t i = o->lease_idx;
    if (i == LEASE_NONE)
        return;
    o->lease_idx = LEASE_NONE;
    struct qopen *last = lh->h[--lh->n];
    if (i == lh->n)
        return;
    put(lh, i, last);
    up(lh, i);
    down(lh, last->lease_idx);
}

struct qopen *lease_top(const struct lease_heap *lh) { return lh->n ? lh->h[0] : NULL; }

void lease_heap_free(struct lease_heap *lh)
{
    free(lh->h); /* the open items are their queues' (freed by then) */
    *lh = (struct lease_heap){0};
}
