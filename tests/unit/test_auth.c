/* Unit tests for auth.c (the auth file's users, logins, queue permissions)
 * and auth_file.c (reading it). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include "auth.h"
#include "auth_file.h"
#include "util/buf.h"

/* ---- helpers ---- */

static struct auth_table *parse_ok(const char *text)
{
    struct auth_table *t;
    struct auth_error e;
    if (auth_parse(text, strlen(text), &t, &e) < 0)
        fail_msg("line %d: %s", e.line, e.msg);
    return t;
}

/* The file is refused at line, with a reason that holds want. */
static void parse_bad(const char *text, int line, const char *want)
{
    struct auth_table *t = (struct auth_table *)&t;
    struct auth_error e;
    assert_int_equal(auth_parse(text, strlen(text), &t, &e), -EINVAL);
    assert_null(t);
    if (e.line != line || !strstr(e.msg, want))
        fail_msg("%s: got line %d '%s', want line %d '%s'", text, e.line, e.msg, line, want);
}

static const struct auth_user *user(const struct auth_table *t, const char *name)
{
    return auth_find(t, name, strlen(name));
}

static const struct auth_user *login(const struct auth_table *t, const char *token)
{
    struct auth_cred c;
    assert_int_equal(auth_token_split(token, strlen(token), &c), 0);
    return auth_login(t, &c);
}

static int may(const struct auth_user *u, const char *q, unsigned perm) { return auth_may(u, q, strlen(q), perm); }

/* ---- parsing ---- */

static void test_users_with_and_without_queue_patterns(void **state)
{
    (void)state;
    struct auth_table *t = parse_ok("admin:s3cret\n"
                                    "# a comment, then an empty line\n"
                                    "\n"
                                    "worker:pw:jobs.*:r\n"
                                    "worker:pw:results:w\n"
                                    "feeder:pw2:jobs.*\n");
    assert_int_equal(auth_count(t), 3);
    const struct auth_user *a = user(t, "admin"), *w = user(t, "worker"), *f = user(t, "feeder");
    assert_non_null(a);
    assert_int_equal(a->nrules, 0);
    assert_int_equal(a->line, 1);
    assert_int_equal(a->pass_len, 6);
    assert_memory_equal(a->pass, "s3cret", 6);
    assert_non_null(w);
    assert_int_equal(w->nrules, 2);
    assert_string_equal(w->rules[0].glob, "jobs.*");
    assert_int_equal(w->rules[0].perm, AUTH_READ);
    assert_int_equal(w->rules[0].line, 4);
    assert_string_equal(w->rules[1].glob, "results");
    assert_int_equal(w->rules[1].perm, AUTH_WRITE);
    assert_non_null(f);
    assert_int_equal(f->nrules, 1);
    assert_int_equal(f->rules[0].perm, AUTH_READ | AUTH_WRITE); /* no access field: rw */
    assert_null(user(t, "nobody"));
    assert_null(user(t, "admi"));
    assert_null(user(t, "adminx"));
    auth_free(t);
}

static void test_crlf_lines_and_a_last_line_without_newline(void **state)
{
    (void)state;
    struct auth_table *t = parse_ok("a:1\r\nb:2:q:rw\r\nc:3");
    assert_int_equal(auth_count(t), 3);
    assert_int_equal(user(t, "a")->pass_len, 1); /* no '\r' in the password */
    assert_string_equal(user(t, "b")->rules[0].glob, "q");
    assert_memory_equal(user(t, "c")->pass, "3", 1);
    auth_free(t);
}

static void test_an_empty_file_has_no_users(void **state)
{
    (void)state;
    struct auth_table *t = parse_ok("");
    assert_int_equal(auth_count(t), 0);
    assert_null(user(t, "a"));
    assert_null(login(t, "a b"));
    auth_free(t);
    t = parse_ok("# nobody yet\n\n");
    assert_int_equal(auth_count(t), 0);
    auth_free(t);
}

