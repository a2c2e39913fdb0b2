/* queue/transfer.c: items moved to another queue: dead letters
 * (max_deliveries, get q/bury), kick (dead letters back to the queue they
 * came from), and the moves a crash cut short, finished when their queue
 * opens again. Each move is the three writes of docs/journal-format.md,
 * "Transfers": XFER in the source, the copy in the destination, CONFIRM in
 * the source. */
#include "queue/queue.h"
#include "util/errstr.h"

#include "conffile.h"
#include "queue/delay.h"
#include "queue/registry.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* One move: the item (a node of the source's journal), where it goes and
 * what its copy carries. */
struct move {
    struct queue *src;
    struct jnl *sj; /* the source's journal: open for the whole move (src pinned) */
    struct jnl_node *n;
    struct queue *dst;
    uint8_t reason;      /* enum jf_reason */
    uint32_t deliveries; /* the copy's delivery count */
    uint64_t due;        /* a move into a delay bucket: the copy's due time; else 0 */
};

size_t queue_dlq_name(const struct queue *q, char out[JF_ORIGIN_MAX + 1])
{
    q = q->parent ? q->parent : q; /* a lane's is its queue's */
    const char *d = q->conf->v.dead_letter_queue;
    int n = d[0] ? snprintf(out, JF_ORIGIN_MAX + 1, "%s", d)
                 : snprintf(out, JF_ORIGIN_MAX + 1, "%.*s_errors", (int)q->name_len, q->name);
    /* a name too long for a queue, the queue itself or an alias names no
     * queue to keep dead letters in */
    if (n <= 0 || n > JF_ORIGIN_MAX || ((size_t)n == q->name_len && memcmp(out, q->name, q->name_len) == 0) ||
        conffile_alias(q->reg->conf, out, (size_t)n))
        return 0;
    return (size_t)n;
}

/* Appends m's copy to the destination, written now. Owner: borrows
 * everything. */
static int append_copy(struct move *m, struct jnl *dj)
{
    struct jnl_head h = {.item = m->n->item, .node = m->n};
    struct qitem it;
    int rc = queue_load_payload(m->sj, &h, &it);
    if (rc < 0)
        return rc;
    const struct queue *top = queue_top(m->src); /* a lane's items come from its queue */
    struct jnl_attrs a = {.flags = it.flags,
                          /* a delayed give-back keeps its age and expiry; a dead letter or a
                           * kicked item starts anew, with none */
                          .add_ms = m->due ? h.item.add_ms : queue_now_ms(),
                          .expire_ms = m->due ? h.item.expire_ms : 0,
                          .visible_ms = m->due,
                          .deliveries = m->deliveries,
                          .priority = JNL_PRIORITY_DEFAULT,
                          .origin = top->name,
                          .origin_len = top->name_len,
                          .origin_id = h.item.id,
                          .reason = m->reason};
    struct jnl_blob *b;
    if (it.data) {
        rc = jnl_append(dj, &a, it.data, it.len);
    } else if ((rc = registry_blob_begin(m->src->reg, it.len, &b)) == 0) {
        if ((rc = jnl_blob_write_from(b, it.fd, it.off, it.len)) < 0)
            jnl_blob_discard(b);
        else
            rc = jnl_append_blob(dj, b, &a); /* consumes b */
    }
    qitem_release(&it);
    if (rc == 0 && m->due) { /* into a delay bucket: its index learns it */
        struct jnl_item at;
        jnl_last_appended(dj, &at);
        rc = queue_bucket_added(m->dst, &at);
        return rc < 0 ? 0 : rc; /* written; not indexed before the next start at worst */
    }
    if (rc == 0)
        queue_top(m->dst)->total_items++;
    return rc;
}

/* Whether the copy of a move a crash cut short was made: the XFER named the
 * id the copy would take in the destination (nothing else is appended there
 * in between), so it was if that entry exists and names this item as its
 * origin. An entry that can no longer be read (consumed, its segment
 * deleted) counts as not made: the item is then copied again, delivered
 * twice rather than lost. */
static int copy_made(struct move *m, struct jnl *dj)
{
    char name[JF_ORIGIN_MAX];
    size_t len = 0;
    uint64_t origin_id = 0;
    const struct queue *top = queue_top(m->src);
    if (m->dst->dir_id != m->n->item.xfer_dir || jnl_next_id(dj) <= m->n->item.xfer_id)
        return 0;
    int rc = jnl_origin_of_id(dj, m->n->item.xfer_id, name, &len, &origin_id);
    if (rc == 1 && origin_id == m->n->item.id && len == top->name_len && memcmp(name, top->name, len) == 0)
        return 1;
    if (rc != 1)
        log_warn(m->src->reg->log,
                 "queue %s: cannot tell whether item %" PRIu64 " reached %s before the crash: copied (again)",
                 top->name, m->n->item.id, queue_top(m->dst)->name);
    return 0;
}

