/* cell/cell.h: a member of a replicated cell (docs/cluster.md).
 *
 * The member runs one Raft group member (libraft) on its loop. While it
 * follows, its memcache port relays clients to the leader (cell/relay.h) and
 * it applies committed entries to its data folder. When it is elected, it
 * waits until every earlier entry is applied, then opens its queues and
 * serves as a single server does, its journals' changes proposed through
 * Raft (cell/io.h) and every answer that reports a change sent once that
 * change is committed. A leader that loses its leadership stops (exit code
 * CELL_EXIT_DEMOTED) so that it starts again as a follower from what the
 * cell committed. */
#ifndef DARNER_CELL_CELL_H
#define DARNER_CELL_CELL_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "auth.h"
#include "conffile.h"
#include "config.h"
#include "log.h"

/* The exit code of a member that stopped leading: start it again (the
 * systemd unit and scripts/cell do). EX_TEMPFAIL. */
#define CELL_EXIT_DEMOTED 75

#define CELL_MAX_MEMBERS 9

struct cell_member {
    uint64_t id;
    char host[64];      /* numeric address */
    int raft_port;      /* members replicate here */
    int port;           /* its memcache port */
    char raft_addr[80]; /* "host:raft_port", the Raft library's address */
};

/* Parses cluster_members ("ID@HOST:RAFT_PORT:PORT,..."). Returns the
 * number of members (>= 1) or -EINVAL with why[] filled. */
int cell_parse_members(const char *text, struct cell_member *out, size_t cap, char *why, size_t why_cap);

struct darner_hooks;
/* Runs this process as member cfg->cluster_id of its cell until it is
 * stopped (SIGTERM, SIGINT) or stops leading. file, auth and lg's stream
 * are ours (freed or closed here). Returns the exit code. */
int cell_run(struct config *cfg, struct conffile *file, struct auth_table *auth, const struct jio *io,
             const struct darner_hooks *hooks, struct log *lg);

#endif
