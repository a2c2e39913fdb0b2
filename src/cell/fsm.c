/* cell/fsm.c: a cell member's state machine (committed entries applied to
 * its files, snapshots that list them, restore and catching up) and a
 * leader's commits (the syncer's jobs proposed as entries); docs/cluster.md. */
#include "cell/cell_int.h"

#include "cell/install.h"
#include "util/buf.h"
#include "util/errstr.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the state machine ---- */

/* The first thing applied after a start with no snapshot: every file the
 * log will make again is removed (what a leader wrote and the cell never
 * committed goes with them). */
int cell_reconcile_empty(struct cell *c)
{
    struct cop_state *empty;
    int rc = cst_new(&empty);
    if (rc < 0)
        return rc;
    rc = cst_reconcile(empty, c->root);
    cst_free(empty);
    if (rc == 0)
        log_info(c->log, "cell: no snapshot: the data folder is made again from the Raft log");
    return rc;
}

/* The file that says a catch-up from files began and did not end. */
static void install_marker(const struct cell *c, char *out, size_t cap)
{
    snprintf(out, cap, "%s/tmp/cell-install", c->root);
}

static int marker_set(const struct cell *c, int on)
{
    char path[4200];
    install_marker(c, path, sizeof(path));
    if (!on)
        return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/tmp", c->root);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return -errno;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* Fetches from the leader what the files lack to be those of st. */
static int install(struct cell *c, const struct cop_state *st)
{
    char host[64];
    int port, rc;
    if (!cell_leader_target(c, host, sizeof(host), &port)) {
        log_error(c->log, "cell: catching up from files needs the leader, and none is known");
        return -EAGAIN;
    }
    if ((rc = marker_set(c, 1)) < 0)
        return rc;
    log_info(c->log, "cell: catching up from the files of the leader at %s:%d (%zu files and folders)", host, port,
             cst_count(st));
    uint64_t t0 = uv_hrtime();
    struct cell_install_stats is;
    if ((rc = cell_install(st, c->root, host, port, c->applier, c->log, &is)) < 0)
        return rc;
    if ((rc = marker_set(c, 0)) < 0)
        return rc;
    c->install_pending = 0;
    cell_members_load(c); /* the members' file came with the rest */
    log_info(c->log, "cell: caught up: %" PRIu64 " files, %" PRIu64 " bytes fetched in %.1f s", is.files, is.bytes,
             (double)(uv_hrtime() - t0) / 1e9);
    return 0;
}

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct cell *c = fsm->data;
    *result = NULL;
    int rc;
    if (c->failed)
        return RAFT_IOERR;
    if (c->install_pending && (rc = install(c, c->state)) < 0) {
        cell_fail(c, CELL_EXIT_DEMOTED); /* started again, it tries again (maybe from another leader) */
        return RAFT_IOERR;
    }
    const unsigned char *p = buf->base;
    if (buf->len < ENTRY_HEADER || get_u32le(p) != ENTRY_MAGIC || get_u32le(p + 4) != ENTRY_VERSION ||
        get_u32le(p + 8) > buf->len - ENTRY_HEADER) {
        log_error(c->log, "cell: an entry of %zu bytes is not one this build writes: stopping", buf->len);
        cell_fail(c, 1);
        return RAFT_MALFORMED;
    }
    size_t len = get_u32le(p + 8);
    uint64_t proposer = get_u64le(p + 16), inc = get_u64le(p + 24), seq = get_u64le(p + 32);
    if (inc == c->last_inc && seq <= c->last_seq) {
        /* entries of one leader apply in the order it made them (#373) */
        log_error(c->log,
                  "cell: entry %" PRIu64 " of leader %" PRIu64 " comes after its entry %" PRIu64
                  ": the Raft log is out of order; stopping (rebuild this member: docs/cluster.md)",
                  seq, proposer, c->last_seq);
        cell_fail(c, 1);
        return RAFT_CORRUPT;
    }
    c->last_inc = inc;
    c->last_seq = seq;
    int own = proposer == c->me->id && inc == c->incarnation;
    const unsigned char *ops = p + ENTRY_HEADER;
    size_t pos = 0;
    struct cop op;
    while ((rc = cop_next(ops, len, &pos, &op)) == 1) {
        if ((rc = cst_apply(c->state, &op)) < 0)
            break;
        if ((op.path_len == 4 && memcmp(op.path, "CELL", 4) == 0) ||
            (op.path2_len == 4 && memcmp(op.path2, "CELL", 4) == 0))
            c->members_dirty = 1;
        if (!own)
            rc = cop_apply(c->applier, &op);
        else if (op.flags & COP_F_DEFERRED)
            rc = cell_io_deferred(&c->cio, c->applier, &op);
        if (rc < 0)
            break;
        c->applied_ops++;
    }
    if (rc < 0) {
        log_error(c->log, "cell: cannot apply an entry to %s: %s; stopping", c->root, errstr(rc));
        cell_fail(c, 1);
        return RAFT_IOERR;
    }
    c->applied_entries++;
    if (c->members_dirty && !own) {
        c->members_dirty = 0;
        cell_members_load(c);
    }
    /* the entries since the last snapshot are in memory: past half the
     * budget, the next apply takes a snapshot, whatever their count */
    c->snap_bytes += buf->len;
    c->snap_entries++;
    if (c->snap_bytes > c->cfg->cluster_log_memory / 2 && c->snap_entries < c->cfg->cluster_snapshot_threshold)
        raft_set_snapshot_threshold(&c->raft, (unsigned)c->snap_entries);
    return 0;
}

