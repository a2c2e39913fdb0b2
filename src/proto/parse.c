/* proto/parse.c: the memcache text protocol request parser.
 *
 * One request line in, one struct proto_req out. The line is split into
 * space-separated tokens that stay slices of the caller's buffer; nothing is
 * copied, allocated or kept between calls, so the parser can be fed any bytes
 * (and is fuzzed that way). Every read is bounded by the caller's len. */
#include "proto/parse.h"

#include <errno.h>
#include <string.h>

/* Reasons for CLIENT_ERROR; short, lowercase, static. */
#define E_FORMAT "bad command line format"
#define E_DATA "bad data chunk"
#define E_KEY "bad key"
#define E_KEY_LONG "key too long"
#define E_OPT_EMPTY "bad option: empty"
#define E_OPT_UNKNOWN "bad option: unknown"
#define E_OPT_REPEATED "bad option: repeated"
#define E_OPT_COMBINATION "bad option combination"
#define E_OPT_NOT_ALLOWED "bad option: none allowed here"
#define E_TIMEOUT "bad option: t= is 0 to 4294967295 ms"
#define E_TTR "bad option: ttr is 1 to 4294967295 ms"
#define E_PRI "bad option: pri is 0 (most urgent) to 9"
#define E_DELAY "bad option: delay is a number of milliseconds"
#define E_AT "bad option: at is a Unix time in milliseconds"
#define DELAY_MAX (UINT64_C(1) << 46) /* ms: 2,229 years; no due time passes 2^47 */

/* No command but get takes more than 7 tokens after its word; more are
 * counted, not stored, and make the line malformed. */
#define MAX_ARGS 8

/* Take the next space-separated token from [*pos, end). Returns 1 with *tok
 * set and *pos moved past it, or 0 when only spaces are left. */
static int next_token(const char **pos, const char *end, struct proto_slice *tok)
{
    const char *p = *pos;
    while (p < end && *p == ' ')
        p++;
    if (p == end) {
        *pos = p;
        return 0;
    }
    const char *start = p;
    while (p < end && *p != ' ')
        p++;
    tok->p = start;
    tok->len = (size_t)(p - start);
    *pos = p;
    return 1;
}

/* Case-insensitive (ASCII only, no locale) match of a token against a
 * lowercase word. */
static int word_is(struct proto_slice tok, const char *word)
{
    size_t n = strlen(word);
    if (tok.len != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)tok.p[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c != (unsigned char)word[i])
            return 0;
    }
    return 1;
}

/* Exact, case-sensitive match of a byte range against a word. */
static int bytes_are(const char *p, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(p, word, len) == 0;
}

/* Decimal digits only (no sign, no space), 1 or more, value <= max.
 * max must be at least 9. Returns 0 with *out set, or -1. */
