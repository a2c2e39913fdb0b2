/* conn.c: one client connection: reading, the request loop, sets, fsync
 * waits and the life cycle. Requests are parsed from the read buffer in
 * order; a request that must wait (an item with /t=, an fsync) holds the ones
 * behind it. Gets live in conn_get.c, the output path in conn_out.c. */
#include "conn_int.h"

#include "server.h"
#include "stats.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RBUF_MIN (16 * 1024)

static void conn_process(struct conn *c);

static struct conn *conn_of_tcp(uv_handle_t *h) { return h->data; }

void ci_defer(struct conn *c) { server_defer(c->srv, c); }

/* ---- input ---- */

static int rbuf_reserve(struct conn *c, size_t need)
{
    if (c->rcap >= need)
        return 0;
    size_t cap = c->rcap ? c->rcap : RBUF_MIN;
    while (cap < need)
        cap *= 2;
    char *p = realloc(c->rbuf, cap);
    if (!p)
        return -ENOMEM;
    c->rbuf = p;
    c->rcap = cap;
    return 0;
}

static size_t rbuf_base(const struct conn *c)
{
    return c->srv->cfg->max_line > RBUF_MIN ? c->srv->cfg->max_line : RBUF_MIN;
}

/* Frees the read buffer when nothing is left in it, so an idle connection
 * holds none. A buffer with input in it keeps its size: a set waiting for its
 * data has reserved exactly the room it needs. */
static void rbuf_release_if_empty(struct conn *c)
{
    if (c->rlen == 0) {
        free(c->rbuf);
        c->rbuf = NULL;
        c->rcap = 0;
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct conn *c = conn_of_tcp(h);
    if (c->rcap < rbuf_base(c))
        rbuf_reserve(c, rbuf_base(c));
    else if (c->rcap == c->rlen)
        rbuf_reserve(c, c->rlen + RBUF_MIN);
    *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct conn *c = conn_of_tcp((uv_handle_t *)s);
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0)
        return;
    c->rlen += (size_t)nread;
    c->srv->st.bytes_read += (uint64_t)nread;
    c->active_ms = uv_now(c->srv->loop);
    conn_process(c);
}

