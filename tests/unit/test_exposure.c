/* Unit tests for config.c's refusal to listen beyond loopback without an
 * auth file (--auth-file) or --allow-unauthenticated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "conffile.h"
#include "config.h"
#include "testutil.h"

static enum config_result parse_args(const char **args, char *err, size_t cap)
{
    char *argv[16];
    int argc = 0;
    argv[argc++] = (char *)"darner";
    for (; *args; args++)
        argv[argc++] = (char *)*args;
    argv[argc] = NULL;
    struct config c;
    struct conffile *file;
    config_defaults(&c);
    /* what config_parse prints goes to files in a temporary folder; its
     * errors come back in err */
    char tmp[PATH_MAX], out_path[PATH_MAX], err_path[PATH_MAX];
    tu_mkdtemp(tmp);
    tu_join(out_path, tmp, "out");
    tu_join(err_path, tmp, "err");
    FILE *out = fopen(out_path, "w"), *e = fopen(err_path, "w");
    assert_non_null(out);
    assert_non_null(e);
    enum config_result r = config_parse(&c, &file, argc, argv, out, e);
    fclose(out);
    fclose(e);
    conffile_free(file);
    tu_read_file(err_path, err, cap);
    tu_rmtree(tmp);
    return r;
}

static void test_listening_beyond_loopback_needs_auth_or_consent(void **state)
{
    (void)state;
    char err[1024];
    const char *loopback[] = {"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "not-an-address"};
    for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++) {
        const char *args[] = {"--listen", loopback[i], NULL};
        memset(err, 0, sizeof(err));
        if (parse_args(args, err, sizeof(err)) != CONFIG_RUN)
            fail_msg("%s: %s", loopback[i], err);
    }
    const char *open[] = {"0.0.0.0", "10.1.2.3", "128.0.0.1", "::", "2001:db8::1", "::ffff:10.0.0.1"};
    for (size_t i = 0; i < sizeof(open) / sizeof(open[0]); i++) {
        const char *refused[] = {"--listen", open[i], NULL};
        memset(err, 0, sizeof(err));
        assert_int_equal(parse_args(refused, err, sizeof(err)), CONFIG_EXIT_ERROR);
        assert_non_null(strstr(err, "refusing to listen on"));
        assert_non_null(strstr(err, "--auth-file"));
        assert_non_null(strstr(err, "--allow-unauthenticated"));
        const char *allowed[] = {"--listen", open[i], "--allow-unauthenticated", NULL};
        assert_int_equal(parse_args(allowed, err, sizeof(err)), CONFIG_RUN);
        const char *with_auth[] = {"--listen", open[i], "-Y", "/some/users", NULL};
        assert_int_equal(parse_args(with_auth, err, sizeof(err)), CONFIG_RUN);
        const char *long_flag[] = {"--auth-file=/some/users", "--listen", open[i], NULL};
        assert_int_equal(parse_args(long_flag, err, sizeof(err)), CONFIG_RUN);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listening_beyond_loopback_needs_auth_or_consent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
