/* cell/ops_int.h: what cell/ops.c and cell/state.c share: the file-system
 * helpers under a folder's fd. Internal to src/cell/. */
#ifndef DARNER_CELL_OPS_INT_H
#define DARNER_CELL_OPS_INT_H

#include <stddef.h>

/* Removes name (relative to dirfd) whatever it is, a folder with everything
 * in it. Absent: 0. Returns 0 or -errno. */
int cop_rmtree_at(int dirfd, const char *name);

/* Whether a top-level name (n bytes) is a queue's delete, "d-...". */
static inline int cop_is_delete_name(const char *p, size_t n)
{
    if (n < 2 || p[0] != 'd' || p[1] != '-')
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] == '/')
            return 0;
    return 1;
}

#endif
