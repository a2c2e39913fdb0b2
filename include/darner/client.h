/* darner/client.h: libdarner, the C client of the darner queue server.
 *
 * One darner_client talks to one server or to a fleet of servers that do not
 * talk to each other ("host:port,host:port"). Sets go to a random healthy
 * server, gets rotate across the servers, and an item opened with
 * darner_open() stays tied to the server that handed it out: darner_close()
 * and darner_abort() go to that server.
 *
 * Conventions
 * - Every call that can fail returns 0 or a negative errno (-ETIMEDOUT,
 *   -ECONNREFUSED, ...); darner_strerror() turns one into text. Results go out
 *   through pointer parameters.
 * - A get that finds no item is not an error: it returns 0 and sets *out to
 *   NULL.
 * - Types are opaque; the caller frees what a call hands out with the matching
 *   *_free() function.
 *
 * Thread safety
 *   A darner_client and everything it hands out belong to one thread at a
 *   time: use one client per thread (or guard a shared one with your own
 *   mutex). Distinct clients share nothing, so any number of them may run in
 *   parallel threads. darner_strerror() may be called from any thread.
 *
 * Signals
 *   The library never raises SIGPIPE (it sends with MSG_NOSIGNAL) and installs
 *   no signal handlers. A call interrupted by a signal continues.
 */
#ifndef DARNER_CLIENT_H
#define DARNER_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(DARNER_BUILDING_LIBRARY)
/* libdarner.dll exports these and nothing else */
#define DARNER_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define DARNER_API __attribute__((visibility("default")))
#else
#define DARNER_API
#endif

#define DARNER_CLIENT_VERSION_MAJOR 1
#define DARNER_CLIENT_VERSION_MINOR 0
#define DARNER_CLIENT_VERSION_PATCH 0

#define DARNER_DEFAULT_PORT 22133
#define DARNER_DEFAULT_SERVERS "127.0.0.1:22133"
#define DARNER_MAX_QUEUE_NAME 250

/* Defaults of the tunables below, in milliseconds. */
#define DARNER_DEFAULT_TIMEOUT_MS 5000
#define DARNER_DEFAULT_CONNECT_TIMEOUT_MS 2000
#define DARNER_DEFAULT_BACKOFF_MIN_MS 50
#define DARNER_DEFAULT_BACKOFF_MAX_MS 2000

typedef struct darner_client darner_client;
typedef struct darner_item darner_item;
typedef struct darner_stats darner_stats;

/* ---- errors ------------------------------------------------------------ */

/* Text for a value returned by any darner_ call (0 or a negative errno).
 * Never NULL; the string is static. */
DARNER_API const char *darner_strerror(int err);

/* ---- the client -------------------------------------------------------- */

/* Creates a client for a server list "host:port[,host:port...]". A port may
 * be left out (22133); IPv6 addresses go in brackets ("[::1]:22133");
 * NULL or "" means DARNER_DEFAULT_SERVERS. Nothing connects yet: connections
 * are made on first use. On success *out is the caller's, to be freed with
 * darner_client_free(). Returns 0, -EINVAL (bad list) or -ENOMEM. */
DARNER_API int darner_client_new(darner_client **out, const char *servers);

/* Closes every connection (open items go back to their queues, as the
 * protocol says) and frees the client and nothing else: items and stats it
 * handed out stay valid. NULL is allowed. */
DARNER_API void darner_client_free(darner_client *c);

/* Per-call timeout: the longest a call waits for a server to make progress
 * (to answer, or to take or give the next bytes of an item), so a large
 * item that keeps moving is never cut off. A wait for an item (wait_ms)
 * comes on top. A call that runs out answers -ETIMEDOUT and drops that
 * connection, since the late reply could no longer be matched to its
 * request. ms > 0 (default DARNER_DEFAULT_TIMEOUT_MS). Returns 0 or -EINVAL. */
DARNER_API int darner_client_set_timeout(darner_client *c, int ms);

/* The most a connection attempt may take (name resolution not counted).
 * ms > 0. Returns 0 or -EINVAL. */
DARNER_API int darner_client_set_connect_timeout(darner_client *c, int ms);

