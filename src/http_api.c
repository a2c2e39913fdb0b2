/* http_api.c: the HTTP/JSON queue API (--http-listen), versioned under /v1
 * (docs/api.md; every status code in docs/openapi.yaml): its answers and
 * errors, query parameters, the queues' figures, delete and flush, and the
 * routing; enqueues are in http_enqueue.c, takes and leases in
 * http_take.c. Requests go through the same queue layer as the memcache
 * port, the auth file's users and their queue patterns apply (HTTP
 * Basic). Bodies and answers are JSON (jansson); item data is base64. */
#include "http_api.h"
#include "http_api_int.h"

#include "auth.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "metrics_int.h"
#include "queue/registry.h"
#include "server.h"
#include "status.h"

#include <errno.h>
#include <http_parser.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "/v1/queues"
#define LEASES "/v1/leases/"

/* ---- answers ---- */

/* Answers code with j (taken) as its body. */
void api_answer_json(struct http_req *r, int code, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) {
        http_respond_text(r, 500, "out of memory\n");
        return;
    }
    struct buf b = {0};
    if (buf_append(&b, text, strlen(text)) < 0 || buf_append(&b, "\n", 1) < 0) {
        free(text);
        buf_free(&b);
        http_respond_text(r, 500, "out of memory\n");
        return;
    }
    free(text);
    http_respond(r, code, "application/json", &b);
}

/* {"error": {"code": code, "message": ...}}: code is stable (docs/api.md). */
void api_fail(struct http_req *r, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    api_answer_json(r, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

/* httpd's own refusals (a bad request line, no credentials, a body too
 * large), as JSON errors too. */
static void transport_error(struct http_req *r, int status, const char *text)
{
    static const struct {
        int status;
        const char *code;
    } codes[] = {{400, "bad_request"},  {401, "unauthorized"},      {413, "body_too_large"},
                 {414, "uri_too_long"}, {431, "headers_too_large"}, {500, "internal"}};
    const char *code = "error";
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (codes[i].status == status)
            code = codes[i].code;
    size_t n = strlen(text);
    api_fail(r, status, code, "%.*s", (int)(n && text[n - 1] == '\n' ? n - 1 : n), text);
}

/* ---- parameters ---- */

/* Query parameter name as a whole number in [min, max] into *v (kept when
 * absent; *given says). Returns 0, or -EINVAL having answered 400. */
int api_param_u64(struct call *c, const char *name, uint64_t min, uint64_t max, uint64_t *v, int *given)
{
    char text[32], *end;
    int found = http_req_param(c->r, name, text, sizeof(text));
    if (given)
        *given = found == 1;
    if (found == 0)
        return 0;
    errno = 0;
    unsigned long long x = found == 1 && text[0] >= '0' && text[0] <= '9' ? strtoull(text, &end, 10) : 0;
    if (found < 0 || !(text[0] >= '0' && text[0] <= '9') || *end || errno || x < min || x > max) {
        api_fail(c->r, 400, "bad_parameter", "%s is a whole number from %" PRIu64 " to %" PRIu64, name, min, max);
        return -EINVAL;
    }
    *v = x;
    return 0;
}

/* Answers 400 for a query parameter not in names. Returns 0 or -EINVAL. */
int api_only_params(struct call *c, const char *const *names)
{
    char bad[64];
    if (!http_req_unknown_param(c->r, names, bad, sizeof(bad)))
        return 0;
    api_fail(c->r, 400, "unknown_parameter", "unknown parameter '%s'", bad);
    return -EINVAL;
}

/* Appends v in decimal to out (room for 20 digits reserved before). */
void api_put_u64(struct buf *out, uint64_t v)
{
    char d[20];
    size_t k = sizeof(d);
    do
        d[--k] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    buf_append(out, d + k, sizeof(d) - k);
}

/* ---- queues ---- */

/* A queue's figures: its name and every per-queue `stats` value. */
static json_t *queue_json(struct server *s, struct queue *q, uint64_t now)
{
    struct qvals v;
    metrics_queue(s, q, now, &v);
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "name", json_stringn(q->name, q->name_len)) < 0) {
        json_decref(o);
        return NULL;
    }
    for (int i = 0; i < QM_COUNT; i++)
        if (QDEFS[i].stat)
            json_object_set_new(o, QDEFS[i].stat, json_integer((json_int_t)v.v[i]));
    for (int l = 0; v.has_lanes && l < QUEUE_LEVELS; l++) {
        char key[16];
        snprintf(key, sizeof(key), "items_pri%d", l);
        if (v.pri[l])
            json_object_set_new(o, key, json_integer((json_int_t)v.pri[l]));
    }
    return o;
}

