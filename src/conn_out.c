/* conn_out.c: a connection's output: answers collect in a list of byte and
 * file segments and are written once per loop turn, directly where the
 * socket takes them, else with one write in flight. */
#include "conn_int.h"
#include "util/errstr.h"

#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define STREAM_CHUNK (256 * 1024)

/* The bytes a segment still holds to send. */
static uint64_t outseg_size(const struct outseg *o) { return o->fd >= 0 ? o->left : o->mem.len; }

static struct outseg *outseg_new(struct conn *c, int fd)

{
    struct outseg *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->fd = fd;
    list_push_back(&c->out, &o->link);
    return o;
}

/* Drops what the guard holds; its memory is its segment's. */
static void guard_free(struct out_guard *g)
{
    for (size_t i = 0; i < g->n; i++)
        jnl_ticket_put(g->e[i].ticket);
    if (g->e != &g->one)
        free(g->e);
    g->n = 0;
}

void ci_outseg_free(struct outseg *o)
{
    list_remove(&o->link);
    jnl_ticket_put(o->ticket);
    if (o->guard) {
        if (o->guard->end)
            o->guard->end->end_of = NULL;
        guard_free(o->guard);
    }
    /* The end of a guarded answer goes only when the answer is cut short
     * (a failed fsync replaces it): its guard goes with it. */
    if (o->end_of) {
        o->end_of->guard->end = NULL;
        ci_outseg_free(o->end_of);
    }
    if (o->fd >= 0)
        o->io->close(o->io->ctx, o->fd);
    buf_free(&o->mem);
    free(o);
}

void ci_out_bytes(struct conn *c, const void *p, size_t n)
{
    struct list *last = c->out.prev;
    struct outseg *o = last != &c->out ? list_entry(last, struct outseg, link) : NULL;
    if (!o || o->fd >= 0 || o->ticket || o->guard || o->is_end)
        o = outseg_new(c, -1);
    if (!o || buf_append(&o->mem, p, n) < 0) {
        /* Out of memory: the answer cannot be kept; the client must not get
         * a partial one. */
        c->close_after = 1;
        return;
    }
    c->out_bytes += n;
}

void ci_outcome(struct conn *c, enum cmd_status st)
{
    if ((int)st > c->cmd_status)
        c->cmd_status = st;
}

/* An answer that says the request failed counts as an error. */
static void note_error(struct conn *c, const char *s)
{
    if ((s[0] == 'C' && strncmp(s, "CLIENT_ERROR", 12) == 0) || (s[0] == 'S' && strncmp(s, "SERVER_ERROR", 12) == 0) ||
        (s[0] == 'E' && strncmp(s, "ERROR", 5) == 0))
        ci_outcome(c, CMD_ERROR);
}

void ci_out_str(struct conn *c, const char *s)
{
    note_error(c, s);
    ci_out_bytes(c, s, strlen(s));
}

void ci_out_ticket(struct conn *c, struct jnl_ticket *t)
{
    struct outseg *o = outseg_new(c, -1);
    if (!o) {
        jnl_ticket_put(t);
        c->close_after = 1;
        return;
    }
    o->ticket = t;
    o->to = c->rt;
}

/* Turns a set's waiting answer into its text once its batch is written.
 * Returns 0, or 1 while the batch still waits. */
static int resolve_ticket(struct conn *c, struct outseg *o)
{
    int state = o->ticket->state;
    if (state == 0)
        return 1;
    size_t before = o->mem.len;
    const char *why = state > 0 ? NULL : errstr(state);
    ci_reply_buf(&o->mem, &o->to, state > 0 ? REPLY_STORED : REPLY_SERVER_ERROR, why, why ? strlen(why) : 0);
    c->out_bytes += o->mem.len - before;
    jnl_ticket_put(o->ticket);
    o->ticket = NULL;
    return 0;
}

void ci_out_fmt(struct conn *c, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0) {
        note_error(c, line);
        ci_out_bytes(c, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    }
}

void ci_out_server_error(struct conn *c, int rc)
{
    /* errno texts, except where ours says more */
    const char *why = rc == -EPROTONOSUPPORT ? "queue journal is in a format this build cannot read (see the log)"
                                             : errstr(rc);
    ci_reply(c, rc == -ENOMEM ? REPLY_NO_MEMORY : REPLY_SERVER_ERROR, why);
}

/* Takes ownership of fd. */
void ci_out_file(struct conn *c, int fd, uint64_t off, uint64_t len)
{
    const struct jio *io = c->srv->reg->jconf.io;
    struct outseg *o = outseg_new(c, fd);
    if (!o) {
        io->close(io->ctx, fd);
        c->close_after = 1;
        return;
    }
    o->io = io;
    o->off = off;
    o->left = len;
    c->out_bytes += len;
}

/* ---- answers that wait for ack records ---- */

