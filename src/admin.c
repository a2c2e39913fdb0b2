/* admin.c: the admin HTTP port (--admin-listen), on the server's loop:
 * /metrics, /stats.json, /healthz and /readyz. Requests are parsed by Debian's
 * http-parser (libhttp-parser-dev), JSON written by jansson; each
 * connection answers one request and closes (Connection: close). */
#include "admin.h"

#include "auth.h"
#include "dashboard.h"
#include "listen.h"
#include "metrics.h"
#include "server.h"
#include "tls.h"
#include "util/buf.h"

#include <errno.h>
#include <http_parser.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ADMIN_URL_MAX 8192      /* a longer request target answers 414 */
#define ADMIN_REQUEST_MAX 65536 /* bytes of one request (line, headers): more answers 431 */

struct admin_conn {
    uv_tcp_t tcp;
    struct admin *a;
    struct list link;
    http_parser parser;
    struct buf url;
    size_t read_bytes;
    int answered;
    uv_write_t wreq;
    struct tls_conn *tls;    /* the admin port serves TLS (a non-loopback address with --enable-ssl) */
    struct buf field;        /* the header being read: its name (lower case) */
    struct buf authz;        /* the Authorization header's value */
    int in_authz;            /* the value being read is Authorization's */
    int field_done;          /* the header's name is complete (its value is coming) */
    const char *extra;       /* a header line more for the response (static text), or NULL */
    int routed;              /* the request is complete and routed */
    uint64_t accepted_ms;    /* loop time it was accepted: admin_timeout counts from it */
    struct buf out;          /* the response's headers */
    struct buf body;         /* and its body */
    uint64_t render_ns;      /* loop time spent making the body (bench/scrape reads it) */
    uint64_t step_ns_max;    /* the longest step of it: the longest queue traffic waited */
    struct metrics_job *job; /* a /metrics or /stats.json being rendered, a step a loop turn */
    const char *job_type;    /* its Content-Type */
    struct list job_link;    /* in admin->jobs while job is set */
    char rbuf[4096];
};

static void conn_closed(uv_handle_t *h)
{
    struct admin_conn *ac = h->data;
    list_remove(&ac->link);
    buf_free(&ac->url);
    buf_free(&ac->out);
    buf_free(&ac->body);
    buf_free(&ac->field);
    buf_free(&ac->authz);
    free(ac);
}

static void conn_close(struct admin_conn *ac)
{
    if (uv_is_closing((uv_handle_t *)&ac->tcp))
        return;
    if (ac->job) {
        metrics_job_free(ac->job);
        ac->job = NULL;
        list_remove(&ac->job_link);
    }
    tls_peer_free(ac->tls);
    ac->tls = NULL;
    ac->a->nconns--; /* counted out now, not at conn_closed: a peer that saw the close may connect again first */
    uv_close((uv_handle_t *)&ac->tcp, conn_closed);
}

static void written(uv_write_t *w, int status)
{
    (void)status;
    conn_close(w->data);
}

/* Sends one whole response and closes after it: the headers, then the
 * body (taken: its bytes are ac's from now on), none for a HEAD request. */
static void respond_buf(struct admin_conn *ac, int code, const char *reason, const char *type, struct buf *body)
{
    if (ac->answered) {
        buf_free(body);
        return;
    }
    ac->answered = 1;
    uv_read_stop((uv_stream_t *)&ac->tcp);
    ac->body = *body;
    *body = (struct buf){0};
    buf_printf(&ac->out,
               "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
               "X-Darner-Render-Seconds: %.6f\r\nX-Darner-Render-Step-Max-Seconds: %.6f\r\n%sConnection: close\r\n\r\n",
               code, reason, type, ac->body.len, (double)ac->render_ns / 1e9, (double)ac->step_ns_max / 1e9,
               ac->extra ? ac->extra : "");
    uv_buf_t b[2] = {uv_buf_init(ac->out.data, (unsigned)ac->out.len),
                     uv_buf_init(ac->body.data, (unsigned)ac->body.len)};
    unsigned n = ac->parser.method == HTTP_HEAD || !ac->body.len ? 1 : 2;
    if (ac->tls) {
        int rc = tls_peer_write(ac->tls, b[0].base, b[0].len);
        if (rc >= 0 && n == 2)
            rc = tls_peer_write(ac->tls, b[1].base, b[1].len);
        if (rc != 0) /* all sent, or failed: close; else tls_done closes */
            conn_close(ac);
        return;
    }
    ac->wreq.data = ac;
    if (uv_write(&ac->wreq, (uv_stream_t *)&ac->tcp, b, n, written) < 0)
        conn_close(ac);
}

