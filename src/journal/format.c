/* journal/format.c: encoding and checking of the on-disk structures. */
#include "journal/format.h"

#include "util/buf.h"

#include <errno.h>
#include <string.h>
#include <xxhash.h>

/* Segment and ack headers and ack records end in an XXH3-64 of the bytes
 * before it. */
static void seal(unsigned char *p, size_t size)
{
    put_u64le(p + size - 8, XXH3_64bits(p, size - 8));
}

static int sealed(const unsigned char *p, size_t size)
{
    return get_u64le(p + size - 8) == XXH3_64bits(p, size - 8);
}

void jf_seg_hdr_encode(unsigned char out[JF_SEG_HDR], const struct jf_seg_hdr *h)
{
    memset(out, 0, JF_SEG_HDR);
    memcpy(out, JF_SEG_MAGIC, 8);
    put_u32le(out + 8, JF_VERSION);
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
    if (h->version != JF_VERSION)
        return -EPROTONOSUPPORT;
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
#define JF_X(name, num, text) \
    case num:                 \
        return text;
        JF_REC_TYPES(JF_X)
#undef JF_X
    }
    return NULL;
}

const char *jf_ack_type_name(unsigned type)
{
    switch (type) {
#define JF_X(name, num, text) \
    case num:                 \
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
    if (get_u32le(in) != JF_REC_MAGIC ||
        get_u32le(in + 4) != (uint32_t)XXH3_64bits(in + 8, JF_REC_HDR - 8))
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
    put_u32le(out + 8, JF_VERSION);
    put_u64le(out + 16, h->generation);
    seal(out, JF_ACK_HDR);
}

int jf_ack_hdr_decode(const unsigned char in[JF_ACK_HDR], struct jf_ack_hdr *h)
{
    if (memcmp(in, JF_ACK_MAGIC, 8) != 0 || !sealed(in, JF_ACK_HDR))
        return -EBADMSG;
    h->version = get_u32le(in + 8);
    if (h->version != JF_VERSION)
        return -EPROTONOSUPPORT;
    h->generation = get_u64le(in + 16);
    if (h->generation == 0 || h->generation >= JF_COUNT_MAX)
        return -EBADMSG;
    return 0;
}

/* Ack record: type(1) kind(1) 0(6) id(8) seg(8) off(8) len(8) cum(8) 0(8) sum(8). */
void jf_ack_encode(unsigned char out[JF_ACK_REC], const struct jf_ack *a)
{
    memset(out, 0, JF_ACK_REC);
    out[0] = a->type;
    out[1] = a->kind;
    put_u64le(out + 8, a->id);
    put_u64le(out + 16, a->seg);
    put_u64le(out + 24, a->off);
    put_u64le(out + 32, a->len);
    put_u64le(out + 40, a->cum);
    seal(out, JF_ACK_REC);
}

int jf_ack_decode(const unsigned char in[JF_ACK_REC], struct jf_ack *a)
{
    if (!sealed(in, JF_ACK_REC) || !jf_ack_type_name(in[0]))
        return -EBADMSG;
    a->type = in[0];
    a->kind = in[1] ? in[1] : JF_REC_ITEM;
    a->id = get_u64le(in + 8);
    a->seg = get_u64le(in + 16);
    a->off = get_u64le(in + 24);
    a->len = get_u64le(in + 32);
    a->cum = get_u64le(in + 40);
    if (a->id >= JF_COUNT_MAX || a->seg >= JF_COUNT_MAX || a->len >= JF_COUNT_MAX || a->cum >= JF_COUNT_MAX)
        return -EBADMSG;
    return 0;
}
