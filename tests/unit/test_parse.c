/* Unit tests for proto/parse.c, the memcache request-line parser.
 *
 * Every input is copied so that its last byte sits right before a page that
 * cannot be read (picohttpparser's trick): a parser that looks one byte too
 * far crashes the test instead of passing by luck. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proto/parse.h"
#include "testplat.h"

#define MAX_LINE 2048
#define GUARD_DATA_PAGES 4

/* ---- the guard pages ---- */

#include "guard.h"

/* Copy n bytes so they end right at the unreadable page; returns the copy. */
static const char *place(const char *s, size_t n) { return guard_place_end(s, n); }

/* Copy n bytes so they start right after the leading unreadable page. */
static const char *place_front(const char *s, size_t n) { return guard_place_front(s, n); }

/* Parse n bytes of s, placed before the guard page; checks the invariants
 * every result must keep, and that every slice lies inside the input. */
static const char *last_buf;
static size_t last_len;

static void assert_in_input(struct proto_slice s)
{
    if (s.len == 0)
        return;
    assert_true(s.p >= last_buf);
    assert_true(s.p + s.len <= last_buf + last_len);
}

static ssize_t parse_n_max(const char *s, size_t n, size_t max_line, struct proto_req *req)
{
    const char *buf = place(s, n);
    last_buf = buf;
    last_len = n;
    ssize_t r = proto_parse(buf, n, max_line, req);
    assert_true(r >= PROTO_TOO_LONG);
    assert_true(r <= (ssize_t)n);
    if (r > 0) {
        assert_true(req->type >= PROTO_GET && req->type <= PROTO_BAD);
        assert_int_equal(buf[r - 1], '\n');
        assert_null(memchr(buf, '\n', (size_t)r - 1));
        if (req->type == PROTO_BAD) {
            assert_non_null(req->error);
            assert_true(strlen(req->error) > 0);
            if (req->fatal)
                assert_int_equal(req->swallow, 0);
        } else {
            assert_null(req->error);
            assert_int_equal(req->fatal, 0);
        }
        if (req->type == PROTO_GET)
            assert_true(req->nkeys >= 1);
        if (req->type != PROTO_BAD && req->type != PROTO_UNKNOWN)
            assert_int_equal(req->swallow, 0);
        assert_in_input(req->keys);
        assert_in_input(req->key.full);
        assert_in_input(req->key.name);
    }
    return r;
}

static ssize_t parse_n(const char *s, size_t n, struct proto_req *req) { return parse_n_max(s, n, MAX_LINE, req); }

static ssize_t parse(const char *s, struct proto_req *req) { return parse_n(s, strlen(s), req); }

/* Parse a whole line; it must take all of s and yield `type`. */
static void parse_whole(const char *s, enum proto_type type, struct proto_req *req)
{
    ssize_t r = parse(s, req);
    if (r != (ssize_t)strlen(s) || req->type != type)
        print_error("input \"%s\": r=%lld type=%d error=%s\n", s, (long long)r, (int)req->type,
                    req->error ? req->error : "-");
    assert_int_equal(r, (ssize_t)strlen(s));
    assert_int_equal(req->type, type);
}

/* The line must be malformed with this reason. */
static void parse_bad(const char *s, const char *error, int fatal, struct proto_req *req)
{
    parse_whole(s, PROTO_BAD, req);
    assert_string_equal(req->error, error);
    assert_int_equal(req->fatal, fatal);
}

static void assert_slice(struct proto_slice s, const char *want)
{
    if (s.len != strlen(want) || memcmp(s.p, want, s.len) != 0)
        print_error("slice \"%.*s\" != \"%s\"\n", (int)s.len, s.p ? s.p : "", want);
    assert_int_equal(s.len, strlen(want));
    if (s.len > 0)
        assert_memory_equal(s.p, want, s.len);
}

/* proto_parse_key on a copy placed before the guard page. */
static int key_parse(const char *s, int set_key, struct proto_key *key, const char **error)
{
    size_t n = strlen(s);
    const char *p = place(s, n);
    *error = NULL;
    int rc = proto_parse_key(p, n, set_key, key, error);
    if (rc == 0) {
        assert_ptr_equal(key->full.p, p);
        assert_int_equal(key->full.len, n);
        assert_ptr_equal(key->name.p, p);
    } else {
        assert_int_equal(rc, -EINVAL);
        assert_non_null(*error);
    }
    return rc;
}

static void key_ok(const char *s, int set_key, const char *name, unsigned opts, uint32_t timeout)
{
    struct proto_key key;
    const char *error;
    int rc = key_parse(s, set_key, &key, &error);
    if (rc != 0)
        print_error("key \"%s\": %s\n", s, error);
    assert_int_equal(rc, 0);
    assert_slice(key.name, name);
    assert_int_equal(key.opts, opts);
    assert_int_equal(key.timeout_ms, timeout);
}

static void key_bad(const char *s, int set_key, const char *want_error)
{
    struct proto_key key;
    const char *error;
    int rc = key_parse(s, set_key, &key, &error);
    if (rc == 0)
        print_error("key \"%s\" was accepted\n", s);
    assert_int_equal(rc, -EINVAL);
    assert_string_equal(error, want_error);
}

/* ---- get ---- */

static void get_single_key(void **state)
{
    (void)state;
    struct proto_req req;
    parse_whole("get q\r\n", PROTO_GET, &req);
    assert_int_equal(req.nkeys, 1);
    assert_slice(req.keys, "q");
    assert_slice(req.key.name, "q");
    assert_int_equal(req.key.opts, 0);
    assert_int_equal(req.noreply, 0);
}

static void bury_stands_alone_and_kick_takes_a_queue_and_a_count(void **state)
{
    (void)state;
    struct proto_req req;
    key_ok("q/bury", 0, "q", PROTO_OPT_BURY, 0);
    key_bad("q/bury/open", 0, "bad option combination");
    key_bad("q/close/bury", 0, "bad option combination");
    key_bad("q/bury/bury", 0, "bad option: repeated");
    key_bad("q/bury", 1, "bad option: unknown");
    parse_whole("kick q_errors 100\r\n", PROTO_KICK, &req);
    assert_slice(req.key.name, "q_errors");
    assert_int_equal(req.count, 100);
    parse_bad("kick q_errors\r\n", "bad command line format", 0, &req);
    parse_bad("kick q_errors -1\r\n", "bad command line format", 0, &req);
    parse_bad("kick q 1 2\r\n", "bad command line format", 0, &req);
}

static void gets_is_get(void **state)
{
    (void)state;
    struct proto_req req;
    parse_whole("gets q\r\n", PROTO_GET, &req);
    assert_int_equal(req.nkeys, 1);
    assert_slice(req.keys, "q");
}

