/* enqueue.c: what a set does before and around its append (enqueue.h). */
#include "enqueue.h"

#include "conffile.h"
#include "queue/queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

uint64_t enq_expiry_ms(int64_t exptime)
{
    if (exptime == 0)
        return 0;
    if (exptime < 0)
        return 1; /* already expired */
    if (exptime < 1000000)
        return queue_now_ms() + (uint64_t)exptime * 1000;
    return (uint64_t)exptime * 1000;
}

/* The settings queue name (len bytes) has: its own when it exists (*q: it;
 * no lookup per set), else the config file's (*q NULL). */
static const struct qconf *conf_of(struct registry *r, const char *name, size_t len, struct queue **q)
{
    *q = registry_find(r, name, len);
    return *q ? (*q)->conf : conffile_queue(r->conf, name, len);
}

/* The due time (Unix ms) of a set of key k at time now into a queue of
 * settings qc named name_len bytes, or 0 for an item visible at once: its /at= or
 * /delay=, else the queue's default_delay. A delay over the queue's
 * max_delay, or past the item's expiry (expire_ms, 0: none, or the queue's
 * max_age), is refused: *why says so (a typo must not enqueue an item that
 * can never be handed out). */
static uint64_t due_of(const struct qconf *qc, size_t name_len, const struct proto_key *k, uint64_t expire_ms,
                       uint64_t now, const char **why)
{
    uint64_t due = 0;
    *why = NULL;
    if (k->opts & PROTO_OPT_AT)
        due = k->at_ms;
    else if (k->opts & PROTO_OPT_DELAY)
        due = now + k->delay_ms;
    else if (qc->v.default_delay_ms)
        due = now + qc->v.default_delay_ms;
    if (due <= now)
        return 0; /* a time past: visible at once */
    uint64_t expire = expire_ms, max_age = qc->v.max_age_ms;
    if (max_age && (!expire || expire > now + max_age))
        expire = now + max_age;
    if (name_len > QUEUE_DELAYED_NAME_MAX)
        *why = "bad option: a queue name of over 236 bytes takes no delayed items";
    else if (qc->v.max_delay_ms && due - now > qc->v.max_delay_ms)
        *why = "bad option: delay over the queue's max_delay";
    else if (expire && expire <= due)
        *why = "bad option: delay past the item's expiry";
    return due;
}

void enq_targets_free(struct enq_targets *t)
{
    if (t->q != t->one)
        free(t->q);
}

static int add_target(struct enq_targets *t, struct queue *q, uint64_t due)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->q[i].q == q)
            return 0; /* named twice (an alias of a queue and its child) */
    if (t->n == t->cap) {
        size_t cap = t->cap * 2;
        struct enq_target *p = t->q == t->one ? malloc(cap * sizeof(*p)) : realloc(t->q, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        if (t->q == t->one)
            memcpy(p, t->one, sizeof(t->one));
        t->q = p;
        t->cap = cap;
    }
    t->q[t->n++] = (struct enq_target){.q = q, .due = due};
    return 0;
}

/* Adds queue name (made if missing, unless fanout_only) and its fanout
 * children to t, each copy due at due. */
static int targets_of(struct registry *r, const char *name, size_t len, struct queue *q, const struct qconf *qc,
                      uint64_t due, struct enq_targets *t)
{
    int rc;
    if (!qc->v.fanout_only) {
        if ((!q && (rc = registry_get_or_create(r, name, len, &q)) < 0) || (rc = add_target(t, q, due)) < 0)
            return rc;
    }
    struct list *kids = registry_children(r, name, len), *pos;
    for (pos = kids ? kids->next : NULL; pos && pos != kids; pos = pos->next)
        if ((rc = add_target(t, list_entry(pos, struct queue, fanout_link), due)) < 0)
            return rc;
    return 0;
}

/* Why the destinations of alias a refuse a set of key k (NULL: none does). */
static const char *alias_refusal(struct registry *r, const struct conf_alias *a, const struct proto_key *k,
                                 uint64_t expire_ms, uint64_t now)
{
    const char *why = NULL;
    struct queue *q;
    for (size_t i = 0; i < a->ndest && !why; i++) {
        size_t len = strlen(a->dest[i]);
        due_of(conf_of(r, a->dest[i], len, &q), len, k, expire_ms, now, &why);
    }
    return why;
}

const char *enq_refusal(struct registry *r, const struct proto_key *k, uint64_t expire_ms, uint64_t now)
{
    const struct conf_alias *a = conffile_alias(r->conf, k->name.p, k->name.len);
    const char *why = NULL;
    struct queue *q;
    if (a)
        return alias_refusal(r, a, k, expire_ms, now);
    due_of(conf_of(r, k->name.p, k->name.len, &q), k->name.len, k, expire_ms, now, &why);
    return why;
}

int enq_targets(struct registry *r, const struct proto_key *k, uint64_t expire_ms, uint64_t now, struct enq_targets *t,
                const char **why)
{
    const struct conf_alias *a = conffile_alias(r->conf, k->name.p, k->name.len);
    struct queue *q;
    int rc = 0;
    t->q = t->one;
    t->n = 0;
    t->cap = sizeof(t->one) / sizeof(t->one[0]);
    if (!a) { /* one lookup of the queue and its settings for the whole set */
        const struct qconf *qc = conf_of(r, k->name.p, k->name.len, &q);
        uint64_t due = due_of(qc, k->name.len, k, expire_ms, now, why);
        return *why ? 0 : targets_of(r, k->name.p, k->name.len, q, qc, due, t);
    }
    if ((*why = alias_refusal(r, a, k, expire_ms, now))) /* every destination checked before any is made */
        return 0;
    for (size_t i = 0; i < a->ndest && rc == 0; i++) {
        size_t len = strlen(a->dest[i]);
        const struct qconf *qc = conf_of(r, a->dest[i], len, &q);
        const char *ok;
        rc = targets_of(r, a->dest[i], len, q, qc, due_of(qc, len, k, expire_ms, now, &ok), t);
    }
    return rc;
}

int enq_wants_sync(struct registry *r, const struct enq_targets *t, int sync_opt)
{
    for (size_t i = 0; i < t->n && !sync_opt; i++)
        sync_opt = registry_queue_fsync(r, t->q[i].q) == FSYNC_ALWAYS;
    return sync_opt;
}

int enq_store_copies(const struct enq_targets *t, const struct jnl_attrs *attrs, const char *data, size_t len,
                     uint64_t *first_id)
{
    int refused = 0;
    for (size_t i = 0; i < t->n; i++) {
        struct jnl_attrs a = *attrs;
        a.visible_ms = t->q[i].due;
        int rc = queue_admit(t->q[i].q, len);
        if (rc == 0)
            rc = queue_put_id(t->q[i].q, &a, data, len, i == 0 ? first_id : NULL);
        if (rc < 0)
            return rc;
        refused |= rc > 0;
    }
    return refused ? QADMIT_FULL : 0;
}
