/* util/utf16.h: UTF-8 to and from UTF-16, Windows' own encoding of names
 * and command lines (util/utf16_win.c; Windows only). */
#ifndef DARNER_UTIL_UTF16_H
#define DARNER_UTIL_UTF16_H

#include <wchar.h>

/* A new UTF-16 copy of s (the caller frees it), or NULL: no memory, or s is
 * not UTF-8. */
wchar_t *utf8_to_utf16(const char *s);
/* A new UTF-8 copy of w (the caller frees it), or NULL. */
char *utf16_to_utf8(const wchar_t *w);

#endif
