/* journal/datadir.c: reading and writing the data folder's FORMAT file. */
#include "journal/datadir.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

int jdd_write_file(const struct jnl_conf *conf, const char *data_dir, const char *name, const char *text)
{
    const struct jio *io = conf->io;
    char tmp[PATH_MAX], path[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s/%s.tmp", data_dir, name) >= (int)sizeof(tmp) ||
        snprintf(path, sizeof(path), "%s/%s", data_dir, name) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int fd = io->open(io->ctx, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return fd;
    int rc = jio_pwrite_all(io, fd, text, strlen(text), 0);
    if (rc == 0 && !conf->sync_never)
        rc = io->fsync(io->ctx, fd);
    io->close(io->ctx, fd);
    if (rc == 0)
        rc = io->rename(io->ctx, tmp, path);
    if (rc < 0) {
        io->unlink(io->ctx, tmp);
        return rc;
    }
    if (!conf->sync_never) {
        int dfd = io->open_dir(io->ctx, data_dir);
        if (dfd == -EOPNOTSUPP) /* no folder fsync on this platform: the rename is durable by itself */
            return 0;
        if (dfd < 0)
            return dfd;
        rc = io->fsync(io->ctx, dfd);
        io->close(io->ctx, dfd);
    }
    return rc;
}

ssize_t jdd_read_file(const struct jnl_conf *conf, const char *data_dir, const char *name, char *buf, size_t cap)
{
    const struct jio *io = conf->io;
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", data_dir, name) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    int fd = io->open(io->ctx, path, O_RDONLY, 0);
    if (fd < 0)
        return fd;
    ssize_t n = io->pread(io->ctx, fd, buf, cap, 0);
    io->close(io->ctx, fd);
    return n;
}

int jdd_write_format(const struct jnl_conf *conf, const char *data_dir, uint32_t version)
{
    char text[16];
    snprintf(text, sizeof(text), "%" PRIu32 "\n", version);
    return jdd_write_file(conf, data_dir, JDD_FORMAT_FILE, text);
}

/* Parses "<digits>\n" (the newline may be missing). Returns 0 or -EBADMSG. */
static int parse_version(const char *p, size_t n, uint32_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
        v = v * 10 + (uint64_t)(p[i] - '0');
        if (v > UINT32_MAX)
            return -EBADMSG;
    }
    if (i == 0 || !(i == n || (i + 1 == n && p[i] == '\n')))
        return -EBADMSG;
    *out = (uint32_t)v;
    return 0;
}

int jdd_check_format(const struct jnl_conf *conf, const char *data_dir, uint32_t *found)
{
    char path[PATH_MAX], text[16];
    uint32_t version = 0;
    if (found)
        *found = 0;
    snprintf(path, sizeof(path), "%s/%s", data_dir, JDD_FORMAT_FILE);
    ssize_t n = jdd_read_file(conf, data_dir, JDD_FORMAT_FILE, text, sizeof(text));
    if (n == -ENOENT)
        return jdd_write_format(conf, data_dir, JDD_FORMAT);
    if (n < 0)
        return (int)n;
    if (parse_version(text, (size_t)n, &version) < 0) {
        log_error(conf->log,
                  "%s holds no format version (a decimal number and a newline are expected): the data folder is "
                  "not opened and nothing in it is changed; restore the file or point --data elsewhere",
                  path);
        return -EPROTONOSUPPORT;
    }
    if (found)
        *found = version;
    if (version >= JDD_FORMAT_MIN && version < JDD_FORMAT) {
        log_info(conf->log,
                 "%s says data-folder format version %" PRIu32 ": upgrading it to %d (queues move to the "
                 "new journal format as they are used; a build that knows only version %" PRIu32
                 " can no longer open it)",
                 path, version, JDD_FORMAT, version);
        return jdd_write_format(conf, data_dir, JDD_FORMAT);
    }
    if (version != JDD_FORMAT) {
        log_error(conf->log,
                  "%s says data-folder format version %" PRIu32 ", which this build (version %d) cannot read: "
                  "the data folder is not opened and nothing in it is changed; run a darner that knows version "
                  "%" PRIu32,
                  path, version, JDD_FORMAT, version);
        return -EPROTONOSUPPORT;
    }
    return 0;
}