void ci_guard_begin(struct conn *c)
{
    if (c->guard)
        return;
    struct block {
        struct outseg o;
        struct out_guard g;
    } *b = calloc(1, sizeof(*b));
    if (!b) {
        c->close_after = 1; /* out of memory: no answer can be promised */
        return;
    }
    b->o.fd = -1;
    b->o.to = c->rt;
    b->o.guard = &b->g;
    b->g.e = &b->g.one;
    b->g.cap = 1;
    list_push_back(&c->out, &b->o.link);
    c->guard = &b->o;
}

void ci_guard_add(struct conn *c, struct queue *q, const struct jnl_item *it, int open)
{
    struct out_guard *g = c->guard ? c->guard->guard : NULL;
    struct jnl_ticket *t = queue_ack_ticket(q);
    if (!g || !t) {
        jnl_ticket_put(t);
        return;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap * 2;
        int inline_one = g->e == &g->one;
        struct guard_entry *e = inline_one ? malloc(cap * sizeof(*e)) : realloc(g->e, cap * sizeof(*e));
        if (!e) {
            jnl_ticket_put(t);
            c->close_after = 1;
            return;
        }
        if (inline_one)
            e[0] = g->one;
        g->e = e;
        g->cap = cap;
    }
    g->e[g->n++] = (struct guard_entry){.ticket = t, .undo = {.dir_id = q->dir_id, .item = *it, .open = open}};
}

void ci_guard_end(struct conn *c)
{
    struct outseg *o = c->guard;
    if (!o)
        return;
    c->guard = NULL;
    if (o->guard->n == 0) { /* nothing to wait for */
        ci_outseg_free(o);
        return;
    }
    /* The answer's last segment marks its end (and takes no more bytes). */
    struct outseg *end = c->out.prev != &o->link ? list_entry(c->out.prev, struct outseg, link) : outseg_new(c, -1);
    if (!end) { /* out of memory: closing anyway */
        ci_outseg_free(o);
        return;
    }
    end->is_end = 1;
    end->end_of = o;
    o->guard->end = end;
}

/* 1 once every ack record of the answer is written, 0 while one waits, or
 * the first failure's -errno. */
static int guard_state(const struct out_guard *g)
{
    int st = 1;
    for (size_t i = 0; i < g->n; i++) {
        int s = g->e[i].ticket->state;
        if (s < 0)
            return s;
        if (s == 0)
            st = 0;
    }
    return st;
}

/* Settles the guard at the head of the output. Returns 1 while it must
 * wait (its get still runs, or its records are not yet written). */
static int resolve_guard(struct conn *c, struct outseg *o)
{
    struct out_guard *g = o->guard;
    if (!g->end)
        return 1; /* the get waits for an item: resumed when it ends */
    int st = guard_state(g);
    if (st == 0) {
        registry_flush(c->srv->reg); /* a get served in this check phase */
        if ((st = guard_state(g)) == 0)
            return 1;
    }
    if (st > 0) {
        ci_outseg_free(o);
        return 0;
    }
    /* The removals are not on disk: their answer becomes the error, and
     * the items go back (the records that did fail are written later, in
     * order, ahead of the records of the undo). */
    for (size_t i = g->n; i-- > 0;)
        ci_undo(c, &g->e[i].undo, 1);
    struct list *pos = o->link.next;
    while (pos != &c->out) {
        struct outseg *x = list_entry(pos, struct outseg, link);
        pos = pos->next;
        int last = x == g->end;
        c->out_bytes -= outseg_size(x);
        if (last)
            x->end_of = NULL; /* its guard stays, turned into the error */
        ci_outseg_free(x);
        if (last)
            break;
    }
    g->end = NULL;
    guard_free(g);
    o->guard = NULL;
    size_t before = o->mem.len;
    const char *why = errstr(st);
    ci_reply_buf(&o->mem, &o->to, REPLY_SERVER_ERROR, why, strlen(why));
    c->out_bytes += o->mem.len - before;
    return 0;
}

void ci_write_done(struct conn *c, int status)
{
    free(c->wchunk);
    c->wchunk = NULL;
    c->writing = 0;
    if (c->state == CONN_CLOSING)
        return;
    c->active_ms = uv_now(c->srv->loop);
    if (status < 0) {
        conn_close(c);
        return;
    }
    /* Written from the check phase only, after the turn's batches are on
     * disk (server.c check_cb): never an answer before its item. */
    ci_defer(c);
}

/* Bytes one connection may write per loop turn before others get theirs. */
#define WRITE_BUDGET (256u << 10)

/* Bytes of answers gathered into one write: enough for hundreds of small
 * answers, and small enough that the buffer comes from the heap's free
 * lists rather than growing it (glibc raises its mmap threshold once such
 * a buffer is freed, so larger ones would stay in the heap after a burst). */
#define GATHER_MAX (16u << 10)

/* Appends to o the answers after it that are ready to go (settling their
 * guards and tickets on the way), up to budget bytes: pipelined answers
 * leave with one write, as they would if they had been one segment. */
