/* queue/queue.c: queue semantics over a journal. */
#include "queue/queue.h"

#include "conffile.h"
#include "queue/delay.h"
#include "queue/lease.h"
#include "queue/registry.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

uint64_t queue_now_ms(void)
{
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

void qitem_release(struct qitem *it)
{
    free(it->data);
    it->data = NULL;
    if (it->fd >= 0)
        it->io->close(it->io->ctx, it->fd);
    it->fd = -1;
}

int queue_load_payload(struct jnl *j, const struct jnl_head *h, struct qitem *out)
{
    out->where = h->item;
    out->from = NULL;
    out->flags = h->item.flags;
    out->len = h->item.len;
    out->data = NULL;
    out->fd = -1;
    out->io = jnl_io(j);
    if (h->item.len > QUEUE_INLINE_MAX)
        return jnl_payload_fd(j, &h->item, &out->fd, &out->off);
    out->data = malloc(h->item.len ? h->item.len : 1);
    if (!out->data)
        return -ENOMEM;
    int rc = jnl_read(j, &h->item, 0, out->data, h->item.len);
    if (rc < 0) {
        free(out->data);
        out->data = NULL;
    }
    return rc;
}

void queue_note_pending(struct queue *q)
{
    if (q->jnl && jnl_pending(q->jnl))
        registry_note_pending(q->reg, q);
}

static int get_head(struct queue *q, enum qget_mode mode, struct qopen **open, struct qitem *out)
{
    struct jnl_head h;
    struct jnl *j;
    int rc;
    uint64_t now = queue_now_ms();
    if ((rc = registry_jnl(q->reg, q, &j)) < 0)
        return rc;
    for (;;) {
        if ((rc = jnl_head(j, &h)) < 0)
            return rc;
        if (h.item.expire_ms && h.item.expire_ms <= now) {
            if ((rc = queue_expire_head(q, j, &h)) < 0)
                return rc;
            continue;
        }
        rc = queue_load_payload(j, &h, out);
        if (rc == -EBADMSG) {
            log_error(q->reg->log, "queue %s: item %" PRIu64 " fails its checksum: dropped", q->name, h.item.id);
            if ((rc = jnl_remove_head(j, &h)) < 0)
                return rc;
            continue;
        }
        if (rc < 0)
            return rc;
        break;
    }
    out->from = q;
    switch (mode) {
    case QGET_PEEK:
        return 0;
    case QGET_REMOVE:
        if ((rc = jnl_remove_head(j, &h)) == 0)
            queue_top(q)->removed++;
        break;
    case QGET_OPEN: {
        struct qopen *o = calloc(1, sizeof(*o));
        if (o)
            o->lease_idx = LEASE_NONE;
        if (!o) {
            rc = -ENOMEM;
            break;
        }
        if ((rc = jnl_hold_head(j, &h, o, &o->node)) < 0) {
            free(o);
            break;
        }
        o->q = q;
        list_init(&o->conn_link);
        list_push_back(&q->opens, &o->q_link);
        *open = o;
        queue_top(q)->transactions++;
        if (o->node->item.deliveries > 1)
            queue_top(q)->redeliveries++;
        break;
    }
    }
    if (rc < 0) {
        qitem_release(out);
        return rc;
    }
    queue_top(q)->age_ms = now > h.item.add_ms ? now - h.item.add_ms : 0;
    registry_maintain(q->reg, q);
    return 0;
}

int queue_get_lane(struct queue *q, enum qget_mode mode, struct qopen **open, struct qitem *out)
{
    int rc = get_head(q, mode, open, out);
    queue_note_pending(q); /* expired items may have gone even when nothing was served */
    return rc;
}

int queue_get(struct queue *q, enum qget_mode mode, struct qopen **open, struct qitem *out)
{
    return q->lanes ? queue_lanes_get(q, mode, open, out) : queue_get_lane(q, mode, open, out);
}

struct jnl_ticket *queue_ack_ticket(struct queue *q) { return q->jnl ? jnl_ack_ticket(q->jnl) : NULL; }

static void qopen_free(struct qopen *o)
{
    struct open_tally *t = o->tally;
    if (t && !t->stale && t->q == queue_top(o->q) && t->n > 0)
        t->n--;
    lease_clear(&o->q->reg->leases, o);
    list_remove(&o->conn_link);
    list_remove(&o->q_link);
    free(o);
}

int queue_confirm(struct qopen *o)
{
    struct queue *q = o->q;
    /* an open item keeps its journal open (jnl_idle), so q->jnl is set */
    int rc = jnl_confirm(q->jnl, o->node);
    if (rc < 0)
        return rc;
    queue_top(q)->removed++;
    qopen_free(o);
    registry_maintain(q->reg, q);
    queue_note_pending(q);
    return 0;
}

void queue_release(struct qopen *o)
{
    struct queue *q = o->q;
    jnl_release(q->jnl, o->node);
    qopen_free(o);
    queue_top(q)->canceled++;
    queue_wake(q);
}

/* How long an item handed out `deliveries` times waits when given back:
 * the queue's retry_delay, doubling with each hand-out up to its max. */
static uint64_t retry_wait(const struct queue *q, uint32_t deliveries)
{
    const struct backoff *b = &q->conf->v.retry_delay;
    uint64_t w = b->min_ms;
    for (uint32_t i = 1; i < deliveries && w && w < b->max_ms; i++)
        w *= 2;
    return w < b->max_ms ? w : b->max_ms;
}

void queue_abort_delay(struct qopen *o, uint64_t delay_ms)
{
    struct queue *q = o->q;
    struct jnl_node *n = o->node;
    int over = queue_over_deliveries(q, &n->item);
    if (!over && !delay_ms) {
        queue_release(o);
        return;
    }
    jnl_release(q->jnl, n);
    qopen_free(o);
    queue_top(q)->canceled++;
    int rc = over ? queue_dead_letter(q, n, JF_REASON_MAX_DELIVERIES)
                  : queue_delay_node(q, n, queue_now_ms() + delay_ms);
    if (rc < 0)
        queue_wake(q); /* it stays here, given back now */
}

void queue_abort(struct qopen *o) { queue_abort_delay(o, retry_wait(o->q, o->node->item.deliveries)); }

int queue_bury(struct qopen *o)
{
    struct queue *q = o->q;
    struct jnl_node *n = o->node;
    jnl_release(q->jnl, n);
    qopen_free(o);
    int rc = queue_dead_letter(q, n, JF_REASON_BURIED);
    if (rc < 0) {
        queue_top(q)->canceled++;
        queue_wake(q);
    }
    return rc;
}

/* a, with the add time set when the caller left it 0, and the expiry
 * capped by the queue's max_age (an item that would never expire
 * included), as Kestrel's adjustExpiry does. */
static struct jnl_attrs stamped(const struct queue *q, const struct jnl_attrs *a)
{
    struct jnl_attrs s = *a;
    if (!s.add_ms)
        s.add_ms = queue_now_ms();
    uint64_t max_age = q->conf ? q->conf->v.max_age_ms : 0;
    if (max_age && (s.expire_ms == 0 || s.expire_ms > s.add_ms + max_age))
        s.expire_ms = s.add_ms + max_age;
    return s;
}

/* q's items on disk for its limits: every level's (registry_queue_stats),
 * and its delayed ones (counted now if a start left them uncounted), which
 * *kept gets with the open ones: dropping visible items frees neither. */
static int held_stats(struct queue *q, struct jnl_stats *st, struct jnl_stats *kept)
{
    uint64_t dbytes = 0, ditems = 0;
    int rc = registry_queue_stats(q->reg, q, st);
    if (rc < 0)
        return rc;
    if (q->delays) {
        if (!queue_delays_counted(q))
            queue_count_delayed(q);
        ditems = queue_delayed_items(q);
        dbytes = queue_delayed_bytes(q);
    }
    st->items += ditems;
    st->bytes += dbytes;
    kept->items = st->open + ditems;
    kept->bytes = st->open_bytes + dbytes;
    return 0;
}

/* Ownership: borrows q; items dropped to make room are gone for good. */
int queue_admit(struct queue *q, uint64_t len)
{
    const struct qsettings *set = &q->conf->v;
    struct jnl *j;
    struct jnl_stats st, kept;
    struct jnl_head h;
    if (len > set->max_item_size)
        return QADMIT_TOO_LARGE;
    if (set->max_items == UINT64_MAX && set->max_size == UINT64_MAX)
        return QADMIT_OK;
    int rc = held_stats(q, &st, &kept); /* every level's items count, and the delayed ones */
    if (rc < 0)
        return rc;
    int fits = st.items < set->max_items && len <= set->max_size && st.bytes <= set->max_size - len;
    if (fits)
        return QADMIT_OK;
    /* Room is made only when dropping items neither held open nor delayed
     * can make enough: a set that would be refused anyway drops nothing. */
    if (!set->discard_old_when_full || set->max_items == 0 || len > set->max_size || kept.items >= set->max_items ||
        kept.bytes > set->max_size - len)
        return QADMIT_FULL;
    do { /* the oldest item not held open (of the least urgent level) goes */
        if (q->lanes)
            rc = queue_lanes_discard(q);
        else if ((rc = registry_jnl(q->reg, q, &j)) == 0 && (rc = jnl_head(j, &h)) == 0)
            rc = jnl_remove_head(j, &h);
        if (rc < 0)
            break;
        q->discarded++;
        if ((rc = held_stats(q, &st, &kept)) < 0)
            break;
    } while (!(st.items < set->max_items && st.bytes <= set->max_size - len));
    queue_note_pending(q);
    return rc == -ENOENT ? QADMIT_FULL : rc < 0 ? rc : QADMIT_OK;
}

/* An item with attributes s was appended to q: counted, and handed to a
 * waiter. */
static void added(struct queue *q, const struct jnl_attrs *s)
{
    q->may_expire |= s->expire_ms != 0;
    queue_top(q)->total_items++;
    queue_wake(q);
}

/* The journal queue an item of attributes *a goes to: q, or its lane for
 * the item's priority (which the lane then implies: not written per item). */
static int route(struct queue **q, struct jnl_attrs *a)
{
    if (a->priority == JNL_PRIORITY_DEFAULT)
        return 0;
    unsigned level = a->priority;
    a->priority = JNL_PRIORITY_DEFAULT;
    return registry_lane((*q)->reg, *q, level, q);
}

/* Whether an item of attributes *a waits for its time (a delayed item). */
static int delayed(const struct jnl_attrs *a) { return a->visible_ms && a->visible_ms > queue_now_ms(); }

int queue_put_id(struct queue *q, const struct jnl_attrs *a, const void *data, size_t len, uint64_t *id)
{
    struct jnl *j;
    struct jnl_attrs s = stamped(q, a);
    if (delayed(&s))
        return queue_put_delayed(q, &s, data, len, NULL, id);
    int rc = route(&q, &s);
    if (rc == 0)
        rc = registry_jnl(q->reg, q, &j);
    if (rc == 0)
        rc = jnl_append(j, &s, data, len);
    if (rc < 0)
        return rc;
    if (id) {
        struct jnl_item it;
        jnl_last_appended(j, &it);
        *id = it.id;
    }
    added(q, &s);
    return 0;
}

int queue_put(struct queue *q, const struct jnl_attrs *a, const void *data, size_t len)
{
    return queue_put_id(q, a, data, len, NULL);
}

int queue_put_deferred(struct queue *q, const struct jnl_attrs *a, const void *data, size_t len,
                       struct jnl_ticket **ticket, uint64_t *id)
{
    struct jnl *j;
    struct jnl_attrs s = stamped(q, a);
    if (delayed(&s)) { /* written now: its place goes into the bucket's index */
        *ticket = NULL;
        return queue_put_delayed(q, &s, data, len, NULL, id);
    }
    int rc = route(&q, &s);
    if (rc == 0)
        rc = registry_jnl(q->reg, q, &j);
    uint64_t next = rc == 0 ? jnl_next_id(j) : 0; /* the id the append takes */
    if (rc == 0)
        rc = jnl_append_deferred(j, &s, data, len, ticket);
    if (rc < 0)
        return rc;
    if (id)
        *id = next;
    registry_note_pending(q->reg, q);
    added(q, &s);
    return 0;
}

int queue_restore(struct queue *q, const struct jnl_item *it)
{
    struct jnl *j;
    int rc = registry_jnl(q->reg, q, &j);
    if (rc == 0)
        rc = jnl_restore(j, it);
    if (rc == 0) {
        queue_note_pending(q);
        queue_wake(q);
    }
    return rc;
}

int queue_put_blob(struct queue *q, struct jnl_blob *b, const struct jnl_attrs *a)
{
    struct jnl_attrs s = stamped(q, a);
    struct jnl *j;
    if (delayed(&s))
        return queue_put_delayed(q, &s, NULL, 0, b, NULL);
    int rc = route(&q, &s);
    if (rc == 0)
        rc = registry_jnl(q->reg, q, &j);
    if (rc < 0) {
        jnl_blob_discard(b);
        return rc;
    }
    rc = jnl_append_blob(j, b, &s);
    if (rc < 0)
        return rc;
    added(q, &s);
    return 0;
}

static int flush_one(struct queue *q);

int queue_flush(struct queue *q)
{
    int rc = flush_one(q);
    if (q->delays) { /* delayed items too */
        int e = queue_flush_delayed(q);
        rc = rc < 0 ? rc : e;
    }
    for (int i = 0; q->lanes && i < QUEUE_LEVELS; i++)
        if (q->lanes->q[i]) {
            int e = flush_one(q->lanes->q[i]);
            rc = rc < 0 ? rc : e;
        }
    return rc;
}

static int flush_one(struct queue *q)
{
    struct list *pos, *tmp;
    struct jnl *j;
    int rc = registry_jnl(q->reg, q, &j);
    if (rc < 0)
        return rc;
    /* What waits to be written first: if that fails, nothing is cleared and
     * the open items stay their connections'. */
    if ((rc = jnl_flush(j)) < 0)
        return rc;
    list_for_each_safe(pos, tmp, &q->opens)
        qopen_free(list_entry(pos, struct qopen, q_link));
    rc = jnl_clear(j);
    if (q->level < 0)
        q->flushes++;
    if (rc == 0)
        registry_maintain(q->reg, q);
    return rc;
}

void queue_wait(struct queue *q, struct qwaiter *w) { list_push_back(&q->waiters, &w->link); }

void queue_wait_front(struct queue *q, struct qwaiter *w) { list_push_front(&q->waiters, &w->link); }

void queue_unwait(struct qwaiter *w) { list_remove(&w->link); }

void queue_wake(struct queue *q)
{
    struct list *first;
    q = queue_top(q); /* an item in a lane is the queue's */
    while ((first = list_first(&q->waiters)) != NULL) {
        struct qwaiter *w = list_entry(first, struct qwaiter, link);
        list_remove(&w->link);
        if (!w->cb(w, QWAIT_READY))
            break;
    }
}
