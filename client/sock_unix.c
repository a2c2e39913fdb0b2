/* sock_unix.c: sock.h over POSIX sockets (Linux, the BSDs, macOS): poll()
 * for every wait, sendmsg() with MSG_NOSIGNAL (SO_NOSIGPIPE where that is
 * missing) so a closed peer is an error, never a SIGPIPE. */
#include "sock.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* where missing, SO_NOSIGPIPE below does the job */
#endif

#if defined(SO_NOSIGPIPE)
/* macOS and older BSDs: the socket itself never raises SIGPIPE. */
static void no_sigpipe(int fd)
{
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
}
#else
static void no_sigpipe(int fd) { (void)fd; }
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

/* The wall clock and the process id. */
uint64_t dn_sock_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec * 1000000007ull) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
}

void dn_sock_close(dn_sock s) { close(s); }

/* poll() until ready or ms pass, through signals. */
int dn_sock_wait(dn_sock s, int for_write, int ms)
{
    int64_t deadline = dn_now_ms() + ms;
    for (;;) {
        struct pollfd p = {.fd = s, .events = for_write ? POLLOUT : POLLIN};
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

/* Connects one resolved address within ms; returns the socket or -errno. */
static int connect_one(const struct addrinfo *ai, int ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    no_sigpipe(fd);
    int rc = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            rc = -errno;
            goto fail;
        }
        rc = dn_sock_wait(fd, 1, ms);
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

int dn_sock_start(void) { return 0; }

int dn_sock_connect_addr(const struct addrinfo *ai, int ms, dn_sock *out)
{
    int fd = connect_one(ai, ms);
    if (fd < 0)
        return fd;
    *out = fd;
    return 0;
}

/* sendmsg() of the whole vector; EPIPE (the peer closed) is a lost connection. */
int64_t dn_sock_send(dn_sock s, const dn_iov *iov, int iovcnt)
{
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    for (;;) {
        ssize_t n = sendmsg(s, &m, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return -EAGAIN;
        return errno == EPIPE ? -ECONNRESET : -errno;
    }
}

/* recv() through signals; EWOULDBLOCK is -EAGAIN. */
int64_t dn_sock_recv(dn_sock s, void *buf, size_t n)
{
    for (;;) {
        ssize_t r = recv(s, buf, n, 0);
        if (r >= 0)
            return r;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}
