/* server.c: listener, connection table, deferred work, signals, shutdown. */
#include "server.h"
#include "util/errstr.h"

#include "queue/delay.h"

#include "auth.h"
#include "conffile.h"
#include "notify.h"
#include "reload.h"
#include "server_status.h"
#include "tls.h"

#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ACK_COMPACT_BYTES (1u << 20)

struct unlink_req {
    uv_fs_t req;
    struct server *s;
};

static void unlink_done(uv_fs_t *req)
{
    struct unlink_req *u = req->data;
    if (req->result < 0 && req->result != UV_ENOENT)
        log_warn(&u->s->log, "cannot remove %s: %s", req->path, uv_strerror((int)req->result));
    uv_fs_req_cleanup(req);
    free(u);
}

/* Removes a file on libuv's thread pool, so the loop does not wait for a
 * large file's blocks to be freed. Once stopping, removes it at once. */
static void unlink_later(void *ctx, const char *path)
{
    struct server *s = ctx;
    if (s->cfg->cluster_id) {
        /* a cell: the removal is replicated (and made once committed) */
        int rc = s->io.table.unlink(s->io.table.ctx, path);
        if (rc < 0 && rc != -ENOENT)
            log_warn(&s->log, "cannot remove %s: %s", path, errstr(rc));
        return;
    }
    struct unlink_req *u = s->stopping ? NULL : malloc(sizeof(*u));
    if (u) {
        u->s = s;
        u->req.data = u;
        if (uv_fs_unlink(s->loop, &u->req, path, unlink_done) == 0)
            return;
        free(u);
    }
    int rc = s->io.inner->unlink(s->io.inner->ctx, path);
    if (rc < 0 && rc != -ENOENT)
        log_warn(&s->log, "cannot remove %s: %s", path, errstr(rc));
}

int server_init(struct server *s, uv_loop_t *loop, const struct config *cfg, struct conffile *file,
                const struct jio *io, const struct log *log)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->cfg = cfg;
    s->conf = file;
    s->log = *log;
    list_init(&s->conns);
    list_init(&s->pending);
    s->start_ms = queue_now_ms();
    io_stats_init(&s->io, io);
    struct jnl_conf jc = {
        .io = &s->io.table,
        .log = &s->log,
        .segment_size = cfg->segment_size,
        .ack_compact_bytes = ACK_COMPACT_BYTES,
        .sync_never = cfg->fsync.policy == FSYNC_NEVER,
        .unlink_later = unlink_later,
        .unlink_ctx = s,
    };
    int rc = registry_open(&s->reg, cfg->data_dir, &jc, file);
    if (rc < 0)
        return rc;
    s->reg->fsync = cfg->fsync;
    s->reg->cell = cfg->cluster_id != 0;
    if ((rc = server_status_load(s)) < 0) {
        registry_close(s->reg);
        s->reg = NULL;
        return rc;
    }
    size_t open_max = server_max_open_queues(cfg);
    registry_set_max_open(s->reg, open_max);
    if (cfg->nofile_soft)
        log_info(&s->log,
                 "open-file limit: soft %" PRIu64 " (was %" PRIu64 "), hard %" PRIu64
                 "; the files of up to %zu queues stay open%s",
                 cfg->nofile_soft, cfg->nofile_was, cfg->nofile_hard, open_max,
                 cfg->max_open_queues ? " (--max-open-queues)" : "");
    if ((rc = syncer_init(&s->sync, loop, s->reg, &s->log)) < 0) {
        registry_close(s->reg);
        s->reg = NULL;
    }
    return rc;
}

static void idle_cb(uv_idle_t *h) { (void)h; }

