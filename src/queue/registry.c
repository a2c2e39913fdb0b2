/* queue/registry.c: queues by name, and their folders in the data folder.
 *
 * A queue lives in "<data>/q-<16 hex digits>/", with its name in the file
 * NAME. Folder names never derive from queue names, so no name can reach
 * outside the data folder or collide on a case-insensitive file system. */
#include "queue/registry.h"
#include "util/errstr.h"

#include "conffile.h"
#include "queue/delay.h"

#include "journal/datadir.h"
#include "proto/parse.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define NAME_FILE "NAME"

static size_t bucket_of(const struct registry *r, const char *name, size_t len)
{
    return (size_t)(XXH3_64bits(name, len) & (r->nbuckets - 1));
}

static int grow(struct registry *r)
{
    size_t n = r->nbuckets ? r->nbuckets * 2 : 64;
    struct queue **b = calloc(n, sizeof(*b));
    if (!b)
        return -ENOMEM;
    struct queue **old = r->buckets;
    size_t oldn = r->nbuckets;
    r->buckets = b;
    r->nbuckets = n;
    for (size_t i = 0; i < oldn; i++) {
        struct queue *q = old[i], *next;
        for (; q; q = next) {
            next = q->hnext;
            size_t k = bucket_of(r, q->name, q->name_len);
            q->hnext = b[k];
            b[k] = q;
        }
    }
    free(old);
    return 0;
}

static void queue_free(struct queue *q)
{
    if (!q)
        return;
    if (q->jnl) {
        list_remove(&q->lru);
        q->reg->nopen_jnl--;
    }
    list_remove(&q->flush_link);
    list_remove(&q->fanout_link);
    jnl_close(q->jnl);
    queue_free_delays(q);
    free(q->lanes);
    free(q->name);
    free(q->dir);
    free(q);
}

static struct queue *queue_new(struct registry *r, const char *name, size_t len, uint64_t dir_id)
{
    struct queue *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->reg = r;
    q->dir_id = dir_id;
    list_init(&q->waiters);
    list_init(&q->opens);
    list_init(&q->all);
    list_init(&q->lru);
    list_init(&q->flush_link);
    list_init(&q->fanout_link);
    q->name = malloc(len + 1);
    size_t dlen = strlen(r->data_dir) + 24;
    q->dir = malloc(dlen);
    if (!q->name || !q->dir) {
        queue_free(q);
        return NULL;
    }
    memcpy(q->name, name, len);
    q->name[len] = '\0';
    q->name_len = len;
    q->kind = queue_name_kind(name, len, &q->level, &q->suffix_len);
    /* a lane or bucket has the settings of its queue */
    q->conf = conffile_queue(r->conf, name, len - q->suffix_len);
    q->create_ms = queue_now_ms();
    snprintf(q->dir, dlen, "%s/q-%016" PRIx64, r->data_dir, dir_id);
    return q;
}

enum fsync_policy registry_queue_fsync(const struct registry *r, const struct queue *q)
{
    enum fsync_policy p = q->conf ? q->conf->v.fsync.policy : FSYNC_SERVER;
    if (r->cell)
        return FSYNC_ALWAYS;
    return p == FSYNC_SERVER ? r->fsync.policy : p;
}

/* The journal settings of q: the registry's, with its own fsync policy. */
static struct jnl_conf queue_jconf(const struct registry *r, const struct queue *q)
{
    struct jnl_conf jc = r->jconf;
    jc.sync_never = registry_queue_fsync(r, q) == FSYNC_NEVER;
    jc.first_id = queue_first_id(q);
    return jc;
}

static int insert(struct registry *r, struct queue *q)
{
    /* a lane or bucket is no fanout child, whatever its name says */
    int rc = q->kind == QK_QUEUE ? registry_fanout_join(r, q) : 0;
    if (rc < 0)
        return rc;
    if (r->count + 1 > r->nbuckets / 2 && (rc = grow(r)) < 0) {
        list_remove(&q->fanout_link);
        return rc;
    }
    size_t k = bucket_of(r, q->name, q->name_len);
    q->hnext = r->buckets[k];
    r->buckets[k] = q;
    r->count++;
    r->nhidden += q->level >= 0;
    list_push_back(&r->all, &q->all);
    return 0;
}

static void unlink_queue(struct registry *r, struct queue *q)
{
    struct queue **pp = &r->buckets[bucket_of(r, q->name, q->name_len)];
    while (*pp && *pp != q)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = q->hnext;
        r->count--;
        r->nhidden -= q->level >= 0;
    }
    list_remove(&q->all);
    list_remove(&q->fanout_link); /* an empty group stays: it is small, and the parent may get children again */
}

