/* service_unix.c: --service is Windows'; systemd, rc.d and launchd run the
 * plain program (docs/operations.md has the systemd unit). */
#include "service.h"

#include <stdio.h>

const char *const SERVICE_UNAVAILABLE = "--service is for Windows; on Linux use the systemd unit (docs/operations.md)";

/* main.c answers SERVICE_UNAVAILABLE before any of these is called. */
static int unavailable(void)
{
    fprintf(stderr, "darner: %s\n", SERVICE_UNAVAILABLE);
    return 2;
}

int service_install(int argc, char **argv, const struct jio *io)
{
    (void)argc, (void)argv, (void)io;
    return unavailable();
}

int service_uninstall(int argc, char **argv, const struct jio *io)
{
    (void)argc, (void)argv, (void)io;
    return unavailable();
}

int service_run(int argc, char **argv, const struct jio *io)
{
    (void)argc, (void)argv, (void)io;
    return unavailable();
}
