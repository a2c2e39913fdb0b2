/* journal/format.c: encoding and checking of the on-disk structures. */
#include "journal/format.h"
#include "util/varint.h"

#include "util/buf.h"

#include <errno.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

/* Segment and ack headers and ack records end in an XXH3-64 of the bytes
 * before it. */
static void seal(unsigned char *p, size_t size) { put_u64le(p + size - 8, XXH3_64bits(p, size - 8)); }

static int sealed(const unsigned char *p, size_t size) { return get_u64le(p + size - 8) == XXH3_64bits(p, size - 8); }

void jf_seg_hdr_encode(unsigned char out[JF_SEG_HDR], const struct jf_seg_hdr *h)
{
    memset(out, 0, JF_SEG_HDR);
    memcpy(out, JF_SEG_MAGIC, 8);
    put_u32le(out + 8, h->version ? h->version : JF_VERSION);
    put_u64le(out + 16, h->seq);
    put_u64le(out + 24, h->first_id);
    put_u64le(out + 32, h->cum_bytes);
    put_u64le(out + 40, h->created_ms);
    seal(out, JF_SEG_HDR);
}

int jf_seg_hdr_decode(const unsigned char in[JF_SEG_HDR], struct jf_seg_hdr *h)
{
    if (memcmp(in, JF_SEG_MAGIC, 8) != 0 || !sealed(in, JF_SEG_HDR))
        return -EBADMSG;
    h->version = get_u32le(in + 8);
    if (h->version < JF_VERSION_MIN || h->version > JF_VERSION || get_u32le(in + 12) != 0)
        return -EPROTONOSUPPORT; /* bytes 12..16: feature bits, none known yet */
    h->seq = get_u64le(in + 16);
    h->first_id = get_u64le(in + 24);
    h->cum_bytes = get_u64le(in + 32);
    h->created_ms = get_u64le(in + 40);
    if (h->first_id == 0 || h->first_id >= JF_COUNT_MAX || h->cum_bytes >= JF_COUNT_MAX || h->seq >= JF_COUNT_MAX)
        return -EBADMSG;
    return 0;
}

int jf_parse_file_name(const char *name, const char *prefix, uint64_t *n)
{
    size_t plen = strlen(prefix);
    if (strncmp(name, prefix, plen) != 0 || strlen(name) != plen + 16 + 4 || strcmp(name + plen + 16, ".dat") != 0)
        return 0;
    uint64_t v = 0;
    for (size_t i = plen; i < plen + 16; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return 0;
        v = v << 4 | (uint64_t)d;
    }
    *n = v;
    return 1;
}

const char *jf_rec_type_name(unsigned type)
{
    switch (type) {
#define JF_X(name, num, text)                                                                                          \
    case num:                                                                                                          \
        return text;
        JF_REC_TYPES(JF_X)
#undef JF_X
    }
    return NULL;
}

const char *jf_reason_name(unsigned reason)
{
    switch (reason) {
#define JF_X(name, num, text)                                                                                          \
    case num:                                                                                                          \
        return text;
        JF_REASONS(JF_X)
#undef JF_X
    }
    return NULL;
}

const char *jf_ack_type_name(unsigned type)
{
    switch (type) {
#define JF_X(name, num, text)                                                                                          \
    case num:                                                                                                          \
        return text;
        JF_ACK_TYPES(JF_X)
#undef JF_X
    }
    return NULL;
}

uint64_t jf_payload_sum(const void *p, size_t n) { return XXH3_64bits(p, n); }

/* Record header: magic(4) hdr_sum(4) type(1) priority(1) rflags(1) 0(1)
 * flags(4) deliveries(4) 0(4) id(8) add_ms(8) expire_ms(8) visible_ms(8)
 * len(8) payload_sum(8) 0(8); hdr_sum is the low half of XXH3-64 of
 * bytes 8..80. */
void jf_rec_encode(unsigned char out[JF_REC_HDR], const struct jf_rec *r)
{
    memset(out, 0, JF_REC_HDR);
    put_u32le(out, JF_REC_MAGIC);
    out[8] = r->type;
    out[9] = r->priority;
    out[10] = r->rflags;
    put_u32le(out + 12, r->flags);
    put_u32le(out + 16, r->deliveries);
    put_u64le(out + 24, r->id);
    put_u64le(out + 32, r->add_ms);
    put_u64le(out + 40, r->expire_ms);
    put_u64le(out + 48, r->visible_ms);
    put_u64le(out + 56, r->len);
    put_u64le(out + 64, r->payload_sum);
    put_u32le(out + 4, (uint32_t)XXH3_64bits(out + 8, JF_REC_HDR - 8));
}

