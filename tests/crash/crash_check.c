/* tests/crash/crash_check.c: recovery and the checks (see crash_check.h). */
#include "crash_check.h"

#include "crash_util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define PROBE_ADD_MS (CM_TAG_BASE - 1) /* the second life's item */
#define PROBE "second life of a recovered journal"

static void viol(struct cc_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void viol(struct cc_result *r, const char *fmt, ...)
{
    if (r->nviol < CC_MAX_MSGS) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->msg[r->nviol], sizeof(r->msg[0]), fmt, ap);
        va_end(ap);
    }
    r->nviol++;
}

struct drain {
    struct jnl *j;
    const struct cm_model *m;
    const struct cm_expect *e;
    struct cc_result *r;
    unsigned char *buf, *want;
    size_t cap;
    uint8_t *seen; /* per tag: handed out, or dropped as damaged */
};

/* Grows the payload buffers to n bytes (never leaves them NULL, so even an
 * empty payload has somewhere to go). */
static void room(struct drain *d, size_t n)
{
    if (n <= d->cap && d->buf)
        return;
    d->cap = n ? n : 1;
    d->buf = cu_realloc(d->buf, d->cap);
    d->want = cu_realloc(d->want, d->cap);
}

/* Checks one item the recovered journal hands out. Returns its tag, or -1
 * for an item the workload never made. */
static long judge(struct drain *d, const struct jnl_head *h, int damaged, long prev)
{
    const struct cm_model *m = d->m;
    uint64_t tag = h->item.add_ms - CM_TAG_BASE;
    if (h->item.add_ms < CM_TAG_BASE || tag >= m->nit) {
        viol(d->r, "an item that was never appended came back: id %" PRIu64 ", %" PRIu64 " bytes, add_ms %" PRIu64,
             h->item.id, h->item.len, h->item.add_ms);
        return -1;
    }
    const char *why = NULL;
    if (damaged && d->e->cls[tag] == CM_MUST)
        why = "fails its checksum, but it was durable";
    else if (!damaged && (h->item.len != m->it[tag].len || h->item.flags != cm_flags(m, (uint32_t)tag)))
        why = "came back with another length or flags";
    if (!why && !damaged) {
        cm_fill(m, (uint32_t)tag, d->want, (size_t)h->item.len);
        if (memcmp(d->buf, d->want, (size_t)h->item.len) != 0)
            why = "came back with other bytes";
    }
    if (why)
        viol(d->r, "item %" PRIu64 " (id %" PRIu64 ") %s", tag, h->item.id, why);
    if (d->e->cls[tag] == CM_MUSTNOT)
        viol(d->r, "item %" PRIu64 " (id %" PRIu64 ") came back, but %s", tag, h->item.id,
             tag < d->e->started ? "its removal was durable" : "it was appended after the crash point");
    if ((long)tag <= prev)
        viol(d->r, "item %" PRIu64 " (id %" PRIu64 ") handed out after item %ld: %s", tag, h->item.id, prev,
             (long)tag == prev ? "twice" : "out of order");
    d->seen[tag] = 1;
    return (long)tag;
}

/* Drains the journal as a consumer would. */
static void drain(struct drain *d)
{
    long prev = -1;
    for (size_t n = 0;; n++) {
        struct jnl_head h;
        if (n > d->m->nit + 64) {
            viol(d->r, "the drain does not end: %zu items handed out", n);
            return;
        }
        int rc = jnl_head(d->j, &h);
        if (rc == -ENOENT)
            return;
        if (rc < 0) {
            viol(d->r, "jnl_head failed after %zu items: %s", d->r->drained, strerror(-rc));
            return;
        }
        if (h.item.len > (UINT64_C(1) << 26)) {
            viol(d->r, "item id %" PRIu64 " claims %" PRIu64 " bytes", h.item.id, h.item.len);
            return;
        }
        room(d, (size_t)h.item.len);
        rc = jnl_read(d->j, &h.item, 0, d->buf, (size_t)h.item.len);
        if (rc < 0 && rc != -EBADMSG) {
            viol(d->r, "jnl_read of id %" PRIu64 " failed: %s", h.item.id, strerror(-rc));
            return;
        }
        long tag = judge(d, &h, rc == -EBADMSG, prev);
        if (tag >= 0)
            prev = tag;
        d->r->damaged += rc == -EBADMSG;
        d->r->drained += rc == 0;
        if ((rc = jnl_remove_head(d->j, &h)) < 0) {
            viol(d->r, "jnl_remove_head of id %" PRIu64 " failed: %s", h.item.id, strerror(-rc));
            return;
        }
    }
}

