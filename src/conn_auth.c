/* conn_auth.c: authentication on a connection (--auth-file). Before it, a
 * client may send the handshake (memcached's: a set whose data is "user
 * password") and quit; after it, each request is checked against its
 * user's queue patterns, by the table below. docs/operations.md,
 * "Authentication", has the rules. */
#include "conn_auth.h"

#include "auth.h"
#include "conn_int.h"
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* What a request needs of a user with queue patterns (a user without any
 * may make every request). NEED_ADMIN is the zero value: a request type
 * missing from the table is for users without queue patterns only. */
enum need { NEED_ADMIN, NEED_NOTHING, NEED_READ, NEED_WRITE };

/* Where the names of the queues a request acts on are. */
enum names {
    NAMES_NONE, /* none: it acts on no queue, or on the whole server */
    NAMES_KEY,  /* req->key */
    NAMES_KEYS, /* req->keys, nkeys of them; none named means every queue: NEED_ADMIN */
};

static const struct need_of {
    unsigned char need, names;
} NEEDS[] = {
    [PROTO_GET] = {NEED_READ, NAMES_KEYS}, /* plain, /open, /close, /abort, /peek, /bury: all reads */
    [PROTO_SET] = {NEED_WRITE, NAMES_KEY},
    [PROTO_DELETE] = {NEED_WRITE, NAMES_KEY},
    [PROTO_FLUSH] = {NEED_WRITE, NAMES_KEY},
    [PROTO_FLUSH_ALL] = {NEED_ADMIN, NAMES_NONE},
    [PROTO_STATS] = {NEED_ADMIN, NAMES_NONE}, /* it names every queue */
    [PROTO_VERSION] = {NEED_NOTHING, NAMES_NONE},
    [PROTO_QUIT] = {NEED_NOTHING, NAMES_NONE},
    [PROTO_VERBOSITY] = {NEED_NOTHING, NAMES_NONE},
    [PROTO_RELOAD] = {NEED_ADMIN, NAMES_NONE},
    [PROTO_DUMP_CONFIG] = {NEED_READ, NAMES_KEYS},
    [PROTO_STATUS] = {NEED_ADMIN, NAMES_NONE},
    [PROTO_SHUTDOWN] = {NEED_ADMIN, NAMES_NONE},
    [PROTO_DUMP_STATS] = {NEED_READ, NAMES_KEYS},
    [PROTO_FLUSH_EXPIRED] = {NEED_WRITE, NAMES_KEY},
    [PROTO_FLUSH_ALL_EXPIRED] = {NEED_ADMIN, NAMES_NONE},
    [PROTO_MONITOR] = {NEED_READ, NAMES_KEY},
    [PROTO_CONFIRM] = {NEED_READ, NAMES_KEY},
    [PROTO_TOUCH] = {NEED_READ, NAMES_KEY},
    [PROTO_KICK] = {NEED_WRITE, NAMES_KEY},
    [PROTO_CELLFILE] = {NEED_ADMIN, NAMES_NONE},
    [PROTO_CLUSTER] = {NEED_NOTHING, NAMES_NONE},
    [PROTO_CLUSTER_CHANGE] = {NEED_ADMIN, NAMES_NONE},
    [PROTO_UNKNOWN] = {NEED_NOTHING, NAMES_NONE}, /* answered ERROR */
    [PROTO_BAD] = {NEED_NOTHING, NAMES_NONE},     /* answered CLIENT_ERROR */
    [PROTO_NOOP] = {NEED_NOTHING, NAMES_NONE},
    [PROTO_SASL_LIST] = {NEED_NOTHING, NAMES_NONE},
    [PROTO_SASL_AUTH] = {NEED_NOTHING, NAMES_NONE},
    [PROTO_SASL_STEP] = {NEED_NOTHING, NAMES_NONE},
};

/* Skips what follows a request's line that is not run: the data of a set
 * or of an unserved storage command; a line after which the next request
 * cannot be found closes the connection. */
static void skip_rest(struct conn *c, const struct proto_req *req)
{
    uint64_t skip = req->type == PROTO_SET ? req->bytes + ci_trailer(c) : req->swallow;
    if (req->fatal) {
        c->close_after = 1;
    } else if (skip) {
        c->swallow_left = skip;
        c->state = CONN_SWALLOW;
    }
}

/* Answers a request the connection may not make with "CLIENT_ERROR why"
 * (and the queue's name, if q; binary: the auth error status) and skips
 * its data. Returns the bytes consumed. */
static ssize_t refuse(struct conn *c, const struct proto_req *req, size_t len, const char *why,
                      const struct proto_slice *q)
{
    char line[512];
    if (q)
        snprintf(line, sizeof(line), "%s %.*s", why, (int)q->len, q->p);
    else
        snprintf(line, sizeof(line), "%s", why);
    ci_reply(c, REPLY_AUTH_ERROR, line);
    skip_rest(c, req);
    return (ssize_t)len;
}

/* The handshake: set <any key> <flags> <exptime> <bytes>, its data "user
 * password". Returns the bytes consumed, 0 while its data is coming. On
 * success the connection is the user's (c->user points into srv->auth). */
