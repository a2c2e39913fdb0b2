/* httpd.h: a small HTTP/1.1 server on the server's loop, under the admin
 * port (admin.c) and the HTTP API (http_api.c). Requests are parsed by
 * Debian's http-parser; a body is read whole, up to a limit; TLS and HTTP
 * Basic are on as the caller decides; each connection answers one request
 * and closes (Connection: close). A route answers at once, in steps (a page
 * rendered a piece a loop turn), or later (a long poll: http_req_hold). */
#ifndef DARNER_HTTPD_H
#define DARNER_HTTPD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util/buf.h"
#include "util/list.h"

struct server;
struct http_req;
struct auth_user;

struct httpd_conf {
    const char *what;   /* "admin port", "HTTP API": in log lines */
    const char *option; /* the option that asked for it ("--admin-listen"): in errors */
    int basic;          /* requests need an auth file user (HTTP Basic), but for the route's open paths */
    int tls;            /* it serves TLS (the server's certificate) */
    uint64_t max_connections;
    uint64_t timeout_ms; /* a connection is closed this long after it was accepted (a held request: when its
                            route says) */
    size_t max_body;     /* request body bytes taken; a longer body answers 413 */
    /* Answers r: with http_respond*, http_req_steps or http_req_hold. */
    void (*route)(struct http_req *r);
    /* Answers httpd's own refusals (400, 401, 413, 414, 431, 500) with text
     * (a line ending in '\n'); NULL: as plain text. */
    void (*error)(struct http_req *r, int status, const char *text);
    /* Whether path (n bytes) is served without Basic (health checks); NULL: none is. */
    int (*open_path)(const char *path, size_t n);
    void *ctx; /* route's */
};

struct httpd {
    struct server *srv;
    struct httpd_conf conf;
    uv_tcp_t listener;
    int started; /* the handles are initialized (and closed by httpd_stop) */
    int port;    /* bound, once started */
    struct list conns;
    struct list jobs;    /* requests answered in steps (http_conn.job_link) */
    uv_idle_t jobs_idle; /* runs a step of each while there are any */
    uv_timer_t sweep;    /* closes connections past timeout_ms */
    uint64_t nconns;     /* open connections (max_connections) */
};

/* Parses "PORT" (loopback) or "ADDR:PORT" ("[::1]:PORT" for IPv6) into addr
 * (cap bytes) and *port. Returns 0 or -EINVAL. */
int httpd_parse_listen(const char *text, char *addr, size_t cap, int *port);
/* Starts listening on listen (ADDR:PORT or PORT) for server s with conf
 * (copied). Returns 0 or -errno (logged). */
int httpd_start(struct httpd *h, struct server *s, const struct httpd_conf *conf, const char *listen);
/* Stops listening and closes every connection (held requests are told). */
void httpd_stop(struct httpd *h);

/* ---- a request, for its route ---- */

struct httpd *http_req_httpd(const struct http_req *r);
/* enum http_method (http_parser.h). */
int http_req_method(const struct http_req *r);
/* The request target's path (not decoded) and query (without '?'; n 0: none). */
void http_req_path(const struct http_req *r, const char **p, size_t *n);
void http_req_query(const struct http_req *r, const char **q, size_t *n);
/* The value of query parameter name, %XX and + decoded, into out (cap
 * bytes, NUL-terminated). Returns 1 if found, 0 if not, -EINVAL if
 * malformed or too long. */
int http_req_param(const struct http_req *r, const char *name, char *out, size_t cap);
/* The first query parameter whose name is not in names (NULL-terminated),
 * into out (cap bytes); returns 1 if there is one, else 0. */
int http_req_unknown_param(const struct http_req *r, const char *const *names, char *out, size_t cap);
/* The body read (len 0: none). */
void http_req_body(const struct http_req *r, const char **p, size_t *n);
/* The Content-Type's media type, lower case, parameters cut ("" if none). */
const char *http_req_type(const struct http_req *r);
/* The auth file user who logged in (Basic), or NULL (no auth file, or an
 * open path). */
const struct auth_user *http_req_user(const struct http_req *r);

/* A header line more for the answer ("Name: value\r\n", static text). */
void http_req_header(struct http_req *r, const char *line);
/* Sends the answer (code's reason phrase from http-parser; body taken:
 * its bytes are the request's from now on) and closes after it. */
void http_respond(struct http_req *r, int code, const char *type, struct buf *body);
void http_respond_text(struct http_req *r, int code, const char *text);
/* The answer is made in steps, one each loop turn: step(arg, body) appends
 * and returns 0 for more, 1 when body is whole (answered 200 as type), or
 * -errno (500). release(arg) runs after the last step, or when the
 * connection goes first. spent_ns: loop time already spent on it (the
 * answer's X-Darner-Render-* headers count it as a step). */
void http_req_steps(struct http_req *r, const char *type, int (*step)(void *arg, struct buf *body),
                    void (*release)(void *arg), void *arg, uint64_t spent_ns);
/* The route answers later (the request is kept past the timeout, and the
 * connection is watched): gone(arg) runs if the connection closes first,
 * after which r must not be used. */
void http_req_hold(struct http_req *r, void (*gone)(void *arg), void *arg);

#endif
