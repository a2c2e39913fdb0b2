/* darner-bench: a load generator for darner and the servers people would use
 * instead of it.
 *
 * Drivers (--driver):
 *   darner     the memcache-dialect queue: set q / get q / get q/close/open / set q/sync
 *   kestrel    the same words for any Kestrel/Darner-compatible server (no /sync)
 *   memcached  plain set/get of one key (the syscall upper bound of the protocol)
 *   redis      RESP: LPUSH / RPOP; reliable reads are LMOVE q q:processing + LREM
 *   beanstalkd put / reserve-with-timeout 0 + delete
 *
 * --binary: darner and memcached in memcache's binary protocol instead of text
 * (Set and Get with the same keys: the queue name, q/close/open for reliable
 * reads, q/sync for durable sets); answers are framed by their 24-byte header.
 *
 * Workloads (--workload):
 *   flood     every connection alternates enqueue and dequeue
 *   set       enqueues only (fills a backlog)
 *   get       dequeues only (drains a backlog)
 *   reliable  reliable reads: get q/close/open (darner), reserve+delete, LMOVE+LREM
 *   durable   enqueues that are on stable storage when answered (darner: set q/sync;
 *             the peers: whatever their server is configured to do)
 *   fairness  --connections timed enqueues of --size bytes while --bg-connections
 *             move --bg-size items (set then get) on queue <queue>_big
 *   rawsync   no server: write --batch records of --size + 80 bytes and fdatasync,
 *             in a loop, in a file in --dir (the disk's group-commit ceiling)
 *
 * Threads (--threads, default 1) each run their own epoll loop over a share of
 * the connections. Every connection is a closed loop with --pipeline requests in
 * flight (1 by default). Latency is from the first byte of an operation's first
 * request being queued for writing to the end of its last answer; an operation
 * that needs two round trips (beanstalkd reserve+delete, redis LMOVE+LREM) is
 * one operation. Throughput counts operations of the timed connections.
 */
#include "hist.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define RECORD_HEADER 80 /* darner's record header, for rawsync's record size */
#define IBUF_SIZE (64 * 1024)
#define BG_IBUF_SIZE (1024 * 1024) /* big items: fewer reads */
#define INLINE_PAYLOAD 4096        /* payloads up to this are copied; larger are referenced */
#define MAX_IOV 64
#define FINISH_GRACE_NS (60ull * 1000000000ull) /* after stop: answers still owed */

enum driver { DRV_DARNER, DRV_KESTREL, DRV_MEMCACHED, DRV_REDIS, DRV_BEANSTALKD };
enum proto { P_MC, P_RESP, P_BEAN, P_BIN };
enum workload { WL_FLOOD, WL_SET, WL_GET, WL_RELIABLE, WL_DURABLE, WL_FAIRNESS, WL_RAWSYNC };
enum opkind { OP_SET, OP_GET, OP_REL, OP_BIGSET, OP_BIGGET, OP_NKINDS };

static const char *const driver_names[] = {"darner", "kestrel", "memcached", "redis", "beanstalkd"};
static const char *const workload_names[] = {"flood", "set", "get", "reliable", "durable", "fairness", "rawsync"};
static const char *const prealloc_names[] = {"none", "fallocate", "zero"};
static const char *const op_names[] = {"set", "get", "reliable", "bigset", "bigget"};
static const char *const proto_names[] = {"text", "resp", "beanstalk", "binary"};

/* memcache's binary protocol: the header of every request and answer. */
#define BIN_HDR 24
#define BIN_REQ 0x80
#define BIN_RES 0x81
#define BIN_GET 0x00
#define BIN_SET 0x01
#define BIN_VERSION 0x0b
#define BIN_OK 0x0000
#define BIN_NOT_FOUND 0x0001
#define BIN_SET_EXTRAS 8 /* flags, expiration */

/* ---- configuration (read-only once the threads start) ---- */

struct config {
    enum driver driver;
    enum proto proto;
    enum workload workload;
    char host[64];
    int port;
    char queue[200];
    int conns;
    int bg_conns;
    int threads;
    int pipeline;
    size_t size;
    size_t bg_size;
    double duration; /* seconds; 0 = none */
    uint64_t count;  /* operations; 0 = none */
    int batch;       /* rawsync */
    char dir[4096];  /* rawsync */
    int prealloc;    /* rawsync: 0 append, 1 fallocate first, 2 write zeros first */
    const char *json;
    const char *label;
    bool quiet;
    bool binary; /* --binary: memcache's binary protocol (P_BIN) */
    double progress_every;
};

static struct config cfg = {
    .driver = DRV_DARNER,
    .proto = P_MC,
    .workload = WL_FLOOD,
    .host = "127.0.0.1",
    .port = 22133,
    .queue = "bench",
    .conns = 1,
    .bg_conns = 2,
    .threads = 1,
    .pipeline = 1,
    .size = 64,
    .bg_size = 8u << 20,
    .batch = 1,
    .dir = ".",
    .label = "",
    .progress_every = 0,
};

/* Requests built once: the payload bytes and the fixed request texts. */
static char *payload; /* max(size, bg_size) bytes, a repeating pattern */
static size_t payload_cap;
struct reqs {
    char set_hdr[512], get[512], rel[512], bigset_hdr[512], bigget[512], trailer[8];
    size_t set_hdr_len, get_len, rel_len, bigset_hdr_len, bigget_len, trailer_len;
};
static struct reqs R;

/* ---- shared run state ---- */

static atomic_bool g_stop;   /* no new operations */
static atomic_bool g_abort;  /* leave now, owed answers or not */
static atomic_bool g_failed; /* a connection failed: the run is invalid */
static uint64_t g_t0;        /* start of the timed run, ns (written before the go barrier) */
static pthread_barrier_t g_bar_ready, g_bar_go;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("darner-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n, sz);
    if (!p)
        die("out of memory");
    return p;
}

/* ---- connections ---- */

struct infl {
    uint64_t t_op; /* when the operation's first request was queued */
    uint8_t kind;  /* enum opkind */
    uint8_t step;  /* 0, or 1 for the second request of a two-step operation */
};

struct oseg {
    const char *ext; /* NULL: bytes in obuf at off */
    size_t off, len;
};

enum pstate { PS_LINE, PS_SKIP };
enum after_skip { AS_MC_END, AS_HIT, AS_REDIS_LREM, AS_BEAN_DELETE, AS_BIN_DONE };

struct thread;

struct conn {
    int fd;
    int id;
    bool bg;
    bool epollout;
    unsigned phase; /* flood: set or get next */
    struct thread *th;
    /* output */
    char *obuf;
    size_t olen, ocap;
    struct oseg *segs;
    int nseg, segcap, seghead;
    size_t segdone;
    /* input */
    char *ibuf;
    size_t ilen, icap;
    enum pstate ps;
    uint64_t skip_left;
    enum after_skip after;
    bool mc_value;    /* a VALUE block was seen for the request at the head */
    uint64_t resp_n;  /* size of the value being skipped */
    uint64_t bean_id; /* job to delete after RESERVED */
    int bin_result;   /* binary: the result of the answer whose body is being skipped */
    int bad_size;     /* the value had an unexpected size */
    /* requests in flight, oldest first */
    struct infl *ring;
    int rcap, rhead, rcount;
};

struct counters {
    uint64_t ops, hits, misses, errors;
};

struct thread {
    int id;
    pthread_t tid;
    int epfd;
    struct conn **conns;
    int nconns, ntimed;
    uint64_t budget; /* operations this thread may still start; UINT64_MAX = no limit */
    bool has_budget;
    struct hist *h[OP_NKINDS];
    struct counters cnt[OP_NKINDS];
    uint64_t bg_bytes;
    uint64_t t_last;               /* last timed completion */
    atomic_uint_fast64_t live_ops; /* for the progress line */
    atomic_uint_fast64_t live_errs;
    atomic_bool finished;
    atomic_bool timed_done;
    char err[256];
};

