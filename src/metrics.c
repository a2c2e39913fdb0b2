/* metrics.c: the metrics registry (metrics.h). Two tables, one per queue
 * and one for the server, name each value for `stats` and for Prometheus;
 * a snapshot is read once and every renderer walks the tables. */
#include "metrics_int.h"

#include "conffile.h"
#include "journal/io_stats.h"
#include "proto/parse.h"
#include "queue/delay.h"
#include "queue/registry.h"
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* A queue's series are darner_queue_<prom>{queue="..."}; the sums over all
 * queues darner_<prom>. */
const struct mdef QDEFS[QM_COUNT] = {
    [QM_ITEMS] = {"items", "items", MK_GAUGE, MU_NONE, MA_SUM,
                  "Items queued, open ones included (delayed ones are darner_delayed_items)."},
    [QM_BYTES] = {"bytes", "bytes", MK_GAUGE, MU_NONE, MA_SUM, "Payload bytes of the queued and open items."},
    [QM_TOTAL_ITEMS] = {"total_items", "items_added_total", MK_COUNTER, MU_NONE, MA_SUM,
                        "Items added since the server started."},
    [QM_LOGSIZE] = {"logsize", "journal_bytes", MK_GAUGE, MU_NONE, MA_SUM, "Bytes of journal files on disk."},
    [QM_EXPIRED] = {"expired_items", "items_expired_total", MK_COUNTER, MU_NONE, MA_SUM,
                    "Items dropped because they expired."},
    [QM_AGE] = {"age", NULL, MK_GAUGE, MU_MS, MA_NONE, NULL},
    [QM_DISCARDED] = {"discarded", "items_discarded_total", MK_COUNTER, MU_NONE, MA_SUM,
                      "Items dropped to make room (discard_old_when_full)."},
    [QM_WAITERS] = {"waiters", "waiters", MK_GAUGE, MU_NONE, MA_SUM, "Clients waiting for an item."},
    [QM_OPEN] = {"open_transactions", "open_items", MK_GAUGE, MU_NONE, MA_SUM,
                 "Items handed out with /open and not yet closed or given back."},
    [QM_TRANSACTIONS] = {"transactions", "items_opened_total", MK_COUNTER, MU_NONE, MA_SUM,
                         "Items handed out with /open (or monitor)."},
    [QM_CANCELED] = {"canceled_transactions", "items_given_back_total", MK_COUNTER, MU_NONE, MA_SUM,
                     "Open items given back: aborted, lease run out, client gone."},
    [QM_LEASE_EXPIRED] = {"lease_expired", "lease_expired_total", MK_COUNTER, MU_NONE, MA_SUM,
                          "Open items given back because their lease ran out."},
    [QM_DEAD_LETTERED] = {"dead_lettered", "dead_lettered_total", MK_COUNTER, MU_NONE, MA_SUM,
                          "Items sent to the dead-letter queue."},
    [QM_REDELIVERIES] = {"redeliveries", "redeliveries_total", MK_COUNTER, MU_NONE, MA_SUM,
                         "Hand-outs of items handed out before."},
    [QM_FLUSHES] = {"total_flushes", "flushes_total", MK_COUNTER, MU_NONE, MA_SUM, "flush commands."},
    [QM_DELAYED] = {"delayed_items", "delayed_items", MK_GAUGE, MU_NONE, MA_SUM, "Items waiting for their time."},
    [QM_REMOVED] = {"removed_items", "items_removed_total", MK_COUNTER, MU_NONE, MA_SUM,
                    "Items taken for good: plain gets and closed /opens."},
    [QM_OLDEST_AGE] = {"oldest_item_age_msec", "oldest_item_age_seconds", MK_GAUGE, MU_MS, MA_MAX,
                       "Age of the item handed out next (0: none)."},
    [QM_AGE_MSEC] = {"age_msec", NULL, MK_GAUGE, MU_MS, MA_NONE, NULL},
    [QM_CREATE_TIME] = {"create_time", NULL, MK_GAUGE, MU_NONE, MA_NONE, NULL},
};

