/* cell/transport.c: libraft's TCP transport with TCP_NODELAY on every
 * connection (cell/transport.h). */
#include "cell/transport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define W(t) ((struct cell_transport *)(t)->data)

static void nodelay(struct uv_stream_s *stream)
{
    if (stream && stream->type == UV_TCP)
        (void)uv_tcp_nodelay((uv_tcp_t *)stream, 1); /* best effort */
}

static int t_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    struct cell_transport *w = t->impl;
    int rc = w->inner.init(&w->inner, id, address);
    if (rc != 0)
        memcpy(t->errmsg, w->inner.errmsg, sizeof(t->errmsg));
    return rc;
}

/* An accepted connection: the inner transport calls this with its own
 * struct; libraft's uv layer expects the outer one (its data). */
static void accepted(struct raft_uv_transport *inner, raft_id id, const char *address, struct uv_stream_s *stream)
{
    struct cell_transport *w = W(inner);
    nodelay(stream);
    w->accept_cb(&w->outer, id, address, stream);
}

static int t_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct cell_transport *w = t->impl;
    w->accept_cb = cb;
    int rc = w->inner.listen(&w->inner, accepted);
    if (rc != 0)
        memcpy(t->errmsg, w->inner.errmsg, sizeof(t->errmsg));
    return rc;
}

/* A connect request of ours around libraft's (freed by its callback). */
struct wconnect {
    struct raft_uv_connect req;
    struct raft_uv_connect *orig;
};

static void connected(struct raft_uv_connect *req, struct uv_stream_s *stream, int status)
{
    struct wconnect *c = req->data;
    struct raft_uv_connect *orig = c->orig;
    free(c);
    if (status == 0)
        nodelay(stream);
    orig->cb(orig, stream, status);
}

static int t_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id, const char *address,
                     raft_uv_connect_cb cb)
{
    struct cell_transport *w = t->impl;
    struct wconnect *c = malloc(sizeof(*c));
    if (!c)
        return RAFT_NOMEM;
    req->cb = cb;
    c->orig = req;
    c->req.data = c;
    int rc = w->inner.connect(&w->inner, &c->req, id, address, connected);
    if (rc != 0) {
        free(c);
        memcpy(t->errmsg, w->inner.errmsg, sizeof(t->errmsg));
    }
    return rc;
}

static void inner_closed(struct raft_uv_transport *inner)
{
    struct cell_transport *w = W(inner);
    if (w->close_cb)
        w->close_cb(&w->outer);
}

static void t_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct cell_transport *w = t->impl;
    w->close_cb = cb;
    w->inner.close(&w->inner, inner_closed);
}

int cell_transport_init(struct cell_transport *w, uv_loop_t *loop)
{
    memset(w, 0, sizeof(*w));
    int rc = raft_uv_tcp_init(&w->inner, loop);
    if (rc != 0)
        return rc;
    w->inner.data = w;
    w->outer.impl = w;
    w->outer.init = t_init;
    w->outer.listen = t_listen;
    w->outer.connect = t_connect;
    w->outer.close = t_close;
    return 0;
}

void cell_transport_close(struct cell_transport *w) { raft_uv_tcp_close(&w->inner); }