static void get_many_keys_walked_in_order(void **state)
{
    (void)state;
    struct proto_req req;
    struct proto_key key;
    parse_whole("get a b/open  c/t=5/peek   d\r\n", PROTO_GET, &req);
    assert_int_equal(req.nkeys, 4);
    assert_slice(req.keys, "a b/open  c/t=5/peek   d");

    struct proto_slice rest = req.keys;
    assert_int_equal(proto_next_key(&rest, &key), 1);
    assert_slice(key.full, "a");
    assert_slice(key.name, "a");
    assert_int_equal(key.opts, 0);
    assert_int_equal(proto_next_key(&rest, &key), 1);
    assert_slice(key.full, "b/open");
    assert_slice(key.name, "b");
    assert_int_equal(key.opts, PROTO_OPT_OPEN);
    assert_int_equal(proto_next_key(&rest, &key), 1);
    assert_slice(key.full, "c/t=5/peek");
    assert_slice(key.name, "c");
    assert_int_equal(key.opts, PROTO_OPT_TIMEOUT | PROTO_OPT_PEEK);
    assert_int_equal(key.timeout_ms, 5);
    assert_int_equal(proto_next_key(&rest, &key), 1);
    assert_slice(key.full, "d");
    assert_int_equal(proto_next_key(&rest, &key), 0);
    assert_int_equal(proto_next_key(&rest, &key), 0);
}

static void get_next_key_count_matches_nkeys(void **state)
{
    (void)state;
    char line[MAX_LINE];
    size_t off = (size_t)snprintf(line, sizeof line, "get");
    for (int i = 0; i < 100; i++)
        off += (size_t)snprintf(line + off, sizeof line - off, " q%d", i);
    snprintf(line + off, sizeof line - off, "\r\n");

    struct proto_req req;
    parse_whole(line, PROTO_GET, &req);
    assert_int_equal(req.nkeys, 100);
    struct proto_slice rest = req.keys;
    struct proto_key key;
    char want[16];
    for (int i = 0; i < 100; i++) {
        assert_int_equal(proto_next_key(&rest, &key), 1);
        snprintf(want, sizeof want, "q%d", i);
        assert_slice(key.name, want);
    }
    assert_int_equal(proto_next_key(&rest, &key), 0);
}

static void get_first_key_is_in_key(void **state)
{
    (void)state;
    struct proto_req req;
    parse_whole("get a/open b\r\n", PROTO_GET, &req);
    assert_slice(req.key.full, "a/open");
    assert_int_equal(req.key.opts, PROTO_OPT_OPEN);
}

static void get_without_key_is_bad(void **state)
{
    (void)state;
    struct proto_req req;
    parse_bad("get\r\n", "bad command line format", 0, &req);
    parse_bad("get   \r\n", "bad command line format", 0, &req);
    parse_bad("gets\r\n", "bad command line format", 0, &req);
}

static void get_with_one_bad_key_is_bad(void **state)
{
    (void)state;
    struct proto_req req;
    parse_bad("get a b/nope c\r\n", "bad option: unknown", 0, &req);
    parse_bad("get a b/open/open\r\n", "bad option: repeated", 0, &req);
    parse_bad("get a/peek/open\r\n", "bad option combination", 0, &req);
    parse_bad("get a/t=x\r\n", "bad option: t= is 0 to 4294967295 ms", 0, &req);
}

static void get_rejects_sync(void **state)
{
    (void)state;
    struct proto_req req;
    parse_bad("get a/sync\r\n", "bad option: unknown", 0, &req);
}

static void get_keys_with_utf8_names(void **state)
{
    (void)state;
    struct proto_req req;
    parse_whole("get caf\xc3\xa9/open\r\n", PROTO_GET, &req);
    assert_slice(req.key.name, "caf\xc3\xa9");
}

static void get_keys_are_case_sensitive_names(void **state)
{
    (void)state;
    struct proto_req req;
    struct proto_key key;
    parse_whole("GET Queue queue\r\n", PROTO_GET, &req);
    struct proto_slice rest = req.keys;
    assert_int_equal(proto_next_key(&rest, &key), 1);
    assert_slice(key.name, "Queue");
    assert_int_equal(proto_next_key(&rest, &key), 1);
    assert_slice(key.name, "queue");
}

static void next_key_on_empty_rest(void **state)
{
    (void)state;
    struct proto_slice rest = {"", 0};
    struct proto_key key;
    assert_int_equal(proto_next_key(&rest, &key), 0);
    struct proto_slice spaces = {"   ", 3};
    assert_int_equal(proto_next_key(&spaces, &key), 0);
}

/* ---- key options ---- */

static void key_plain_name(void **state)
{
    (void)state;
    key_ok("q", 0, "q", 0, 0);
    key_ok("..", 0, "..", 0, 0);
    key_ok("CON", 0, "CON", 0, 0);
    key_ok("a\\b", 0, "a\\b", 0, 0);
    key_ok("x:y.z-1_2", 0, "x:y.z-1_2", 0, 0);
}

static void key_each_get_option(void **state)
{
    (void)state;
    key_ok("q/open", 0, "q", PROTO_OPT_OPEN, 0);
    key_ok("q/close", 0, "q", PROTO_OPT_CLOSE, 0);
    key_ok("q/abort", 0, "q", PROTO_OPT_ABORT, 0);
    key_ok("q/peek", 0, "q", PROTO_OPT_PEEK, 0);
    key_ok("q/t=1000", 0, "q", PROTO_OPT_TIMEOUT, 1000);
}

static void key_valid_combinations(void **state)
{
    (void)state;
    key_ok("q/close/open", 0, "q", PROTO_OPT_CLOSE | PROTO_OPT_OPEN, 0);
    key_ok("q/open/close", 0, "q", PROTO_OPT_CLOSE | PROTO_OPT_OPEN, 0);
    key_ok("q/t=5/open", 0, "q", PROTO_OPT_TIMEOUT | PROTO_OPT_OPEN, 5);
    key_ok("q/open/t=5", 0, "q", PROTO_OPT_TIMEOUT | PROTO_OPT_OPEN, 5);
    key_ok("q/close/t=7", 0, "q", PROTO_OPT_TIMEOUT | PROTO_OPT_CLOSE, 7);
    key_ok("q/peek/t=9", 0, "q", PROTO_OPT_TIMEOUT | PROTO_OPT_PEEK, 9);
    key_ok("q/t=9/peek", 0, "q", PROTO_OPT_TIMEOUT | PROTO_OPT_PEEK, 9);
    key_ok("q/close/open/t=3", 0, "q", PROTO_OPT_TIMEOUT | PROTO_OPT_CLOSE | PROTO_OPT_OPEN, 3);
    key_ok("q/t=3/open/close", 0, "q", PROTO_OPT_TIMEOUT | PROTO_OPT_CLOSE | PROTO_OPT_OPEN, 3);
}

