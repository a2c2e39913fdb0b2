/* reply.h: one reply line of the memcache text protocol, classified. */
#ifndef DARNER_CLIENT_REPLY_H
#define DARNER_CLIENT_REPLY_H

#include <stddef.h>
#include <stdint.h>

enum dn_reply_kind {
    DN_R_UNKNOWN = 0,
    DN_R_STORED,
    DN_R_NOT_STORED,
    DN_R_END,
    DN_R_VALUE,
    DN_R_STAT,
    DN_R_DELETED,
    DN_R_VERSION,
    DN_R_OK,
    DN_R_ERROR,
    DN_R_CLIENT_ERROR,
    DN_R_SERVER_ERROR,
};

/* Slices point into the parsed line; nothing is copied. */
struct dn_reply {
    enum dn_reply_kind kind;
    const char *key; /* VALUE: key as echoed; STAT: name */
    size_t key_len;
    const char *text; /* STAT: value; VERSION: version; *_ERROR: reason */
    size_t text_len;
    uint32_t flags;  /* VALUE */
    uint64_t bytes;  /* VALUE */
};

/* Parses one reply line (len bytes, CRLF already removed). Returns 0, or
 * -EPROTO for a line that starts like a known reply but is malformed (a VALUE
 * without a readable size, say); an unrecognised line is DN_R_UNKNOWN with
 * return 0. Borrows line: the slices in *r point into it. */
int dn_reply_parse(const char *line, size_t len, struct dn_reply *r);

/* The negative errno a reply stands for when it is not the expected one:
 * NOT_STORED -> -ENOSPC (the queue's limits refused the item);
 * CLIENT_ERROR -> -EINVAL (-EBUSY for "already open"), SERVER_ERROR ->
 * -E2BIG for "object too large", -EAGAIN for "too many connections", else
 * -EIO; ERROR and anything else -> -EPROTO. */
int dn_reply_errno(const struct dn_reply *r);

#endif
