/* journal/acklog.c: writing the ack log: one record per removal, and whole
 * checkpoints into the other of the two files. */
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

/* ---- the ack log ---- */

/* A checkpoint is written through a buffer: one pwrite per record made a
 * rewrite with 100,000 live items 100,000 syscalls, 50-110 ms of the loop. */
#define ACK_CKPT_BUF (256 * JF_ACK_REC)

struct ack_out {
    int fd;
    uint64_t off; /* where buf goes in the file */
    size_t n;     /* bytes in buf */
    unsigned char buf[ACK_CKPT_BUF];
};

/* Writes what w holds at w->off (w stays the caller's); 0 or -errno. */
static int ack_out_flush(struct jnl *j, struct ack_out *w)
{
    int rc = w->n ? jio_pwrite_all(j->conf.io, w->fd, w->buf, w->n, (off_t)w->off) : 0;
    if (rc < 0)
        return rc;
    w->off += w->n;
    w->n = 0;
    return 0;
}

/* Adds record a to w, writing w out first when it is full. */
static int ack_put(struct jnl *j, struct ack_out *w, const struct jf_ack *a)
{
    if (w->n + JF_ACK_REC > sizeof(w->buf)) {
        int rc = ack_out_flush(j, w);
        if (rc < 0)
            return rc;
    }
    jf_ack_encode(w->buf + w->n, a);
    w->n += JF_ACK_REC;
    return 0;
}

/* Ack-log space reserved ahead: removals must go on when the disk is full,
 * since consuming is how a full queue gets its space back. The reserve is
 * sized to the backlog, one record per live item, between ACK_RESERVE_MIN
 * and ACK_RESERVE_MAX (by then consuming frees whole segments), and ends on
 * a block boundary: the ack file of a queue holding a few items fits in one
 * 4 KiB block. */
#define ACK_RESERVE_MIN (1024)
#define ACK_RESERVE_MAX (256 * 1024)
#define ACK_RESERVE_ALIGN 4096

static uint64_t reserve_wanted(const struct jnl *j)
{
    uint64_t live = (j->st.next_id > j->st.r_id ? j->st.next_id - j->st.r_id : 0) + j->st.nnodes;
    uint64_t want = (live + 1) * JF_ACK_REC;
    return want < ACK_RESERVE_MIN ? ACK_RESERVE_MIN : want > ACK_RESERVE_MAX ? ACK_RESERVE_MAX : want;
}

/* Reserves ack-log blocks ahead of need, while the disk still has room: when
 * the ack file is started or opened, and whenever what is left of the
 * reserve falls below half of what the backlog wants (so appends top it up
 * as a queue grows). Tried once per top-up whether it works or not, so an
 * unsupporting platform costs nothing. */
void ji_ack_reserve(struct jnl *j)
{
    uint64_t end = (j->ack_off + reserve_wanted(j) + ACK_RESERVE_ALIGN - 1) / ACK_RESERVE_ALIGN * ACK_RESERVE_ALIGN;
    if (j->conf.io->reserve && j->ack_fd >= 0)
        j->conf.io->reserve(j->conf.io->ctx, j->ack_fd, (off_t)j->ack_off, (off_t)(end - j->ack_off));
    j->ack_reserved = end;
}

void ji_ack_reserve_check(struct jnl *j, uint64_t need)
{
    uint64_t left = j->ack_reserved > j->ack_off ? j->ack_reserved - j->ack_off : 0;
    if (left < need || left < JF_ACK_REC || left < reserve_wanted(j) / 2)
        ji_ack_reserve(j);
}

/* Records written with one write: the removals of one loop turn. */
#define ACK_BATCH 64
/* Records kept while writes fail; past this, removals are refused. */
#define ACK_QUEUE_MAX 4096

