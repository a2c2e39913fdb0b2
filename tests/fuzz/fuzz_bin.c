/* tests/fuzz/fuzz_bin.c: libFuzzer target for the binary request parser.
 *
 * The input is what a binary client could send on one connection. It is
 * consumed the way a connection consumes its read buffer (a request, then a
 * Set's value or the bytes an error skips), once for each of several item
 * limits, and every result is checked against the contract of proto/bin.h:
 *
 * - PROTO_BIN_BAD_MAGIC exactly when the first byte is not 0x80, answered
 *   with EINVAL and fatal;
 * - PROTO_NEED_MORE only while fewer bytes than the header, extras, key (and
 *   SASL data) are there, never at PROTO_BIN_MAX_BUFFERED bytes;
 * - a positive result: at least the header, at most what is there; opcode
 *   and opaque as sent; consumed plus the Set's value or the skip is exactly
 *   24 + body length; every slice inside the consumed bytes; an OK request
 *   maps to a type its opcode allows, with keys proto_parse_key() accepts
 *   again; an error has a status, a reason and PROTO_BAD or PROTO_UNKNOWN;
 * - a request parses the same from an exactly sized copy (so ASan sees any
 *   read past its end), and one byte less is PROTO_NEED_MORE.
 *
 * Any violation calls abort(), which libFuzzer reports as a crash. */
#include "proto/bin.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "fuzz_bin: check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);                       \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int within(struct proto_slice s, const unsigned char *lo, const unsigned char *hi)
{
    const unsigned char *p = (const unsigned char *)s.p;
    if (s.len == 0)
        return 1;
    return p >= lo && p + s.len <= hi && p + s.len >= p;
}

/* The key parses again alone, to the same result. */
static void check_key(const struct proto_key *k, int set_key)
{
    struct proto_key again;
    const char *error = NULL;
    CHECK(k->name.p == k->full.p && k->name.len >= 1 && k->name.len <= PROTO_MAX_NAME);
    CHECK(k->full.len <= PROTO_BIN_MAX_KEY);
    CHECK(proto_parse_key(k->full.p, k->full.len, set_key, &again, &error) == 0);
    CHECK(again.opts == k->opts && again.timeout_ms == k->timeout_ms && again.ttr_ms == k->ttr_ms &&
          again.priority == k->priority && again.delay_ms == k->delay_ms && again.at_ms == k->at_ms &&
          again.name.len == k->name.len);
}

/* Which types each opcode may map to when OK; 0: never OK. */
static enum proto_type type_of(uint8_t op)
{
    switch (op) {
    case PROTO_BIN_GET:
    case PROTO_BIN_GETQ:
    case PROTO_BIN_GETK:
    case PROTO_BIN_GETKQ:
        return PROTO_GET;
    case PROTO_BIN_SET:
    case PROTO_BIN_SETQ:
        return PROTO_SET;
    case PROTO_BIN_DELETE:
    case PROTO_BIN_DELETEQ:
        return PROTO_DELETE;
    case PROTO_BIN_QUIT:
    case PROTO_BIN_QUITQ:
        return PROTO_QUIT;
    case PROTO_BIN_FLUSH:
    case PROTO_BIN_FLUSHQ:
        return PROTO_FLUSH_ALL;
    case PROTO_BIN_NOOP:
        return PROTO_NOOP;
    case PROTO_BIN_VERSION:
        return PROTO_VERSION;
    case PROTO_BIN_STAT:
        return PROTO_STATS;
    case PROTO_BIN_SASL_LIST:
        return PROTO_SASL_LIST;
    case PROTO_BIN_SASL_AUTH:
        return PROTO_SASL_AUTH;
    case PROTO_BIN_SASL_STEP:
        return PROTO_SASL_STEP;
    default:
        return (enum proto_type)0;
    }
}

static int is_quiet(uint8_t op)
{
    return op == PROTO_BIN_GETQ || op == PROTO_BIN_GETKQ || op == PROTO_BIN_SETQ || op == PROTO_BIN_DELETEQ ||
           op == PROTO_BIN_QUITQ || op == PROTO_BIN_FLUSHQ;
}