static void start_reading(struct conn *c)
{
    if (!c->reading && c->state != CONN_CLOSING && uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
        c->reading = 1;
}

static void stop_reading(struct conn *c)
{
    if (c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
}

/* Reads while there is room for input and the client keeps up with its
 * answers; stops otherwise, so a client cannot make the server buffer
 * without bound. */
static void update_reading(struct conn *c)
{
    int want = c->state != CONN_CLOSING && !c->close_after && c->out_bytes <= OUT_HIGH &&
               !(c->rcap > 0 && c->rlen == c->rcap);
    if (want)
        start_reading(c);
    else
        stop_reading(c);
}

/* ---- requests ---- */

void ci_mark_sync(struct conn *c);

/* The request must not be answered before an fsync: remember where its
 * answer starts, so a failed fsync can replace it. Call before the request
 * writes any output that depends on the fsync. */
void ci_want_sync(struct conn *c)
{
    if (!c->sync_wanted)
        ci_mark_sync(c);
    c->sync_wanted = 1;
}

void ci_journal_touched(struct conn *c)
{
    if (c->srv->cfg->fsync == FSYNC_ALWAYS)
        ci_want_sync(c);
}

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

static void do_set(struct conn *c, const struct proto_req *req, const char *data)
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
static void stream_begin(struct conn *c, const struct proto_req *req)
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
static int stream_step(struct conn *c, size_t *pos)
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

/* Runs one parsed request. line is its first byte; avail the bytes from line
 * on. Returns the bytes it consumed, 0 when it needs more input, or -1 when
 * processing must stop with nothing consumed (a wait). */
static ssize_t run(struct conn *c, const char *line, size_t len, size_t avail, const struct proto_req *req)
{
    struct server *s = c->srv;
    int rc;
    switch (req->type) {
    case PROTO_SET: {
        if (req->bytes > s->cfg->max_item_size) {
            s->st.cmd_set++;
            ci_out_str(c, "SERVER_ERROR object too large for cache\r\n");
            c->swallow_left = req->bytes + 2;
            c->state = CONN_SWALLOW;
            return (ssize_t)len;
        }
        if (req->bytes > QUEUE_INLINE_MAX) {
            stream_begin(c, req);
            return (ssize_t)len;
        }
        size_t total = len + (size_t)req->bytes + 2;
        if (avail < total) {
            if (rbuf_reserve(c, (size_t)(line - c->rbuf) + total) < 0) {
                ci_out_server_error(c, -ENOMEM);
                c->swallow_left = req->bytes + 2;
                c->state = CONN_SWALLOW;
                return (ssize_t)len;
            }
            return 0;
        }
        const char *data = line + len;
        if (data[req->bytes] != '\r' || data[req->bytes + 1] != '\n') {
            ci_out_str(c, "CLIENT_ERROR bad data chunk\r\n");
            c->close_after = 1;
            return (ssize_t)total;
        }
        do_set(c, req, data);
        return (ssize_t)total;
    }
    case PROTO_GET:
        return ci_do_get(c, req) ? (ssize_t)len : -1;
    case PROTO_DELETE: {
        struct queue *q = registry_find(s->reg, req->key.name.p, req->key.name.len);
        rc = q ? registry_delete(s->reg, q) : 0;
        ci_journal_touched(c);
        if (!req->noreply) {
            if (rc < 0)
                ci_out_server_error(c, rc);
            else
                ci_out_str(c, "DELETED\r\n");
        }
        return (ssize_t)len;
    }
    case PROTO_FLUSH: {
        struct queue *q = registry_find(s->reg, req->key.name.p, req->key.name.len);
        rc = q ? queue_flush(q) : 0;
        ci_journal_touched(c);
        if (!req->noreply) {
            if (rc < 0)
                ci_out_server_error(c, rc);
            else
                ci_out_str(c, "END\r\n");
        }
        return (ssize_t)len;
    }
    case PROTO_FLUSH_ALL:
        rc = registry_flush_all(s->reg);
        ci_journal_touched(c);
        if (!req->noreply) {
            if (rc < 0)
                ci_out_server_error(c, rc);
            else
                ci_out_str(c, s->cfg->compat == COMPAT_KESTREL ? "Flushed all queues.\r\n" : "OK\r\n");
        }
        return (ssize_t)len;
    case PROTO_STATS: {
        struct buf b = {0};
        stats_write(s, &b);
        ci_out_bytes(c, b.data, b.len);
        buf_free(&b);
        return (ssize_t)len;
    }
    case PROTO_VERSION:
        ci_out_str(c, "VERSION " DARNER_VERSION "\r\n");
        return (ssize_t)len;
    case PROTO_QUIT:
        c->close_after = 1;
        return (ssize_t)len;
    case PROTO_VERBOSITY:
        if (!req->noreply)
            ci_out_str(c, "OK\r\n");
        return (ssize_t)len;
    case PROTO_UNKNOWN:
        ci_out_str(c, "ERROR\r\n");
        break;
    case PROTO_BAD:
        ci_out_fmt(c, "CLIENT_ERROR %s\r\n", req->error ? req->error : "bad command line format");
        if (req->fatal)
            c->close_after = 1;
        break;
    }
    if (req->swallow && !c->close_after) {
        c->swallow_left = req->swallow;
        c->state = CONN_SWALLOW;
    }
    return (ssize_t)len;
}

static void conn_process(struct conn *c)
{
    size_t pos = 0;
    const struct config *cfg = c->srv->cfg;
    while (!c->close_after) {
        if (c->state == CONN_SWALLOW) {
            size_t n = c->rlen - pos < c->swallow_left ? c->rlen - pos : (size_t)c->swallow_left;
            pos += n;
            c->swallow_left -= n;
            if (c->swallow_left > 0)
                break;
            c->state = CONN_READ;
        }
        if (c->state == CONN_STREAM) {
            if (!stream_step(c, &pos))
                break;
            if (c->sync_wanted) {
                c->state = CONN_SYNC;
                break;
            }
        }
        if (c->state != CONN_READ || pos == c->rlen)
            break;
        if (c->out_bytes > OUT_HIGH)
            break; /* the client reads slower than it asks: wait for the output to drain */
        struct proto_req req;
        const char *line = c->rbuf + pos;
        ssize_t r = proto_parse(line, c->rlen - pos, cfg->max_line, &req);
        if (r == PROTO_NEED_MORE)
            break;
        if (r == PROTO_TOO_LONG) {
            ci_out_str(c, "CLIENT_ERROR line too long\r\n");
            c->close_after = 1;
            pos = c->rlen;
            break;
        }
        ssize_t used = run(c, line, (size_t)r, c->rlen - pos, &req);
        if (used <= 0)
            break;
        pos += (size_t)used;
        if (c->sync_wanted) {
            c->state = CONN_SYNC;
            break;
        }
    }
    if (pos > 0) {
        memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
        c->rlen -= pos;
    }
    rbuf_release_if_empty(c);
    update_reading(c);
    ci_defer(c);
}

/* ---- fsync waits ---- */

static void sync_done(struct sync_waiter *w, int status)
{
    struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, syncw));
    if (status < 0) {
        /* Replace the answers that waited for it with the error. */
        ci_out_truncate(c, c->sync_mark);
        ci_out_server_error(c, status);
        ci_apply_undo(c);
    }
    c->nundo = 0;
    c->state = CONN_READ;
    c->resume = 1;
    ci_defer(c);
}

