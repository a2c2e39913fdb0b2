/* Unit tests for journal/format.c: the on-disk encodings of segment headers,
 * record headers, ack headers and ack records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "journal/format.h"
#include "util/buf.h"

/* ---- round trips ---- */

static void test_seg_hdr_round_trip(void **state)
{
    (void)state;
    struct jf_seg_hdr in = {.version = JF_VERSION,
                            .seq = 0x0102030405060708ull,
                            .first_id = 0x1112131415161718ull,
                            .cum_bytes = 0x2122232425262728ull,
                            .created_ms = 0x3132333435363738ull},
                      out;
    unsigned char raw[JF_SEG_HDR];
    jf_seg_hdr_encode(raw, &in);
    assert_memory_equal(raw, JF_SEG_MAGIC, 8);
    memset(&out, 0xee, sizeof(out));
    assert_int_equal(jf_seg_hdr_decode(raw, &out), 0);
    assert_int_equal(out.version, JF_VERSION);
    assert_true(out.seq == in.seq);
    assert_true(out.first_id == in.first_id);
    assert_true(out.cum_bytes == in.cum_bytes);
    assert_true(out.created_ms == in.created_ms);
}

static void test_seg_hdr_encoding_is_little_endian_at_fixed_offsets(void **state)
{
    (void)state;
    struct jf_seg_hdr in = {.version = JF_VERSION, .seq = 7, .first_id = 9, .cum_bytes = 11, .created_ms = 13};
    unsigned char raw[JF_SEG_HDR];
    jf_seg_hdr_encode(raw, &in);
    assert_int_equal(get_u32le(raw + 8), JF_VERSION);
    assert_int_equal(get_u64le(raw + 16), 7);
    assert_int_equal(get_u64le(raw + 24), 9);
    assert_int_equal(get_u64le(raw + 32), 11);
    assert_int_equal(get_u64le(raw + 40), 13);
}

static struct jf_rec sample_rec(void)
{
    static const char payload[] = "hello, journal";
    return (struct jf_rec){.type = JF_REC_ITEM,
                           .priority = 3,
                           .flags = 0xdeadbeefu,
                           .deliveries = 0x01020304u,
                           .id = 0x0877665544332211ull,
                           .add_ms = 1700000000123ull,
                           .expire_ms = 1700000999999ull,
                           .visible_ms = 0x0badf00dull,
                           .len = sizeof(payload) - 1,
                           .payload_sum = jf_payload_sum(payload, sizeof(payload) - 1)};
}

static void test_rec_round_trip(void **state)
{
    (void)state;
    struct jf_rec in = sample_rec(), out;
    unsigned char raw[JF_REC_HDR];
    jf_rec_encode(raw, &in);
    assert_int_equal(get_u32le(raw), JF_REC_MAGIC);
    memset(&out, 0xee, sizeof(out));
    assert_int_equal(jf_rec_decode(raw, &out), 0);
    assert_int_equal(out.type, in.type);
    assert_int_equal(out.priority, in.priority);
    assert_int_equal(out.flags, in.flags);
    assert_int_equal(out.deliveries, in.deliveries);
    assert_true(out.id == in.id);
    assert_true(out.add_ms == in.add_ms);
    assert_true(out.expire_ms == in.expire_ms);
    assert_true(out.visible_ms == in.visible_ms);
    assert_true(out.len == in.len);
    assert_true(out.payload_sum == in.payload_sum);
}

static void test_rec_round_trip_of_extreme_values(void **state)
{
    (void)state;
    struct jf_rec in = {.type = JF_REC_ITEM,
                        .priority = 0xff,
                        .flags = UINT32_MAX,
                        .deliveries = UINT32_MAX,
                        .id = JF_COUNT_MAX - 1,
                        .add_ms = UINT64_MAX,
                        .expire_ms = UINT64_MAX,
                        .visible_ms = UINT64_MAX,
                        .len = JF_COUNT_MAX - 1,
                        .payload_sum = UINT64_MAX},
                  out;
    unsigned char raw[JF_REC_HDR];
    jf_rec_encode(raw, &in);
    assert_int_equal(jf_rec_decode(raw, &out), 0);
    assert_true(out.id == JF_COUNT_MAX - 1);
    assert_true(out.add_ms == UINT64_MAX);
    assert_true(out.expire_ms == UINT64_MAX);
    assert_true(out.visible_ms == UINT64_MAX);
    assert_true(out.len == JF_COUNT_MAX - 1);
    assert_true(out.payload_sum == UINT64_MAX);
    assert_int_equal(out.flags, UINT32_MAX);
    assert_int_equal(out.deliveries, UINT32_MAX);
    assert_int_equal(out.priority, 0xff);
}

