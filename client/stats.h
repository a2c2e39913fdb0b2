/* stats.h: building a darner_stats from STAT lines (pure). */
#ifndef DARNER_CLIENT_STATS_H
#define DARNER_CLIENT_STATS_H

#include "darner/client.h"

#include <stddef.h>

/* An empty stats object, or NULL when out of memory. Caller frees it. */
darner_stats *dn_stats_new(void);

/* Appends one STAT (copied). Returns 0 or -ENOMEM. */
int dn_stats_add(darner_stats *s, const char *name, size_t nlen, const char *value, size_t vlen);

/* Finds the queues among the STATs added so far. A queue q is recognised by
 * its "queue_<q>_logsize" line: no other STAT ends in "_logsize", so names
 * holding '_' (even "a_total") are found exactly. Its other figures are
 * taken from the lines around it, where the server writes them, falling
 * back to a search by full name. Returns 0 or -ENOMEM. */
int dn_stats_index_queues(darner_stats *s);

#endif
