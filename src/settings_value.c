/* settings_value.c: a setting's value from its text and back (sizes with
 * units, times, booleans, names, limits), for the table in settings.c. */
#include "settings.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/parse.h"

#define SEC 1000ull
#define UNLIMITED UINT64_MAX

/* A decimal number and what follows it. */
static int leading_number(const char *text, uint64_t *v, const char **rest)
{
    char *end;
    if (!text || *text < '0' || *text > '9')
        return -EINVAL;
    errno = 0;
    unsigned long long n = strtoull(text, &end, 10);
    if (errno)
        return -EINVAL;
    *v = n;
    *rest = end;
    return 0;
}

static int mul(uint64_t v, uint64_t m, uint64_t *out)
{
    if (m && v > UINT64_MAX / m)
        return -EINVAL;
    *out = v * m;
    return 0;
}

int settings_parse_size(const char *text, uint64_t *bytes)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {{"", 1},
                 {"b", 1},
                 {"k", 1ull << 10},
                 {"kb", 1ull << 10},
                 {"kib", 1ull << 10},
                 {"m", 1ull << 20},
                 {"mb", 1ull << 20},
                 {"mib", 1ull << 20},
                 {"g", 1ull << 30},
                 {"gb", 1ull << 30},
                 {"gib", 1ull << 30},
                 {"t", 1ull << 40},
                 {"tb", 1ull << 40},
                 {"tib", 1ull << 40}};
    uint64_t v;
    const char *rest;
    if (leading_number(text, &v, &rest) < 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcasecmp(rest, units[i].suffix) == 0)
            return mul(v, units[i].mult, bytes);
    return -EINVAL;
}

int settings_parse_time(const char *text, uint64_t unit_ms, uint64_t *ms)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {{"ms", 1}, {"s", SEC}, {"m", 60 * SEC}, {"min", 60 * SEC}, {"h", 3600 * SEC}, {"d", 86400 * SEC}};
    uint64_t v;
    const char *rest;
    if (leading_number(text, &v, &rest) < 0)
        return -EINVAL;
    if (*rest == '\0')
        return mul(v, unit_ms ? unit_ms : 1, ms);
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(rest, units[i].suffix) == 0)
            return mul(v, units[i].mult, ms);
    return -EINVAL;
}

static int parse_bool(const char *text, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -EINVAL;
}

static int in_range(const struct setting *s, uint64_t v, const char **why)
{
    if (v == UNLIMITED && s->max == UNLIMITED)
        return 0;
    if (v < s->min || v > s->max) {
        *why = "out of range";
        return -EINVAL;
    }
    return 0;
}

int setting_parse(const struct setting *s, const char *text, void *dst, const char **why)
{
    char *p = (char *)dst + s->off;
    uint64_t v = 0;
    int rc = 0;
    *why = NULL;
    if (!text)
        text = "";
    int unlimited = s->max == UNLIMITED && strcasecmp(text, "unlimited") == 0;
    switch (s->type) {
    case ST_UINT:
    case ST_PORT: {
        const char *rest;
        if (unlimited)
            v = UNLIMITED;
        else if (leading_number(text, &v, &rest) < 0 || *rest) {
            *why = s->max == UNLIMITED ? "wants a whole number or unlimited" : "wants a whole number";
            return -EINVAL;
        }
        if ((rc = in_range(s, v, why)) < 0)
            return rc;
        memcpy(p, &v, sizeof(v));
        return 0;
    }
    case ST_SIZE:
        if (unlimited)
            v = UNLIMITED;
        else if (settings_parse_size(text, &v) < 0) {
            *why = "wants a size such as 4096, 64KiB, 128MiB or 1GiB";
            return -EINVAL;
        }
        if ((rc = in_range(s, v, why)) < 0)
            return rc;
        memcpy(p, &v, sizeof(v));
        return 0;
    case ST_TIME:
        if (settings_parse_time(text, s->unit_ms, &v) < 0) {
            *why = s->unit_ms == SEC ? "wants a time such as 30s, 250ms or 5m (a bare number is seconds)"
                                     : "wants a time such as 30s, 250ms or 5m (a bare number is milliseconds)";
            return -EINVAL;
        }
        if ((rc = in_range(s, v, why)) < 0)
            return rc;
        memcpy(p, &v, sizeof(v));
        return 0;
    case ST_BOOL: {
        int b;
        if (parse_bool(text, &b) < 0) {
            *why = "wants true or false";
            return -EINVAL;
        }
        memcpy(p, &b, sizeof(b));
        return 0;
    }
    case ST_STRING:
        if (strlen(text) >= s->max) {
            *why = "is too long";
            return -EINVAL;
        }
        memcpy(p, text, strlen(text) + 1);
        return 0;
    case ST_QUEUE: {
        struct proto_key k;
        const char *e;
        size_t n = strlen(text);
        if (n && (proto_parse_key(text, n, 0, &k, &e) < 0 || k.opts || k.name.len != n)) {
            *why = "wants a queue name";
            return -EINVAL;
        }
        memcpy(p, text, n + 1);
        return 0;
    }
    case ST_ENUM:
        for (int i = 0; s->names[i]; i++) {
            if (strcasecmp(text, s->names[i]) == 0) {
                memcpy(p, &i, sizeof(i));
                return 0;
            }
        }
        *why = "is not one of the accepted words";
        return -EINVAL;
    case ST_BACKOFF: {
        struct backoff b = {0};
        char first[64];
        const char *comma = strchr(text, ',');
        size_t n = comma ? (size_t)(comma - text) : strlen(text);
        if (n >= sizeof(first)) {
            *why = "wants MIN or MIN,MAX: times such as 1s or 500ms,1h";
            return -EINVAL;
        }
        memcpy(first, text, n);
        first[n] = '\0';
        if (settings_parse_time(first, s->unit_ms, &b.min_ms) < 0 ||
            (comma && settings_parse_time(comma + 1, s->unit_ms, &b.max_ms) < 0)) {
            *why = "wants MIN or MIN,MAX: times such as 1s or 500ms,1h (a bare number is milliseconds)";
            return -EINVAL;
        }
        if (!comma)
            b.max_ms = b.min_ms; /* no MAX: the same wait every time */
        if (b.min_ms > s->max || b.max_ms > s->max || b.max_ms < b.min_ms) {
            *why = "wants MIN <= MAX, each at most 30 days";
            return -EINVAL;
        }
        memcpy(p, &b, sizeof(b));
        return 0;
    }
    case ST_FSYNC: {
        struct fsync_conf f = {0};
        if (s->scope == SCOPE_QUEUE && strcasecmp(text, "server") == 0) {
            f.policy = FSYNC_SERVER;
        } else if (strcasecmp(text, "always") == 0) {
            f.policy = FSYNC_ALWAYS;
        } else if (strcasecmp(text, "never") == 0) {
            f.policy = FSYNC_NEVER;
        } else if (settings_parse_time(text, s->unit_ms, &f.ms) == 0 && f.ms >= s->min && f.ms <= s->max) {
            f.policy = FSYNC_PERIODIC;
        } else {
            *why = s->scope == SCOPE_QUEUE ? "wants server, always, never or a time between fsyncs (1ms to 1d; a bare "
                                             "number is milliseconds)"
                                           : "wants always, never or a time between fsyncs (1ms to 1d; a bare number "
                                             "is milliseconds)";
            return -EINVAL;
        }
        memcpy(p, &f, sizeof(f));
        return 0;
    }
    }
    *why = "has an unknown type";
    return -EINVAL;
}