static void key_timeout_bounds(void **state)
{
    (void)state;
    key_ok("q/t=0", 0, "q", PROTO_OPT_TIMEOUT, 0);
    key_ok("q/t=007", 0, "q", PROTO_OPT_TIMEOUT, 7);
    key_ok("q/t=4294967295", 0, "q", PROTO_OPT_TIMEOUT, 4294967295u);
    key_bad("q/t=4294967296", 0, "bad option: t= is 0 to 4294967295 ms");
    key_bad("q/t=99999999999999999999999", 0, "bad option: t= is 0 to 4294967295 ms");
    key_bad("q/t=", 0, "bad option: t= is 0 to 4294967295 ms");
    key_bad("q/t=-1", 0, "bad option: t= is 0 to 4294967295 ms");
    key_bad("q/t=+1", 0, "bad option: t= is 0 to 4294967295 ms");
    key_bad("q/t=1s", 0, "bad option: t= is 0 to 4294967295 ms");
    key_bad("q/t= 1", 0, "bad option: t= is 0 to 4294967295 ms");
    key_bad("q/t=0x10", 0, "bad option: t= is 0 to 4294967295 ms");
}

static void key_abort_must_be_alone(void **state)
{
    (void)state;
    key_bad("q/abort/open", 0, "bad option combination");
    key_bad("q/open/abort", 0, "bad option combination");
    key_bad("q/abort/close", 0, "bad option combination");
    key_bad("q/abort/peek", 0, "bad option combination");
    key_bad("q/abort/t=5", 0, "bad option combination");
    key_bad("q/t=5/abort", 0, "bad option combination");
}

static void key_peek_excludes_open_close(void **state)
{
    (void)state;
    key_bad("q/peek/open", 0, "bad option combination");
    key_bad("q/open/peek", 0, "bad option combination");
    key_bad("q/peek/close", 0, "bad option combination");
    key_bad("q/close/peek", 0, "bad option combination");
    key_bad("q/t=1/peek/open", 0, "bad option combination");
}

static void key_repeated_option(void **state)
{
    (void)state;
    key_bad("q/open/open", 0, "bad option: repeated");
    key_bad("q/close/close", 0, "bad option: repeated");
    key_bad("q/abort/abort", 0, "bad option: repeated");
    key_bad("q/peek/peek", 0, "bad option: repeated");
    key_bad("q/t=1/t=2", 0, "bad option: repeated");
    key_bad("q/t=1/open/t=1", 0, "bad option: repeated");
    key_bad("q/sync/sync", 1, "bad option: repeated");
}

static void key_empty_option(void **state)
{
    (void)state;
    key_bad("q/", 0, "bad option: empty");
    key_bad("q//open", 0, "bad option: empty");
    key_bad("q/open/", 0, "bad option: empty");
    key_bad("q/open//close", 0, "bad option: empty");
    key_bad("q/", 1, "bad option: empty");
    key_bad("q/sync/", 1, "bad option: empty");
}

static void key_unknown_option(void **state)
{
    (void)state;
    key_bad("q/opne", 0, "bad option: unknown");
    key_bad("q/OPEN", 0, "bad option: unknown");
    key_bad("q/openx", 0, "bad option: unknown");
    key_bad("q/t", 0, "bad option: unknown");
    key_bad("q/T=5", 0, "bad option: unknown");
    key_bad("q/timeout=5", 0, "bad option: unknown");
    key_bad("q/sync", 0, "bad option: unknown");
    key_bad("q/open/nope", 0, "bad option: unknown");
}

static void key_set_only_sync(void **state)
{
    (void)state;
    key_ok("q", 1, "q", 0, 0);
    key_ok("q/sync", 1, "q", PROTO_OPT_SYNC, 0);
    key_bad("q/open", 1, "bad option: unknown");
    key_bad("q/close", 1, "bad option: unknown");
    key_bad("q/abort", 1, "bad option: unknown");
    key_bad("q/peek", 1, "bad option: unknown");
    key_bad("q/t=5", 1, "bad option: unknown");
    key_bad("q/SYNC", 1, "bad option: unknown");
}

static void key_name_250_ok_251_too_long(void **state)
{
    (void)state;
    char name[300];
    memset(name, 'n', 250);
    name[250] = '\0';
    key_ok(name, 0, name, 0, 0);
    key_ok(name, 1, name, 0, 0);

    char with_opt[320];
    snprintf(with_opt, sizeof with_opt, "%s/open", name);
    key_ok(with_opt, 0, name, PROTO_OPT_OPEN, 0);

    memset(name, 'n', 251);
    name[251] = '\0';
    key_bad(name, 0, "key too long");
    key_bad(name, 1, "key too long");
    snprintf(with_opt, sizeof with_opt, "%s/open", name);
    key_bad(with_opt, 0, "key too long");
}

static void key_empty_name(void **state)
{
    (void)state;
    key_bad("/open", 0, "bad key");
    key_bad("/", 0, "bad key");
    key_bad("/sync", 1, "bad key");

    struct proto_key key;
    const char *error = NULL;
    assert_int_equal(proto_parse_key("", 0, 0, &key, &error), -EINVAL);
    assert_string_equal(error, "bad key");
}

static void key_control_bytes_rejected(void **state)
{
    (void)state;
    char name[4] = {'a', 0, 'b', 0};
    for (int c = 0; c < 0x20; c++) {
        name[1] = (char)c;
        struct proto_key key;
        const char *error = NULL;
        const char *p = place(name, 3);
        assert_int_equal(proto_parse_key(p, 3, 0, &key, &error), -EINVAL);
        assert_string_equal(error, "bad key");
        assert_int_equal(proto_parse_key(p, 3, 1, &key, &error), -EINVAL);
    }
    key_bad("a\x7f", 0, "bad key");
    key_bad("\x7f", 1, "bad key");
    key_bad("a b", 0, "bad key");
}

static void key_high_bytes_allowed(void **state)
{
    (void)state;
    key_ok("\x80\xff\xfe", 0, "\x80\xff\xfe", 0, 0);
    key_ok("\xe6\x97\xa5\xe6\x9c\xac/peek", 0, "\xe6\x97\xa5\xe6\x9c\xac", PROTO_OPT_PEEK, 0);
}

/* ---- set ---- */

static void set_basic(void **state)
{
    (void)state;
    struct proto_req req;
    const char *in = "set q 42 0 5\r\nhello\r\n";
    ssize_t r = parse(in, &req);
    assert_int_equal(r, strlen("set q 42 0 5\r\n"));
    assert_int_equal(req.type, PROTO_SET);
    assert_slice(req.key.full, "q");
    assert_slice(req.key.name, "q");
    assert_int_equal(req.key.opts, 0);
    assert_int_equal(req.flags, 42);
    assert_int_equal(req.exptime, 0);
    assert_int_equal(req.bytes, 5);
    assert_int_equal(req.noreply, 0);
    assert_int_equal(req.swallow, 0);
}

