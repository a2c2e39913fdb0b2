/* queue/registry.h: every queue of a server by name, and their folders. */
#ifndef DARNER_QUEUE_REGISTRY_H
#define DARNER_QUEUE_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "journal/journal.h"
#include "queue/queue.h"

struct registry {
    char *data_dir;
    struct jnl_conf jconf;
    const struct log *log;
    struct queue **buckets;
    size_t nbuckets, count;
    struct list all;
    struct list absent_waiters; /* waiting for queues not made yet */
    uint64_t next_dir_id;
    uint64_t next_blob; /* names temporary files of items being streamed in */
    /* sync epochs, kept by the syncer (see sync.h) */
    uint64_t sync_epoch_next, sync_epoch_done;
    uint64_t queue_creates, queue_deletes;
};

/* Opens every queue found in data_dir (created if missing). *out is the
 * caller's, freed with registry_close(). jconf is copied. */
int registry_open(struct registry **out, const char *data_dir, const struct jnl_conf *jconf);
void registry_close(struct registry *r);

struct queue *registry_find(struct registry *r, const char *name, size_t len);
/* The queue in folder q-<dir_id>, if it still exists (a linear search). */
struct queue *registry_find_dir(struct registry *r, uint64_t dir_id);
/* Finds or creates (folder and journal) the queue. */
int registry_get_or_create(struct registry *r, const char *name, size_t len, struct queue **out);
/* Deletes the queue and its files; waiters are told QWAIT_GONE, open records
 * freed. q is freed. */
int registry_delete(struct registry *r, struct queue *q);
/* Waits on a queue that does not exist yet (w->name set): w moves to the
 * queue when a set makes it. Leave with queue_unwait(). */
void registry_wait_absent(struct registry *r, struct qwaiter *w);
/* Starts a streamed item of len bytes in the data folder's tmp/ folder. */
int registry_blob_begin(struct registry *r, uint64_t len, struct jnl_blob **out);
/* Flushes every queue. */
int registry_flush_all(struct registry *r);
/* Lets each journal delete segments and compact; call after consuming. */
void registry_maintain(struct registry *r, struct queue *q);
/* Moves the fds of every dirty journal into a growable array for a sync job
 * and returns their count. A journal whose fds cannot be taken stays dirty
 * and its error goes to *err (0: none), so the job's waiters are told the
 * sync failed; the fds that were taken are still the caller's to sync. */
int registry_sync_fds(struct registry *r, int **fds, int *cap, int *err);
/* After a failed fsync: every journal needs syncing again. */
void registry_mark_unsynced(struct registry *r);
int registry_any_dirty(const struct registry *r);
/* After a sync completed: lets journals delete what waited for it. */
void registry_after_sync(struct registry *r);

#endif
