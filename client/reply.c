/* reply.c: reply-line parsing. Pure and zero-copy, like the server's own
 * parser: the caller's line in, slices out. */
#include "reply.h"

#include <errno.h>
#include <string.h>

static int starts(const char *line, size_t len, const char *word, size_t wlen)
{
    return len >= wlen && memcmp(line, word, wlen) == 0 && (len == wlen || line[wlen] == ' ');
}

/* Reads a decimal number from *p (advancing it past it and one space). */
static int take_u64(const char **p, const char *end, uint64_t max, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    if (s >= end || *s < '0' || *s > '9')
        return -EPROTO;
    while (s < end && *s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        if (x > (max - d) / 10)
            return -EPROTO;
        x = x * 10 + d;
        s++;
    }
    if (s < end && *s != ' ')
        return -EPROTO;
    *p = s < end ? s + 1 : s;
    *v = x;
    return 0;
}

static int parse_value(const char *line, size_t len, struct dn_reply *r)
{
    if (len < 7)
        return -EPROTO;
    const char *end = line + len;
    const char *p = line + 6; /* past "VALUE " */
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || sp == p)
        return -EPROTO;
    r->key = p;
    r->key_len = (size_t)(sp - p);
    p = sp + 1;
    uint64_t flags, bytes;
    if (take_u64(&p, end, UINT32_MAX, &flags) < 0 || take_u64(&p, end, UINT64_MAX, &bytes) < 0)
        return -EPROTO;
    /* A fourth field (a gets cas unique) is allowed and ignored. */
    if (p < end) {
        uint64_t cas;
        if (take_u64(&p, end, UINT64_MAX, &cas) < 0 || p < end)
            return -EPROTO;
    }
    r->flags = (uint32_t)flags;
    r->bytes = bytes;
    r->kind = DN_R_VALUE;
    return 0;
}

static int parse_stat(const char *line, size_t len, struct dn_reply *r)
{
    if (len < 6)
        return -EPROTO;
    const char *end = line + len;
    const char *p = line + 5; /* past "STAT " */
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    if (!sp || sp == p)
        return -EPROTO;
    r->key = p;
    r->key_len = (size_t)(sp - p);
    r->text = sp + 1;
    r->text_len = (size_t)(end - sp - 1);
    r->kind = DN_R_STAT;
    return 0;
}

/* The rest of the line after "WORD ", or an empty slice. */
static void rest_after(const char *line, size_t len, size_t wlen, struct dn_reply *r)
{
    r->text = line + (len > wlen ? wlen + 1 : len);
    r->text_len = len > wlen ? len - wlen - 1 : 0;
}

int dn_reply_parse(const char *line, size_t len, struct dn_reply *r)
{
    memset(r, 0, sizeof(*r));
    r->kind = DN_R_UNKNOWN;
#define WORD(w) starts(line, len, w, sizeof(w) - 1)
    if (len == 3 && memcmp(line, "END", 3) == 0)
        r->kind = DN_R_END;
    else if (len == 6 && memcmp(line, "STORED", 6) == 0)
        r->kind = DN_R_STORED;
    else if (len == 10 && memcmp(line, "NOT_STORED", 10) == 0)
        r->kind = DN_R_NOT_STORED;
    else if (len == 7 && memcmp(line, "DELETED", 7) == 0)
        r->kind = DN_R_DELETED;
    else if (len == 2 && memcmp(line, "OK", 2) == 0)
        r->kind = DN_R_OK;
    else if (len == 5 && memcmp(line, "ERROR", 5) == 0)
        r->kind = DN_R_ERROR;
    else if (WORD("VALUE"))
        return parse_value(line, len, r);
    else if (WORD("STAT"))
        return parse_stat(line, len, r);
    else if (WORD("VERSION")) {
        r->kind = DN_R_VERSION;
        rest_after(line, len, 7, r);
    } else if (WORD("CLIENT_ERROR")) {
        r->kind = DN_R_CLIENT_ERROR;
        rest_after(line, len, 12, r);
    } else if (WORD("SERVER_ERROR")) {
        r->kind = DN_R_SERVER_ERROR;
        rest_after(line, len, 12, r);
    }
#undef WORD
    return 0;
}

static int has(const struct dn_reply *r, const char *needle)
{
    size_t n = strlen(needle);
    if (r->text_len < n)
        return 0;
    for (size_t i = 0; i + n <= r->text_len; i++)
        if (memcmp(r->text + i, needle, n) == 0)
            return 1;
    return 0;
}

int dn_reply_errno(const struct dn_reply *r)
{
    switch (r->kind) {
    case DN_R_NOT_STORED:
        return -ENOSPC;
    case DN_R_CLIENT_ERROR:
        return has(r, "already open") ? -EBUSY : -EINVAL;
    case DN_R_SERVER_ERROR:
        if (has(r, "too large"))
            return -E2BIG;
        if (has(r, "too many connections"))
            return -EAGAIN;
        return -EIO;
    default:
        return -EPROTO;
    }
}
