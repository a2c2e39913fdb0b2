/* journal/journal.h: one queue's append-only segmented journal.
 *
 * Items are records appended to numbered segment files. Consumption is a read
 * cursor (everything before it is removed, except the items listed as still
 * live) recorded in an ack log; see docs/journal-format.md. Single-threaded:
 * one loop thread owns a journal; only the fds from jnl_sync_fds() may be used
 * by another thread. */
#ifndef DARNER_JOURNAL_JOURNAL_H
#define DARNER_JOURNAL_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "journal/io.h"
#include "log.h"
#include "util/list.h"

struct jnl;

struct jnl_conf {
    const struct jio *io;       /* jio_posix() in production */
    const struct log *log;      /* may be NULL */
    uint64_t segment_size;      /* a segment is rolled once it would pass this */
    uint64_t ack_compact_bytes; /* the ack log is rewritten once it passes this */
    int sync_never;             /* fsync policy "never": nothing waits for durability */
    uint64_t first_id;          /* the id a new journal's first item gets (0: 1) */
    /* Deletes a removed item's blob file later, off the caller's thread
     * (freeing a large file can take milliseconds); NULL: delete it now. */
    void (*unlink_later)(void *ctx, const char *path);
    void *unlink_ctx;
};

/* Where an item is and what it carries. */
struct jnl_item {
    uint64_t id;
    uint8_t kind;      /* JF_REC_ITEM: payload in the segment; JF_REC_BLOB: in its own file */
    uint64_t seg, off; /* the position of its batch (or v1 record) */
    uint32_t idx;      /* its entry in the batch */
    uint32_t epos;     /* where that entry starts in the batch's entries, + 1 (0: unknown), so it is
                          read without a walk of the entries before it (ji_item_entry) */
    uint64_t len;      /* payload length */
    uint64_t add_ms, expire_ms, payload_sum;
    uint64_t visible_ms; /* a delayed item's due time (0: none) */
    uint32_t flags;
    uint32_t deliveries; /* times handed out open (this hand-out included while open) */
    /* an item moved here from another queue: its id there and why (its
     * origin's name is read with jnl_origin) */
    uint64_t origin_id;
    uint8_t reason; /* enum jf_reason; 0: none */
    /* a node leaving for another queue (jnl_xfer_begin): why, the folder
     * number of the queue it goes to and the id its copy takes there */
    uint8_t xfer;
    uint8_t xfer_ending; /* its copy is made: the CONFIRM waits for a sync */
    uint64_t xfer_dir, xfer_id, xfer_due;
};

/* An item behind the read cursor that is still live: handed out open, or
 * given back. Owned by the journal; valid until jnl_confirm(), jnl_clear() or
 * jnl_close(). */
struct jnl_node {
    struct list link;
    struct jnl_item item;
    void *owner; /* NULL while given back, else whoever holds it open */
    /* while given back: its place in the state's tree of given-back nodes
     * by id (journal/apply.c), which finds where it goes in the list */
    struct jnl_node *tl, *tr;
    int in_tree;
};

/* The next item to hand out: a given-back node, or the record at the cursor. */
struct jnl_head {
    struct jnl_item item;
    struct jnl_node *node; /* NULL: the record at the cursor */
};

struct jnl_stats {
    uint64_t items, bytes; /* live items (open ones included) and their payload */
    uint64_t open;         /* items held open */
    uint64_t open_bytes;   /* their payload */
    uint64_t logsize;      /* bytes of journal files on disk */
};

/* Opens (and recovers) the journal in dir. With create, makes dir and an empty
 * journal if there is none; without, a missing journal is -ENOENT.
 * On success *out is the caller's, to free with jnl_close(). conf is copied. */
int jnl_open(struct jnl **out, const struct jnl_conf *conf, const char *dir, int create);
/* Closes files and frees memory; the files stay. Accepts NULL. */
void jnl_close(struct jnl *j);
/* Deletes every file of the journal in dir, then dir itself. */
int jnl_remove_dir(const struct jnl_conf *conf, const char *dir);