/* Reconnect backoff: after a failure, a server is left alone for min_ms,
 * doubling with every further failure up to max_ms (with up to 25% random
 * jitter), and is tried again once that time has passed. A success resets
 * it. When every server is backing off, a call waits for the first to come
 * back if that is within its timeout, else fails at once.
 * 0 <= min_ms <= max_ms. Returns 0 or -EINVAL. */
DARNER_API int darner_client_set_backoff(darner_client *c, int min_ms, int max_ms);

/* Seeds the client's own random source (server choice, jitter); by default
 * it is seeded from the clock and the process id. */
DARNER_API void darner_client_set_seed(darner_client *c, uint64_t seed);

/* Number of servers in the list, and the i-th as "host:port" (the string
 * belongs to the client; NULL when i is out of range). */
DARNER_API size_t darner_client_server_count(const darner_client *c);
DARNER_API const char *darner_client_server_name(const darner_client *c, size_t i);

/* Asks the servers given `cluster` now rather than at first use
 * (docs/client.md, Fleets of cells): each cell found (a member's answer, or
 * a CELL line of one) becomes one server of the list, reached at its
 * leader; servers that are not members of a cell stay as they are. Call it
 * before reading the list (darner_client_server_count, _name) or naming a
 * server by its index (darner_version, darner_stats_fetch), since the first
 * discovery may make the list again. Later calls bring the cells' members
 * and leaders up to date and append new cells. Returns 0 or a negative
 * errno (-ENOMEM); servers that do not answer are kept as given. */
DARNER_API int darner_client_discover(darner_client *c);

/* 1 if server i is connected or may be tried now, 0 while it backs off. */
DARNER_API int darner_client_server_healthy(const darner_client *c, size_t i);

/* The text after the last CLIENT_ERROR or SERVER_ERROR the client received,
 * or the last connection error in words; "" when there was none. Belongs to
 * the client, valid until its next call. */
DARNER_API const char *darner_client_last_error(const darner_client *c);

/* ---- set --------------------------------------------------------------- */

/* Bits for set_flags. */
#define DARNER_SET_SYNC 1u /* answer only once the item is on stable storage */

/* Enqueues len bytes (copied; the caller keeps data) into queue on a random
 * healthy server. darner_set() is darner_set_ex() with flags 0, exptime 0,
 * no sync. exptime follows memcache: 0 never, < 1,000,000 seconds from now,
 * else an absolute Unix time.
 *
 * Returns 0 once the server answered STORED; -EINVAL for a bad queue name;
 * -ENOSPC when the queue's limits refused it (NOT_STORED: max_items,
 * max_size; the connection stays); -E2BIG when the server refuses the size; -EIO for another SERVER_ERROR;
 * a connection error (-ECONNREFUSED, -ECONNRESET, -ETIMEDOUT, ...) when no
 * server took it. A set is sent again to another server only when the first
 * one failed before any of it was sent, so an error after that point may
 * still mean the item was stored (at-least-once is the caller's choice). */
DARNER_API int darner_set(darner_client *c, const char *queue, const void *data, size_t len);
DARNER_API int darner_set_ex(darner_client *c, const char *queue, const void *data, size_t len,
                             uint32_t flags, int64_t exptime, unsigned set_flags);

/* Fills buf with up to cap bytes of the item being sent and stores the count
 * in *got. Returns 0 or a negative errno, which ends the set (the connection
 * is dropped so the server never stores a partial item). */
typedef int (*darner_source_fn)(void *arg, void *buf, size_t cap, size_t *got);

/* A set of len bytes read from src in chunks, for items that should not be
 * held in memory at once. src must deliver exactly len bytes; fewer is
 * -EPIPE. Otherwise as darner_set_ex(). */
DARNER_API int darner_set_stream(darner_client *c, const char *queue, uint64_t len, uint32_t flags,
                                 int64_t exptime, unsigned set_flags, darner_source_fn src,
                                 void *arg);

/* ---- get --------------------------------------------------------------- */

/* Takes the head item of queue away, trying every healthy server once in
 * rotation, the next call starting at the next server. With wait_ms > 0 and
 * no item anywhere, it then waits up to wait_ms for one (in a fleet: in
 * slices of at most 250 ms per server, in turn). *out is the item (free it
 * with darner_item_free()) or NULL when there was none. Returns 0, -EINVAL,
 * -ENOMEM or a connection error; on a connection error after the request
 * was sent, the item the server handed out may be lost (use darner_open()
 * when that matters). */
