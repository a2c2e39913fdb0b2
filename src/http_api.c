/* http_api.c: the HTTP/JSON queue API (--http-listen), versioned under /v1
 * (docs/api.md; every status code in docs/openapi.yaml). Requests go
 * through the same queue layer as the memcache port: a set's options,
 * aliases, fanout, limits and delays (enqueue.c), at-most-once takes
 * (queue_get), the auth file's users and their queue patterns (HTTP
 * Basic). Bodies and answers are JSON (jansson); item data is base64. */
#include "http_api.h"

#include "auth.h"
#include "conffile.h"
#include "enqueue.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "metrics_int.h"
#include "proto/parse.h"
#include "queue/lease.h"
#include "queue/queue.h"
#include "queue/registry.h"
#include "server.h"
#include "status.h"
#include "sync.h"

#include <errno.h>
#include <http_parser.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "/v1/queues"
#define LEASES "/v1/leases/"
#define B64_PIECE (3u << 20)      /* bytes base64-encoded at once: a multiple of 3 */
#define B64_TEXT_PIECE (4u << 20) /* base64 characters decoded at once: a multiple of 4 */

/* One request to a queue's path, while it is served (a take that waits and
 * a set that waits for its fsync outlive their route call). */
struct call {
    struct http_req *r;
    struct server *s;
    char name[PROTO_MAX_NAME + 1];
    size_t name_len;
    struct proto_key key;
    /* a take: how, how many, and its waiting */
    enum qget_mode mode;
    uint64_t ttr; /* of a lease */
    struct qwaiter waiter;
    int waiting;
    uv_timer_t timer;
    uint64_t max;
    /* a set that waits for its fsync */
    struct sync_waiter sw;
    struct buf body; /* its answer, sent once the fsync is done */
};

/* ---- answers ---- */

/* Answers code with j (taken) as its body. */
static void answer_json(struct http_req *r, int code, json_t *j)
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
static void fail(struct http_req *r, int status, const char *code, const char *fmt, ...) PRINTF_LIKE(4, 5);
static void fail(struct http_req *r, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    answer_json(r, status, json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
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
    fail(r, status, code, "%.*s", (int)(n && text[n - 1] == '\n' ? n - 1 : n), text);
}

/* ---- parameters ---- */

/* Query parameter name as a whole number in [min, max] into *v (kept when
 * absent; *given says). Returns 0, or -EINVAL having answered 400. */
static int param_u64(struct call *c, const char *name, uint64_t min, uint64_t max, uint64_t *v, int *given)
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
        fail(c->r, 400, "bad_parameter", "%s is a whole number from %" PRIu64 " to %" PRIu64, name, min, max);
        return -EINVAL;
    }
    *v = x;
    return 0;
}

/* Answers 400 for a query parameter not in names. Returns 0 or -EINVAL. */
static int only_params(struct call *c, const char *const *names)
{
    char bad[64];
    if (!http_req_unknown_param(c->r, names, bad, sizeof(bad)))
        return 0;
    fail(c->r, 400, "unknown_parameter", "unknown parameter '%s'", bad);
    return -EINVAL;
}

/* ---- base64 (OpenSSL's codec; the alphabet and padding checked here) ---- */

/* 1 for the 64 characters of base64 */
static const unsigned char B64[256] = {
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1,
    ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1,
    ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1,
    ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
    ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1, ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1, ['+'] = 1, ['/'] = 1};

/* Decodes n bytes of base64 at p, appended to out. Returns the decoded
 * length, or -EINVAL (not base64) or -ENOMEM. */
static long b64_decode(const char *p, size_t n, struct buf *out)
{
    if (n % 4)
        return -EINVAL;
    size_t pad = n && p[n - 1] == '=' ? (n > 1 && p[n - 2] == '=' ? 2 : 1) : 0;
    unsigned char ok = 1;
    for (size_t i = 0; i < n - pad; i++) /* no early exit: a loop the compiler can widen */
        ok &= B64[(unsigned char)p[i]];
    if (!ok)
        return -EINVAL;
    if (buf_reserve(out, n / 4 * 3 + 1) < 0)
        return -ENOMEM;
    size_t got = 0;
    for (size_t at = 0; at < n;) { /* in pieces (the padding is in the last): EVP_DecodeBlock takes an int */
        size_t k = n - at < B64_TEXT_PIECE ? n - at : B64_TEXT_PIECE;
        int len = EVP_DecodeBlock((unsigned char *)out->data + out->len + got, (const unsigned char *)p + at, (int)k);
        if (len < 0)
            return -EINVAL;
        got += (size_t)len;
        at += k;
    }
    if (got < pad)
        return -EINVAL;
    out->len += got - pad;
    return (long)(got - pad);
}

