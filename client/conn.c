/* conn.c: the buffered connection. Sockets are non-blocking from the start,
 * so every wait goes through dn_sock_wait() with a timeout and nothing can
 * hang a caller for longer. The system calls are sock.h's. */
#include "conn.h"

#include "sock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void dn_conn_init(struct dn_conn *c)
{
    c->fd = -1;
    c->rbuf = NULL;
    c->rpos = c->rlen = 0;
}

void dn_conn_close(struct dn_conn *c)
{
    if (c->fd >= 0)
        dn_sock_close(c->fd);
    free(c->rbuf);
    dn_conn_init(c);
}

int dn_conn_open(struct dn_conn *c, const struct dn_addr *a, int timeout_ms)
{
    dn_conn_close(c);
    dn_sock s;
    int rc = dn_sock_connect(a->host, a->port, timeout_ms, &s);
    if (rc < 0)
        return rc;
    c->rbuf = malloc(DN_RBUF_SIZE);
    if (!c->rbuf) {
        dn_sock_close(s);
        return -ENOMEM;
    }
    c->fd = s;
    c->rpos = c->rlen = 0;
    return 0;
}

int dn_conn_usable(struct dn_conn *c)
{
    if (c->fd < 0)
        return 0;
    if (c->rpos < c->rlen)
        return 0; /* bytes nobody asked for: the stream is out of step */
    /* readable with nothing asked: EOF, a reset, or stray bytes */
    return dn_sock_wait(c->fd, 0, 0) == -ETIMEDOUT;
}

int dn_conn_writev(struct dn_conn *c, dn_iov *iov, int iovcnt, int idle_ms)
{
    while (iovcnt > 0) {
        if (iov->iov_len == 0) {
            iov++;
            iovcnt--;
            continue;
        }
        int64_t n = dn_sock_send(c->fd, iov, iovcnt);
        if (n == -EAGAIN) {
            int rc = dn_sock_wait(c->fd, 1, idle_ms);
            if (rc < 0)
                return rc;
            continue;
        }
        if (n < 0)
            return (int)n;
        size_t done = (size_t)n;
        while (iovcnt > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

/* Reads more bytes into the buffer (compacting it first). */
static int fill(struct dn_conn *c, int idle_ms)
{
    if (c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    if (c->rlen == DN_RBUF_SIZE)
        return -EPROTO;
    for (;;) {
        int64_t n = dn_sock_recv(c->fd, c->rbuf + c->rlen, DN_RBUF_SIZE - c->rlen);
        if (n > 0) {
            c->rlen += (size_t)n;
            return 0;
        }
        if (n == 0)
            return -ECONNRESET;
        if (n != -EAGAIN)
            return (int)n;
        int rc = dn_sock_wait(c->fd, 0, idle_ms);
        if (rc < 0)
            return rc;
    }
}

int dn_conn_readline(struct dn_conn *c, const char **line, size_t *len, int idle_ms)
{
    size_t scanned = 0;
    for (;;) {
        char *start = c->rbuf + c->rpos;
        size_t avail = c->rlen - c->rpos;
        char *nl = avail > scanned ? memchr(start + scanned, '\n', avail - scanned) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - start);
            c->rpos += n + 1;
            if (n > 0 && start[n - 1] == '\r')
                n--;
            *line = start;
            *len = n;
            return 0;
        }
        scanned = avail;
        int rc = fill(c, idle_ms);
        if (rc < 0)
            return rc;
    }
}

int dn_conn_read_n(struct dn_conn *c, uint64_t n, dn_chunk_fn fn, void *arg, int idle_ms)
{
    while (n > 0) {
        if (c->rpos == c->rlen) {
            c->rpos = c->rlen = 0;
            int rc = fill(c, idle_ms);
            if (rc < 0)
                return rc;
        }
        size_t avail = c->rlen - c->rpos;
        size_t take = (uint64_t)avail < n ? avail : (size_t)n;
        if (fn) {
            int rc = fn(arg, c->rbuf + c->rpos, take);
            if (rc < 0)
                return rc;
        }
        c->rpos += take;
        n -= take;
    }
    return 0;
}
