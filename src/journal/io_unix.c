/* journal/io_unix.c: the I/O table of the Unix family (Linux, FreeBSD and
 * the other BSDs, macOS): POSIX calls, with what differs between them chosen
 * once, at the top, never inside a function. docs/platforms.md says what
 * each gives for durability. */
#include "journal/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__APPLE__)
/* macOS: fsync and fdatasync stop at the drive's cache; F_FULLFSYNC asks
 * the drive to write it out (Apple's fsync(2)). */
static int data_sync(int fd) { return fcntl(fd, F_FULLFSYNC); }
#elif defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__)
/* Data and the metadata needed to read it back (size), not times. */
static int data_sync(int fd) { return fdatasync(fd); }
#else
static int data_sync(int fd) { return fsync(fd); }
#endif

#if defined(__linux__)
/* Blocks for [off, off + len) without changing the size. */
static int reserve(int fd, off_t off, off_t len)
{
    return fallocate(fd, FALLOC_FL_KEEP_SIZE, off, len) < 0 ? -errno : 0;
}
#else
/* posix_fallocate would change the size: nothing to reserve ahead here. */
static int reserve(int fd, off_t off, off_t len)
{
    (void)fd;
    (void)off;
    (void)len;
    return -EOPNOTSUPP;
}
#endif

static int px_open(void *ctx, const char *path, int flags, int mode)
{
    (void)ctx;
    int fd = open(path, flags | O_CLOEXEC, mode);
    return fd < 0 ? -errno : fd;
}

static ssize_t px_pwrite(void *ctx, int fd, const void *p, size_t n, off_t off)
{
    (void)ctx;
    ssize_t r;
    do
        r = pwrite(fd, p, n, off);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

static ssize_t px_pread(void *ctx, int fd, void *p, size_t n, off_t off)
{
    (void)ctx;
    ssize_t r;
    do
        r = pread(fd, p, n, off);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -errno : r;
}

static int px_fsync(void *ctx, int fd)
{
    (void)ctx;
    return data_sync(fd) < 0 ? -errno : 0;
}

static int px_ftruncate(void *ctx, int fd, off_t len)
{
    (void)ctx;
    return ftruncate(fd, len) < 0 ? -errno : 0;
}

static int px_close(void *ctx, int fd)
{
    (void)ctx;
    return close(fd) < 0 ? -errno : 0;
}

static int px_unlink(void *ctx, const char *path)
{
    (void)ctx;
    return unlink(path) < 0 ? -errno : 0;
}

static int px_rename(void *ctx, const char *from, const char *to)
{
    (void)ctx;
    return rename(from, to) < 0 ? -errno : 0;
}

static int px_link(void *ctx, const char *from, const char *to)
{
    (void)ctx;
    return link(from, to) < 0 ? -errno : 0;
}

static int px_mkdir(void *ctx, const char *path, int mode)
{
    (void)ctx;
    return mkdir(path, (mode_t)mode) < 0 ? -errno : 0;
}

static int px_rmdir(void *ctx, const char *path)
{
    (void)ctx;
    return rmdir(path) < 0 ? -errno : 0;
}

static int px_fsize(void *ctx, int fd, off_t *size)
{
    (void)ctx;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    *size = st.st_size;
    return 0;
}

static int px_dup(void *ctx, int fd)
{
    (void)ctx;
    int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    return d < 0 ? -errno : d;
}

static int px_reserve(void *ctx, int fd, off_t off, off_t len)
{
    (void)ctx;
    return reserve(fd, off, len);
}

static int px_open_dir(void *ctx, const char *path)
{
    (void)ctx;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

static int px_listdir(void *ctx, const char *path, int (*each)(void *arg, const char *name), void *arg)
{
    (void)ctx;
    DIR *d = opendir(path);
    if (!d)
        return -errno;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            rc = each(arg, e->d_name);
    closedir(d);
    return rc;
}

static int px_size(void *ctx, const char *path, uint64_t *size)
{
    (void)ctx;
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    *size = (uint64_t)st.st_size;
    return 0;
}

static const struct jio posix_table = {
    .ctx = NULL,
    .open = px_open,
    .pwrite = px_pwrite,
    .pread = px_pread,
    .fsync = px_fsync,
    .resize = px_ftruncate,
    .close = px_close,
    .unlink = px_unlink,
    .rename = px_rename,
    .link = px_link,
    .mkdir = px_mkdir,
    .rmdir = px_rmdir,
    .fsize = px_fsize,
    .dup = px_dup,
    .reserve = px_reserve,
    .open_dir = px_open_dir,
    .listdir = px_listdir,
    .size = px_size,
};

const struct jio *jio_posix(void) { return &posix_table; }
