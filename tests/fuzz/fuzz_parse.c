/* tests/fuzz/fuzz_parse.c: libFuzzer target for the request parser.
 *
 * The input is what a client could send on one connection. It is consumed the
 * way conn.c consumes its read buffer (a line, then a set's data block or the
 * bytes a refused storage command swallows), once for each of several line
 * limits, and every result is checked against the contract of proto/parse.h:
 *
 * - a positive result is a whole line: at most len and max_line bytes, ending
 *   in '\n', the first '\n' of the buffer;
 * - PROTO_NEED_MORE only when no '\n' is there yet and len < max_line;
 *   PROTO_TOO_LONG only when no '\n' is within max_line bytes;
 * - every slice of the result lies inside the line; a GET's keys walk with
 *   proto_next_key() to exactly nkeys valid keys (1..250 byte names without
 *   space, control byte or '/'; option combinations the protocol allows);
 * - a line parses the same whatever follows it (it is parsed again alone,
 *   from an exactly sized copy, so ASan sees any read past its end).
 *
 * Any violation calls abort(), which libFuzzer reports as a crash. */
#include "proto/parse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "fuzz_parse: check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);                     \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

static int within(struct proto_slice s, const char *lo, const char *hi)
{
    if (s.len == 0)
        return 1; /* an empty slice may point anywhere (or be NULL) */
    return s.p >= lo && s.p + s.len <= hi && s.p + s.len >= s.p;
}

static void check_name(struct proto_slice name)
{
    CHECK(name.len >= 1 && name.len <= PROTO_MAX_NAME);
    for (size_t i = 0; i < name.len; i++) {
        unsigned char c = (unsigned char)name.p[i];
        CHECK(c > ' ' && c != 0x7f && c != '/');
    }
}

static void check_key(const struct proto_key *k, const char *lo, const char *hi, int set_key)
{
    CHECK(within(k->full, lo, hi));
    CHECK(within(k->name, lo, hi));
    CHECK(k->name.p == k->full.p);
    CHECK(k->name.len <= k->full.len);
    check_name(k->name);
    /* what follows the name is empty or starts an option */
    CHECK(k->full.len == k->name.len || k->full.p[k->name.len] == '/');
    for (size_t i = 0; i < k->full.len; i++)
        CHECK(k->full.p[i] != ' ');
    unsigned all = PROTO_OPT_OPEN | PROTO_OPT_CLOSE | PROTO_OPT_ABORT | PROTO_OPT_PEEK | PROTO_OPT_TIMEOUT |
                   PROTO_OPT_TTR | PROTO_OPT_BURY | PROTO_OPT_DELAYED | PROTO_OPT_DELAY;
    if (set_key) {
        CHECK((k->opts & ~(unsigned)(PROTO_OPT_SYNC | PROTO_OPT_PRI | PROTO_OPT_DELAY | PROTO_OPT_AT)) == 0);
        CHECK(!((k->opts & PROTO_OPT_DELAY) && (k->opts & PROTO_OPT_AT))); /* one time, not two */
        CHECK(k->delay_ms < (UINT64_C(1) << 47) && k->at_ms < (UINT64_C(1) << 47));
        if (!(k->opts & PROTO_OPT_DELAY))
            CHECK(k->delay_ms == 0);
        if (!(k->opts & PROTO_OPT_AT))
            CHECK(k->at_ms == 0);
        CHECK(k->priority <= 9);
        if (!(k->opts & PROTO_OPT_PRI))
            CHECK(k->priority == 0);
    } else {
        CHECK((k->opts & ~all) == 0);
        if (k->opts & PROTO_OPT_ABORT)
            CHECK((k->opts & ~(unsigned)PROTO_OPT_DELAY) == PROTO_OPT_ABORT);
        if (k->opts & PROTO_OPT_DELAY)
            CHECK(k->opts & PROTO_OPT_ABORT); /* a get's delay is an abort's */
        else
            CHECK(k->delay_ms == 0);
        if (k->opts & PROTO_OPT_BURY)
            CHECK(k->opts == PROTO_OPT_BURY);
        if (k->opts & PROTO_OPT_DELAYED)
            CHECK(k->opts & PROTO_OPT_PEEK);
        if (k->opts & PROTO_OPT_PEEK)
            CHECK(!(k->opts & (PROTO_OPT_OPEN | PROTO_OPT_CLOSE | PROTO_OPT_ABORT)));
    }
    if (!(k->opts & PROTO_OPT_TIMEOUT))
        CHECK(k->timeout_ms == 0);
    CHECK((k->ttr_ms > 0) == ((k->opts & PROTO_OPT_TTR) != 0)); /* a lease of 0 ms is refused */
    if (k->full.len == k->name.len)
        CHECK(k->opts == 0);

    /* The key token parses alone to the same result. */
    struct proto_key again;
    const char *error = NULL;
    CHECK(proto_parse_key(k->full.p, k->full.len, set_key, &again, &error) == 0);
    CHECK(again.opts == k->opts && again.timeout_ms == k->timeout_ms && again.ttr_ms == k->ttr_ms &&
          again.priority == k->priority && again.delay_ms == k->delay_ms && again.at_ms == k->at_ms &&
          again.name.len == k->name.len);
}

