/* cell/relay.c: a follower's memcache port, relayed to the leader (relay.h).
 *
 * Each accepted client gets a pair: the client's connection, one of its own
 * to the leader, a timer (the connect timeout, then the drain timeout) and
 * one read buffer per side. Bytes read from one side are copied into a
 * write request to the other; a side's reading stops while more than
 * RELAY_HIGH_WATER bytes wait to be written to the other side, and starts
 * again once those are down to RELAY_LOW_WATER. When a side ends (EOF or an
 * error) reading stops on both, what is still queued is written (for at
 * most connect_ms), and both connections close. A pair is freed by the
 * close callback of its last handle, and the relay's close callback runs
 * once its listener and every pair are gone. */
#include "cell/relay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RELAY_HIGH_WATER ((size_t)1 << 20)
#define RELAY_LOW_WATER ((size_t)256 << 10)
#define RELAY_DEFAULT_CONNS 1024
#define RELAY_DEFAULT_CONNECT_MS 2000
#define RELAY_DEFAULT_BUF ((size_t)64 << 10)

enum { SIDE_CLIENT = 0, SIDE_LEADER = 1 };

enum pair_state {
    PAIR_CONNECTING, /* waiting for the leader's connection; the client is not read */
    PAIR_RELAYING,   /* copying both ways */
    PAIR_DRAINING,   /* a side ended: writing what is queued, then closing */
    PAIR_REFUSING,   /* writing a SERVER_ERROR line to the client, then closing */
    PAIR_SNIFFING,   /* reading the client's first line: relayed, or answered here (local_words) */
    PAIR_LOCAL,      /* answering the client's lines here, one at a time */
};

struct pair {
    struct list link; /* in relay.pairs */
    struct relay *r;
    enum pair_state state;
    int closing;        /* pair_close ran */
    int nopen;          /* handles initialized and not yet through their close callback */
    int leader_init;    /* side[SIDE_LEADER] was initialized */
    int timer_init;     /* timer was initialized */
    uv_tcp_t side[2];   /* SIDE_CLIENT, SIDE_LEADER */
    uv_timer_t timer;   /* connect timeout, then drain timeout */
    uv_connect_t creq;  /* the connection to the leader */
    uv_write_t refusal; /* the SERVER_ERROR line */
    char *buf[2];       /* read buffer of each side, conf.buf_bytes */
    size_t pending[2];  /* bytes queued for writing to each side */
    int reading[2];     /* uv_read_start is in effect on the side */
    char sink[256];     /* what a refused client sends, read and dropped */
    char peer[64];      /* the client's address, for the log */
    char target[80];    /* the leader's address, for the log */
    size_t held;        /* SNIFFING, LOCAL: bytes read from the client and not yet used, in buf[SIDE_CLIENT] */
    int answering;      /* LOCAL: an answer is being written */
};

/* One write of bytes read from the other side; freed by its callback. */
struct wreq {
    uv_write_t req;
    struct pair *p;
    int to; /* the side written to */
    size_t len;
    char data[];
};

static void relay_maybe_done(struct relay *r)
{
    if (!r->closing || r->listener || !list_empty(&r->pairs) || !r->closed_cb)
        return;
    void (*cb)(struct relay *) = r->closed_cb;
    r->closed_cb = NULL;
    cb(r); /* last: it may free r */
}

/* The close callback of every handle of a pair: the last one frees the pair
 * (its buffers, and the pair itself; write requests are freed by their own
 * callbacks, which libuv runs before the handle's close callback). */
static void pair_handle_closed(uv_handle_t *h)
{
    struct pair *p = h->data;
    if (--p->nopen > 0)
        return;
    struct relay *r = p->r;
    log_debug(r->conf.log, "relay: %s: connection closed", p->peer);
    list_remove(&p->link);
    r->npairs--;
    free(p->buf[SIDE_CLIENT]);
    free(p->buf[SIDE_LEADER]);
    free(p);
    relay_maybe_done(r);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, pair_handle_closed);
}

