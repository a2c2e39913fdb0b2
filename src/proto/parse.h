/* proto/parse.h: the memcache text protocol request parser.
 *
 * Pure and zero-copy: no I/O, no allocation, no globals. Every slice in a
 * result points into the caller's buffer and is valid as long as it is. */
#ifndef DARNER_PROTO_PARSE_H
#define DARNER_PROTO_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROTO_MAX_NAME 250 /* longest queue name, in bytes */

struct proto_slice {
    const char *p;
    size_t len;
};

enum proto_type {
    PROTO_GET = 1, /* get and gets */
    PROTO_SET,     /* set: data of `bytes` bytes + CRLF follows the line */
    PROTO_DELETE,
    PROTO_FLUSH, /* flush <q> */
    PROTO_FLUSH_ALL,
    PROTO_STATS,
    PROTO_VERSION,
    PROTO_QUIT,
    PROTO_VERBOSITY,   /* memcache's `verbosity N [noreply]`: answered OK, ignored */
    PROTO_RELOAD,      /* reload: the config file again */
    PROTO_DUMP_CONFIG, /* dump_config [q ...]: queue names in keys, nkeys of them */
    PROTO_STATUS,      /* status [new]: the new status's word in keys, if any */
    PROTO_SHUTDOWN,
    PROTO_DUMP_STATS,    /* dump_stats [q ...]: queue names in keys */
    PROTO_FLUSH_EXPIRED, /* flush_expired <q> */
    PROTO_FLUSH_ALL_EXPIRED,
    PROTO_MONITOR,        /* monitor <q> <seconds> [max_items]: key.timeout_ms, count (0: not given) */
    PROTO_CONFIRM,        /* confirm <q> <count> */
    PROTO_TOUCH,          /* touch <q>[/ttr=ms] <seconds> [noreply]: count is the seconds */
    PROTO_KICK,           /* kick <q> <count> */
    PROTO_CELLFILE,       /* cellfile <path> <offset> <length>: a cell member's file (keys: the path) */
    PROTO_CLUSTER,        /* cluster: the cell's members and the fleet's other cells */
    PROTO_CLUSTER_CHANGE, /* cluster add ID@HOST:RAFT_PORT:PORT | remove ID | transfer [ID]: keys, nkeys */
    PROTO_UNKNOWN,        /* unknown command word: answer "ERROR", connection stays */
    PROTO_BAD,            /* malformed line: answer "CLIENT_ERROR <error>" */
    /* Only from the binary protocol (proto/bin.h); the text parser never
     * returns these. */
    PROTO_NOOP,      /* Noop: answered at once, after what came before it */
    PROTO_SASL_LIST, /* SASL list mechanisms */
    PROTO_SASL_AUTH, /* SASL auth: the mechanism and its data */
    PROTO_SASL_STEP, /* SASL step: the next data of a started exchange */
};

/* GET options, as bits. */
enum {
    PROTO_OPT_OPEN = 1u << 0,
    PROTO_OPT_CLOSE = 1u << 1,
    PROTO_OPT_ABORT = 1u << 2,
    PROTO_OPT_PEEK = 1u << 3,
    PROTO_OPT_TIMEOUT = 1u << 4,  /* timeout_ms is set */
    PROTO_OPT_SYNC = 1u << 5,     /* set only */
    PROTO_OPT_TTR = 1u << 6,      /* ttr_ms is set: the lease of an /open (or of a touch) */
    PROTO_OPT_BURY = 1u << 7,     /* the open item goes to the dead-letter queue (alone, as abort) */
    PROTO_OPT_PRI = 1u << 8,      /* set only: priority is set (0 most urgent .. 9) */
    PROTO_OPT_DELAY = 1u << 9,    /* delay_ms is set: a set's item visible that long after; with a get's
                                     /abort, the item given back visible that long after */
    PROTO_OPT_AT = 1u << 10,      /* set only: at_ms is set (visible at that Unix time, ms) */
    PROTO_OPT_DELAYED = 1u << 11, /* get with /peek: the soonest delayed item */
};

