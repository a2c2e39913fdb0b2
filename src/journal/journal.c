/* journal/journal.c: one queue's journal: live items, appending, the read
 * cursor, consuming, and handing fds to the syncer. */
#include "journal/jnl_int.h"

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

/* ---- appending ---- */

/* Writes the batch of n entries already encoded at e[0..elen) (with
 * JF_BATCH_HDR_MAX bytes of room before e) at the tail, rolling the segment
 * first when needed. */
static int write_batch(struct jnl *j, unsigned char *e, uint64_t elen, uint32_t n, uint64_t first_id, uint64_t base,
                       uint64_t cum, uint64_t *seg, uint64_t *off)
{
    int rc;
    if (first_id >= JF_COUNT_MAX || n > JF_COUNT_MAX - first_id) {
        /* ids recovery would refuse: only a damaged or hand-made folder
         * gets near 2^62 */
        log_error(j->conf.log, "journal %s: item ids would pass the format's limit: append refused", j->dir);
        return -EOVERFLOW;
    }
    /* A full segment, or one of an older version, is rolled first. */
    if (j->tail_sh.version != JF_VERSION ||
        (j->tail_off > JF_SEG_HDR &&
         j->tail_off + jf_batch_hdr_size(&j->tail_sh, n, first_id, base, elen) + elen > j->conf.segment_size))
        if ((rc = ji_seg_roll(j, first_id, cum)) < 0)
            return rc;
    unsigned char hdr[JF_BATCH_HDR_MAX];
    size_t hlen = jf_batch_encode_hdr(hdr, &j->tail_sh, n, first_id, base, e, elen);
    memcpy(e - hlen, hdr, hlen);
    rc = jio_pwrite_all(j->conf.io, j->tail_fd, e - hlen, hlen + elen, (off_t)j->tail_off);
    if (rc < 0) {
        /* If even this fails, recovery cuts the partial batch. */
        j->conf.io->resize(j->conf.io->ctx, j->tail_fd, (off_t)j->tail_off);
        return rc;
    }
    *seg = j->tail_seg;
    *off = j->tail_off;
    /* The hot tail: the batch just written is the cache, so a consumer close
     * behind its producer gets it without a read. */
    if (hlen + elen <= BATCH_CACHE_MAX && ji_cache_reserve(j, hlen + elen) == 0) {
        memcpy(j->bc, e - hlen, hlen + elen);
        j->bc_seg = j->tail_seg;
        j->bc_off = j->tail_off;
        j->bc_sh = j->tail_sh;
        j->bc_len = hlen + elen;
        j->bc_checked = j->tail_off + 1;
        j->bc_idx = 0;
    }
    j->tail_off += hlen + elen;
    j->disk_bytes += hlen + elen;
    j->seg_dirty = 1;
    return 0;
}

int ji_append_one(struct jnl *j, const struct jf_rec *r, const void *data, const char *origin, size_t origin_len,
                  uint64_t *seg, uint64_t *off)
{
    int rc;
    if ((rc = ji_flush_pending(j)) < 0)
        return rc;
    uint64_t base = r->add_ms;
    uint64_t elen = jf_entry_hdr_size(r, base, origin_len) + (r->type == JF_REC_ITEM ? r->len : 0);
    j->wbuf.len = 0;
    if ((rc = buf_reserve(&j->wbuf, JF_BATCH_HDR_MAX + elen)) < 0)
        return rc;
    unsigned char *e = (unsigned char *)j->wbuf.data + JF_BATCH_HDR_MAX, *p = e;
    p += jf_entry_encode(p, r, base, origin, origin_len);
    if (r->type == JF_REC_ITEM)
        memcpy(p, data, r->len);
    return write_batch(j, e, elen, 1, j->st.next_id, base, j->st.tail_cum, seg, off);
}

void jnl_ticket_put(struct jnl_ticket *t)
{
    if (t && --t->refs == 0)
        free(t);
}

