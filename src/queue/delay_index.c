/* queue/delay_index.c: a delay bucket's index. Its entries (due time, id,
 * place: 32 bytes) are read from the bucket's journal in steps and sorted
 * in chunks of DCHUNK into run files, unlinked once open; a merge reads
 * each through a window of DWIN entries. Items set into a bucket already
 * indexed go to a heap, sorted into one more run when it holds DHEAP_MAX.
 * So its memory is bounded whatever the number of items. */
#include "queue/delay_int.h"

#include "queue/registry.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int key_cmp(uint64_t due_a, uint64_t id_a, uint64_t due_b, uint64_t id_b)
{
    return due_a != due_b ? (due_a < due_b ? -1 : 1) : id_a != id_b ? (id_a < id_b ? -1 : 1) : 0;
}

int dent_cmp(const void *a, const void *b)
{
    const struct dent *x = a, *y = b;
    return key_cmp(x->due, x->id, y->due, y->id);
}

static int after_done(const struct dbucket *d, uint64_t due, uint64_t id)
{
    return !d->done.id || key_cmp(due, id, d->done.due, d->done.id) > 0;
}

/* ---- the heap of items set into an indexed bucket ---- */

static void heap_up(struct dent *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (dent_cmp(&h[p], &h[i]) <= 0)
            break;
        struct dent t = h[p];
        h[p] = h[i];
        h[i] = t;
        i = p;
    }
}

static void heap_down(struct dent *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && dent_cmp(&h[l], &h[m]) < 0)
            m = l;
        if (l + 1 < n && dent_cmp(&h[l + 1], &h[m]) < 0)
            m = l + 1;
        if (m == i)
            return;
        struct dent t = h[m];
        h[m] = h[i];
        h[i] = t;
        i = m;
    }
}

/* ---- runs ---- */

static void run_free(const struct jio *io, struct drun *r)
{
    if (r && r->fd >= 0)
        io->close(io->ctx, r->fd);
    free(r);
}

/* A new empty run file of bucket b, added to its runs (*out: owned by
 * them). Returns 0 or -errno. */
