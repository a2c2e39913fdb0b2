/* queue/delay_count.c: counting a queue's delayed items. Each bucket keeps
 * in memory its items not fired and their bytes; after a start a census
 * counts them, a step a tick, from the bucket's files (jnl_peek) without
 * opening its journal, or at once from an open journal's totals
 * (docs/scheduling.md, "Counting delayed items"). */
#include "queue/delay.h"
#include "queue/delay_int.h"
#include "util/errstr.h"

#include "queue/registry.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Counting a bucket's items after a start (census_step) */
#define CENSUS_BYTES (1u << 20) /* segment bytes a census step reads of a closed bucket */
#define CENSUS_BATCHES 4096     /* batches a census step reads of an open one */

/* ---- counting: what a bucket holds that has not fired ---- */

/* Bucket b's census is over: its items and bytes are exact from now on. */
static void census_done(struct queue *b)
{
    struct dbucket *d = b->bucket;
    if (!d->counted)
        b->reg->delays_uncounted--;
    d->counted = 1;
    jnl_peek_close(d->peek);
    d->peek = NULL;
}

/* Counts bucket b from its journal's totals (j, open, or NULL: b's open or
 * parked journal), which are exact while nothing of it has fired (a fired
 * item stays in the bucket's files until the bucket goes). Returns 1 if b
 * is counted. */
int dcount_from_totals(struct queue *b, struct jnl *j)
{
    struct dbucket *d = b->bucket;
    struct jnl_stats st;
    if (d->counted || !d->settled || d->done.fired)
        return d->counted;
    if (j || (j = b->jnl) != NULL)
        jnl_get_stats(j, &st);
    else if (b->parked_valid)
        st = b->parked;
    else
        return 0;
    d->items = st.items;
    d->bytes = st.bytes;
    census_done(b);
    return 1;
}

struct census {
    struct dbucket *d;
    struct jnl_fire done; /* the key in force: items up to it fired */
};

static void census_entry(void *ctx, const struct jnl_item *it)
{
    struct census *c = ctx;
    if (c->done.id && (it->visible_ms < c->done.due || (it->visible_ms == c->done.due && it->id <= c->done.id)))
        return; /* fired */
    c->d->items++;
    c->d->bytes += it->len;
}

/* One step of bucket b's census: its entries from (cseg, coff) on, read
 * through its journal when open, else from its files (jnl_peek). Returns 1
 * when b is counted, 0 when more steps are needed, or -errno. */
static int census_step(struct queue *b)
{
    struct dbucket *d = b->bucket;
    struct registry *r = b->reg;
    struct census c = {.d = d};
    struct jnl *j = NULL;
    size_t npend = 0;
    int rc;
    if (d->counted)
        return 1;
    if (b->jnl && (rc = registry_jnl(r, b, &j)) < 0) /* (settles a firing an open left owed) */
        return rc;
    if (dcount_from_totals(b, j))
        return 1;
    if (j) {
        jnl_peek_close(d->peek);
        d->peek = NULL;
        c.done = d->done;
        rc = jnl_scan(j, &d->cseg, &d->coff, CENSUS_BATCHES, census_entry, &c);
    } else {
        if (!d->peek && (rc = jnl_peek_open(&r->jconf, b->dir, &d->peek)) < 0)
            return rc;
        if (d->settled) {
            c.done = d->done;
        } else if (jnl_peek_fire(d->peek, &c.done, &npend), npend) {
            /* a firing a crash cut short: settled by an open first (once
             * after a start, and only for a bucket that was firing) */
            return (rc = registry_jnl(r, b, &j)) < 0 ? rc : 0;
        }
        rc = jnl_peek_scan(d->peek, &d->cseg, &d->coff, CENSUS_BYTES, census_entry, &c);
    }
    if (rc == 1)
        census_done(b);
    return rc;
}

/* Item it of bucket b fired (or expired, or was kicked): no longer counted,
 * unless the census has not reached it (it then finds it fired). */
void dcount_fired(struct dbucket *d, const struct jnl_item *it)
{
    if (!d->counted && (it->seg > d->cseg || (it->seg == d->cseg && it->off >= d->coff)))
        return;
    d->items -= d->items ? 1 : 0;
    d->bytes -= it->len < d->bytes ? it->len : d->bytes;
}

/* A census that failed (logged): b is counted as far as it was read, so
 * nothing waits for it. */
static void census_failed(struct queue *b, int rc)
{
    log_error(b->reg->log, "queue %s: cannot count its delayed items due from %" PRIu64 " (counted as far as read): %s",
              b->parent ? b->parent->name : b->name, b->bucket->start, errstr(rc));
    census_done(b);
}

/* Census steps for the buckets not counted yet, at most budget. Returns
 * 1 while some are left. */
int dcensus_tick(struct registry *r, size_t budget)
{
    struct list *pos;
    for (pos = r->delayq.next; pos != &r->delayq && r->delays_uncounted && budget; pos = pos->next) {
        struct delays *ds = list_entry(pos, struct delays, link);
        for (size_t i = 0; i < ds->n && budget; i++) {
            struct queue *b = ds->b[i];
            while (!b->bucket->counted && budget) {
                budget--;
                int rc = census_step(b);
                if (rc < 0)
                    census_failed(b, rc);
            }
        }
    }
    return r->delays_uncounted > 0;
}

void queue_count_delayed(struct queue *q)
{
    for (size_t i = 0; q->delays && i < q->delays->n; i++) {
        struct queue *b = q->delays->b[i];
        int rc;
        while ((rc = census_step(b)) == 0)
            ;
        if (rc < 0)
            census_failed(b, rc);
    }
}

uint64_t queue_delayed_items(const struct queue *q)
{
    uint64_t n = 0;
    for (size_t i = 0; q->delays && i < q->delays->n; i++)
        n += q->delays->b[i]->bucket->items;
    return n;
}

uint64_t queue_delayed_bytes(const struct queue *q)
{
    uint64_t n = 0;
    for (size_t i = 0; q->delays && i < q->delays->n; i++)
        n += q->delays->b[i]->bucket->bytes;
    return n;
}

int queue_delays_counted(const struct queue *q)
{
    for (size_t i = 0; q->delays && i < q->delays->n; i++)
        if (!q->delays->b[i]->bucket->counted)
            return 0;
    return 1;
}