static int parse_u64(const char *p, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < '0' || c > '9')
            return -1;
        uint64_t d = (uint64_t)(c - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int parse_tok_u64(struct proto_slice tok, uint64_t max, uint64_t *out)
{
    return parse_u64(tok.p, tok.len, max, out);
}

/* An optional '-' then decimal digits, within int64_t. */
static int parse_tok_i64(struct proto_slice tok, int64_t *out)
{
    uint64_t v;
    if (tok.len > 0 && tok.p[0] == '-') {
        if (parse_u64(tok.p + 1, tok.len - 1, (uint64_t)INT64_MAX + 1, &v) < 0)
            return -1;
        /* -(2^63) is representable, its positive counterpart is not. */
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
        return 0;
    }
    if (parse_u64(tok.p, tok.len, INT64_MAX, &v) < 0)
        return -1;
    *out = (int64_t)v;
    return 0;
}

static void bad(struct proto_req *req, const char *error, int fatal)
{
    req->type = PROTO_BAD;
    req->error = error;
    req->fatal = fatal;
}

/* Parse one option (the bytes between two '/', or after the last one) into
 * its bit. Returns the bit, or 0 with *error set. */
static unsigned parse_option(const char *p, size_t len, int set_key, struct proto_key *k, const char **error)
{
    uint32_t *timeout_ms = &k->timeout_ms, *ttr_ms = &k->ttr_ms;
    if (len == 0) {
        *error = E_OPT_EMPTY;
        return 0;
    }
    if (set_key) {
        if (bytes_are(p, len, "sync"))
            return PROTO_OPT_SYNC;
        if (len >= 4 && memcmp(p, "pri=", 4) == 0) {
            uint64_t v;
            if (parse_u64(p + 4, len - 4, 9, &v) < 0) {
                *error = E_PRI;
                return 0;
            }
            k->priority = (uint8_t)v;
            return PROTO_OPT_PRI;
        }
        if (len >= 6 && memcmp(p, "delay=", 6) == 0) {
            if (parse_u64(p + 6, len - 6, DELAY_MAX, &k->delay_ms) < 0) {
                *error = E_DELAY;
                return 0;
            }
            return PROTO_OPT_DELAY;
        }
        if (len >= 3 && memcmp(p, "at=", 3) == 0) {
            if (parse_u64(p + 3, len - 3, DELAY_MAX, &k->at_ms) < 0) {
                *error = E_AT;
                return 0;
            }
            return PROTO_OPT_AT;
        }
    } else if (bytes_are(p, len, "open")) {
        return PROTO_OPT_OPEN;
    } else if (bytes_are(p, len, "close")) {
        return PROTO_OPT_CLOSE;
    } else if (bytes_are(p, len, "abort")) {
        return PROTO_OPT_ABORT;
    } else if (bytes_are(p, len, "bury")) {
        return PROTO_OPT_BURY;
    } else if (bytes_are(p, len, "peek")) {
        return PROTO_OPT_PEEK;
    } else if (bytes_are(p, len, "delayed")) {
        return PROTO_OPT_DELAYED;
    } else if (len >= 6 && memcmp(p, "delay=", 6) == 0) { /* with /abort: given back later */
        if (parse_u64(p + 6, len - 6, DELAY_MAX, &k->delay_ms) < 0) {
            *error = E_DELAY;
            return 0;
        }
        return PROTO_OPT_DELAY;
    } else if (len >= 2 && p[0] == 't' && p[1] == '=') {
        uint64_t ms;
        if (parse_u64(p + 2, len - 2, UINT32_MAX, &ms) < 0) {
            *error = E_TIMEOUT;
            return 0;
        }
        *timeout_ms = (uint32_t)ms;
        return PROTO_OPT_TIMEOUT;
    } else if (len >= 4 && memcmp(p, "ttr=", 4) == 0) {
        uint64_t ms;
        if (parse_u64(p + 4, len - 4, UINT32_MAX, &ms) < 0 || ms == 0) {
            *error = E_TTR;
            return 0;
        }
        *ttr_ms = (uint32_t)ms;
        return PROTO_OPT_TTR;
    }
    *error = E_OPT_UNKNOWN;
    return 0;
}

int proto_parse_key(const char *p, size_t len, int set_key, struct proto_key *key, const char **error)
{
    memset(key, 0, sizeof *key);
    key->full.p = p;
    key->full.len = len;

    const char *slash = len ? memchr(p, '/', len) : NULL;
    size_t name_len = slash ? (size_t)(slash - p) : len;
    if (name_len == 0) {
        *error = E_KEY;
        return -EINVAL;
    }
    if (name_len > PROTO_MAX_NAME) {
        *error = E_KEY_LONG;
        return -EINVAL;
    }
    for (size_t i = 0; i < name_len; i++) {
        unsigned char c = (unsigned char)p[i];
        /* Bytes >= 0x80 pass: names may be UTF-8. */
        if (c <= ' ' || c == 0x7f) {
            *error = E_KEY;
            return -EINVAL;
        }
    }

    unsigned opts = 0;
    const char *end = p + len;
    while (slash) {
        const char *opt = slash + 1;
        const char *next = memchr(opt, '/', (size_t)(end - opt));
        const char *opt_end = next ? next : end;
        unsigned bit = parse_option(opt, (size_t)(opt_end - opt), set_key, key, error);
        if (!bit)
            return -EINVAL;
        if (opts & bit) {
            *error = E_OPT_REPEATED;
            return -EINVAL;
        }
        opts |= bit;
        slash = next;
    }

    /* abort and bury stand alone; peek leaves the item where it is, so it
     * cannot open, close or abort one. close+open and t= with the rest are
     * fine. */
    if (((opts & PROTO_OPT_DELAY) && (opts & PROTO_OPT_AT)) ||
        ((opts & PROTO_OPT_DELAYED) && !(opts & PROTO_OPT_PEEK)) ||
        (!set_key && (opts & PROTO_OPT_DELAY) && !(opts & PROTO_OPT_ABORT)) ||
        ((opts & PROTO_OPT_ABORT) && (opts & ~(unsigned)(PROTO_OPT_ABORT | PROTO_OPT_DELAY))) ||
        ((opts & PROTO_OPT_BURY) && (opts & ~(unsigned)PROTO_OPT_BURY)) ||
        ((opts & PROTO_OPT_PEEK) && (opts & (PROTO_OPT_OPEN | PROTO_OPT_CLOSE | PROTO_OPT_ABORT)))) {
        *error = E_OPT_COMBINATION;
        return -EINVAL;
    }

    key->name.p = p;
    key->name.len = name_len;
    key->opts = opts;
    return 0;
}

size_t proto_fanout_parent_len(const char *name, size_t len)
{
    const char *plus = memchr(name, '+', len);
    return plus && plus > name ? (size_t)(plus - name) : 0;
}

int proto_next_key(struct proto_slice *rest, struct proto_key *key)
{
    struct proto_slice tok;
    const char *error;

    if (rest->len == 0)
        return 0;
    const char *pos = rest->p;
    const char *end = rest->p + rest->len;
    if (!next_token(&pos, end, &tok)) {
        rest->p = end;
        rest->len = 0;
        return 0;
    }
    rest->p = pos;
    rest->len = (size_t)(end - pos);
    /* The keys were validated by proto_parse(); a caller that hands in
     * anything else gets "no more keys" rather than an unchecked key. */
    if (proto_parse_key(tok.p, tok.len, 0, key, &error) < 0) {
        rest->len = 0;
        return 0;
    }
    return 1;
}

/* get/gets <key>+: every key is validated now, so that proto_next_key()
 * cannot fail later. req->key is the first key. */
static void parse_get(const char *pos, const char *end, struct proto_req *req)
{
    struct proto_slice tok;
    struct proto_key key;
    const char *error;
    const char *first = NULL, *last = NULL;
    size_t nkeys = 0;

    while (next_token(&pos, end, &tok)) {
        if (proto_parse_key(tok.p, tok.len, 0, &key, &error) < 0) {
            bad(req, error, 0);
            return;
        }
        if ((key.opts & PROTO_OPT_TTR) && !(key.opts & PROTO_OPT_OPEN)) {
            bad(req, E_OPT_COMBINATION, 0); /* a lease is for an item handed out open */
            return;
        }
        if (nkeys == 0) {
            first = tok.p;
            req->key = key;
        }
        last = tok.p + tok.len;
        nkeys++;
    }
    if (nkeys == 0) {
        memset(&req->key, 0, sizeof req->key);
        bad(req, E_FORMAT, 0);
        return;
    }
    req->type = PROTO_GET;
    req->keys.p = first;
    req->keys.len = (size_t)(last - first);
    req->nkeys = nkeys;
}

/* set/add/replace/append/prepend <key> <flags> <exptime> <bytes> [noreply],
 * cas with <cas unique> after <bytes>. The length comes first: once it is
 * known the connection can skip the data whatever else is wrong. */
static void parse_storage(const struct proto_slice *arg, size_t n, int is_set, int is_cas, struct proto_req *req)
{
    size_t nfixed = is_cas ? 5 : 4;
    const char *error;
    uint64_t flags, cas_unique;

    if (n < 4) {
        bad(req, E_FORMAT, 1);
        return;
    }
    if (parse_tok_u64(arg[3], UINT64_MAX - 2, &req->bytes) < 0) {
        bad(req, E_DATA, 1);
        return;
    }
    req->swallow = req->bytes + 2;

    if (n > nfixed && word_is(arg[nfixed], "noreply"))
        req->noreply = 1;

    if (proto_parse_key(arg[0].p, arg[0].len, 1, &req->key, &error) < 0) {
        bad(req, error, 0);
        return;
    }
    if (parse_tok_u64(arg[1], UINT32_MAX, &flags) < 0 || parse_tok_i64(arg[2], &req->exptime) < 0 ||
        (is_cas && (n < 5 || parse_tok_u64(arg[4], UINT64_MAX, &cas_unique) < 0)) || n > nfixed + 1 ||
        (n == nfixed + 1 && !req->noreply)) {
        bad(req, E_FORMAT, 0);
        return;
    }
    req->flags = (uint32_t)flags;
    if (is_set) {
        req->type = PROTO_SET;
        req->swallow = 0;
    } else {
        req->type = PROTO_UNKNOWN; /* well-formed, not served: skip the data */
    }
}

/* The one key of delete and flush: a queue name, no option. */
static int parse_plain_key(struct proto_slice tok, struct proto_req *req)
{
    const char *error;
    if (proto_parse_key(tok.p, tok.len, 0, &req->key, &error) < 0) {
        bad(req, error, 0);
        return -1;
    }
    if (req->key.opts) {
        bad(req, E_OPT_NOT_ALLOWED, 0);
        return -1;
    }
    return 0;
}

/* Accept an optional trailing "noreply" at arg[i], and nothing after it. */
static void finish(const struct proto_slice *arg, size_t n, size_t i, enum proto_type type, struct proto_req *req)
{
    if (i < n && word_is(arg[i], "noreply")) {
        req->noreply = 1;
        i++;
    }
    if (i != n) {
        bad(req, E_FORMAT, 0);
        return;
    }
    req->type = type;
}

/* A request line split into its command word's arguments. */
struct cmd_line {
    struct proto_slice arg[MAX_ARGS];
    size_t n;               /* arguments (arg holds the first MAX_ARGS) */
    const char *rest, *end; /* the line after the command word */
};

static void cmd_get(const struct cmd_line *l, struct proto_req *req) { parse_get(l->rest, l->end, req); }

static void cmd_gets(const struct cmd_line *l, struct proto_req *req)
{
    parse_get(l->rest, l->end, req);
    req->gets = 1;
}

static void cmd_set(const struct cmd_line *l, struct proto_req *req) { parse_storage(l->arg, l->n, 1, 0, req); }

/* add, replace, append, prepend: parsed (to skip their data), not served */
static void cmd_storage(const struct cmd_line *l, struct proto_req *req) { parse_storage(l->arg, l->n, 0, 0, req); }

static void cmd_cas(const struct cmd_line *l, struct proto_req *req) { parse_storage(l->arg, l->n, 0, 1, req); }

/* delete <key> [0] [noreply]: old clients send a time, only 0 means
 * anything today. */
static void cmd_delete(const struct cmd_line *l, struct proto_req *req)
{
    size_t i = 1;
    uint64_t v;
    if (l->n == 0) {
        bad(req, E_FORMAT, 0);
        return;
    }
    if (parse_plain_key(l->arg[0], req) < 0)
        return;
    if (i < l->n && parse_tok_u64(l->arg[i], UINT64_MAX, &v) == 0) {
        if (v != 0) {
            bad(req, E_FORMAT, 0);
            return;
        }
        i++;
    }
    finish(l->arg, l->n, i, PROTO_DELETE, req);
}

static void cmd_flush(const struct cmd_line *l, struct proto_req *req)
{
    if (l->n == 0) {
        bad(req, E_FORMAT, 0);
        return;
    }
    if (parse_plain_key(l->arg[0], req) < 0)
        return;
    finish(l->arg, l->n, 1, PROTO_FLUSH, req);
}

static void cmd_flush_all(const struct cmd_line *l, struct proto_req *req)
{
    size_t i = 0;
    uint64_t v;
    if (i < l->n && parse_tok_u64(l->arg[i], UINT64_MAX, &v) == 0)
        i++; /* the delay: accepted, ignored */
    finish(l->arg, l->n, i, PROTO_FLUSH_ALL, req);
}

/* The arguments, as they were sent, in keys (nkeys of them). */
static void keep_args(const struct cmd_line *l, struct proto_req *req)
{
    if (l->n == 0)
        return;
    const char *last = l->end; /* trailing spaces are no argument */
    while (last[-1] == ' ')
        last--;
    req->keys.p = l->arg[0].p;
    req->keys.len = (size_t)(last - l->arg[0].p);
    req->nkeys = l->n;
}

/* stats [args]: the arguments are left in keys for a caller that wants to
 * look. */
static void cmd_stats(const struct cmd_line *l, struct proto_req *req)
{
    req->type = PROTO_STATS;
    keep_args(l, req);
    req->nkeys = 0;
}

static void no_args(const struct cmd_line *l, enum proto_type type, struct proto_req *req)
{
    if (l->n != 0)
        bad(req, E_FORMAT, 0);
    else
        req->type = type;
}

static void cmd_version(const struct cmd_line *l, struct proto_req *req) { no_args(l, PROTO_VERSION, req); }

static void cmd_quit(const struct cmd_line *l, struct proto_req *req) { no_args(l, PROTO_QUIT, req); }

static void cmd_verbosity(const struct cmd_line *l, struct proto_req *req)
{
    uint64_t v;
    if (l->n == 0 || parse_tok_u64(l->arg[0], UINT64_MAX, &v) < 0) {
        bad(req, E_FORMAT, 0);
        return;
    }
    finish(l->arg, l->n, 1, PROTO_VERBOSITY, req);
}

static void cmd_reload(const struct cmd_line *l, struct proto_req *req) { no_args(l, PROTO_RELOAD, req); }

/* A command taking any number of queue names, each a plain name (no
 * options): they are left in keys, walked with proto_next_key(). */
static void names_cmd(const struct cmd_line *l, enum proto_type type, struct proto_req *req)
{
    struct proto_key k;
    struct proto_slice tok;
    const char *error, *pos = l->rest;
    while (next_token(&pos, l->end, &tok)) {
        if (proto_parse_key(tok.p, tok.len, 0, &k, &error) < 0) {
            bad(req, error, 0);
            return;
        }
        if (k.opts) {
            bad(req, E_OPT_NOT_ALLOWED, 0);
            return;
        }
    }
    req->type = type;
    keep_args(l, req);
}

static void cmd_dump_config(const struct cmd_line *l, struct proto_req *req) { names_cmd(l, PROTO_DUMP_CONFIG, req); }

static void cmd_dump_stats(const struct cmd_line *l, struct proto_req *req) { names_cmd(l, PROTO_DUMP_STATS, req); }

static void cmd_flush_expired(const struct cmd_line *l, struct proto_req *req)
{
    if (l->n != 1) {
        bad(req, E_FORMAT, 0);
        return;
    }
    if (parse_plain_key(l->arg[0], req) == 0)
        req->type = PROTO_FLUSH_EXPIRED;
}

static void cmd_flush_all_expired(const struct cmd_line *l, struct proto_req *req)
{
    no_args(l, PROTO_FLUSH_ALL_EXPIRED, req);
}

/* monitor <q> <seconds> [max_items] */
static void cmd_monitor(const struct cmd_line *l, struct proto_req *req)
{
    uint64_t secs, max = 0;
    if (l->n < 2 || l->n > 3 || parse_tok_u64(l->arg[1], UINT32_MAX / 1000, &secs) < 0 ||
        (l->n == 3 && (parse_tok_u64(l->arg[2], UINT32_MAX, &max) < 0 || max == 0))) {
        bad(req, E_FORMAT, 0);
        return;
    }
    if (parse_plain_key(l->arg[0], req) < 0)
        return;
    req->key.timeout_ms = (uint32_t)(secs * 1000);
    req->count = max;
    req->type = PROTO_MONITOR;
}

/* confirm <q> <count> */
static void cmd_confirm(const struct cmd_line *l, struct proto_req *req)
{
    if (l->n != 2 || parse_tok_u64(l->arg[1], UINT32_MAX, &req->count) < 0) {
        bad(req, E_FORMAT, 0);
        return;
    }
    if (parse_plain_key(l->arg[0], req) == 0)
        req->type = PROTO_CONFIRM;
}

/* kick <q> <count> (beanstalkd's word): dead letters back to their queues */
static void cmd_kick(const struct cmd_line *l, struct proto_req *req)
{
    if (l->n != 2 || parse_tok_u64(l->arg[1], UINT32_MAX, &req->count) < 0) {
        bad(req, E_FORMAT, 0);
        return;
    }
    if (parse_plain_key(l->arg[0], req) == 0)
        req->type = PROTO_KICK;
}

/* touch <q>[/ttr=ms] <seconds> [noreply] (memcache's touch): the lease of
 * this connection's open items on q; /ttr= gives it in milliseconds. */
static void cmd_touch(const struct cmd_line *l, struct proto_req *req)
{
    const char *error;
    if (l->n < 2 || parse_tok_u64(l->arg[1], UINT32_MAX, &req->count) < 0) {
        bad(req, E_FORMAT, 0);
        return;
    }
    if (proto_parse_key(l->arg[0].p, l->arg[0].len, 0, &req->key, &error) < 0) {
        bad(req, error, 0);
        return;
    }
    if (req->key.opts & ~(unsigned)PROTO_OPT_TTR) {
        bad(req, E_OPT_NOT_ALLOWED, 0);
        return;
    }
    finish(l->arg, l->n, 2, PROTO_TOUCH, req);
}

static void cmd_status(const struct cmd_line *l, struct proto_req *req)
{
    if (l->n > 1) {
        bad(req, E_FORMAT, 0);
        return;
    }
    req->type = PROTO_STATUS;
    keep_args(l, req);
}

static void cmd_shutdown(const struct cmd_line *l, struct proto_req *req) { no_args(l, PROTO_SHUTDOWN, req); }

/* cellfile <path> <offset> <length>: bytes of a file of a cell leader's
 * data folder, for a member catching up (docs/cluster.md); the path is
 * checked by the command, not here */
static void cmd_cellfile(const struct cmd_line *l, struct proto_req *req)
{
    if (l->n != 3 || parse_tok_u64(l->arg[1], INT64_MAX, &req->offset) < 0 ||
        parse_tok_u64(l->arg[2], INT64_MAX, &req->count) < 0) {
        bad(req, E_FORMAT, 0);
        return;
    }
    req->keys = l->arg[0];
    req->nkeys = 1;
    req->type = PROTO_CELLFILE;
}

/* cluster: this cell's members and leader, and the fleet's other cells */
/* cluster: the members; cluster add|remove|transfer ...: a change of them,
 * its words left in keys */
static void cmd_cluster(const struct cmd_line *l, struct proto_req *req)
{
    if (l->n == 0) {
        req->type = PROTO_CLUSTER;
        return;
    }
    req->type = PROTO_CLUSTER_CHANGE;
    keep_args(l, req);
}

/* Every command word: one line each, the parser of its arguments. */
static const struct command {
    const char *word;
    void (*parse)(const struct cmd_line *l, struct proto_req *req);
    int whole_line; /* parses the line after the word itself (no splitting) */
} COMMANDS[] = {
    {"get", cmd_get, 1},
    {"gets", cmd_gets, 1},
    {"set", cmd_set, 0},
    {"add", cmd_storage, 0},
    {"replace", cmd_storage, 0},
    {"append", cmd_storage, 0},
    {"prepend", cmd_storage, 0},
    {"cas", cmd_cas, 0},
    {"delete", cmd_delete, 0},
    {"flush", cmd_flush, 0},
    {"flush_all", cmd_flush_all, 0},
    {"stats", cmd_stats, 0},
    {"version", cmd_version, 0},
    {"quit", cmd_quit, 0},
    {"verbosity", cmd_verbosity, 0},
    {"reload", cmd_reload, 0},
    {"dump_config", cmd_dump_config, 0},
    {"dump_stats", cmd_dump_stats, 0},
    {"flush_expired", cmd_flush_expired, 0},
    {"monitor", cmd_monitor, 0},
    {"confirm", cmd_confirm, 0},
    {"touch", cmd_touch, 0},
    {"kick", cmd_kick, 0},
    {"flush_all_expired", cmd_flush_all_expired, 0},
    {"status", cmd_status, 0},
    {"shutdown", cmd_shutdown, 0},
    {"cellfile", cmd_cellfile, 0},
    {"cluster", cmd_cluster, 0},
};

static void parse_line(const char *p, const char *end, struct proto_req *req)
{
    struct cmd_line l = {.end = end};
    struct proto_slice cmd, tok;
    const char *pos = p;
    if (!next_token(&pos, end, &cmd)) {
        req->type = PROTO_UNKNOWN; /* empty line: memcache answers ERROR */
        return;
    }
    const struct command *c = NULL;
    for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]) && !c; i++)
        if (word_is(cmd, COMMANDS[i].word))
            c = &COMMANDS[i];
    if (!c) {
        req->type = PROTO_UNKNOWN;
        return;
    }
    l.rest = pos;
    if (!c->whole_line) {
        while (next_token(&pos, end, &tok)) {
            if (l.n < MAX_ARGS)
                l.arg[l.n] = tok;
            l.n++;
        }
    }
    c->parse(&l, req);
}

ssize_t proto_parse(const char *buf, size_t len, size_t max_line, struct proto_req *req)
{
    memset(req, 0, sizeof *req);

    /* Look for the newline only within max_line bytes: a longer line is
     * refused whether or not its end has arrived. */
    size_t scan = len < max_line ? len : max_line;
    const char *nl = scan ? memchr(buf, '\n', scan) : NULL;
    if (!nl)
        return len < max_line ? PROTO_NEED_MORE : PROTO_TOO_LONG;

    const char *end = nl;
    if (end > buf && end[-1] == '\r')
        end--;
    parse_line(buf, end, req);
    return (ssize_t)(nl - buf + 1);
}
