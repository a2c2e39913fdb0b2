/* sync.h: group commit. fsync runs on libuv's thread pool; every request that
 * arrives while one runs is answered together after the next one. */
#ifndef DARNER_SYNC_H
#define DARNER_SYNC_H

#include <stdint.h>
#include <uv.h>

#include "log.h"
#include "queue/registry.h"
#include "util/list.h"

struct sync_waiter {
    struct list link;
    /* Called on the loop thread once everything written before the request
     * is on stable storage (status 0) or the fsync failed (-errno). */
    void (*done)(struct sync_waiter *w, int status);
};

struct syncer {
    uv_loop_t *loop;
    struct registry *reg; /* borrowed; its sync_epoch_* are kept here */
    const struct log *log;
    int busy, again, closing;
    struct list waiting;  /* for the next job */
    struct list inflight; /* for the running job */
    uv_work_t work;
    int *fds;
    int nfds, capfds;
    char **paths; /* files of closed journals to open and sync (owned) */
    size_t npaths;
    int result;
    int take_err; /* files that could not be taken for the running job: -errno */
    uint64_t job_epoch;
    uint64_t syncs; /* completed jobs, for stats */
    /* A cell's leader (docs/cluster.md): a job makes what was written
     * durable by committing it through Raft instead of fsyncing the files.
     * commit starts that and calls syncer_commit_done once the cell has it
     * (status 0) or not (-errno); it returns 0, or -errno when it could not
     * start (the job fails). NULL: fsync. */
    int (*commit)(void *ctx, struct syncer *s);
    void *commit_ctx;
};

int syncer_init(struct syncer *s, uv_loop_t *loop, struct registry *reg, const struct log *log);
/* Asks for a sync of everything written so far; w (may be NULL) is told when
 * it is done. w must stay valid until then or until syncer_cancel(w). */
void syncer_request(struct syncer *s, struct sync_waiter *w);
/* Queues a waiter for the next job without starting one; syncer_kick()
 * starts it, so every request of one loop turn shares one fsync. */
void syncer_enqueue(struct syncer *s, struct sync_waiter *w);
void syncer_kick(struct syncer *s);
/* Forgets a waiter (its connection is gone); its callback will not run. */
void syncer_cancel(struct sync_waiter *w);
int syncer_busy(const struct syncer *s);
/* A job's commit (commit above) is over. */
void syncer_commit_done(struct syncer *s, int status);
/* Frees memory; call after the loop has finished any running job. */
void syncer_free(struct syncer *s);
/* Synchronously syncs everything dirty (used at shutdown). */
int syncer_flush_now(struct syncer *s);

#endif