/* ---- the items of an enqueue ---- */

struct items {
    struct buf data; /* the items' bytes, one after another */
    size_t *len;
    size_t n, cap;
    /* once stored: each one's id, and the ticket of its batch (NULL: written) */
    uint64_t *id;
    struct jnl_ticket **ticket;
};

static void items_free(struct items *it)
{
    buf_free(&it->data);
    free(it->len);
    for (size_t i = 0; it->ticket && i < it->n; i++)
        jnl_ticket_put(it->ticket[i]);
    free(it->ticket);
    free(it->id);
}

static int items_add(struct items *it, size_t len)
{
    if (it->n == it->cap) {
        size_t cap = it->cap ? it->cap * 2 : 16;
        size_t *p = realloc(it->len, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        it->len = p;
        it->cap = cap;
    }
    it->len[it->n++] = len;
    return 0;
}

/* One base64 item at p (n bytes), or a JSON string holding one when quoted. */
static int item_b64(struct call *c, struct items *it, const char *p, size_t n, size_t line)
{
    json_t *str = NULL;
    if (n && p[0] == '"') {
        json_error_t e;
        str = json_loadb(p, n, JSON_DECODE_ANY, &e);
        if (!json_is_string(str)) {
            json_decref(str);
            fail(c->r, 400, "bad_json", "line %zu: %s", line, json_is_string(str) ? "" : "not a JSON string");
            return -EINVAL;
        }
        p = json_string_value(str);
        n = json_string_length(str);
    }
    long len = b64_decode(p, n, &it->data);
    json_decref(str);
    if (len == -ENOMEM) {
        fail(c->r, 500, "internal", "out of memory");
        return -ENOMEM;
    }
    if (len < 0) {
        fail(c->r, 400, "bad_base64", "item %zu is not base64", line);
        return -EINVAL;
    }
    return items_add(it, (size_t)len);
}

static size_t skip_ws(const char *p, size_t n, size_t i)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n'))
        i++;
    return i;
}

/* The usual JSON batch, an array of base64 strings without escapes, read
 * without building a JSON value for each. Returns 1 when the body is that
 * (its items added), else 0 with nothing added: jansson reads it then, and
 * says what is wrong. */
static int plain_b64_array(const char *p, size_t n, struct items *it)
{
    size_t n0 = it->n, len0 = it->data.len, i = skip_ws(p, n, 0);
    if (i == n || p[i] != '[')
        return 0;
    i = skip_ws(p, n, i + 1);
    if (i < n && p[i] == ']')
        return skip_ws(p, n, i + 1) == n;
    for (;;) {
        if (i == n || p[i] != '"')
            break;
        size_t start = ++i;
        const char *end = memchr(p + i, '"', n - i); /* an escape in it fails the base64 below */
        if (!end)
            break;
        i = (size_t)(end - p);
        long len = b64_decode(p + start, i - start, &it->data);
        if (len < 0 || items_add(it, (size_t)len) < 0)
            break;
        i = skip_ws(p, n, i + 1);
        if (i < n && p[i] == ',') {
            i = skip_ws(p, n, i + 1);
            continue;
        }
        if (i < n && p[i] == ']' && skip_ws(p, n, i + 1) == n)
            return 1;
        break;
    }
    it->n = n0;
    it->data.len = len0;
    return 0;
}

/* The body's items by its type: a JSON array of base64 strings, NDJSON
 * (one base64 item a line, bare or as a JSON string), else the body
 * itself. Answers 400 when bad. Returns 0 or -errno. */