/* Closes the leader's side of p and its timer, those that were made. */
static void pair_close_leader(struct pair *p)
{
    if (p->leader_init)
        close_handle((uv_handle_t *)&p->side[SIDE_LEADER]);
    if (p->timer_init)
        close_handle((uv_handle_t *)&p->timer);
}

/* Closes every handle of p; p is freed by the last close callback. */
static void pair_close(struct pair *p)
{
    if (p->closing)
        return;
    p->closing = 1;
    close_handle((uv_handle_t *)&p->side[SIDE_CLIENT]);
    pair_close_leader(p);
}

static void sink_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct pair *p = h->data;
    (void)suggested;
    *buf = uv_buf_init(p->sink, sizeof(p->sink));
}

/* A refused client's bytes are dropped (so closing it sends a FIN, not a
 * reset that could discard the answer); its end closes the pair. */
static void sink_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    if (nread < 0)
        pair_close(((uv_handle_t *)s)->data);
}

static void refusal_written(uv_write_t *req, int status)
{
    (void)status;
    pair_close(req->data);
}

/* Answers the client line (a static string) and closes the pair once it is
 * written. The leader's handles, if any, are closed now. */
static void pair_refuse(struct pair *p, const char *line)
{
    struct relay *r = p->r;
    p->state = PAIR_REFUSING;
    r->refused++;
    pair_close_leader(p);
    uv_buf_t b = uv_buf_init((char *)line, (unsigned)strlen(line));
    p->refusal.data = p;
    int rc = uv_read_start((uv_stream_t *)&p->side[SIDE_CLIENT], sink_alloc, sink_read);
    if (rc == 0)
        rc = uv_write(&p->refusal, (uv_stream_t *)&p->side[SIDE_CLIENT], &b, 1, refusal_written);
    if (rc < 0) {
        log_debug(r->conf.log, "relay: %s: cannot answer: %s", p->peer, uv_strerror(rc));
        pair_close(p);
    }
}

static void pair_read_stop(struct pair *p, int side)
{
    if (p->reading[side]) {
        uv_read_stop((uv_stream_t *)&p->side[side]);
        p->reading[side] = 0;
    }
}

static void drain_timeout(uv_timer_t *t)
{
    struct pair *p = t->data;
    log_debug(p->r->conf.log, "relay: %s: peer not reading, closing", p->peer);
    pair_close(p);
}

/* A side ended (EOF or error): no more reading; both connections close
 * once what is queued is written, or after connect_ms. */
static void pair_end(struct pair *p)
{
    pair_read_stop(p, SIDE_CLIENT);
    pair_read_stop(p, SIDE_LEADER);
    if (p->pending[SIDE_CLIENT] + p->pending[SIDE_LEADER] == 0) {
        pair_close(p);
        return;
    }
    p->state = PAIR_DRAINING;
    if (uv_timer_start(&p->timer, drain_timeout, p->r->conf.connect_ms, 0) < 0)
        pair_close(p);
}

static void side_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void side_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void held_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void held_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static int pair_read_start(struct pair *p, int side)
{
    if (p->reading[side])
        return 0;
    int rc = uv_read_start((uv_stream_t *)&p->side[side], side_alloc, side_read);
    if (rc == 0)
        p->reading[side] = 1;
    return rc;
}

static void side_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct pair *p = w->p;
    int to = w->to, from = 1 - w->to;
    p->pending[to] -= w->len;
    free(w);
    if (p->closing)
        return;
    if (status < 0) {
        log_debug(p->r->conf.log, "relay: %s: write to the %s failed: %s", p->peer,
                  to == SIDE_CLIENT ? "client" : "leader", uv_strerror(status));
        pair_close(p);
    } else if (p->state == PAIR_DRAINING) {
        if (p->pending[SIDE_CLIENT] + p->pending[SIDE_LEADER] == 0)
            pair_close(p);
    } else if (p->pending[to] <= RELAY_LOW_WATER && pair_read_start(p, from) < 0) {
        pair_close(p);
    }
}

static void side_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct pair *p = h->data;
    int side = h == (uv_handle_t *)&p->side[SIDE_CLIENT] ? SIDE_CLIENT : SIDE_LEADER;
    (void)suggested;
    *buf = uv_buf_init(p->buf[side], (unsigned)p->r->conf.buf_bytes);
}

