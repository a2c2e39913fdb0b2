/* conn_set.c: the set command: items in the request, large items streamed
 * to a file of their own as they arrive, and their answers. */
#include "conn_int.h"

#include "conffile.h"
#include "server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint64_t expiry_ms(int64_t exptime)
{
    if (exptime == 0)
        return 0;
    if (exptime < 0)
        return 1; /* already expired */
    if (exptime < 1000000)
        return queue_now_ms() + (uint64_t)exptime * 1000;
    return (uint64_t)exptime * 1000;
}

/* The due time (Unix ms) of a set of key k, or 0 for an item visible at
 * once: its /at= or /delay=, else the queue's default_delay. A delay over
 * the queue's max_delay, or past the item's expiry (its exptime or the
 * queue's max_age), is refused: *why says so (a typo must not enqueue an
 * item that can never be handed out). */
static uint64_t due_of(struct conn *c, const struct proto_key *k, int64_t exptime, const char **why)
{
    /* an existing queue has its settings resolved: no lookup per set */
    struct queue *q = registry_find(c->srv->reg, k->name.p, k->name.len);
    const struct qconf *qc = q ? q->conf : conffile_queue(c->srv->reg->conf, k->name.p, k->name.len);
    uint64_t now = queue_now_ms(), due = 0;
    *why = NULL;
    if (k->opts & PROTO_OPT_AT)
        due = k->at_ms;
    else if (k->opts & PROTO_OPT_DELAY)
        due = now + k->delay_ms;
    else if (qc->v.default_delay_ms)
        due = now + qc->v.default_delay_ms;
    if (due <= now)
        return 0; /* a time past: visible at once */
    uint64_t expire = expiry_ms(exptime), max_age = qc->v.max_age_ms;
    if (max_age && (!expire || expire > now + max_age))
        expire = now + max_age;
    if (k->name.len > QUEUE_DELAYED_NAME_MAX)
        *why = "bad option: a queue name of over 236 bytes takes no delayed items";
    else if (qc->v.max_delay_ms && due - now > qc->v.max_delay_ms)
        *why = "bad option: delay over the queue's max_delay";
    else if (expire && expire <= due)
        *why = "bad option: delay past the item's expiry";
    return due;
}

/* Answers a set whose item was appended (rc 0), refused by the queue's
 * limits (rc a QADMIT_* value > 0) or not stored for an error (-errno).
 * ticket (ours; NULL when the item was written already) decides the answer
 * once the turn's batch is written. */
static void set_done(struct conn *c, int rc, int noreply, int sync, struct jnl_ticket *ticket)
{
    if (rc < 0) {
        ci_out_server_error(c, rc);
        return;
    }
    if (rc > 0) { /* full, or the item is over the queue's max_item_size */
        if (!noreply)
            ci_reply(c, rc == QADMIT_TOO_LARGE ? REPLY_TOO_LARGE : REPLY_NOT_STORED, NULL);
        return;
    }
    if (sync)
        ci_want_sync(c);
    if (noreply)
        jnl_ticket_put(ticket);
    else if (ticket)
        ci_out_ticket(c, ticket);
    else
        ci_reply(c, REPLY_STORED, NULL);
}

/* The queues one set stores a copy in: each destination (the queue named,
 * or an alias's destination queues), unless it is fanout_only, and every
 * fanout child of each. */
struct targets {
    struct queue *one[4]; /* most sets: no allocation */
    struct queue **q;
    size_t n, cap;
};

static void targets_free(struct targets *t)
{
    if (t->q != t->one)
        free(t->q);
}

static int add_target(struct targets *t, struct queue *q)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->q[i] == q)
            return 0; /* named twice (an alias of a queue and its child) */
    if (t->n == t->cap) {
        size_t cap = t->cap * 2;
        struct queue **p = t->q == t->one ? malloc(cap * sizeof(*p)) : realloc(t->q, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        if (t->q == t->one)
            memcpy(p, t->one, sizeof(t->one));
        t->q = p;
        t->cap = cap;
    }
    t->q[t->n++] = q;
    return 0;
}

