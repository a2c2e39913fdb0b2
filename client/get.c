/* get.c: dequeue, peek and reliable read. Servers are asked in rotation,
 * each at most once without waiting; only when all are empty does the get
 * wait (/t=), on one server at a time, so an item is never taken from two
 * servers for one call. */
#include "client_int.h"

#include "item.h"
#include "request.h"

#include <errno.h>
#include <stdlib.h>

/* Forwards data chunks to the caller's sink, noting whether it stopped the
 * transfer (as opposed to the network). */
struct forward {
    const darner_sink *sink;
    int stopped;
};

static int to_sink(void *arg, const void *p, size_t n)
{
    struct forward *f = arg;
    int rc = f->sink->data ? f->sink->data(f->sink->arg, p, n) : 0;
    f->stopped = rc < 0;
    return rc;
}

/* One get on server i (connected). *sent: the request went out in full, so
 * the server may have handed out an item. Borrows everything. */
static int get_on(darner_client *c, size_t i, const char *req, size_t reqlen, uint32_t wait_ms,
                  const darner_sink *sink, int *found, int *sent)
{
    dn_iov iov = {(void *)req, reqlen};
    int rc = dn_server_send(c, i, &iov, 1);
    if (rc < 0)
        return rc;
    *sent = 1;
    struct dn_reply r;
    rc = dn_server_reply(c, i, &r, (int)(wait_ms > INT32_MAX / 2 ? INT32_MAX / 2 : wait_ms));
    if (rc < 0)
        return rc;
    if (r.kind == DN_R_END)
        return 0;
    if (r.kind != DN_R_VALUE)
        return dn_reply_failure(c, i, &r);

    struct dn_conn *conn = &c->fleet.servers[i].conn;
    if (sink->begin && (rc = sink->begin(sink->arg, r.bytes, r.flags, i)) < 0)
        goto stopped;
    struct forward fw = {sink, 0};
    rc = dn_conn_read_n(conn, r.bytes, to_sink, &fw, c->timeout_ms);
    if (rc < 0) {
        if (fw.stopped)
            goto stopped;
        dn_server_drop(c, i, rc, 1);
        return rc;
    }
    const char *line;
    size_t len;
    rc = dn_conn_readline(conn, &line, &len, c->timeout_ms);
    if (rc == 0 && len != 0)
        rc = -EPROTO; /* the payload must be followed by CRLF */
    if (rc == 0)
        rc = dn_server_reply(c, i, &r, 0);
    else
        dn_server_drop(c, i, rc, rc != -EPROTO);
    if (rc < 0)
        return rc;
    if (r.kind != DN_R_END)
        return dn_reply_failure(c, i, &r);
    *found = 1;
    return 0;
stopped:
    /* The rest of the payload is unread; only a new connection is in step.
     * An open item goes back to its queue when this one closes. */
    dn_server_drop(c, i, 0, 0);
    return rc;
}

/* Asks every healthy server once, without waiting, starting at the next in
 * rotation. *answered: some server said END or delivered. Returns 0 or an
 * error that ends the call. */
static int sweep(darner_client *c, const char *req, size_t reqlen, const darner_sink *sink,
                 int *found, int *answered, int *attempted, int *last_err)
{
    size_t start = dn_fleet_rotate(&c->fleet);
    for (size_t k = 0; k < c->fleet.n && !*found; k++) {
        size_t i = (start + k) % c->fleet.n;
        if (!dn_fleet_healthy(&c->fleet, i, dn_now_ms()))
            continue;
        *attempted = 1;
        int rc = dn_server_connect(c, i);
        if (rc < 0) {
            *last_err = rc;
            continue;
        }
        int sent = 0;
        rc = get_on(c, i, req, reqlen, 0, sink, found, &sent);
        if (rc < 0 && c->noquorum) {
            c->noquorum = 0; /* a cell with no leader handed nothing out */
            *last_err = rc;
            continue;
        }
        if (rc < 0 && !sent) {
            *last_err = rc;
            continue; /* nothing was asked of this server: try the next */
        }
        if (rc < 0)
            return rc;
        *answered = 1;
    }
    return 0;
}

