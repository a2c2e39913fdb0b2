/* cell/membership.c: a cell's members, added and removed online
 * (docs/cluster.md, "Members").
 *
 * The Raft library keeps the configuration (ids and Raft addresses); the
 * members' memcache ports, which relays and clients need, are kept in a
 * file of the data folder, CELL ("ID@HOST:RAFT_PORT:PORT,..." as
 * cluster_members), written by the leader through its recording syscall
 * table, so it reaches every member as any other file does. */
#include "cell/cell_int.h"

#include "util/errstr.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEMBERS_FILE "CELL"

/* Re-points c->me after the table changed; 0, or -ENOENT when this member
 * is not in it (it was removed). */
static int find_me(struct cell *c)
{
    for (size_t i = 0; i < c->nmembers; i++)
        if (c->members[i].id == c->cfg->cluster_id) {
            c->me = &c->members[i];
            return 0;
        }
    return -ENOENT;
}

int cell_members_load(struct cell *c)
{
    char path[4200], text[4096], why[256];
    snprintf(path, sizeof(path), "%s/" MEMBERS_FILE, c->root);
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? 0 : -errno;
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    struct cell_member m[CELL_MAX_MEMBERS];
    int k = cell_parse_members(text, m, CELL_MAX_MEMBERS, why, sizeof(why));
    if (k < 0) {
        log_warn(c->log, "cell: %s: %s (the members stay as they were)", path, why);
        return -EBADMSG;
    }
    /* this member keeps its own entry whatever: it must go on serving its
     * port until it is told otherwise */
    struct cell_member self = *c->me;
    int has_me = 0;
    for (int i = 0; i < k; i++)
        has_me |= m[i].id == self.id;
    if (!has_me && k == CELL_MAX_MEMBERS)
        return 0; /* no room to keep this member's own entry: the table stays */
    memcpy(c->members, m, (size_t)k * sizeof(m[0]));
    c->nmembers = (size_t)k;
    if (find_me(c) < 0 && c->nmembers < CELL_MAX_MEMBERS) {
        c->members[c->nmembers++] = self;
        find_me(c);
        log_warn(c->log, "cell: member %" PRIu64 " is no longer one of the cell's members", self.id);
    }
    return 0;
}

/* The table as cluster_members' text. */
static void members_text(const struct cell_member *m, size_t n, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%" PRIu64 "@%s:%d:%d", i ? "," : "", m[i].id, m[i].host,
                                m[i].raft_port, m[i].port);
}

/* The leader writes the table m (through its recording table: the file
 * reaches every member) and takes it as its own. */
