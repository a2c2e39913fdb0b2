/* http_api.h: the HTTP/JSON queue API (--http-listen), versioned under
 * /v1 and served by httpd.c on the server's loop (docs/api.md,
 * docs/openapi.yaml). */
#ifndef DARNER_HTTP_API_H
#define DARNER_HTTP_API_H

#include "http_lease.h"
#include "httpd.h"

struct server;

struct http_api {
    struct httpd h;
    int port;                 /* bound, once started */
    struct api_leases leases; /* items held open by lease handles */
};

/* Starts serving the API on the server's http_listen. Returns 0 or -errno
 * (logged). */
int http_api_start(struct http_api *a, struct server *s);
/* Stops listening; connections close, requests waiting for items end. */
void http_api_stop(struct http_api *a);
/* Gives the items held by lease handles back to their queues (at a stop,
 * once no one waits for items). */
void http_api_release(struct http_api *a);

#endif
