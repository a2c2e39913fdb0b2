/* addr.h: the server list "host:port,host:port" as the client reads it. */
#ifndef DARNER_CLIENT_ADDR_H
#define DARNER_CLIENT_ADDR_H

#include <stddef.h>
#include <stdint.h>

#define DN_HOST_MAX 255
#define DN_NAME_MAX (DN_HOST_MAX + 9) /* "[" host "]:" port */
#define DN_SERVERS_MAX 1024

struct dn_addr {
    char host[DN_HOST_MAX + 1]; /* without brackets, for getaddrinfo */
    uint16_t port;
    char name[DN_NAME_MAX + 1]; /* "host:port" or "[v6]:port", for messages */
};

/* Parses a comma-separated list. Each entry is host, host:port, [v6] or
 * [v6]:port; blanks around entries are ignored; the default port is
 * default_port. On success *out is a malloc'd array of *n entries (caller
 * frees). Returns 0, -EINVAL (empty list, empty entry, bad host or port,
 * more than DN_SERVERS_MAX entries) or -ENOMEM. Borrows list. */
int dn_servers_parse(const char *list, uint16_t default_port, struct dn_addr **out, size_t *n);

/* Parses one entry of len bytes into *a. Returns 0 or -EINVAL. */
int dn_addr_parse(const char *s, size_t len, uint16_t default_port, struct dn_addr *a);

#endif