static ssize_t handshake(struct conn *c, const char *line, size_t len, size_t avail, const struct proto_req *req)
{
    struct server *s = c->srv;
    if (req->bytes > AUTH_TOKEN_MAX) {
        s->st.auth_cmds++;
        s->st.auth_errors++;
        return refuse(c, req, len, "auth token too long", NULL);
    }
    size_t total = len + (size_t)req->bytes + 2;
    if (avail < total) {
        if (ci_rbuf_reserve(c, (size_t)(line - c->rbuf) + total) == 0)
            return 0;
        ci_out_server_error(c, -ENOMEM);
        skip_rest(c, req);
        return (ssize_t)len;
    }
    const char *data = line + len;
    if (data[req->bytes] != '\r' || data[req->bytes + 1] != '\n') {
        ci_out_str(c, "CLIENT_ERROR bad data chunk\r\n");
        c->close_after = 1;
        return (ssize_t)total;
    }
    struct auth_cred cred;
    const struct auth_user *u = NULL;
    s->st.auth_cmds++;
    /* errors are answered also with noreply, as memcached does */
    if (auth_token_split(data, (size_t)req->bytes, &cred) < 0) {
        s->st.auth_errors++;
        ci_out_str(c, "CLIENT_ERROR bad authentication token format\r\n");
    } else if (!(u = auth_login(s->auth, &cred))) {
        s->st.auth_errors++;
        ci_out_str(c, "CLIENT_ERROR authentication failure\r\n");
        log_info(&s->log, "authentication failure for user '%.*s'", (int)(cred.user_len < 64 ? cred.user_len : 64),
                 cred.user);
    } else {
        c->user = u;
        log_debug(&s->log, "a connection authenticated as '%.*s'", (int)(u->name_len < 64 ? u->name_len : 64), u->name);
        if (!req->noreply)
            ci_out_str(c, "STORED\r\n");
    }
    return (ssize_t)total;
}

/* Whether user u may make req, as the table says. When not: *why, and
 * *denied the queue's name (empty for a server-wide request). */
static int permitted(const struct auth_user *u, const struct proto_req *req, struct proto_slice *denied,
                     const char **why)
{
    size_t t = (size_t)req->type;
    struct need_of n = t < sizeof(NEEDS) / sizeof(NEEDS[0]) ? NEEDS[t] : (struct need_of){NEED_ADMIN, NAMES_NONE};
    unsigned perm = n.need == NEED_READ ? AUTH_READ : AUTH_WRITE;
    *why = n.need == NEED_READ ? "permission denied: no read access to queue"
                               : "permission denied: no write access to queue";
    if (u->nrules == 0 || n.need == NEED_NOTHING)
        return 1;
    if (n.need == NEED_ADMIN || (n.names == NAMES_KEYS && req->nkeys == 0)) {
        *why = "permission denied: a server-wide command, for users without a queue pattern";
        denied->len = 0;
        return 0;
    }
    if (n.names == NAMES_KEY) {
        *denied = req->key.name;
        return auth_may(u, req->key.name.p, req->key.name.len, perm);
    }
    struct proto_slice rest = req->keys;
    struct proto_key k;
    while (proto_next_key(&rest, &k)) {
        if (!auth_may(u, k.name.p, k.name.len, perm)) {
            *denied = k.name;
            return 0;
        }
    }
    return 1;
}

/* A get or monitor that waited and runs again was let in when it started
 * (and may be half answered): it finishes under the rights it had. */
static int resumed(const struct conn *c, const struct proto_req *req)
{
    return (req->type == PROTO_GET && (c->get_done || c->guard)) || (req->type == PROTO_MONITOR && c->mon.active);
}

int ci_auth_gate(struct conn *c, const char *line, size_t len, size_t avail, const struct proto_req *req, ssize_t *used)
{
    if (resumed(c, req))
        return 0;
    if (!c->user) {
        /* binary clients authenticate with SASL (conn_bin.c), text ones
         * with the handshake set */
        int sasl = req->type == PROTO_SASL_LIST || req->type == PROTO_SASL_AUTH || req->type == PROTO_SASL_STEP;
        if (req->type == PROTO_QUIT || sasl)
            return 0;
        *used = req->type == PROTO_SET && !c->rt.binary ? handshake(c, line, len, avail, req)
                                                        : refuse(c, req, len, "unauthenticated", NULL);
        return 1;
    }
    struct proto_slice denied = {0};
    const char *why;
    if (permitted(c->user, req, &denied, &why))
        return 0;
    *used = refuse(c, req, len, why, denied.len ? &denied : NULL);
    return 1;
}

void conn_auth_rebind(struct server *s, const struct auth_table *next)
{
    size_t again = 0;
    for (struct list *pos = s->conns.next; pos != &s->conns; pos = pos->next) {
        struct conn *c = list_entry(pos, struct conn, link);
        if (!c->user)
            continue;
        const struct auth_user *u = auth_find(next, c->user->name, c->user->name_len);
        if (u && auth_same_password(c->user, u)) {
            c->user = u;
        } else {
            c->user = NULL;
            again++;
        }
    }
    if (again)
        log_info(&s->log,
                 "%zu connections authenticated as users the auth file no longer has, or whose password "
                 "changed: they must authenticate again",
                 again);
}
