/* sock.h: what libdarner asks of the operating system: a TCP connection
 * made within a deadline, sends and receives that never block, waits with
 * a timeout, a monotonic clock (conn.h's dn_now_ms, dn_sleep_ms) and a
 * seed. One file per platform family: sock_unix.c (POSIX sockets) and
 * sock_win.c (Winsock). conn.c builds the buffered connection on these.
 * Every call returns 0 (or a count) or a negative errno. */
#ifndef DARNER_CLIENT_SOCK_H
#define DARNER_CLIENT_SOCK_H

#include "conn.h"

#include <stddef.h>
#include <stdint.h>

/* Resolves host and connects a non-blocking socket (not inherited by child
 * processes, Nagle off) to each of its addresses in turn until one answers,
 * within timeout_ms overall. On success *out is the caller's (dn_sock_close).
 * Returns 0, -ENXIO (the name does not resolve), -ETIMEDOUT or -errno.
 * (sock.c, the same on every platform, over the two calls below.) */
int dn_sock_connect(const char *host, uint16_t port, int timeout_ms, dn_sock *out);

/* Per platform: readies the socket library once per process (Winsock's
 * WSAStartup; nothing on Unix). Returns 0 or -errno. */
int dn_sock_start(void);

/* Per platform: one resolved address connected within ms, as
 * dn_sock_connect describes. Returns 0 with *out, or -errno. */
struct addrinfo;
int dn_sock_connect_addr(const struct addrinfo *ai, int ms, dn_sock *out);

void dn_sock_close(dn_sock s);

/* Waits until s is readable (for_write 0) or writable (1). Returns 0 when it
 * is (or has an error or EOF to report), -ETIMEDOUT after ms, or -errno. */
int dn_sock_wait(dn_sock s, int for_write, int ms);

/* Sends what it can of iov without blocking. Returns the bytes sent,
 * -EAGAIN when nothing could be, -ECONNRESET when the peer is gone, or
 * -errno. Never raises SIGPIPE. */
int64_t dn_sock_send(dn_sock s, const dn_iov *iov, int iovcnt);

/* Receives up to n bytes without blocking. Returns the count, 0 at the
 * peer's end of stream, -EAGAIN when nothing is there yet, or -errno. */
int64_t dn_sock_recv(dn_sock s, void *buf, size_t n);

/* Some bits that differ between processes and runs (the fleet's choices). */
uint64_t dn_sock_seed(void);

#endif
