/* stats.h: the `stats` and `dump_stats` answers, rendered from one list of
 * values per queue, so the two cannot disagree. */
#ifndef DARNER_STATS_H
#define DARNER_STATS_H

#include <stddef.h>

#include "util/buf.h"

struct server;
struct queue;

/* Appends "STAT name value" lines and "END" for the whole server and each
 * queue. Borrows s. */
void stats_write(const struct server *s, struct buf *out);

/* Appends Kestrel's dump_stats block of one queue: "queue 'q' {", one
 * "  key=value" line per stat, "}". */
void stats_dump_queue(const struct server *s, struct queue *q, struct buf *out);

#endif
