/* conn_cmd.c: running a parsed request: one table from request type to its
 * handler. */
#include "cell/ops.h"
#include "conn_int.h"

#include "queue/delay.h"

#include "conffile.h"
#include "conn_auth.h"
#include "metrics.h"
#include "reload.h"
#include "server.h"
#include "server_status.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* One request in the read buffer: its line is line[0..len), and avail bytes
 * from line on have arrived (a set's data follows the line). */
struct req_ctx {
    const char *line;
    size_t len, avail;
    const struct proto_req *req;
};

/* A handler returns the bytes it consumed, 0 when it needs more input, or
 * -1 when processing must stop with nothing consumed (a wait). */
typedef ssize_t (*cmd_fn)(struct conn *c, const struct req_ctx *r);

/* A request the server's status refuses: SERVER_ERROR <status>, the
 * connection stays (a set's data is skipped). */
static ssize_t refuse(struct conn *c, const struct req_ctx *r)
{
    ci_reply(c, REPLY_REFUSED, status_name(c->srv->status));
    if (r->req->type == PROTO_SET) {
        c->swallow_left = r->req->bytes + ci_trailer(c);
        c->state = CONN_SWALLOW;
    }
    return (ssize_t)r->len;
}

/* A command whose only answer is its result code: noreply silences it. */
static void answer(struct conn *c, const struct proto_req *req, int rc, enum reply ok, const char *detail)
{
    if (req->noreply)
        return;
    if (rc < 0)
        ci_out_server_error(c, rc);
    else
        ci_reply(c, ok, detail);
}

/* A set into a queue with max_items or max_size whose delayed items a
 * start left uncounted waits for the census (at each loop turn, as stats
 * does) instead of counting them at once in queue_admit while everyone
 * waits. Returns 1 when it must wait. */
static int set_waits_for_count(struct conn *c, const struct proto_req *req)
{
    struct queue *q;
    if (!c->srv->reg->delays_uncounted || !(q = registry_find(c->srv->reg, req->key.name.p, req->key.name.len)) ||
        !q->delays || !q->conf || (q->conf->v.max_items == UINT64_MAX && q->conf->v.max_size == UINT64_MAX) ||
        queue_delays_counted(q))
        return 0;
    c->resume = 1;
    ci_defer(c);
    return 1;
}

static ssize_t cmd_set(struct conn *c, const struct req_ctx *r)
{
    const struct proto_req *req = r->req;
    struct server *s = c->srv;
    if (set_waits_for_count(c, req))
        return -1;
    if (req->bytes > s->cfg->max_item_size) {
        s->st.cmd_set++;
        ci_reply(c, REPLY_SERVER_ERROR, "object too large for cache");
        c->swallow_left = req->bytes + ci_trailer(c);
        c->state = CONN_SWALLOW;
        return (ssize_t)r->len;
    }
    if (req->bytes > QUEUE_INLINE_MAX) {
        ci_stream_begin(c, req);
        return (ssize_t)r->len;
    }
    size_t total = r->len + (size_t)req->bytes + ci_trailer(c);
    if (r->avail < total) {
        if (ci_rbuf_reserve(c, (size_t)(r->line - c->rbuf) + total) < 0) {
            ci_out_server_error(c, -ENOMEM);
            c->swallow_left = req->bytes + ci_trailer(c);
            c->state = CONN_SWALLOW;
            return (ssize_t)r->len;
        }
        return 0;
    }
    const char *data = r->line + r->len;
    if (ci_trailer(c) && (data[req->bytes] != '\r' || data[req->bytes + 1] != '\n')) {
        ci_out_str(c, "CLIENT_ERROR bad data chunk\r\n");
        c->close_after = 1;
        return (ssize_t)total;
    }
    ci_do_set(c, req, data);
    return (ssize_t)total;
}

/* Whether a get wants an item (or a peek at one): refused in QUIESCENT,
 * where only /close, /abort and /bury of open items are served. */
static int get_reads(const struct proto_req *req)
{
    struct proto_slice rest = req->keys;
    struct proto_key k;
    while (proto_next_key(&rest, &k))
        if (!(k.opts & (PROTO_OPT_ABORT | PROTO_OPT_BURY)) &&
            (!(k.opts & PROTO_OPT_CLOSE) || (k.opts & (PROTO_OPT_OPEN | PROTO_OPT_PEEK))))
            return 1;
    return 0;
}

static ssize_t cmd_get(struct conn *c, const struct req_ctx *r)
{
    /* a get that waits (/t=) and is resumed was let in already */
    if (c->get_done == 0 && !c->guard && c->srv->status >= STATUS_QUIESCENT && get_reads(r->req))
        return refuse(c, r);
    return ci_do_get(c, r->req) ? (ssize_t)r->len : -1;
}

/* The queue a delete or flush names; NULL for none, or for an alias
 * (those ignore both, as Kestrel's do). */
static struct queue *plain_queue(struct conn *c, const struct proto_key *k)
{
    if (conffile_alias(c->srv->reg->conf, k->name.p, k->name.len))
        return NULL;
    return registry_find(c->srv->reg, k->name.p, k->name.len);
}

static ssize_t cmd_delete(struct conn *c, const struct req_ctx *r)
{
    struct registry *reg = c->srv->reg;
    struct queue *q = plain_queue(c, &r->req->key);
    int rc = q ? registry_delete(reg, q) : 0;
    ci_journal_touched(c, NULL);
    answer(c, r->req, rc, REPLY_DELETED, NULL);
    return (ssize_t)r->len;
}

static ssize_t cmd_flush(struct conn *c, const struct req_ctx *r)
{
    struct queue *q = plain_queue(c, &r->req->key);
    int rc = q ? queue_flush(q) : 0;
    ci_journal_touched(c, q);
    answer(c, r->req, rc, REPLY_END, NULL);
    return (ssize_t)r->len;
}

static ssize_t cmd_flush_all(struct conn *c, const struct req_ctx *r)
{
    int rc = registry_flush_all(c->srv->reg);
    ci_journal_touched(c, NULL);
    answer(c, r->req, rc, REPLY_FLUSHED, c->srv->cfg->compat == COMPAT_KESTREL ? "Flushed all queues.\r\n" : "OK\r\n");
    return (ssize_t)r->len;
}

/* After a start, delayed items are counted in steps between requests
 * (queue/delay.c): a stats request waits for the count, without holding up
 * anyone else (tried again at each loop turn until it is over). Returns 1
 * when it must wait. */
static int wait_for_delay_count(struct conn *c)
{
    if (!c->srv->reg->delays_uncounted)
        return 0;
    c->resume = 1;
    ci_defer(c);
    return 1;
}

static ssize_t cmd_stats(struct conn *c, const struct req_ctx *r)
{
    struct buf b = {0};
    if (wait_for_delay_count(c))
        return -1;
    metrics_write_stats(c->srv, &b);
    ci_reply_stats(c, &b);
    buf_free(&b);
    return (ssize_t)r->len;
}

static ssize_t cmd_version(struct conn *c, const struct req_ctx *r)
{
    ci_reply(c, REPLY_VERSION, DARNER_VERSION);
    return (ssize_t)r->len;
}

static ssize_t cmd_quit(struct conn *c, const struct req_ctx *r)
{
    ci_reply(c, REPLY_QUIT, NULL); /* binary Quit: answered, then closed */
    c->close_after = 1;
    return (ssize_t)r->len;
}

static ssize_t cmd_verbosity(struct conn *c, const struct req_ctx *r)
{
    answer(c, r->req, 0, REPLY_OK, NULL);
    return (ssize_t)r->len;
}

static ssize_t cmd_reload(struct conn *c, const struct req_ctx *r)
{
    char why[512];
    if (server_reload(c->srv, why, sizeof(why)) < 0)
        ci_out_fmt(c, "SERVER_ERROR %s\r\n", why);
    else
        ci_out_str(c, "Reloaded config.\r\n");
    return (ssize_t)r->len;
}

/* One queue's block of dump_config: Kestrel's dump_stats layout. */
static void dump_queue_config(struct conn *c, struct buf *b, const char *name, size_t len)
{
    const struct conffile *f = c->srv->conf;
    const struct conf_alias *a = conffile_alias(f, name, len);
    buf_printf(b, "%s '%.*s' {\r\n", a ? "alias" : "queue", (int)len, name);
    if (a) {
        buf_printf(b, "  destination_queues=");
        for (size_t i = 0; i < a->ndest; i++)
            buf_printf(b, "%s%s", i ? "," : "", a->dest[i]);
        buf_printf(b, "\r\n");
    } else {
        struct queue *q = registry_find(c->srv->reg, name, len);
        const struct qconf *qc = q ? q->conf : conffile_queue(f, name, len);
        buf_printf(b, "  section=%s\r\n", qc->section);
        conffile_dump(f, qc, b);
    }
    buf_printf(b, "}\r\n");
}

/* dump_config [q ...]: the settings each queue (every queue, without
 * names) resolved to, and where each value came from. */
static ssize_t cmd_dump_config(struct conn *c, const struct req_ctx *r)
{
    struct buf b = {0};
    if (r->req->nkeys) {
        struct proto_slice rest = r->req->keys;
        struct proto_key k;
        while (proto_next_key(&rest, &k))
            dump_queue_config(c, &b, k.name.p, k.name.len);
    } else {
        struct list *pos;
        for (pos = c->srv->reg->all.next; pos != &c->srv->reg->all; pos = pos->next) {
            struct queue *q = list_entry(pos, struct queue, all);
            if (q->level < 0) /* lanes are their queue's */
                dump_queue_config(c, &b, q->name, q->name_len);
        }
    }
    buf_printf(&b, "END\r\n");
    ci_out_bytes(c, b.data, b.len);
    buf_free(&b);
    return (ssize_t)r->len;
}

static ssize_t cmd_monitor(struct conn *c, const struct req_ctx *r)
{
    return ci_do_monitor(c, r->req) ? (ssize_t)r->len : -1;
}

static ssize_t cmd_touch(struct conn *c, const struct req_ctx *r)
{
    ci_do_touch(c, r->req);
    return (ssize_t)r->len;
}

static ssize_t cmd_confirm(struct conn *c, const struct req_ctx *r)
{
    ci_do_confirm(c, r->req);
    return (ssize_t)r->len;
}

/* kick <q> <count>: up to count dead letters at q's head go back to the
 * queues they came from (each move written before the answer). */
static ssize_t cmd_kick(struct conn *c, const struct req_ctx *r)
{
    const struct proto_key *k = &r->req->key;
    struct queue *q = registry_find(c->srv->reg, k->name.p, k->name.len);
    uint64_t n = 0;
    int rc = q ? queue_kick(q, r->req->count, &n) : 0;
    /* no dead letters there: its soonest delayed items, visible now */
    if (rc == 0 && n == 0 && q && q->delays)
        rc = queue_kick_delayed(q, r->req->count < QUEUE_KICK_MAX ? r->req->count : QUEUE_KICK_MAX, &n);
    if (rc < 0 && n == 0) {
        ci_out_server_error(c, rc);
        return (ssize_t)r->len;
    }
    if (n) /* under fsync always, the answer once the copies are on stable storage */
        ci_journal_touched(c, NULL);
    ci_out_fmt(c, "KICKED %" PRIu64 "\r\n", n);
    return (ssize_t)r->len;
}

/* cellfile <path> <offset> <length>: a cell leader's file, for a member
 * catching up from a snapshot (docs/cluster.md): "VALUE <path> 0 <n>
 * <size>", n bytes from offset (n: what the file has there, up to length;
 * size: the file's whole size), END; a file that is not there: END. */
static ssize_t cmd_cellfile(struct conn *c, const struct req_ctx *r)
{
    const struct proto_slice *p = &r->req->keys;
    struct server *s = c->srv;
    char path[sizeof(s->cfg->data_dir) + COP_PATH_MAX + 2];
    if (!s->reg->cell || c->rt.binary) {
        ci_reply(c, REPLY_SERVER_ERROR, "cellfile: this server does not lead a cell");
        return (ssize_t)r->len;
    }
    if (!cop_path_ok(p->p, p->len)) {
        ci_reply(c, REPLY_CLIENT_ERROR, "cellfile: not a path of a cell's files");
        return (ssize_t)r->len;
    }
    snprintf(path, sizeof(path), "%s/%.*s", s->cfg->data_dir, (int)p->len, p->p);
    const struct jio *io = &s->io.table;
    int fd = io->open(io->ctx, path, O_RDONLY, 0);
    off_t size = 0;
    int rc = fd < 0 ? fd : io->fsize(io->ctx, fd, &size);
    if (rc == -ENOENT) {
        ci_out_str(c, "END\r\n");
        return (ssize_t)r->len;
    }
    if (rc < 0) {
        if (fd >= 0)
            io->close(io->ctx, fd);
        ci_out_server_error(c, rc);
        return (ssize_t)r->len;
    }
    uint64_t off = r->req->offset, have = (uint64_t)size > off ? (uint64_t)size - off : 0;
    uint64_t n = have < r->req->count ? have : r->req->count;
    ci_out_fmt(c, "VALUE %.*s 0 %" PRIu64 " %" PRIu64 "\r\n", (int)p->len, p->p, n, (uint64_t)size);
    if (n)
        ci_out_file(c, fd, off, n); /* it closes fd */
    else
        io->close(io->ctx, fd);
    ci_out_str(c, "\r\nEND\r\n");
    return (ssize_t)r->len;
}

size_t server_cluster_cells(const char *cells, char *out, size_t cap)
{
    size_t n = 0;
    const char *p = cells;
    while (*p) {
        p += strspn(p, " \t,");
        size_t len = strcspn(p, " \t,");
        if (len && n + len + 8 < cap) {
            memcpy(out + n, "CELL ", 5);
            memcpy(out + n + 5, p, len);
            memcpy(out + n + 5 + len, "\r\n", 2);
            n += len + 7;
        }
        p += len;
    }
    return n;
}

/* cluster: "MEMBER <id> <host>:<port> leader|follower" for each member of
 * this server's cell (when it leads one: the cell's callback), "CELL
 * <host>:<port>" for each of cluster_cells, END (docs/protocol.md). */
static ssize_t cmd_cluster(struct conn *c, const struct req_ctx *r)
{
    struct server *s = c->srv;
    char buf[SERVER_CLUSTER_MAX];
    size_t n = s->cluster_members ? s->cluster_members(s->cluster_ctx, buf, sizeof(buf)) : 0;
    n += server_cluster_cells(s->cfg->cluster_cells, buf + n, sizeof(buf) - n);
    ci_out_bytes(c, buf, n);
    ci_out_str(c, "END\r\n");
    return (ssize_t)r->len;
}

/* cluster add ID@HOST:RAFT_PORT:PORT | remove ID | transfer [ID]: a change
 * of the cell's members, by its leader (docs/cluster.md, "Members"): OK once
 * it started, else SERVER_ERROR and why. */
static ssize_t cmd_cluster_change(struct conn *c, const struct req_ctx *r)
{
    struct server *s = c->srv;
    char why[256];
    if (!s->cluster_change) {
        ci_reply(c, REPLY_SERVER_ERROR, "cluster: this server is no cell's leader");
        return (ssize_t)r->len;
    }
    if (s->cluster_change(s->cluster_ctx, r->req->keys.p, r->req->keys.len, why, sizeof(why)) < 0)
        ci_reply(c, REPLY_SERVER_ERROR, why);
    else
        ci_out_str(c, "OK\r\n");
    return (ssize_t)r->len;
}

/* The answer of flush_expired and flush_all_expired: the count, one line. */
static void answer_count(struct conn *c, int rc, uint64_t n)
{
    if (rc < 0)
        ci_out_server_error(c, rc);
    else
        ci_out_fmt(c, "%" PRIu64 "\r\n", n);
}

/* flush_expired <q>: its expired items go now; the answer is how many. */
static ssize_t cmd_flush_expired(struct conn *c, const struct req_ctx *r)
{
    struct queue *q = plain_queue(c, &r->req->key);
    uint64_t n = 0;
    int rc = q ? queue_expire(q, queue_now_ms(), UINT64_MAX, &n) : 0;
    ci_journal_touched(c, q);
    answer_count(c, rc, n);
    return (ssize_t)r->len;
}

/* flush_all_expired: the same for every queue (each journal opened in
 * turn); the answer is how many in all. */
static ssize_t cmd_flush_all_expired(struct conn *c, const struct req_ctx *r)
{
    struct registry *reg = c->srv->reg;
    uint64_t now = queue_now_ms(), n = 0;
    int rc = 0;
    struct list *pos, *next;
    for (pos = reg->all.next; pos != &reg->all && rc >= 0; pos = next) {
        next = pos->next;
        struct queue *q = list_entry(pos, struct queue, all);
        if (q->level < 0) /* a lane is expired with its queue */
            rc = queue_expire(q, now, UINT64_MAX, &n);
    }
    ci_journal_touched(c, NULL);
    answer_count(c, rc, n);
    return (ssize_t)r->len;
}

/* dump_stats [q ...]: Kestrel's per-queue blocks, of every queue or of the
 * ones named that exist. */
static ssize_t cmd_dump_stats(struct conn *c, const struct req_ctx *r)
{
    struct buf b = {0};
    struct registry *reg = c->srv->reg;
    if (wait_for_delay_count(c))
        return -1;
    if (r->req->nkeys) {
        struct proto_slice rest = r->req->keys;
        struct proto_key k;
        while (proto_next_key(&rest, &k)) {
            struct queue *q = registry_find(reg, k.name.p, k.name.len);
            if (q)
                metrics_write_dump(c->srv, q, &b);
        }
    } else {
        struct list *pos;
        for (pos = reg->all.next; pos != &reg->all; pos = pos->next)
            if (list_entry(pos, struct queue, all)->level < 0) /* lanes are counted in their queue */
                metrics_write_dump(c->srv, list_entry(pos, struct queue, all), &b);
    }
    buf_printf(&b, "END\r\n");
    ci_out_bytes(c, b.data, b.len);
    buf_free(&b);
    return (ssize_t)r->len;
}

/* status: the one in force; status <new>: change it (END). */
static ssize_t cmd_status(struct conn *c, const struct req_ctx *r)
{
    struct server *s = c->srv;
    enum srv_status st;
    if (r->req->nkeys == 0) {
        ci_out_fmt(c, "%s\r\n", status_name(s->status));
    } else if (status_parse(r->req->keys.p, r->req->keys.len, &st) < 0) {
        ci_out_str(c, "CLIENT_ERROR unknown status: use UP, READONLY or QUIESCENT\r\n");
    } else {
        int rc = server_set_status(s, st);
        if (rc < 0)
            ci_out_server_error(c, rc);
        else
            ci_out_str(c, "END\r\n");
    }
    return (ssize_t)r->len;
}

/* shutdown: with --enable-shutdown, the connection closes and the server
 * stops cleanly (no answer, as Kestrel); without, ERROR. */
static ssize_t cmd_shutdown(struct conn *c, const struct req_ctx *r)
{
    if (!c->srv->cfg->enable_shutdown) {
        ci_out_str(c, "ERROR\r\n");
        return (ssize_t)r->len;
    }
    log_info(&c->srv->log, "shutdown command: stopping");
    c->close_after = 1;
    server_stop(c->srv); /* closes this connection too; its memory stays until the loop's close callback */
    return (ssize_t)r->len;
}

static ssize_t cmd_unknown(struct conn *c, const struct req_ctx *r)
{
    ci_reply(c, REPLY_UNKNOWN, NULL);
    return (ssize_t)r->len;
}

static ssize_t cmd_bad(struct conn *c, const struct req_ctx *r)
{
    ci_reply(c, REPLY_BAD, r->req->error ? r->req->error : "bad command line format");
    if (r->req->fatal)
        c->close_after = 1;
    return (ssize_t)r->len;
}

/* Binary Noop: answered in order, after what came before it. */
static ssize_t cmd_noop(struct conn *c, const struct req_ctx *r)
{
    ci_reply(c, REPLY_NOOP, NULL);
    return (ssize_t)r->len;
}

static ssize_t cmd_sasl(struct conn *c, const struct req_ctx *r)
{
    ci_sasl(c, r->req);
    return (ssize_t)r->len;
}

/* Every request type: what runs it, and from which server status on it is
 * refused (STATUS_NONE: never). A get is refused in QUIESCENT only when it
 * wants an item (cmd_get), so its entry says never. */
static const struct command {
    cmd_fn fn;
    enum srv_status refused_from;
} HANDLERS[] = {
    [PROTO_GET] = {cmd_get, STATUS_NONE},
    [PROTO_SET] = {cmd_set, STATUS_READONLY},
    [PROTO_DELETE] = {cmd_delete, STATUS_READONLY},
    [PROTO_FLUSH] = {cmd_flush, STATUS_READONLY},
    [PROTO_FLUSH_ALL] = {cmd_flush_all, STATUS_READONLY},
    [PROTO_STATS] = {cmd_stats, STATUS_NONE},
    [PROTO_VERSION] = {cmd_version, STATUS_NONE},
    [PROTO_QUIT] = {cmd_quit, STATUS_NONE},
    [PROTO_VERBOSITY] = {cmd_verbosity, STATUS_NONE},
    [PROTO_RELOAD] = {cmd_reload, STATUS_NONE},
    [PROTO_DUMP_CONFIG] = {cmd_dump_config, STATUS_NONE},
    [PROTO_STATUS] = {cmd_status, STATUS_NONE},
    [PROTO_DUMP_STATS] = {cmd_dump_stats, STATUS_NONE},
    [PROTO_FLUSH_EXPIRED] = {cmd_flush_expired, STATUS_READONLY},
    [PROTO_MONITOR] = {cmd_monitor, STATUS_QUIESCENT},
    [PROTO_CONFIRM] = {cmd_confirm, STATUS_NONE},
    [PROTO_TOUCH] = {cmd_touch, STATUS_NONE},
    [PROTO_KICK] = {cmd_kick, STATUS_READONLY},
    [PROTO_CELLFILE] = {cmd_cellfile, STATUS_NONE},
    [PROTO_CLUSTER] = {cmd_cluster, STATUS_NONE},
    [PROTO_CLUSTER_CHANGE] = {cmd_cluster_change, STATUS_NONE},
    [PROTO_FLUSH_ALL_EXPIRED] = {cmd_flush_all_expired, STATUS_READONLY},
    [PROTO_SHUTDOWN] = {cmd_shutdown, STATUS_NONE},
    [PROTO_UNKNOWN] = {cmd_unknown, STATUS_NONE},
    [PROTO_BAD] = {cmd_bad, STATUS_NONE},
    [PROTO_NOOP] = {cmd_noop, STATUS_NONE},
    [PROTO_SASL_LIST] = {cmd_sasl, STATUS_NONE},
    [PROTO_SASL_AUTH] = {cmd_sasl, STATUS_NONE},
    [PROTO_SASL_STEP] = {cmd_sasl, STATUS_NONE},
};

ssize_t ci_run(struct conn *c, const char *line, size_t len, size_t avail, const struct proto_req *req)
{
    const struct req_ctx r = {.line = line, .len = len, .avail = avail, .req = req};
    const struct command *cmd = (size_t)req->type < sizeof(HANDLERS) / sizeof(HANDLERS[0]) && HANDLERS[req->type].fn
                                    ? &HANDLERS[req->type]
                                    : &HANDLERS[PROTO_UNKNOWN];
    /* a monitor resumed after a wait was let in already */
    int resumed = req->type == PROTO_MONITOR && c->mon.active;
    ssize_t used;
    if (c->srv->auth && ci_auth_gate(c, line, len, avail, req, &used)) {
        /* answered there: the handshake, or a request this connection may not make (--auth-file) */
    } else if (cmd->refused_from != STATUS_NONE && c->srv->status >= cmd->refused_from && !resumed) {
        used = refuse(c, &r);
    } else {
        used = cmd->fn(c, &r);
        /* A request not served whose data follows its line (add, cas, a bad
         * set with a readable length): the data is read and dropped. */
        if (used > 0 && req->swallow && !c->close_after) {
            c->swallow_left = req->swallow;
            c->state = CONN_SWALLOW;
        }
    }
    if (used > 0) { /* done (a streamed set: its line is): count it */
        size_t t = cmd == &HANDLERS[PROTO_UNKNOWN] ? PROTO_UNKNOWN : (size_t)req->type;
        c->srv->st.commands[t][(size_t)c->cmd_status]++;
        c->cmd_status = CMD_OK;
    }
    return used;
}
