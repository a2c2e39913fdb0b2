/* journal/journal.c: one queue's journal: live items, appending, the read
 * cursor, consuming, and handing fds to the syncer. */
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

/* ---- appending ---- */

/* Appends record r (its payload `data` of r->len bytes for an item record)
 * at the tail, rolling the segment first when it is full; the position goes
 * to *seg, *off. Leaves no partial record behind on failure. */
int ji_append_rec(struct jnl *j, const struct jf_rec *r, const void *data, uint64_t *seg, uint64_t *off)
{
    int rc;
    uint64_t len = r->type == JF_REC_ITEM ? r->len : 0;
    uint64_t need = ji_rec_size(r->type, r->len);
    if (j->tail_off > JF_SEG_HDR && j->tail_off + need > j->conf.segment_size)
        if ((rc = ji_seg_roll(j)) < 0)
            return rc;
    unsigned char hdr[JF_REC_HDR];
    jf_rec_encode(hdr, r);
    if (len <= INLINE_WRITE_MAX) {
        j->wbuf.len = 0;
        if ((rc = buf_append(&j->wbuf, hdr, sizeof(hdr))) < 0 || (rc = buf_append(&j->wbuf, data, len)) < 0)
            return rc;
        rc = jio_pwrite_all(j->conf.io, j->tail_fd, j->wbuf.data, j->wbuf.len, (off_t)j->tail_off);
    } else {
        rc = jio_pwrite_all(j->conf.io, j->tail_fd, hdr, sizeof(hdr), (off_t)j->tail_off);
        if (rc == 0)
            rc = jio_pwrite_all(j->conf.io, j->tail_fd, data, len, (off_t)(j->tail_off + JF_REC_HDR));
    }
    if (rc < 0) {
        /* If even this fails, recovery cuts the partial record. */
        j->conf.io->ftruncate(j->conf.io->ctx, j->tail_fd, (off_t)j->tail_off);
        return rc;
    }
    *seg = j->tail_seg;
    *off = j->tail_off;
    j->tail_off += need;
    j->disk_bytes += need;
    j->seg_dirty = 1;
    return 0;
}

int jnl_append(struct jnl *j, uint32_t flags, uint64_t add_ms, uint64_t expire_ms, const void *data, size_t len)
{
    struct jf_rec r = {.type = JF_REC_ITEM,
                       .flags = flags,
                       .id = j->st.next_id,
                       .add_ms = add_ms,
                       .expire_ms = expire_ms,
                       .len = len,
                       .payload_sum = jf_payload_sum(data, len)};
    uint64_t seg, off;
    int rc = ji_append_rec(j, &r, data, &seg, &off);
    if (rc < 0)
        return rc;
    rc = jst_apply_rec(&j->st, &r);
    ji_ack_reserve_check(j);
    return rc;
}

/* ---- reading ---- */

/* Moves the cursor to the start of the next segment. */
int ji_cursor_next_seg(struct jnl *j)
{
    for (uint64_t seq = j->st.r_seg + 1; seq <= j->tail_seg; seq++) {
        int fd = ji_seg_open(j, seq, O_RDONLY);
        if (fd == -ENOENT)
            continue;
        if (fd < 0)
            return fd;
        struct jf_seg_hdr sh;
        int rc = ji_seg_read_hdr(j, fd, &sh);
        if (rc < 0) {
            j->conf.io->close(j->conf.io->ctx, fd);
            if (rc == -EBADMSG) {
                log_error(j->conf.log, "journal %s: segment %" PRIu64 " has a damaged header: skipped", j->dir,
                          seq);
                continue;
            }
            return rc;
        }
        ji_close_fd(j, &j->r_fd);
        j->r_fd = fd;
        j->r_fd_seg = seq;
        j->st.r_seg = seq;
        j->st.r_off = JF_SEG_HDR;
        j->st.r_id = sh.first_id;
        j->st.r_cum = sh.cum_bytes;
        return 0;
    }
    return -ENOENT;
}

/* Reads the record header at the cursor, and with it as much of the payload
 * as HEAD_READ allows, into hbuf. */
