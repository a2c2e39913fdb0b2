/* conn.c: one client connection. Requests are parsed from the read buffer in
 * order; a request that must wait (an item with /t=, an fsync) holds the ones
 * behind it. Answers collect in the output list and are written once per loop
 * turn, one write in flight at a time. */
#include "conn.h"

#include "server.h"
#include "stats.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RBUF_MIN (16 * 1024)
#define OUT_HIGH (4u << 20) /* stop reading while more output than this waits */
#define STREAM_CHUNK (256 * 1024)

enum get_result { GK_SERVED, GK_EMPTY, GK_WAIT, GK_ERROR };

static void conn_process(struct conn *c);

static struct conn *conn_of_tcp(uv_handle_t *h) { return h->data; }

static void defer(struct conn *c) { server_defer(c->srv, c); }

/* ---- output ---- */

static struct outseg *outseg_new(struct conn *c, int fd)
{
    struct outseg *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->fd = fd;
    list_push_back(&c->out, &o->link);
    return o;
}

static void outseg_free(struct outseg *o)
{
    list_remove(&o->link);
    if (o->fd >= 0)
        close(o->fd);
    buf_free(&o->mem);
    free(o);
}

static void out_bytes(struct conn *c, const void *p, size_t n)
{
    struct list *last = c->out.prev;
    struct outseg *o = last != &c->out ? list_entry(last, struct outseg, link) : NULL;
    if (!o || o->fd >= 0)
        o = outseg_new(c, -1);
    if (!o || buf_append(&o->mem, p, n) < 0) {
        /* Out of memory: the answer cannot be kept; the client must not get
         * a partial one. */
        c->close_after = 1;
        return;
    }
    c->out_bytes += n;
}

static void out_str(struct conn *c, const char *s) { out_bytes(c, s, strlen(s)); }

