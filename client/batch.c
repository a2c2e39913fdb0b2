/* batch.c: batch enqueue and batch take. Both pipeline on one connection:
 * the requests of a window are written together, then their answers are
 * read in order. Windows bound what is in flight, so neither side can block
 * writing while the other waits to be read. */
#include "client_int.h"

#include "item.h"
#include "request.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SET_WINDOW_ITEMS 1024
#define SET_WINDOW_BYTES (1024 * 1024)
#define SEND_IOVS 63 /* 21 sets a send call, well under any IOV_MAX */
#define GET_WINDOW_BYTES (16 * 1024)

/* ---- batch enqueue ------------------------------------------------------ */

/* The end (exclusive) of the window starting at item from. */
static size_t set_window_end(const darner_batch_item *items, size_t n, size_t from)
{
    size_t end = from, bytes = 0;
    while (end < n && end - from < SET_WINDOW_ITEMS && (end == from || bytes + items[end].len <= SET_WINDOW_BYTES))
        bytes += items[end++].len;
    return end;
}

/* Writes the sets of items [from, end) to server i; hdrs has room for
 * SET_WINDOW_ITEMS headers of DN_REQ_MAX bytes. Borrows everything. */
static int send_set_window(darner_client *c, size_t i, const char *queue, const darner_batch_item *items,
                           size_t from, size_t end, int64_t exptime, int sync, char *hdrs)
{
    dn_iov iov[SEND_IOVS];
    int cnt = 0;
    for (size_t k = from; k < end; k++) {
        char *h = hdrs + (k - from) * DN_REQ_MAX;
        int hlen = dn_req_set(h, DN_REQ_MAX, queue, sync, items[k].flags, exptime, items[k].len);
        if (hlen < 0)
            return hlen; /* checked before anything was sent */
        iov[cnt++] = (dn_iov){h, (size_t)hlen};
        iov[cnt++] = (dn_iov){(void *)items[k].data, items[k].len};
        iov[cnt++] = (dn_iov){(void *)"\r\n", 2};
        if (cnt + 3 > SEND_IOVS || k + 1 == end) {
            int rc = dn_server_send(c, i, iov, cnt);
            if (rc < 0)
                return rc;
            cnt = 0;
        }
    }
    return 0;
}

/* Reads the answers of items [*from, end) into status, moving *from past
 * each one answered. Returns 0 or the connection error after which no
 * answer can be read; *bad_set: a CLIENT_ERROR came (the server may close
 * after one). */
static int read_set_window(darner_client *c, size_t i, size_t *from, size_t end, int *status, int *bad_set)
{
    for (; *from < end; (*from)++) {
        if (c->fleet.servers[i].conn.fd < 0)
            return -EPROTO; /* dropped after a reply it could not place */
        struct dn_reply r;
        int rc = dn_server_reply(c, i, &r, 0);
        if (rc < 0)
            return rc;
        if (r.kind == DN_R_STORED) {
            status[*from] = 0;
            continue;
        }
        *bad_set |= r.kind == DN_R_CLIENT_ERROR;
        status[*from] = dn_reply_failure(c, i, &r);
    }
    return 0;
}

/* Connects to a random healthy server, moving on from those that fail to
 * connect. Returns the server's index, or a negative errno. */
static int64_t set_server(darner_client *c)
{
    unsigned char *tried = calloc(c->fleet.n, 1);
    if (!tried)
        return -ENOMEM;
    int64_t deadline = dn_now_ms() + c->timeout_ms;
    int64_t rc = -ECONNREFUSED;
    int attempted = 0;
    size_t i;
    while ((i = dn_pick_untried(c, tried, deadline, &attempted)) < c->fleet.n) {
        int crc = dn_server_connect(c, i);
        if (crc == 0) {
            rc = (int64_t)i;
            break;
        }
        rc = crc;
    }
    free(tried);
    return rc;
}

/* status (n entries, may be NULL) and *stored are the caller's. Borrows
 * items and queue. */