/* What an item carries besides its bytes, from the request to the journal
 * as one struct (docs/journal-format.md lists where each field is kept). */
struct jnl_attrs {
    uint32_t flags;      /* the client's memcache flags */
    uint64_t add_ms;     /* wall clock when added */
    uint64_t expire_ms;  /* never handed out after this; 0: never expires */
    uint64_t visible_ms; /* not handed out before this (delayed items); 0: at once */
    uint32_t deliveries; /* times handed out before */
    uint8_t priority;    /* 0 (most urgent) to 9, or JNL_PRIORITY_DEFAULT */
    /* moved from another queue (origin_len > 0): its name there (borrowed),
     * the item's id there and why */
    const char *origin;
    size_t origin_len;
    uint64_t origin_id;
    uint8_t reason; /* enum jf_reason */
};
#define JNL_PRIORITY_DEFAULT 0xff /* the queue's default: not written */

/* Appends an item, written now. Returns 0, or -errno with nothing
 * appended. Borrows a and data. */
int jnl_append(struct jnl *j, const struct jnl_attrs *a, const void *data, size_t len);

/* What became of a deferred append: state 0 while its batch waits for
 * jnl_flush(), then 1 (written) or -errno (not written: the item is gone,
 * as if never appended). Shared by every append of one batch. */
struct jnl_ticket {
    int refs;
    int state;
};
void jnl_ticket_put(struct jnl_ticket *t); /* drops a reference; accepts NULL */

/* Appends an item to the batch this journal writes at its next jnl_flush()
 * (or sooner, before anything else touches its files): appends of one loop
 * turn go to disk in one write. The item counts at once, but it is handed
 * out only once written. *ticket gets a reference the caller drops.
 * Returns 0, or -errno with nothing appended. Copies data. */
int jnl_append_deferred(struct jnl *j, const struct jnl_attrs *a, const void *data, size_t len,
                        struct jnl_ticket **ticket);
/* Writes the deferred batch, if any, with one write, then the ack records
 * queued since the last flush with another. On failure nothing of the batch
 * stays, its items are forgotten and its ticket says why; failed ack records
 * stay queued (their removals are applied already) and are written again,
 * ahead of later ones, by the next flush, while their ticket says why.
 * Returns 0 or -errno. */
int jnl_flush(struct jnl *j);
/* Whether a deferred batch or ack records wait for jnl_flush(). */
int jnl_pending(const struct jnl *j);
/* The ticket of the ack records queued since the last flush (those of the
 * removals jnl_remove_head, jnl_hold_head, jnl_confirm and jnl_restore just
 * made, which are written by the next jnl_flush()): a new reference, or
 * NULL when none waits. An answer that reports a removal is sent only once
 * the ticket says 1; for -errno the caller undoes it (jnl_restore, or
 * jnl_release for an item held open). */
struct jnl_ticket *jnl_ack_ticket(struct jnl *j);

/* An item being streamed in before it belongs to a queue: a temporary file.
 * Large items go this way so that neither the whole item sits in memory nor
 * two items of one queue interleave in its segment. */
struct jnl_blob;

/* Starts a blob of len bytes as tmp_path (which must be on the same file
 * system as the queue folders). *out is the caller's: hand it to
 * jnl_append_blob() or jnl_blob_discard(). */
int jnl_blob_begin(const struct jnl_conf *conf, const char *tmp_path, uint64_t len, struct jnl_blob **out);
/* Appends the next n bytes. Returns 0 or -errno (the blob stays usable for
 * discarding only). */
int jnl_blob_write(struct jnl_blob *b, const void *p, size_t n);
/* A second complete blob with the same bytes as the complete blob src,
 * without copying them: a hard link of src's file named tmp_path (on the
 * same file system). Blob files are never written again once complete, so
 * the two can be adopted by different queues and deleted independently.
 * -EOPNOTSUPP where links are not available. */
int jnl_blob_clone(const struct jnl_blob *src, const char *tmp_path, struct jnl_blob **out);
/* Appends len bytes of fd, read from offset off, to blob dst (through its
 * I/O table). Returns 0 or -errno. */