static int read_items(struct call *c, struct items *it)
{
    const char *body, *type = http_req_type(c->r);
    size_t n;
    int rc = 0;
    http_req_body(c->r, &body, &n);
    if (strcmp(type, "application/json") == 0 && plain_b64_array(body, n, it))
        return 0;
    if (strcmp(type, "application/json") == 0) {
        json_error_t e;
        json_t *a = json_loadb(body, n, 0, &e);
        if (!json_is_array(a)) {
            json_decref(a);
            if (a)
                fail(c->r, 400, "bad_json", "the body is not an array of base64 strings");
            else
                fail(c->r, 400, "bad_json", "line %d: %s", e.line, e.text);
            return -EINVAL;
        }
        for (size_t i = 0; i < json_array_size(a) && rc == 0; i++) {
            json_t *s = json_array_get(a, i);
            if (!json_is_string(s)) {
                fail(c->r, 400, "bad_json", "item %zu is not a string", i + 1);
                rc = -EINVAL;
            } else {
                long len = b64_decode(json_string_value(s), json_string_length(s), &it->data);
                if (len < 0)
                    fail(c->r, len == -ENOMEM ? 500 : 400, len == -ENOMEM ? "internal" : "bad_base64",
                         "item %zu is not base64", i + 1);
                rc = len < 0 ? (int)len : items_add(it, (size_t)len);
            }
        }
        json_decref(a);
        return rc;
    }
    if (strcmp(type, "application/x-ndjson") == 0) {
        size_t line = 0;
        for (size_t i = 0; i < n && rc == 0;) {
            const char *nl = memchr(body + i, '\n', n - i);
            size_t end = nl ? (size_t)(nl - body) : n, e = end;
            line++;
            while (e > i && (body[e - 1] == '\r' || body[e - 1] == ' ' || body[e - 1] == '\t'))
                e--;
            if (e > i)
                rc = item_b64(c, it, body + i, e - i, line);
            i = end + 1;
        }
        return rc;
    }
    if (buf_append(&it->data, body, n) < 0 || items_add(it, n) < 0) {
        fail(c->r, 500, "internal", "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/* ---- enqueue: POST /v1/queues/{q}/items ---- */

static void synced(struct sync_waiter *w, int status)
{
    struct call *c = (struct call *)((char *)w - offsetof(struct call, sw));
    if (status < 0)
        fail(c->r, 500, "sync_failed", "stored, but the fsync failed: %s", strerror(-status));
    else
        http_respond(c->r, 201, "application/json", &c->body);
    buf_free(&c->body);
    free(c);
}

static void sync_gone(void *arg)
{
    struct call *c = arg;
    syncer_cancel(&c->sw);
    buf_free(&c->body);
    free(c);
}

/* Appends v in decimal to out (room for 20 digits reserved before). */
static void put_u64(struct buf *out, uint64_t v)
{
    char d[20];
    size_t k = sizeof(d);
    do
        d[--k] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    buf_append(out, d + k, sizeof(d) - k);
}

/* {"ids":[...]} and a newline, into out (a batch's answer: written
 * directly, a number at a time). Returns 0 or -ENOMEM. */
static int ids_body(struct buf *out, const uint64_t *ids, size_t n)
{
    if (buf_reserve(out, 16 + n * 21) < 0)
        return -ENOMEM;
    buf_append(out, "{\"ids\":[", 8);
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_append(out, ",", 1);
        put_u64(out, ids[i]);
    }
    buf_append(out, "]}\n", 3);
    return 0;
}

/* The ids as a JSON array (for an error that lists them), or NULL. */
static json_t *ids_json(const uint64_t *ids, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_integer((json_int_t)ids[i])) < 0) {
            json_decref(a);
            a = NULL;
        }
    return a;
}

