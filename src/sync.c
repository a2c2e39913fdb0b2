/* sync.c: group commit on libuv's thread pool. */
#include "sync.h"
#include "util/errstr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int syncer_init(struct syncer *s, uv_loop_t *loop, struct registry *reg, const struct log *log)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->reg = reg;
    s->log = log;
    list_init(&s->waiting);
    list_init(&s->inflight);
    s->capfds = 64;
    s->fds = malloc((size_t)s->capfds * sizeof(int));
    if (!s->fds)
        return -ENOMEM;
    s->work.data = s;
    reg->sync_epoch_next = 1;
    return 0;
}

/* Thread pool: sync and close the job's fds. Touches only the job's fds. */
static void work_cb(uv_work_t *req)
{
    struct syncer *s = req->data;
    const struct jio *io = s->reg->jconf.io;
    int result = 0;
    for (int i = 0; i < s->nfds; i++) {
        int rc = io->fsync(io->ctx, s->fds[i]);
        if (rc < 0 && result == 0)
            result = rc;
        io->close(io->ctx, s->fds[i]);
    }
    /* A file gone since (a deleted segment or queue) needs no sync. */
    for (size_t i = 0; i < s->npaths; i++) {
        int rc = jio_fsync_path(io, s->paths[i]);
        if (rc < 0 && rc != -ENOENT && result == 0)
            result = rc;
    }
    s->result = result;
}

static void start(struct syncer *s);

/* A cell's job (s->commit): the entry carrying the writes is what makes them
 * durable, so the copies of the fds (taken for the sync epochs) are only
 * closed, on the pool as an fsync job closes them, and files owed a sync
 * need none. */
static void close_cb(uv_work_t *req)
{
    struct syncer *s = req->data;
    const struct jio *io = s->reg->jconf.io;
    for (int i = 0; i < s->nfds; i++)
        io->close(io->ctx, s->fds[i]);
    s->result = 0;
}

static void free_paths(struct syncer *s)
{
    for (size_t i = 0; i < s->npaths; i++)
        free(s->paths[i]);
    free(s->paths);
    s->paths = NULL;
    s->npaths = 0;
}

static void finish(struct syncer *s, int result);

static void after_cb(uv_work_t *req, int status)
{
    struct syncer *s = req->data;
    finish(s, status < 0 ? status : s->result);
}

void syncer_commit_done(struct syncer *s, int status) { finish(s, status); }

/* The fds are closed: the commit starts (it ends with syncer_commit_done). */
static void commit_cb(uv_work_t *req, int status)
{
    struct syncer *s = req->data;
    (void)status;
    s->nfds = 0;
    free_paths(s);
    int rc = s->closing ? -ECANCELED : s->commit(s->commit_ctx, s);
    if (rc < 0)
        finish(s, rc);
}

/* The running job is over with result: its waiters are told. */
static void finish(struct syncer *s, int result)
{
    if (result == 0 && s->take_err < 0) {
        /* Some files could not be taken for this job: not all is durable. */
        result = s->take_err;
    } else if (result == 0) {
        s->reg->sync_epoch_done = s->job_epoch;
        registry_after_sync(s->reg);
    } else {
        log_error(s->log, "fsync failed: %s", errstr(result));
        registry_mark_unsynced(s->reg);
        registry_give_back_owed(s->reg, s->paths, s->npaths);
        s->paths = NULL;
        s->npaths = 0;
    }
    free_paths(s);
    s->busy = 0;
    s->syncs++;
    struct list *first;
    while ((first = list_first(&s->inflight)) != NULL) {
        struct sync_waiter *w = list_entry(first, struct sync_waiter, link);
        list_remove(&w->link);
        w->done(w, result);
    }
    if (!s->closing && (s->again || !list_empty(&s->waiting)))
        start(s);
}

static void start(struct syncer *s)
{
    /* Queues whose policy is "never" only when someone waits for the sync
     * (a /sync set): the periodic one leaves them alone. */
    int n = registry_sync_fds(s->reg, &s->fds, &s->capfds, &s->take_err, !list_empty(&s->waiting));
    s->paths = registry_take_owed(s->reg, &s->npaths);
    s->again = 0;
    /* Waiters of this job: all who asked before its fds were taken. */
    while (!list_empty(&s->waiting)) {
        struct list *l = s->waiting.next;
        list_remove(l);
        list_push_back(&s->inflight, l);
    }
    s->nfds = n;
    s->result = 0;
    s->job_epoch = s->reg->sync_epoch_next++;
    s->busy = 1;
    int rc = s->commit ? uv_queue_work(s->loop, &s->work, close_cb, commit_cb)
                       : uv_queue_work(s->loop, &s->work, work_cb, after_cb);
    if (rc < 0 && s->commit) {
        close_cb(&s->work);
        commit_cb(&s->work, 0);
    } else if (rc < 0) {
        /* Cannot reach the pool: sync here rather than lose durability. */
        work_cb(&s->work);
        after_cb(&s->work, 0);
    }
}

void syncer_request(struct syncer *s, struct sync_waiter *w)
{
    if (w)
        list_push_back(&s->waiting, &w->link);
    else
        s->again = 1;
    if (!s->busy && !s->closing)
        start(s);
}

void syncer_enqueue(struct syncer *s, struct sync_waiter *w) { list_push_back(&s->waiting, &w->link); }

void syncer_kick(struct syncer *s)
{
    if (!s->busy && !s->closing && !list_empty(&s->waiting))
        start(s);
}

void syncer_cancel(struct sync_waiter *w) { list_remove(&w->link); }

int syncer_busy(const struct syncer *s) { return s->busy; }

int syncer_flush_now(struct syncer *s)
{
    int err;
    int n = registry_sync_fds(s->reg, &s->fds, &s->capfds, &err, 1);
    s->nfds = n;
    s->paths = registry_take_owed(s->reg, &s->npaths);
    work_cb(&s->work);
    free_paths(s);
    if (s->result == 0 && err < 0)
        s->result = err;
    if (s->result == 0) {
        /* Everything written so far is durable now. */
        s->reg->sync_epoch_done = s->reg->sync_epoch_next++;
        registry_after_sync(s->reg);
    }
    return s->result;
}

void syncer_free(struct syncer *s)
{
    free(s->fds);
    s->fds = NULL;
}
