/* tests/crash/crash_work.c: the recorded workload (see crash_work.h).
 *
 * It drives the journal the way the server does: a sync point is
 * jnl_sync_fds() followed by an fsync and a close of every fd it returned
 * (sync.c), jnl_maintain() gets the server's sync epochs, a failed sync marks
 * the journal unsynced and undoes the removals it covered (conn_get.c: plain
 * gets and confirms are restored, open gets are given back), and a reopen is
 * a process restart (epochs start again, open items come back, moves to
 * another queue that were under way are finished as transfer.c does). */
#include "crash_work.h"
#include "util/compat.h"

#include "crash_util.h"
#include "journal/format.h"
#include "journal/journal.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_OPEN 8
#define MAX_XFER 4
#define MAX_SYNC_FDS 256

struct slot {
    struct jnl_node *node;
    uint32_t tag;
    int since_sync; /* opened after the last successful sync point */
};

struct undo {
    struct jnl_item item;
    uint32_t tag;
};

/* The live run's state; lives on cw_run()'s stack. */
struct live {
    struct cw_run *w;
    const struct cw_conf *c;
    struct cu_prng p;
    struct jnl *j;
    struct jnl_conf jc;
    struct log log;
    uint64_t ep_next, ep_done; /* the server's sync epochs (registry.c) */
    struct slot open[MAX_OPEN];
    int nopen;
    struct slot xfer[MAX_XFER]; /* moves begun, not yet ended or given up */
    int nxfer;
    struct undo *undo; /* removals since the last successful sync point */
    size_t nundo, capundo;
    unsigned char *buf, *want;
    size_t bufcap;
    unsigned blob_seq;
    int op;        /* the operation running, for messages */
    uint32_t mark; /* events up to here are covered by trace lines */
    int append_pct;
    /* paths owed an fsync, as the registry keeps them (registry.c owe()):
     * files of a failed sync job, synced by path with the next one */
    char **owed;
    size_t nowed, capowed;
};

static uint32_t nev(const struct live *l) { return (uint32_t)l->w->rec.nev; }

static void failf(struct live *l, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void failf(struct live *l, const char *fmt, ...)
{
    if (l->w->failure[0])
        return;
    int n = snprintf(l->w->failure, sizeof(l->w->failure), "live run, operation %d (event %" PRIu32 "): ", l->op,
                     nev(l));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->w->failure + n, sizeof(l->w->failure) - (size_t)n, fmt, ap);
    va_end(ap);
}