/* curr_items, total_items, bytes and open_transactions are the sums over
 * the queues: Prometheus has them as darner_items and so on. */
const struct mdef SDEFS[SM_COUNT] = {
    [SM_PID] = {"pid", NULL, MK_GAUGE, MU_NONE, MA_NONE, NULL},
    [SM_UPTIME] = {"uptime", "uptime_seconds", MK_GAUGE, MU_NONE, MA_NONE, "Seconds since the server started."},
    [SM_TIME] = {"time", NULL, MK_GAUGE, MU_NONE, MA_NONE, NULL},
    [SM_VERSION] = {"version", NULL, MK_GAUGE, MU_NONE, MA_NONE, NULL},
    [SM_RUSAGE_USER] = {"rusage_user", NULL, MK_COUNTER, MU_US, MA_NONE, NULL},
    [SM_RUSAGE_SYSTEM] = {"rusage_system", NULL, MK_COUNTER, MU_US, MA_NONE, NULL},
    [SM_CURR_ITEMS] = {"curr_items", NULL, MK_GAUGE, MU_NONE, MA_NONE, NULL},
    [SM_TOTAL_ITEMS] = {"total_items", NULL, MK_COUNTER, MU_NONE, MA_NONE, NULL},
    [SM_BYTES] = {"bytes", NULL, MK_GAUGE, MU_NONE, MA_NONE, NULL},
    [SM_OPEN] = {"open_transactions", NULL, MK_GAUGE, MU_NONE, MA_NONE, NULL},
    [SM_CURR_CONNECTIONS] = {"curr_connections", "connections", MK_GAUGE, MU_NONE, MA_NONE, "Open client connections."},
    [SM_TOTAL_CONNECTIONS] = {"total_connections", "connections_total", MK_COUNTER, MU_NONE, MA_NONE,
                              "Client connections accepted."},
    [SM_REJECTED_CONNECTIONS] = {"rejected_connections", "connections_rejected_total", MK_COUNTER, MU_NONE, MA_NONE,
                                 "Connections refused at max_connections."},
    [SM_CMD_GET] = {"cmd_get", NULL, MK_COUNTER, MU_NONE, MA_NONE, NULL},
    [SM_CMD_SET] = {"cmd_set", NULL, MK_COUNTER, MU_NONE, MA_NONE, NULL},
    [SM_CMD_PEEK] = {"cmd_peek", NULL, MK_COUNTER, MU_NONE, MA_NONE, NULL},
    [SM_CMD_MONITOR] = {"cmd_monitor", NULL, MK_COUNTER, MU_NONE, MA_NONE, NULL},
    [SM_GET_HITS] = {"get_hits", NULL, MK_COUNTER, MU_NONE, MA_NONE, NULL},
    [SM_GET_MISSES] = {"get_misses", NULL, MK_COUNTER, MU_NONE, MA_NONE, NULL},
    [SM_BYTES_READ] = {"bytes_read", "read_bytes_total", MK_COUNTER, MU_NONE, MA_NONE,
                       "Bytes read from client connections."},
    [SM_BYTES_WRITTEN] = {"bytes_written", "written_bytes_total", MK_COUNTER, MU_NONE, MA_NONE,
                          "Bytes written to client connections."},
    [SM_QUEUES] = {"queues", "queues", MK_GAUGE, MU_NONE, MA_NONE, "Queues (lanes and delay buckets not counted)."},
    [SM_QUEUE_CREATES] = {"queue_creates", "queues_created_total", MK_COUNTER, MU_NONE, MA_NONE, "Queues made."},
    [SM_QUEUE_DELETES] = {"queue_deletes", "queues_deleted_total", MK_COUNTER, MU_NONE, MA_NONE, "Queues deleted."},
    [SM_QUEUE_EXPIRES] = {"queue_expires", "queues_expired_total", MK_COUNTER, MU_NONE, MA_NONE,
                          "Queues deleted for their max_queue_age."},
    [SM_FSYNCS] = {"fsyncs", "journal_sync_jobs_total", MK_COUNTER, MU_NONE, MA_NONE,
                   "Group commits: sync jobs, each covering every file written before it."},
    [SM_JOURNAL_BYTES_WRITTEN] = {"journal_bytes_written", "journal_bytes_written_total", MK_COUNTER, MU_NONE, MA_NONE,
                                  "Bytes written to journal files."},
    /* memcached's names */
    [SM_AUTH_ENABLED] = {"auth_enabled_ascii", "auth_enabled", MK_GAUGE, MU_NONE, MA_NONE,
                         "1 when clients must authenticate (--auth-file)."},
    [SM_AUTH_CMDS] = {"auth_cmds", "auth_handshakes_total", MK_COUNTER, MU_NONE, MA_NONE,
                      "Authentication handshakes (--auth-file)."},
    [SM_AUTH_ERRORS] = {"auth_errors", "auth_failures_total", MK_COUNTER, MU_NONE, MA_NONE,
                        "Authentication handshakes refused."},
};