static void out_fmt(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_fmt(struct conn *c, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0)
        out_bytes(c, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void out_server_error(struct conn *c, int rc)
{
    out_fmt(c, "SERVER_ERROR %s\r\n", strerror(-rc));
}

/* Takes ownership of fd. */
static void out_file(struct conn *c, int fd, uint64_t off, uint64_t len)
{
    struct outseg *o = outseg_new(c, fd);
    if (!o) {
        close(fd);
        c->close_after = 1;
        return;
    }
    o->off = off;
    o->left = len;
    c->out_bytes += len;
}

static void write_next(struct conn *c);

static void write_cb(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    free(c->wchunk);
    c->wchunk = NULL;
    c->writing = 0;
    if (c->state == CONN_CLOSING)
        return;
    c->active_ms = uv_now(c->srv->loop);
    if (status < 0) {
        conn_close(c);
        return;
    }
    write_next(c);
}

static void start_reading(struct conn *c);

/* Bytes one connection may write per loop turn before others get theirs. */
#define WRITE_BUDGET (1u << 20)

static void write_next(struct conn *c)
{
    if (c->writing || c->state == CONN_CLOSING || c->state == CONN_SYNC)
        return;
    size_t budget = WRITE_BUDGET;
    for (;;) {
        struct list *first = list_first(&c->out);
        if (!first) {
            if (c->close_after) {
                conn_close(c);
                return;
            }
            if (!c->reading) {
                /* Output drained: requests held back by it can run now. */
                c->resume = 1;
                defer(c);
            }
            return;
        }
        struct outseg *o = list_entry(first, struct outseg, link);
        size_t n;
        if (o->fd < 0) {
            if (o->mem.len == 0) {
                outseg_free(o);
                continue;
            }
            c->wchunk = o->mem.data;
            n = o->mem.len;
            o->mem.data = NULL;
            o->mem.len = o->mem.cap = 0;
            outseg_free(o);
        } else {
            if (o->left == 0) {
                outseg_free(o);
                continue;
            }
            n = o->left < STREAM_CHUNK ? (size_t)o->left : STREAM_CHUNK;
            c->wchunk = malloc(n);
            ssize_t r = c->wchunk ? pread(o->fd, c->wchunk, n, (off_t)o->off) : -1;
            if (r != (ssize_t)n) {
                log_error(&c->srv->log, "cannot read an item being sent: %s", r < 0 ? strerror(errno) : "short read");
                free(c->wchunk);
                c->wchunk = NULL;
                conn_close(c);
                return;
            }
            o->off += n;
            o->left -= n;
            if (o->left == 0)
                outseg_free(o);
        }
        c->out_bytes -= n;
        c->srv->st.bytes_written += n;
        /* Most answers fit the socket buffer: write them directly. A
         * uv_write request would also make libuv re-arm the socket's epoll
         * registration on completion, one epoll_ctl per answer. */
        uv_buf_t b = uv_buf_init(c->wchunk, (unsigned)n);
        int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (w == (int)n) {
            free(c->wchunk);
            c->wchunk = NULL;
            c->active_ms = uv_now(c->srv->loop);
            if (budget <= n) {
                defer(c); /* more next turn: other clients first */
                return;
            }
            budget -= n;
            continue;
        }
        if (w < 0 && w != UV_EAGAIN) {
            free(c->wchunk);
            c->wchunk = NULL;
            conn_close(c);
            return;
        }
        if (w > 0)
            b = uv_buf_init(c->wchunk + w, (unsigned)(n - (size_t)w));
        c->writing = 1;
        c->wreq.data = c;
        int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
        if (rc < 0) {
            c->writing = 0;
            free(c->wchunk);
            c->wchunk = NULL;
            conn_close(c);
        }
        return;
    }
}

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

static void mark_sync(struct conn *c);

/* The request must not be answered before an fsync: remember where its
 * answer starts, so a failed fsync can replace it. Call before the request
 * writes any output that depends on the fsync. */
static void want_sync(struct conn *c)
{
    if (!c->sync_wanted)
        mark_sync(c);
    c->sync_wanted = 1;
}

static void journal_touched(struct conn *c)
{
    if (c->srv->cfg->fsync == FSYNC_ALWAYS)
        want_sync(c);
}

static struct qopen *open_on(struct conn *c, const struct queue *q)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &c->opens)
    {
        struct qopen *o = list_entry(pos, struct qopen, conn_link);
        if (o->q == q)
            return o;
    }
    return NULL;
}

static void write_value(struct conn *c, const struct proto_key *k, struct qitem *it)
{
    const struct proto_slice *key = c->srv->cfg->compat == COMPAT_KESTREL ? &k->name : &k->full;
    out_str(c, "VALUE ");
    out_bytes(c, key->p, key->len);
    out_fmt(c, " %" PRIu32 " %" PRIu64 "\r\n", it->flags, it->len);
    if (it->data) {
        out_bytes(c, it->data, (size_t)it->len);
        free(it->data);
        it->data = NULL;
    } else {
        out_file(c, it->fd, it->off, it->len);
        it->fd = -1;
    }
    out_str(c, "\r\n");
}

/* Notes a removal the pending fsync covers, to undo if it fails. */
static void remember_undo(struct conn *c, const struct queue *q, const struct jnl_item *it, int open)
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

/* The fsync covering this request's removals failed and their answers are
 * replaced by an error: the items go back to the head of their queues. */
static void apply_undo(struct conn *c)
{
    for (size_t i = c->nundo; i-- > 0;) {
        struct conn_undo *u = &c->undo[i];
        struct queue *q = registry_find_dir(c->srv->reg, u->dir_id);
        if (!q)
            continue; /* deleted meanwhile: nothing to give back to */
        if (u->open) {
            struct qopen *o = open_on(c, q);
            if (o && o->node->item.id == u->item.id)
                queue_abort(o);
            continue;
        }
        int rc = queue_restore(q, &u->item);
        if (rc < 0)
            log_error(&c->srv->log, "queue %s: cannot give back item %" PRIu64 " after a failed fsync: %s", q->name,
                      u->item.id, strerror(-rc));
    }
    c->nundo = 0;
}