static int run_new(struct queue *b, struct drun **out)
{
    struct dbucket *d = b->bucket;
    const struct jio *io = b->reg->jconf.io;
    char path[PATH_MAX];
    /* ".tmp": derived from the segments, removed when the journal next opens */
    if (snprintf(path, sizeof(path), "%s/run-%06" PRIu64 ".idx.tmp", b->dir, d->run_seq++) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    if (d->nruns == d->caprun) {
        size_t cap = d->caprun ? d->caprun * 2 : 4;
        struct drun **p = realloc(d->runs, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        d->runs = p;
        d->caprun = cap;
    }
    struct drun *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->fd = io->open(io->ctx, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (r->fd < 0) {
        int rc = r->fd;
        free(r);
        return rc;
    }
    io->unlink(io->ctx, path); /* the open fd keeps it: nothing to clean up after a crash */
    d->runs[d->nruns++] = r;
    *out = r;
    return 0;
}

/* Appends n sorted entries, all after its last, to run r. */
static int run_append(const struct jio *io, struct drun *r, const struct dent *e, size_t n)
{
    int rc = n ? jio_pwrite_all(io, r->fd, e, n * sizeof(*e), (off_t)(r->n * sizeof(*e))) : 0;
    if (rc == 0)
        r->n += n;
    return rc;
}

/* Takes run r off bucket d's runs (and its merge) and closes it. */
static void run_drop(const struct jio *io, struct dbucket *d, struct drun *r)
{
    for (size_t i = 0; i < d->nruns; i++)
        if (d->runs[i] == r) {
            d->runs[i] = d->runs[--d->nruns];
            break;
        }
    for (size_t i = 0; i < d->nmsrc; i++)
        if (d->msrc[i] == r) {
            d->msrc[i] = d->msrc[--d->nmsrc];
            break;
        }
    if (r == d->spill)
        d->spill = NULL;
    run_free(io, r);
}

/* Takes run r's head entry; a run spent is closed (not the one a merge
 * writes: more comes). */
static void run_advance(const struct jio *io, struct dbucket *d, struct drun *r)
{
    if (++r->wpos == r->wlen && r->next >= r->n && r != d->mout)
        run_drop(io, d, r);
}

/* Sorts n entries and writes them as a new run file of bucket b. */
static int run_write(struct queue *b, struct dent *e, size_t n)
{
    const struct jio *io = b->reg->jconf.io;
    struct drun *r;
    if (n == 0)
        return 0;
    qsort(e, n, sizeof(*e), dent_cmp);
    int rc = run_new(b, &r);
    if (rc == 0 && (rc = run_append(io, r, e, n)) < 0)
        run_drop(io, b->bucket, r);
    return rc;
}

/* The run's next entry (its window refilled when empty), or NULL. */
static const struct dent *run_head(const struct jio *io, struct drun *r, int *err)
{
    if (r->wpos < r->wlen)
        return &r->win[r->wpos];
    if (r->next >= r->n)
        return NULL;
    size_t k = r->n - r->next < DWIN ? (size_t)(r->n - r->next) : DWIN;
    int rc = jio_pread_all(io, r->fd, r->win, k * sizeof(struct dent), (off_t)(r->next * sizeof(struct dent)));
    if (rc < 0) {
        *err = rc;
        return NULL;
    }
    r->next += k;
    r->wpos = 0;
    r->wlen = k;
    return &r->win[0];
}

const struct dent *dindex_head(struct queue *b, size_t *src, int *err)
{
    struct dbucket *d = b->bucket;
    const struct jio *io = b->reg->jconf.io;
    const struct dent *best = d->nheap ? &d->heap[0] : NULL;
    *src = d->nruns;
    for (size_t i = 0; i < d->nruns; i++) {
        const struct dent *h = run_head(io, d->runs[i], err);
        if (h && (!best || dent_cmp(h, best) < 0)) {
            best = h;
            *src = i;
        }
    }
    return best;
}

void dindex_pop(struct queue *b, size_t src)
{
    struct dbucket *d = b->bucket;
    if (src == d->nruns) {
        d->heap[0] = d->heap[--d->nheap];
        heap_down(d->heap, d->nheap, 0);
        return;
    }
    struct drun *r = d->runs[src];
    run_advance(b->reg->jconf.io, d, r);
}

/* ---- buckets ---- */

void dindex_reset(const struct jio *io, struct dbucket *d)
{
    d->spill = NULL;
    d->mout = NULL;
    d->nmsrc = 0;
    for (size_t i = 0; i < d->nruns; i++)
        run_free(io, d->runs[i]);
    d->nruns = 0;
    free(d->chunk);
    d->chunk = NULL;
    d->nchunk = 0;
    d->nheap = 0;
    d->scan_seg = d->scan_off = 0;
    d->state = DB_COLD;
}

/* ---- building a bucket's index ---- */

struct build_ctx {
    struct queue *b;
    int err;
};

static void collect(void *ctx, const struct jnl_item *it)
{
    struct build_ctx *c = ctx;
    struct dbucket *d = c->b->bucket;
    if (c->err || !after_done(d, it->visible_ms, it->id))
        return;
    if (!d->chunk && !(d->chunk = malloc(DCHUNK * sizeof(*d->chunk)))) {
        c->err = -ENOMEM;
        return;
    }
    d->chunk[d->nchunk++] =
        (struct dent){.due = it->visible_ms, .id = it->id, .pos = it->seg << 40 | it->off, .idx = it->idx};
    if (d->nchunk == DCHUNK) {
        c->err = run_write(c->b, d->chunk, d->nchunk);
        d->nchunk = 0;
    }
}

int dindex_build_step(struct queue *b)
{
    struct dbucket *d = b->bucket;
    struct jnl *j;
    int rc = registry_jnl(b->reg, b, &j);
    if (rc < 0)
        return rc;
    if (d->state == DB_COLD) { /* (d->done: what fired, settled when the journal opened) */
        d->state = DB_BUILDING;
        d->scan_seg = d->scan_off = 0;
    }
    struct build_ctx c = {.b = b};
    rc = jnl_scan(j, &d->scan_seg, &d->scan_off, BUILD_BATCHES, collect, &c);
    if (rc < 0 || c.err < 0)
        return rc < 0 ? rc : c.err;
    if (rc == 0)
        return 0;
    if ((rc = run_write(b, d->chunk, d->nchunk)) < 0)
        return rc;
    free(d->chunk);
    d->chunk = NULL;
    d->nchunk = 0;
    d->state = DB_READY;
    if (d->nruns > DRUNS_MAX) /* built outside the tick (a peek, a kick): the tick merges */
        b->reg->delay_changed = 1;
    return 1;
}

/* Writes the full heap as a run: appended to the last spill's run when it
 * comes after it in order, else a run of its own. */
static int spill(struct queue *b)
{
    struct dbucket *d = b->bucket;
    const struct jio *io = b->reg->jconf.io;
    qsort(d->heap, d->nheap, sizeof(*d->heap), dent_cmp);
    int rc;
    if (d->spill && dent_cmp(&d->heap[0], &d->spill_last) > 0)
        rc = run_append(io, d->spill, d->heap, d->nheap);
    else if ((rc = run_write(b, d->heap, d->nheap)) == 0) {
        d->spill = d->runs[d->nruns - 1];
    }
    if (rc == 0) {
        d->spill_last = d->heap[d->nheap - 1];
        d->nheap = 0;
    }
    return rc;
}

int dindex_add(struct queue *b, const struct jnl_item *it)
{
    struct dbucket *d = b->bucket;
    if (d->nheap == DHEAP_MAX) {
        int rc = spill(b);
        if (rc < 0)
            return rc; /* written, but not indexed: it fires after a restart */
    }
    if (d->nheap == d->capheap) {
        size_t cap = d->capheap ? d->capheap * 2 : 64;
        struct dent *h = realloc(d->heap, cap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        d->heap = h;
        d->capheap = cap;
    }
    d->heap[d->nheap] =
        (struct dent){.due = it->visible_ms, .id = it->id, .pos = it->seg << 40 | it->off, .idx = it->idx};
    heap_up(d->heap, d->nheap++);
    return 0;
}

/* ---- merging runs ---- */

/* Entries of run r not taken yet. */
static uint64_t run_left(const struct drun *r) { return r->n - r->next + (r->wlen - r->wpos); }

int dindex_merge_wanted(const struct queue *b)
{
    const struct dbucket *d = b->bucket;
    return d->state != DB_COLD && !d->merge_err && (d->mout || d->nruns > DRUNS_MAX);
}

/* Starts a merge of bucket b's DMERGE_FAN smallest runs (by entries left):
 * merging the smallest keeps the rewrites per entry logarithmic. */
static int merge_start(struct queue *b)
{
    struct dbucket *d = b->bucket;
    d->nmsrc = 0;
    for (size_t i = 0; i < d->nruns; i++) {
        struct drun *r = d->runs[i];
        size_t at = d->nmsrc;
        while (at > 0 && run_left(d->msrc[at - 1]) > run_left(r))
            at--;
        if (at == DMERGE_FAN)
            continue;
        size_t keep = d->nmsrc < DMERGE_FAN ? d->nmsrc : DMERGE_FAN - 1;
        memmove(&d->msrc[at + 1], &d->msrc[at], (keep - at) * sizeof(d->msrc[0]));
        d->msrc[at] = r;
        d->nmsrc = keep + 1;
    }
    for (size_t i = 0; i < d->nmsrc; i++)
        if (d->msrc[i] == d->spill)
            d->spill = NULL; /* appending to a source could break the output's order */
    int rc = run_new(b, &d->mout);
    if (rc < 0)
        d->nmsrc = 0;
    return rc;
}

int dindex_merge_step(struct queue *b)
{
    struct dbucket *d = b->bucket;
    const struct jio *io = b->reg->jconf.io;
    struct dent *buf = NULL;
    size_t k = 0;
    int rc = d->mout ? 0 : merge_start(b);
    if (rc < 0)
        goto fail;
    if (!(buf = malloc(DMERGE_STEP * sizeof(*buf)))) {
        rc = -ENOMEM;
        goto fail;
    }
    while (k < DMERGE_STEP && d->nmsrc) {
        struct drun *best = NULL;
        const struct dent *bh = NULL;
        for (size_t i = 0; i < d->nmsrc;) {
            const struct dent *h = run_head(io, d->msrc[i], &rc);
            if (rc < 0)
                goto fail;
            if (!h) { /* spent */
                run_drop(io, d, d->msrc[i]);
                continue;
            }
            if (!bh || dent_cmp(h, bh) < 0) {
                bh = h;
                best = d->msrc[i];
            }
            i++;
        }
        if (!best)
            break;
        buf[k++] = *bh;
        run_advance(io, d, best);
    }
    if ((rc = run_append(io, d->mout, buf, k)) < 0)
        goto fail;
    free(buf);
    if (d->nmsrc)
        return 0;
    if (run_left(d->mout) == 0) /* all fired meanwhile */
        run_drop(io, d, d->mout);
    d->mout = NULL;
    return 1;
fail: /* entries taken from the sources may be in neither place: built again */
    free(buf);
    d->merge_err = 1;
    dindex_reset(io, d);
    return rc;
}
