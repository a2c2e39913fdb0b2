/* util/glob.c: shell patterns (glob.h). Iterative, with one saved position
 * for the last `*`: linear in practice and never recursive, whatever the
 * pattern. */
#include "util/glob.h"

#include <stddef.h>

/* Matches byte c against the set whose text starts after its `[` at p.
 * Returns 1 or 0 and sets *end after its `]`, or -1 when the set has no
 * `]` (the `[` is then an ordinary byte). */
static int set_match(const char *p, unsigned char c, const char **end)
{
    int neg = *p == '!' || *p == '^';
    if (neg)
        p++;
    int hit = 0, first = 1;
    while (*p && (*p != ']' || first)) {
        unsigned char lo = (unsigned char)*p, hi;
        if (lo == '\\' && p[1])
            lo = (unsigned char)*++p;
        p++;
        hi = lo;
        if (*p == '-' && p[1] && p[1] != ']') {
            p++; /* at the range's end */
            hi = (unsigned char)*p;
            if (hi == '\\' && p[1])
                hi = (unsigned char)*++p;
            p++;
        }
        if (lo <= c && c <= hi)
            hit = 1;
        first = 0;
    }
    if (*p != ']')
        return -1;
    *end = p + 1;
    return hit != neg;
}

int glob_match(const char *pattern, const char *name)
{
    const char *p = pattern, *n = name;
    const char *star_p = NULL, *star_n = NULL; /* after the last '*', and where its run stands */
    for (;;) {
        if (*p == '*') {
            while (*p == '*')
                p++;
            star_p = p;
            star_n = n;
            continue;
        }
        if (*n == '\0') {
            if (*p == '\0')
                return 1;
        } else {
            const char *next = NULL;
            int ok = 0;
            if (*p == '?') {
                ok = 1;
                next = p + 1;
            } else if (*p == '[') {
                int m = set_match(p + 1, (unsigned char)*n, &next);
                if (m < 0) { /* no closing ']': a literal '[' */
                    ok = *n == '[';
                    next = p + 1;
                } else {
                    ok = m;
                }
            } else if (*p == '\\') { /* a trailing '\\' escapes nothing: it never matches (as glibc) */
                ok = p[1] && p[1] == *n;
                next = p + 2;
            } else if (*p) {
                ok = *p == *n;
                next = p + 1;
            }
            if (ok) {
                p = next;
                n++;
                continue;
            }
        }
        /* a mismatch: the last '*' takes one byte more, if there is one */
        if (!star_p || *star_n == '\0')
            return 0;
        p = star_p;
        n = ++star_n;
    }
}