static void conn_fail(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_fail(struct conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!c->th->err[0]) {
        int n = snprintf(c->th->err, sizeof(c->th->err), "connection %d: ", c->id);
        if (n > 0 && (size_t)n < sizeof(c->th->err))
            vsnprintf(c->th->err + n, sizeof(c->th->err) - (size_t)n, fmt, ap);
    }
    va_end(ap);
    atomic_store(&g_failed, true);
    atomic_store(&g_stop, true);
}

static void out_grow_segs(struct conn *c)
{
    if (c->nseg < c->segcap)
        return;
    int ncap = c->segcap ? c->segcap * 2 : 16;
    struct oseg *n = realloc(c->segs, (size_t)ncap * sizeof(*n));
    if (!n)
        die("out of memory");
    c->segs = n;
    c->segcap = ncap;
}

static void out_copy(struct conn *c, const void *p, size_t n)
{
    if (!n)
        return; /* an empty segment would never be written out */
    if (c->olen + n > c->ocap) {
        size_t ncap = c->ocap ? c->ocap : 4096;
        while (ncap < c->olen + n)
            ncap *= 2;
        char *nb = realloc(c->obuf, ncap);
        if (!nb)
            die("out of memory");
        c->obuf = nb;
        c->ocap = ncap;
    }
    memcpy(c->obuf + c->olen, p, n);
    struct oseg *last = c->nseg > c->seghead ? &c->segs[c->nseg - 1] : NULL;
    if (last && !last->ext && last->off + last->len == c->olen) {
        last->len += n;
    } else {
        out_grow_segs(c);
        c->segs[c->nseg++] = (struct oseg){NULL, c->olen, n};
    }
    c->olen += n;
}

static void out_ref(struct conn *c, const char *p, size_t n)
{
    out_grow_segs(c);
    c->segs[c->nseg++] = (struct oseg){p, 0, n};
}

static void out_payload(struct conn *c, size_t n)
{
    if (n <= INLINE_PAYLOAD)
        out_copy(c, payload, n);
    else
        out_ref(c, payload, n);
}

static void set_epollout(struct conn *c, bool on)
{
    if (c->epollout == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0u), .data.ptr = c};
    if (epoll_ctl(c->th->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    c->epollout = on;
}

/* Writes what it can; the rest waits for EPOLLOUT. */
static void conn_flush(struct conn *c)
{
    while (c->seghead < c->nseg) {
        struct iovec iov[MAX_IOV];
        int n = 0;
        for (int i = c->seghead; i < c->nseg && n < MAX_IOV; i++, n++) {
            const struct oseg *s = &c->segs[i];
            const char *base = s->ext ? s->ext : c->obuf + s->off;
            size_t skip = i == c->seghead ? c->segdone : 0;
            iov[n].iov_base = (void *)(base + skip);
            iov[n].iov_len = s->len - skip;
        }
        ssize_t w = writev(c->fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_epollout(c, true);
                return;
            }
            conn_fail(c, "write: %s", strerror(errno));
            return;
        }
        size_t left = (size_t)w;
        while (left && c->seghead < c->nseg) {
            struct oseg *s = &c->segs[c->seghead];
            size_t rest = s->len - c->segdone;
            if (left >= rest) {
                left -= rest;
                c->seghead++;
                c->segdone = 0;
            } else {
                c->segdone += left;
                left = 0;
            }
        }
    }
    c->nseg = c->seghead = 0;
    c->segdone = 0;
    c->olen = 0;
    set_epollout(c, false);
}

static void ring_push(struct conn *c, struct infl e)
{
    if (c->rcount == c->rcap)
        die("internal: request ring full");
    c->ring[(c->rhead + c->rcount) % c->rcap] = e;
    c->rcount++;
}

static struct infl *ring_head(struct conn *c) { return c->rcount ? &c->ring[c->rhead] : NULL; }

static void ring_pop(struct conn *c)
{
    c->rhead = (c->rhead + 1) % c->rcap;
    c->rcount--;
}

/* ---- requests ---- */

static void put_be16(char *p, uint16_t v)
{
    p[0] = (char)(v >> 8);
    p[1] = (char)v;
}

static void put_be32(char *p, uint32_t v)
{
    put_be16(p, (uint16_t)(v >> 16));
    put_be16(p + 2, (uint16_t)v);
}

/* A binary request's header, extras (zeros) and key: everything but the value
 * of value_len bytes that follows it. Returns its length. */
static size_t bin_request(char *out, size_t cap, uint8_t opcode, size_t extras, const char *key, size_t value_len)
{
    size_t klen = strlen(key);
    if (BIN_HDR + extras + klen > cap || klen > UINT16_MAX || extras + klen + value_len > UINT32_MAX)
        die("queue name too long");
    memset(out, 0, BIN_HDR + extras);
    out[0] = (char)BIN_REQ;
    out[1] = (char)opcode;
    put_be16(out + 2, (uint16_t)klen);
    out[4] = (char)extras;
    put_be32(out + 8, (uint32_t)(extras + klen + value_len));
    memcpy(out + BIN_HDR + extras, key, klen);
    return BIN_HDR + extras + klen;
}

static void build_requests(void)
{
    const char *q = cfg.queue;
    char big[256];
    snprintf(big, sizeof(big), "%s_big", q);
    const char *sync = cfg.workload == WL_DURABLE && cfg.driver == DRV_DARNER ? "/sync" : "";
    int n;
#define FMT(field, ...)                                                                                                \
    do {                                                                                                               \
        n = snprintf(R.field, sizeof(R.field), __VA_ARGS__);                                                           \
        if (n < 0 || (size_t)n >= sizeof(R.field))                                                                     \
            die("queue name too long");                                                                                \
        R.field##_len = (size_t)n;                                                                                     \
    } while (0)
    char key[256];
#define BIN(field, opcode, extras, value_len, ...)                                                                     \
    do {                                                                                                               \
        snprintf(key, sizeof(key), __VA_ARGS__);                                                                       \
        R.field##_len = bin_request(R.field, sizeof(R.field), opcode, extras, key, value_len);                         \
    } while (0)
    switch (cfg.proto) {
    case P_BIN:
        BIN(set_hdr, BIN_SET, BIN_SET_EXTRAS, cfg.size, "%s%s", q, sync);
        BIN(get, BIN_GET, 0, 0, "%s", q);
        BIN(rel, BIN_GET, 0, 0, "%s/close/open", q);
        BIN(bigset_hdr, BIN_SET, BIN_SET_EXTRAS, cfg.bg_size, "%s", big);
        BIN(bigget, BIN_GET, 0, 0, "%s", big);
        R.trailer_len = 0; /* the value is the end of a binary request */
        break;
    case P_MC:
        FMT(set_hdr, "set %s%s 0 0 %zu\r\n", q, sync, cfg.size);
        FMT(get, "get %s\r\n", q);
        FMT(rel, "get %s/close/open\r\n", q);
        FMT(bigset_hdr, "set %s 0 0 %zu\r\n", big, cfg.bg_size);
        FMT(bigget, "get %s\r\n", big);
        FMT(trailer, "\r\n");
        break;
    case P_RESP:
        FMT(set_hdr, "*3\r\n$5\r\nLPUSH\r\n$%zu\r\n%s\r\n$%zu\r\n", strlen(q), q, cfg.size);
        FMT(get, "*2\r\n$4\r\nRPOP\r\n$%zu\r\n%s\r\n", strlen(q), q);
        FMT(rel, "*5\r\n$5\r\nLMOVE\r\n$%zu\r\n%s\r\n$%zu\r\n%s:processing\r\n$5\r\nRIGHT\r\n$4\r\nLEFT\r\n", strlen(q),
            q, strlen(q) + 11, q);
        FMT(bigset_hdr, "*3\r\n$5\r\nLPUSH\r\n$%zu\r\n%s\r\n$%zu\r\n", strlen(big), big, cfg.bg_size);
        FMT(bigget, "*2\r\n$4\r\nRPOP\r\n$%zu\r\n%s\r\n", strlen(big), big);
        FMT(trailer, "\r\n");
        break;
    case P_BEAN:
        /* One tube per connection role is set up at connect time (use/watch). */
        FMT(set_hdr, "put 1024 0 120 %zu\r\n", cfg.size);
        FMT(get, "reserve-with-timeout 0\r\n");
        FMT(rel, "reserve-with-timeout 0\r\n");
        FMT(bigset_hdr, "put 1024 0 120 %zu\r\n", cfg.bg_size);
        FMT(bigget, "reserve-with-timeout 0\r\n");
        FMT(trailer, "\r\n");
        break;
    }
#undef FMT
#undef BIN
}

