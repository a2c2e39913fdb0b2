/* listen.c: parsing the `listen` setting (listen.h). */
#include "listen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

int listen_is_loopback(const char *addr)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (uv_inet_pton(AF_INET, addr, &a4) == 0)
        return ntohl(a4.s_addr) >> 24 == 127;
    if (uv_inet_pton(AF_INET6, addr, &a6) == 0)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return 0;
}

static int parse_port(const char *p, size_t n, int *port)
{
    if (n == 0 || n > 5)
        return -EINVAL;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -EINVAL;
        v = v * 10 + (p[i] - '0');
    }
    if (v > 65535)
        return -EINVAL;
    *port = v;
    return 0;
}

/* One entry, e[0..n). */
static int parse_one(const char *e, size_t n, int default_port, struct listen_addr *a)
{
    static const char notls[] = "notls:";
    memset(a, 0, sizeof(*a));
    if (n >= sizeof(notls) - 1 && memcmp(e, notls, sizeof(notls) - 1) == 0) {
        a->notls = 1;
        e += sizeof(notls) - 1;
        n -= sizeof(notls) - 1;
    }
    const char *host = e;
    size_t hlen = n;
    a->port = default_port;
    if (n > 0 && e[0] == '[') { /* [IPv6] or [IPv6]:PORT */
        const char *close = memchr(e, ']', n);
        if (!close)
            return -EINVAL;
        host = e + 1;
        hlen = (size_t)(close - host);
        size_t rest = n - (size_t)(close + 1 - e);
        if (rest > 0 && (close[1] != ':' || parse_port(close + 2, rest - 1, &a->port) < 0))
            return -EINVAL;
    } else {
        const char *colon = memchr(e, ':', n);
        /* one colon: ADDR:PORT; more: a bare IPv6 address */
        if (colon && !memchr(colon + 1, ':', n - (size_t)(colon + 1 - e))) {
            hlen = (size_t)(colon - e);
            if (parse_port(colon + 1, n - hlen - 1, &a->port) < 0)
                return -EINVAL;
        }
    }
    if (hlen == 0 || hlen >= sizeof(a->addr))
        return -EINVAL;
    memcpy(a->addr, host, hlen);
    unsigned char tmp[sizeof(struct in6_addr)];
    if (uv_inet_pton(AF_INET, a->addr, tmp) != 0 && uv_inet_pton(AF_INET6, a->addr, tmp) != 0)
        return -EINVAL;
    return 0;
}

int listen_parse(const char *spec, int default_port, struct listen_addr *out, size_t *n, char *err, size_t errlen)
{
    *n = 0;
    const char *p = spec;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (*n == LISTEN_MAX) {
            snprintf(err, errlen, "listen: at most %d addresses", LISTEN_MAX);
            return -EINVAL;
        }
        if (parse_one(p, len, default_port, &out[*n]) < 0) {
            snprintf(
                err, errlen,
                "listen: '%.*s' is not [notls:]ADDR, [notls:]ADDR:PORT or [notls:][IPv6]:PORT (ADDR an IP address)",
                (int)len, p);
            return -EINVAL;
        }
        (*n)++;
        if (!end)
            return 0;
        p = end + 1;
    }
}
