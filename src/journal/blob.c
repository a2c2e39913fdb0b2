/* journal/blob.c: large items streamed to a file of their own while they
 * arrive, then adopted by a queue's journal as a blob record. */
#include "journal/jnl_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct jnl_blob {
    const struct jio *io;
    char *path;
    int fd;
    uint64_t len, written;
    XXH3_state_t *sum;
};

void jnl_blob_discard(struct jnl_blob *b)
{
    if (!b)
        return;
    if (b->fd >= 0)
        b->io->close(b->io->ctx, b->fd);
    if (b->path)
        b->io->unlink(b->io->ctx, b->path);
    XXH3_freeState(b->sum);
    free(b->path);
    free(b);
}

int jnl_blob_begin(const struct jnl_conf *conf, const char *tmp_path, uint64_t len, struct jnl_blob **out)
{
    struct jnl_blob *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    b->io = conf->io;
    b->fd = -1;
    b->len = len;
    int rc = -ENOMEM;
    if (!(b->sum = XXH3_createState()) || !(b->path = strdup(tmp_path)))
        goto fail;
    XXH3_64bits_reset(b->sum);
    if ((b->fd = b->io->open(b->io->ctx, b->path, O_RDWR | O_CREAT | O_TRUNC, 0644)) < 0) {
        rc = b->fd;
        free(b->path); /* nothing to unlink */
        b->path = NULL;
        goto fail;
    }
    *out = b;
    return 0;
fail:
    jnl_blob_discard(b);
    return rc;
}

int jnl_blob_clone(const struct jnl_blob *src, const char *tmp_path, struct jnl_blob **out)
{
    if (src->written != src->len || src->fd < 0)
        return -EINVAL;
    if (!src->io->link)
        return -EOPNOTSUPP;
    struct jnl_blob *b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;
    *b = (struct jnl_blob){.io = src->io, .fd = -1, .len = src->len, .written = src->written};
    int rc = -ENOMEM;
    if (!(b->sum = XXH3_createState()))
        goto fail;
    XXH3_copyState(b->sum, src->sum);
    if ((rc = b->io->link(b->io->ctx, src->path, tmp_path)) < 0)
        goto fail;
    if (!(b->path = strdup(tmp_path))) {
        b->io->unlink(b->io->ctx, tmp_path);
        rc = -ENOMEM;
        goto fail;
    }
    /* its own fd, which jnl_append_blob syncs and closes */
    if ((b->fd = b->io->open(b->io->ctx, b->path, O_RDONLY, 0)) < 0) {
        rc = b->fd;
        goto fail;
    }
    *out = b;
    return 0;
fail:
    jnl_blob_discard(b);
    return rc;
}

int jnl_blob_write_from(struct jnl_blob *dst, int fd, uint64_t off, uint64_t len)
{
    enum { CHUNK = 64 * 1024 };
    char *buf = malloc(CHUNK);
    int rc = buf ? 0 : -ENOMEM;
    for (uint64_t done = 0; rc == 0 && done < len;) {
        size_t n = len - done < CHUNK ? (size_t)(len - done) : CHUNK;
        ssize_t r = dst->io->pread(dst->io->ctx, fd, buf, n, (off_t)(off + done));
        if (r <= 0)
            rc = r < 0 ? (int)r : -EIO;
        else if ((rc = jnl_blob_write(dst, buf, (size_t)r)) == 0)
            done += (uint64_t)r;
    }
    free(buf);
    return rc;
}

int jnl_blob_copy(const struct jnl_blob *src, struct jnl_blob *dst)
{
    return jnl_blob_write_from(dst, src->fd, 0, src->len);
}

int jnl_blob_write(struct jnl_blob *b, const void *p, size_t n)
{
    if (n > b->len - b->written)
        return -EINVAL;
    int rc = jio_pwrite_all(b->io, b->fd, p, n, (off_t)b->written);
    if (rc < 0)
        return rc;
    XXH3_64bits_update(b->sum, p, n);
    b->written += n;
    return 0;
}

int jnl_append_blob(struct jnl *j, struct jnl_blob *b, const struct jnl_attrs *a)
{
    int rc;
    char path[PATH_MAX];
    if (b->written != b->len) {
        rc = -EINVAL;
        goto out;
    }
    uint64_t id = j->st.next_id, seg, off;
    ji_blob_path(j, id, path, sizeof(path));
    if ((rc = b->io->rename(b->io->ctx, b->path, path)) < 0)
        goto out;
    free(b->path);
    b->path = strdup(path); /* from here a failure removes the adopted file */
    struct jf_rec r = ji_attrs_rec(j, JF_REC_BLOB, a, b->len);
    r.id = id;
    r.payload_sum = XXH3_64bits_digest(b->sum);
    if ((rc = ji_append_one(j, &r, NULL, a->origin, a->origin_len, &seg, &off)) < 0)
        goto out;
    j->disk_bytes += b->len;
    j->blob_bytes += b->len;
    jst_apply_rec(&j->st, &r); /* r.id is next_id: cannot be out of sequence */
    ji_note_appended(j, &r, seg, off);
    j->dir_dirty = 1;
    /* The data must reach the disk with the next sync, like a record's. */
    ji_retire_fd(j, &b->fd, 0, strrchr(path, '/') + 1);
    free(b->path);
    b->path = NULL;
out:
    jnl_blob_discard(b);
    return rc;
}
