/* Unit tests for proto/bin.c, the memcache binary protocol request parser.
 *
 * Every input is copied so that its last byte sits right before a page that
 * cannot be read (as in test_parse.c): a parser that looks one byte too far
 * crashes the test instead of passing by luck. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "proto/bin.h"
#include "testplat.h"

#define GUARD_DATA_PAGES 8
#define MAX_ITEM (UINT64_C(1) << 30)

/* ---- the guard pages ---- */

#include "guard.h"

/* Copy n bytes so they end right at the unreadable page; returns the copy. */
static const unsigned char *place(const unsigned char *s, size_t n) { return guard_place_end(s, n); }

/* ---- building requests ---- */

struct msg {
    unsigned char b[24 + 8 + 1024 + 20000];
    size_t n;
};

/* A request header with any lengths, true or not. */
static void header(struct msg *m, uint8_t opcode, uint16_t keylen, uint8_t extlen, uint32_t bodylen, uint32_t opaque,
                   uint64_t cas)
{
    memset(m->b, 0, 24);
    m->b[0] = 0x80;
    m->b[1] = opcode;
    m->b[2] = (unsigned char)(keylen >> 8);
    m->b[3] = (unsigned char)keylen;
    m->b[4] = extlen;
    for (int i = 0; i < 4; i++) {
        m->b[8 + i] = (unsigned char)(bodylen >> (24 - 8 * i));
        m->b[12 + i] = (unsigned char)(opaque >> (24 - 8 * i));
    }
    for (int i = 0; i < 8; i++)
        m->b[16 + i] = (unsigned char)(cas >> (56 - 8 * i));
    m->n = 24;
}

/* A well-formed request: header, extras, key, value. */
static void build(struct msg *m, uint8_t opcode, const void *ext, size_t extlen, const char *key, size_t keylen,
                  const void *val, size_t vallen)
{
    assert_true(24 + extlen + keylen + vallen <= sizeof m->b);
    header(m, opcode, (uint16_t)keylen, (uint8_t)extlen, (uint32_t)(extlen + keylen + vallen), 0x01020304, 0);
    if (extlen)
        memcpy(m->b + m->n, ext, extlen);
    m->n += extlen;
    if (keylen)
        memcpy(m->b + m->n, key, keylen);
    m->n += keylen;
    if (vallen)
        memcpy(m->b + m->n, val, vallen);
    m->n += vallen;
}

static void build_key(struct msg *m, uint8_t opcode, const char *key)
{
    build(m, opcode, NULL, 0, key, key ? strlen(key) : 0, NULL, 0);
}

static void build_set(struct msg *m, uint8_t opcode, const char *key, uint32_t flags, uint32_t exptime, const char *val)
{
    unsigned char ext[8];
    for (int i = 0; i < 4; i++) {
        ext[i] = (unsigned char)(flags >> (24 - 8 * i));
        ext[4 + i] = (unsigned char)(exptime >> (24 - 8 * i));
    }
    build(m, opcode, ext, 8, key, strlen(key), val, strlen(val));
}

static uint32_t bodylen_of(const unsigned char *b)
{
    return (uint32_t)b[8] << 24 | (uint32_t)b[9] << 16 | (uint32_t)b[10] << 8 | b[11];
}

static void assert_in(struct proto_slice s, const unsigned char *buf, size_t n)
{
    if (s.len == 0)
        return;
    assert_true((const unsigned char *)s.p >= buf);
    assert_true((const unsigned char *)s.p + s.len <= buf + n);
}

/* Parse n bytes placed before the guard page; checks the contract every
 * result keeps. */
static ssize_t parse_max(const unsigned char *s, size_t n, uint64_t max_item, struct proto_bin_req *r)
{
    const unsigned char *buf = place(s, n);
    ssize_t rc = proto_bin_parse(buf, n, max_item, r);
    assert_true(rc >= PROTO_BIN_BAD_MAGIC && rc <= (ssize_t)n);
    if (rc == PROTO_BIN_BAD_MAGIC) {
        assert_int_equal(r->status, PROTO_BIN_EINVAL);
        assert_int_equal(r->req.type, PROTO_BAD);
        assert_int_equal(r->req.fatal, 1);
        assert_int_equal(r->skip, 0);
    }
    if (rc > 0) {
        uint64_t whole = 24 + (uint64_t)bodylen_of(buf);
        assert_int_equal(r->opcode, buf[1]);
        if (r->status == PROTO_BIN_OK) {
            assert_null(r->error);
            assert_int_equal(r->skip, 0);
            assert_true(r->req.type != PROTO_BAD && r->req.type != PROTO_UNKNOWN);
            assert_int_equal((uint64_t)rc + (r->req.type == PROTO_SET ? r->req.bytes : 0), whole);
        } else {
            assert_non_null(r->error);
            assert_true(strlen(r->error) > 0);
            assert_int_equal((uint64_t)rc + r->skip, whole);
            assert_int_equal(r->req.swallow, r->skip);
            assert_int_equal(r->req.type, r->status == PROTO_BIN_UNKNOWN_COMMAND ? PROTO_UNKNOWN : PROTO_BAD);
            assert_int_equal(r->req.fatal, 0);
        }
        assert_in(r->req.keys, buf, (size_t)rc);
        assert_in(r->req.key.full, buf, (size_t)rc);
        assert_in(r->mech, buf, (size_t)rc);
        assert_in(r->data, buf, (size_t)rc);
    }
    return rc;
}