int jnl_blob_write_from(struct jnl_blob *dst, int fd, uint64_t off, uint64_t len);
/* Copies the bytes of the complete blob src into the new blob dst (of the
 * same length): where jnl_blob_clone cannot link. */
int jnl_blob_copy(const struct jnl_blob *src, struct jnl_blob *dst);
/* Makes a complete blob the next item of j: its file moves into j's folder
 * and a record pointing at it is appended. b is consumed either way. */
int jnl_append_blob(struct jnl *j, struct jnl_blob *b, const struct jnl_attrs *a);
/* Deletes an unfinished or unwanted blob. Accepts NULL. */
void jnl_blob_discard(struct jnl_blob *b);

/* Finds the next item to hand out (the oldest given-back item, else the record
 * at the cursor). Returns 0, -ENOENT when there is none, or -errno. */
int jnl_head(struct jnl *j, struct jnl_head *h);
/* The I/O table j works through (for the fds jnl_payload_fd gives). */
const struct jio *jnl_io(const struct jnl *j);
/* When the item jnl_head would find was added (ms), for the oldest-item
 * age: no I/O while the cursor stays where the last call found it.
 * Returns 0, -ENOENT when nothing is there, or -errno. */
int jnl_oldest_ms(struct jnl *j, uint64_t *add_ms);
/* Reads n payload bytes of it starting at payload offset off into buf, and
 * checks the payload sum when buf covers the whole payload. Returns 0,
 * -EBADMSG on a checksum mismatch, or -errno. */
int jnl_read(struct jnl *j, const struct jnl_item *it, uint64_t off, void *buf, size_t n);
/* A new fd (the caller closes it) from which the payload can be read at
 * *payload_off, valid even after the item is removed. */
int jnl_payload_fd(struct jnl *j, const struct jnl_item *it, int *fd, uint64_t *payload_off);

/* Removes the head for good (a plain get, or an expired item). */
int jnl_remove_head(struct jnl *j, const struct jnl_head *h);
/* Hands the head out open to owner: it stays live until confirmed or released.
 * *out is the journal's node for it. */
int jnl_hold_head(struct jnl *j, const struct jnl_head *h, void *owner, struct jnl_node **out);
/* Removes an open node for good; the node is freed. */
int jnl_confirm(struct jnl *j, struct jnl_node *n);
/* Moving a live item to another queue, crash-safe (queue/transfer.c does
 * the whole move, docs/journal-format.md "Transfers"): jnl_xfer_begin
 * writes, now, an XFER record for head h (a node, or the record at the
 * cursor, which is handed out first with an OPEN) naming the destination's
 * folder number, the id the copy will take there (the destination's
 * jnl_next_id, its deferred batch written first) and the reason (enum
 * jf_reason); the item is then held by the journal (never handed out) as
 * *out. Once the copy is appended, jnl_xfer_done ends the move: with a
 * CONFIRM queued at once under fsync "never", else once a sync that started
 * after the copy completed (jnl_maintain), so a power cut never keeps the
 * removal without the copy. jnl_xfer_cancel gives the item back (written
 * now) when the copy cannot be made. A node still in transfer at the next
 * open (jnl_next_xfer) is finished by the caller: the copy was made if the
 * destination's next id is past xfer_id. Each returns 0 or -errno. */
struct jnl_xfer {
    uint64_t dir;   /* the destination's folder number */
    uint64_t id;    /* the id the copy takes there */
    uint64_t due;   /* a move into a delay bucket: the copy's due time (Unix ms); else 0 */
    uint8_t reason; /* enum jf_reason */
};
int jnl_xfer_begin(struct jnl *j, const struct jnl_head *h, const struct jnl_xfer *x, struct jnl_node **out);
int jnl_xfer_done(struct jnl *j, struct jnl_node *n, uint64_t sync_epoch_next);
/* Ends a move now: its CONFIRM written at once (what jnl_xfer_done does
 * once the sync it waits for has completed, but without waiting). */
