/* server_status.h: the server's status in force and its changes
 * (server_status.c; the statuses are in status.h). */
#ifndef DARNER_SERVER_STATUS_H
#define DARNER_SERVER_STATUS_H

#include "status.h"

struct server;

/* Reads <data>/STATUS (none: UP). Returns 0, or -EPROTONOSUPPORT for a
 * status this build does not know (logged; the file is left alone), or
 * -errno. */
int server_status_load(struct server *s);
/* Makes st the status: written to <data>/STATUS first, then in force at
 * once, or after --status-grace when it is stricter than the one in force.
 * Returns 0 or -errno (the status is then unchanged). */
int server_set_status(struct server *s, enum srv_status st);

#endif
