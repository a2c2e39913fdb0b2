/* journal/segment.c: segment files and record headers: naming, opening,
 * rolling, reading and checking. */
#include "journal/jnl_int.h"
#include "util/errstr.h"

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
#include <uv.h>
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
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* Writes a fresh segment header into fd (it becomes the tail: tail_sh) and
 * cuts the file after it. */
int ji_seg_init(struct jnl *j, int fd, uint64_t seq, uint64_t first_id, uint64_t cum)
{
    unsigned char raw[JF_SEG_HDR];
    struct jf_seg_hdr sh = {.version = JF_VERSION,
                            .seq = seq,
                            .first_id = first_id,
                            .cum_bytes = cum,
                            .created_ms = ji_now_ms()};
    jf_seg_hdr_encode(raw, &sh);
    int rc = jio_pwrite_all(j->conf.io, fd, raw, sizeof(raw), 0);
    if (rc == 0)
        rc = j->conf.io->resize(j->conf.io->ctx, fd, JF_SEG_HDR);
    if (rc == 0)
        j->tail_sh = sh;
    return rc;
}

/* Starts segment tail_seg + 1 (or 1 for a new journal). */
int ji_seg_roll(struct jnl *j, uint64_t first_id, uint64_t cum)
{
    uint64_t seq = j->tail_fd >= 0 ? j->tail_seg + 1 : j->tail_seg;
    if (first_id >= JF_COUNT_MAX || cum >= JF_COUNT_MAX || seq >= JF_COUNT_MAX) {
        /* A header recovery would refuse: never write one. Only a damaged
         * or hand-made folder gets here (2^62 ids or bytes). */
        log_error(j->conf.log, "journal %s: segment %" PRIu64 " would pass the format's id or byte limit: refused",
                  j->dir, seq);
        return -EOVERFLOW;
    }
    int fd = ji_seg_open(j, seq, O_RDWR | O_CREAT);
    if (fd < 0)
        return fd;
    int rc = ji_seg_init(j, fd, seq, first_id, cum);
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

int ji_seg_fd(struct jnl *j, uint64_t seq, int *fd, int *temp, struct jf_seg_hdr *sh)
{
    *temp = 0;
    if (seq == j->tail_seg && j->tail_fd >= 0) {
        *fd = j->tail_fd;
        *sh = j->tail_sh;
        return 0;
    }
    if (seq == j->r_fd_seg && j->r_fd >= 0) {
        *fd = j->r_fd;
        *sh = j->r_sh;
        return 0;
    }
    int f = ji_seg_open(j, seq, O_RDONLY);
    if (f < 0)
        return f;
    int rc = ji_seg_read_hdr(j, f, sh);
    if (rc < 0) {
        j->conf.io->close(j->conf.io->ctx, f);
        return rc;
    }
    *fd = f;
    *temp = 1;
    return 0;
}

/* Reads up to n bytes at off into p; returns the count (short at the end of
 * the file) or -errno. */
static int64_t read_upto(struct jnl *j, int fd, unsigned char *p, uint64_t n, uint64_t off)
{
    uint64_t got = 0;
    while (got < n) {
        ssize_t r = j->conf.io->pread(j->conf.io->ctx, fd, p + got, (size_t)(n - got), (off_t)(off + got));
        if (r < 0)
            return r;
        if (r == 0)
            break;
        got += (uint64_t)r;
    }
    return (int64_t)got;
}

int ji_cache_reserve(struct jnl *j, size_t n)
{
    if (n <= j->bc_cap)
        return 0;
    size_t cap = n < BATCH_CACHE ? BATCH_CACHE : (n + 4095) / 4096 * 4096;
    unsigned char *p = realloc(j->bc, cap);
    if (!p)
        return -ENOMEM;
    j->bc = p;
    j->bc_cap = cap;
    return 0;
}

int ji_entry_at(struct jnl *j, const struct jbatch *bt, uint64_t seg, uint64_t off, uint32_t idx, struct jf_entry *e)
{
    if (bt->version != 2)
        return jbatch_entry_at(bt, idx, e);
    if (idx >= bt->b.count)
        return -EBADMSG;
    if (seg != j->hint_seg || off != j->hint_off || idx < j->bc_idx || j->bc_idx == 0) {
        j->hint_seg = seg;
        j->hint_off = off;
        j->bc_idx = 0;
        j->bc_pos = 0;
        j->bc_next = bt->b.first_id;
    }
    for (;;) {
        uint64_t pos = j->bc_pos, next = j->bc_next;
        if (jbatch_entry(bt, &pos, &next, e) < 0) {
            j->bc_idx = 0;
            return -EBADMSG;
        }
        if (j->bc_idx == idx) /* stay at idx: it is often asked for again */
            return 0;
        j->bc_pos = pos;
        j->bc_next = next;
        j->bc_idx++;
    }
}

int ji_item_entry(struct jnl *j, const struct jbatch *bt, const struct jnl_item *it, struct jf_entry *e)
{
    if (bt->version == 2 && it->epos) {
        uint64_t pos = it->epos - 1, next = it->id;
        /* a moved copy names its id, which equals next here and so fails to
         * decode: it is walked to, as is anything that does not match */
        if (jbatch_entry(bt, &pos, &next, e) == 0 && e->r.id == it->id && e->r.len == it->len &&
            e->r.add_ms == it->add_ms)
            return 0;
    }
    return ji_entry_at(j, bt, it->seg, it->off, it->idx, e);
}

/* Parses the batch at off from the cached window, if it lies whole in it.
 * Returns 0, -EBADMSG, or -EAGAIN (not there: read it). */
static int window_parse(struct jnl *j, uint64_t seg, uint64_t off, struct jbatch *bt, int check)
{
    uint64_t need;
    const char *why;
    if (!j->bc_len || j->bc_seg != seg || off < j->bc_off || off >= j->bc_off + j->bc_len)
        return -EAGAIN;
    int verify = check && j->bc_checked != off + 1;
    int rc = jbatch_parse(j->bc + (off - j->bc_off), j->bc_off + j->bc_len - off, &j->bc_sh, bt, &need, &why, verify);
    if (rc == 0 && verify)
        j->bc_checked = off + 1;
    return rc;
}

int ji_batch_load(struct jnl *j, uint64_t seg, uint64_t off, struct jbatch *bt, unsigned char **owned, int check)
{
    int fd, temp, rc;
    struct jf_seg_hdr sh;
    const char *why;
    uint64_t need;
    *owned = NULL;
    if ((rc = window_parse(j, seg, off, bt, check)) != -EAGAIN)
        return rc;
    if ((rc = ji_seg_fd(j, seg, &fd, &temp, &sh)) < 0)
        return rc;
    /* Past the tail's valid end nothing counts, whatever the file holds. */
    uint64_t limit = seg == j->tail_seg ? j->tail_off : UINT64_MAX;
    if (off >= limit) {
        rc = -ENODATA;
        goto out;
    }
    if ((rc = ji_cache_reserve(j, BATCH_CACHE)) < 0)
        goto out;
    j->bc_len = 0;
    j->bc_checked = 0;
    unsigned char *buf = j->bc;
    uint64_t cap = j->bc_cap, want = limit - off < BATCH_CACHE ? limit - off : BATCH_CACHE;
    int64_t got;
    for (;;) {
        got = read_upto(j, fd, buf, want, off);
        if (got < 0) {
            rc = (int)got;
            goto out;
        }
        rc = jbatch_parse(buf, (uint64_t)got, &sh, bt, &need, &why, check);
        if (rc != -EAGAIN)
            break;
        if ((uint64_t)got < want || need > limit - off) {
            rc = -ENODATA; /* the file (or the valid tail) ends inside it */
            goto out;
        }
        if (need > cap) {
            /* a batch of many entries is cached; one huge entry is not */
            if (!*owned && need <= BATCH_CACHE_MAX && ji_cache_reserve(j, (size_t)need) == 0) {
                buf = j->bc;
                cap = j->bc_cap;
            } else {
                unsigned char *nb = realloc(*owned, (size_t)need);
                if (!nb) {
                    rc = -ENOMEM;
                    goto out;
                }
                *owned = buf = nb;
                cap = need;
            }
        }
        want = need;
    }
    if (rc == 0 && !*owned) { /* the window: everything read, the batches after this one too */
        j->bc_seg = seg;
        j->bc_off = off;
        j->bc_sh = sh;
        j->bc_len = (uint64_t)got;
        j->bc_checked = check ? off + 1 : 0;
    }
out:
    if (rc < 0) {
        free(*owned);
        *owned = NULL;
    }
    if (temp)
        j->conf.io->close(j->conf.io->ctx, fd);
    return rc;
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
    /* Under fsync "never" the file goes as soon as the removal's record is
     * written (not when it is durable): written now, or the file waits. */
    if (j->conf.sync_never && (j->ackq.len == 0 || ji_ack_flush(j) == 0)) {
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
    if (j->conf.sync_never) { /* once the removals' records are written */
        if (j->ndoomed && (j->ackq.len == 0 || ji_ack_flush(j) == 0)) {
            for (size_t i = 0; i < j->ndoomed; i++)
                blob_delete(j, j->doomed[i].id, j->doomed[i].len);
            j->ndoomed = 0;
        }
        return;
    }
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
        log_warn(j->conf.log, "journal %s: cannot remove %s: %s", j->dir, path, errstr(rc));
    if (rc == 0) {
        j->disk_bytes -= len < j->disk_bytes ? len : j->disk_bytes;
        j->blob_bytes -= len < j->blob_bytes ? len : j->blob_bytes;
    }
}

void ji_item_from_entry(struct jnl_item *it, const struct jf_entry *e, uint64_t seg, uint64_t off, uint32_t idx)
{
    *it = (struct jnl_item){.id = e->r.id,
                            .kind = e->r.type,
                            .seg = seg,
                            .off = off,
                            .idx = idx,
                            .epos = e->start < UINT32_MAX ? (uint32_t)e->start + 1 : 0,
                            .len = e->r.len,
                            .add_ms = e->r.add_ms,
                            .expire_ms = e->r.expire_ms,
                            .payload_sum = e->r.payload_sum,
                            .deliveries = e->r.deliveries,
                            .visible_ms = e->r.visible_ms,
                            .origin_id = e->r.origin_id,
                            .reason = e->r.reason,
                            .flags = e->r.flags};
}