/* Runs one key of a get. */
static enum get_result get_key(struct conn *c, const struct proto_key *k)
{
    struct server *s = c->srv;
    struct queue *q = registry_find(s->reg, k->name.p, k->name.len);
    struct qopen *o = q ? open_on(c, q) : NULL;
    int rc;
    if (k->opts & PROTO_OPT_ABORT) {
        if (o)
            queue_abort(o);
        return GK_EMPTY;
    }
    if (k->opts & PROTO_OPT_CLOSE) {
        if (o) {
            struct jnl_item closed = o->node->item;
            if ((rc = queue_confirm(o)) < 0) {
                out_server_error(c, rc);
                return GK_ERROR;
            }
            journal_touched(c);
            if (c->sync_wanted)
                remember_undo(c, q, &closed, 0); /* a failed fsync brings it back */
        }
        if (!(k->opts & PROTO_OPT_OPEN))
            return GK_EMPTY;
    }
    enum qget_mode mode = (k->opts & PROTO_OPT_PEEK) ? QGET_PEEK : (k->opts & PROTO_OPT_OPEN) ? QGET_OPEN : QGET_REMOVE;
    struct qopen *no = NULL;
    struct qitem it = {.fd = -1};
    rc = q ? queue_get(q, mode, &no, &it) : -ENOENT;
    if (rc == -ENOENT)
        return GK_EMPTY;
    if (rc < 0) {
        out_server_error(c, rc);
        return GK_ERROR;
    }
    if (no)
        list_push_back(&c->opens, &no->conn_link);
    if (mode != QGET_PEEK) {
        journal_touched(c);
        if (c->sync_wanted)
            remember_undo(c, q, &it.where, no != NULL);
    }
    write_value(c, k, &it);
    s->st.get_hits++;
    return GK_SERVED;
}

static void count_get(struct conn *c, const struct proto_key *k)
{
    if (k->opts & PROTO_OPT_PEEK)
        c->srv->st.cmd_peek++;
    else if (!(k->opts & PROTO_OPT_ABORT) && (!(k->opts & PROTO_OPT_CLOSE) || (k->opts & PROTO_OPT_OPEN)))
        c->srv->st.cmd_get++;
}

static int wants_item(const struct proto_key *k)
{
    return !(k->opts & PROTO_OPT_ABORT) && (!(k->opts & PROTO_OPT_CLOSE) || (k->opts & PROTO_OPT_OPEN));
}

static void end_wait(struct conn *c)
{
    if (c->waiting)
        queue_unwait(&c->waiter);
    c->waiting = 0;
    uv_timer_stop(&c->timer);
    free(c->wait_name);
    c->wait_name = NULL;
}

void conn_cancel_wait(struct conn *c) { end_wait(c); }

static void wait_over(struct conn *c)
{
    end_wait(c);
    c->get_done++;
    c->state = CONN_READ;
    c->resume = 1;
    defer(c);
}

static int waiter_cb(struct qwaiter *w, enum qwait_event ev)
{
    struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, waiter));
    c->waiting = 0;
    if (ev == QWAIT_READY) {
        enum get_result r = get_key(c, &c->wait_key);
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
            wait_over(c);
            return 1;
        }
    }
    c->srv->st.get_misses++;
    wait_over(c);
    return 1;
}

static void timer_cb(uv_timer_t *t)
{
    struct conn *c = t->data;
    c->srv->st.get_misses++;
    wait_over(c);
}

/* Starts waiting for an item on key k (a copy is kept). */
static void start_wait(struct conn *c, const struct proto_key *k)
{
    memcpy(c->wait_full, k->full.p, k->full.len);
    c->wait_key = *k;
    c->wait_key.full.p = c->wait_full;
    c->wait_key.name.p = c->wait_full + (k->name.p - k->full.p);
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
}

