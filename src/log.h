/* log.h: leveled log lines to a stream (stderr by default). */
#ifndef DARNER_LOG_H
#define DARNER_LOG_H

#include "util/compat.h"
#include <stdio.h>

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

struct log {
    enum log_level level;
    FILE *out;
};

/* Parses "error", "warn", "info" or "debug". Returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *out);

/* Writes one line "<time> <level> <message>" if level is enabled. A NULL log
 * is silent, so library code can run without one (tests). */
void log_msg(const struct log *lg, enum log_level level, const char *fmt, ...) PRINTF_LIKE(3, 4);

#define log_error(lg, ...) log_msg((lg), LOG_ERROR, __VA_ARGS__)
#define log_warn(lg, ...) log_msg((lg), LOG_WARN, __VA_ARGS__)
#define log_info(lg, ...) log_msg((lg), LOG_INFO, __VA_ARGS__)
#define log_debug(lg, ...) log_msg((lg), LOG_DEBUG, __VA_ARGS__)

#endif
