/* tests/crash/crash_work.h: one seeded workload through the public journal
 * API, recorded.
 *
 * The workload runs on a fresh folder root: its journal is root/q (small
 * segments and a small ack_compact_bytes, so segments roll and are deleted
 * and the ack log is rewritten within a few hundred operations), large
 * items are streamed through root/tmp. Every file-system change goes through
 * a cf_rec, and every call that changes an item's fate goes into a
 * cm_model with the span of events it covered. The live journal is checked
 * against the model as it runs: each head it hands out must be the one the
 * model expects, with the right bytes and delivery count, and a reopen must
 * find exactly the items the model has in transfer. */
#ifndef DARNER_TESTS_CRASH_WORK_H
#define DARNER_TESTS_CRASH_WORK_H

#include <limits.h>
#include <stdint.h>

#include "crash_fs.h"
#include "crash_model.h"

struct cw_conf {
    uint64_t seed;    /* the workload's seed: its operations, sizes and payloads */
    const char *root; /* an existing, empty folder */
    int nops;         /* operations to run */
    unsigned lie;     /* enum cf_lie bits (--self-test) */
    int verbose;      /* print each operation and the journal's log lines */
};

struct cw_counts {
    unsigned appends, blobs, gets, opens, confirms, releases, restores, clears, maintains, syncs, failed_syncs, reopens;
    unsigned xfers, xfer_ends, xfer_cancels; /* transfers begun, confirmed, given up */
    unsigned xfer_reopened;                  /* transfers a reopen found under way */
};

struct cw_run {
    struct cf_rec rec;     /* the event log */
    struct cm_model model; /* the promises */
    uint64_t segment_size, ack_compact_bytes;
    int qdir_ino; /* the journal folder's inode in rec */
    char qdir[PATH_MAX];
    char failure[512]; /* "" or what the live journal got wrong (a violation) */
    struct cw_counts n;
};

/* Runs the workload c into w (which the caller frees with cw_free() whatever
 * this returns). Returns 0 (w->failure tells whether the live journal
 * misbehaved; the log up to that point is usable), or -errno when the
 * harness itself could not run (w->failure says why). */
int cw_run(struct cw_run *w, const struct cw_conf *c);
void cw_free(struct cw_run *w);

#endif
