/* tests/crash/crash_check.c: recovery and the checks (see crash_check.h). */
#include "crash_check.h"
#include "util/compat.h"

#include "crash_util.h"
#include "journal/format.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define PROBE_ADD_MS (CM_TAG_BASE - 1) /* the second life's item */
#define PROBE "second life of a recovered journal"

static void viol(struct cc_result *r, const char *fmt, ...) PRINTF_LIKE(2, 3);
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
    /* per tag, enum cm_state bits: CM_LIVE handed out (or dropped as
     * damaged), CM_XFER found in transfer */
    uint8_t *seen;
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

/* Why an item must not come back in state st (enum cm_state) when its
 * class cls does not allow it. */
static const char *why_not(uint8_t cls, uint8_t st, int started)
{
    if (cls == CM_GONE)
        return started ? "its removal was durable" : "it was appended after the crash point";
    return st == CM_LIVE ? "it was in transfer to another queue" : "no move of it to another queue had begun";
}

/* Its delivery count: at least the hand-outs a completed sync point made
 * durable, at most those begun before the crash. */
static void judge_count(struct drain *d, const struct jnl_item *it, uint64_t tag)
{
    uint32_t lo = d->e->dlo[tag], hi = d->e->dhi[tag];
    if (it->deliveries < lo)
        viol(d->r,
             "item %" PRIu64 " (id %" PRIu64 ") came back with delivery count %" PRIu32 ", below the %" PRIu32
             " hand-outs made durable",
             tag, it->id, it->deliveries, lo);
    else if (it->deliveries > hi)
        viol(d->r,
             "item %" PRIu64 " (id %" PRIu64 ") came back with delivery count %" PRIu32 ", above the %" PRIu32
             " hand-outs begun before the crash",
             tag, it->id, it->deliveries, hi);
}

/* Checks one item the recovered journal holds, in state st: CM_LIVE, handed
 * out by jnl_head (prev: the tag handed out before, for the order), or
 * CM_XFER, found in transfer. d->buf holds its payload unless damaged.
 * Returns its tag, or -1 for an item the workload never made. */
static long judge(struct drain *d, const struct jnl_item *it, int damaged, uint8_t st, long prev)
{
    const struct cm_model *m = d->m;
    uint64_t tag = it->add_ms - CM_TAG_BASE;
    if (it->add_ms < CM_TAG_BASE || tag >= m->nit) {
        viol(d->r, "an item that was never appended came back%s: id %" PRIu64 ", %" PRIu64 " bytes, add_ms %" PRIu64,
             st == CM_XFER ? " in transfer" : "", it->id, it->len, it->add_ms);
        return -1;
    }
    uint8_t cls = d->e->cls[tag];
    const char *why = NULL;
    if (damaged && !(cls & CM_GONE)) /* appended before the last sync point, and kept since */
        why = "fails its checksum, but it was durable";
    else if (!damaged && (it->len != m->it[tag].len || it->flags != cm_flags(m, (uint32_t)tag)))
        why = "came back with another length or flags";
    if (!why && !damaged) {
        cm_fill(m, (uint32_t)tag, d->want, (size_t)it->len);
        if (memcmp(d->buf, d->want, (size_t)it->len) != 0)
            why = "came back with other bytes";
    }
    if (why)
        viol(d->r, "item %" PRIu64 " (id %" PRIu64 ") %s", tag, it->id, why);
    if (!(cls & st))
        viol(d->r, "item %" PRIu64 " (id %" PRIu64 ") came back%s, but %s", tag, it->id,
             st == CM_XFER ? " in transfer" : "", why_not(cls, st, tag < d->e->started));
    if (st == CM_LIVE && (long)tag <= prev)
        viol(d->r, "item %" PRIu64 " (id %" PRIu64 ") handed out after item %ld: %s", tag, it->id, prev,
             (long)tag == prev ? "twice" : "out of order");
    if (d->seen[tag] & CM_XFER)
        viol(d->r, "item %" PRIu64 " (id %" PRIu64 ") came back %s, and in transfer before", tag, it->id,
             st == CM_XFER ? "in transfer twice" : "handed out");
    judge_count(d, it, tag);
    d->seen[tag] |= st;
    return (long)tag;
}