int jf_rec_decode(const unsigned char in[JF_REC_HDR], struct jf_rec *r)
{
    if (get_u32le(in) != JF_REC_MAGIC || get_u32le(in + 4) != (uint32_t)XXH3_64bits(in + 8, JF_REC_HDR - 8))
        return -EBADMSG;
    r->type = in[8];
    if (!jf_rec_type_name(r->type))
        return -EBADMSG;
    r->priority = in[9];
    r->rflags = in[10];
    r->flags = get_u32le(in + 12);
    r->deliveries = get_u32le(in + 16);
    r->id = get_u64le(in + 24);
    r->add_ms = get_u64le(in + 32);
    r->expire_ms = get_u64le(in + 40);
    r->visible_ms = get_u64le(in + 48);
    r->len = get_u64le(in + 56);
    r->payload_sum = get_u64le(in + 64);
    if (r->id == 0 || r->id >= JF_COUNT_MAX || r->len >= JF_COUNT_MAX)
        return -EBADMSG;
    return 0;
}

void jf_ack_hdr_encode(unsigned char out[JF_ACK_HDR], const struct jf_ack_hdr *h)
{
    memset(out, 0, JF_ACK_HDR);
    memcpy(out, JF_ACK_MAGIC, 8);
    put_u32le(out + 8, h->version ? h->version : JF_ACK_VERSION);
    put_u64le(out + 16, h->generation);
    seal(out, JF_ACK_HDR);
}

int jf_ack_hdr_decode(const unsigned char in[JF_ACK_HDR], struct jf_ack_hdr *h)
{
    if (memcmp(in, JF_ACK_MAGIC, 8) != 0 || !sealed(in, JF_ACK_HDR))
        return -EBADMSG;
    h->version = get_u32le(in + 8);
    if (h->version < JF_VERSION_MIN || h->version > JF_ACK_VERSION || get_u32le(in + 12) != 0)
        return -EPROTONOSUPPORT;
    h->generation = get_u64le(in + 16);
    if (h->generation == 0 || h->generation >= JF_COUNT_MAX)
        return -EBADMSG;
    return 0;
}

/* Ack record: type(1) kind(1) idx(4) 0(2) id(8) seg(8) off(8) len(8) cum(8)
 * deliveries(4) xfer(1) 0(3) sum(8); idx is 0 in every version-1 file,
 * deliveries and xfer in every file before version 3. */
void jf_ack_encode(unsigned char out[JF_ACK_REC], const struct jf_ack *a)
{
    memset(out, 0, JF_ACK_REC);
    out[0] = a->type;
    out[1] = a->kind;
    put_u32le(out + 2, a->idx);
    put_u64le(out + 8, a->id);
    put_u64le(out + 16, a->seg);
    put_u64le(out + 24, a->off);
    put_u64le(out + 32, a->len);
    put_u64le(out + 40, a->cum);
    put_u32le(out + 48, a->deliveries);
    out[52] = a->xfer;
    seal(out, JF_ACK_REC);
}

int jf_ack_decode(const unsigned char in[JF_ACK_REC], struct jf_ack *a)
{
    if (!sealed(in, JF_ACK_REC) || !jf_ack_type_name(in[0]))
        return -EBADMSG;
    a->type = in[0];
    a->kind = in[1] ? in[1] : JF_REC_ITEM;
    a->idx = get_u32le(in + 2);
    a->id = get_u64le(in + 8);
    a->seg = get_u64le(in + 16);
    a->off = get_u64le(in + 24);
    a->len = get_u64le(in + 32);
    a->cum = get_u64le(in + 40);
    a->deliveries = get_u32le(in + 48);
    a->xfer = in[52];
    if ((a->xfer && !jf_reason_name(a->xfer)) || a->id >= JF_COUNT_MAX || a->seg >= JF_COUNT_MAX ||
        a->len >= JF_COUNT_MAX || a->cum >= JF_COUNT_MAX)
        return -EBADMSG;
    return 0;
}

/* ---- version 2 batches ---- */

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Reads a varint at p[*pos..n). Returns 0 or -EBADMSG (cut short, or more
 * than 64 bits). */
static int get_varint(const unsigned char *p, uint64_t n, uint64_t *pos, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 64 && *pos < n; shift += 7) {
        unsigned char c = p[(*pos)++];
        if (shift == 63 && c > 1)
            return -EBADMSG;
        x |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -EBADMSG;
}

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static int64_t unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }

