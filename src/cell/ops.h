/* cell/ops.h: the file operations a cell replicates (docs/cluster.md).
 *
 * A cell's leader runs the journal as a single server does; every change
 * the journal makes to its data folder (a write, a new size, a new or
 * removed file or folder, a rename, a link) is recorded as an operation,
 * and the operations of a loop turn travel in one Raft entry. Every member
 * applies committed entries to its own data folder, so its files follow the
 * leader's, one committed prefix after another. Paths are relative to the
 * data folder, '/'-separated.
 *
 * Applying is convergent: replaying a run of operations over files that
 * already went further (a restart replays the entries after the last
 * snapshot) ends in the same files as applying them once. The rules that
 * make it so are on each kind below. */
#ifndef DARNER_CELL_OPS_H
#define DARNER_CELL_OPS_H

#include <stddef.h>
#include <stdint.h>

enum cop_kind {
    COP_WRITE = 1,  /* path, off, data[len]: the bytes written at off (file and parent folders made if absent) */
    COP_RESIZE = 2, /* path, len: the file's size set (made if absent) */
    COP_CREATE = 3, /* path: the file made if absent (open with O_CREAT); contents untouched */
    COP_UNLINK = 4, /* path: the file removed (absent: nothing to do) */
    COP_MKDIR = 5,  /* path: the folder and its parents made (present: nothing to do) */
    COP_RMDIR = 6,  /* path: the folder removed with whatever is in it (replayed, it may hold
                     * files of later operations; they are all made again after it) */
    COP_RENAME = 7, /* path -> path2: absent source: nothing to do (done before). A file replaces
                     * path2; a folder onto a folder that exists: the source is removed and
                     * path2 kept (a replay: path2 is that folder gone further). A folder renamed
                     * to a top-level "d-..." name (a queue's delete) is then removed, on every
                     * member */
    COP_LINK = 8,   /* path -> path2: a hard link; absent source or present path2: nothing to do */
};

/* Bit of cop.flags: the leader did not make this change to its own files
 * when the journal asked, and makes it when the entry is committed (a
 * removal that must not happen before the records that allow it are
 * committed; docs/cluster.md). */
#define COP_F_DEFERRED 1u

struct cop {
    enum cop_kind kind;
    uint32_t flags;
    const char *path; /* not NUL-terminated; path_len bytes */
    size_t path_len;
    const char *path2; /* RENAME, LINK */
    size_t path2_len;
    uint64_t off;     /* WRITE */
    uint64_t len;     /* WRITE: bytes of data; RESIZE: the size */
    const void *data; /* WRITE */
};

/* The longest path an operation may name, in bytes. */
#define COP_PATH_MAX 1024

/* A growing buffer of encoded operations (cell/ops.c describes the
 * encoding). Zero-initialized, it is empty. */
struct cop_buf {
    unsigned char *p;
    size_t len, cap;
    size_t nops;
};

/* Whether a path may be named by an operation: relative, '/'-separated,
 * no empty, "." or ".." component, no NUL, at most 1024 bytes, and not in
 * the member's own folders ("raft" and "tmp" at the top, and what is under
 * them). Returns 1 or 0. */
int cop_path_ok(const char *p, size_t n);

/* Appends op, copied. Returns 0 or -errno (-EINVAL: a path cop_path_ok
 * refuses; -ENOMEM). */
int cop_append(struct cop_buf *b, const struct cop *op);
void cop_buf_reset(struct cop_buf *b); /* empty, memory kept */
void cop_buf_free(struct cop_buf *b);

/* Decodes the operation at p[*pos..len) into *out (its pointers into p) and
 * moves *pos past it. Returns 1, 0 at the end, or -EBADMSG (damaged or
 * truncated encoding, a path cop_path_ok refuses, an unknown kind). */
int cop_next(const unsigned char *p, size_t len, size_t *pos, struct cop *out);

/* Applies operations to the files under a root folder, keeping a few files
 * open between operations. Single-threaded. */
struct cop_applier;
int cop_applier_new(struct cop_applier **out, const char *root);
/* Applies op by the rules above. Returns 0 or -errno (a failure of the file
 * system: the caller stops the member). */
int cop_apply(struct cop_applier *a, const struct cop *op);
/* fsyncs every file and folder changed since the last call (by this applier
 * or noted with cop_applier_touch), then forgets them. Returns 0 or -errno. */
int cop_applier_sync(struct cop_applier *a);
/* Notes a path (relative to the root) changed by someone else (the leader's
 * own journal), for the next cop_applier_sync; the applier's open files at
 * or under it are closed (it may name another file now). Returns 0 or
 * -ENOMEM. */
int cop_applier_touch(struct cop_applier *a, const char *path, size_t n);
void cop_applier_free(struct cop_applier *a); /* accepts NULL */

/* ---- the committed state, and the snapshot's manifest ----
 *
 * What the files are after the last committed entry: for each file its size
 * and the first bytes of it (up to COP_HEAD), for each folder that it is
 * there. Kept up to date by cst_apply with every committed operation, so a
 * leader (whose files run ahead of what is committed) can say what the
 * committed files are. */
#define COP_HEAD 64
struct cop_state;
int cst_new(struct cop_state **out);
void cst_free(struct cop_state *st); /* accepts NULL */
/* The change op makes to the committed state. Returns 0 or -ENOMEM. */
int cst_apply(struct cop_state *st, const struct cop *op);
size_t cst_count(const struct cop_state *st); /* files and folders */
/* The state as a manifest (a snapshot's content): *out (malloc'd) and *n.
 * Returns 0 or -ENOMEM. */
int cst_encode(const struct cop_state *st, void **out, size_t *n);
/* The state a manifest describes (the current one is replaced). Returns 0,
 * -EBADMSG or -ENOMEM. */
int cst_decode(struct cop_state *st, const void *p, size_t n);

/* One file or folder of a state, for cst_each. */
struct cst_item {
    const char *path; /* NUL-terminated */
    size_t path_len;
    int dir;
    uint64_t size;
    const unsigned char *head; /* head_len bytes: min(size, COP_HEAD) */
    size_t head_len;
};
/* Calls fn for every file and folder of st, in path order (a folder before
 * what is in it), until fn returns nonzero, which it then returns. Returns
 * 0, that value, or -ENOMEM. */
int cst_each(const struct cop_state *st, int (*fn)(void *arg, const struct cst_item *it), void *arg);

/* Brings the files under root back to the state st (a member's own last
 * snapshot) where they went further than it, before the entries after that
 * snapshot are applied again: what st does not hold is removed (files made
 * later are made again by those entries); a file larger than st says is cut
 * to its size; a file whose first bytes differ from st's (rewritten from its
 * start later) is cut to size 0. Files and folders st holds that are absent
 * or smaller are left: later committed entries removed or cut them. "raft"
 * and "tmp" at the top are never touched. Returns 0 or -errno. */
int cst_reconcile(const struct cop_state *st, const char *root);

#endif
