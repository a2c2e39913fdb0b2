/* journal/reclaim.c: giving disk space back: deleting consumed segments,
 * moving the few live items that pin an old segment forward, and rewriting a
 * long ack log. */
#include "journal/jnl_int.h"
#include "util/errstr.h"

#include "journal/format.h"
#include "util/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

/* Live items moved per call: small steps, so no caller ever waits long. */
#define MOVE_STEP 8
/* How many segments behind the cursor a live item may pin before it is
 * moved: items opened a moment ago are usually confirmed soon anyway. */
#define MOVE_SLACK 2

/* Records the MOVE of a copy made earlier, once the copy is durable: the
 * item then lives at the copy, and its old segment can go. */
static void finish_moves(struct jnl *j, uint64_t sync_epoch_done)
{
    for (int i = 0; i < j->npmove;) {
        struct pmove *m = &j->pmove[i];
        if (!j->conf.sync_never && sync_epoch_done < m->epoch) {
            i++;
            continue;
        }
        struct jnl_node *n = jst_find(&j->st, m->id);
        if (n) { /* else it was confirmed meanwhile: the copy stays unused */
            struct jf_ack a = ji_item_ack(JF_ACK_MOVE, &n->item);
            a.seg = m->seg;
            a.off = m->off;
            a.idx = 0;
            /* If this fails the copy stays behind unused: the cursor skips it. */
            if (ji_ack_apply(j, &a, n, NULL) == 0)
                j->moved++;
        }
        *m = j->pmove[--j->npmove];
    }
}

static int move_pending(const struct jnl *j, uint64_t id)
{
    for (int i = 0; i < j->npmove; i++)
        if (j->pmove[i].id == id)
            return 1;
    return 0;
}

/* Copies a live item to the tail (same id, flagged moved); its MOVE record
 * follows once the copy is durable (finish_moves), so its old segment then
 * no longer holds anything live. */
static int move_node(struct jnl *j, struct jnl_node *n, uint64_t sync_epoch_next)
{
    struct jbatch bt;
    struct jf_entry e;
    unsigned char *owned = NULL;
    uint64_t seg, off;
    /* the deferred batch first: writing it refills the batch cache, where
     * the loaded entry may be */
    int rc = ji_flush_pending(j);
    if (rc == 0)
        rc = ji_batch_load(j, n->item.seg, n->item.off, &bt, &owned, 1);
    if (rc == 0 && (jbatch_entry_at(&bt, n->item.idx, &e) < 0 || e.r.id != n->item.id))
        rc = -EBADMSG;
    if (rc == 0) {
        /* The copy keeps everything, id included; the payload is copied
         * from the loaded batch before anything else is read. */
        const void *data = bt.p + bt.b.hdr_len + e.payload_pos;
        e.r.rflags |= JF_RF_MOVED;
        rc = ji_append_one(j, &e.r, data, (const char *)e.origin, e.origin_len, &seg, &off);
    }
    free(owned);
    if (rc < 0)
        return rc;
    j->pmove[j->npmove++] = (struct pmove){.id = n->item.id, .seg = seg, .off = off, .epoch = sync_epoch_next};
    return 0;
}

/* Moves up to MOVE_STEP live items out of the oldest segment when it lies
 * MOVE_SLACK or more segments behind the cursor; returns how many. */
static int move_pinned(struct jnl *j, uint64_t sync_epoch_next)
{
    if (j->oldest_seg + MOVE_SLACK > j->st.r_seg || j->npmove == MOVE_STEP)
        return 0;
    int moved = 0;
    struct list *lists[2] = {&j->st.returned, &j->st.open};
    for (int i = 0; i < 2 && moved < MOVE_STEP; i++) {
        struct list *pos, *tmp;
        list_for_each_safe(pos, tmp, lists[i]) {
            struct jnl_node *n = list_entry(pos, struct jnl_node, link);
            if (n->item.seg != j->oldest_seg || move_pending(j, n->item.id))
                continue;
            if (j->npmove == MOVE_STEP)
                return moved;
            int rc = move_node(j, n, sync_epoch_next);
            if (rc < 0) {
                log_warn(j->conf.log, "journal %s: cannot move item %" PRIu64 " forward: %s", j->dir, n->item.id,
                         errstr(rc));
                return moved;
            }
            if (++moved == MOVE_STEP)
                break;
        }
    }
    return moved;
}