size_t server_max_open_queues(const struct config *cfg)
{
    if (cfg->max_open_queues)
        return cfg->max_open_queues;
    if (!cfg->nofile_soft)
        return REGISTRY_MAX_OPEN_DEFAULT;
    /* Keep fds for connections (half the limit at most) and a few of our
     * own; an open journal holds up to 4 (tail, cursor segment, acks,
     * folder), and while a sync job runs it holds copies of the 3 it
     * syncs and may owe one more for a file it is done with: 8 each. */
    uint64_t conns = cfg->max_connections < cfg->nofile_soft / 2 ? cfg->max_connections : cfg->nofile_soft / 2;
    uint64_t reserve = conns + 64;
    uint64_t n = cfg->nofile_soft > reserve ? (cfg->nofile_soft - reserve) / 8 : 0;
    return n < SERVER_OPEN_QUEUES_MIN   ? SERVER_OPEN_QUEUES_MIN
           : n > SERVER_OPEN_QUEUES_MAX ? SERVER_OPEN_QUEUES_MAX
                                        : n;
}

void server_defer(struct server *s, struct conn *c)
{
    if (list_linked(&c->pending) || c->state == CONN_CLOSING || s->stopping)
        return;
    list_push_back(&s->pending, &c->pending);
    uv_idle_start(&s->idle, idle_cb);
}

static void lease_cb(uv_timer_t *t)
{
    struct server *s = t->data;
    s->lease_next = 0;
    size_t n = registry_expire_leases(s->reg, uv_now(s->loop));
    if (n)
        log_debug(&s->log, "%zu leases ran out: items given back", n);
    server_arm_leases(s);
}

void server_arm_leases(struct server *s)
{
    if (s->stopping)
        return; /* its handle is closing: open items go back with their connections */
    uint64_t next = registry_next_lease(s->reg);
    if (next == s->lease_next)
        return;
    s->lease_next = next;
    if (!next) {
        uv_timer_stop(&s->lease_timer);
        return;
    }
    uint64_t now = uv_now(s->loop);
    uv_timer_start(&s->lease_timer, lease_cb, next > now ? next - now : 0, 0);
}

/* Delayed items: indexes built and due items made visible, a budget a
 * tick; armed again for when the next is due. Due times are wall-clock ms. */
static void delay_cb(uv_timer_t *t)
{
    struct server *s = t->data;
    uint64_t now = queue_now_ms();
    uint64_t next = registry_delay_tick(s->reg, now);
    if (!next || s->stopping)
        return;
    if (next > now) {
        uv_timer_start(t, delay_cb, next - now, 0);
        return;
    }
    /* More to do now: at the next turn, after the loop's I/O (check_cb arms
     * the timer). A timer started from its own callback with timeout 0
     * would run again in this same timer pass (libuv before 1.45), so a
     * tick's budget would bound nothing. */
    s->reg->delay_changed = 1;
    uv_idle_start(&s->idle, idle_cb); /* the poll does not block meanwhile */
}

/* A delayed item was set (or a bucket made) this turn: the tick runs soon
 * and arms itself for the next due time. */
static void server_arm_delays(struct server *s)
{
    if (s->stopping || !s->reg->delay_changed)
        return;
    s->reg->delay_changed = 0;
    uv_timer_start(&s->delay_timer, delay_cb, 0, 0);
}

/* After the loop's I/O: run deferred work of connections, then start one
 * fsync for every answer of this turn that waits for one. */
static void check_cb(uv_check_t *h)
{
    struct server *s = h->data;
    struct list *first, batch;
    /* Every item set this turn goes to disk, one write per queue, before
     * any answer is written. */
    registry_flush(s->reg);
    /* Only what was deferred before this turn's check: a connection that
     * defers itself again (its write budget spent) waits for the next turn,
     * after everyone else's I/O. */
    list_init(&batch);
    while ((first = list_first(&s->pending)) != NULL) {
        list_remove(first);
        list_push_back(&batch, first);
    }
    while ((first = list_first(&batch)) != NULL) {
        struct conn *c = list_entry(first, struct conn, pending);
        list_remove(first);
        conn_run_deferred(c);
    }
    if (list_empty(&s->pending))
        uv_idle_stop(&s->idle);
    syncer_kick(&s->sync);
    server_arm_leases(s); /* opens and touches of this turn */
    server_arm_delays(s);
}