static void trace(struct live *l, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void trace(struct live *l, const char *fmt, ...)
{
    if (!l->c->verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "  op %4d events [%5" PRIu32 ", %5" PRIu32 "): ", l->op, l->mark, nev(l));
    l->mark = nev(l);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Grows the payload buffers to n bytes (never leaves them NULL). */
static void room(struct live *l, size_t n)
{
    if (n <= l->bufcap && l->buf)
        return;
    l->bufcap = n ? n : 1;
    l->buf = cu_realloc(l->buf, l->bufcap);
    l->want = cu_realloc(l->want, l->bufcap);
}

/* A payload length: mostly small, some near a segment, some past one. */
static uint32_t pick_len(struct live *l)
{
    uint64_t seg = l->w->segment_size, r = cu_below(&l->p, 100);
    if (r < 25)
        return (uint32_t)cu_range(&l->p, 0, 48);
    if (r < 60)
        return (uint32_t)cu_range(&l->p, 49, 400);
    if (r < 85)
        return (uint32_t)cu_range(&l->p, 401, 1500);
    if (r < 95)
        return (uint32_t)cu_range(&l->p, 1501, seg - 64 - 80);
    return (uint32_t)cu_range(&l->p, seg, 2 * seg);
}

static void maintain(struct live *l)
{
    uint32_t b = nev(l);
    jnl_maintain(l->j, l->ep_next, l->ep_done);
    if (nev(l) != b)
        trace(l, "maintain (sync epochs: next %" PRIu64 ", done %" PRIu64 ")", l->ep_next, l->ep_done);
    l->w->n.maintains++;
}

static void op_append(struct live *l, int blob)
{
    struct cm_model *m = &l->w->model;
    uint32_t len = blob ? (uint32_t)cu_range(&l->p, 1, 3000) : pick_len(l);
    uint32_t tag = cm_new_item(m, len, blob);
    room(l, len);
    cm_fill(m, tag, l->buf, len);
    uint32_t b = nev(l);
    int rc;
    if (!blob) {
        rc = jnl_append(l->j,
                        &(struct jnl_attrs){.flags = cm_flags(m, tag),
                                            .add_ms = CM_TAG_BASE + tag,
                                            .priority = JNL_PRIORITY_DEFAULT},
                        l->buf, len);
    } else {
        char path[PATH_MAX];
        struct jnl_blob *bl;
        snprintf(path, sizeof(path), "%s/tmp/%u.tmp", l->c->root, l->blob_seq++);
        rc = jnl_blob_begin(&l->jc, path, len, &bl);
        for (uint32_t done = 0; rc == 0 && done < len;) {
            uint32_t n = (uint32_t)cu_range(&l->p, 1, len - done);
            rc = jnl_blob_write(bl, l->buf + done, n);
            done += n;
        }
        if (rc == 0)
            rc = jnl_append_blob(l->j, bl,
                                 &(struct jnl_attrs){.flags = cm_flags(m, tag),
                                                     .add_ms = CM_TAG_BASE + tag,
                                                     .priority = JNL_PRIORITY_DEFAULT});
        else
            jnl_blob_discard(bl);
    }
    trace(l, "append%s tag %" PRIu32 " len %" PRIu32 ": %d", blob ? " blob" : "", tag, len, rc);
    if (rc < 0) {
        failf(l, "append of %" PRIu32 " bytes failed: %s", len, strerror(-rc));
        return;
    }
    cm_set(m, tag, b, nev(l), CM_LIVE);
    l->w->n.appends++;
    l->w->n.blobs += blob;
}

/* Checks an item the journal holds against the model's item tag: length,
 * flags, delivery count (the live run knows every hand-out), and bytes.
 * what names it in messages. Returns 0, or -1 on a failure (recorded). */
static int check_item(struct live *l, const struct jnl_item *it, uint64_t tag, const char *what)
{
    struct cm_model *m = &l->w->model;
    const struct cm_item *ci = &m->it[tag];
    if (it->len != ci->len || it->flags != cm_flags(m, (uint32_t)tag)) {
        failf(l, "%s item %" PRIu64 " has length %" PRIu64 " and flags %" PRIu32 ", not %" PRIu32 " and %" PRIu32, what,
              tag, it->len, it->flags, ci->len, cm_flags(m, (uint32_t)tag));
        return -1;
    }
    if (it->deliveries != ci->nho) {
        failf(l, "%s item %" PRIu64 " (id %" PRIu64 ") has delivery count %" PRIu32 ", but it was handed out %zu times",
              what, tag, it->id, it->deliveries, ci->nho);
        return -1;
    }
    room(l, ci->len);
    int rc = jnl_read(l->j, it, 0, l->buf, ci->len);
    if (rc < 0) {
        failf(l, "jnl_read of %s item %" PRIu64 " (id %" PRIu64 ", segment %" PRIu64 ") failed: %s", what, tag, it->id,
              it->seg, strerror(-rc));
        return -1;
    }
    cm_fill(m, (uint32_t)tag, l->want, ci->len);
    if (memcmp(l->buf, l->want, ci->len) != 0) {
        failf(l, "%s item %" PRIu64 " reads back altered", what, tag);
        return -1;
    }
    return 0;
}

/* Reads the journal's head and checks it against the model: the right item,
 * intact. Returns its tag, -1 when both agree the queue is empty, -2 on a
 * failure (recorded). */
static long check_head(struct live *l, struct jnl_head *h)
{
    struct cm_model *m = &l->w->model;
    long want = cm_head(m);
    int rc = jnl_head(l->j, h);
    if (rc == -ENOENT && want < 0)
        return -1;
    if (rc == -ENOENT) {
        failf(l, "jnl_head says the queue is empty, but item %ld is live", want);
        return -2;
    }
    if (rc < 0) {
        failf(l, "jnl_head failed: %s", strerror(-rc));
        return -2;
    }
    uint64_t tag = h->item.add_ms - CM_TAG_BASE;
    if (h->item.add_ms < CM_TAG_BASE || tag >= m->nit || (long)tag != want) {
        failf(l, "jnl_head hands out item %" PRIu64 " (id %" PRIu64 ")%s, the model expects %ld", tag, h->item.id,
              tag < m->nit && m->it[tag].state == CM_XFER ? ", which is in transfer" : "", want);
        return -2;
    }
    return check_item(l, &h->item, tag, "the head") < 0 ? -2 : (long)tag;
}

static void add_undo(struct live *l, const struct jnl_item *it, uint32_t tag)
{
    CU_GROW(l->undo, l->nundo, l->capundo);
    l->undo[l->nundo++] = (struct undo){.item = *it, .tag = tag};
}

static void op_get(struct live *l, int open)
{
    struct jnl_head h;
    long tag = check_head(l, &h);
    if (tag < 0)
        return;
    struct cm_model *m = &l->w->model;
    int rc;
    if (open && l->nopen < MAX_OPEN) {
        struct slot *s = &l->open[l->nopen];
        uint32_t b = nev(l);
        rc = jnl_hold_head(l->j, &h, s, &s->node);
        trace(l, "open tag %ld (id %" PRIu64 "): %d", tag, h.item.id, rc);
        if (rc < 0) {
            failf(l, "jnl_hold_head failed: %s", strerror(-rc));
            return;
        }
        s->tag = (uint32_t)tag;
        s->since_sync = 1;
        l->nopen++;
        m->it[tag].open = 1;
        cm_hand_out(m, (uint32_t)tag, b);
        l->w->n.opens++;
    } else {
        uint32_t b = nev(l);
        rc = jnl_remove_head(l->j, &h);
        trace(l, "get tag %ld (id %" PRIu64 "%s): %d", tag, h.item.id, h.node ? ", given back" : "", rc);
        if (rc < 0) {
            failf(l, "jnl_remove_head failed: %s", strerror(-rc));
            return;
        }
        cm_set(m, (uint32_t)tag, b, nev(l), CM_GONE);
        add_undo(l, &h.item, (uint32_t)tag);
        l->w->n.gets++;
    }
    if (cu_chance(&l->p, 80)) /* as queue_get() does after each get */
        maintain(l);
}

static void drop_slot(struct live *l, int i) { l->open[i] = l->open[--l->nopen]; }

static void op_confirm(struct live *l)
{
    int i = (int)cu_below(&l->p, (uint64_t)l->nopen);
    struct slot s = l->open[i];
    struct jnl_item it = s.node->item;
    uint32_t b = nev(l);
    int rc = jnl_confirm(l->j, s.node);
    trace(l, "confirm tag %" PRIu32 " (id %" PRIu64 "): %d", s.tag, it.id, rc);
    if (rc < 0) {
        failf(l, "jnl_confirm failed: %s", strerror(-rc));
        return;
    }
    drop_slot(l, i);
    cm_set(&l->w->model, s.tag, b, nev(l), CM_GONE);
    add_undo(l, &it, s.tag);
    l->w->n.confirms++;
    if (cu_chance(&l->p, 80))
        maintain(l);
}

static void release_slot(struct live *l, int i)
{
    trace(l, "release tag %" PRIu32, l->open[i].tag);
    jnl_release(l->j, l->open[i].node);
    l->w->model.it[l->open[i].tag].open = 0;
    drop_slot(l, i);
    l->w->n.releases++;
}

/* Remembers a path the next sync point syncs (jnl_sync_failed's callback). */
static void owe(void *ctx, const char *path)
{
    struct live *l = ctx;
    if (l->nowed == l->capowed) {
        size_t cap = l->capowed ? l->capowed * 2 : 16;
        char **a = realloc(l->owed, cap * sizeof(*a));
        if (!a) {
            failf(l, "out of memory");
            return;
        }
        l->owed = a;
        l->capowed = cap;
    }
    if (!(l->owed[l->nowed] = strdup(path))) {
        failf(l, "out of memory");
        return;
    }
    l->nowed++;
}

/* A sync point, as sync.c runs one. A failed one fsyncs a random prefix of
 * the fds, then reports failure: the journal is marked unsynced, and the
 * removals it covered are undone as conn_get.c does (some connections'
 * removals: not every one waited for the sync). */
static void op_sync(struct live *l, int fail)
{
    const struct jio *io = &l->w->rec.io;
    int fds[MAX_SYNC_FDS];
    uint32_t start = nev(l);
    int n = jnl_sync_fds(l->j, fds, MAX_SYNC_FDS);
    if (n < 0) {
        failf(l, "jnl_sync_fds failed: %s", strerror(-n));
        return;
    }
    uint64_t epoch = l->ep_next++;
    /* the job: its fds, then the paths owed (sync.c work_cb) */
    char **paths = l->owed;
    size_t npaths = l->nowed;
    l->owed = NULL;
    l->nowed = l->capowed = 0;
    int upto = fail ? (int)cu_below(&l->p, (uint64_t)n + npaths + 1) : n + (int)npaths;
    for (int i = 0; i < n; i++) {
        int rc = i < upto ? io->fsync(io->ctx, fds[i]) : 0;
        io->close(io->ctx, fds[i]);
        if (rc < 0)
            failf(l, "fsync failed: %s", strerror(-rc));
    }
    for (size_t i = 0; i < npaths; i++) {
        if ((int)(n + i) < upto) {
            int rc = jio_fsync_path(io, paths[i]);
            if (rc < 0 && rc != -ENOENT)
                failf(l, "fsync of %s failed: %s", paths[i], strerror(-rc));
        }
        if (fail) /* given back, as registry_give_back_owed() */
            owe(l, paths[i]);
        free(paths[i]);
    }
    free(paths);
    trace(l, "%s sync of %d fds (epoch %" PRIu64 ")", fail ? "failed" : "completed", n, epoch);
    if (!fail) {
        l->ep_done = epoch;
        cm_sync(&l->w->model, start, nev(l));
        l->nundo = 0;
        for (int i = 0; i < l->nopen; i++)
            l->open[i].since_sync = 0;
        l->w->n.syncs++;
        jnl_sync_done(l->j); /* registry_after_sync() */
        if (jnl_reap_pending(l->j))
            maintain(l);
        return;
    }
    l->w->n.failed_syncs++;
    jnl_sync_failed(l->j, owe, l); /* registry_mark_unsynced() */
    for (int i = l->nopen - 1; i >= 0; i--)
        if (l->open[i].since_sync && cu_chance(&l->p, 60))
            release_slot(l, i);
    for (size_t i = l->nundo; i-- > 0;) {
        if (!cu_chance(&l->p, 70))
            continue;
        uint32_t b = nev(l);
        int rc = jnl_restore(l->j, &l->undo[i].item);
        trace(l, "restore tag %" PRIu32 " (id %" PRIu64 "): %d", l->undo[i].tag, l->undo[i].item.id, rc);
        if (rc < 0) {
            failf(l, "jnl_restore failed: %s", strerror(-rc));
            return;
        }
        cm_set(&l->w->model, l->undo[i].tag, b, nev(l), CM_LIVE);
        l->w->n.restores++;
    }
    l->nundo = 0;
}

/* Ends the move of node n (item tag), as transfer.c does once the copy is
 * the destination's last entry (end: CONFIRM, written now), or gives it up
 * (cancel: a RESTORE, queued): the item is gone, or live here again. */
static void xfer_finish_node(struct live *l, struct jnl_node *n, uint32_t tag, int end)
{
    uint64_t id = n->item.id;
    uint32_t b = nev(l);
    int rc = end ? jnl_xfer_end(l->j, n) : jnl_xfer_cancel(l->j, n);
    trace(l, "xfer %s tag %" PRIu32 " (id %" PRIu64 "): %d", end ? "end" : "cancel", tag, id, rc);
    if (rc < 0) {
        failf(l, "jnl_xfer_%s failed: %s", end ? "end" : "cancel", strerror(-rc));
        return;
    }
    cm_set(&l->w->model, tag, b, nev(l), end ? CM_GONE : CM_LIVE);
    l->w->n.xfer_ends += end;
    l->w->n.xfer_cancels += !end;
}

static void xfer_finish(struct live *l, int i)
{
    struct slot s = l->xfer[i];
    l->xfer[i] = l->xfer[--l->nxfer];
    xfer_finish_node(l, s.node, s.tag, cu_chance(&l->p, 70));
    if (cu_chance(&l->p, 80)) /* as move_head() does after a move */
        maintain(l);
}

/* Checks node n the journal holds for a move of item tag: the destination
 * and reason it was given, and the item itself. Returns 0 or -1 (recorded). */
static int check_xfer_node(struct live *l, const struct jnl_node *n, uint64_t tag, const char *what)
{
    if (n->item.xfer != JF_REASON_BURIED || n->item.xfer_dir != CM_XFER_DIR) {
        failf(l, "%s item %" PRIu64 " (id %" PRIu64 ") goes to folder %" PRIu64 " for reason %u, not %d for %d", what,
              tag, n->item.id, n->item.xfer_dir, n->item.xfer, CM_XFER_DIR, JF_REASON_BURIED);
        return -1;
    }
    return check_item(l, &n->item, tag, what);
}

/* Starts moving an item to another queue, as get q/bury and the dead-letter
 * give-back do: an item held open, or the head (a given-back node, or the
 * record at the cursor). Its XFER is written now. The move ends at once or a
 * few operations later (xfer_finish), so that sync points, checkpoints and
 * reopens fall between its writes. */
static void op_xfer_begin(struct live *l)
{
    struct cm_model *m = &l->w->model;
    struct jnl_head h;
    long tag;
    if (l->nxfer == MAX_XFER) {
        xfer_finish(l, (int)cu_below(&l->p, (uint64_t)l->nxfer));
        return;
    }
    if (l->nopen && cu_chance(&l->p, 30)) {
        int i = (int)cu_below(&l->p, (uint64_t)l->nopen);
        h = (struct jnl_head){.item = l->open[i].node->item, .node = l->open[i].node};
        tag = l->open[i].tag;
        drop_slot(l, i);
    } else if ((tag = check_head(l, &h)) < 0) {
        return;
    }
    const char *from = !h.node ? "at the cursor" : h.node->owner ? "open" : "given back";
    struct slot *s = &l->xfer[l->nxfer];
    uint32_t b = nev(l);
    int rc = jnl_xfer_begin(l->j, &h, &(struct jnl_xfer){.dir = CM_XFER_DIR, .id = 1, .reason = JF_REASON_BURIED},
                            &s->node);
    trace(l, "xfer begin tag %ld (id %" PRIu64 ", %s): %d", tag, h.item.id, from, rc);
    if (rc < 0) {
        failf(l, "jnl_xfer_begin failed: %s", strerror(-rc));
        return;
    }
    cm_set(m, (uint32_t)tag, b, nev(l), CM_XFER);
    s->tag = (uint32_t)tag;
    l->nxfer++;
    l->w->n.xfers++;
    if (check_xfer_node(l, s->node, (uint64_t)tag, "a moving") == 0 && cu_chance(&l->p, 40))
        xfer_finish(l, l->nxfer - 1);
}

/* After a reopen: every node in transfer must be an item the model has in
 * transfer, carrying its destination, reason and count, and none may be
 * missing. Each move is then finished as transfer.c does at open (the copy
 * taken as made, or the move given up). */
static void xfer_reopened(struct live *l)
{
    struct cm_model *m = &l->w->model;
    size_t want = 0, found = 0;
    for (size_t t = 0; t < m->nit; t++)
        want += m->it[t].state == CM_XFER;
    struct jnl_node *n;
    while (!l->w->failure[0] && (n = jnl_next_xfer(l->j)) != NULL) {
        uint64_t tag = n->item.add_ms - CM_TAG_BASE;
        if (found++ == want || n->item.add_ms < CM_TAG_BASE || tag >= m->nit || m->it[tag].state != CM_XFER) {
            failf(l, "after a reopen, jnl_next_xfer finds item %" PRIu64 " (id %" PRIu64 "), which is not in transfer",
                  tag, n->item.id);
            return;
        }
        if (check_xfer_node(l, n, tag, "a reopened moving") < 0)
            return;
        l->w->n.xfer_reopened++;
        xfer_finish_node(l, n, (uint32_t)tag, cu_chance(&l->p, 70));
    }
    if (!l->w->failure[0] && found != want)
        failf(l, "after a reopen, %zu items are in transfer, but %zu should be", found, want);
}

static void op_clear(struct live *l)
{
    struct cm_model *m = &l->w->model;
    uint32_t b = nev(l);
    int rc = jnl_clear(l->j);
    trace(l, "clear: %d", rc);
    if (rc < 0) {
        failf(l, "jnl_clear failed: %s", strerror(-rc));
        return;
    }
    for (size_t t = 0; t < m->nit; t++) /* items in transfer too: their nodes go */
        if (m->it[t].state != CM_GONE)
            cm_set(m, (uint32_t)t, b, nev(l), CM_GONE);
    l->nopen = 0; /* jnl_clear freed the nodes */
    l->nxfer = 0;
    l->nundo = 0;
    l->w->n.clears++;
    if (cu_chance(&l->p, 80))
        maintain(l);
}

/* A process restart: close without syncing (kill -9 keeps the page cache),
 * then open as start-up does. Open items come back as given back; items in
 * transfer come back in transfer, and the moves are finished. */
static void op_reopen(struct live *l)
{
    if (cu_chance(&l->p, 50))
        op_sync(l, 0);
    jnl_close(l->j);
    l->j = NULL;
    int rc = jnl_open(&l->j, &l->jc, l->w->qdir, 0);
    trace(l, "reopen: %d", rc);
    if (rc < 0) {
        failf(l, "jnl_open of the live journal failed: %s", strerror(-rc));
        return;
    }
    for (int i = 0; i < l->nopen; i++)
        l->w->model.it[l->open[i].tag].open = 0;
    l->nopen = 0;
    l->nxfer = 0; /* their nodes are new ones now */
    l->nundo = 0;
    l->ep_next = 1;
    l->ep_done = 0;
    l->w->n.reopens++;
    xfer_reopened(l);
}

/* One operation, drawn by weight (per mille; appends take what the phase
 * gives them). */
static void step(struct live *l)
{
    if (l->op % 50 == 0) /* phases: the queue grows, then drains */
        l->append_pct = (int)cu_range(&l->p, 15, 45);
    int r = (int)cu_below(&l->p, 1000) - l->append_pct * 10;
    if (r < 0)
        op_append(l, 0);
    else if ((r -= 25) < 0)
        op_append(l, 1);
    else if ((r -= 195) < 0)
        op_get(l, 0);
    else if ((r -= 90) < 0)
        op_get(l, 1);
    else if ((r -= 80) < 0)
        l->nopen ? op_confirm(l) : op_get(l, 0);
    else if ((r -= 40) < 0 && l->nopen)
        release_slot(l, (int)cu_below(&l->p, (uint64_t)l->nopen));
    else if (r < 0)
        ; /* nothing open to give back */
    else if ((r -= 35) < 0)
        op_xfer_begin(l);
    else if ((r -= 30) < 0 && l->nxfer)
        xfer_finish(l, (int)cu_below(&l->p, (uint64_t)l->nxfer));
    else if (r < 0)
        ; /* no move under way */
    else if ((r -= 150) < 0)
        op_sync(l, cu_chance(&l->p, 12));
    else if ((r -= 40) < 0)
        maintain(l);
    else if ((r -= 7) < 0)
        op_clear(l);
    else if ((r -= 15) < 0)
        op_reopen(l);
    else
        op_append(l, 0);
}

int cw_run(struct cw_run *w, const struct cw_conf *c)
{
    static const uint64_t seg_sizes[] = {2048, 4096, 4096, 8192};
    static const uint64_t compact[] = {256, 512, 1024, 4096};
    struct live l = {.w = w, .c = c, .p = {c->seed}, .ep_next = 1, .log = {LOG_WARN, stderr}};
    char path[PATH_MAX];
    int rc, fd;
    *w = (struct cw_run){0};
    cm_init(&w->model, c->seed);
    if ((rc = cf_init(&w->rec, c->root, c->lie)) < 0) {
        snprintf(w->failure, sizeof(w->failure), "harness: bad root %s", c->root);
        return rc;
    }
    const struct jio *io = &w->rec.io;
    w->segment_size = seg_sizes[cu_below(&l.p, 4)];
    w->ack_compact_bytes = compact[cu_below(&l.p, 4)];
    snprintf(w->qdir, sizeof(w->qdir), "%s/q", c->root);
    l.jc = (struct jnl_conf){.io = io,
                             .log = c->verbose ? &l.log : NULL,
                             .segment_size = w->segment_size,
                             .ack_compact_bytes = w->ack_compact_bytes};
    if (c->verbose)
        fprintf(stderr, "workload seed %" PRIu64 ": segment size %" PRIu64 ", ack_compact_bytes %" PRIu64 "\n", c->seed,
                w->segment_size, w->ack_compact_bytes);
    if ((rc = jnl_open(&l.j, &l.jc, w->qdir, 1)) < 0) {
        snprintf(w->failure, sizeof(w->failure), "harness: cannot create the journal: %s", strerror(-rc));
        goto out;
    }
    w->qdir_ino = cf_lookup(&w->rec, 0, "q");
    /* The journal syncs its own folder, never the entry naming it: that is
     * its creator's job (the registry's), done here once, with tmp/. */
    snprintf(path, sizeof(path), "%s/tmp", c->root);
    if ((rc = io->mkdir(io->ctx, path, 0755)) < 0 ||
        (rc = fd = io->open(io->ctx, c->root, O_RDONLY | O_DIRECTORY, 0)) < 0) {
        snprintf(w->failure, sizeof(w->failure), "harness: cannot prepare %s: %s", c->root, strerror(-rc));
        goto out;
    }
    rc = io->fsync(io->ctx, fd);
    io->close(io->ctx, fd);
    if (rc < 0) {
        snprintf(w->failure, sizeof(w->failure), "harness: cannot sync %s: %s", c->root, strerror(-rc));
        goto out;
    }
    for (l.op = 0; l.op < c->nops && !w->failure[0] && !w->rec.err[0]; l.op++)
        step(&l);
    rc = 0;
    if (w->rec.err[0]) {
        snprintf(w->failure, sizeof(w->failure), "harness: recorder out of step: %s", w->rec.err);
        rc = -EPROTO;
    }
out:
    jnl_close(l.j);
    for (size_t i = 0; i < l.nowed; i++)
        free(l.owed[i]);
    free(l.owed);
    free(l.undo);
    free(l.buf);
    free(l.want);
    return rc;
}

void cw_free(struct cw_run *w)
{
    cf_free(&w->rec);
    cm_free(&w->model);
}
