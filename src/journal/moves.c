/* journal/moves.c: items leaving a journal for another queue (the XFER,
 * CONFIRM and RESTORE of a move), a delay bucket's firing (FIRING, FIRED),
 * and the reads those need: an entry by its place, by its id, or every
 * entry in order. The moves' protocol is in docs/journal-format.md,
 * "Transfers"; the firing's in docs/scheduling.md. */
#include "journal/jnl_int.h"

#include "journal/format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

int jnl_xfer_begin(struct jnl *j, const struct jnl_head *h, const struct jnl_xfer *x, struct jnl_node **out)
{
    struct jnl_node *n = h->node;
    int rc;
    if (!n) { /* the item at the cursor: handed out first, its count unchanged */
        struct jf_ack o = ji_item_ack(JF_ACK_OPEN, &h->item);
        if ((rc = ji_ack_apply(j, &o, NULL, &n)) < 0)
            return rc;
        n->item = h->item;
    }
    struct jf_ack a = {.type = JF_ACK_XFER,
                       .kind = n->item.kind,
                       .id = n->item.id,
                       .seg = x->dir,
                       .off = x->id,
                       .cum = x->due,
                       .len = n->item.len,
                       .xfer = x->reason};
    if ((rc = ji_ack_apply(j, &a, n, NULL)) < 0) {
        if (!h->node)
            jst_release(&j->st, n); /* opened for nothing: given back, as the OPEN record says */
        return rc;
    }
    /* Written now: the copy is made only once this record is in the file. */
    if ((rc = ji_ack_flush(j)) < 0) {
        jnl_xfer_cancel(j, n);
        return rc;
    }
    *out = n;
    return 0;
}

int jnl_xfer_end(struct jnl *j, struct jnl_node *n)
{
    int rc = jnl_confirm(j, n);
    return rc < 0 ? rc : ji_ack_flush(j);
}

