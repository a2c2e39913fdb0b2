/* proto/bin.c: the memcache binary protocol request parser.
 *
 * One request header (with its extras and key) in, one struct proto_bin_req
 * out, mapped onto the text protocol's struct proto_req. What each opcode
 * may carry is one line of a table; every check that the header alone can
 * decide is made before waiting for the key, so a malformed request never
 * needs more than its 24 bytes buffered. Every read is bounded by len. */
#include "proto/bin.h"

#include <string.h>

/* Reasons for an error response's body; short, lowercase, static. */
#define E_MAGIC "bad magic: not a binary request"
#define E_UNKNOWN "unknown command"
#define E_EXTRAS "bad extras length"
#define E_LENGTHS "extras and key longer than the body"
#define E_KEY_NONE "no key allowed"
#define E_KEY_NEEDED "key required"
#define E_KEY_LONG "key too long"
#define E_VALUE_NONE "no value allowed"
#define E_CAS "cas not supported: a queue item is set, never replaced"
#define E_TOO_LARGE "object too large for cache"
#define E_SASL_LARGE "auth data too long"
#define E_MECH "bad mechanism"
#define E_STAT "bad stat key"
#define E_OPT_NOT_ALLOWED "bad option: none allowed here"
#define E_OPT_COMBINATION "bad option combination"

/* What a request's key is. */
enum key_kind {
    KEY_NONE,  /* no key allowed */
    KEY_GET,   /* a queue name with get options */
    KEY_SET,   /* a queue name with set options */
    KEY_PLAIN, /* a queue name, no option */
    KEY_STAT,  /* optional: a stats group, any bytes but control bytes */
    KEY_MECH,  /* a SASL mechanism name */
};

/* What a request's value is. */
enum value_kind {
    VALUE_NONE,   /* no value allowed */
    VALUE_STREAM, /* a Set's item: left to the caller, up to max_item */
    VALUE_INLINE, /* SASL data: consumed with the key, up to PROTO_BIN_MAX_SASL */
};

enum { F_QUIET = 1, F_WITH_KEY = 2, F_EXT_OPTIONAL = 4 /* the extras may also be absent */ };

/* Every opcode served, by its number; a zero type is an opcode not served. */
static const struct bin_cmd {
    unsigned char type; /* enum proto_type */
    unsigned char ext;  /* extras length */
    unsigned char key;  /* enum key_kind */
    unsigned char value;
    unsigned char flags;
} CMDS[256] = {
    [PROTO_BIN_GET] = {PROTO_GET, 0, KEY_GET, VALUE_NONE, 0},
    [PROTO_BIN_GETQ] = {PROTO_GET, 0, KEY_GET, VALUE_NONE, F_QUIET},
    [PROTO_BIN_GETK] = {PROTO_GET, 0, KEY_GET, VALUE_NONE, F_WITH_KEY},
    [PROTO_BIN_GETKQ] = {PROTO_GET, 0, KEY_GET, VALUE_NONE, F_QUIET | F_WITH_KEY},
    [PROTO_BIN_SET] = {PROTO_SET, 8, KEY_SET, VALUE_STREAM, 0},
    [PROTO_BIN_SETQ] = {PROTO_SET, 8, KEY_SET, VALUE_STREAM, F_QUIET},
    [PROTO_BIN_DELETE] = {PROTO_DELETE, 0, KEY_PLAIN, VALUE_NONE, 0},
    [PROTO_BIN_DELETEQ] = {PROTO_DELETE, 0, KEY_PLAIN, VALUE_NONE, F_QUIET},
    [PROTO_BIN_QUIT] = {PROTO_QUIT, 0, KEY_NONE, VALUE_NONE, 0},
    [PROTO_BIN_QUITQ] = {PROTO_QUIT, 0, KEY_NONE, VALUE_NONE, F_QUIET},
    [PROTO_BIN_FLUSH] = {PROTO_FLUSH_ALL, 4, KEY_NONE, VALUE_NONE, F_EXT_OPTIONAL},
    [PROTO_BIN_FLUSHQ] = {PROTO_FLUSH_ALL, 4, KEY_NONE, VALUE_NONE, F_EXT_OPTIONAL | F_QUIET},
    [PROTO_BIN_NOOP] = {PROTO_NOOP, 0, KEY_NONE, VALUE_NONE, 0},
    [PROTO_BIN_VERSION] = {PROTO_VERSION, 0, KEY_NONE, VALUE_NONE, 0},
    [PROTO_BIN_STAT] = {PROTO_STATS, 0, KEY_STAT, VALUE_NONE, 0},
    [PROTO_BIN_SASL_LIST] = {PROTO_SASL_LIST, 0, KEY_NONE, VALUE_NONE, 0},
    [PROTO_BIN_SASL_AUTH] = {PROTO_SASL_AUTH, 0, KEY_MECH, VALUE_INLINE, 0},
    [PROTO_BIN_SASL_STEP] = {PROTO_SASL_STEP, 0, KEY_MECH, VALUE_INLINE, 0},
};