static void gather(struct conn *c, struct outseg *o, size_t budget)
{
    while (o->link.next != &c->out) {
        struct outseg *x = list_entry(o->link.next, struct outseg, link);
        if (x->guard) {
            if (resolve_guard(c, x))
                return;
            continue; /* freed, or turned into the error: looked at again */
        }
        if ((x->ticket && resolve_ticket(c, x)) || x->fd >= 0 || x->end_of)
            return;
        if (o->mem.len + x->mem.len > budget || buf_append(&o->mem, x->mem.data, x->mem.len) < 0)
            return;
        x->mem.len = 0; /* its bytes (and their count in out_bytes) are o's now */
        ci_outseg_free(x);
    }
}

void ci_write_next(struct conn *c)
{
    if (c->writing || c->state == CONN_CLOSING || c->state == CONN_SYNC)
        return;
    size_t budget = WRITE_BUDGET;
    for (;;) {
        struct list *first = list_first(&c->out);
        if (!first) {
            if (c->close_after) {
                conn_close(c);
                return;
            }
            if (!c->reading) {
                /* Output drained: requests held back by it can run now. */
                c->resume = 1;
                ci_defer(c);
            }
            return;
        }
        struct outseg *o = list_entry(first, struct outseg, link);
        size_t n;
        if (o->guard) {
            if (resolve_guard(c, o)) {
                if (o->guard->end)
                    ci_defer(c);
                return;
            }
            continue;
        }
        if (o->ticket && resolve_ticket(c, o)) {
            /* Set during this check phase (after its first flush): write the
             * batches now rather than a loop turn later. */
            registry_flush(c->srv->reg);
            if (resolve_ticket(c, o)) {
                ci_defer(c);
                return;
            }
        }
        /* While an fsync is wanted (a request waiting meanwhile, such as a
         * monitor), only the output from before the answer it covers goes. */
        if (c->sync_wanted && outseg_size(o) > c->sync_mark)
            return;
        if (o->fd < 0) {
            if (o->mem.len == 0) {
                ci_outseg_free(o);
                continue;
            }
            size_t most = budget < GATHER_MAX ? budget : GATHER_MAX;
            if (c->sync_wanted && c->sync_mark < most)
                most = (size_t)c->sync_mark;
            gather(c, o, most);
            c->wchunk = o->mem.data;
            n = o->mem.len;
            o->mem.data = NULL;
            o->mem.len = o->mem.cap = 0;
            ci_outseg_free(o);
        } else {
            if (o->left == 0) {
                ci_outseg_free(o);
                continue;
            }
            n = o->left < STREAM_CHUNK ? (size_t)o->left : STREAM_CHUNK;
            c->wchunk = malloc(n);
            int r = c->wchunk ? jio_pread_all(o->io, o->fd, c->wchunk, n, (off_t)o->off) : -ENOMEM;
            if (r < 0) {
                log_error(&c->srv->log, "cannot read an item being sent: %s", r == -ENODATA ? "short read" : errstr(r));
                free(c->wchunk);
                c->wchunk = NULL;
                conn_close(c);
                return;
            }
            o->off += n;
            o->left -= n;
            if (o->left == 0)
                ci_outseg_free(o);
        }
        c->out_bytes -= n;
        c->srv->st.bytes_written += n;
        if (c->sync_wanted) /* the mark counts from what is still queued */
            c->sync_mark = n < c->sync_mark ? c->sync_mark - n : 0;
        c->writing = 1; /* until the transport is done with the chunk */
        int w = c->tp->write(c, c->wchunk, n);
        if (w == 1) {
            c->writing = 0;
            free(c->wchunk);
            c->wchunk = NULL;
            c->active_ms = uv_now(c->srv->loop);
            if (budget <= n) {
                ci_defer(c); /* more next turn: other clients first */
                return;
            }
            budget -= n;
            continue;
        }
        if (w < 0) {
            c->writing = 0;
            free(c->wchunk);
            c->wchunk = NULL;
            conn_close(c);
        }
        return;
    }
}

/* Marks where the answer that waits for an fsync starts, so a failed fsync
 * can replace it. */
void ci_mark_sync(struct conn *c)
{
    c->sync_mark = 0;
    struct list *pos;
    /* A get in progress: its whole answer waits (and is replaced if the
     * fsync fails), from its guard on. */
    for (pos = c->out.next; pos != &c->out && pos != (c->guard ? &c->guard->link : NULL); pos = pos->next) {
        struct outseg *o = list_entry(pos, struct outseg, link);
        c->sync_mark += outseg_size(o);
    }
}

/* Drops the output after its first `keep` bytes. */
void ci_out_truncate(struct conn *c, uint64_t keep)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &c->out) {
        struct outseg *o = list_entry(pos, struct outseg, link);
        uint64_t size = outseg_size(o);
        if (keep > 0 && keep >= size) { /* a waiting answer counts 0 bytes */
            keep -= size;
            continue;
        }
        if (o->fd < 0 && keep > 0) {
            c->out_bytes -= o->mem.len - keep;
            o->mem.len = (size_t)keep;
            keep = 0;
            continue;
        }
        c->out_bytes -= size;
        ci_outseg_free(o);
    }
}
