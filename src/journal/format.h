/* journal/format.h: the on-disk layout of segments, records and ack files.
 *
 * Version 2 is written; versions 1 and 2 are read. docs/journal-format.md
 * describes both in words, with the rule for changing the format. All fixed
 * integers are little-endian; varints are LEB128 (7 bits a byte, low first). */
#ifndef DARNER_JOURNAL_FORMAT_H
#define DARNER_JOURNAL_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define JF_VERSION 2     /* segments this build writes */
#define JF_ACK_VERSION 3 /* ack files this build writes (3: delivery counts, transfers) */
#define JF_VERSION_MIN 1 /* the oldest of either it reads */

/* Ids, generations and byte counts never reach this (2^62: a million items a
 * second for 146,000 years); a header claiming more is damage, which keeps
 * every +1 on them from overflowing. */
#define JF_COUNT_MAX (UINT64_C(1) << 62)

/* Segment file "seg-<16 hex digits>.dat": a 64-byte header, then records. */
#define JF_SEG_HDR 64
#define JF_SEG_MAGIC "DRNRSEG\0"
struct jf_seg_hdr {
    uint32_t version;
    uint64_t seq;       /* segment number, from 1, increasing */
    uint64_t first_id;  /* id the first record of this segment has or will have */
    uint64_t cum_bytes; /* payload bytes appended to the queue before this segment */
    uint64_t created_ms;
};

/* Record: an 80-byte header, then `len` payload bytes. The header carries its
 * own checksum, so a reader can trust a header before it reads the payload. */
#define JF_REC_HDR 80
#define JF_REC_MAGIC 0x43524e44u /* "DNRC" */
/* Record types, declared once: X(NAME, number, name as written in docs and
 * by darner-journal). */
#define JF_REC_TYPES(X)                                                                                                \
    X(ITEM, 1, "item") /* the payload follows the header */                                                            \
    X(BLOB, 2, "blob") /* the payload is the file blob-<id>.dat; no bytes follow */
enum jf_rec_type {
#define JF_X(name, num, text) JF_REC_##name = num,
    JF_REC_TYPES(JF_X)
#undef JF_X
};
/* "item", "blob", or NULL for a type this version does not know. */
const char *jf_rec_type_name(unsigned type);
/* Record flags. */
enum {
    /* A copy of a live item made to free an old segment. It keeps the item's
     * id, takes no new one, and the read cursor skips it. */
    JF_RF_MOVED = 1u << 0,
    /* (in memory only) the entry carries a priority: v2 writes one only then */
    JF_RF_PRIORITY = 1u << 1,
};
struct jf_rec {
    uint8_t type;         /* enum jf_rec_type */
    uint8_t priority;     /* reserved for priorities; 0 */
    uint8_t rflags;       /* JF_RF_* */
    uint32_t flags;       /* the client's memcache flags */
    uint32_t deliveries;  /* times handed out open before (entries carry it once it is not 0) */
    uint64_t id;          /* per queue, from 1, +1 per record in file order */
    uint64_t add_ms;      /* wall clock when added */
    uint64_t expire_ms;   /* wall clock after which it is never handed out; 0: never */
    uint64_t visible_ms;  /* reserved for delayed items; 0 */
    uint64_t len;         /* payload length */
    uint64_t payload_sum; /* XXH3-64 of the payload */
    /* an item moved here from another queue (a dead letter, or one kicked
     * back): the entry's origin field, whose name jf_entry carries */
    uint64_t origin_id;  /* its id in the queue it came from */
    uint64_t origin_sum; /* XXH3-64 of that queue's name (decoding sets it) */
    uint8_t reason;      /* enum jf_reason */
};

/* Why an item was moved from another queue, declared once: X(NAME, number,
 * name as stats, docs and darner-journal write it). */
#define JF_REASONS(X)                                                                                                  \
    X(MAX_DELIVERIES, 1, "max_deliveries") /* given back once more than max_deliveries allows */                       \
    X(BURIED, 2, "buried")                 /* sent to the dead-letter queue by get q/bury */                           \
    X(KICKED, 3, "kicked")                 /* a dead letter sent back to its queue by kick */                          \
    X(DELAYED, 4, "delayed")               /* a delayed item that became visible (a bucket's copy) */
enum jf_reason {
    JF_REASON_NONE = 0,
#define JF_X(name, num, text) JF_REASON_##name = num,
    JF_REASONS(JF_X)
#undef JF_X
};
/* "max_deliveries", ..., or NULL for a number this version does not know. */
const char *jf_reason_name(unsigned reason);

