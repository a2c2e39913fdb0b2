/* cell/transport.h: the members' Raft connections.
 *
 * libraft 0.15's TCP transport (raft_uv_tcp) leaves Nagle's algorithm on:
 * a small message then waits for the peer's delayed ACK, and every commit
 * took up to 40 ms (measured: p99 42-45 ms through a cell, bench phase
 * "cluster"). This wraps it and turns TCP_NODELAY on for every connection
 * it makes or accepts; everything else is the library's. */
#ifndef DARNER_CELL_TRANSPORT_H
#define DARNER_CELL_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>

struct cell_transport {
    struct raft_uv_transport outer; /* what raft_uv_init is given (its data is libraft's) */
    struct raft_uv_transport inner; /* raft_uv_tcp (its data: this) */
    raft_uv_accept_cb accept_cb;
    raft_uv_transport_close_cb close_cb;
};

/* Makes the transport; w stays valid until after cell_transport_close.
 * Returns 0 or a RAFT_* code. */
int cell_transport_init(struct cell_transport *w, uv_loop_t *loop);
/* Frees it, after libraft closed it (raft_uv_close). */
void cell_transport_close(struct cell_transport *w);

#endif
