/* httpd.c: a small HTTP/1.1 server on the server's loop (httpd.h), under
 * the admin port and the HTTP API. Requests are parsed by Debian's
 * http-parser (libhttp-parser-dev); each connection answers one request and
 * closes (Connection: close). */
#include "httpd.h"

#include "auth.h"
#include "listen.h"
#include "log.h"
#include "server.h"
#include "tls.h"

#include <errno.h>
#include <http_parser.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTP_URL_MAX 8192   /* a longer request target answers 414 */
#define HTTP_HEAD_MAX 65536 /* bytes of one request's line and headers: more answers 431 */
#define HTTP_FIELD_MAX 64   /* header names kept: longer ones are none we look for */
#define HTTP_VALUE_MAX 4096 /* header values kept (credentials, a media type) */
#define HTTP_TYPE_MAX 128   /* a media type kept */

/* The headers a request keeps. */
enum want_header { H_NONE, H_AUTHZ, H_TYPE };

struct http_req {
    uv_tcp_t tcp;
    struct httpd *h;
    struct list link;
    http_parser parser;
    struct buf url;
    struct http_parser_url u; /* parsed url, once routed */
    size_t head_bytes;        /* bytes read (the line, headers and body) */
    int answered;
    uv_write_t wreq;
    struct tls_conn *tls;     /* over TLS */
    struct buf field;         /* the header being read: its name */
    enum want_header in;      /* the value being read is one we keep */
    int field_done;           /* the header's name is complete (its value is coming) */
    struct buf authz;         /* the Authorization header's value */
    char type[HTTP_TYPE_MAX]; /* the Content-Type's media type, lower case */
    struct buf type_raw;
    struct buf body;                   /* the request's body */
    const struct auth_user *user;      /* logged in with Basic */
    const char *extra[4];              /* header lines more for the answer (static text) */
    int routed;                        /* the request is complete and routed */
    uint64_t accepted_ms;              /* loop time it was accepted: the timeout counts from it */
    struct buf out;                    /* the answer's headers */
    struct buf rbody;                  /* and its body */
    uint64_t render_ns;                /* loop time spent making the body (bench/scrape reads it) */
    uint64_t step_ns_max;              /* the longest step of it: the longest queue traffic waited */
    int (*step)(void *, struct buf *); /* answered in steps: the next one */
    void (*release)(void *);
    void *step_arg;
    const char *step_type;
    struct list job_link; /* in httpd->jobs while step is set */
    int stepped;          /* answered in steps */
    void (*gone)(void *); /* held: told when the connection goes first */
    void *gone_arg;
    char rbuf[4096];
};

static void conn_closed(uv_handle_t *handle)
{
    struct http_req *r = handle->data;
    list_remove(&r->link);
    buf_free(&r->url);
    buf_free(&r->out);
    buf_free(&r->rbody);
    buf_free(&r->body);
    buf_free(&r->field);
    buf_free(&r->authz);
    buf_free(&r->type_raw);
    free(r);
}

static void stop_steps(struct http_req *r)
{
    if (!r->step)
        return;
    r->step = NULL;
    list_remove(&r->job_link);
    if (r->release)
        r->release(r->step_arg);
}

/* Closes r's connection (once); a held request's route is told. */
static void conn_close(struct http_req *r)
{
    if (uv_is_closing((uv_handle_t *)&r->tcp))
        return;
    stop_steps(r);
    if (r->gone && !r->answered) {
        void (*gone)(void *) = r->gone;
        r->gone = NULL;
        gone(r->gone_arg);
    }
    tls_peer_free(r->tls);
    r->tls = NULL;
    r->h->nconns--; /* counted out now, not at conn_closed: a peer that saw the close may connect again first */
    uv_close((uv_handle_t *)&r->tcp, conn_closed);
}

static void written(uv_write_t *w, int status)
{
    (void)status;
    conn_close(w->data);
}