/* ---- version 2: segments of batches ----
 *
 * A batch is what one write appends to one queue: a header, then its
 * entries, one per item, covered by one checksum.
 *
 * header: marker (1) = JF_BATCH_MARKER, reserved (1) = 0,
 *         varint count (>= 1), varint entry bytes,
 *         varint first id - the segment's first id, zigzag varint base ms -
 *         the segment's created ms, then u32 check: the low 32 bits of
 *         XXH3-64 over the header before it and the entries.
 * entry:  u8 attrs (JF_EA_*), varint len, varint client flags, zigzag
 *         varint add ms - base ms, then the fields attrs announce, in this
 *         order: varint id (moved copies, which keep their id; other entries
 *         take the batch's first id + 1 for each non-moved entry before
 *         them), varint expire ms, u8 priority, varint visible-at ms, varint
 *         delivery count, varint origin length + origin queue name, u64
 *         payload sum (blob entries: XXH3-64 of the blob file); then, for an
 *         item entry, len payload bytes. */
#define JF_BATCH_MARKER 0xB7
#define JF_BATCH_HDR_MAX (2 + 10 * 4 + 4)
/* Batches a build writes hold at most this many entry bytes, unless one
 * entry alone is larger (it then has a batch of its own). */
#define JF_BATCH_MAX (64 * 1024)
enum {
    JF_EA_TYPE = 0x03,  /* enum jf_rec_type */
    JF_EA_MOVED = 0x04, /* a moved copy: carries its id (JF_RF_MOVED) */
    JF_EA_EXPIRE = 0x08,
    JF_EA_PRIORITY = 0x10,
    JF_EA_VISIBLE = 0x20,
    JF_EA_DELIVERIES = 0x40,
    JF_EA_ORIGIN = 0x80,
};
#define JF_ORIGIN_MAX 250 /* a queue name's longest */

struct jf_batch {
    uint32_t count;
    uint64_t first_id;
    uint64_t base_ms;
    uint64_t hdr_len; /* header bytes */
    uint64_t elen;    /* entry bytes */
};
static inline uint64_t jf_batch_size(const struct jf_batch *b) { return b->hdr_len + b->elen; }

/* One entry, decoded: its record (id included) and where its payload is. */
struct jf_entry {
    struct jf_rec r;             /* type, rflags, flags, id, times, len, priority, deliveries;
                                    payload_sum only for blobs */
    uint64_t payload_pos;        /* offset of the payload from the start of the entries */
    uint64_t start;              /* offset of the entry itself from the start of the entries */
    const unsigned char *origin; /* NULL or origin_len bytes inside the entries */
    size_t origin_len;
};

/* Decodes a batch header from p[0..n) for a segment whose header is sh.
 * Returns 0; -ENODATA when n is too short to tell; -EBADMSG for damage. The
 * checksum is checked by jf_batch_check() once the entries are read too. */
int jf_batch_decode(const unsigned char *p, size_t n, const struct jf_seg_hdr *sh, struct jf_batch *b);
/* Checks the batch's checksum over p[0..jf_batch_size(b)): 0 or -EBADMSG. */
int jf_batch_check(const unsigned char *p, const struct jf_batch *b);
/* Decodes the entry at *pos of the entries e[0..b->elen) (pos 0 first), and
 * moves *pos past it. *next_id is the id the next non-moved entry takes (the
 * batch's first id to start with). Returns 0 or -EBADMSG. */
int jf_entry_next(const unsigned char *e, const struct jf_batch *b, uint64_t *pos, uint64_t *next_id,
                  struct jf_entry *out);

/* Encodes a batch: writes the header into out (JF_BATCH_HDR_MAX bytes of
 * room) for entries e[0..elen) already encoded with jf_entry_encode(), and
 * returns the header's length. */
size_t jf_batch_encode_hdr(unsigned char *out, const struct jf_seg_hdr *sh, uint32_t count, uint64_t first_id,
                           uint64_t base_ms, const unsigned char *e, uint64_t elen);
/* The length jf_batch_encode_hdr() gives the same batch's header. */
size_t jf_batch_hdr_size(const struct jf_seg_hdr *sh, uint32_t count, uint64_t first_id, uint64_t base_ms,
                         uint64_t elen);
/* Bytes jf_entry_encode() writes before the payload. */
size_t jf_entry_hdr_size(const struct jf_rec *r, uint64_t base_ms, size_t origin_len);
/* Writes the entry for r (payload not included) at out; returns its length.
 * r->type JF_REC_BLOB writes r->payload_sum; JF_RF_MOVED writes r->id. */
size_t jf_entry_encode(unsigned char *out, const struct jf_rec *r, uint64_t base_ms, const void *origin,
                       size_t origin_len);

/* Ack file "acks.0" / "acks.1": a 64-byte header, then 64-byte records. */
#define JF_ACK_HDR 64
#define JF_ACK_REC 64
#define JF_ACK_MAGIC "DRNRACK\0"
/* Ack record types, declared once (docs/journal-format.md lists the same,
 * which tests/unit/test_format.c checks). What each does to a journal's state
 * is in one place: jst_apply_ack() in journal/apply.c. */
