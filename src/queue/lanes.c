/* queue/lanes.c: priority levels. A queue's items of its default level
 * live in its own journal; every other level that has items is a lane, an
 * ordinary queue (folder, journal, cache, sync, expiry: everything a queue
 * has) that clients never see, named "<queue>\x1f<level>". A queue that never
 * sees /pri= has no lane and is exactly what it was without priorities. A
 * lane stays once made (at most nine per queue): deleted and made again, it
 * would hand out ids its items had before, and a consumer that keeps the
 * ids of `gets` as idempotency keys would drop new items.
 *
 * A get takes from the levels in the order of the queue's priority_policy:
 * strict (the most urgent level with an item) or weighted (start-time fair
 * queueing: each level's virtual time grows by 2^level per item served, and
 * the level with the smallest one is served, so each level gets twice the
 * share of the next while both have items). */
#include "queue/queue.h"

#include "conffile.h"
#include "queue/delay.h"
#include "queue/registry.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

int queue_name_kind(const char *name, size_t len, int *level, size_t *suffix)
{
    *level = -1;
    *suffix = 0;
    if (len >= 3 && name[len - 2] == QUEUE_LANE_MARK && name[len - 1] >= '0' && name[len - 1] <= '9') {
        *level = name[len - 1] - '0';
        *suffix = 2;
        return QK_LANE;
    }
    const char *s = name + len - QUEUE_BUCKET_SUFFIX;
    if (len <= QUEUE_BUCKET_SUFFIX || s[0] != QUEUE_BUCKET_MARK || s[1] < '0' || s[1] > '9' ||
        (s[2] != 'h' && s[2] != 'd') || !((s[3] >= '0' && s[3] <= '9') || (s[3] >= 'a' && s[3] <= 'z')))
        return QK_QUEUE;
    for (int i = 4; i < QUEUE_BUCKET_SUFFIX; i++)
        if (!is_hex(s[i]))
            return QK_QUEUE;
    *level = s[1] - '0';
    *suffix = QUEUE_BUCKET_SUFFIX;
    return QK_BUCKET;
}

uint64_t queue_first_id(const struct queue *q)
{
    return q->kind == QK_LANE ? (uint64_t)(q->level + 1) << QUEUE_LANE_ID_SHIFT : 1;
}

unsigned queue_level_of(const struct queue *q)
{
    return q->level >= 0 ? (unsigned)q->level : (unsigned)queue_top((struct queue *)q)->conf->v.default_priority;
}

/* Links lane l to its queue p. Returns 0 or -ENOMEM. */
static int link_lane(struct queue *p, struct queue *l)
{
    if (!p->lanes && !(p->lanes = calloc(1, sizeof(*p->lanes))))
        return -ENOMEM;
    p->lanes->q[l->level] = l;
    l->parent = p;
    return 0;
}

void registry_unlink_lane(struct queue *l)
{
    struct queue *p = l->parent;
    if (!p)
        return;
    p->lanes->q[l->level] = NULL;
    l->parent = NULL;
    for (int i = 0; i < QUEUE_LEVELS; i++)
        if (p->lanes->q[i])
            return;
    free(p->lanes); /* the last one: a queue without lanes costs nothing more */
    p->lanes = NULL;
}

int registry_link_lanes(struct registry *r)
{
    struct list *pos;
    for (pos = r->all.next; pos != &r->all; pos = pos->next) {
        struct queue *l = list_entry(pos, struct queue, all), *p;
        if (l->kind == QK_QUEUE || l->parent)
            continue;
        /* a lane or bucket whose queue's folder is gone (a delete cut short)
         * gets the queue back, so its items stay reachable */
        int rc = registry_get_or_create(r, l->name, l->name_len - l->suffix_len, &p);
        if (rc < 0 || (rc = l->kind == QK_LANE ? link_lane(p, l) : queue_link_bucket(p, l)) < 0)
            return rc;
    }
    return 0;
}

int registry_lane(struct registry *r, struct queue *q, unsigned level, struct queue **out)
{
    if (level == q->conf->v.default_priority || level >= QUEUE_LEVELS) {
        *out = q;
        return 0;
    }
    if (q->lanes && q->lanes->q[level]) {
        *out = q->lanes->q[level];
        return 0;
    }
    char name[QUEUE_NAME_MAX];
    memcpy(name, q->name, q->name_len);
    name[q->name_len] = QUEUE_LANE_MARK;
    name[q->name_len + 1] = (char)('0' + level);
    struct queue *l;
    int rc = registry_get_or_create(r, name, q->name_len + 2, &l);
    if (rc == 0 && !l->parent)
        rc = link_lane(q, l);
    if (rc == 0)
        *out = l;
    return rc;
}

