/* open.c: items held open (get q/open) and their confirmation. An open item
 * belongs to the connection that took it, so close and abort must go to
 * that server over that same connection; if the connection was lost in
 * between, the server has already put the item back, and the caller hears
 * -ECONNRESET instead of a close that silently did nothing. */
#include "client_int.h"

#include "request.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int dn_open_find(const darner_client *c, const char *queue)
{
    for (size_t i = 0; i < c->nopen; i++)
        if (strcmp(c->open[i].queue, queue) == 0)
            return (int)i;
    return -1;
}

/* Copies queue. Returns 0 or -ENOMEM. */
int dn_open_add(darner_client *c, const char *queue, size_t server)
{
    if (c->nopen == c->capopen) {
        size_t cap = c->capopen ? c->capopen * 2 : 4;
        struct dn_open_item *o = realloc(c->open, cap * sizeof(*o));
        if (!o)
            return -ENOMEM;
        c->open = o;
        c->capopen = cap;
    }
    char *q = strdup(queue);
    if (!q)
        return -ENOMEM;
    c->open[c->nopen++] = (struct dn_open_item){q, server, c->fleet.servers[server].gen};
    return 0;
}

void dn_open_remove(darner_client *c, int idx)
{
    free(c->open[idx].queue);
    c->open[idx] = c->open[--c->nopen];
}

int dn_open_stale(darner_client *c, int idx)
{
    const struct dn_open_item *o = &c->open[idx];
    struct dn_server *s = &c->fleet.servers[o->server];
    if (s->conn.fd < 0 || s->gen != o->gen)
        return 1;
    if (!dn_conn_usable(&s->conn)) {
        dn_server_drop(c, o->server, 0, 0);
        return 1;
    }
    return 0;
}

int darner_is_open(const darner_client *c, const char *queue)
{
    return queue && dn_open_find(c, queue) >= 0;
}

/* get q/close or get q/abort on the server holding queue's open item. */
static int finish(darner_client *c, const char *queue, unsigned opt)
{
    dn_clear_error(c);
    if (!dn_queue_name_ok(queue))
        return -EINVAL;
    int idx = dn_open_find(c, queue);
    if (idx < 0)
        return 0; /* nothing open: not an error, as in the protocol */
    size_t i = c->open[idx].server;
    if (dn_open_stale(c, idx)) {
        dn_open_remove(c, idx);
        dn_set_error(c, i, "the connection that held the open item on %s was lost; the server put it back",
                     queue);
        return -ECONNRESET;
    }
    dn_open_remove(c, idx); /* whatever the answer, this client no longer holds it */
    char req[DN_REQ_MAX];
    int len = dn_req_get(req, sizeof(req), queue, opt, 0);
    if (len < 0)
        return len;
    dn_iov iov = {req, (size_t)len};
    int rc = dn_server_send(c, i, &iov, 1);
    struct dn_reply r;
    if (rc == 0)
        rc = dn_server_reply(c, i, &r, 0);
    if (rc == 0 && r.kind != DN_R_END)
        rc = dn_reply_failure(c, i, &r);
    return rc;
}

int darner_close(darner_client *c, const char *queue) { return finish(c, queue, DN_GET_CLOSE); }

int darner_abort(darner_client *c, const char *queue) { return finish(c, queue, DN_GET_ABORT); }