static void enqueue(struct call *c)
{
    static const char *const names[] = {"pri", "delay", "at", "ttl", "sync", "flags", NULL};
    struct server *s = c->s;
    const struct config *cfg = s->cfg;
    struct items it = {0};
    struct enq_targets t = {.q = NULL};
    uint64_t pri = 0, delay = 0, at = 0, ttl = 0, sync = 0, flags = 0, now = queue_now_ms(), expire = 0;
    int has_pri, has_delay, has_at, rc;
    const char *why;
    if (only_params(c, names) < 0 || param_u64(c, "pri", 0, 9, &pri, &has_pri) < 0 ||
        param_u64(c, "delay", 0, UINT64_C(1) << 46, &delay, &has_delay) < 0 ||
        param_u64(c, "at", 0, UINT64_C(1) << 46, &at, &has_at) < 0 ||
        param_u64(c, "ttl", 1, UINT64_C(1) << 46, &ttl, NULL) < 0 || param_u64(c, "sync", 0, 1, &sync, NULL) < 0 ||
        param_u64(c, "flags", 0, UINT32_MAX, &flags, NULL) < 0)
        goto out;
    if (has_delay && has_at) {
        fail(c->r, 400, "bad_parameter", "delay and at do not go together");
        goto out;
    }
    c->key.opts |= (has_pri ? PROTO_OPT_PRI : 0) | (has_delay ? PROTO_OPT_DELAY : 0) | (has_at ? PROTO_OPT_AT : 0);
    c->key.priority = (uint8_t)pri;
    c->key.delay_ms = delay;
    c->key.at_ms = at;
    expire = ttl ? now + ttl : 0;
    if (read_items(c, &it) < 0)
        goto out;
    if (it.n == 0 || it.n > cfg->http_max_items) {
        fail(c->r, it.n ? 413 : 400, it.n ? "too_many_items" : "no_items",
             "a request enqueues 1 to %" PRIu64 " items (http_max_items); this one has %zu", cfg->http_max_items, it.n);
        goto out;
    }
    it.id = calloc(it.n, sizeof(*it.id));
    it.ticket = calloc(it.n, sizeof(*it.ticket));
    if (!it.id || !it.ticket) {
        fail(c->r, 500, "internal", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < it.n; i++)
        if (it.len[i] > cfg->max_item_size) {
            fail(c->r, 413, "item_too_large", "item %zu is over max_item_size", i + 1);
            goto out;
        }
    if (s->status >= STATUS_READONLY) {
        fail(c->r, 503, "read_only", "the server is %s: it takes no items", status_name(s->status));
        goto out;
    }
    if ((why = enq_refusal(s->reg, &c->key, expire, now))) {
        fail(c->r, 400, "bad_option", "%s", why);
        goto out;
    }
    if ((rc = enq_targets(s->reg, &c->key, expire, now, &t)) < 0) {
        fail(c->r, 500, "internal", "cannot make the queue: %s", strerror(-rc));
        goto out;
    }
    struct jnl_attrs a = {.flags = (uint32_t)flags,
                          .add_ms = now, /* one time for the batch */
                          .expire_ms = expire,
                          .priority = has_pri ? (uint8_t)pri : JNL_PRIORITY_DEFAULT};
    const char *p = it.data.data;
    size_t stored = 0;
    rc = 0;
    /* one queue (the common case): the items go to its journal as one
     * batch, one write; several: each copy written now */
    for (size_t i = 0; i < it.n && rc == 0; p += it.len[i++]) {
        s->st.cmd_set++;
        if (t.n == 1) {
            a.visible_ms = t.q[0].due;
            if ((rc = queue_admit(t.q[0].q, it.len[i])) == 0)
                rc = queue_put_deferred(t.q[0].q, &a, p, it.len[i], &it.ticket[i], &it.id[i]);
        } else if (t.n > 1) {
            rc = enq_store_copies(&t, &a, p, it.len[i], &it.id[i]);
        }
        stored += rc == 0 && t.n;
    }
    registry_flush(s->reg); /* the batch written before it is answered */
    size_t nid = 0;         /* the items stored, in order: those whose batch was written */
    while (nid < stored && !(it.ticket[nid] && it.ticket[nid]->state < 0))
        nid++;
    if (nid < stored)
        rc = it.ticket[nid]->state; /* its batch was not written: gone, as never set */
    struct buf body = {0};
    if (rc == QADMIT_FULL || rc == QADMIT_TOO_LARGE) {
        answer_json(c->r, rc == QADMIT_FULL ? 507 : 413,
                    json_pack("{s:{s:s,s:s},s:o}", "error", "code", rc == QADMIT_FULL ? "queue_full" : "item_too_large",
                              "message",
                              rc == QADMIT_FULL ? "the queue is at its max_items or max_size: the items listed in ids "
                                                  "were stored, the rest not"
                                                : "an item is over the queue's max_item_size: the items listed in ids "
                                                  "were stored, the rest not",
                              "ids", ids_json(it.id, nid)));
    } else if (rc < 0) {
        answer_json(c->r, 500,
                    json_pack("{s:{s:s,s:s},s:o}", "error", "code", "internal", "message", strerror(-rc), "ids",
                              ids_json(it.id, nid)));
    } else if (ids_body(&body, it.id, nid) < 0) {
        fail(c->r, 500, "internal", "out of memory");
    } else if (enq_wants_sync(s->reg, &t, (int)sync)) {
        struct call *w = malloc(sizeof(*w));
        if (!w) {
            fail(c->r, 500, "internal", "out of memory");
        } else {
            *w = *c;
            w->body = body;
            body = (struct buf){0};
            w->sw.done = synced;
            http_req_hold(c->r, sync_gone, w);
            syncer_request(&s->sync, &w->sw);
        }
    } else {
        http_respond(c->r, 201, "application/json", &body);
    }
    buf_free(&body);
out:
    enq_targets_free(&t);
    items_free(&it);
}

/* ---- take: GET /v1/queues/{q}/items ---- */

/* Appends the payload of a taken item, base64, to out. Returns 0 or
 * -errno. */
static int put_b64(struct buf *out, const struct qitem *it)
{
    char *raw = it->data, *owned = NULL;
    if (!raw && it->len) {
        if (!(owned = malloc(it->len)) || jio_pread_all(it->io, it->fd, owned, it->len, (off_t)it->off) < 0) {
            free(owned);
            return -EIO;
        }
        raw = owned;
    }
    int rc = buf_reserve(out, (it->len + 2) / 3 * 4 + 1);
    /* in pieces of a multiple of 3 bytes: EVP_EncodeBlock takes an int,
     * and an item may be over 2 GiB */
    for (size_t done = 0; rc == 0 && done < it->len;) {
        size_t n = it->len - done < B64_PIECE ? it->len - done : B64_PIECE;
        out->len += (size_t)EVP_EncodeBlock((unsigned char *)out->data + out->len, (const unsigned char *)raw + done,
                                            (int)n);
        done += n;
    }
    free(owned);
    return rc;
}

/* An item taken, until its record is written. */
struct taken {
    struct qitem it;
    struct qopen *no; /* held open (c->mode QGET_OPEN) */
    struct jnl_ticket *ticket;
    int undone; /* its record was not written: put back */
};

/* Puts an item taken back: its removal (or hold) was never answered. */
static void untake(struct taken *t)
{
    if (t->no)
        queue_release(t->no);
    else
        queue_restore(t->it.from, &t->it.where);
}

/* Appends x's JSON object to out: {"id", "flags", "data"}, and for an item
 * held open a new lease handle (for c->ttr) and its delivery count. The
 * shape is fixed and holds only numbers, base64 and hex, so it is written
 * directly. Returns 0, or -errno with an open item given back (its answer
 * never went out). */
static int put_item(struct call *c, struct taken *x, struct buf *out)
{
    struct server *s = c->s;
    char handle[LEASE_HANDLE_MAX];
    size_t mark = out->len;
    int rc = x->no ? api_lease_add(&s->api.leases, x->no, s->cfg->http_max_leases, handle) : 0;
    if (rc == 0 && x->no && lease_set(&s->reg->leases, x->no, uv_now(s->loop) + c->ttr) < 0)
        rc = -ENOMEM;
    if (rc == 0 && (rc = buf_reserve(out, 64)) == 0) {
        buf_append(out, mark ? ",{\"id\":" : "{\"id\":", mark ? 7 : 6);
        put_u64(out, x->it.where.id);
        buf_append(out, ",\"flags\":", 9);
        put_u64(out, x->it.flags);
        buf_append(out, ",\"data\":\"", 9);
        rc = put_b64(out, &x->it);
    }
    if (rc == 0 && x->no)
        rc = buf_printf(out, "\",\"handle\":\"%s\",\"deliveries\":%" PRIu64 "}", handle,
                        (uint64_t)x->it.where.deliveries + 1);
    else if (rc == 0)
        rc = buf_append(out, "\"}", 2);
    if (rc == 0)
        return 0;
    out->len = mark;
    if (x->no) {
        struct api_lease *l = api_lease_find(&s->api.leases, handle, strnlen(handle, sizeof(handle)));
        if (l)
            api_lease_drop(&s->api.leases, l);
        queue_release(x->no); /* a removed item whose answer cannot be made is lost, as a get's */
    }
    return rc;
}

/* Takes up to c->max items of q (c->mode: removed, or open under a lease),
 * their objects appended to out. Returns how many, or -errno having
 * answered. The removals (or holds) are written, one write per journal,
 * before the answer: an item whose record could not be written goes back. */
static int take_some(struct call *c, struct queue *q, struct buf *out)
{
    struct server *s = c->s;
    size_t room = s->cfg->http_max_body, n = 0, got = 0;
    int rc = 0;
    struct taken *t = calloc(c->max, sizeof(*t));
    if (!t) {
        fail(c->r, 500, "internal", "out of memory");
        return -ENOMEM;
    }
    while (n < c->max) {
        struct taken *x = &t[n];
        if ((rc = queue_get(q, c->mode, &x->no, &x->it)) < 0)
            break;
        uint64_t need = (x->it.len + 2) / 3 * 4 + 128; /* its base64 and the rest of its object */
        if (need > room) {
            untake(x);
            qitem_release(&x->it);
            rc = n ? 0 : -EFBIG;
            break;
        }
        room -= need;
        x->ticket = queue_ack_ticket(x->it.from);
        n++;
    }
    registry_flush(s->reg);      /* the removals (or holds) on disk before they are answered */
    for (size_t i = n; i-- > 0;) /* back in their order, at the head */
        if (t[i].ticket && t[i].ticket->state < 0) {
            untake(&t[i]);
            t[i].undone = 1;
            rc = -EIO;
        }
    for (size_t i = 0; i < n; i++) {
        int e = t[i].undone ? 0 : put_item(c, &t[i], out);
        got += !t[i].undone && e == 0;
        rc = e < 0 ? e : rc;
        jnl_ticket_put(t[i].ticket);
        qitem_release(&t[i].it);
    }
    free(t);
    s->st.cmd_get++;
    if (got) {
        s->st.get_hits++;
        return (int)got;
    }
    if (rc == -ENOENT || rc == 0)
        return 0;
    if (rc == -EFBIG)
        fail(c->r, 413, "item_too_large",
             "the next item is too large for an answer of http_max_body: take it on the memcache port");
    else if (rc == -ENOSPC)
        fail(c->r, 503, "too_many_leases", "http_max_leases items are held by leases already");
    else
        fail(c->r, 500, "internal", "cannot take an item: %s", strerror(-rc));
    return rc;
}

/* Answers {"items": [...]} with the objects in items (taken). */
static void answer_items(struct call *c, struct buf *items)
{
    struct buf b = {0};
    if (!items->len)
        c->s->st.get_misses++;
    if (buf_reserve(&b, items->len + 16) < 0) {
        buf_free(items);
        fail(c->r, 500, "internal", "out of memory");
        return;
    }
    buf_append(&b, "{\"items\":[", 10);
    buf_append(&b, items->data, items->len);
    buf_append(&b, "]}\n", 3);
    buf_free(items);
    http_respond(c->r, 200, "application/json", &b);
}

static void wait_closed(uv_handle_t *h) { free(h->data); }

/* Ends a take's wait: its waiter and timer go, c is freed. */
static void wait_end(struct call *c)
{
    if (c->waiting)
        queue_unwait(&c->waiter);
    c->waiting = 0;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, wait_closed);
}