/* Makes m's copy unless check says it may exist already (copy_made), then
 * ends the move (jnl_xfer_done). An item whose copy cannot be made is given
 * back to its source. Returns 0 or -errno; -ECANCELED when even giving it
 * back failed (it stays in transfer, for the next open). */
static int finish(struct move *m, int check)
{
    struct registry *r = m->src->reg;
    struct jnl *dj;
    int rc = registry_jnl(r, m->dst, &dj);
    if (rc == 0 && !(check && copy_made(m, dj)))
        rc = append_copy(m, dj);
    if (rc == -EBADMSG) { /* damaged: dropped, as a get drops it */
        log_error(r->log, "queue %s: item %" PRIu64 " fails its checksum: dropped", queue_top(m->src)->name,
                  m->n->item.id);
        return jnl_confirm(m->sj, m->n) < 0 ? -ECANCELED : rc;
    }
    if (rc < 0) {
        log_error(r->log, "queue %s: cannot move item %" PRIu64 " to %s: %s (it stays)", queue_top(m->src)->name,
                  m->n->item.id, queue_top(m->dst)->name, errstr(rc));
        return jnl_xfer_cancel(m->sj, m->n) < 0 ? -ECANCELED : rc;
    }
    queue_note_pending(m->dst);
    if ((rc = jnl_xfer_done(m->sj, m->n, r->sync_epoch_next)) < 0)
        log_error(r->log, "queue %s: moved item %" PRIu64 " to %s, but cannot record its removal here yet: %s",
                  queue_top(m->src)->name, m->n->item.id, queue_top(m->dst)->name, errstr(rc));
    if (m->reason == JF_REASON_MAX_DELIVERIES || m->reason == JF_REASON_BURIED)
        queue_top(m->src)->dead_lettered++;
    if (!m->due)
        queue_wake(m->dst);
    return 0; /* moved: the removal here follows (or the next open writes it) */
}

/* Moves head h of q (journal j) into journal queue m->dst: the whole move
 * (m->src, sj, reason, deliveries and due set by the caller). */
static int move_into(struct move *m, const struct jnl_head *h)
{
    struct queue *q = m->src;
    struct jnl *dj;
    /* the destination's deferred batch first, so the copy takes the next id */
    int rc = registry_jnl(q->reg, m->dst, &dj);
    if (rc == 0)
        rc = jnl_flush(dj);
    struct jnl_xfer x = {.dir = m->dst->dir_id,
                         .id = rc == 0 ? jnl_next_id(dj) : 0,
                         .due = m->due,
                         .reason = m->reason};
    if (rc == 0)
        rc = jnl_xfer_begin(m->sj, h, &x, &m->n);
    if (rc < 0)
        return rc;
    rc = finish(m, 0);
    registry_maintain(q->reg, q);
    queue_note_pending(q);
    return rc;
}

/* Moves head h of q (journal j) to queue dst for reason, into the lane of
 * the item's level there (it keeps its priority). */
static int move_head(struct queue *q, struct jnl *j, const struct jnl_head *h, struct queue *dst, uint8_t reason,
                     uint32_t deliveries)
{
    struct move m = {.src = q, .sj = j, .reason = reason, .deliveries = deliveries};
    int rc = dst == queue_top(q) ? -EINVAL : registry_lane(q->reg, dst, queue_level_of(q), &m.dst);
    return rc < 0 ? rc : move_into(&m, h);
}

int queue_delay_node(struct queue *q, struct jnl_node *n, uint64_t due)
{
    struct move m = {.src = q, .reason = JF_REASON_DELAYED, .deliveries = n->item.deliveries, .due = due};
    q->pinned++; /* opening the bucket must not close this journal */
    int rc = registry_jnl(q->reg, q, &m.sj);
    if (rc == 0)
        rc = queue_bucket_for(queue_top(q), queue_level_of(q), due, &m.dst);
    if (rc == 0) {
        struct jnl_head h = {.item = n->item, .node = n};
        rc = move_into(&m, &h);
    }
    q->pinned--;
    return rc;
}

static int is_dead_letter(const struct jnl_item *it)
{
    return it->reason == JF_REASON_MAX_DELIVERIES || it->reason == JF_REASON_BURIED;
}

int queue_dead_letter(struct queue *q, struct jnl_node *n, uint8_t reason)
{
    char name[JF_ORIGIN_MAX + 1];
    size_t len = queue_dlq_name(q, name);
    struct queue *dst;
    struct jnl *j;
    if (len == 0) {
        log_warn(q->reg->log,
                 "queue %s: no dead-letter queue can be named for it (too long, itself, or an alias): "
                 "item %" PRIu64 " stays",
                 queue_top(q)->name, n->item.id);
        return -EINVAL;
    }
    q->pinned++; /* opening the destination must not close this journal */
    int rc = registry_jnl(q->reg, q, &j);
    if (rc == 0)
        rc = registry_get_or_create(q->reg, name, len, &dst);
    if (rc == 0) {
        struct jnl_head h = {.item = n->item, .node = n};
        rc = move_head(q, j, &h, dst, reason, n->item.deliveries);
    }
    q->pinned--;
    return rc;
}

