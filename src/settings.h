/* settings.h: every setting, declared once in a typed table (name, type,
 * unit, default, scope, reloadable, help). The table drives the
 * command-line flags, the config file, --help, dump_config and reload.
 *
 * Pure: parsing and formatting values, no I/O. */
#ifndef DARNER_SETTINGS_H
#define DARNER_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum set_type {
    ST_UINT,    /* a count; "unlimited" is UINT64_MAX */
    ST_SIZE,    /* bytes: 4096, 64K, 64KiB, 128MiB, 1G ("unlimited" where allowed) */
    ST_TIME,    /* milliseconds: 250ms, 30s, 5m, 1h, 2d; a bare number is in unit_ms */
    ST_BOOL,    /* true/false, yes/no, on/off, 1/0 */
    ST_STRING,  /* kept as given */
    ST_QUEUE,   /* a queue name, or empty for none */
    ST_ENUM,    /* one of names[] */
    ST_FSYNC,   /* always | never | a time between fsyncs */
    ST_BACKOFF, /* MIN[,MAX]: a time, doubling from MIN up to MAX (struct backoff) */
    ST_PORT,    /* 0 to 65535 */
};

enum set_scope { SCOPE_SERVER, SCOPE_QUEUE };

/* What a queue can be told: resolved from the built-in defaults, the
 * [queue] section and the queue's own section (docs/configuration.md). */
enum priority_policy { PRIORITY_STRICT, PRIORITY_WEIGHTED };

/* A wait that doubles with each try: min x 2^(try-1), at most max. */
struct backoff {
    uint64_t min_ms, max_ms; /* min 0: none */
};

struct qsettings {
    uint64_t max_items;          /* UINT64_MAX: unlimited */
    uint64_t max_size;           /* bytes of items; UINT64_MAX: unlimited */
    uint64_t max_item_size;      /* a larger set is NOT_STORED; UINT64_MAX: unlimited */
    uint64_t max_age_ms;         /* caps an item's time to live; 0: none */
    int discard_old_when_full;   /* full: drop the oldest instead of refusing */
    int fanout_only;             /* stores nothing itself, only feeds its fanout children */
    uint64_t max_open;           /* items one connection may hold open on the queue */
    uint64_t open_timeout_ms;    /* the lease of an /open without /ttr=; 0: until the connection ends */
    uint64_t max_queue_age_ms;   /* an empty queue older than this is deleted; 0: never */
    struct fsync_conf fsync;     /* FSYNC_SERVER: the server's policy */
    uint64_t max_expire_sweep;   /* expired items one sweep removes from the queue; UINT64_MAX: all */
    char expire_to_queue[251];   /* expired items move there; "": dropped */
    uint64_t max_deliveries;     /* an item given back after this many hand-outs is a dead letter; 0: never */
    uint64_t default_priority;   /* the level of an item set without /pri= (0 most urgent .. 9) */
    uint64_t default_delay_ms;   /* the delay of an item set without /delay= or /at=; 0: none */
    uint64_t max_delay_ms;       /* a longer delay is refused; 0: no limit */
    struct backoff retry_delay;  /* how long an item given back waits before it is visible again */
    int priority_policy;         /* enum priority_policy */
    char dead_letter_queue[251]; /* where dead letters go; "": <queue>_errors */
};

struct setting {
    const char *key; /* config-file key (and flag: "--" + key with '-' for '_') */
    char short_flag; /* 0: none */
    enum set_scope scope;
    enum set_type type;
    int reloadable;           /* applied to a running server by `reload` */
    const char *def;          /* the default, as written in a config file */
    uint64_t min, max;        /* for numbers, sizes and times (in ms) */
    uint64_t unit_ms;         /* ST_TIME: what a bare number means (1 ms unless said) */
    const char *const *names; /* ST_ENUM: the accepted words, NULL-terminated */
    size_t off;               /* in struct config (server) or struct qsettings (queue) */
    const char *help;
    const char *arg; /* the value's name in --help */
};

extern const struct setting SETTINGS[];
extern const size_t NSETTINGS;

/* Kestrel keys that mean nothing here: accepted in a queue section with a
 * warning. NULL-terminated. */
extern const char *const SETTINGS_IGNORED[];

/* The setting named key in scope, or NULL. */
const struct setting *setting_find(enum set_scope scope, const char *key);

/* Parses text as setting s's value into dst (a struct config or struct
 * qsettings). Returns 0, or -EINVAL with *why set to what is wrong (a
 * static string). */
int setting_parse(const struct setting *s, const char *text, void *dst, const char **why);

/* Writes s's value in src to out (at most cap bytes, NUL-terminated) as a
 * config file would give it. */
void setting_format(const struct setting *s, const void *src, char *out, size_t cap);

/* The built-in queue settings. */
void qsettings_defaults(struct qsettings *q);

/* Parses "30s", "250ms", a bare number times unit_ms. Returns 0 or -EINVAL. */
int settings_parse_time(const char *text, uint64_t unit_ms, uint64_t *ms);
/* Parses "4096", "64K", "64KiB", "128MiB", "1G". Returns 0 or -EINVAL. */
int settings_parse_size(const char *text, uint64_t *bytes);

#endif
