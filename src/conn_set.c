/* conn_set.c: the set command: items in the request, large items streamed
 * to a file of their own as they arrive, and their answers. */
#include "conn_int.h"

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

/* Answers a set whose item was appended (rc 0) or not. ticket (ours; NULL
 * when the item was written already) decides the answer once the turn's
 * batch is written. */
static void set_done(struct conn *c, int rc, int noreply, int sync, struct jnl_ticket *ticket)
{
    if (rc < 0) {
        ci_out_server_error(c, rc);
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

void ci_do_set(struct conn *c, const struct proto_req *req, const char *data)
{
    struct server *s = c->srv;
    struct queue *q;
    s->st.cmd_set++;
    struct jnl_ticket *ticket = NULL;
    int rc = registry_get_or_create(s->reg, req->key.name.p, req->key.name.len, &q);
    if (rc == 0)
        rc = queue_put_deferred(q, &(struct jnl_attrs){.flags = req->flags, .expire_ms = expiry_ms(req->exptime),
                                                       .priority = JNL_PRIORITY_DEFAULT},
                                data, (size_t)req->bytes, &ticket);
    set_done(c, rc, req->noreply, req->key.opts & PROTO_OPT_SYNC, ticket);
}

/* Starts streaming a large set's data to a file of its own. */
void ci_stream_begin(struct conn *c, const struct proto_req *req)
{
    c->srv->st.cmd_set++;
    c->stream.flags = req->flags;
    c->stream.exptime = req->exptime;
    c->stream.noreply = req->noreply;
    c->stream.sync = (req->key.opts & PROTO_OPT_SYNC) != 0;
    c->stream.name_len = req->key.name.len;
    memcpy(c->stream.name, req->key.name.p, req->key.name.len);
    c->stream_left = req->bytes;
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
    if (rc == 0 && (rc = registry_get_or_create(c->srv->reg, c->stream.name, c->stream.name_len, &q)) == 0) {
        rc = queue_put_blob(q, b, &(struct jnl_attrs){.flags = c->stream.flags,
                                                      .expire_ms = expiry_ms(c->stream.exptime),
                                                      .priority = JNL_PRIORITY_DEFAULT});
        b = NULL;
    }
    jnl_blob_discard(b);
    set_done(c, rc, c->stream.noreply, c->stream.sync, NULL);
    return 1;
}