int jnl_xfer_done(struct jnl *j, struct jnl_node *n, uint64_t sync_epoch_next)
{
    if (j->conf.sync_never)
        return jnl_confirm(j, n);
    if (j->npxfer == j->cappxfer) {
        size_t cap = j->cappxfer ? j->cappxfer * 2 : 8;
        struct pxfer *p = realloc(j->pxfer, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        j->pxfer = p;
        j->cappxfer = cap;
    }
    j->pxfer[j->npxfer++] = (struct pxfer){.id = n->item.id, .epoch = sync_epoch_next};
    n->item.xfer_ending = 1;
    return 0;
}

void ji_finish_xfers(struct jnl *j, uint64_t sync_epoch_done)
{
    for (size_t i = 0; i < j->npxfer;) {
        if (sync_epoch_done < j->pxfer[i].epoch) {
            i++;
            continue;
        }
        struct jnl_node *n = jst_find(&j->st, j->pxfer[i].id);
        /* The copy is durable: the removal here may be too. If the CONFIRM
         * cannot be queued, the node stays in transfer and the next open
         * finishes it (the copy is there: only the CONFIRM is written). */
        if (n && jst_in_xfer(&j->st, n) && jnl_confirm(j, n) < 0)
            n->item.xfer_ending = 0;
        j->pxfer[i] = j->pxfer[--j->npxfer];
    }
}

int jnl_xfer_cancel(struct jnl *j, struct jnl_node *n)
{
    struct jnl_item it = n->item;
    it.xfer = 0;
    int rc = jnl_restore(j, &it);
    /* Written now: the destination may take other items under the id the
     * XFER named, which must not pass for the copy after a crash. */
    return rc < 0 ? rc : ji_ack_flush(j);
}

uint64_t jnl_next_id(const struct jnl *j) { return j->st.next_id; }
void ji_note_appended(struct jnl *j, const struct jf_rec *r, uint64_t seg, uint64_t off)
{
    j->last_at = (struct jnl_item){.id = r->id,
                                   .kind = r->type,
                                   .seg = seg,
                                   .off = off,
                                   .idx = 0,
                                   .len = r->len,
                                   .add_ms = r->add_ms,
                                   .expire_ms = r->expire_ms,
                                   .payload_sum = r->payload_sum,
                                   .visible_ms = r->visible_ms,
                                   .flags = r->flags,
                                   .deliveries = r->deliveries,
                                   .origin_id = r->origin_id,
                                   .reason = r->reason};
}

void jnl_last_appended(const struct jnl *j, struct jnl_item *out) { *out = j->last_at; }

int jnl_item_at(struct jnl *j, uint64_t seg, uint64_t off, uint32_t idx, struct jnl_item *out)
{
    struct jbatch bt;
    struct jf_entry e;
    unsigned char *owned = NULL;
    int rc = ji_batch_load(j, seg, off, &bt, &owned, 0);
    if (rc == 0 && (rc = ji_entry_at(j, &bt, seg, off, idx, &e)) == 0)
        ji_item_from_entry(out, &e, seg, off, idx);
    free(owned);
    return rc == -ENODATA ? -EBADMSG : rc;
}

int jnl_scan(struct jnl *j, uint64_t *seg, uint64_t *off, size_t max, void (*fn)(void *ctx, const struct jnl_item *it),
             void *ctx)
{
    int rc = ji_flush_pending(j); /* the deferred batch too: it is part of the tail */
    if (rc < 0)
        return rc;
    if (*seg < j->oldest_seg) {
        *seg = j->oldest_seg;
        *off = JF_SEG_HDR;
    }
    for (size_t n = 0;; n++) {
        if (*seg > j->tail_seg || (*seg == j->tail_seg && *off >= j->tail_off))
            return 1;
        if (n >= max)
            return 0;
        struct jbatch bt;
        unsigned char *owned = NULL;
        rc = ji_batch_load(j, *seg, *off, &bt, &owned, 0);
        if (rc == -ENODATA || rc == -EBADMSG || rc == -ENOENT) { /* the end of this segment */
            free(owned);
            if (*seg == j->tail_seg)
                return 1;
            (*seg)++;
            *off = JF_SEG_HDR;
            continue;
        }
        if (rc < 0)
            return rc;
        uint64_t pos = 0, next = bt.b.first_id;
        struct jf_entry e;
        for (uint32_t i = 0; i < bt.b.count && jbatch_entry(&bt, &pos, &next, &e) == 0; i++) {
            if (e.r.rflags & JF_RF_MOVED)
                continue;
            struct jnl_item it;
            ji_item_from_entry(&it, &e, *seg, *off, i);
            fn(ctx, &it);
        }
        *off += jbatch_size(&bt);
        free(owned);
    }
}

int jnl_fire_begin(struct jnl *j, const struct jnl_fire *f)
{
    struct jf_ack a =
        {.type = JF_ACK_FIRING, .id = f->id, .off = f->due, .len = f->fired, .seg = f->lane_dir, .cum = f->lane_id};
    int rc = ji_ack_apply(j, &a, NULL, NULL);
    /* Written now: the copies are made only once this record is in the file. */
    return rc < 0 ? rc : ji_ack_flush(j);
}

/* Queues a FIRED record for key f (void: the FIRINGs after the key in
 * force are void). */
static int fired(struct jnl *j, const struct jnl_fire *f, int is_void)
{
    struct jf_ack a = {.type = JF_ACK_FIRED, .id = f->id, .off = f->due, .len = f->fired, .xfer = is_void ? 1 : 0};
    return ji_ack_apply(j, &a, NULL, NULL);
}

int jnl_fire_done(struct jnl *j, const struct jnl_fire *f, uint64_t sync_epoch_next)
{
    if (j->conf.sync_never)
        return fired(j, f, 0);
    if (j->npfire == j->cappfire) {
        size_t cap = j->cappfire ? j->cappfire * 2 : 8;
        struct pfire *p = realloc(j->pfire, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        j->pfire = p;
        j->cappfire = cap;
    }
    j->pfire[j->npfire++] = (struct pfire){.key = *f, .epoch = sync_epoch_next};
    return 0;
}

void ji_finish_fires(struct jnl *j, uint64_t sync_epoch_done)
{
    size_t k = 0;
    while (k < j->npfire && j->pfire[k].epoch <= sync_epoch_done)
        k++;
    if (k == 0)
        return;
    /* the latest of them says it for all (they are in order); if it cannot
     * be queued, a restart finds their copies in the lane instead */
    if (fired(j, &j->pfire[k - 1].key, 0) < 0)
        return;
    memmove(j->pfire, j->pfire + k, (j->npfire - k) * sizeof(*j->pfire));
    j->npfire -= k;
}

int jnl_fire_void(struct jnl *j, const struct jnl_fire *f)
{
    j->npfire = 0;
    int rc = fired(j, f, 1);
    return rc < 0 ? rc : ji_ack_flush(j);
}

void jnl_fire_state(const struct jnl *j, struct jnl_fire *done, const struct jnl_fire **pend, size_t *npend)
{
    *done = (struct jnl_fire){.due = j->st.fire.due, .id = j->st.fire.id, .fired = j->st.fire.fired};
    *pend = (const struct jnl_fire *)j->st.pend;
    *npend = j->st.npend;
}

/* The segment that holds item id (the last whose first id is not above
 * it), or 0 when none can be read. */
static uint64_t seg_of_id(struct jnl *j, uint64_t id)
{
    for (uint64_t seq = j->tail_seg; seq >= j->oldest_seg && seq > 0; seq--) {
        struct jf_seg_hdr sh;
        int fd = ji_seg_open(j, seq, O_RDONLY);
        if (fd < 0)
            continue;
        int rc = ji_seg_read_hdr(j, fd, &sh);
        j->conf.io->close(j->conf.io->ctx, fd);
        if (rc == 0 && sh.first_id <= id)
            return seq;
    }
    return 0;
}

int jnl_origin_of_id(struct jnl *j, uint64_t id, char *name, size_t *len, uint64_t *origin_id)
{
    uint64_t seq = id < j->st.next_id ? seg_of_id(j, id) : 0;
    uint64_t off = JF_SEG_HDR, end = seq == j->tail_seg ? j->tail_off : UINT64_MAX;
    if (!seq)
        return 0;
    for (;;) {
        struct jbatch bt;
        unsigned char *owned = NULL;
        int rc = off < end ? ji_batch_load(j, seq, off, &bt, &owned, 0) : -ENODATA;
        if (rc < 0)
            return rc == -ENODATA || rc == -EBADMSG || rc == -ENOENT ? 0 : rc;
        uint64_t pos = 0, next = bt.b.first_id;
        struct jf_entry e;
        int found = 0;
        for (uint32_t i = 0; i < bt.b.count && !found && jbatch_entry(&bt, &pos, &next, &e) == 0; i++) {
            if ((e.r.rflags & JF_RF_MOVED) || e.r.id != id)
                continue;
            found = 1;
            *len = e.origin_len;
            if (e.origin_len) /* (an entry without one: no bytes to copy) */
                memcpy(name, e.origin, e.origin_len);
            *origin_id = e.r.origin_id;
        }
        uint64_t size = jbatch_size(&bt), last = next;
        free(owned);
        if (found)
            return 1;
        if (last > id)
            return 0; /* passed it: no such entry */
        off += size;
    }
}

int jnl_origin(struct jnl *j, const struct jnl_item *it, char *out)
{
    if (!it->origin_id)
        return 0;
    struct jbatch bt;
    struct jf_entry e;
    unsigned char *owned = NULL;
    int rc = ji_batch_load(j, it->seg, it->off, &bt, &owned, 0);
    if (rc == 0 && (ji_item_entry(j, &bt, it, &e) < 0 || e.r.id != it->id))
        rc = -EBADMSG;
    if (rc == 0) {
        memcpy(out, e.origin, e.origin_len);
        rc = (int)e.origin_len;
    }
    free(owned);
    return rc == -ENODATA ? -EIO : rc;
}

struct jnl_node *jnl_returned_next(struct jnl *j, struct jnl_node *n)
{
    struct list *pos = n ? n->link.next : j->st.returned.next;
    return pos == &j->st.returned ? NULL : list_entry(pos, struct jnl_node, link);
}

struct jnl_node *jnl_next_xfer(struct jnl *j)
{
    struct list *pos;
    for (pos = j->st.open.next; pos != &j->st.open; pos = pos->next) {
        struct jnl_node *n = list_entry(pos, struct jnl_node, link);
        if (jst_in_xfer(&j->st, n) && !n->item.xfer_ending)
            return n;
    }
    return NULL;
}
