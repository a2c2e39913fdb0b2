/* tls.c: the TLS transport (tls.h). Each connection has an SSL object
 * whose input and output are memory BIOs: bytes read from the socket go
 * into the input BIO and SSL_read turns them into requests in the
 * connection's read buffer; answers go through SSL_write into the output
 * BIO, whose ciphertext this file writes to the socket, in order, with
 * one write in flight at a time. */
#include "tls.h"

#include "conn.h"
#include "util/buf.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct tls_ctx {
    SSL_CTX *ssl;
    int refs;
};

/* A connection's TLS state. */
struct tls_conn {
    uv_tcp_t *tcp; /* the owner's */
    void *owner;   /* what ops get */
    const struct tls_peer_ops *ops;
    struct tls_ctx *ctx; /* a reference */
    SSL *ssl;
    BIO *in, *out; /* owned by ssl */
    int handshaken;
    int app_pending; /* a write returned 0: ci_write_done is owed */
    uv_write_t wreq;
    char *wbuf; /* the ciphertext being written (uv_write in flight) */
    int wbusy;
    int dead;         /* its owner let go of it: freed once nothing of it runs */
    int depth;        /* calls into it under way (an owner callback may free it meanwhile) */
    char rbuf[16384]; /* ciphertext from the socket */
};

/* ---- contexts ---- */

/* OpenSSL's error queue as text, emptied. */
static void ssl_errors(char *out, size_t n)
{
    unsigned long e;
    size_t len = strlen(out);
    while ((e = ERR_get_error()) != 0 && len + 2 < n) {
        char one[256];
        ERR_error_string_n(e, one, sizeof(one));
        len += (size_t)snprintf(out + len, n - len, "%s%s", len ? "; " : "", one);
    }
    ERR_clear_error();
}

static int fail(char *err, size_t errlen, const char *what, const char *file)
{
    snprintf(err, errlen, "%s %s: ", what, file);
    ssl_errors(err, errlen);
    return -EINVAL;
}

int tls_ctx_new(const struct tls_settings *ts, struct tls_ctx **out, char *err, size_t errlen)
{
    err[0] = '\0';
    if (!ts->chain_cert || !ts->chain_cert[0]) {
        snprintf(err, errlen, "TLS needs a certificate: --ssl-chain-cert FILE");
        return -EINVAL;
    }
    struct tls_ctx *t = calloc(1, sizeof(*t));
    SSL_CTX *ssl = SSL_CTX_new(TLS_server_method());
    int rc = 0;
    if (!t || !ssl) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    SSL_CTX_set_min_proto_version(ssl, ts->min_version);
    /* no client-initiated renegotiation (TLS 1.2); a session cache of our own
     * is not needed for a few long-lived connections per client */
    SSL_CTX_set_options(ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
    /* resumed sessions must be told apart from other servers' (OpenSSL
     * refuses to resume without this when client certificates are checked) */
    static const unsigned char sid_ctx[] = "darner";
    SSL_CTX_set_session_id_context(ssl, sid_ctx, sizeof(sid_ctx) - 1);
    const char *key = ts->key && ts->key[0] ? ts->key : ts->chain_cert;
    if (SSL_CTX_use_certificate_chain_file(ssl, ts->chain_cert) != 1) {
        rc = fail(err, errlen, "cannot use the certificate chain", ts->chain_cert);
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(ssl, key, SSL_FILETYPE_PEM) != 1) {
        rc = fail(err, errlen, "cannot use the private key", key);
        goto out;
    }
    if (SSL_CTX_check_private_key(ssl) != 1) {
        rc = fail(err, errlen, "the private key does not match the certificate in", ts->chain_cert);
        goto out;
    }
    if (ts->ca_cert && ts->ca_cert[0]) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ts->ca_cert);
        if (!names || SSL_CTX_load_verify_locations(ssl, ts->ca_cert, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            rc = fail(err, errlen, "cannot load the CA certificates", ts->ca_cert);
            goto out;
        }
        SSL_CTX_set_client_CA_list(ssl, names);
    }
    static const int modes[] = {
        SSL_VERIFY_NONE,
        SSL_VERIFY_PEER,
        SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
        SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT | SSL_VERIFY_CLIENT_ONCE,
    };
    if (ts->verify_mode < 0 || ts->verify_mode > 3) {
        snprintf(err, errlen, "ssl_verify_mode %d: 0 (none), 1 (request), 2 (require) or 3 (once)", ts->verify_mode);
        rc = -EINVAL;
        goto out;
    }
    if (ts->verify_mode > 0 && !(ts->ca_cert && ts->ca_cert[0])) {
        snprintf(err, errlen, "ssl_verify_mode %d checks client certificates: it needs --ssl-ca-cert", ts->verify_mode);
        rc = -EINVAL;
        goto out;
    }
    SSL_CTX_set_verify(ssl, modes[ts->verify_mode], NULL);
    t->ssl = ssl;
    t->refs = 1;
    *out = t;
    return 0;
out:
    SSL_CTX_free(ssl);
    free(t);
    return rc;
}

