/* http_take.c: the HTTP API's takes: GET /v1/queues/{q}/items (plain
 * takes, at most once), POST /v1/queues/{q}/leases (items held open by
 * lease handles, http_lease.c) and the handles' confirm, abort and touch,
 * each waiting up to wait= for the first item. A take's removals (or holds)
 * are written before its answer, which is written directly (numbers,
 * base64 and hex only). */
#include "http_api.h"
#include "http_api_int.h"

#include "auth.h"
#include "queue/lease.h"
#include "queue/registry.h"
#include "server.h"
#include "status.h"

#include <errno.h>
#include <http_parser.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define B64_PIECE (3u << 20) /* bytes base64-encoded at once: a multiple of 3 */

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
    char handle[LEASE_HANDLE_MAX] = "";
    size_t mark = out->len;
    int rc = x->no ? api_lease_add(&s->api.leases, x->no, s->cfg->http_max_leases, handle) : 0;
    if (rc == 0 && x->no && lease_set(&s->reg->leases, x->no, uv_now(s->loop) + c->ttr) < 0)
        rc = -ENOMEM;
    if (rc == 0 && (rc = buf_reserve(out, 64)) == 0) {
        buf_append(out, mark ? ",{\"id\":" : "{\"id\":", mark ? 7 : 6);
        api_put_u64(out, x->it.where.id);
        buf_append(out, ",\"flags\":", 9);
        api_put_u64(out, x->it.flags);
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
        api_fail(c->r, 500, "internal", "out of memory");
        return -ENOMEM;
    }
    while (n < c->max) {
        struct taken *x = &t[n];
        if ((rc = queue_get(q, c->mode, &x->no, &x->it)) < 0)
            break;
        uint64_t need = (x->it.len + 2) / 3 * 4 + ITEM_JSON_MAX; /* its base64 and the rest of its object */
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
        api_fail(c->r, 413, "item_too_large",
                 "the next item is too large for an answer of http_max_body: take it on the memcache port");
    else if (rc == -ENOSPC)
        api_fail(c->r, 503, "too_many_leases", "http_max_leases items are held by leases already");
    else
        api_fail(c->r, 500, "internal", "cannot take an item: %s", strerror(-rc));
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
        api_fail(c->r, 500, "internal", "out of memory");
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
    if (c->s->status >= STATUS_QUIESCENT) { /* it became so while this waited */
        api_fail(c->r, 503, "quiescent", "the server is %s: it hands out no items", status_name(c->s->status));
        wait_end(c);
        return 1;
    }
    if (ev == QWAIT_READY && q) {
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
        api_fail(c->r, 503, "quiescent", "the server is %s: it hands out no items", status_name(s->status));
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
        api_fail(c->r, 500, "internal", "out of memory");
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
void api_take(struct call *c)
{
    static const char *const names[] = {"max", "wait", NULL};
    uint64_t max = 1, wait = 0;
    if (api_only_params(c, names) < 0 || api_param_u64(c, "max", 1, c->s->cfg->http_max_items, &max, NULL) < 0 ||
        api_param_u64(c, "wait", 0, c->s->cfg->http_max_wait_ms, &wait, NULL) < 0)
        return;
    c->max = max;
    c->mode = QGET_REMOVE;
    take_or_wait(c, wait);
}

/* POST /v1/queues/{q}/leases?max=&ttr=&wait=: items held open by lease
 * handles for ttr ms (default 30 s). */
void api_lease(struct call *c)
{
    static const char *const names[] = {"max", "ttr", "wait", NULL};
    uint64_t max = 1, wait = 0, ttr = 30000;
    if (api_only_params(c, names) < 0 || api_param_u64(c, "max", 1, c->s->cfg->http_max_items, &max, NULL) < 0 ||
        api_param_u64(c, "ttr", 1, UINT32_MAX, &ttr, NULL) < 0 ||
        api_param_u64(c, "wait", 0, c->s->cfg->http_max_wait_ms, &wait, NULL) < 0)
        return;
    c->max = max;
    c->mode = QGET_OPEN;
    c->ttr = ttr;
    take_or_wait(c, wait);
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
void api_lease_call(struct http_req *r, struct server *s, const char *h, size_t hn, const char *rest, size_t rn)
{
    const struct lease_route *lr = NULL;
    int known = 0;
    for (size_t i = 0; i < sizeof(LEASE_ROUTES) / sizeof(LEASE_ROUTES[0]); i++)
        if (strlen(LEASE_ROUTES[i].rest) == rn && memcmp(LEASE_ROUTES[i].rest, rest, rn) == 0) {
            known = 1;
            lr = LEASE_ROUTES[i].method == http_req_method(r) ? &LEASE_ROUTES[i] : NULL;
        }
    if (!known || hn == 0) {
        api_fail(r, 404, "not_found", "no such path (docs/api.md)");
        return;
    }
    if (!lr) {
        http_req_header(r, rn ? "Allow: POST\r\n" : "Allow: DELETE\r\n");
        api_fail(r, 405, "method_not_allowed", "not a method of this path");
        return;
    }
    struct call c = {.r = r, .s = s};
    uint64_t delay = 0, ttr = 30000;
    if (api_only_params(&c, lr->params) < 0 || api_param_u64(&c, "delay", 0, UINT64_C(1) << 46, &delay, NULL) < 0 ||
        api_param_u64(&c, "ttr", 1, UINT32_MAX, &ttr, NULL) < 0)
        return;
    struct api_lease *l = api_lease_find(&s->api.leases, h, hn);
    if (!l) {
        api_fail(r, 404, "lease_not_found",
                 "no such lease: an unknown handle, or its lease ran out (or was ended) and its item is back in its "
                 "queue");
        return;
    }
    struct qopen *o = l->o;
    struct queue *top = queue_top(o->q), *jq = o->q;
    const struct auth_user *u = http_req_user(r);
    if (u && !auth_may(u, top->name, top->name_len, AUTH_READ)) {
        api_fail(r, 403, "forbidden", "permission denied: no read access to queue '%.*s'", (int)top->name_len,
                 top->name);
        return;
    }
    int rc = 0;
    if (lr->op == L_TOUCH) {
        if (lease_set(&s->reg->leases, o, uv_now(s->loop) + ttr) < 0)
            api_fail(r, 500, "internal", "out of memory");
        else
            api_answer_json(r, 200, json_pack("{s:I}", "ttr", (json_int_t)ttr));
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
        api_fail(r, 500, "internal", "%s: %s", lr->op == L_CONFIRM ? "cannot confirm" : "cannot give back",
                 strerror(-rc));
    else
        api_answer_json(r, 200, json_pack("{s:b}", lr->op == L_CONFIRM ? "confirmed" : "aborted", 1));
}
