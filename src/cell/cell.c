/* cell/cell.c: a cell member on libraft (cell/cell.h, docs/cluster.md): its
 * roles (follower, elected, leader), its start and its end. The state
 * machine is in fsm.c. */
#include "cell/cell_int.h"

#include "proc.h"
#include "queue/queue.h"
#include "service.h"
#include "util/errstr.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- roles ---- */

int cell_leader_target(void *ctx, char *host, size_t cap, int *port)
{
    struct cell *c = ctx;
    raft_id id = 0;
    const char *addr = NULL;
    raft_leader(&c->raft, &id, &addr);
    if (id == 0 || id == c->me->id)
        return 0;
    for (size_t i = 0; i < c->nmembers; i++)
        if (c->members[i].id == id) {
            snprintf(host, cap, "%s", c->members[i].host);
            *port = c->members[i].port;
            return 1;
        }
    return 0;
}

/* `cluster`'s MEMBER lines (docs/protocol.md): each member's memcache
 * address, and whether it leads, as this member knows it. */
static size_t cluster_members(void *ctx, char *out, size_t cap)
{
    struct cell *c = ctx;
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(&c->raft, &leader, &addr);
    size_t n = 0;
    for (size_t i = 0; i < c->nmembers; i++) {
        const struct cell_member *m = &c->members[i];
        int k = snprintf(out + n, cap - n,
                         strchr(m->host, ':') ? "MEMBER %" PRIu64 " [%s]:%d %s\r\n" : "MEMBER %" PRIu64 " %s:%d %s\r\n",
                         m->id, m->host, m->port, m->id == leader ? "leader" : "follower");
        if (k < 0 || (size_t)k >= cap - n)
            break;
        n += (size_t)k;
    }
    return n;
}

/* A follower's answer to `cluster`, as a leader's server answers it. */
static int local_cluster(struct cell *c, char **out, size_t *n)
{
    char *b = malloc(SERVER_CLUSTER_MAX + 8);
    if (!b)
        return -ENOMEM;
    size_t k = cluster_members(c, b, SERVER_CLUSTER_MAX);
    k += server_cluster_cells(c->cfg->cluster_cells, b + k, SERVER_CLUSTER_MAX - k);
    memcpy(b + k, "END\r\n", 5);
    *out = b;
    *n = k + 5;
    return 0;
}

/* A follower's (or a member elected and not yet serving) answer to
 * `cellfile <path> <offset> <length>` on its memcache port, as a leader's
 * server answers it (conn_cmd.c): a member catching up fetches files from
 * whichever member leads, serving or not yet. */
