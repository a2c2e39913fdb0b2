/* conn_int.h: a connection's insides, shared by conn.c, conn_get.c and
 * conn_out.c only. */
#ifndef DARNER_CONN_INT_H
#define DARNER_CONN_INT_H

#include "conn.h"
#include "server.h"
#include "transport.h"
#include "util/compat.h"

/* Stop reading while more output than this waits to be written. */
#define OUT_HIGH (4u << 20)

/* Schedules the connection's deferred work for this loop turn. */
void ci_defer(struct conn *c);

/* Answers (conn_reply.c): each kind written in the connection's protocol
 * (c->rt): its text form, or a binary response with its status. */
enum reply {
    REPLY_STORED,
    REPLY_NOT_STORED,
    REPLY_TOO_LARGE, /* over a queue's max_item_size: NOT_STORED in text */
    REPLY_DELETED,
    REPLY_OK,
    REPLY_FLUSHED, /* flush_all: the detail is the text line */
    REPLY_END,     /* flush <q> */
    REPLY_MISS,    /* a get that served nothing: END; the detail is its key */
    REPLY_GET_END, /* a get that served values: END, nothing in binary */
    REPLY_QUIT,
    REPLY_NOOP,
    REPLY_VERSION, /* the detail is the version */
    REPLY_UNKNOWN,
    REPLY_BAD, /* a malformed request: the parser's reason and status */
    REPLY_CLIENT_ERROR,
    REPLY_SERVER_ERROR,
    REPLY_NO_MEMORY,
    REPLY_REFUSED, /* the server's status refuses it */
    REPLY_AUTH_ERROR,
    REPLY_AUTH_OK,
    REPLY_MECHS, /* SASL mechanisms: the detail */
    REPLY_KINDS
};
void ci_reply(struct conn *c, enum reply kind, const char *detail);
void ci_reply_n(struct conn *c, enum reply kind, const char *p, size_t n);
/* The answer into b, for one settled later (a ticket, a guard) whose
 * request was to; returns 1 when it is an error. */
int ci_reply_buf(struct buf *b, const struct reply_to *to, enum reply kind, const char *p, size_t n);
/* A get's value: its head (then the item's bytes), and its end. */
void ci_reply_value(struct conn *c, const struct proto_slice *key, uint32_t flags, uint64_t len, int with_cas,
                    uint64_t cas);
void ci_reply_value_end(struct conn *c);
/* The stats answer, given in its text form. */
void ci_reply_stats(struct conn *c, const struct buf *text);
/* Bytes after a set's data: its CRLF in text, none in binary. */
static inline size_t ci_trailer(const struct conn *c) { return c->rt.binary ? 0 : 2; }

/* Binary protocol (conn_bin.c): parses one request from p[0..len) into
 * *req and c->rt. Returns the bytes consumed, PROTO_NEED_MORE, or -1 when
 * the request has no known end (answered; the connection closes). */
ssize_t ci_bin_parse(struct conn *c, const char *p, size_t len, struct proto_req *req);
/* SASL list mechanisms, auth and step (the auth gate runs them). */
void ci_sasl(struct conn *c, const struct proto_req *req);

/* Output (conn_out.c). */
void ci_out_bytes(struct conn *c, const void *p, size_t n);
void ci_out_str(struct conn *c, const char *s);
/* Notes an outcome of the request being run, for darner_commands_total
 * (the strongest of a request's outcomes counts; error answers note
 * themselves). */
void ci_outcome(struct conn *c, enum cmd_status st);
void ci_out_fmt(struct conn *c, const char *fmt, ...) PRINTF_LIKE(2, 3);
void ci_out_server_error(struct conn *c, int rc);
/* Queues len bytes of fd from off; takes ownership of fd. */
void ci_out_file(struct conn *c, int fd, uint64_t off, uint64_t len);
void ci_outseg_free(struct outseg *o);
/* Appends the answer of a set whose batch is written this turn: takes the
 * ticket reference. */
void ci_out_ticket(struct conn *c, struct jnl_ticket *t);
void ci_write_next(struct conn *c);
/* A get's answer starts: the removals it reports (ci_guard_add) hold it
 * back until their ack records are written. */
void ci_guard_begin(struct conn *c);
/* The get removed or opened it on q (or confirmed it, open 0). */
void ci_guard_add(struct conn *c, struct queue *q, const struct jnl_item *it, int open);
/* The get's answer is complete. */
void ci_guard_end(struct conn *c);
/* Remembers the output size, where an answer waiting for an fsync starts. */
void ci_mark_sync(struct conn *c);
void ci_out_truncate(struct conn *c, uint64_t keep);

/* fsync bookkeeping (conn.c). */
void ci_want_sync(struct conn *c);
/* The request changed q (NULL: several queues, the server's policy
 * decides): under fsync "always" its answer waits for an fsync. */
void ci_journal_touched(struct conn *c, const struct queue *q);

/* Requests (conn_cmd.c): runs one parsed request whose line is
 * line[0..len), with avail bytes from line on in the read buffer. Returns
 * the bytes it consumed, 0 when it needs more input, or -1 when processing
 * must stop with nothing consumed (a wait). */
ssize_t ci_run(struct conn *c, const char *line, size_t len, size_t avail, const struct proto_req *req);

/* Reading (conn.c): room for need bytes in the read buffer. */
int ci_rbuf_reserve(struct conn *c, size_t need);

/* Sets (conn_set.c). */
void ci_do_set(struct conn *c, const struct proto_req *req, const char *data);
/* Starts streaming a large set's data to a file of its own. */
void ci_stream_begin(struct conn *c, const struct proto_req *req);
/* Takes streamed data from rbuf[*pos..); returns 0 when more must come. */
int ci_stream_step(struct conn *c, size_t *pos);

/* Gets (conn_get.c). */
enum get_result { GK_SERVED, GK_EMPTY, GK_WAIT, GK_ERROR };
/* Runs one key of a get (its VALUE block written when served). */
enum get_result ci_get_key(struct conn *c, const struct proto_key *k);
/* Waits for an item on k (a copy is kept) for k->timeout_ms: the waiter
 * serves it with ci_get_key, then the request runs again. Returns 0 or
 * -ENOMEM. */
int ci_start_wait(struct conn *c, const struct proto_key *k);
/* Runs a get request; returns 1 when it is finished, 0 when it waits. */
int ci_do_get(struct conn *c, const struct proto_req *req);
void ci_apply_undo(struct conn *c);
/* Gives back what u[0..n) removed, last first. */
void ci_undo(struct conn *c, const struct conn_undo *u, size_t n);
void ci_end_wait(struct conn *c);
/* Notes a removal the pending fsync covers, to undo if it fails. */
void ci_remember_undo(struct conn *c, const struct queue *q, const struct jnl_item *it, int open);
/* Kestrel's monitor and confirm (conn_monitor.c); 1 when finished, 0 while
 * waiting. */
int ci_do_monitor(struct conn *c, const struct proto_req *req);
int ci_do_confirm(struct conn *c, const struct proto_req *req);
int ci_do_touch(struct conn *c, const struct proto_req *req);
/* The oldest item the connection holds open on q, or NULL; how many. */
struct qopen *ci_open_on(struct conn *c, const struct queue *q);
size_t ci_open_count(struct conn *c, const struct queue *q);

#endif