void http_respond(struct http_req *r, int code, const char *type, struct buf *body)
{
    if (r->answered || uv_is_closing((uv_handle_t *)&r->tcp)) {
        buf_free(body);
        return;
    }
    r->answered = 1;
    r->gone = NULL;
    uv_read_stop((uv_stream_t *)&r->tcp);
    r->rbody = *body;
    *body = (struct buf){0};
    const char *reason = http_status_str((enum http_status)code);
    buf_printf(&r->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n",
               code, reason, type, r->rbody.len);
    if (r->stepped) /* a page made in steps: how long they took (bench/scrape) */
        buf_printf(&r->out, "X-Darner-Render-Seconds: %.6f\r\nX-Darner-Render-Step-Max-Seconds: %.6f\r\n",
                   (double)r->render_ns / 1e9, (double)r->step_ns_max / 1e9);
    for (size_t i = 0; i < sizeof(r->extra) / sizeof(r->extra[0]) && r->extra[i]; i++)
        buf_append(&r->out, r->extra[i], strlen(r->extra[i]));
    buf_printf(&r->out, "Connection: close\r\n\r\n");
    uv_buf_t b[2] = {uv_buf_init(r->out.data, (unsigned)r->out.len),
                     uv_buf_init(r->rbody.data, (unsigned)r->rbody.len)};
    unsigned n = r->parser.method == HTTP_HEAD || !r->rbody.len ? 1 : 2;
    if (r->tls) {
        int rc = tls_peer_write(r->tls, b[0].base, b[0].len);
        if (rc >= 0 && n == 2)
            rc = tls_peer_write(r->tls, b[1].base, b[1].len);
        if (rc != 0) /* all sent, or failed: close; else the TLS layer's write_done closes */
            conn_close(r);
        return;
    }
    r->wreq.data = r;
    if (uv_write(&r->wreq, (uv_stream_t *)&r->tcp, b, n, written) < 0)
        conn_close(r);
}

void http_respond_text(struct http_req *r, int code, const char *text)
{
    struct buf b = {0};
    buf_append(&b, text, strlen(text));
    http_respond(r, code, "text/plain; charset=utf-8", &b);
}

void http_req_header(struct http_req *r, const char *line)
{
    for (size_t i = 0; i < sizeof(r->extra) / sizeof(r->extra[0]); i++)
        if (!r->extra[i]) {
            r->extra[i] = line;
            return;
        }
}

/* ---- answers made in steps ---- */

/* One step of every request answered in steps, each loop turn while there
 * are any (an idle handle keeps the loop turning meanwhile). */
static void jobs_cb(uv_idle_t *idle)
{
    struct httpd *h = idle->data;
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &h->jobs) {
        struct http_req *r = list_entry(pos, struct http_req, job_link);
        struct buf body = {0};
        uint64_t t0 = uv_hrtime();
        int rc = r->step(r->step_arg, &body);
        uint64_t ns = uv_hrtime() - t0;
        r->render_ns += ns;
        r->step_ns_max = ns > r->step_ns_max ? ns : r->step_ns_max;
        if (rc == 0)
            continue;
        stop_steps(r);
        if (rc < 0) {
            buf_free(&body);
            http_respond_text(r, 500, "out of memory\n"); /* (jobs: the admin port's pages) */
        } else {
            http_respond(r, 200, r->step_type, &body);
        }
    }
    if (list_empty(&h->jobs))
        uv_idle_stop(&h->jobs_idle);
}

void http_req_steps(struct http_req *r, const char *type, int (*step)(void *arg, struct buf *body),
                    void (*release)(void *arg), void *arg, uint64_t spent_ns)
{
    r->render_ns = r->step_ns_max = spent_ns;
    r->step = step;
    r->stepped = 1;
    r->release = release;
    r->step_arg = arg;
    r->step_type = type;
    uv_read_stop((uv_stream_t *)&r->tcp); /* the request is complete */
    list_push_back(&r->h->jobs, &r->job_link);
    uv_idle_start(&r->h->jobs_idle, jobs_cb);
}

void http_req_hold(struct http_req *r, void (*gone)(void *arg), void *arg)
{
    r->gone = gone;
    r->gone_arg = arg;
}

/* ---- the request's parts ---- */