/* darner_commands_total's command label, by request type. */
const char *const COMMAND_NAMES[CMD_TYPES] = {
    [PROTO_GET] = "get",
    [PROTO_SET] = "set",
    [PROTO_DELETE] = "delete",
    [PROTO_FLUSH] = "flush",
    [PROTO_FLUSH_ALL] = "flush_all",
    [PROTO_STATS] = "stats",
    [PROTO_VERSION] = "version",
    [PROTO_QUIT] = "quit",
    [PROTO_VERBOSITY] = "verbosity",
    [PROTO_RELOAD] = "reload",
    [PROTO_DUMP_CONFIG] = "dump_config",
    [PROTO_STATUS] = "status",
    [PROTO_SHUTDOWN] = "shutdown",
    [PROTO_DUMP_STATS] = "dump_stats",
    [PROTO_FLUSH_EXPIRED] = "flush_expired",
    [PROTO_FLUSH_ALL_EXPIRED] = "flush_all_expired",
    [PROTO_MONITOR] = "monitor",
    [PROTO_CONFIRM] = "confirm",
    [PROTO_TOUCH] = "touch",
    [PROTO_KICK] = "kick",
    [PROTO_CELLFILE] = "cellfile",
    [PROTO_CLUSTER] = "cluster",
    [PROTO_CLUSTER_CHANGE] = "cluster_change",
    [PROTO_UNKNOWN] = "unknown",
    [PROTO_BAD] = "invalid",
    [PROTO_NOOP] = "noop",
    [PROTO_SASL_LIST] = "sasl_list_mechs",
    [PROTO_SASL_AUTH] = "sasl_auth",
    [PROTO_SASL_STEP] = "sasl_step",
};

const char *const STATUS_NAMES[CMD_STATUSES] = {"ok", "miss", "hit", "error"};

/* ---- reading ---- */

void metrics_queue(const struct server *s, struct queue *q, uint64_t now_ms, struct qvals *out)
{
    struct jnl_stats js;
    registry_queue_stats(s->reg, q, &js);
    uint64_t waiters = 0;
    for (struct list *w = q->waiters.next; w != &q->waiters; w = w->next)
        waiters++;
    uint64_t oldest = registry_queue_oldest(s->reg, q);
    uint64_t *v = out->v;
    v[QM_ITEMS] = js.items;
    v[QM_BYTES] = js.bytes;
    v[QM_TOTAL_ITEMS] = q->total_items;
    v[QM_LOGSIZE] = js.logsize;
    v[QM_EXPIRED] = q->expired;
    v[QM_AGE] = q->age_ms;
    v[QM_DISCARDED] = q->discarded;
    v[QM_WAITERS] = waiters;
    v[QM_OPEN] = js.open;
    v[QM_TRANSACTIONS] = q->transactions;
    v[QM_CANCELED] = q->canceled;
    v[QM_LEASE_EXPIRED] = q->lease_expired;
    v[QM_DEAD_LETTERED] = q->dead_lettered;
    v[QM_REDELIVERIES] = q->redeliveries;
    v[QM_FLUSHES] = q->flushes;
    v[QM_DELAYED] = q->delays ? queue_delayed_items(q) : 0;
    v[QM_REMOVED] = q->removed;
    v[QM_OLDEST_AGE] = oldest && now_ms > oldest ? now_ms - oldest : 0;
    v[QM_AGE_MSEC] = q->age_ms;
    v[QM_CREATE_TIME] = q->create_ms / 1000;
    out->has_lanes = q->lanes != NULL;
    if (q->lanes) {
        for (unsigned level = 0; level < QUEUE_LEVELS; level++)
            out->pri[level] = queue_level_items(q, level);
    } else { /* all of it at the queue's default level */
        memset(out->pri, 0, sizeof(out->pri));
        out->pri[q->conf->v.default_priority] = js.items;
    }
}

