/* Unit tests for cell/relay.c: a follower's memcache port relayed to the
 * leader, on a real libuv loop over 127.0.0.1. The "leader" is an upstream
 * server in the test that echoes what it reads; a guard timer fails a test
 * that has not finished after GUARD_MS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cell/relay.h"

#define GUARD_MS 5000
#define NOQ "SERVER_ERROR no quorum\r\n"

/* A second client, for past_max_conns_is_refused. */
struct mini {
    uv_tcp_t t;
    uv_connect_t req;
    char got[128];
    size_t len;
    int eof;
};

struct fx {
    uv_loop_t loop;
    uv_timer_t guard;
    int timed_out;
    struct log log;
    /* the upstream ("leader") */
    uv_tcp_t up_listener;
    int up_port;
    uv_tcp_t up_conn;
    int up_accepted, up_eof, up_echo, up_paused;
    /* the relay */
    struct relay r;
    int target_port; /* 0: no leader */
    int relay_closed;
    /* the client */
    uv_tcp_t client;
    uv_connect_t creq;
    int connected, cl_eof, cl_paused;
    char *sent;
    size_t sent_len, nwrites_done;
    char *got;
    size_t got_len, got_cap;
    struct mini mini;
    uv_timer_t wait; /* a_slow_leader_holds_the_client_back's pause */
    int waited;
};

static void guard_fired(uv_timer_t *t)
{
    struct fx *f = t->data;
    f->timed_out = 1;
}

static int fx_port(uv_tcp_t *t)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    assert_int_equal(uv_tcp_getsockname(t, (struct sockaddr *)&ss, &len), 0);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Runs the loop until pred holds; fails the test when the guard fires. */
static void run_until(struct fx *f, int (*pred)(struct fx *))
{
    while (!pred(f) && !f->timed_out)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_false(f->timed_out);
}

/* ---- the upstream: echoes every chunk ---- */

static void up_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(suggested);
    buf->len = buf->base ? suggested : 0;
}

static void up_written(uv_write_t *req, int status)
{
    (void)status;
    free(req->data);
    free(req);
}

static void up_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct fx *f = s->data;
    if (nread < 0) {
        f->up_eof = 1;
        uv_read_stop(s);
    } else if (nread > 0 && f->up_echo) {
        uv_write_t *w = malloc(sizeof(*w));
        assert_non_null(w);
        w->data = buf->base;
        uv_buf_t b = uv_buf_init(buf->base, (unsigned)nread);
        assert_int_equal(uv_write(w, s, &b, 1, up_written), 0);
        return; /* the write owns the buffer */
    }
    free(buf->base);
}

static void up_connection(uv_stream_t *server, int status)
{
    struct fx *f = server->data;
    assert_int_equal(status, 0);
    assert_false(f->up_accepted); /* one connection per test */
    assert_int_equal(uv_tcp_init(&f->loop, &f->up_conn), 0);
    f->up_conn.data = f;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&f->up_conn), 0);
    f->up_accepted = 1;
    if (!f->up_paused)
        assert_int_equal(uv_read_start((uv_stream_t *)&f->up_conn, up_alloc, up_read), 0);
}

/* ---- the relay ---- */

static int target(void *ctx, char *host, size_t cap, int *port)
{
    struct fx *f = ctx;
    if (f->target_port == 0)
        return 0;
    snprintf(host, cap, "127.0.0.1");
    *port = f->target_port;
    return 1;
}

static void relay_closed(struct relay *r)
{
    struct fx *f = (struct fx *)((char *)r - offsetof(struct fx, r));
    f->relay_closed = 1;
}

/* ---- the client ---- */

static void cl_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct fx *f = h->data;
    (void)suggested;
    if (f->got_cap - f->got_len < 65536) {
        f->got_cap = f->got_cap * 2 + 65536;
        f->got = realloc(f->got, f->got_cap);
        assert_non_null(f->got);
    }
    *buf = uv_buf_init(f->got + f->got_len, (unsigned)(f->got_cap - f->got_len));
}