static void set_noreply(void **state)
{
    (void)state;
    struct proto_req req;
    parse_whole("set q 0 0 1 noreply\r\n", PROTO_SET, &req);
    assert_int_equal(req.noreply, 1);
    assert_int_equal(req.bytes, 1);
    parse_whole("SET q 0 0 1 NoReply\r\n", PROTO_SET, &req);
    assert_int_equal(req.noreply, 1);
}

static void set_sync(void **state)
{
    (void)state;
    struct proto_req req;
    parse_whole("set jobs/sync 1 2 3\r\n", PROTO_SET, &req);
    assert_slice(req.key.full, "jobs/sync");
    assert_slice(req.key.name, "jobs");
    assert_int_equal(req.key.opts, PROTO_OPT_SYNC);
}

static void set_field_limits(void **state)
{
    (void)state;
    struct proto_req req;
    parse_whole("set q 4294967295 9223372036854775807 18446744073709551613\r\n", PROTO_SET, &req);
    assert_int_equal(req.flags, UINT32_MAX);
    assert_true(req.exptime == INT64_MAX);
    assert_true(req.bytes == UINT64_MAX - 2);

    parse_whole("set q 0 -9223372036854775808 0\r\n", PROTO_SET, &req);
    assert_true(req.exptime == INT64_MIN);
    parse_whole("set q 0 -1 0\r\n", PROTO_SET, &req);
    assert_true(req.exptime == -1);
    parse_whole("set q 0 -0 0\r\n", PROTO_SET, &req);
    assert_true(req.exptime == 0);
    parse_whole("set q 0 1700000000 0\r\n", PROTO_SET, &req);
    assert_true(req.exptime == 1700000000);
    assert_int_equal(req.bytes, 0);
}

static void set_bad_flags_swallows(void **state)
{
    (void)state;
    struct proto_req req;
    parse_bad("set q 4294967296 0 5\r\n", "bad command line format", 0, &req);
    assert_int_equal(req.swallow, 7);
    parse_bad("set q -1 0 5\r\n", "bad command line format", 0, &req);
    assert_int_equal(req.swallow, 7);
    parse_bad("set q x 0 5\r\n", "bad command line format", 0, &req);
    assert_int_equal(req.swallow, 7);
    parse_bad("set q 1x 0 5\r\n", "bad command line format", 0, &req);
    assert_int_equal(req.swallow, 7);
}

static void set_bad_exptime_swallows(void **state)
{
    (void)state;
    struct proto_req req;
    parse_bad("set q 0 9223372036854775808 10\r\n", "bad command line format", 0, &req);
    assert_int_equal(req.swallow, 12);
    parse_bad("set q 0 -9223372036854775809 10\r\n", "bad command line format", 0, &req);
    assert_int_equal(req.swallow, 12);
    parse_bad("set q 0 - 10\r\n", "bad command line format", 0, &req);
    parse_bad("set q 0 +5 10\r\n", "bad command line format", 0, &req);
    parse_bad("set q 0 5s 10\r\n", "bad command line format", 0, &req);
    parse_bad("set q 0 -- 10\r\n", "bad command line format", 0, &req);
    assert_int_equal(req.swallow, 12);
}

static void set_bad_key_swallows(void **state)
{
    (void)state;
    struct proto_req req;
    parse_bad("set q/open 0 0 3\r\n", "bad option: unknown", 0, &req);
    assert_int_equal(req.swallow, 5);
    parse_bad("set q/ 0 0 3\r\n", "bad option: empty", 0, &req);
    assert_int_equal(req.swallow, 5);
    parse_bad("set /sync 0 0 3\r\n", "bad key", 0, &req);
    assert_int_equal(req.swallow, 5);
    parse_bad("set q\x01 0 0 3\r\n", "bad key", 0, &req);
    assert_int_equal(req.swallow, 5);

    char line[400], name[260];
    memset(name, 'k', 251);
    name[251] = '\0';
    snprintf(line, sizeof line, "set %s 0 0 3\r\n", name);
    parse_bad(line, "key too long", 0, &req);
    assert_int_equal(req.swallow, 5);
    name[250] = '\0';
    snprintf(line, sizeof line, "set %s 0 0 3\r\n", name);
    parse_whole(line, PROTO_SET, &req);
    assert_int_equal(req.key.name.len, 250);
}

static void set_extra_tokens_swallow(void **state)
{
    (void)state;
    struct proto_req req;
    parse_bad("set q 0 0 5 extra\r\n", "bad command line format", 0, &req);
    assert_int_equal(req.swallow, 7);
    assert_int_equal(req.noreply, 0);
    parse_bad("set q 0 0 5 noreply extra\r\n", "bad command line format", 0, &req);
    assert_int_equal(req.swallow, 7);
    assert_int_equal(req.noreply, 1);
    parse_bad("set q 0 0 5 noreply noreply\r\n", "bad command line format", 0, &req);
    parse_bad("set q 0 0 5 a b c d e f g h i j\r\n", "bad command line format", 0, &req);
    assert_int_equal(req.swallow, 7);
}

static void set_unreadable_length_is_fatal(void **state)
{
    (void)state;
    struct proto_req req;
    parse_bad("set q 0 0 -5\r\n", "bad data chunk", 1, &req);
    parse_bad("set q 0 0 five\r\n", "bad data chunk", 1, &req);
    parse_bad("set q 0 0 5x\r\n", "bad data chunk", 1, &req);
    parse_bad("set q 0 0 18446744073709551616\r\n", "bad data chunk", 1, &req);
    /* bytes + 2 must still fit in 64 bits */
    parse_bad("set q 0 0 18446744073709551614\r\n", "bad data chunk", 1, &req);
    parse_bad("set q 0 0 18446744073709551615\r\n", "bad data chunk", 1, &req);
    parse_bad("set q 0 5 noreply\r\n", "bad data chunk", 1, &req);
    assert_int_equal(req.swallow, 0);
}

static void set_missing_fields_is_fatal(void **state)
{
    (void)state;
    struct proto_req req;
    parse_bad("set\r\n", "bad command line format", 1, &req);
    parse_bad("set q\r\n", "bad command line format", 1, &req);
    parse_bad("set q 0\r\n", "bad command line format", 1, &req);
    parse_bad("set q 0 0\r\n", "bad command line format", 1, &req);
    assert_int_equal(req.swallow, 0);
}