static int local_answer(void *ctx, const char *line, size_t len, char **out, size_t *n)
{
    struct cell *c = ctx;
    char path[COP_PATH_MAX + 1], full[4096 + COP_PATH_MAX + 2], fmt[64];
    uint64_t off, want;
    char text[COP_PATH_MAX + 64];
    *out = NULL;
    *n = 0;
    if (len >= 7 && memcmp(line, "cluster", 7) == 0 && (len == 7 || line[7] == ' '))
        return local_cluster(c, out, n);
    if (len < 9 || memcmp(line, "cellfile ", 9) != 0) {
        const char *e = "CLIENT_ERROR a follower answers only cluster and cellfile on a connection that began with "
                        "one: other commands on a new connection\r\n";
        *out = strdup(e);
        *n = strlen(e);
        return *out ? 0 : -ENOMEM;
    }
    if (c->cfg->auth_file[0]) {
        /* a follower authenticates no one: its files are not served then */
        const char *e = "SERVER_ERROR cellfile: not served by a follower under an auth file\r\n";
        *out = strdup(e);
        *n = strlen(e);
        return *out ? 0 : -ENOMEM;
    }
    if (len >= sizeof(text))
        len = sizeof(text) - 1;
    memcpy(text, line, len);
    text[len] = '\0';
    snprintf(fmt, sizeof(fmt), "cellfile %%%ds %%%s %%%s", COP_PATH_MAX, SCNu64, SCNu64);
    if (sscanf(text, fmt, path, &off, &want) != 3 || !cop_path_ok(path, strlen(path)) || want > CELL_FILE_MAX) {
        const char *e = "CLIENT_ERROR cellfile: not a path of a cell's files\r\n";
        *out = strdup(e);
        *n = strlen(e);
        return *out ? 0 : -ENOMEM;
    }
    snprintf(full, sizeof(full), "%s/%s", c->root, path);
    int fd = open(full, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0) {
        if (fd >= 0)
            close(fd);
        const char *e = errno == ENOENT ? "END\r\n" : "SERVER_ERROR cellfile: cannot read the file\r\n";
        *out = strdup(e);
        *n = strlen(e);
        return *out ? 0 : -ENOMEM;
    }
    uint64_t size = (uint64_t)sb.st_size, have = size > off ? size - off : 0, k = have < want ? have : want;
    char head[COP_PATH_MAX + 80];
    int hl = snprintf(head, sizeof(head), "VALUE %s 0 %" PRIu64 " %" PRIu64 "\r\n", path, k, size);
    char *b = malloc((size_t)hl + (size_t)k + 7);
    if (!b) {
        close(fd);
        return -ENOMEM;
    }
    memcpy(b, head, (size_t)hl);
    size_t got = 0;
    while (got < k) {
        ssize_t r = pread(fd, b + hl + got, (size_t)(k - got), (off_t)(off + got));
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            break; /* shorter than it was: what there is */
        }
        got += (size_t)r;
    }
    close(fd);
    if (got < k) { /* the size line said k: the answer must hold k bytes */
        free(b);
        return -EIO;
    }
    memcpy(b + hl + k, "\r\nEND\r\n", 7);
    *out = b;
    *n = (size_t)hl + (size_t)k + 7;
    return 0;
}

static void start_server(struct cell *c)
{
    struct conffile *file = c->file;
    c->file = NULL;
    int rc = cell_io_init(&c->cio, c->real_io, c->root, c->applier, c->log);
    if (rc < 0) {
        conffile_free(file);
        log_error(c->log, "cell: cannot start serving: %s", errstr(rc));
        cell_stop(c, 1);
        return;
    }
    c->cio_up = 1;
    if ((rc = server_init(&c->srv, c->loop, c->cfg, file, &c->cio.table, c->log)) < 0) {
        log_error(c->log, "cell: cannot open the queues in '%s': %s", c->root, errstr(rc));
        cell_stop(c, 1);
        return;
    }
    c->srv_up = 1;
    c->srv.auth = c->auth;
    c->auth = NULL;
    c->srv.sync.commit = cell_commit;
    c->srv.sync.commit_ctx = c;
    c->srv.cluster_members = cluster_members;
    c->srv.cluster_ctx = c;
    c->srv.cluster_change = cell_change;
    if ((rc = server_start(&c->srv)) < 0) {
        log_error(c->log, "cell: cannot serve (the lines above say why)");
        cell_stop(c, 1);
        return;
    }
    c->role = ROLE_LEADER;
    uv_timer_start(&c->flush, cell_flush_cb, c->cfg->cluster_flush_ms, c->cfg->cluster_flush_ms);
    log_info(c->log, "cell: member %" PRIu64 " leads the cell and serves on port %d", c->me->id, c->me->port);
    if (c->hooks && c->hooks->ready)
        c->hooks->ready(c->hooks->arg, &c->srv);
}

static void relay_closed(struct relay *r)
{
    struct cell *c = (struct cell *)((char *)r - offsetof(struct cell, relay));
    c->relay_up = 0;
    if (c->role == ROLE_ELECTED)
        start_server(c);
    else
        cell_stop(c, c->exit_code);
}

static void barrier_cb(struct raft_barrier *req, int status)
{
    struct cell *c = req->data;
    if (c->role != ROLE_ELECTED)
        return;
    if (status != 0 || raft_state(&c->raft) != RAFT_LEADER) {
        log_warn(c->log, "cell: elected, but lost the leadership before serving");
        cell_fail(c, CELL_EXIT_DEMOTED);
        return;
    }
    log_info(c->log, "cell: every earlier entry applied (%" PRIu64 " in this run)", c->applied_entries);
    relay_close(&c->relay, relay_closed);
}

