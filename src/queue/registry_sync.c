/* queue/registry_sync.c: the registry's part in writing and syncing: each
 * loop turn's deferred writes (registry_flush), the fds and paths a sync
 * job takes, and what waits for a sync to complete (registry_after_sync,
 * registry_maintain). */
#include "queue/registry.h"
#include "util/errstr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

void registry_maintain(struct registry *r, struct queue *q)
{
    if (q->jnl) {
        jnl_maintain(q->jnl, r->sync_epoch_next, r->sync_epoch_done);
        if (jnl_pending(q->jnl)) /* a MOVE record */
            registry_note_pending(r, q);
    }
}

/* Only open journals can have work for a sync: a closed one was idle. */
void registry_after_sync(struct registry *r)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &r->lru) {
        struct queue *q = list_entry(pos, struct queue, lru);
        jnl_sync_done(q->jnl);
        if (jnl_reap_pending(q->jnl))
            registry_maintain(r, q);
    }
    registry_evict(r, NULL);
}

int registry_any_dirty(const struct registry *r)
{
    if (r->data_dirty || r->nowed)
        return 1;
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &r->lru) {
        const struct jnl *j = list_entry(pos, struct queue, lru)->jnl;
        if (jnl_dirty(j) && !jnl_sync_never(j)) /* fsync "never": not the periodic sync's */
            return 1;
    }
    return 0;
}

/* The data folder itself, once a queue folder appeared or went in it. */
static int data_dir_fd(struct registry *r, int **fds, int *n, int *cap)
{
    const struct jio *io = r->jconf.io;
    if (*n + 1 > *cap) {
        int *p = realloc(*fds, (size_t)(*cap + 64) * sizeof(int));
        if (!p)
            return -ENOMEM;
        *fds = p;
        *cap += 64;
    }
    if (r->data_fd < 0) {
        int fd = io->open_dir(io->ctx, r->data_dir);
        if (fd == -EOPNOTSUPP) { /* no folder fsync on this platform */
            r->data_dirty = 0;
            return 0;
        }
        if (fd < 0)
            return fd;
        r->data_fd = fd;
    }
    int dup_fd = io->dup(io->ctx, r->data_fd);
    if (dup_fd < 0)
        return dup_fd;
    (*fds)[(*n)++] = dup_fd;
    r->data_dirty = 0;
    return 0;
}

void registry_note_pending(struct registry *r, struct queue *q)
{
    if (!list_linked(&q->flush_link))
        list_push_back(&r->flushq, &q->flush_link);
}

int registry_flush(struct registry *r)
{
    int failed = 0;
    struct list *first;
    while ((first = list_first(&r->flushq)) != NULL) {
        struct queue *q = list_entry(first, struct queue, flush_link);
        list_remove(first);
        list_init(first);
        int rc = q->jnl ? jnl_flush(q->jnl) : 0;
        if (rc < 0) {
            log_error(r->log, "queue %s: cannot write the changes of this turn: %s", q->name, errstr(rc));
            failed++;
        }
    }
    return failed;
}

int registry_sync_fds(struct registry *r, int **fds, int *cap, int *err, int include_never)
{
    int n = 0, rc;
    *err = 0;
    registry_flush(r); /* a failure shows in the journal's own sync (it stays dirty) */
    if (r->data_dirty && (rc = data_dir_fd(r, fds, &n, cap)) < 0) {
        log_error(r->log, "cannot take the data folder for an fsync: %s", errstr(rc));
        *err = rc;
    }
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &r->lru) {
        struct jnl *j = list_entry(pos, struct queue, lru)->jnl;
        if (!jnl_dirty(j) || (!include_never && jnl_sync_never(j)))
            continue;
        for (;;) {
            int got = jnl_sync_fds(j, *fds + n, *cap - n);
            if (got >= 0) {
                n += got;
                break;
            }
            if (got != -ENOBUFS) {
                /* This journal stays dirty; the others are still synced. */
                log_error(r->log, "queue %s: cannot take its files for an fsync: %s",
                          list_entry(pos, struct queue, lru)->name, errstr(got));
                if (*err == 0)
                    *err = got;
                break;
            }
            int ncap = *cap ? *cap * 2 : 64;
            int *p = realloc(*fds, (size_t)ncap * sizeof(int));
            if (!p) {
                if (*err == 0)
                    *err = -ENOMEM;
                return n;
            }
            *fds = p;
            *cap = ncap;
        }
    }
    return n;
}

void registry_mark_unsynced(struct registry *r)
{
    r->data_dirty = 1;
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &r->lru)
        jnl_sync_failed(list_entry(pos, struct queue, lru)->jnl, registry_owe, r);
}