static void test_ack_hdr_round_trip(void **state)
{
    (void)state;
    struct jf_ack_hdr in = {.version = JF_VERSION, .generation = 0x0123456789abcdefull}, out;
    unsigned char raw[JF_ACK_HDR];
    jf_ack_hdr_encode(raw, &in);
    assert_memory_equal(raw, JF_ACK_MAGIC, 8);
    memset(&out, 0xee, sizeof(out));
    assert_int_equal(jf_ack_hdr_decode(raw, &out), 0);
    assert_int_equal(out.version, JF_VERSION);
    assert_true(out.generation == in.generation);
}

static void test_ack_round_trip_of_every_type(void **state)
{
    (void)state;
    for (int t = JF_ACK_CKPT; t <= JF_ACK_FIRED; t++) {
        struct jf_ack in = {.type = (uint8_t)t,
                            .id = 1000u + (uint64_t)t,
                            .seg = 0x21a2a3a4a5a6a7a8ull,
                            .off = 0xb1b2b3b4b5b6b7b8ull,
                            .len = 0x31c2c3c4c5c6c7c8ull,
                            .cum = 0x3fd2d3d4d5d6d7d8ull,
                            .deliveries = 0xfedcba98u,
                            .xfer = JF_REASON_KICKED},
                      out;
        unsigned char raw[JF_ACK_REC];
        jf_ack_encode(raw, &in);
        memset(&out, 0xee, sizeof(out));
        assert_int_equal(jf_ack_decode(raw, &out), 0);
        assert_int_equal(out.type, t);
        assert_true(out.id == in.id);
        assert_true(out.seg == in.seg);
        assert_true(out.off == in.off);
        assert_true(out.len == in.len);
        assert_true(out.deliveries == in.deliveries);
        assert_int_equal(out.xfer, in.xfer);
        assert_true(out.cum == in.cum);
    }
}

static void test_payload_sum_is_xxh3_and_depends_on_every_byte(void **state)
{
    (void)state;
    char p[32] = "0123456789abcdefghijklmnopqrstu";
    uint64_t s = jf_payload_sum(p, sizeof(p));
    assert_true(s == XXH3_64bits(p, sizeof(p)));
    for (size_t i = 0; i < sizeof(p); i++) {
        p[i] ^= 1;
        assert_true(jf_payload_sum(p, sizeof(p)) != s);
        p[i] ^= 1;
    }
    assert_true(jf_payload_sum(p, 0) == XXH3_64bits(p, 0));
}

/* ---- damage is rejected ---- */

typedef int (*decode_fn)(const unsigned char *in, void *out);

static int dec_seg(const unsigned char *in, void *out) { return jf_seg_hdr_decode(in, out); }
static int dec_rec(const unsigned char *in, void *out) { return jf_rec_decode(in, out); }
static int dec_ack_hdr(const unsigned char *in, void *out) { return jf_ack_hdr_decode(in, out); }
static int dec_ack(const unsigned char *in, void *out) { return jf_ack_decode(in, out); }

/* Every single-byte change, with several bit patterns, is -EBADMSG. */
static void check_every_flip_rejected(const unsigned char *good, size_t size, decode_fn dec)
{
    static const unsigned char masks[] = {0x01, 0x80, 0x10, 0xff};
    unsigned char raw[128];
    unsigned char out[128];
    assert_true(size <= sizeof(raw));
    memcpy(raw, good, size);
    assert_int_equal(dec(raw, out), 0);
    for (size_t i = 0; i < size; i++)
        for (size_t m = 0; m < sizeof(masks); m++) {
            raw[i] ^= masks[m];
            int rc = dec(raw, out);
            if (rc != -EBADMSG)
                fail_msg("byte %zu ^ 0x%02x accepted (rc %d)", i, masks[m], rc);
            raw[i] ^= masks[m];
        }
    assert_int_equal(dec(raw, out), 0);
}

static void test_seg_hdr_flipped_byte_rejected(void **state)
{
    (void)state;
    unsigned char raw[JF_SEG_HDR];
    jf_seg_hdr_encode(
        raw,
        &(struct jf_seg_hdr){.version = JF_VERSION, .seq = 5, .first_id = 42, .cum_bytes = 99, .created_ms = 1234567});
    check_every_flip_rejected(raw, sizeof(raw), dec_seg);
}

static void test_rec_flipped_byte_rejected(void **state)
{
    (void)state;
    struct jf_rec r = sample_rec();
    unsigned char raw[JF_REC_HDR];
    jf_rec_encode(raw, &r);
    check_every_flip_rejected(raw, sizeof(raw), dec_rec);
}

