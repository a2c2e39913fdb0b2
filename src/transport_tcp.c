/* transport_tcp.c: the plain TCP transport (transport.h). */
#include "conn.h"
#include "transport.h"

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct conn *c = h->data;
    char *p;
    size_t n;
    ci_input_room(c, &p, &n);
    *buf = uv_buf_init(p, (unsigned)n);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct conn *c = s->data;
    if (nread < 0)
        ci_input_end(c);
    else if (nread > 0)
        ci_input(c, (size_t)nread);
}

static int tcp_read_start(struct conn *c) { return uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb); }

static void tcp_read_stop(struct conn *c) { uv_read_stop((uv_stream_t *)&c->tcp); }

static void write_cb(uv_write_t *req, int status) { ci_write_done(req->data, status); }

/* Most answers fit the socket buffer: written directly. A uv_write request
 * would also make libuv re-arm the socket's epoll registration on
 * completion, one epoll_ctl per answer. */
static int tcp_write(struct conn *c, char *p, size_t n)
{
    uv_buf_t b = uv_buf_init(p, (unsigned)n);
    int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (w == (int)n)
        return 1;
    if (w < 0 && w != UV_EAGAIN)
        return w;
    if (w > 0)
        b = uv_buf_init(p + w, (unsigned)(n - (size_t)w));
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
    return rc < 0 ? rc : 0;
}

static void tcp_close(struct conn *c) { (void)c; }

const struct transport transport_tcp = {
    .name = "tcp",
    .read_start = tcp_read_start,
    .read_stop = tcp_read_stop,
    .write = tcp_write,
    .close = tcp_close,
};
