/* tests/fault/faulty_main.c: darner with fault-injecting journal system calls.
 *
 * Builds build/darner-faulty: the real server (darner_main) run with a jio
 * table that wraps jio_posix(). The wrapper is steered by files in the folder
 * named by $DARNER_FAULT_DIR, looked at before every call:
 *
 *   <dir>/open        fail file creation (open with O_CREAT) with the errno named
 *                     in the file, e.g. "ENOSPC" or "EIO"
 *   <dir>/open_any    fail every open
 *   <dir>/pwrite, <dir>/pread, <dir>/fsync, <dir>/ftruncate, <dir>/close,
 *   <dir>/unlink, <dir>/rename, <dir>/link, <dir>/mkdir, <dir>/rmdir, <dir>/fsize,
 *   <dir>/dup         fail that call with the errno named in the file
 *                     (dup: the fds the syncer takes; EMFILE is the real case)
 *   <dir>/short       pwrite writes at most 1 byte per call (content ignored)
 *   <dir>/slow_fsync  fsync sleeps that many milliseconds before it runs
 *
 * An empty or unknown errno name means EIO; a number is taken as the errno.
 * Without $DARNER_FAULT_DIR the table behaves exactly as jio_posix().
 *
 * Thread safety: fsync runs on libuv's thread pool. The wrapper keeps no
 * mutable state at all; each call only reads the control folder (open, read,
 * close on its own stack buffer), which is safe from any thread. */
#include "app.h"
#include "journal/io.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct fault_ctx {
    const struct jio *real;
    const char *dir; /* NULL: no faults */
};

static const struct {
    const char *name;
    int value;
} errno_names[] = {
    {"ENOSPC", ENOSPC}, {"EIO", EIO},       {"EDQUOT", EDQUOT}, {"EROFS", EROFS},   {"EACCES", EACCES},
    {"EPERM", EPERM},   {"ENOMEM", ENOMEM}, {"EMFILE", EMFILE}, {"ENFILE", ENFILE}, {"EFBIG", EFBIG},
    {"ENOENT", ENOENT}, {"EEXIST", EEXIST}, {"EINTR", EINTR},   {"EAGAIN", EAGAIN}, {"EBADF", EBADF},
};

/* Reads <dir>/<name> into buf (NUL-terminated, trailing whitespace cut).
 * Returns 1 if the file exists, 0 if not. Uses raw syscalls only. */
static int control_read(const struct fault_ctx *f, const char *name, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!f->dir)
        return 0;
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    if (n < 0 || (size_t)n >= sizeof(path))
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t r;
    do
        r = read(fd, buf, cap - 1);
    while (r < 0 && errno == EINTR);
    close(fd);
    size_t len = r > 0 ? (size_t)r : 0;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        len--;
    buf[len] = '\0';
    return 1;
}

/* 0 if <dir>/<name> does not exist, else the negative errno it names. */
static int fault_for(const struct fault_ctx *f, const char *name)
{
    char buf[64];
    if (!control_read(f, name, buf, sizeof(buf)))
        return 0;
    for (size_t i = 0; i < sizeof(errno_names) / sizeof(errno_names[0]); i++)
        if (strcmp(buf, errno_names[i].name) == 0)
            return -errno_names[i].value;
    char *end;
    long v = strtol(buf, &end, 10);
    if (end != buf && *end == '\0' && v > 0 && v < 4096)
        return (int)-v;
    return -EIO;
}

static int fo_open(void *ctx, const char *path, int flags, int mode)
{
    const struct fault_ctx *f = ctx;
    int rc;
    if ((flags & O_CREAT) && (rc = fault_for(f, "open")) < 0)
        return rc;
    if ((rc = fault_for(f, "open_any")) < 0)
        return rc;
    return f->real->open(f->real->ctx, path, flags, mode);
}

static ssize_t fo_pwrite(void *ctx, int fd, const void *p, size_t n, off_t off)
{
    const struct fault_ctx *f = ctx;
    int rc;
    if ((rc = fault_for(f, "pwrite")) < 0)
        return rc;
    char buf[8];
    if (n > 1 && control_read(f, "short", buf, sizeof(buf)))
        n = 1;
    return f->real->pwrite(f->real->ctx, fd, p, n, off);
}

static ssize_t fo_pread(void *ctx, int fd, void *p, size_t n, off_t off)
{
    const struct fault_ctx *f = ctx;
    int rc;
    if ((rc = fault_for(f, "pread")) < 0)
        return rc;
    return f->real->pread(f->real->ctx, fd, p, n, off);
}