static void cl_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct fx *f = s->data;
    (void)buf;
    if (nread < 0) {
        f->cl_eof = 1;
        uv_read_stop(s);
    } else {
        f->got_len += (size_t)nread;
    }
}

static void cl_connected(uv_connect_t *req, int status)
{
    struct fx *f = req->data;
    assert_int_equal(status, 0);
    f->connected = 1;
    if (!f->cl_paused)
        assert_int_equal(uv_read_start((uv_stream_t *)&f->client, cl_alloc, cl_read), 0);
}

static void cl_written(uv_write_t *req, int status)
{
    struct fx *f = req->handle->data;
    assert_int_equal(status, 0);
    f->nwrites_done++;
    free(req);
}

/* Sends sent[0..sent_len) in pieces of `piece` bytes. */
static void cl_send_all(struct fx *f, size_t piece)
{
    for (size_t off = 0; off < f->sent_len; off += piece) {
        size_t n = f->sent_len - off < piece ? f->sent_len - off : piece;
        uv_write_t *w = malloc(sizeof(*w));
        assert_non_null(w);
        uv_buf_t b = uv_buf_init(f->sent + off, (unsigned)n);
        assert_int_equal(uv_write(w, (uv_stream_t *)&f->client, &b, 1, cl_written), 0);
    }
}

/* ---- fixture ---- */

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->log.level = LOG_DEBUG;
    f->log.out = tmpfile(); /* every log line is formatted, none shown */
    assert_non_null(f->log.out);
    assert_int_equal(uv_timer_init(&f->loop, &f->guard), 0);
    f->guard.data = f;
    assert_int_equal(uv_timer_start(&f->guard, guard_fired, GUARD_MS, 0), 0);

    struct sockaddr_in a;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
    assert_int_equal(uv_tcp_init(&f->loop, &f->up_listener), 0);
    f->up_listener.data = f;
    assert_int_equal(uv_tcp_bind(&f->up_listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->up_listener, 16, up_connection), 0);
    f->up_port = fx_port(&f->up_listener);
    f->up_echo = 1;
    f->target_port = f->up_port;
    *state = f;
    return 0;
}

static void start_relay_max(struct fx *f, uint32_t max_conns)
{
    struct relay_conf c =
        {.addr = "127.0.0.1", .port = 0, .target = target, .ctx = f, .log = &f->log, .max_conns = max_conns};
    assert_int_equal(relay_start(&f->r, &f->loop, &c), 0);
    assert_true(f->r.bound_port > 0);
}

static void start_relay(struct fx *f) { start_relay_max(f, 0); }

static void connect_client(struct fx *f)
{
    struct sockaddr_in a;
    assert_int_equal(uv_ip4_addr("127.0.0.1", f->r.bound_port, &a), 0);
    assert_int_equal(uv_tcp_init(&f->loop, &f->client), 0);
    f->client.data = f;
    f->creq.data = f;
    assert_int_equal(uv_tcp_connect(&f->creq, &f->client, (struct sockaddr *)&a, cl_connected), 0);
}

static void close_if_open(uv_handle_t *h)
{
    if (h->loop && !uv_is_closing(h))
        uv_close(h, NULL);
}

static int is_relay_closed(struct fx *f) { return f->relay_closed; }

static int teardown(void **state)
{
    struct fx *f = *state;
    if (f->r.listener && !f->r.closing)
        relay_close(&f->r, relay_closed);
    if (f->r.listener || !list_empty(&f->r.pairs))
        run_until(f, is_relay_closed);
    close_if_open((uv_handle_t *)&f->client);
    close_if_open((uv_handle_t *)&f->mini.t);
    close_if_open((uv_handle_t *)&f->wait);
    close_if_open((uv_handle_t *)&f->up_conn);
    close_if_open((uv_handle_t *)&f->up_listener);
    close_if_open((uv_handle_t *)&f->guard);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    fclose(f->log.out);
    free(f->sent);
    free(f->got);
    free(f);
    return 0;
}