static void fsync_timer_cb(uv_timer_t *t);

void server_fsync_timer(struct server *s)
{
    uint64_t every = s->cfg->fsync.policy == FSYNC_PERIODIC ? s->cfg->fsync.ms : 0;
    uint64_t queues = conffile_min_fsync_ms(s->conf);
    if (queues && (!every || queues < every))
        every = queues; /* the shortest interval any queue asks for syncs all of them */
    if (every == s->fsync_every)
        return;
    s->fsync_every = every;
    uv_timer_stop(&s->fsync_timer);
    if (every)
        uv_timer_start(&s->fsync_timer, fsync_timer_cb, every, every);
}

static void fsync_timer_cb(uv_timer_t *t)
{
    struct server *s = t->data;
    if (registry_any_dirty(s->reg))
        syncer_request(&s->sync, NULL);
}

/* Closes connections idle for longer than --idle-timeout. */
static void idle_timer_cb(uv_timer_t *t)
{
    struct server *s = t->data;
    uint64_t now = uv_now(s->loop), since, limit = s->cfg->idle_timeout_ms;
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &s->conns) {
        struct conn *c = list_entry(pos, struct conn, link);
        if (conn_idle_since(c, &since) && now - since >= limit) {
            log_debug(&s->log, "closing a connection idle for %" PRIu64 " ms", now - since);
            conn_close(c);
        }
    }
}

static void on_connection(uv_stream_t *stream, int status)
{
    struct listener *l = stream->data;
    struct server *s = l->srv;
    if (status < 0) {
        log_warn(&s->log, "accept: %s", uv_strerror(status));
        return;
    }
    int rc = conn_accept(s, stream, l->tls ? s->tls : NULL);
    if (rc < 0)
        log_warn(&s->log, "accept: %s", uv_strerror(rc));
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct server *s = h->data;
    log_info(&s->log, "signal %d: stopping", signum);
    server_stop(s);
}

/* Expired items one loop turn of the sweep removes at most, and queues it
 * deletes for their max_queue_age. */
#define SWEEP_BUDGET 1024
#define SWEEP_DELETES 16

/* A step of the expiry sweep: a pass starts every --expiry-sweep and goes
 * on, SWEEP_BUDGET items a loop turn, until every queue that may hold
 * expiring items was looked at. */
static void sweep_cb(uv_timer_t *t)
{
    struct server *s = t->data;
    uint64_t removed = 0;
    if (!s->sweeping) {
        s->reg->sweep_epoch++;
        s->sweeping = 1;
    }
    int more = queue_sweep(s->reg, queue_now_ms(), SWEEP_BUDGET, &removed);
    if (removed)
        log_debug(&s->log, "expiry sweep: %" PRIu64 " items", removed);
    /* then the empty queues past their max_queue_age, a few a turn */
    if (more || queue_sweep_old(s->reg, queue_now_ms(), SWEEP_DELETES)) {
        uv_timer_start(t, sweep_cb, 0, s->cfg->expiry_sweep_ms); /* the rest next turn */
        return;
    }
    s->sweeping = 0;
}

/* On the loop, after server_request_stop from some thread. */
static void on_stop_request(uv_async_t *h)
{
    struct server *s = h->data;
    log_info(&s->log, "stop requested: stopping");
    server_stop(s);
}

void server_request_stop(struct server *s)
{
    uv_mutex_lock(&s->stop_lock);
    if (s->stop_open)
        uv_async_send(&s->stop_async);
    uv_mutex_unlock(&s->stop_lock);
}

