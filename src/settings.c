/* settings.c: the table of every setting, and its values' text forms. */
#include "settings.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/parse.h"
#include "tls.h"

#define SEC 1000ull
#define UNLIMITED UINT64_MAX

static const char *const COMPAT_NAMES[] = {"memcache", "kestrel", NULL};
static const char *const LOG_NAMES[] = {"error", "warn", "info", "debug", NULL};
static const char *const PRIORITY_NAMES[] = {"strict", "weighted", NULL};
static const char *const ADMIN_MODE_NAMES[] = {"auto", "on", "off", NULL}; /* enum admin_mode */

#define SRV(field) offsetof(struct config, field)
#define QUE(field) offsetof(struct qsettings, field)

const struct setting SETTINGS[] = {
    /* ---- server ---- */
    {.key = "listen",
     .scope = SCOPE_SERVER,
     .type = ST_STRING,
     .def = "127.0.0.1",
     .max = sizeof(((struct config *)0)->listen),
     .off = SRV(listen),
     .arg = "ADDR[,...]",
     .help = "addresses to listen on, comma-separated: ADDR (on --port), ADDR:PORT, [IPv6]:PORT, each may be "
             "notls: (plain while TLS is on); a non-loopback one needs --auth-file or --allow-unauthenticated"},
    {.key = "auth_file",
     .short_flag = 'Y',
     .scope = SCOPE_SERVER,
     .type = ST_STRING,
     .def = "",
     .max = sizeof(((struct config *)0)->auth_file),
     .off = SRV(auth_file),
     .arg = "FILE",
     .help = "clients must authenticate as a user of FILE (user:password[:queue-pattern[:r|w|rw]] lines; "
             "memcached's -Y); re-read on SIGHUP and reload (empty: no authentication)"},
    {.key = "allow_unauthenticated",
     .scope = SCOPE_SERVER,
     .type = ST_BOOL,
     .def = "false",
     .off = SRV(allow_unauthenticated),
     .arg = "[BOOL]",
     .help = "serve a non-loopback listen address without an auth file"},
    {.key = "enable_ssl",
     .short_flag = 'Z',
     .scope = SCOPE_SERVER,
     .type = ST_BOOL,
     .def = "false",
     .off = SRV(enable_ssl),
     .arg = "[BOOL]",
     .help = "TLS on every listener not prefixed notls: (memcached's -Z); needs --ssl-chain-cert"},
    {.key = "ssl_chain_cert",
     .scope = SCOPE_SERVER,
     .type = ST_STRING,
     .def = "",
     .max = sizeof(((struct config *)0)->ssl_chain_cert),
     .off = SRV(ssl_chain_cert),
     .arg = "FILE",
     .help = "PEM file: the server's certificate, then its chain; re-read on SIGHUP"},
    {.key = "ssl_key",
     .scope = SCOPE_SERVER,
     .type = ST_STRING,
     .def = "",
     .max = sizeof(((struct config *)0)->ssl_key),
     .off = SRV(ssl_key),
     .arg = "FILE",
     .help = "PEM file of the private key (empty: in the chain file)"},
    {.key = "ssl_ca_cert",
     .scope = SCOPE_SERVER,
     .type = ST_STRING,
     .def = "",
     .max = sizeof(((struct config *)0)->ssl_ca_cert),
     .off = SRV(ssl_ca_cert),
     .arg = "FILE",
     .help = "PEM file of the CAs whose client certificates are accepted"},
    {.key = "ssl_verify_mode",
     .scope = SCOPE_SERVER,
     .type = ST_UINT,
     .def = "0",
     .max = 3,
     .off = SRV(ssl_verify_mode),
     .arg = "N",
     .help = "client certificates: 0 not asked, 1 asked, 2 required, 3 required once per session"},
    {.key = "ssl_min_version",
     .scope = SCOPE_SERVER,
     .type = ST_ENUM,
     .def = "tlsv1.2",
     .names = TLS_VERSION_NAMES,
     .off = SRV(ssl_min_version),
     .arg = "VERSION",
     .help = "tlsv1.2 | tlsv1.3"},
    {.key = "port",
     .short_flag = 'p',
     .scope = SCOPE_SERVER,
     .type = ST_PORT,
     .def = "22133",
     .max = 65535,
     .off = SRV(port),
     .arg = "N",
     .help = "TCP port, 0 picks a free one"},
    {.key = "port_file",
     .scope = SCOPE_SERVER,
     .type = ST_STRING,
     .def = "",
     .max = sizeof(((struct config *)0)->port_file),
     .off = SRV(port_file),
     .arg = "PATH",
     .help = "write the port here once accepting connections"},
    {.key = "admin_listen",
     .scope = SCOPE_SERVER,
     .type = ST_STRING,
     .def = "",
     .max = sizeof(((struct config *)0)->admin_listen),
     .off = SRV(admin_listen),
     .arg = "[ADDR:]PORT",
     .help = "serve the admin HTTP port (/metrics, /stats.json, /healthz, /readyz) there; a port alone: on 127.0.0.1 "
             "(empty: none)"},
    {.key = "admin_auth",
     .scope = SCOPE_SERVER,
     .type = ST_ENUM,
     .def = "auto",
     .names = ADMIN_MODE_NAMES,
     .off = SRV(admin_auth),
     .arg = "MODE",
     .help = "HTTP Basic with the auth file's users on the admin port: auto (beyond loopback) | on | off"},
    {.key = "admin_tls",
     .scope = SCOPE_SERVER,
     .type = ST_ENUM,
     .def = "auto",
     .names = ADMIN_MODE_NAMES,
     .off = SRV(admin_tls),
     .arg = "MODE",
     .help = "TLS on the admin port (with the ssl_* files): auto (beyond loopback, when enable_ssl) | on | off"},
    {.key = "admin_max_connections",
     .scope = SCOPE_SERVER,
     .type = ST_UINT,
     .def = "64",
     .min = 1,
     .max = 100000,
     .off = SRV(admin_max_connections),
     .arg = "N",
     .help = "admin connections served at once; more are closed at once"},
    {.key = "admin_timeout",
     .scope = SCOPE_SERVER,
     .type = ST_TIME,
     .def = "30s",
     .min = 100,
     .max = 3600 * SEC,
     .unit_ms = 1,
     .off = SRV(admin_timeout_ms),
     .arg = "TIME",
     .help = "an admin connection is closed this long after it was accepted (a bare number is ms)"},
    {.key = "admin_port_file",
     .scope = SCOPE_SERVER,
     .type = ST_STRING,
     .def = "",
     .max = sizeof(((struct config *)0)->admin_port_file),
     .off = SRV(admin_port_file),
     .arg = "PATH",
     .help = "write the admin port here once it accepts connections"},
    {.key = "data",
     .short_flag = 'd',
     .scope = SCOPE_SERVER,
     .type = ST_STRING,
     .def = CONFIG_DEFAULT_DATA,
     .max = sizeof(((struct config *)0)->data_dir),
     .off = SRV(data_dir),
     .arg = "DIR",
     .help = "data folder, created if missing"},
    {.key = "fsync",
     .scope = SCOPE_SERVER,
     .type = ST_FSYNC,
     .def = "1s",
     .min = 1,
     .max = 86400 * SEC,
     .unit_ms = 1,
     .off = SRV(fsync),
     .arg = "POLICY",
     .help = "always | never | time between fsyncs (a bare number is ms)"},
    {.key = "max_item_size",
     .scope = SCOPE_SERVER,
     .type = ST_SIZE,
     .def = "1GiB",
     .min = 1,
     .max = UINT64_MAX >> 2,
     .off = SRV(max_item_size),
     .arg = "SIZE",
     .help = "largest item accepted at all (larger: SERVER_ERROR)"},
    {.key = "max_connections",
     .scope = SCOPE_SERVER,
     .type = ST_UINT,
     .def = "4096",
     .min = 1,
     .max = 10000000,
     .off = SRV(max_connections),
     .arg = "N",
     .help = "connections served at once"},
    {.key = "max_line_length",
     .scope = SCOPE_SERVER,
     .type = ST_SIZE,
     .def = "8KiB",
     .min = 512,
     .max = 16u << 20,
     .off = SRV(max_line),
     .arg = "SIZE",
     .help = "longest request line"},
    {.key = "idle_timeout",
     .scope = SCOPE_SERVER,
     .type = ST_TIME,
     .def = "0",
     .max = 365 * 86400 * SEC,
     .unit_ms = SEC,
     .off = SRV(idle_timeout_ms),
     .arg = "TIME",
     .help = "close connections idle this long, their open items going back (a bare number is seconds; 0: never)"},
    {.key = "segment_size",
     .scope = SCOPE_SERVER,
     .type = ST_SIZE,
     .def = "64MiB",
     .min = 4096,
     .max = UINT64_MAX >> 2,
     .off = SRV(segment_size),
     .arg = "SIZE",
     .help = "journal segment size"},
    {.key = "max_open_queues",
     .scope = SCOPE_SERVER,
     .type = ST_UINT,
     .def = "0",
     .max = 10000000,
     .off = SRV(max_open_queues),
     .arg = "N",
     .help = "queues whose files stay open at once; idle ones beyond are closed and opened again on use (0: from the "
             "open-file limit)"},
    {.key = "compat",
     .scope = SCOPE_SERVER,
     .type = ST_ENUM,
     .def = "memcache",
     .names = COMPAT_NAMES,
     .off = SRV(compat),
     .arg = "MODE",
     .help = "memcache | kestrel answers"},
    {.key = "expiry_sweep",
     .scope = SCOPE_SERVER,
     .type = ST_TIME,
     .def = "1s",
     .max = 86400 * SEC,
     .unit_ms = 1,
     .off = SRV(expiry_sweep_ms),
     .arg = "TIME",
     .help = "how often expired items are swept from the heads of queues (0: only when a get reaches them)"},
    {.key = "status_grace",
     .scope = SCOPE_SERVER,
     .type = ST_TIME,
     .def = "0",
     .max = 86400 * SEC,
     .unit_ms = 1,
     .off = SRV(status_grace_ms),
     .arg = "TIME",
     .help = "after `status readonly` or `status quiescent`, serve as before this long (clients finish)"},
    {.key = "enable_shutdown",
     .scope = SCOPE_SERVER,
     .type = ST_BOOL,
     .def = "false",
     .off = SRV(enable_shutdown),
     .arg = "[BOOL]",
     .help = "let the shutdown command stop the server"},
    {.key = "log_level",
     .scope = SCOPE_SERVER,
     .type = ST_ENUM,
     .def = "info",
     .names = LOG_NAMES,
     .off = SRV(log_level),
     .arg = "LEVEL",
     .help = "error | warn | info | debug"},
    {.key = "log_file",
     .scope = SCOPE_SERVER,
     .type = ST_STRING,
     .def = "",
     .max = sizeof(((struct config *)0)->log_file),
     .off = SRV(log_file),
     .arg = "FILE",
     .help = "append the log lines to FILE, opened again on SIGHUP (log rotation); empty: stderr"},

    /* ---- queue ---- */
    {.key = "max_items",
     .scope = SCOPE_QUEUE,
     .type = ST_UINT,
     .reloadable = 1,
     .def = "unlimited",
     .max = UNLIMITED,
     .off = QUE(max_items),
     .help = "items the queue holds at most; a set beyond answers NOT_STORED"},
    {.key = "max_size",
     .scope = SCOPE_QUEUE,
     .type = ST_SIZE,
     .reloadable = 1,
     .def = "unlimited",
     .max = UNLIMITED,
     .off = QUE(max_size),
     .help = "bytes of items the queue holds at most; a set beyond answers NOT_STORED"},
    {.key = "max_item_size",
     .scope = SCOPE_QUEUE,
     .type = ST_SIZE,
     .reloadable = 1,
     .def = "unlimited",
     .max = UNLIMITED,
     .off = QUE(max_item_size),
     .help = "a larger item answers NOT_STORED"},
    {.key = "discard_old_when_full",
     .scope = SCOPE_QUEUE,
     .type = ST_BOOL,
     .reloadable = 1,
     .def = "false",
     .off = QUE(discard_old_when_full),
     .help = "when full, store the new item and drop the oldest ones (counted in discarded) instead of refusing it"},
    {.key = "max_open",
     .scope = SCOPE_QUEUE,
     .type = ST_UINT,
     .reloadable = 1,
     .def = "1",
     .min = 1,
     .max = 1000000,
     .off = QUE(max_open),
     .help = "items one connection may hold open on the queue at once (Kestrel's max_open_transactions)"},
    {.key = "open_timeout",
     .scope = SCOPE_QUEUE,
     .type = ST_TIME,
     .reloadable = 1,
     .def = "0",
     .max = UINT32_MAX,
     .unit_ms = 1,
     .off = QUE(open_timeout_ms),
     .help = "the lease of an item handed out open without /ttr=: given back when it runs out (0: held until "
             "the connection ends)"},
    {.key = "fanout_only",
     .scope = SCOPE_QUEUE,
     .type = ST_BOOL,
     .reloadable = 1,
     .def = "false",
     .off = QUE(fanout_only),
     .help = "the queue stores nothing itself: its sets only go to its fanout children (name+child)"},
    {.key = "expire_to_queue",
     .scope = SCOPE_QUEUE,
     .type = ST_QUEUE,
     .reloadable = 1,
     .def = "",
     .off = QUE(expire_to_queue),
     .help = "expired items move to this queue, as if set there without an expiry (empty: they are dropped)"},
    {.key = "max_expire_sweep",
     .scope = SCOPE_QUEUE,
     .type = ST_UINT,
     .reloadable = 1,
     .def = "unlimited",
     .min = 1,
     .max = UNLIMITED,
     .off = QUE(max_expire_sweep),
     .help = "expired items one periodic sweep removes from the queue at most"},
    {.key = "max_queue_age",
     .scope = SCOPE_QUEUE,
     .type = ST_TIME,
     .reloadable = 1,
     .def = "0",
     .max = UINT64_MAX / 2,
     .unit_ms = 1,
     .off = QUE(max_queue_age_ms),
     .help = "the queue is deleted once it is empty and this old (since it was made, or since the server started); 0: "
             "never"},
    {.key = "fsync",
     .scope = SCOPE_QUEUE,
     .type = ST_FSYNC,
     .reloadable = 1,
     .def = "server",
     .min = 1,
     .max = 86400 * SEC,
     .unit_ms = 1,
     .off = QUE(fsync),
     .help = "server (the server's fsync), always (each answer after its fsync), never (not by the periodic fsync), "
             "or a time between fsyncs"},
    {.key = "max_age",
     .scope = SCOPE_QUEUE,
     .type = ST_TIME,
     .reloadable = 1,
     .def = "0",
     .max = UINT64_MAX / 2,
     .unit_ms = 1,
     .off = QUE(max_age_ms),
     .help = "an item expires this long after its set at the latest, whatever its exptime (0: no cap)"},
    {.key = "max_deliveries",
     .scope = SCOPE_QUEUE,
     .type = ST_UINT,
     .reloadable = 1,
     .def = "0",
     .max = 65535,
     .off = QUE(max_deliveries),
     .arg = "N",
     .help = "an item given back (abort, lease, disconnect) after this many /open hand-outs goes to the "
             "dead-letter queue (0: never)"},
    {.key = "default_priority",
     .scope = SCOPE_QUEUE,
     .type = ST_UINT,
     .reloadable = 1,
     .def = "5",
     .max = 9,
     .off = QUE(default_priority),
     .arg = "N",
     .help = "the priority of an item set without /pri= (0 most urgent, 9 least)"},
    {.key = "default_delay",
     .scope = SCOPE_QUEUE,
     .type = ST_TIME,
     .reloadable = 1,
     .def = "0",
     .max = UINT64_C(1) << 46,
     .unit_ms = 1,
     .off = QUE(default_delay_ms),
     .arg = "TIME",
     .help = "items set without /delay= or /at= become visible this long after their set (0: at once)"},
    {.key = "max_delay",
     .scope = SCOPE_QUEUE,
     .type = ST_TIME,
     .reloadable = 1,
     .def = "0",
     .max = UINT64_C(1) << 46,
     .unit_ms = 1,
     .off = QUE(max_delay_ms),
     .arg = "TIME",
     .help = "a set delayed longer than this answers CLIENT_ERROR (0: no limit)"},
    {.key = "retry_delay",
     .scope = SCOPE_QUEUE,
     .type = ST_BACKOFF,
     .reloadable = 1,
     .def = "0",
     .max = 30 * 86400 * SEC,
     .unit_ms = 1,
     .off = QUE(retry_delay),
     .arg = "MIN[,MAX]",
     .help = "an item given back (abort, lease, disconnect) is visible again after MIN x 2^(deliveries-1), "
             "at most MAX (0: at once)"},
    {.key = "priority_policy",
     .scope = SCOPE_QUEUE,
     .type = ST_ENUM,
     .reloadable = 1,
     .def = "strict",
     .names = PRIORITY_NAMES,
     .off = QUE(priority_policy),
     .help = "strict (the most urgent level first, always) | weighted (each level gets twice the share of the next)"},
    {.key = "dead_letter_queue",
     .scope = SCOPE_QUEUE,
     .type = ST_QUEUE,
     .reloadable = 1,
     .def = "",
     .off = QUE(dead_letter_queue),
     .help = "where the queue's dead letters go (max_deliveries, get q/bury); empty: <queue>_errors"},
};

const size_t NSETTINGS = sizeof(SETTINGS) / sizeof(SETTINGS[0]);

const char *const SETTINGS_IGNORED[] = {"max_memory_size", "max_journal_size", "default_journal_size",
                                        "min_journal_compact_delay", NULL};

const struct setting *setting_find(enum set_scope scope, const char *key)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (SETTINGS[i].scope == scope && strcmp(SETTINGS[i].key, key) == 0)
            return &SETTINGS[i];
    return NULL;
}

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

void qsettings_defaults(struct qsettings *q)
{
    const char *why;
    *q = (struct qsettings){0};
    for (size_t i = 0; i < NSETTINGS; i++)
        if (SETTINGS[i].scope == SCOPE_QUEUE)
            setting_parse(&SETTINGS[i], SETTINGS[i].def, q, &why);
}
