/* journal/jnl_int.h: the journal's insides, shared by its files only. */
#ifndef DARNER_JOURNAL_JNL_INT_H
#define DARNER_JOURNAL_JNL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "journal/format.h"
#include "journal/journal.h"
#include "journal/replay.h"
#include "journal/state.h"
#include "util/buf.h"

#define INLINE_WRITE_MAX (64 * 1024) /* payloads up to this go out in one write */

struct jnl {
    struct jnl_conf conf;
    char *dir;
    int dir_fd; /* for syncing new directory entries; -1 until needed */
    int dir_dirty;
    int seg_dirty, ack_dirty; /* written since the last sync: each file is synced only then */

    /* the state records define: cursor, tail counts, live items (apply.c) */
    struct jst st;

    /* segments [oldest_seg, tail_seg] exist; appends go to tail_fd at tail_off */
    uint64_t oldest_seg, tail_seg, tail_off;
    int tail_fd;
    struct jf_seg_hdr tail_sh; /* the tail segment's header (a v1 tail is rolled before appending) */
    uint64_t disk_bytes;       /* sum of segment and blob file sizes */
    uint64_t blob_bytes;       /* of which blob files */
    /* fds the journal is done with that still need a sync; seg names the
     * segment an fd is of (0: another file), so deleting that segment can
     * close it at once and give its space back */
    struct pending_fd {
        int fd;
        uint64_t seg;
        char name[32]; /* the file's name in the folder */
    } * pending_fds;
    size_t npending, cappending;
    struct buf wbuf; /* scratch for one batch */

    /* the deferred batch (jnl_append_deferred): its entries, encoded from
     * pend_e + JF_BATCH_HDR_MAX on, so the header can go in front */
    struct {
        uint32_t count;
        uint64_t first_id, base_ms, bytes; /* bytes: payload bytes, for the rollback */
        struct buf e;
        struct jnl_ticket *ticket; /* NULL: no batch waits */
    } pend;

    /* the last batch read or written, when it is no larger than
     * BATCH_CACHE_MAX: a get of a small item is one read, and the items
     * after it in the batch none. The buffer starts at BATCH_CACHE and grows
     * to the batches seen (a queue whose sets come in large batches). */
#define BATCH_CACHE 4096
#define BATCH_CACHE_MAX (JF_BATCH_MAX + JF_BATCH_HDR_MAX + 4096)
    unsigned char *bc;
    size_t bc_cap;
    /* bytes [bc_off, bc_off + bc_len) of segment bc_seg, read at once: the
     * batches after the one asked for come with it (small items are read
     * 4 KiB at a time, not one batch a read) */
    uint64_t bc_seg, bc_off, bc_len; /* bc_len 0: nothing cached */
    int started_over;                /* recovery found the only segment's header damaged and started it empty */
    /* jnl_oldest_ms's last answer from the cursor: the add time of the
     * entry at cursor position (hc_seg, hc_off, hc_idx) with id hc_id */
    int hc_valid;
    uint64_t hc_seg, hc_off, hc_id, hc_ms;
    uint32_t hc_idx;
    struct jf_seg_hdr bc_sh; /* of its segment */
    uint64_t bc_checked;     /* offset + 1 of the batch last checked in it (or written by us) */
    /* where decoding the entries of the batch at hint_seg/hint_off got to:
     * entry bc_idx starts at bc_pos and takes id bc_next (so reading its
     * entries in turn costs one decode each, not one per entry before it) */
    uint64_t hint_seg, hint_off;
    uint32_t bc_idx;
    uint64_t bc_pos, bc_next;

    /* Segments below both the cursor and every live item may be deleted,
     * but only once the ack records that moved that mark are durable:
     * otherwise a power cut (or a failed fsync, whose removals are given
     * back) would need a segment already gone. low_done: the mark known
     * durable; low_next: a newer mark, durable once sync epoch low_epoch is
     * (low_next 0: none). */
    uint64_t low_done, low_next, low_epoch;
    /* copies written to move live items forward whose MOVE record waits
     * until the copy is durable (sync epoch `epoch` done): a MOVE record
     * must never name a copy a power cut could take back */
    struct jnl_item last_at; /* the item the last immediate append wrote */
    /* moves to other queues whose copy is made, waiting for a sync that
     * covers it before their CONFIRM (jnl_xfer_done) */
    struct pxfer {
        uint64_t id, epoch;
    } * pxfer;
    size_t npxfer, cappxfer;
    /* a delay bucket's firings whose copies are written, waiting for a sync
     * that covers them before their FIRED (jnl_fire_done) */
    struct pfire {
        struct jnl_fire key;
        uint64_t epoch;
    } * pfire;
    size_t npfire, cappfire;
    struct pmove {
        uint64_t id, seg, off, epoch;
    } pmove[8];
    int npmove;
    /* names of the retired files handed to the running sync job: owed again
     * if it fails (jnl_sync_fds, jnl_sync_failed) */
    char (*inflight)[32];
    size_t ninflight, capinflight;
    /* files an earlier process wrote that may not be durable yet (it may
     * have died before its sync): the next sync opens and syncs them */
    char (*owed)[32];
    size_t nowed, capowed;