/* Copies what one side sent into a write request to the other (the request
 * is the pair's until its callback frees it). */
static void side_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct pair *p = ((uv_handle_t *)s)->data;
    int from = s == (uv_stream_t *)&p->side[SIDE_CLIENT] ? SIDE_CLIENT : SIDE_LEADER, to = 1 - from;
    if (nread == 0)
        return;
    if (nread < 0) {
        const char *who = from == SIDE_CLIENT ? "client" : "leader";
        if (nread == UV_EOF)
            log_debug(p->r->conf.log, "relay: %s: the %s closed", p->peer, who);
        else if (from == SIDE_LEADER)
            log_warn(p->r->conf.log, "relay: %s: reading the leader %s: %s", p->peer, p->target,
                     uv_strerror((int)nread));
        else
            log_debug(p->r->conf.log, "relay: %s: reading the client: %s", p->peer, uv_strerror((int)nread));
        pair_end(p);
        return;
    }
    struct wreq *w = malloc(sizeof(*w) + (size_t)nread);
    if (!w) {
        log_warn(p->r->conf.log, "relay: %s: out of memory", p->peer);
        pair_close(p);
        return;
    }
    w->p = p;
    w->to = to;
    w->len = (size_t)nread;
    memcpy(w->data, buf->base, (size_t)nread);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)nread);
    int rc = uv_write(&w->req, (uv_stream_t *)&p->side[to], &b, 1, side_written);
    if (rc < 0) {
        free(w);
        log_debug(p->r->conf.log, "relay: %s: write: %s", p->peer, uv_strerror(rc));
        pair_close(p);
        return;
    }
    p->pending[to] += (size_t)nread;
    if (p->pending[to] > RELAY_HIGH_WATER)
        pair_read_stop(p, from);
}

static void connect_timeout(uv_timer_t *t)
{
    struct pair *p = t->data;
    log_warn(p->r->conf.log, "relay: %s: connecting to the leader %s timed out", p->peer, p->target);
    pair_refuse(p, "SERVER_ERROR no quorum\r\n");
}

static void leader_connected(uv_connect_t *req, int status)
{
    struct pair *p = req->data;
    struct relay *r = p->r;
    if (p->closing || p->state != PAIR_CONNECTING)
        return; /* refused (timeout) or closed (relay_close) meanwhile */
    uv_timer_stop(&p->timer);
    if (status < 0) {
        log_warn(r->conf.log, "relay: %s: cannot connect to the leader %s: %s", p->peer, p->target,
                 uv_strerror(status));
        pair_refuse(p, "SERVER_ERROR no quorum\r\n");
        return;
    }
    if (!p->buf[SIDE_CLIENT])
        p->buf[SIDE_CLIENT] = malloc(r->conf.buf_bytes);
    p->buf[SIDE_LEADER] = malloc(r->conf.buf_bytes);
    int rc = p->buf[SIDE_CLIENT] && p->buf[SIDE_LEADER] ? 0 : UV_ENOMEM;
    if (rc == 0 && p->held) {
        /* what the client sent while its first line was read */
        size_t n = p->held;
        p->held = 0;
        side_read((uv_stream_t *)&p->side[SIDE_CLIENT], (ssize_t)n, &(uv_buf_t){.base = p->buf[SIDE_CLIENT], .len = n});
        if (p->closing)
            return;
    }
    if (rc == 0)
        rc = uv_tcp_nodelay(&p->side[SIDE_LEADER], 1);
    if (rc == 0)
        rc = pair_read_start(p, SIDE_CLIENT);
    if (rc == 0)
        rc = pair_read_start(p, SIDE_LEADER);
    if (rc < 0) {
        log_warn(r->conf.log, "relay: %s: cannot relay: %s", p->peer, uv_strerror(rc));
        pair_close(p);
        return;
    }
    p->state = PAIR_RELAYING;
    r->relayed++;
    log_debug(r->conf.log, "relay: %s: relayed to the leader %s", p->peer, p->target);
}

