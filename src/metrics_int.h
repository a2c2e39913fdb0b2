/* metrics_int.h: the metrics registry's tables and snapshot, shared by
 * metrics.c (reading; stats and dump_stats) and metrics_job.c (/metrics
 * and /stats.json, rendered in steps). */
#ifndef DARNER_METRICS_INT_H
#define DARNER_METRICS_INT_H

#include "journal/io_stats.h"
#include "metrics.h"
#include "server.h"

enum mkind { MK_COUNTER, MK_GAUGE };

enum munit {
    MU_NONE,
    MU_MS, /* the value is in milliseconds; Prometheus gets seconds */
    MU_US, /* microseconds: `stats` prints seconds.micros, Prometheus seconds */
};

enum magg { MA_SUM, MA_MAX, MA_NONE };

/* One value: its `stats` key (NULL: Prometheus only) and its Prometheus
 * name after the prefix (NULL: `stats` only). */
struct mdef {
    const char *stat;
    const char *prom;
    enum mkind kind;
    enum munit unit;
    enum magg agg; /* queue values: how the server-wide series sums them */
    const char *help;
};

enum smetric {
    SM_PID,
    SM_UPTIME,
    SM_TIME,
    SM_VERSION, /* a string: rendered apart */
    SM_RUSAGE_USER,
    SM_RUSAGE_SYSTEM,
    SM_CURR_ITEMS,
    SM_TOTAL_ITEMS,
    SM_BYTES,
    SM_OPEN,
    SM_CURR_CONNECTIONS,
    SM_TOTAL_CONNECTIONS,
    SM_REJECTED_CONNECTIONS,
    SM_CMD_GET,
    SM_CMD_SET,
    SM_CMD_PEEK,
    SM_CMD_MONITOR,
    SM_GET_HITS,
    SM_GET_MISSES,
    SM_BYTES_READ,
    SM_BYTES_WRITTEN,
    SM_QUEUES,
    SM_QUEUE_CREATES,
    SM_QUEUE_DELETES,
    SM_QUEUE_EXPIRES,
    SM_FSYNCS,
    SM_JOURNAL_BYTES_WRITTEN,
    SM_AUTH_ENABLED,
    SM_AUTH_CMDS,
    SM_AUTH_ERRORS,
    SM_COUNT
};

extern const struct mdef QDEFS[QM_COUNT];
extern const struct mdef SDEFS[SM_COUNT];
/* darner_commands_total's labels: by request type, and by enum cmd_status */
extern const char *const COMMAND_NAMES[CMD_TYPES];
extern const char *const STATUS_NAMES[CMD_STATUSES];

/* The server's values and the sums over its queues. */
struct snap {
    uint64_t sv[SM_COUNT];
    struct qvals sum;
    uint64_t usec_user, usec_sys;
    struct io_stats_snap io;
};

/* Whether q is one clients name (not a lane or a delay bucket). */
int metrics_visible(const struct queue *q);
/* Adds a queue's values into the sums. */
void metrics_add(struct snap *sn, const struct qvals *v);
/* Reads the server-wide values (the sums already in sn). */
void metrics_server_values(const struct server *s, uint64_t now, struct snap *sn);
/* Calls each(key, value) for every stat of a queue, in `stats` order. */
void metrics_queue_each(const struct qvals *v, void (*each)(void *ctx, const char *key, uint64_t val), void *ctx);

#endif