static void set_bad_key_and_bad_length_is_fatal(void **state)
{
    (void)state;
    struct proto_req req;
    parse_bad("set q/open 0 0 x\r\n", "bad data chunk", 1, &req);
}

/* ---- storage commands we do not serve ---- */

static void unserved_storage_commands_swallow(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "add q 0 0 5\r\n", "replace q 0 0 5\r\n",     "append q 0 0 5\r\n", "prepend q 0 0 5\r\n",
        "ADD q 0 0 5\r\n", "add q 0 0 5 noreply\r\n", "cas q 0 0 5 99\r\n", "cas q 0 0 5 99 noreply\r\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        struct proto_req req;
        parse_whole(lines[i], PROTO_UNKNOWN, &req);
        assert_int_equal(req.swallow, 7);
        assert_int_equal(req.bytes, 5);
    }
}

static void unserved_storage_bad_header(void **state)
{
    (void)state;
    struct proto_req req;
    parse_bad("add q 0 0 x\r\n", "bad data chunk", 1, &req);
    parse_bad("append q 0\r\n", "bad command line format", 1, &req);
    parse_bad("cas q 0 0 -1 5\r\n", "bad data chunk", 1, &req);
    parse_bad("cas q 0 0\r\n", "bad command line format", 1, &req);
    /* length readable, the rest is not: skip the data, stay usable */
    parse_bad("cas q 0 0 5\r\n", "bad command line format", 0, &req);
    assert_int_equal(req.swallow, 7);
    parse_bad("cas q 0 0 5 x\r\n", "bad command line format", 0, &req);
    assert_int_equal(req.swallow, 7);
    parse_bad("cas q 0 0 5 noreply\r\n", "bad command line format", 0, &req);
    parse_bad("prepend q x 0 5\r\n", "bad command line format", 0, &req);
    assert_int_equal(req.swallow, 7);
}

/* ---- delete, flush, flush_all ---- */

static void delete_forms(void **state)
{
    (void)state;
    struct proto_req req;
    parse_whole("delete q\r\n", PROTO_DELETE, &req);
    assert_slice(req.key.name, "q");
    assert_int_equal(req.noreply, 0);
    parse_whole("delete q noreply\r\n", PROTO_DELETE, &req);
    assert_int_equal(req.noreply, 1);
    parse_whole("delete q 0\r\n", PROTO_DELETE, &req);
    assert_int_equal(req.noreply, 0);
    parse_whole("delete q 0 noreply\r\n", PROTO_DELETE, &req);
    assert_int_equal(req.noreply, 1);
    parse_whole("DELETE q\r\n", PROTO_DELETE, &req);
}

static void delete_errors(void **state)
{
    (void)state;
    struct proto_req req;
    parse_bad("delete\r\n", "bad command line format", 0, &req);
    parse_bad("delete q 5\r\n", "bad command line format", 0, &req);
    parse_bad("delete q x\r\n", "bad command line format", 0, &req);
    parse_bad("delete q 0 0\r\n", "bad command line format", 0, &req);
    parse_bad("delete q noreply 0\r\n", "bad command line format", 0, &req);
    parse_bad("delete q noreply x\r\n", "bad command line format", 0, &req);
    parse_bad("delete q/open\r\n", "bad option: none allowed here", 0, &req);
    parse_bad("delete q/sync\r\n", "bad option: unknown", 0, &req);
    parse_bad("delete q/\r\n", "bad option: empty", 0, &req);
    parse_bad("delete /x\r\n", "bad key", 0, &req);
}

static void flush_forms(void **state)
{
    (void)state;
    struct proto_req req;
    parse_whole("flush q\r\n", PROTO_FLUSH, &req);
    assert_slice(req.key.name, "q");
    assert_int_equal(req.noreply, 0);
    parse_whole("flush q noreply\r\n", PROTO_FLUSH, &req);
    assert_int_equal(req.noreply, 1);
    parse_bad("flush\r\n", "bad command line format", 0, &req);
    parse_bad("flush q 0\r\n", "bad command line format", 0, &req);
    parse_bad("flush q noreply x\r\n", "bad command line format", 0, &req);
    parse_bad("flush q/peek\r\n", "bad option: none allowed here", 0, &req);
}

static void flush_all_forms(void **state)
{
    (void)state;
    struct proto_req req;
    parse_whole("flush_all\r\n", PROTO_FLUSH_ALL, &req);
    assert_int_equal(req.noreply, 0);
    parse_whole("flush_all 10\r\n", PROTO_FLUSH_ALL, &req);
    parse_whole("flush_all noreply\r\n", PROTO_FLUSH_ALL, &req);
    assert_int_equal(req.noreply, 1);
    parse_whole("flush_all 0 noreply\r\n", PROTO_FLUSH_ALL, &req);
    assert_int_equal(req.noreply, 1);
    parse_whole("FLUSH_ALL\r\n", PROTO_FLUSH_ALL, &req);
    parse_bad("flush_all x\r\n", "bad command line format", 0, &req);
    parse_bad("flush_all -1\r\n", "bad command line format", 0, &req);
    parse_bad("flush_all 0 0\r\n", "bad command line format", 0, &req);
    parse_bad("flush_all noreply 0\r\n", "bad command line format", 0, &req);
}

/* ---- stats, version, quit, verbosity ---- */

static void stats_ignores_arguments(void **state)
{
    (void)state;
    struct proto_req req;
    parse_whole("stats\r\n", PROTO_STATS, &req);
    assert_int_equal(req.keys.len, 0);
    parse_whole("stats items\r\n", PROTO_STATS, &req);
    assert_slice(req.keys, "items");
    assert_int_equal(req.nkeys, 0);
    parse_whole("stats  a b  c d e f g h i j k   \r\n", PROTO_STATS, &req);
    assert_slice(req.keys, "a b  c d e f g h i j k");
    parse_whole("STATS\r\n", PROTO_STATS, &req);
}

static void version_and_quit(void **state)
{
    (void)state;
    struct proto_req req;
    parse_whole("version\r\n", PROTO_VERSION, &req);
    parse_whole("Version\r\n", PROTO_VERSION, &req);
    parse_whole("quit\r\n", PROTO_QUIT, &req);
    parse_whole("QUIT\n", PROTO_QUIT, &req);
    parse_bad("version x\r\n", "bad command line format", 0, &req);
    parse_bad("version noreply\r\n", "bad command line format", 0, &req);
    parse_bad("quit now\r\n", "bad command line format", 0, &req);
    parse_bad("quit noreply\r\n", "bad command line format", 0, &req);
}