struct queue *registry_find(struct registry *r, const char *name, size_t len)
{
    if (!r->nbuckets)
        return NULL;
    for (struct queue *q = r->buckets[bucket_of(r, name, len)]; q; q = q->hnext)
        if (q->name_len == len && memcmp(q->name, name, len) == 0)
            return q;
    return NULL;
}

struct queue *registry_find_dir(struct registry *r, uint64_t dir_id)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &r->all) {
        struct queue *q = list_entry(pos, struct queue, all);
        if (q->dir_id == dir_id)
            return q;
    }
    return NULL;
}

/* Reads a queue folder's NAME file into buf (start-up reads one per
 * queue: three system calls each). Returns the length or -errno. */
static int read_name(const struct registry *r, const char *dir, char *buf, size_t cap)
{
    ssize_t n = jdd_read_file(&r->jconf, dir, NAME_FILE, buf, cap);
    return n < 0 ? (int)n : n == 0 || (size_t)n == cap ? -EBADMSG : (int)n;
}

static int write_name(struct registry *r, const struct queue *q, const char *dir)
{
    const struct jio *io = r->jconf.io;
    char tmp[PATH_MAX], path[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, NAME_FILE) >= (int)sizeof(tmp) ||
        snprintf(path, sizeof(path), "%s/%s", dir, NAME_FILE) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int fd = io->open(io->ctx, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return fd;
    int rc = jio_pwrite_all(io, fd, q->name, q->name_len, 0);
    io->close(io->ctx, fd);
    if (rc == 0)
        rc = io->rename(io->ctx, tmp, path);
    return rc;
}

/* registry_open's walk of the data folder. */
struct found {
    struct registry *r;
    const char *data_dir;
};

/* One entry of the data folder: a queue folder becomes a queue; what an
 * unfinished create or delete left is removed. Returns 0 or -errno (ends
 * the walk). */
static int found_one(void *arg, const char *ename)
{
    struct found *f = arg;
    struct registry *r = f->r;
    uint64_t id;
    char rest;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/%s", f->data_dir, ename);
    if (strncmp(ename, "d-", 2) == 0 || strncmp(ename, "c-", 2) == 0) {
        /* a delete, or a create, that did not finish */
        jnl_remove_dir(&r->jconf, dir);
        return 0;
    }
    if (sscanf(ename, "q-%16" SCNx64 "%c", &id, &rest) != 1)
        return 0;
    if (id >= r->next_dir_id)
        r->next_dir_id = id + 1;
    char name[QUEUE_NAME_MAX + 1];
    int n = read_name(r, dir, name, sizeof(name));
    if (n < 0) {
        log_warn(r->log, "queue folder %s has no readable name: removed (a create that did not finish)", dir);
        jnl_remove_dir(&r->jconf, dir);
        return 0;
    }
    if (registry_find(r, name, (size_t)n)) {
        log_error(r->log, "queue folder %s repeats a queue name: ignored", dir);
        return 0;
    }
    struct queue *q = queue_new(r, name, (size_t)n, id);
    if (!q)
        return -ENOMEM;
    /* The journal is opened on first use (registry_jnl), so start-up
     * does not grow with the number of queues. */
    int rc = insert(r, q);
    if (rc < 0)
        queue_free(q);
    return rc;
}

int registry_open(struct registry **out, const char *data_dir, const struct jnl_conf *jconf,
                  const struct conffile *conf)
{
    int rc;
    struct registry *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    list_init(&r->all);
    list_init(&r->lru);
    list_init(&r->flushq);
    list_init(&r->absent_waiters);
    list_init(&r->delayq);
    r->max_open_jnl = REGISTRY_MAX_OPEN_DEFAULT;
    r->data_fd = -1;
    r->jconf = *jconf;
    r->log = jconf->log;
    r->next_dir_id = 1;
    r->conf = conf;
    /* until the server says more: what the journal settings imply */
    r->fsync.policy = jconf->sync_never ? FSYNC_NEVER : FSYNC_PERIODIC;
    if (!(r->data_dir = strdup(data_dir))) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = grow(r)) < 0)
        goto fail;
    if ((rc = r->jconf.io->mkdir(r->jconf.io->ctx, data_dir, 0755)) < 0 && rc != -EEXIST)
        goto fail;
    /* Before anything in the folder is touched: is it a format we know? */
    if ((rc = jdd_check_format(&r->jconf, data_dir, NULL)) < 0)
        goto fail;
    /* tmp/ holds items being streamed in; what is left there never got an answer. */
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s/tmp", data_dir) >= (int)sizeof(tmp)) {
        rc = -ENAMETOOLONG;
        goto fail;
    }
    jnl_remove_dir(&r->jconf, tmp);
    if ((rc = r->jconf.io->mkdir(r->jconf.io->ctx, tmp, 0755)) < 0 && rc != -EEXIST)
        goto fail;
    struct found f = {.r = r, .data_dir = data_dir};
    if ((rc = r->jconf.io->listdir(r->jconf.io->ctx, data_dir, found_one, &f)) < 0)
        goto fail;
    if ((rc = registry_link_lanes(r)) < 0)
        goto fail;
    *out = r;
    return 0;
