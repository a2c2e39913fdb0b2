/* cell/relay.h: a member that is not the cell's leader serves its memcache
 * port by relaying each client connection to the leader's (docs/cluster.md):
 * every byte the client sends goes to a connection of its own to the
 * leader, every byte the leader answers comes back, so any memcache client
 * is served whichever member it reaches, and what the leader ties to a
 * connection (an item held open) ends when the client's connection ends.
 * When no leader is known, a client is answered "SERVER_ERROR no quorum"
 * and its connection is closed. Single-threaded (the loop thread). */
#ifndef DARNER_CELL_RELAY_H
#define DARNER_CELL_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "log.h"
#include "util/list.h"

/* The leader's memcache address for a new connection: fills host (NUL-
 * terminated, a numeric IPv4 or IPv6 address) and *port and returns 1, or
 * returns 0 when no leader is known (or this member is the leader). */
typedef int (*relay_target_fn)(void *ctx, char *host, size_t host_cap, int *port);

struct relay_conf {
    const char *addr; /* listen address (numeric) */
    int port;
    relay_target_fn target;
    void *ctx;
    const struct log *log;
    uint32_t max_conns;  /* clients relayed at once; more are answered "SERVER_ERROR too many connections"
                          * and closed (default 1024 when 0) */
    uint64_t connect_ms; /* how long a connection to the leader may take (default 2000 when 0) */
    size_t buf_bytes;    /* read buffer of each side (default 64 KiB when 0) */
    /* A connection whose first line's command word is one of local_words
     * (NULL-terminated, e.g. {"cellfile", "cluster", NULL}) is answered here
     * instead of relayed: each of its lines (without CRLF) goes to local,
     * which returns the answer in *out (malloc'd, the relay's to free) and
     * *n, or -errno to close the connection. NULL: every connection is
     * relayed. */
    const char *const *local_words;
    /* Words of local_words answered here only when alone on their line
     * (blanks allowed): with arguments the line is the leader's (`cluster`
     * is answered here, `cluster add ...` relayed). NULL: none. */
    const char *const *local_alone;
    int (*local)(void *ctx, const char *line, size_t len, char **out, size_t *n);
};

struct relay {
    uv_loop_t *loop;
    struct relay_conf conf;
    uv_tcp_t *listener; /* on the heap, freed by its close callback: a failed relay_start leaves r free */
    int listening;
    int bound_port;    /* the port listened on (conf.port, or the one chosen when it is 0) */
    struct list pairs; /* live client/leader pairs (and clients being refused) */
    uint32_t npairs;
    uint64_t relayed, refused; /* connections relayed, and refused ("no quorum" or "too many connections") */
    void (*closed_cb)(struct relay *r);
    int closing;
};

/* Binds conf->addr:conf->port (port 0: one the system chooses, read back
 * into r->bound_port) and relays from now on. Returns 0 or -errno
 * (-EADDRINUSE: the port is taken; -EINVAL: no address or no target). r is
 * the caller's and stays valid until relay_close's callback; after a
 * failure r holds nothing and relay_close is not called. */
int relay_start(struct relay *r, uv_loop_t *loop, const struct relay_conf *conf);
/* Stops listening and closes every relayed pair (both sides); cb runs once
 * every handle is closed (the port is free again then). */
void relay_close(struct relay *r, void (*cb)(struct relay *r));

#endif