static void check_ok(const struct proto_bin_req *r, const unsigned char *p, size_t n, uint64_t max_item)
{
    const struct proto_req *q = &r->req;
    unsigned keylen = (unsigned)p[2] << 8 | p[3], extlen = p[4];
    uint32_t bodylen = rd32(p + 8);
    CHECK(r->error == NULL && r->skip == 0 && q->error == NULL && q->swallow == 0 && !q->fatal);
    CHECK(q->type == type_of(r->opcode) && q->type != 0);
    CHECK(r->quiet == is_quiet(r->opcode) && q->noreply == r->quiet);
    CHECK(r->with_key == (r->opcode == PROTO_BIN_GETK || r->opcode == PROTO_BIN_GETKQ));
    CHECK(n == PROTO_BIN_HEADER + extlen + keylen + r->data.len);
    switch (q->type) {
    case PROTO_GET:
        CHECK(extlen == 0 && bodylen == keylen && q->nkeys == 1 && q->gets == 1);
        CHECK(q->keys.p == q->key.full.p && q->keys.len == q->key.full.len && q->key.full.len == keylen);
        CHECK(!(q->key.opts & PROTO_OPT_TTR) || (q->key.opts & PROTO_OPT_OPEN));
        check_key(&q->key, 0);
        break;
    case PROTO_SET:
        CHECK(extlen == 8 && q->key.full.len == keylen && q->bytes == (uint64_t)bodylen - 8 - keylen);
        CHECK(q->bytes <= max_item && q->flags == rd32(p + 24) && q->exptime == (int64_t)rd32(p + 28));
        CHECK(r->cas == 0);
        check_key(&q->key, 1);
        break;
    case PROTO_DELETE:
        CHECK(extlen == 0 && bodylen == keylen && q->key.opts == 0 && q->key.full.len == keylen);
        check_key(&q->key, 0);
        break;
    case PROTO_FLUSH_ALL:
        CHECK(keylen == 0 && bodylen == extlen && (extlen == 0 || extlen == 4));
        CHECK(q->exptime == (extlen ? (int64_t)rd32(p + 24) : 0));
        break;
    case PROTO_STATS:
        CHECK(extlen == 0 && bodylen == keylen && q->keys.len == keylen && q->nkeys == 0);
        for (size_t i = 0; i < q->keys.len; i++)
            CHECK((unsigned char)q->keys.p[i] >= ' ' && q->keys.p[i] != 0x7f);
        break;
    case PROTO_SASL_AUTH:
    case PROTO_SASL_STEP:
        CHECK(extlen == 0 && r->mech.len == keylen && keylen >= 1 && keylen <= PROTO_BIN_MAX_MECH);
        CHECK(r->data.len == bodylen - keylen && r->data.len <= PROTO_BIN_MAX_SASL);
        CHECK((const unsigned char *)r->mech.p == p + PROTO_BIN_HEADER);
        break;
    default: /* header only */
        CHECK(extlen == 0 && keylen == 0 && bodylen == 0);
        break;
    }
    if (q->type != PROTO_SASL_AUTH && q->type != PROTO_SASL_STEP)
        CHECK(r->mech.len == 0 && r->data.len == 0);
}

static void check_err(const struct proto_bin_req *r)
{
    const struct proto_req *q = &r->req;
    CHECK(r->status == PROTO_BIN_EINVAL || r->status == PROTO_BIN_E2BIG || r->status == PROTO_BIN_UNKNOWN_COMMAND);
    CHECK(r->error != NULL && q->error == r->error && strlen(r->error) > 0 && strlen(r->error) < 100);
    for (const char *e = r->error; *e; e++)
        CHECK(*e >= ' ' && *e < 0x7f);
    CHECK(q->type == (r->status == PROTO_BIN_UNKNOWN_COMMAND ? PROTO_UNKNOWN : PROTO_BAD));
    CHECK(q->swallow == r->skip && !q->fatal);
    if (r->status == PROTO_BIN_UNKNOWN_COMMAND)
        CHECK(type_of(r->opcode) == 0);
    CHECK(r->mech.len == 0 && r->data.len == 0);
}

