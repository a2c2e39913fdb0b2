/* log.h: leveled log lines to a stream: stderr by default, or a file the
 * lines are appended to (--log-file), which can be opened again when it is
 * rotated. */
#ifndef DARNER_LOG_H
#define DARNER_LOG_H

#include "util/compat.h"
#include <stdarg.h>
#include <stdio.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

struct log {
    enum log_level level;
    FILE *out; /* stderr, or a file log_open opened (log_close closes it) */
};

/* Parses "error", "warn", "info" or "debug". Returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

/* Points lg at path, opened for appending and created if missing; NULL or
 * "" means stderr. Returns 0 or -errno (lg is then a stderr log, so the
 * caller can still say why). */
int log_open(struct log *lg, enum log_level level, const char *path);
/* Opens path again as lg's file (after a log rotation renamed it); on
 * failure the old stream stays. Returns 0 or -errno. */
int log_reopen(struct log *lg, const char *path);
/* Whether lg writes to a file of its own (not stderr). */
int log_to_file(const struct log *lg);
/* Closes lg's file, if it has one; lg is then a stderr log. */
void log_close(struct log *lg);

/* Writes one line "<time> <level> <message>" if level is enabled. A NULL log
 * is silent, so library code can run without one (tests). */
void log_msg(const struct log *lg, enum log_level level, const char *fmt, ...) PRINTF_LIKE(3, 4);
void log_vmsg(const struct log *lg, enum log_level level, const char *fmt, va_list ap) PRINTF_LIKE(3, 0);

#define log_error(lg, ...) log_msg((lg), LOG_ERROR, __VA_ARGS__)
#define log_warn(lg, ...) log_msg((lg), LOG_WARN, __VA_ARGS__)
#define log_info(lg, ...) log_msg((lg), LOG_INFO, __VA_ARGS__)
#define log_debug(lg, ...) log_msg((lg), LOG_DEBUG, __VA_ARGS__)

#endif
