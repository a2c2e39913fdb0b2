/* cell/install.h: a member that is further behind than the entries its
 * leader keeps gets a snapshot, which lists files (cell/ops.h), not their
 * bytes; it fetches what its own files lack from the leader's memcache port
 * (`cellfile`, docs/cluster.md), through fixed buffers, so catching up any
 * backlog takes the same memory. Blocking: it runs inside the Raft
 * library's restore callback, which must finish before the entries after
 * the snapshot are applied. */
#ifndef DARNER_CELL_INSTALL_H
#define DARNER_CELL_INSTALL_H

#include <stdint.h>

#include "cell/ops.h"
#include "log.h"

struct cell_install_stats {
    uint64_t files; /* fetched in whole or in part */
    uint64_t bytes;
};

/* Makes the files under root those of st: for each file, the bytes it lacks
 * are fetched from host:port (a file whose start differs is fetched whole,
 * into tmp/ and renamed over it); then what st does not hold is removed and
 * what is longer cut (cst_reconcile), and everything st holds is fsynced
 * (through a). Returns 0 or -errno (logged). */
int cell_install(const struct cop_state *st, const char *root, const char *host, int port, struct cop_applier *a,
                 const struct log *log, struct cell_install_stats *out);

#endif