static void test_ack_hdr_flipped_byte_rejected(void **state)
{
    (void)state;
    unsigned char raw[JF_ACK_HDR];
    jf_ack_hdr_encode(raw, &(struct jf_ack_hdr){.version = JF_VERSION, .generation = 77});
    check_every_flip_rejected(raw, sizeof(raw), dec_ack_hdr);
}

static void test_ack_flipped_byte_rejected(void **state)
{
    (void)state;
    for (int t = JF_ACK_CKPT; t <= JF_ACK_RESTORE; t++) {
        unsigned char raw[JF_ACK_REC];
        jf_ack_encode(raw, &(struct jf_ack){.type = (uint8_t)t, .id = 3, .seg = 2, .off = 64, .len = 10, .cum = 30});
        check_every_flip_rejected(raw, sizeof(raw), dec_ack);
    }
}

static void test_all_zero_buffers_rejected(void **state)
{
    (void)state;
    unsigned char zero[128] = {0};
    struct jf_seg_hdr sh;
    struct jf_rec r;
    struct jf_ack_hdr ah;
    struct jf_ack a;
    assert_int_equal(jf_seg_hdr_decode(zero, &sh), -EBADMSG);
    assert_int_equal(jf_rec_decode(zero, &r), -EBADMSG);
    assert_int_equal(jf_ack_hdr_decode(zero, &ah), -EBADMSG);
    assert_int_equal(jf_ack_decode(zero, &a), -EBADMSG);
}

static void test_all_ones_buffers_rejected(void **state)
{
    (void)state;
    unsigned char ones[128];
    memset(ones, 0xff, sizeof(ones));
    struct jf_seg_hdr sh;
    struct jf_rec r;
    struct jf_ack_hdr ah;
    struct jf_ack a;
    assert_int_equal(jf_seg_hdr_decode(ones, &sh), -EBADMSG);
    assert_int_equal(jf_rec_decode(ones, &r), -EBADMSG);
    assert_int_equal(jf_ack_hdr_decode(ones, &ah), -EBADMSG);
    assert_int_equal(jf_ack_decode(ones, &a), -EBADMSG);
}

/* A correctly sealed header of another format version is refused as
 * "not ours" (-EPROTONOSUPPORT), never taken for damage (-EBADMSG), and the
 * version it carries is reported. */
static void test_other_version_refused_not_taken_for_damage(void **state)
{
    (void)state;
    unsigned char raw[JF_SEG_HDR];
    struct jf_seg_hdr sh;
    jf_seg_hdr_encode(raw, &(struct jf_seg_hdr){.version = JF_VERSION, .seq = 1, .first_id = 1});
    put_u32le(raw + 8, JF_VERSION + 1);
    put_u64le(raw + JF_SEG_HDR - 8, XXH3_64bits(raw, JF_SEG_HDR - 8));
    assert_int_equal(jf_seg_hdr_decode(raw, &sh), -EPROTONOSUPPORT);
    assert_int_equal(sh.version, JF_VERSION + 1);
    raw[20] ^= 1; /* the same header, damaged: damage wins */
    assert_int_equal(jf_seg_hdr_decode(raw, &sh), -EBADMSG);

    unsigned char ah_raw[JF_ACK_HDR];
    struct jf_ack_hdr ah;
    jf_ack_hdr_encode(ah_raw, &(struct jf_ack_hdr){.version = JF_ACK_VERSION, .generation = 1});
    put_u32le(ah_raw + 8, JF_ACK_VERSION + 1);
    put_u64le(ah_raw + JF_ACK_HDR - 8, XXH3_64bits(ah_raw, JF_ACK_HDR - 8));
    assert_int_equal(jf_ack_hdr_decode(ah_raw, &ah), -EPROTONOSUPPORT);
    assert_int_equal(ah.version, JF_ACK_VERSION + 1);
}

/* A sealed record of an unknown type is not accepted. */
static void test_unknown_types_rejected_even_when_sealed(void **state)
{
    (void)state;
    struct jf_rec r = sample_rec();
    unsigned char raw[JF_REC_HDR];
    r.type = JF_REC_BLOB + 1;
    jf_rec_encode(raw, &r);
    assert_int_equal(jf_rec_decode(raw, &r), -EBADMSG);

    unsigned char araw[JF_ACK_REC];
    struct jf_ack a;
    jf_ack_encode(araw, &(struct jf_ack){.type = 0, .id = 1});
    assert_int_equal(jf_ack_decode(araw, &a), -EBADMSG);
    jf_ack_encode(araw, &(struct jf_ack){.type = JF_ACK_FIRED + 1, .id = 1});
    assert_int_equal(jf_ack_decode(araw, &a), -EBADMSG);
}