int jnl_xfer_end(struct jnl *j, struct jnl_node *n);
int jnl_xfer_cancel(struct jnl *j, struct jnl_node *n);
/* The given-back node after n (NULL: the first), by id; NULL after the last. */
struct jnl_node *jnl_returned_next(struct jnl *j, struct jnl_node *n);
/* A node in transfer whose end is not under way yet (after a crash), or NULL. */
struct jnl_node *jnl_next_xfer(struct jnl *j);
/* Where the item the last jnl_append or jnl_append_blob wrote is, and
 * what it carries. */
void jnl_last_appended(const struct jnl *j, struct jnl_item *out);
/* The item whose entry is entry idx of the batch at (seg, off): 0 with
 * *out, or -errno (-EBADMSG: no such entry). */
int jnl_item_at(struct jnl *j, uint64_t seg, uint64_t off, uint32_t idx, struct jnl_item *out);
/* Calls fn for each entry from the batch at (*seg, *off) on (moved copies
 * skipped), at most max batches, moving *seg and *off past them. Returns 1
 * once it reached the tail (every batch written so far), 0 when max ran
 * out first, or -errno. A damaged batch ends its segment as at start. */
int jnl_scan(struct jnl *j, uint64_t *seg, uint64_t *off, size_t max, void (*fn)(void *ctx, const struct jnl_item *it),
             void *ctx);

/* A delay bucket's firing (queue/delay.c): its items are made visible in
 * key order (due, id), each batch after a FIRING record (jnl_fire_begin,
 * written now) naming the key of its last item, the count fired in all, the
 * lane (folder number) and the id the batch's last copy takes there (0: no
 * copy, every item of it expired). Once the copies are written,
 * jnl_fire_done queues the FIRED record that says so: at once under fsync
 * "never", else once a sync that started after them completed (jnl_maintain),
 * so a power cut never keeps a FIRED whose copies are lost. At open,
 * jnl_fire_state gives the key in force and the FIRINGs after it: the caller
 * checks each one's last copy in the lane, in order, and with jnl_fire_void
 * (a FIRED written now) says that those after the last one found were never
 * made. */
struct jnl_fire {
    uint64_t due, id, fired;
    uint64_t lane_dir, lane_id;
};
int jnl_fire_begin(struct jnl *j, const struct jnl_fire *f);
int jnl_fire_done(struct jnl *j, const struct jnl_fire *f, uint64_t sync_epoch_next);
int jnl_fire_void(struct jnl *j, const struct jnl_fire *f);
void jnl_fire_state(const struct jnl *j, struct jnl_fire *done, const struct jnl_fire **pend, size_t *npend);

/* A closed journal read without opening it and without changing its files
 * (journal/peek.c): jnl_open reads and checks its whole last segment at
 * once, this reads in steps. jnl_peek_open reads its folder's segment list
 * and the firing state of its ack log (jnl_peek_fire: the key in force, and
 * how many FIRINGs after it wait to be settled by an open); jnl_peek_scan
 * then calls fn for each entry as jnl_scan does (same positions, moved copies
 * skipped, batches parsed but not checked against their checksums, one that
 * cannot be parsed ending its segment), about max_bytes of segment a
 * call: 1 at the end, 0 when max_bytes ran out first, or -errno. */
struct jnl_peek;
int jnl_peek_open(const struct jnl_conf *conf, const char *dir, struct jnl_peek **out);
void jnl_peek_fire(const struct jnl_peek *p, struct jnl_fire *done, size_t *npend);
int jnl_peek_scan(struct jnl_peek *p, uint64_t *seg, uint64_t *off, uint64_t max_bytes,
                  void (*fn)(void *ctx, const struct jnl_item *it), void *ctx);
void jnl_peek_close(struct jnl_peek *p); /* accepts NULL */

/* The id the next item appended to j takes. */
uint64_t jnl_next_id(const struct jnl *j);
/* Reads the origin field of the entry of item id, wherever it is in the
 * segments left (consumed or not): returns 1 with the origin queue's name
 * in name (JF_ORIGIN_MAX bytes of room; *len 0 when it has none) and its
 * id there in *origin_id; 0 when no such entry can be read; or -errno. A
 * linear scan of one segment: for recovery only. */