/* A snapshot: what the committed files are, once everything written so far
 * is on stable storage (a snapshot must only name what is on disk). */
static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct cell *c = fsm->data;
    int rc = cop_applier_sync(c->applier);
    if (rc < 0) {
        log_error(c->log, "cell: cannot sync the data folder for a snapshot: %s; stopping", errstr(rc));
        cell_fail(c, 1);
        return RAFT_IOERR;
    }
    struct raft_buffer *b = malloc(sizeof(*b));
    void *p;
    size_t n;
    if (!b || cst_encode(c->state, &p, &n) < 0) {
        free(b);
        return RAFT_NOMEM;
    }
    b->base = p;
    b->len = n;
    *bufs = b;
    *n_bufs = 1;
    /* keep as many entries after it as fit in the other half of the budget */
    uint64_t avg = c->snap_entries ? c->snap_bytes / c->snap_entries : 1;
    uint64_t keep = (c->cfg->cluster_log_memory / 2) / (avg ? avg : 1);
    if (keep > c->cfg->cluster_snapshot_trailing)
        keep = c->cfg->cluster_snapshot_trailing;
    raft_set_snapshot_trailing(&c->raft, (unsigned)(keep < 16 ? 16 : keep));
    raft_set_snapshot_threshold(&c->raft, (unsigned)c->cfg->cluster_snapshot_threshold);
    c->snap_bytes = c->snap_entries = 0;
    log_debug(c->log, "cell: snapshot of %zu files and folders (%zu bytes)", cst_count(c->state), n);
    return 0;
}

static int fsm_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    (void)fsm;
    if (*bufs) {
        for (unsigned i = 0; i < *n_bufs; i++)
            free((*bufs)[i].base);
        free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct cell *c = fsm->data;
    int rc;
    if (c->reconciled) {
        /* a snapshot sent by the leader: this member is further behind than
         * the entries the others keep; its files come from the leader's */
        struct cop_state *st = NULL;
        if ((rc = cst_new(&st)) < 0 || (rc = cst_decode(st, buf->base, buf->len)) < 0 || (rc = install(c, st)) < 0) {
            log_error(c->log, "cell: cannot catch up from the leader's files: %s; stopping to start again", errstr(rc));
            cst_free(st);
            cell_fail(c, CELL_EXIT_DEMOTED); /* started again, it finishes the catch-up first */
            return RAFT_IOERR;
        }
        cst_free(c->state);
        c->state = st;
        raft_free(buf->base);
        return 0;
    }
    char marker[4200];
    struct stat sb;
    install_marker(c, marker, sizeof(marker));
    rc = cst_decode(c->state, buf->base, buf->len);
    if (rc == 0 && stat(marker, &sb) == 0) {
        /* the last catch-up was cut short: its snapshot is loaded, the files
         * are not all there; fetched again before the next entry */
        c->install_pending = 1;
        c->reconciled = 1;
        log_warn(c->log, "cell: the last catch-up from the leader's files did not finish: done again first");
        raft_free(buf->base);
        return 0;
    }
    if (rc == 0)
        rc = cst_reconcile(c->state, c->root);
    if (rc < 0) {
        log_error(c->log, "cell: cannot bring the data folder back to the last snapshot: %s", errstr(rc));
        return RAFT_IOERR;
    }
    c->reconciled = 1;
    log_info(c->log, "cell: data folder back at the last snapshot (%zu files and folders); replaying the log",
             cst_count(c->state));
    raft_free(buf->base);
    return 0;
}