static void respond(struct admin_conn *ac, int code, const char *reason, const char *type, const char *body, size_t len)
{
    struct buf b = {0};
    buf_append(&b, body, len);
    respond_buf(ac, code, reason, type, &b);
}

static void respond_text(struct admin_conn *ac, int code, const char *reason, const char *text)
{
    respond(ac, code, reason, "text/plain; charset=utf-8", text, strlen(text));
}

/* Lines (or an eighth as many queues) one step of a job renders: about
 * half a millisecond of loop time. */
#define JOB_STEP_BUDGET 2000

/* One step of every job in progress, each loop turn while there are any
 * (an idle handle keeps the loop turning meanwhile). */
static void jobs_cb(uv_idle_t *h)
{
    struct admin *a = h->data;
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &a->jobs) {
        struct admin_conn *ac = list_entry(pos, struct admin_conn, job_link);
        struct buf body = {0};
        uint64_t t0 = uv_hrtime();
        int rc = metrics_job_step(ac->job, JOB_STEP_BUDGET, &body);
        uint64_t ns = uv_hrtime() - t0;
        ac->render_ns += ns;
        ac->step_ns_max = ns > ac->step_ns_max ? ns : ac->step_ns_max;
        if (rc == 0)
            continue;
        metrics_job_free(ac->job);
        ac->job = NULL;
        list_remove(&ac->job_link);
        if (rc < 0)
            respond_text(ac, 500, "Internal Server Error", "out of memory\n");
        else
            respond_buf(ac, 200, "OK", ac->job_type, &body);
    }
    if (list_empty(&a->jobs))
        uv_idle_stop(&a->jobs_idle);
}

