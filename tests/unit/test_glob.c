/* Unit tests for util/glob.c: shell patterns as fnmatch(3) matches them
 * without flags, by examples and against the C library's fnmatch on many
 * random patterns and names (the platforms without fnmatch get the same
 * answers as Linux). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "util/glob.h"

static void examples(void **state)
{
    (void)state;
    static const struct {
        const char *pattern, *name;
        int match;
    } cases[] = {
        {"*", "", 1},
        {"*", "anything", 1},
        {"jobs*", "jobs", 1},
        {"jobs*", "jobs_errors", 1},
        {"jobs*", "job", 0},
        {"*_errors", "q_errors", 1},
        {"*_errors", "q_error", 0},
        {"?", "a", 1},
        {"?", "", 0},
        {"a?c", "abc", 1},
        {"a?c", "ac", 0},
        {"[abc]x", "bx", 1},
        {"[abc]x", "dx", 0},
        {"[a-c]", "b", 1},
        {"[a-c]", "d", 0},
        {"[!a-c]", "d", 1},
        {"[!a-c]", "a", 0},
        {"[^a]", "b", 1},
        {"[]]", "]", 1},
        {"[]a]", "a", 1},
        {"[a-]", "-", 1},
        {"[", "[", 1},
        {"[ab", "[ab", 1},
        {"\\*", "*", 1},
        {"\\*", "a", 0},
        {"a\\?b", "a?b", 1},
        {"a\\?b", "axb", 0},
        {"*a*b*c*", "xaybzc", 1},
        {"*a*b*c*", "xaybz", 0},
        {"**x", "aax", 1},
        {"a*b*", "ab", 1},
        {"", "", 1},
        {"", "a", 0},
        {"orders.*", "orders.eu", 1},
        {"orders.*", "orders", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = glob_match(cases[i].pattern, cases[i].name);
        if (got != cases[i].match)
            fprintf(stderr, "pattern '%s' name '%s': got %d\n", cases[i].pattern, cases[i].name, got);
        assert_int_equal(got, cases[i].match);
    }
}

/* A small alphabet, so random patterns and names often meet. */
static const char PAT[] = "ab*?[]!-\\c^";
static const char NAM[] = "abc-]![\\*?";

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void same_as_fnmatch(void **state)
{
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15u;
    char p[12], n[12];
    for (int i = 0; i < 300000; i++) {
        size_t pl = rnd(&seed) % 9, nl = rnd(&seed) % 9;
        for (size_t k = 0; k < pl; k++)
            p[k] = PAT[rnd(&seed) % (sizeof(PAT) - 1)];
        for (size_t k = 0; k < nl; k++)
            n[k] = NAM[rnd(&seed) % (sizeof(NAM) - 1)];
        p[pl] = n[nl] = '\0';
        int want = fnmatch(p, n, 0) == 0, got = glob_match(p, n);
        if (want != got)
            fprintf(stderr, "pattern '%s' name '%s': fnmatch %d, glob_match %d\n", p, n, want, got);
        assert_int_equal(got, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(examples),
        cmocka_unit_test(same_as_fnmatch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