static int waiter_cb(struct qwaiter *w, enum qwait_event ev)
{
    struct call *c = (struct call *)((char *)w - offsetof(struct call, waiter));
    struct buf items = {0};
    c->waiting = 0;
    struct queue *q = registry_find(c->s->reg, c->name, c->name_len);
    if (ev == QWAIT_READY && q && c->s->status < STATUS_QUIESCENT) {
        int n = take_some(c, q, &items);
        if (n == 0) {
            buf_free(&items);
            queue_wait_front(q, w);
            c->waiting = 1;
            return 0;
        }
        if (n < 0) { /* answered */
            buf_free(&items);
            wait_end(c);
            return 1;
        }
    }
    answer_items(c, &items);
    wait_end(c);
    return 1;
}

static void wait_timeout(uv_timer_t *t)
{
    struct call *c = t->data;
    struct buf none = {0};
    answer_items(c, &none);
    wait_end(c);
}

static void wait_gone(void *arg) { wait_end(arg); }

/* Takes (c->mode) up to c->max items, waiting up to wait ms for the first. */
static void take_or_wait(struct call *c, uint64_t wait)
{
    struct server *s = c->s;
    struct buf items = {0};
    if (s->status >= STATUS_QUIESCENT) {
        fail(c->r, 503, "quiescent", "the server is %s: it hands out no items", status_name(s->status));
        return;
    }
    struct queue *q = registry_find(s->reg, c->name, c->name_len);
    int n = q ? take_some(c, q, &items) : 0;
    if (n < 0) {
        buf_free(&items);
        return; /* answered */
    }
    if (n > 0 || wait == 0) {
        answer_items(c, &items);
        return;
    }
    buf_free(&items);
    struct call *w = malloc(sizeof(*w)); /* waits: outlives this call */
    if (!w) {
        fail(c->r, 500, "internal", "out of memory");
        return;
    }
    *w = *c;
    w->waiter.cb = waiter_cb;
    w->waiter.name = w->name;
    w->waiter.name_len = w->name_len;
    if (q)
        queue_wait(q, &w->waiter);
    else
        registry_wait_absent(s->reg, &w->waiter);
    w->waiting = 1;
    uv_timer_init(s->loop, &w->timer);
    w->timer.data = w;
    uv_timer_start(&w->timer, wait_timeout, wait, 0);
    http_req_hold(c->r, wait_gone, w);
}