/* Counts no journal can reach are damage, so no +1 on them overflows
 * (found by fuzzing: a generation of 2^64-1 wrapped to 0 and lost removals;
 * a first id of 2^64-1 wrapped and lost appends). */
static void test_unreachable_counts_rejected_even_when_sealed(void **state)
{
    (void)state;
    unsigned char raw[JF_SEG_HDR > JF_REC_HDR ? JF_SEG_HDR : JF_REC_HDR];
    struct jf_seg_hdr sh = {.version = JF_VERSION, .seq = 1, .first_id = UINT64_MAX, .cum_bytes = 0};
    jf_seg_hdr_encode(raw, &sh);
    assert_int_equal(jf_seg_hdr_decode(raw, &sh), -EBADMSG);
    sh.first_id = JF_COUNT_MAX - 1;
    jf_seg_hdr_encode(raw, &sh);
    assert_int_equal(jf_seg_hdr_decode(raw, &sh), 0);

    struct jf_rec r = sample_rec();
    r.id = UINT64_MAX;
    jf_rec_encode(raw, &r);
    assert_int_equal(jf_rec_decode(raw, &r), -EBADMSG);

    unsigned char ah[JF_ACK_HDR];
    struct jf_ack_hdr h = {.version = JF_VERSION, .generation = UINT64_MAX};
    jf_ack_hdr_encode(ah, &h);
    assert_int_equal(jf_ack_hdr_decode(ah, &h), -EBADMSG);

    unsigned char ar[JF_ACK_REC];
    struct jf_ack ack = {.type = JF_ACK_TAKE, .id = UINT64_MAX};
    jf_ack_encode(ar, &ack);
    assert_int_equal(jf_ack_decode(ar, &ack), -EBADMSG);
}

/* A segment header is not an ack header and the other way round. */
static void test_headers_not_mistaken_for_each_other(void **state)
{
    (void)state;
    unsigned char seg[JF_SEG_HDR], ack[JF_ACK_HDR];
    struct jf_seg_hdr sh;
    struct jf_ack_hdr ah;
    jf_seg_hdr_encode(seg, &(struct jf_seg_hdr){.version = JF_VERSION, .seq = 1});
    jf_ack_hdr_encode(ack, &(struct jf_ack_hdr){.version = JF_VERSION, .generation = 1});
    assert_int_equal(jf_ack_hdr_decode(seg, &ah), -EBADMSG);
    assert_int_equal(jf_seg_hdr_decode(ack, &sh), -EBADMSG);
}

/* docs/journal-format.md lists every record and ack type with its number,
 * as the code declares them (JF_REC_TYPES, JF_ACK_TYPES). */
static void test_doc_lists_every_type_the_code_knows(void **state)
{
    (void)state;
    FILE *f = fopen(DARNER_SOURCE_DIR "/docs/journal-format.md", "rb");
    assert_non_null(f);
    static char doc[1 << 17];
    size_t n = fread(doc, 1, sizeof(doc) - 1, f);
    fclose(f);
    doc[n] = '\0';
    char want[64];
#define JF_X(name, num, text)                                                                                          \
    snprintf(want, sizeof(want), "| %d %s |", num, text);                                                              \
    if (!strstr(doc, want))                                                                                            \
        fail_msg("docs/journal-format.md does not list ack type \"%s\"", want);
    JF_ACK_TYPES(JF_X)
#undef JF_X
#define JF_X(name, num, text)                                                                                          \
    snprintf(want, sizeof(want), "%d = %s", num, text);                                                                \
    if (!strstr(doc, want))                                                                                            \
        fail_msg("docs/journal-format.md does not list record type \"%s\"", want);
    JF_REC_TYPES(JF_X)
#undef JF_X
    assert_null(jf_ack_type_name(0));
    assert_string_equal(jf_ack_type_name(JF_ACK_RESTORE), "RESTORE");
}

/* Version-2 entries keep every field, the ones for scheduling included (a
 * priority of 0 is a priority, not its absence). */