/* Checks a parsed request against its line [line, line + n). */
static void check_req(const struct proto_req *req, const char *line, size_t n)
{
    const char *hi = line + n;
    CHECK(req->type >= PROTO_GET && req->type <= PROTO_BAD);
    switch (req->type) {
    case PROTO_GET: {
        CHECK(req->nkeys >= 1);
        CHECK(within(req->keys, line, hi));
        check_key(&req->key, line, hi, 0);
        struct proto_slice rest = req->keys;
        struct proto_key k;
        size_t count = 0;
        while (proto_next_key(&rest, &k)) {
            CHECK(count < req->nkeys);
            check_key(&k, req->keys.p, req->keys.p + req->keys.len, 0);
            CHECK(!(k.opts & PROTO_OPT_TTR) || (k.opts & PROTO_OPT_OPEN)); /* a lease is for an /open */
            if (count == 0)
                CHECK(k.full.p == req->key.full.p && k.full.len == req->key.full.len);
            count++;
        }
        CHECK(count == req->nkeys);
        CHECK(rest.len == 0);
        CHECK(req->swallow == 0 && !req->fatal && req->error == NULL);
        break;
    }
    case PROTO_SET:
        check_key(&req->key, line, hi, 1);
        CHECK(req->bytes <= UINT64_MAX - 2);
        CHECK(req->swallow == 0 && !req->fatal && req->error == NULL);
        break;
    case PROTO_DELETE:
    case PROTO_FLUSH:
        check_key(&req->key, line, hi, 0);
        CHECK(req->key.opts == 0);
        CHECK(req->swallow == 0 && !req->fatal);
        break;
    case PROTO_BAD:
        CHECK(req->error != NULL);
        CHECK(strlen(req->error) > 0 && strlen(req->error) < 100);
        for (const char *e = req->error; *e; e++)
            CHECK(*e >= ' ' && *e < 0x7f);
        /* a fatal error closes the connection: nothing is swallowed */
        CHECK(!(req->fatal && req->swallow));
        if (req->swallow)
            CHECK(req->swallow == req->bytes + 2);
        break;
    case PROTO_UNKNOWN:
        CHECK(!req->fatal);
        if (req->swallow)
            CHECK(req->swallow == req->bytes + 2);
        break;
    case PROTO_STATS:
        CHECK(within(req->keys, line, hi));
        break;
    case PROTO_TOUCH:
        check_key(&req->key, line, hi, 0);
        CHECK((req->key.opts & ~(unsigned)PROTO_OPT_TTR) == 0);
        CHECK(req->swallow == 0 && !req->fatal);
        break;
    case PROTO_MONITOR: /* a plain name; its seconds ride in key.timeout_ms */
        CHECK(within(req->key.full, line, hi) && req->key.opts == 0 && req->key.full.len == req->key.name.len);
        check_name(req->key.name);
        CHECK(req->count != 0 || req->key.timeout_ms % 1000 == 0);
        CHECK(req->swallow == 0 && !req->fatal);
        break;
    case PROTO_CONFIRM:
    case PROTO_KICK:
    case PROTO_FLUSH_EXPIRED:
        check_key(&req->key, line, hi, 0);
        CHECK(req->key.opts == 0);
        CHECK(req->swallow == 0 && !req->fatal);
        break;
    default:
        CHECK(req->swallow == 0 && !req->fatal);
        break;
    }
}

