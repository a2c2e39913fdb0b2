/* cell_win.c: cells (src/cell/) run on libraft, which has no Windows port:
 * a cluster_id there is refused with a message (docs/platforms.md). */
#include "cell/cell.h"
#include "cell/ops.h"

#include <errno.h>
#include <stdio.h>

int cell_parse_members(const char *text, struct cell_member *out, size_t cap, char *why, size_t why_cap)
{
    (void)text;
    (void)out;
    (void)cap;
    snprintf(why, why_cap, "cells are not built for Windows");
    return -EINVAL;
}

int cell_run(struct config *cfg, struct conffile *file, struct auth_table *auth, const struct jio *io,
             const struct darner_hooks *hooks, struct log *lg)
{
    (void)cfg;
    (void)io;
    (void)hooks;
    log_error(lg, "cluster_id: cells (docs/cluster.md) are not built for Windows; run this server without it");
    conffile_free(file);
    auth_free(auth);
    log_close(lg);
    return 2;
}

int cop_path_ok(const char *p, size_t n)
{
    (void)p;
    (void)n;
    return 0; /* no cell, no cell files to serve */
}
