/* notify.h: telling a service manager how the server is doing (notify.c). */
#ifndef DARNER_NOTIFY_H
#define DARNER_NOTIFY_H

#include "util/compat.h"

/* Each call sends one message to systemd (sd_notify(3)) when darner runs as a
 * Type=notify service, and does nothing otherwise ($NOTIFY_SOCKET unset, or a
 * build without libsystemd). A message that cannot be sent is dropped: the
 * server serves the same either way. fmt gives the STATUS= text. */

/* READY=1: every listener accepts (the moment the port files are written),
 * or a reload is over, whether or not it was refused. */
void notify_ready(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* RELOADING=1 (with MONOTONIC_USEC, which systemd 253 and later ask for): a
 * reload begins; notify_ready ends it. */
void notify_reloading(void);

/* STOPPING=1: the server stops accepting and syncs its journals. */
void notify_stopping(void);

#endif
