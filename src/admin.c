/* admin.c: the admin HTTP port (--admin-listen), on the server's loop:
 * /metrics, /stats.json, /healthz, /readyz and the dashboard, served by
 * httpd.c; JSON written by jansson (metrics_job.c). */
#include "admin.h"

#include "auth.h"
#include "dashboard.h"
#include "listen.h"
#include "metrics.h"
#include "server.h"

#include <errno.h>
#include <http_parser.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Lines (or an eighth as many queues) one step of a page renders: about
 * half a millisecond of loop time. */
#define JOB_STEP_BUDGET 2000

static int job_step(void *arg, struct buf *body) { return metrics_job_step(arg, JOB_STEP_BUDGET, body); }
static void job_free(void *arg) { metrics_job_free(arg); }

/* A page rendered in steps, so queue traffic waits one step at most. */
static void start_job(struct http_req *r, enum metrics_format format, const char *pattern, const char *type)
{
    uint64_t t0 = uv_hrtime();
    struct metrics_job *job = metrics_job_new(http_req_httpd(r)->srv, format, pattern); /* a step of its own */
    if (!job) {
        http_respond_text(r, 500, "out of memory\n");
        return;
    }
    http_req_steps(r, type, job_step, job_free, job, uv_hrtime() - t0);
}

/* /metrics, /metrics?queue=<shell pattern>: Prometheus's text format. */
static void serve_metrics(struct http_req *r)
{
    char pattern[8192];
    int found = http_req_param(r, "queue", pattern, sizeof(pattern));
    if (found < 0) {
        http_respond_text(r, 400, "bad queue= parameter\n");
        return;
    }
    start_job(r, METRICS_PROMETHEUS, found ? pattern : NULL, "text/plain; version=0.0.4; charset=utf-8");
}

static int is(const char *path, size_t n, const char *want) { return n == strlen(want) && !memcmp(path, want, n); }

/* Health checks are served without Basic, for load balancers. */
static int open_path(const char *path, size_t n) { return is(path, n, "/healthz") || is(path, n, "/readyz"); }

static void route(struct http_req *r)
{
    const struct server *s = http_req_httpd(r)->srv;
    const char *path, *type;
    size_t plen, blen;
    const unsigned char *body;
    const struct auth_user *u = http_req_user(r);
    if (http_req_method(r) != HTTP_GET && http_req_method(r) != HTTP_HEAD) {
        http_req_header(r, "Allow: GET, HEAD\r\n");
        http_respond_text(r, 405, "only GET and HEAD\n");
        return;
    }
    http_req_path(r, &path, &plen);
    if (u && u->nrules) {
        http_respond_text(r, 403, "this user is limited to some queues: the admin port shows them all\n");
    } else if (is(path, plen, "/healthz")) {
        http_respond_text(r, 200, "ok\n");
    } else if (is(path, plen, "/readyz")) {
        /* not ready while QUIESCENT: it serves no get */
        if (s->status >= STATUS_QUIESCENT)
            http_respond_text(r, 503, "not ready: QUIESCENT\n");
        else
            http_respond_text(r, 200, "ready\n");
    } else if (is(path, plen, "/stats.json")) {
        start_job(r, METRICS_JSON, NULL, "application/json");
    } else if (is(path, plen, "/metrics")) {
        serve_metrics(r);
    } else if (dashboard_asset(path, plen, &type, &body, &blen) == 0) {
        struct buf b = {0};
        buf_append(&b, body, blen);
        http_respond(r, 200, type, &b);
    } else {
        http_respond_text(r, 404, "no such page: /, /metrics, /stats.json, /healthz and /readyz are served\n");
    }
}

int admin_start(struct admin *a, struct server *s, const char *listen)
{
    char addr[256];
    int port, rc;
    if (httpd_parse_listen(listen, addr, sizeof(addr), &port) < 0) {
        log_error(&s->log, "--admin-listen %s: wants PORT or ADDR:PORT", listen);
        return -EINVAL;
    }
    /* beyond loopback (auto): the auth file's users (HTTP Basic), and TLS
     * when the memcache port has it */
    const struct config *cfg = s->cfg;
    int wide = !listen_is_loopback(addr);
    struct httpd_conf conf = {
        .what = "admin port",
        .option = "--admin-listen",
        .basic = cfg->admin_auth == ADMIN_ON || (cfg->admin_auth == ADMIN_AUTO && wide && s->auth),
        .tls = cfg->admin_tls == ADMIN_ON || (cfg->admin_tls == ADMIN_AUTO && wide && cfg->enable_ssl),
        .max_connections = cfg->admin_max_connections,
        .timeout_ms = cfg->admin_timeout_ms,
        .max_body = 0,
        .route = route,
        .open_path = open_path};
    if (conf.basic && !s->auth) {
        log_error(&s->log, "admin_auth = on needs --auth-file FILE (its users log in with HTTP Basic)");
        return -EINVAL;
    }
    if (conf.tls && !s->tls) {
        log_error(&s->log, "admin_tls = on needs --enable-ssl and --ssl-chain-cert");
        return -EINVAL;
    }
    if ((rc = httpd_start(&a->h, s, &conf, listen)) < 0)
        return rc;
    a->port = a->h.port;
    log_info(&s->log, "admin HTTP%s port on %s:%d (/, /metrics, /stats.json, /healthz, /readyz)%s", conf.tls ? "S" : "",
             addr, a->port, conf.basic ? ", HTTP Basic with the auth file's users" : "");
    return 0;
}

void admin_stop(struct admin *a) { httpd_stop(&a->h); }