int server_reopen_log(struct server *s)
{
    const char *path = s->cfg->log_file;
    if (!path[0])
        return 0;
    int rc = log_reopen(&s->log, path);
    if (rc < 0)
        log_error(&s->log, "cannot open the log file %s again: %s; logging on to the file as it was", path, errstr(rc));
    else
        log_info(&s->log, "log file %s opened again", path);
    return rc;
}

static void on_sighup(uv_signal_t *h, int signum)
{
    struct server *s = h->data;
    char why[512];
    (void)signum;
    notify_reloading();
    if (server_reload(s, why, sizeof(why)) < 0) /* logs what happened */
        notify_ready("serving on %s:%d; a reload was refused: %s", s->listeners[0].where.addr, s->port, why);
    else
        notify_ready("serving on %s:%d; reloaded", s->listeners[0].where.addr, s->port);
}

/* The ports, one a line, atomically (a temporary file renamed over path,
 * through the platform's I/O table: Windows' rename replaces too). */
static int write_port(const struct jio *io, const char *path, const int *ports, size_t n)
{
    char tmp[PATH_MAX], text[LISTEN_MAX * 8];
    size_t len = 0;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return -ENAMETOOLONG;
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%d\n", ports[i]);
    int fd = io->open(io->ctx, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return fd;
    int rc = jio_pwrite_all(io, fd, text, len, 0);
    int rc2 = io->close(io->ctx, fd);
    if (rc == 0 && rc2 < 0)
        rc = rc2;
    if (rc == 0)
        rc = io->rename(io->ctx, tmp, path);
    return rc;
}

/* --port-file: the first listener's port, then each other one's on a line
 * of its own. */
static int write_port_file(const char *path, const struct server *s)
{
    int ports[LISTEN_MAX];
    for (size_t i = 0; i < s->nlisteners; i++)
        ports[i] = s->listeners[i].port;
    return write_port(s->io.inner, path, ports, s->nlisteners);
}

int server_tls_load(struct server *s, struct tls_ctx **out)
{
    const struct config *cfg = s->cfg;
    struct tls_settings ts = {.chain_cert = cfg->ssl_chain_cert,
                              .key = cfg->ssl_key,
                              .ca_cert = cfg->ssl_ca_cert,
                              .verify_mode = (int)cfg->ssl_verify_mode};
    char err[1024];
    int rc = tls_parse_version(TLS_VERSION_NAMES[cfg->ssl_min_version], &ts.min_version);
    if (rc == 0)
        rc = tls_ctx_new(&ts, out, err, sizeof(err));
    else
        snprintf(err, sizeof(err), "unknown ssl_min_version");
    if (rc < 0)
        log_error(&s->log, "TLS: %s", err);
    return rc;
}

/* Binds and listens on every address of `listen`. Returns 0 or -errno
 * (logged). */
static int start_listeners(struct server *s)
{
    const struct config *cfg = s->cfg;
    struct listen_addr where[LISTEN_MAX];
    size_t n;
    char err[512];
    int rc = listen_parse(cfg->listen, (int)cfg->port, where, &n, err, sizeof(err));
    if (rc < 0) {
        log_error(&s->log, "%s", err);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        struct listener *l = &s->listeners[i];
        struct sockaddr_storage addr;
        l->srv = s;
        l->where = where[i];
        l->tls = cfg->enable_ssl && !where[i].notls;
        if (strchr(where[i].addr, ':'))
            rc = uv_ip6_addr(where[i].addr, where[i].port, (struct sockaddr_in6 *)&addr);
        else
            rc = uv_ip4_addr(where[i].addr, where[i].port, (struct sockaddr_in *)&addr);
        if (rc == 0) {
            uv_tcp_init(s->loop, &l->tcp);
            l->tcp.data = l;
            s->nlisteners = i + 1;
            if ((rc = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&addr, 0)) == 0)
                rc = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
        }
        if (rc < 0) {
            log_error(&s->log, "cannot listen on %s port %d: %s", where[i].addr, where[i].port, uv_strerror(rc));
            return rc;
        }
        int len = sizeof(addr);
        uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&addr, &len);
        l->port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                                   : ((struct sockaddr_in *)&addr)->sin_port);
        log_info(&s->log, "listening on %s port %d (%s)", where[i].addr, l->port, l->tls ? "TLS" : "plain text");
        if (!listen_is_loopback(where[i].addr) && !s->auth) /* --allow-unauthenticated: config.c refuses it otherwise */
            log_warn(&s->log,
                     "listening on %s, not loopback, without authentication: anyone who can reach this "
                     "address can read and delete every queue",
                     where[i].addr);
    }
    s->port = s->listeners[0].port;
    return 0;
}