/* The next operation a connection starts. */
static enum opkind next_kind(struct conn *c)
{
    if (c->bg)
        return (c->phase++ & 1u) ? OP_BIGGET : OP_BIGSET;
    switch (cfg.workload) {
    case WL_FLOOD:
        return (c->phase++ & 1u) ? OP_GET : OP_SET;
    case WL_GET:
        return OP_GET;
    case WL_RELIABLE:
        return OP_REL;
    default:
        return OP_SET;
    }
}

static void start_op(struct conn *c, enum opkind k, uint64_t t)
{
    switch (k) {
    case OP_SET:
        out_copy(c, R.set_hdr, R.set_hdr_len);
        out_payload(c, cfg.size);
        out_copy(c, R.trailer, R.trailer_len);
        break;
    case OP_BIGSET:
        out_copy(c, R.bigset_hdr, R.bigset_hdr_len);
        out_payload(c, cfg.bg_size);
        out_copy(c, R.trailer, R.trailer_len);
        break;
    case OP_GET:
        out_copy(c, R.get, R.get_len);
        break;
    case OP_REL:
        out_copy(c, R.rel, R.rel_len);
        break;
    case OP_BIGGET:
        out_copy(c, R.bigget, R.bigget_len);
        break;
    default:
        break;
    }
    ring_push(c, (struct infl){.t_op = t, .kind = (uint8_t)k, .step = 0});
}

/* Starts operations until the pipeline is full or the run says stop. */
static void conn_top_up(struct conn *c)
{
    struct thread *th = c->th;
    if (atomic_load_explicit(&g_stop, memory_order_relaxed))
        return;
    uint64_t t = 0;
    while (c->rcount < cfg.pipeline) {
        if (!c->bg && th->has_budget) {
            if (!th->budget)
                return;
            th->budget--;
        }
        if (!t)
            t = now_ns();
        start_op(c, next_kind(c), t);
    }
}

static void op_done(struct conn *c, const struct infl *e, int result /* 1 hit, 0 miss, -1 error */)
{
    struct thread *th = c->th;
    uint64_t t = now_ns();
    struct counters *k = &th->cnt[e->kind];
    k->ops++;
    if (result > 0)
        k->hits++;
    else if (result == 0)
        k->misses++;
    else
        k->errors++;
    hist_add(th->h[e->kind], t - e->t_op);
    if (c->bg) {
        th->bg_bytes += e->kind == OP_BIGSET || result > 0 ? cfg.bg_size : 0;
    } else {
        th->t_last = t;
        atomic_fetch_add_explicit(&th->live_ops, 1, memory_order_relaxed);
        if (result < 0)
            atomic_fetch_add_explicit(&th->live_errs, 1, memory_order_relaxed);
    }
}

/* The answer to the request at the head of the ring is complete. */
static void complete(struct conn *c, int result)
{
    struct infl e = *ring_head(c);
    ring_pop(c);
    if (c->bad_size && result > 0)
        result = -1;
    c->bad_size = 0;
    op_done(c, &e, result);
}

static size_t expected_size(enum opkind k) { return k == OP_BIGGET || k == OP_BIGSET ? cfg.bg_size : cfg.size; }

static bool starts(const char *line, size_t len, const char *word)
{
    size_t n = strlen(word);
    return len >= n && memcmp(line, word, n) == 0;
}

/* Parses the decimal number at p (up to end); -1 when there is none. */
static int64_t parse_num(const char *p, const char *end, const char **next)
{
    while (p < end && *p == ' ')
        p++;
    if (p >= end || *p < '0' || *p > '9')
        return -1;
    int64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        v = v * 10 + (*p - '0');
        if (v > (INT64_MAX / 10))
            return -1;
        p++;
    }
    if (next)
        *next = p;
    return v;
}

static void begin_skip(struct conn *c, uint64_t n, enum after_skip after, enum opkind k)
{
    c->resp_n = n;
    c->skip_left = n + 2; /* data + CRLF */
    c->after = after;
    c->ps = PS_SKIP;
    if (n != expected_size(k))
        c->bad_size = 1;
}

static void on_line_mc(struct conn *c, struct infl *e, const char *l, size_t len)
{
    enum opkind k = e->kind;
    if (k == OP_SET || k == OP_BIGSET) {
        complete(c, starts(l, len, "STORED") ? 1 : -1);
        return;
    }
    if (starts(l, len, "END")) {
        bool hit = c->mc_value;
        c->mc_value = false;
        complete(c, hit ? 1 : 0);
        return;
    }
    if (starts(l, len, "VALUE ") && !c->mc_value) {
        /* VALUE <key> <flags> <bytes> */
        const char *p = l + 6, *end = l + len;
        while (p < end && *p != ' ')
            p++;
        if (parse_num(p, end, &p) < 0) {
            conn_fail(c, "bad VALUE line");
            return;
        }
        int64_t n = parse_num(p, end, NULL);
        if (n < 0) {
            conn_fail(c, "bad VALUE line");
            return;
        }
        c->mc_value = true;
        begin_skip(c, (uint64_t)n, AS_MC_END, k);
        return;
    }
    if (starts(l, len, "SERVER_ERROR") || starts(l, len, "CLIENT_ERROR") || starts(l, len, "ERROR")) {
        c->mc_value = false;
        complete(c, -1);
        return;
    }
    conn_fail(c, "unexpected answer: %.*s", (int)(len > 80 ? 80 : len), l);
}

static void on_line_resp(struct conn *c, struct infl *e, const char *l, size_t len)
{
    enum opkind k = e->kind;
    if (len && l[0] == '-') {
        complete(c, -1);
        return;
    }
    if (k == OP_SET || k == OP_BIGSET) {
        complete(c, len && l[0] == ':' ? 1 : -1);
        return;
    }
    if (k == OP_REL && e->step == 1) { /* LREM */
        complete(c, starts(l, len, ":1") ? 1 : -1);
        return;
    }
    if (starts(l, len, "$-1") || starts(l, len, "_")) {
        complete(c, 0);
        return;
    }
    if (len && l[0] == '$') {
        int64_t n = parse_num(l + 1, l + len, NULL);
        if (n < 0) {
            conn_fail(c, "bad bulk length");
            return;
        }
        begin_skip(c, (uint64_t)n, k == OP_REL ? AS_REDIS_LREM : AS_HIT, k);
        return;
    }
    conn_fail(c, "unexpected answer: %.*s", (int)(len > 80 ? 80 : len), l);
}

static void on_line_bean(struct conn *c, struct infl *e, const char *l, size_t len)
{
    enum opkind k = e->kind;
    if (k == OP_SET || k == OP_BIGSET) {
        complete(c, starts(l, len, "INSERTED ") ? 1 : -1);
        return;
    }
    if (e->step == 1) { /* delete */
        complete(c, starts(l, len, "DELETED") ? 1 : -1);
        return;
    }
    if (starts(l, len, "TIMED_OUT")) {
        complete(c, 0);
        return;
    }
    if (starts(l, len, "RESERVED ")) {
        const char *p = l + 9, *end = l + len;
        int64_t id = parse_num(p, end, &p);
        int64_t n = id < 0 ? -1 : parse_num(p, end, NULL);
        if (n < 0) {
            conn_fail(c, "bad RESERVED line");
            return;
        }
        c->bean_id = (uint64_t)id;
        begin_skip(c, (uint64_t)n, AS_BEAN_DELETE, k);
        return;
    }
    if (starts(l, len, "DEADLINE_SOON") || starts(l, len, "OUT_OF_MEMORY") || starts(l, len, "INTERNAL_ERROR") ||
        starts(l, len, "BAD_FORMAT") || starts(l, len, "UNKNOWN_COMMAND")) {
        complete(c, -1);
        return;
    }
    conn_fail(c, "unexpected answer: %.*s", (int)(len > 80 ? 80 : len), l);
}

