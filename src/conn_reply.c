/* conn_reply.c: a request's answers in the protocol its connection speaks.
 *
 * Each kind of answer is one line of a table: its text (a format taking the
 * detail) and its binary status. The text forms are what the text protocol
 * always answered; a binary answer is a response header echoing the
 * request's opcode and opaque, with the detail as its body (a reason for an
 * error, a version, a mechanism list) or as its key (a GetK's miss). Quiet
 * binary requests (GetQ, SetQ, ...) answer nothing on success, and a GetQ
 * nothing on a miss. docs/protocol.md, "Binary protocol", has the rules. */
#include "conn_int.h"

#include "proto/bin.h"

#include <inttypes.h>
#include <string.h>

#define B_NONE 0xffff   /* no binary answer (the text protocol's END after values) */
#define B_PARSED 0xfffe /* the binary parser's status for the request */

enum {
    F_ERROR = 1, /* counts as an error */
    F_BODY = 2,  /* OK with the detail as body */
    F_KEY = 4,   /* the detail is the key (a GetK's miss) */
};

static const struct reply_form {
    const char *text; /* format of one "%.*s" (the detail), or NULL: nothing in text */
    uint16_t status;  /* binary status, B_NONE or B_PARSED */
    unsigned char flags;
    const char *why; /* binary body of an error without a detail */
} FORMS[REPLY_KINDS] = {
    [REPLY_STORED] = {"STORED\r\n", PROTO_BIN_OK, 0, NULL},
    [REPLY_NOT_STORED] = {"NOT_STORED\r\n", PROTO_BIN_NOT_STORED, 0, "Not stored"},
    [REPLY_TOO_LARGE] = {"NOT_STORED\r\n", PROTO_BIN_E2BIG, 0, "Too large"},
    [REPLY_DELETED] = {"DELETED\r\n", PROTO_BIN_OK, 0, NULL},
    [REPLY_OK] = {"OK\r\n", PROTO_BIN_OK, 0, NULL},
    [REPLY_FLUSHED] = {"%.*s", PROTO_BIN_OK, 0, NULL},
    [REPLY_END] = {"END\r\n", PROTO_BIN_OK, 0, NULL},
    [REPLY_MISS] = {"END\r\n", PROTO_BIN_KEY_ENOENT, F_KEY, "Not found"},
    [REPLY_GET_END] = {"END\r\n", B_NONE, 0, NULL},
    [REPLY_QUIT] = {NULL, PROTO_BIN_OK, 0, NULL},
    [REPLY_NOOP] = {NULL, PROTO_BIN_OK, 0, NULL},
    [REPLY_VERSION] = {"VERSION %.*s\r\n", PROTO_BIN_OK, F_BODY, NULL},
    [REPLY_UNKNOWN] = {"ERROR\r\n", PROTO_BIN_UNKNOWN_COMMAND, F_ERROR, "Unknown command"},
    [REPLY_BAD] = {"CLIENT_ERROR %.*s\r\n", B_PARSED, F_ERROR, "Invalid arguments"},
    [REPLY_CLIENT_ERROR] = {"CLIENT_ERROR %.*s\r\n", PROTO_BIN_EINVAL, F_ERROR, "Invalid arguments"},
    [REPLY_SERVER_ERROR] = {"SERVER_ERROR %.*s\r\n", PROTO_BIN_EINTERNAL, F_ERROR, "Internal error"},
    [REPLY_NO_MEMORY] = {"SERVER_ERROR %.*s\r\n", PROTO_BIN_ENOMEM, F_ERROR, "Out of memory"},
    [REPLY_REFUSED] = {"SERVER_ERROR %.*s\r\n", PROTO_BIN_ETMPFAIL, F_ERROR, "Temporary failure"},
    [REPLY_AUTH_ERROR] = {"CLIENT_ERROR %.*s\r\n", PROTO_BIN_AUTH_ERROR, F_ERROR, "Auth failure"},
    [REPLY_AUTH_OK] = {"STORED\r\n", PROTO_BIN_OK, F_BODY, NULL},
    [REPLY_MECHS] = {NULL, PROTO_BIN_OK, F_BODY, NULL},
};

/* Whether a quiet request's answer of this status is left out: a GetQ's
 * miss, any other quiet request's success. */
static int silenced(const struct reply_to *to, uint16_t status)
{
    if (!to->quiet)
        return 0;
    int getq = to->opcode == PROTO_BIN_GETQ || to->opcode == PROTO_BIN_GETKQ;
    return status == (getq ? PROTO_BIN_KEY_ENOENT : PROTO_BIN_OK);
}

/* Appends one binary response to b (the caller's): header, extras, key,
 * value (all borrowed). */
