/* Unit tests for client/reply.c (reply lines) and client/request.c (request
 * lines). Each reply is placed right before an unreadable page, so a parser
 * that reads past the line's end crashes instead of passing by luck. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "reply.h"
#include "request.h"

static char *guard_map;
static size_t page;

static int setup(void **state)
{
    (void)state;
    page = (size_t)sysconf(_SC_PAGESIZE);
    guard_map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (guard_map == MAP_FAILED)
        return -1;
    return mprotect(guard_map + page, page, PROT_NONE);
}

static int teardown(void **state)
{
    (void)state;
    return munmap(guard_map, 2 * page);
}

/* Parses s (no NUL after it in memory) into *r. */
static int parse(const char *s, struct dn_reply *r)
{
    size_t n = strlen(s);
    assert_true(n < page);
    char *at = guard_map + page - n;
    memcpy(at, s, n);
    return dn_reply_parse(at, n, r);
}

static void simple_replies(void **state)
{
    (void)state;
    struct dn_reply r;
    static const struct {
        const char *line;
        enum dn_reply_kind kind;
    } cases[] = {
        {"END", DN_R_END},
        {"STORED", DN_R_STORED},
        {"DELETED", DN_R_DELETED},
        {"OK", DN_R_OK},
        {"ERROR", DN_R_ERROR},
        {"ENDX", DN_R_UNKNOWN},
        {"end", DN_R_UNKNOWN},
        {"", DN_R_UNKNOWN},
        {"STORED ", DN_R_UNKNOWN},
        {"NOT_FOUND", DN_R_UNKNOWN},
        {"NOT_STORED", DN_R_NOT_STORED},
        {"NOT_STORED x", DN_R_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse(cases[i].line, &r), 0);
        assert_int_equal(r.kind, cases[i].kind);
    }
}

static void value_header_with_options_in_the_key(void **state)
{
    (void)state;
    struct dn_reply r;
    assert_int_equal(parse("VALUE q/open 7 5", &r), 0);
    assert_int_equal(r.kind, DN_R_VALUE);
    assert_int_equal(r.key_len, 6);
    assert_memory_equal(r.key, "q/open", 6);
    assert_int_equal(r.flags, 7);
    assert_int_equal(r.bytes, 5);
}

static void value_flags_and_sizes_at_their_limits(void **state)
{
    (void)state;
    struct dn_reply r;
    assert_int_equal(parse("VALUE q 4294967295 1073741824", &r), 0);
    assert_int_equal(r.flags, UINT32_MAX);
    assert_int_equal(r.bytes, 1073741824ull);
    assert_int_equal(parse("VALUE q 4294967296 1", &r), -EPROTO);
    assert_int_equal(parse("VALUE q 0 18446744073709551615", &r), 0);
    assert_true(r.bytes == UINT64_MAX);
    assert_int_equal(parse("VALUE q 0 18446744073709551616", &r), -EPROTO);
}

static void value_with_cas_is_accepted(void **state)
{
    (void)state;
    struct dn_reply r;
    assert_int_equal(parse("VALUE q 0 3 99", &r), 0);
    assert_int_equal(r.bytes, 3);
}