int metrics_visible(const struct queue *q) { return q->level < 0; }

static uint64_t tv_us(uv_timeval_t tv) { return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec; }

void metrics_add(struct snap *sn, const struct qvals *v)
{
    for (size_t i = 0; i < QM_COUNT; i++) {
        if (QDEFS[i].agg == MA_SUM)
            sn->sum.v[i] += v->v[i];
        else if (QDEFS[i].agg == MA_MAX && v->v[i] > sn->sum.v[i])
            sn->sum.v[i] = v->v[i];
    }
    for (size_t l = 0; l < QUEUE_LEVELS; l++)
        sn->sum.pri[l] += v->pri[l];
    sn->sum.has_lanes |= v->has_lanes;
}

void metrics_server_values(const struct server *s, uint64_t now, struct snap *sn)
{
    uv_rusage_t ru;
    memset(&ru, 0, sizeof(ru));
    uv_getrusage(&ru);
    sn->usec_user = tv_us(ru.ru_utime);
    sn->usec_sys = tv_us(ru.ru_stime);
    io_stats_read(&s->io, &sn->io);
    uint64_t *v = sn->sv;
    v[SM_PID] = (uint64_t)uv_os_getpid();
    v[SM_UPTIME] = (now - s->start_ms) / 1000;
    v[SM_TIME] = now / 1000;
    v[SM_RUSAGE_USER] = sn->usec_user;
    v[SM_RUSAGE_SYSTEM] = sn->usec_sys;
    v[SM_CURR_ITEMS] = sn->sum.v[QM_ITEMS];
    v[SM_TOTAL_ITEMS] = sn->sum.v[QM_TOTAL_ITEMS];
    v[SM_BYTES] = sn->sum.v[QM_BYTES];
    v[SM_OPEN] = sn->sum.v[QM_OPEN];
    v[SM_CURR_CONNECTIONS] = s->nconns;
    v[SM_TOTAL_CONNECTIONS] = s->st.total_connections;
    v[SM_REJECTED_CONNECTIONS] = s->st.refused_connections;
    v[SM_CMD_GET] = s->st.cmd_get;
    v[SM_CMD_SET] = s->st.cmd_set;
    v[SM_CMD_PEEK] = s->st.cmd_peek;
    v[SM_CMD_MONITOR] = s->st.cmd_monitor;
    v[SM_GET_HITS] = s->st.get_hits;
    v[SM_GET_MISSES] = s->st.get_misses;
    v[SM_BYTES_READ] = s->st.bytes_read;
    v[SM_BYTES_WRITTEN] = s->st.bytes_written;
    v[SM_QUEUES] = s->reg->count - s->reg->nhidden;
    v[SM_QUEUE_CREATES] = s->reg->queue_creates;
    v[SM_QUEUE_DELETES] = s->reg->queue_deletes;
    v[SM_QUEUE_EXPIRES] = s->reg->queue_expires;
    v[SM_FSYNCS] = s->sync.syncs;
    v[SM_JOURNAL_BYTES_WRITTEN] = sn->io.bytes_written;
    v[SM_AUTH_ENABLED] = s->auth != NULL;
    v[SM_AUTH_CMDS] = s->st.auth_cmds;
    v[SM_AUTH_ERRORS] = s->st.auth_errors;
}