#define JF_ACK_TYPES(X)                                                                                                \
    X(CKPT, 1, "CKPT")       /* read cursor; `len` OUT records follow */                                               \
    X(OUT, 2, "OUT")         /* an item behind the cursor that is still live */                                        \
    X(TAKE, 3, "TAKE")       /* the item at the cursor was removed; cursor moves past it */                            \
    X(OPEN, 4, "OPEN")       /* the item at the cursor was handed out open; cursor moves past it */                    \
    X(CONFIRM, 5, "CONFIRM") /* an item behind the cursor (open or given back) was removed */                          \
    X(FLUSH, 6, "FLUSH")     /* everything up to the position given was removed */                                     \
    X(MOVE, 7, "MOVE")       /* a live item was copied forward: the position is the copy's */                          \
    X(RESTORE, 8, "RESTORE") /* a removed item is live again: its removal could not be made durable */                 \
    X(COUNT, 9, "COUNT")     /* an item behind the cursor was handed out open again: its new count */                  \
    X(XFER, 10, "XFER")      /* a live item leaves for another queue; a CONFIRM ends it (version 3) */                 \
    X(FIRING, 11, "FIRING")  /* a delay bucket's items up to a key are being copied to their lane */                   \
    X(FIRED, 12, "FIRED")    /* a delay bucket's items up to a key are in their lane (or expired) */
enum jf_ack_type {
#define JF_X(name, num, text) JF_ACK_##name = num,
    JF_ACK_TYPES(JF_X)
#undef JF_X
};
/* "CKPT", ..., or NULL for a type this version does not know. */
const char *jf_ack_type_name(unsigned type);
struct jf_ack {
    uint8_t type;        /* enum jf_ack_type */
    uint8_t kind;        /* the item's record type (enum jf_rec_type) */
    uint32_t idx;        /* position: the entry in its batch (version 1: always 0) */
    uint64_t id;         /* item id (CKPT, FLUSH: id at the cursor) */
    uint64_t seg;        /* position: segment */
    uint64_t off;        /* position: offset in the segment (of the batch, or v1 record) */
    uint64_t len;        /* item payload length; CKPT: number of OUT records */
    uint64_t cum;        /* CKPT, FLUSH: payload bytes before the cursor */
    uint32_t deliveries; /* OPEN, COUNT, OUT, RESTORE: times handed out open (version 3) */
    uint8_t xfer;        /* XFER: the transfer's enum jf_reason */
};
/* FIRING and FIRED (delay buckets, queue/delay.c): the bucket's items are
 * made visible in (due, id) order; id and off are the last one's id and due
 * time, len the count made visible so far. FIRING also names the lane (seg:
 * its folder number) and the id its copy of that last item takes (cum):
 * the copies are one batch, so that copy exists only if all of them do. */
/* An XFER record names no position: the item is live behind the cursor
 * already (one at the cursor is first handed out by an OPEN). Its seg is the
 * destination's folder number (q-<seg>) and its off the id the item's copy
 * takes there, so the destination's next id tells whether it was made; cum
 * is the copy's due time for a move into a delay bucket (else 0). */
struct jf_ack_hdr {
    uint32_t version;
    uint64_t generation; /* the newer of acks.0 and acks.1 has the higher one */
};

/* Every version, past and future, keeps the first 64 bytes of segment and ack
 * headers as: magic (8), version (4) at offset 8, XXH3-64 of bytes 0..56 at
 * offset 56. So a header whose magic and checksum are right but whose version
 * is not ours was written by another build: it is refused, never taken for
 * damage (docs/journal-format.md, "Changing the format"). */
/* Whether name is exactly "<prefix><16 hex digits>.dat" (a segment "seg-" or
 * a blob file "blob-"); the number goes to *n. "seg-...dat.tmp" is not. */
int jf_parse_file_name(const char *name, const char *prefix, uint64_t *n);

void jf_seg_hdr_encode(unsigned char out[JF_SEG_HDR], const struct jf_seg_hdr *h);
/* Returns 0; -EBADMSG if magic, checksum or a field is wrong (damage);
 * -EPROTONOSUPPORT if intact but of another version (h->version says which). */
int jf_seg_hdr_decode(const unsigned char in[JF_SEG_HDR], struct jf_seg_hdr *h);

/* Encodes the header; r->payload_sum must already be set (jf_payload_sum). */
void jf_rec_encode(unsigned char out[JF_REC_HDR], const struct jf_rec *r);
/* Returns 0, or -EBADMSG if magic, type or header checksum is wrong. */
int jf_rec_decode(const unsigned char in[JF_REC_HDR], struct jf_rec *r);
uint64_t jf_payload_sum(const void *p, size_t n);

void jf_ack_hdr_encode(unsigned char out[JF_ACK_HDR], const struct jf_ack_hdr *h);
/* As jf_seg_hdr_decode(): 0, -EBADMSG, or -EPROTONOSUPPORT. */
int jf_ack_hdr_decode(const unsigned char in[JF_ACK_HDR], struct jf_ack_hdr *h);
void jf_ack_encode(unsigned char out[JF_ACK_REC], const struct jf_ack *a);
int jf_ack_decode(const unsigned char in[JF_ACK_REC], struct jf_ack *a);

#endif