/* A random healthy server other than except (SIZE_MAX: any), or c->fleet.n. */
static size_t random_other(darner_client *c, size_t except)
{
    unsigned char skip[64] = {0};
    if (c->fleet.n > sizeof(skip))
        return dn_fleet_pick_random(&c->fleet, NULL, dn_now_ms());
    if (except < c->fleet.n)
        skip[except] = 1;
    return dn_fleet_pick_random(&c->fleet, skip, dn_now_ms());
}

/* Power-of-two choices (a fleet of cells): of two random healthy servers,
 * the one where queue is deeper is asked first, so consumers follow the
 * items to the cell producers favour. Depths come from dump_stats and are
 * kept for a second. Nothing found: the caller sweeps as usual. */
static int by_depth(darner_client *c, const char *queue, const char *req, size_t reqlen, const darner_sink *sink,
                    int *found)
{
    size_t a = random_other(c, SIZE_MAX);
    if (a >= c->fleet.n)
        return 0;
    size_t b = random_other(c, a);
    uint64_t da = 0, db = 0;
    int oka = dn_queue_depth(c, a, queue, &da) == 0;
    int okb = b < c->fleet.n && b != a && dn_queue_depth(c, b, queue, &db) == 0;
    size_t best = oka && (!okb || da >= db) ? a : okb ? b : c->fleet.n;
    uint64_t depth = best == a ? da : db;
    c->noquorum = 0;
    dn_clear_error(c);
    if (best >= c->fleet.n || depth == 0 || dn_server_connect(c, best) < 0)
        return 0;
    int sent = 0;
    int rc = get_on(c, best, req, reqlen, 0, sink, found, &sent);
    if (rc < 0 && (c->noquorum || !sent)) {
        c->noquorum = 0;
        dn_clear_error(c);
        return 0;
    }
    if (rc < 0)
        return rc;
    dn_depth_note(c, best, queue, *found ? depth - 1 : 0);
    return 0;
}

/* Waits up to wait_ms for an item, one server at a time. */
static int wait_phase(darner_client *c, const char *queue, unsigned opts, int wait_ms,
                      const darner_sink *sink, int *found)
{
    int64_t end = dn_now_ms() + wait_ms;
    size_t i;
    uint32_t slice;
    while (dn_wait_pick(c, end, &i, &slice)) {
        char req[DN_REQ_MAX];
        int reqlen = dn_req_get(req, sizeof(req), queue, opts, slice);
        if (reqlen < 0)
            return reqlen;
        if (dn_server_connect(c, i) < 0)
            continue;
        int sent = 0;
        int rc = get_on(c, i, req, (size_t)reqlen, slice, sink, found, &sent);
        if (rc < 0 && sent)
            return rc;
        if (*found)
            return 0;
    }
    return 0;
}

/* The common path of every get. The item goes to sink; for an open item the
 * server that holds it is remembered. */
