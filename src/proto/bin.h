/* proto/bin.h: the memcache binary protocol request parser and response
 * header.
 *
 * Pure and zero-copy, like proto/parse.h: no I/O, no allocation, no globals.
 * A request is a 24-byte header, then extras, key and value, their lengths in
 * the header. proto_bin_parse() reads the header, extras and key; a Set's
 * value is not read but left to the caller, who streams it as the text
 * protocol's data block. Each request is mapped onto the text protocol's
 * struct proto_req, so one set of commands serves both protocols; keys carry
 * the same options (`q/open`, `q/t=500`, `q/pri=2`). */
#ifndef DARNER_PROTO_BIN_H
#define DARNER_PROTO_BIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/parse.h"

#define PROTO_BIN_HEADER 24      /* bytes of a request or response header */
#define PROTO_BIN_REQ_MAGIC 0x80 /* first byte of every request */
#define PROTO_BIN_RES_MAGIC 0x81 /* first byte of every response */
#define PROTO_BIN_MAX_KEY 512    /* longest key: a 250-byte name with its options */
#define PROTO_BIN_MAX_MECH 32    /* longest SASL mechanism name (memcached's limit) */
#define PROTO_BIN_MAX_SASL 16384 /* longest SASL data (the text handshake's limit) */
/* The most a request needs buffered before proto_bin_parse() answers:
 * header, the largest extras, the longest key or mechanism and SASL data. */
#define PROTO_BIN_MAX_BUFFERED (PROTO_BIN_HEADER + 8 + PROTO_BIN_MAX_KEY + PROTO_BIN_MAX_SASL)

/* The opcodes darner serves (memcached's protocol_binary.h numbers). */
enum proto_bin_opcode {
    PROTO_BIN_GET = 0x00,
    PROTO_BIN_SET = 0x01,
    PROTO_BIN_DELETE = 0x04,
    PROTO_BIN_QUIT = 0x07,
    PROTO_BIN_FLUSH = 0x08,
    PROTO_BIN_GETQ = 0x09,
    PROTO_BIN_NOOP = 0x0a,
    PROTO_BIN_VERSION = 0x0b,
    PROTO_BIN_GETK = 0x0c,
    PROTO_BIN_GETKQ = 0x0d,
    PROTO_BIN_STAT = 0x10,
    PROTO_BIN_SETQ = 0x11,
    PROTO_BIN_DELETEQ = 0x14,
    PROTO_BIN_QUITQ = 0x17,
    PROTO_BIN_FLUSHQ = 0x18,
    PROTO_BIN_SASL_LIST = 0x20,
    PROTO_BIN_SASL_AUTH = 0x21,
    PROTO_BIN_SASL_STEP = 0x22,
};

/* Response status codes (memcached's protocol_binary.h numbers). */
enum proto_bin_status {
    PROTO_BIN_OK = 0x0000,
    PROTO_BIN_KEY_ENOENT = 0x0001, /* not found: a get on an empty queue */
    PROTO_BIN_KEY_EEXISTS = 0x0002,
    PROTO_BIN_E2BIG = 0x0003,  /* value too large */
    PROTO_BIN_EINVAL = 0x0004, /* invalid arguments */
    PROTO_BIN_NOT_STORED = 0x0005,
    PROTO_BIN_AUTH_ERROR = 0x0020,
    PROTO_BIN_AUTH_CONTINUE = 0x0021,
    PROTO_BIN_UNKNOWN_COMMAND = 0x0081,
    PROTO_BIN_ENOMEM = 0x0082,
    PROTO_BIN_NOT_SUPPORTED = 0x0083,
    PROTO_BIN_EINTERNAL = 0x0084, /* a failure of the server itself (disk full, I/O error) */
    PROTO_BIN_EBUSY = 0x0085,
    PROTO_BIN_ETMPFAIL = 0x0086,
};