static void bin_packet(struct buf *b, const struct reply_to *to, uint16_t status, const void *ext, uint8_t extlen,
                       const char *key, size_t keylen, const char *val, size_t vallen, uint64_t cas)
{
    unsigned char h[PROTO_BIN_HEADER];
    keylen = keylen > UINT16_MAX ? UINT16_MAX : keylen;
    proto_bin_header(h, to->opcode, status, (uint16_t)keylen, extlen, (uint32_t)(extlen + keylen + vallen), to->opaque,
                     cas);
    buf_append(b, h, sizeof(h));
    buf_append(b, ext, extlen);
    buf_append(b, key, keylen);
    buf_append(b, val, vallen);
}

/* Borrows p[0..n); writes into b, which the caller owns. Returns 1 when the
 * answer is an error. */
int ci_reply_buf(struct buf *b, const struct reply_to *to, enum reply kind, const char *p, size_t n)
{
    const struct reply_form *f = &FORMS[kind];
    int err = (f->flags & F_ERROR) != 0;
    if (!to->binary) {
        if (f->text)
            buf_printf(b, f->text, (int)n, p ? p : "");
        return err;
    }
    uint16_t status = f->status == B_PARSED ? to->bad_status : f->status;
    if (status == B_NONE || silenced(to, status))
        return err;
    if (status == PROTO_BIN_OK && !(f->flags & F_BODY))
        n = 0;
    else if (status != PROTO_BIN_OK && !n && f->why) /* an error says why */
        p = f->why, n = strlen(f->why);
    if ((f->flags & F_KEY) && to->with_key)
        bin_packet(b, to, status, NULL, 0, p, n, NULL, 0, 0);
    else if (f->flags & F_KEY)
        bin_packet(b, to, status, NULL, 0, NULL, 0, f->why, strlen(f->why), 0);
    else
        bin_packet(b, to, status, NULL, 0, NULL, 0, p, n, 0);
    return err;
}

/* Borrows p[0..n) (NULL: no detail). */
void ci_reply_n(struct conn *c, enum reply kind, const char *p, size_t n)
{
    struct buf b = {0};
    if (ci_reply_buf(&b, &c->rt, kind, p, n))
        ci_outcome(c, CMD_ERROR);
    if (b.len)
        ci_out_bytes(c, b.data, b.len);
    buf_free(&b);
}

void ci_reply(struct conn *c, enum reply kind, const char *detail)
{
    ci_reply_n(c, kind, detail, detail ? strlen(detail) : 0);
}

/* Borrows key. The item's len bytes follow, then ci_reply_value_end(). */
void ci_reply_value(struct conn *c, const struct proto_slice *key, uint32_t flags, uint64_t len, int with_cas,
                    uint64_t cas)
{
    if (!c->rt.binary) {
        ci_out_str(c, "VALUE ");
        ci_out_bytes(c, key->p, key->len);
        if (with_cas)
            ci_out_fmt(c, " %" PRIu32 " %" PRIu64 " %" PRIu64 "\r\n", flags, len, cas);
        else
            ci_out_fmt(c, " %" PRIu32 " %" PRIu64 "\r\n", flags, len);
        return;
    }
    /* the header's body length counts the item's bytes, sent after it */
    unsigned char h[PROTO_BIN_HEADER + 4];
    size_t keylen = c->rt.with_key ? key->len : 0;
    proto_bin_header(h, c->rt.opcode, PROTO_BIN_OK, (uint16_t)keylen, 4, (uint32_t)(4 + keylen + len), c->rt.opaque,
                     cas);
    h[24] = (unsigned char)(flags >> 24);
    h[25] = (unsigned char)(flags >> 16);
    h[26] = (unsigned char)(flags >> 8);
    h[27] = (unsigned char)flags;
    ci_out_bytes(c, h, sizeof(h));
    if (keylen)
        ci_out_bytes(c, key->p, keylen);
}

void ci_reply_value_end(struct conn *c)
{
    if (!c->rt.binary)
        ci_out_str(c, "\r\n");
}

/* Borrows text: the text protocol's stats answer ("STAT name value" lines,
 * then END). In binary, one response per stat (its name the key, its value
 * the body), then an empty one. */
void ci_reply_stats(struct conn *c, const struct buf *text)
{
    if (!c->rt.binary) {
        ci_out_bytes(c, text->data, text->len);
        return;
    }
    struct buf b = {0};
    const char *p = text->data, *end = text->data + text->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        const char *next = nl ? nl + 1 : end;
        if (eol > p && eol[-1] == '\r')
            eol--;
        if ((size_t)(eol - p) > 5 && memcmp(p, "STAT ", 5) == 0) {
            const char *name = p + 5;
            const char *sp = memchr(name, ' ', (size_t)(eol - name));
            const char *val = sp ? sp + 1 : eol;
            bin_packet(&b, &c->rt, PROTO_BIN_OK, NULL, 0, name, (size_t)((sp ? sp : eol) - name), val,
                       (size_t)(eol - val), 0);
        }
        p = next;
    }
    bin_packet(&b, &c->rt, PROTO_BIN_OK, NULL, 0, NULL, 0, NULL, 0, 0);
    ci_out_bytes(c, b.data, b.len);
    buf_free(&b);
}