/* GET /v1/queues/{q}/items?max=&wait=: plain takes, at most once. */
static void take(struct call *c)
{
    static const char *const names[] = {"max", "wait", NULL};
    uint64_t max = 1, wait = 0;
    if (only_params(c, names) < 0 || param_u64(c, "max", 1, c->s->cfg->http_max_items, &max, NULL) < 0 ||
        param_u64(c, "wait", 0, c->s->cfg->http_max_wait_ms, &wait, NULL) < 0)
        return;
    c->max = max;
    c->mode = QGET_REMOVE;
    take_or_wait(c, wait);
}

/* POST /v1/queues/{q}/leases?max=&ttr=&wait=: items held open by lease
 * handles for ttr ms (default 30 s). */
static void lease(struct call *c)
{
    static const char *const names[] = {"max", "ttr", "wait", NULL};
    uint64_t max = 1, wait = 0, ttr = 30000;
    if (only_params(c, names) < 0 || param_u64(c, "max", 1, c->s->cfg->http_max_items, &max, NULL) < 0 ||
        param_u64(c, "ttr", 1, UINT32_MAX, &ttr, NULL) < 0 ||
        param_u64(c, "wait", 0, c->s->cfg->http_max_wait_ms, &wait, NULL) < 0)
        return;
    c->max = max;
    c->mode = QGET_OPEN;
    c->ttr = ttr;
    take_or_wait(c, wait);
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
    if (only_params(c, names) < 0)
        return;
    struct queue *q = registry_find(c->s->reg, c->name, c->name_len);
    if (!q || !metrics_visible(q)) {
        fail(c->r, 404, "not_found", "no queue '%s'", c->name);
        return;
    }
    json_t *o = queue_json(c->s, q, queue_now_ms());
    if (!o)
        fail(c->r, 500, "internal", "out of memory");
    else
        answer_json(c->r, 200, o);
}