fail:
    registry_close(r);
    return rc;
}

void registry_close(struct registry *r)
{
    if (!r)
        return;
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &r->all) {
        struct queue *q = list_entry(pos, struct queue, all);
        struct list *p2, *t2;
        list_for_each_safe(p2, t2, &q->opens) {
            struct qopen *o = list_entry(p2, struct qopen, q_link);
            list_remove(&o->conn_link);
            list_remove(&o->q_link);
            lease_clear(&r->leases, o);
            free(o);
        }
        list_remove(&q->all);
        queue_free(q);
    }
    if (r->data_fd >= 0)
        r->jconf.io->close(r->jconf.io->ctx, r->data_fd);
    for (size_t i = 0; i < r->nowed; i++)
        free(r->owed[i]);
    free(r->owed);
    free(r->buckets);
    free(r->data_dir);
    registry_fanout_free(r);
    lease_heap_free(&r->leases);
    free(r);
}

/* ---- open journals: a bounded cache ---- */

void registry_owe(void *ctx, const char *path)
{
    struct registry *r = ctx;
    char *p = strdup(path);
    if (p && r->nowed == r->capowed) {
        size_t cap = r->capowed ? r->capowed * 2 : 64;
        char **a = realloc(r->owed, cap * sizeof(*a));
        if (a) {
            r->owed = a;
            r->capowed = cap;
        }
    }
    if (!p || r->nowed == r->capowed) {
        /* No memory to remember it: sync it now, on this thread, rarely. */
        jio_fsync_path(r->jconf.io, path);
        free(p);
        return;
    }
    r->owed[r->nowed++] = p;
}

char **registry_take_owed(struct registry *r, size_t *n)
{
    char **a = r->owed;
    *n = r->nowed;
    r->owed = NULL;
    r->nowed = r->capowed = 0;
    return a;
}

void registry_give_back_owed(struct registry *r, char **paths, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        registry_owe(r, paths[i]);
        free(paths[i]);
    }
    free(paths);
}

/* Closes q's journal (idle: it loses nothing; what it owes a sync is synced
 * by path), keeping its counts for stats. */
static void park(struct registry *r, struct queue *q)
{
    jnl_get_stats(q->jnl, &q->parked);
    if (jnl_oldest_ms(q->jnl, &q->parked_oldest_ms) < 0)
        q->parked_oldest_ms = 0;
    q->parked_valid = 1;
    jnl_close_owing(q->jnl, registry_owe, r);
    q->jnl = NULL;
    list_remove(&q->lru);
    r->nopen_jnl--;
    r->parks++;
}

/* Closes the least recently used idle journals until at most max_open_jnl
 * are open, never keep's. A journal that is not idle (items open, an fsync
 * owed) stays open; the cache may then stay over its size for a while. */
void registry_evict(struct registry *r, const struct queue *keep)
{
    struct list *pos = r->lru.prev;
    while (r->nopen_jnl > r->max_open_jnl && pos != &r->lru) {
        struct queue *q = list_entry(pos, struct queue, lru);
        pos = pos->prev;
        if (q == keep || !list_empty(&q->opens) || !list_empty(&q->waiters) || q->pinned)
            continue;
        /* Its removals of this turn are written first (their answers wait
         * for that); a journal whose writes fail keeps them, and stays. */
        if (jnl_flush(q->jnl) == 0 && jnl_idle(q->jnl))
            park(r, q);
    }
}

void registry_set_max_open(struct registry *r, size_t n)
{
    r->max_open_jnl = n ? n : 1;
    registry_evict(r, NULL);
}

/* Runs queue_opened for q once its journal is open: not inside another
 * queue's, whose moves open journals too (q waits for its next use). */