/* The lowest segment something is in: the cursor's, or a live item's. */
static uint64_t current_low(const struct jnl *j)
{
    uint64_t low = jst_lowest_live_seg(&j->st);
    return j->st.r_seg < low ? j->st.r_seg : low;
}

/* The mark only ever goes down at once: an item given back (a removal
 * whose fsync failed) lives in an older segment again, and a later record
 * moving it on is not durable yet when the sync that covers the mark's
 * records completes. */
static void lower_marks(struct jnl *j)
{
    uint64_t low = current_low(j);
    if (low < j->low_done)
        j->low_done = low;
    if (j->low_next && low < j->low_next)
        j->low_next = low;
}

/* Deletes the segments before the cursor and before every live item, as
 * far as the records saying so are durable (low_done). */
static void delete_dead_segments(struct jnl *j, uint64_t sync_epoch_next, uint64_t sync_epoch_done)
{
    uint64_t low = current_low(j);
    lower_marks(j);
    if (j->conf.sync_never) {
        /* No sync to wait for, but the records that moved the cursor must be
         * written before the segments they free go. */
        if (j->oldest_seg < low && j->ackq.len && ji_ack_flush(j) < 0)
            return;
        j->low_done = low;
    } else {
        if (j->low_next && sync_epoch_done >= j->low_epoch) {
            j->low_done = j->low_next > j->low_done ? j->low_next : j->low_done;
            j->low_next = 0;
        }
        if (!j->low_next && low > j->low_done) {
            j->low_next = low;
            j->low_epoch = sync_epoch_next;
            if (sync_epoch_done >= j->low_epoch) { /* no sync to wait for (tests) */
                j->low_done = low;
                j->low_next = 0;
            }
        }
    }
    if (j->low_done < low)
        low = j->low_done;
    for (; j->oldest_seg < low; j->oldest_seg++) {
        char path[PATH_MAX];
        uint64_t size;
        ji_seg_path(j, j->oldest_seg, path, sizeof(path));
        if (j->conf.io->size(j->conf.io->ctx, path, &size) == 0)
            j->disk_bytes -= size < j->disk_bytes ? size : j->disk_bytes;
        int rc = j->conf.io->unlink(j->conf.io->ctx, path);
        if (rc < 0 && rc != -ENOENT) {
            log_error(j->conf.log, "journal %s: cannot remove segment %" PRIu64 ": %s", j->dir, j->oldest_seg,
                      errstr(rc));
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
    ji_finish_xfers(j, sync_epoch_done);
    ji_finish_fires(j, sync_epoch_done);
    lower_marks(j); /* before a MOVE raises it again */
    finish_moves(j, sync_epoch_done);
    delete_dead_segments(j, sync_epoch_next, sync_epoch_done);
    if (move_pinned(j, sync_epoch_next) > 0) {
        finish_moves(j, sync_epoch_done); /* at once when there is no sync to wait for */
        delete_dead_segments(j, sync_epoch_next, sync_epoch_done);
    }
    /* Past ack_compact_bytes, and only once the rewrite at least halves the
     * file: with many live items the checkpoint alone passes the limit, and
     * was written again after every sync (100,000 open items: 6.4 MB, each
     * second). So a rewrite costs at most one record per record since the
     * last one. */
    if (j->ack_off > j->conf.ack_compact_bytes && j->ack_off / 2 > ji_ack_ckpt_bytes(j) &&
        (j->conf.sync_never || sync_epoch_done >= j->ack_ckpt_epoch)) {
        int rc = ji_ack_rewrite(j, sync_epoch_next);
        if (rc < 0)
            log_error(j->conf.log, "journal %s: cannot rewrite the ack log: %s", j->dir, errstr(rc));
    }
}