/* ---- life cycle ---- */

void conn_run_deferred(struct conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    if (c->resume && c->state == CONN_READ) {
        c->resume = 0;
        conn_process(c);
    }
    if (c->sync_wanted && c->state == CONN_SYNC) {
        c->sync_wanted = 0;
        syncer_enqueue(&c->srv->sync, &c->syncw);
        return;
    }
    ci_write_next(c);
}

static void close_cb(uv_handle_t *h)
{
    struct conn *c = h->data;
    if (--c->handles > 0)
        return;
    struct server *s = c->srv;
    (void)s;
    free(c->rbuf);
    free(c);
}

int conn_idle_since(const struct conn *c, uint64_t *since_ms)
{
    /* Waiting for the client, also in the middle of a request (a line or a
     * set's data that stopped coming); not while the server owes it
     * something (an answer, an item it waits for, an fsync). */
    int waits_for_client = c->state == CONN_READ || c->state == CONN_STREAM || c->state == CONN_SWALLOW;
    /* Deferred work (an answer to write, say the END of a wait that just
     * timed out in the same timer pass) is the server's, not the client's. */
    if (!waits_for_client || c->resume || list_linked(&c->pending) || c->writing || !list_empty(&c->out) ||
        c->close_after)
        return 0;
    *since_ms = c->active_ms;
    return 1;
}

void conn_close(struct conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    ci_end_wait(c);
    syncer_cancel(&c->syncw);
    jnl_blob_discard(c->blob);
    c->blob = NULL;
    free(c->undo);
    c->undo = NULL;
    c->nundo = 0;
    c->state = CONN_CLOSING;
    list_remove(&c->pending);
    list_remove(&c->link);
    c->srv->nconns--;
    struct list *first;
    while ((first = list_first(&c->opens)) != NULL)
        queue_abort(list_entry(first, struct qopen, conn_link));
    struct list *pos, *tmp;
    /* A removal whose answer is dropped here is lost with its client, as for
     * any get answered to a client that vanished. */
    list_for_each_safe(pos, tmp, &c->out) ci_outseg_free(list_entry(pos, struct outseg, link));
    c->guard = NULL;
    c->out_bytes = 0;
    c->handles = 2;
    uv_close((uv_handle_t *)&c->tcp, close_cb);
    uv_close((uv_handle_t *)&c->timer, close_cb);
}

int conn_accept(struct server *s, uv_stream_t *listener)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->srv = s;
    list_init(&c->link);
    list_init(&c->pending);
    list_init(&c->opens);
    list_init(&c->out);
    list_init(&c->waiter.link);
    list_init(&c->syncw.link);
    c->syncw.done = sync_done;
    int rc = uv_tcp_init(s->loop, &c->tcp);
    if (rc < 0) {
        free(c);
        return rc;
    }
    c->tcp.data = c;
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    list_push_back(&s->conns, &c->link);
    s->nconns++;
    if ((rc = uv_accept(listener, (uv_stream_t *)&c->tcp)) < 0) {
        conn_close(c);
        return rc;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->active_ms = uv_now(s->loop);
    if (s->nconns > s->cfg->max_connections) {
        s->st.refused_connections++;
        ci_out_str(c, "SERVER_ERROR too many connections\r\n");
        c->close_after = 1;
        ci_defer(c);
        return 0;
    }
    s->st.total_connections++;
    start_reading(c);
    return 0;
}