/* Whether journal queue l may have an item to hand out (it is only sure
 * once its head is read: expired items count until they are dropped). */
static int may_have_item(struct queue *l)
{
    struct jnl_stats st;
    if (l->jnl)
        jnl_get_stats(l->jnl, &st);
    else if (l->parked_valid)
        st = l->parked;
    else
        return 1; /* not opened since start: look */
    return st.items > st.open;
}

int queue_at_level(struct queue *q, unsigned level, struct queue *out[2])
{
    int n = 0;
    if (q->lanes && q->lanes->q[level])
        out[n++] = q->lanes->q[level];
    if (level == q->conf->v.default_priority)
        out[n++] = q;
    return n;
}

/* Takes from the first of the journal queues at level that has an item. */
static int get_at(struct queue *q, unsigned level, enum qget_mode mode, struct qopen **open, struct qitem *out)
{
    struct queue *c[2];
    int n = queue_at_level(q, level, c), rc = -ENOENT;
    for (int i = 0; i < n && rc == -ENOENT; i++)
        if (may_have_item(c[i]))
            rc = queue_get_lane(c[i], mode, open, out);
    return rc;
}

static int get_strict(struct queue *q, enum qget_mode mode, struct qopen **open, struct qitem *out)
{
    int rc = -ENOENT;
    for (unsigned level = 0; level < QUEUE_LEVELS && rc == -ENOENT && q->lanes; level++)
        rc = get_at(q, level, mode, open, out);
    return rc;
}

static int get_weighted(struct queue *q, enum qget_mode mode, struct qopen **open, struct qitem *out)
{
    unsigned tried = 0; /* levels found empty this call */
    for (;;) {
        struct lanes *ls = q->lanes;
        int best = -1;
        for (unsigned level = 0; level < QUEUE_LEVELS && ls; level++) {
            struct queue *c[2];
            int n = queue_at_level(q, level, c), any = 0;
            for (int i = 0; i < n; i++)
                any |= may_have_item(c[i]);
            if (!any || (tried & (1u << level)))
                continue;
            if (ls->vt[level] < ls->vnow) /* back from idle: it starts now, not in the past */
                ls->vt[level] = ls->vnow;
            if (best < 0 || ls->vt[level] < ls->vt[best])
                best = (int)level;
        }
        if (best < 0)
            return -ENOENT;
        int rc = get_at(q, (unsigned)best, mode, open, out);
        if (rc != -ENOENT) {
            if (rc == 0 && mode != QGET_PEEK && q->lanes) {
                q->lanes->vnow = q->lanes->vt[best];
                q->lanes->vt[best] += UINT64_C(1) << best;
            }
            return rc;
        }
        tried |= 1u << best;
    }
}

int queue_lanes_get(struct queue *q, enum qget_mode mode, struct qopen **open, struct qitem *out)
{
    return q->conf->v.priority_policy == PRIORITY_WEIGHTED ? get_weighted(q, mode, open, out)
                                                           : get_strict(q, mode, open, out);
}

uint64_t queue_level_items(struct queue *q, unsigned level)
{
    struct jnl_stats st;
    uint64_t n = 0;
    struct queue *c[2];
    int k = queue_at_level(q, level, c);
    for (int i = 0; i < k; i++)
        if (registry_journal_stats(q->reg, c[i], &st) == 0)
            n += st.items;
    return n;
}

int queue_lanes_discard(struct queue *q)
{
    struct jnl *j;
    struct jnl_head h;
    /* the least urgent level first; in a level, the lane before the queue */
    for (int level = QUEUE_LEVELS - 1; level >= 0; level--) {
        struct queue *c[2];
        int n = queue_at_level(q, (unsigned)level, c);
        for (int i = 0; i < n; i++) {
            if (!may_have_item(c[i]))
                continue;
            int rc = registry_jnl(q->reg, c[i], &j);
            if (rc < 0)
                return rc;
            if ((rc = jnl_head(j, &h)) == -ENOENT)
                continue;
            if (rc < 0 || (rc = jnl_remove_head(j, &h)) < 0)
                return rc;
            queue_note_pending(c[i]);
            return 0;
        }
    }
    return -ENOENT;
}
