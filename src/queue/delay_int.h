/* queue/delay_int.h: the insides of delayed items, shared by
 * queue/delay.c (buckets, firing, the tick), queue/delay_index.c (a
 * bucket's index: sorted runs and a heap) and queue/delay_count.c (the
 * count of what a bucket holds). */
#ifndef DARNER_QUEUE_DELAY_INT_H
#define DARNER_QUEUE_DELAY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "journal/journal.h"
#include "queue/queue.h"
#include "util/list.h"

#define DCHUNK 32768      /* index entries sorted at once: 1 MiB */
#define DWIN 128          /* entries of a run read at once: 4 KiB */
#define DHEAP_MAX 2048    /* entries of the heap before it is spilled as a run */
#define BUILD_BATCHES 256 /* batches an index build reads per step */
#define DRUNS_MAX 16      /* runs of a bucket before its smallest are merged */
#define DMERGE_FAN 8      /* runs merged into one */
#define DMERGE_STEP 8192  /* entries a merge step moves: 256 KiB */

struct dent {
    uint64_t due, id;
    uint64_t pos; /* segment << 40 | offset of its batch */
    uint32_t idx, pad;
};

struct drun {
    int fd;
    uint64_t n, next; /* entries in the file, the next one to read */
    struct dent win[DWIN];
    size_t wpos, wlen;
};

struct dbucket {
    uint64_t start, end; /* due range [start, end) */
    enum { DB_COLD, DB_BUILDING, DB_READY } state;
    uint64_t scan_seg, scan_off; /* the build's place in the bucket's segments */
    struct dent *chunk;          /* the build's entries not yet sorted into a run */
    size_t nchunk;
    struct drun **runs;
    size_t nruns, caprun;
    struct dent *heap; /* items set since the build, soonest first */
    size_t nheap, capheap;
    uint64_t run_seq;
    /* the run the heap last spilled into, and its last entry: a spill that
     * comes after it in order (items set in due order, a fixed delay) is
     * appended to it, so such a bucket keeps one run however long it takes
     * sets */
    struct drun *spill;
    struct dent spill_last;
    /* a merge in progress: its sources (a spent one drops out) and the run
     * it appends to, read like any other meanwhile (every entry still in a
     * source comes after every entry already in it) */
    struct drun *msrc[DMERGE_FAN];
    size_t nmsrc;
    struct drun *mout;
    int merge_err;        /* a merge failed: no more merges of this bucket */
    struct jnl_fire done; /* what has fired */
    uint64_t sync_epoch;  /* the sync that covers the last copies made */
    int build_err;        /* the build failed: retried on the next start */
    /* its items not fired yet and their payload bytes (queue/delay.c): kept
     * as items are set, fire and go; after a start, counted first by a
     * census in steps (counted 0 until it is over), from its place
     * (cseg, coff) on, reading the files (peek) while the journal is closed */
    uint64_t items, bytes;
    int counted;
    int settled; /* done is the settled firing state (its journal opened since the start) */
    uint64_t cseg, coff;
    struct jnl_peek *peek;
};

struct delays {
    struct queue **b; /* its buckets */
    size_t n, cap;
    struct list link; /* in the registry's delayq */
};

/* The order items fire in: due time, then id (the order they were set). */
int dent_cmp(const void *a, const void *b);
/* Bucket b's soonest entry not fired: *src says where it is (a run's
 * index, or nruns for the heap); NULL when none is left (or *err set). */
const struct dent *dindex_head(struct queue *b, size_t *src, int *err);
/* Takes the entry dindex_head returned off the index. */
void dindex_pop(struct queue *b, size_t src);
/* Adds item it, just set into the indexed bucket b, to its heap (spilled
 * as a run when full). Returns 0 or -errno. */
int dindex_add(struct queue *b, const struct jnl_item *it);
/* Forgets b's index (it is built again from what has not fired). */
void dindex_reset(const struct jio *io, struct dbucket *d);
/* ---- counting (delay_count.c) ---- */
/* Counts bucket b at once from its journal's totals (j; NULL: b's open or
 * parked journal), exact while nothing of it has fired. Returns 1 if b is
 * counted. */
int dcount_from_totals(struct queue *b, struct jnl *j);
/* Item it of the bucket d fired (or expired, or was kicked): no longer
 * counted, unless the census has not reached it. */
void dcount_fired(struct dbucket *d, const struct jnl_item *it);
/* Census steps for the buckets not counted yet, at most budget. Returns 1
 * while some are left. */
int dcensus_tick(struct registry *r, size_t budget);

/* One step of b's index build: 1 when it is done, 0 when more steps are
 * needed, or -errno. */
int dindex_build_step(struct queue *b);
/* Whether bucket b, indexed or being indexed, has a merge in progress or
 * more runs than DRUNS_MAX (and no merge of it failed). */
int dindex_merge_wanted(const struct queue *b);
/* One step of merging b's DMERGE_FAN smallest runs into one: moves up to
 * DMERGE_STEP entries. 1 when the merge is done, 0 when it needs more
 * steps, or -errno (the index is then reset: built again from the journal,
 * and b is merged no more). */
int dindex_merge_step(struct queue *b);

#endif
