/* client_int.h: the darner_client behind the opaque type, and the helpers
 * the operation files (set.c, get.c, batch.c, open.c, admin.c) share. */
#ifndef DARNER_CLIENT_INT_H
#define DARNER_CLIENT_INT_H

#include "darner/client.h"
#include "fleet.h"
#include "reply.h"

#include <stddef.h>
#include <stdint.h>

/* An item opened with get q/open, and the connection that holds it. */
struct dn_open_item {
    char *queue;
    size_t server;
    uint64_t gen; /* the server's connection generation when opened */
};

struct darner_client {
    struct dn_fleet fleet;
    int timeout_ms;
    int connect_timeout_ms;
    uint64_t gens; /* connection generations handed out so far */
    struct dn_open_item *open;
    size_t nopen, capopen;
    char last_error[512];
    int discovered;         /* the servers given were asked `cluster` (cluster.c) */
    int rediscover;         /* a cell failed: ask again (at most every second) */
    int probes;             /* some entry is a CELL address not reached yet */
    int64_t discover_after; /* monotonic ms: not before */
    int noquorum;           /* the last reply failure was "no quorum": nothing was done */
};

/* The start of an operation that picks its servers: forgets the previous
 * call's error, and asks the servers `cluster` at first use (and again
 * after a cell failed, at most once a second). cluster.c. */
void dn_begin(darner_client *c);

/* Asks the servers `cluster` (the first time: makes the table again from
 * the answers; later: updates the cells, appends new ones). Returns 0 or a
 * negative errno (-ENOMEM). */
int dn_discover(darner_client *c);

/* Connects server i's connection: to its address, and for a cell to its
 * other members in turn when that fails (the member that answers becomes
 * its address). Returns 0 or the first failure's errno. */
int dn_cell_connect(darner_client *c, size_t i);

/* A cell's next member becomes its address ("no quorum" there). */
void dn_cell_next_member(darner_client *c, size_t i);

/* Notes that server i failed: its cell is asked `cluster` again. */
void dn_follow(darner_client *c, size_t i);

/* The depth of queue on server i (dump_stats; cached DEPTH_TTL_MS).
 * Returns 0 or a negative errno. */
int dn_queue_depth(darner_client *c, size_t i, const char *queue, uint64_t *depth);

/* Records depth as queue's depth on server i (its age unchanged). */
void dn_depth_note(darner_client *c, size_t i, const char *queue, uint64_t depth);

/* Forgets the previous call's error text. */
void dn_clear_error(darner_client *c);

/* Records an error text for darner_client_last_error(), prefixed with server
 * i's name (i == SIZE_MAX: no prefix). */
void dn_set_error(darner_client *c, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Makes server i ready for a request: keeps its connection when it is still
 * usable, else connects (whatever the backoff says: callers check health
 * first where it matters). A failure counts against the server's backoff.
 * Returns 0 or a negative errno. */
int dn_server_connect(darner_client *c, size_t i);

/* Drops server i's connection after err. penalize: a network failure that
 * counts against the server's backoff (as opposed to a reply the client
 * could not follow, or a caller's callback that stopped a transfer). */
void dn_server_drop(darner_client *c, size_t i, int err, int penalize);

/* The errno for an unexpected reply r from server i, with its text recorded;
 * drops the connection when the reply leaves the stream out of step or the
 * server closes after it. */
int dn_reply_failure(darner_client *c, size_t i, const struct dn_reply *r);

/* Sends iov to server i; on failure drops the connection (penalized).
 * Returns 0 or a negative errno. */
int dn_server_send(darner_client *c, size_t i, dn_iov *iov, int iovcnt);

/* Reads one reply line from server i and parses it into *r; on failure
 * drops the connection (penalized for network errors). extra_ms is added to
 * the idle timeout (a /t= wait). Returns 0 or a negative errno. */
int dn_server_reply(darner_client *c, size_t i, struct dn_reply *r, int extra_ms);

/* When no server of those not in skip may be tried now, sleeps until the
 * first one may, if that is before deadline. Returns 1 if it slept, else 0. */
int dn_wait_for_retry(darner_client *c, const unsigned char *skip, int64_t deadline);

/* The next server not in tried for a request with no item to wait for (a
 * set, a batch): a random healthy one, marked tried. When none is, and none
 * was tried yet (*attempted 0), waits for the first to come back before
 * deadline; else says every server is down. Returns its index, or
 * c->fleet.n when there is none. */
size_t dn_pick_untried(darner_client *c, unsigned char *tried, int64_t deadline, int *attempted);

/* The next server of a wait for an item that ends at end: the next healthy
 * one in rotation (sleeping while none is), and how long to wait on it
 * (*slice ms: the time left, in slices of FLEET_WAIT_SLICE_MS while other
 * servers may get the item). Returns 1, or 0 once end has passed. */
int dn_wait_pick(darner_client *c, int64_t end, size_t *server, uint32_t *slice);

/* Open-item table (open.c). */
int dn_open_find(const darner_client *c, const char *queue);
int dn_open_add(darner_client *c, const char *queue, size_t server);
void dn_open_remove(darner_client *c, int idx);
/* 1 if the connection behind open item idx is gone (the server has put the
 * item back). */
int dn_open_stale(darner_client *c, int idx);

#endif
