/* status.h: the server's status (Kestrel's): UP serves everything;
 * READONLY refuses what changes queues (set, delete, flush); QUIESCENT also
 * refuses reads, but open items may still be confirmed or aborted. Kept in
 * <data>/STATUS across restarts. */
#ifndef DARNER_STATUS_H
#define DARNER_STATUS_H

#include <stddef.h>

enum srv_status { STATUS_UP, STATUS_READONLY, STATUS_QUIESCENT, STATUS_NONE };

#define STATUS_FILE "STATUS"

/* "UP", "READONLY", "QUIESCENT". */
const char *status_name(enum srv_status st);
/* The status named p[0..n), in any case. Returns 0 or -EINVAL. */
int status_parse(const char *p, size_t n, enum srv_status *out);

#endif