    /* an fd of the segment the cursor is in (r_fd_seg), and its header */
    int r_fd;
    uint64_t r_fd_seg;
    struct jf_seg_hdr r_sh;
    uint64_t moved; /* live items copied forward, since open */

    /* blob files of removed items, deleted once their removal is durable */
    struct doomed {
        uint64_t id, len, epoch; /* epoch 0: not yet given to a sync */
    } * doomed;
    size_t ndoomed, capdoomed;

    /* the ack log: acks.<ack_idx> */
    int ack_fd, ack_idx;
    uint64_t ack_off, ack_gen;
    uint64_t ack_reserved;   /* blocks are reserved up to here (see ji_ack_write) */
    uint64_t ack_ckpt_epoch; /* sync epoch that makes its checkpoint durable */
    /* Ack records applied but not yet written: they go to disk with one
     * write at jnl_flush() (sooner once ACK_BATCH of them wait). A failed
     * write keeps them, to be written again ahead of the later ones, so the
     * file always holds the order they were applied in. */
    struct buf ackq;
    struct jnl_ticket *ack_ticket; /* of the records not yet tried; the journal's reference */
    int ack_err;                   /* the last write's error, 0 once one works */
};

/* The file of a blob item: blob-<id>.dat in the journal's folder. */
void ji_blob_path(const struct jnl *j, uint64_t id, char *out, size_t cap);
/* A removed blob item's file: deleted now under fsync "never", else once
 * the removal is durable (ji_blob_reap). */
void ji_blob_unlink(struct jnl *j, const struct jnl_item *it);
void ji_blob_reap(struct jnl *j, uint64_t sync_epoch_next, uint64_t sync_epoch_done);
/* An ack record about an item. */
static inline struct jf_ack ji_item_ack(uint8_t type, const struct jnl_item *it)
{
    return (struct jf_ack){.type = type,
                           .kind = it->kind,
                           .idx = it->idx,
                           .id = it->id,
                           .seg = it->seg,
                           .off = it->off,
                           .len = it->len,
                           .deliveries = it->deliveries};
}

void ji_path_of(const struct jnl *j, char *out, size_t cap, const char *name);
void ji_seg_path(const struct jnl *j, uint64_t seq, char *out, size_t cap);
void ji_close_fd(const struct jnl *j, int *fd);
/* Keeps an fd the journal no longer needs (of file `name` in its folder;
 * seg: the segment it is, or 0) until the next sync takes it. */
void ji_retire_fd(struct jnl *j, int *fd, uint64_t seg, const char *name);
/* Closes the pending fd of a segment being deleted: it needs no sync. */
void ji_drop_pending_seg(struct jnl *j, uint64_t seg);
/* Queues ack record a for the next ji_ack_flush(). Returns 0, or -errno
 * (out of memory, or writes keep failing) with nothing queued. */
int ji_ack_write(struct jnl *j, const struct jf_ack *a);
/* Writes the queued ack records with one write and settles their ticket.
 * Returns 0 or -errno (they stay queued). */
int ji_ack_flush(struct jnl *j);
/* Frees what ji_ack_write queued, failing its ticket with err. */
void ji_ack_discard(struct jnl *j, int err);
void ji_ack_reserve(struct jnl *j);
/* Tops the ack-log reserve up when the backlog has outgrown it, or when
 * `need` more bytes would pass it. */