/* Starts p's connection to the leader at host:port; on failure the client
 * is answered "no quorum" (p stays the relay's either way). */
static void pair_connect(struct pair *p, const char *host, int port)
{
    struct relay *r = p->r;
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } addr;
    snprintf(p->target, sizeof(p->target), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    int rc = port > 0 && port <= 65535 ? 0 : UV_EINVAL;
    if (rc == 0 && uv_ip4_addr(host, port, &addr.in4) != 0)
        rc = uv_ip6_addr(host, port, &addr.in6);
    if (rc == 0)
        rc = uv_timer_init(r->loop, &p->timer);
    if (rc == 0) {
        p->timer.data = p;
        p->timer_init = 1;
        p->nopen++;
        rc = uv_tcp_init(r->loop, &p->side[SIDE_LEADER]);
    }
    if (rc == 0) {
        p->side[SIDE_LEADER].data = p;
        p->leader_init = 1;
        p->nopen++;
    }
    p->creq.data = p;
    if (rc == 0)
        rc = uv_tcp_connect(&p->creq, &p->side[SIDE_LEADER], &addr.sa, leader_connected);
    if (rc == 0)
        rc = uv_timer_start(&p->timer, connect_timeout, r->conf.connect_ms, 0);
    if (rc < 0) {
        log_warn(r->conf.log, "relay: %s: cannot connect to the leader %s: %s", p->peer, p->target, uv_strerror(rc));
        pair_refuse(p, "SERVER_ERROR no quorum\r\n");
    }
}

static void peer_name(uv_tcp_t *t, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    int len = sizeof(ss);
    char ip[64] = "?";
    int port = 0;
    if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len) == 0) {
        uv_ip_name((struct sockaddr *)&ss, ip, sizeof(ip));
        port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                        : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    snprintf(out, cap, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", ip, port);
}

/* Connects p to the leader, or refuses it when none is known. */
static void relay_to_leader(struct pair *p)
{
    struct relay *r = p->r;
    char host[64];
    int port = 0;
    if (!r->conf.target(r->conf.ctx, host, sizeof(host), &port)) {
        log_debug(r->conf.log, "relay: %s: no leader known", p->peer);
        pair_refuse(p, "SERVER_ERROR no quorum\r\n");
        return;
    }
    host[sizeof(host) - 1] = '\0';
    pair_connect(p, host, port);
}

static void held_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct pair *p = h->data;
    (void)suggested;
    *buf = uv_buf_init(p->buf[SIDE_CLIENT] + p->held, (unsigned)(p->r->conf.buf_bytes - p->held));
}

static void local_next(struct pair *p);

static void local_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct pair *p = w->p;
    p->pending[SIDE_CLIENT] -= w->len;
    free(w);
    p->answering = 0;
    if (p->closing)
        return;
    if (status < 0) {
        pair_close(p);
        return;
    }
    local_next(p);
}

/* Answers the next complete line held, if any and none is being written;
 * reads more when no line is complete. */
static void local_next(struct pair *p)
{
    struct relay *r = p->r;
    while (!p->answering && !p->closing) {
        char *nl = memchr(p->buf[SIDE_CLIENT], '\n', p->held);
        if (!nl) {
            if (p->held == r->conf.buf_bytes) {
                pair_close(p); /* no line end in a whole buffer */
                return;
            }
            if (uv_read_start((uv_stream_t *)&p->side[SIDE_CLIENT], held_alloc, held_read) < 0)
                pair_close(p);
            return;
        }
        size_t used = (size_t)(nl - p->buf[SIDE_CLIENT]) + 1, len = used - 1;
        if (len && p->buf[SIDE_CLIENT][len - 1] == '\r')
            len--;
        char *out = NULL;
        size_t n = 0;
        int rc = r->conf.local(r->conf.ctx, p->buf[SIDE_CLIENT], len, &out, &n);
        memmove(p->buf[SIDE_CLIENT], p->buf[SIDE_CLIENT] + used, p->held - used);
        p->held -= used;
        struct wreq *w = rc < 0 ? NULL : malloc(sizeof(*w) + n);
        if (!w) {
            free(out);
            pair_close(p);
            return;
        }
        w->p = p;
        w->to = SIDE_CLIENT;
        w->len = n;
        memcpy(w->data, out, n);
        free(out);
        uv_read_stop((uv_stream_t *)&p->side[SIDE_CLIENT]);
        uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
        if (uv_write(&w->req, (uv_stream_t *)&p->side[SIDE_CLIENT], &b, 1, local_written) < 0) {
            free(w);
            pair_close(p);
            return;
        }
        p->pending[SIDE_CLIENT] += n;
        p->answering = 1;
    }
}