int darner_set_batch(darner_client *c, const char *queue, const darner_batch_item *items, size_t n,
                     int64_t exptime, unsigned set_flags, int *status, size_t *stored)
{
    if (stored)
        *stored = 0;
    dn_begin(c);
    char probe[DN_REQ_MAX];
    int bad = n == 0 || !items || (set_flags & ~DARNER_SET_SYNC) ||
              dn_req_set(probe, sizeof(probe), queue, 1, UINT32_MAX, exptime, UINT64_MAX) < 0;
    for (size_t k = 0; !bad && k < n; k++)
        bad = items[k].len > 0 && !items[k].data;
    if (bad) {
        dn_set_error(c, SIZE_MAX, "bad queue name or arguments");
        return -EINVAL;
    }
    int sync = (set_flags & DARNER_SET_SYNC) != 0, bad_set = 0;
    size_t nwin = n < SET_WINDOW_ITEMS ? n : SET_WINDOW_ITEMS;
    int *st = status ? status : malloc(n * sizeof(*st));
    char *hdrs = malloc(nwin * DN_REQ_MAX);
    int64_t server = (st && hdrs) ? set_server(c) : -ENOMEM;
    int rc = server < 0 ? (int)server : 0;
    size_t i = server < 0 ? 0 : (size_t)server, from = 0;
    while (rc == 0 && from < n) {
        size_t end = set_window_end(items, n, from);
        rc = send_set_window(c, i, queue, items, from, end, exptime, sync, hdrs);
        if (rc == 0)
            rc = read_set_window(c, i, &from, end, st, &bad_set);
    }
    if (bad_set && server >= 0 && c->fleet.servers[i].conn.fd >= 0)
        dn_server_drop(c, i, 0, 0); /* the server may close after a bad set */
    for (size_t k = from; st && k < n; k++)
        st[k] = rc; /* no answer came: not stored, or not known */
    size_t ok = 0;
    int first = 0;
    for (size_t k = 0; st && k < n; k++) {
        ok += st[k] == 0;
        if (st[k] < 0 && first == 0)
            first = st[k];
    }
    if (stored)
        *stored = ok;
    if (!st)
        first = -ENOMEM;
    if (st != status)
        free(st);
    free(hdrs);
    return first;
}

/* ---- batch take --------------------------------------------------------- */

/* Reads one VALUE's payload and its CRLF into a new item. On failure the
 * connection is dropped. *out is the caller's. */
static int read_item(darner_client *c, size_t i, const char *queue, const struct dn_reply *r, darner_item **out)
{
    struct dn_conn *conn = &c->fleet.servers[i].conn;
    struct dn_item_sink st;
    darner_sink sink;
    dn_item_sink_init(&sink, &st, queue);
    int rc = sink.begin(sink.arg, r->bytes, r->flags, i);
    if (rc == 0)
        rc = dn_conn_read_n(conn, r->bytes, sink.data, sink.arg, c->timeout_ms);
    const char *line;
    size_t len;
    if (rc == 0 && (rc = dn_conn_readline(conn, &line, &len, c->timeout_ms)) == 0 && len != 0)
        rc = -EPROTO; /* the payload must be followed by CRLF */
    if (rc < 0) {
        /* the rest of the answer is unread: only a new connection is in step */
        dn_server_drop(c, i, rc, rc != -EPROTO && rc != -ENOMEM);
        darner_item_free(st.item);
        return rc;
    }
    *out = st.item;
    return 0;
}

/* Reads the answers of nlines pipelined get lines from server i into
 * items[*got, max). wait_ms: the first answer may take that much longer.
 * Returns 0, the first SERVER_ERROR/CLIENT_ERROR (after every line was
 * read), or the error that cut the answers short. */
static int read_take_answers(darner_client *c, size_t i, const char *queue, size_t nlines, int wait_ms,
                             darner_item **items, size_t max, size_t *got)
{
    int first_err = 0;
    for (size_t l = 0; l < nlines;) {
        if (c->fleet.servers[i].conn.fd < 0)
            return first_err ? first_err : -EPROTO; /* dropped after an error answer */
        struct dn_reply r;
        int rc = dn_server_reply(c, i, &r, wait_ms);
        wait_ms = 0;
        if (rc < 0)
            return rc;
        if (r.kind == DN_R_END) {
            l++;
            continue;
        }
        if (r.kind == DN_R_VALUE && *got < max) {
            rc = read_item(c, i, queue, &r, &items[*got]);
            if (rc < 0)
                return rc;
            (*got)++;
            continue;
        }
        rc = dn_reply_failure(c, i, &r);
        if (r.kind != DN_R_CLIENT_ERROR && r.kind != DN_R_SERVER_ERROR)
            return rc; /* a reply it cannot place: dropped */
        if (!first_err)
            first_err = rc;
        l++; /* an error line ends that get's answer */
    }
    return first_err;
}

