/* log.c: leveled log lines. */
#include "log.h"

#include "proc.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <uv.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int log_level_parse(const char *s, enum log_level *out)
{
    for (int i = 0; i <= LOG_DEBUG; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

void log_msg(const struct log *lg, enum log_level level, const char *fmt, ...)
{
    if (!lg || !lg->out || level > lg->level)
        return;
    uv_timeval64_t tv;
    struct tm tm;
    char when[32];
    uv_gettimeofday(&tv);
    proc_gmtime((time_t)tv.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(lg->out, "%s.%03dZ %s %s\n", when, (int)(tv.tv_usec / 1000), level_names[level], line);
    fflush(lg->out);
}