int jnl_pending(const struct jnl *j) { return j->pend.ticket != NULL || j->ackq.len > 0; }

/* Writes the deferred batch of items. */
static int flush_items(struct jnl *j)
{
    struct jnl_ticket *t = j->pend.ticket;
    if (!t)
        return 0;
    uint64_t seg, off;
    int rc = write_batch(j, (unsigned char *)j->pend.e.data + JF_BATCH_HDR_MAX, j->pend.e.len - JF_BATCH_HDR_MAX,
                         j->pend.count, j->pend.first_id, j->pend.base_ms, j->st.tail_cum - j->pend.bytes, &seg, &off);
    if (rc < 0) {
        /* Nothing of it was handed out (jnl_head flushes first) and no
         * record names its items: forgetting them is the whole undo. */
        j->st.next_id -= j->pend.count;
        j->st.tail_cum -= j->pend.bytes;
    }
    t->state = rc < 0 ? rc : 1;
    j->pend.ticket = NULL;
    j->pend.count = 0;
    j->pend.e.len = 0;
    if (j->pend.e.cap > 8192) /* an idle journal keeps no large buffer */
        buf_free(&j->pend.e);
    jnl_ticket_put(t);
    ji_ack_reserve_check(j, 0);
    return rc;
}

int ji_flush_pending(struct jnl *j) { return flush_items(j); }

/* Items first: an ack record never names an item not yet written (jnl_head
 * writes an item before handing it out). */
int jnl_flush(struct jnl *j)
{
    int rc = flush_items(j), rc2 = ji_ack_flush(j);
    return rc < 0 ? rc : rc2;
}

struct jnl_ticket *jnl_ack_ticket(struct jnl *j)
{
    if (j->ack_ticket)
        j->ack_ticket->refs++;
    return j->ack_ticket;
}

/* The record of a new item with attributes a (blob.c uses it too). */
struct jf_rec ji_attrs_rec(const struct jnl *j, uint8_t type, const struct jnl_attrs *a, uint64_t len)
{
    struct jf_rec r = {.type = type,
                       .flags = a->flags,
                       .id = j->st.next_id,
                       .add_ms = a->add_ms,
                       .expire_ms = a->expire_ms,
                       .visible_ms = a->visible_ms,
                       .deliveries = a->deliveries,
                       .len = len};
    if (a->origin_len) {
        r.origin_id = a->origin_id;
        r.reason = a->reason;
        r.origin_sum = jf_payload_sum(a->origin, a->origin_len);
    }
    if (a->priority != JNL_PRIORITY_DEFAULT) {
        r.priority = a->priority;
        r.rflags |= JF_RF_PRIORITY;
    }
    return r;
}

int jnl_append_deferred(struct jnl *j, const struct jnl_attrs *a, const void *data, size_t len,
                        struct jnl_ticket **ticket)
{
    int rc;
    struct jf_rec r = ji_attrs_rec(j, JF_REC_ITEM, a, len);
    uint64_t add_ms = a->add_ms;
    uint64_t ehdr = jf_entry_hdr_size(&r, j->pend.ticket ? j->pend.base_ms : add_ms, a->origin_len);
    /* A batch is bounded: past JF_BATCH_MAX it is written and another begins. */
    if (j->pend.ticket && j->pend.e.len - JF_BATCH_HDR_MAX + ehdr + len > JF_BATCH_MAX) {
        if ((rc = flush_items(j)) < 0)
            return rc;
        ehdr = jf_entry_hdr_size(&r, add_ms, a->origin_len);
    }
    if (!j->pend.ticket) {
        struct jnl_ticket *t = calloc(1, sizeof(*t));
        if (!t)
            return -ENOMEM;
        t->refs = 1; /* the journal's */
        j->pend.e.len = 0;
        if ((rc = buf_reserve(&j->pend.e, JF_BATCH_HDR_MAX)) < 0) { /* room for the header, written last */
            free(t);
            return rc;
        }
        j->pend.e.len = JF_BATCH_HDR_MAX;
        j->pend.ticket = t;
        j->pend.count = 0;
        j->pend.first_id = j->st.next_id;
        j->pend.base_ms = add_ms;
        j->pend.bytes = 0;
    }
    if ((rc = buf_reserve(&j->pend.e, ehdr + len)) < 0)
        return rc;
    unsigned char *p = (unsigned char *)j->pend.e.data + j->pend.e.len;
    p += jf_entry_encode(p, &r, j->pend.base_ms, a->origin, a->origin_len);
    memcpy(p, data, len);
    j->pend.e.len += ehdr + len;
    j->pend.count++;
    j->pend.bytes += len;
    jst_apply_rec(&j->st, &r);
    j->pend.ticket->refs++;
    *ticket = j->pend.ticket;
    return 0;
}