/* The data block of an answer has been read. */
static void after_skip(struct conn *c)
{
    c->ps = PS_LINE;
    struct infl *e = ring_head(c);
    switch (c->after) {
    case AS_MC_END:
        break; /* the END line completes it */
    case AS_HIT:
        complete(c, 1);
        break;
    case AS_REDIS_LREM: {
        /* Confirm: remove the value just moved to the processing list. */
        struct infl next = {.t_op = e->t_op, .kind = e->kind, .step = 1};
        bool bad = c->bad_size;
        ring_pop(c);
        c->bad_size = bad;
        char hdr[256];
        int n = snprintf(hdr, sizeof(hdr), "*4\r\n$4\r\nLREM\r\n$%zu\r\n%s:processing\r\n$1\r\n1\r\n$%" PRIu64 "\r\n",
                         strlen(cfg.queue) + 11, cfg.queue, c->resp_n);
        out_copy(c, hdr, (size_t)n);
        if (c->resp_n > payload_cap) {
            conn_fail(c, "value larger than any item sent");
            return;
        }
        out_payload(c, (size_t)c->resp_n);
        out_copy(c, "\r\n", 2);
        ring_push(c, next);
        break;
    }
    case AS_BEAN_DELETE: {
        struct infl next = {.t_op = e->t_op, .kind = e->kind, .step = 1};
        bool bad = c->bad_size;
        ring_pop(c);
        c->bad_size = bad;
        char line[64];
        int n = snprintf(line, sizeof(line), "delete %" PRIu64 "\r\n", c->bean_id);
        out_copy(c, line, (size_t)n);
        ring_push(c, next);
        break;
    }
    case AS_BIN_DONE:
        complete(c, c->bin_result);
        break;
    }
}

static void on_line(struct conn *c, const char *l, size_t len)
{
    struct infl *e = ring_head(c);
    if (!e) {
        conn_fail(c, "answer without a request: %.*s", (int)(len > 80 ? 80 : len), l);
        return;
    }
    switch (cfg.proto) {
    case P_MC:
        on_line_mc(c, e, l, len);
        break;
    case P_RESP:
        on_line_resp(c, e, l, len);
        break;
    case P_BEAN:
        on_line_bean(c, e, l, len);
        break;
    case P_BIN:
        break; /* framed by read_frames_bin, never by lines */
    }
}

/* Takes up to avail bytes of the data block being skipped; returns how many. */
static size_t skip_data(struct conn *c, size_t avail)
{
    size_t take = avail < c->skip_left ? avail : (size_t)c->skip_left;
    c->skip_left -= take;
    if (!c->skip_left)
        after_skip(c); /* text: the data ended in CRLF, the last two bytes skipped */
    return take;
}

/* Text protocols: answers are lines, some followed by a data block. Returns
 * the bytes of ibuf consumed. */
static size_t read_lines(struct conn *c)
{
    size_t pos = 0;
    while (pos < c->ilen && !atomic_load_explicit(&g_failed, memory_order_relaxed)) {
        if (c->ps == PS_SKIP) {
            pos += skip_data(c, c->ilen - pos);
            continue;
        }
        char *nl = memchr(c->ibuf + pos, '\n', c->ilen - pos);
        if (!nl)
            break;
        size_t len = (size_t)(nl - (c->ibuf + pos));
        const char *line = c->ibuf + pos;
        if (len && line[len - 1] == '\r')
            len--;
        pos = (size_t)(nl - c->ibuf) + 1;
        on_line(c, line, len);
    }
    return pos;
}

static uint16_t get_be16(const char *p) { return (uint16_t)((uint8_t)p[0] << 8 | (uint8_t)p[1]); }

static uint32_t get_be32(const char *p) { return (uint32_t)get_be16(p) << 16 | get_be16(p + 2); }

/* A binary answer's header: decides the result of the request at the head of
 * the ring (the value's size is in the header), then skips the body. */
static void on_header_bin(struct conn *c, const char *h)
{
    struct infl *e = ring_head(c);
    if (!e) {
        conn_fail(c, "binary answer without a request");
        return;
    }
    bool set = e->kind == OP_SET || e->kind == OP_BIGSET;
    uint8_t opcode = (uint8_t)h[1];
    uint16_t status = get_be16(h + 6);
    uint32_t body = get_be32(h + 8);
    uint32_t fixed = get_be16(h + 2) + (uint8_t)h[4]; /* key and extras */
    if ((uint8_t)h[0] != BIN_RES || opcode != (set ? BIN_SET : BIN_GET) || fixed > body) {
        conn_fail(c, "bad binary answer header (magic 0x%02x, opcode 0x%02x, body %" PRIu32 ")", (uint8_t)h[0], opcode,
                  body);
        return;
    }
    int result = -1;
    if (status == BIN_OK) {
        result = 1;
        if (!set && body - fixed != expected_size(e->kind))
            c->bad_size = 1;
    } else if (status == BIN_NOT_FOUND && !set) {
        result = 0;
    }
    if (!body) {
        complete(c, result);
        return;
    }
    c->bin_result = result;
    c->skip_left = body;
    c->after = AS_BIN_DONE;
    c->ps = PS_SKIP;
}

/* Binary protocol: answers are framed by their header's total body length,
 * not by lines. Returns the bytes of ibuf consumed. */
static size_t read_frames_bin(struct conn *c)
{
    size_t pos = 0;
    while (pos < c->ilen && !atomic_load_explicit(&g_failed, memory_order_relaxed)) {
        if (c->ps == PS_SKIP) {
            pos += skip_data(c, c->ilen - pos);
            continue;
        }
        if (c->ilen - pos < BIN_HDR)
            break;
        on_header_bin(c, c->ibuf + pos);
        pos += BIN_HDR;
    }
    return pos;
}

static void conn_readable(struct conn *c)
{
    ssize_t r = read(c->fd, c->ibuf + c->ilen, c->icap - c->ilen);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        conn_fail(c, "read: %s", strerror(errno));
        return;
    }
    if (r == 0) {
        conn_fail(c, "the server closed the connection");
        return;
    }
    c->ilen += (size_t)r;
    size_t pos = cfg.proto == P_BIN ? read_frames_bin(c) : read_lines(c);
    if (pos < c->ilen)
        memmove(c->ibuf, c->ibuf + pos, c->ilen - pos);
    c->ilen -= pos;
    if (c->ilen == c->icap && c->ps == PS_LINE)
        conn_fail(c, "answer line longer than %zu bytes", c->icap);
    conn_top_up(c);
    conn_flush(c);
}

/* ---- connecting ---- */

static int read_lines_blocking(int fd, int want)
{
    char buf[1024];
    size_t n = 0;
    int lines = 0;
    while (lines < want) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - n);
        if (r <= 0)
            return -1;
        for (ssize_t i = 0; i < r; i++)
            if (buf[n + (size_t)i] == '\n')
                lines++;
        n += (size_t)r;
        if (n == sizeof(buf))
            n = 0; /* only the count of lines matters */
    }
    return 0;
}