int queue_over_deliveries(const struct queue *q, const struct jnl_item *it)
{
    uint64_t max = q->conf->v.max_deliveries;
    /* A dead letter is not sent on along a chain of _errors queues. */
    return max && it->deliveries >= max && !is_dead_letter(it);
}

/* Kicks from journal queue q (a queue itself or one of its lanes). */
static int kick_one(struct queue *q, uint64_t max, uint64_t *kicked)
{
    struct jnl *j;
    struct jnl_head h;
    char name[JF_ORIGIN_MAX + 1];
    int rc = 0;
    q->pinned++;
    while (*kicked < max) {
        if ((rc = registry_jnl(q->reg, q, &j)) < 0 || (rc = jnl_head(j, &h)) < 0)
            break;
        /* dead letters from the head on; a plain item ends the run */
        if (!is_dead_letter(&h.item)) {
            rc = 0;
            break;
        }
        struct queue *dst;
        int len = jnl_origin(j, &h.item, name);
        if ((rc = len) < 0 || (rc = len ? registry_get_or_create(q->reg, name, (size_t)len, &dst) : -EBADMSG) < 0)
            break;
        if ((rc = move_head(q, j, &h, dst, JF_REASON_KICKED, 0)) == -EBADMSG)
            continue; /* a damaged item was dropped: on to the next */
        if (rc < 0)
            break;
        (*kicked)++;
    }
    q->pinned--;
    return rc == -ENOENT ? 0 : rc;
}

int queue_kick(struct queue *q, uint64_t max, uint64_t *kicked)
{
    *kicked = 0;
    if (max > QUEUE_KICK_MAX) /* a few writes each: one request never stalls the loop long */
        max = QUEUE_KICK_MAX;
    /* the most urgent level first, as a get takes them */
    int rc = 0;
    for (unsigned level = 0; level < QUEUE_LEVELS && rc == 0 && *kicked < max; level++) {
        struct queue *c[2];
        int n = queue_at_level(q, level, c);
        for (int i = 0; i < n && rc == 0; i++)
            rc = kick_one(c[i], max, kicked);
    }
    return rc;
}

/* The destination of a move a crash cut short, by name (a folder number
 * may have been taken by another queue since): the dead-letter queue, or
 * for a kick the item's origin; then the lane of the item's level. */
static int xfer_dest(struct queue *q, struct jnl *j, const struct jnl_node *n, struct queue **out)
{
    char name[JF_ORIGIN_MAX + 1];
    if (n->item.xfer == JF_REASON_DELAYED) /* into a delay bucket: its own, or one for its due time */
        return queue_bucket_for(queue_top(q), queue_level_of(q), n->item.xfer_due, out);
    int len = n->item.xfer == JF_REASON_KICKED ? jnl_origin(j, &n->item, name) : (int)queue_dlq_name(q, name);
    if (len < 0)
        return len;
    if (len == 0)
        return -EINVAL;
    struct queue *dst;
    int rc = registry_get_or_create(q->reg, name, (size_t)len, &dst);
    return rc < 0 ? rc : registry_lane(q->reg, dst, queue_level_of(q), out);
}

void queue_opened(struct queue *q, struct jnl *j)
{
    struct jnl_node *n;
    if (q->kind == QK_BUCKET) { /* a bucket hands nothing out: only its firing to settle */
        queue_bucket_opened(q, j);
        return;
    }
    q->pinned++;
    /* moves a crash cut short: finished (each node leaves the transfer
     * state either way, so this ends) */
    while ((n = jnl_next_xfer(j)) != NULL) {
        struct move m = {.src = q,
                         .sj = j,
                         .n = n,
                         .reason = n->item.xfer,
                         .deliveries = n->item.deliveries,
                         .due = n->item.xfer_due};
        int rc = xfer_dest(q, j, n, &m.dst);
        if (rc == 0 && queue_top(m.dst) == queue_top(q) && m.reason != JF_REASON_DELAYED)
            rc = -EINVAL;
        if (m.reason == JF_REASON_KICKED)
            m.deliveries = 0;
        if (rc == 0)
            rc = finish(&m, 1);
        else if (jnl_xfer_cancel(j, n) < 0)
            rc = -ECANCELED;
        if (rc < 0)
            log_error(q->reg->log, "queue %s: a move cut short by a crash could not be finished: %s", q->name,
                      errstr(rc));
        if (rc == -ECANCELED)
            break; /* it stays in transfer: the next open tries again */
    }
    /* items open when the server stopped came back: those handed out as
     * often as max_deliveries allows are dead letters now */
    for (n = jnl_returned_next(j, NULL); n;) {
        struct jnl_node *next = jnl_returned_next(j, n);
        if (queue_over_deliveries(q, &n->item) && queue_dead_letter(q, n, JF_REASON_MAX_DELIVERIES) < 0)
            break;
        n = next;
    }
    q->pinned--;
}
