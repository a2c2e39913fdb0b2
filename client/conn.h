/* conn.h: one TCP connection to one server: connect with a timeout, write
 * everything, read lines and payloads through a small buffer. All waits are
 * polls of a non-blocking socket, bounded by an idle timeout: a call fails
 * with -ETIMEDOUT when the peer makes no progress for that long. The system
 * calls behind it are sock.h's (sock_unix.c, sock_win.c). */
#ifndef DARNER_CLIENT_CONN_H
#define DARNER_CLIENT_CONN_H

#include "addr.h"

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
/* A SOCKET (a handle, UINT_PTR) held signed, so that -1 (INVALID_SOCKET)
 * means "none" as on Unix. Winsock has no struct iovec: dn_iov has its
 * fields, and sock_win.c hands them to WSASend as WSABUFs. */
typedef intptr_t dn_sock;
typedef struct dn_iov {
    void *iov_base;
    size_t iov_len;
} dn_iov;
#else
#include <sys/uio.h>
typedef int dn_sock;
typedef struct iovec dn_iov;
#endif

#define DN_RBUF_SIZE (64 * 1024) /* also the longest reply line accepted */

struct dn_conn {
    dn_sock fd; /* -1 when not connected */
    char *rbuf;
    size_t rpos, rlen; /* unread bytes are rbuf[rpos, rlen) */
};

/* Milliseconds of a monotonic clock. */
int64_t dn_now_ms(void);

/* Sleeps ms milliseconds (continues after signals). */
void dn_sleep_ms(int64_t ms);

void dn_conn_init(struct dn_conn *c);

/* Connects to a (resolving its host each time, so a moved name is
 * followed), trying each address in turn within timeout_ms overall.
 * Returns 0 or a negative errno (-ENXIO: the host name does not resolve). */
int dn_conn_open(struct dn_conn *c, const struct dn_addr *a, int timeout_ms);

/* Closes the socket and frees the buffer; c can be opened again. */
void dn_conn_close(struct dn_conn *c);

/* 1 if the connection is open and the peer has neither closed it nor sent
 * anything unasked (checked without blocking), else 0. Used before reusing
 * a pooled connection, so a server restarted in between is noticed before a
 * request is sent rather than after. */
int dn_conn_usable(struct dn_conn *c);

/* Writes all iov bytes (iov is consumed as it goes). Returns 0 or a
 * negative errno. */
int dn_conn_writev(struct dn_conn *c, dn_iov *iov, int iovcnt, int idle_ms);

/* Reads one line; *line (len bytes, CRLF or LF removed) stays valid until
 * the next read. Returns 0, -ECONNRESET (peer closed), -EPROTO (line longer
 * than DN_RBUF_SIZE), -ETIMEDOUT or another negative errno. */
int dn_conn_readline(struct dn_conn *c, const char **line, size_t *len, int idle_ms);

/* Reads exactly n bytes and hands them to fn in chunks (fn may be NULL to
 * discard). A negative return from fn stops the read and is returned. */
typedef int (*dn_chunk_fn)(void *arg, const void *p, size_t n);
int dn_conn_read_n(struct dn_conn *c, uint64_t n, dn_chunk_fn fn, void *arg, int idle_ms);

#endif
