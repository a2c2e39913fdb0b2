/* Unit tests for client/cli/words.c: how `darner-cli shell` splits a line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void expect(const char *line, int n, const char *const *want)
{
    char **v;
    assert_int_equal(split_words(line, &v), n);
    for (int i = 0; i < n; i++)
        assert_string_equal(v[i], want[i]);
    assert_null(v[n]);
    free(v);
}

static void plain_words(void **state)
{
    (void)state;
    expect("put q hello\n", 3, (const char *[]){"put", "q", "hello"});
    expect("  get\t--open   q  ", 3, (const char *[]){"get", "--open", "q"});
    expect("", 0, NULL);
    expect(" \t\r\n", 0, NULL);
}

static void quotes_and_backslashes(void **state)
{
    (void)state;
    expect("put q 'a b'", 3, (const char *[]){"put", "q", "a b"});
    expect("put q \"say \\\"hi\\\"\"", 3, (const char *[]){"put", "q", "say \"hi\""});
    expect("put q a\\ b", 3, (const char *[]){"put", "q", "a b"});
    expect("put q ''", 3, (const char *[]){"put", "q", ""});
    expect("x 'it'\"s\"", 2, (const char *[]){"x", "its"});
    expect("x '\\n'", 2, (const char *[]){"x", "\\n"}); /* no escapes in single quotes */
    expect("x \"a\\b\"", 2, (const char *[]){"x", "a\\b"});
}

static void unclosed_quotes_are_errors(void **state)
{
    (void)state;
    char **v = (char **)1;
    assert_int_equal(split_words("put q 'abc", &v), -EINVAL);
    assert_null(v);
    assert_int_equal(split_words("put q \"abc", &v), -EINVAL);
}

static void many_short_words_fit(void **state)
{
    (void)state;
    char line[2001];
    for (int i = 0; i < 1000; i++) {
        line[2 * i] = 'w';
        line[2 * i + 1] = ' ';
    }
    line[2000] = '\0';
    char **v;
    assert_int_equal(split_words(line, &v), 1000);
    free(v);
    memset(line, '\'', 2000); /* 1000 empty words glued into one */
    assert_int_equal(split_words(line, &v), 1);
    assert_string_equal(v[0], "");
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_words),
        cmocka_unit_test(quotes_and_backslashes),
        cmocka_unit_test(unclosed_quotes_are_errors),
        cmocka_unit_test(many_short_words_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