/* Takes up to max - *got items from server i (connected), in windows, the
 * first key waiting wait_ms; stops when a window comes back short (the
 * queue ran dry). *sent: a request went out, so items may have been handed
 * out. Borrows everything; the items go to the caller's array. */
static int take_from(darner_client *c, size_t i, const char *queue, uint32_t wait_ms, darner_item **items,
                     size_t max, size_t *got, int *sent)
{
    char *buf = malloc(GET_WINDOW_BYTES);
    if (!buf)
        return -ENOMEM;
    int rc = 0;
    while (*got < max) {
        size_t keys;
        int len = dn_req_get_multi(buf, GET_WINDOW_BYTES, queue, max - *got, wait_ms, &keys);
        if (len < 0) {
            rc = len;
            break;
        }
        size_t nlines = 0;
        for (int k = 0; k < len; k++)
            nlines += buf[k] == '\n';
        dn_iov iov = {buf, (size_t)len};
        if ((rc = dn_server_send(c, i, &iov, 1)) < 0)
            break;
        *sent = 1;
        size_t before = *got;
        rc = read_take_answers(c, i, queue, nlines, (int)(wait_ms > INT32_MAX / 2 ? INT32_MAX / 2 : wait_ms),
                               items, max, got);
        if (rc < 0 || *got - before < keys)
            break;
        wait_ms = 0;
    }
    free(buf);
    return rc;
}

/* Asks every healthy server once, without waiting, starting at the next in
 * rotation, until max items came. As get.c's sweep. */
static int take_sweep(darner_client *c, const char *queue, darner_item **items, size_t max, size_t *got,
                      int *answered, int *attempted, int *last_err)
{
    size_t start = dn_fleet_rotate(&c->fleet);
    for (size_t k = 0; k < c->fleet.n && *got < max; k++) {
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
        rc = take_from(c, i, queue, 0, items, max, got, &sent);
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

/* Waits up to wait_ms for the first item, one server at a time in slices
 * (as get.c's wait_phase), then takes what that server has. */
static int take_wait(darner_client *c, const char *queue, int wait_ms, darner_item **items, size_t max,
                     size_t *got)
{
    int64_t end = dn_now_ms() + wait_ms;
    size_t i;
    uint32_t slice;
    while (*got == 0 && dn_wait_pick(c, end, &i, &slice)) {
        if (dn_server_connect(c, i) < 0)
            continue;
        int sent = 0;
        int rc = take_from(c, i, queue, slice, items, max, got, &sent);
        if (rc < 0 && sent)
            return rc;
    }
    return 0;
}

/* items (max entries) is the caller's array; the items put in it are the
 * caller's, also on failure. Borrows queue. */
int darner_get_batch(darner_client *c, const char *queue, int wait_ms, darner_item **items, size_t max,
                     size_t *got)
{
    *got = 0;
    dn_begin(c);
    char probe[DN_REQ_MAX];
    if (!items || max == 0 || wait_ms < 0 || dn_req_get(probe, sizeof(probe), queue, 0, UINT32_MAX) < 0) {
        dn_set_error(c, SIZE_MAX, "bad queue name or arguments");
        return -EINVAL;
    }
    int answered = 0, attempted = 0, last_err = -ECONNREFUSED;
    int64_t deadline = dn_now_ms() + c->timeout_ms;
    int rc = take_sweep(c, queue, items, max, got, &answered, &attempted, &last_err);
    if (rc == 0 && !attempted && *got == 0 && dn_wait_for_retry(c, NULL, deadline))
        rc = take_sweep(c, queue, items, max, got, &answered, &attempted, &last_err);
    if (rc < 0)
        return rc;
    if (*got == 0 && !answered) {
        if (!attempted)
            dn_set_error(c, SIZE_MAX, "every server is down (backing off)");
        return last_err;
    }
    if (*got == 0 && wait_ms > 0)
        rc = take_wait(c, queue, wait_ms, items, max, got);
    return rc;
}