static void opened(struct registry *r, struct queue *q)
{
    if (r->in_opened) {
        q->opened_due = 1;
        return;
    }
    r->in_opened = 1;
    q->opened_due = 0;
    queue_opened(q, q->jnl);
    r->in_opened = 0;
}

int registry_jnl(struct registry *r, struct queue *q, struct jnl **out)
{
    if (q->jnl) {
        list_remove(&q->lru);
        list_push_front(&r->lru, &q->lru);
        if (q->opened_due)
            opened(r, q);
        *out = q->jnl;
        return 0;
    }
    struct jnl_conf jc = queue_jconf(r, q);
    int rc = jnl_open(&q->jnl, &jc, q->dir, 0);
    if (rc == -ENOENT) {
        /* A folder with a name but no segment holds no item: start it over. */
        log_warn(r->log, "queue %s (%s) has no journal: starting it empty", q->name, q->dir);
        rc = jnl_open(&q->jnl, &jc, q->dir, 1);
    }
    if (rc < 0) {
        q->jnl = NULL;
        log_error(r->log, "queue %s (%s): cannot open its journal: %s", q->name, q->dir, errstr(rc));
        return rc;
    }
    list_push_front(&r->lru, &q->lru);
    r->nopen_jnl++;
    r->unparks++;
    struct jnl_stats st;
    jnl_get_stats(q->jnl, &st);
    q->may_expire |= st.items > 0; /* what it holds is not known: the sweep looks */
    registry_evict(r, q);
    opened(r, q);
    *out = q->jnl;
    return 0;
}

int registry_queue_stats(struct registry *r, struct queue *q, struct jnl_stats *st)
{
    int rc = registry_journal_stats(r, q, st);
    for (int i = 0; q->lanes && i < QUEUE_LEVELS; i++) {
        struct jnl_stats ls;
        if (!q->lanes->q[i])
            continue;
        int e = registry_journal_stats(r, q->lanes->q[i], &ls);
        rc = rc < 0 ? rc : e;
        st->items += ls.items;
        st->bytes += ls.bytes;
        st->open += ls.open;
        st->open_bytes += ls.open_bytes;
        st->logsize += ls.logsize;
    }
    return rc;
}

/* The add time of the item journal queue q hands out next (0: none). */
static uint64_t journal_oldest(struct registry *r, struct queue *q)
{
    struct jnl *j;
    uint64_t ms;
    if (!q->jnl && q->parked_valid)
        return q->parked_oldest_ms;
    if (registry_jnl(r, q, &j) < 0 || jnl_oldest_ms(j, &ms) < 0)
        return 0;
    return ms;
}

uint64_t registry_queue_oldest(struct registry *r, struct queue *q)
{
    uint64_t best = journal_oldest(r, q);
    for (int i = 0; q->lanes && i < QUEUE_LEVELS; i++) {
        uint64_t ms = q->lanes->q[i] ? journal_oldest(r, q->lanes->q[i]) : 0;
        if (ms && (!best || ms < best))
            best = ms;
    }
    return best;
}

int registry_journal_stats(struct registry *r, struct queue *q, struct jnl_stats *st)
{
    struct jnl *j;
    if (!q->jnl && q->parked_valid) {
        *st = q->parked;
        return 0;
    }
    int rc = registry_jnl(r, q, &j);
    if (rc == 0)
        jnl_get_stats(j, st);
    else
        *st = (struct jnl_stats){0};
    return rc;
}

/* Removes a queue folder being created: the files a new journal has, by
 * name, so that this works with no fd left (running out of them is a
 * common way for a create to fail). */
static void remove_new_dir(struct registry *r, const char *dir)
{
    static const char *const names[] = {NAME_FILE, NAME_FILE ".tmp", "seg-0000000000000001.dat", "acks.0", "acks.1"};
    const struct jio *io = r->jconf.io;
    char path[PATH_MAX];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (snprintf(path, sizeof(path), "%s/%s", dir, names[i]) < (int)sizeof(path))
            io->unlink(io->ctx, path);
    if (io->rmdir(io->ctx, dir) < 0)
        jnl_remove_dir(&r->jconf, dir); /* something else in it: the slow way */
}