/* ---- the leader's commits: the syncer's jobs ---- */

void cell_job_end(struct cell *c, int status)
{
    struct syncer *s = c->job;
    c->job = NULL;
    if (s)
        syncer_commit_done(s, status);
}

void cell_job_timer_cb(uv_timer_t *t)
{
    struct cell *c = t->data;
    cell_job_end(c, c->job_status);
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    (void)result;
    struct cell *c = req->data;
    if (status != 0) {
        /* its operations are in this member's files and nowhere else:
         * writing on after them would leave holes in the others' files */
        log_warn(c->log, "cell: an entry was not committed: %s; stopping, to start again as a follower",
                 raft_strerror(status));
        cell_fail(c, CELL_EXIT_DEMOTED);
    }
    /* the job ends on the next loop turn: its end may start the next one,
     * and libraft calls this while it steps down, when proposing again
     * would read what it has just freed */
    c->job_status = status == 0 ? 0 : -EIO;
    if (uv_timer_start(&c->job_timer, cell_job_timer_cb, 0, 0) < 0)
        cell_job_end(c, c->job_status);
}

/* The syncer asks for what was written to be made durable: it is proposed
 * as one entry and the job ends when that is committed. */
int cell_commit(void *ctx, struct syncer *s)
{
    struct cell *c = ctx;
    if (c->role == ROLE_STOPPING || c->failed)
        return -EIO; /* an earlier job failed: nothing more is answered as done */
    c->job = s;
    c->job_status = 0;
    size_t n = cell_io_take(&c->cio, &c->take);
    if (c->cio.err < 0 || c->role != ROLE_LEADER || raft_state(&c->raft) != RAFT_LEADER) {
        c->job_status = c->cio.err < 0 ? c->cio.err : -EIO;
    } else if (n > 0) {
        size_t total = (ENTRY_HEADER + n + 7) & ~(size_t)7;
        struct raft_buffer b = {.base = raft_malloc(total), .len = total};
        if (!b.base || n > UINT32_MAX) {
            raft_free(b.base);
            c->job_status = -ENOMEM;
        } else {
            unsigned char *p = b.base;
            memset(p, 0, total);
            put_u32le(p, ENTRY_MAGIC);
            put_u32le(p + 4, ENTRY_VERSION);
            put_u32le(p + 8, (uint32_t)n);
            put_u64le(p + 16, c->me->id);
            put_u64le(p + 24, c->incarnation);
            put_u64le(p + 32, ++c->seq);
            memcpy(p + ENTRY_HEADER, c->take.p, n);
            c->req.data = c;
            int rc = raft_apply(&c->raft, &c->req, &b, 1, apply_cb);
            if (rc == 0)
                return 0;
            raft_free(b.base);
            log_warn(c->log, "cell: cannot propose an entry: %s", raft_strerror(rc));
            c->job_status = -EIO;
        }
    }
    if (c->job_status < 0) {
        /* what was taken is lost for the others (a transfer under way, a
         * lost leadership, no memory): this member must not write on */
        log_warn(c->log, "cell: written changes could not be proposed: stopping, to start again as a follower");
        cell_fail(c, CELL_EXIT_DEMOTED);
    }
    /* nothing to propose (what came before is committed), or a failure:
     * the job ends on the next loop turn, never inside the syncer's call */
    uv_timer_start(&c->job_timer, cell_job_timer_cb, 0, 0);
    return 0;
}

void cell_flush_cb(uv_timer_t *t)
{
    struct cell *c = t->data;
    if (c->srv_up && !c->srv.stopping && cell_io_pending(&c->cio) > 0 && !syncer_busy(&c->srv.sync))
        syncer_request(&c->srv.sync, NULL);
}

void cell_fsm_init(struct cell *c)
{
    c->fsm = (struct raft_fsm){.version = 2,
                               .data = c,
                               .apply = fsm_apply,
                               .snapshot = fsm_snapshot,
                               .restore = fsm_restore,
                               .snapshot_finalize = fsm_snapshot_finalize};
}
