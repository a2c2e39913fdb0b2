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

/* Walks the records of one segment file, with a read-ahead window so a scan
 * costs one read per megabyte instead of two per record. */
struct jscan {
    const struct jio *io;
    int fd;        /* borrowed */
    uint64_t size; /* of the file */
    uint64_t off;  /* the record to read next */
    unsigned char *buf; /* the window; owned */
    uint64_t wstart;    /* file offset of buf[0] */
    size_t wlen;        /* valid bytes in buf */
    /* after jscan_next() returned -EBADMSG: 1 if only the payload is bad,
     * so the record's size is known and a reader may step over it */
    int payload_bad;
};

/* Starts a scan of fd (size bytes) at off. Returns 0 or -ENOMEM. */
int jscan_init(struct jscan *sc, const struct jio *io, int fd, uint64_t size, uint64_t off);
void jscan_free(struct jscan *sc);
/* Reads and checks the record at sc->off: the header and its checksum, that
 * the payload is inside the file, and for an item record the payload's
 * checksum. Returns 0 with *r; -ENODATA when the file ends first, -EBADMSG
 * for damage (*why says which, in both cases); or -errno. sc->off is not
 * moved: the caller steps with jscan_skip() once it accepts the record. */
int jscan_next(struct jscan *sc, struct jf_rec *r, const char **why);
static inline void jscan_skip(struct jscan *sc, const struct jf_rec *r) { sc->off += jst_rec_size(r->type, r->len); }
/* Checks the payload of record r at off in fd against its checksum, reading
 * it in pieces. Returns 0, -EBADMSG, -ENODATA or -errno. */
int jscan_verify_payload(const struct jio *io, int fd, uint64_t off, const struct jf_rec *r);

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