int jnl_append(struct jnl *j, const struct jnl_attrs *a, const void *data, size_t len)
{
    struct jf_rec r = ji_attrs_rec(j, JF_REC_ITEM, a, len);
    uint64_t seg, off;
    int rc = ji_append_one(j, &r, data, a->origin, a->origin_len, &seg, &off);
    if (rc < 0)
        return rc;
    ji_note_appended(j, &r, seg, off);
    rc = jst_apply_rec(&j->st, &r);
    ji_ack_reserve_check(j, 0);
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
                log_error(j->conf.log, "journal %s: segment %" PRIu64 " has a damaged header: skipped", j->dir, seq);
                continue;
            }
            return rc;
        }
        ji_close_fd(j, &j->r_fd);
        j->r_fd = fd;
        j->r_fd_seg = seq;
        j->r_sh = sh;
        j->st.r_seg = seq;
        j->st.r_off = JF_SEG_HDR;
        j->st.r_idx = 0;
        j->st.r_id = sh.first_id;
        j->st.r_cum = sh.cum_bytes;
        return 0;
    }
    return -ENOENT;
}

/* Keeps an fd of the cursor's segment (not the tail's) open in r_fd. */
static int cursor_fd(struct jnl *j)
{
    if (j->st.r_seg == j->tail_seg || (j->r_fd >= 0 && j->r_fd_seg == j->st.r_seg))
        return 0;
    int fd, temp;
    ji_close_fd(j, &j->r_fd);
    int rc = ji_seg_fd(j, j->st.r_seg, &fd, &temp, &j->r_sh);
    if (rc < 0)
        return rc;
    j->r_fd = fd;
    j->r_fd_seg = j->st.r_seg;
    return 0;
}

