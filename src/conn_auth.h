/* conn_auth.h: authentication on the connections of a server started with
 * --auth-file (conn_auth.c). */
#ifndef DARNER_CONN_AUTH_H
#define DARNER_CONN_AUTH_H

#include <stddef.h>
#include <sys/types.h>

#include "proto/parse.h"

struct conn;
struct server;
struct auth_table;

/* Runs before a parsed request (its line line[0..len), avail bytes of
 * input from line on): answers it itself when the connection has not
 * authenticated (the handshake set, or CLIENT_ERROR unauthenticated) or
 * its user may not make it (CLIENT_ERROR permission denied: ...). Returns
 * 1 when it did, with *used the bytes consumed (0: the handshake's data is
 * still coming), or 0 when the request may run. Only for a server with
 * an auth table. */
int ci_auth_gate(struct conn *c, const char *line, size_t len, size_t avail, const struct proto_req *req,
                 ssize_t *used);

/* A reload brought the table next: each authenticated connection of s is
 * re-pointed at its user in next, or made to authenticate again when next
 * has no such user or a different password. Call before the old table is
 * freed; next is borrowed (it becomes s->auth). */
void conn_auth_rebind(struct server *s, const struct auth_table *next);

#endif
