/* set.c: enqueue, on a random healthy server. A set moves to another server
 * only when the first failed before the whole request was written: after
 * that the item may have been stored, and sending it again could duplicate
 * it. */
#include "client_int.h"

#include "request.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define SET_CHUNK (64 * 1024)

/* Where the payload of a set comes from: a buffer, or a source callback. */
struct payload {
    const void *data;
    uint64_t len;
    darner_source_fn src;
    void *arg;
};

/* Writes a streamed payload and its CRLF. *committed is set once the
 * source has been read from (it cannot be rewound for another server). */
static int send_stream(darner_client *c, size_t i, const struct payload *p, int *committed)
{
    char *chunk = malloc(SET_CHUNK);
    if (!chunk)
        return -ENOMEM;
    int rc = 0;
    uint64_t left = p->len;
    while (left > 0) {
        size_t want = left < SET_CHUNK ? (size_t)left : SET_CHUNK;
        size_t got = 0;
        *committed = 1;
        rc = p->src(p->arg, chunk, want, &got);
        if (rc == 0 && (got == 0 || got > want))
            rc = -EPIPE; /* the source ran dry before len bytes */
        if (rc < 0) {
            /* The server must not store a partial item: cut the connection
             * so it drops what it has. */
            dn_server_drop(c, i, 0, 0);
            dn_set_error(c, SIZE_MAX, "the item's source failed: %s", darner_strerror(rc));
            goto done;
        }
        dn_iov iov = {chunk, got};
        rc = dn_server_send(c, i, &iov, 1);
        if (rc < 0)
            goto done;
        left -= got;
    }
    dn_iov crlf = {(void *)"\r\n", 2};
    rc = dn_server_send(c, i, &crlf, 1);
done:
    free(chunk);
    return rc;
}

/* One set on server i. Borrows everything. */
static int set_on(darner_client *c, size_t i, const char *hdr, size_t hlen, const struct payload *p,
                  int *committed)
{
    int rc;
    if (!p->src) {
        dn_iov iov[3] = {{(void *)hdr, hlen}, {(void *)p->data, (size_t)p->len}, {(void *)"\r\n", 2}};
        rc = dn_server_send(c, i, iov, 3);
        if (rc < 0)
            return rc;
        *committed = 1;
    } else {
        dn_iov iov = {(void *)hdr, hlen};
        rc = dn_server_send(c, i, &iov, 1);
        if (rc == 0)
            rc = send_stream(c, i, p, committed);
        if (rc < 0)
            return rc;
        *committed = 1;
    }
    struct dn_reply r;
    rc = dn_server_reply(c, i, &r, 0);
    if (rc < 0)
        return rc;
    if (r.kind == DN_R_STORED)
        return 0;
    rc = dn_reply_failure(c, i, &r);
    if (r.kind == DN_R_CLIENT_ERROR)
        dn_server_drop(c, i, 0, 0); /* the server may close after a bad set */
    return rc;
}

static int set_any(darner_client *c, const char *queue, uint32_t flags, int64_t exptime,
                   unsigned set_flags, const struct payload *p)
{
    dn_begin(c);
    char hdr[DN_REQ_MAX];
    int hlen = dn_req_set(hdr, sizeof(hdr), queue, (set_flags & DARNER_SET_SYNC) != 0, flags,
                          exptime, p->len);
    if (hlen < 0 || (set_flags & ~DARNER_SET_SYNC) || (!p->src && p->len && !p->data)) {
        dn_set_error(c, SIZE_MAX, "bad queue name or arguments");
        return -EINVAL;
    }
    unsigned char *tried = calloc(c->fleet.n, 1);
    if (!tried)
        return -ENOMEM;
    int64_t deadline = dn_now_ms() + c->timeout_ms;
    int rc = -ECONNREFUSED, attempted = 0;
    size_t i;
    while ((i = dn_pick_untried(c, tried, deadline, &attempted)) < c->fleet.n) {
        rc = dn_server_connect(c, i);
        if (rc < 0)
            continue;
        int committed = 0;
        rc = set_on(c, i, hdr, (size_t)hlen, p, &committed);
        if (rc < 0 && c->noquorum && !p->src) {
            c->noquorum = 0; /* a cell with no leader stored nothing: another cell */
            continue;
        }
        if (rc == 0 || committed || c->fleet.servers[i].conn.fd >= 0)
            break; /* stored, or possibly stored, or a reply error */
    }
    free(tried);
    return rc;
}

int darner_set_ex(darner_client *c, const char *queue, const void *data, size_t len, uint32_t flags,
                  int64_t exptime, unsigned set_flags)
{
    struct payload p = {.data = data, .len = len};
    return set_any(c, queue, flags, exptime, set_flags, &p);
}

int darner_set(darner_client *c, const char *queue, const void *data, size_t len)
{
    return darner_set_ex(c, queue, data, len, 0, 0, 0);
}

int darner_set_stream(darner_client *c, const char *queue, uint64_t len, uint32_t flags,
                      int64_t exptime, unsigned set_flags, darner_source_fn src, void *arg)
{
    if (!src)
        return -EINVAL;
    struct payload p = {.len = len, .src = src, .arg = arg};
    return set_any(c, queue, flags, exptime, set_flags, &p);
}
