/* Unit tests for darner-cli's output helpers (client/cli/out.c) and the
 * length prefix of drain/load (client/cli/transfer.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "transfer.h"

/* Runs fn into a memory stream; returns the text (caller frees). */
static char *capture(void (*fn)(FILE *, const void *, size_t), const void *p, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    fn(f, p, n);
    fclose(f);
    return buf;
}

static void str_fn(FILE *f, const void *p, size_t n) { json_str(f, p, n); }
static void b64_fn(FILE *f, const void *p, size_t n) { json_base64(f, p, n); }

static void expect(void (*fn)(FILE *, const void *, size_t), const char *in, size_t n, const char *want)
{
    char *got = capture(fn, in, n);
    assert_string_equal(got, want);
    free(got);
}

static void utf8_validation(void **state)
{
    (void)state;
    assert_true(utf8_valid((const unsigned char *)"plain", 5));
    assert_true(utf8_valid((const unsigned char *)"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
    assert_false(utf8_valid((const unsigned char *)"\xff", 1));
    assert_false(utf8_valid((const unsigned char *)"\xc3", 1));             /* cut short */
    assert_false(utf8_valid((const unsigned char *)"\xc0\xaf", 2));         /* overlong '/' */
    assert_false(utf8_valid((const unsigned char *)"\xed\xa0\x80", 3));     /* a surrogate */
    assert_false(utf8_valid((const unsigned char *)"\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_true(utf8_valid((const unsigned char *)"", 0));
}

static void json_strings_are_escaped(void **state)
{
    (void)state;
    expect(str_fn, "a\"b\\c", 5, "\"a\\\"b\\\\c\"");
    expect(str_fn, "\n\r\t\x01\x7f", 5, "\"\\n\\r\\t\\u0001\\u007f\"");
    expect(str_fn, "\xc3\xa9", 2, "\"\xc3\xa9\"");
    expect(str_fn, "a\0b", 3, "\"a\\u0000b\"");
    /* Not UTF-8: each high byte as a code point of its own. */
    expect(str_fn,
           "\xff"
           "a",
           2, "\"\\u00ffa\"");
}

static void base64(void **state)
{
    (void)state;
    expect(b64_fn, "", 0, "\"\"");
    expect(b64_fn, "f", 1, "\"Zg==\"");
    expect(b64_fn, "fo", 2, "\"Zm8=\"");
    expect(b64_fn, "foo", 3, "\"Zm9v\"");
    expect(b64_fn, "foobar", 6, "\"Zm9vYmFy\"");
    expect(b64_fn, "\xff\xfe\x00", 3, "\"//4A\"");
}

static void human_sizes(void **state)
{
    (void)state;
    char b[32];
    assert_string_equal(human_bytes(0, b, sizeof(b)), "0 B");
    assert_string_equal(human_bytes(1023, b, sizeof(b)), "1023 B");
    assert_string_equal(human_bytes(1024, b, sizeof(b)), "1.0 KiB");
    assert_string_equal(human_bytes(1536 * 1024, b, sizeof(b)), "1.5 MiB");
    assert_string_equal(human_bytes(1ull << 30, b, sizeof(b)), "1.0 GiB");
}

static void tables_align_their_columns(void **state)
{
    (void)state;
    struct table t;
    table_init(&t, 3, 0x2); /* the middle column holds numbers */
    assert_int_equal(table_row(&t, (const char *[]){"QUEUE", "ITEMS", "NOTE"}), 0);
    assert_int_equal(table_row(&t, (const char *[]){"a", "12345", "x"}), 0);
    assert_int_equal(table_row(&t, (const char *[]){"longer", "7", NULL}), 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    table_print(&t, f);
    fclose(f);
    assert_string_equal(buf, "QUEUE   ITEMS  NOTE\n"
                             "a       12345  x\n"
                             "longer      7  \n");
    free(buf);
    table_free(&t);
}

static void length_prefix_is_big_endian(void **state)
{
    (void)state;
    unsigned char p[4];
    put_be32(p, 0x01020304u);
    assert_memory_equal(p, "\x01\x02\x03\x04", 4);
    assert_int_equal(get_be32(p), 0x01020304u);
    put_be32(p, UINT32_MAX);
    assert_int_equal(get_be32(p), UINT32_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(utf8_validation),
        cmocka_unit_test(json_strings_are_escaped),
        cmocka_unit_test(base64),
        cmocka_unit_test(human_sizes),
        cmocka_unit_test(tables_align_their_columns),
        cmocka_unit_test(length_prefix_is_big_endian),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
