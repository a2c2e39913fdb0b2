/* reload.h: `reload` and SIGHUP (reload.c). */
#ifndef DARNER_RELOAD_H
#define DARNER_RELOAD_H

#include <errno.h>
#include <stddef.h>

struct server;

/* Reads the config file again and gives every queue its new settings;
 * connections, waiters and open items are untouched. A file with any
 * mistake is refused whole: the settings stay, why holds "FILE:LINE:
 * reason". Returns 0 or -errno. */
int server_reload(struct server *s, char *why, size_t cap);

#endif
