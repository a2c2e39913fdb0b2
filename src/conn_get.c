/* conn_get.c: the get command: keys and their options, open items, waits
 * for items (/t=), and giving removals back when their fsync fails. */
#include "conn_int.h"
#include "util/errstr.h"

#include "queue/delay.h"

#include "conffile.h"
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The oldest item this connection holds open on q (opens are kept in the
 * order they were made), or NULL. */
struct qopen *ci_open_on(struct conn *c, const struct queue *q)
{
    struct list *pos;
    for (pos = c->opens.next; pos != &c->opens; pos = pos->next) {
        struct qopen *o = list_entry(pos, struct qopen, conn_link);
        if (queue_top(o->q) == q) /* held in one of q's lanes, or in q */
            return o;
    }
    return NULL;
}

size_t ci_open_count(struct conn *c, const struct queue *q)
{
    /* the count of the queue asked last is kept (a walk of every open item
     * each time made each /open cost O(items the connection holds)) */
    struct open_tally *t = &c->opened;
    if (!t->stale && t->q == q)
        return t->n;
    size_t n = 0;
    struct list *pos;
    for (pos = c->opens.next; pos != &c->opens; pos = pos->next)
        n += queue_top(list_entry(pos, struct qopen, conn_link)->q) == q;
    *t = (struct open_tally){.q = q, .n = n};
    return n;
}

/* The open item of this connection on q holding item id, or NULL. */
static struct qopen *open_with(struct conn *c, const struct queue *q, uint64_t id)
{
    struct list *pos;
    for (pos = c->opens.next; pos != &c->opens; pos = pos->next) {
        struct qopen *o = list_entry(pos, struct qopen, conn_link);
        if (o->q == q && o->node->item.id == id)
            return o;
    }
    return NULL;
}

static void write_value(struct conn *c, const struct proto_key *k, struct qitem *it)
{
    const struct proto_slice *key = c->srv->cfg->compat == COMPAT_KESTREL ? &k->name : &k->full;
    /* gets (and every binary get): a cas value a client can parse; the
     * item's id in the low 48 bits, its delivery count (this hand-out
     * included) in the high 16 */
    uint64_t n = (uint64_t)it->where.deliveries + 1;
    uint64_t cas = (it->where.id & ((UINT64_C(1) << 48) - 1)) | ((n < 0xffff ? n : 0xffff) << 48);
    c->get_served++;
    ci_reply_value(c, key, it->flags, it->len, c->get_cas, cas);
    if (it->data) {
        ci_out_bytes(c, it->data, (size_t)it->len);
        free(it->data);
        it->data = NULL;
    } else {
        ci_out_file(c, it->fd, it->off, it->len);
        it->fd = -1;
    }
    ci_reply_value_end(c);
}

/* Notes a removal the pending fsync covers, to undo if it fails. */
void ci_remember_undo(struct conn *c, const struct queue *q, const struct jnl_item *it, int open)
{
    if (c->nundo == c->capundo) {
        size_t cap = c->capundo ? c->capundo * 2 : 4;
        struct conn_undo *u = realloc(c->undo, cap * sizeof(*u));
        if (!u) {
            log_error(&c->srv->log, "out of memory: a failed fsync could not give back item %" PRIu64, it->id);
            return;
        }
        c->undo = u;
        c->capundo = cap;
    }
    c->undo[c->nundo++] = (struct conn_undo){.dir_id = q->dir_id, .item = *it, .open = open};
}

void ci_undo(struct conn *c, const struct conn_undo *undo, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        const struct conn_undo *u = &undo[i];
        struct queue *q = registry_find_dir(c->srv->reg, u->dir_id);
        if (!q)
            continue; /* deleted meanwhile: nothing to give back to */
        if (u->open) {
            struct qopen *o = open_with(c, q, u->item.id);
            if (o)
                queue_release(o); /* its answer never went out: no delivery to count */
            continue;
        }
        int rc = queue_restore(q, &u->item);
        if (rc < 0)
            log_error(&c->srv->log, "queue %s: cannot give back item %" PRIu64 " after a failed write: %s", q->name,
                      u->item.id, errstr(rc));
    }
}

/* The fsync covering this request's removals failed and their answers are
 * replaced by an error: the items go back to the head of their queues. */
void ci_apply_undo(struct conn *c)
{
    ci_undo(c, c->undo, c->nundo);
    c->nundo = 0;
}