static int alone_word(const struct relay *r, const char *word)
{
    for (const char *const *w = r->conf.local_alone; w && *w; w++)
        if (strcmp(*w, word) == 0)
            return 1;
    return 0;
}

/* 1 if the n bytes at b begin with a command word of local_words, followed
 * by a space or the line's end (a word of local_alone: by blanks and the
 * line's end), else 0; -1 while a word of local_alone is followed by blanks
 * only and the line is not all in yet. */
static int local_word(const struct relay *r, const char *b, size_t n)
{
    for (const char *const *w = r->conf.local_words; w && *w; w++) {
        size_t wl = strlen(*w);
        if (n <= wl || memcmp(b, *w, wl) != 0 || (b[wl] != ' ' && b[wl] != '\r' && b[wl] != '\n'))
            continue;
        if (!alone_word(r, *w))
            return 1;
        size_t k = wl;
        while (k < n && b[k] == ' ')
            k++;
        if (k == n)
            return -1;
        return b[k] == '\r' || b[k] == '\n';
    }
    return 0;
}

/* The client's bytes before the pair is relayed (SNIFFING), or of a
 * connection answered here (LOCAL). */
static void held_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct pair *p = ((uv_handle_t *)s)->data;
    struct relay *r = p->r;
    (void)buf;
    if (nread == 0)
        return;
    if (nread < 0) {
        pair_close(p);
        return;
    }
    p->held += (size_t)nread;
    if (p->state == PAIR_LOCAL) {
        uv_read_stop(s);
        local_next(p);
        return;
    }
    size_t longest = 0;
    for (const char *const *w = r->conf.local_words; w && *w; w++)
        if (strlen(*w) > longest)
            longest = strlen(*w);
    int has_line = memchr(p->buf[SIDE_CLIENT], '\n', p->held) != NULL;
    if (p->held <= longest && !has_line && p->held < r->conf.buf_bytes)
        return; /* too little yet to tell */
    int local = local_word(r, p->buf[SIDE_CLIENT], p->held);
    if (local < 0 && p->held < r->conf.buf_bytes)
        return; /* a word answered here only alone: the rest of the line tells */
    uv_read_stop(s);
    if (local > 0) {
        p->state = PAIR_LOCAL;
        log_debug(r->conf.log, "relay: %s: answered here", p->peer);
        local_next(p);
        return;
    }
    p->state = PAIR_CONNECTING;
    relay_to_leader(p);
}

/* A new client: a pair of its own (the relay's until its last handle's
 * close callback), then refused, or connected to the leader. */
