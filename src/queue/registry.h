/* queue/registry.h: every queue of a server by name, and their folders. */
#ifndef DARNER_QUEUE_REGISTRY_H
#define DARNER_QUEUE_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "journal/journal.h"
#include "queue/lease.h"
#include "queue/queue.h"

struct registry {
    char *data_dir;
    struct jnl_conf jconf;
    const struct log *log;
    struct queue **buckets;
    size_t nbuckets, count; /* count: every queue, lanes and buckets included */
    struct list all;
    struct list absent_waiters; /* waiting for queues not made yet */
    /* queues whose journal is open, most recently used first (queue.lru):
     * at most max_open_jnl of them, beyond which idle ones are closed */
    struct list lru;
    size_t nopen_jnl, max_open_jnl;
    struct list flushq;      /* queues whose journal holds appends not written yet */
    uint64_t parks, unparks; /* journals closed by the cache, and opened again */
    int data_fd;             /* the data folder, for syncing its entries; -1 until needed */
    int data_dirty;          /* a queue folder appeared or went since the last sync */
    /* paths of closed journals' files that still owe an fsync */
    char **owed;
    size_t nowed, capowed;
    uint64_t next_dir_id;
    uint64_t next_blob; /* names temporary files of items being streamed in */
    /* sync epochs, kept by the syncer (see sync.h) */
    uint64_t sync_epoch_next, sync_epoch_done;
    uint64_t queue_creates, queue_deletes, queue_expires;
    const struct conffile *conf; /* queue settings: each queue points into it */
    struct fsync_conf fsync;     /* the server's fsync policy (a queue's "server") */
    int cell;                    /* a cell's leader: every change is committed before its answer (fsync "always") */
    uint64_t sweep_epoch;        /* the expiry sweep's pass (queue_sweep) */
    struct lease_heap leases;    /* open items with a lease, soonest first */
    int in_opened;               /* queue_opened runs (for the queue just opened) */
    struct list delayq;          /* queues with delay buckets (struct delays) */
    int delay_changed;           /* a delayed item was set, or a bucket made: the delay timer is due */
    size_t delays_uncounted;     /* delay buckets whose items are not counted yet (after a start) */
    size_t nhidden;              /* lanes and buckets among count */
    /* fanout groups: for each name some queue "name+child" exists of, its
     * children (struct queue by fanout_link), whether "name" exists or not */
    struct fgroup {
        struct fgroup *next;
        char *name;
        size_t len;
        struct list children;
    } * fgroups;
};

/* Journals kept open when nothing else says: each holds up to 4 fds. */
#define REGISTRY_MAX_OPEN_DEFAULT 1024

/* Finds every queue in data_dir (created if missing), reading only their
 * names: each journal is opened on first use. *out is the caller's, freed
 * with registry_close(). jconf is copied. */
int registry_open(struct registry **out, const char *data_dir, const struct jnl_conf *jconf,
                  const struct conffile *conf);
void registry_close(struct registry *r);
/* Every queue takes its settings from conf now (a reload): the caller
 * frees the old file after this returns. */
void registry_set_conf(struct registry *r, const struct conffile *conf);

struct queue *registry_find(struct registry *r, const char *name, size_t len);
/* q's journal, opened (and recovered) if it was closed, and marked as just
 * used; opening may close other idle journals to stay within the cache size.
 * Returns 0 with *out (valid until the queue's journal is closed: only at
 * calls into the registry), or -errno (-EPROTONOSUPPORT: a format this build
 * cannot read; nothing was changed). */
int registry_jnl(struct registry *r, struct queue *q, struct jnl **out);
/* How many journals may stay open at once (0 means 1); closes idle ones now
 * if more are. */
void registry_set_max_open(struct registry *r, size_t n);
/* q's counts, its lanes' included: from each journal, or as they were when
 * it was closed; a journal not opened since start is opened for it. */
int registry_queue_stats(struct registry *r, struct queue *q, struct jnl_stats *st);
/* When the item q would hand out next was added (ms; lanes included,
 * delayed items not), or 0 when it has none: the oldest-item age. */
