/* metrics_job.c: /metrics (Prometheus's text format) and /stats.json,
 * rendered in steps. A job takes the queue names when it begins; each step
 * reads (and for JSON renders) a bounded number of queues, or renders a
 * bounded number of per-queue lines, so the loop serves queue traffic
 * between steps however many queues there are. Values come from the one
 * registry (metrics.c). */
#include "metrics_int.h"

#include "proc.h"
#include "util/glob.h"
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Prometheus's text format ---- */

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
 * format says; control bytes, bytes that are not UTF-8 (a Prometheus label
 * is UTF-8) and % itself as %XX, so two names never give one label. */
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
        } else if (n == 0 || (n == 1 && (p[i] < 0x20 || p[i] == 0x7f || p[i] == '%'))) {
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

static void sample(struct buf *b, const char *prefix, const char *name, const char *labels, uint64_t v, enum munit unit)
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

/* Process metrics under their usual names (process_*), as the platform
 * gives them (proc.h); open_fds: counted by the job (-1: unknown). */
static void write_process(const struct server *s, const struct snap *sn, long long open_fds, struct buf *b)
{
    family(b, "", "process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.");
    sample(b, "", "process_cpu_seconds_total", NULL, sn->usec_user + sn->usec_sys, MU_US);
    family(b, "", "process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch.");
    sample(b, "", "process_start_time_seconds", NULL, s->start_ms / 1000, MU_NONE);
    uint64_t max_fds = proc_max_fds(), rss, vm;
    if (max_fds) {
        family(b, "", "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        sample(b, "", "process_max_fds", NULL, max_fds, MU_NONE);
    }
    if (open_fds >= 0) {
        family(b, "", "process_open_fds", "gauge", "Number of open file descriptors.");
        sample(b, "", "process_open_fds", NULL, (uint64_t)open_fds, MU_NONE);
    }
    proc_memory(&rss, &vm);
    if (vm) {
        family(b, "", "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        sample(b, "", "process_virtual_memory_bytes", NULL, vm, MU_NONE);
    }
    if (rss) {
        family(b, "", "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        sample(b, "", "process_resident_memory_bytes", NULL, rss, MU_NONE);
    }
}

static const char *const PRI_LABELS[QUEUE_LEVELS] = {"\"0\"", "\"1\"", "\"2\"", "\"3\"", "\"4\"",
                                                     "\"5\"", "\"6\"", "\"7\"", "\"8\"", "\"9\""};

/* ---- jobs ---- */

enum phase {
    PH_COLLECT,  /* reading the queues, a batch a step */
    PH_FDS,      /* counting the open fds, a batch a step (thousands take ms; proc.h) */
    PH_SERVER,   /* the server's series and the sums (one step) */
    PH_FAMILIES, /* /metrics?queue=: per-queue lines, a batch a step */
    PH_DONE,
};

struct metrics_job {
    const struct server *s;
    enum metrics_format format;
    char *pattern; /* owned; NULL: no per-queue series */
    uint64_t now;
    struct buf names; /* the queue names when the job began, each NUL-terminated */
    size_t *name_off, nnames, next;
    struct snap sn;
    /* kept queues (/metrics?queue=): values and escaped label texts */
    struct qvals *qv;
    size_t *label_off, nkept;
    struct buf labels;
    size_t fam, qi;      /* PH_FAMILIES: the family (QM_COUNT: priority) and queue being written */
    int fam_started;     /* its HELP and TYPE lines are written */
    size_t nqueues_json; /* queues written into the JSON so far */
    enum phase phase;
    struct proc_fds *fds; /* PH_FDS: the count going on */
    long long open_fds;   /* -1: unknown */
    struct buf out;
};

struct metrics_job *metrics_job_new(const struct server *s, enum metrics_format format, const char *pattern)
{
    struct metrics_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->s = s;
    j->format = format;
    j->now = queue_now_ms();
    size_t cap = s->reg->count + 1;
    j->name_off = malloc(cap * sizeof(*j->name_off));
    if (!j->name_off || (pattern && !(j->pattern = strdup(pattern))))
        goto fail;
    if (pattern) {
        j->qv = malloc(cap * sizeof(*j->qv));
        j->label_off = malloc(cap * sizeof(*j->label_off));
        if (!j->qv || !j->label_off)
            goto fail;
    }
    struct list *pos;
    for (pos = s->reg->all.next; pos != &s->reg->all && j->nnames < cap; pos = pos->next) {
        struct queue *q = list_entry(pos, struct queue, all);
        if (!metrics_visible(q))
            continue;
        j->name_off[j->nnames++] = j->names.len;
        if (buf_append(&j->names, q->name, q->name_len + 1) < 0) /* its NUL too */
            goto fail;
    }
    if (format == METRICS_JSON)
        put_str(&j->out, "{\"queues\":{");
    return j;
fail:
    metrics_job_free(j);
    return NULL;
}

void metrics_job_free(struct metrics_job *j)
{
    if (!j)
        return;
    proc_fds_end(j->fds);
    free(j->pattern);
    buf_free(&j->names);
    free(j->name_off);
    free(j->qv);
    free(j->label_off);
    buf_free(&j->labels);
    buf_free(&j->out);
    free(j);
}

/* keys of ours: ASCII, no check needed */
static void json_line(void *ctx, const char *key, uint64_t val)
{
    json_object_set_new_nocheck(ctx, key, json_integer((json_int_t)val));
}

static int dump_to(struct buf *b, const json_t *v)
{
    size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
    if (n == 0 || buf_reserve(b, b->len + n) < 0)
        return -ENOMEM;
    json_dumpb(v, b->data + b->len, n, JSON_COMPACT | JSON_ENCODE_ANY);
    b->len += n;
    return 0;
}

/* One queue into the JSON: "name":{...}, jansson writing the name and the
 * object (a name that is not UTF-8 cannot be a key as it is: left out). */
static void json_queue(struct metrics_job *j, const char *name, size_t len, const struct qvals *v)
{
    json_t *key = json_stringn(name, len), *o = json_object();
    if (key && o) {
        metrics_queue_each(v, json_line, o);
        size_t mark = j->out.len;
        if (j->nqueues_json)
            buf_append(&j->out, ",", 1);
        if (dump_to(&j->out, key) < 0 || buf_append(&j->out, ":", 1) < 0 || dump_to(&j->out, o) < 0)
            j->out.len = mark;
        else
            j->nqueues_json++;
    }
    json_decref(key);
    json_decref(o);
}

static void collect(struct metrics_job *j, size_t budget)
{
    for (; j->next < j->nnames && budget; j->next++, budget--) {
        const char *name = j->names.data + j->name_off[j->next];
        size_t len = strlen(name);
        struct queue *q = registry_find(j->s->reg, name, len);
        if (!q || !metrics_visible(q))
            continue; /* deleted since the job began */
        struct qvals one, *v = &one;
        if (j->pattern && glob_match(j->pattern, name)) {
            v = &j->qv[j->nkept];
            j->label_off[j->nkept++] = j->labels.len;
            put_str(&j->labels, "{queue=\"");
            put_label(&j->labels, name, len);
            put_str(&j->labels, "\"");
        }
        metrics_queue(j->s, q, j->now, v);
        metrics_add(&j->sn, v);
        if (j->format == METRICS_JSON)
            json_queue(j, name, len, v);
    }
}

static void json_server(struct metrics_job *j)
{
    json_t *srv = json_object();
    if (!srv)
        return;
    for (size_t i = 0; i < SM_COUNT; i++) {
        const struct mdef *d = &SDEFS[i];
        if (i == SM_VERSION)
            json_object_set_new_nocheck(srv, d->stat, json_string(DARNER_VERSION));
        else if (d->unit == MU_US)
            json_object_set_new_nocheck(srv, d->stat, json_real((double)j->sn.sv[i] / 1e6));
        else
            json_object_set_new_nocheck(srv, d->stat, json_integer((json_int_t)j->sn.sv[i]));
    }
    json_object_set_new_nocheck(srv, "status", json_string(status_name(j->s->status)));
    put_str(&j->out, "},\"server\":");
    dump_to(&j->out, srv);
    put_str(&j->out, "}");
    json_decref(srv);
}

static void prom_sums(struct metrics_job *j)
{
    struct buf *out = &j->out;
    write_server(j->s, &j->sn, out);
    write_process(j->s, &j->sn, j->open_fds, out);
    for (size_t i = 0; i < QM_COUNT; i++) {
        const struct mdef *d = &QDEFS[i];
        if (!d->prom)
            continue;
        family(out, "darner_", d->prom, kind_name(d->kind), d->help);
        sample(out, "darner_", d->prom, NULL, j->sn.sum.v[i], d->unit);
    }
    family(out, "darner_", "priority_items", "gauge", "Items queued at each priority level (0 most urgent).");
    for (unsigned l = 0; l < QUEUE_LEVELS; l++) {
        if (!j->sn.sum.pri[l])
            continue;
        put_str(out, "darner_priority_items{priority=");
        put_str(out, PRI_LABELS[l]);
        put_str(out, "} ");
        put_u64(out, j->sn.sum.pri[l]);
        buf_append(out, "\n", 1);
    }
}

static void label(struct metrics_job *j, size_t q)
{
    size_t end = q + 1 < j->nkept ? j->label_off[q + 1] : j->labels.len;
    buf_append(&j->out, j->labels.data + j->label_off[q], end - j->label_off[q]);
}

/* Up to budget per-queue lines; returns 1 when every family is written. */
static int prom_families(struct metrics_job *j, size_t budget)
{
    struct buf *out = &j->out;
    while (j->fam < QM_COUNT) {
        const struct mdef *d = &QDEFS[j->fam];
        if (!d->prom) {
            j->fam++;
            continue;
        }
        if (!j->fam_started) { /* once, even when a step ends right after it */
            family(out, "darner_queue_", d->prom, kind_name(d->kind), d->help);
            j->fam_started = 1;
        }
        for (; j->qi < j->nkept && budget; j->qi++, budget--) {
            put_str(out, "darner_queue_");
            put_str(out, d->prom);
            label(j, j->qi);
            put_str(out, "} ");
            put_value(out, j->qv[j->qi].v[j->fam], d->unit);
            buf_append(out, "\n", 1);
        }
        if (j->qi < j->nkept)
            return 0;
        j->fam++;
        j->qi = 0;
        j->fam_started = 0;
    }
    if (!j->fam_started) {
        family(out, "darner_queue_", "priority_items", "gauge", "Items queued at each priority level (0 most urgent).");
        j->fam_started = 1;
    }
    for (; j->qi < j->nkept && budget; j->qi++, budget--) {
        for (unsigned l = 0; l < QUEUE_LEVELS; l++) {
            if (!j->qv[j->qi].pri[l])
                continue;
            put_str(out, "darner_queue_priority_items");
            label(j, j->qi);
            put_str(out, ",priority=");
            put_str(out, PRI_LABELS[l]);
            put_str(out, "} ");
            put_u64(out, j->qv[j->qi].pri[l]);
            buf_append(out, "\n", 1);
        }
    }
    return j->qi == j->nkept;
}

/* Counts up to n open fds; returns 1 when the count is complete (or the
 * platform cannot count them: the series is left out). */
static int count_fds(struct metrics_job *j, size_t n)
{
    if (!j->fds && !(j->fds = proc_fds_begin()))
        return 1;
    uint64_t count;
    if (!proc_fds_step(j->fds, n, &count))
        return 0; /* stopped at the budget: more next step */
    proc_fds_end(j->fds);
    j->fds = NULL;
    j->open_fds = (long long)count;
    return 1;
}

int metrics_job_step(struct metrics_job *j, size_t budget, struct buf *out)
{
    switch (j->phase) {
    case PH_COLLECT:
        /* reading a queue costs about 8 lines' writing; writing its JSON
         * with jansson, 4 times more */
        collect(j, j->format == METRICS_JSON ? (budget / 32 ? budget / 32 : 1) : (budget / 8 ? budget / 8 : 1));
        if (j->next < j->nnames)
            return 0;
        j->phase = j->format == METRICS_PROMETHEUS ? PH_FDS : PH_SERVER;
        j->open_fds = -1;
        return 0;
    case PH_FDS:
        if (count_fds(j, budget / 4 ? budget / 4 : 1))
            j->phase = PH_SERVER;
        return 0;
    case PH_SERVER:
        metrics_server_values(j->s, j->now, &j->sn);
        if (j->format == METRICS_JSON) {
            json_server(j);
            j->phase = PH_DONE;
            break;
        }
        prom_sums(j);
        j->phase = j->pattern ? PH_FAMILIES : PH_DONE;
        if (j->phase == PH_DONE)
            break;
        return 0;
    case PH_FAMILIES:
        if (!prom_families(j, budget))
            return 0;
        j->phase = PH_DONE;
        break;
    case PH_DONE:
        break;
    }
    if (j->out.len == 0 && j->out.cap == 0)
        return -ENOMEM; /* nothing could be written at all */
    *out = j->out;
    j->out = (struct buf){0};
    return 1;
}
