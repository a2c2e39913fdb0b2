/* io_stats.c: the counting I/O table (io_stats.h). */
#include "journal/io_stats.h"

#include <errno.h>
#include <uv.h>

const uint64_t io_stats_bucket_us[IO_STATS_BUCKETS] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

#define INNER(ctx) (((const struct io_stats *)(ctx))->inner)

static void add(uint64_t *v, uint64_t n) { __atomic_fetch_add(v, n, __ATOMIC_RELAXED); }

static uint64_t now_ns(void) { return uv_hrtime(); }

static int w_open(void *ctx, const char *path, int flags, int mode)
{
    return INNER(ctx)->open(INNER(ctx)->ctx, path, flags, mode);
}

static ssize_t w_pwrite(void *ctx, int fd, const void *p, size_t n, off_t off)
{
    ssize_t rc = INNER(ctx)->pwrite(INNER(ctx)->ctx, fd, p, n, off);
    if (rc > 0)
        add(&((struct io_stats *)ctx)->bytes_written, (uint64_t)rc);
    return rc;
}

static ssize_t w_pread(void *ctx, int fd, void *p, size_t n, off_t off)
{
    return INNER(ctx)->pread(INNER(ctx)->ctx, fd, p, n, off);
}

static int w_fsync(void *ctx, int fd)
{
    struct io_stats *s = ctx;
    uint64_t t0 = now_ns();
    int rc = s->inner->fsync(s->inner->ctx, fd);
    uint64_t ns = now_ns() - t0, us = ns / 1000;
    size_t b = 0;
    while (b < IO_STATS_BUCKETS && us > io_stats_bucket_us[b])
        b++;
    add(&s->fsync_le[b], 1);
    add(&s->fsyncs, 1);
    add(&s->fsync_ns, ns);
    return rc;
}

static int w_ftruncate(void *ctx, int fd, off_t len) { return INNER(ctx)->resize(INNER(ctx)->ctx, fd, len); }
static int w_close(void *ctx, int fd) { return INNER(ctx)->close(INNER(ctx)->ctx, fd); }
static int w_unlink(void *ctx, const char *path) { return INNER(ctx)->unlink(INNER(ctx)->ctx, path); }

static int w_rename(void *ctx, const char *from, const char *to)
{
    return INNER(ctx)->rename(INNER(ctx)->ctx, from, to);
}

static int w_link(void *ctx, const char *from, const char *to)
{
    return INNER(ctx)->link ? INNER(ctx)->link(INNER(ctx)->ctx, from, to) : -EOPNOTSUPP;
}

static int w_mkdir(void *ctx, const char *path, int mode) { return INNER(ctx)->mkdir(INNER(ctx)->ctx, path, mode); }
static int w_rmdir(void *ctx, const char *path) { return INNER(ctx)->rmdir(INNER(ctx)->ctx, path); }
static int w_fsize(void *ctx, int fd, off_t *size) { return INNER(ctx)->fsize(INNER(ctx)->ctx, fd, size); }
static int w_dup(void *ctx, int fd) { return INNER(ctx)->dup(INNER(ctx)->ctx, fd); }

static int w_reserve(void *ctx, int fd, off_t off, off_t len)
{
    return INNER(ctx)->reserve ? INNER(ctx)->reserve(INNER(ctx)->ctx, fd, off, len) : -EOPNOTSUPP;
}

static int w_open_dir(void *ctx, const char *path) { return INNER(ctx)->open_dir(INNER(ctx)->ctx, path); }

static int w_listdir(void *ctx, const char *path, int (*each)(void *arg, const char *name), void *arg)
{
    return INNER(ctx)->listdir(INNER(ctx)->ctx, path, each, arg);
}

static int w_size(void *ctx, const char *path, uint64_t *size) { return INNER(ctx)->size(INNER(ctx)->ctx, path, size); }

void io_stats_init(struct io_stats *s, const struct jio *inner)
{
    *s = (struct io_stats){.inner = inner};
    s->table = (struct jio){.ctx = s,
                            .open = w_open,
                            .pwrite = w_pwrite,
                            .pread = w_pread,
                            .fsync = w_fsync,
                            .resize = w_ftruncate,
                            .close = w_close,
                            .unlink = w_unlink,
                            .rename = w_rename,
                            .link = w_link,
                            .mkdir = w_mkdir,
                            .rmdir = w_rmdir,
                            .fsize = w_fsize,
                            .dup = w_dup,
                            .reserve = w_reserve,
                            .open_dir = w_open_dir,
                            .listdir = w_listdir,
                            .size = w_size};
}

static uint64_t get(const uint64_t *v) { return __atomic_load_n(v, __ATOMIC_RELAXED); }

void io_stats_read(const struct io_stats *s, struct io_stats_snap *out)
{
    out->bytes_written = get(&s->bytes_written);
    out->fsyncs = get(&s->fsyncs);
    out->fsync_ns = get(&s->fsync_ns);
    for (size_t i = 0; i <= IO_STATS_BUCKETS; i++)
        out->fsync_le[i] = get(&s->fsync_le[i]);
}