static int read_exact(int fd, char *buf, size_t n)
{
    while (n) {
        ssize_t r = read(fd, buf, n);
        if (r <= 0)
            return -1;
        buf += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Reads one binary answer (its header, then its body) and drops it. */
static int read_bin_blocking(int fd)
{
    char h[BIN_HDR], sink[1024];
    if (read_exact(fd, h, BIN_HDR) < 0 || (uint8_t)h[0] != BIN_RES)
        return -1;
    for (size_t left = get_be32(h + 8); left;) {
        size_t n = left < sizeof(sink) ? left : sizeof(sink);
        if (read_exact(fd, sink, n) < 0)
            return -1;
        left -= n;
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Connects and makes one round trip, so the server has accepted the
 * connection (and beanstalkd has its tubes) before the clock starts. */
static int conn_open(struct conn *c, char *err, size_t errlen)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg.port)};
    inet_pton(AF_INET, cfg.host, &sa.sin_addr);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(err, errlen, "connect to %s:%d: %s", cfg.host, cfg.port, strerror(errno));
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char hello[700];
    size_t hello_len = 0;
    int lines = 1;
    switch (cfg.proto) {
    case P_BIN:
        hello_len = bin_request(hello, sizeof(hello), BIN_VERSION, 0, "", 0);
        break;
    case P_MC:
        snprintf(hello, sizeof(hello), "version\r\n");
        break;
    case P_RESP:
        snprintf(hello, sizeof(hello), "PING\r\n");
        break;
    case P_BEAN: {
        const char *suffix = c->bg ? "_big" : "";
        snprintf(hello, sizeof(hello), "use %s%s\r\nwatch %s%s\r\nignore default\r\n", cfg.queue, suffix, cfg.queue,
                 suffix);
        lines = 3;
        break;
    }
    }
    if (!hello_len)
        hello_len = strlen(hello);
    if (write_all(fd, hello, hello_len) < 0 ||
        (cfg.proto == P_BIN ? read_bin_blocking(fd) : read_lines_blocking(fd, lines)) < 0) {
        snprintf(err, errlen, "no answer from %s:%d: %s", cfg.host, cfg.port, strerror(errno));
        close(fd);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    c->fd = fd;
    return 0;
}

/* ---- threads ---- */

static bool thread_idle(const struct thread *th, bool timed_only)
{
    for (int i = 0; i < th->nconns; i++) {
        const struct conn *c = th->conns[i];
        if (timed_only && c->bg)
            continue;
        if (c->rcount)
            return false;
    }
    return true;
}

static void *thread_main(void *arg)
{
    struct thread *th = arg;
    th->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (th->epfd < 0)
        die("epoll_create1: %s", strerror(errno));
    for (int i = 0; i < th->nconns && !atomic_load(&g_failed); i++) {
        struct conn *c = th->conns[i];
        char err[200];
        if (conn_open(c, err, sizeof(err)) < 0) {
            snprintf(th->err, sizeof(th->err), "connection %d: %s", c->id, err);
            atomic_store(&g_failed, true);
            break;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(th->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            die("epoll_ctl: %s", strerror(errno));
    }
    pthread_barrier_wait(&g_bar_ready);
    pthread_barrier_wait(&g_bar_go);
    if (atomic_load(&g_failed))
        goto out;
    for (int i = 0; i < th->nconns; i++) {
        conn_top_up(th->conns[i]);
        conn_flush(th->conns[i]);
    }
    struct epoll_event evs[256];
    while (!atomic_load_explicit(&g_abort, memory_order_relaxed)) {
        int n = epoll_wait(th->epfd, evs, 256, 20);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (evs[i].events & EPOLLOUT)
                conn_flush(c);
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                conn_readable(c);
        }
        if (atomic_load_explicit(&g_failed, memory_order_relaxed))
            break;
        bool out_of_budget = th->has_budget && !th->budget;
        if (out_of_budget && !atomic_load_explicit(&th->timed_done, memory_order_relaxed) && thread_idle(th, true))
            atomic_store(&th->timed_done, true);
        if (atomic_load_explicit(&g_stop, memory_order_relaxed) && thread_idle(th, false))
            break;
        if (!th->ntimed || th->nconns == th->ntimed) {
            /* No background connections: finish as soon as the budget is spent. */
            if (out_of_budget && thread_idle(th, false))
                break;
        }
    }
out:
    for (int i = 0; i < th->nconns; i++)
        if (th->conns[i]->fd >= 0)
            close(th->conns[i]->fd);
    close(th->epfd);
    atomic_store(&th->timed_done, true);
    atomic_store(&th->finished, true);
    return NULL;
}

/* ---- rawsync ---- */

static struct hist *raw_hist;
static uint64_t raw_records, raw_syncs, raw_elapsed_ns;

static void run_rawsync(void)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/darner-bench-rawsync.%d", cfg.dir, (int)getpid());
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        die("open %s: %s", path, strerror(errno));
    size_t rec = cfg.size + RECORD_HEADER;
    size_t bytes = rec * (size_t)cfg.batch;
    char *buf = malloc(bytes);
    if (!buf)
        die("out of memory");
    memset(buf, 'r', bytes);
    /* Preallocated: the file's size never changes while records are written,
     * so fdatasync has no size to commit (a journal with preallocated
     * segments). Writes wrap around inside the area. */
    off_t area = 0;
    if (cfg.prealloc) {
        area = (off_t)256 << 20;
        area -= area % (off_t)bytes;
        if (area < (off_t)bytes)
            area = (off_t)bytes;
        if (cfg.prealloc == 1) {
            int rc = posix_fallocate(fd, 0, area);
            if (rc)
                die("posix_fallocate %s: %s", path, strerror(rc));
        } else {
            static char zero[1 << 20];
            for (off_t o = 0; o < area; o += (off_t)sizeof(zero)) {
                size_t n = (size_t)(area - o) < sizeof(zero) ? (size_t)(area - o) : sizeof(zero);
                if (pwrite(fd, zero, n, o) != (ssize_t)n)
                    die("write %s: %s", path, strerror(errno));
            }
        }
        if (fsync(fd) < 0)
            die("fsync %s: %s", path, strerror(errno));
    }
    raw_hist = xcalloc(1, sizeof(*raw_hist));
    hist_init(raw_hist);
    uint64_t t0 = now_ns();
    uint64_t end = cfg.duration > 0 ? t0 + (uint64_t)(cfg.duration * 1e9) : UINT64_MAX;
    uint64_t last_print = t0;
    off_t off = 0;
    for (;;) {
        uint64_t t = now_ns();
        if (t >= end || (cfg.count && raw_records >= cfg.count))
            break;
        if (pwrite(fd, buf, bytes, off) != (ssize_t)bytes)
            die("write %s: %s", path, strerror(errno));
        off += (off_t)bytes;
        if (area && off >= area)
            off = 0;
        if (fdatasync(fd) < 0)
            die("fdatasync %s: %s", path, strerror(errno));
        uint64_t t2 = now_ns();
        hist_add(raw_hist, t2 - t);
        raw_records += (uint64_t)cfg.batch;
        raw_syncs++;
        if (!cfg.quiet && cfg.progress_every > 0 && t2 - last_print >= (uint64_t)(cfg.progress_every * 1e9)) {
            fprintf(stderr, "\r[rawsync batch=%d] %5.1fs %10" PRIu64 " records %9.0f/s ", cfg.batch,
                    (double)(t2 - t0) / 1e9, raw_records, (double)raw_records / ((double)(t2 - t0) / 1e9));
            last_print = t2;
        }
    }
    raw_elapsed_ns = now_ns() - t0;
    if (!cfg.quiet && cfg.progress_every > 0)
        fputc('\n', stderr);
    close(fd);
    unlink(path);
    free(buf);
}

/* ---- reporting ---- */

static void loadavg(char *out, size_t n)
{
    out[0] = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f)
        return;
    if (fgets(out, (int)n, f)) {
        char *nl = strchr(out, '\n');
        if (nl)
            *nl = 0;
    }
    fclose(f);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static double us(uint64_t ns) { return (double)ns / 1000.0; }

static void json_lat(FILE *f, const struct hist *h)
{
    fprintf(f,
            "{\"count\": %" PRIu64 ", \"mean\": %.2f, \"min\": %.2f, \"p50\": %.2f, \"p90\": %.2f, "
            "\"p99\": %.2f, \"p999\": %.2f, \"p9999\": %.2f, \"max\": %.2f}",
            h->count, hist_mean(h) / 1000.0, us(h->count ? h->min : 0), us(hist_quantile(h, 0.5)),
            us(hist_quantile(h, 0.9)), us(hist_quantile(h, 0.99)), us(hist_quantile(h, 0.999)),
            us(hist_quantile(h, 0.9999)), us(h->max));
}

/* Quantiles evenly spaced in "nines": 1 - 10^(-k/10), k = 0..50, then the max. */
static void json_cdf(FILE *f, const struct hist *h)
{
    fputc('[', f);
    for (int k = 0; k <= 50; k++) {
        double q = 1.0 - pow(10.0, -(double)k / 10.0);
        fprintf(f, "%s[%.6f, %.2f]", k ? ", " : "", q, us(hist_quantile(h, q)));
    }
    fprintf(f, ", [1.0, %.2f]]", us(h->max));
}

static void print_lat_row(FILE *f, const char *name, const struct hist *h)
{
    fprintf(f, "  %-10s %9" PRIu64 " %9.1f %9.1f %9.1f %9.1f %10.1f %9.1f\n", name, h->count, us(hist_quantile(h, 0.5)),
            us(hist_quantile(h, 0.9)), us(hist_quantile(h, 0.99)), us(hist_quantile(h, 0.999)), us(h->max),
            hist_mean(h) / 1000.0);
}

struct totals {
    struct hist *h[OP_NKINDS];
    struct hist *all; /* timed kinds */
    struct counters cnt[OP_NKINDS];
    uint64_t ops, hits, misses, errors, bg_ops, bg_bytes;
    double elapsed;
};

static void report(struct thread *ths, const char *la0)
{
    struct totals T = {0};
    char la1[128];
    loadavg(la1, sizeof(la1));
    for (int k = 0; k < OP_NKINDS; k++) {
        T.h[k] = xcalloc(1, sizeof(struct hist));
        hist_init(T.h[k]);
    }
    T.all = xcalloc(1, sizeof(struct hist));
    hist_init(T.all);
    uint64_t t_end = g_t0;
    if (cfg.workload == WL_RAWSYNC) {
        hist_merge(T.h[OP_SET], raw_hist);
        T.cnt[OP_SET] = (struct counters){raw_records, raw_records, 0, 0};
        t_end = g_t0 + raw_elapsed_ns;
    } else {
        for (int i = 0; i < cfg.threads; i++) {
            for (int k = 0; k < OP_NKINDS; k++) {
                hist_merge(T.h[k], ths[i].h[k]);
                T.cnt[k].ops += ths[i].cnt[k].ops;
                T.cnt[k].hits += ths[i].cnt[k].hits;
                T.cnt[k].misses += ths[i].cnt[k].misses;
                T.cnt[k].errors += ths[i].cnt[k].errors;
            }
            if (ths[i].t_last > t_end)
                t_end = ths[i].t_last;
            T.bg_bytes += ths[i].bg_bytes;
        }
    }
    for (int k = 0; k < OP_NKINDS; k++) {
        bool bgk = k == OP_BIGSET || k == OP_BIGGET;
        if (bgk) {
            T.bg_ops += T.cnt[k].ops;
            continue;
        }
        hist_merge(T.all, T.h[k]);
        T.ops += T.cnt[k].ops;
        T.hits += T.cnt[k].hits;
        T.misses += T.cnt[k].misses;
        T.errors += T.cnt[k].errors;
    }
    T.elapsed = (double)(t_end - g_t0) / 1e9;
    double rate = T.elapsed > 0 ? (double)T.ops / T.elapsed : 0.0;
    double bg_mib = T.elapsed > 0 ? (double)T.bg_bytes / T.elapsed / 1048576.0 : 0.0;

    bool json_stdout = cfg.json && strcmp(cfg.json, "-") == 0;
    FILE *tf = json_stdout ? stderr : stdout;
    if (cfg.workload == WL_RAWSYNC) {
        fprintf(tf, "darner-bench: rawsync dir=%s batch=%d record=%zu B prealloc=%s\n", cfg.dir, cfg.batch,
                cfg.size + RECORD_HEADER, prealloc_names[cfg.prealloc]);
        fprintf(tf, "  records    %" PRIu64 " in %.3f s: %.0f records/s, %.0f fdatasync/s\n", T.ops, T.elapsed, rate,
                T.elapsed > 0 ? (double)raw_syncs / T.elapsed : 0.0);
        fprintf(tf, "  latency us     count       p50       p90       p99     p99.9        max      mean\n");
        print_lat_row(tf, "write+sync", T.h[OP_SET]);
    } else {
        fprintf(tf,
                "darner-bench: driver=%s protocol=%s workload=%s port=%d connections=%d pipeline=%d size=%zu "
                "threads=%d\n",
                driver_names[cfg.driver], proto_names[cfg.proto], workload_names[cfg.workload], cfg.port, cfg.conns,
                cfg.pipeline, cfg.size, cfg.threads);
        fprintf(tf, "  ops        %" PRIu64 " (hits %" PRIu64 ", misses %" PRIu64 ", errors %" PRIu64 ")\n", T.ops,
                T.hits, T.misses, T.errors);
        fprintf(tf, "  elapsed    %.3f s\n", T.elapsed);
        fprintf(tf, "  throughput %.0f ops/s\n", rate);
        if (cfg.workload == WL_FAIRNESS)
            fprintf(tf, "  background %" PRIu64 " ops of %zu B on %d connections, %.1f MiB/s\n", T.bg_ops, cfg.bg_size,
                    cfg.bg_conns, bg_mib);
        fprintf(tf, "  latency us     count       p50       p90       p99     p99.9        max      mean\n");
        for (int k = 0; k < OP_NKINDS; k++)
            if (T.h[k]->count)
                print_lat_row(tf, op_names[k], T.h[k]);
        if (T.all->count)
            print_lat_row(tf, "all", T.all);
    }

    if (cfg.json) {
        FILE *f = json_stdout ? stdout : fopen(cfg.json, "w");
        if (!f)
            die("open %s: %s", cfg.json, strerror(errno));
        fprintf(f,
                "{\"tool\": \"darner-bench\", \"driver\": \"%s\", \"protocol\": \"%s\", \"workload\": \"%s\", "
                "\"label\": ",
                driver_names[cfg.driver], proto_names[cfg.proto], workload_names[cfg.workload]);
        json_str(f, cfg.label);
        fprintf(f, ", \"host\": \"%s\", \"port\": %d, \"queue\": ", cfg.host, cfg.port);
        json_str(f, cfg.queue);
        fprintf(f,
                ", \"connections\": %d, \"bg_connections\": %d, \"threads\": %d, \"pipeline\": %d, "
                "\"size\": %zu, \"bg_size\": %zu, \"duration_s\": %.3f, \"count\": %" PRIu64 ", \"batch\": %d",
                cfg.conns, cfg.workload == WL_FAIRNESS ? cfg.bg_conns : 0, cfg.threads, cfg.pipeline, cfg.size,
                cfg.workload == WL_FAIRNESS ? cfg.bg_size : 0, cfg.duration, cfg.count,
                cfg.workload == WL_RAWSYNC ? cfg.batch : 0);
        fprintf(f,
                ", \"elapsed_s\": %.6f, \"ops\": %" PRIu64 ", \"ops_per_s\": %.1f, \"hits\": %" PRIu64
                ", \"misses\": %" PRIu64 ", \"errors\": %" PRIu64,
                T.elapsed, T.ops, rate, T.hits, T.misses, T.errors);
        if (cfg.workload == WL_FAIRNESS)
            fprintf(f, ", \"bg_ops\": %" PRIu64 ", \"bg_bytes\": %" PRIu64 ", \"bg_mib_per_s\": %.2f", T.bg_ops,
                    T.bg_bytes, bg_mib);
        if (cfg.workload == WL_RAWSYNC)
            fprintf(f, ", \"syncs\": %" PRIu64 ", \"syncs_per_s\": %.1f, \"prealloc\": \"%s\"", raw_syncs,
                    T.elapsed > 0 ? (double)raw_syncs / T.elapsed : 0.0, prealloc_names[cfg.prealloc]);
        fprintf(f, ", \"latency_us\": {");
        bool first = true;
        for (int k = 0; k < OP_NKINDS; k++) {
            if (!T.h[k]->count)
                continue;
            fprintf(f, "%s\"%s\": ", first ? "" : ", ", cfg.workload == WL_RAWSYNC ? "batch" : op_names[k]);
            json_lat(f, T.h[k]);
            first = false;
        }
        if (cfg.workload != WL_RAWSYNC) {
            fprintf(f, "%s\"all\": ", first ? "" : ", ");
            json_lat(f, T.all);
        }
        fprintf(f, "}, \"cdf_us\": ");
        json_cdf(f, cfg.workload == WL_RAWSYNC ? T.h[OP_SET] : T.all);
        fprintf(f, ", \"loadavg_start\": ");
        json_str(f, la0);
        fprintf(f, ", \"loadavg_end\": ");
        json_str(f, la1);
        fprintf(f, "}\n");
        if (f != stdout)
            fclose(f);
        else
            fflush(f);
    }
    for (int k = 0; k < OP_NKINDS; k++)
        free(T.h[k]);
    free(T.all);
}

/* ---- flags ---- */

static void usage(FILE *f)
{
    fprintf(f, "usage: darner-bench [flags]\n"
               "  --driver NAME        darner | kestrel | memcached | redis | beanstalkd (default darner)\n"
               "  --binary             darner, memcached: memcache's binary protocol instead of text\n"
               "  --workload NAME      flood | set | get | reliable | durable | fairness | rawsync (default flood)\n"
               "  --host ADDR          IPv4 address (default 127.0.0.1)\n"
               "  -p, --port N         server port (default 22133)\n"
               "  -q, --queue NAME     queue, key, list or tube (default bench)\n"
               "  -c, --connections N  timed connections (default 1)\n"
               "  -d, --duration S     seconds to run (default 5 when no --count)\n"
               "  -n, --count N        operations to run in all (with --duration: whichever ends first)\n"
               "  -s, --size BYTES     item size (default 64; K, M suffixes)\n"
               "  -P, --pipeline N     requests in flight per connection (default 1: no pipelining)\n"
               "  -t, --threads N      client threads, each with its own epoll loop (default 1;\n"
               "                       fairness: 2, the background connections alone on the last)\n"
               "  --bg-connections N   fairness: connections moving big items (default 2)\n"
               "  --bg-size BYTES      fairness: big item size (default 8M)\n"
               "  --batch N            rawsync: records per fdatasync (default 1)\n"
               "  --dir PATH           rawsync: folder for the scratch file (default .)\n"
               "  --prealloc MODE      rawsync: none (append, default) | fallocate | zero: a 256 MiB file\n"
               "                       made first and then overwritten, so fdatasync commits no size change\n"
               "  --json FILE          write the result as JSON to FILE ('-' = stdout; the table goes to stderr)\n"
               "  --label TEXT         free text copied into the JSON\n"
               "  --progress S         progress line every S seconds (default 0.5 on a terminal, else 2)\n"
               "  --quiet              no progress line\n"
               "  --self-test          check the histogram and exit\n");
}

static uint64_t parse_size(const char *s, const char *flag)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        die("%s: not a number: %s", flag, s);
    switch (*end) {
    case 'k':
    case 'K':
        v <<= 10;
        end++;
        break;
    case 'm':
    case 'M':
        v <<= 20;
        end++;
        break;
    case 'g':
    case 'G':
        v <<= 30;
        end++;
        break;
    default:
        break;
    }
    if (*end)
        die("%s: not a size: %s", flag, s);
    return v;
}

static int parse_int(const char *s, const char *flag, int lo, int hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        die("%s: want an integer from %d to %d, got %s", flag, lo, hi, s);
    return (int)v;
}

static int lookup(const char *s, const char *const *names, int n, const char *flag)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    die("%s: unknown value %s", flag, s);
}

