/* service.h: running darner under the operating system's service manager.
 * `darner --service install|uninstall|run` is Windows': the service control
 * manager starts `darner.exe --service run FLAGS` and stops it with its stop
 * control. On Unix the service managers (systemd, rc.d, launchd) run the
 * plain program, so every --service word answers an error there. One file
 * per platform family: service_unix.c and service_win.c. */
#ifndef DARNER_SERVICE_H
#define DARNER_SERVICE_H

#include "journal/io.h"

struct server;

/* What the server program tells whoever runs it. ready(arg, s) is called
 * on the loop's thread once the server serves (after its port files are
 * written), then ready(arg, NULL) once its loop has ended: from the first
 * call until the second returns, server_request_stop(s) may be called from
 * any thread. */
struct darner_hooks {
    void (*ready)(void *arg, struct server *s);
    void *arg;
};

/* The server program (darner_main, app.h) with hooks (NULL: none): parses
 * argv (argv[0] is the program's name), serves until stopped and returns
 * the exit code. io and hooks are borrowed for the run. */
int darner_run(int argc, char **argv, const struct jio *io, const struct darner_hooks *hooks);

/* NULL where --service works; else why it does not, as one line. */
extern const char *const SERVICE_UNAVAILABLE;

/* The --service words. argv[0] is the word itself and the flags follow (the
 * shape darner_run takes); each returns the exit code: 0, 1 when the
 * service manager refused, 2 for a misuse. */
int service_install(int argc, char **argv, const struct jio *io);
int service_uninstall(int argc, char **argv, const struct jio *io);
int service_run(int argc, char **argv, const struct jio *io);

#endif
