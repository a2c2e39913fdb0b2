/* util/glob.h: shell patterns, as fnmatch(3) with no flags matches them,
 * on every platform (Windows' C library has no fnmatch): `*` any run of
 * bytes, `?` one byte, `[...]` one byte of a set (ranges `a-z`, negation
 * `[!...]` or `[^...]`, `]` first in the set stands for itself), `\x` the
 * byte x itself. Bytes, not characters: a multi-byte UTF-8 character is
 * several bytes for `?`; a `\` at the very end matches nothing (as glibc).
 * Queue-name patterns of config sections, of auth
 * rules and of /metrics?queue= use it. */
#ifndef DARNER_UTIL_GLOB_H
#define DARNER_UTIL_GLOB_H

#include <stddef.h>

/* Whether the NUL-terminated name matches the NUL-terminated pattern. A
 * malformed set (`[` with no closing `]`) matches a literal `[`, as
 * fnmatch does. */
int glob_match(const char *pattern, const char *name);

#endif
