/* queue/delay.c: delayed items (set q/delay=MS, set q/at=EPOCH_MS).
 *
 * A delayed item is written once, into a bucket: a hidden queue of its
 * queue and level holding the items due in one time range (an hour when due
 * within 48 hours of the set, else a day), so a long delay never pins a
 * segment of the queue itself, and a bucket's disk comes back as one piece
 * once it has fired. A bucket's items are in the order they were set; the
 * order they fire in, (due, id), comes from an index built when the bucket
 * is about to be due (within DELAY_LOOKAHEAD_MS): its entries read in steps,
 * sorted in chunks into run files (32-byte entries, DCHUNK a chunk), then
 * merged with a 4 KiB window per run; items set into a bucket already
 * indexed go to a small heap, spilled as one more run when full; a bucket
 * with more than DRUNS_MAX runs merges its smallest in steps. So memory is
 * bounded (about 1 MiB while a chunk is sorted, 4 KiB a run, the heap) and
 * so are a bucket's open files, whatever the number of delayed items.
 *
 * Firing copies a run of due items into the level's lane as one batch:
 * a FIRING record in the bucket first (the key of the last item, the lane
 * and the id the last copy takes there), then the batch. After a crash, a
 * FIRING whose last copy is found in the lane (by id, its origin naming the
 * bucket and item) counts as done, else the items fire again. A bucket is
 * deleted once every item fired and a sync covered the copies. One loop
 * timer is armed to the soonest due item (server.c). */
#include "queue/delay.h"
#include "queue/delay_int.h"
#include "util/errstr.h"

#include "conffile.h"
#include "queue/registry.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_MS (3600 * 1000ull)
#define DAY_MS (24 * HOUR_MS)
#define NEAR_MS (48 * HOUR_MS) /* due within this: an hour bucket, else a day bucket */
#define FIRE_BYTES (32 * 1024) /* payload bytes of one firing batch (a batch of the lane: one write) */
#define FIRE_ITEMS 512         /* items of one firing batch */
#define SPENT_RECHECK_MS 250   /* a spent bucket waiting for a sync is looked at again this often */
#define CENSUS_STEPS 1         /* census steps (delay_count.c) a tick does at most */

void queue_free_delays(struct queue *q)
{
    if (q->bucket) {
        if (!q->bucket->counted)
            q->reg->delays_uncounted--;
        jnl_peek_close(q->bucket->peek);
        dindex_reset(q->reg->jconf.io, q->bucket);
        free(q->bucket->runs);
        free(q->bucket->heap);
        free(q->bucket);
        q->bucket = NULL;
    }
    if (q->delays) {
        list_remove(&q->delays->link);
        free(q->delays->b);
        free(q->delays);
        q->delays = NULL;
    }
}

void queue_close_delay_files(struct queue *q)
{
    if (q->bucket)
        dindex_reset(q->reg->jconf.io, q->bucket);
}

/* Parses a bucket's due range from its name. */
static void bucket_range(const struct queue *b, uint64_t *start, uint64_t *end)
{
    const char *s = b->name + b->name_len - QUEUE_BUCKET_SUFFIX;
    uint64_t width = s[2] == 'h' ? HOUR_MS : DAY_MS, num = 0;
    for (int i = 4; i < QUEUE_BUCKET_SUFFIX; i++)
        num = num << 4 | (uint64_t)(s[i] <= '9' ? s[i] - '0' : s[i] - 'a' + 10);
    *start = num * width;
    *end = *start + width;
}

int queue_link_bucket(struct queue *p, struct queue *b)
{
    if (!b->bucket) {
        if (!(b->bucket = calloc(1, sizeof(*b->bucket))))
            return -ENOMEM;
        p->reg->delays_uncounted++; /* counted by the census, or at once when its journal is open */
    }
    if (!p->delays) {
        if (!(p->delays = calloc(1, sizeof(*p->delays))))
            return -ENOMEM;
        list_push_back(&p->reg->delayq, &p->delays->link);
    }
    struct delays *ds = p->delays;
    if (ds->n == ds->cap) {
        size_t cap = ds->cap ? ds->cap * 2 : 8;
        struct queue **nb = realloc(ds->b, cap * sizeof(*nb));
        if (!nb)
            return -ENOMEM;
        ds->b = nb;
        ds->cap = cap;
    }
    ds->b[ds->n++] = b;
    bucket_range(b, &b->bucket->start, &b->bucket->end);
    b->parent = p;
    p->reg->delay_changed = 1;
    return 0;
}