struct httpd *http_req_httpd(const struct http_req *r) { return r->h; }
int http_req_method(const struct http_req *r) { return (int)r->parser.method; }
const char *http_req_type(const struct http_req *r) { return r->type; }
const struct auth_user *http_req_user(const struct http_req *r) { return r->user; }

void http_req_path(const struct http_req *r, const char **p, size_t *n)
{
    *p = r->url.data + r->u.field_data[UF_PATH].off;
    *n = r->u.field_data[UF_PATH].len;
}

void http_req_query(const struct http_req *r, const char **q, size_t *n)
{
    int has = (r->u.field_set & (1 << UF_QUERY)) != 0;
    *q = has ? r->url.data + r->u.field_data[UF_QUERY].off : "";
    *n = has ? r->u.field_data[UF_QUERY].len : 0;
}

void http_req_body(const struct http_req *r, const char **p, size_t *n)
{
    *p = r->body.data ? r->body.data : "";
    *n = r->body.len;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Decodes q[from..end) (%XX and +) into out (cap bytes, NUL-terminated).
 * Returns 0 or -EINVAL (cut short, not hex, a NUL, too long). */
static int unescape(const char *q, size_t from, size_t end, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t k = from; k < end; k++) {
        int c = (unsigned char)q[k];
        if (c == '%') {
            int hi = k + 2 < end ? hexval(q[k + 1]) : -1, lo = k + 2 < end ? hexval(q[k + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi | lo) == 0)
                return -EINVAL;
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
    return 0;
}

int http_req_param(const struct http_req *r, const char *name, char *out, size_t cap)
{
    const char *q;
    size_t n, nlen = strlen(name);
    http_req_query(r, &q, &n);
    for (size_t i = 0; i < n;) {
        size_t end = i;
        while (end < n && q[end] != '&')
            end++;
        if (end - i > nlen && memcmp(q + i, name, nlen) == 0 && q[i + nlen] == '=')
            return unescape(q, i + nlen + 1, end, out, cap) < 0 ? -EINVAL : 1;
        i = end + 1;
    }
    return 0;
}

int http_req_unknown_param(const struct http_req *r, const char *const *names, char *out, size_t cap)
{
    const char *q;
    size_t n;
    http_req_query(r, &q, &n);
    for (size_t i = 0; i < n;) {
        size_t end = i, eq;
        while (end < n && q[end] != '&')
            end++;
        for (eq = i; eq < end && q[eq] != '='; eq++)
            ;
        int known = eq == i; /* an empty name ("&&"): nothing */
        for (size_t k = 0; names[k] && !known; k++)
            known = strlen(names[k]) == eq - i && memcmp(names[k], q + i, eq - i) == 0;
        if (!known) {
            if (unescape(q, i, eq, out, cap) < 0)
                snprintf(out, cap, "?");
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

/* ---- parsing ---- */

/* httpd's own refusal of a request: the server's error form, else text. */
static void refuse(struct http_req *r, int status, const char *text)
{
    if (r->h->conf.error)
        r->h->conf.error(r, status, text);
    else
        http_respond_text(r, status, text);
}

/* HTTP Basic against the auth file: the user, or NULL (no or wrong
 * credentials). */
static const struct auth_user *basic_auth(const struct http_req *r)
{
    const struct server *s = r->h->srv;
    static const char scheme[] = "Basic ";
    if (!s->auth || r->authz.len <= sizeof(scheme) - 1 || strncasecmp(r->authz.data, scheme, sizeof(scheme) - 1) != 0)
        return NULL;
    const char *b64 = r->authz.data + sizeof(scheme) - 1;
    size_t n = r->authz.len - (sizeof(scheme) - 1);
    while (n && b64[n - 1] == ' ')
        n--;
    if (n == 0 || n % 4 || n > 4000)
        return NULL;
    unsigned char plain[3000 + 1];
    int pad = (b64[n - 1] == '=') + (n > 1 && b64[n - 1] == '=' && b64[n - 2] == '=');
    int len = EVP_DecodeBlock(plain, (const unsigned char *)b64, (int)n);
    /* EVP_DecodeBlock counts the padding's bytes: at most two, and never
     * more than it decoded ("====" is not base64) */
    if (len < 0 || len < pad || (n > 2 && b64[n - 3] == '='))
        return NULL;
    len -= pad;
    const char *colon = memchr(plain, ':', (size_t)len);
    if (!colon)
        return NULL;
    struct auth_cred cred = {.user = (const char *)plain,
                             .user_len = (size_t)(colon - (const char *)plain),
                             .pass = colon + 1,
                             .pass_len = (size_t)len - (size_t)(colon - (const char *)plain) - 1};
    return auth_login(s->auth, &cred);
}

/* The Content-Type's media type: lower case, parameters and blanks cut. */
static void keep_type(struct http_req *r)
{
    size_t o = 0;
    for (size_t i = 0; i < r->type_raw.len && o + 1 < sizeof(r->type); i++) {
        char c = r->type_raw.data[i];
        if (c == ';')
            break;
        if (c != ' ' && c != '\t')
            r->type[o++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    r->type[o] = '\0';
}

static void route(struct http_req *r)
{
    struct httpd *h = r->h;
    http_parser_url_init(&r->u);
    if (http_parser_parse_url(r->url.data, r->url.len, 0, &r->u) != 0 || !(r->u.field_set & (1 << UF_PATH))) {
        refuse(r, 400, "bad request target\n");
        return;
    }
    keep_type(r);
    const char *path;
    size_t plen;
    http_req_path(r, &path, &plen);
    if (h->conf.basic && !(h->conf.open_path && h->conf.open_path(path, plen)) && !(r->user = basic_auth(r))) {
        http_req_header(r, "WWW-Authenticate: Basic realm=\"darner\", charset=\"UTF-8\"\r\n");
        refuse(r, 401, "log in as a user of the auth file\n");
        return;
    }
    h->conf.route(r);
    if (!r->answered && !r->step && !r->gone && !uv_is_closing((uv_handle_t *)&r->tcp))
        refuse(r, 500, "not answered\n"); /* a route's fault: never left hanging */
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    struct http_req *r = p->data;
    if (r->url.len + len > HTTP_URL_MAX) {
        refuse(r, 414, "request target too long\n");
        return 1;
    }
    return buf_append(&r->url, at, len) < 0;
}

/* Only Authorization and Content-Type are kept (a name and a value may
 * come in pieces). */
static int on_header_field(http_parser *p, const char *at, size_t len)
{
    struct http_req *r = p->data;
    if (r->field_done) {
        r->field.len = 0; /* a new header's name begins */
        r->in = H_NONE;
        r->field_done = 0;
    }
    if (r->field.len + len > HTTP_FIELD_MAX)
        return 0; /* longer than any name looked for: not one of them */
    return buf_append(&r->field, at, len) < 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    struct http_req *r = p->data;
    if (!r->field_done) {
        r->field_done = 1;
        r->in = r->field.len == 13 && strncasecmp(r->field.data, "authorization", 13) == 0  ? H_AUTHZ
                : r->field.len == 12 && strncasecmp(r->field.data, "content-type", 12) == 0 ? H_TYPE
                                                                                            : H_NONE;
        if (r->in == H_AUTHZ)
            r->authz.len = 0;
        if (r->in == H_TYPE)
            r->type_raw.len = 0;
    }
    struct buf *b = r->in == H_AUTHZ ? &r->authz : r->in == H_TYPE ? &r->type_raw : NULL;
    if (!b)
        return 0;
    if (b->len + len > HTTP_VALUE_MAX)
        return 1; /* no credentials or media type are this long */
    return buf_append(b, at, len) < 0;
}

static int on_headers_complete(http_parser *p)
{
    struct http_req *r = p->data;
    if (p->content_length != ULLONG_MAX && p->content_length > r->h->conf.max_body) {
        refuse(r, 413, "request body too large\n");
        return 1; /* no body is read */
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct http_req *r = p->data;
    if (r->body.len + len > r->h->conf.max_body) { /* chunked: its length was not known */
        refuse(r, 413, "request body too large\n");
        return 1;
    }
    return buf_append(&r->body, at, len) < 0;
}

static int on_complete(http_parser *p)
{
    struct http_req *r = p->data;
    if (r->answered)
        return 1;
    buf_append(&r->url, "", 1); /* NUL-terminated, not counted */
    r->url.len--;
    r->routed = 1;
    route(r);
    return 1; /* one request a connection */
}

static const http_parser_settings PARSER = {.on_url = on_url,
                                            .on_header_field = on_header_field,
                                            .on_header_value = on_header_value,
                                            .on_headers_complete = on_headers_complete,
                                            .on_body = on_body,
                                            .on_message_complete = on_complete};

/* Parses n bytes of request at p. */
static void feed(struct http_req *r, const char *p, size_t n)
{
    if (r->answered || r->routed)
        return; /* what follows the request is not read (a held one is watched for its end) */
    size_t used = http_parser_execute(&r->parser, &PARSER, p, n);
    if (r->answered || r->routed)
        return; /* answered, or being answered */
    if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK || used != n) {
        refuse(r, 400, "bad request\n");
        return;
    }
    r->head_bytes += n; /* all read: less the body, the line and headers (and chunk sizes) */
    if (r->head_bytes > HTTP_HEAD_MAX + r->body.len)
        refuse(r, 431, "request too large\n");
}

static void alloc_cb(uv_handle_t *handle, size_t hint, uv_buf_t *b)
{
    (void)hint;
    struct http_req *r = handle->data;
    *b = uv_buf_init(r->rbuf, sizeof(r->rbuf));
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct http_req *r = st->data;
    if (n < 0)
        conn_close(r);
    else if (n > 0)
        feed(r, b->base, (size_t)n);
}

/* ---- over TLS (tls.h's peer) ---- */

static int t_reading(const void *o)
{
    const struct http_req *r = o;
    return !r->answered && (!r->routed || r->gone); /* a held request is watched for its end */
}

static void t_room(void *o, char **p, size_t *n)
{
    struct http_req *r = o;
    *p = r->rbuf;
    *n = t_reading(r) ? sizeof(r->rbuf) : 0;
}

static void t_input(void *o, size_t n) { feed(o, ((struct http_req *)o)->rbuf, n); }
static void t_end(void *o) { conn_close(o); }
static void t_written(void *o, int status)
{
    (void)status;
    conn_close(o);
}
static int t_closing(const void *o) { return uv_is_closing((const uv_handle_t *)&((const struct http_req *)o)->tcp); }

static const struct tls_peer_ops TLS_OPS = {.room = t_room,
                                            .input = t_input,
                                            .end = t_end,
                                            .write_done = t_written,
                                            .closing = t_closing,
                                            .reading = t_reading};

static void tls_alloc(uv_handle_t *handle, size_t hint, uv_buf_t *b)
{
    (void)hint;
    *b = tls_peer_rbuf(((struct http_req *)handle->data)->tls);
}

static void tls_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    tls_peer_feed(((struct http_req *)st->data)->tls, n, b);
}

static void on_connection(uv_stream_t *l, int status)
{
    struct httpd *h = l->data;
    if (status < 0)
        return;
    struct http_req *r = calloc(1, sizeof(*r));
    if (!r)
        return;
    r->h = h;
    list_init(&r->link);
    list_init(&r->job_link);
    uv_tcp_init(l->loop, &r->tcp);
    r->tcp.data = r;
    list_push_back(&h->conns, &r->link);
    h->nconns++;
    r->accepted_ms = uv_now(l->loop);
    if (uv_accept(l, (uv_stream_t *)&r->tcp) < 0 || h->nconns > h->conf.max_connections) {
        log_debug(&h->srv->log, "%s connection closed at once: %" PRIu64 " open, at most %" PRIu64, h->conf.what,
                  h->nconns - 1, h->conf.max_connections);
        conn_close(r); /* over max_connections: closed at once, nothing said */
        return;
    }
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
    if (h->conf.tls) {
        if (!h->srv->tls || !(r->tls = tls_peer_new(h->srv->tls, &r->tcp, r, &TLS_OPS))) {
            conn_close(r);
            return;
        }
        if (tls_peer_read_start(r->tls, tls_alloc, tls_read) < 0)
            conn_close(r);
        return;
    }
    uv_read_start((uv_stream_t *)&r->tcp, alloc_cb, read_cb);
}

int httpd_parse_listen(const char *text, char *addr, size_t cap, int *port)
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

/* Closes connections older than the timeout (a client that never finishes
 * its request, or never reads the answer); held requests are their
 * route's to end. */
static void sweep_cb(uv_timer_t *t)
{
    struct httpd *h = t->data;
    uint64_t now = uv_now(t->loop), limit = h->conf.timeout_ms;
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &h->conns) {
        struct http_req *r = list_entry(pos, struct http_req, link);
        if (now - r->accepted_ms >= limit && !(r->gone && !r->answered)) {
            log_debug(&h->srv->log, "%s connection closed after its timeout (%" PRIu64 " ms)", h->conf.what, limit);
            conn_close(r);
        }
    }
}

static void handle_closed(uv_handle_t *handle) { (void)handle; }

int httpd_start(struct httpd *h, struct server *s, const struct httpd_conf *conf, const char *listen)
{
    char addr[256];
    int port, rc;
    struct sockaddr_storage sa;
    h->srv = s;
    h->conf = *conf;
    list_init(&h->conns);
    list_init(&h->jobs);
    if (httpd_parse_listen(listen, addr, sizeof(addr), &port) < 0) {
        log_error(&s->log, "%s %s: wants PORT or ADDR:PORT", conf->option, listen);
        return -EINVAL;
    }
    rc = strchr(addr, ':') ? uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&sa)
                           : uv_ip4_addr(addr, port, (struct sockaddr_in *)&sa);
    if (rc < 0) {
        log_error(&s->log, "%s %s: %s is not an IP address", conf->option, listen, addr);
        return rc;
    }
    if (!listen_is_loopback(addr) && !conf->basic && !s->cfg->allow_unauthenticated) {
        log_error(&s->log,
                  "refusing to serve the %s on %s without authentication: give --auth-file FILE (its users log "
                  "in with HTTP Basic), or --allow-unauthenticated if the network is trusted",
                  conf->what, addr);
        return -EPERM;
    }
    uv_tcp_init(s->loop, &h->listener);
    h->listener.data = h;
    uv_idle_init(s->loop, &h->jobs_idle);
    h->jobs_idle.data = h;
    uv_timer_init(s->loop, &h->sweep);
    h->sweep.data = h;
    uint64_t every = conf->timeout_ms < 4000 ? (conf->timeout_ms + 3) / 4 : 1000;
    uv_timer_start(&h->sweep, sweep_cb, every ? every : 1, every ? every : 1);
    h->started = 1;
    if ((rc = uv_tcp_bind(&h->listener, (const struct sockaddr *)&sa, 0)) < 0 ||
        (rc = uv_listen((uv_stream_t *)&h->listener, 128, on_connection)) < 0) {
        log_error(&s->log, "cannot listen for the %s on %s port %d: %s", conf->what, addr, port, uv_strerror(rc));
        return rc;
    }
    int len = sizeof(sa);
    uv_tcp_getsockname(&h->listener, (struct sockaddr *)&sa, &len);
    h->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                             : ((struct sockaddr_in *)&sa)->sin_port);
    return 0;
}

void httpd_stop(struct httpd *h)
{
    if (!h->started)
        return;
    if (!uv_is_closing((uv_handle_t *)&h->listener))
        uv_close((uv_handle_t *)&h->listener, handle_closed);
    if (!uv_is_closing((uv_handle_t *)&h->jobs_idle))
        uv_close((uv_handle_t *)&h->jobs_idle, handle_closed);
    if (!uv_is_closing((uv_handle_t *)&h->sweep))
        uv_close((uv_handle_t *)&h->sweep, handle_closed);
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &h->conns)
        conn_close(list_entry(pos, struct http_req, link));
}