static void drop(struct call *c)
{
    static const char *const names[] = {NULL};
    if (only_params(c, names) < 0)
        return;
    struct queue *q = registry_find(c->s->reg, c->name, c->name_len);
    if (c->s->status >= STATUS_READONLY) {
        fail(c->r, 503, "read_only", "the server is %s", status_name(c->s->status));
    } else if (!q || !metrics_visible(q)) {
        fail(c->r, 404, "not_found", "no queue '%s'", c->name);
    } else {
        int rc = registry_delete(c->s->reg, q);
        registry_flush(c->s->reg);
        if (rc < 0)
            fail(c->r, 500, "internal", "cannot delete the queue: %s", strerror(-rc));
        else
            answer_json(c->r, 200, json_pack("{s:b}", "deleted", 1));
    }
}

static void flush(struct call *c)
{
    static const char *const names[] = {NULL};
    if (only_params(c, names) < 0)
        return;
    struct queue *q = registry_find(c->s->reg, c->name, c->name_len);
    if (c->s->status >= STATUS_READONLY) {
        fail(c->r, 503, "read_only", "the server is %s", status_name(c->s->status));
    } else if (!q || !metrics_visible(q)) {
        fail(c->r, 404, "not_found", "no queue '%s'", c->name);
    } else {
        int rc = queue_flush(q);
        registry_flush(c->s->reg);
        if (rc < 0)
            fail(c->r, 500, "internal", "cannot flush the queue: %s", strerror(-rc));
        else
            answer_json(c->r, 200, json_pack("{s:b}", "flushed", 1));
    }
}

/* GET /v1/queues: every queue the user may read. */
static void list(struct http_req *r, struct server *s)
{
    static const char *const names[] = {NULL};
    struct call c = {.r = r, .s = s};
    if (only_params(&c, names) < 0)
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
        fail(r, 500, "internal", "out of memory");
    else
        answer_json(r, 200, json_pack("{s:o}", "queues", a));
}

/* ---- lease handles: /v1/leases/{handle}[/abort|/touch] ---- */

enum lease_op { L_CONFIRM, L_ABORT, L_TOUCH };

static const struct lease_route {
    int method;
    const char *rest;
    enum lease_op op;
    const char *const *params;
} LEASE_ROUTES[] = {
    {HTTP_DELETE, "", L_CONFIRM, (const char *const[]){NULL}},
    {HTTP_POST, "/abort", L_ABORT, (const char *const[]){"delay", NULL}},
    {HTTP_POST, "/touch", L_TOUCH, (const char *const[]){"ttr", NULL}},
};