/* Reads item it's payload into d->buf. Returns 0, -EBADMSG (damaged: the
 * caller drops it), or another -errno (recorded as a violation). */
static int load(struct drain *d, const struct jnl_item *it)
{
    if (it->len > (UINT64_C(1) << 26)) {
        viol(d->r, "item id %" PRIu64 " claims %" PRIu64 " bytes", it->id, it->len);
        return -EFBIG;
    }
    room(d, (size_t)it->len);
    int rc = jnl_read(d->j, it, 0, d->buf, (size_t)it->len);
    if (rc < 0 && rc != -EBADMSG)
        viol(d->r, "jnl_read of id %" PRIu64 " failed: %s", it->id, strerror(-rc));
    return rc;
}

/* Ends every move recovery found under way, as the registry does when the
 * queue opens (transfer.c: the copy is made in the destination, then
 * jnl_xfer_end), each node checked as an item in transfer first. */
static void drain_xfers(struct drain *d)
{
    struct jnl_node *n;
    for (size_t i = 0; (n = jnl_next_xfer(d->j)) != NULL; i++) {
        if (i > d->m->nit + 64) {
            viol(d->r, "jnl_next_xfer does not end: %zu nodes found in transfer", i);
            return;
        }
        if (n->item.xfer != JF_REASON_BURIED || n->item.xfer_dir != CM_XFER_DIR)
            viol(d->r, "id %" PRIu64 " is in transfer to folder %" PRIu64 " for reason %u, not %d for %d", n->item.id,
                 n->item.xfer_dir, n->item.xfer, CM_XFER_DIR, JF_REASON_BURIED);
        int rc = load(d, &n->item);
        if (rc < 0 && rc != -EBADMSG)
            return;
        judge(d, &n->item, rc == -EBADMSG, CM_XFER, -1);
        d->r->damaged += rc == -EBADMSG;
        d->r->in_xfer++;
        uint64_t id = n->item.id;
        if ((rc = jnl_xfer_end(d->j, n)) < 0) {
            viol(d->r, "jnl_xfer_end of id %" PRIu64 " failed: %s", id, strerror(-rc));
            return;
        }
    }
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
        if ((rc = load(d, &h.item)) < 0 && rc != -EBADMSG)
            return;
        long tag = judge(d, &h.item, rc == -EBADMSG, CM_LIVE, prev);
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

/* Items of class cls that did not come back at all (one violation for
 * them, listed). */
static void report_lost_class(struct drain *d, uint8_t cls, const char *what, const char *why)
{
    char list[160];
    size_t used = 0, lost = 0;
    list[0] = '\0';
    for (size_t t = 0; t < d->m->nit; t++) {
        if (d->e->cls[t] != cls || d->seen[t])
            continue;
        lost++;
        if (used < sizeof(list) - 24)
            used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%zu", used ? " " : "", t);
    }
    if (lost)
        viol(d->r, "%zu %s lost (%s%s): %s", lost, what, list, used >= sizeof(list) - 24 ? " ..." : "", why);
}

/* Every item whose class does not allow it to be gone must have come back
 * (in a state it allows or not: the wrong state is judge()'s). */
static void report_lost(struct drain *d)
{
    report_lost_class(d, CM_MUST, "items", "live at the last completed sync point and untouched since");
    report_lost_class(d, CM_MUST_XFER, "items in transfer",
                      "in transfer at the last completed sync point and untouched since");
    report_lost_class(d, CM_LIVE | CM_XFER, "items",
                      "live or in transfer at the last completed sync point, and no removal under way");
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
    if (jnl_next_xfer(d->j)) {
        viol(d->r, "second life: the drained journal, reopened, has an item in transfer again");
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
        drain_xfers(&d);
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
