/* Unit tests for util/errstr.c: one text function for the two kinds of
 * error codes darner's functions return (a negative errno, a libuv code),
 * which are the same numbers on Unix and different ones on Windows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <uv.h>

#include "util/errstr.h"

static void negative_errno_is_the_c_library_text(void **state)
{
    (void)state;
    assert_string_equal(errstr(-ENOENT), strerror(ENOENT));
    assert_string_equal(errstr(-ENOSPC), strerror(ENOSPC));
    assert_string_equal(errstr(-EACCES), strerror(EACCES));
}

/* The errno values msvcrt has no text for get glibc's, on every platform. */
static void values_without_a_text_everywhere_get_ours(void **state)
{
    (void)state;
    assert_string_equal(errstr(-ENODATA), "No data available");
    assert_string_equal(errstr(-EOPNOTSUPP), "Operation not supported");
    assert_string_equal(errstr(-EOVERFLOW), "Value too large for defined data type");
    assert_string_equal(errstr(-ETIMEDOUT), "Connection timed out");
    assert_string_equal(errstr(-ECONNRESET), "Connection reset by peer");
}

/* libuv's codes: its own text for those with no errno anywhere; a known
 * text (libuv's on Windows, the C library's where they are errno values)
 * for the rest. */
static void libuv_codes_are_named(void **state)
{
    (void)state;
    assert_string_equal(errstr(UV_EOF), uv_strerror(UV_EOF));
    assert_string_equal(errstr(UV_EAI_NONAME), uv_strerror(UV_EAI_NONAME));
    assert_null(strstr(errstr(UV_EADDRINUSE), "nknown"));
    assert_null(strstr(errstr(UV_ECONNRESET), "nknown"));
    assert_null(strstr(errstr(UV_EMFILE), "nknown"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(negative_errno_is_the_c_library_text),
        cmocka_unit_test(values_without_a_text_everywhere_get_ours),
        cmocka_unit_test(libuv_codes_are_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
