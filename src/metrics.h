/* metrics.h: the one metrics registry. Every number the server reports is
 * read once into a snapshot and rendered from the tables in metrics.c as
 * memcache `stats` lines, Kestrel's `dump_stats` blocks, the JSON of
 * /stats.json and the Prometheus text of /metrics, so none can disagree
 * with another (docs/operations.md lists every series). */
#ifndef DARNER_METRICS_H
#define DARNER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "queue/queue.h"
#include "util/buf.h"

struct server;

/* The per-queue values, in the order `stats` prints them (Kestrel's, with
 * ours after its). */
enum qmetric {
    QM_ITEMS,
    QM_BYTES,
    QM_TOTAL_ITEMS,
    QM_LOGSIZE,
    QM_EXPIRED,
    QM_AGE,
    QM_DISCARDED,
    QM_WAITERS,
    QM_OPEN,
    QM_TRANSACTIONS,
    QM_CANCELED,
    QM_LEASE_EXPIRED,
    QM_DEAD_LETTERED,
    QM_REDELIVERIES,
    QM_FLUSHES,
    QM_DELAYED,
    QM_REMOVED,
    QM_OLDEST_AGE,
    QM_AGE_MSEC, /* the items_pri<N> lines go before this one */
    QM_CREATE_TIME,
    QM_COUNT
};

/* One queue's values. */
struct qvals {
    uint64_t v[QM_COUNT];
    uint64_t pri[QUEUE_LEVELS]; /* items at each level (a queue with lanes) */
    int has_lanes;
};

/* Reads every value of q (a queue clients name, not a lane or bucket). */
void metrics_queue(const struct server *s, struct queue *q, uint64_t now_ms, struct qvals *out);

/* `stats`: "STAT name value" lines for the server and each queue, "END". */
void metrics_write_stats(const struct server *s, struct buf *out);
/* `dump_stats`: Kestrel's block of one queue ("queue 'q' {", "  key=value"
 * lines, "}"). */
void metrics_write_dump(const struct server *s, struct queue *q, struct buf *out);
/* /metrics (Prometheus's text format: the server's series, the sums over
 * all queues, and with a pattern (util/glob.h) the per-queue series of the
 * queues it matches) and /stats.json ({"queues": {"name": {...}}, "server":
 * {...}}, the keys of `stats`), rendered in steps: the queue names are
 * taken when the job begins; each step reads about budget/8 queues or
 * writes about budget per-queue lines, so the loop serves traffic between
 * steps. */
enum metrics_format { METRICS_PROMETHEUS, METRICS_JSON };
struct metrics_job;
/* pattern is copied; NULL: no per-queue series. Returns NULL when out of
 * memory. */
struct metrics_job *metrics_job_new(const struct server *s, enum metrics_format format, const char *pattern);
/* Returns 0 while steps remain; 1 with the whole body in *out (the
 * caller's); -ENOMEM. The server must not be freed between steps. */
int metrics_job_step(struct metrics_job *j, size_t budget, struct buf *out);
void metrics_job_free(struct metrics_job *j);

#endif
