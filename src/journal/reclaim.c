/* journal/reclaim.c: giving disk space back: deleting consumed segments,
 * moving the few live items that pin an old segment forward, and rewriting a
 * long ack log. */
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

/* Live items moved per call: small steps, so no caller ever waits long. */
#define MOVE_STEP 8
/* How many segments behind the cursor a live item may pin before it is
 * moved: items opened a moment ago are usually confirmed soon anyway. */
#define MOVE_SLACK 2

/* Copies a live item to the tail (same id, flagged moved) and records the
 * new position, so its old segment no longer holds anything live. */
static int move_node(struct jnl *j, struct jnl_node *n)
{
    int fd, temp, rc;
    struct jf_rec r;
    char *data = NULL;
    if ((rc = ji_seg_fd(j, n->item.seg, &fd, &temp)) < 0)
        return rc;
    rc = ji_rec_read_hdr(j, fd, n->item.off, &r);
    if (rc == 0 && r.type == JF_REC_ITEM) {
        data = malloc(r.len ? r.len : 1);
        rc = data ? jio_pread_all(j->conf.io, fd, data, r.len, (off_t)(n->item.off + JF_REC_HDR)) : -ENOMEM;
        if (rc == 0 && jf_payload_sum(data, r.len) != r.payload_sum)
            rc = -EBADMSG;
    }
    if (temp)
        j->conf.io->close(j->conf.io->ctx, fd);
    uint64_t seg, off;
    if (rc == 0) {
        r.rflags |= JF_RF_MOVED;
        rc = ji_append_rec(j, &r, data, &seg, &off);
    }
    free(data);
    if (rc < 0)
        return rc;
    struct jf_ack a = ji_item_ack(JF_ACK_MOVE, &n->item);
    a.seg = seg;
    a.off = off;
    /* If this fails the copy stays behind unused: the cursor skips it. */
    if ((rc = ji_ack_apply(j, &a, n, NULL)) < 0)
        return rc;
    j->moved++;
    return 0;
}

/* Moves up to MOVE_STEP live items out of the oldest segment when it lies
 * MOVE_SLACK or more segments behind the cursor; returns how many. */
static int move_pinned(struct jnl *j)
{
    if (j->oldest_seg + MOVE_SLACK > j->st.r_seg)
        return 0;
    int moved = 0;
    struct list *lists[2] = {&j->st.returned, &j->st.open};
    for (int i = 0; i < 2 && moved < MOVE_STEP; i++) {
        struct list *pos, *tmp;
        list_for_each_safe(pos, tmp, lists[i])
        {
            struct jnl_node *n = list_entry(pos, struct jnl_node, link);
            if (n->item.seg != j->oldest_seg)
                continue;
            int rc = move_node(j, n);
            if (rc < 0) {
                log_warn(j->conf.log, "journal %s: cannot move item %" PRIu64 " forward: %s", j->dir, n->item.id,
                         strerror(-rc));
                return moved;
            }
            if (++moved == MOVE_STEP)
                break;
        }
    }
    return moved;
}

/* Deletes the segments before the cursor and before every live item. */
static void delete_dead_segments(struct jnl *j)
{
    uint64_t low = jst_lowest_live_seg(&j->st);
    if (j->st.r_seg < low)
        low = j->st.r_seg;
    for (; j->oldest_seg < low; j->oldest_seg++) {
        char path[PATH_MAX];
        struct stat st;
        ji_seg_path(j, j->oldest_seg, path, sizeof(path));
        if (stat(path, &st) == 0)
            j->disk_bytes -= (uint64_t)st.st_size < j->disk_bytes ? (uint64_t)st.st_size : j->disk_bytes;
        int rc = j->conf.io->unlink(j->conf.io->ctx, path);
        if (rc < 0 && rc != -ENOENT) {
            log_error(j->conf.log, "journal %s: cannot remove segment %" PRIu64 ": %s", j->dir, j->oldest_seg,
                      strerror(-rc));
            break;
        }
        if (j->r_fd >= 0 && j->r_fd_seg == j->oldest_seg)
            ji_close_fd(j, &j->r_fd);
        /* An fd kept for a sync would hold the deleted file's space. */
        ji_drop_pending_seg(j, j->oldest_seg);
        j->dir_dirty = 1;
    }
}

void jnl_maintain(struct jnl *j, uint64_t sync_epoch_next, uint64_t sync_epoch_done)
{
    if (j->ack_ckpt_epoch == UINT64_MAX)
        j->ack_ckpt_epoch = sync_epoch_next;
    ji_blob_reap(j, sync_epoch_next, sync_epoch_done);
    delete_dead_segments(j);
    if (move_pinned(j) > 0)
        delete_dead_segments(j);
    if (j->ack_off > j->conf.ack_compact_bytes && (j->conf.sync_never || sync_epoch_done >= j->ack_ckpt_epoch)) {
        int rc = ji_ack_rewrite(j, sync_epoch_next);
        if (rc < 0)
            log_error(j->conf.log, "journal %s: cannot rewrite the ack log: %s", j->dir, strerror(-rc));
    }
}