static void verbosity_forms(void **state)
{
    (void)state;
    struct proto_req req;
    parse_whole("verbosity 1\r\n", PROTO_VERBOSITY, &req);
    assert_int_equal(req.noreply, 0);
    parse_whole("verbosity 0 noreply\r\n", PROTO_VERBOSITY, &req);
    assert_int_equal(req.noreply, 1);
    parse_bad("verbosity\r\n", "bad command line format", 0, &req);
    parse_bad("verbosity x\r\n", "bad command line format", 0, &req);
    parse_bad("verbosity noreply\r\n", "bad command line format", 0, &req);
    parse_bad("verbosity 1 2\r\n", "bad command line format", 0, &req);
}

/* ---- unknown commands and line handling ---- */

static void unknown_commands(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "bogus\r\n",        "incr q 1\r\n", "decr q 1\r\n", "gat 0 q\r\n", "getx q\r\n", "ge q\r\n",
        "sets q 0 0 1\r\n", "flushall\r\n", "\x01\r\n",     "get\tq\r\n",  "stat\r\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        struct proto_req req;
        parse_whole(lines[i], PROTO_UNKNOWN, &req);
        assert_int_equal(req.swallow, 0);
    }
}

static void empty_line_is_unknown(void **state)
{
    (void)state;
    struct proto_req req;
    parse_whole("\r\n", PROTO_UNKNOWN, &req);
    parse_whole("\n", PROTO_UNKNOWN, &req);
    parse_whole("    \r\n", PROTO_UNKNOWN, &req);
}

static void command_words_case_insensitive(void **state)
{
    (void)state;
    struct proto_req req;
    parse_whole("GET q\r\n", PROTO_GET, &req);
    parse_whole("Get q\r\n", PROTO_GET, &req);
    parse_whole("gEtS q\r\n", PROTO_GET, &req);
    parse_whole("Set q 0 0 1\r\n", PROTO_SET, &req);
    parse_whole("DeLeTe q\r\n", PROTO_DELETE, &req);
    parse_whole("FLUSH q\r\n", PROTO_FLUSH, &req);
    parse_whole("Stats\r\n", PROTO_STATS, &req);
    parse_whole("VERBOSITY 1\r\n", PROTO_VERBOSITY, &req);
    /* the queue name keeps its case */
    parse_whole("GET MyQueue\r\n", PROTO_GET, &req);
    assert_slice(req.key.name, "MyQueue");
}

static void lf_and_crlf_are_the_same(void **state)
{
    (void)state;
    struct proto_req a, b;
    assert_int_equal(parse("get q/open\n", &a), 11);
    assert_int_equal(a.type, PROTO_GET);
    assert_slice(a.keys, "q/open");
    assert_int_equal(parse("get q/open\r\n", &b), 12);
    assert_int_equal(b.type, PROTO_GET);
    assert_slice(b.keys, "q/open");

    assert_int_equal(parse("set q 1 2 3\n", &a), 12);
    assert_int_equal(a.type, PROTO_SET);
    assert_int_equal(a.bytes, 3);
    assert_int_equal(parse("set q 1 2 3 noreply\n", &a), 20);
    assert_int_equal(a.noreply, 1);
}

static void only_one_cr_is_stripped(void **state)
{
    (void)state;
    struct proto_req req;
    /* a second CR belongs to the key, which then holds a control byte */
    parse_bad("get q\r\r\n", "bad key", 0, &req);
    /* a CR in the middle of a line is not a line end */
    parse_bad("get a\rb\n", "bad key", 0, &req);
    parse_whole("version\r\r\n", PROTO_UNKNOWN, &req);
}

static void extra_spaces_between_tokens(void **state)
{
    (void)state;
    struct proto_req req;
    parse_whole("  get    q   \r\n", PROTO_GET, &req);
    assert_int_equal(req.nkeys, 1);
    assert_slice(req.keys, "q");
    parse_whole("set   q  1   2   3   noreply  \r\n", PROTO_SET, &req);
    assert_int_equal(req.flags, 1);
    assert_int_equal(req.exptime, 2);
    assert_int_equal(req.bytes, 3);
    assert_int_equal(req.noreply, 1);
}

static void pipelined_requests_one_at_a_time(void **state)
{
    (void)state;
    const char *in = "get a\r\nget b/open\r\nversion\n";
    size_t len = strlen(in);
    struct proto_req req;
    ssize_t r = parse(in, &req);
    assert_int_equal(r, 7);
    assert_int_equal(req.type, PROTO_GET);
    assert_slice(req.keys, "a");
    /* parse the rest in place, the second line also ends at the guard page */
    const char *buf = last_buf;
    r = proto_parse(buf + 7, len - 7, MAX_LINE, &req);
    assert_int_equal(r, 12);
    assert_int_equal(req.type, PROTO_GET);
    assert_slice(req.keys, "b/open");
    r = proto_parse(buf + 19, len - 19, MAX_LINE, &req);
    assert_int_equal(r, 8);
    assert_int_equal(req.type, PROTO_VERSION);
    assert_int_equal(proto_parse(buf + 27, 0, MAX_LINE, &req), PROTO_NEED_MORE);
}

static void slices_point_into_the_buffer(void **state)
{
    (void)state;
    struct proto_req req;
    parse_whole("set abc/sync 0 0 1\r\n", PROTO_SET, &req);
    assert_ptr_equal(req.key.full.p, last_buf + 4);
    assert_ptr_equal(req.key.name.p, last_buf + 4);
    parse_whole("get x y\r\n", PROTO_GET, &req);
    assert_ptr_equal(req.keys.p, last_buf + 4);
}

/* ---- need more, too long ---- */

static const char *const valid_requests[] = {
    "get q\r\n",
    "gets a b/open c/close/open/t=10\r\n",
    "get q/peek/t=4294967295\n",
    "set q/sync 12 -1 5 noreply\r\n",
    "set q 0 0 0\n",
    "add q 0 0 5\r\n",
    "cas q 0 0 5 1\r\n",
    "delete q 0 noreply\r\n",
    "flush q\r\n",
    "flush_all 0\r\n",
    "stats items\r\n",
    "version\r\n",
    "quit\r\n",
    "verbosity 1 noreply\r\n",
    "bogus\r\n",
    "get q/open/open\r\n",
    "set q 0 0 x\r\n",
    "\r\n",
};

static void need_more_at_every_prefix(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid_requests / sizeof valid_requests[0]; i++) {
        const char *s = valid_requests[i];
        size_t n = strlen(s);
        struct proto_req req;
        for (size_t k = 0; k < n; k++) {
            ssize_t r = parse_n(s, k, &req);
            if (r != PROTO_NEED_MORE)
                print_error("\"%s\" prefix %llu: %lld\n", s, (unsigned long long)k, (long long)r);
            assert_int_equal(r, PROTO_NEED_MORE);
        }
        assert_int_equal(parse_n(s, n, &req), (ssize_t)n);
    }
}

