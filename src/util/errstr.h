/* util/errstr.h: the text of an error code as darner's functions return
 * them: a negative errno, or a libuv error code (on Windows libuv's codes
 * are not errno values, so strerror cannot be used on both). */
#ifndef DARNER_UTIL_ERRSTR_H
#define DARNER_UTIL_ERRSTR_H

/* rc < 0. The text is static (or the C runtime's strerror buffer). */
const char *errstr(int rc);

#endif