static void malformed_value_headers(void **state)
{
    (void)state;
    struct dn_reply r;
    const char *bad[] = {"VALUE",        "VALUE ",          "VALUE q",     "VALUE q ",
                         "VALUE q 0",    "VALUE q 0 ",      "VALUE q x 1", "VALUE q 0 -1",
                         "VALUE q 0 1x", "VALUE q 0 1 2 3", "VALUE  0 1",  "VALUE q 0 1 x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(parse(bad[i], &r), -EPROTO);
}

static void stat_lines(void **state)
{
    (void)state;
    struct dn_reply r;
    assert_int_equal(parse("STAT queue_a_b_items 12", &r), 0);
    assert_int_equal(r.kind, DN_R_STAT);
    assert_int_equal(r.key_len, 15);
    assert_memory_equal(r.key, "queue_a_b_items", 15);
    assert_int_equal(r.text_len, 2);
    assert_memory_equal(r.text, "12", 2);
    /* The name ends at the first space; the value is all the rest. */
    assert_int_equal(parse("STAT x a b", &r), 0);
    assert_int_equal(r.key_len, 1);
    assert_int_equal(r.text_len, 3);
    assert_memory_equal(r.text, "a b", 3);
    assert_int_equal(parse("STAT rusage_user 0.123000", &r), 0);
    assert_int_equal(r.key_len, 11);
    assert_memory_equal(r.key, "rusage_user", 11);
    assert_int_equal(r.text_len, 8);
    assert_memory_equal(r.text, "0.123000", 8);
    assert_int_equal(parse("STAT version ", &r), 0);
    assert_int_equal(r.text_len, 0);
    assert_int_equal(parse("STAT x", &r), -EPROTO);
    assert_int_equal(parse("STAT  1", &r), -EPROTO);
}

static void version_and_errors_carry_their_text(void **state)
{
    (void)state;
    struct dn_reply r;
    assert_int_equal(parse("VERSION 1.0.0", &r), 0);
    assert_int_equal(r.kind, DN_R_VERSION);
    assert_int_equal(r.text_len, 5);
    assert_memory_equal(r.text, "1.0.0", 5);
    assert_int_equal(parse("CLIENT_ERROR bad data chunk", &r), 0);
    assert_int_equal(r.kind, DN_R_CLIENT_ERROR);
    assert_int_equal(r.text_len, 14);
    assert_memory_equal(r.text, "bad data chunk", 14);
    assert_int_equal(parse("SERVER_ERROR", &r), 0);
    assert_int_equal(r.kind, DN_R_SERVER_ERROR);
    assert_int_equal(r.text_len, 0);
}

static void errors_map_to_errno(void **state)
{
    (void)state;
    struct dn_reply r;
    parse("SERVER_ERROR object too large for cache", &r);
    assert_int_equal(dn_reply_errno(&r), -E2BIG);
    parse("SERVER_ERROR too many connections", &r);
    assert_int_equal(dn_reply_errno(&r), -EAGAIN);
    parse("SERVER_ERROR out of disk space", &r);
    assert_int_equal(dn_reply_errno(&r), -EIO);
    parse("CLIENT_ERROR an item is already open on this queue; close or abort it first", &r);
    assert_int_equal(dn_reply_errno(&r), -EBUSY);
    parse("CLIENT_ERROR bad command line format", &r);
    assert_int_equal(dn_reply_errno(&r), -EINVAL);
    parse("NOT_STORED", &r);
    assert_int_equal(dn_reply_errno(&r), -ENOSPC);
    parse("ERROR", &r);
    assert_int_equal(dn_reply_errno(&r), -EPROTO);
    parse("WHATEVER", &r);
    assert_int_equal(dn_reply_errno(&r), -EPROTO);
}

/* ---- requests ---- */

static void queue_names(void **state)
{
    (void)state;
    char name[260];
    assert_true(dn_queue_name_ok("q"));
    assert_true(dn_queue_name_ok(".."));
    assert_true(dn_queue_name_ok("CON"));
    assert_true(dn_queue_name_ok("a\\b"));
    assert_true(dn_queue_name_ok("\xc3\xa9t\xc3\xa9"));
    memset(name, 'x', 250);
    name[250] = '\0';
    assert_true(dn_queue_name_ok(name));
    name[250] = 'x';
    name[251] = '\0';
    assert_false(dn_queue_name_ok(name));
    assert_false(dn_queue_name_ok(""));
    assert_false(dn_queue_name_ok(NULL));
    assert_false(dn_queue_name_ok("a b"));
    assert_false(dn_queue_name_ok("a/b"));
    assert_false(dn_queue_name_ok("a\r"));
    assert_false(dn_queue_name_ok("a\x7f"));
}

static void get_requests(void **state)
{
    (void)state;
    char b[DN_REQ_MAX];
    assert_int_equal(dn_req_get(b, sizeof(b), "q", 0, 0), 7);
    assert_string_equal(b, "get q\r\n");
    dn_req_get(b, sizeof(b), "q", DN_GET_OPEN, 250);
    assert_string_equal(b, "get q/open/t=250\r\n");
    dn_req_get(b, sizeof(b), "q", DN_GET_CLOSE | DN_GET_OPEN, 0);
    assert_string_equal(b, "get q/close/open\r\n");
    dn_req_get(b, sizeof(b), "q", DN_GET_ABORT, 0);
    assert_string_equal(b, "get q/abort\r\n");
    dn_req_get(b, sizeof(b), "q", DN_GET_PEEK, 0);
    assert_string_equal(b, "get q/peek\r\n");
    dn_req_get(b, sizeof(b), "q", 0, UINT32_MAX);
    assert_string_equal(b, "get q/t=4294967295\r\n");
    assert_int_equal(dn_req_get(b, sizeof(b), "q", DN_GET_ABORT | DN_GET_OPEN, 0), -EINVAL);
    assert_int_equal(dn_req_get(b, sizeof(b), "q", DN_GET_PEEK | DN_GET_OPEN, 0), -EINVAL);
    assert_int_equal(dn_req_get(b, sizeof(b), "a/b", 0, 0), -EINVAL);
    assert_int_equal(dn_req_get(b, 5, "q", 0, 0), -EINVAL); /* does not fit */
}

/* Checks that buf (len bytes) holds complete get lines of at most
 * DN_REQ_MULTI_LINE bytes with keys keys of name in all, only the very
 * first carrying t (may be ""). Returns the number of lines. */
static size_t check_multi(const char *buf, size_t len, const char *name, size_t keys, const char *t)
{
    size_t lines = 0, seen = 0, at = 0, nlen = strlen(name);
    while (at < len) {
        const char *nl = memchr(buf + at, '\n', len - at);
        assert_non_null(nl);
        size_t llen = (size_t)(nl - (buf + at)) + 1;
        if (llen > DN_REQ_MULTI_LINE)
            fail_msg("line %llu is %llu bytes", (unsigned long long)lines, (unsigned long long)llen);
        assert_memory_equal(buf + at, "get ", 4);
        assert_memory_equal(nl - 1, "\r\n", 2);
        size_t p = at + 4;
        while (p < (size_t)(nl - 1 - buf)) {
            assert_memory_equal(buf + p, name, nlen);
            p += nlen;
            if (seen == 0 && t[0]) {
                assert_memory_equal(buf + p, t, strlen(t));
                p += strlen(t);
            }
            seen++;
            if (buf[p] == ' ')
                p++;
        }
        assert_int_equal(p, (size_t)(nl - 1 - buf));
        at += llen;
        lines++;
    }
    assert_int_equal(seen, keys);
    return lines;
}

static void multi_key_get_requests(void **state)
{
    (void)state;
    char b[16384];
    size_t put;
    assert_int_equal(dn_req_get_multi(b, sizeof(b), "q", 3, 0, &put), 11);
    assert_int_equal(put, 3);
    assert_memory_equal(b, "get q q q\r\n", 11);
    int n = dn_req_get_multi(b, sizeof(b), "q", 2, 500, &put);
    assert_int_equal(n, 15);
    assert_memory_equal(b, "get q/t=500 q\r\n", 15);
    /* many keys: split into lines the smallest --max-line-length takes */
    n = dn_req_get_multi(b, sizeof(b), "jobs", 1000, 250, &put);
    assert_int_equal(put, 1000);
    assert_true(check_multi(b, (size_t)n, "jobs", 1000, "/t=250") > 1);
    /* a 250-byte name: two keys a line */
    char name[251];
    memset(name, 'n', 250);
    name[250] = '\0';
    n = dn_req_get_multi(b, sizeof(b), name, 10, UINT32_MAX, &put);
    assert_int_equal(put, 10);
    assert_int_equal(check_multi(b, (size_t)n, name, 10, "/t=4294967295"), 6); /* the first alone */
    n = dn_req_get_multi(b, sizeof(b), name, 10, 0, &put);
    assert_int_equal(check_multi(b, (size_t)n, name, 10, ""), 5);
    /* a buffer too small for all: as many whole lines as fit */
    n = dn_req_get_multi(b, 100, "q", 1000, 0, &put);
    assert_true(n > 0 && n <= 100);
    assert_int_equal(check_multi(b, (size_t)n, "q", put, ""), 1);
    assert_true(put > 40 && put < 50);
    assert_int_equal(dn_req_get_multi(b, 5, "q", 1, 0, &put), -EINVAL);
    assert_int_equal(dn_req_get_multi(b, sizeof(b), "q", 0, 0, &put), -EINVAL);
    assert_int_equal(dn_req_get_multi(b, sizeof(b), "a b", 1, 0, &put), -EINVAL);
}

static void set_requests(void **state)
{
    (void)state;
    char b[DN_REQ_MAX];
    dn_req_set(b, sizeof(b), "jobs", 0, 0, 0, 5);
    assert_string_equal(b, "set jobs 0 0 5\r\n");
    dn_req_set(b, sizeof(b), "jobs", 1, UINT32_MAX, -1, 1073741824);
    assert_string_equal(b, "set jobs/sync 4294967295 -1 1073741824\r\n");
    assert_int_equal(dn_req_set(b, sizeof(b), "", 0, 0, 0, 1), -EINVAL);
    char name[251];
    memset(name, 'n', 250);
    name[250] = '\0';
    assert_true(dn_req_set(b, sizeof(b), name, 1, UINT32_MAX, INT64_MIN, UINT64_MAX) > 0);
}

static void queue_requests(void **state)
{
    (void)state;
    char b[DN_REQ_MAX];
    dn_req_queue(b, sizeof(b), "flush", "q");
    assert_string_equal(b, "flush q\r\n");
    assert_int_equal(dn_req_queue(b, sizeof(b), "delete", "a b"), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(simple_replies),
        cmocka_unit_test(value_header_with_options_in_the_key),
        cmocka_unit_test(value_flags_and_sizes_at_their_limits),
        cmocka_unit_test(value_with_cas_is_accepted),
        cmocka_unit_test(malformed_value_headers),
        cmocka_unit_test(stat_lines),
        cmocka_unit_test(version_and_errors_carry_their_text),
        cmocka_unit_test(errors_map_to_errno),
        cmocka_unit_test(queue_names),
        cmocka_unit_test(get_requests),
        cmocka_unit_test(multi_key_get_requests),
        cmocka_unit_test(set_requests),
        cmocka_unit_test(queue_requests),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
