/* client.c: the client object, its settings, and the per-server helpers
 * every operation goes through (connect, send, read a reply, fail). */
#include "client_int.h"

#include "request.h"
#include "sock.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Caller owns *out (darner_client_free). Borrows servers. */
int darner_client_new(darner_client **out, const char *servers)
{
    *out = NULL;
    if (!servers || !*servers)
        servers = DARNER_DEFAULT_SERVERS;
    struct dn_addr *addrs;
    size_t n;
    int rc = dn_servers_parse(servers, DARNER_DEFAULT_PORT, &addrs, &n);
    if (rc < 0)
        return rc;
    darner_client *c = calloc(1, sizeof(*c));
    if (!c) {
        free(addrs);
        return -ENOMEM;
    }
    rc = dn_fleet_init(&c->fleet, addrs, n, dn_sock_seed()); /* takes addrs */
    if (rc < 0) {
        free(c);
        return rc;
    }
    c->fleet.backoff_min_ms = DARNER_DEFAULT_BACKOFF_MIN_MS;
    c->fleet.backoff_max_ms = DARNER_DEFAULT_BACKOFF_MAX_MS;
    c->timeout_ms = DARNER_DEFAULT_TIMEOUT_MS;
    c->connect_timeout_ms = DARNER_DEFAULT_CONNECT_TIMEOUT_MS;
    *out = c;
    return 0;
}

void darner_client_free(darner_client *c)
{
    if (!c)
        return;
    dn_fleet_free(&c->fleet);
    for (size_t i = 0; i < c->nopen; i++)
        free(c->open[i].queue);
    free(c->open);
    free(c);
}

int darner_client_set_timeout(darner_client *c, int ms)
{
    if (ms <= 0)
        return -EINVAL;
    c->timeout_ms = ms;
    return 0;
}

int darner_client_set_connect_timeout(darner_client *c, int ms)
{
    if (ms <= 0)
        return -EINVAL;
    c->connect_timeout_ms = ms;
    return 0;
}

int darner_client_set_backoff(darner_client *c, int min_ms, int max_ms)
{
    if (min_ms < 0 || max_ms < min_ms)
        return -EINVAL;
    c->fleet.backoff_min_ms = min_ms;
    c->fleet.backoff_max_ms = max_ms;
    return 0;
}

void darner_client_set_seed(darner_client *c, uint64_t seed)
{
    c->fleet.rng = seed ? seed : 1;
}

size_t darner_client_server_count(const darner_client *c) { return c->fleet.n; }

const char *darner_client_server_name(const darner_client *c, size_t i)
{
    return i < c->fleet.n ? c->fleet.servers[i].addr.name : NULL;
}

int darner_client_server_healthy(const darner_client *c, size_t i)
{
    return i < c->fleet.n && dn_fleet_healthy(&c->fleet, i, dn_now_ms());
}

const char *darner_client_last_error(const darner_client *c) { return c->last_error; }

void dn_clear_error(darner_client *c) { c->last_error[0] = '\0'; }

void dn_set_error(darner_client *c, size_t i, const char *fmt, ...)
{
    size_t off = 0;
    if (i < c->fleet.n) {
        int n = snprintf(c->last_error, sizeof(c->last_error), "%s: ", c->fleet.servers[i].addr.name);
        off = n > 0 ? (size_t)n : 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->last_error + off, sizeof(c->last_error) - off, fmt, ap);
    va_end(ap);
}

int dn_server_connect(darner_client *c, size_t i)
{
    struct dn_server *s = &c->fleet.servers[i];
    if (s->conn.fd >= 0) {
        if (dn_conn_usable(&s->conn))
            return 0;
        /* Closed by the server while idle (a restart, say): reconnecting is
         * safe because nothing has been sent yet. */
        dn_conn_close(&s->conn);
    }
    int rc = dn_cell_connect(c, i);
    if (rc < 0) {
        dn_fleet_failed(&c->fleet, i, dn_now_ms());
        dn_set_error(c, i, "%s", darner_strerror(rc));
        return rc;
    }
    s->gen = ++c->gens;
    dn_fleet_succeeded(&c->fleet, i);
    return 0;
}

void dn_server_drop(darner_client *c, size_t i, int err, int penalize)
{
    dn_conn_close(&c->fleet.servers[i].conn);
    if (penalize) {
        dn_fleet_failed(&c->fleet, i, dn_now_ms());
        dn_follow(c, i);
    }
    if (err < 0)
        dn_set_error(c, i, "%s", darner_strerror(err));
}