static int read_at_cursor(struct jnl *j, int fd, struct jf_rec *r)
{
    j->hbuf_len = 0;
    if (!j->hbuf && !(j->hbuf = malloc(HEAD_READ)))
        return ji_rec_read_hdr(j, fd, j->st.r_off, r);
    size_t got = 0;
    while (got < JF_REC_HDR) {
        ssize_t n = j->conf.io->pread(j->conf.io->ctx, fd, j->hbuf + got, HEAD_READ - got, (off_t)(j->st.r_off + got));
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -ENODATA;
        got += (size_t)n;
    }
    int rc = jf_rec_decode(j->hbuf, r);
    if (rc == 0) {
        j->hbuf_seg = j->st.r_seg;
        j->hbuf_off = j->st.r_off;
        j->hbuf_len = got;
    }
    return rc;
}

int jnl_head(struct jnl *j, struct jnl_head *h)
{
    struct list *first = list_first(&j->st.returned);
    if (first) {
        h->node = list_entry(first, struct jnl_node, link);
        h->item = h->node->item;
        return 0;
    }
    for (;;) {
        if (j->st.r_seg == j->tail_seg && j->st.r_off >= j->tail_off)
            return -ENOENT;
        int fd, temp, rc;
        if (j->st.r_seg == j->tail_seg) {
            fd = j->tail_fd;
        } else {
            if (j->r_fd < 0 || j->r_fd_seg != j->st.r_seg) {
                ji_close_fd(j, &j->r_fd);
                if ((rc = ji_seg_fd(j, j->st.r_seg, &fd, &temp)) == -ENOENT) {
                    if ((rc = ji_cursor_next_seg(j)) < 0)
                        return rc;
                    continue;
                }
                if (rc < 0)
                    return rc;
                j->r_fd = fd;
                j->r_fd_seg = j->st.r_seg;
            }
            fd = j->r_fd;
        }
        struct jf_rec r;
        rc = read_at_cursor(j, fd, &r);
        if (rc == 0 && (r.rflags & JF_RF_MOVED)) {
            /* A copy of a live item made to free an old segment: that item
             * is reached through its node, never through the cursor. */
            j->st.r_off += ji_rec_size(r.type, r.len);
            continue;
        }
        if (rc == 0) {
            if (r.id != j->st.r_id)
                j->st.r_id = r.id;
            ji_item_from_rec(&h->item, &r, j->st.r_seg, j->st.r_off);
            h->node = NULL;
            return 0;
        }
        if (j->st.r_seg == j->tail_seg)
            return rc == -ENODATA || rc == -EBADMSG ? -EIO : rc;
        if (rc == -EBADMSG)
            log_error(j->conf.log, "journal %s: segment %" PRIu64 ": damaged record at offset %" PRIu64
                                   ": skipped the rest of the segment",
                      j->dir, j->st.r_seg, j->st.r_off);
        else if (rc != -ENODATA)
            return rc;
        if ((rc = ji_cursor_next_seg(j)) < 0)
            return rc == -ENOENT ? -EIO : rc;
    }
}

/* An fd to read it->len payload bytes from at *payload_off: one the journal
 * keeps (*temp = 0) or a new one the caller closes (*temp = 1). A missing
 * blob file is damage (-EBADMSG), not an empty queue. */
static int payload_fd(struct jnl *j, const struct jnl_item *it, int *fd, int *temp, uint64_t *payload_off)
{
    if (it->kind == JF_REC_BLOB) {
        char path[PATH_MAX];
        ji_blob_path(j, it->id, path, sizeof(path));
        int f = j->conf.io->open(j->conf.io->ctx, path, O_RDONLY, 0);
        if (f < 0)
            return f == -ENOENT ? -EBADMSG : f;
        *fd = f;
        *temp = 1;
        *payload_off = 0;
        return 0;
    }
    *payload_off = it->off + JF_REC_HDR;
    return ji_seg_fd(j, it->seg, fd, temp);
}

