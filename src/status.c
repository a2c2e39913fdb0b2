/* status.c: the names of the server's statuses. */
#include "status.h"

#include <errno.h>
#include <strings.h>

static const char *const NAMES[] = {
    [STATUS_UP] = "UP", [STATUS_READONLY] = "READONLY", [STATUS_QUIESCENT] = "QUIESCENT"};

const char *status_name(enum srv_status st) { return st < STATUS_NONE ? NAMES[st] : "?"; }

int status_parse(const char *p, size_t n, enum srv_status *out)
{
    for (int i = 0; i < STATUS_NONE; i++) {
        size_t len = 0;
        while (NAMES[i][len])
            len++;
        if (len == n && strncasecmp(p, NAMES[i], n) == 0) {
            *out = (enum srv_status)i;
            return 0;
        }
    }
    return -EINVAL;
}