int server_start(struct server *s)
{
    const struct config *cfg = s->cfg;
    int rc;
    if ((rc = uv_mutex_init(&s->stop_lock)) == 0) {
        s->stop_lock_made = 1;
        rc = uv_async_init(s->loop, &s->stop_async, on_stop_request);
    }
    if (rc < 0) {
        log_error(&s->log, "cannot make the stop request's handle: %s", uv_strerror(rc));
        return rc;
    }
    s->stop_async.data = s;
    s->stop_open = 1; /* no other thread knows s yet */
    uv_check_init(s->loop, &s->check);
    s->check.data = s;
    uv_check_start(&s->check, check_cb);
    uv_idle_init(s->loop, &s->idle);
    for (size_t i = 0; i < PROC_NSIGNALS; i++) {
        uv_signal_init(s->loop, &s->signals[i]);
        s->signals[i].data = s;
        uv_signal_start(&s->signals[i], PROC_SIGNALS[i].action == PROC_SIG_RELOAD ? on_sighup : on_signal,
                        PROC_SIGNALS[i].signum);
    }
    uv_timer_init(s->loop, &s->fsync_timer);
    s->fsync_timer.data = s;
    uv_timer_init(s->loop, &s->idle_timer);
    s->idle_timer.data = s;
    uv_timer_init(s->loop, &s->status_timer);
    s->status_timer.data = s;
    uv_timer_init(s->loop, &s->sweep_timer);
    s->sweep_timer.data = s;
    uv_timer_init(s->loop, &s->lease_timer);
    s->lease_timer.data = s;
    uv_timer_init(s->loop, &s->delay_timer);
    s->delay_timer.data = s;
    s->reg->delay_changed = 1; /* delayed items found at start: the first tick looks */
    if (cfg->expiry_sweep_ms)
        uv_timer_start(&s->sweep_timer, sweep_cb, cfg->expiry_sweep_ms, cfg->expiry_sweep_ms);
    if (cfg->idle_timeout_ms > 0) {
        uint64_t every = cfg->idle_timeout_ms / 4;
        every = every < 100 ? 100 : every > 1000 ? 1000 : every;
        uv_timer_start(&s->idle_timer, idle_timer_cb, every, every);
    }
    server_fsync_timer(s);
    if (cfg->enable_ssl && (rc = server_tls_load(s, &s->tls)) < 0)
        return rc;
    if ((rc = start_listeners(s)) < 0)
        return rc;
    log_info(&s->log, "darner %s serving on %s:%d%s, data in %s (%zu queues), fsync %s", DARNER_VERSION,
             s->listeners[0].where.addr, s->port, s->nlisteners > 1 ? " and more (above)" : "", cfg->data_dir,
             s->reg->count - s->reg->nhidden,
             cfg->fsync.policy == FSYNC_ALWAYS  ? "always"
             : cfg->fsync.policy == FSYNC_NEVER ? "never"
                                                : "periodic");
    /* every listener accepts before a port file says the server does */
    if (cfg->admin_listen[0] && (rc = admin_start(&s->admin, s, cfg->admin_listen)) < 0)
        return rc;
    if (cfg->admin_listen[0] && cfg->admin_port_file[0] &&
        (rc = write_port(s->io.inner, cfg->admin_port_file, &s->admin.port, 1)) < 0) {
        log_error(&s->log, "cannot write --admin-port-file %s: %s", cfg->admin_port_file, errstr(rc));
        return rc;
    }
    if (cfg->http_listen[0] && (rc = http_api_start(&s->api, s)) < 0)
        return rc;
    if (cfg->http_listen[0] && cfg->http_port_file[0] &&
        (rc = write_port(s->io.inner, cfg->http_port_file, &s->api.port, 1)) < 0) {
        log_error(&s->log, "cannot write --http-port-file %s: %s", cfg->http_port_file, errstr(rc));
        return rc;
    }
    if (cfg->port_file[0] && (rc = write_port_file(cfg->port_file, s)) < 0) {
        log_error(&s->log, "cannot write --port-file %s: %s", cfg->port_file, errstr(rc));
        return rc;
    }
    notify_ready("serving on %s:%d, data in %s", s->listeners[0].where.addr, s->port, cfg->data_dir);
    return 0;
}

