/* http_lease.h: items taken open over the HTTP API, each held by a lease
 * handle (an id and an unguessable token) rather than by a connection, until
 * it is confirmed, given back, or its lease runs out (http_lease.c). */
#ifndef DARNER_HTTP_LEASE_H
#define DARNER_HTTP_LEASE_H

#include <stddef.h>
#include <stdint.h>

#include "util/list.h"

struct qopen;

#define LEASE_TOKEN_BYTES 16
#define LEASE_HANDLE_MAX 64 /* "<id>.<32 hex digits>" and its NUL */

struct api_lease {
    uint64_t id;
    unsigned char token[LEASE_TOKEN_BYTES];
    struct qopen *o; /* valid while held is not empty */
    /* o's conn_link is linked here while o lives: the queue layer unlinks
     * it when o goes without us (lease run out, queue deleted) */
    struct list held;
    struct api_lease *next_in_bucket;
    struct list link; /* in the table's list, oldest first */
};

struct api_leases {
    struct api_lease **bucket; /* by id; a power of two of them */
    size_t nbucket, n;
    uint64_t next_id;
    struct list all;
};

void api_leases_init(struct api_leases *t);
/* Gives every item still held back to its queue (as a client gone) and
 * frees the table. */
void api_leases_free(struct api_leases *t);
/* Holds open item o under a new handle, written to out (LEASE_HANDLE_MAX
 * bytes). At most max are kept: when full, the ones whose items went back
 * are forgotten first. Returns 0, -ENOSPC (max live leases) or -ENOMEM; o
 * is the caller's on error. */
int api_lease_add(struct api_leases *t, struct qopen *o, size_t max, char *out);
/* The live lease of handle text p[0..n), or NULL when it is malformed,
 * unknown, its token is wrong, or its item went back (it is forgotten
 * then). */
struct api_lease *api_lease_find(struct api_leases *t, const char *p, size_t n);
/* Forgets l: its open item (l->o, taken before) is the caller's to confirm
 * or give back, after this. */
void api_lease_drop(struct api_leases *t, struct api_lease *l);

#endif
