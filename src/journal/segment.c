/* journal/segment.c: segment files and record headers: naming, opening,
 * rolling, reading and checking. */
#include "journal/jnl_int.h"

#include "journal/format.h"
#include "util/buf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

void ji_path_of(const struct jnl *j, char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", j->dir, name);
}

void ji_seg_path(const struct jnl *j, uint64_t seq, char *out, size_t cap)
{
    snprintf(out, cap, "%s/seg-%016" PRIx64 ".dat", j->dir, seq);
}


void ji_close_fd(const struct jnl *j, int *fd)
{
    if (*fd >= 0)
        j->conf.io->close(j->conf.io->ctx, *fd);
    *fd = -1;
}

void ji_retire_fd(struct jnl *j, int *fd, uint64_t seg, const char *name)
{
    if (*fd < 0)
        return;
    if (j->conf.sync_never) {
        ji_close_fd(j, fd);
        return;
    }
    if (j->npending == j->cappending) {
        size_t cap = j->cappending ? j->cappending * 2 : 4;
        struct pending_fd *p = realloc(j->pending_fds, cap * sizeof(*p));
        if (!p) {
            /* Cannot keep it for the sync job: sync it here, rarely. */
            j->conf.io->fsync(j->conf.io->ctx, *fd);
            ji_close_fd(j, fd);
            return;
        }
        j->pending_fds = p;
        j->cappending = cap;
    }
    struct pending_fd *p = &j->pending_fds[j->npending++];
    *p = (struct pending_fd){.fd = *fd, .seg = seg};
    snprintf(p->name, sizeof(p->name), "%s", name);
    *fd = -1;
}

void ji_drop_pending_seg(struct jnl *j, uint64_t seg)
{
    for (size_t i = 0; i < j->npending;) {
        if (j->pending_fds[i].seg == seg) {
            j->conf.io->close(j->conf.io->ctx, j->pending_fds[i].fd);
            j->pending_fds[i] = j->pending_fds[--j->npending];
        } else {
            i++;
        }
    }
}

/* ---- segments ---- */

int ji_seg_open(struct jnl *j, uint64_t seq, int flags)
{
    char path[PATH_MAX];
    ji_seg_path(j, seq, path, sizeof(path));
    return j->conf.io->open(j->conf.io->ctx, path, flags, 0644);
}

int ji_seg_read_hdr(struct jnl *j, int fd, struct jf_seg_hdr *h)
{
    unsigned char raw[JF_SEG_HDR];
    int rc = jio_pread_all(j->conf.io, fd, raw, sizeof(raw), 0);
    if (rc < 0)
        return rc == -ENODATA ? -EBADMSG : rc;
    return jf_seg_hdr_decode(raw, h);
}

uint64_t ji_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Writes a fresh segment header into fd and cuts the file after it. */
int ji_seg_init(struct jnl *j, int fd, uint64_t seq)
{
    unsigned char raw[JF_SEG_HDR];
    jf_seg_hdr_encode(raw, &(struct jf_seg_hdr){.version = JF_VERSION,
                                                 .seq = seq,
                                                 .first_id = j->st.next_id,
                                                 .cum_bytes = j->st.tail_cum,
                                                 .created_ms = ji_now_ms()});
    int rc = jio_pwrite_all(j->conf.io, fd, raw, sizeof(raw), 0);
    if (rc == 0)
        rc = j->conf.io->ftruncate(j->conf.io->ctx, fd, JF_SEG_HDR);
    return rc;
}

/* Starts segment tail_seg + 1 (or 1 for a new journal). */
int ji_seg_roll(struct jnl *j)
{
    uint64_t seq = j->tail_fd >= 0 ? j->tail_seg + 1 : j->tail_seg;
    int fd = ji_seg_open(j, seq, O_RDWR | O_CREAT);
    if (fd < 0)
        return fd;
    int rc = ji_seg_init(j, fd, seq);
    if (rc < 0) {
        char path[PATH_MAX];
        j->conf.io->close(j->conf.io->ctx, fd);
        ji_seg_path(j, seq, path, sizeof(path));
        j->conf.io->unlink(j->conf.io->ctx, path);
        return rc;
    }
    char name[32];
    snprintf(name, sizeof(name), "seg-%016" PRIx64 ".dat", j->tail_seg);
    ji_retire_fd(j, &j->tail_fd, j->tail_seg, name);
    j->tail_fd = fd;
    j->tail_seg = seq;
    j->tail_off = JF_SEG_HDR;
    j->disk_bytes += JF_SEG_HDR;
    j->seg_dirty = 1;
    j->dir_dirty = 1;
    return 0;
}