static int members_write(struct cell *c, const struct cell_member *m, size_t n)
{
    const struct jio *io = &c->srv.io.table;
    char path[4200], tmp[4200], text[4096];
    snprintf(path, sizeof(path), "%s/" MEMBERS_FILE, c->root);
    snprintf(tmp, sizeof(tmp), "%s/" MEMBERS_FILE ".tmp", c->root);
    members_text(m, n, text, sizeof(text) - 1);
    strcat(text, "\n");
    int fd = io->open(io->ctx, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return fd;
    int rc = jio_pwrite_all(io, fd, text, strlen(text), 0);
    io->close(io->ctx, fd);
    if (rc == 0)
        rc = io->rename(io->ctx, tmp, path);
    if (rc < 0)
        return rc;
    memcpy(c->members, m, n * sizeof(m[0]));
    c->nmembers = n;
    find_me(c);
    syncer_request(&c->srv.sync, NULL); /* on its way now */
    return 0;
}

/* The members' file without id (a change that did not happen, a member
 * removed). */
static void members_drop(struct cell *c, uint64_t id)
{
    struct cell_member t[CELL_MAX_MEMBERS];
    size_t n = 0;
    for (size_t i = 0; i < c->nmembers; i++)
        if (c->members[i].id != id)
            t[n++] = c->members[i];
    int rc = n < c->nmembers ? members_write(c, t, n) : 0;
    if (rc < 0)
        log_warn(c->log, "cell: cannot write the members' file: %s", errstr(rc));
}

static void assigned(struct raft_change *req, int status)
{
    struct cell *c = req->data;
    c->changing = 0;
    if (status != 0)
        log_warn(c->log, "cell: member %" PRIu64 " could not be made a voter: %s", c->change_id, raft_strerror(status));
    else
        log_info(c->log, "cell: member %" PRIu64 " caught up and votes", c->change_id);
}

static void added(struct raft_change *req, int status)
{
    struct cell *c = req->data;
    if (status != 0 || c->role != ROLE_LEADER) {
        log_warn(c->log, "cell: member %" PRIu64 " was not added: %s", c->change_id,
                 status ? raft_strerror(status) : "no longer the leader");
        c->changing = 0;
        if (c->role == ROLE_LEADER)
            members_drop(c, c->change_id);
        return;
    }
    /* the library catches it up before it counts as a voter */
    int rc = raft_assign(&c->raft, &c->change, c->change_id, RAFT_VOTER, assigned);
    if (rc != 0) {
        log_warn(c->log, "cell: member %" PRIu64 " cannot be made a voter: %s", c->change_id, raft_strerror(rc));
        c->changing = 0;
    }
}

static void removed(struct raft_change *req, int status)
{
    struct cell *c = req->data;
    c->changing = 0;
    if (status != 0) {
        log_warn(c->log, "cell: member %" PRIu64 " was not removed: %s", c->change_id, raft_strerror(status));
        return;
    }
    log_info(c->log, "cell: member %" PRIu64 " removed", c->change_id);
    if (c->role == ROLE_LEADER)
        members_drop(c, c->change_id); /* the members' file follows the configuration */
}

/* Whether a change can start; else why (one at a time, by the leader). */
static int can_change(struct cell *c, char *why, size_t cap)
{
    if (c->role != ROLE_LEADER) {
        snprintf(why, cap, "this member does not lead the cell");
        return 0;
    }
    if (c->changing || c->transferring) {
        snprintf(why, cap, "a change of members or of leader is under way; wait for it");
        return 0;
    }
    return 1;
}

int cell_member_add(struct cell *c, const char *spec, char *why, size_t cap)
{
    struct cell_member m;
    int n = cell_parse_members(spec, &m, 1, why, cap);
    if (n < 0)
        return n;
    if (!can_change(c, why, cap))
        return -EBUSY;
    if (c->nmembers == CELL_MAX_MEMBERS) {
        snprintf(why, cap, "a cell has at most %d members", CELL_MAX_MEMBERS);
        return -ENOSPC;
    }
    /* added before, and not a voter yet (its catch-up failed: it was
     * stopped, or took too long): made a voter again */
    for (unsigned i = 0; i < c->raft.configuration.n; i++) {
        const struct raft_server *sv = &c->raft.configuration.servers[i];
        if (sv->id == m.id && strcmp(sv->address, m.raft_addr) == 0 && sv->role != RAFT_VOTER) {
            c->changing = 1;
            c->change_id = m.id;
            c->change.data = c;
            int rc = raft_assign(&c->raft, &c->change, m.id, RAFT_VOTER, assigned);
            if (rc != 0) {
                c->changing = 0;
                snprintf(why, cap, "%s", raft_strerror(rc));
                return -EIO;
            }
            log_info(c->log, "cell: member %" PRIu64 " is caught up again to vote", m.id);
            return 0;
        }
    }
    for (size_t i = 0; i < c->nmembers; i++)
        if (c->members[i].id == m.id || strcmp(c->members[i].raft_addr, m.raft_addr) == 0) {
            snprintf(why, cap,
                     "member %" PRIu64 " or address %s is in the cell already (a rebuilt member takes a new id)", m.id,
                     m.raft_addr);
            return -EEXIST;
        }
    c->changing = 1;
    c->change_id = m.id;
    c->change.data = c;
    int rc = raft_add(&c->raft, &c->change, m.id, m.raft_addr, added);
    if (rc != 0) {
        c->changing = 0;
        snprintf(why, cap, "%s", raft_strerror(rc));
        return -EIO;
    }
    /* its memcache port for the relays and clients (dropped again if the
     * library does not add it) */
    struct cell_member t[CELL_MAX_MEMBERS];
    memcpy(t, c->members, c->nmembers * sizeof(t[0]));
    t[c->nmembers] = m;
    if ((rc = members_write(c, t, c->nmembers + 1)) < 0)
        log_warn(c->log, "cell: cannot write the members' file: %s", errstr(rc));
    log_info(c->log, "cell: adding member %" PRIu64 " (%s)", m.id, m.raft_addr);
    return 0;
}

int cell_member_remove(struct cell *c, uint64_t id, char *why, size_t cap)
{
    if (!can_change(c, why, cap))
        return -EBUSY;
    if (id == c->me->id) {
        snprintf(why, cap, "the leader cannot remove itself; hand the leadership over first (cluster_transfer)");
        return -EINVAL;
    }
    c->changing = 1;
    c->change_id = id;
    c->change.data = c;
    int rc = raft_remove(&c->raft, &c->change, id, removed);
    if (rc != 0) {
        c->changing = 0;
        if (rc == RAFT_BADID)
            members_drop(c, id); /* not in the configuration: not a member */
        snprintf(why, cap, "%s", rc == RAFT_BADID ? "no such member" : raft_strerror(rc));
        return -ENOENT;
    }
    log_info(c->log, "cell: removing member %" PRIu64, id);
    return 0;
}

static void transferred(struct raft_transfer *req)
{
    struct cell *c = req->data;
    c->transferring = 0;
}

int cell_leader_transfer(struct cell *c, uint64_t id, char *why, size_t cap)
{
    if (c->role != ROLE_LEADER || c->transferring) {
        snprintf(why, cap, c->transferring ? "a hand-over is under way" : "this member does not lead the cell");
        return -EBUSY;
    }
    c->transferring = 1;
    c->transfer.data = c;
    int rc = raft_transfer(&c->raft, &c->transfer, id, transferred);
    if (rc != 0) {
        c->transferring = 0;
        snprintf(why, cap, "%s", raft_strerror(rc));
        return -EINVAL;
    }
    return 0;
}

int cell_change(void *ctx, const char *words, size_t n, char *why, size_t cap)
{
    struct cell *c = ctx;
    char text[512], verb[16], arg[400];
    if (n >= sizeof(text)) {
        snprintf(why, cap, "cluster: too long");
        return -EINVAL;
    }
    memcpy(text, words, n);
    text[n] = '\0';
    arg[0] = '\0';
    int k = sscanf(text, "%15s %399s", verb, arg);
    char *end;
    unsigned long long id = k == 2 ? strtoull(arg, &end, 10) : 0;
    int id_ok = k == 2 && *end == '\0' && id > 0;
    if (k == 2 && strcmp(verb, "add") == 0)
        return cell_member_add(c, arg, why, cap);
    if (strcmp(verb, "remove") == 0 && id_ok)
        return cell_member_remove(c, id, why, cap);
    if (strcmp(verb, "transfer") == 0 && (k == 1 || id_ok))
        return cell_leader_transfer(c, k == 1 ? 0 : id, why, cap);
    snprintf(why, cap, "cluster: add ID@HOST:RAFT_PORT:PORT, remove ID or transfer [ID]");
    return -EINVAL;
}
