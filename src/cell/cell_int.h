/* cell/cell_int.h: a cell member's insides, shared by cell.c (roles, start
 * and end) and fsm.c (the state machine and the leader's commits) only. */
#ifndef DARNER_CELL_CELL_INT_H
#define DARNER_CELL_CELL_INT_H

#include "cell/cell.h"
#include "cell/io.h"
#include "cell/ops.h"
#include "cell/relay.h"
#include "cell/transport.h"
#include "server.h"

#include <raft.h>
#include <raft/uv.h>

/* An entry: this header, the operations (cell/ops.h), zeros to a multiple
 * of 8 bytes (libraft 0.15 reads other lengths back wrong: #189). */
#define ENTRY_MAGIC 0x434e5244u /* "DRNC" */
#define ENTRY_VERSION 1
#define ENTRY_HEADER 40
/* The most bytes one cellfile request may ask a follower for. */
#define CELL_FILE_MAX (4u << 20)

enum role { ROLE_FOLLOWER, ROLE_ELECTED, ROLE_LEADER, ROLE_STOPPING };

struct cell {
    uv_loop_t *loop;
    struct config *cfg;
    struct log *log;
    struct cell_member members[CELL_MAX_MEMBERS];
    size_t nmembers;
    const struct cell_member *me;
    char root[4096]; /* the data folder */
    const struct jio *real_io;

    struct raft raft;
    struct raft_io rio;
    struct cell_transport transport; /* libraft's TCP, with TCP_NODELAY */
    struct raft_fsm fsm;
    int raft_up, raft_closed;

    struct cop_applier *applier; /* applies entries; knows what the next snapshot must fsync */
    struct cop_state *state;     /* the committed files */
    int reconciled;              /* the files were brought back to the last snapshot (or none) */
    int install_pending;         /* a catch-up from files was cut short: done again before applying */
    uint64_t incarnation;        /* this process's: its own entries are not applied again */
    uint64_t seq;                /* entries proposed by this process */
    uint64_t last_inc, last_seq; /* of the last entry applied */

    struct relay relay;
    int relay_up;
    uv_timer_t poll;  /* watches the role */
    uv_timer_t flush; /* a leader's timer's writes reach the others */
    uv_signal_t sigs[2];
    int handles; /* open handles of ours, for the end */

    enum role role;
    struct raft_barrier barrier;
    struct raft_transfer transfer;
    int transferring;
    struct raft_change change; /* a change of members (one at a time) */
    uint64_t change_id;
    int changing;
    int members_dirty; /* an entry wrote the members' file: read it again */
    struct server srv;
    int srv_up;
    struct cell_io cio;
    int cio_up;
    struct conffile *file; /* the server's once it starts */
    struct auth_table *auth;
    const struct darner_hooks *hooks;

    /* the syncer's job: one entry in flight */
    struct raft_apply req;
    struct syncer *job;
    int job_status;
    uv_timer_t job_timer;  /* completes a job that proposed nothing, or failed to */
    uv_timer_t fail_timer; /* stops the member after a Raft callback said it must (never inside one) */
    struct cop_buf take;

    int exit_code;
    int failed; /* a Raft callback failed: the member stops, and applies nothing more */
    uint64_t applied_entries, applied_ops;
    uint64_t snap_bytes, snap_entries; /* entries applied since the last snapshot, and their bytes */
};

/* cell.c */
void cell_stop(struct cell *c, int code);
/* From inside a callback of the Raft library: the member stops on the next
 * loop turn (closing Raft from inside its own callback is not safe). */
void cell_fail(struct cell *c, int code);
/* The leader's memcache address (relay_target_fn). */
int cell_leader_target(void *ctx, char *host, size_t cap, int *port);

/* membership.c */
/* Reads the members' file (CELL) if there is one. Returns 0 or -errno. */
int cell_members_load(struct cell *c);
/* A leader adds a member (spec "ID@HOST:RAFT_PORT:PORT"), which catches up
 * and then votes; removes one; hands its leadership over (id 0: to the most
 * caught-up). Each returns 0 once started, or -errno with why[] filled. */
int cell_member_add(struct cell *c, const char *spec, char *why, size_t cap);
int cell_member_remove(struct cell *c, uint64_t id, char *why, size_t cap);
int cell_leader_transfer(struct cell *c, uint64_t id, char *why, size_t cap);
/* struct server's cluster_change: "add SPEC", "remove ID", "transfer [ID]". */
int cell_change(void *ctx, const char *words, size_t n, char *why, size_t cap);

/* fsm.c */
/* The state machine libraft calls (version 2). */
void cell_fsm_init(struct cell *c);
/* No snapshot was restored at start: the data folder is cleared, the log
 * makes it again. Returns 0 or -errno. */
int cell_reconcile_empty(struct cell *c);
/* The syncer's job on a leader (struct syncer.commit). */
int cell_commit(void *ctx, struct syncer *s);
/* Ends the running job with status (0: committed). */
void cell_job_end(struct cell *c, int status);
void cell_job_timer_cb(uv_timer_t *t);
void cell_flush_cb(uv_timer_t *t);

#endif