static void start_job(struct admin_conn *ac, enum metrics_format format, const char *pattern, const char *type)
{
    struct admin *a = ac->a;
    uint64_t t0 = uv_hrtime();
    ac->job = metrics_job_new(a->srv, format, pattern); /* takes the queue names: a step of its own */
    ac->render_ns = ac->step_ns_max = uv_hrtime() - t0;
    if (!ac->job) {
        respond_text(ac, 500, "Internal Server Error", "out of memory\n");
        return;
    }
    ac->job_type = type;
    uv_read_stop((uv_stream_t *)&ac->tcp); /* the request is complete */
    list_push_back(&a->jobs, &ac->job_link);
    uv_idle_start(&a->jobs_idle, jobs_cb);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* The value of parameter name in query q[0..n) ("a=1&b=2"), %XX and +
 * decoded, into out (cap bytes, NUL-terminated). Returns 1 if found, 0 if
 * not, -EINVAL if malformed or too long. */
static int query_param(const char *q, size_t n, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < n;) {
        size_t end = i;
        while (end < n && q[end] != '&')
            end++;
        if (end - i > nlen && memcmp(q + i, name, nlen) == 0 && q[i + nlen] == '=') {
            size_t o = 0;
            for (size_t k = i + nlen + 1; k < end; k++) {
                int c = (unsigned char)q[k];
                if (c == '%') {
                    int hi = k + 2 < end ? hexval(q[k + 1]) : -1, lo = k + 2 < end ? hexval(q[k + 2]) : -1;
                    if (hi < 0 || lo < 0 || (hi | lo) == 0)
                        return -EINVAL; /* cut short, not hex, or a NUL */
                    c = hi << 4 | lo;
                    k += 2;
                } else if (c == '+') {
                    c = ' ';
                }
                if (o + 1 >= cap)
                    return -EINVAL;
                out[o++] = (char)c;
            }
            out[o] = '\0';
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

/* /metrics, /metrics?queue=<shell pattern>: Prometheus's text format. */
static void serve_metrics(struct admin_conn *ac, const struct http_parser_url *u)
{
    char pattern[ADMIN_URL_MAX];
    int found = 0;
    if (u->field_set & (1 << UF_QUERY))
        found = query_param(ac->url.data + u->field_data[UF_QUERY].off, u->field_data[UF_QUERY].len, "queue", pattern,
                            sizeof(pattern));
    if (found < 0) {
        respond_text(ac, 400, "Bad Request", "bad queue= parameter\n");
        return;
    }
    start_job(ac, METRICS_PROMETHEUS, found ? pattern : NULL, "text/plain; version=0.0.4; charset=utf-8");
}

/* HTTP Basic against the auth file: 0 when the request may go on, else
 * the status to answer (401: no or wrong credentials; 403: a user limited
 * to some queues, who may not see every queue's figures). */
static int basic_auth(const struct admin_conn *ac)
{
    const struct server *s = ac->a->srv;
    static const char scheme[] = "Basic ";
    if (!s->auth || ac->authz.len <= sizeof(scheme) - 1 || strncasecmp(ac->authz.data, scheme, sizeof(scheme) - 1) != 0)
        return 401;
    const char *b64 = ac->authz.data + sizeof(scheme) - 1;
    size_t n = ac->authz.len - (sizeof(scheme) - 1);
    while (n && b64[n - 1] == ' ')
        n--;
    if (n == 0 || n % 4 || n > 4000)
        return 401;
    unsigned char plain[3000 + 1];
    int pad = (b64[n - 1] == '=') + (n > 1 && b64[n - 1] == '=' && b64[n - 2] == '=');
    int len = EVP_DecodeBlock(plain, (const unsigned char *)b64, (int)n);
    /* EVP_DecodeBlock counts the padding's bytes: at most two, and never
     * more than it decoded ("====" is not base64) */
    if (len < 0 || len < pad || (n > 2 && b64[n - 3] == '='))
        return 401;
    len -= pad;
    const char *colon = memchr(plain, ':', (size_t)len);
    if (!colon)
        return 401;
    struct auth_cred cred = {.user = (const char *)plain,
                             .user_len = (size_t)(colon - (const char *)plain),
                             .pass = colon + 1,
                             .pass_len = (size_t)len - (size_t)(colon - (const char *)plain) - 1};
    const struct auth_user *u = auth_login(s->auth, &cred);
    if (!u)
        return 401;
    return u->nrules == 0 ? 0 : 403;
}

static void route(struct admin_conn *ac)
{
    const struct server *s = ac->a->srv;
    if (ac->parser.method != HTTP_GET && ac->parser.method != HTTP_HEAD) {
        ac->extra = "Allow: GET, HEAD\r\n";
        respond_text(ac, 405, "Method Not Allowed", "only GET and HEAD\n");
        return;
    }
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(ac->url.data, ac->url.len, 0, &u) != 0 || !(u.field_set & (1 << UF_PATH))) {
        respond_text(ac, 400, "Bad Request", "bad request target\n");
        return;
    }
    const char *path = ac->url.data + u.field_data[UF_PATH].off;
    size_t plen = u.field_data[UF_PATH].len;
    const char *type;
    const unsigned char *body;
    size_t blen;
#define IS(p) (plen == strlen(p) && memcmp(path, p, plen) == 0)
    int denied = ac->a->basic && !IS("/healthz") && !IS("/readyz") ? basic_auth(ac) : 0;
    if (denied == 401) {
        ac->extra = "WWW-Authenticate: Basic realm=\"darner\", charset=\"UTF-8\"\r\n";
        respond_text(ac, 401, "Unauthorized", "log in as a user of the auth file\n");
    } else if (denied) {
        respond_text(ac, 403, "Forbidden", "this user is limited to some queues: the admin port shows them all\n");
    } else if (IS("/healthz")) {
        respond_text(ac, 200, "OK", "ok\n");
    } else if (IS("/readyz")) {
        /* not ready while QUIESCENT: it serves no get */
        if (s->status >= STATUS_QUIESCENT)
            respond_text(ac, 503, "Service Unavailable", "not ready: QUIESCENT\n");
        else
            respond_text(ac, 200, "OK", "ready\n");
    } else if (IS("/stats.json")) {
        start_job(ac, METRICS_JSON, NULL, "application/json");
    } else if (IS("/metrics")) {
        serve_metrics(ac, &u);
    } else if (dashboard_asset(path, plen, &type, &body, &blen) == 0) {
        respond(ac, 200, "OK", type, (const char *)body, blen);
    } else {
        respond_text(ac, 404, "Not Found", "no such page: /, /metrics, /stats.json, /healthz and /readyz are served\n");
    }
#undef IS
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct admin_conn *ac = p->data;
    if (ac->url.len + len > ADMIN_URL_MAX) {
        respond_text(ac, 414, "URI Too Long", "request target too long\n");
        return 1;
    }
    return buf_append(&ac->url, at, len) < 0;
}

static int on_complete(http_parser *p)
{
    struct admin_conn *ac = p->data;
    buf_append(&ac->url, "", 1); /* NUL-terminated, not counted */
    ac->url.len--;
    ac->routed = 1;
    route(ac);
    return 1; /* one request a connection */
}

/* Only the Authorization header is kept (its name and value may come in
 * pieces). */
static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct admin_conn *ac = p->data;
    if (ac->in_authz || ac->field.len == 0 || ac->field_done) {
        ac->field.len = 0; /* a new header's name begins */
        ac->in_authz = 0;
        ac->field_done = 0;
    }
    if (ac->field.len + len > 64)
        return 0; /* longer than any name looked for: not one of them */
    return buf_append(&ac->field, at, len) < 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct admin_conn *ac = p->data;
    if (!ac->field_done) {
        ac->field_done = 1;
        ac->in_authz = ac->field.len == 13 && strncasecmp(ac->field.data, "authorization", 13) == 0;
        if (ac->in_authz)
            ac->authz.len = 0;
    }
    if (!ac->in_authz)
        return 0;
    if (ac->authz.len + len > 4096)
        return 1; /* no credentials are this long */
    return buf_append(&ac->authz, at, len) < 0;
}

static const http_parser_settings PARSER = {.on_url = on_url,
                                            .on_header_field = on_header_field,
                                            .on_header_value = on_header_value,
                                            .on_message_complete = on_complete};

/* Parses n bytes of request at p. */
static void feed(struct admin_conn *ac, const char *p, size_t n)
{
    ac->read_bytes += n;
    size_t used = http_parser_execute(&ac->parser, &PARSER, p, n);
    if (ac->answered || ac->routed)
        return; /* answered, or being answered (a job): what follows the request is not read */
    if (ac->parser.http_errno != HPE_OK || used != n)
        respond_text(ac, 400, "Bad Request", "bad request\n");
    else if (ac->read_bytes > ADMIN_REQUEST_MAX)
        respond_text(ac, 431, "Request Header Fields Too Large", "request too large\n");
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)hint;
    struct admin_conn *ac = h->data;
    *b = uv_buf_init(ac->rbuf, sizeof(ac->rbuf));
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct admin_conn *ac = st->data;
    if (n < 0)
        conn_close(ac);
    else if (n > 0)
        feed(ac, b->base, (size_t)n);
}