static void transfer_cb(struct raft_transfer *req)
{
    struct cell *c = req->data;
    c->transferring = 0;
}

static void poll_cb(uv_timer_t *t)
{
    struct cell *c = t->data;
    int st = raft_state(&c->raft);
    if (st == RAFT_UNAVAILABLE) {
        /* libraft gives up after some failures of its own (writing its
         * term and vote, a message it cannot take in): never run on (#450) */
        log_error(c->log, "cell: the Raft library stopped (a failure in %s/raft? the lines above): stopping", c->root);
        cell_stop(c, 1);
        return;
    }
    if (c->role == ROLE_FOLLOWER && st == RAFT_LEADER && c->install_pending) {
        /* its files are not all there (a catch-up was cut short): another
         * member leads, and this one catches up from it */
        if (!c->transferring) {
            c->transferring = 1;
            c->transfer.data = c;
            log_warn(c->log, "cell: elected before its catch-up from files finished: handing the leadership over");
            if (raft_transfer(&c->raft, &c->transfer, 0, transfer_cb) != 0)
                cell_stop(c, CELL_EXIT_DEMOTED);
        }
    } else if (c->role == ROLE_FOLLOWER && st == RAFT_LEADER) {
        c->role = ROLE_ELECTED;
        c->barrier.data = c;
        log_info(c->log, "cell: member %" PRIu64 " elected; applying what came before", c->me->id);
        int rc = raft_barrier(&c->raft, &c->barrier, barrier_cb);
        if (rc != 0) {
            log_warn(c->log, "cell: elected, but cannot append a barrier: %s", raft_strerror(rc));
            cell_stop(c, CELL_EXIT_DEMOTED);
        }
    } else if ((c->role == ROLE_ELECTED || c->role == ROLE_LEADER) && st != RAFT_LEADER) {
        log_warn(c->log, "cell: member %" PRIu64 " no longer leads: stopping, to start again as a follower", c->me->id);
        cell_stop(c, CELL_EXIT_DEMOTED);
    } else if (c->role == ROLE_LEADER && c->srv.stopping) {
        cell_stop(c, c->exit_code); /* SIGTERM: the server stops, and the cell with it */
    }
}

/* ---- the end ---- */

static void handle_closed(uv_handle_t *h)
{
    struct cell *c = h->data;
    c->handles--;
}

static void raft_closed(struct raft *r)
{
    struct cell *c = r->data;
    raft_uv_close(&c->rio);
    cell_transport_close(&c->transport);
    c->raft_closed = 1;
}

/* Ends the run with code (the first code given counts): the server (if
 * any) stops, then Raft and the handles close; the loop then ends. */
void cell_stop(struct cell *c, int code)
{
    if (c->role == ROLE_STOPPING)
        return;
    if (c->exit_code == 0)
        c->exit_code = code;
    c->role = ROLE_STOPPING;
    if (c->cio_up && code != 0)
        cell_io_fence(&c->cio); /* nothing more reaches this member's files */
    if (c->job)
        cell_job_end(c, -EIO);
    if (c->srv_up && !c->srv.stopping)
        server_stop(&c->srv);
    uv_timer_stop(&c->poll);
    uv_timer_stop(&c->flush);
    for (int i = 0; i < 2; i++)
        if (!uv_is_closing((uv_handle_t *)&c->sigs[i]))
            uv_close((uv_handle_t *)&c->sigs[i], handle_closed);
    uv_close((uv_handle_t *)&c->poll, handle_closed);
    uv_close((uv_handle_t *)&c->flush, handle_closed);
    uv_close((uv_handle_t *)&c->job_timer, handle_closed);
    uv_close((uv_handle_t *)&c->fail_timer, handle_closed);
    if (c->relay_up && !c->relay.closing)
        relay_close(&c->relay, relay_closed);
    if (c->raft_up) {
        c->raft_up = 0;
        raft_close(&c->raft, raft_closed);
    }
}

