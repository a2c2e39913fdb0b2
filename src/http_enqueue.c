/* http_enqueue.c: POST /v1/queues/{q}/items, the HTTP API's enqueue: one
 * item (the body), a JSON array of base64 strings or NDJSON, with the
 * set's options as query parameters, stored through enqueue.c and answered
 * once written (with sync=1, once an fsync covers them). */
#include "http_api_int.h"

#include "conffile.h"
#include "enqueue.h"
#include "queue/registry.h"
#include "server.h"
#include "status.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define B64_TEXT_PIECE (4u << 20) /* base64 characters decoded at once: a multiple of 4 */

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

/* Decodes n bytes of base64 at p, appended to out; *decoded gets their
 * length. Returns 0, -EINVAL (not base64) or -ENOMEM. */
static int b64_decode(const char *p, size_t n, struct buf *out, size_t *decoded)
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
    *decoded = got - pad;
    return 0;
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
            api_fail(c->r, 400, "bad_json", "line %zu: not a JSON string", line);
            return -EINVAL;
        }
        p = json_string_value(str);
        n = json_string_length(str);
    }
    size_t len;
    int rc = b64_decode(p, n, &it->data, &len);
    json_decref(str);
    if (rc == -ENOMEM) {
        api_fail(c->r, 500, "internal", "out of memory");
        return -ENOMEM;
    }
    if (rc < 0) {
        api_fail(c->r, 400, "bad_base64", "item %zu is not base64", line);
        return -EINVAL;
    }
    return items_add(it, len);
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
        size_t len;
        if (b64_decode(p + start, i - start, &it->data, &len) < 0 || items_add(it, len) < 0)
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
                api_fail(c->r, 400, "bad_json", "the body is not an array of base64 strings");
            else
                api_fail(c->r, 400, "bad_json", "line %d: %s", e.line, e.text);
            return -EINVAL;
        }
        for (size_t i = 0; i < json_array_size(a) && rc == 0; i++) {
            json_t *s = json_array_get(a, i);
            if (!json_is_string(s)) {
                api_fail(c->r, 400, "bad_json", "item %zu is not a string", i + 1);
                rc = -EINVAL;
            } else {
                size_t len;
                rc = b64_decode(json_string_value(s), json_string_length(s), &it->data, &len);
                if (rc < 0)
                    api_fail(c->r, rc == -ENOMEM ? 500 : 400, rc == -ENOMEM ? "internal" : "bad_base64",
                             "item %zu is not base64", i + 1);
                else
                    rc = items_add(it, len);
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
        api_fail(c->r, 500, "internal", "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/* ---- enqueue: POST /v1/queues/{q}/items ---- */

static void synced(struct sync_waiter *w, int status)
{
    struct call *c = (struct call *)((char *)w - offsetof(struct call, sw));
    if (status < 0)
        api_fail(c->r, 500, "sync_failed", "stored, but the fsync failed: %s", strerror(-status));
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
        api_put_u64(out, ids[i]);
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

void api_enqueue(struct call *c)
{
    static const char *const names[] = {"pri", "delay", "at", "ttl", "sync", "flags", NULL};
    struct server *s = c->s;
    const struct config *cfg = s->cfg;
    struct items it = {0};
    struct enq_targets t = {.q = NULL};
    uint64_t pri = 0, delay = 0, at = 0, ttl = 0, sync = 0, flags = 0, now = queue_now_ms(), expire = 0;
    int has_pri, has_delay, has_at, rc;
    const char *why;
    if (api_only_params(c, names) < 0 || api_param_u64(c, "pri", 0, 9, &pri, &has_pri) < 0 ||
        api_param_u64(c, "delay", 0, UINT64_C(1) << 46, &delay, &has_delay) < 0 ||
        api_param_u64(c, "at", 0, UINT64_C(1) << 46, &at, &has_at) < 0 ||
        api_param_u64(c, "ttl", 1, UINT64_C(1) << 46, &ttl, NULL) < 0 ||
        api_param_u64(c, "sync", 0, 1, &sync, NULL) < 0 || api_param_u64(c, "flags", 0, UINT32_MAX, &flags, NULL) < 0)
        goto out;
    if (has_delay && has_at) {
        api_fail(c->r, 400, "bad_parameter", "delay and at do not go together");
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
        api_fail(c->r, it.n ? 413 : 400, it.n ? "too_many_items" : "no_items",
                 "a request enqueues 1 to %" PRIu64 " items (http_max_items); this one has %zu", cfg->http_max_items,
                 it.n);
        goto out;
    }
    it.id = calloc(it.n, sizeof(*it.id));
    it.ticket = calloc(it.n, sizeof(*it.ticket));
    if (!it.id || !it.ticket) {
        api_fail(c->r, 500, "internal", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < it.n; i++)
        if (it.len[i] > cfg->max_item_size) {
            api_fail(c->r, 413, "item_too_large", "item %zu is over max_item_size", i + 1);
            goto out;
        }
    if (s->status >= STATUS_READONLY) {
        api_fail(c->r, 503, "read_only", "the server is %s: it takes no items", status_name(s->status));
        goto out;
    }
    if ((rc = enq_targets(s->reg, &c->key, expire, now, &t, &why)) < 0) {
        api_fail(c->r, 500, "internal", "cannot make the queue: %s", strerror(-rc));
        goto out;
    }
    if (why) { /* nothing stored, no queue made */
        api_fail(c->r, 400, "bad_option", "%s", why);
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
        api_answer_json(c->r, rc == QADMIT_FULL ? 507 : 413,
                        json_pack("{s:{s:s,s:s},s:o}", "error", "code",
                                  rc == QADMIT_FULL ? "queue_full" : "item_too_large", "message",
                                  rc == QADMIT_FULL
                                      ? "the queue is at its max_items or max_size: the items listed in ids "
                                        "were stored, the rest not"
                                      : "an item is over the queue's max_item_size: the items listed in ids "
                                        "were stored, the rest not",
                                  "ids", ids_json(it.id, nid)));
    } else if (rc < 0) {
        api_answer_json(c->r, 500,
                        json_pack("{s:{s:s,s:s},s:o}", "error", "code", "internal", "message", strerror(-rc), "ids",
                                  ids_json(it.id, nid)));
    } else if (ids_body(&body, it.id, nid) < 0) {
        api_fail(c->r, 500, "internal", "out of memory");
    } else if (enq_wants_sync(s->reg, &t, (int)sync)) {
        struct call *w = malloc(sizeof(*w));
        if (!w) {
            api_fail(c->r, 500, "internal", "out of memory");
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