static int fo_fsync(void *ctx, int fd)
{
    const struct fault_ctx *f = ctx;
    char buf[32];
    if (control_read(f, "slow_fsync", buf, sizeof(buf))) {
        long ms = strtol(buf, NULL, 10);
        if (ms > 0 && ms <= 60000) {
            struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        }
    }
    int rc;
    if ((rc = fault_for(f, "fsync")) < 0)
        return rc;
    return f->real->fsync(f->real->ctx, fd);
}

static int fo_ftruncate(void *ctx, int fd, off_t len)
{
    const struct fault_ctx *f = ctx;
    int rc;
    if ((rc = fault_for(f, "ftruncate")) < 0)
        return rc;
    return f->real->resize(f->real->ctx, fd, len);
}

static int fo_close(void *ctx, int fd)
{
    const struct fault_ctx *f = ctx;
    int rc = f->real->close(f->real->ctx, fd);
    /* A failing close still releases the fd, as close(2) does on Linux. */
    int fault = fault_for(f, "close");
    return fault < 0 ? fault : rc;
}

static int fo_unlink(void *ctx, const char *path)
{
    const struct fault_ctx *f = ctx;
    int rc;
    if ((rc = fault_for(f, "unlink")) < 0)
        return rc;
    return f->real->unlink(f->real->ctx, path);
}

static int fo_rename(void *ctx, const char *from, const char *to)
{
    const struct fault_ctx *f = ctx;
    int rc;
    if ((rc = fault_for(f, "rename")) < 0)
        return rc;
    return f->real->rename(f->real->ctx, from, to);
}

static int fo_mkdir(void *ctx, const char *path, int mode)
{
    const struct fault_ctx *f = ctx;
    int rc;
    if ((rc = fault_for(f, "mkdir")) < 0)
        return rc;
    return f->real->mkdir(f->real->ctx, path, mode);
}

static int fo_fsize(void *ctx, int fd, off_t *size)
{
    const struct fault_ctx *f = ctx;
    int rc;
    if ((rc = fault_for(f, "fsize")) < 0)
        return rc;
    return f->real->fsize(f->real->ctx, fd, size);
}

static int fo_link(void *ctx, const char *from, const char *to)
{
    const struct fault_ctx *f = ctx;
    int rc;
    if ((rc = fault_for(f, "link")) < 0)
        return rc;
    return f->real->link(f->real->ctx, from, to);
}

static int fo_rmdir(void *ctx, const char *path)
{
    const struct fault_ctx *f = ctx;
    int rc;
    if ((rc = fault_for(f, "rmdir")) < 0)
        return rc;
    return f->real->rmdir(f->real->ctx, path);
}

static int fo_dup(void *ctx, int fd)
{
    const struct fault_ctx *f = ctx;
    int rc;
    if ((rc = fault_for(f, "dup")) < 0)
        return rc;
    return f->real->dup(f->real->ctx, fd);
}

static int fo_reserve(void *ctx, int fd, off_t off, off_t len)
{
    const struct fault_ctx *f = ctx;
    int rc;
    if ((rc = fault_for(f, "reserve")) < 0)
        return rc;
    return f->real->reserve(f->real->ctx, fd, off, len);
}

static int fo_open_dir(void *ctx, const char *path) { return fo_open(ctx, path, O_RDONLY | O_DIRECTORY, 0); }

static int fo_listdir(void *ctx, const char *path, int (*each)(void *arg, const char *name), void *arg)
{
    const struct fault_ctx *f = ctx;
    int rc;
    if ((rc = fault_for(f, "listdir")) < 0)
        return rc;
    return f->real->listdir(f->real->ctx, path, each, arg);
}

static int fo_size(void *ctx, const char *path, uint64_t *size)
{
    const struct fault_ctx *f = ctx;
    return f->real->size(f->real->ctx, path, size);
}

int main(int argc, char **argv)
{
    const char *dir = getenv("DARNER_FAULT_DIR");
    static struct fault_ctx fctx;
    fctx.real = jio_posix();
    fctx.dir = dir && *dir ? dir : NULL;
    const struct jio table = {
        .ctx = &fctx,
        .open = fo_open,
        .pwrite = fo_pwrite,
        .pread = fo_pread,
        .fsync = fo_fsync,
        .resize = fo_ftruncate,
        .close = fo_close,
        .unlink = fo_unlink,
        .rename = fo_rename,
        .link = fo_link,
        .mkdir = fo_mkdir,
        .rmdir = fo_rmdir,
        .fsize = fo_fsize,
        .dup = fo_dup,
        .reserve = fo_reserve,
        .open_dir = fo_open_dir,
        .listdir = fo_listdir,
        .size = fo_size,
    };
    return darner_main(argc, argv, &table);
}