int jf_batch_decode(const unsigned char *p, size_t n, const struct jf_seg_hdr *sh, struct jf_batch *b)
{
    uint64_t pos = 2, count, elen, fid, base;
    if (n < 2)
        return -ENODATA;
    if (p[0] != JF_BATCH_MARKER || p[1] != 0)
        return -EBADMSG;
    /* A header cut short by n is "need more" only while it could still be
     * a valid one: JF_BATCH_HDR_MAX bytes always tell. */
    uint64_t lim = n < JF_BATCH_HDR_MAX ? n : JF_BATCH_HDR_MAX;
    if (get_varint(p, lim, &pos, &count) < 0 || get_varint(p, lim, &pos, &elen) < 0 ||
        get_varint(p, lim, &pos, &fid) < 0 || get_varint(p, lim, &pos, &base) < 0 || pos + 4 > lim)
        return n < JF_BATCH_HDR_MAX ? -ENODATA : -EBADMSG;
    if (count == 0 || count > UINT32_MAX || elen >= JF_COUNT_MAX || fid >= JF_COUNT_MAX - sh->first_id ||
        elen < count * 4) /* each entry takes at least 4 bytes */
        return -EBADMSG;
    b->count = (uint32_t)count;
    b->elen = elen;
    b->first_id = sh->first_id + fid;
    b->base_ms = sh->created_ms + (uint64_t)unzigzag(base);
    b->hdr_len = pos + 4;
    return 0;
}

int jf_batch_check(const unsigned char *p, const struct jf_batch *b)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, p, b->hdr_len - 4);
    XXH3_64bits_update(&st, p + b->hdr_len, b->elen);
    return (uint32_t)XXH3_64bits_digest(&st) == get_u32le(p + b->hdr_len - 4) ? 0 : -EBADMSG;
}

int jf_entry_next(const unsigned char *e, const struct jf_batch *b, uint64_t *pos, uint64_t *next_id,
                  struct jf_entry *out)
{
    uint64_t n = b->elen, v, len, flags, add;
    if (*pos >= n)
        return -EBADMSG;
    out->start = *pos;
    unsigned attrs = e[(*pos)++];
    struct jf_rec *r = &out->r;
    *r = (struct jf_rec){.type = (uint8_t)(attrs & JF_EA_TYPE)};
    out->origin = NULL;
    out->origin_len = 0;
    if (!jf_rec_type_name(r->type) || get_varint(e, n, pos, &len) < 0 || get_varint(e, n, pos, &flags) < 0 ||
        get_varint(e, n, pos, &add) < 0 || len >= JF_COUNT_MAX || flags > UINT32_MAX)
        return -EBADMSG;
    r->len = len;
    r->flags = (uint32_t)flags;
    r->add_ms = b->base_ms + (uint64_t)unzigzag(add);
    if (attrs & JF_EA_MOVED) {
        if (get_varint(e, n, pos, &v) < 0 || v == 0 || v >= *next_id)
            return -EBADMSG;
        r->id = v;
        r->rflags = JF_RF_MOVED;
    } else {
        r->id = (*next_id)++;
    }
    if ((attrs & JF_EA_EXPIRE) && get_varint(e, n, pos, &r->expire_ms) < 0)
        return -EBADMSG;
    if (attrs & JF_EA_PRIORITY) {
        if (*pos >= n)
            return -EBADMSG;
        r->priority = e[(*pos)++];
        r->rflags |= JF_RF_PRIORITY;
    }
    if ((attrs & JF_EA_VISIBLE) && get_varint(e, n, pos, &r->visible_ms) < 0)
        return -EBADMSG;
    if (attrs & JF_EA_DELIVERIES) {
        if (get_varint(e, n, pos, &v) < 0 || v > UINT32_MAX)
            return -EBADMSG;
        r->deliveries = (uint32_t)v;
    }
    if (attrs & JF_EA_ORIGIN) {
        if (get_varint(e, n, pos, &r->origin_id) < 0 || r->origin_id == 0 || r->origin_id >= JF_COUNT_MAX ||
            *pos >= n || !jf_reason_name(e[*pos]))
            return -EBADMSG;
        r->reason = e[(*pos)++];
        if (get_varint(e, n, pos, &v) < 0 || v == 0 || v > JF_ORIGIN_MAX || v > n - *pos)
            return -EBADMSG;
        out->origin = e + *pos;
        out->origin_len = (size_t)v;
        r->origin_sum = XXH3_64bits(out->origin, out->origin_len);
        *pos += v;
    }
    if (r->type == JF_REC_BLOB) {
        if (n - *pos < 8)
            return -EBADMSG;
        r->payload_sum = get_u64le(e + *pos);
        *pos += 8;
        out->payload_pos = *pos;
        return 0;
    }
    if (len > n - *pos)
        return -EBADMSG;
    out->payload_pos = *pos;
    *pos += len;
    return 0;
}