static int fetch(darner_client *c, const char *queue, enum darner_get_mode mode, int wait_ms,
                 const darner_sink *sink, int *found)
{
    *found = 0;
    dn_begin(c);
    unsigned opts = mode == DARNER_GET_OPEN ? DN_GET_OPEN : mode == DARNER_GET_PEEK ? DN_GET_PEEK : 0;
    char req[DN_REQ_MAX];
    int reqlen = dn_req_get(req, sizeof(req), queue, opts, 0);
    if (reqlen < 0 || wait_ms < 0 || (mode == DARNER_GET_PEEK && wait_ms > 0) ||
        (mode != DARNER_GET_REMOVE && mode != DARNER_GET_OPEN && mode != DARNER_GET_PEEK)) {
        dn_set_error(c, SIZE_MAX, "bad queue name or arguments");
        return -EINVAL;
    }
    if (mode == DARNER_GET_OPEN) {
        int idx = dn_open_find(c, queue);
        if (idx >= 0 && !dn_open_stale(c, idx)) {
            dn_set_error(c, SIZE_MAX, "an item is already open on %s; close or abort it first", queue);
            return -EBUSY;
        }
        if (idx >= 0)
            dn_open_remove(c, idx);
    }
    int answered = 0, attempted = 0, last_err = -ECONNREFUSED;
    int64_t deadline = dn_now_ms() + c->timeout_ms;
    if (c->fleet.cells && c->fleet.n > 1 && mode != DARNER_GET_PEEK) {
        int rc = by_depth(c, queue, req, (size_t)reqlen, sink, found);
        if (rc < 0 || *found)
            return rc;
    }
    int rc = sweep(c, req, (size_t)reqlen, sink, found, &answered, &attempted, &last_err);
    if (rc == 0 && !attempted && !*found && dn_wait_for_retry(c, NULL, deadline))
        rc = sweep(c, req, (size_t)reqlen, sink, found, &answered, &attempted, &last_err);
    if (rc < 0)
        return rc;
    if (!*found && !answered) {
        if (!attempted)
            dn_set_error(c, SIZE_MAX, "every server is down (backing off)");
        return last_err;
    }
    if (!*found && wait_ms > 0)
        rc = wait_phase(c, queue, opts, wait_ms, sink, found);
    return rc;
}

/* Remembers which server handed out an item, for the open-item table. */
struct tracking {
    darner_sink inner;
    size_t server;
};

static int track_begin(void *arg, uint64_t len, uint32_t flags, size_t server)
{
    struct tracking *t = arg;
    t->server = server;
    return t->inner.begin ? t->inner.begin(t->inner.arg, len, flags, server) : 0;
}

static int track_data(void *arg, const void *p, size_t n)
{
    struct tracking *t = arg;
    return t->inner.data ? t->inner.data(t->inner.arg, p, n) : 0;
}

/* Caller's sink is borrowed. */
int darner_get_stream(darner_client *c, const char *queue, enum darner_get_mode mode, int wait_ms,
                      const darner_sink *sink, int *found)
{
    static const darner_sink none = {0};
    struct tracking t = {.inner = sink ? *sink : none, .server = SIZE_MAX};
    darner_sink s = {track_begin, track_data, &t};
    int rc = fetch(c, queue, mode, wait_ms, &s, found);
    if (rc == 0 && *found && mode == DARNER_GET_OPEN) {
        rc = dn_open_add(c, queue, t.server);
        if (rc < 0) {
            /* Cannot remember it, so cannot close it: give it back. */
            dn_server_drop(c, t.server, 0, 0);
            *found = 0;
        }
    }
    return rc;
}

/* *out is the caller's (darner_item_free) or NULL. */
static int get_item(darner_client *c, const char *queue, enum darner_get_mode mode, int wait_ms,
                    darner_item **out)
{
    *out = NULL;
    struct dn_item_sink st;
    darner_sink sink;
    dn_item_sink_init(&sink, &st, queue);
    int found = 0;
    int rc = darner_get_stream(c, queue, mode, wait_ms, &sink, &found);
    if (rc == 0 && found)
        *out = st.item;
    else
        darner_item_free(st.item);
    return rc;
}

int darner_get(darner_client *c, const char *queue, int wait_ms, darner_item **out)
{
    return get_item(c, queue, DARNER_GET_REMOVE, wait_ms, out);
}

int darner_peek(darner_client *c, const char *queue, darner_item **out)
{
    return get_item(c, queue, DARNER_GET_PEEK, 0, out);
}

int darner_open(darner_client *c, const char *queue, int wait_ms, darner_item **out)
{
    return get_item(c, queue, DARNER_GET_OPEN, wait_ms, out);
}