int ji_ack_write(struct jnl *j, const struct jf_ack *a)
{
    if (j->ackq.len >= ACK_BATCH * JF_ACK_REC) {
        ji_ack_flush(j); /* a failure is its ticket's, and keeps the records */
        if (j->ackq.len >= ACK_QUEUE_MAX * JF_ACK_REC)
            return j->ack_err ? j->ack_err : -EIO;
    }
    if (!j->ack_ticket) {
        if (!(j->ack_ticket = calloc(1, sizeof(*j->ack_ticket))))
            return -ENOMEM;
        j->ack_ticket->refs = 1;
    }
    if (buf_reserve(&j->ackq, JF_ACK_REC) < 0)
        return -ENOMEM;
    jf_ack_encode((unsigned char *)j->ackq.data + j->ackq.len, a);
    j->ackq.len += JF_ACK_REC;
    return 0;
}

static void settle_ticket(struct jnl *j, int rc)
{
    struct jnl_ticket *t = j->ack_ticket;
    j->ack_ticket = NULL;
    if (t) {
        t->state = rc < 0 ? rc : 1;
        jnl_ticket_put(t);
    }
}

int ji_ack_flush(struct jnl *j)
{
    if (j->ackq.len == 0)
        return 0;
    ji_ack_reserve_check(j, j->ackq.len);
    /* A failed write may have left part of the records: the next try
     * writes over it from the same offset. */
    int rc = jio_pwrite_all(j->conf.io, j->ack_fd, j->ackq.data, j->ackq.len, (off_t)j->ack_off);
    if (rc == 0) {
        j->ack_off += j->ackq.len;
        j->ack_dirty = 1;
        j->ackq.len = 0;
        if (j->ackq.cap > ACK_BATCH * JF_ACK_REC) /* after a run of failures */
            buf_free(&j->ackq);
    }
    if (rc < 0) {
        /* Whole records of the failed write may have reached the file: cut
         * them off, so a crash before the retry does not keep removals whose
         * answers were errors (best effort: the file may refuse that too). */
        if (j->conf.io->resize(j->conf.io->ctx, j->ack_fd, (off_t)j->ack_off) == 0)
            j->ack_reserved = j->ack_off; /* the reserve went with it */
    }
    j->ack_err = rc;
    settle_ticket(j, rc);
    return rc;
}

void ji_ack_discard(struct jnl *j, int err)
{
    settle_ticket(j, err);
    buf_free(&j->ackq);
}

static void node_to_ack(const struct jnl_node *n, struct jf_ack *a)
{
    *a = (struct jf_ack){.type = JF_ACK_OUT,
                         .kind = n->item.kind,
                         .idx = n->item.idx,
                         .id = n->item.id,
                         .seg = n->item.seg,
                         .off = n->item.off,
                         .len = n->item.len,
                         .deliveries = n->item.deliveries};
}

/* The records after a checkpoint's CKPT: every live item's OUT, each
 * transfer's XFER, a delay bucket's FIRED and FIRING. */
static uint64_t ckpt_records(const struct jnl *j)
{
    return j->st.nnodes + j->st.nxfer + (j->st.fire.id != 0) + j->st.npend;
}

uint64_t ji_ack_ckpt_bytes(const struct jnl *j) { return JF_ACK_HDR + (1 + ckpt_records(j)) * JF_ACK_REC; }

/* Writes a whole ack file (header, checkpoint, live items) to fd; returns the
 * length written in *len. */