/* One key of a request: "name/opt/opt...". */
struct proto_key {
    struct proto_slice full; /* the key token exactly as sent, options included */
    struct proto_slice name; /* the queue name: 1..250 bytes, no '/', no control byte */
    unsigned opts;           /* PROTO_OPT_* bits */
    uint32_t timeout_ms;     /* with PROTO_OPT_TIMEOUT */
    uint32_t ttr_ms;         /* with PROTO_OPT_TTR */
    uint8_t priority;        /* with PROTO_OPT_PRI */
    uint64_t delay_ms;       /* with PROTO_OPT_DELAY */
    uint64_t at_ms;          /* with PROTO_OPT_AT */
};

struct proto_req {
    enum proto_type type;
    /* PROTO_GET: the key tokens, space separated, already validated; walk them
     * with proto_next_key(). nkeys >= 1. */
    struct proto_slice keys;
    size_t nkeys;
    int gets;        /* PROTO_GET sent as `gets`: answers carry a cas value */
    uint64_t count;  /* PROTO_MONITOR (max items; 0: not given), PROTO_CONFIRM, PROTO_KICK; PROTO_CELLFILE: length */
    uint64_t offset; /* PROTO_CELLFILE */
    /* PROTO_SET, PROTO_DELETE, PROTO_FLUSH: the one key (set: only /sync allowed;
     * delete and flush: no option allowed). */
    struct proto_key key;
    uint32_t flags;  /* set */
    int64_t exptime; /* set, as sent (memcache rules applied by the caller) */
    uint64_t bytes;  /* set: length of the data block that follows */
    int noreply;     /* set, delete, flush, flush_all, verbosity */
    /* PROTO_BAD: a short reason for "CLIENT_ERROR <error>" (static string) */
    const char *error;
    /* PROTO_BAD: the caller must answer and then close the connection, because
     * where the next request starts is unknown (a set header whose length field
     * cannot be read). */
    int fatal;
    /* PROTO_BAD from a set header whose length could be read, or PROTO_UNKNOWN
     * for storage commands we do not serve (add, replace, append, prepend,
     * cas): the number of bytes (data + CRLF) to read and drop after the line
     * before the next request. 0 otherwise. */
    uint64_t swallow;
};

/* Results of proto_parse(), besides a positive consumed length. */
#define PROTO_NEED_MORE 0
#define PROTO_TOO_LONG (-1) /* no newline within max_line bytes: answer and close */

/* Parse one request line from buf[0..len).
 *
 * A line ends at "\n"; a "\r" right before it is dropped. Command words are
 * case-insensitive. Tokens are separated by one or more spaces.
 * Returns the number of bytes the line took (newline included) and fills *req,
 * PROTO_NEED_MORE when buf holds no newline yet and len < max_line, or
 * PROTO_TOO_LONG when no newline is within the first max_line bytes.
 * A complete line always yields a request: malformed ones as PROTO_BAD.
 * Borrows buf; req's slices point into it. */
ssize_t proto_parse(const char *buf, size_t len, size_t max_line, struct proto_req *req);

/* Parse one key token "name[/opt...]" of a get (set_key = 0) or a set
 * (set_key = 1). Returns 0, or -EINVAL with *error set to a short reason. */
int proto_parse_key(const char *p, size_t len, int set_key, struct proto_key *key, const char **error);

/* The length of the parent's name of a fanout child "parent+child" (the
 * bytes before the first '+'), or 0 when name is no child. */
size_t proto_fanout_parent_len(const char *name, size_t len);

/* Take the next key of a PROTO_GET request from *rest (start with
 * rest = req->keys). Returns 1 with *key filled, 0 when no key is left. Only
 * for a request proto_parse() accepted: its keys are known valid. */
int proto_next_key(struct proto_slice *rest, struct proto_key *key);

#endif
