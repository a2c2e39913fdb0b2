/* log.c: leveled log lines, to stderr or appended to a file. */
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

/* The file is the log's until log_close; "a": every line goes to the end,
 * also after another process (logrotate's copytruncate) shortened it. */
int log_open(struct log *lg, enum log_level level, const char *path)
{
    *lg = (struct log){.level = level, .out = stderr};
    if (!path || !*path)
        return 0;
    FILE *f = proc_fopen_append(path);
    if (!f)
        return errno ? -errno : -EIO;
    lg->out = f;
    return 0;
}

/* The new stream replaces the old (closed) only once it is open. */
int log_reopen(struct log *lg, const char *path)
{
    FILE *f = proc_fopen_append(path);
    if (!f)
        return errno ? -errno : -EIO;
    if (log_to_file(lg))
        fclose(lg->out);
    lg->out = f;
    return 0;
}

int log_to_file(const struct log *lg) { return lg->out && lg->out != stderr; }

void log_close(struct log *lg)
{
    if (log_to_file(lg))
        fclose(lg->out);
    lg->out = stderr;
}

void log_vmsg(const struct log *lg, enum log_level level, const char *fmt, va_list ap)
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
    vsnprintf(line, sizeof(line), fmt, ap);
    fprintf(lg->out, "%s.%03dZ %s %s\n", when, (int)(tv.tv_usec / 1000), level_names[level], line);
    fflush(lg->out);
}

void log_msg(const struct log *lg, enum log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(lg, level, fmt, ap);
    va_end(ap);
}
