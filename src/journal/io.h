/* journal/io.h: the journal's system calls, as a replaceable table.
 *
 * Every file operation of the journal goes through one of these, so tests can
 * inject ENOSPC, EIO and short writes. Each returns >= 0 on success or a
 * negative errno; none touches errno-as-global semantics for callers. */
#ifndef DARNER_JOURNAL_IO_H
#define DARNER_JOURNAL_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct jio {
    void *ctx; /* for injecting tables; the POSIX table ignores it */
    int (*open)(void *ctx, const char *path, int flags, int mode); /* fd */
    ssize_t (*pwrite)(void *ctx, int fd, const void *p, size_t n, off_t off);
    ssize_t (*pread)(void *ctx, int fd, void *p, size_t n, off_t off);
    int (*fsync)(void *ctx, int fd);
    /* Sets the file's size to len (ftruncate; a name of its own, as C runtimes
     * define ftruncate as a macro). */
    int (*resize)(void *ctx, int fd, off_t len);
    int (*close)(void *ctx, int fd);
    int (*unlink)(void *ctx, const char *path);
    int (*rename)(void *ctx, const char *from, const char *to);
    /* A second name for the file from (a hard link); NULL or -EOPNOTSUPP
     * where the platform has none. */
    int (*link)(void *ctx, const char *from, const char *to);
    int (*mkdir)(void *ctx, const char *path, int mode);
    int (*rmdir)(void *ctx, const char *path);
    int (*fsize)(void *ctx, int fd, off_t *size);
    /* A new fd for the same open file (close-on-exec): the syncer syncs
     * these while the journal goes on using its own. */
    int (*dup)(void *ctx, int fd);
    /* Reserves disk blocks for [off, off + len) without changing the file's
     * size; -EOPNOTSUPP where the platform cannot. */
    int (*reserve)(void *ctx, int fd, off_t off, off_t len);
    /* An fd whose fsync makes the folder's entries (new, renamed and
     * removed files) durable; -EOPNOTSUPP where the platform has no such
     * thing (Windows: entries are made durable by the calls themselves), and
     * then there is nothing to sync. */
    int (*open_dir)(void *ctx, const char *path);
    /* Calls each(arg, name) for every entry of the folder at path but "."
     * and "..", in no order, until each returns nonzero, which it then
     * returns. Returns 0, that value, or -errno. */
    int (*listdir)(void *ctx, const char *path, int (*each)(void *arg, const char *name), void *arg);
    /* The size of the file at path. Returns 0 or -errno. */
    int (*size)(void *ctx, const char *path, uint64_t *size);
};

/* Whether every operation a journal needs is in io (link and reserve may
 * be missing): a wrapper table that forgets one is refused, not called. */
int jio_complete(const struct jio *io);

/* The real system calls. */
const struct jio *jio_posix(void);

/* Writes all n bytes at off, retrying short writes. Returns 0 or -errno
 * (a write that makes no progress reports -EIO). */
int jio_pwrite_all(const struct jio *io, int fd, const void *p, size_t n, off_t off);
/* Opens path read-only, fsyncs it and closes it; a folder that the
 * platform cannot open as a file (-EISDIR) goes through open_dir, and is
 * done where that answers -EOPNOTSUPP. Returns 0, -ENOENT when it is gone
 * (a file deleted since needs no sync), or -errno. */
int jio_fsync_path(const struct jio *io, const char *path);
/* Reads exactly n bytes at off. Returns 0, -ENODATA at end of file, or -errno. */
int jio_pread_all(const struct jio *io, int fd, void *p, size_t n, off_t off);

#endif
