/* transport.h: how a connection's bytes travel, plain TCP or TLS. The
 * request loop (conn.c, conn_out.c) calls only these operations, so it does
 * not know which one it has (as Redis's connection.h). Both run on the
 * server's loop, on the connection's own uv_tcp_t. */
#ifndef DARNER_TRANSPORT_H
#define DARNER_TRANSPORT_H

#include <stddef.h>

struct conn;

struct transport {
    const char *name; /* "tcp", "tls" */
    /* Starts delivering input: the transport asks ci_input_room() for room
     * in the connection's read buffer and reports each read with
     * ci_input() (or ci_input_end() at end of stream or on an error).
     * Returns 0 or a negative libuv error. */
    int (*read_start)(struct conn *c);
    void (*read_stop)(struct conn *c);
    /* Sends p[0..n). Returns 1 when all of it is sent (p is free again), 0
     * when ci_write_done() will say how it went (p must stay until then),
     * or a negative libuv error (the connection is to be closed). */
    int (*write)(struct conn *c, char *p, size_t n);
    /* The connection is closing: frees what the transport holds (the
     * connection's handles are closed by the connection). */
    void (*close)(struct conn *c);
};

/* Plain TCP. */
extern const struct transport transport_tcp;

/* The request loop's side (conn.c, conn_out.c). */
/* Room for input: *p and *n (0 when the buffer is full: input waits). */
void ci_input_room(struct conn *c, char **p, size_t *n);
/* n bytes (n > 0) were put at the room's start: parse and run them. */
void ci_input(struct conn *c, size_t n);
/* The stream ended or failed: the connection closes. */
void ci_input_end(struct conn *c);
/* A write that returned 0 is over (status 0 or a negative libuv error). */
void ci_write_done(struct conn *c, int status);
/* Whether the connection is closing (a transport stops its work then). */
int ci_closing(const struct conn *c);

#endif