/* ---- over TLS (tls.h's peer) ---- */

static void t_room(void *o, char **p, size_t *n)
{
    struct admin_conn *ac = o;
    *p = ac->rbuf;
    *n = ac->answered || ac->routed ? 0 : sizeof(ac->rbuf);
}

static void t_input(void *o, size_t n) { feed(o, ((struct admin_conn *)o)->rbuf, n); }
static void t_end(void *o) { conn_close(o); }
static void t_written(void *o, int status)
{
    (void)status;
    conn_close(o);
}
static int t_closing(const void *o) { return uv_is_closing((const uv_handle_t *)&((const struct admin_conn *)o)->tcp); }
static int t_reading(const void *o)
{
    const struct admin_conn *ac = o;
    return !ac->answered && !ac->routed;
}

static const struct tls_peer_ops TLS_OPS = {.room = t_room,
                                            .input = t_input,
                                            .end = t_end,
                                            .write_done = t_written,
                                            .closing = t_closing,
                                            .reading = t_reading};

static void tls_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    (void)hint;
    *b = tls_peer_rbuf(((struct admin_conn *)h->data)->tls);
}

static void tls_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    tls_peer_feed(((struct admin_conn *)st->data)->tls, n, b);
}

static void on_connection(uv_stream_t *l, int status)
{
    struct admin *a = l->data;
    if (status < 0)
        return;
    struct admin_conn *ac = calloc(1, sizeof(*ac));
    if (!ac)
        return;
    ac->a = a;
    list_init(&ac->link);
    list_init(&ac->job_link);
    uv_tcp_init(l->loop, &ac->tcp);
    ac->tcp.data = ac;
    list_push_back(&a->conns, &ac->link);
    a->nconns++;
    ac->accepted_ms = uv_now(l->loop);
    if (uv_accept(l, (uv_stream_t *)&ac->tcp) < 0 || a->nconns > a->srv->cfg->admin_max_connections) {
        log_debug(&a->srv->log, "admin connection closed at once: %" PRIu64 " open, admin_max_connections %" PRIu64,
                  a->nconns - 1, a->srv->cfg->admin_max_connections);
        conn_close(ac); /* over admin_max_connections: closed at once, nothing said */
        return;
    }
    http_parser_init(&ac->parser, HTTP_REQUEST);
    ac->parser.data = ac;
    if (a->tls) {
        if (!a->srv->tls || !(ac->tls = tls_peer_new(a->srv->tls, &ac->tcp, ac, &TLS_OPS))) {
            conn_close(ac);
            return;
        }
        if (tls_peer_read_start(ac->tls, tls_alloc, tls_read) < 0)
            conn_close(ac);
        return;
    }
    uv_read_start((uv_stream_t *)&ac->tcp, alloc_cb, read_cb);
}

