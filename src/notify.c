/* notify.c: sd_notify(3) messages for a Type=notify systemd service: READY=1,
 * RELOADING=1, STOPPING=1, each with a STATUS= line that `systemctl status`
 * shows. libsystemd does the sending (it reads $NOTIFY_SOCKET, and answers 0
 * at once when it is unset); a build without it (not Linux) sends nothing. */
#include "notify.h"

#include <stdarg.h>
#include <stdio.h>

#ifdef DARNER_HAVE_SYSTEMD

#include <systemd/sd-daemon.h>
#include <time.h>

/* state ("READY=1", ...) and a STATUS= line made of fmt and ap. */
static void send_state(const char *state, const char *fmt, va_list ap)
{
    char status[512];
    vsnprintf(status, sizeof(status), fmt, ap);
    sd_notifyf(0, "%s\nSTATUS=%s", state, status);
}

void notify_ready(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_state("READY=1", fmt, ap);
    va_end(ap);
}

void notify_reloading(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
               (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000ULL);
}

void notify_stopping(void) { sd_notify(0, "STOPPING=1\nSTATUS=stopping: closing connections, syncing the journals"); }

#else /* no libsystemd: nothing to tell */

void notify_ready(const char *fmt, ...) { (void)fmt; }
void notify_reloading(void) {}
void notify_stopping(void) {}

#endif