static ssize_t parse_msg(const struct msg *m, struct proto_bin_req *r) { return parse_max(m->b, m->n, MAX_ITEM, r); }

/* The whole request parses OK into type, taking `consumed` bytes. */
static void parse_ok(const struct msg *m, enum proto_type type, size_t consumed, struct proto_bin_req *r)
{
    ssize_t rc = parse_msg(m, r);
    if (rc != (ssize_t)consumed || r->status != PROTO_BIN_OK)
        print_error("opcode 0x%02x: rc=%lld status=0x%04x error=%s\n", m->b[1], (long long)rc, r->status,
                    r->error ? r->error : "-");
    assert_int_equal(rc, (ssize_t)consumed);
    assert_int_equal(r->status, PROTO_BIN_OK);
    assert_int_equal(r->req.type, type);
    assert_int_equal(r->opaque, 0x01020304);
}

/* The request is refused with status and error, consuming `consumed`. */
static void parse_err(const struct msg *m, uint16_t status, const char *error, size_t consumed, struct proto_bin_req *r)
{
    ssize_t rc = parse_msg(m, r);
    if (rc != (ssize_t)consumed || r->status != status)
        print_error("opcode 0x%02x: rc=%lld status=0x%04x error=%s\n", m->b[1], (long long)rc, r->status,
                    r->error ? r->error : "-");
    assert_int_equal(rc, (ssize_t)consumed);
    assert_int_equal(r->status, status);
    if (error)
        assert_string_equal(r->error, error);
}

static void assert_slice(struct proto_slice s, const char *want, size_t n)
{
    assert_int_equal(s.len, n);
    if (n)
        assert_memory_equal(s.p, want, n);
}

/* ---- get ---- */

static void get_is_a_get_of_its_key_with_a_cas(void **state)
{
    (void)state;
    struct msg m;
    struct proto_bin_req r;
    build_key(&m, PROTO_BIN_GET, "jobs");
    parse_ok(&m, PROTO_GET, 28, &r);
    assert_int_equal(r.opcode, PROTO_BIN_GET);
    assert_int_equal(r.quiet, 0);
    assert_int_equal(r.with_key, 0);
    assert_int_equal(r.req.nkeys, 1);
    assert_int_equal(r.req.gets, 1);
    assert_int_equal(r.req.noreply, 0);
    assert_slice(r.req.key.name, "jobs", 4);
    assert_slice(r.req.keys, "jobs", 4);
    assert_int_equal(r.req.key.opts, 0);
}

static void get_variants_set_quiet_and_with_key(void **state)
{
    (void)state;
    static const struct {
        uint8_t op;
        int quiet, with_key;
    } v[] = {{PROTO_BIN_GET, 0, 0}, {PROTO_BIN_GETQ, 1, 0}, {PROTO_BIN_GETK, 0, 1}, {PROTO_BIN_GETKQ, 1, 1}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        struct msg m;
        struct proto_bin_req r;
        build_key(&m, v[i].op, "q");
        parse_ok(&m, PROTO_GET, 25, &r);
        assert_int_equal(r.quiet, v[i].quiet);
        assert_int_equal(r.with_key, v[i].with_key);
        assert_int_equal(r.req.noreply, v[i].quiet);
    }
}