/* ---- tests ---- */

static int got_all(struct fx *f) { return f->got_len >= f->sent_len || f->cl_eof; }
static int cl_eof(struct fx *f) { return f->cl_eof; }
static int up_eof(struct fx *f) { return f->up_eof; }
static int up_accepted(struct fx *f) { return f->up_accepted; }
static int both_eof(struct fx *f) { return f->cl_eof && f->up_eof && f->relay_closed; }

static void waited_cb(uv_timer_t *t) { ((struct fx *)t->data)->waited = 1; }
static int waited(struct fx *f) { return f->waited; }

static void fill(struct fx *f, size_t n)
{
    f->sent = malloc(n);
    assert_non_null(f->sent);
    f->sent_len = n;
    for (size_t i = 0; i < n; i++)
        f->sent[i] = (char)((i * 31 + i / 65536 + 7) % 251);
}

/* 4 MiB through the relay and back, byte-exact. */
static void echoes_bytes_exactly(void **state)
{
    struct fx *f = *state;
    start_relay(f);
    connect_client(f);
    fill(f, (size_t)4 << 20);
    cl_send_all(f, 50000);
    run_until(f, got_all);
    assert_false(f->cl_eof);
    assert_int_equal(f->got_len, f->sent_len);
    assert_memory_equal(f->got, f->sent, f->sent_len);
    assert_int_equal(f->r.relayed, 1);
    assert_int_equal(f->r.refused, 0);
    assert_int_equal(f->r.npairs, 1);
}

static void check_no_quorum(struct fx *f)
{
    run_until(f, cl_eof);
    assert_int_equal(f->got_len, strlen(NOQ));
    assert_memory_equal(f->got, NOQ, strlen(NOQ));
    assert_int_equal(f->r.refused, 1);
    assert_int_equal(f->r.relayed, 0);
}

static void no_leader_answers_no_quorum(void **state)
{
    struct fx *f = *state;
    f->target_port = 0;
    start_relay(f);
    connect_client(f);
    check_no_quorum(f);
    assert_false(f->up_accepted);
}

static void leader_closing_closes_the_client(void **state)
{
    struct fx *f = *state;
    start_relay(f);
    connect_client(f);
    run_until(f, up_accepted);
    uv_close((uv_handle_t *)&f->up_conn, NULL);
    run_until(f, cl_eof);
    assert_int_equal(f->got_len, 0);
}

static void client_closing_closes_the_leader(void **state)
{
    struct fx *f = *state;
    start_relay(f);
    connect_client(f);
    run_until(f, up_accepted);
    uv_close((uv_handle_t *)&f->client, NULL);
    run_until(f, up_eof);
}

static void close_ends_live_pairs_and_frees_the_port(void **state)
{
    struct fx *f = *state;
    start_relay(f);
    connect_client(f);
    fill(f, 1000);
    cl_send_all(f, 1000);
    run_until(f, got_all); /* the pair is relaying */
    assert_int_equal(f->got_len, 1000);
    int port = f->r.bound_port;
    relay_close(&f->r, relay_closed);
    run_until(f, both_eof);
    assert_null(f->r.listener);
    assert_true(list_empty(&f->r.pairs));

    uv_tcp_t again;
    struct sockaddr_in a;
    assert_int_equal(uv_ip4_addr("127.0.0.1", port, &a), 0);
    assert_int_equal(uv_tcp_init(&f->loop, &again), 0);
    assert_int_equal(uv_tcp_bind(&again, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&again, 1, up_connection), 0);
    uv_close((uv_handle_t *)&again, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void unreachable_leader_answers_no_quorum(void **state)
{
    struct fx *f = *state;
    /* a port nothing listens on: bound, read back, closed */
    uv_tcp_t t;
    struct sockaddr_in a;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &a), 0);
    assert_int_equal(uv_tcp_init(&f->loop, &t), 0);
    assert_int_equal(uv_tcp_bind(&t, (struct sockaddr *)&a, 0), 0);
    f->target_port = fx_port(&t);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    start_relay(f);
    connect_client(f);
    check_no_quorum(f);
}