void tls_ctx_put(struct tls_ctx *t)
{
    if (t && --t->refs == 0) {
        SSL_CTX_free(t->ssl);
        free(t);
    }
}

const char *const TLS_VERSION_NAMES[] = {"tlsv1.2", "tlsv1.3", NULL};

static const struct {
    const char *name;
    int version;
} VERSIONS[] = {{"tlsv1.2", TLS1_2_VERSION}, {"tlsv1.3", TLS1_3_VERSION}};

int tls_parse_version(const char *name, int *version)
{
    for (size_t i = 0; i < sizeof(VERSIONS) / sizeof(VERSIONS[0]); i++)
        if (strcasecmp(name, VERSIONS[i].name) == 0) {
            *version = VERSIONS[i].version;
            return 0;
        }
    return -EINVAL;
}

const char *tls_version_name(int version)
{
    for (size_t i = 0; i < sizeof(VERSIONS) / sizeof(VERSIONS[0]); i++)
        if (VERSIONS[i].version == version)
            return VERSIONS[i].name;
    return "?";
}

/* ---- one connection ---- */

struct tls_conn *tls_peer_new(struct tls_ctx *t, uv_tcp_t *tcp, void *owner, const struct tls_peer_ops *ops)
{
    struct tls_conn *tc = calloc(1, sizeof(*tc));
    if (!tc)
        return NULL;
    tc->ssl = SSL_new(t->ssl);
    tc->in = BIO_new(BIO_s_mem());
    tc->out = BIO_new(BIO_s_mem());
    if (!tc->ssl || !tc->in || !tc->out) {
        BIO_free(tc->in);
        BIO_free(tc->out);
        SSL_free(tc->ssl);
        free(tc);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_mem_eof_return(tc->in, -1); /* empty: "try again", not end of file */
    SSL_set_bio(tc->ssl, tc->in, tc->out);
    SSL_set_accept_state(tc->ssl);
    t->refs++;
    tc->ctx = t;
    tc->tcp = tcp;
    tc->owner = owner;
    tc->ops = ops;
    return tc;
}

static void flush(struct tls_conn *tc);

/* An entry point begins: tc stays allocated until the matching leave(),
 * even if an owner callback lets go of it meanwhile. */
static void enter(struct tls_conn *tc) { tc->depth++; }

/* Returns 1 when tc was freed (the caller must not touch it). */
static int leave(struct tls_conn *tc)
{
    if (--tc->depth == 0 && tc->dead && !tc->wbusy) {
        free(tc);
        return 1;
    }
    return 0;
}

/* Tells the owner how the output went: the result of the write it was
 * told would finish later, if one is pending; else, on a failure, that the
 * stream is over. */
static void report(struct tls_conn *tc, int status)
{
    if (tc->app_pending) {
        tc->app_pending = 0;
        tc->ops->write_done(tc->owner, status);
    } else if (status < 0) {
        tc->ops->end(tc->owner);
    }
}

static void write_cb(uv_write_t *req, int status)
{
    struct tls_conn *tc = req->data;
    free(tc->wbuf);
    tc->wbuf = NULL;
    tc->wbusy = 0;
    enter(tc);
    if (tc->dead) {
        /* let go of while this write was in flight: it waited for it */
    } else if (status < 0) {
        report(tc, status);
    } else {
        flush(tc);
    }
    leave(tc);
}

/* Writes the ciphertext waiting in the output BIO: directly while the
 * socket takes it, else with one uv_write in flight; tells the owner when
 * a write it was told would finish later has. */
static void flush(struct tls_conn *tc)
{
    while (!tc->wbusy && !tc->dead && !tc->ops->closing(tc->owner)) {
        char *p;
        long n = BIO_get_mem_data(tc->out, &p);
        if (n <= 0) {
            report(tc, 0);
            return;
        }
        uv_buf_t b = uv_buf_init(p, (unsigned)n);
        int w = uv_try_write((uv_stream_t *)tc->tcp, &b, 1);
        if (w == UV_EAGAIN)
            w = 0;
        if (w < 0) {
            report(tc, w);
            return;
        }
        if (w == n) {
            (void)BIO_reset(tc->out);
            continue;
        }
        /* the rest leaves with a write request: a copy of its own, as the
         * BIO's buffer moves when it grows */
        size_t left = (size_t)(n - w);
        tc->wbuf = malloc(left);
        if (!tc->wbuf) {
            report(tc, UV_ENOMEM);
            return;
        }
        memcpy(tc->wbuf, p + w, left);
        (void)BIO_reset(tc->out);
        tc->wbusy = 1;
        tc->wreq.data = tc;
        b = uv_buf_init(tc->wbuf, (unsigned)left);
        int rc = uv_write(&tc->wreq, (uv_stream_t *)tc->tcp, &b, 1, write_cb);
        if (rc < 0) {
            tc->wbusy = 0;
            free(tc->wbuf);
            tc->wbuf = NULL;
            report(tc, rc);
        }
        return;
    }
}

/* Whether an SSL call's failure is only "more bytes needed". */
static int want_more(const struct tls_conn *tc, int ret)
{
    int e = SSL_get_error(tc->ssl, ret);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* Runs the handshake, then decrypts what has arrived into the owner's
 * room while it has some. Returns 0, or -1 when the peer was ended. */
static int pump(struct tls_conn *tc)
{
    if (!tc->handshaken) {
        int r = SSL_do_handshake(tc->ssl);
        if (r != 1) {
            int more = want_more(tc, r);
            ERR_clear_error();
            flush(tc); /* our part of the handshake, or the alert */
            if (!more) {
                tc->ops->end(tc->owner);
                return -1;
            }
            return 0;
        }
        tc->handshaken = 1;
    }
    for (;;) {
        char *p;
        size_t room;
        tc->ops->room(tc->owner, &p, &room);
        if (room == 0)
            break; /* the owner's buffer is full: the rest waits in the BIO */
        int n = SSL_read(tc->ssl, p, room > INT32_MAX ? INT32_MAX : (int)room);
        if (n <= 0) {
            int e = SSL_get_error(tc->ssl, n);
            ERR_clear_error();
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                break;
            flush(tc); /* a close_notify of ours, or an alert */
            tc->ops->end(tc->owner);
            return -1;
        }
        tc->ops->input(tc->owner, (size_t)n);
        if (tc->dead || tc->ops->closing(tc->owner))
            return -1;
        if (!tc->ops->reading(tc->owner))
            return 0;
    }
    flush(tc); /* a key update, a session ticket */
    return 0;
}

uv_buf_t tls_peer_rbuf(struct tls_conn *tc) { return uv_buf_init(tc->rbuf, sizeof(tc->rbuf)); }

void tls_peer_feed(struct tls_conn *tc, ssize_t nread, const uv_buf_t *buf)
{
    if (nread < 0) {
        tc->ops->end(tc->owner);
        return;
    }
    if (nread == 0)
        return;
    if (BIO_write(tc->in, buf->base, (int)nread) != (int)nread) {
        tc->ops->end(tc->owner);
        return;
    }
    enter(tc);
    pump(tc);
    leave(tc);
}

int tls_peer_read_start(struct tls_conn *tc, uv_alloc_cb alloc, uv_read_cb read)
{
    int rc = uv_read_start((uv_stream_t *)tc->tcp, alloc, read);
    /* Bytes decrypted or received while the owner's buffer was full wait in
     * SSL and its BIO, not in the socket: the socket may never become
     * readable for them, so they are delivered from here. */
    if (rc == 0 && tc->handshaken && (SSL_pending(tc->ssl) > 0 || BIO_ctrl_pending(tc->in) > 0)) {
        enter(tc);
        pump(tc);
        leave(tc);
    }
    return rc;
}

void tls_peer_read_stop(struct tls_conn *tc) { uv_read_stop((uv_stream_t *)tc->tcp); }

int tls_peer_write(struct tls_conn *tc, const char *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        size_t part = n - done > INT32_MAX ? INT32_MAX : n - done;
        int w = SSL_write(tc->ssl, p + done, (int)part);
        if (w <= 0) {
            ERR_clear_error();
            return UV_EPROTO; /* a memory BIO takes everything: this is a broken session */
        }
        done += (size_t)w;
    }
    enter(tc);
    flush(tc);
    int rc;
    if (tc->dead || tc->ops->closing(tc->owner))
        rc = UV_ECONNRESET;
    else if (!tc->wbusy && BIO_ctrl_pending(tc->out) == 0)
        rc = 1;
    else
        rc = (tc->app_pending = 1, 0);
    leave(tc);
    return rc;
}

void tls_peer_free(struct tls_conn *tc)
{
    if (!tc)
        return;
    if (tc->handshaken && !tc->wbusy) {
        /* a close_notify, if the socket takes it now; no waiting for it */
        SSL_shutdown(tc->ssl);
        char *p;
        long n = BIO_get_mem_data(tc->out, &p);
        if (n > 0) {
            uv_buf_t b = uv_buf_init(p, (unsigned)n);
            uv_try_write((uv_stream_t *)tc->tcp, &b, 1);
        }
    }
    ERR_clear_error();
    SSL_free(tc->ssl);
    tc->ssl = NULL;
    tls_ctx_put(tc->ctx);
    tc->ctx = NULL;
    tc->dead = 1;
    /* a write in flight ends (canceled) once the handle closes, and a call
     * under way ends: the last of them frees it */
    if (!tc->wbusy && tc->depth == 0)
        free(tc);
}

/* ---- the connection transport ---- */

static void c_room(void *o, char **p, size_t *n) { ci_input_room(o, p, n); }
static void c_input(void *o, size_t n) { ci_input(o, n); }
static void c_end(void *o) { ci_input_end(o); }
static void c_write_done(void *o, int status) { ci_write_done(o, status); }
static int c_closing(const void *o) { return ci_closing(o); }
static int c_reading(const void *o) { return ((const struct conn *)o)->reading; }

static const struct tls_peer_ops CONN_OPS = {.room = c_room,
                                             .input = c_input,
                                             .end = c_end,
                                             .write_done = c_write_done,
                                             .closing = c_closing,
                                             .reading = c_reading};

int tls_conn_start(struct conn *c, struct tls_ctx *t)
{
    struct tls_conn *tc = tls_peer_new(t, &c->tcp, c, &CONN_OPS);
    if (!tc)
        return -ENOMEM;
    c->tp = &transport_tls;
    c->tp_state = tc;
    return 0;
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    *buf = tls_peer_rbuf(((struct conn *)h->data)->tp_state);
}

static void conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tls_peer_feed(((struct conn *)s->data)->tp_state, nread, buf);
}

static int tls_read_start(struct conn *c) { return tls_peer_read_start(c->tp_state, conn_alloc, conn_read); }
static void tls_read_stop(struct conn *c)
{
    if (c->tp_state)
        tls_peer_read_stop(c->tp_state);
}
static int tls_write(struct conn *c, char *p, size_t n) { return tls_peer_write(c->tp_state, p, n); }

static void tls_close(struct conn *c)
{
    tls_peer_free(c->tp_state);
    c->tp_state = NULL;
}

const struct transport transport_tls = {
    .name = "tls",
    .read_start = tls_read_start,
    .read_stop = tls_read_stop,
    .write = tls_write,
    .close = tls_close,
};