int jnl_read(struct jnl *j, const struct jnl_item *it, uint64_t off, void *buf, size_t n)
{
    if (it->kind == JF_REC_ITEM && j->hbuf_len && it->seg == j->hbuf_seg && it->off == j->hbuf_off &&
        JF_REC_HDR + off + n <= j->hbuf_len) {
        memcpy(buf, j->hbuf + JF_REC_HDR + off, n);
        if (off == 0 && n == it->len && jf_payload_sum(buf, n) != it->payload_sum)
            return -EBADMSG;
        return 0;
    }
    int fd, temp;
    uint64_t base;
    int rc = payload_fd(j, it, &fd, &temp, &base);
    if (rc < 0)
        return rc;
    rc = jio_pread_all(j->conf.io, fd, buf, n, (off_t)(base + off));
    if (temp)
        j->conf.io->close(j->conf.io->ctx, fd);
    if (rc == -ENODATA)
        rc = it->kind == JF_REC_BLOB ? -EBADMSG : -EIO;
    if (rc == 0 && off == 0 && n == it->len && jf_payload_sum(buf, n) != it->payload_sum)
        rc = -EBADMSG;
    return rc;
}

int jnl_payload_fd(struct jnl *j, const struct jnl_item *it, int *fd, uint64_t *payload_off)
{
    int f, temp;
    int rc = payload_fd(j, it, &f, &temp, payload_off);
    if (rc < 0)
        return rc;
    if (!temp && (f = j->conf.io->dup(j->conf.io->ctx, f)) < 0)
        return f;
    *fd = f;
    return 0;
}

/* ---- consuming ---- */

/* Writes ack record a, then applies it: the order every state change takes. */
int ji_ack_apply(struct jnl *j, const struct jf_ack *a, struct jnl_node *hint, struct jnl_node **out)
{
    int rc = ji_ack_write(j, a);
    return rc < 0 ? rc : jst_apply_ack(&j->st, a, hint, out);
}

int jnl_remove_head(struct jnl *j, const struct jnl_head *h)
{
    if (h->node)
        return jnl_confirm(j, h->node);
    struct jf_ack a = ji_item_ack(JF_ACK_TAKE, &h->item);
    int rc = ji_ack_apply(j, &a, NULL, NULL);
    if (rc == 0)
        ji_blob_unlink(j, &h->item);
    return rc;
}

int jnl_hold_head(struct jnl *j, const struct jnl_head *h, void *owner, struct jnl_node **out)
{
    struct jnl_node *n = h->node;
    if (!n) {
        struct jf_ack a = ji_item_ack(JF_ACK_OPEN, &h->item);
        int rc = ji_ack_apply(j, &a, NULL, &n);
        if (rc < 0)
            return rc;
        n->item = h->item; /* the attributes the ack record does not carry */
    }
    jst_hold(&j->st, n, owner);
    *out = n;
    return 0;
}

int jnl_confirm(struct jnl *j, struct jnl_node *n)
{
    struct jf_ack a = ji_item_ack(JF_ACK_CONFIRM, &n->item);
    struct jnl_item gone = n->item;
    int rc = ji_ack_apply(j, &a, n, NULL);
    if (rc == 0)
        ji_blob_unlink(j, &gone);
    return rc;
}

void jnl_release(struct jnl *j, struct jnl_node *n) { jst_release(&j->st, n); }

int jnl_restore(struct jnl *j, const struct jnl_item *it)
{
    struct jf_ack a = ji_item_ack(JF_ACK_RESTORE, it);
    struct jnl_node *n;
    int rc = ji_ack_apply(j, &a, NULL, &n);
    if (rc < 0)
        return rc;
    n->item = *it;
    for (size_t i = 0; i < j->ndoomed; i++) {
        if (j->doomed[i].id == it->id) {
            j->doomed[i] = j->doomed[--j->ndoomed];
            break;
        }
    }
    return 0;
}

/* Removes every blob file of the folder (all items are gone). */
static void unlink_all_blobs(struct jnl *j)
{
    DIR *d = opendir(j->dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "blob-", 5) != 0)
            continue;
        char path[PATH_MAX];
        ji_path_of(j, path, sizeof(path), e->d_name);
        j->conf.io->unlink(j->conf.io->ctx, path);
    }
    closedir(d);
}