/* The open rule: a connection holds one open item per queue. Checked for the
 * whole request before any key is served. */
static int open_conflict(struct conn *c, const struct proto_req *req)
{
    struct proto_slice rest = req->keys, r2;
    struct proto_key k, k2;
    while (proto_next_key(&rest, &k)) {
        if (!(k.opts & PROTO_OPT_OPEN) || (k.opts & PROTO_OPT_CLOSE))
            continue;
        struct queue *q = registry_find(c->srv->reg, k.name.p, k.name.len);
        if (q && open_on(c, q))
            return 1;
        r2 = rest;
        while (proto_next_key(&r2, &k2))
            if ((k2.opts & PROTO_OPT_OPEN) && k2.name.len == k.name.len && memcmp(k2.name.p, k.name.p, k.name.len) == 0)
                return 1;
    }
    return 0;
}

/* Returns 1 when the request is finished, 0 when it waits. */
static int do_get(struct conn *c, const struct proto_req *req)
{
    if (c->get_done == 0 && open_conflict(c, req)) {
        out_str(c, "CLIENT_ERROR an item is already open on this queue; close or abort it first\r\n");
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
        enum get_result r = get_key(c, &k);
        if (r == GK_ERROR) {
            c->get_done = 0;
            return 1;
        }
        if (r == GK_EMPTY && wants_item(&k)) {
            if ((k.opts & PROTO_OPT_TIMEOUT) && k.timeout_ms > 0) {
                start_wait(c, &k);
                return 0;
            }
            c->srv->st.get_misses++;
        }
        c->get_done++;
    }
    c->get_done = 0;
    out_str(c, "END\r\n");
    return 1;
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

/* Marks where the answer that waits for an fsync starts, so a failed fsync
 * can replace it. */
static void mark_sync(struct conn *c)
{
    c->sync_mark = 0;
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &c->out)
    {
        struct outseg *o = list_entry(pos, struct outseg, link);
        c->sync_mark += o->fd >= 0 ? o->left : o->mem.len;
    }
}

/* Answers a set whose item was appended (rc 0) or not. */
static void set_done(struct conn *c, int rc, int noreply, int sync)
{
    if (rc < 0) {
        out_server_error(c, rc);
        return;
    }
    journal_touched(c);
    if (sync)
        want_sync(c);
    if (!noreply)
        out_str(c, "STORED\r\n");
}