static void on_connection(uv_stream_t *server, int status)
{
    struct relay *r = server->data;
    if (status < 0) {
        log_warn(r->conf.log, "relay: accept: %s", uv_strerror(status));
        return;
    }
    struct pair *p = calloc(1, sizeof(*p));
    if (!p) {
        log_warn(r->conf.log, "relay: accept: out of memory");
        return;
    }
    int rc = uv_tcp_init(r->loop, &p->side[SIDE_CLIENT]);
    if (rc < 0) {
        log_warn(r->conf.log, "relay: accept: %s", uv_strerror(rc));
        free(p);
        return;
    }
    p->r = r;
    p->side[SIDE_CLIENT].data = p;
    p->nopen = 1;
    uint32_t live = r->npairs;
    list_push_back(&r->pairs, &p->link);
    r->npairs++;
    snprintf(p->peer, sizeof(p->peer), "?");
    rc = uv_accept(server, (uv_stream_t *)&p->side[SIDE_CLIENT]);
    if (rc < 0) {
        log_warn(r->conf.log, "relay: accept: %s", uv_strerror(rc));
        pair_close(p);
        return;
    }
    peer_name(&p->side[SIDE_CLIENT], p->peer, sizeof(p->peer));
    (void)uv_tcp_nodelay(&p->side[SIDE_CLIENT], 1); /* best effort */
    log_debug(r->conf.log, "relay: %s: new connection", p->peer);
    if (live >= r->conf.max_conns) {
        log_warn(r->conf.log, "relay: %s: refused, %u connections already", p->peer, (unsigned)live);
        pair_refuse(p, "SERVER_ERROR too many connections\r\n");
        return;
    }
    if (r->conf.local) {
        /* its first line says whether it is relayed or answered here */
        p->state = PAIR_SNIFFING;
        if (!(p->buf[SIDE_CLIENT] = malloc(r->conf.buf_bytes)) ||
            uv_read_start((uv_stream_t *)&p->side[SIDE_CLIENT], held_alloc, held_read) < 0) {
            pair_close(p);
            return;
        }
        return;
    }
    relay_to_leader(p);
}

static void listener_closed(uv_handle_t *h)
{
    struct relay *r = h->data;
    free(h);
    if (!r)
        return; /* a failed relay_start's */
    r->listener = NULL;
    relay_maybe_done(r);
}

int relay_start(struct relay *r, uv_loop_t *loop, const struct relay_conf *conf)
{
    memset(r, 0, sizeof(*r));
    list_init(&r->pairs);
    if (!conf->addr || !conf->target)
        return -EINVAL;
    r->loop = loop;
    r->conf = *conf;
    if (r->conf.max_conns == 0)
        r->conf.max_conns = RELAY_DEFAULT_CONNS;
    if (r->conf.connect_ms == 0)
        r->conf.connect_ms = RELAY_DEFAULT_CONNECT_MS;
    if (r->conf.buf_bytes == 0)
        r->conf.buf_bytes = RELAY_DEFAULT_BUF;
    if (r->conf.buf_bytes > UINT32_MAX)
        return -EINVAL;

    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
        struct sockaddr_storage ss;
    } addr;
    if (conf->port < 0 || conf->port > 65535)
        return -EINVAL;
    if (uv_ip4_addr(conf->addr, conf->port, &addr.in4) != 0 && uv_ip6_addr(conf->addr, conf->port, &addr.in6) != 0)
        return -EINVAL;
    uv_tcp_t *l = malloc(sizeof(*l));
    if (!l)
        return -ENOMEM;
    int rc = uv_tcp_init(loop, l);
    if (rc < 0) {
        free(l);
        return rc;
    }
    l->data = NULL; /* until it listens: then its close callback tells r */
    int len = sizeof(addr);
    rc = uv_tcp_bind(l, &addr.sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)l, 128, on_connection);
    if (rc == 0)
        rc = uv_tcp_getsockname(l, &addr.sa, &len);
    if (rc < 0) {
        uv_close((uv_handle_t *)l, listener_closed);
        log_warn(r->conf.log, "relay: cannot listen on %s:%d: %s", conf->addr, conf->port, uv_strerror(rc));
        return rc;
    }
    l->data = r;
    r->listener = l;
    r->listening = 1;
    r->bound_port = ntohs(addr.sa.sa_family == AF_INET6 ? addr.in6.sin6_port : addr.in4.sin_port);
    log_info(r->conf.log, "relay: listening on %s:%d", conf->addr, r->bound_port);
    return 0;
}

void relay_close(struct relay *r, void (*cb)(struct relay *r))
{
    if (r->closing)
        return;
    r->closing = 1;
    r->closed_cb = cb;
    if (r->listener) {
        r->listening = 0;
        uv_close((uv_handle_t *)r->listener, listener_closed); /* always asynchronous: cb runs later */
    }
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &r->pairs) {
        pair_close(list_entry(pos, struct pair, link));
    }
    relay_maybe_done(r); /* at once only when nothing was open */
}