DARNER_API int darner_get(darner_client *c, const char *queue, int wait_ms, darner_item **out);

/* The head item without removing it (get q/peek), servers tried in rotation. */
DARNER_API int darner_peek(darner_client *c, const char *queue, darner_item **out);

/* Reliable read (get q/open): as darner_get(), but the item stays on its
 * server, set aside for this client, until darner_close() confirms it or
 * darner_abort() gives it back. If the connection or the client goes away
 * first, the server puts the item back at the head of its queue. One item
 * per queue may be open at a time: a second darner_open() on the same queue
 * answers -EBUSY. */
DARNER_API int darner_open(darner_client *c, const char *queue, int wait_ms, darner_item **out);

/* Confirms (removes for good) the item open on queue, on the server that
 * handed it out. 0 also when nothing is open; -ECONNRESET when the
 * connection that held it was lost (the server has put it back). */
DARNER_API int darner_close(darner_client *c, const char *queue);

/* Gives the open item back to the head of its queue. As darner_close(). */
DARNER_API int darner_abort(darner_client *c, const char *queue);

/* 1 if an item is open on queue, else 0. */
DARNER_API int darner_is_open(const darner_client *c, const char *queue);

/* How a streamed get takes its item. */
enum darner_get_mode {
    DARNER_GET_REMOVE = 0, /* plain get */
    DARNER_GET_OPEN = 1,   /* get q/open; close or abort later */
    DARNER_GET_PEEK = 2,   /* get q/peek; wait_ms must be 0 */
};

/* Receives a streamed item: begin() once with its size, flags and the index
 * of the server it came from, then data() with consecutive chunks (none for
 * an empty item). A negative return from either ends the get with that
 * value and drops the connection (an open item then goes back to its
 * queue; a plain get's item is lost). Either may be NULL. */
typedef struct darner_sink {
    int (*begin)(void *arg, uint64_t len, uint32_t flags, size_t server);
    int (*data)(void *arg, const void *chunk, size_t n);
    void *arg;
} darner_sink;

/* darner_get(), darner_open() or darner_peek() that hands the item to sink
 * in chunks instead of holding it in memory. *found is 1 when an item was
 * delivered, 0 when there was none. */
DARNER_API int darner_get_stream(darner_client *c, const char *queue, enum darner_get_mode mode,
                                 int wait_ms, const darner_sink *sink, int *found);

/* ---- batches ----------------------------------------------------------- */

/* One item of darner_set_batch(): len bytes at data (only read during the
 * call) and the flags a get hands back with it. */
typedef struct darner_batch_item {
    const void *data;
    size_t len;
    uint32_t flags;
} darner_batch_item;

/* Enqueues the n items into queue, in order, on one server: a random
 * healthy one, as for darner_set(). The sets are pipelined on its
 * connection (written in windows of up to 1,024 items or 1 MiB, each
 * window's answers read before the next is sent), so a batch costs about
 * one round trip per window instead of one per item. exptime and set_flags
 * apply to every item, as in darner_set_ex(). With DARNER_SET_SYNC every set
 * carries /sync, so each STORED means that item is on stable storage: the
 * server fsyncs each /sync set of a pipeline in turn (a request waiting for
 * its fsync holds the ones behind it), so a synced batch still costs one
 * fsync per item on the server, but no round trip each.
 *
 * status: NULL, or n entries the caller owns that receive each item's
 * outcome: 0 stored; -ENOSPC refused by the queue's limits (NOT_STORED:
 * max_items, max_size, max_item_size); -E2BIG, -EIO, -EINVAL for an error
 * answer; or, for items whose answer never came, the connection error that
 * ended the batch (such an item may or may not have been stored). *stored
 * (may be NULL) is the number of items stored.
 *
 * Returns 0 when every item was stored, else the outcome of the first item
 * that was not (see status for the others). Only a failed connect moves the
 * batch to another server: once a byte was sent some items may have been
 * stored. -EINVAL for a bad queue name, n == 0 or a NULL data with len > 0
 * (nothing sent). */