/* A time in the largest unit that divides it. */
static void format_time(uint64_t ms, char *out, size_t cap)
{
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {{"d", 86400 * SEC}, {"h", 3600 * SEC}, {"m", 60 * SEC}, {"s", SEC}};
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ms && ms % units[i].mult == 0) {
            snprintf(out, cap, "%" PRIu64 "%s", ms / units[i].mult, units[i].suffix);
            return;
        }
    }
    snprintf(out, cap, "%" PRIu64 "ms", ms);
}

static void format_size(uint64_t v, char *out, size_t cap)
{
    static const char *const suffix[] = {"TiB", "GiB", "MiB", "KiB"};
    for (int i = 0; i < 4; i++) {
        uint64_t m = 1ull << (10 * (4 - i));
        if (v && v % m == 0) {
            snprintf(out, cap, "%" PRIu64 "%s", v / m, suffix[i]);
            return;
        }
    }
    snprintf(out, cap, "%" PRIu64, v);
}

void setting_format(const struct setting *s, const void *src, char *out, size_t cap)
{
    const char *p = (const char *)src + s->off;
    uint64_t v;
    int i;
    switch (s->type) {
    case ST_UINT:
    case ST_PORT:
    case ST_SIZE:
    case ST_TIME:
        memcpy(&v, p, sizeof(v));
        if (v == UNLIMITED && s->max == UNLIMITED)
            snprintf(out, cap, "unlimited");
        else if (s->type == ST_SIZE)
            format_size(v, out, cap);
        else if (s->type == ST_TIME)
            v ? format_time(v, out, cap) : (void)snprintf(out, cap, "0");
        else
            snprintf(out, cap, "%" PRIu64, v);
        return;
    case ST_BOOL:
        memcpy(&i, p, sizeof(i));
        snprintf(out, cap, "%s", i ? "true" : "false");
        return;
    case ST_STRING:
    case ST_QUEUE:
        snprintf(out, cap, "%s", p);
        return;
    case ST_ENUM:
        memcpy(&i, p, sizeof(i));
        snprintf(out, cap, "%s", s->names[i]);
        return;
    case ST_BACKOFF: {
        struct backoff b;
        char a[32], c[32];
        memcpy(&b, p, sizeof(b));
        if (b.min_ms)
            format_time(b.min_ms, a, sizeof(a));
        else
            snprintf(a, sizeof(a), "0");
        if (b.max_ms)
            format_time(b.max_ms, c, sizeof(c));
        else
            snprintf(c, sizeof(c), "0");
        if (b.max_ms == b.min_ms)
            snprintf(out, cap, "%s", a);
        else
            snprintf(out, cap, "%s,%s", a, c);
        return;
    }
    case ST_FSYNC: {
        struct fsync_conf f;
        memcpy(&f, p, sizeof(f));
        if (f.policy == FSYNC_PERIODIC)
            format_time(f.ms, out, cap);
        else
            snprintf(out, cap, "%s",
                     f.policy == FSYNC_ALWAYS  ? "always"
                     : f.policy == FSYNC_NEVER ? "never"
                                               : "server");
        return;
    }
    }
    snprintf(out, cap, "?");
}
