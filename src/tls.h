/* tls.h: TLS for client connections with OpenSSL, memcached's way (-Z,
 * --ssl-chain-cert, --ssl-key, --ssl-ca-cert, --ssl-verify-mode,
 * --ssl-min-version; docs/operations.md, "TLS"). OpenSSL works on memory
 * buffers here: ciphertext moves through the connection's own libuv TCP
 * handle, so TLS connections live on the server's loop like plain ones. */
#ifndef DARNER_TLS_H
#define DARNER_TLS_H

#include <stddef.h>
#include <uv.h>

#include "transport.h"

struct conn;

/* What a context is made from (strings borrowed for the call). */
struct tls_settings {
    const char *chain_cert; /* PEM: the certificate, then its chain */
    const char *key;        /* PEM private key ("": in chain_cert) */
    const char *ca_cert;    /* PEM: CAs whose client certificates are accepted ("": none) */
    int verify_mode;        /* 0 none, 1 request, 2 require, 3 once (memcached's ssl_verify_mode) */
    int min_version;        /* TLS1_2_VERSION or TLS1_3_VERSION */
};

/* A server context; connections hold references, so a reload (SIGHUP) can
 * replace it while connections made under the old one go on. */
struct tls_ctx;

/* Makes a context: loads and checks the certificate, key and CAs. Returns 0
 * or -EINVAL with a message in err (errlen bytes) naming the file and what
 * OpenSSL said. */
int tls_ctx_new(const struct tls_settings *ts, struct tls_ctx **out, char *err, size_t errlen);
/* Drops a reference (the caller's); frees the context with the last one.
 * Accepts NULL. */
void tls_ctx_put(struct tls_ctx *t);

/* ssl_min_version's names, in its setting's order (NULL-terminated). */
extern const char *const TLS_VERSION_NAMES[];

/* "tlsv1.2" or "tlsv1.3" (memcached's names; any case) into *version.
 * Returns 0 or -EINVAL. */
int tls_parse_version(const char *name, int *version);
/* The name of a version tls_parse_version accepts. */
const char *tls_version_name(int version);

/* Makes c's transport TLS under t (takes a reference to t); the handshake
 * runs as the client's bytes arrive. Returns 0 or -ENOMEM. */
int tls_conn_start(struct conn *c, struct tls_ctx *t);

/* ---- TLS on any libuv TCP stream (the admin port uses it too) ---- */

/* What a TLS peer tells its owner, and asks of it. */
struct tls_peer_ops {
    void (*room)(void *owner, char **p, size_t *n); /* where plaintext goes (*n 0: nowhere now) */
    void (*input)(void *owner, size_t n);           /* n bytes of plaintext were put there */
    void (*end)(void *owner);                       /* the stream ended or failed: close it */
    void (*write_done)(void *owner, int status);    /* a write that returned 0 is over */
    int (*closing)(const void *owner);
    int (*reading)(const void *owner); /* 0: stop delivering input */
};

struct tls_conn;
/* A server-side TLS session on tcp (the owner's, which it closes) under t
 * (a reference is taken). Returns NULL when out of memory. */
struct tls_conn *tls_peer_new(struct tls_ctx *t, uv_tcp_t *tcp, void *owner, const struct tls_peer_ops *ops);
/* The owner's uv_read_start callbacks call these: the buffer to read
 * ciphertext into, and what was read (nread < 0: the stream ended). */
uv_buf_t tls_peer_rbuf(struct tls_conn *tc);
void tls_peer_feed(struct tls_conn *tc, ssize_t nread, const uv_buf_t *buf);
/* Starts reading with the owner's callbacks (which call the two above),
 * first delivering plaintext already decrypted. Returns 0 or a libuv error. */
int tls_peer_read_start(struct tls_conn *tc, uv_alloc_cb alloc, uv_read_cb read);
void tls_peer_read_stop(struct tls_conn *tc);
/* Encrypts and sends p[0..n). Returns 1 (all sent; p is free), 0
 * (write_done follows), or a negative libuv error. */
int tls_peer_write(struct tls_conn *tc, const char *p, size_t n);
/* The owner is closing tcp: a close_notify if the socket takes it, then the
 * session is freed (after a write in flight ends). Accepts NULL. */
void tls_peer_free(struct tls_conn *tc);

extern const struct transport transport_tls;

#endif