int admin_parse_listen(const char *text, char *addr, size_t cap, int *port)
{
    const char *colon = strrchr(text, ':');
    const char *p = colon ? colon + 1 : text;
    char *end;
    long v = strtol(p, &end, 10);
    if (!*p || *end || v < 0 || v > 65535)
        return -EINVAL;
    size_t alen = colon ? (size_t)(colon - text) : 0;
    if (alen && text[0] == '[' && text[alen - 1] == ']') { /* [::1]:9100 */
        text++;
        alen -= 2;
    }
    if (alen + 1 > cap)
        return -EINVAL;
    if (alen) {
        memcpy(addr, text, alen);
        addr[alen] = '\0';
    } else {
        snprintf(addr, cap, "127.0.0.1"); /* only a port: loopback */
    }
    *port = (int)v;
    return 0;
}

static void sweep_cb(uv_timer_t *t);

int admin_start(struct admin *a, struct server *s, const char *listen)
{
    char addr[256];
    int port, rc;
    struct sockaddr_storage sa;
    a->srv = s;
    list_init(&a->conns);
    if (admin_parse_listen(listen, addr, sizeof(addr), &port) < 0) {
        log_error(&s->log, "--admin-listen %s: wants PORT or ADDR:PORT", listen);
        return -EINVAL;
    }
    rc = strchr(addr, ':') ? uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&sa)
                           : uv_ip4_addr(addr, port, (struct sockaddr_in *)&sa);
    if (rc < 0) {
        log_error(&s->log, "--admin-listen %s: %s is not an IP address", listen, addr);
        return rc;
    }
    /* beyond loopback (auto): the auth file's users (HTTP Basic), and TLS
     * when the memcache port has it */
    const struct config *cfg = s->cfg;
    int wide = !listen_is_loopback(addr);
    a->basic = cfg->admin_auth == ADMIN_ON || (cfg->admin_auth == ADMIN_AUTO && wide && s->auth);
    a->tls = cfg->admin_tls == ADMIN_ON || (cfg->admin_tls == ADMIN_AUTO && wide && cfg->enable_ssl);
    if (a->basic && !s->auth) {
        log_error(&s->log, "admin_auth = on needs --auth-file FILE (its users log in with HTTP Basic)");
        return -EINVAL;
    }
    if (a->tls && !s->tls) {
        log_error(&s->log, "admin_tls = on needs --enable-ssl and --ssl-chain-cert");
        return -EINVAL;
    }
    if (wide && !a->basic && !cfg->allow_unauthenticated) {
        log_error(&s->log,
                  "refusing to serve the admin port on %s without authentication: give --auth-file FILE (its "
                  "users log in with HTTP Basic), or --allow-unauthenticated if the network is trusted",
                  addr);
        return -EPERM;
    }
    uv_tcp_init(s->loop, &a->listener);
    a->listener.data = a;
    list_init(&a->jobs);
    uv_idle_init(s->loop, &a->jobs_idle);
    a->jobs_idle.data = a;
    uv_timer_init(s->loop, &a->sweep);
    a->sweep.data = a;
    uint64_t every = cfg->admin_timeout_ms < 4000 ? (cfg->admin_timeout_ms + 3) / 4 : 1000;
    uv_timer_start(&a->sweep, sweep_cb, every, every);
    a->started = 1;
    if ((rc = uv_tcp_bind(&a->listener, (const struct sockaddr *)&sa, 0)) < 0 ||
        (rc = uv_listen((uv_stream_t *)&a->listener, 128, on_connection)) < 0) {
        log_error(&s->log, "cannot listen for the admin port on %s port %d: %s", addr, port, uv_strerror(rc));
        return rc;
    }
    int len = sizeof(sa);
    uv_tcp_getsockname(&a->listener, (struct sockaddr *)&sa, &len);
    a->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                             : ((struct sockaddr_in *)&sa)->sin_port);
    log_info(&s->log, "admin HTTP%s port on %s:%d (/, /metrics, /stats.json, /healthz, /readyz)%s", a->tls ? "S" : "",
             addr, a->port, a->basic ? ", HTTP Basic with the auth file's users" : "");
    return 0;
}

static void listener_closed(uv_handle_t *h) { (void)h; }

/* Closes admin connections older than admin_timeout (a client that never
 * finishes its request, or never reads the answer). */
static void sweep_cb(uv_timer_t *t)
{
    struct admin *a = t->data;
    uint64_t now = uv_now(t->loop), limit = a->srv->cfg->admin_timeout_ms;
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &a->conns) {
        struct admin_conn *ac = list_entry(pos, struct admin_conn, link);
        if (now - ac->accepted_ms >= limit) {
            log_debug(&a->srv->log, "admin connection closed after admin_timeout (%" PRIu64 " ms)", limit);
            conn_close(ac);
        }
    }
}

void admin_stop(struct admin *a)
{
    if (!a->started)
        return;
    if (!uv_is_closing((uv_handle_t *)&a->listener))
        uv_close((uv_handle_t *)&a->listener, listener_closed);
    if (!uv_is_closing((uv_handle_t *)&a->jobs_idle))
        uv_close((uv_handle_t *)&a->jobs_idle, listener_closed);
    if (!uv_is_closing((uv_handle_t *)&a->sweep))
        uv_close((uv_handle_t *)&a->sweep, listener_closed);
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &a->conns)
        conn_close(list_entry(pos, struct admin_conn, link));
}