static void do_set(struct conn *c, const struct proto_req *req, const char *data)
{
    struct server *s = c->srv;
    struct queue *q;
    s->st.cmd_set++;
    int rc = registry_get_or_create(s->reg, req->key.name.p, req->key.name.len, &q);
    if (rc == 0)
        rc = queue_put(q, req->flags, expiry_ms(req->exptime), data, (size_t)req->bytes);
    set_done(c, rc, req->noreply, req->key.opts & PROTO_OPT_SYNC);
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
        out_str(c, "CLIENT_ERROR bad data chunk\r\n");
        c->close_after = 1;
        return 0;
    }
    *pos += 2;
    int rc = c->stream_err;
    struct queue *q;
    if (rc == 0 && (rc = registry_get_or_create(c->srv->reg, c->stream.name, c->stream.name_len, &q)) == 0) {
        rc = queue_put_blob(q, b, c->stream.flags, expiry_ms(c->stream.exptime));
        b = NULL;
    }
    jnl_blob_discard(b);
    set_done(c, rc, c->stream.noreply, c->stream.sync);
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
            out_str(c, "SERVER_ERROR object too large for cache\r\n");
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
                out_server_error(c, -ENOMEM);
                c->swallow_left = req->bytes + 2;
                c->state = CONN_SWALLOW;
                return (ssize_t)len;
            }
            return 0;
        }
        const char *data = line + len;
        if (data[req->bytes] != '\r' || data[req->bytes + 1] != '\n') {
            out_str(c, "CLIENT_ERROR bad data chunk\r\n");
            c->close_after = 1;
            return (ssize_t)total;
        }
        do_set(c, req, data);
        return (ssize_t)total;
    }
    case PROTO_GET:
        return do_get(c, req) ? (ssize_t)len : -1;
    case PROTO_DELETE: {
        struct queue *q = registry_find(s->reg, req->key.name.p, req->key.name.len);
        rc = q ? registry_delete(s->reg, q) : 0;
        journal_touched(c);
        if (!req->noreply) {
            if (rc < 0)
                out_server_error(c, rc);
            else
                out_str(c, "DELETED\r\n");
        }
        return (ssize_t)len;
    }
    case PROTO_FLUSH: {
        struct queue *q = registry_find(s->reg, req->key.name.p, req->key.name.len);
        rc = q ? queue_flush(q) : 0;
        journal_touched(c);
        if (!req->noreply) {
            if (rc < 0)
                out_server_error(c, rc);
            else
                out_str(c, "END\r\n");
        }
        return (ssize_t)len;
    }
    case PROTO_FLUSH_ALL:
        rc = registry_flush_all(s->reg);
        journal_touched(c);
        if (!req->noreply) {
            if (rc < 0)
                out_server_error(c, rc);
            else
                out_str(c, s->cfg->compat == COMPAT_KESTREL ? "Flushed all queues.\r\n" : "OK\r\n");
        }
        return (ssize_t)len;
    case PROTO_STATS: {
        struct buf b = {0};
        stats_write(s, &b);
        out_bytes(c, b.data, b.len);
        buf_free(&b);
        return (ssize_t)len;
    }
    case PROTO_VERSION:
        out_str(c, "VERSION " DARNER_VERSION "\r\n");
        return (ssize_t)len;
    case PROTO_QUIT:
        c->close_after = 1;
        return (ssize_t)len;
    case PROTO_VERBOSITY:
        if (!req->noreply)
            out_str(c, "OK\r\n");
        return (ssize_t)len;
    case PROTO_UNKNOWN:
        out_str(c, "ERROR\r\n");
        break;
    case PROTO_BAD:
        out_fmt(c, "CLIENT_ERROR %s\r\n", req->error ? req->error : "bad command line format");
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
            out_str(c, "CLIENT_ERROR line too long\r\n");
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
    defer(c);
}

/* ---- fsync waits ---- */

static void sync_done(struct sync_waiter *w, int status)
{
    struct conn *c = (struct conn *)((char *)w - offsetof(struct conn, syncw));
    if (status < 0) {
        /* Replace the answers that waited for it with the error. */
        uint64_t keep = c->sync_mark;
        struct list *pos, *tmp;
        list_for_each_safe(pos, tmp, &c->out)
        {
            struct outseg *o = list_entry(pos, struct outseg, link);
            uint64_t size = o->fd >= 0 ? o->left : o->mem.len;
            if (keep >= size) {
                keep -= size;
                continue;
            }
            if (o->fd < 0 && keep > 0) {
                c->out_bytes -= o->mem.len - keep;
                o->mem.len = (size_t)keep;
                keep = 0;
                continue;
            }
            c->out_bytes -= size;
            outseg_free(o);
        }
        out_server_error(c, status);
        apply_undo(c);
    }
    c->nundo = 0;
    c->state = CONN_READ;
    c->resume = 1;
    defer(c);
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
    write_next(c);
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
    if (c->state != CONN_READ || c->writing || !list_empty(&c->out) || c->rlen > 0 || c->close_after)
        return 0;
    *since_ms = c->active_ms;
    return 1;
}

void conn_close(struct conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    end_wait(c);
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
    list_for_each_safe(pos, tmp, &c->out) outseg_free(list_entry(pos, struct outseg, link));
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
        out_str(c, "SERVER_ERROR too many connections\r\n");
        c->close_after = 1;
        defer(c);
        return 0;
    }
    s->st.total_connections++;
    start_reading(c);
    return 0;
}