int registry_get_or_create(struct registry *r, const char *name, size_t len, struct queue **out)
{
    struct queue *q = registry_find(r, name, len);
    if (q) {
        *out = q;
        return 0;
    }
    /* Built in c-<id> and renamed into place: a create that fails before
     * the rename leaves no q- folder behind (start-up removes c- folders);
     * one cut short after it leaves an empty queue. */
    char tmp[PATH_MAX];
    char *final = NULL;
    struct jnl *j = NULL;
    int rc;
    if (!(q = queue_new(r, name, len, r->next_dir_id++)))
        return -ENOMEM;
    if (snprintf(tmp, sizeof(tmp), "%s/c-%016" PRIx64, r->data_dir, q->dir_id) >= (int)sizeof(tmp)) {
        rc = -ENAMETOOLONG;
        goto fail;
    }
    if (!(final = strdup(q->dir))) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = r->jconf.io->mkdir(r->jconf.io->ctx, tmp, 0755)) < 0)
        goto fail;
    /* The folder is renamed before its journal opens: Windows cannot rename
     * a folder with files open in it. A crash between the two leaves a
     * queue folder with no journal, which starts empty. */
    struct jnl_conf jc = queue_jconf(r, q);
    if ((rc = write_name(r, q, tmp)) < 0 || (rc = r->jconf.io->rename(r->jconf.io->ctx, tmp, q->dir)) < 0)
        goto fail_dir;
    if ((rc = jnl_open(&j, &jc, q->dir, 1)) < 0) {
        snprintf(tmp, sizeof(tmp), "%s", q->dir);
        goto fail_dir;
    }
    jnl_set_dir(j, final);
    final = NULL;
    r->data_dirty = 1;
    if (!jc.sync_never) {
        /* Synced with the first sync that covers the queue's items: until
         * then a power cut may leave the folder without its name, and start-up
         * removes it, but nothing in it was promised durable yet. */
        char name_path[PATH_MAX];
        snprintf(name_path, sizeof(name_path), "%s/%s", q->dir, NAME_FILE);
        registry_owe(r, name_path);
    }
    q->jnl = j;
    list_push_front(&r->lru, &q->lru);
    r->nopen_jnl++;
    if ((rc = insert(r, q)) < 0) {
        /* The folder is complete: the next start finds the queue. */
        queue_free(q);
        return rc;
    }
    if (q->level < 0)
        r->queue_creates++;
    registry_evict(r, q);
    /* Waiters for this name, in the order they came. */
    struct list *pos, *tmp_pos;
    list_for_each_safe(pos, tmp_pos, &r->absent_waiters) {
        struct qwaiter *w = list_entry(pos, struct qwaiter, link);
        if (w->name_len == len && memcmp(w->name, name, len) == 0) {
            list_remove(&w->link);
            queue_wait(q, w);
        }
    }
    log_debug(r->log, "queue %s created in %s", q->name, q->dir);
    *out = q;
    return 0;
fail_dir:
    jnl_close(j);
    remove_new_dir(r, tmp);
fail:
    log_error(r->log, "cannot create queue %s: %s", q->name, errstr(rc));
    free(final);
    queue_free(q);
    return rc;
}

int registry_delete(struct registry *r, struct queue *q)
{
    struct list *pos, *tmp;
    int lrc = 0;
    while (q->lanes) { /* its lanes go with it (each unlinks itself; the last frees lanes) */
        struct queue *l = NULL;
        for (int i = 0; i < QUEUE_LEVELS && !l; i++)
            l = q->lanes->q[i];
        int e = registry_delete(r, l);
        lrc = lrc < 0 ? lrc : e;
    }
    if (q->delays) { /* and its delayed items */
        int e = queue_flush_delayed(q);
        lrc = lrc < 0 ? lrc : e;
    }
    if (q->kind == QK_LANE)
        registry_unlink_lane(q);
    else if (q->kind == QK_BUCKET)
        queue_unlink_bucket(q);
    list_for_each_safe(pos, tmp, &q->opens) {
        struct qopen *o = list_entry(pos, struct qopen, q_link);
        if (o->tally)
            o->tally->stale = 1; /* its queue goes: q may be reused */
        list_remove(&o->conn_link);
        list_remove(&o->q_link);
        lease_clear(&r->leases, o);
        free(o);
    }
    struct list *first;
    while ((first = list_first(&q->waiters)) != NULL) {
        struct qwaiter *w = list_entry(first, struct qwaiter, link);
        list_remove(&w->link);
        w->cb(w, QWAIT_GONE);
    }
    unlink_queue(r, q);
    if (q->jnl) {
        list_remove(&q->lru);
        r->nopen_jnl--;
    }
    jnl_close(q->jnl);
    q->jnl = NULL;
    queue_close_delay_files(q); /* no file of the folder open when it goes */
    r->data_dirty = 1;
    /* Rename first, so a crash mid-delete never leaves half a queue behind. */
    char gone[PATH_MAX];
    snprintf(gone, sizeof(gone), "%s/d-%016" PRIx64, r->data_dir, q->dir_id);
    int rc = r->jconf.io->rename(r->jconf.io->ctx, q->dir, gone);
    if (rc == 0) {
        rc = jnl_remove_dir(&r->jconf, gone);
    } else if (rc == -EACCES || rc == -EBUSY) {
        /* Windows: a file in it is still open (a sync job's descriptor, a
         * get streaming a large item). Its NAME goes first, so whatever is
         * left is no queue (start-up removes a folder without a name) and a
         * queue made again under this name is the only one. */
        char name_path[PATH_MAX];
        snprintf(name_path, sizeof(name_path), "%s/%s", q->dir, NAME_FILE);
        if ((rc = r->jconf.io->unlink(r->jconf.io->ctx, name_path)) == 0 && jnl_remove_dir(&r->jconf, q->dir) < 0)
            log_warn(r->log, "queue %s: some files of %s are still open: removed at the next start", q->name, q->dir);
    }
    if (rc < 0)
        log_error(r->log, "queue %s: cannot remove %s: %s", q->name, q->dir, errstr(rc));
    if (q->level < 0)
        r->queue_deletes++;
    queue_free(q);
    return rc < 0 ? rc : lrc;
}