static int targets_of(struct conn *c, const char *name, size_t len, struct targets *t)
{
    struct registry *reg = c->srv->reg;
    struct queue *q = registry_find(reg, name, len);
    int rc;
    /* an existing queue has its settings resolved: no lookup per set */
    const struct qconf *qc = q ? q->conf : conffile_queue(reg->conf, name, len);
    if (!qc->v.fanout_only) {
        if ((!q && (rc = registry_get_or_create(reg, name, len, &q)) < 0) || (rc = add_target(t, q)) < 0)
            return rc;
    }
    struct list *kids = registry_children(reg, name, len), *pos;
    for (pos = kids ? kids->next : NULL; pos && pos != kids; pos = pos->next)
        if ((rc = add_target(t, list_entry(pos, struct queue, fanout_link))) < 0)
            return rc;
    return 0;
}

/* Fills t (initialized here; the caller frees it) with the queues a set of
 * the key name stores copies in. */
static int set_targets(struct conn *c, const char *name, size_t len, struct targets *t)
{
    const struct conf_alias *a = conffile_alias(c->srv->reg->conf, name, len);
    int rc = 0;
    t->q = t->one;
    t->n = 0;
    t->cap = sizeof(t->one) / sizeof(t->one[0]);
    if (!a)
        return targets_of(c, name, len, t);
    for (size_t i = 0; i < a->ndest && rc == 0; i++)
        rc = targets_of(c, a->dest[i], strlen(a->dest[i]), t);
    return rc;
}

/* Whether the set must wait for an fsync: /sync, or a target queue whose
 * fsync policy is "always". */
static int wants_sync(struct conn *c, const struct targets *t, int sync_opt)
{
    for (size_t i = 0; i < t->n && !sync_opt; i++)
        sync_opt = registry_queue_fsync(c->srv->reg, t->q[i]) == FSYNC_ALWAYS;
    return sync_opt;
}

/* A set with several copies (fanout, alias): each written now, as one
 * answer cannot wait for several batches. 0 when every copy is stored;
 * QADMIT_FULL when some queue's limits refused its copy (the others are
 * kept); -errno at the first error. */
static int store_copies(const struct targets *t, const struct jnl_attrs *attrs, const char *data, size_t len)
{
    int refused = 0;
    for (size_t i = 0; i < t->n; i++) {
        int rc = queue_admit(t->q[i], len);
        if (rc == 0)
            rc = queue_put(t->q[i], attrs, data, len);
        if (rc < 0)
            return rc;
        refused |= rc > 0;
    }
    return refused ? QADMIT_FULL : 0;
}

void ci_do_set(struct conn *c, const struct proto_req *req, const char *data)
{
    struct server *s = c->srv;
    struct targets t;
    s->st.cmd_set++;
    struct jnl_ticket *ticket = NULL;
    const char *why;
    struct jnl_attrs a = {.flags = req->flags,
                          .expire_ms = expiry_ms(req->exptime),
                          .visible_ms = due_of(c, &req->key, req->exptime, &why),
                          .priority = (req->key.opts & PROTO_OPT_PRI) ? req->key.priority : JNL_PRIORITY_DEFAULT};
    if (why) { /* nothing stored */
        ci_reply(c, REPLY_CLIENT_ERROR, why);
        return;
    }
    int rc = set_targets(c, req->key.name.p, req->key.name.len, &t);
    if (rc == 0 && t.n == 1) { /* the common case: written with the turn's batch */
        if ((rc = queue_admit(t.q[0], req->bytes)) == 0)
            rc = queue_put_deferred(t.q[0], &a, data, (size_t)req->bytes, &ticket);
    } else if (rc == 0) {
        rc = store_copies(&t, &a, data, (size_t)req->bytes); /* none: fanout_only with no child */
    }
    int sync = rc == 0 && wants_sync(c, &t, (req->key.opts & PROTO_OPT_SYNC) != 0);
    targets_free(&t);
    set_done(c, rc, req->noreply, sync, ticket);
}

/* Starts streaming a large set's data to a file of its own, unless the
 * queue's max_item_size refuses it at once (its data is then dropped). */