static uint16_t rd16(const unsigned char *p) { return (uint16_t)((unsigned)p[0] << 8 | p[1]); }

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) << 32 | rd32(p + 4); }

static void wr16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void wr32(unsigned char *p, uint32_t v)
{
    wr16(p, (uint16_t)(v >> 16));
    wr16(p + 2, (uint16_t)v);
}

/* Refuse the request: answer status with error, drop skip more bytes.
 * Returns consumed, for the caller to return. */
static ssize_t refuse(struct proto_bin_req *r, uint16_t status, const char *error, size_t consumed, uint64_t skip)
{
    r->status = status;
    r->error = error;
    r->skip = skip;
    r->req.type = status == PROTO_BIN_UNKNOWN_COMMAND ? PROTO_UNKNOWN : PROTO_BAD;
    r->req.error = error;
    r->req.swallow = skip;
    return (ssize_t)consumed;
}

/* The checks the header alone decides. Returns NULL, or the reason with
 * *status set. */
static const char *check_header(const struct bin_cmd *c, unsigned extlen, unsigned keylen, uint32_t bodylen,
                                uint64_t cas, uint64_t max_item, uint16_t *status)
{
    *status = PROTO_BIN_EINVAL;
    if (extlen != c->ext && !(extlen == 0 && (c->flags & F_EXT_OPTIONAL)))
        return E_EXTRAS;
    if ((uint64_t)extlen + keylen > bodylen)
        return E_LENGTHS;
    if (c->key == KEY_NONE && keylen > 0)
        return E_KEY_NONE;
    if (c->key != KEY_NONE && c->key != KEY_STAT && keylen == 0)
        return E_KEY_NEEDED;
    if (keylen > (c->key == KEY_MECH ? PROTO_BIN_MAX_MECH : PROTO_BIN_MAX_KEY))
        return c->key == KEY_MECH ? E_MECH : E_KEY_LONG;
    uint64_t value = (uint64_t)bodylen - extlen - keylen;
    if (c->value == VALUE_NONE && value > 0)
        return E_VALUE_NONE;
    if (c->type == PROTO_SET && cas != 0)
        return E_CAS;
    *status = PROTO_BIN_E2BIG;
    if (c->value == VALUE_STREAM && value > max_item)
        return E_TOO_LARGE;
    if (c->value == VALUE_INLINE && value > PROTO_BIN_MAX_SASL)
        return E_SASL_LARGE;
    return NULL;
}