static int same_req(const struct proto_req *a, const struct proto_req *b, const char *abase, const char *bbase)
{
    if (a->type != b->type || a->nkeys != b->nkeys || a->flags != b->flags || a->exptime != b->exptime ||
        a->bytes != b->bytes || a->noreply != b->noreply || a->fatal != b->fatal || a->swallow != b->swallow ||
        a->error != b->error || a->key.opts != b->key.opts || a->key.timeout_ms != b->key.timeout_ms ||
        a->key.ttr_ms != b->key.ttr_ms || a->count != b->count || a->gets != b->gets ||
        a->key.full.len != b->key.full.len || a->keys.len != b->keys.len)
        return 0;
    if (a->key.full.len && a->key.full.p - abase != b->key.full.p - bbase)
        return 0;
    if (a->keys.len && a->keys.p - abase != b->keys.p - bbase)
        return 0;
    return 1;
}

/* Consumes buf like a connection would, with line limit max_line. */
static void run(const char *buf, size_t len, size_t max_line)
{
    size_t pos = 0;
    for (int guard = 0; pos < len && guard < 100000; guard++) {
        struct proto_req req;
        const char *p = buf + pos;
        size_t avail = len - pos;
        ssize_t r = proto_parse(p, avail, max_line, &req);
        size_t scan = avail < max_line ? avail : max_line;
        const char *nl = memchr(p, '\n', scan);
        if (r == PROTO_NEED_MORE) {
            CHECK(nl == NULL && avail < max_line);
            return;
        }
        if (r == PROTO_TOO_LONG) {
            CHECK(nl == NULL && avail >= max_line);
            return;
        }
        CHECK(r > 0);
        size_t n = (size_t)r;
        CHECK(n <= avail && n <= max_line);
        CHECK(nl != NULL && nl == p + n - 1);
        check_req(&req, p, n);

        /* The same line alone, in a buffer of exactly its size. */
        char *copy = malloc(n);
        CHECK(copy != NULL);
        memcpy(copy, p, n);
        struct proto_req alone;
        CHECK(proto_parse(copy, n, max_line, &alone) == r);
        CHECK(same_req(&req, &alone, p, copy));
        /* Without its newline it is not complete yet (or already too long). */
        if (n > 1) {
            ssize_t r2 = proto_parse(copy, n - 1, max_line, &alone);
            CHECK(r2 == (n - 1 < max_line ? PROTO_NEED_MORE : PROTO_TOO_LONG));
        }
        free(copy);

        pos += n;
        /* What the connection does next: a fatal error closes it; a set
         * takes its data block; a refused storage command skips its data. */
        if (req.type == PROTO_BAD && req.fatal)
            return;
        uint64_t skip = req.type == PROTO_SET ? req.bytes + 2 : req.swallow;
        if (skip > len - pos)
            return;
        pos += (size_t)skip;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    /* The line limit matters only around the input's own length and the
     * real limits; a few values cover the edges. */
    size_t limits[] = {1, 2, 7, 64, 512, 8192, size ? size : 1, size + 1, (size_t)-1};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++)
        run(buf, size, limits[i]);

    /* The key parser alone over the first token-sized piece of the input. */
    size_t klen = size < 400 ? size : 400;
    for (int set_key = 0; set_key < 2; set_key++) {
        struct proto_key k;
        const char *error = NULL;
        if (proto_parse_key(buf, klen, set_key, &k, &error) == 0) {
            int has_space = memchr(buf, ' ', klen) != NULL;
            if (!has_space)
                check_key(&k, buf, buf + klen, set_key);
        } else {
            CHECK(error != NULL);
        }
    }
    return 0;
}
