/* server.h: the loop's listeners, connections, signals and shutdown. One
 * server context, passed down explicitly; nothing global. */
#ifndef DARNER_SERVER_H
#define DARNER_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "admin.h"
#include "config.h"
#include "http_api.h"
#include "journal/io_stats.h"
#include "listen.h"
#include "log.h"
#include "proc.h"
#include "proto/parse.h"
#include "queue/registry.h"
#include "status.h"
#include "sync.h"
#include "util/list.h"

/* A request's outcome, for darner_commands_total (metrics.c names them);
 * of two outcomes of one request the later in this order counts (a get of
 * two keys that finds one is a hit). */
enum cmd_status { CMD_OK, CMD_MISS, CMD_HIT, CMD_ERROR, CMD_STATUSES };
#define CMD_TYPES (PROTO_SASL_STEP + 1)

struct server_stats {
    uint64_t total_connections, cmd_get, cmd_set, cmd_peek, get_hits, get_misses;
    uint64_t bytes_read, bytes_written, refused_connections, cmd_monitor;
    uint64_t auth_cmds, auth_errors;            /* handshakes (--auth-file), and those refused */
    uint64_t commands[CMD_TYPES][CMD_STATUSES]; /* by request type and outcome */
};

struct server {
    uv_loop_t *loop;
    const struct config *cfg;
    struct conffile *conf; /* the config file's queue and alias settings (ours; replaced by reload) */
    struct log log;
    struct registry *reg;
    struct syncer sync;
    struct io_stats io;                    /* the journals' I/O table: counts bytes written and times fsyncs */
    struct listener listeners[LISTEN_MAX]; /* the memcache ones (`listen`); the first is --port's */
    size_t nlisteners;
    struct tls_ctx *tls; /* --enable-ssl: the context new TLS connections get (ours; a reload replaces it) */
    uv_signal_t signals[PROC_NSIGNALS]; /* proc.h's PROC_SIGNALS: stop or reload */
    uv_async_t stop_async;              /* server_request_stop's wake-up, from any thread */
    uv_mutex_t stop_lock;               /* orders server_request_stop against the async's close */
    int stop_lock_made;                 /* server_start made stop_lock (server_free destroys it) */
    int stop_open;                      /* stop_async may be sent to (under stop_lock) */
    uv_check_t check;                   /* each loop turn: finish deferred work, write output */
    uv_idle_t idle;                     /* keeps the loop from sleeping while work is deferred */
    uv_timer_t fsync_timer;
    uint64_t fsync_every;                  /* its period; 0: not running */
    uv_timer_t idle_timer;                 /* closes idle connections (--idle-timeout) */
    uv_timer_t status_timer;               /* a stricter status applies after --status-grace */
    uv_timer_t sweep_timer;                /* the expiry sweep (--expiry-sweep) */
    uv_timer_t lease_timer;                /* the next lease to run out */
    uint64_t lease_next;                   /* when it is armed for (loop ms); 0: not armed */
    uv_timer_t delay_timer;                /* the next delayed item due, or index work to do */
    struct admin admin;                    /* the admin HTTP port, if --admin-listen */
    struct http_api api;                   /* the HTTP/JSON queue API, if --http-listen */
    struct auth_table *auth;               /* --auth-file's users (ours; replaced by reload); NULL: no authentication */
    int sweeping;                          /* a sweep pass is under way, a step a loop turn */
    enum srv_status status, status_target; /* in force, and asked for */
    struct list conns;                     /* every connection */
    struct list pending;                   /* connections with deferred work or output */
    uint32_t nconns;
    struct server_stats st;
    uint64_t start_ms;
    int port;
    int stopping;
    /* `cluster`'s MEMBER lines when this server leads a cell (set by the
     * cell, cell/cell.c): written into out (at most cap bytes), their
     * length returned. NULL: a single server, no MEMBER lines. */
    size_t (*cluster_members)(void *ctx, char *out, size_t cap);
    void *cluster_ctx;
    /* `cluster add|remove|transfer ...` (the words after `cluster`, n
     * bytes) on a cell's leader: 0 once started, or -errno with why[]. */
    int (*cluster_change)(void *ctx, const char *words, size_t n, char *why, size_t cap);
};

/* The longest answer of `cluster` (docs/protocol.md). */
#define SERVER_CLUSTER_MAX 12288

/* `cluster`'s CELL lines ("CELL HOST:PORT\r\n") of cells, cluster_cells'
 * comma-separated list, written into out (what fits in cap bytes); returns
 * their length. */
size_t server_cluster_cells(const char *cells, char *out, size_t cap);

/* Opens the data folder and its queues. s is the caller's; cfg and io are
 * borrowed and must outlive the server; file (the loaded config file) is
 * the server's from now on, even on failure (server_free frees it). log
 * (log_open's) is copied into s->log: the server writes to its stream and
 * may replace it (SIGHUP reopens a log file); the caller closes s->log with
 * log_close after server_free, so the end of the run can be logged. */
struct conffile;
int server_init(struct server *s, uv_loop_t *loop, const struct config *cfg, struct conffile *file,
                const struct jio *io, const struct log *log);
/* Listens, writes the port file, installs signal handlers. */
int server_start(struct server *s);
/* Makes a TLS context from the ssl_* settings (--enable-ssl). Returns 0
 * or -errno (logged, with OpenSSL's reason). */
struct tls_ctx;
int server_tls_load(struct server *s, struct tls_ctx **out);
/* Begins a clean stop: no new connections, connections closed, data synced.
 * The loop ends by itself afterwards. */
void server_stop(struct server *s);
/* Asks for server_stop from any thread (a Windows service's control
 * handler): it runs on the loop soon after. Safe from the end of
 * server_start until server_free; a request after the stop began is
 * ignored. */
void server_request_stop(struct server *s);
/* Opens the log file again (rotation); logs the outcome. Returns 0 or
 * -errno (the old stream stays). */
int server_reopen_log(struct server *s);
/* Frees what server_init made; after the loop has ended. Leaves s->log
 * open (the caller's to close). */
void server_free(struct server *s);

/* (Re)starts the periodic fsync at the shortest interval the server's and
 * the queues' fsync settings ask for (after a reload too). */
void server_fsync_timer(struct server *s);

/* Arms the lease timer for the soonest lease, if that changed. */
void server_arm_leases(struct server *s);

/* Schedules a connection's deferred work for this loop turn. */
struct conn;
void server_defer(struct server *s, struct conn *c);

/* Bounds of the automatic size of the open-journal cache. */
#define SERVER_OPEN_QUEUES_MIN 16
#define SERVER_OPEN_QUEUES_MAX 16384
/* How many queues' files stay open: --max-open-queues, else what the
 * open-file limit leaves after connections. */
size_t server_max_open_queues(const struct config *cfg);

#endif