DARNER_API int darner_set_batch(darner_client *c, const char *queue, const darner_batch_item *items,
                                size_t n, int64_t exptime, unsigned set_flags, int *status,
                                size_t *stored);

/* Takes up to max items off the head of queue, at most once (as
 * darner_get()), in one round trip per server: a multi-key get (`get q q q
 * ...`, which hands out one item per key; in lines of at most 512 bytes,
 * pipelined, in windows of up to 16 KiB of keys). Servers are asked in
 * rotation, each once, until max items came. Only when no server had any
 * and wait_ms > 0 does it wait, as darner_get() does (the first key
 * carries /t=, one server at a time); once an item comes, it takes what that
 * server has then, up to max, without waiting further.
 *
 * items is the caller's array of max entries; it receives the items in the
 * order they were handed out, and *got their count (0: there was none).
 * They are the caller's (darner_item_free() each), and this holds also when
 * the call fails: an error midway returns the items received before it.
 * Items the server handed out whose answer was not read (the connection
 * broke, or timed out, mid-batch) are lost, as with darner_get(): use
 * darner_open() when that matters. Returns 0, -EINVAL (bad name, max == 0,
 * wait_ms < 0), -ENOMEM, or a connection or server error. */
DARNER_API int darner_get_batch(darner_client *c, const char *queue, int wait_ms, darner_item **items,
                                size_t max, size_t *got);

/* ---- items ------------------------------------------------------------- */

/* The payload (len bytes, followed by a NUL that is not part of it, so text
 * items can be used as C strings), its length, the flags given to set, the
 * queue, and the index of the server that handed it out. */
DARNER_API const void *darner_item_data(const darner_item *it);
DARNER_API size_t darner_item_len(const darner_item *it);
DARNER_API uint32_t darner_item_flags(const darner_item *it);
DARNER_API const char *darner_item_queue(const darner_item *it);
DARNER_API size_t darner_item_server(const darner_item *it);

/* Frees the item. Freeing an open item does not close it. NULL allowed. */
DARNER_API void darner_item_free(darner_item *it);

/* ---- administration ---------------------------------------------------- */

/* Empties queue on every server (open items included). Returns 0 when all
 * servers answered, else the first error (the others were still tried). */
DARNER_API int darner_flush(darner_client *c, const char *queue);

/* Deletes queue, with its files, on every server. As darner_flush(). */
DARNER_API int darner_delete(darner_client *c, const char *queue);

/* The version string of server i ("1.0.0") copied into buf (NUL-terminated,
 * cut to size). Returns 0, -ERANGE (i out of range) or an error. */
DARNER_API int darner_version(darner_client *c, size_t server, char *buf, size_t size);

/* The `stats` answer of server i. *out is the caller's (darner_stats_free()). */
DARNER_API int darner_stats_fetch(darner_client *c, size_t server, darner_stats **out);

/* Every STAT line in the order the server sent them. */
DARNER_API size_t darner_stats_count(const darner_stats *s);
DARNER_API const char *darner_stats_name(const darner_stats *s, size_t i);
DARNER_API const char *darner_stats_value(const darner_stats *s, size_t i);

/* The value of one STAT by name, or NULL. */
DARNER_API const char *darner_stats_get(const darner_stats *s, const char *name);

/* One queue's figures from the per-queue STAT lines. */
typedef struct darner_queue_stats {
    const char *name; /* belongs to the darner_stats */
    uint64_t items;   /* live items, open ones included */
    uint64_t bytes;
    uint64_t total_items;
    uint64_t logsize;
    uint64_t age_ms;
    uint64_t waiters;
    uint64_t open_transactions;
} darner_queue_stats;

/* Queues found in the stats, and the figures of the i-th. darner_stats_queue()
 * returns 0 or -ERANGE. */
DARNER_API size_t darner_stats_queue_count(const darner_stats *s);
DARNER_API int darner_stats_queue(const darner_stats *s, size_t i, darner_queue_stats *out);

DARNER_API void darner_stats_free(darner_stats *s);

#ifdef __cplusplus
}
#endif

#endif /* DARNER_CLIENT_H */