void ci_stream_begin(struct conn *c, const struct proto_req *req)
{
    c->srv->st.cmd_set++;
    const struct qconf *qc = conffile_queue(c->srv->reg->conf, req->key.name.p, req->key.name.len);
    if (req->bytes > qc->v.max_item_size) {
        set_done(c, QADMIT_TOO_LARGE, req->noreply, 0, NULL);
        c->swallow_left = req->bytes + ci_trailer(c);
        c->state = CONN_SWALLOW;
        return;
    }
    const char *why;
    c->stream.visible_ms = due_of(c, &req->key, req->exptime, &why);
    if (why) { /* refused before any of its data is written: it is dropped */
        ci_reply(c, REPLY_CLIENT_ERROR, why);
        c->swallow_left = req->bytes + ci_trailer(c);
        c->state = CONN_SWALLOW;
        return;
    }
    c->stream.flags = req->flags;
    c->stream.exptime = req->exptime;
    c->stream.noreply = req->noreply;
    c->stream.sync = (req->key.opts & PROTO_OPT_SYNC) != 0;
    c->stream.priority = (req->key.opts & PROTO_OPT_PRI) ? req->key.priority : JNL_PRIORITY_DEFAULT;
    c->stream.name_len = req->key.name.len;
    memcpy(c->stream.name, req->key.name.p, req->key.name.len);
    c->stream_left = c->stream.bytes = req->bytes;
    c->stream_err = registry_blob_begin(c->srv->reg, req->bytes, &c->blob);
    if (c->stream_err < 0)
        c->blob = NULL;
    c->state = CONN_STREAM;
}

/* Takes streamed data from rbuf[*pos..); returns 0 when more must come. */
int ci_stream_step(struct conn *c, size_t *pos)
{
    size_t avail = c->rlen - *pos;
    size_t n = avail < c->stream_left ? avail : (size_t)c->stream_left;
    if (n && c->stream_err == 0) {
        int rc = jnl_blob_write(c->blob, c->rbuf + *pos, n);
        if (rc < 0)
            c->stream_err = rc;
    }
    *pos += n;
    c->stream_left -= n;
    size_t trailer = ci_trailer(c);
    if (c->stream_left > 0 || c->rlen - *pos < trailer)
        return 0;
    struct jnl_blob *b = c->blob;
    c->blob = NULL;
    c->state = CONN_READ;
    if (trailer && (c->rbuf[*pos] != '\r' || c->rbuf[*pos + 1] != '\n')) {
        jnl_blob_discard(b);
        ci_out_str(c, "CLIENT_ERROR bad data chunk\r\n");
        c->close_after = 1;
        return 0;
    }
    *pos += trailer;
    int rc = c->stream_err;
    struct targets t = {.n = 0};
    size_t refused = 0;
    if (rc == 0)
        rc = set_targets(c, c->stream.name, c->stream.name_len, &t);
    struct jnl_attrs a = {.flags = c->stream.flags,
                          .expire_ms = expiry_ms(c->stream.exptime),
                          .visible_ms = c->stream.visible_ms,
                          .priority = c->stream.priority};
    /* The last copy adopts the streamed file; each other one a link to it. */
    for (size_t i = 0; i < t.n && rc == 0; i++) {
        struct jnl_blob *copy = b;
        if ((rc = queue_admit(t.q[i], c->stream.bytes)) > 0) {
            refused++;
            rc = 0;
            continue;
        }
        if (rc < 0 || (i + 1 < t.n && (rc = registry_blob_clone(c->srv->reg, b, c->stream.bytes, &copy)) < 0))
            break;
        if (copy == b)
            b = NULL;
        rc = queue_put_blob(t.q[i], copy, &a);
    }
    int sync = rc == 0 && wants_sync(c, &t, c->stream.sync);
    if (t.n)
        targets_free(&t);
    jnl_blob_discard(b);
    if (rc == 0 && refused)
        rc = QADMIT_FULL;
    set_done(c, rc, c->stream.noreply, sync, NULL);
    return 1;
}
