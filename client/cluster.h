/* cluster.h: a server's answer to `cluster` (docs/protocol.md), read line
 * by line. Pure, so it is unit-tested without a network. */
#ifndef DARNER_CLIENT_CLUSTER_H
#define DARNER_CLIENT_CLUSTER_H

#include "addr.h"

#include <stddef.h>

struct dn_cluster {
    struct dn_addr *members; /* MEMBER lines: the cell's members (malloc'd) */
    size_t nmembers;
    size_t leader;         /* index in members of the leader, or SIZE_MAX */
    struct dn_addr *cells; /* CELL lines: a member of each other cell (malloc'd) */
    size_t ncells;
};

/* An empty answer. */
void dn_cluster_init(struct dn_cluster *a);

/* Frees what a holds (a is empty again). */
void dn_cluster_free(struct dn_cluster *a);

/* Takes one line of the answer (len bytes, CRLF removed). Returns 1 for
 * END, 0 for a MEMBER or CELL line taken, -EPROTO for any other line (a
 * server that has no `cluster` answers ERROR), -ENOMEM. */
int dn_cluster_line(struct dn_cluster *a, const char *line, size_t len);

/* Index in list (n entries) of the address named name, or SIZE_MAX. */
size_t dn_addr_find(const struct dn_addr *list, size_t n, const char *name);

#endif
