/* listen.h: the memcache listeners. `listen` names one or more addresses,
 * comma-separated, each `ADDR` (on --port), `ADDR:PORT` or `[IPv6]:PORT`,
 * optionally prefixed `notls:` (memcached's: a plain listener kept while
 * TLS is on, -Z). With TLS on, every other listener speaks TLS. */
#ifndef DARNER_LISTEN_H
#define DARNER_LISTEN_H

#include <stddef.h>
#include <uv.h>

#define LISTEN_MAX 8

struct listen_addr {
    char addr[64]; /* an IP address, without brackets */
    int port;      /* 0..65535 (0: a free one) */
    int notls;
};

/* Parses spec (the `listen` setting) into out[0..*n), entries without a
 * port taking default_port. Returns 0, or -EINVAL with a message in err
 * (errlen bytes). Checks the syntax only; server_start binds. */
int listen_parse(const char *spec, int default_port, struct listen_addr *out, size_t *n, char *err, size_t errlen);

/* Whether addr is a loopback address (127.0.0.0/8, ::1, ::ffff:127.x). */
int listen_is_loopback(const char *addr);

struct server;
struct tls_ctx;

/* One bound listener. */
struct listener {
    uv_tcp_t tcp;
    struct server *srv;
    int tls;  /* accepted connections speak TLS (under srv->tls) */
    int port; /* bound */
    struct listen_addr where;
};

#endif
