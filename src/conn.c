/* conn.c: one client connection: reading, the request loop, fsync waits
 * and the life cycle. Requests are parsed from the read buffer in order; a
 * request that must wait (an item with /t=, an fsync) holds the ones behind
 * it. The commands are in conn_cmd.c, sets in conn_set.c, gets in
 * conn_get.c, the output path in conn_out.c. */
#include "conn_int.h"

#include "proto/bin.h"
#include "server.h"
#include "tls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RBUF_MIN (16 * 1024)

static void conn_process(struct conn *c);

void ci_defer(struct conn *c) { server_defer(c->srv, c); }

/* ---- input ---- */

int ci_rbuf_reserve(struct conn *c, size_t need)
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

void ci_input_room(struct conn *c, char **p, size_t *n)
{
    if (c->rcap < rbuf_base(c))
        ci_rbuf_reserve(c, rbuf_base(c));
    else if (c->rcap == c->rlen)
        ci_rbuf_reserve(c, c->rlen + RBUF_MIN);
    *p = c->rbuf + c->rlen;
    *n = c->rcap - c->rlen;
}

void ci_input(struct conn *c, size_t n)
{
    c->rlen += n;
    c->srv->st.bytes_read += (uint64_t)n;
    c->active_ms = uv_now(c->srv->loop);
    conn_process(c);
}

void ci_input_end(struct conn *c) { conn_close(c); }

int ci_closing(const struct conn *c) { return c->state == CONN_CLOSING; }

/* reading is set first: a transport may deliver input at once (TLS bytes
 * already decrypted), and the requests it runs may stop reading again */
static void start_reading(struct conn *c)
{
    if (c->reading || c->state == CONN_CLOSING)
        return;
    c->reading = 1;
    if (c->tp->read_start(c) < 0 && c->state != CONN_CLOSING)
        c->reading = 0;
}

static void stop_reading(struct conn *c)
{
    if (c->reading && c->state != CONN_CLOSING)
        c->tp->read_stop(c);
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
    if (!c->sync_wanted) {
        ci_mark_sync(c);
        /* The removals the get in progress made before this one are
         * replaced with the rest of its answer if the fsync fails: they are
         * given back then too. */
        const struct out_guard *g = c->guard ? c->guard->guard : NULL;
        for (size_t i = 0; g && i < g->n; i++) {
            const struct conn_undo *u = &g->e[i].undo;
            struct queue *q = registry_find_dir(c->srv->reg, u->dir_id);
            if (q)
                ci_remember_undo(c, q, &u->item, u->open);
        }
    }
    c->sync_wanted = 1;
}

void ci_journal_touched(struct conn *c, const struct queue *q)
{
    enum fsync_policy p = q ? registry_queue_fsync(c->srv->reg, q) : c->srv->cfg->fsync.policy;
    if (p == FSYNC_ALWAYS)
        ci_want_sync(c);
}

static void conn_process(struct conn *c)
{
    size_t pos = 0;
    const struct config *cfg = c->srv->cfg;
    /* the protocol, by the first byte: the binary one's request magic */
    if (!c->started && c->rlen > 0)
        c->rt.binary = (unsigned char)c->rbuf[0] == PROTO_BIN_REQ_MAGIC;
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
            if (!ci_stream_step(c, &pos))
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
        ssize_t r = c->rt.binary ? ci_bin_parse(c, line, c->rlen - pos, &req)
                                 : proto_parse(line, c->rlen - pos, cfg->max_line, &req);
        if (r == PROTO_NEED_MORE)
            break;
        if (r < 0 && c->rt.binary) { /* answered: where the next request starts is unknown */
            pos = c->rlen;
            break;
        }
        if (r == PROTO_TOO_LONG) {
            ci_out_str(c, "CLIENT_ERROR line too long\r\n");
            c->close_after = 1;
            pos = c->rlen;
            break;
        }
        c->started = 1;
        ssize_t used = ci_run(c, line, (size_t)r, c->rlen - pos, &req);
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
    free(c->wchunk); /* a TLS write cut short by the close (plain TCP's is freed by its callback) */
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
    list_for_each_safe(pos, tmp, &c->out)
        ci_outseg_free(list_entry(pos, struct outseg, link));
    c->guard = NULL;
    c->out_bytes = 0;
    c->tp->close(c);
    c->reading = 0; /* the transport is gone: nothing may stop or start it again */
    c->handles = 2;
    uv_close((uv_handle_t *)&c->tcp, close_cb);
    uv_close((uv_handle_t *)&c->timer, close_cb);
}

int conn_accept(struct server *s, uv_stream_t *listener, struct tls_ctx *tls)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->srv = s;
    c->tp = &transport_tcp;
    list_init(&c->link);
    list_init(&c->pending);
    list_init(&c->opens);
    c->opened.stale = 1;
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
    if (tls && (rc = tls_conn_start(c, tls)) < 0) {
        conn_close(c);
        return rc;
    }
    if (s->nconns > s->cfg->max_connections) {
        s->st.refused_connections++;
        if (c->tp != &transport_tcp) { /* no answer before a handshake: closed */
            conn_close(c);
            return 0;
        }
        ci_out_str(c, "SERVER_ERROR too many connections\r\n");
        c->close_after = 1;
        ci_defer(c);
        return 0;
    }
    s->st.total_connections++;
    start_reading(c);
    return 0;
}