/* An fd reading segment seq: one the journal keeps (*temp = 0) or a new one
 * the caller closes (*temp = 1). */
int ji_seg_fd(struct jnl *j, uint64_t seq, int *fd, int *temp)
{
    *temp = 0;
    if (seq == j->tail_seg && j->tail_fd >= 0) {
        *fd = j->tail_fd;
        return 0;
    }
    if (seq == j->r_fd_seg && j->r_fd >= 0) {
        *fd = j->r_fd;
        return 0;
    }
    int f = ji_seg_open(j, seq, O_RDONLY);
    if (f < 0)
        return f;
    *fd = f;
    *temp = 1;
    return 0;
}

/* Reads a record header at (seq, off). Returns 0, -ENODATA at the segment's
 * end, -EBADMSG when damaged, or -errno. */
int ji_rec_read_hdr(struct jnl *j, int fd, uint64_t off, struct jf_rec *r)
{
    unsigned char raw[JF_REC_HDR];
    int rc = jio_pread_all(j->conf.io, fd, raw, sizeof(raw), (off_t)off);
    if (rc < 0)
        return rc;
    return jf_rec_decode(raw, r);
}


void ji_blob_path(const struct jnl *j, uint64_t id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/blob-%016" PRIx64 ".dat", j->dir, id);
}

static void blob_delete(struct jnl *j, uint64_t id, uint64_t len);

void ji_blob_unlink(struct jnl *j, const struct jnl_item *it)
{
    if (it->kind != JF_REC_BLOB)
        return;
    if (j->conf.sync_never) {
        blob_delete(j, it->id, it->len);
        return;
    }
    if (j->ndoomed == j->capdoomed) {
        size_t cap = j->capdoomed ? j->capdoomed * 2 : 8;
        struct doomed *d = realloc(j->doomed, cap * sizeof(*d));
        if (!d) {
            blob_delete(j, it->id, it->len); /* rather than keep the file forever */
            return;
        }
        j->doomed = d;
        j->capdoomed = cap;
    }
    j->doomed[j->ndoomed++] = (struct doomed){.id = it->id, .len = it->len, .epoch = 0};
}

void ji_blob_reap(struct jnl *j, uint64_t sync_epoch_next, uint64_t sync_epoch_done)
{
    size_t keep = 0;
    for (size_t i = 0; i < j->ndoomed; i++) {
        struct doomed d = j->doomed[i];
        if (d.epoch == 0)
            d.epoch = sync_epoch_next; /* the next sync covers the removal */
        if (d.epoch <= sync_epoch_done)
            blob_delete(j, d.id, d.len);
        else
            j->doomed[keep++] = d;
    }
    j->ndoomed = keep;
}

static void blob_delete(struct jnl *j, uint64_t id, uint64_t len)
{
    char path[PATH_MAX];
    ji_blob_path(j, id, path, sizeof(path));
    int rc = 0;
    if (j->conf.unlink_later)
        j->conf.unlink_later(j->conf.unlink_ctx, path);
    else
        rc = j->conf.io->unlink(j->conf.io->ctx, path);
    if (rc < 0 && rc != -ENOENT)
        log_warn(j->conf.log, "journal %s: cannot remove %s: %s", j->dir, path, strerror(-rc));
    if (rc == 0) {
        j->disk_bytes -= len < j->disk_bytes ? len : j->disk_bytes;
        j->blob_bytes -= len < j->blob_bytes ? len : j->blob_bytes;
    }
}

void ji_item_from_rec(struct jnl_item *it, const struct jf_rec *r, uint64_t seg, uint64_t off)
{
    *it = (struct jnl_item){.id = r->id,
                            .kind = r->type,
                            .seg = seg,
                            .off = off,
                            .len = r->len,
                            .add_ms = r->add_ms,
                            .expire_ms = r->expire_ms,
                            .payload_sum = r->payload_sum,
                            .flags = r->flags};
}