/* One binary request. */
struct proto_bin_req {
    uint8_t opcode;  /* as sent: echoed in the response */
    uint16_t status; /* PROTO_BIN_OK: serve req; else the status to answer */
    int quiet;       /* GetQ, GetKQ, SetQ, DeleteQ, QuitQ, FlushQ: answer only
                        errors (a GetQ's miss is no error) */
    int with_key;    /* GetK, GetKQ: the answer carries the key */
    uint32_t opaque; /* as sent: echoed in the response */
    uint64_t cas;    /* as sent */
    /* Not OK: a short reason (static string), for the response's body. */
    const char *error;
    /* Not OK: the bytes after the consumed ones that belong to this request
     * (rest of its body) and are read and dropped before the next one. */
    uint64_t skip;
    /* PROTO_SASL_AUTH, PROTO_SASL_STEP: the mechanism (key) and its data
     * (value), both in the consumed bytes. */
    struct proto_slice mech, data;
    /* The request as the text protocol's, when status is OK:
     * - PROTO_GET (Get, GetQ, GetK, GetKQ): one key in key and keys (nkeys 1),
     *   options as in a text get; gets is 1 (a binary answer carries a cas);
     * - PROTO_SET (Set, SetQ): key (set options), flags, exptime (the
     *   extras' unsigned 32 bits), bytes: the value's length, which follows
     *   the consumed bytes; noreply for SetQ;
     * - PROTO_DELETE (Delete, DeleteQ): key, a plain name; noreply for DeleteQ;
     * - PROTO_FLUSH_ALL (Flush, FlushQ): exptime is the optional delay
     *   (0 without one; ignored as the text flush_all's); noreply for FlushQ;
     * - PROTO_STATS: the optional key in keys (nkeys 0, as the text's
     *   arguments);
     * - PROTO_NOOP, PROTO_VERSION, PROTO_QUIT (noreply for QuitQ),
     *   PROTO_SASL_LIST, PROTO_SASL_AUTH, PROTO_SASL_STEP: nothing else.
     * When not OK: PROTO_UNKNOWN for an opcode not served, else PROTO_BAD,
     * with error and swallow (= skip) set as for a text request. */
    struct proto_req req;
};

/* Results of proto_bin_parse(), besides a positive consumed length. */
/* PROTO_NEED_MORE (0, proto/parse.h): the request is not complete yet. */
#define PROTO_BIN_BAD_MAGIC (-1) /* buf[0] is not 0x80: answer req (EINVAL) and close */

/* Parse one request from buf[0..len).
 *
 * Returns the bytes consumed (header, extras, key; a SASL auth or step's
 * data too; never a Set's value) with *req filled, PROTO_NEED_MORE while the
 * request's header, extras and key have not all arrived, or
 * PROTO_BIN_BAD_MAGIC: where the next request starts is unknown, so the
 * caller answers req (status EINVAL; opcode as sent if buf has it) and closes.
 *
 * Every other request keeps the connection: after the consumed bytes come
 * req->req.bytes of a Set's value (status OK) or req->skip bytes to drop (not
 * OK); either way the next request starts 24 + body length bytes after this
 * one's start. Errors found in the header alone consume just the header:
 * an opcode not served (UNKNOWN_COMMAND), lengths that do not add up, extras
 * of the wrong length, a key where none is allowed or none where one is
 * required, a key longer than PROTO_BIN_MAX_KEY, a value where none is
 * allowed, a Set with a cas (EINVAL), a Set's value over max_item or SASL
 * data over PROTO_BIN_MAX_SASL (E2BIG). A key that proto_parse_key() refuses
 * (EINVAL) is found once it has arrived.
 * Never needs more than PROTO_BIN_MAX_BUFFERED bytes.
 * Borrows buf; req's slices point into it. */
ssize_t proto_bin_parse(const unsigned char *buf, size_t len, uint64_t max_item, struct proto_bin_req *req);

/* Write a response header into out, in network byte order: the response
 * magic, opcode, key length, extras length, data type 0, status, total body
 * length (extras + key + value), opaque and cas. Returns PROTO_BIN_HEADER. */
size_t proto_bin_header(unsigned char out[PROTO_BIN_HEADER], uint8_t opcode, uint16_t status, uint16_t keylen,
                        uint8_t extlen, uint32_t bodylen, uint32_t opaque, uint64_t cas);

#endif
