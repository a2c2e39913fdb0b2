/* journal/io.c: helpers over any I/O table (whole-buffer reads and writes,
 * a file's sync by path); the tables themselves are per platform family:
 * io_unix.c (Linux, the BSDs, macOS). */
#include "journal/io.h"

#include <errno.h>
#include <fcntl.h>

int jio_complete(const struct jio *io)
{
    return io->open && io->pwrite && io->pread && io->fsync && io->resize && io->close && io->unlink && io->rename &&
           io->mkdir && io->rmdir && io->fsize && io->dup && io->open_dir && io->listdir && io->size;
}

int jio_pwrite_all(const struct jio *io, int fd, const void *p, size_t n, off_t off)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = io->pwrite(io->ctx, fd, c, n, off);
        if (w < 0)
            return (int)w;
        if (w == 0)
            return -EIO;
        c += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

int jio_pread_all(const struct jio *io, int fd, void *p, size_t n, off_t off)
{
    char *c = p;
    while (n > 0) {
        ssize_t r = io->pread(io->ctx, fd, c, n, off);
        if (r < 0)
            return (int)r;
        if (r == 0)
            return -ENODATA;
        c += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

int jio_fsync_path(const struct jio *io, const char *path)
{
    int fd = io->open(io->ctx, path, O_RDONLY, 0);
    if (fd == -EISDIR) /* a folder that cannot be opened as a file (Windows) */
        fd = io->open_dir(io->ctx, path);
    if (fd == -EOPNOTSUPP)
        return 0; /* no folder sync on this platform: its entries are durable already */
    if (fd < 0)
        return fd;
    int rc = io->fsync(io->ctx, fd);
    io->close(io->ctx, fd);
    return rc;
}