int jnl_origin_of_id(struct jnl *j, uint64_t id, char *name, size_t *len, uint64_t *origin_id);
/* Copies the origin queue's name of item it (moved from another queue)
 * into out (JF_ORIGIN_MAX bytes of room); returns its length, 0 when it
 * has none, or -errno. */
int jnl_origin(struct jnl *j, const struct jnl_item *it, char *out);
/* Gives an open node back: it is handed out again before the cursor's items. */
void jnl_release(struct jnl *j, struct jnl_node *n);
/* Makes an item removed by jnl_remove_head() or jnl_confirm() live again,
 * behind the cursor, so it is handed out next: for a removal whose fsync
 * failed and whose answer was therefore never sent. */
int jnl_restore(struct jnl *j, const struct jnl_item *it);
/* Removes every item, open ones included: all nodes are freed, so the caller
 * must have dropped its pointers to them first. Written before it returns. */
int jnl_clear(struct jnl *j);

/* Deletes segments nothing live is in, and rewrites the ack log once it is
 * large and the current one is durable (sync_epoch_done >= the epoch that
 * covers its checkpoint). sync_epoch_next is the number the next sync job will
 * get. Errors are logged, never fatal. */
void jnl_maintain(struct jnl *j, uint64_t sync_epoch_next, uint64_t sync_epoch_done);

/* Whether something waits for a sync to complete (files of removed items to
 * delete, moves to record, CONFIRMs of moves to other queues): jnl_maintain
 * does it once the sync has. */
int jnl_reap_pending(const struct jnl *j);

/* Whether the journal can be closed now (with jnl_close_owing) losing
 * nothing: no item is held open and no blob file waits to be deleted. A
 * closed journal is opened again on demand. */
int jnl_idle(const struct jnl *j);
/* Closes the journal like jnl_close(), first calling owe with the path of
 * each file (or folder) written since its last sync: the caller syncs those
 * by path with its next sync (unless the policy is "never", when nothing is
 * owed). owe must copy the path. Accepts NULL. */
void jnl_close_owing(struct jnl *j, void (*owe)(void *ctx, const char *path), void *ctx);
/* The journal's folder was renamed to dir (its fds stay valid): j takes
 * ownership of dir (malloc'd), so this cannot fail. */
void jnl_set_dir(struct jnl *j, char *dir);

/* The fsync policy became "never" (on) or not (off) for this journal (a
 * reload): with it, removals need no sync before their files go. Turned
 * off, every file is owed a sync again. */
void jnl_set_sync_never(struct jnl *j, int on);

/* Whether its fsync policy is "never". */
int jnl_sync_never(const struct jnl *j);

/* Whether anything was written since the last jnl_sync_fds(). */
int jnl_dirty(const struct jnl *j);
/* Moves the fds that need an fsync into fds[0..cap) (new fds or ones the
 * journal no longer needs: the caller closes all of them after syncing) and
 * marks the journal clean. Returns the count; -ENOBUFS if cap is too small;
 * or -errno (opening or duplicating an fd failed: nothing is handed out and
 * the journal stays dirty, so a later sync tries again). */
int jnl_sync_fds(struct jnl *j, int *fds, int cap);
/* After a failed fsync: the journal's files need syncing again (the failed
 * one may have covered its writes only partly). */
void jnl_mark_unsynced(struct jnl *j);
/* A sync job that took this journal's fds completed: the retired files it
 * synced are no longer owed. */
void jnl_sync_done(struct jnl *j);
/* It failed: as jnl_mark_unsynced(), and the retired files handed to it
 * (whose fds are closed now) are owed by path (owe copies the path). */
void jnl_sync_failed(struct jnl *j, void (*owe)(void *ctx, const char *path), void *ctx);

void jnl_get_stats(const struct jnl *j, struct jnl_stats *st);

#endif