/* The record at the cursor (given-back items aside). */
static int cursor_head(struct jnl *j, struct jnl_head *h)
{
    for (;;) {
        if (j->st.r_seg == j->tail_seg && j->st.r_off >= j->tail_off) {
            if (!j->pend.ticket)
                return -ENOENT;
            /* The cursor caught up with items not written yet: write them
             * first, so nothing is handed out before it is on disk. */
            int rc = flush_items(j);
            if (rc < 0)
                return rc;
            continue;
        }
        int rc = cursor_fd(j);
        if (rc == -EBADMSG) /* its header never made it to disk: nothing in it can be read */
            log_error(j->conf.log, "journal %s: segment %" PRIu64 " has a damaged header: skipped", j->dir,
                      j->st.r_seg);
        if (rc == -ENOENT || rc == -EBADMSG) {
            if ((rc = ji_cursor_next_seg(j)) < 0)
                return rc == -ENOENT ? -EIO : rc;
            continue;
        }
        if (rc < 0)
            return rc;
        struct jbatch bt;
        struct jf_entry e;
        unsigned char *owned;
        /* unchecked: a damaged payload is found by jnl_read, and the item
         * dropped by the caller, as for any damaged item */
        rc = ji_batch_load(j, j->st.r_seg, j->st.r_off, &bt, &owned, 0);
        if (rc == 0 && j->st.r_idx >= bt.b.count) {
            /* past its last entry: the next batch */
            j->st.r_off += jbatch_size(&bt);
            j->st.r_idx = 0;
            free(owned);
            continue;
        }
        if (rc == 0)
            rc = ji_entry_at(j, &bt, j->st.r_seg, j->st.r_off, j->st.r_idx, &e);
        free(owned);
        if (rc == 0 && (e.r.rflags & JF_RF_MOVED)) {
            /* A copy of a live item made to free an old segment: that item
             * is reached through its node, never through the cursor. */
            j->st.r_idx++;
            continue;
        }
        if (rc == 0) {
            if (e.r.id != j->st.r_id)
                j->st.r_id = e.r.id;
            ji_item_from_entry(&h->item, &e, j->st.r_seg, j->st.r_off, j->st.r_idx);
            h->node = NULL;
            return 0;
        }
        if (j->st.r_seg == j->tail_seg)
            return rc == -ENODATA || rc == -EBADMSG ? -EIO : rc;
        if (rc == -EBADMSG)
            log_error(j->conf.log,
                      "journal %s: segment %" PRIu64 ": damaged batch at offset %" PRIu64
                      ": skipped the rest of the segment",
                      j->dir, j->st.r_seg, j->st.r_off);
        else if (rc != -ENODATA)
            return rc;
        if ((rc = ji_cursor_next_seg(j)) < 0)
            return rc == -ENOENT ? -EIO : rc;
    }
}

int jnl_head(struct jnl *j, struct jnl_head *h)
{
    struct list *first = list_first(&j->st.returned);
    if (first) {
        h->node = list_entry(first, struct jnl_node, link);
        h->item = h->node->item;
        return 0;
    }
    return cursor_head(j, h);
}

const struct jio *jnl_io(const struct jnl *j) { return j->conf.io; }

int jnl_oldest_ms(struct jnl *j, uint64_t *add_ms)
{
    uint64_t best = UINT64_MAX;
    struct list *first = list_first(&j->st.returned);
    if (first) /* given back: in id order, so the first was added first (clocks aside) */
        best = list_entry(first, struct jnl_node, link)->item.add_ms;
    struct jst *st = &j->st;
    if (st->r_seg == j->tail_seg && st->r_off >= j->tail_off) {
        if (j->pend.ticket && j->pend.count && j->pend.base_ms < best)
            best = j->pend.base_ms; /* not written yet: the batch's first item */
    } else if (j->hc_valid && j->hc_seg == st->r_seg && j->hc_off == st->r_off && j->hc_idx == st->r_idx &&
               j->hc_id == st->r_id) {
        best = j->hc_ms < best ? j->hc_ms : best;
    } else {
        struct jnl_head h;
        int rc = cursor_head(j, &h);
        if (rc < 0 && rc != -ENOENT)
            return rc;
        if (rc == 0) {
            j->hc_valid = 1;
            j->hc_seg = st->r_seg;
            j->hc_off = st->r_off;
            j->hc_idx = st->r_idx;
            j->hc_id = st->r_id;
            j->hc_ms = h.item.add_ms;
            best = h.item.add_ms < best ? h.item.add_ms : best;
        }
    }
    if (best == UINT64_MAX)
        return -ENOENT;
    *add_ms = best;
    return 0;
}

/* The payload of an item entry: its batch loaded (*owned as
 * ji_batch_load), *p at its first byte. Checks the entry is the item's. */
static int item_payload(struct jnl *j, const struct jnl_item *it, struct jbatch *bt, unsigned char **owned,
                        const unsigned char **p)
{
    struct jf_entry e;
    int rc = ji_batch_load(j, it->seg, it->off, bt, owned, 1);
    if (rc == 0 && (ji_item_entry(j, bt, it, &e) < 0 || e.r.id != it->id || e.r.len != it->len))
        rc = -EBADMSG;
    if (rc == -ENODATA)
        rc = -EIO; /* it was there when handed out */
    if (rc < 0) {
        free(*owned);
        *owned = NULL;
        return rc;
    }
    *p = bt->p + bt->b.hdr_len + e.payload_pos;
    return 0;
}

