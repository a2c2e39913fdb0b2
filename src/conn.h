/* conn.h: one client connection: reading and parsing requests, running them
 * against the queues, and writing answers with backpressure. */
#ifndef DARNER_CONN_H
#define DARNER_CONN_H

#include <stdint.h>
#include <uv.h>

#include "proto/parse.h"
#include "queue/queue.h"
#include "sync.h"
#include "util/buf.h"
#include "util/list.h"

struct server;

enum conn_state {
    CONN_READ,    /* parsing and running requests */
    CONN_SWALLOW, /* dropping the data of a refused set */
    CONN_STREAM,  /* writing the data of a large set to its file as it arrives */
    CONN_WAIT,    /* a get waits for an item (/t=) */
    CONN_SYNC,    /* answers wait for an fsync */
    CONN_CLOSING,
};

/* How the answers of a request are written (conn_reply.c): in the text
 * protocol, or in the binary one with what its headers echo. */
struct reply_to {
    unsigned char binary;   /* the connection speaks the binary protocol */
    unsigned char opcode;   /* binary: the request's, echoed */
    unsigned char quiet;    /* binary: GetQ, GetKQ, SetQ, DeleteQ, FlushQ, QuitQ */
    unsigned char with_key; /* binary: GetK, GetKQ: a value carries its key */
    uint16_t bad_status;    /* binary: the parser's status for a malformed request */
    uint32_t opaque;        /* binary: the request's, echoed */
};

/* A piece of output: bytes, or a file range streamed in chunks. */
struct outseg {
    struct list link;
    struct buf mem;
    int fd; /* >= 0: a file range, read and closed through io */
    const struct jio *io;
    uint64_t off, left;
    /* A set's answer waiting for its batch to be written (this loop turn):
     * STORED or SERVER_ERROR once the ticket says; a reference we hold. */
    struct jnl_ticket *ticket;
    struct reply_to to; /* a ticket's or a guard's: how its answer is written */
    /* A get's answer follows, up to guard->end: sent once the ack records
     * of its removals are written, else replaced by SERVER_ERROR and the
     * removals undone (conn_out.c). */
    struct out_guard *guard;
    struct outseg *end_of; /* this ends a guarded answer: its guard's segment */
    int is_end;            /* ends a guarded answer: takes no more bytes */
};

/* What a removal by a get needs undone when its ack record cannot be
 * written, or its fsync fails (its answer is then never sent). */
struct conn_undo {
    uint64_t dir_id; /* the queue, if it still exists */
    struct jnl_item item;
    int open; /* held open: abort it; else removed: restore it */
};

struct guard_entry {
    struct jnl_ticket *ticket; /* a reference */
    struct conn_undo undo;
};

/* Allocated with its segment (one block); most gets remove one item, kept
 * in `one`, so a guard costs no allocation of its own. */
struct out_guard {
    struct outseg *end;    /* NULL while the get runs */
    struct guard_entry *e; /* &one, or a larger array */
    size_t n, cap;
    struct guard_entry one;
};

struct conn {
    uv_tcp_t tcp;
    const struct transport *tp; /* how its bytes travel: transport_tcp or transport_tls */
    void *tp_state;             /* the transport's, per connection (NULL for plain TCP) */
    uv_timer_t timer;           /* /t= waits */
    struct server *srv;
    struct list link;    /* server->conns */
    struct list pending; /* server->pending while deferred work is due */
    enum conn_state state;
    int reading;        /* uv_read_start is in effect */
    int close_after;    /* close once the output is written */
    int resume;         /* run conn_process at the next turn */
    int handles;        /* libuv handles not yet closed */
    int started;        /* a first request was parsed (its protocol is known) */
    int cmd_status;     /* enum cmd_status of the request being run */
    struct reply_to rt; /* the request being run: its protocol and binary header */
    /* binary SASL auth or step being run: its mechanism and data (in rbuf) */
    struct proto_slice sasl_mech, sasl_data;
    uint64_t active_ms; /* loop time of the last byte read or written */
    /* whom it authenticated as (with --auth-file; NULL: nobody yet): a user
     * of srv->auth, which a reload replaces only after re-pointing it */
    const struct auth_user *user;

    char *rbuf; /* unprocessed input is rbuf[0..rlen) */
    size_t rlen, rcap;
    uint64_t swallow_left;

    /* a large set being streamed in */
    struct jnl_blob *blob;
    uint64_t stream_left; /* data bytes still to come */
    int stream_err;       /* first write error; the rest is dropped */
    struct {
        uint32_t flags;
        int64_t exptime;
        int noreply, sync;
        uint8_t priority;  /* JNL_PRIORITY_DEFAULT: none given */
        uint64_t begin_ms; /* when it started: a /delay= counts from then */
        uint64_t bytes;
        struct proto_key key; /* its name in name[] */
        char name[PROTO_MAX_NAME];
    } stream;

    /* a get in progress: keys already served, and the key waited on */
    size_t get_done;
    size_t get_served; /* VALUE blocks written for it */
    struct qwaiter waiter;
    struct queue *wait_q;
    struct proto_key wait_key; /* its slices point into wait_copy */
    char *wait_copy;           /* the key as sent: as long as the request line allows */
    int waiting;               /* waiter is on a list */

    int get_failed;  /* a key of the get in progress answered SERVER_ERROR */
    int get_cas;     /* it is a gets: VALUE lines carry a cas value */
    int wait_served; /* the last wait ended with an item served */
    struct {         /* a monitor in progress */
        int active;
        uint64_t deadline_ms, handed;
    } mon;
    struct outseg *guard; /* the guard of the get in progress, in out */

    /* fsync waits */
    struct sync_waiter syncw;
    /* what the request waiting for the fsync removed, to give back if the
     * fsync fails (its answer is then never sent) */
    struct conn_undo *undo;
    size_t nundo, capundo;
    int sync_wanted;
    size_t sync_mark; /* output before the answer that waits for the fsync */

    struct list opens; /* struct qopen by conn_link */
    /* how many of them are of the queue asked last (ci_open_count): an
     * /open counts up, an open item going counts down */
    struct open_tally opened;

    struct list out;    /* struct outseg */
    uint64_t out_bytes; /* bytes queued and not yet written */
    int writing;
    uv_write_t wreq;
    char *wchunk; /* the buffer being written */
};

/* Accepts a new connection from the listener; with tls (a context the
 * connection takes a reference to), it speaks TLS. */
struct tls_ctx;
int conn_accept(struct server *s, uv_stream_t *listener, struct tls_ctx *tls);
/* Runs deferred work (resume processing, request an fsync, write output). */
void conn_run_deferred(struct conn *c);
/* Ends a wait for an item, answering nothing (used when stopping). */
void conn_cancel_wait(struct conn *c);
/* Whether the connection waits for nothing but its client (its next request,
 * or the rest of one), and since when (loop time, ms). */
int conn_idle_since(const struct conn *c, uint64_t *since_ms);
/* Closes the connection: open items go back to their queues. */
void conn_close(struct conn *c);

#endif