/* A SASL mechanism name (RFC 4422): upper-case letters, digits, '-', '_'. */
static int is_mech(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* The key: parsed into r->req per its kind. Returns NULL, or the reason. */
static const char *take_key(const struct bin_cmd *c, const unsigned char *key, size_t keylen, struct proto_bin_req *r)
{
    const char *p = (const char *)key, *error = NULL;
    struct proto_req *q = &r->req;
    switch ((enum key_kind)c->key) {
    case KEY_NONE:
        break;
    case KEY_GET:
        if (proto_parse_key(p, keylen, 0, &q->key, &error) < 0)
            return error;
        if ((q->key.opts & PROTO_OPT_TTR) && !(q->key.opts & PROTO_OPT_OPEN))
            return E_OPT_COMBINATION; /* a lease is for an item handed out open, as in a text get */
        q->keys = q->key.full;
        q->nkeys = 1;
        q->gets = 1;
        break;
    case KEY_SET:
        if (proto_parse_key(p, keylen, 1, &q->key, &error) < 0)
            return error;
        break;
    case KEY_PLAIN:
        if (proto_parse_key(p, keylen, 0, &q->key, &error) < 0)
            return error;
        if (q->key.opts)
            return E_OPT_NOT_ALLOWED;
        break;
    case KEY_STAT:
        for (size_t i = 0; i < keylen; i++)
            if (key[i] < ' ' || key[i] == 0x7f)
                return E_STAT;
        q->keys.p = keylen ? p : NULL;
        q->keys.len = keylen;
        break;
    case KEY_MECH:
        if (!is_mech(key, keylen))
            return E_MECH;
        r->mech.p = p;
        r->mech.len = keylen;
        break;
    }
    return NULL;
}

ssize_t proto_bin_parse(const unsigned char *buf, size_t len, uint64_t max_item, struct proto_bin_req *req)
{
    memset(req, 0, sizeof *req);
    if (len == 0)
        return PROTO_NEED_MORE;
    if (buf[0] != PROTO_BIN_REQ_MAGIC) {
        /* Echo what there is of the header; the rest cannot be trusted. */
        req->opcode = len > 1 ? buf[1] : 0;
        req->opaque = len >= 16 ? rd32(buf + 12) : 0;
        refuse(req, PROTO_BIN_EINVAL, E_MAGIC, 0, 0);
        req->req.fatal = 1;
        return PROTO_BIN_BAD_MAGIC;
    }
    if (len < PROTO_BIN_HEADER)
        return PROTO_NEED_MORE;

    req->opcode = buf[1];
    unsigned keylen = rd16(buf + 2), extlen = buf[4];
    uint32_t bodylen = rd32(buf + 8);
    req->opaque = rd32(buf + 12);
    req->cas = rd64(buf + 16);
    /* buf[5] (data type) and buf[6..7] (vbucket) are not used. */

    const struct bin_cmd *c = &CMDS[req->opcode];
    if (!c->type)
        return refuse(req, PROTO_BIN_UNKNOWN_COMMAND, E_UNKNOWN, PROTO_BIN_HEADER, bodylen);
    req->quiet = (c->flags & F_QUIET) != 0;
    req->with_key = (c->flags & F_WITH_KEY) != 0;

    uint16_t status;
    const char *error = check_header(c, extlen, keylen, bodylen, req->cas, max_item, &status);
    if (error)
        return refuse(req, status, error, PROTO_BIN_HEADER, bodylen);

    /* Lengths are checked: extlen + keylen <= bodylen, keylen and an inline
     * value bounded, so need stays small. */
    uint64_t value = (uint64_t)bodylen - extlen - keylen;
    size_t need = PROTO_BIN_HEADER + extlen + keylen + (c->value == VALUE_INLINE ? (size_t)value : 0);
    if (len < need)
        return PROTO_NEED_MORE;

    const unsigned char *ext = buf + PROTO_BIN_HEADER, *key = ext + extlen;
    struct proto_req *q = &req->req;
    q->type = (enum proto_type)c->type;
    q->noreply = req->quiet;
    error = take_key(c, key, keylen, req);
    if (error) {
        memset(q, 0, sizeof *q);
        memset(&req->mech, 0, sizeof req->mech);
        return refuse(req, PROTO_BIN_EINVAL, error, need, (uint64_t)bodylen - (need - PROTO_BIN_HEADER));
    }
    if (c->type == PROTO_SET) {
        q->flags = rd32(ext);
        q->exptime = (int64_t)rd32(ext + 4);
        q->bytes = value;
    } else if (c->type == PROTO_FLUSH_ALL && extlen == 4) {
        q->exptime = (int64_t)rd32(ext);
    } else if (c->value == VALUE_INLINE) {
        req->data.p = value ? (const char *)key + keylen : NULL;
        req->data.len = (size_t)value;
    }
    return (ssize_t)need;
}

size_t proto_bin_header(unsigned char out[PROTO_BIN_HEADER], uint8_t opcode, uint16_t status, uint16_t keylen,
                        uint8_t extlen, uint32_t bodylen, uint32_t opaque, uint64_t cas)
{
    out[0] = PROTO_BIN_RES_MAGIC;
    out[1] = opcode;
    wr16(out + 2, keylen);
    out[4] = extlen;
    out[5] = 0; /* data type: raw bytes */
    wr16(out + 6, status);
    wr32(out + 8, bodylen);
    wr32(out + 12, opaque);
    wr32(out + 16, (uint32_t)(cas >> 32));
    wr32(out + 20, (uint32_t)cas);
    return PROTO_BIN_HEADER;
}