static unsigned entry_attrs(const struct jf_rec *r, size_t origin_len)
{
    return (r->type & JF_EA_TYPE) | (r->rflags & JF_RF_MOVED ? JF_EA_MOVED : 0) | (r->expire_ms ? JF_EA_EXPIRE : 0) |
           (r->rflags & JF_RF_PRIORITY ? JF_EA_PRIORITY : 0) | (r->visible_ms ? JF_EA_VISIBLE : 0) |
           (r->deliveries ? JF_EA_DELIVERIES : 0) | (origin_len ? JF_EA_ORIGIN : 0);
}

size_t jf_entry_hdr_size(const struct jf_rec *r, uint64_t base_ms, size_t origin_len)
{
    unsigned a = entry_attrs(r, origin_len);
    size_t n = 1 + varint_size(r->len) + varint_size(r->flags) + varint_size(zigzag((int64_t)(r->add_ms - base_ms)));
    n += a & JF_EA_MOVED ? varint_size(r->id) : 0;
    n += a & JF_EA_EXPIRE ? varint_size(r->expire_ms) : 0;
    n += a & JF_EA_PRIORITY ? 1 : 0;
    n += a & JF_EA_VISIBLE ? varint_size(r->visible_ms) : 0;
    n += a & JF_EA_DELIVERIES ? varint_size(r->deliveries) : 0;
    n += a & JF_EA_ORIGIN ? varint_size(r->origin_id) + 1 + varint_size(origin_len) + origin_len : 0;
    n += r->type == JF_REC_BLOB ? 8 : 0;
    return n;
}

size_t jf_entry_encode(unsigned char *out, const struct jf_rec *r, uint64_t base_ms, const void *origin,
                       size_t origin_len)
{
    unsigned a = entry_attrs(r, origin_len);
    size_t n = 0;
    out[n++] = (unsigned char)a;
    n += varint_put(out + n, r->len);
    n += varint_put(out + n, r->flags);
    n += varint_put(out + n, zigzag((int64_t)(r->add_ms - base_ms)));
    if (a & JF_EA_MOVED)
        n += varint_put(out + n, r->id);
    if (a & JF_EA_EXPIRE)
        n += varint_put(out + n, r->expire_ms);
    if (a & JF_EA_PRIORITY)
        out[n++] = r->priority;
    if (a & JF_EA_VISIBLE)
        n += varint_put(out + n, r->visible_ms);
    if (a & JF_EA_DELIVERIES)
        n += varint_put(out + n, r->deliveries);
    if (a & JF_EA_ORIGIN) {
        n += varint_put(out + n, r->origin_id);
        out[n++] = r->reason;
        n += varint_put(out + n, origin_len);
        memcpy(out + n, origin, origin_len);
        n += origin_len;
    }
    if (r->type == JF_REC_BLOB) {
        put_u64le(out + n, r->payload_sum);
        n += 8;
    }
    return n;
}

size_t jf_batch_encode_hdr(unsigned char *out, const struct jf_seg_hdr *sh, uint32_t count, uint64_t first_id,
                           uint64_t base_ms, const unsigned char *e, uint64_t elen)
{
    size_t n = 0;
    out[n++] = JF_BATCH_MARKER;
    out[n++] = 0;
    n += varint_put(out + n, count);
    n += varint_put(out + n, elen);
    n += varint_put(out + n, first_id - sh->first_id);
    n += varint_put(out + n, zigzag((int64_t)(base_ms - sh->created_ms)));
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, out, n);
    XXH3_64bits_update(&st, e, elen);
    put_u32le(out + n, (uint32_t)XXH3_64bits_digest(&st));
    return n + 4;
}

size_t jf_batch_hdr_size(const struct jf_seg_hdr *sh, uint32_t count, uint64_t first_id, uint64_t base_ms,
                         uint64_t elen)
{
    return 2 + varint_size(count) + varint_size(elen) + varint_size(first_id - sh->first_id) +
           varint_size(zigzag((int64_t)(base_ms - sh->created_ms))) + 4;
}