static void report_lost(struct drain *d)
{
    char list[160];
    size_t used = 0, lost = 0;
    list[0] = '\0';
    for (size_t t = 0; t < d->m->nit; t++) {
        if (d->e->cls[t] != CM_MUST || d->seen[t])
            continue;
        lost++;
        if (used < sizeof(list) - 24)
            used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%zu", used ? " " : "", t);
    }
    if (lost)
        viol(d->r, "%zu items lost (%s%s): live at the last completed sync point and untouched since", lost, list,
             used >= sizeof(list) - 24 ? " ..." : "");
}

/* The drained journal must stay drained across a reopen, and take and keep
 * a new item. A folder that held no journal (-ENOENT) is started over as an
 * empty one first, as the registry does: whatever files a power cut left in
 * it must not disturb the new journal either. */
static void second_life(struct drain *d, const struct jnl_conf *jc, const char *dir)
{
    struct jnl_head h;
    int rc, fresh = !d->j;
    if (d->j) {
        jnl_close(d->j);
        d->j = NULL;
        if ((rc = jnl_open(&d->j, jc, dir, 0)) < 0) {
            viol(d->r, "second life: reopening the drained journal failed: %s", strerror(-rc));
            return;
        }
    } else if ((rc = jnl_open(&d->j, jc, dir, 1)) < 0) {
        viol(d->r, "second life: starting an empty journal in the folder failed: %s", strerror(-rc));
        return;
    }
    if ((rc = jnl_head(d->j, &h)) != -ENOENT) {
        viol(d->r, "second life: %s, %s (id %" PRIu64 ", add_ms %" PRIu64 ")",
             fresh ? "jnl_open found no journal, but opening it with create" : "the drained journal, reopened,",
             rc == 0 ? "hands out an item" : "fails", rc == 0 ? h.item.id : 0, rc == 0 ? h.item.add_ms : 0);
        return;
    }
    if ((rc = jnl_append(d->j, &(struct jnl_attrs){.add_ms = PROBE_ADD_MS, .priority = JNL_PRIORITY_DEFAULT}, PROBE,
                         sizeof(PROBE))) < 0) {
        viol(d->r, "second life: appending failed: %s", strerror(-rc));
        return;
    }
    jnl_close(d->j);
    d->j = NULL;
    if ((rc = jnl_open(&d->j, jc, dir, 0)) < 0) {
        viol(d->r, "second life: reopening after an append failed: %s", strerror(-rc));
        return;
    }
    char got[sizeof(PROBE)];
    if ((rc = jnl_head(d->j, &h)) < 0 || h.item.add_ms != PROBE_ADD_MS || h.item.len != sizeof(PROBE) ||
        jnl_read(d->j, &h.item, 0, got, sizeof(got)) < 0 || memcmp(got, PROBE, sizeof(got)) != 0)
        viol(d->r, "second life: the item appended after recovery is not handed out after a reopen (%s)",
             rc < 0 ? strerror(-rc) : "another item, or other bytes");
}

void cc_check(const char *dir, const struct jnl_conf *conf, const struct cm_model *m, const struct cm_expect *e,
              struct cc_result *out)
{
    struct jnl_conf jc = *conf;
    struct drain d = {.m = m, .e = e, .r = out, .seen = cu_calloc(m->nit, 1)};
    *out = (struct cc_result){0};
    jc.io = jio_posix();
    int rc = jnl_open(&d.j, &jc, dir, 0);
    if (rc == -ENOENT) {
        out->no_journal = 1;
        if (e->acked_any)
            viol(out, "no journal (jnl_open: %s), though items were acknowledged durable", strerror(-rc));
    } else if (rc < 0) {
        viol(out, "recovery failed: jnl_open: %s", strerror(-rc));
    } else {
        drain(&d);
    }
    report_lost(&d);
    struct stat st;
    if (out->nviol == 0 && (d.j || stat(dir, &st) == 0))
        second_life(&d, &jc, dir);
    jnl_close(d.j);
    free(d.buf);
    free(d.want);
    free(d.seen);
}