void ji_ack_reserve_check(struct jnl *j, uint64_t need);
int ji_ack_rewrite(struct jnl *j, uint64_t epoch_next);
/* The length of the ack file ji_ack_rewrite() would write now. */
uint64_t ji_ack_ckpt_bytes(const struct jnl *j);
/* The record of a new item of type with attributes a and length len. */
struct jf_rec ji_attrs_rec(const struct jnl *j, uint8_t type, const struct jnl_attrs *a, uint64_t len);
/* Owes the next sync the file `name` of the journal's folder. Returns 0 or
 * -ENOMEM. */
int ji_owe_name(struct jnl *j, const char *name);
/* Writes the deferred batch first, if any, so that files are written in
 * the order of the state changes. Returns 0 or -errno (jnl_flush). */
int ji_flush_pending(struct jnl *j);
/* Remembers the item an immediate append just wrote (jnl_last_appended). */
void ji_note_appended(struct jnl *j, const struct jf_rec *r, uint64_t seg, uint64_t off);
/* Queues the FIRED of the firings whose copies a completed sync covers. */
void ji_finish_fires(struct jnl *j, uint64_t sync_epoch_done);
/* Queues the CONFIRM of each move whose copy a completed sync covers. */
void ji_finish_xfers(struct jnl *j, uint64_t sync_epoch_done);
/* Writes ack record a and applies it (jst_apply_ack: hint and out as there). */
int ji_ack_apply(struct jnl *j, const struct jf_ack *a, struct jnl_node *hint, struct jnl_node **out);
int ji_seg_open(struct jnl *j, uint64_t seq, int flags);
int ji_seg_read_hdr(struct jnl *j, int fd, struct jf_seg_hdr *h);
/* A fresh header for segment seq in fd, saying its first id and the payload
 * bytes before it (what the next batch starts from). */
int ji_seg_init(struct jnl *j, int fd, uint64_t seq, uint64_t first_id, uint64_t cum);
/* Starts the next segment (or segment 1), as ji_seg_init. */
int ji_seg_roll(struct jnl *j, uint64_t first_id, uint64_t cum);
/* An fd reading segment seq and its header: one the journal keeps (*temp =
 * 0) or a new one the caller closes (*temp = 1). */
int ji_seg_fd(struct jnl *j, uint64_t seq, int *fd, int *temp, struct jf_seg_hdr *sh);
/* Loads the batch at (seg, off) whole (and with check, checked: without,
 * only enough to list its entries, as jnl_head needs), into the journal's cache
 * or, when larger, into a buffer *owned the caller frees (NULL otherwise).
 * Returns 0 with *bt; -ENODATA when no whole batch is there (the end of the
 * segment, or a cut-short one); -EBADMSG when damaged; or -errno. *bt is
 * valid until the next load or the free. */
int ji_batch_load(struct jnl *j, uint64_t seg, uint64_t off, struct jbatch *bt, unsigned char **owned, int check);
/* Entry idx of bt (loaded by ji_batch_load), as jbatch_entry_at(), resuming
 * from where the last lookup in the cached batch stopped. */
int ji_entry_at(struct jnl *j, const struct jbatch *bt, uint64_t seg, uint64_t off, uint32_t idx, struct jf_entry *e);
/* The entry of item it in its loaded batch bt: read at it->epos when that
 * is known and holds the item (a given-back item is read without walking
 * the hundreds of entries before it), else found by ji_entry_at. Returns 0
 * or -EBADMSG. */
int ji_item_entry(struct jnl *j, const struct jbatch *bt, const struct jnl_item *it, struct jf_entry *e);
/* Makes the cache hold at least n bytes. Returns 0 or -ENOMEM. */
int ji_cache_reserve(struct jnl *j, size_t n);
/* Fills it from entry e of the batch at (seg, off), entry idx. */
void ji_item_from_entry(struct jnl_item *it, const struct jf_entry *e, uint64_t seg, uint64_t off, uint32_t idx);
/* Appends a batch of one entry (r, its payload data, its origin's name:
 * origin_len 0 for none; a moved copy keeps its id, another takes the next)
 * at the tail, after the deferred batch, rolling the segment first when it
 * is full or of an older version; its position goes to *seg, *off. Leaves
 * nothing partial behind on failure. Applies nothing: the caller applies
 * the entry (jst_apply_rec). data and origin must not point into the batch
 * cache (writing the deferred batch first refills it). */
int ji_append_one(struct jnl *j, const struct jf_rec *r, const void *data, const char *origin, size_t origin_len,
                  uint64_t *seg, uint64_t *off);
uint64_t ji_now_ms(void);
int ji_cursor_next_seg(struct jnl *j);

#endif