int jnl_read(struct jnl *j, const struct jnl_item *it, uint64_t off, void *buf, size_t n)
{
    if (off > it->len || n > it->len - off)
        return -EINVAL;
    if (it->kind == JF_REC_ITEM) {
        /* Its batch is checked whole when loaded (v1: the record's payload). */
        struct jbatch bt;
        unsigned char *owned;
        const unsigned char *p;
        int rc = item_payload(j, it, &bt, &owned, &p);
        if (rc == 0)
            memcpy(buf, p + off, n);
        free(owned);
        return rc;
    }
    char path[PATH_MAX];
    ji_blob_path(j, it->id, path, sizeof(path));
    int fd = j->conf.io->open(j->conf.io->ctx, path, O_RDONLY, 0);
    if (fd < 0)
        return fd == -ENOENT ? -EBADMSG : fd;
    int rc = jio_pread_all(j->conf.io, fd, buf, n, (off_t)off);
    j->conf.io->close(j->conf.io->ctx, fd);
    if (rc == -ENODATA)
        rc = -EBADMSG;
    if (rc == 0 && off == 0 && n == it->len && jf_payload_sum(buf, n) != it->payload_sum)
        rc = -EBADMSG;
    return rc;
}

int jnl_payload_fd(struct jnl *j, const struct jnl_item *it, int *fd, uint64_t *payload_off)
{
    if (it->kind == JF_REC_BLOB) {
        char path[PATH_MAX];
        ji_blob_path(j, it->id, path, sizeof(path));
        int f = j->conf.io->open(j->conf.io->ctx, path, O_RDONLY, 0);
        if (f < 0)
            return f == -ENOENT ? -EBADMSG : f;
        *fd = f;
        *payload_off = 0;
        return 0;
    }
    /* An item in a batch: the batch is checked, then an fd of its segment. */
    struct jbatch bt;
    unsigned char *owned;
    const unsigned char *p;
    struct jf_seg_hdr sh;
    int f, temp, rc = item_payload(j, it, &bt, &owned, &p);
    if (rc < 0)
        return rc;
    *payload_off = it->off + (uint64_t)(p - bt.p);
    free(owned);
    if ((rc = ji_seg_fd(j, it->seg, &f, &temp, &sh)) < 0)
        return rc;
    if (!temp && (f = j->conf.io->dup(j->conf.io->ctx, f)) < 0)
        return f;
    *fd = f;
    return 0;
}

/* ---- consuming ---- */

/* Queues ack record a, then applies it: the order every state change takes.
 * The record is written by the next flush, before any answer that reports
 * the change is sent (see jnl_ack_ticket). */
