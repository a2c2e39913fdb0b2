/* cell/io.h: the journal's syscall table on a cell's leader (docs/cluster.md).
 *
 * Every call passes to the real table; each change to a file or folder
 * under the data folder is also recorded as an operation (cell/ops.h) in a
 * pending buffer, which the cell proposes as one Raft entry (cell_io_take).
 * Removals (unlink, rmdir, a queue folder's rename to d-...) are recorded
 * but not made: the leader makes them when their entry is committed
 * (cell_io_deferred), so its own files never lose what the committed state
 * still needs. Files under tmp/ stay local. */
#ifndef DARNER_CELL_IO_H
#define DARNER_CELL_IO_H

#include <stdint.h>
#include <uv.h>

#include "cell/ops.h"
#include "journal/io.h"
#include "log.h"

struct cell_io_deferred;

struct cell_io {
    struct jio table;        /* what the journal calls (ctx: this) */
    const struct jio *inner; /* the real calls (borrowed) */
    const struct log *log;
    char *root; /* the data folder as the journal names it (ours) */
    size_t root_len;
    uv_mutex_t lock; /* everything below: the thread pool opens and closes files too */
    char **fdpath;   /* by fd: the path (relative, ours) of a file open for writing, else NULL */
    int nfdpath;
    struct cop_buf pending;         /* recorded, not yet proposed */
    struct cop_applier *touch;      /* notes the paths written, for the snapshot's fsync (borrowed) */
    struct cell_io_deferred *defer; /* removals not yet made, by path */
    size_t ndefer, capdefer;
    int fenced;   /* every change refused (this member no longer leads) */
    int err;      /* the first failure to record (-ENOMEM): the cell stops */
    uint64_t ops; /* operations recorded, for stats */
};

/* Makes the table. root is copied; inner and touch are borrowed. Returns 0
 * or -errno. */
int cell_io_init(struct cell_io *c, const struct jio *inner, const char *root, struct cop_applier *touch,
                 const struct log *log);
void cell_io_free(struct cell_io *c);

/* Moves the pending operations into *out (emptied first); returns how many
 * bytes they take (0: none pending). */
size_t cell_io_take(struct cell_io *c, struct cop_buf *out);
/* Bytes pending. */
size_t cell_io_pending(struct cell_io *c);
/* A removal this table recorded without making it is committed: makes it
 * with a, unless the journal made the path again since (then its removal is
 * already as good as done). Returns 0 or -errno. */
int cell_io_deferred(struct cell_io *c, struct cop_applier *a, const struct cop *op);
/* From now on every change fails with -EROFS. */
void cell_io_fence(struct cell_io *c);

#endif