static void whole_request_same_as_in_pieces(void **state)
{
    (void)state;
    /* The answer to a complete line does not depend on how much came after it. */
    const char *in = "set q/sync 12 -1 5 noreply\r\nhello\r\n";
    struct proto_req a, b;
    size_t line = strlen("set q/sync 12 -1 5 noreply\r\n");
    for (size_t n = line; n <= strlen(in); n++) {
        assert_int_equal(parse_n(in, line, &a), (ssize_t)line);
        assert_int_equal(parse_n(in, n, &b), (ssize_t)line);
        assert_int_equal(a.type, b.type);
        assert_int_equal(a.flags, b.flags);
        assert_true(a.exptime == b.exptime);
        assert_int_equal(a.bytes, b.bytes);
        assert_int_equal(a.noreply, b.noreply);
        assert_int_equal(a.key.opts, b.key.opts);
    }
}

static void too_long_without_newline(void **state)
{
    (void)state;
    char buf[64];
    memset(buf, 'x', sizeof buf);
    struct proto_req req;
    assert_int_equal(parse_n_max(buf, 15, 16, &req), PROTO_NEED_MORE);
    assert_int_equal(parse_n_max(buf, 16, 16, &req), PROTO_TOO_LONG);
    assert_int_equal(parse_n_max(buf, 64, 16, &req), PROTO_TOO_LONG);
    assert_int_equal(parse_n_max(buf, 0, 16, &req), PROTO_NEED_MORE);
}

static void line_of_exactly_max_line_fits(void **state)
{
    (void)state;
    /* "get " + 10 name bytes + "\r\n" = 16 */
    const char *line = "get 0123456789\r\n";
    struct proto_req req;
    assert_int_equal(parse_n_max(line, 16, 16, &req), 16);
    assert_int_equal(req.type, PROTO_GET);
    /* one byte longer does not fit, even though its newline is there */
    const char *longer = "get 0123456789a\r\n";
    assert_int_equal(parse_n_max(longer, 17, 16, &req), PROTO_TOO_LONG);
    /* the CR alone fits, the LF does not: too long */
    assert_int_equal(parse_n_max(longer, 16, 16, &req), PROTO_TOO_LONG);
    assert_int_equal(parse_n_max(longer, 15, 16, &req), PROTO_NEED_MORE);
}

static void too_long_even_if_newline_comes_later(void **state)
{
    (void)state;
    char buf[3000];
    memset(buf, 'a', sizeof buf);
    memcpy(buf, "get ", 4);
    buf[2999] = '\n';
    struct proto_req req;
    assert_int_equal(parse_n_max(buf, sizeof buf, 1024, &req), PROTO_TOO_LONG);
    assert_int_equal(parse_n_max(buf, sizeof buf, 3000, &req), 3000);
    assert_int_equal(req.type, PROTO_BAD);
    assert_string_equal(req.error, "key too long");
}

static void long_get_line_within_limit(void **state)
{
    (void)state;
    /* 250-byte names, ten of them, one line */
    char line[4096];
    size_t off = (size_t)snprintf(line, sizeof line, "get");
    for (int i = 0; i < 10; i++) {
        line[off++] = ' ';
        memset(line + off, 'a' + i, 250);
        off += 250;
    }
    memcpy(line + off, "\r\n", 3);
    struct proto_req req;
    assert_int_equal(parse_n_max(line, off + 2, 4096, &req), (ssize_t)(off + 2));
    assert_int_equal(req.type, PROTO_GET);
    assert_int_equal(req.nkeys, 10);
    struct proto_slice rest = req.keys;
    struct proto_key key;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(proto_next_key(&rest, &key), 1);
        assert_int_equal(key.name.len, 250);
        assert_int_equal((unsigned char)key.name.p[0], 'a' + i);
    }
    assert_int_equal(proto_next_key(&rest, &key), 0);
    /* the same line with max_line one short */
    assert_int_equal(parse_n_max(line, off + 2, off + 1, &req), PROTO_TOO_LONG);
}

static void get_251_byte_name_in_a_line(void **state)
{
    (void)state;
    char line[400], name[260];
    struct proto_req req;
    memset(name, 'z', 251);
    name[251] = '\0';
    snprintf(line, sizeof line, "get ok %s\r\n", name);
    parse_bad(line, "key too long", 0, &req);
    name[250] = '\0';
    snprintf(line, sizeof line, "get ok %s/open\r\n", name);
    parse_whole(line, PROTO_GET, &req);
    assert_int_equal(req.nkeys, 2);
}

static void control_bytes_in_get_key(void **state)
{
    (void)state;
    char line[16];
    struct proto_req req;
    for (int c = 0; c < 0x20; c++) {
        if (c == '\n' || c == '\r')
            continue;
        memcpy(line, "get a?b\r\n", 9);
        line[5] = (char)c;
        ssize_t r = parse_n(line, 9, &req);
        assert_int_equal(r, 9);
        assert_int_equal(req.type, PROTO_BAD);
        assert_string_equal(req.error, "bad key");
    }
    parse_bad("get a\x7f\r\n", "bad key", 0, &req);
}

/* ---- over-read: every prefix of noisy input against the guard ---- */

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void mutated_inputs_never_overread(void **state)
{
    (void)state;
    static const char alphabet[] = "getsGSdl/ 0123456789-\r\nopenclsabrtpk=ynucfx\x01\x7f\x80";
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char buf[300];
    struct proto_req req;
    for (int round = 0; round < 20000; round++) {
        size_t n;
        if (round % 2 == 0) {
            /* mutate a valid request */
            const char *base = valid_requests[rng_next(&seed) % (sizeof valid_requests / sizeof valid_requests[0])];
            n = strlen(base);
            memcpy(buf, base, n);
            int flips = 1 + (int)(rng_next(&seed) % 4);
            for (int f = 0; f < flips; f++)
                buf[rng_next(&seed) % n] = alphabet[rng_next(&seed) % (sizeof alphabet - 1)];
        } else {
            n = rng_next(&seed) % 64;
            for (size_t i = 0; i < n; i++)
                buf[i] = alphabet[rng_next(&seed) % (sizeof alphabet - 1)];
        }
        size_t max_line = 1 + rng_next(&seed) % 80;
        ssize_t r = parse_n_max(buf, n, max_line, &req);
        if (r > 0) {
            assert_true((size_t)r <= max_line);
            if (req.type == PROTO_GET) {
                struct proto_slice rest = req.keys;
                struct proto_key key;
                size_t count = 0;
                while (proto_next_key(&rest, &key)) {
                    assert_in_input(key.full);
                    assert_true(key.name.len >= 1 && key.name.len <= PROTO_MAX_NAME);
                    count++;
                }
                assert_int_equal(count, req.nkeys);
            }
        } else if (r == PROTO_NEED_MORE) {
            assert_true(n < max_line);
            assert_null(memchr(buf, '\n', n));
        } else {
            assert_int_equal(r, PROTO_TOO_LONG);
            assert_true(n >= max_line);
        }
    }
}

