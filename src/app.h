/* app.h: the server program as a function, so a test binary can run it with
 * its own journal system calls (fault injection). */
#ifndef DARNER_APP_H
#define DARNER_APP_H

#include "journal/io.h"

/* Runs the server as the darner command does; returns the exit code.
 * io is borrowed for the whole run. */
int darner_main(int argc, char **argv, const struct jio *io);

#endif