void queue_unlink_bucket(struct queue *b)
{
    struct queue *p = b->parent;
    if (!p || !p->delays)
        return;
    struct delays *ds = p->delays;
    for (size_t i = 0; i < ds->n; i++) {
        if (ds->b[i] == b) {
            ds->b[i] = ds->b[--ds->n];
            break;
        }
    }
    b->parent = NULL;
    if (ds->n == 0) {
        list_remove(&ds->link);
        free(ds->b);
        free(ds);
        p->delays = NULL;
    }
}

int queue_bucket_for(struct queue *q, unsigned level, uint64_t due, struct queue **out)
{
    uint64_t now = queue_now_ms();
    if (q->name_len > QUEUE_DELAYED_NAME_MAX)
        return -ENAMETOOLONG; /* its buckets' names would pass a name's longest */
    if (due <= now)
        due = now + 1; /* (a give-back whose delay is over) */
    uint64_t width = due - now < NEAR_MS ? HOUR_MS : DAY_MS;
    static const char gens[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    char name[QUEUE_NAME_MAX + 1];
    memcpy(name, q->name, q->name_len);
    /* A bucket whose items fired past this due time (a kick, or a clock set
     * back) must not take the item: it would count as fired at the next
     * start. The next generation of the bucket does. */
    for (size_t g = 0; g < sizeof(gens) - 1; g++) {
        snprintf(name + q->name_len, QUEUE_BUCKET_SUFFIX + 1, "%c%u%c%c%010" PRIx64, QUEUE_BUCKET_MARK, level,
                 width == HOUR_MS ? 'h' : 'd', gens[g], (uint64_t)((due / width) & 0xffffffffffull));
        struct queue *b;
        struct jnl *j;
        int rc = registry_get_or_create(q->reg, name, q->name_len + QUEUE_BUCKET_SUFFIX, &b);
        if (rc == 0 && !b->parent)
            rc = queue_link_bucket(q, b);
        if (rc == 0)
            rc = registry_jnl(q->reg, b, &j); /* opened: its fired key is known */
        if (rc < 0)
            return rc;
        if (b->opened_due) /* opened inside another queue's opening: settled now */
            queue_bucket_opened(b, j);
        if (!b->bucket->settled) { /* made just now: nothing to settle, nothing in it */
            b->bucket->settled = 1;
            dcount_from_totals(b, j);
        }
        if (!b->bucket->done.id || b->bucket->done.due <= due) {
            *out = b;
            return 0;
        }
    }
    return -EAGAIN;
}

int queue_put_delayed(struct queue *q, const struct jnl_attrs *a, const void *data, size_t len, struct jnl_blob *blob,
                      uint64_t *id)
{
    unsigned level = a->priority != JNL_PRIORITY_DEFAULT ? a->priority : (unsigned)q->conf->v.default_priority;
    struct jnl_attrs s = *a;
    s.priority = JNL_PRIORITY_DEFAULT; /* the bucket's level says it */
    struct queue *b = NULL;
    struct jnl *j;
    int rc = queue_bucket_for(q, level, a->visible_ms, &b);
    if (rc == 0)
        rc = registry_jnl(q->reg, b, &j);
    if (rc < 0) {
        jnl_blob_discard(blob);
        return rc;
    }
    rc = blob ? jnl_append_blob(j, blob, &s) : jnl_append(j, &s, data, len);
    if (rc < 0)
        return rc;
    struct jnl_item it;
    jnl_last_appended(j, &it);
    if (id)
        *id = it.id;
    if ((rc = queue_bucket_added(b, &it)) < 0)
        return rc;
    q->total_items++;
    return 0;
}

int queue_bucket_added(struct queue *b, const struct jnl_item *it)
{
    b->reg->delay_changed = 1;
    if (b->bucket->counted) { /* (else the census comes to it: it is at the tail) */
        b->bucket->items++;
        b->bucket->bytes += it->len;
    }
    /* indexed already: the heap takes it (else the index build will) */
    return b->bucket->state == DB_READY ? dindex_add(b, it) : 0;
}

/* ---- firing ---- */

/* One item of a firing batch, read from the bucket. */
struct fitem {
    struct jnl_item it;
    struct qitem payload;
    size_t src;
};

/* Makes visible, in order, b's due items with keys up to limit (a key of
 * another bucket of the level that is due sooner), at most one batch of
 * the lane. Returns how many it took off the bucket (0: none due), or
 * -errno. force: due or not (kick). */
static int fire_step(struct queue *b, uint64_t now, const struct dent *limit, int force)
{
    struct registry *r = b->reg;
    struct dbucket *d = b->bucket;
    struct queue *top = b->parent, *lane;
    struct jnl *bj, *lj;
    struct fitem f[FIRE_ITEMS];
    size_t n = 0, bytes = 0, ncopy = 0;
    int rc = registry_lane(r, top, (unsigned)b->level, &lane), err = 0, taken = 0;
    if (rc < 0)
        return rc;
    top->pinned++;
    lane->pinned++;
    b->pinned++;
    if ((rc = registry_jnl(r, b, &bj)) < 0 || (rc = registry_jnl(r, lane, &lj)) < 0 || (rc = jnl_flush(lj)) < 0)
        goto out;
    /* the run to fire: whole entries, read from the bucket */
    while (n < FIRE_ITEMS && bytes < FIRE_BYTES) {
        size_t src;
        const struct dent *h = dindex_head(b, &src, &err);
        if (!h || (!force && h->due > now) || (limit && dent_cmp(h, limit) > 0))
            break;
        struct fitem *fi = &f[n];
        if ((rc = jnl_item_at(bj, h->pos >> 40, h->pos & ((UINT64_C(1) << 40) - 1), h->idx, &fi->it)) < 0)
            goto out;
        fi->src = src;
        fi->payload.fd = -1;
        fi->payload.data = NULL;
        /* expired: dropped here, unless it goes to expire_to_queue; then it
         * is copied like any other and leaves the lane's head by the
         * ordinary expiry (moved, counted) before anyone can take it */
        int expired = fi->it.expire_ms && fi->it.expire_ms <= now && !top->conf->v.expire_to_queue[0];
        if (!expired) {
            if (fi->it.kind == JF_REC_BLOB && ncopy > 0)
                break; /* a large item is a batch of its own */
            struct jnl_head hh = {.item = fi->it};
            if ((rc = queue_load_payload(bj, &hh, &fi->payload)) == -EBADMSG) {
                log_error(r->log, "queue %s: delayed item %" PRIu64 " fails its checksum: dropped", top->name,
                          fi->it.id);
                expired = 1;
            } else if (rc < 0) {
                goto out;
            }
        }
        if (expired) {
            fi->it.kind = 0; /* nothing to copy */
            top->expired++;
        } else {
            ncopy++;
            bytes += fi->it.len;
        }
        n++;
        dindex_pop(b, src);
        if (fi->it.kind == JF_REC_BLOB)
            break;
    }
    if (err < 0) {
        rc = err;
        goto out;
    }
    if (n == 0)
        goto out;
    size_t use = n;
    /* a FIRING first (lane id 0: no copy, every item of it expired), the
     * copies as one batch, then FIRED once a sync covers them */
    struct jnl_fire key = {.due = f[use - 1].it.visible_ms,
                           .id = f[use - 1].it.id,
                           .fired = d->done.fired + use,
                           .lane_dir = lane->dir_id,
                           .lane_id = ncopy ? jnl_next_id(lj) + ncopy - 1 : 0};
    if ((rc = jnl_fire_begin(bj, &key)) == 0) {
        for (size_t i = 0; i < use && rc == 0; i++) {
            if (!f[i].it.kind)
                continue;
            struct jnl_attrs a = {.flags = f[i].it.flags,
                                  .add_ms = f[i].it.add_ms,
                                  .expire_ms = f[i].it.expire_ms,
                                  .visible_ms = f[i].it.visible_ms,
                                  .deliveries = f[i].it.deliveries,
                                  .priority = JNL_PRIORITY_DEFAULT,
                                  .origin = b->name,
                                  .origin_len = b->name_len,
                                  .origin_id = f[i].it.id,
                                  .reason = JF_REASON_DELAYED};
            struct jnl_blob *blob;
            struct jnl_ticket *t = NULL;
            if (f[i].payload.data) {
                rc = jnl_append_deferred(lj, &a, f[i].payload.data, (size_t)f[i].payload.len, &t);
                jnl_ticket_put(t);
            } else if ((rc = registry_blob_begin(r, f[i].payload.len, &blob)) == 0) {
                if ((rc = jnl_blob_write_from(blob, f[i].payload.fd, f[i].payload.off, f[i].payload.len)) < 0)
                    jnl_blob_discard(blob);
                else
                    rc = jnl_append_blob(lj, blob, &a);
            }
        }
        if (rc == 0)
            rc = jnl_flush(lj); /* one batch: all the copies, or none */
        if (rc < 0) {           /* none made: void, and the key in force stays */
            jnl_fire_void(bj, &d->done);
            goto out;
        }
        if ((rc = jnl_fire_done(bj, &key, r->sync_epoch_next)) < 0)
            rc = 0; /* made: a restart finds the copies in the lane and says so then */
    }
    if (rc < 0)
        goto out;
    d->done = key;
    d->sync_epoch = r->sync_epoch_next;
    taken = (int)use;
    for (size_t i = 0; i < use; i++)
        dcount_fired(d, &f[i].it);
    lane->may_expire = 1; /* the sweep looks at the copies' expiry too */
    queue_note_pending(b);
    queue_note_pending(lane);
    if (ncopy)
        queue_wake(top);
out:
    if (rc < 0 && n > 0 && d->state == DB_READY)
        dindex_reset(r->jconf.io, d); /* taken off the index but not fired: rebuilt from the key in force */
    for (size_t i = 0; i < n; i++)
        qitem_release(&f[i].payload);
    top->pinned--;
    lane->pinned--;
    b->pinned--;
    if (rc < 0)
        log_error(r->log, "queue %s: delayed items could not be made visible: %s (tried again)", top->name, errstr(rc));
    return rc < 0 ? rc : taken;
}

/* At open: the FIRINGs after the key in force (a crash came before their
 * FIRED) count as done, in order, while their last copy is found in the
 * lane (by the id each named: that id was free when it was written, and
 * only that batch names this bucket there); from the first one whose copy
 * is not there (never written, or lost with a power cut), they are void and
 * their items fire again. */
void queue_bucket_opened(struct queue *b, struct jnl *j)
{
    struct jnl_fire done;
    const struct jnl_fire *pend;
    size_t npend, made = 0;
    jnl_fire_state(j, &done, &pend, &npend);
    b->pinned++; /* opening the lane must not close this journal */
    for (; made < npend; made++) {
        const struct jnl_fire *p = &pend[made];
        struct queue *lane = p->lane_id ? registry_find_dir(b->reg, p->lane_dir) : NULL;
        struct jnl *lj;
        char name[JF_ORIGIN_MAX];
        size_t len = 0;
        uint64_t origin_id = 0;
        int found = !p->lane_id || /* nothing was copied: nothing to find */
                    (lane && b->parent && queue_top(lane) == b->parent && registry_jnl(b->reg, lane, &lj) == 0 &&
                     jnl_origin_of_id(lj, p->lane_id, name, &len, &origin_id) == 1 && len == b->name_len &&
                     memcmp(name, b->name, len) == 0);
        if (!found)
            break;
        done = *p;
    }
    if (made < npend) /* (the state's array is rebuilt by the void record: done is a copy) */
        jnl_fire_void(j, &done);
    else if (npend)
        jnl_fire_done(j, &done, b->reg->sync_epoch_next); /* present: durable once the next sync is */
    b->pinned--;
    if (b->bucket) {
        b->bucket->done = done;
        b->bucket->settled = 1;
        jnl_peek_close(b->bucket->peek); /* its files may change now: a census reads them again */
        b->bucket->peek = NULL;
        dcount_from_totals(b, j);
    }
}

/* Whether every item set into b has fired. Its disk then comes back at
 * once (once a sync covers the copies): an item set later for its time
 * range makes a new bucket. */
static int bucket_spent(struct queue *b)
{
    struct dbucket *d = b->bucket;
    size_t src;
    int err = 0;
    return d->state == DB_READY && !dindex_head(b, &src, &err) && !err;
}

/* Whether a bucket of q's level that is not indexed yet (being built, as
 * after a restart) may hold items due before key: firing waits for it, so
 * items come out in order after a restart too. A bucket whose build
 * failed holds nothing back. */
static int held_back(const struct queue *q, unsigned level, const struct dent *key)
{
    for (size_t i = 0; i < q->delays->n; i++) {
        const struct dbucket *d = q->delays->b[i]->bucket;
        if ((unsigned)q->delays->b[i]->level == level && d->state != DB_READY && !d->build_err && d->start <= key->due)
            return 1;
    }
    return 0;
}

/* One tick for queue q's buckets. *next gets the soonest time it needs
 * another (0: none); budget is spent by builds and firings. */
static void tick_queue(struct queue *q, uint64_t now, size_t *budget, uint64_t *next)
{
    struct registry *r = q->reg;
    struct delays *ds = q->delays;
    for (size_t i = 0; ds && i < ds->n;) {
        struct queue *b = ds->b[i];
        struct dbucket *d = b->bucket;
        if (d->state != DB_READY && d->start <= now + DELAY_LOOKAHEAD_MS && !d->build_err) {
            if (*budget == 0) {
                *next = now;
                return;
            }
            (*budget)--;
            int rc = dindex_build_step(b);
            if (rc < 0) {
                log_error(r->log, "queue %s: cannot index its delayed items due from %" PRIu64 ": %s", q->name,
                          d->start, errstr(rc));
                d->build_err = 1;
            }
            if (rc == 0) {
                *next = now;
            }
        }
        if (d->state == DB_COLD && !d->build_err) {
            uint64_t at = d->start > DELAY_LOOKAHEAD_MS ? d->start - DELAY_LOOKAHEAD_MS : 0;
            if (!*next || at < *next)
                *next = at;
        }
        i++;
    }
    /* fire, level by level, the soonest bucket first */
    for (unsigned level = 0; q->delays && level < QUEUE_LEVELS; level++) {
        for (;;) {
            ds = q->delays;
            struct queue *best = NULL;
            struct dent first, second;
            int have2 = 0;
            for (size_t i = 0; ds && i < ds->n; i++) {
                struct queue *b = ds->b[i];
                size_t src;
                int err = 0;
                if ((unsigned)b->level != level || b->bucket->state != DB_READY)
                    continue;
                const struct dent *h = dindex_head(b, &src, &err);
                if (!h)
                    continue;
                if (!best || dent_cmp(h, &first) < 0) {
                    if (best) {
                        second = first;
                        have2 = 1;
                    }
                    best = b;
                    first = *h;
                } else if (!have2 || dent_cmp(h, &second) < 0) {
                    second = *h;
                    have2 = 1;
                }
            }
            if (!best)
                break;
            if (first.due > now) {
                if (!*next || first.due < *next)
                    *next = first.due;
                break;
            }
            if (held_back(q, level, &first)) { /* a bucket not indexed yet may hold sooner items */
                *next = now;
                break;
            }
            if (*budget == 0) {
                *next = now;
                return;
            }
            (*budget)--;
            if (fire_step(best, now, have2 ? &second : NULL, 0) <= 0) {
                *next = now + 100; /* an error: tried again shortly */
                break;
            }
        }
    }
    /* buckets with too many runs merge them, a step a tick, after firing */
    for (size_t i = 0; q->delays && i < q->delays->n; i++) {
        struct queue *b = q->delays->b[i];
        if (!dindex_merge_wanted(b))
            continue;
        if (*budget == 0) {
            *next = now;
            return;
        }
        (*budget)--;
        int rc = dindex_merge_step(b);
        if (rc < 0)
            log_error(r->log, "queue %s: cannot merge the index of its delayed items due from %" PRIu64 ": %s", q->name,
                      b->bucket->start, errstr(rc));
        *next = now; /* more steps, or the index to build again */
    }
    /* spent buckets go, once a sync covers their copies */
    for (size_t i = 0; q->delays && i < q->delays->n;) {
        struct queue *b = q->delays->b[i];
        if (!bucket_spent(b)) {
            i++;
        } else if (registry_queue_fsync(r, b) == FSYNC_NEVER || r->sync_epoch_done >= b->bucket->sync_epoch) {
            registry_delete(r, b); /* unlinks itself: the same index holds the next */
        } else {                   /* looked at again after the sync */
            if (!*next || now + SPENT_RECHECK_MS < *next)
                *next = now + SPENT_RECHECK_MS;
            i++;
        }
    }
}

uint64_t registry_delay_tick(struct registry *r, uint64_t now)
{
    size_t budget = DELAY_TICK_BUDGET;
    uint64_t next = 0;
    struct list *pos, *tmp;
    r->delay_changed = 0;
    if (r->delays_uncounted && dcensus_tick(r, CENSUS_STEPS))
        next = now; /* counting after a start: again at the next turn */
    list_for_each_safe(pos, tmp, &r->delayq) {
        struct delays *ds = list_entry(pos, struct delays, link);
        if (ds->n == 0)
            continue;
        uint64_t n = 0;
        tick_queue(ds->b[0]->parent, now, &budget, &n);
        if (n && (!next || n < next))
            next = n;
    }
    return next;
}

static int bucket_start_cmp(const void *a, const void *b)
{
    uint64_t x = (*(struct queue *const *)a)->bucket->start, y = (*(struct queue *const *)b)->bucket->start;
    return x < y ? -1 : x > y;
}

/* The bucket of q holding its soonest delayed item, and that item's entry
 * (*best NULL: none). Buckets are indexed now as needed, in the order of
 * their start, until the next one starts after the soonest item found. */
static int soonest(struct queue *q, struct queue **best, struct dent *first)
{
    struct delays *ds = q->delays;
    *best = NULL;
    qsort(ds->b, ds->n, sizeof(ds->b[0]), bucket_start_cmp);
    for (size_t i = 0; i < ds->n; i++) {
        struct queue *b = ds->b[i];
        size_t src;
        int err = 0;
        if (*best && b->bucket->start > first->due)
            break;
        while (b->bucket->state != DB_READY) {
            int rc = dindex_build_step(b);
            if (rc < 0)
                return rc;
        }
        const struct dent *h = dindex_head(b, &src, &err);
        if (err < 0)
            return err;
        if (h && (!*best || dent_cmp(h, first) < 0)) {
            *best = b;
            *first = *h;
        }
    }
    return 0;
}

int queue_peek_delayed(struct queue *q, struct qitem *out)
{
    struct queue *b;
    struct dent first;
    struct jnl *j;
    struct jnl_head h = {.node = NULL};
    int rc = q->delays ? soonest(q, &b, &first) : 0;
    if (rc < 0)
        return rc;
    if (!q->delays || !b)
        return -ENOENT;
    if ((rc = registry_jnl(q->reg, b, &j)) < 0 ||
        (rc = jnl_item_at(j, first.pos >> 40, first.pos & ((UINT64_C(1) << 40) - 1), first.idx, &h.item)) < 0)
        return rc;
    return queue_load_payload(j, &h, out);
}

int queue_kick_delayed(struct queue *q, uint64_t max, uint64_t *kicked)
{
    uint64_t now = queue_now_ms();
    *kicked = 0;
    while (*kicked < max && q->delays) {
        struct queue *best = NULL;
        struct dent first;
        int rc = soonest(q, &best, &first);
        if (rc < 0)
            return rc;
        if (!best)
            break;
        rc = fire_step(best, now, &first, 1); /* that one item */
        if (rc < 0)
            return rc;
        *kicked += (uint64_t)rc;
        if (rc == 0)
            break;
    }
    q->reg->delay_changed = 1;
    return 0;
}

int queue_flush_delayed(struct queue *q)
{
    int rc = 0;
    while (q->delays && q->delays->n) {
        int e = registry_delete(q->reg, q->delays->b[0]);
        rc = rc < 0 ? rc : e;
    }
    return rc;
}