int registry_blob_begin(struct registry *r, uint64_t len, struct jnl_blob **out)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/tmp/%" PRIu64 ".tmp", r->data_dir, r->next_blob++) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    return jnl_blob_begin(&r->jconf, path, len, out);
}

int registry_blob_clone(struct registry *r, const struct jnl_blob *src, uint64_t len, struct jnl_blob **out)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/tmp/%" PRIu64 ".tmp", r->data_dir, r->next_blob++) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int rc = jnl_blob_clone(src, path, out);
    if (rc != -EOPNOTSUPP && rc != -EPERM && rc != -EMLINK && rc != -EXDEV)
        return rc;
    /* no second name for the file here: a copy of its bytes */
    if ((rc = registry_blob_begin(r, len, out)) < 0)
        return rc;
    if ((rc = jnl_blob_copy(src, *out)) < 0) {
        jnl_blob_discard(*out);
        *out = NULL;
    }
    return rc;
}

void registry_wait_absent(struct registry *r, struct qwaiter *w) { list_push_back(&r->absent_waiters, &w->link); }

int registry_flush_all(struct registry *r)
{
    /* A queue's flush takes its lanes and deletes its buckets, which may be
     * next in the list: flushed first, the queues' own journals after. */
    int rc = 0;
    struct list *pos;
    for (pos = r->all.next; pos != &r->all; pos = pos->next) {
        struct queue *q = list_entry(pos, struct queue, all);
        if (q->kind != QK_QUEUE || !q->delays)
            continue;
        int e = queue_flush_delayed(q); /* deletes only q's buckets, none of which is q */
        if (e < 0 && rc == 0)
            rc = e;
    }
    for (pos = r->all.next; pos != &r->all; pos = pos->next) {
        struct queue *q = list_entry(pos, struct queue, all);
        int e = q->kind == QK_QUEUE ? queue_flush(q) : 0; /* a queue's flush takes its lanes */
        if (e < 0 && rc == 0)
            rc = e;
    }
    return rc;
}

size_t registry_expire_leases(struct registry *r, uint64_t now)
{
    size_t n = 0;
    struct qopen *o;
    while ((o = lease_top(&r->leases)) != NULL && o->lease_ms <= now) {
        queue_top(o->q)->lease_expired++;
        queue_abort(o); /* frees o, and its place in the heap */
        n++;
    }
    return n;
}

uint64_t registry_next_lease(const struct registry *r)
{
    const struct qopen *o = lease_top(&r->leases);
    return o ? (o->lease_ms ? o->lease_ms : 1) : 0;
}

void registry_set_conf(struct registry *r, const struct conffile *conf)
{
    r->conf = conf;
    struct list *pos;
    for (pos = r->all.next; pos != &r->all; pos = pos->next) {
        struct queue *q = list_entry(pos, struct queue, all);
        q->conf = conffile_queue(conf, q->name, q->name_len - q->suffix_len);
        if (q->jnl)
            jnl_set_sync_never(q->jnl, registry_queue_fsync(r, q) == FSYNC_NEVER);
    }
}