uint64_t registry_queue_oldest(struct registry *r, struct queue *q);
/* The same for q's own journal only (not its lanes). */
int registry_journal_stats(struct registry *r, struct queue *q, struct jnl_stats *st);
/* The queue in folder q-<dir_id>, if it still exists (a linear search). */
struct queue *registry_find_dir(struct registry *r, uint64_t dir_id);
/* Finds or creates (folder and journal) the queue. */
int registry_get_or_create(struct registry *r, const char *name, size_t len, struct queue **out);
/* ---- priority lanes (queue/lanes.c) ---- */
/* The queue that holds q's items of level (0..9): q itself for its default
 * level, else its lane, made now if need be. Returns 0 or -errno. */
int registry_lane(struct registry *r, struct queue *q, unsigned level, struct queue **out);
/* Links every lane found at start to its queue (made again if its folder is
 * gone). Returns 0 or -errno. */
int registry_link_lanes(struct registry *r);
/* Takes lane l off its queue's lanes (before it is deleted). */
void registry_unlink_lane(struct queue *l);

/* Deletes the queue and its files (a queue's lanes too); waiters are told QWAIT_GONE, open records
 * freed. q is freed. */
int registry_delete(struct registry *r, struct queue *q);
/* Waits on a queue that does not exist yet (w->name set): w moves to the
 * queue when a set makes it. Leave with queue_unwait(). */
void registry_wait_absent(struct registry *r, struct qwaiter *w);
/* Starts a streamed item of len bytes in the data folder's tmp/ folder. */
int registry_blob_begin(struct registry *r, uint64_t len, struct jnl_blob **out);
/* Gives every open item whose lease ended by now (loop ms) back to its
 * queue, counted in its lease_expired. Returns how many. */
size_t registry_expire_leases(struct registry *r, uint64_t now);
/* When the next lease ends (loop ms), or 0 when no item has one. */
uint64_t registry_next_lease(const struct registry *r);

/* q's fsync policy: its own, or the server's. */
enum fsync_policy registry_queue_fsync(const struct registry *r, const struct queue *q);

/* Puts a fanout child in its parent's group (queue/fanout.c); frees every
 * group. Used by the registry itself. */
int registry_fanout_join(struct registry *r, struct queue *q);
void registry_fanout_free(struct registry *r);

/* The fanout children of the queue called name (struct queue by
 * fanout_link), or NULL when it has none. */
struct list *registry_children(struct registry *r, const char *name, size_t len);

/* A second blob of a complete one (jnl_blob_clone), for a set stored in
 * several queues. */
int registry_blob_clone(struct registry *r, const struct jnl_blob *src, uint64_t len, struct jnl_blob **out);
/* Flushes every queue. */
int registry_flush_all(struct registry *r);
/* Lets each journal delete segments and compact; call after consuming. */
void registry_maintain(struct registry *r, struct queue *q);
/* Moves the fds of every dirty journal into a growable array for a sync job
 * and returns their count. A journal whose fds cannot be taken stays dirty
 * and its error goes to *err (0: none), so the job's waiters are told the
 * sync failed; the fds that were taken are still the caller's to sync. */
int registry_sync_fds(struct registry *r, int **fds, int *cap, int *err, int include_never);
/* (include_never: also the journals of queues whose fsync policy is
 * "never", which only a sync someone waits for covers.) */
/* The paths owed an fsync by journals closed since the last sync (the array
 * and its strings are the caller's; *n of them), for the next sync job. */
char **registry_take_owed(struct registry *r, size_t *n);
/* A sync job that failed gives its paths back (takes them over and frees). */
void registry_give_back_owed(struct registry *r, char **paths, size_t n);
/* q's journal holds deferred appends: registry_flush() writes them. */
void registry_note_pending(struct registry *r, struct queue *q);
/* Writes every journal's deferred appends, one write each (the server does
 * this once a loop turn, before any answer of the turn is sent). Returns the
 * number of journals whose write failed (their tickets say why). */
int registry_flush(struct registry *r);
/* After a failed fsync: every journal needs syncing again. */
void registry_mark_unsynced(struct registry *r);
int registry_any_dirty(const struct registry *r);
/* (Inside the registry, shared by its files.) Remembers a path the next
 * sync must fsync (copied); ctx is the registry. Closes idle journals
 * beyond the cache's size, never keep's. */
void registry_owe(void *ctx, const char *path);
void registry_evict(struct registry *r, const struct queue *keep);
/* After a sync completed: lets journals delete what waited for it. */
void registry_after_sync(struct registry *r);

#endif
