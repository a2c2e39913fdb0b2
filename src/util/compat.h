/* util/compat.h: the few POSIX names Windows' C runtime spells otherwise
 * (for the code that opens files outside the journal's I/O table: the auth
 * file, the tools) and the printf checking attribute. File-level choices,
 * so no function body branches. */
#ifndef DARNER_UTIL_COMPAT_H
#define DARNER_UTIL_COMPAT_H

#include <fcntl.h>

#if defined(_WIN32)
/* not inherited by child processes, and bytes as they are (no CRLF
 * translation) */
#define O_CLOEXEC_BINARY (_O_NOINHERIT | _O_BINARY)
#else
#define O_CLOEXEC_BINARY O_CLOEXEC
#endif

/* printf-style checking of a function's format (argument f) and its
 * arguments (from a): on Windows against the C99 printf that
 * __USE_MINGW_ANSI_STDIO selects (%zu, %llu), not msvcrt's. */
#if defined(_WIN32)
#define PRINTF_LIKE(f, a) __attribute__((format(gnu_printf, f, a)))
#else
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#endif

#endif