static void fail_cb(uv_timer_t *t)
{
    struct cell *c = t->data;
    cell_stop(c, c->exit_code);
}

/* From inside a callback of the Raft library: the member stops on the next
 * loop turn (closing Raft from inside its own callback is not safe). */
void cell_fail(struct cell *c, int code)
{
    if (c->exit_code == 0)
        c->exit_code = code;
    c->failed = 1; /* nothing more is applied */
    if (c->cio_up && code != 0)
        cell_io_fence(&c->cio); /* nor written */
    if (c->role != ROLE_STOPPING)
        uv_timer_start(&c->fail_timer, fail_cb, 0, 0);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct cell *c = h->data;
    log_info(c->log, "signal %d: stopping", signum);
    cell_stop(c, 0);
}

/* ---- start ---- */

/* The data folder a member starts on for the first time must hold no
 * queues: a cell's files all come from its log. */
static int check_fresh(struct cell *c, int *fresh)
{
    char path[4200];
    struct stat st;
    snprintf(path, sizeof(path), "%s/raft", c->root);
    *fresh = stat(path, &st) != 0;
    if (!*fresh)
        return 0;
    uv_fs_t req;
    int n = uv_fs_scandir(NULL, &req, c->root, 0, NULL);
    if (n < 0)
        return n;
    uv_dirent_t ent;
    int rc = 0;
    while (uv_fs_scandir_next(&req, &ent) != UV_EOF)
        if (strcmp(ent.name, "tmp") != 0 && strcmp(ent.name, "raft") != 0)
            rc = -EEXIST;
    uv_fs_req_cleanup(&req);
    if (rc == 0 && mkdir(path, 0755) < 0)
        rc = -errno;
    return rc;
}

static int start_raft(struct cell *c, int fresh)
{
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/raft", c->root);
    int rc;
    if ((rc = cell_transport_init(&c->transport, c->loop)) != 0)
        return rc;
    if ((rc = raft_uv_init(&c->rio, c->loop, dir, &c->transport.outer)) != 0) {
        log_error(c->log, "cell: cannot use %s: %s", dir, c->rio.errmsg);
        cell_transport_close(&c->transport);
        return rc;
    }
    cell_fsm_init(c);
    /* behind a NAT or a proxy: it listens elsewhere than the address the
     * others dial (libraft 0.15 wants the same port: it announces the
     * address raft_init gets, and the others answer there) */
    if (c->cfg->cluster_bind[0]) {
        const char *colon = strrchr(c->cfg->cluster_bind, ':');
        if (!colon || atoi(colon + 1) != c->me->raft_port) {
            log_error(c->log, "cluster_bind %s: give this member's own Raft port, %d, on the address to listen on",
                      c->cfg->cluster_bind, c->me->raft_port);
            raft_uv_close(&c->rio);
            cell_transport_close(&c->transport);
            return RAFT_INVALID;
        }
        if ((rc = raft_uv_tcp_set_bind_address(&c->transport.inner, c->cfg->cluster_bind)) != 0) {
            log_error(c->log, "cluster_bind %s: %s", c->cfg->cluster_bind, raft_strerror(rc));
            raft_uv_close(&c->rio);
            cell_transport_close(&c->transport);
            return rc;
        }
    }
    if ((rc = raft_init(&c->raft, &c->rio, &c->fsm, c->me->id, c->me->raft_addr)) != 0) {
        log_error(c->log, "cell: %s", raft_errmsg(&c->raft));
        raft_uv_close(&c->rio);
        cell_transport_close(&c->transport);
        return rc;
    }
    c->raft.data = c;
    if (fresh && c->cfg->cluster_join) {
        log_info(c->log, "cell: joining: waiting for the leader to add member %" PRIu64 " (cluster_add)", c->me->id);
    } else if (fresh) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        for (size_t i = 0; i < c->nmembers && rc == 0; i++)
            rc = raft_configuration_add(&conf, c->members[i].id, c->members[i].raft_addr, RAFT_VOTER);
        if (rc == 0)
            rc = raft_bootstrap(&c->raft, &conf);
        raft_configuration_close(&conf);
        if (rc != 0 && rc != RAFT_CANTBOOTSTRAP) {
            log_error(c->log, "cell: cannot make the cell's first configuration: %s", raft_errmsg(&c->raft));
            return rc;
        }
    }
    unsigned et = (unsigned)c->cfg->cluster_election_ms;
    raft_set_election_timeout(&c->raft, et);
    raft_set_heartbeat_timeout(&c->raft, et / 6 > 10 ? et / 6 : 10);
    raft_set_snapshot_threshold(&c->raft, (unsigned)c->cfg->cluster_snapshot_threshold);
    raft_set_snapshot_trailing(&c->raft, (unsigned)c->cfg->cluster_snapshot_trailing);
    raft_set_pre_vote(&c->raft, true);
    /* a member being added catches up from files first, which may take a
     * while for a large backlog: give it time before it counts as a voter */
    raft_set_max_catch_up_rounds(&c->raft, 100);
    raft_set_max_catch_up_round_duration(&c->raft, 60 * 1000);
    if ((rc = raft_start(&c->raft)) != 0) {
        log_error(c->log, "cell: cannot start Raft: %s", raft_errmsg(&c->raft));
        return rc;
    }
    c->raft_up = 1;
    if (!c->reconciled) {
        /* no snapshot: the log holds every file; what a leader wrote and the
         * cell never committed goes with the rest */
        if ((rc = cell_reconcile_empty(c)) < 0) {
            log_error(c->log, "cell: cannot clear the data folder before replaying the log: %s", errstr(rc));
            return rc;
        }
        c->reconciled = 1;
    }
    return 0;
}