static void parse_flags(int argc, char **argv)
{
    bool threads_set = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(a, "--self-test")) {
            int rc = hist_self_test();
            printf("darner-bench self-test: %s\n", rc ? "FAILED" : "ok");
            exit(rc ? 1 : 0);
        }
        if (!strcmp(a, "--quiet")) {
            cfg.quiet = true;
            continue;
        }
        if (!strcmp(a, "--binary")) {
            cfg.binary = true;
            continue;
        }
        if (i + 1 >= argc)
            die("%s needs a value (see --help)", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--driver"))
            cfg.driver = (enum driver)lookup(v, driver_names, 5, a);
        else if (!strcmp(a, "--workload"))
            cfg.workload = (enum workload)lookup(v, workload_names, 7, a);
        else if (!strcmp(a, "--host")) {
            struct in_addr x;
            if (strlen(v) >= sizeof(cfg.host) || inet_pton(AF_INET, v, &x) != 1)
                die("--host: want an IPv4 address, got %s", v);
            snprintf(cfg.host, sizeof(cfg.host), "%s", v);
        } else if (!strcmp(a, "-p") || !strcmp(a, "--port"))
            cfg.port = parse_int(v, a, 1, 65535);
        else if (!strcmp(a, "-q") || !strcmp(a, "--queue")) {
            if (!*v || strlen(v) >= 180 || strpbrk(v, " /\r\n\t"))
                die("--queue: want 1 to 179 bytes without space or '/'");
            snprintf(cfg.queue, sizeof(cfg.queue), "%s", v);
        } else if (!strcmp(a, "-c") || !strcmp(a, "--connections"))
            cfg.conns = parse_int(v, a, 1, 100000);
        else if (!strcmp(a, "-d") || !strcmp(a, "--duration")) {
            char *end;
            cfg.duration = strtod(v, &end);
            if (*end || !(cfg.duration > 0) || cfg.duration > 86400)
                die("%s: want seconds, got %s", a, v);
        } else if (!strcmp(a, "-n") || !strcmp(a, "--count"))
            cfg.count = parse_size(v, a);
        else if (!strcmp(a, "-s") || !strcmp(a, "--size"))
            cfg.size = (size_t)parse_size(v, a);
        else if (!strcmp(a, "-P") || !strcmp(a, "--pipeline"))
            cfg.pipeline = parse_int(v, a, 1, 4096);
        else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            cfg.threads = parse_int(v, a, 1, 256);
            threads_set = true;
        } else if (!strcmp(a, "--bg-connections"))
            cfg.bg_conns = parse_int(v, a, 0, 1000);
        else if (!strcmp(a, "--bg-size"))
            cfg.bg_size = (size_t)parse_size(v, a);
        else if (!strcmp(a, "--prealloc"))
            cfg.prealloc = lookup(v, prealloc_names, 3, a);
        else if (!strcmp(a, "--batch"))
            cfg.batch = parse_int(v, a, 1, 1000000);
        else if (!strcmp(a, "--dir")) {
            if (strlen(v) >= sizeof(cfg.dir))
                die("--dir: too long");
            snprintf(cfg.dir, sizeof(cfg.dir), "%s", v);
        } else if (!strcmp(a, "--json"))
            cfg.json = v;
        else if (!strcmp(a, "--label"))
            cfg.label = v;
        else if (!strcmp(a, "--progress")) {
            char *end;
            cfg.progress_every = strtod(v, &end);
            if (*end || cfg.progress_every < 0)
                die("--progress: want seconds, got %s", v);
        } else
            die("unknown flag %s (see --help)", a);
    }
    if (cfg.size > (1ull << 30) || cfg.bg_size > (1ull << 30))
        die("item sizes are limited to 1 GiB");
    cfg.proto = cfg.driver == DRV_REDIS ? P_RESP : cfg.driver == DRV_BEANSTALKD ? P_BEAN : P_MC;
    if (cfg.binary) {
        if (cfg.driver != DRV_DARNER && cfg.driver != DRV_MEMCACHED)
            die("--binary: the darner and memcached drivers only");
        cfg.proto = P_BIN;
    }
    if (!cfg.duration && !cfg.count)
        cfg.duration = 5;
    if (cfg.workload != WL_FAIRNESS)
        cfg.bg_conns = 0;
    if (cfg.driver == DRV_MEMCACHED && (cfg.workload == WL_RELIABLE || cfg.workload == WL_DURABLE))
        die("memcached has no %s reads or writes", workload_names[cfg.workload]);
    if (cfg.driver == DRV_KESTREL && cfg.workload == WL_DURABLE)
        die("the kestrel driver has no /sync sets");
    if (!threads_set && cfg.workload == WL_FAIRNESS && cfg.bg_conns)
        cfg.threads = 2; /* timed connections on one, big items on the other */
    if (cfg.threads > cfg.conns + cfg.bg_conns)
        cfg.threads = cfg.conns + cfg.bg_conns;
    if (!cfg.progress_every && !cfg.quiet)
        cfg.progress_every = isatty(2) ? 0.5 : 2.0;
}

