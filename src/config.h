/* config.h: the server's settings, from command-line flags. */
#ifndef DARNER_CONFIG_H
#define DARNER_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"

enum fsync_policy { FSYNC_NEVER, FSYNC_ALWAYS, FSYNC_PERIODIC };
enum compat_mode { COMPAT_MEMCACHE, COMPAT_KESTREL };

struct config {
    const char *listen;
    int port;
    const char *port_file; /* NULL: none */
    const char *data_dir;
    enum fsync_policy fsync;
    uint32_t fsync_ms; /* FSYNC_PERIODIC */
    uint64_t max_item_size;
    uint32_t max_connections;
    uint32_t idle_timeout_s; /* 0: connections may stay idle forever */
    enum compat_mode compat;
    size_t max_line;
    uint64_t segment_size;
    enum log_level log_level;
    uint32_t max_open_queues; /* journals kept open at once; 0: from the open-file limit */
    /* the open-file limit, as main found and raised it (for the log) */
    uint64_t nofile_was, nofile_soft, nofile_hard;
};

#define CONFIG_DEFAULT_DATA "./darner-data"

/* Fills c with the defaults. */
void config_defaults(struct config *c);

enum config_result { CONFIG_RUN, CONFIG_EXIT_OK, CONFIG_EXIT_ERROR };

/* Parses argv into c (strings borrow argv). Help, version and errors are
 * written to out/err; the result says whether to run or exit. */
enum config_result config_parse(struct config *c, int argc, char **argv, FILE *out, FILE *err);

/* Parses a size such as "4096", "64K", "64M" or "1G". Returns 0 or -EINVAL. */
int config_parse_size(const char *s, uint64_t *out);

#endif
