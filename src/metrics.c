/* metrics.c: the metrics registry (metrics.h). Two tables, one per queue
 * and one for the server, name each value for `stats` and for Prometheus;
 * a snapshot is read once and every renderer walks the tables. */
#include "metrics.h"

#include "conffile.h"
#include "journal/io_stats.h"
#include "proto/parse.h"
#include "queue/delay.h"
#include "queue/registry.h"
#include "server.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

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

/* A queue's series are darner_queue_<prom>{queue="..."}; the sums over all
 * queues darner_<prom>. */
static const struct mdef QDEFS[QM_COUNT] = {
    [QM_ITEMS] = {"items", "items", MK_GAUGE, MU_NONE, MA_SUM, "Items queued, open ones included (delayed ones are darner_delayed_items)."},
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

/* curr_items, total_items, bytes and open_transactions are the sums over
 * the queues: Prometheus has them as darner_items and so on. */
static const struct mdef SDEFS[SM_COUNT] = {
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
    [SM_CURR_CONNECTIONS] = {"curr_connections", "connections", MK_GAUGE, MU_NONE, MA_NONE,
                             "Open client connections."},
    [SM_TOTAL_CONNECTIONS] = {"total_connections", "connections_total", MK_COUNTER, MU_NONE, MA_NONE,
                              "Client connections accepted."},
    [SM_REJECTED_CONNECTIONS] = {"rejected_connections", "connections_rejected_total", MK_COUNTER, MU_NONE,
                                 MA_NONE, "Connections refused at max_connections."},
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
    [SM_QUEUE_DELETES] = {"queue_deletes", "queues_deleted_total", MK_COUNTER, MU_NONE, MA_NONE,
                          "Queues deleted."},
    [SM_QUEUE_EXPIRES] = {"queue_expires", "queues_expired_total", MK_COUNTER, MU_NONE, MA_NONE,
                          "Queues deleted for their max_queue_age."},
    [SM_FSYNCS] = {"fsyncs", "journal_sync_jobs_total", MK_COUNTER, MU_NONE, MA_NONE,
                   "Group commits: sync jobs, each covering every file written before it."},
    [SM_JOURNAL_BYTES_WRITTEN] = {"journal_bytes_written", "journal_bytes_written_total", MK_COUNTER, MU_NONE,
                                  MA_NONE, "Bytes written to journal files."},
    /* memcached's names */
    [SM_AUTH_ENABLED] = {"auth_enabled_ascii", "auth_enabled", MK_GAUGE, MU_NONE, MA_NONE,
                         "1 when clients must authenticate (--auth-file)."},
    [SM_AUTH_CMDS] = {"auth_cmds", "auth_handshakes_total", MK_COUNTER, MU_NONE, MA_NONE,
                      "Authentication handshakes (--auth-file)."},
    [SM_AUTH_ERRORS] = {"auth_errors", "auth_failures_total", MK_COUNTER, MU_NONE, MA_NONE,
                        "Authentication handshakes refused."},
};

/* darner_commands_total's command label, by request type. */
static const char *const COMMAND_NAMES[] = {
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
    [PROTO_UNKNOWN] = "unknown",
    [PROTO_BAD] = "invalid",
};

static const char *const STATUS_NAMES[CMD_STATUSES] = {"ok", "miss", "hit", "error"};

const char *metrics_command_name(int type)
{
    if (type < 0 || (size_t)type >= sizeof(COMMAND_NAMES) / sizeof(COMMAND_NAMES[0]))
        return NULL;
    return COMMAND_NAMES[type];
}

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

/* Whether q is one clients name (not a lane or a delay bucket). */
static int visible(const struct queue *q) { return q->level < 0; }

/* The server's values and the sums over its queues. */
struct snap {
    uint64_t sv[SM_COUNT];
    struct qvals sum;
    uint64_t usec_user, usec_sys;
    struct io_stats_snap io;
};

static uint64_t tv_us(struct timeval tv) { return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec; }

/* The queues whose values a caller keeps (/metrics?queue=): those whose
 * name matches pattern, their values and escaped label texts. */
struct keep {
    const char *pattern;
    struct qvals *qv;
    size_t *label_off, n, cap;
    struct buf *labels;
};

static void put_label(struct buf *b, const char *name, size_t len);
static void put_str(struct buf *b, const char *s);

/* Reads the server-wide values, and into k (may be NULL) the values of the
 * queues it asks for, each queue read once. */
static void read_snap(const struct server *s, uint64_t now, struct snap *sn, struct keep *k)
{
    memset(sn, 0, sizeof(*sn));
    struct list *pos;
    for (pos = s->reg->all.next; pos != &s->reg->all; pos = pos->next) {
        struct queue *q = list_entry(pos, struct queue, all);
        if (!visible(q))
            continue;
        struct qvals one, *v = &one;
        if (k && k->n < k->cap && fnmatch(k->pattern, q->name, 0) == 0) {
            v = &k->qv[k->n];
            k->label_off[k->n++] = k->labels->len;
            put_str(k->labels, "{queue=\"");
            put_label(k->labels, q->name, q->name_len);
            put_str(k->labels, "\"");
        }
        metrics_queue(s, q, now, v);
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
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    sn->usec_user = tv_us(ru.ru_utime);
    sn->usec_sys = tv_us(ru.ru_stime);
    io_stats_read(&s->io, &sn->io);
    uint64_t *v = sn->sv;
    v[SM_PID] = (uint64_t)getpid();
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

/* ---- stats and dump_stats ---- */

static const char *const PRI_KEYS[QUEUE_LEVELS] = {"items_pri0", "items_pri1", "items_pri2", "items_pri3",
                                                   "items_pri4", "items_pri5", "items_pri6", "items_pri7",
                                                   "items_pri8", "items_pri9"};

/* Calls each(key, value) for every stat of a queue, in `stats` order. */
static void queue_each(const struct qvals *v, void (*each)(void *ctx, const char *key, uint64_t val), void *ctx)
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
    read_snap(s, now, &sn, NULL);
    for (size_t i = 0; i < SM_COUNT; i++) {
        if (i == SM_VERSION)
            buf_printf(out, "STAT version %s\r\n", DARNER_VERSION);
        else
            server_stat(out, &SDEFS[i], sn.sv[i]);
    }
    struct list *pos;
    for (pos = s->reg->all.next; pos != &s->reg->all; pos = pos->next) {
        struct queue *q = list_entry(pos, struct queue, all);
        if (!visible(q))
            continue;
        struct qvals v;
        metrics_queue(s, q, now, &v);
        struct stat_line sl = {out, q};
        queue_each(&v, stat_line, &sl);
    }
    buf_append(out, "END\r\n", 5);
}

static void dump_line(void *ctx, const char *key, uint64_t val)
{
    buf_printf(ctx, "  %s=%" PRIu64 "\r\n", key, val);
}

void metrics_write_dump(const struct server *s, struct queue *q, struct buf *out)
{
    struct qvals v;
    metrics_queue(s, q, queue_now_ms(), &v);
    buf_append(out, "queue '", 7);
    buf_append(out, q->name, q->name_len);
    buf_append(out, "' {\r\n", 5);
    queue_each(&v, dump_line, out);
    buf_append(out, "}\r\n", 3);
}

/* ---- /stats.json ---- */

/* keys of ours: ASCII, no check needed */
static void json_line(void *ctx, const char *key, uint64_t val)
{
    json_object_set_new_nocheck(ctx, key, json_integer((json_int_t)val));
}

char *metrics_json(const struct server *s)
{
    struct snap sn;
    uint64_t now = queue_now_ms();
    read_snap(s, now, &sn, NULL);
    json_t *root = json_object(), *srv = json_object(), *queues = json_object();
    if (!root || !srv || !queues) {
        json_decref(root);
        json_decref(srv);
        json_decref(queues);
        return NULL;
    }
    json_object_set_new(root, "server", srv);
    json_object_set_new(root, "queues", queues);
    for (size_t i = 0; i < SM_COUNT; i++) {
        const struct mdef *d = &SDEFS[i];
        if (i == SM_VERSION)
            json_object_set_new(srv, d->stat, json_string(DARNER_VERSION));
        else if (d->unit == MU_US)
            json_object_set_new(srv, d->stat, json_real((double)sn.sv[i] / 1e6));
        else
            json_object_set_new(srv, d->stat, json_integer((json_int_t)sn.sv[i]));
    }
    json_object_set_new(srv, "status", json_string(status_name(s->status)));
    struct list *pos;
    for (pos = s->reg->all.next; pos != &s->reg->all; pos = pos->next) {
        struct queue *q = list_entry(pos, struct queue, all);
        if (!visible(q))
            continue;
        struct qvals v;
        metrics_queue(s, q, now, &v);
        json_t *o = json_object();
        if (!o)
            continue;
        queue_each(&v, json_line, o);
        /* a name that is not UTF-8 cannot be a JSON key as it is */
        if (json_object_setn_new(queues, q->name, q->name_len, o) < 0)
            json_decref(o);
    }
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

/* ---- /metrics ---- */

/* Appends v in decimal (faster than printf: a scrape of many queues
 * writes hundreds of thousands of numbers). */
static void put_u64(struct buf *b, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    buf_append(b, tmp + i, sizeof(tmp) - i);
}

/* Appends v scaled by unit: seconds with three or six decimals. */
static void put_value(struct buf *b, uint64_t v, enum munit unit)
{
    if (unit == MU_NONE) {
        put_u64(b, v);
        return;
    }
    uint64_t div = unit == MU_MS ? 1000u : 1000000u;
    put_u64(b, v / div);
    char frac[8];
    int n = snprintf(frac, sizeof(frac), unit == MU_MS ? ".%03" PRIu64 : ".%06" PRIu64, v % div);
    buf_append(b, frac, (size_t)n);
}

static void put_str(struct buf *b, const char *s) { buf_append(b, s, strlen(s)); }

static void family(struct buf *b, const char *prefix, const char *name, const char *type, const char *help)
{
    put_str(b, "# HELP ");
    put_str(b, prefix);
    put_str(b, name);
    buf_append(b, " ", 1);
    put_str(b, help);
    put_str(b, "\n# TYPE ");
    put_str(b, prefix);
    put_str(b, name);
    buf_append(b, " ", 1);
    put_str(b, type);
    buf_append(b, "\n", 1);
}

/* The length of the UTF-8 sequence at p (n bytes left), or 0 if it is not
 * one (overlong forms and surrogates included). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    if (p[0] < 0x80)
        return 1;
    size_t len = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 && p[0] < 0xe0 ? 2 : 0;
    if (!len || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) || (p[0] == 0xf0 && p[1] < 0x90) ||
        (p[0] == 0xf4 && p[1] >= 0x90))
        return 0;
    return len;
}

/* A queue name as a label value: \, " and newline escaped as the text
 * format says; control bytes and bytes that are not UTF-8 as %XX (a
 * Prometheus label is UTF-8). */
static void put_label(struct buf *b, const char *name, size_t len)
{
    const unsigned char *p = (const unsigned char *)name;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_len(p + i, len - i);
        if (n == 1 && (p[i] == '\\' || p[i] == '"')) {
            char e[2] = {'\\', (char)p[i]};
            buf_append(b, e, 2);
        } else if (n == 1 && p[i] == '\n') {
            buf_append(b, "\\n", 2);
        } else if (n == 0 || (n == 1 && (p[i] < 0x20 || p[i] == 0x7f))) {
            char e[4];
            snprintf(e, sizeof(e), "%%%02X", p[i]);
            buf_append(b, e, 3);
            n = 1;
        } else {
            buf_append(b, p + i, n);
        }
        i += n;
    }
}

static void sample(struct buf *b, const char *prefix, const char *name, const char *labels, uint64_t v,
                   enum munit unit)
{
    put_str(b, prefix);
    put_str(b, name);
    if (labels)
        put_str(b, labels);
    buf_append(b, " ", 1);
    put_value(b, v, unit);
    buf_append(b, "\n", 1);
}

static const char *kind_name(enum mkind k) { return k == MK_COUNTER ? "counter" : "gauge"; }

static void write_server(const struct server *s, const struct snap *sn, struct buf *b)
{
    for (size_t i = 0; i < SM_COUNT; i++) {
        const struct mdef *d = &SDEFS[i];
        if (!d->prom)
            continue;
        family(b, "darner_", d->prom, kind_name(d->kind), d->help);
        sample(b, "darner_", d->prom, NULL, sn->sv[i], d->unit);
    }
    family(b, "darner_", "build_info", "gauge", "The server's version, as a label; always 1.");
    put_str(b, "darner_build_info{version=\"");
    put_str(b, DARNER_VERSION);
    put_str(b, "\"} 1\n");
    family(b, "darner_", "server_status", "gauge", "1 for the status the server is in (up, readonly, ...).");
    for (int st = STATUS_UP; st <= STATUS_QUIESCENT; st++) {
        put_str(b, "darner_server_status{status=\"");
        put_str(b, status_name((enum srv_status)st));
        put_str(b, "\"} ");
        put_u64(b, s->status == (enum srv_status)st);
        buf_append(b, "\n", 1);
    }
    family(b, "darner_", "commands_total", "counter", "Requests by command and outcome (ok, hit, miss, error).");
    for (size_t t = 0; t < sizeof(COMMAND_NAMES) / sizeof(COMMAND_NAMES[0]); t++) {
        if (!COMMAND_NAMES[t])
            continue;
        for (size_t k = 0; k < CMD_STATUSES; k++) {
            uint64_t v = s->st.commands[t][k];
            if (!v)
                continue;
            put_str(b, "darner_commands_total{command=\"");
            put_str(b, COMMAND_NAMES[t]);
            put_str(b, "\",status=\"");
            put_str(b, STATUS_NAMES[k]);
            put_str(b, "\"} ");
            put_u64(b, v);
            buf_append(b, "\n", 1);
        }
    }
    family(b, "darner_", "journal_fsync_duration_seconds", "histogram",
           "Time each fsync of a journal file or folder took.");
    uint64_t cum = 0;
    for (size_t i = 0; i <= IO_STATS_BUCKETS; i++) {
        cum += sn->io.fsync_le[i];
        put_str(b, "darner_journal_fsync_duration_seconds_bucket{le=\"");
        if (i < IO_STATS_BUCKETS)
            put_value(b, io_stats_bucket_us[i], MU_US);
        else
            put_str(b, "+Inf");
        put_str(b, "\"} ");
        put_u64(b, cum);
        buf_append(b, "\n", 1);
    }
    sample(b, "darner_", "journal_fsync_duration_seconds_sum", NULL, sn->io.fsync_ns / 1000, MU_US);
    sample(b, "darner_", "journal_fsync_duration_seconds_count", NULL, sn->io.fsyncs, MU_NONE);
}

/* Process metrics under their usual names (process_*), from /proc where
 * there is one. */
static void write_process(const struct server *s, const struct snap *sn, struct buf *b)
{
    family(b, "", "process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.");
    sample(b, "", "process_cpu_seconds_total", NULL, sn->usec_user + sn->usec_sys, MU_US);
    family(b, "", "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch.");
    sample(b, "", "process_start_time_seconds", NULL, s->start_ms / 1000, MU_NONE);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        family(b, "", "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        sample(b, "", "process_max_fds", NULL, rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur,
               MU_NONE);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        uint64_t n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            n += e->d_name[0] != '.';
        closedir(d);
        family(b, "", "process_open_fds", "gauge", "Number of open file descriptors.");
        sample(b, "", "process_open_fds", NULL, n ? n - 1 : 0, MU_NONE); /* the listing's own fd */
    }
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long vm, rss;
    if (f && fscanf(f, "%llu %llu", &vm, &rss) == 2) {
        uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
        family(b, "", "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        sample(b, "", "process_virtual_memory_bytes", NULL, vm * page, MU_NONE);
        family(b, "", "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        sample(b, "", "process_resident_memory_bytes", NULL, rss * page, MU_NONE);
    }
    if (f)
        fclose(f);
}

static const char *const PRI_LABELS[QUEUE_LEVELS] = {"\"0\"", "\"1\"", "\"2\"", "\"3\"", "\"4\"",
                                                     "\"5\"", "\"6\"", "\"7\"", "\"8\"", "\"9\""};

int metrics_write_prometheus(const struct server *s, const char *pattern, struct buf *out)
{
    struct snap sn;
    uint64_t now = queue_now_ms();
    struct buf labels = {0};
    struct keep k = {.pattern = pattern, .labels = &labels};
    int rc = 0;
    if (pattern) {
        /* the matching queues' values, read once: a family's samples must
         * be together, so each family walks them all */
        k.cap = s->reg->count ? s->reg->count : 1;
        k.qv = malloc(k.cap * sizeof(*k.qv));
        k.label_off = malloc((k.cap + 1) * sizeof(*k.label_off));
        if (!k.qv || !k.label_off) {
            rc = -ENOMEM;
            goto out;
        }
    }
    read_snap(s, now, &sn, pattern ? &k : NULL);
    if (pattern)
        k.label_off[k.n] = labels.len; /* the end of the last */
    write_server(s, &sn, out);
    write_process(s, &sn, out);
    /* sums over every queue */
    for (size_t i = 0; i < QM_COUNT; i++) {
        const struct mdef *d = &QDEFS[i];
        if (!d->prom)
            continue;
        family(out, "darner_", d->prom, kind_name(d->kind), d->help);
        sample(out, "darner_", d->prom, NULL, sn.sum.v[i], d->unit);
    }
    family(out, "darner_", "priority_items", "gauge", "Items queued at each priority level (0 most urgent).");
    for (unsigned l = 0; l < QUEUE_LEVELS; l++) {
        if (!sn.sum.pri[l])
            continue;
        put_str(out, "darner_priority_items{priority=");
        put_str(out, PRI_LABELS[l]);
        put_str(out, "} ");
        put_u64(out, sn.sum.pri[l]);
        buf_append(out, "\n", 1);
    }
    if (!pattern)
        goto out;
    for (size_t i = 0; i < QM_COUNT; i++) {
        const struct mdef *d = &QDEFS[i];
        if (!d->prom)
            continue;
        family(out, "darner_queue_", d->prom, kind_name(d->kind), d->help);
        for (size_t q = 0; q < k.n; q++) {
            put_str(out, "darner_queue_");
            put_str(out, d->prom);
            buf_append(out, labels.data + k.label_off[q], k.label_off[q + 1] - k.label_off[q]);
            put_str(out, "} ");
            put_value(out, k.qv[q].v[i], d->unit);
            buf_append(out, "\n", 1);
        }
    }
    family(out, "darner_queue_", "priority_items", "gauge", "Items queued at each priority level (0 most urgent).");
    for (size_t q = 0; q < k.n; q++) {
        for (unsigned l = 0; l < QUEUE_LEVELS; l++) {
            if (!k.qv[q].pri[l])
                continue;
            put_str(out, "darner_queue_priority_items");
            buf_append(out, labels.data + k.label_off[q], k.label_off[q + 1] - k.label_off[q]);
            put_str(out, ",priority=");
            put_str(out, PRI_LABELS[l]);
            put_str(out, "} ");
            put_u64(out, k.qv[q].pri[l]);
            buf_append(out, "\n", 1);
        }
    }
out:
    free(k.qv);
    free(k.label_off);
    buf_free(&labels);
    return rc;
}
