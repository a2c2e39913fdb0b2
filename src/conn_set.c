/* conn_set.c: the set command: items in the request, large items streamed
 * to a file of their own as they arrive, and their answers. */
#include "conn_int.h"

#include "conffile.h"
#include "enqueue.h"
#include "server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

void ci_do_set(struct conn *c, const struct proto_req *req, const char *data)
{
    struct server *s = c->srv;
    struct enq_targets t;
    s->st.cmd_set++;
    struct jnl_ticket *ticket = NULL;
    const char *why;
    struct jnl_attrs a = {.flags = req->flags,
                          .expire_ms = enq_expiry_ms(req->exptime),
                          .priority = (req->key.opts & PROTO_OPT_PRI) ? req->key.priority : JNL_PRIORITY_DEFAULT};
    int rc = enq_targets(c->srv->reg, &req->key, a.expire_ms, queue_now_ms(), &t, &why);
    if (rc == 0 && why) { /* nothing stored, no queue made */
        enq_targets_free(&t);
        ci_reply(c, REPLY_CLIENT_ERROR, why);
        return;
    }
    if (rc == 0 && t.n == 1) { /* the common case: written with the turn's batch */
        a.visible_ms = t.q[0].due;
        if ((rc = queue_admit(t.q[0].q, req->bytes)) == 0)
            rc = queue_put_deferred(t.q[0].q, &a, data, (size_t)req->bytes, &ticket, NULL);
    } else if (rc == 0) {
        rc = enq_store_copies(&t, &a, data, (size_t)req->bytes, NULL); /* none: fanout_only with no child */
    }
    int sync = rc == 0 && enq_wants_sync(c->srv->reg, &t, (req->key.opts & PROTO_OPT_SYNC) != 0);
    enq_targets_free(&t);
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
    c->stream.begin_ms = queue_now_ms(); /* a delay counts from the set's start */
    const char *why = enq_refusal(c->srv->reg, &req->key, enq_expiry_ms(req->exptime), c->stream.begin_ms);
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
    c->stream.key = req->key;
    memcpy(c->stream.name, req->key.name.p, req->key.name.len);
    c->stream.key.name.p = c->stream.key.full.p = c->stream.name; /* the request's buffer goes */
    c->stream.key.full.len = req->key.name.len;
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
    struct enq_targets t = {.n = 0};
    size_t refused = 0;
    const char *why = NULL;
    if (rc == 0)
        rc = enq_targets(c->srv->reg, &c->stream.key, enq_expiry_ms(c->stream.exptime), c->stream.begin_ms, &t, &why);
    if (rc == 0 && why) { /* a reload between its start and end changed the settings */
        enq_targets_free(&t);
        jnl_blob_discard(b);
        ci_reply(c, REPLY_CLIENT_ERROR, why);
        return 1;
    }
    struct jnl_attrs a = {.flags = c->stream.flags,
                          .expire_ms = enq_expiry_ms(c->stream.exptime),
                          .priority = c->stream.priority};
    /* The last copy adopts the streamed file; each other one a link to it. */
    for (size_t i = 0; i < t.n && rc == 0; i++) {
        struct jnl_blob *copy = b;
        a.visible_ms = t.q[i].due;
        if ((rc = queue_admit(t.q[i].q, c->stream.bytes)) > 0) {
            refused++;
            rc = 0;
            continue;
        }
        if (rc < 0 || (i + 1 < t.n && (rc = registry_blob_clone(c->srv->reg, b, c->stream.bytes, &copy)) < 0))
            break;
        if (copy == b)
            b = NULL;
        rc = queue_put_blob(t.q[i].q, copy, &a);
    }
    int sync = rc == 0 && enq_wants_sync(c->srv->reg, &t, c->stream.sync);
    if (t.n)
        enq_targets_free(&t);
    jnl_blob_discard(b);
    if (rc == 0 && refused)
        rc = QADMIT_FULL;
    set_done(c, rc, c->stream.noreply, sync, NULL);
    return 1;
}
