/* journal/format.h: the on-disk layout of segments, records and ack files.
 *
 * Version 1. docs/journal-format.md describes it in words, with the rule for
 * changing it. All integers are little-endian. */
#ifndef DARNER_JOURNAL_FORMAT_H
#define DARNER_JOURNAL_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#define JF_VERSION 1

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
#define JF_REC_TYPES(X)                                                                                      \
    X(ITEM, 1, "item") /* the payload follows the header */                                                 \
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
};
struct jf_rec {
    uint8_t type;        /* enum jf_rec_type */
    uint8_t priority;    /* reserved for priorities; 0 */
    uint8_t rflags;      /* JF_RF_* */
    uint32_t flags;      /* the client's memcache flags */
    uint32_t deliveries; /* reserved for delivery counts; 0 */
    uint64_t id;         /* per queue, from 1, +1 per record in file order */
    uint64_t add_ms;     /* wall clock when added */
    uint64_t expire_ms;  /* wall clock after which it is never handed out; 0: never */
    uint64_t visible_ms; /* reserved for delayed items; 0 */
    uint64_t len;        /* payload length */
    uint64_t payload_sum; /* XXH3-64 of the payload */
};

/* Ack file "acks.0" / "acks.1": a 64-byte header, then 64-byte records. */
#define JF_ACK_HDR 64
#define JF_ACK_REC 64
#define JF_ACK_MAGIC "DRNRACK\0"
/* Ack record types, declared once (docs/journal-format.md lists the same,
 * which tests/unit/test_format.c checks). What each does to a journal's state
 * is in one place: jst_apply_ack() in journal/apply.c. */
#define JF_ACK_TYPES(X)                                                                                      \
    X(CKPT, 1, "CKPT")       /* read cursor; `len` OUT records follow */                                    \
    X(OUT, 2, "OUT")         /* an item behind the cursor that is still live */                             \
    X(TAKE, 3, "TAKE")       /* the item at the cursor was removed; cursor moves past it */                 \
    X(OPEN, 4, "OPEN")       /* the item at the cursor was handed out open; cursor moves past it */         \
    X(CONFIRM, 5, "CONFIRM") /* an item behind the cursor (open or given back) was removed */               \
    X(FLUSH, 6, "FLUSH")     /* everything up to the position given was removed */                          \
    X(MOVE, 7, "MOVE")       /* a live item was copied forward: the position is the copy's */               \
    X(RESTORE, 8, "RESTORE") /* a removed item is live again: its removal could not be made durable */
enum jf_ack_type {
#define JF_X(name, num, text) JF_ACK_##name = num,
    JF_ACK_TYPES(JF_X)
#undef JF_X
};
/* "CKPT", ..., or NULL for a type this version does not know. */
const char *jf_ack_type_name(unsigned type);
struct jf_ack {
    uint8_t type;   /* enum jf_ack_type */
    uint8_t kind;   /* the item's record type (enum jf_rec_type) */
    uint64_t id;    /* item id (CKPT, FLUSH: id at the cursor) */
    uint64_t seg;   /* position: segment */
    uint64_t off;   /* position: offset in the segment */
    uint64_t len;   /* item payload length; CKPT: number of OUT records */
    uint64_t cum;   /* CKPT, FLUSH: payload bytes before the cursor */
};
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