int dn_reply_failure(darner_client *c, size_t i, const struct dn_reply *r)
{
    int err = dn_reply_errno(r);
    switch (r->kind) {
    case DN_R_NOT_STORED:
        dn_set_error(c, i, "NOT_STORED: the queue's limits (max_items, max_size) refused the item");
        return err;
    case DN_R_CLIENT_ERROR:
    case DN_R_SERVER_ERROR:
        dn_set_error(c, i, "%s %.*s", r->kind == DN_R_CLIENT_ERROR ? "CLIENT_ERROR" : "SERVER_ERROR",
                     (int)r->text_len, r->text);
        if (err == -EAGAIN) /* too many connections: the server closes */
            dn_server_drop(c, i, 0, 1);
        if (r->kind == DN_R_SERVER_ERROR && r->text_len >= 9 && memcmp(r->text, "no quorum", 9) == 0) {
            /* a member of a cell with no leader, which closes: nothing was
             * done, so the caller may go elsewhere; another member may
             * know a leader by the next request */
            c->noquorum = 1;
            dn_server_drop(c, i, 0, 1);
            dn_cell_next_member(c, i);
        }
        return err;
    case DN_R_ERROR:
        dn_set_error(c, i, "the server answered ERROR");
        return err;
    default:
        /* Something the client cannot place: later replies would be read as
         * answers to the wrong requests, so start over on a new connection. */
        dn_set_error(c, i, "unexpected reply");
        dn_server_drop(c, i, 0, 0);
        return -EPROTO;
    }
}

int dn_server_send(darner_client *c, size_t i, dn_iov *iov, int iovcnt)
{
    int rc = dn_conn_writev(&c->fleet.servers[i].conn, iov, iovcnt, c->timeout_ms);
    if (rc < 0)
        dn_server_drop(c, i, rc, 1);
    return rc;
}

int dn_server_reply(darner_client *c, size_t i, struct dn_reply *r, int extra_ms)
{
    const char *line;
    size_t len;
    int64_t idle = (int64_t)c->timeout_ms + extra_ms;
    if (idle > INT32_MAX)
        idle = INT32_MAX;
    int rc = dn_conn_readline(&c->fleet.servers[i].conn, &line, &len, (int)idle);
    if (rc == 0)
        rc = dn_reply_parse(line, len, r);
    if (rc < 0)
        dn_server_drop(c, i, rc, rc != -EPROTO);
    return rc;
}

#define FLEET_WAIT_SLICE_MS 250 /* a wait on one server while others may get the item */

size_t dn_pick_untried(darner_client *c, unsigned char *tried, int64_t deadline, int *attempted)
{
    for (;;) {
        size_t i = c->fleet.cells ? dn_fleet_pick_next(&c->fleet, tried, dn_now_ms())
                                  : dn_fleet_pick_random(&c->fleet, tried, dn_now_ms());
        if (i < c->fleet.n) {
            tried[i] = 1;
            *attempted = 1;
            return i;
        }
        /* Everyone is backing off: wait for the first to come back, but
         * only if nothing was tried yet, so a dead fleet fails fast. */
        if (!*attempted && dn_wait_for_retry(c, tried, deadline))
            continue;
        if (!*attempted)
            dn_set_error(c, SIZE_MAX, "every server is down (backing off)");
        return c->fleet.n;
    }
}

int dn_wait_pick(darner_client *c, int64_t end, size_t *server, uint32_t *slice)
{
    for (;;) {
        int64_t now = dn_now_ms();
        int64_t left = end - now;
        if (left <= 0)
            return 0;
        size_t healthy = 0;
        for (size_t i = 0; i < c->fleet.n; i++)
            healthy += dn_fleet_healthy(&c->fleet, i, now);
        if (healthy == 0) {
            int64_t next = dn_fleet_next_retry(&c->fleet, NULL);
            dn_sleep_ms((next < end ? next : end) - now);
            continue;
        }
        size_t i = dn_fleet_rotate(&c->fleet);
        if (!dn_fleet_healthy(&c->fleet, i, now))
            continue;
        int64_t s = healthy == 1 ? left : (left < FLEET_WAIT_SLICE_MS ? left : FLEET_WAIT_SLICE_MS);
        *server = i;
        *slice = s > UINT32_MAX ? UINT32_MAX : (uint32_t)s;
        return 1;
    }
}

int dn_wait_for_retry(darner_client *c, const unsigned char *skip, int64_t deadline)
{
    int64_t now = dn_now_ms();
    for (size_t i = 0; i < c->fleet.n; i++)
        if ((!skip || !skip[i]) && dn_fleet_healthy(&c->fleet, i, now))
            return 0;
    int64_t next = dn_fleet_next_retry(&c->fleet, skip);
    if (next == INT64_MAX || next > deadline)
        return 0;
    dn_sleep_ms(next - now);
    return 1;
}