static void info(struct call *c)
{
    static const char *const names[] = {NULL};
    if (api_only_params(c, names) < 0)
        return;
    struct queue *q = registry_find(c->s->reg, c->name, c->name_len);
    if (!q || !metrics_visible(q)) {
        api_fail(c->r, 404, "not_found", "no queue '%s'", c->name);
        return;
    }
    json_t *o = queue_json(c->s, q, queue_now_ms());
    if (!o)
        api_fail(c->r, 500, "internal", "out of memory");
    else
        api_answer_json(c->r, 200, o);
}

/* What DELETE /v1/queues/{q} and POST .../flush do to a queue. */
struct queue_change {
    int (*fn)(struct registry *r, struct queue *q);
    const char *done; /* the answer's key */
    const char *what; /* for an error */
};

static int delete_queue(struct registry *r, struct queue *q) { return registry_delete(r, q); }
static int flush_queue(struct registry *r, struct queue *q)
{
    (void)r;
    return queue_flush(q);
}

static const struct queue_change DELETE_QUEUE = {delete_queue, "deleted", "delete"};
static const struct queue_change FLUSH_QUEUE = {flush_queue, "flushed", "flush"};

/* Deletes or flushes c's queue, written before it is answered. */
static void change_queue(struct call *c, const struct queue_change *ch)
{
    static const char *const names[] = {NULL};
    if (api_only_params(c, names) < 0)
        return;
    struct queue *q = registry_find(c->s->reg, c->name, c->name_len);
    if (c->s->status >= STATUS_READONLY) {
        api_fail(c->r, 503, "read_only", "the server is %s", status_name(c->s->status));
    } else if (!q || !metrics_visible(q)) {
        api_fail(c->r, 404, "not_found", "no queue '%s'", c->name);
    } else {
        int rc = ch->fn(c->s->reg, q);
        registry_flush(c->s->reg);
        if (rc < 0)
            api_fail(c->r, 500, "internal", "cannot %s the queue: %s", ch->what, strerror(-rc));
        else
            api_answer_json(c->r, 200, json_pack("{s:b}", ch->done, 1));
    }
}

static void drop(struct call *c) { change_queue(c, &DELETE_QUEUE); }
static void flush(struct call *c) { change_queue(c, &FLUSH_QUEUE); }

/* GET /v1/queues: every queue the user may read. */
static void list(struct http_req *r, struct server *s)
{
    static const char *const names[] = {NULL};
    struct call c = {.r = r, .s = s};
    if (api_only_params(&c, names) < 0)
        return;
    const struct auth_user *u = http_req_user(r);
    uint64_t now = queue_now_ms();
    json_t *a = json_array();
    for (struct list *pos = s->reg->all.next; a && pos != &s->reg->all; pos = pos->next) {
        struct queue *q = list_entry(pos, struct queue, all);
        if (!metrics_visible(q) || (u && !auth_may(u, q->name, q->name_len, AUTH_READ)))
            continue;
        json_t *o = queue_json(s, q, now);
        if (!o || json_array_append_new(a, o) < 0) {
            json_decref(a);
            a = NULL;
        }
    }
    if (!a)
        api_fail(r, 500, "internal", "out of memory");
    else
        api_answer_json(r, 200, json_pack("{s:o}", "queues", a));
}

/* ---- routing ---- */

static const struct route {
    int method;
    const char *rest; /* after /v1/queues/{q} */
    void (*fn)(struct call *c);
    unsigned perm;
} ROUTES[] = {
    {HTTP_GET, "", info, AUTH_READ},
    {HTTP_DELETE, "", drop, AUTH_WRITE},
    {HTTP_POST, "/items", api_enqueue, AUTH_WRITE},
    {HTTP_GET, "/items", api_take, AUTH_READ},
    {HTTP_POST, "/flush", flush, AUTH_WRITE},
    {HTTP_POST, "/leases", api_lease, AUTH_READ},
};

static int hexval(char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

/* The queue name of a path segment, %XX decoded, into c (answers 400 when
 * it is no queue name). Returns 0 or -EINVAL. */
static int name_of(struct call *c, const char *p, size_t n)
{
    size_t o = 0;
    const char *err = NULL;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)p[i];
        if (ch == '%') {
            int hi = i + 2 < n ? hexval(p[i + 1]) : -1, lo = i + 2 < n ? hexval(p[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                err = "a bad %XX escape";
                break;
            }
            ch = hi << 4 | lo;
            i += 2;
        }
        if (o == PROTO_MAX_NAME || ch == '/') {
            err = o == PROTO_MAX_NAME ? "over 250 bytes" : "a '/' (options are query parameters here)";
            break;
        }
        c->name[o++] = (char)ch;
    }
    c->name[o] = '\0';
    c->name_len = o;
    if (!err && proto_parse_key(c->name, o, 1, &c->key, &err) < 0 && !err)
        err = "not a queue name";
    if (err) {
        api_fail(c->r, 400, "bad_queue_name", "bad queue name: %s", err);
        return -EINVAL;
    }
    return 0;
}

