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
            ci_out_str(c, "NOT_STORED\r\n");
        return;
    }
    ci_journal_touched(c);
    if (sync)
        ci_want_sync(c);
    if (noreply)
        jnl_ticket_put(ticket);
    else if (ticket)
        ci_out_ticket(c, ticket);
    else
        ci_out_str(c, "STORED\r\n");
}

/* A set to an alias: a copy into each destination queue, each written now
 * (one answer cannot wait for several batches). STORED when every copy
 * is stored; NOT_STORED when a destination's limits refused its copy (the
 * others are kept); SERVER_ERROR at the first error. */
static int set_alias(struct conn *c, const struct conf_alias *a, const struct jnl_attrs *attrs, const char *data,
                     size_t len)
{
    int refused = 0;
    for (size_t i = 0; i < a->ndest; i++) {
        struct queue *q;
        int rc = registry_get_or_create(c->srv->reg, a->dest[i], strlen(a->dest[i]), &q);
        if (rc == 0 && (rc = queue_admit(q, len)) == 0)
            rc = queue_put(q, attrs, data, len);
        if (rc < 0)
            return rc;
        refused |= rc > 0;
    }
    return refused ? QADMIT_FULL : 0;
}

void ci_do_set(struct conn *c, const struct proto_req *req, const char *data)
{
    struct server *s = c->srv;
    struct queue *q;
    s->st.cmd_set++;
    struct jnl_ticket *ticket = NULL;
    const struct conf_alias *alias = conffile_alias(s->reg->conf, req->key.name.p, req->key.name.len);
    if (alias) {
        struct jnl_attrs a = {.flags = req->flags, .expire_ms = expiry_ms(req->exptime),
                              .priority = JNL_PRIORITY_DEFAULT};
        set_done(c, set_alias(c, alias, &a, data, (size_t)req->bytes), req->noreply, req->key.opts & PROTO_OPT_SYNC,
                 NULL);
        return;
    }
    int rc = registry_get_or_create(s->reg, req->key.name.p, req->key.name.len, &q);
    if (rc == 0)
        rc = queue_admit(q, req->bytes);
    if (rc == 0)
        rc = queue_put_deferred(q, &(struct jnl_attrs){.flags = req->flags, .expire_ms = expiry_ms(req->exptime),
                                                       .priority = JNL_PRIORITY_DEFAULT},
                                data, (size_t)req->bytes, &ticket);
    set_done(c, rc, req->noreply, req->key.opts & PROTO_OPT_SYNC, ticket);
}

/* Starts streaming a large set's data to a file of its own, unless the
 * queue's max_item_size refuses it at once (its data is then dropped). */
void ci_stream_begin(struct conn *c, const struct proto_req *req)
{
    c->srv->st.cmd_set++;
    if (conffile_alias(c->srv->reg->conf, req->key.name.p, req->key.name.len)) {
        /* One streamed file cannot become several items yet. */
        if (!req->noreply)
            ci_out_str(c, "SERVER_ERROR items over 256 KiB cannot be set to an alias\r\n");
        c->swallow_left = req->bytes + 2;
        c->state = CONN_SWALLOW;
        return;
    }
    const struct qconf *qc = conffile_queue(c->srv->reg->conf, req->key.name.p, req->key.name.len);
    if (req->bytes > qc->v.max_item_size) {
        set_done(c, QADMIT_TOO_LARGE, req->noreply, 0, NULL);
        c->swallow_left = req->bytes + 2;
        c->state = CONN_SWALLOW;
        return;
    }
    c->stream.flags = req->flags;
    c->stream.exptime = req->exptime;
    c->stream.noreply = req->noreply;
    c->stream.sync = (req->key.opts & PROTO_OPT_SYNC) != 0;
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
    if (c->stream_left > 0 || c->rlen - *pos < 2)
        return 0;
    struct jnl_blob *b = c->blob;
    c->blob = NULL;
    c->state = CONN_READ;
    if (c->rbuf[*pos] != '\r' || c->rbuf[*pos + 1] != '\n') {
        jnl_blob_discard(b);
        ci_out_str(c, "CLIENT_ERROR bad data chunk\r\n");
        c->close_after = 1;
        return 0;
    }
    *pos += 2;
    int rc = c->stream_err;
    struct queue *q;
    if (rc == 0 && (rc = registry_get_or_create(c->srv->reg, c->stream.name, c->stream.name_len, &q)) == 0 &&
        (rc = queue_admit(q, c->stream.bytes)) == 0) {
        rc = queue_put_blob(q, b, &(struct jnl_attrs){.flags = c->stream.flags,
                                                      .expire_ms = expiry_ms(c->stream.exptime),
                                                      .priority = JNL_PRIORITY_DEFAULT});
        b = NULL;
    }
    jnl_blob_discard(b);
    set_done(c, rc, c->stream.noreply, c->stream.sync, NULL);
    return 1;
}
