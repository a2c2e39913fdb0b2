/* journal/replay.h: reading a journal's files back into its state.
 *
 * Start-up (recover.c) and darner-journal read segments and ack files with
 * these same functions, and apply what they read with journal/apply.c, so
 * the tool judges a folder exactly as start-up will. Read-only: cutting a
 * damaged tail is the caller's decision. */
#ifndef DARNER_JOURNAL_REPLAY_H
#define DARNER_JOURNAL_REPLAY_H

#include <stdint.h>

#include "journal/format.h"
#include "journal/io.h"
#include "journal/state.h"

/* A batch of a segment as read: a version-2 batch, or a version-1 record
 * taken as a batch of one entry. */
struct jbatch {
    uint32_t version;       /* of its segment */
    struct jf_batch b;      /* v1: count 1, hdr_len JF_REC_HDR, elen the payload bytes in the segment */
    struct jf_rec v1;       /* v1: the record */
    const unsigned char *p; /* its jf_batch_size(&b) bytes */
};
static inline uint64_t jbatch_size(const struct jbatch *bt) { return jf_batch_size(&bt->b); }

/* Parses the batch at the start of p[0..n) in a segment whose header is sh,
 * and with check, checks it whole (v2: the batch checksum; v1: the payload's
 * for an item; a v1 header's own checksum always). Returns 0 with *bt
 * (pointing into p); -EAGAIN
 * when n is short of the batch, *need then says how many bytes to read
 * (more may be asked for again once the header is known); -EBADMSG when
 * damaged (*why says how). */
int jbatch_parse(const unsigned char *p, uint64_t n, const struct jf_seg_hdr *sh, struct jbatch *bt, uint64_t *need,
                 const char **why, int check);
/* The entry at *pos of a parsed batch (pos 0, next_id bt->b.first_id to
 * start with), as jf_entry_next(); a v1 record is its only entry. The
 * payload is at bt->p + bt->b.hdr_len + e->payload_pos. Returns 0 or
 * -EBADMSG. */
int jbatch_entry(const struct jbatch *bt, uint64_t *pos, uint64_t *next_id, struct jf_entry *e);
/* The idx-th entry (from 0): 0, or -EBADMSG (no such entry, or damaged). */
int jbatch_entry_at(const struct jbatch *bt, uint32_t idx, struct jf_entry *e);
/* Checks a parsed batch's entries against the tail state s, as appending
 * them did: every entry decodes, a moved copy's id is below the next id and
 * every other entry takes the next id in turn. Returns 0 (nothing applied
 * yet: jst_apply_rec() each entry next) or -EBADMSG (*why). */
int jbatch_check_sequence(const struct jbatch *bt, const struct jst *s, const char **why);

/* Walks the batches of one segment file, with a read-ahead window so a scan
 * costs one read per megabyte instead of two per batch. */
struct jscan {
    const struct jio *io;
    int fd; /* borrowed */
    struct jf_seg_hdr sh;
    uint64_t size;      /* of the file */
    uint64_t off;       /* the batch to read next */
    unsigned char *buf; /* the window; owned */
    size_t cap;         /* its size (grows for a batch larger than it) */
    uint64_t wstart;    /* file offset of buf[0] */
    size_t wlen;        /* valid bytes in buf */
    /* after jscan_next() returned -EBADMSG: 1 if the batch is whole and
     * only its checksum fails, so a reader may step over it (*bt is set) */
    int payload_bad;
    /* set by the caller after jscan_init: batches are not checked against
     * their checksum (as jnl_scan reads them), only parsed */
    int nocheck;
};

/* Starts a scan at off of fd (size bytes), a segment whose header is sh.
 * Returns 0 or -ENOMEM. */
int jscan_init(struct jscan *sc, const struct jio *io, int fd, const struct jf_seg_hdr *sh, uint64_t size,
               uint64_t off);
void jscan_free(struct jscan *sc);
/* Reads and checks the batch at sc->off (jbatch_parse). Returns 0 with *bt
 * (valid until the next call); -ENODATA when the file ends first, -EBADMSG
 * for damage (*why says which, in both cases); or -errno. sc->off is not
 * moved: the caller steps with jscan_skip() once it accepts the batch. */
int jscan_next(struct jscan *sc, struct jbatch *bt, const char **why);
static inline void jscan_skip(struct jscan *sc, const struct jbatch *bt) { sc->off += jbatch_size(bt); }

/* How an ack file was read. */
struct jack_load {
    uint64_t end;     /* the valid records end here */
    uint64_t records; /* records applied, the checkpoint and its OUT records included */
    /* Called for every record in the file, from the first after the header to
     * the last whole one, also those past the valid end (ok: it decoded).
     * May be NULL. */
    void (*each)(void *ctx, uint64_t off, const struct jf_ack *a, int ok);
    void *ctx;
};

/* Replays an ack file (fd, size bytes, header checked by the caller) into
 * s: its checkpoint, the OUT records the checkpoint announces, then every
 * record up to the first that is damaged or out of place (another CKPT or
 * OUT). Returns 0; -EBADMSG when the file has no usable checkpoint (s then
 * has no live items, and its cursor is to be set by the caller); or -errno. */
int jst_load_acks(struct jst *s, const struct jio *io, int fd, uint64_t size, struct jack_load *l);

#endif