static int ack_write_ckpt(struct jnl *j, int fd, uint64_t gen, uint64_t *len)
{
    /* 16 KiB of buffer: on the heap (freed here), not the loop thread's stack */
    struct ack_out *w = malloc(sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->fd = fd;
    w->off = 0;
    w->n = JF_ACK_HDR;
    jf_ack_hdr_encode(w->buf, &(struct jf_ack_hdr){.version = JF_ACK_VERSION, .generation = gen});
    int rc;
    struct jf_ack a = {.type = JF_ACK_CKPT,
                       .idx = j->st.r_idx,
                       .id = j->st.r_id,
                       .seg = j->st.r_seg,
                       .off = j->st.r_off,
                       /* the records of the checkpoint: every live item's OUT, each
                        * transfer's XFER, a delay bucket's FIRED and FIRING; a file
                        * that holds fewer is not used */
                       .len = ckpt_records(j),
                       .cum = j->st.r_cum};
    if ((rc = ack_put(j, w, &a)) < 0)
        goto out;
    struct list *lists[2] = {&j->st.returned, &j->st.open};
    for (int i = 0; i < 2; i++) {
        struct list *pos, *tmp;
        list_for_each_safe(pos, tmp, lists[i]) {
            node_to_ack(list_entry(pos, struct jnl_node, link), &a);
            if ((rc = ack_put(j, w, &a)) < 0)
                goto out;
        }
    }
    /* a delay bucket's firing: what is known done, then what may be */
    if (j->st.fire.id) {
        a = (struct jf_ack){.type = JF_ACK_FIRED, .id = j->st.fire.id, .off = j->st.fire.due, .len = j->st.fire.fired};
        if ((rc = ack_put(j, w, &a)) < 0)
            goto out;
    }
    for (size_t i = 0; i < j->st.npend; i++) {
        const struct jfire *p = &j->st.pend[i];
        a = (struct jf_ack){.type = JF_ACK_FIRING,
                            .id = p->id,
                            .off = p->due,
                            .len = p->fired,
                            .seg = p->lane_dir,
                            .cum = p->lane_id};
        if ((rc = ack_put(j, w, &a)) < 0)
            goto out;
    }
    /* after every OUT: the transfers under way, each naming its node */
    struct list *pos;
    for (pos = j->st.open.next; pos != &j->st.open; pos = pos->next) {
        const struct jnl_item *it = &list_entry(pos, struct jnl_node, link)->item;
        if (!it->xfer)
            continue;
        a = (struct jf_ack){.type = JF_ACK_XFER,
                            .kind = it->kind,
                            .id = it->id,
                            .seg = it->xfer_dir,
                            .off = it->xfer_id,
                            .cum = it->xfer_due,
                            .len = it->len,
                            .xfer = it->xfer};
        if ((rc = ack_put(j, w, &a)) < 0)
            goto out;
    }
    if ((rc = ack_out_flush(j, w)) < 0 || (rc = j->conf.io->resize(j->conf.io->ctx, fd, (off_t)w->off)) < 0)
        goto out;
    *len = w->off;
out:
    free(w);
    return rc;
}

/* Starts a new ack file (the other of the two) holding the current state. */
int ji_ack_rewrite(struct jnl *j, uint64_t epoch_next)
{
    char path[PATH_MAX], name[16];
    if (j->ack_gen + 1 >= JF_COUNT_MAX) {
        /* a file recovery would refuse, so the old one would win: only a
         * damaged or hand-made folder has a generation near 2^62 */
        log_error(j->conf.log, "journal %s: the ack log's generation is at the format's limit: refused", j->dir);
        return -EOVERFLOW;
    }
    int idx = j->ack_fd >= 0 ? 1 - j->ack_idx : 0;
    snprintf(name, sizeof(name), "acks.%d", idx & 1);
    ji_path_of(j, path, sizeof(path), name);
    int fd = j->conf.io->open(j->conf.io->ctx, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return fd;
    uint64_t len;
    int rc = ack_write_ckpt(j, fd, j->ack_gen + 1, &len);
    if (rc < 0) {
        /* A header of a newer generation must not stand in front of stale
         * records: empty the file, so recovery ignores it. */
        j->conf.io->resize(j->conf.io->ctx, fd, 0);
        j->conf.io->close(j->conf.io->ctx, fd);
        return rc;
    }
    /* The checkpoint holds what the queued records did: they are written. */
    j->ackq.len = 0;
    j->ack_err = 0;
    settle_ticket(j, 1);
    char old[16];
    snprintf(old, sizeof(old), "acks.%d", j->ack_idx);
    ji_retire_fd(j, &j->ack_fd, 0, old);
    j->ack_fd = fd;
    j->ack_idx = idx;
    j->ack_off = len;
    j->ack_gen++;
    j->ack_ckpt_epoch = epoch_next;
    j->ack_dirty = 1;
    j->dir_dirty = 1;
    ji_ack_reserve(j);
    return 0;
}