/* Confirms, gives back or extends the item held by handle h[0..hn). */
static void lease_call(struct http_req *r, struct server *s, const char *h, size_t hn, const char *rest, size_t rn)
{
    const struct lease_route *lr = NULL;
    int known = 0;
    for (size_t i = 0; i < sizeof(LEASE_ROUTES) / sizeof(LEASE_ROUTES[0]); i++)
        if (strlen(LEASE_ROUTES[i].rest) == rn && memcmp(LEASE_ROUTES[i].rest, rest, rn) == 0) {
            known = 1;
            lr = LEASE_ROUTES[i].method == http_req_method(r) ? &LEASE_ROUTES[i] : NULL;
        }
    if (!known || hn == 0) {
        fail(r, 404, "not_found", "no such path (docs/api.md)");
        return;
    }
    if (!lr) {
        http_req_header(r, rn ? "Allow: POST\r\n" : "Allow: DELETE\r\n");
        fail(r, 405, "method_not_allowed", "not a method of this path");
        return;
    }
    struct call c = {.r = r, .s = s};
    uint64_t delay = 0, ttr = 30000;
    if (only_params(&c, lr->params) < 0 || param_u64(&c, "delay", 0, UINT64_C(1) << 46, &delay, NULL) < 0 ||
        param_u64(&c, "ttr", 1, UINT32_MAX, &ttr, NULL) < 0)
        return;
    struct api_lease *l = api_lease_find(&s->api.leases, h, hn);
    if (!l) {
        fail(r, 404, "lease_not_found",
             "no such lease: an unknown handle, or its lease ran out (or was ended) and its item is back in its "
             "queue");
        return;
    }
    struct qopen *o = l->o;
    struct queue *top = queue_top(o->q), *jq = o->q;
    const struct auth_user *u = http_req_user(r);
    if (u && !auth_may(u, top->name, top->name_len, AUTH_READ)) {
        fail(r, 403, "forbidden", "permission denied: no read access to queue '%.*s'", (int)top->name_len, top->name);
        return;
    }
    int rc = 0;
    if (lr->op == L_TOUCH) {
        if (lease_set(&s->reg->leases, o, uv_now(s->loop) + ttr) < 0)
            fail(r, 500, "internal", "out of memory");
        else
            answer_json(r, 200, json_pack("{s:I}", "ttr", (json_int_t)ttr));
        return;
    }
    api_lease_drop(&s->api.leases, l);
    if (lr->op == L_CONFIRM)
        rc = queue_confirm(o);
    else if (delay)
        queue_abort_delay(o, delay);
    else
        queue_abort(o);
    struct jnl_ticket *ticket = rc == 0 ? queue_ack_ticket(jq) : NULL;
    registry_flush(s->reg); /* written before it is answered */
    if (rc == 0 && ticket && ticket->state < 0)
        rc = ticket->state;
    jnl_ticket_put(ticket);
    if (rc < 0)
        fail(r, 500, "internal", "%s: %s", lr->op == L_CONFIRM ? "cannot confirm" : "cannot give back", strerror(-rc));
    else
        answer_json(r, 200, json_pack("{s:b}", lr->op == L_CONFIRM ? "confirmed" : "aborted", 1));
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
    {HTTP_POST, "/items", enqueue, AUTH_WRITE},
    {HTTP_GET, "/items", take, AUTH_READ},
    {HTTP_POST, "/flush", flush, AUTH_WRITE},
    {HTTP_POST, "/leases", lease, AUTH_READ},
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
        fail(c->r, 400, "bad_queue_name", "bad queue name: %s", err);
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
            fail(r, 405, "method_not_allowed", "GET lists the queues");
        }
        return;
    }
    if (n > strlen(LEASES) && memcmp(path, LEASES, strlen(LEASES)) == 0) {
        const char *h = path + strlen(LEASES), *slash = memchr(h, '/', n - strlen(LEASES));
        size_t hn = slash ? (size_t)(slash - h) : n - strlen(LEASES);
        lease_call(r, s, h, hn, h + hn, n - strlen(LEASES) - hn);
        return;
    }
    if (n <= pre + 1 || memcmp(path, PREFIX "/", pre + 1) != 0) {
        fail(r, 404, "not_found", "no such path: the API is under " PREFIX " (docs/api.md)");
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
            (ROUTES[i].method == HTTP_GET && http_req_method(r) == HTTP_HEAD && ROUTES[i].fn != take))
            match = &ROUTES[i];
    }
    if (!path_known || seglen == 0) {
        fail(r, 404, "not_found", "no such path (docs/api.md)");
        return;
    }
    if (!match) {
        int items = restlen == 6 && memcmp(seg + seglen, "/items", 6) == 0; /* (/flush is 6 bytes too) */
        http_req_header(r, restlen == 0 ? "Allow: GET, DELETE\r\n"
                           : items      ? "Allow: GET, POST\r\n"
                                        : "Allow: POST\r\n");
        fail(r, 405, "method_not_allowed", "not a method of this path");
        return;
    }
    struct call c = {.r = r, .s = s};
    if (name_of(&c, seg, seglen) < 0)
        return;
    const struct auth_user *u = http_req_user(r);
    if (u && !auth_may(u, c.name, c.name_len, match->perm)) {
        fail(r, 403, "forbidden", "permission denied: no %s access to queue '%s'",
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
