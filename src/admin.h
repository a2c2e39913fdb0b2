/* admin.h: the admin HTTP port (--admin-listen): /metrics, /stats.json,
 * /healthz and /readyz, served on the server's loop (docs/operations.md). */
#ifndef DARNER_ADMIN_H
#define DARNER_ADMIN_H

#include <stddef.h>
#include <uv.h>

#include "util/list.h"

struct server;

struct admin {
    struct server *srv;
    uv_tcp_t listener;
    int started; /* the listener's handle is initialized (and closed by admin_stop) */
    int port;    /* bound, once started */
    int basic;   /* requests other than /healthz and /readyz need an auth file user (HTTP Basic) */
    int tls;     /* it serves TLS (a non-loopback address with --enable-ssl) */
    struct list conns;
    struct list jobs;    /* connections whose answer is being rendered (admin_conn.job_link) */
    uv_idle_t jobs_idle; /* runs a step of each while there are any */
    uv_timer_t sweep;    /* closes connections past admin_timeout */
    uint64_t nconns;     /* open admin connections (admin_max_connections) */
};

/* Parses "PORT" (loopback) or "ADDR:PORT" ("[::1]:PORT" for IPv6) into addr
 * (cap bytes) and *port. Returns 0 or -EINVAL. */
int admin_parse_listen(const char *text, char *addr, size_t cap, int *port);
/* Starts listening on listen for server s. Returns 0 or -errno (logged). */
int admin_start(struct admin *a, struct server *s, const char *listen);
/* Stops listening and closes every admin connection. */
void admin_stop(struct admin *a);

#endif