static void every_prefix_ends_at_guard(void **state)
{
    (void)state;
    /* Each prefix, on its own, is placed to end at the unreadable page. */
    struct proto_req req;
    for (size_t i = 0; i < sizeof valid_requests / sizeof valid_requests[0]; i++) {
        const char *s = valid_requests[i];
        size_t n = strlen(s);
        for (size_t k = 0; k <= n; k++) {
            (void)parse_n_max(s, k, k ? k : 1, &req);
            (void)parse_n_max(s, k, MAX_LINE, &req);
        }
        /* keys alone, every prefix */
        for (size_t k = 0; k <= n; k++) {
            struct proto_key key;
            const char *error;
            const char *p = place(s, k);
            (void)proto_parse_key(p, k, 0, &key, &error);
            (void)proto_parse_key(p, k, 1, &key, &error);
        }
    }
}

static void nothing_read_before_the_buffer(void **state)
{
    (void)state;
    /* A line that is only a newline, at the very first readable byte: the
     * CR check must not look at buf[-1]. */
    struct proto_req req;
    const char *p = place_front("\n", 1);
    assert_int_equal(proto_parse(p, 1, MAX_LINE, &req), 1);
    assert_int_equal(req.type, PROTO_UNKNOWN);
    p = place_front("\r\n", 2);
    assert_int_equal(proto_parse(p, 2, MAX_LINE, &req), 2);
    assert_int_equal(req.type, PROTO_UNKNOWN);
    for (size_t i = 0; i < sizeof valid_requests / sizeof valid_requests[0]; i++) {
        const char *s = valid_requests[i];
        size_t n = strlen(s);
        p = place_front(s, n);
        assert_int_equal(proto_parse(p, n, MAX_LINE, &req), (ssize_t)n);
        struct proto_key key;
        const char *error;
        for (size_t k = 0; k <= n; k++)
            (void)proto_parse_key(p, k, 0, &key, &error);
    }
}

static void next_key_stops_at_slice_end(void **state)
{
    (void)state;
    /* keys slice ends exactly at the guard page */
    const char *p = place("a b/open c", 10);
    struct proto_slice rest = {p, 10};
    struct proto_key key;
    assert_int_equal(proto_next_key(&rest, &key), 1);
    assert_int_equal(proto_next_key(&rest, &key), 1);
    assert_int_equal(key.opts, PROTO_OPT_OPEN);
    assert_int_equal(proto_next_key(&rest, &key), 1);
    assert_slice(key.full, "c");
    assert_int_equal(rest.len, 0);
    assert_int_equal(proto_next_key(&rest, &key), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(get_single_key),
        cmocka_unit_test(gets_is_get),
        cmocka_unit_test(get_many_keys_walked_in_order),
        cmocka_unit_test(get_next_key_count_matches_nkeys),
        cmocka_unit_test(get_first_key_is_in_key),
        cmocka_unit_test(get_without_key_is_bad),
        cmocka_unit_test(get_with_one_bad_key_is_bad),
        cmocka_unit_test(get_rejects_sync),
        cmocka_unit_test(get_keys_with_utf8_names),
        cmocka_unit_test(get_keys_are_case_sensitive_names),
        cmocka_unit_test(next_key_on_empty_rest),
        cmocka_unit_test(key_plain_name),
        cmocka_unit_test(key_each_get_option),
        cmocka_unit_test(key_valid_combinations),
        cmocka_unit_test(key_timeout_bounds),
        cmocka_unit_test(key_abort_must_be_alone),
        cmocka_unit_test(key_peek_excludes_open_close),
        cmocka_unit_test(key_repeated_option),
        cmocka_unit_test(key_empty_option),
        cmocka_unit_test(key_unknown_option),
        cmocka_unit_test(key_set_only_sync),
        cmocka_unit_test(key_name_250_ok_251_too_long),
        cmocka_unit_test(key_empty_name),
        cmocka_unit_test(key_control_bytes_rejected),
        cmocka_unit_test(key_high_bytes_allowed),
        cmocka_unit_test(set_basic),
        cmocka_unit_test(set_noreply),
        cmocka_unit_test(set_sync),
        cmocka_unit_test(set_field_limits),
        cmocka_unit_test(set_bad_flags_swallows),
        cmocka_unit_test(set_bad_exptime_swallows),
        cmocka_unit_test(set_bad_key_swallows),
        cmocka_unit_test(set_extra_tokens_swallow),
        cmocka_unit_test(set_unreadable_length_is_fatal),
        cmocka_unit_test(set_missing_fields_is_fatal),
        cmocka_unit_test(set_bad_key_and_bad_length_is_fatal),
        cmocka_unit_test(unserved_storage_commands_swallow),
        cmocka_unit_test(unserved_storage_bad_header),
        cmocka_unit_test(delete_forms),
        cmocka_unit_test(delete_errors),
        cmocka_unit_test(flush_forms),
        cmocka_unit_test(flush_all_forms),
        cmocka_unit_test(stats_ignores_arguments),
        cmocka_unit_test(version_and_quit),
        cmocka_unit_test(verbosity_forms),
        cmocka_unit_test(unknown_commands),
        cmocka_unit_test(empty_line_is_unknown),
        cmocka_unit_test(command_words_case_insensitive),
        cmocka_unit_test(lf_and_crlf_are_the_same),
        cmocka_unit_test(only_one_cr_is_stripped),
        cmocka_unit_test(extra_spaces_between_tokens),
        cmocka_unit_test(pipelined_requests_one_at_a_time),
        cmocka_unit_test(slices_point_into_the_buffer),
        cmocka_unit_test(need_more_at_every_prefix),
        cmocka_unit_test(whole_request_same_as_in_pieces),
        cmocka_unit_test(too_long_without_newline),
        cmocka_unit_test(line_of_exactly_max_line_fits),
        cmocka_unit_test(too_long_even_if_newline_comes_later),
        cmocka_unit_test(long_get_line_within_limit),
        cmocka_unit_test(get_251_byte_name_in_a_line),
        cmocka_unit_test(control_bytes_in_get_key),
        cmocka_unit_test(mutated_inputs_never_overread),
        cmocka_unit_test(every_prefix_ends_at_guard),
        cmocka_unit_test(nothing_read_before_the_buffer),
        cmocka_unit_test(next_key_stops_at_slice_end),
        cmocka_unit_test(bury_stands_alone_and_kick_takes_a_queue_and_a_count),
    };
    return cmocka_run_group_tests_name("proto_parse", tests, guard_setup, guard_teardown);
}
