/* stats.h: the `stats` answer. */
#ifndef DARNER_STATS_H
#define DARNER_STATS_H

#include "util/buf.h"

struct server;

/* Appends "STAT name value" lines and "END" for the whole server and each
 * queue. Borrows s. */
void stats_write(const struct server *s, struct buf *out);

#endif