static void handle_closed(uv_handle_t *h) { (void)h; }

void server_stop(struct server *s)
{
    if (s->stopping)
        return;
    s->stopping = 1;
    notify_stopping();
    if (s->stop_lock_made) {
        uv_mutex_lock(&s->stop_lock);
        s->stop_open = 0; /* closed below: no send may reach it from now on */
        uv_mutex_unlock(&s->stop_lock);
    }
    for (size_t i = 0; i < s->nlisteners; i++)
        if (!uv_is_closing((uv_handle_t *)&s->listeners[i].tcp))
            uv_close((uv_handle_t *)&s->listeners[i].tcp, handle_closed);
    for (size_t i = 0; i < PROC_NSIGNALS; i++)
        if (s->signals[i].loop && !uv_is_closing((uv_handle_t *)&s->signals[i]))
            uv_close((uv_handle_t *)&s->signals[i], handle_closed);
    uv_handle_t *hs[] = {
        (uv_handle_t *)&s->fsync_timer, (uv_handle_t *)&s->check,        (uv_handle_t *)&s->idle,
        (uv_handle_t *)&s->idle_timer,  (uv_handle_t *)&s->status_timer, (uv_handle_t *)&s->sweep_timer,
        (uv_handle_t *)&s->lease_timer, (uv_handle_t *)&s->delay_timer,  (uv_handle_t *)&s->stop_async};
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        if (hs[i]->loop && !uv_is_closing(hs[i]))
            uv_close(hs[i], handle_closed);
    admin_stop(&s->admin);
    http_api_stop(&s->api); /* its waiting takes end too */
    /* Waits end first, so items given back below are handed to nobody. */
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &s->conns)
        conn_cancel_wait(list_entry(pos, struct conn, link));
    http_api_release(&s->api);
    list_for_each_safe(pos, tmp, &s->conns)
        conn_close(list_entry(pos, struct conn, link));
    s->sync.closing = 1;
}

void server_free(struct server *s)
{
    if (s->reg) {
        /* Twice: the first makes every removal durable, which lets consumed
         * segments go (they wait for that); the second syncs their going. */
        int rc = syncer_flush_now(&s->sync);
        if (rc == 0)
            rc = syncer_flush_now(&s->sync);
        if (rc < 0)
            log_error(&s->log, "final fsync failed: %s", errstr(rc));
        else
            log_info(&s->log, "every journal synced");
        registry_close(s->reg);
        s->reg = NULL;
    }
    syncer_free(&s->sync);
    conffile_free(s->conf);
    s->conf = NULL;
    auth_free(s->auth);
    s->auth = NULL;
    tls_ctx_put(s->tls);
    s->tls = NULL;
    if (s->stop_lock_made)
        uv_mutex_destroy(&s->stop_lock);
    s->stop_lock_made = 0;
}