/* ---- main ---- */

static void free_all(struct thread *ths)
{
    for (int i = 0; i < cfg.threads; i++) {
        for (int k = 0; k < ths[i].nconns; k++) {
            struct conn *c = ths[i].conns[k];
            free(c->obuf);
            free(c->segs);
            free(c->ibuf);
            free(c->ring);
            free(c);
        }
        for (int k = 0; k < OP_NKINDS; k++)
            free(ths[i].h[k]);
        free(ths[i].conns);
    }
    free(ths);
    free(payload);
    pthread_barrier_destroy(&g_bar_ready);
    pthread_barrier_destroy(&g_bar_go);
}

int main(int argc, char **argv)
{
    parse_flags(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    char la0[128];
    loadavg(la0, sizeof(la0));

    if (cfg.workload == WL_RAWSYNC) {
        g_t0 = 0;
        run_rawsync();
        report(NULL, la0);
        free(raw_hist);
        return 0;
    }

    payload_cap = cfg.size > cfg.bg_size || cfg.workload != WL_FAIRNESS ? cfg.size : cfg.bg_size;
    payload = malloc(payload_cap ? payload_cap : 1);
    if (!payload)
        die("out of memory");
    for (size_t i = 0; i < payload_cap; i++)
        payload[i] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[i % 62];
    build_requests();

    int total = cfg.conns + cfg.bg_conns;
    struct thread *ths = xcalloc((size_t)cfg.threads, sizeof(*ths));
    for (int i = 0; i < cfg.threads; i++) {
        struct thread *th = &ths[i];
        th->id = i;
        th->conns = xcalloc((size_t)total, sizeof(struct conn *));
        for (int k = 0; k < OP_NKINDS; k++) {
            th->h[k] = xcalloc(1, sizeof(struct hist));
            hist_init(th->h[k]);
        }
        th->has_budget = cfg.count != 0;
        th->budget = cfg.count / (uint64_t)cfg.threads + ((uint64_t)i < cfg.count % (uint64_t)cfg.threads);
    }
    for (int i = 0; i < total; i++) {
        struct conn *c = xcalloc(1, sizeof(*c));
        c->id = i;
        c->fd = -1;
        c->bg = i >= cfg.conns;
        c->phase = 0; /* every connection starts with an enqueue: a dequeue never races ahead */
        c->icap = c->bg ? BG_IBUF_SIZE : IBUF_SIZE;
        c->ibuf = malloc(c->icap);
        c->rcap = cfg.pipeline + 1;
        c->ring = xcalloc((size_t)c->rcap, sizeof(struct infl));
        if (!c->ibuf)
            die("out of memory");
        /* Fairness with two or more threads: the background connections get
         * the last thread to themselves, so the client's own copying of big
         * items never delays a timed answer. */
        int ti = i % cfg.threads;
        if (cfg.workload == WL_FAIRNESS && cfg.threads > 1 && cfg.bg_conns)
            ti = c->bg ? cfg.threads - 1 : i % (cfg.threads - 1);
        struct thread *th = &ths[ti];
        c->th = th;
        th->conns[th->nconns++] = c;
        if (!c->bg)
            th->ntimed++;
    }
    for (int i = 0; i < cfg.threads; i++)
        if (!ths[i].ntimed)
            atomic_store(&ths[i].timed_done, true); /* only background connections */

    pthread_barrier_init(&g_bar_ready, NULL, (unsigned)cfg.threads + 1);
    pthread_barrier_init(&g_bar_go, NULL, (unsigned)cfg.threads + 1);
    for (int i = 0; i < cfg.threads; i++)
        if (pthread_create(&ths[i].tid, NULL, thread_main, &ths[i]))
            die("pthread_create failed");
    pthread_barrier_wait(&g_bar_ready);
    g_t0 = now_ns();
    pthread_barrier_wait(&g_bar_go);

    const char *label = cfg.label[0] ? cfg.label : driver_names[cfg.driver];
    bool tty = isatty(2);
    uint64_t end = cfg.duration > 0 ? g_t0 + (uint64_t)(cfg.duration * 1e9) : UINT64_MAX;
    uint64_t stop_at = 0, last_print = g_t0, last_ops = 0;
    bool printed = false;
    for (;;) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
        uint64_t t = now_ns();
        bool all_finished = true, all_timed = true;
        uint64_t ops = 0, errs = 0;
        for (int i = 0; i < cfg.threads; i++) {
            all_finished &= atomic_load(&ths[i].finished);
            all_timed &= atomic_load(&ths[i].timed_done);
            ops += atomic_load_explicit(&ths[i].live_ops, memory_order_relaxed);
            errs += atomic_load_explicit(&ths[i].live_errs, memory_order_relaxed);
        }
        if (all_finished)
            break;
        if (!atomic_load(&g_stop) && (t >= end || all_timed || atomic_load(&g_failed)))
            atomic_store(&g_stop, true);
        if (atomic_load(&g_stop)) {
            if (!stop_at)
                stop_at = t;
            else if (t - stop_at > FINISH_GRACE_NS || atomic_load(&g_failed))
                atomic_store(&g_abort, true);
        }
        if (!cfg.quiet && cfg.progress_every > 0 && t - last_print >= (uint64_t)(cfg.progress_every * 1e9)) {
            double el = (double)(t - g_t0) / 1e9;
            double rate = (double)(ops - last_ops) / ((double)(t - last_print) / 1e9);
            fprintf(stderr, "%s[%s %s c=%d] %6.1fs %11" PRIu64 " ops %10.0f ops/s %6" PRIu64 " errors%s",
                    tty ? "\r" : "", label, workload_names[cfg.workload], cfg.conns, el, ops, rate, errs,
                    tty ? "  " : "\n");
            last_print = t;
            last_ops = ops;
            printed = true;
        }
    }
    if (printed && tty)
        fputc('\n', stderr);
    for (int i = 0; i < cfg.threads; i++)
        pthread_join(ths[i].tid, NULL);
    if (atomic_load(&g_failed)) {
        for (int i = 0; i < cfg.threads; i++)
            if (ths[i].err[0])
                fprintf(stderr, "darner-bench: %s\n", ths[i].err);
        fprintf(stderr, "darner-bench: run failed (driver %s, port %d)\n", driver_names[cfg.driver], cfg.port);
        free_all(ths);
        return 1;
    }
    if (atomic_load(&g_abort))
        fprintf(stderr, "darner-bench: warning: answers still owed after %llu s; counted what arrived\n",
                (unsigned long long)(FINISH_GRACE_NS / 1000000000ull));
    report(ths, la0);
    free_all(ths);
    return 0;
}