static int same(const struct proto_bin_req *a, const struct proto_bin_req *b, const unsigned char *abase,
                const unsigned char *bbase)
{
    if (a->opcode != b->opcode || a->status != b->status || a->quiet != b->quiet || a->with_key != b->with_key ||
        a->opaque != b->opaque || a->cas != b->cas || a->error != b->error || a->skip != b->skip ||
        a->req.type != b->req.type || a->req.bytes != b->req.bytes || a->req.flags != b->req.flags ||
        a->req.exptime != b->req.exptime || a->req.key.opts != b->req.key.opts ||
        a->req.key.full.len != b->req.key.full.len || a->req.keys.len != b->req.keys.len ||
        a->mech.len != b->mech.len || a->data.len != b->data.len)
        return 0;
    if (a->req.key.full.len &&
        (const unsigned char *)a->req.key.full.p - abase != (const unsigned char *)b->req.key.full.p - bbase)
        return 0;
    if (a->data.len && (const unsigned char *)a->data.p - abase != (const unsigned char *)b->data.p - bbase)
        return 0;
    return 1;
}

/* Consumes buf like a connection would, with item limit max_item. */
static void run(const unsigned char *buf, size_t len, uint64_t max_item)
{
    size_t pos = 0;
    for (int guard = 0; pos < len && guard < 100000; guard++) {
        struct proto_bin_req r;
        const unsigned char *p = buf + pos;
        size_t avail = len - pos;
        ssize_t rc = proto_bin_parse(p, avail, max_item, &r);
        if (rc == PROTO_BIN_BAD_MAGIC) {
            CHECK(p[0] != PROTO_BIN_REQ_MAGIC);
            CHECK(r.status == PROTO_BIN_EINVAL && r.req.type == PROTO_BAD && r.req.fatal && r.skip == 0);
            CHECK(r.opcode == (avail > 1 ? p[1] : 0));
            return; /* the connection closes */
        }
        CHECK(p[0] == PROTO_BIN_REQ_MAGIC);
        if (rc == PROTO_NEED_MORE) {
            CHECK(avail < PROTO_BIN_MAX_BUFFERED);
            if (avail >= PROTO_BIN_HEADER)
                CHECK(avail < PROTO_BIN_HEADER + (uint64_t)rd32(p + 8)); /* less than the whole request */
            return;
        }
        CHECK(rc >= PROTO_BIN_HEADER && (size_t)rc <= avail);
        size_t n = (size_t)rc;
        uint64_t whole = PROTO_BIN_HEADER + (uint64_t)rd32(p + 8);
        CHECK(r.opcode == p[1] && r.opaque == rd32(p + 12));
        CHECK(within(r.req.key.full, p, p + n) && within(r.req.keys, p, p + n));
        CHECK(within(r.mech, p, p + n) && within(r.data, p, p + n));
        uint64_t after;
        if (r.status == PROTO_BIN_OK) {
            check_ok(&r, p, n, max_item);
            after = r.req.type == PROTO_SET ? r.req.bytes : 0;
        } else {
            check_err(&r);
            after = r.skip;
        }
        CHECK(n + after == whole);

        /* The same request alone, in a buffer of exactly its size; one byte
         * less is not complete. */
        unsigned char *copy = malloc(n);
        CHECK(copy != NULL);
        memcpy(copy, p, n);
        struct proto_bin_req alone;
        CHECK(proto_bin_parse(copy, n, max_item, &alone) == rc);
        CHECK(same(&r, &alone, p, copy));
        CHECK(proto_bin_parse(copy, n - 1, max_item, &alone) == PROTO_NEED_MORE);
        free(copy);

        /* The response header for it carries the same fields back. */
        unsigned char h[PROTO_BIN_HEADER];
        CHECK(proto_bin_header(h, r.opcode, r.status, (uint16_t)r.req.key.full.len, 0, (uint32_t)(whole - 24), r.opaque,
                               r.cas) == PROTO_BIN_HEADER);
        CHECK(h[0] == PROTO_BIN_RES_MAGIC && h[1] == r.opcode && (h[6] << 8 | h[7]) == r.status);
        CHECK(rd32(h + 8) == whole - 24 && rd32(h + 12) == r.opaque && memcmp(h + 16, p + 16, 8) == 0);

        pos += n;
        if (after > len - pos)
            return;
        pos += (size_t)after;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t limits[] = {0, 1, 100, UINT64_C(1) << 30, UINT64_MAX};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
        run(data, size, limits[i]);
    return 0;
}
