/* tests/fuzz/fuzz_batch.c: libFuzzer target for the version-2 batch codec
 * (journal/format.c, journal/replay.c).
 *
 * The first input byte picks a mode:
 *   even: the rest is a segment body after its header; every batch in it is
 *         parsed (checked and not) and its entries listed, as recovery and a
 *         get do: no read outside the input, no crash, sizes consistent.
 *   odd:  the rest describes entries (attributes, lengths, ids, times); they
 *         are encoded as one batch, which must parse back, check, and give
 *         the same entries. */
#include "journal/format.h"
#include "journal/replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                                       \
    do {                                                                                                               \
        if (!(c)) {                                                                                                    \
            fprintf(stderr, "fuzz_batch: check failed: %s (line %d)\n", #c, __LINE__);                                 \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

static const struct jf_seg_hdr SH = {
    .version = 2, .seq = 7, .first_id = 1000, .cum_bytes = 0, .created_ms = 1700000000000ull};

static void parse_all(const unsigned char *p, size_t n)
{
    uint64_t off = 0;
    while (off < n) {
        struct jbatch bt;
        uint64_t need = 0;
        const char *why = NULL;
        int rc = jbatch_parse(p + off, n - off, &SH, &bt, &need, &why, 1);
        int rc0 = jbatch_parse(p + off, n - off, &SH, &bt, &need, &why, 0);
        if (rc == 0)
            CHECK(rc0 == 0);
        if (rc0 != 0)
            return;
        CHECK(jbatch_size(&bt) <= n - off && bt.b.count >= 1);
        uint64_t pos = 0, next = bt.b.first_id;
        struct jf_entry e;
        for (uint32_t i = 0; i < bt.b.count; i++) {
            if (jbatch_entry(&bt, &pos, &next, &e) < 0)
                break;
            CHECK(pos <= bt.b.elen);
            if (e.r.type == JF_REC_ITEM)
                CHECK(e.payload_pos + e.r.len <= bt.b.elen);
            if (i < 64) {
                struct jf_entry again;
                CHECK(jbatch_entry_at(&bt, i, &again) == 0 && again.r.id == e.r.id);
            }
        }
        off += jbatch_size(&bt);
    }
}

static uint64_t take(const unsigned char **p, size_t *n, unsigned bytes)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes && *n; i++, (*p)++, (*n)--)
        v |= (uint64_t) * *p << (8 * i);
    return v;
}

static void round_trip(const unsigned char *p, size_t n)
{
    enum { MAX = 32, PAY = 64 };
    struct jf_rec recs[MAX];
    unsigned char payload[PAY];
    memset(payload, 'p', sizeof(payload));
    uint32_t count = 0;
    uint64_t next = SH.first_id + take(&p, &n, 1);
    uint64_t base = SH.created_ms + take(&p, &n, 4) - 0x7fffffff;
    while (n && count < MAX) {
        unsigned a = (unsigned)take(&p, &n, 1);
        struct jf_rec *r = &recs[count];
        *r = (struct jf_rec){.type = (a & 1) ? JF_REC_BLOB : JF_REC_ITEM,
                             .len = take(&p, &n, 1) % PAY,
                             .flags = (uint32_t)take(&p, &n, a & 2 ? 4 : 1),
                             .add_ms = base + take(&p, &n, 2) - 0x7fff};
        if (a & 4) {
            r->rflags = JF_RF_MOVED;
            r->id = next > 1 ? 1 + take(&p, &n, 2) % (next - 1) : 0;
            if (!r->id)
                r->rflags = 0;
        }
        if (!(r->rflags & JF_RF_MOVED))
            r->id = next++;
        r->expire_ms = a & 8 ? take(&p, &n, 6) : 0;
        if (a & 16) { /* a priority, 0 included, is written only when marked present */
            r->priority = (uint8_t)take(&p, &n, 1);
            r->rflags |= JF_RF_PRIORITY;
        }
        r->visible_ms = a & 32 ? take(&p, &n, 6) : 0;
        r->deliveries = a & 64 ? (uint32_t)take(&p, &n, 2) : 0;
        if (r->type == JF_REC_BLOB)
            r->payload_sum = take(&p, &n, 8);
        count++;
    }
    if (!count)
        return;
    uint64_t first = recs[0].rflags & JF_RF_MOVED ? next : recs[0].id;
    for (uint32_t i = 0; i < count; i++)
        if (!(recs[i].rflags & JF_RF_MOVED)) {
            first = recs[i].id;
            break;
        }
    unsigned char *buf = malloc(JF_BATCH_HDR_MAX + (size_t)count * (64 + PAY));
    CHECK(buf);
    unsigned char *e = buf + JF_BATCH_HDR_MAX, *q = e;
    for (uint32_t i = 0; i < count; i++) {
        size_t h = jf_entry_encode(q, &recs[i], base, NULL, 0);
        CHECK(h == jf_entry_hdr_size(&recs[i], base, 0));
        q += h;
        if (recs[i].type == JF_REC_ITEM) {
            memcpy(q, payload, recs[i].len);
            q += recs[i].len;
        }
    }
    uint64_t elen = (uint64_t)(q - e);
    unsigned char hdr[JF_BATCH_HDR_MAX];
    /* the batch's first id: the id its first non-moved entry takes */
    size_t hl = jf_batch_encode_hdr(hdr, &SH, count, first, base, e, elen);
    CHECK(hl == jf_batch_hdr_size(&SH, count, first, base, elen));
    memcpy(e - hl, hdr, hl);
    struct jbatch bt;
    uint64_t need;
    const char *why;
    CHECK(jbatch_parse(e - hl, hl + elen, &SH, &bt, &need, &why, 1) == 0);
    CHECK(jbatch_size(&bt) == hl + elen && bt.b.count == count);
    uint64_t pos = 0, nid = bt.b.first_id;
    for (uint32_t i = 0; i < count; i++) {
        struct jf_entry got;
        CHECK(jbatch_entry(&bt, &pos, &nid, &got) == 0);
        CHECK(got.r.id == recs[i].id && got.r.len == recs[i].len && got.r.flags == recs[i].flags &&
              got.r.add_ms == recs[i].add_ms && got.r.expire_ms == recs[i].expire_ms &&
              got.r.priority == recs[i].priority && got.r.visible_ms == recs[i].visible_ms &&
              got.r.deliveries == recs[i].deliveries && got.r.type == recs[i].type &&
              (got.r.rflags & (JF_RF_MOVED | JF_RF_PRIORITY)) == (recs[i].rflags & (JF_RF_MOVED | JF_RF_PRIORITY)));
        if (got.r.type == JF_REC_BLOB)
            CHECK(got.r.payload_sum == recs[i].payload_sum);
    }
    CHECK(pos == elen);
    /* any flipped byte is caught by the checksum (or the header decode) */
    size_t at = (size_t)(recs[0].add_ms % (hl + elen));
    (e - hl)[at] ^= 0x20;
    CHECK(jbatch_parse(e - hl, hl + elen, &SH, &bt, &need, &why, 1) != 0);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        round_trip(data + 1, size - 1);
    else
        parse_all(data + 1, size - 1);
    return 0;
}
