/* conn_bin.c: the memcache binary protocol on a connection: each request
 * parsed by proto/bin.c onto the text protocol's struct proto_req (the same
 * commands run both), what its answers echo kept in c->rt, and SASL PLAIN
 * authentication against the auth file. */
#include "conn_int.h"

#include "auth.h"
#include "proto/bin.h"
#include "server.h"

#include <string.h>

/* Borrows p; req's slices point into it. */
ssize_t ci_bin_parse(struct conn *c, const char *p, size_t len, struct proto_req *req)
{
    struct proto_bin_req b;
    ssize_t r = proto_bin_parse((const unsigned char *)p, len, c->srv->cfg->max_item_size, &b);
    if (r == PROTO_NEED_MORE) { /* room for the most a request needs (else reading would stop at a full buffer) */
        if (ci_rbuf_reserve(c, (size_t)(p - c->rbuf) + PROTO_BIN_MAX_BUFFERED) < 0) {
            c->close_after = 1; /* out of memory: nothing can be answered in order */
            return -1;
        }
        return r;
    }
    c->rt = (struct reply_to){.binary = 1,
                              .opcode = b.opcode,
                              .quiet = (unsigned char)b.quiet,
                              .with_key = (unsigned char)b.with_key,
                              .bad_status = b.status,
                              .opaque = b.opaque};
    *req = b.req;
    req->noreply = 0; /* a quiet request's answers are left out by conn_reply.c, errors kept */
    c->sasl_mech = b.mech;
    c->sasl_data = b.data;
    if (r == PROTO_BIN_BAD_MAGIC) {
        ci_reply(c, REPLY_BAD, b.error);
        c->close_after = 1;
        return -1;
    }
    return r;
}

/* SASL PLAIN's message (RFC 4616): [authzid] NUL authcid NUL passwd. An
 * authorization identity, if given, must be the user. Returns 0 with *cred
 * pointing into data, or -1. */
static int plain_split(const struct proto_slice *data, struct auth_cred *cred)
{
    const char *p = data->p, *end = data->p + data->len;
    const char *nul1 = p ? memchr(p, '\0', data->len) : NULL;
    const char *nul2 = nul1 ? memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1)) : NULL;
    if (!nul2)
        return -1;
    cred->user = nul1 + 1;
    cred->user_len = (size_t)(nul2 - cred->user);
    cred->pass = nul2 + 1;
    cred->pass_len = (size_t)(end - cred->pass);
    size_t authz = (size_t)(nul1 - p);
    if (!cred->user_len || !cred->pass_len || (authz && (authz != cred->user_len || memcmp(p, cred->user, authz))))
        return -1;
    return 0;
}

/* Reads c->sasl_mech and c->sasl_data (in rbuf, borrowed); on success
 * c->user points into srv->auth, as after the text handshake. */
void ci_sasl(struct conn *c, const struct proto_req *req)
{
    struct server *s = c->srv;
    if (!s->auth) { /* no auth file: as memcached without SASL */
        ci_reply(c, REPLY_UNKNOWN, NULL);
        return;
    }
    if (req->type == PROTO_SASL_LIST) {
        ci_reply(c, REPLY_MECHS, "PLAIN");
        return;
    }
    s->st.auth_cmds++;
    struct auth_cred cred;
    const struct auth_user *u = NULL;
    /* PLAIN takes one step: a step (or another mechanism) fails */
    int plain = req->type == PROTO_SASL_AUTH && c->sasl_mech.len == 5 && memcmp(c->sasl_mech.p, "PLAIN", 5) == 0;
    if (plain && plain_split(&c->sasl_data, &cred) == 0)
        u = auth_login(s->auth, &cred);
    if (!u) {
        s->st.auth_errors++;
        ci_reply(c, REPLY_AUTH_ERROR, plain ? "authentication failure" : "unsupported mechanism: use PLAIN");
        if (plain)
            log_info(&s->log, "authentication failure for a binary client");
        return;
    }
    c->user = u;
    log_debug(&s->log, "a connection authenticated as '%.*s'", (int)(u->name_len < 64 ? u->name_len : 64), u->name);
    ci_reply(c, REPLY_AUTH_OK, "Authenticated");
}