static void test_malformed_lines_are_named(void **state)
{
    (void)state;
    char big[AUTH_TOKEN_MAX + 16];
    memset(big, 'p', sizeof(big) - 1);
    memcpy(big, "u:", 2);
    big[sizeof(big) - 1] = '\0';
    char longname[AUTH_NAME_MAX + 8];
    memset(longname, 'n', AUTH_NAME_MAX + 1);
    memcpy(longname + AUTH_NAME_MAX + 1, ":pw", 4);
    const struct {
        const char *text;
        int line;
        const char *want;
    } bad[] = {
        {"ok:pw\nnocolon\n", 2, "wants user:password"},
        {"a:b:c:r:x\n", 1, "too many ':'"},
        {":pw\n", 1, "empty user name"},
        {"ok:pw\n\n\nuser:\n", 4, "empty password"},
        {"us er:pw\n", 1, "no space or control byte"},
        {" user:pw\n", 1, "no space or control byte"},
        {"us\ter:pw\n", 1, "no space or control byte"},
        {"user:p\tw\n", 1, "control byte in the password"},
        {"user:pw \n", 1, "begins or ends with a space"},
        {"user: pw\n", 1, "begins or ends with a space"},
        {"user:pw:\n", 1, "empty queue pattern"},
        {"user:pw:jobs *\n", 1, "queue pattern has no space"},
        {"user:pw:a/b\n", 1, "queue pattern has no space, '/'"},
        {"user:pw:q:x\n", 1, "access must be r, w or rw"},
        {"user:pw:q:\n", 1, "access must be r, w or rw"},
        {"user:pw:q:RW\n", 1, "access must be r, w or rw"},
        {big, 1, "together over 16383 bytes"},
        {longname, 1, "user name over 250 bytes"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        parse_bad(bad[i].text, bad[i].line, bad[i].want);
}

static void test_a_nul_byte_is_refused(void **state)
{
    (void)state;
    static const char text[] = "a:pw\nb:p\0w\n";
    struct auth_table *t;
    struct auth_error e;
    assert_int_equal(auth_parse(text, sizeof(text) - 1, &t, &e), -EINVAL);
    assert_int_equal(e.line, 2);
    assert_non_null(strstr(e.msg, "NUL"));
}

static void test_several_lines_of_one_user_must_agree(void **state)
{
    (void)state;
    parse_bad("u:pw:a\nx:1\nu:other:b\n", 3, "user 'u' has another password on line 1");
    parse_bad("u:pw\nu:pw\n", 2, "user 'u' is on line 1 already");
    parse_bad("u:pw:a\nu:pw\n", 2, "user 'u' is on line 1 already");
    parse_bad("u:pw\nu:pw:a\n", 2, "without a queue pattern has one line");
    /* of two users' mistakes, the earlier line is reported */
    parse_bad("z:1\na:1:q\nz:1\na:2:q\n", 3, "user 'z'");
    parse_bad("a:1:q\nz:1\na:2:q\nz:1\n", 3, "user 'a'");
}

static void test_many_users(void **state)
{
    (void)state;
    enum { N = 20000 };
    struct buf b = {0};
    for (int i = N; i > 0; i--)
        buf_printf(&b, "user%d:pass%d%s\n", i, i, i % 3 ? "" : ":q*");
    struct auth_table *t;
    struct auth_error e;
    assert_int_equal(auth_parse(b.data, b.len, &t, &e), 0);
    assert_int_equal(auth_count(t), N);
    char name[32], tok[64];
    for (int i = 1; i <= N; i++) {
        tu_fmt(name, sizeof(name), "user%d", i);
        const struct auth_user *u = user(t, name);
        assert_non_null(u);
        assert_int_equal(u->nrules, i % 3 ? 0 : 1);
        tu_fmt(tok, sizeof(tok), "user%d pass%d", i, i);
        assert_ptr_equal(login(t, tok), u);
    }
    assert_null(user(t, "user0"));
    assert_null(user(t, "user20001"));
    auth_free(t);
    buf_free(&b);
}

/* ---- logins ---- */

static void test_token_format(void **state)
{
    (void)state;
    struct auth_cred c;
    assert_int_equal(auth_token_split("alice secret", 12, &c), 0);
    assert_int_equal(c.user_len, 5);
    assert_memory_equal(c.user, "alice", 5);
    assert_int_equal(c.pass_len, 6);
    assert_memory_equal(c.pass, "secret", 6);
    /* the password is everything after the first space */
    assert_int_equal(auth_token_split("bob pass phrase", 15, &c), 0);
    assert_int_equal(c.pass_len, 11);
    const char *bad[] = {"",
                         "alice",
                         "alice ",
                         " secret",
                         " ",
                         "alice\tsecret",
                         "alice secret\r\n",
                         "al\x01ice secret",
                         "alice sec\x7fret"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (auth_token_split(bad[i], strlen(bad[i]), &c) != -EINVAL)
            fail_msg("'%s' was taken as a token", bad[i]);
}

static void test_login_wants_the_exact_password(void **state)
{
    (void)state;
    struct auth_table *t = parse_ok("alice:secret\nbob:pass phrase:q\n");
    assert_ptr_equal(login(t, "alice secret"), user(t, "alice"));
    assert_ptr_equal(login(t, "bob pass phrase"), user(t, "bob"));
    const char *wrong[] = {"alice secre", "alice secrets", "alice Secret", "alice xecret", "alice s",
                           "bob pass",    "bob phrase",    "carol secret", "Alice secret", "alic secret"};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++)
        if (login(t, wrong[i]))
            fail_msg("'%s' logged in", wrong[i]);
    auth_free(t);
}

static void test_constant_time_compare_is_an_exact_compare(void **state)
{
    (void)state;
    assert_true(auth_ct_equal("abc", 3, "abc", 3));
    assert_false(auth_ct_equal("abc", 3, "abd", 3));
    assert_false(auth_ct_equal("abc", 3, "ab", 2));
    assert_false(auth_ct_equal("abc", 3, "abcd", 4));
    assert_false(auth_ct_equal("abc", 3, "", 0));
    assert_false(auth_ct_equal("", 0, "a", 1));
    assert_true(auth_ct_equal("", 0, "", 0));
    /* a longer try whose extra bytes repeat the secret's first byte */
    assert_false(auth_ct_equal("a", 1, "aa", 2));
    assert_false(auth_ct_equal("ab", 2, "aba", 3));
    /* bytes with the high bit set */
    assert_true(auth_ct_equal("\xff\x80", 2, "\xff\x80", 2));
    assert_false(auth_ct_equal("\xff\x80", 2, "\xff\x81", 2));
}

static void test_same_password_across_tables(void **state)
{
    (void)state;
    struct auth_table *a = parse_ok("u:one\nv:two\n"), *b = parse_ok("u:one:q\nv:three\n");
    assert_true(auth_same_password(user(a, "u"), user(b, "u")));
    assert_false(auth_same_password(user(a, "v"), user(b, "v")));
    auth_free(a);
    auth_free(b);
}

/* ---- permissions ---- */

static void test_a_user_without_patterns_may_do_anything(void **state)
{
    (void)state;
    struct auth_table *t = parse_ok("root:pw\n");
    const struct auth_user *u = user(t, "root");
    assert_true(may(u, "anything", AUTH_READ));
    assert_true(may(u, "anything", AUTH_WRITE));
    assert_true(may(u, "x", AUTH_READ | AUTH_WRITE));
    auth_free(t);
}

static void test_patterns_grant_read_write_or_both(void **state)
{
    (void)state;
    struct auth_table *t = parse_ok("u:pw:jobs.*:r\n"
                                    "u:pw:jobs.mail:w\n"
                                    "u:pw:results:rw\n"
                                    "u:pw:log-?:w\n"
                                    "u:pw:[ab]x[!0-9]:r\n");
    const struct auth_user *u = user(t, "u");
    const struct {
        const char *q;
        int r, w;
    } cases[] = {
        {"jobs.a", 1, 0},
        {"jobs.mail", 1, 1},        /* two patterns: their rights together */
        {"jobs.mail.urgent", 1, 0}, /* '*' takes '.' too */
        {"jobs.", 1, 0},
        {"jobs", 0, 0},
        {"Jobs.a", 0, 0}, /* names are case-sensitive */
        {"results", 1, 1},
        {"results2", 0, 0},
        {"xresults", 0, 0},
        {"log-1", 0, 1},
        {"log-12", 0, 0},
        {"axb", 1, 0},
        {"bxz", 1, 0},
        {"cxb", 0, 0},
        {"ax1", 0, 0},
        {"other", 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (may(u, cases[i].q, AUTH_READ) != cases[i].r || may(u, cases[i].q, AUTH_WRITE) != cases[i].w)
            fail_msg("%s: want r=%d w=%d", cases[i].q, cases[i].r, cases[i].w);
        assert_int_equal(may(u, cases[i].q, AUTH_READ | AUTH_WRITE), cases[i].r && cases[i].w);
    }
    auth_free(t);
}

static void test_a_star_pattern_is_every_queue(void **state)
{
    (void)state;
    struct auth_table *t = parse_ok("reader:pw:*:r\n");
    const struct auth_user *u = user(t, "reader");
    assert_int_equal(u->nrules, 1); /* still a user with patterns: no server-wide commands */
    assert_true(may(u, "a", AUTH_READ));
    assert_true(may(u, "a+b", AUTH_READ));
    assert_false(may(u, "a", AUTH_WRITE));
    char longest[AUTH_NAME_MAX + 2];
    memset(longest, 'q', sizeof(longest));
    assert_true(auth_may(u, longest, AUTH_NAME_MAX, AUTH_READ));
    assert_false(auth_may(u, longest, AUTH_NAME_MAX + 1, AUTH_READ)); /* no such queue name */
    auth_free(t);
}

/* ---- the file ---- */

static void test_the_file_is_read_and_its_errors_name_it(void **state)
{
    (void)state;
    char dir[PATH_MAX], path[PATH_MAX], why[512];
    struct auth_table *t;
    tu_mkdtemp(dir);
    tu_join(path, dir, "users");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("a:pw\nb:pw:q*:r\n", f);
    fclose(f);
    assert_int_equal(auth_file_load(path, &t, why, sizeof(why)), 0);
    assert_int_equal(auth_count(t), 2);
    auth_free(t);
    f = fopen(path, "w");
    fputs("a:pw\nb\n", f);
    fclose(f);
    assert_int_equal(auth_file_load(path, &t, why, sizeof(why)), -EINVAL);
    assert_null(t);
    char want[PATH_MAX + 8];
    tu_fmt(want, sizeof(want), "%s:2: ", path);
    assert_memory_equal(why, want, strlen(want));
    tu_join(path, dir, "missing");
    assert_int_equal(auth_file_load(path, &t, why, sizeof(why)), -ENOENT);
    assert_non_null(strstr(why, "cannot read the auth file"));
    tu_rmtree(dir);
}

/* A folder given as the auth file is named as such, on Windows too (where
 * the C runtime's open of a folder fails with EACCES). */
static void test_a_folder_is_not_a_regular_file(void **state)
{
    (void)state;
    char dir[PATH_MAX], why[512];
    struct auth_table *t;
    tu_mkdtemp(dir);
    assert_int_equal(auth_file_load(dir, &t, why, sizeof(why)), -EINVAL);
    assert_null(t);
    assert_non_null(strstr(why, "not a regular file"));
    tu_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_users_with_and_without_queue_patterns),
        cmocka_unit_test(test_crlf_lines_and_a_last_line_without_newline),
        cmocka_unit_test(test_an_empty_file_has_no_users),
        cmocka_unit_test(test_malformed_lines_are_named),
        cmocka_unit_test(test_a_nul_byte_is_refused),
        cmocka_unit_test(test_several_lines_of_one_user_must_agree),
        cmocka_unit_test(test_many_users),
        cmocka_unit_test(test_token_format),
        cmocka_unit_test(test_login_wants_the_exact_password),
        cmocka_unit_test(test_constant_time_compare_is_an_exact_compare),
        cmocka_unit_test(test_same_password_across_tables),
        cmocka_unit_test(test_a_user_without_patterns_may_do_anything),
        cmocka_unit_test(test_patterns_grant_read_write_or_both),
        cmocka_unit_test(test_a_star_pattern_is_every_queue),
        cmocka_unit_test(test_the_file_is_read_and_its_errors_name_it),
        cmocka_unit_test(test_a_folder_is_not_a_regular_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