/* Runs one key of a get. */
enum get_result ci_get_key(struct conn *c, const struct proto_key *k)
{
    struct server *s = c->srv;
    int rc;
    /* an alias is set-only: it looks like an empty queue */
    struct queue *q = conffile_alias(s->reg->conf, k->name.p, k->name.len)
                          ? NULL
                          : registry_find(s->reg, k->name.p, k->name.len);
    /* A fanout child ("parent+child") exists from its first mention on, a
     * get included: it receives the parent's sets from then on. */
    if (!q && proto_fanout_parent_len(k->name.p, k->name.len) &&
        !conffile_alias(s->reg->conf, k->name.p, k->name.len) &&
        (rc = registry_get_or_create(s->reg, k->name.p, k->name.len, &q)) < 0) {
        ci_out_server_error(c, rc);
        return GK_ERROR;
    }
    struct qopen *o = q ? ci_open_on(c, q) : NULL;
    if (k->opts & PROTO_OPT_ABORT) {
        if (o && (k->opts & PROTO_OPT_DELAY))
            queue_abort_delay(o, k->delay_ms);
        else if (o)
            queue_abort(o);
        return GK_EMPTY;
    }
    if (k->opts & PROTO_OPT_BURY) {
        if (o && (rc = queue_bury(o)) < 0) {
            ci_out_server_error(c, rc);
            return GK_ERROR;
        }
        if (o) /* under fsync always, END once the copy is on stable storage */
            ci_journal_touched(c, q);
        return GK_EMPTY;
    }
    if (k->opts & PROTO_OPT_CLOSE) {
        if (o) {
            struct jnl_item closed = o->node->item;
            struct queue *jq = o->q; /* the journal it is in: q's, or one of q's lanes */
            if ((rc = queue_confirm(o)) < 0) {
                ci_out_server_error(c, rc);
                return GK_ERROR;
            }
            ci_journal_touched(c, jq);
            ci_guard_add(c, jq, &closed, 0);
            if (c->sync_wanted)
                ci_remember_undo(c, jq, &closed, 0); /* a failed fsync brings it back */
        }
        if (!(k->opts & PROTO_OPT_OPEN))
            return GK_EMPTY;
    }
    enum qget_mode mode = (k->opts & PROTO_OPT_PEEK) ? QGET_PEEK : (k->opts & PROTO_OPT_OPEN) ? QGET_OPEN : QGET_REMOVE;
    struct qopen *no = NULL;
    struct qitem it = {.fd = -1};
    if (k->opts & PROTO_OPT_DELAYED) /* (with /peek) the soonest delayed item */
        rc = q ? queue_peek_delayed(q, &it) : -ENOENT;
    else
        rc = q ? queue_get(q, mode, &no, &it) : -ENOENT;
    if (rc == -ENOENT)
        return GK_EMPTY;
    if (rc < 0) {
        ci_out_server_error(c, rc);
        return GK_ERROR;
    }
    if (no) {
        list_push_back(&c->opens, &no->conn_link);
        no->tally = &c->opened; /* its end counts it out */
        if (!c->opened.stale && c->opened.q == queue_top(no->q))
            c->opened.n++;
        uint64_t ttr = (k->opts & PROTO_OPT_TTR) ? k->ttr_ms : q->conf->v.open_timeout_ms;
        if (ttr && lease_set(&s->reg->leases, no, uv_now(s->loop) + ttr) < 0)
            log_error(&s->log, "out of memory: item %" PRIu64 " of %s is held without its lease", no->node->item.id,
                      q->name);
    }
    if (mode != QGET_PEEK) { /* it.from: the journal it came from, q's or a lane's */
        ci_journal_touched(c, it.from);
        ci_guard_add(c, it.from, &it.where, no != NULL);
        if (c->sync_wanted)
            ci_remember_undo(c, it.from, &it.where, no != NULL);
    }
    write_value(c, k, &it);
    s->st.get_hits++;
    ci_outcome(c, CMD_HIT);
    return GK_SERVED;
}

static int wants_item(const struct proto_key *k)
{
    return !(k->opts & (PROTO_OPT_ABORT | PROTO_OPT_BURY)) &&
           (!(k->opts & PROTO_OPT_CLOSE) || (k->opts & PROTO_OPT_OPEN));
}

static void count_get(struct conn *c, const struct proto_key *k)
{
    if (k->opts & PROTO_OPT_PEEK)
        c->srv->st.cmd_peek++;
    else if (wants_item(k))
        c->srv->st.cmd_get++;
}

void ci_end_wait(struct conn *c)
{
    if (c->waiting)
        queue_unwait(&c->waiter);
    c->waiting = 0;
    uv_timer_stop(&c->timer);
    free(c->wait_copy);
    c->wait_copy = NULL;
}

void conn_cancel_wait(struct conn *c) { ci_end_wait(c); }

static void wait_over(struct conn *c)
{
    ci_end_wait(c);
    c->active_ms = uv_now(c->srv->loop);
    c->get_done++;
    c->state = CONN_READ;
    c->resume = 1;
    ci_defer(c);
}

static int waiter_cb(struct qwaiter *w, enum qwait_event ev)
{
    struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, waiter));
    c->waiting = 0;
    if (ev == QWAIT_READY) {
        enum get_result r = ci_get_key(c, &c->wait_key);
        if (r == GK_EMPTY) {
            struct queue *q = registry_find(c->srv->reg, c->wait_key.name.p, c->wait_key.name.len);
            if (q) {
                queue_wait_front(q, w);
                c->waiting = 1;
                return 0;
            }
        }
        if (r == GK_SERVED || r == GK_ERROR) {
            c->get_failed = r == GK_ERROR;
            c->wait_served = r == GK_SERVED;
            wait_over(c);
            return 1;
        }
    }
    c->srv->st.get_misses++;
    ci_outcome(c, CMD_MISS);
    wait_over(c);
    return 1;
}