static void get_key_takes_the_text_protocols_options(void **state)
{
    (void)state;
    static const struct {
        const char *key;
        unsigned opts;
        uint32_t timeout;
    } ok[] = {
        {"q/open", PROTO_OPT_OPEN, 0},
        {"q/close/open", PROTO_OPT_CLOSE | PROTO_OPT_OPEN, 0},
        {"q/t=500", PROTO_OPT_TIMEOUT, 500},
        {"q/open/t=0", PROTO_OPT_OPEN | PROTO_OPT_TIMEOUT, 0},
        {"q/peek", PROTO_OPT_PEEK, 0},
        {"q/abort", PROTO_OPT_ABORT, 0},
        {"q/open/ttr=100", PROTO_OPT_OPEN | PROTO_OPT_TTR, 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        struct msg m;
        struct proto_bin_req r;
        build_key(&m, PROTO_BIN_GETK, ok[i].key);
        parse_ok(&m, PROTO_GET, 24 + strlen(ok[i].key), &r);
        assert_slice(r.req.key.name, "q", 1);
        assert_slice(r.req.key.full, ok[i].key, strlen(ok[i].key));
        assert_int_equal(r.req.key.opts, ok[i].opts);
        assert_int_equal(r.req.key.timeout_ms, ok[i].timeout);
    }
}

static void get_key_refused_as_in_text(void **state)
{
    (void)state;
    static const struct {
        const char *key, *error;
    } bad[] = {
        {"q/bogus", "bad option: unknown"},
        {"q/pri=2", "bad option: unknown"}, /* a set option */
        {"q/ttr=100", "bad option combination"},
        {"q/peek/open", "bad option combination"},
        {"q/", "bad option: empty"},
        {"/open", "bad key"},
        {"a b", "bad key"},
        {"q/open/open", "bad option: repeated"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct msg m;
        struct proto_bin_req r;
        build_key(&m, PROTO_BIN_GETQ, bad[i].key);
        parse_err(&m, PROTO_BIN_EINVAL, bad[i].error, 24 + strlen(bad[i].key), &r);
        assert_int_equal(r.skip, 0);
        assert_int_equal(r.quiet, 1); /* an error is answered all the same */
        assert_int_equal(r.req.type, PROTO_BAD);
        assert_string_equal(r.req.error, bad[i].error);
    }
}

/* ---- set ---- */

static void set_carries_flags_exptime_and_the_value_length(void **state)
{
    (void)state;
    struct msg m;
    struct proto_bin_req r;
    build_set(&m, PROTO_BIN_SET, "jobs", 0xdeadbeef, 0xfffffff0, "hello");
    parse_ok(&m, PROTO_SET, 24 + 8 + 4, &r);
    assert_int_equal(r.req.flags, 0xdeadbeef);
    assert_int_equal(r.req.exptime, (int64_t)0xfffffff0);
    assert_int_equal(r.req.bytes, 5);
    assert_int_equal(r.req.noreply, 0);
    assert_int_equal(r.quiet, 0);
    assert_slice(r.req.key.name, "jobs", 4);
    /* the value is the caller's: it is not part of what was consumed */
    assert_memory_equal(m.b + 36, "hello", 5);

    build_set(&m, PROTO_BIN_SETQ, "jobs", 0, 0, "");
    parse_ok(&m, PROTO_SET, 36, &r);
    assert_int_equal(r.req.bytes, 0);
    assert_int_equal(r.quiet, 1);
    assert_int_equal(r.req.noreply, 1);
}

static void set_key_takes_the_set_options(void **state)
{
    (void)state;
    struct msg m;
    struct proto_bin_req r;
    build_set(&m, PROTO_BIN_SET, "q/pri=2/sync", 1, 2, "x");
    parse_ok(&m, PROTO_SET, 24 + 8 + 12, &r);
    assert_int_equal(r.req.key.opts, PROTO_OPT_PRI | PROTO_OPT_SYNC);
    assert_int_equal(r.req.key.priority, 2);

    build_set(&m, PROTO_BIN_SET, "q/delay=100", 1, 2, "x");
    parse_ok(&m, PROTO_SET, 24 + 8 + 11, &r);
    assert_int_equal(r.req.key.opts, PROTO_OPT_DELAY);
    assert_int_equal(r.req.key.delay_ms, 100);

    build_set(&m, PROTO_BIN_SET, "q/open", 1, 2, "xyz");
    parse_err(&m, PROTO_BIN_EINVAL, "bad option: unknown", 24 + 8 + 6, &r);
    assert_int_equal(r.skip, 3); /* the value is dropped */

    build_set(&m, PROTO_BIN_SET, "q/pri=10", 1, 2, "xyz");
    parse_err(&m, PROTO_BIN_EINVAL, "bad option: pri is 0 (most urgent) to 9", 24 + 8 + 8, &r);
    assert_int_equal(r.skip, 3);
}

static void set_with_a_cas_is_refused(void **state)
{
    (void)state;
    struct msg m;
    struct proto_bin_req r;
    build_set(&m, PROTO_BIN_SET, "q", 0, 0, "abc");
    m.b[23] = 7; /* cas 7 */
    parse_err(&m, PROTO_BIN_EINVAL, NULL, 24, &r);
    assert_int_equal(r.skip, 8 + 1 + 3);
    assert_int_equal(r.cas, 7);
}

static void set_over_max_item_is_too_large_and_skipped(void **state)
{
    (void)state;
    struct msg m;
    struct proto_bin_req r;
    build_set(&m, PROTO_BIN_SETQ, "q", 0, 0, "12345");
    assert_int_equal(parse_max(m.b, m.n, 5, &r), 24 + 8 + 1); /* exactly the limit: fine */
    assert_int_equal(r.status, PROTO_BIN_OK);

    assert_int_equal(parse_max(m.b, m.n, 4, &r), 24);
    assert_int_equal(r.status, PROTO_BIN_E2BIG);
    assert_string_equal(r.error, "object too large for cache");
    assert_int_equal(r.skip, 8 + 1 + 5);
    assert_int_equal(r.quiet, 1);
    /* decided from the header alone */
    assert_int_equal(parse_max(m.b, 24, 4, &r), 24);
    assert_int_equal(r.status, PROTO_BIN_E2BIG);
}

static void set_needs_eight_bytes_of_extras(void **state)
{
    (void)state;
    struct msg m;
    struct proto_bin_req r;
    build(&m, PROTO_BIN_SET, "abcd", 4, "q", 1, "v", 1);
    parse_err(&m, PROTO_BIN_EINVAL, "bad extras length", 24, &r);
    assert_int_equal(r.skip, 6);
    build(&m, PROTO_BIN_SET, NULL, 0, "q", 1, "v", 1);
    parse_err(&m, PROTO_BIN_EINVAL, "bad extras length", 24, &r);
    build(&m, PROTO_BIN_SET, "abcdefgh", 8, NULL, 0, "v", 1);
    parse_err(&m, PROTO_BIN_EINVAL, "key required", 24, &r);
    assert_int_equal(r.skip, 9);
}

/* ---- the rest ---- */

static void delete_takes_a_plain_name(void **state)
{
    (void)state;
    struct msg m;
    struct proto_bin_req r;
    build_key(&m, PROTO_BIN_DELETE, "jobs");
    parse_ok(&m, PROTO_DELETE, 28, &r);
    assert_slice(r.req.key.name, "jobs", 4);
    assert_int_equal(r.req.noreply, 0);
    build_key(&m, PROTO_BIN_DELETEQ, "jobs");
    parse_ok(&m, PROTO_DELETE, 28, &r);
    assert_int_equal(r.quiet, 1);
    assert_int_equal(r.req.noreply, 1);
    build_key(&m, PROTO_BIN_DELETE, "jobs/open");
    parse_err(&m, PROTO_BIN_EINVAL, "bad option: none allowed here", 33, &r);
    build_key(&m, PROTO_BIN_DELETE, NULL);
    parse_err(&m, PROTO_BIN_EINVAL, "key required", 24, &r);
}

static void header_only_commands(void **state)
{
    (void)state;
    static const struct {
        uint8_t op;
        enum proto_type type;
        int quiet;
    } v[] = {
        {PROTO_BIN_QUIT, PROTO_QUIT, 0},       {PROTO_BIN_QUITQ, PROTO_QUIT, 1},
        {PROTO_BIN_NOOP, PROTO_NOOP, 0},       {PROTO_BIN_VERSION, PROTO_VERSION, 0},
        {PROTO_BIN_FLUSH, PROTO_FLUSH_ALL, 0}, {PROTO_BIN_FLUSHQ, PROTO_FLUSH_ALL, 1},
        {PROTO_BIN_STAT, PROTO_STATS, 0},      {PROTO_BIN_SASL_LIST, PROTO_SASL_LIST, 0},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        struct msg m;
        struct proto_bin_req r;
        build_key(&m, v[i].op, NULL);
        parse_ok(&m, v[i].type, 24, &r);
        assert_int_equal(r.quiet, v[i].quiet);
        assert_int_equal(r.req.noreply, v[i].quiet);
        assert_int_equal(r.req.keys.len, 0);
        assert_int_equal(r.req.exptime, 0);
        /* with a key or a value they are refused, the body skipped */
        if (v[i].op != PROTO_BIN_STAT) {
            build_key(&m, v[i].op, "q");
            parse_err(&m, PROTO_BIN_EINVAL, "no key allowed", 24, &r);
            assert_int_equal(r.skip, 1);
        }
        build(&m, v[i].op, NULL, 0, NULL, 0, "vv", 2);
        parse_err(&m, PROTO_BIN_EINVAL, "no value allowed", 24, &r);
        assert_int_equal(r.skip, 2);
    }
}

static void flush_takes_an_optional_delay(void **state)
{
    (void)state;
    struct msg m;
    struct proto_bin_req r;
    build(&m, PROTO_BIN_FLUSH, "\0\0\x01\x00", 4, NULL, 0, NULL, 0);
    parse_ok(&m, PROTO_FLUSH_ALL, 28, &r);
    assert_int_equal(r.req.exptime, 256);
    build(&m, PROTO_BIN_FLUSHQ, "\0\0\0\0\0\0\0\0", 8, NULL, 0, NULL, 0);
    parse_err(&m, PROTO_BIN_EINVAL, "bad extras length", 24, &r);
    assert_int_equal(r.skip, 8);
}

static void stat_takes_an_optional_group(void **state)
{
    (void)state;
    struct msg m;
    struct proto_bin_req r;
    build_key(&m, PROTO_BIN_STAT, "items");
    parse_ok(&m, PROTO_STATS, 29, &r);
    assert_slice(r.req.keys, "items", 5);
    assert_int_equal(r.req.nkeys, 0);
    build_key(&m, PROTO_BIN_STAT, "detail dump");
    parse_ok(&m, PROTO_STATS, 35, &r);
    build_key(&m, PROTO_BIN_STAT, "a\nb");
    parse_err(&m, PROTO_BIN_EINVAL, "bad stat key", 27, &r);
    assert_int_equal(r.req.keys.len, 0);
}

static void sasl_auth_gives_mechanism_and_data(void **state)
{
    (void)state;
    static const char data[] = "\0alice\0secret";
    struct msg m;
    struct proto_bin_req r;
    build(&m, PROTO_BIN_SASL_AUTH, NULL, 0, "PLAIN", 5, data, sizeof data - 1);
    parse_ok(&m, PROTO_SASL_AUTH, 24 + 5 + 13, &r);
    assert_slice(r.mech, "PLAIN", 5);
    assert_slice(r.data, data, 13);

    build(&m, PROTO_BIN_SASL_STEP, NULL, 0, "PLAIN", 5, "x", 1);
    parse_ok(&m, PROTO_SASL_STEP, 30, &r);
    assert_slice(r.mech, "PLAIN", 5);
    assert_slice(r.data, "x", 1);

    build(&m, PROTO_BIN_SASL_AUTH, NULL, 0, "SCRAM-SHA_1", 11, NULL, 0);
    parse_ok(&m, PROTO_SASL_AUTH, 35, &r);
    assert_int_equal(r.data.len, 0);
}

static void sasl_auth_refusals(void **state)
{
    (void)state;
    static char big[PROTO_BIN_MAX_SASL + 1];
    struct msg m;
    struct proto_bin_req r;
    build(&m, PROTO_BIN_SASL_AUTH, NULL, 0, "plain", 5, "x", 1);
    parse_err(&m, PROTO_BIN_EINVAL, "bad mechanism", 30, &r);
    assert_int_equal(r.mech.len, 0);
    assert_int_equal(r.data.len, 0);
    build(&m, PROTO_BIN_SASL_AUTH, NULL, 0, NULL, 0, "x", 1);
    parse_err(&m, PROTO_BIN_EINVAL, "key required", 24, &r);
    build(&m, PROTO_BIN_SASL_AUTH, NULL, 0, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 33, "x", 1);
    parse_err(&m, PROTO_BIN_EINVAL, "bad mechanism", 24, &r);
    assert_int_equal(r.skip, 34);

    build(&m, PROTO_BIN_SASL_AUTH, NULL, 0, "PLAIN", 5, big, PROTO_BIN_MAX_SASL);
    parse_ok(&m, PROTO_SASL_AUTH, 24 + 5 + PROTO_BIN_MAX_SASL, &r);
    build(&m, PROTO_BIN_SASL_AUTH, NULL, 0, "PLAIN", 5, big, PROTO_BIN_MAX_SASL + 1);
    parse_err(&m, PROTO_BIN_E2BIG, "auth data too long", 24, &r);
    assert_int_equal(r.skip, 5 + PROTO_BIN_MAX_SASL + 1);
}

/* ---- errors that keep the connection, and the one that does not ---- */

static void unknown_opcodes_are_skipped_whole(void **state)
{
    (void)state;
    static const uint8_t served[] = {0x00, 0x01, 0x04, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c,
                                     0x0d, 0x10, 0x11, 0x14, 0x17, 0x18, 0x20, 0x21, 0x22};
    for (unsigned op = 0; op < 256; op++) {
        int is_served = memchr(served, (int)op, sizeof served) != NULL;
        struct msg m;
        struct proto_bin_req r;
        /* add, replace, incr, append, touch, ...: any body, skipped */
        header(&m, (uint8_t)op, 3, 8, 20, 0xabcdef01, 0);
        ssize_t rc = parse_max(m.b, 24, MAX_ITEM, &r);
        if (is_served) { /* refused for its lengths, or waiting for its key: known either way */
            assert_true(rc == PROTO_NEED_MORE || r.status != PROTO_BIN_UNKNOWN_COMMAND);
            continue;
        }
        assert_int_equal(rc, 24);
        assert_int_equal(r.status, PROTO_BIN_UNKNOWN_COMMAND);
        assert_int_equal(r.req.type, PROTO_UNKNOWN);
        assert_string_equal(r.error, "unknown command");
        assert_int_equal(r.skip, 20);
        assert_int_equal(r.opaque, 0xabcdef01);
        assert_int_equal(r.opcode, op);
    }
}

static void lengths_that_do_not_add_up_are_invalid(void **state)
{
    (void)state;
    struct msg m;
    struct proto_bin_req r;
    header(&m, PROTO_BIN_SET, 5, 8, 12, 1, 0); /* 8 + 5 > 12 */
    parse_err(&m, PROTO_BIN_EINVAL, "extras and key longer than the body", 24, &r);
    assert_int_equal(r.skip, 12);
    header(&m, PROTO_BIN_GET, 2, 0, 1, 1, 0);
    parse_err(&m, PROTO_BIN_EINVAL, "extras and key longer than the body", 24, &r);
    assert_int_equal(r.skip, 1);
    header(&m, PROTO_BIN_GET, 1, 4, 5, 1, 0);
    parse_err(&m, PROTO_BIN_EINVAL, "bad extras length", 24, &r);
    header(&m, PROTO_BIN_GET, 1, 0, 3, 1, 0); /* a value on a get */
    parse_err(&m, PROTO_BIN_EINVAL, "no value allowed", 24, &r);
    assert_int_equal(r.skip, 3);
}

static void bad_magic_is_fatal(void **state)
{
    (void)state;
    struct msg m;
    struct proto_bin_req r;
    build_key(&m, PROTO_BIN_GET, "q");
    m.b[0] = 0x81; /* a response, not a request */
    assert_int_equal(parse_msg(&m, &r), PROTO_BIN_BAD_MAGIC);
    assert_int_equal(r.opcode, PROTO_BIN_GET);
    assert_int_equal(r.opaque, 0x01020304);
    assert_string_equal(r.error, "bad magic: not a binary request");
    /* decided from the first byte */
    assert_int_equal(parse_max(m.b, 1, MAX_ITEM, &r), PROTO_BIN_BAD_MAGIC);
    assert_int_equal(r.opcode, 0);
    assert_int_equal(parse_max((const unsigned char *)"get q\r\n", 7, MAX_ITEM, &r), PROTO_BIN_BAD_MAGIC);
    assert_int_equal(parse_max(m.b, 0, MAX_ITEM, &r), PROTO_NEED_MORE);
}

/* ---- partial input ---- */

/* Every prefix shorter than `need` is NEED_MORE; from need on, the same
 * result as the whole. */
static void prefixes(const struct msg *m, size_t need)
{
    struct proto_bin_req whole, r;
    ssize_t rc = parse_msg(m, &whole);
    assert_int_equal(rc, (ssize_t)need);
    for (size_t n = 0; n < m->n; n++) {
        ssize_t rn = parse_max(m->b, n, MAX_ITEM, &r);
        if (n < need) {
            if (rn != PROTO_NEED_MORE)
                print_error("prefix %llu of %llu (need %llu): %lld\n", (unsigned long long)n, (unsigned long long)m->n,
                            (unsigned long long)need, (long long)rn);
            assert_int_equal(rn, PROTO_NEED_MORE);
        } else {
            assert_int_equal(rn, rc);
            assert_int_equal(r.status, whole.status);
            assert_int_equal(r.req.type, whole.req.type);
            assert_int_equal(r.req.bytes, whole.req.bytes);
            assert_int_equal(r.skip, whole.skip);
        }
    }
}

static void partial_input_needs_more_until_complete(void **state)
{
    (void)state;
    struct msg m;
    build_key(&m, PROTO_BIN_GETKQ, "q/open/t=500");
    prefixes(&m, m.n);
    build_set(&m, PROTO_BIN_SET, "jobs/sync", 3, 4, "a value streamed by the caller");
    prefixes(&m, 24 + 8 + 9);
    build(&m, PROTO_BIN_SASL_AUTH, NULL, 0, "PLAIN", 5, "\0u\0p", 4);
    prefixes(&m, m.n); /* the data is consumed with the key */
    build_key(&m, PROTO_BIN_NOOP, NULL);
    prefixes(&m, 24);
    build_key(&m, PROTO_BIN_GET, "bad key"); /* refused once the key is there */
    prefixes(&m, m.n);
    header(&m, 0x02, 1, 8, 100, 1, 0); /* unknown: the header is enough */
    m.n = 24 + 50;
    memset(m.b + 24, 'x', 50);
    prefixes(&m, 24);
}

static void pipelined_requests_parse_one_after_another(void **state)
{
    (void)state;
    struct msg a, b, c;
    unsigned char buf[256];
    build_key(&a, PROTO_BIN_GETKQ, "q1");
    build_set(&b, PROTO_BIN_SETQ, "q2", 0, 0, "val");
    build_key(&c, PROTO_BIN_NOOP, NULL);
    size_t n = 0;
    memcpy(buf + n, a.b, a.n), n += a.n;
    memcpy(buf + n, b.b, b.n), n += b.n;
    memcpy(buf + n, c.b, c.n), n += c.n;
    static const enum proto_type want[] = {PROTO_GET, PROTO_SET, PROTO_NOOP};
    size_t pos = 0;
    for (size_t i = 0; i < 3; i++) {
        struct proto_bin_req r;
        unsigned char copy[256];
        memcpy(copy, buf + pos, n - pos);
        ssize_t rc = parse_max(copy, n - pos, MAX_ITEM, &r);
        assert_true(rc > 0);
        assert_int_equal(r.status, PROTO_BIN_OK);
        assert_int_equal(r.req.type, want[i]);
        pos += (size_t)rc + (r.req.type == PROTO_SET ? r.req.bytes : 0);
    }
    assert_int_equal(pos, n);
}

/* ---- limits ---- */

static void key_of_250_bytes_is_the_longest_name(void **state)
{
    (void)state;
    char key[600];
    struct msg m;
    struct proto_bin_req r;
    memset(key, 'k', sizeof key);
    build(&m, PROTO_BIN_GET, NULL, 0, key, 250, NULL, 0);
    parse_ok(&m, PROTO_GET, 274, &r);
    assert_int_equal(r.req.key.name.len, 250);
    build(&m, PROTO_BIN_GET, NULL, 0, key, 251, NULL, 0);
    parse_err(&m, PROTO_BIN_EINVAL, "key too long", 275, &r);
    /* options come on top of the name, as in a text get */
    memcpy(key + 250, "/open", 5);
    build(&m, PROTO_BIN_GET, NULL, 0, key, 255, NULL, 0);
    parse_ok(&m, PROTO_GET, 279, &r);
    assert_int_equal(r.req.key.opts, PROTO_OPT_OPEN);
    /* over PROTO_BIN_MAX_KEY the header alone refuses it */
    memset(key, 'k', sizeof key);
    build(&m, PROTO_BIN_SET, "abcdefgh", 8, key, PROTO_BIN_MAX_KEY + 1, "v", 1);
    parse_err(&m, PROTO_BIN_EINVAL, "key too long", 24, &r);
    assert_int_equal(r.skip, 8 + PROTO_BIN_MAX_KEY + 1 + 1);
    build(&m, PROTO_BIN_SET, "abcdefgh", 8, key, PROTO_BIN_MAX_KEY, "v", 1);
    parse_err(&m, PROTO_BIN_EINVAL, "key too long", 24 + 8 + PROTO_BIN_MAX_KEY, &r); /* the name is */
    assert_int_equal(r.skip, 1);
}

static void huge_body_lengths(void **state)
{
    (void)state;
    struct msg m;
    struct proto_bin_req r;
    header(&m, PROTO_BIN_SET, 1, 8, UINT32_MAX, 9, 0);
    memset(m.b + 24, 0, 8);
    m.b[32] = 'q';
    m.n = 33;
    assert_int_equal(parse_max(m.b, m.n, UINT64_MAX, &r), 33);
    assert_int_equal(r.status, PROTO_BIN_OK);
    assert_int_equal(r.req.bytes, (uint64_t)UINT32_MAX - 9);
    assert_int_equal(parse_max(m.b, m.n, MAX_ITEM, &r), 24);
    assert_int_equal(r.status, PROTO_BIN_E2BIG);
    assert_int_equal(r.skip, UINT32_MAX);

    header(&m, PROTO_BIN_GET, 1, 0, UINT32_MAX, 9, 0);
    assert_int_equal(parse_max(m.b, 24, MAX_ITEM, &r), 24);
    assert_int_equal(r.status, PROTO_BIN_EINVAL);
    assert_int_equal(r.skip, UINT32_MAX);

    header(&m, 0xff, UINT16_MAX, 255, UINT32_MAX, 9, 0);
    assert_int_equal(parse_max(m.b, 24, MAX_ITEM, &r), 24);
    assert_int_equal(r.status, PROTO_BIN_UNKNOWN_COMMAND);
    assert_int_equal(r.skip, UINT32_MAX);

    header(&m, PROTO_BIN_GET, UINT16_MAX, 0, UINT32_MAX, 9, 0);
    assert_int_equal(parse_max(m.b, 24, MAX_ITEM, &r), 24);
    assert_string_equal(r.error, "key too long");
}

static void data_type_and_vbucket_are_ignored(void **state)
{
    (void)state;
    struct msg m;
    struct proto_bin_req r;
    build_key(&m, PROTO_BIN_GET, "q");
    m.b[5] = 0x01;
    m.b[6] = 0x12;
    m.b[7] = 0x34;
    parse_ok(&m, PROTO_GET, 25, &r);
}

/* ---- the response header ---- */

static void response_header_is_in_network_order(void **state)
{
    (void)state;
    unsigned char h[PROTO_BIN_HEADER];
    static const unsigned char want[PROTO_BIN_HEADER] = {0x81, 0x0c, 0x01, 0x02, 0x04, 0x00, 0x00, 0x81,
                                                         0x0a, 0x0b, 0x0c, 0x0d, 0xde, 0xad, 0xbe, 0xef,
                                                         0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
    memset(h, 0xee, sizeof h);
    assert_int_equal(proto_bin_header(h, 0x0c, PROTO_BIN_UNKNOWN_COMMAND, 0x0102, 4, 0x0a0b0c0d, 0xdeadbeef,
                                      UINT64_C(0x0102030405060708)),
                     PROTO_BIN_HEADER);
    assert_memory_equal(h, want, sizeof want);
}

static void response_header_round_trips_through_the_request_layout(void **state)
{
    (void)state;
    /* A response differs from a request in its magic and in the status
     * where a request has its vbucket: with the magic turned into a
     * request's, the parser reads back every other field. */
    static const uint32_t opaques[] = {0, 1, 0x80000000u, UINT32_MAX};
    static const uint64_t cases[] = {0, 1, UINT64_C(0x8000000000000000), UINT64_MAX};
    for (size_t i = 0; i < 4; i++) {
        struct msg m;
        struct proto_bin_req r;
        proto_bin_header(m.b, PROTO_BIN_GETK, PROTO_BIN_OK, 1, 0, UINT32_MAX, opaques[i], cases[i]);
        assert_int_equal(m.b[0], PROTO_BIN_RES_MAGIC);
        m.b[0] = PROTO_BIN_REQ_MAGIC;
        m.n = 24;
        assert_int_equal(parse_msg(&m, &r), 24); /* a value on a get: refused, but read */
        assert_int_equal(r.opcode, PROTO_BIN_GETK);
        assert_int_equal(r.opaque, opaques[i]);
        assert_int_equal(r.cas, cases[i]);
        assert_int_equal(r.skip, UINT32_MAX);
    }
}

/* ---- no over-read, whatever the bytes ---- */

static void mutated_inputs_never_overread(void **state)
{
    (void)state;
    uint32_t seed = 12345;
    struct msg base[4];
    build_set(&base[0], PROTO_BIN_SET, "q/pri=1", 1, 2, "data");
    build_key(&base[1], PROTO_BIN_GETKQ, "q/open");
    build(&base[2], PROTO_BIN_SASL_AUTH, NULL, 0, "PLAIN", 5, "\0u\0p", 4);
    build(&base[3], PROTO_BIN_FLUSH, "\0\0\0\1", 4, NULL, 0, NULL, 0);
    for (int iter = 0; iter < 20000; iter++) {
        struct msg m = base[iter % 4];
        int flips = 1 + iter % 4;
        for (int f = 0; f < flips; f++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % m.n;
            seed = seed * 1103515245u + 12345u;
            m.b[at] = (unsigned char)(seed >> 16);
        }
        m.b[0] = 0x80;
        struct proto_bin_req r;
        for (size_t n = 0; n <= m.n; n++)
            (void)parse_max(m.b, n, 1000, &r); /* the checks are in parse_max */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_is_a_get_of_its_key_with_a_cas),
        cmocka_unit_test(get_variants_set_quiet_and_with_key),
        cmocka_unit_test(get_key_takes_the_text_protocols_options),
        cmocka_unit_test(get_key_refused_as_in_text),
        cmocka_unit_test(set_carries_flags_exptime_and_the_value_length),
        cmocka_unit_test(set_key_takes_the_set_options),
        cmocka_unit_test(set_with_a_cas_is_refused),
        cmocka_unit_test(set_over_max_item_is_too_large_and_skipped),
        cmocka_unit_test(set_needs_eight_bytes_of_extras),
        cmocka_unit_test(delete_takes_a_plain_name),
        cmocka_unit_test(header_only_commands),
        cmocka_unit_test(flush_takes_an_optional_delay),
        cmocka_unit_test(stat_takes_an_optional_group),
        cmocka_unit_test(sasl_auth_gives_mechanism_and_data),
        cmocka_unit_test(sasl_auth_refusals),
        cmocka_unit_test(unknown_opcodes_are_skipped_whole),
        cmocka_unit_test(lengths_that_do_not_add_up_are_invalid),
        cmocka_unit_test(bad_magic_is_fatal),
        cmocka_unit_test(partial_input_needs_more_until_complete),
        cmocka_unit_test(pipelined_requests_parse_one_after_another),
        cmocka_unit_test(key_of_250_bytes_is_the_longest_name),
        cmocka_unit_test(huge_body_lengths),
        cmocka_unit_test(data_type_and_vbucket_are_ignored),
        cmocka_unit_test(response_header_is_in_network_order),
        cmocka_unit_test(response_header_round_trips_through_the_request_layout),
        cmocka_unit_test(mutated_inputs_never_overread),
    };
    return cmocka_run_group_tests_name("proto_bin", tests, guard_setup, guard_teardown);
}