static void test_batch_entries_round_trip_every_field(void **state)
{
    (void)state;
    struct jf_seg_hdr sh = {.version = 2, .seq = 3, .first_id = 100, .created_ms = 1700000000000ull};
    struct jf_rec recs[3] = {
        {.type = JF_REC_ITEM, .flags = 7, .id = 100, .add_ms = sh.created_ms + 5, .len = 3},
        {.type = JF_REC_ITEM,
         .rflags = JF_RF_PRIORITY,
         .priority = 0,
         .flags = 0xffffffffu,
         .id = 101,
         .add_ms = sh.created_ms - 2000,
         .expire_ms = 1800000000000ull,
         .visible_ms = 1700000005000ull,
         .deliveries = 3,
         .len = 0,
         .origin_id = 77,
         .reason = JF_REASON_BURIED},
        {.type = JF_REC_BLOB,
         .rflags = JF_RF_MOVED,
         .id = 42,
         .add_ms = sh.created_ms,
         .len = 1u << 20,
         .payload_sum = 0x1122334455667788ull},
    };
    unsigned char buf[512], *e = buf + JF_BATCH_HDR_MAX, *p = e;
    const char *origin = "jobs";
    for (int i = 0; i < 3; i++) {
        size_t olen = i == 1 ? 4 : 0;
        size_t n = jf_entry_encode(p, &recs[i], recs[0].add_ms, olen ? origin : NULL, olen);
        assert_int_equal(n, jf_entry_hdr_size(&recs[i], recs[0].add_ms, olen));
        p += n;
        if (recs[i].type == JF_REC_ITEM) {
            memcpy(p, "abc", recs[i].len);
            p += recs[i].len;
        }
    }
    unsigned char hdr[JF_BATCH_HDR_MAX];
    size_t hl = jf_batch_encode_hdr(hdr, &sh, 3, 100, recs[0].add_ms, e, (uint64_t)(p - e));
    memcpy(e - hl, hdr, hl);
    struct jf_batch b;
    assert_int_equal(jf_batch_decode(e - hl, hl + (size_t)(p - e), &sh, &b), 0);
    assert_int_equal(jf_batch_check(e - hl, &b), 0);
    assert_int_equal(b.count, 3);
    uint64_t pos = 0, next = b.first_id;
    for (int i = 0; i < 3; i++) {
        struct jf_entry got;
        assert_int_equal(jf_entry_next(e, &b, &pos, &next, &got), 0);
        assert_int_equal(got.r.id, recs[i].id);
        assert_int_equal(got.r.flags, recs[i].flags);
        assert_int_equal(got.r.add_ms, recs[i].add_ms);
        assert_int_equal(got.r.expire_ms, recs[i].expire_ms);
        assert_int_equal(got.r.visible_ms, recs[i].visible_ms);
        assert_int_equal(got.r.deliveries, recs[i].deliveries);
        assert_int_equal(got.r.origin_id, recs[i].origin_id);
        assert_int_equal(got.r.reason, recs[i].reason);
        assert_int_equal(got.r.len, recs[i].len);
        assert_int_equal(got.r.rflags & (JF_RF_MOVED | JF_RF_PRIORITY), recs[i].rflags);
        assert_int_equal(got.r.priority, recs[i].priority);
        if (i == 1) {
            assert_int_equal(got.origin_len, 4);
            assert_memory_equal(got.origin, "jobs", 4);
        }
        if (i == 2)
            assert_int_equal(got.r.payload_sum, recs[i].payload_sum);
    }
    assert_int_equal(pos, (uint64_t)(p - e));
    e[1] ^= 1; /* one flipped bit anywhere fails the check */
    assert_int_equal(jf_batch_check(e - hl, &b), -EBADMSG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seg_hdr_round_trip),
        cmocka_unit_test(test_seg_hdr_encoding_is_little_endian_at_fixed_offsets),
        cmocka_unit_test(test_rec_round_trip),
        cmocka_unit_test(test_rec_round_trip_of_extreme_values),
        cmocka_unit_test(test_ack_hdr_round_trip),
        cmocka_unit_test(test_ack_round_trip_of_every_type),
        cmocka_unit_test(test_payload_sum_is_xxh3_and_depends_on_every_byte),
        cmocka_unit_test(test_seg_hdr_flipped_byte_rejected),
        cmocka_unit_test(test_rec_flipped_byte_rejected),
        cmocka_unit_test(test_ack_hdr_flipped_byte_rejected),
        cmocka_unit_test(test_ack_flipped_byte_rejected),
        cmocka_unit_test(test_all_zero_buffers_rejected),
        cmocka_unit_test(test_all_ones_buffers_rejected),
        cmocka_unit_test(test_other_version_refused_not_taken_for_damage),
        cmocka_unit_test(test_doc_lists_every_type_the_code_knows),
        cmocka_unit_test(test_batch_entries_round_trip_every_field),
        cmocka_unit_test(test_unknown_types_rejected_even_when_sealed),
        cmocka_unit_test(test_unreachable_counts_rejected_even_when_sealed),
        cmocka_unit_test(test_headers_not_mistaken_for_each_other),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