static void timer_cb(uv_timer_t *t)
{
    struct conn *c = t->data;
    c->srv->st.get_misses++;
    ci_outcome(c, CMD_MISS);
    wait_over(c);
}

/* Starts waiting for an item on key k (a copy is kept). Returns 0, or
 * -ENOMEM when it cannot wait. */
int ci_start_wait(struct conn *c, const struct proto_key *k)
{
    /* A key with options can be as long as the request line (t=000...1). */
    if (!(c->wait_copy = malloc(k->full.len ? k->full.len : 1)))
        return -ENOMEM;
    memcpy(c->wait_copy, k->full.p, k->full.len);
    c->wait_key = *k;
    c->wait_key.full.p = c->wait_copy;
    c->wait_key.name.p = c->wait_copy + (k->name.p - k->full.p);
    c->waiter.cb = waiter_cb;
    c->waiter.name = c->wait_key.name.p;
    c->waiter.name_len = c->wait_key.name.len;
    struct queue *q = registry_find(c->srv->reg, k->name.p, k->name.len);
    if (q)
        queue_wait(q, &c->waiter);
    else
        registry_wait_absent(c->srv->reg, &c->waiter);
    c->waiting = 1;
    uv_timer_start(&c->timer, timer_cb, k->timeout_ms, 0);
    c->state = CONN_WAIT;
    return 0;
}

/* The open rule: a connection holds at most max_open items open per queue
 * (1 unless the queue's settings say more). Checked for the whole request
 * before any key is served: returns the limit a key would pass, or 0. */
static uint64_t open_conflict(struct conn *c, const struct proto_req *req)
{
    struct proto_slice rest = req->keys, r2;
    struct proto_key k, k2;
    while (proto_next_key(&rest, &k)) {
        if (!(k.opts & PROTO_OPT_OPEN))
            continue;
        struct queue *q = registry_find(c->srv->reg, k.name.p, k.name.len);
        const struct qconf *qc = q ? q->conf : conffile_queue(c->srv->reg->conf, k.name.p, k.name.len);
        uint64_t max = qc->v.max_open;
        uint64_t held = q ? ci_open_count(c, q) : 0, more = 1;
        if (k.opts & PROTO_OPT_CLOSE)
            held -= held > 0; /* it closes the oldest first */
        r2 = rest;
        while (proto_next_key(&r2, &k2)) /* the same queue opened again later in the request */
            if ((k2.opts & PROTO_OPT_OPEN) && k2.name.len == k.name.len && memcmp(k2.name.p, k.name.p, k.name.len) == 0)
                more++;
        if (held + more > max)
            return max;
    }
    return 0;
}

/* Returns 1 when the request is finished, 0 when it waits. */
static int do_get(struct conn *c, const struct proto_req *req)
{
    uint64_t max;
    if (c->get_done == 0 && (max = open_conflict(c, req)) != 0) {
        char why[128];
        if (max == 1)
            snprintf(why, sizeof(why), "an item is already open on this queue; close or abort it first");
        else
            snprintf(why, sizeof(why),
                     "%" PRIu64 " items are open on this queue (its max_open); close or abort one first", max);
        ci_reply(c, REPLY_CLIENT_ERROR, why);
        return 1;
    }
    struct proto_slice rest = req->keys;
    struct proto_key k;
    size_t idx = 0;
    if (c->get_failed) {
        /* A waited-for key answered SERVER_ERROR: that is the whole answer. */
        c->get_failed = 0;
        c->get_done = 0;
        return 1;
    }
    while (proto_next_key(&rest, &k)) {
        if (idx++ < c->get_done)
            continue;
        count_get(c, &k);
        enum get_result r = ci_get_key(c, &k);
        if (r == GK_ERROR) {
            c->get_done = 0;
            return 1;
        }
        if (r == GK_EMPTY && wants_item(&k)) {
            if ((k.opts & PROTO_OPT_TIMEOUT) && k.timeout_ms > 0 && ci_start_wait(c, &k) == 0)
                return 0;
            c->srv->st.get_misses++;
            ci_outcome(c, CMD_MISS);
        }
        c->get_done++;
    }
    c->get_done = 0;
    /* binary: one key, its value the answer, else a miss (with the key) */
    if (c->get_served)
        ci_reply(c, REPLY_GET_END, NULL);
    else
        ci_reply_n(c, REPLY_MISS, req->keys.p, req->keys.len);
    return 1;
}

int ci_do_get(struct conn *c, const struct proto_req *req)
{
    ci_guard_begin(c); /* kept while the get waits */
    c->get_cas = req->gets;
    int done = do_get(c, req);
    if (done) {
        ci_guard_end(c);
        c->get_served = 0;
    }
    return done;
}
