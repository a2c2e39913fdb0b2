/* config.h: the server's settings: built-in defaults, then the config
 * file's [server] section, then command-line flags (settings.c declares
 * them all; conffile.c reads the file). */
#ifndef DARNER_CONFIG_H
#define DARNER_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"

enum fsync_policy { FSYNC_NEVER, FSYNC_ALWAYS, FSYNC_PERIODIC, FSYNC_SERVER /* a queue: the server's */ };
enum compat_mode { COMPAT_MEMCACHE, COMPAT_KESTREL };

struct fsync_conf {
    enum fsync_policy policy;
    uint64_t ms; /* FSYNC_PERIODIC: between fsyncs */
};

struct config {
    char listen[256];
    uint64_t port;
    char port_file[4096]; /* "": none */
    char data_dir[4096];
    struct fsync_conf fsync;
    uint64_t max_item_size;
    uint64_t max_connections;
    uint64_t idle_timeout_ms; /* 0: connections may stay idle forever */
    int compat;               /* enum compat_mode */
    uint64_t max_line;
    uint64_t segment_size;
    int log_level;                  /* enum log_level */
    char log_file[4096];            /* the log lines are appended there; "": stderr */
    uint64_t max_open_queues;       /* journals kept open at once; 0: from the open-file limit */
    char config_file[4096];         /* "": none (-c, --config) */
    uint64_t status_grace_ms;       /* before a stricter status refuses work */
    uint64_t expiry_sweep_ms;       /* between expiry sweeps; 0: none */
    int enable_shutdown;            /* the shutdown command stops the server */
    char admin_listen[256];         /* the admin HTTP port: "PORT" or "ADDR:PORT"; "": none */
    char admin_port_file[4096];     /* written with the admin port once it accepts; "": none */
    char auth_file[4096];           /* users clients authenticate as (auth_file.c); "": none */
    int allow_unauthenticated;      /* a non-loopback listen address without an auth file is allowed */
    int enable_ssl;                 /* TLS on every listener not marked notls: */
    int admin_auth, admin_tls;      /* enum admin_mode */
    uint64_t admin_max_connections; /* admin connections at once; more are closed at once */
    uint64_t admin_timeout_ms;      /* an admin connection is closed this long after it was accepted */
    char http_listen[256];          /* the HTTP API: "PORT" or "ADDR:PORT"; "": none */
    char http_port_file[4096];      /* written with the HTTP API's port once it accepts; "": none */
    uint64_t http_max_connections;  /* HTTP API connections at once; more are closed at once */
    uint64_t http_timeout_ms;       /* to send a request and read its answer (a wait= is added) */
    uint64_t http_max_body;         /* bytes of a request's body */
    uint64_t http_max_items;        /* items one request enqueues or takes */
    uint64_t http_max_wait_ms;      /* the longest wait= */
    uint64_t http_max_leases;       /* items held open by lease handles at once */
    uint64_t cluster_id;            /* this member's id in its cell (docs/cluster.md); 0: no cell */
    char cluster_members[4096];     /* the cell: ID@HOST:RAFT_PORT:CLIENT_PORT, comma-separated */
    char cluster_cells[4096];       /* HOST:PORT of a member of each other cell of the fleet, comma-separated */
    char cluster_bind[256];         /* HOST:PORT the Raft port binds to ("": its address in cluster_members) */
    int cluster_join;               /* a new member waits to be added instead of making the first configuration */
    uint64_t cluster_election_ms;   /* Raft election timeout */
    uint64_t cluster_snapshot_threshold, cluster_snapshot_trailing; /* Raft entries */
    uint64_t cluster_log_memory; /* bytes of Raft entries kept in memory, about (snapshots come sooner) */
    uint64_t cluster_flush_ms;   /* a leader proposes what its journals wrote at least this often */
    char ssl_chain_cert[4096], ssl_key[4096], ssl_ca_cert[4096]; /* PEM files ("": none) */
    uint64_t ssl_verify_mode;                                    /* 0..3, memcached's */
    int ssl_min_version;                                         /* index into TLS_VERSION_NAMES */
    /* the open-file limit, as main found and raised it (for the log) */
    uint64_t nofile_was, nofile_soft, nofile_hard;
};

/* admin_auth and admin_tls: auto is on for a non-loopback admin address. */
enum admin_mode { ADMIN_AUTO, ADMIN_ON, ADMIN_OFF };

#define CONFIG_DEFAULT_DATA "./darner-data"

/* Fills c with the built-in defaults. */
void config_defaults(struct config *c);

enum config_result { CONFIG_RUN, CONFIG_EXIT_OK, CONFIG_EXIT_ERROR };

struct conffile;

/* Parses argv into c: the defaults, then the config file named by
 * -c/--config (its [server] section; *file gets the whole file, the
 * caller's to free with conffile_free, or NULL without one), then the other
 * flags, which win. Help, version and errors are written to out/err; the
 * result says whether to run or exit. */
enum config_result config_parse(struct config *c, struct conffile **file, int argc, char **argv, FILE *out, FILE *err);

#endif