/* The leader does not read and the client does not either: the relay stops
 * reading the client once 1 MiB waits for the leader, so of 64 MiB (more
 * than every socket buffer on the way holds) some stays in the client's
 * queue; once both read again every byte comes back. */
static void a_slow_leader_holds_the_client_back(void **state)
{
    struct fx *f = *state;
    f->up_paused = f->cl_paused = 1;
    start_relay(f);
    connect_client(f);
    fill(f, (size_t)64 << 20);
    cl_send_all(f, 1 << 20);
    run_until(f, up_accepted);
    assert_int_equal(uv_timer_init(&f->loop, &f->wait), 0);
    f->wait.data = f;
    assert_int_equal(uv_timer_start(&f->wait, waited_cb, 300, 0), 0);
    run_until(f, waited);
    assert_true(f->client.write_queue_size > 0);
    assert_true(f->nwrites_done < 64);

    assert_int_equal(uv_read_start((uv_stream_t *)&f->up_conn, up_alloc, up_read), 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&f->client, cl_alloc, cl_read), 0);
    run_until(f, got_all);
    assert_int_equal(f->got_len, f->sent_len);
    assert_memory_equal(f->got, f->sent, f->sent_len);
    assert_int_equal(f->nwrites_done, 64);
}

static void mini_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct mini *m = h->data;
    (void)suggested;
    *buf = uv_buf_init(m->got + m->len, (unsigned)(sizeof(m->got) - m->len));
}

static void mini_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct mini *m = s->data;
    (void)buf;
    if (nread < 0)
        m->eof = 1;
    else
        m->len += (size_t)nread;
}

static void mini_connected(uv_connect_t *req, int status)
{
    struct mini *m = req->data;
    assert_int_equal(status, 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&m->t, mini_alloc, mini_read), 0);
}

static int mini_eof(struct fx *f) { return f->mini.eof; }

static void past_max_conns_is_refused(void **state)
{
    struct fx *f = *state;
    start_relay_max(f, 1);
    connect_client(f);
    run_until(f, up_accepted);

    struct mini *m = &f->mini;
    struct sockaddr_in a;
    assert_int_equal(uv_ip4_addr("127.0.0.1", f->r.bound_port, &a), 0);
    assert_int_equal(uv_tcp_init(&f->loop, &m->t), 0);
    m->t.data = m->req.data = m;
    assert_int_equal(uv_tcp_connect(&m->req, &m->t, (struct sockaddr *)&a, mini_connected), 0);
    run_until(f, mini_eof);
    const char *want = "SERVER_ERROR too many connections\r\n";
    assert_int_equal(m->len, strlen(want));
    assert_memory_equal(m->got, want, strlen(want));
    assert_int_equal(f->r.relayed, 1);
    assert_int_equal(f->r.refused, 1);
    assert_false(f->cl_eof); /* the first one is still relayed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(echoes_bytes_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(no_leader_answers_no_quorum, setup, teardown),
        cmocka_unit_test_setup_teardown(leader_closing_closes_the_client, setup, teardown),
        cmocka_unit_test_setup_teardown(client_closing_closes_the_leader, setup, teardown),
        cmocka_unit_test_setup_teardown(close_ends_live_pairs_and_frees_the_port, setup, teardown),
        cmocka_unit_test_setup_teardown(unreachable_leader_answers_no_quorum, setup, teardown),
        cmocka_unit_test_setup_teardown(a_slow_leader_holds_the_client_back, setup, teardown),
        cmocka_unit_test_setup_teardown(past_max_conns_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