/* The commands a follower answers itself rather than relay. */
/* What a follower answers itself: `cellfile ...`, and `cluster` alone (a
 * change, `cluster add ...`, goes to the leader as any other command). */
static const char *const LOCAL_WORDS[] = {"cellfile ", "cluster\r\n", "cluster\n", NULL};

static int run(struct cell *c)
{
    char why[256];
    int n = cell_parse_members(c->cfg->cluster_members, c->members, CELL_MAX_MEMBERS, why, sizeof(why));
    if (n < 0) {
        log_error(c->log, "cluster_members: %s", why);
        return 2;
    }
    c->nmembers = (size_t)n;
    for (size_t i = 0; i < c->nmembers; i++)
        if (c->members[i].id == c->cfg->cluster_id)
            c->me = &c->members[i];
    if (!c->me) {
        log_error(c->log, "cluster_id %" PRIu64 " is not one of cluster_members", c->cfg->cluster_id);
        return 2;
    }
    int fresh, rc;
    snprintf(c->root, sizeof(c->root), "%s", c->cfg->data_dir);
    if ((rc = cell_members_load(c)) < 0) /* the members as the cell last said, if it did */
        log_warn(c->log, "cell: the members' file cannot be read: %s; cluster_members counts", errstr(rc));
    /* the memcache port is the one the members know this member by */
    c->cfg->port = (uint64_t)c->me->port;
    snprintf(c->cfg->listen, sizeof(c->cfg->listen), "%s", c->me->host);
    c->cfg->fsync.policy = FSYNC_ALWAYS;
    if (c->cfg->max_item_size > QUEUE_INLINE_MAX) {
        /* an item over it would be a file of its own, which entries do not
         * carry yet (docs/cluster.md): refused at its header, its data
         * skipped, as any item over max_item_size */
        c->cfg->max_item_size = QUEUE_INLINE_MAX;
        log_info(c->log, "cell: items up to %d KiB (max_item_size): larger ones are not replicated yet",
                 QUEUE_INLINE_MAX / 1024);
    }
    if ((rc = check_fresh(c, &fresh)) < 0) {
        log_error(c->log,
                  rc == -EEXIST ? "cell: the data folder '%s' holds queues but no Raft log: a member starts on an "
                                  "empty folder (docs/cluster.md)"
                                : "cell: cannot use the data folder '%s'",
                  c->root);
        return 1;
    }
    if ((rc = cop_applier_new(&c->applier, c->root)) < 0 || (rc = cst_new(&c->state)) < 0) {
        log_error(c->log, "cell: %s", errstr(rc));
        return 1;
    }
    uv_timer_init(c->loop, &c->poll);
    uv_timer_init(c->loop, &c->flush);
    uv_timer_init(c->loop, &c->job_timer);
    uv_timer_init(c->loop, &c->fail_timer);
    c->poll.data = c->flush.data = c->job_timer.data = c->fail_timer.data = c;
    c->handles += 4;
    for (int i = 0; i < 2; i++) {
        uv_signal_init(c->loop, &c->sigs[i]);
        c->sigs[i].data = c;
        uv_signal_start(&c->sigs[i], on_signal, i == 0 ? SIGTERM : SIGINT);
        c->handles++;
    }
    if ((rc = start_raft(c, fresh)) != 0) {
        cell_stop(c, 1);
        return 1;
    }
    struct relay_conf rc_conf = {.addr = c->me->host,
                                 .port = c->me->port,
                                 .target = cell_leader_target,
                                 .ctx = c,
                                 .log = c->log,
                                 .max_conns = (uint32_t)c->cfg->max_connections,
                                 .local_words = LOCAL_WORDS,
                                 .local = local_answer};
    if ((rc = relay_start(&c->relay, c->loop, &rc_conf)) < 0) {
        log_error(c->log, "cell: cannot listen on %s:%d: %s", c->me->host, c->me->port, errstr(rc));
        cell_stop(c, 1);
        return 1;
    }
    c->relay_up = 1;
    uv_timer_start(&c->poll, poll_cb, 10, 10);
    log_info(c->log, "cell: member %" PRIu64 " of %zu, Raft on %s, memcache on %s:%d, data in %s%s", c->me->id,
             c->nmembers, c->me->raft_addr, c->me->host, c->me->port, c->root, fresh ? " (new)" : "");
    return 0;
}