/* Reads every queue's values into the sums, and the server's. */
static void read_snap(const struct server *s, uint64_t now, struct snap *sn)
{
    memset(sn, 0, sizeof(*sn));
    struct list *pos;
    for (pos = s->reg->all.next; pos != &s->reg->all; pos = pos->next) {
        struct queue *q = list_entry(pos, struct queue, all);
        if (!metrics_visible(q))
            continue;
        struct qvals v;
        metrics_queue(s, q, now, &v);
        metrics_add(sn, &v);
    }
    metrics_server_values(s, now, sn);
}

/* ---- stats and dump_stats ---- */

static const char *const PRI_KEYS[QUEUE_LEVELS] = {"items_pri0", "items_pri1", "items_pri2", "items_pri3",
                                                   "items_pri4", "items_pri5", "items_pri6", "items_pri7",
                                                   "items_pri8", "items_pri9"};

void metrics_queue_each(const struct qvals *v, void (*each)(void *ctx, const char *key, uint64_t val), void *ctx)
{
    for (size_t i = 0; i < QM_COUNT; i++) {
        if (i == QM_AGE_MSEC)
            for (unsigned l = 0; v->has_lanes && l < QUEUE_LEVELS; l++)
                if (v->pri[l])
                    each(ctx, PRI_KEYS[l], v->pri[l]);
        each(ctx, QDEFS[i].stat, v->v[i]);
    }
}

/* A server value as `stats` prints it. */
static void server_stat(struct buf *out, const struct mdef *d, uint64_t v)
{
    if (d->unit == MU_US)
        buf_printf(out, "STAT %s %" PRIu64 ".%06" PRIu64 "\r\n", d->stat, v / 1000000u, v % 1000000u);
    else
        buf_printf(out, "STAT %s %" PRIu64 "\r\n", d->stat, v);
}

struct stat_line {
    struct buf *out;
    const struct queue *q;
};

static void stat_line(void *ctx, const char *key, uint64_t val)
{
    struct stat_line *sl = ctx;
    buf_append(sl->out, "STAT queue_", 11);
    buf_append(sl->out, sl->q->name, sl->q->name_len);
    buf_printf(sl->out, "_%s %" PRIu64 "\r\n", key, val);
}

void metrics_write_stats(const struct server *s, struct buf *out)
{
    struct snap sn;
    uint64_t now = queue_now_ms();
    read_snap(s, now, &sn);
    for (size_t i = 0; i < SM_COUNT; i++) {
        if (i == SM_VERSION)
            buf_printf(out, "STAT version %s\r\n", DARNER_VERSION);
        else
            server_stat(out, &SDEFS[i], sn.sv[i]);
    }
    struct list *pos;
    for (pos = s->reg->all.next; pos != &s->reg->all; pos = pos->next) {
        struct queue *q = list_entry(pos, struct queue, all);
        if (!metrics_visible(q))
            continue;
        struct qvals v;
        metrics_queue(s, q, now, &v);
        struct stat_line sl = {out, q};
        metrics_queue_each(&v, stat_line, &sl);
    }
    buf_append(out, "END\r\n", 5);
}

static void dump_line(void *ctx, const char *key, uint64_t val) { buf_printf(ctx, "  %s=%" PRIu64 "\r\n", key, val); }

void metrics_write_dump(const struct server *s, struct queue *q, struct buf *out)
{
    struct qvals v;
    metrics_queue(s, q, queue_now_ms(), &v);
    buf_append(out, "queue '", 7);
    buf_append(out, q->name, q->name_len);
    buf_append(out, "' {\r\n", 5);
    metrics_queue_each(&v, dump_line, out);
    buf_append(out, "}\r\n", 3);
}