int ji_ack_apply(struct jnl *j, const struct jf_ack *a, struct jnl_node *hint, struct jnl_node **out)
{
    int rc = ji_ack_write(j, a);
    if (rc < 0)
        return rc;
    if ((rc = jst_apply_ack(&j->st, a, hint, out)) < 0) {
        j->ackq.len -= JF_ACK_REC; /* not applied: not written either */
        if (j->ackq.len == 0 && j->ack_ticket && j->ack_ticket->refs == 1) {
            jnl_ticket_put(j->ack_ticket); /* nobody holds a ticket for nothing */
            j->ack_ticket = NULL;
        }
    }
    return rc;
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
    struct jf_ack a = ji_item_ack(n ? JF_ACK_COUNT : JF_ACK_OPEN, &h->item);
    if (a.deliveries < UINT16_MAX) /* the count a gets cas carries saturates there */
        a.deliveries++;
    int rc = ji_ack_apply(j, &a, n, &n);
    if (rc < 0)
        return rc;
    if (a.type == JF_ACK_OPEN) {
        n->item = h->item; /* the attributes the ack record does not carry */
        n->item.deliveries = a.deliveries;
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

static int unlink_blob(void *arg, const char *name)
{
    struct jnl *j = arg;
    if (strncmp(name, "blob-", 5) == 0) {
        char path[PATH_MAX];
        ji_path_of(j, path, sizeof(path), name);
        j->conf.io->unlink(j->conf.io->ctx, path);
    }
    return 0;
}

/* Removes every blob file of the folder (all items are gone). */
static void unlink_all_blobs(struct jnl *j) { j->conf.io->listdir(j->conf.io->ctx, j->dir, unlink_blob, j); }

int jnl_clear(struct jnl *j)
{
    /* Written at once: its answer is sent as soon as this returns. */
    int rc = jnl_flush(j);
    if (rc < 0)
        return rc;
    struct jf_ack a = {.type = JF_ACK_FLUSH,
                       .id = j->st.next_id,
                       .seg = j->tail_seg,
                       .off = j->tail_off,
                       .cum = j->st.tail_cum};
    if ((rc = ji_ack_apply(j, &a, NULL, NULL)) < 0)
        return rc;
    /* On failure the record stays queued, written with the next ones; the
     * blob files stay until it is (a crash before would bring their items
     * back): they go with the next clear, or the queue. */
    if ((rc = ji_ack_flush(j)) < 0)
        return rc;
    j->disk_bytes -= j->blob_bytes < j->disk_bytes ? j->blob_bytes : j->disk_bytes;
    j->blob_bytes = 0;
    j->ndoomed = 0;
    unlink_all_blobs(j);
    return 0;
}

int jnl_reap_pending(const struct jnl *j)
{
    return j->ndoomed > 0 || j->low_next != 0 || j->npmove > 0 || j->npxfer > 0 || j->npfire > 0;
}

int jnl_idle(const struct jnl *j) { return j->st.nopen == 0 && j->ndoomed == 0 && j->ackq.len == 0; }

void jnl_close_owing(struct jnl *j, void (*owe)(void *ctx, const char *path), void *ctx)
{
    char path[PATH_MAX], name[32];
    if (!j)
        return;
    jnl_flush(j);
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
        for (size_t i = 0; i < j->nowed; i++) {
            ji_path_of(j, path, sizeof(path), j->owed[i]);
            owe(ctx, path);
        }
        /* handed to a sync job still running: owed again, in case it fails */
        for (size_t i = 0; i < j->ninflight; i++) {
            ji_path_of(j, path, sizeof(path), j->inflight[i]);
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

int jnl_dirty(const struct jnl *j)
{
    /* a segment deletion or a MOVE waiting for a sync asks for one too */
    return j->seg_dirty || j->ack_dirty || j->dir_dirty || j->npending > 0 || jnl_pending(j) || j->nowed > 0 ||
           j->low_next || j->npmove;
}

int jnl_sync_fds(struct jnl *j, int *fds, int cap)
{
    const struct jio *io = j->conf.io;
    int n = 0, rc;
    if (!jnl_dirty(j))
        return 0;
    if ((size_t)cap < j->npending + j->nowed + 3)
        return -ENOBUFS;
    if ((rc = jnl_flush(j)) < 0)
        return rc;
    if ((size_t)cap < j->npending + j->nowed + 3) /* the flush may have rolled a segment */
        return -ENOBUFS;
    if (j->dir_dirty) {
        rc = j->dir_fd < 0 ? io->open_dir(io->ctx, j->dir) : 0;
        if (rc >= 0 && j->dir_fd < 0)
            j->dir_fd = rc;
        if (rc >= 0 && (rc = io->dup(io->ctx, j->dir_fd)) >= 0)
            fds[n++] = rc;
        else if (rc != -EOPNOTSUPP) /* no folder fsync on this platform: nothing to add */
            goto fail;
    }
    int mine[2] = {j->seg_dirty ? j->tail_fd : -1, j->ack_dirty ? j->ack_fd : -1};
    for (int i = 0; i < 2; i++) {
        if (mine[i] < 0)
            continue;
        if ((rc = io->dup(io->ctx, mine[i])) < 0)
            goto fail;
        fds[n++] = rc;
    }
    /* Files an earlier process wrote: opened by name (one gone since, a
     * deleted segment, needs nothing). */
    for (size_t i = 0; i < j->nowed; i++) {
        char path[PATH_MAX];
        ji_path_of(j, path, sizeof(path), j->owed[i]);
        if ((rc = io->open(io->ctx, path, O_RDONLY, 0)) == -ENOENT)
            continue;
        if (rc < 0)
            goto fail;
        fds[n++] = rc;
    }
    /* Remember which retired files this job syncs: owed again if it fails. */
    if (j->ninflight + j->npending + j->nowed > j->capinflight) {
        size_t cap = (j->ninflight + j->npending + j->nowed) * 2;
        char(*a)[32] = realloc(j->inflight, cap * sizeof(*a));
        if (!a) {
            rc = -ENOMEM;
            goto fail;
        }
        j->inflight = a;
        j->capinflight = cap;
    }
    for (size_t i = 0; i < j->npending; i++) {
        fds[n++] = j->pending_fds[i].fd;
        memcpy(j->inflight[j->ninflight++], j->pending_fds[i].name, 32);
    }
    for (size_t i = 0; i < j->nowed; i++)
        memcpy(j->inflight[j->ninflight++], j->owed[i], 32);
    j->npending = 0;
    j->nowed = 0;
    j->seg_dirty = j->ack_dirty = j->dir_dirty = 0;
    return n;
fail:
    /* Nothing is marked clean: the next sync tries again, and whoever waits
     * on this one is told it failed. */
    while (n > 0)
        io->close(io->ctx, fds[--n]);
    return rc;
}

void jnl_sync_done(struct jnl *j) { j->ninflight = 0; }

int ji_owe_name(struct jnl *j, const char *name)
{
    if (j->conf.sync_never)
        return 0;
    if (j->nowed == j->capowed) {
        size_t cap = j->capowed ? j->capowed * 2 : 8;
        char(*a)[32] = realloc(j->owed, cap * sizeof(*a));
        if (!a)
            return -ENOMEM;
        j->owed = a;
        j->capowed = cap;
    }
    snprintf(j->owed[j->nowed++], 32, "%s", name);
    return 0;
}

void jnl_sync_failed(struct jnl *j, void (*owe)(void *ctx, const char *path), void *ctx)
{
    char path[PATH_MAX];
    for (size_t i = 0; i < j->ninflight; i++) {
        ji_path_of(j, path, sizeof(path), j->inflight[i]);
        owe(ctx, path);
    }
    j->ninflight = 0;
    jnl_mark_unsynced(j);
}

int jnl_sync_never(const struct jnl *j) { return j->conf.sync_never; }

void jnl_set_sync_never(struct jnl *j, int on)
{
    if (!on && j->conf.sync_never)
        jnl_mark_unsynced(j);
    j->conf.sync_never = on;
}

void jnl_mark_unsynced(struct jnl *j)
{
    j->seg_dirty = j->tail_fd >= 0;
    j->ack_dirty = j->ack_fd >= 0;
    j->dir_dirty = 1;
}

void jnl_get_stats(const struct jnl *j, struct jnl_stats *st)
{
    /* an item moving to another queue is that queue's already */
    st->items = (j->st.next_id > j->st.r_id ? j->st.next_id - j->st.r_id : 0) + j->st.nnodes - j->st.nxfer;
    st->bytes = (j->st.tail_cum > j->st.r_cum ? j->st.tail_cum - j->st.r_cum : 0) + j->st.node_bytes - j->st.xfer_bytes;
    st->open = j->st.nopen - j->st.nxfer;
    st->open_bytes = j->st.open_bytes - j->st.xfer_bytes;
    st->logsize = j->disk_bytes + j->ack_off;
}
