/* queue/expiry.c: expired items leave their queue: dropped, or moved to
 * the queue's expire_to_queue as if set there without an expiry. Items
 * expire from the head, as in Kestrel: one behind an item that has not
 * expired waits for it to go (it is never handed out meanwhile). */
#include "queue/queue.h"
#include "util/errstr.h"

#include "conffile.h"
#include "queue/registry.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

/* Sets a copy of q's expired head h into the queue named to, without an
 * expiry: its payload read as a get reads it (whole, or from its file for a
 * streamed item, copied into a new blob of the target). */
static int move_item(struct queue *q, struct jnl *j, const struct jnl_head *h, const char *to)
{
    struct queue *target;
    struct qitem it;
    struct jnl_blob *b;
    int rc = registry_get_or_create(q->reg, to, strlen(to), &target);
    if (rc < 0 || (rc = queue_load_payload(j, h, &it)) < 0)
        return rc;
    struct jnl_attrs a = {.flags = h->item.flags, .priority = JNL_PRIORITY_DEFAULT};
    if (it.data) {
        rc = queue_put(target, &a, it.data, it.len);
    } else if ((rc = registry_blob_begin(target->reg, it.len, &b)) == 0) {
        if ((rc = jnl_blob_write_from(b, it.fd, it.off, it.len)) < 0)
            jnl_blob_discard(b);
        else
            rc = queue_put_blob(target, b, &a);
    }
    qitem_release(&it);
    return rc;
}

int queue_expire_head(struct queue *q, struct jnl *j, const struct jnl_head *h)
{
    const char *to = q->conf->v.expire_to_queue;
    int rc = 0;
    if (to[0]) {
        q->pinned++; /* the target's journal opening must not close this one */
        rc = move_item(q, j, h, to);
        q->pinned--;
        if (rc == -EBADMSG) { /* damaged: dropped, as a get drops it */
            log_error(q->reg->log, "queue %s: expired item %" PRIu64 " fails its checksum: dropped", q->name,
                      h->item.id);
            rc = 0;
        }
        if (rc < 0) {
            log_error(q->reg->log, "queue %s: cannot move expired item %" PRIu64 " to %s: %s (it stays)", q->name,
                      h->item.id, to, errstr(rc));
            return rc;
        }
    }
    if ((rc = jnl_remove_head(j, h)) < 0)
        return rc;
    queue_top(q)->expired++;
    return 0;
}

/* queue_expire for one journal: q itself, not its lanes. */
static int expire_one(struct queue *q, uint64_t now, uint64_t max, uint64_t *removed)
{
    struct jnl *j;
    struct jnl_head h;
    int rc;
    if ((rc = registry_jnl(q->reg, q, &j)) < 0)
        return rc;
    for (uint64_t n = 0;; n++) {
        if ((rc = jnl_head(j, &h)) == -ENOENT)
            return 0;
        if (rc < 0)
            return rc;
        if (!h.item.expire_ms || h.item.expire_ms > now)
            return 0;
        if (n >= max)
            return 1;
        if ((rc = queue_expire_head(q, j, &h)) < 0)
            return rc;
        (*removed)++;
        queue_note_pending(q);
    }
}

int queue_expire(struct queue *q, uint64_t now, uint64_t max, uint64_t *removed)
{
    uint64_t before = *removed;
    int rc = expire_one(q, now, max, removed);
    for (int i = 0; rc == 0 && q->lanes && i < QUEUE_LEVELS; i++)
        if (q->lanes->q[i])
            rc = expire_one(q->lanes->q[i], now, max - (*removed - before), removed);
    return rc;
}

int queue_sweep(struct registry *r, uint64_t now, uint64_t budget, uint64_t *removed)
{
    struct list *pos, *next;
    for (pos = r->all.next; pos != &r->all; pos = next) {
        struct queue *q = list_entry(pos, struct queue, all);
        next = pos->next; /* moving an item may create a queue: at the end of the list */
        if (!q->may_expire || q->sweep_epoch == r->sweep_epoch || !q->jnl || q->kind == QK_BUCKET)
            continue; /* (a bucket's expired items are dropped when they are due) */
        if (budget == 0)
            return 1;
        uint64_t n = 0, cap = q->conf->v.max_expire_sweep, max = cap < budget ? cap : budget;
        int rc = expire_one(q, now, max, &n);
        budget -= n;
        *removed += n;
        if (rc == 1 && max < cap)
            return 1; /* the turn's budget ran out in this queue: it goes on next turn */
        q->sweep_epoch = r->sweep_epoch;
        if (rc == 0 && q->jnl) {
            struct jnl_stats st;
            jnl_get_stats(q->jnl, &st);
            if (st.items == 0)
                q->may_expire = 0;
        }
    }
    return 0;
}

int queue_sweep_old(struct registry *r, uint64_t now, size_t budget)
{
    struct list *pos, *next;
    for (pos = r->all.next; pos != &r->all; pos = next) {
        struct queue *q = list_entry(pos, struct queue, all);
        next = pos->next;
        uint64_t age = q->conf->v.max_queue_age_ms;
        /* (a queue with lanes or delayed items is never empty: its lanes
         * stay, and its delayed items are not in its counts) */
        if (q->level >= 0 || q->lanes || q->delays || !age || now < q->create_ms || now - q->create_ms < age ||
            !list_empty(&q->opens) || !list_empty(&q->waiters) || q->pinned)
            continue;
        if (!q->jnl && !q->parked_valid)
            continue; /* not opened since start: looked at once it is used (opening each here would stall) */
        struct jnl_stats st;
        if (registry_queue_stats(r, q, &st) < 0 || st.items > 0)
            continue;
        if (budget == 0)
            return 1;
        budget--;
        log_info(r->log, "queue %s: empty and older than its max_queue_age: deleted", q->name);
        if (registry_delete(r, q) == 0)
            r->queue_expires++;
    }
    return 0;
}