int cell_run(struct config *cfg, struct conffile *file, struct auth_table *auth, const struct jio *io,
             const struct darner_hooks *hooks, struct log *lg)
{
    uv_loop_t loop;
    int rc = uv_loop_init(&loop);
    if (rc < 0) {
        log_error(lg, "cannot start the event loop: %s", uv_strerror(rc));
        conffile_free(file);
        auth_free(auth);
        log_close(lg);
        return 1;
    }
    struct cell *c = calloc(1, sizeof(*c));
    if (!c) {
        conffile_free(file);
        auth_free(auth);
        log_close(lg);
        uv_loop_close(&loop);
        return 1;
    }
    c->loop = &loop;
    c->cfg = cfg;
    c->log = lg;
    c->real_io = io;
    c->file = file;
    c->auth = auth;
    c->hooks = hooks;
    uint64_t a = uv_hrtime();
    c->incarnation = a ^ ((uint64_t)uv_os_getpid() << 32) ^ (uint64_t)(uintptr_t)c;
    int code = run(c);
    if (code != 0 && c->exit_code == 0)
        c->exit_code = code;
    uv_run(&loop, UV_RUN_DEFAULT);
    if (c->srv_up) {
        if (c->hooks && c->hooks->ready && c->exit_code == 0)
            c->hooks->ready(c->hooks->arg, NULL);
        server_free(&c->srv);
    }
    if (c->cio_up)
        cell_io_free(&c->cio);
    conffile_free(c->file);
    auth_free(c->auth);
    cop_applier_free(c->applier);
    cst_free(c->state);
    cop_buf_free(&c->take);
    code = c->exit_code;
    log_info(lg, "cell: member stopped%s", code == CELL_EXIT_DEMOTED ? " (no longer the leader)" : "");
    free(c);
    log_close(lg);
    uv_loop_close(&loop);
    return code;
}
