/* conn.c: sockets. Non-blocking from the start, so every wait goes through
 * poll() with a timeout and nothing can hang a caller for longer. */
#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* where missing, SO_NOSIGPIPE below does the job */
#endif

int64_t dn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void dn_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

void dn_conn_init(struct dn_conn *c)
{
    c->fd = -1;
    c->rbuf = NULL;
    c->rpos = c->rlen = 0;
}

void dn_conn_close(struct dn_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->rbuf);
    dn_conn_init(c);
}

/* Waits for events on fd; 0 when ready, -ETIMEDOUT after ms. */
static int wait_fd(int fd, short events, int ms)
{
    int64_t deadline = dn_now_ms() + ms;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int64_t left = deadline - dn_now_ms();
        if (left < 0)
            left = 0;
        int rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return 0;
        if (rc == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

/* Connects one resolved address; returns the socket or a negative errno. */
static int connect_one(const struct addrinfo *ai, int ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
#ifdef SO_NOSIGPIPE
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
    int rc = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto fail;
        }
        rc = wait_fd(fd, POLLOUT, ms);
        if (rc < 0)
            goto fail;
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            rc = -err;
            goto fail;
        }
    }
    return fd;
fail:
    close(fd);
    return rc;
}

int dn_conn_open(struct dn_conn *c, const struct dn_addr *a, int timeout_ms)
{
    dn_conn_close(c);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)a->port);
    struct addrinfo *res = NULL;
    int g = getaddrinfo(a->host, port, &hints, &res);
    if (g != 0)
        return g == EAI_MEMORY ? -ENOMEM : g == EAI_AGAIN ? -EAGAIN : -ENXIO;
    int64_t deadline = dn_now_ms() + timeout_ms;
    int rc = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int64_t left = deadline - dn_now_ms();
        if (left <= 0) {
            rc = -ETIMEDOUT;
            break;
        }
        rc = connect_one(ai, (int)left);
        if (rc >= 0)
            break;
    }
    freeaddrinfo(res);
    if (rc < 0)
        return rc;
    c->rbuf = malloc(DN_RBUF_SIZE);
    if (!c->rbuf) {
        close(rc);
        return -ENOMEM;
    }
    c->fd = rc;
    c->rpos = c->rlen = 0;
    return 0;
}

int dn_conn_usable(struct dn_conn *c)
{
    if (c->fd < 0)
        return 0;
    if (c->rpos < c->rlen)
        return 0; /* bytes nobody asked for: the stream is out of step */
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int rc = poll(&p, 1, 0);
    if (rc == 0)
        return 1;
    if (rc < 0)
        return errno == EINTR;
    return 0; /* readable with nothing asked: EOF, a reset, or stray bytes */
}

int dn_conn_writev(struct dn_conn *c, struct iovec *iov, int iovcnt, int idle_ms)
{
    while (iovcnt > 0) {
        if (iov->iov_len == 0) {
            iov++;
            iovcnt--;
            continue;
        }
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
        ssize_t n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return errno == EPIPE ? -ECONNRESET : -errno;
            int rc = wait_fd(c->fd, POLLOUT, idle_ms);
            if (rc < 0)
                return rc;
            continue;
        }
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
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, DN_RBUF_SIZE - c->rlen, 0);
        if (n > 0) {
            c->rlen += (size_t)n;
            return 0;
        }
        if (n == 0)
            return -ECONNRESET;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return -errno;
        int rc = wait_fd(c->fd, POLLIN, idle_ms);
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