static void route(struct http_req *r)
{
    struct server *s = http_req_httpd(r)->srv;
    const char *path;
    size_t n, pre = strlen(PREFIX);
    http_req_path(r, &path, &n);
    if (n == pre && memcmp(path, PREFIX, pre) == 0) {
        if (http_req_method(r) == HTTP_GET || http_req_method(r) == HTTP_HEAD) {
            list(r, s);
        } else {
            http_req_header(r, "Allow: GET\r\n");
            api_fail(r, 405, "method_not_allowed", "GET lists the queues");
        }
        return;
    }
    if (n > strlen(LEASES) && memcmp(path, LEASES, strlen(LEASES)) == 0) {
        const char *h = path + strlen(LEASES), *slash = memchr(h, '/', n - strlen(LEASES));
        size_t hn = slash ? (size_t)(slash - h) : n - strlen(LEASES);
        api_lease_call(r, s, h, hn, h + hn, n - strlen(LEASES) - hn);
        return;
    }
    if (n <= pre + 1 || memcmp(path, PREFIX "/", pre + 1) != 0) {
        api_fail(r, 404, "not_found", "no such path: the API is under " PREFIX " (docs/api.md)");
        return;
    }
    const char *seg = path + pre + 1, *slash = memchr(seg, '/', n - pre - 1);
    size_t seglen = slash ? (size_t)(slash - seg) : n - pre - 1, restlen = n - pre - 1 - seglen;
    const struct route *match = NULL;
    int path_known = 0;
    for (size_t i = 0; i < sizeof(ROUTES) / sizeof(ROUTES[0]); i++) {
        if (strlen(ROUTES[i].rest) != restlen || memcmp(ROUTES[i].rest, seg + seglen, restlen) != 0)
            continue;
        path_known = 1;
        /* HEAD is GET without the body: never for a take, whose items would go unsent */
        if (ROUTES[i].method == http_req_method(r) ||
            (ROUTES[i].method == HTTP_GET && http_req_method(r) == HTTP_HEAD && ROUTES[i].fn != api_take))
            match = &ROUTES[i];
    }
    if (!path_known || seglen == 0) {
        api_fail(r, 404, "not_found", "no such path (docs/api.md)");
        return;
    }
    if (!match) {
        int items = restlen == 6 && memcmp(seg + seglen, "/items", 6) == 0; /* (/flush is 6 bytes too) */
        http_req_header(r, restlen == 0 ? "Allow: GET, DELETE\r\n"
                           : items      ? "Allow: GET, POST\r\n"
                                        : "Allow: POST\r\n");
        api_fail(r, 405, "method_not_allowed", "not a method of this path");
        return;
    }
    struct call c = {.r = r, .s = s};
    if (name_of(&c, seg, seglen) < 0)
        return;
    const struct auth_user *u = http_req_user(r);
    if (u && !auth_may(u, c.name, c.name_len, match->perm)) {
        api_fail(r, 403, "forbidden", "permission denied: no %s access to queue '%s'",
                 match->perm == AUTH_READ ? "read" : "write", c.name);
        return;
    }
    match->fn(&c);
}

int http_api_start(struct http_api *a, struct server *s)
{
    const struct config *cfg = s->cfg;
    char addr[256];
    int port, rc;
    if (httpd_parse_listen(cfg->http_listen, addr, sizeof(addr), &port) < 0) {
        log_error(&s->log, "--http-listen %s: wants PORT or ADDR:PORT", cfg->http_listen);
        return -EINVAL;
    }
    /* as the memcache port: the auth file's users, TLS when it has TLS */
    struct httpd_conf conf = {.what = "HTTP API",
                              .option = "--http-listen",
                              .basic = s->auth != NULL,
                              .tls = cfg->enable_ssl,
                              .max_connections = cfg->http_max_connections,
                              .timeout_ms = cfg->http_timeout_ms,
                              .max_body = cfg->http_max_body,
                              .route = route,
                              .error = transport_error};
    if (conf.tls && !s->tls) {
        log_error(&s->log, "--http-listen with --enable-ssl needs --ssl-chain-cert");
        return -EINVAL;
    }
    api_leases_init(&a->leases);
    if ((rc = httpd_start(&a->h, s, &conf, cfg->http_listen)) < 0)
        return rc;
    a->port = a->h.port;
    log_info(&s->log, "HTTP%s API on %s:%d (/v1/queues)%s", conf.tls ? "S" : "", addr, a->port,
             conf.basic ? ", HTTP Basic with the auth file's users" : "");
    return 0;
}

void http_api_stop(struct http_api *a) { httpd_stop(&a->h); }

void http_api_release(struct http_api *a)
{
    if (a->h.started)
        api_leases_free(&a->leases); /* their items go back, as with clients gone */
}
