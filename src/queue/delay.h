/* queue/delay.h: delayed items, kept in buckets by due time and made
 * visible in their queue's lane at their time (queue/delay.c). */
#ifndef DARNER_QUEUE_DELAY_H
#define DARNER_QUEUE_DELAY_H

#include <stddef.h>
#include <stdint.h>

#include "queue/queue.h"

/* A bucket's index is built once it is due within this. */
#define DELAY_LOOKAHEAD_MS (60 * 1000)
/* Index build steps and firing batches one tick does at most, so requests
 * are served in between. */
#define DELAY_TICK_BUDGET 64

struct registry;

/* Stores an item of q (a queue clients name) due at a->visible_ms, later
 * than now, in its bucket (made if need be), written now: its bytes, or the
 * complete streamed file blob (consumed either way). Returns 0 or -errno. */
int queue_put_delayed(struct queue *q, const struct jnl_attrs *a, const void *data, size_t len, struct jnl_blob *blob,
                      uint64_t *id);
/* Builds indexes and makes due items visible, within a budget. Returns the
 * wall-clock ms at which it wants to run again (0: nothing waits). */
uint64_t registry_delay_tick(struct registry *r, uint64_t now);
/* Makes q's max soonest delayed items visible now; *kicked counts them. */
int queue_kick_delayed(struct queue *q, uint64_t max, uint64_t *kicked);
/* The soonest delayed item of q, read whole or as an fd (as a get):
 * 0, -ENOENT (none), or -errno. */
int queue_peek_delayed(struct queue *q, struct qitem *out);
/* Delayed items q holds (not fired yet), and their payload bytes: kept in
 * memory, no I/O. After a start they are counted in steps by the tick (a
 * census of each bucket found): until queue_delays_counted(q), what is
 * counted so far. */
uint64_t queue_delayed_items(const struct queue *q);
uint64_t queue_delayed_bytes(const struct queue *q);
int queue_delays_counted(const struct queue *q);
/* Finishes q's census now (reads every bucket of q not counted yet). */
void queue_count_delayed(struct queue *q);
/* Drops every delayed item of q (its buckets are deleted). */
int queue_flush_delayed(struct queue *q);

/* The bucket of q (a queue clients name) for an item of level due then
 * (made if need be). Returns 0 or -errno. */
int queue_bucket_for(struct queue *q, unsigned level, uint64_t due, struct queue **out);
/* Item it was just appended to bucket b: indexed if b is, and the tick
 * told. Returns 0 or -errno (written, but not indexed until a restart). */
int queue_bucket_added(struct queue *b, const struct jnl_item *it);
/* Bucket b belongs to queue p (made, or found at start); and no longer. */
int queue_link_bucket(struct queue *p, struct queue *b);
void queue_unlink_bucket(struct queue *b);
/* Once bucket b's journal j is open: a firing a crash cut short is settled. */
void queue_bucket_opened(struct queue *b, struct jnl *j);
/* Frees q's delay state (a bucket's index, a queue's bucket list). */
void queue_free_delays(struct queue *q);
/* Closes the files a bucket's index holds open (its runs, already
 * unlinked), so its folder can be removed where an open file keeps its
 * name until closed (Windows); the index is built again when needed. */
void queue_close_delay_files(struct queue *q);

#endif
