/* addr.c: server-list parsing. Pure: no I/O, no name resolution (that
 * happens at connect time, so a list may name hosts that are down). */
#include "addr.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int is_blank(char ch) { return ch == ' ' || ch == '\t'; }

static int is_alnum(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
}

static int is_hex(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') || (ch >= '0' && ch <= '9');
}

/* A host name or IPv4 address: letters, digits, '.', '-', '_'. An IPv6
 * literal: hex digits, ':' and '.', then maybe a zone ("fe80::1%eth0"). */
static int host_ok(const char *h, size_t len, int v6)
{
    int zone = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)h[i];
        if (v6 && !zone && ch == '%' && i > 0 && i + 1 < len)
            zone = 1;
        else if (v6 && !zone ? !(is_hex(ch) || ch == ':' || ch == '.')
                             : !(is_alnum(ch) || ch == '.' || ch == '-' || ch == '_'))
            return 0;
    }
    return !v6 || memchr(h, ':', len) != NULL;
}

static int parse_port(const char *s, size_t len, uint16_t *port)
{
    if (len == 0 || len > 5)
        return -EINVAL;
    unsigned v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v == 0 || v > 65535)
        return -EINVAL;
    *port = (uint16_t)v;
    return 0;
}

/* Fills *a from its parts; borrows host. */
static int addr_fill(struct dn_addr *a, const char *host, size_t hlen, int bracketed, uint16_t port)
{
    if (hlen == 0 || hlen > DN_HOST_MAX)
        return -EINVAL;
    if (!host_ok(host, hlen, bracketed))
        return -EINVAL;
    memcpy(a->host, host, hlen);
    a->host[hlen] = '\0';
    a->port = port;
    /* Cannot overflow: DN_NAME_MAX leaves room for brackets and the port. */
    char *p = a->name;
    if (bracketed)
        *p++ = '[';
    memcpy(p, host, hlen);
    p += hlen;
    if (bracketed)
        *p++ = ']';
    *p++ = ':';
    char digits[6];
    int nd = 0;
    unsigned v = port;
    do {
        digits[nd++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (nd)
        *p++ = digits[--nd];
    *p = '\0';
    return 0;
}

int dn_addr_parse(const char *s, size_t len, uint16_t default_port, struct dn_addr *a)
{
    while (len && is_blank(*s)) {
        s++;
        len--;
    }
    while (len && is_blank(s[len - 1]))
        len--;
    if (len == 0)
        return -EINVAL;

    uint16_t port = default_port;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close)
            return -EINVAL;
        size_t hlen = (size_t)(close - s) - 1;
        size_t rest = len - hlen - 2;
        if (rest > 0) {
            if (close[1] != ':' || parse_port(close + 2, rest - 1, &port) < 0)
                return -EINVAL;
        }
        return addr_fill(a, s + 1, hlen, 1, port);
    }

    const char *colon = memchr(s, ':', len);
    if (colon && memchr(colon + 1, ':', len - (size_t)(colon - s) - 1))
        return addr_fill(a, s, len, 1, port); /* a bare IPv6 literal, no port */
    size_t hlen = colon ? (size_t)(colon - s) : len;
    if (colon && parse_port(colon + 1, len - hlen - 1, &port) < 0)
        return -EINVAL;
    return addr_fill(a, s, hlen, 0, port);
}

int dn_servers_parse(const char *list, uint16_t default_port, struct dn_addr **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!list)
        return -EINVAL;
    size_t count = 1;
    for (const char *p = list; *p; p++)
        count += *p == ',';
    if (count > DN_SERVERS_MAX)
        return -EINVAL;
    struct dn_addr *a = calloc(count, sizeof(*a));
    if (!a)
        return -ENOMEM;
    const char *start = list;
    for (size_t i = 0; i < count; i++) {
        const char *end = strchr(start, ',');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        if (dn_addr_parse(start, len, default_port, &a[i]) < 0) {
            free(a);
            return -EINVAL;
        }
        start = end ? end + 1 : start + len;
    }
    *out = a;
    *n = count;
    return 0;
}
