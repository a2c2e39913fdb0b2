/* admin.h: the admin HTTP port (--admin-listen): /metrics, /stats.json,
 * /healthz, /readyz and the dashboard, served on the server's loop by
 * httpd.c (docs/operations.md). */
#ifndef DARNER_ADMIN_H
#define DARNER_ADMIN_H

#include <stddef.h>

#include "httpd.h"

struct server;

struct admin {
    struct httpd h;
    int port; /* bound, once started */
};

/* Starts listening on listen for server s. Returns 0 or -errno (logged). */
int admin_start(struct admin *a, struct server *s, const char *listen);
/* Stops listening and closes every admin connection. */
void admin_stop(struct admin *a);

#endif