int jnl_clear(struct jnl *j)
{
    struct jf_ack a = {.type = JF_ACK_FLUSH, .id = j->st.next_id, .seg = j->tail_seg, .off = j->tail_off, .cum = j->st.tail_cum};
    int rc = ji_ack_apply(j, &a, NULL, NULL);
    if (rc < 0)
        return rc;
    j->disk_bytes -= j->blob_bytes < j->disk_bytes ? j->blob_bytes : j->disk_bytes;
    j->blob_bytes = 0;
    j->ndoomed = 0;
    unlink_all_blobs(j);
    return 0;
}

int jnl_reap_pending(const struct jnl *j) { return j->ndoomed > 0; }

int jnl_idle(const struct jnl *j) { return j->st.nopen == 0 && j->ndoomed == 0; }

void jnl_close_owing(struct jnl *j, void (*owe)(void *ctx, const char *path), void *ctx)
{
    char path[PATH_MAX], name[32];
    if (!j)
        return;
    if (!j->conf.sync_never) {
        if (j->seg_dirty) {
            ji_seg_path(j, j->tail_seg, path, sizeof(path));
            owe(ctx, path);
        }
        if (j->ack_dirty) {
            snprintf(name, sizeof(name), "acks.%d", j->ack_idx);
            ji_path_of(j, path, sizeof(path), name);
            owe(ctx, path);
        }
        for (size_t i = 0; i < j->npending; i++) {
            ji_path_of(j, path, sizeof(path), j->pending_fds[i].name);
            owe(ctx, path);
        }
        if (j->dir_dirty)
            owe(ctx, j->dir);
    }
    jnl_close(j);
}

void jnl_set_dir(struct jnl *j, char *dir)
{
    free(j->dir);
    j->dir = dir;
}

int jnl_dirty(const struct jnl *j) { return j->seg_dirty || j->ack_dirty || j->dir_dirty || j->npending > 0; }

int jnl_sync_fds(struct jnl *j, int *fds, int cap)
{
    const struct jio *io = j->conf.io;
    int n = 0, rc;
    if (!jnl_dirty(j))
        return 0;
    if ((size_t)cap < j->npending + 3)
        return -ENOBUFS;
    if (j->dir_dirty) {
        if (j->dir_fd < 0 && (rc = io->open(io->ctx, j->dir, O_RDONLY | O_DIRECTORY, 0)) < 0)
            goto fail;
        if (j->dir_fd < 0)
            j->dir_fd = rc;
        if ((rc = io->dup(io->ctx, j->dir_fd)) < 0)
            goto fail;
        fds[n++] = rc;
    }
    int mine[2] = {j->seg_dirty ? j->tail_fd : -1, j->ack_dirty ? j->ack_fd : -1};
    for (int i = 0; i < 2; i++) {
        if (mine[i] < 0)
            continue;
        if ((rc = io->dup(io->ctx, mine[i])) < 0)
            goto fail;
        fds[n++] = rc;
    }
    for (size_t i = 0; i < j->npending; i++)
        fds[n++] = j->pending_fds[i].fd;
    j->npending = 0;
    j->seg_dirty = j->ack_dirty = j->dir_dirty = 0;
    return n;
fail:
    /* Nothing is marked clean: the next sync tries again, and whoever waits
     * on this one is told it failed. */
    while (n > 0)
        io->close(io->ctx, fds[--n]);
    return rc;
}

void jnl_mark_unsynced(struct jnl *j)
{
    j->seg_dirty = j->tail_fd >= 0;
    j->ack_dirty = j->ack_fd >= 0;
    j->dir_dirty = 1;
}

void jnl_get_stats(const struct jnl *j, struct jnl_stats *st)
{
    st->items = (j->st.next_id > j->st.r_id ? j->st.next_id - j->st.r_id : 0) + j->st.nnodes;
    st->bytes = (j->st.tail_cum > j->st.r_cum ? j->st.tail_cum - j->st.r_cum : 0) + j->st.node_bytes;
    st->open = j->st.nopen;
    st->logsize = j->disk_bytes + j->ack_off;
}
