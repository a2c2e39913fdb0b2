/* conffile.h: the config file (INI, read with libinih): [server], [queue]
 * (defaults for every queue), [queue "NAME"], [queue "GLOB"] and
 * [alias "NAME"]; docs/configuration.md describes them. A loaded file owns
 * the resolved settings of every section; queues point into it. */
#ifndef DARNER_CONFFILE_H
#define DARNER_CONFFILE_H

#include <stddef.h>

#include "config.h"
#include "settings.h"

#define QSET_MAX 32 /* queue settings, at most */

/* A queue's resolved settings, and the line of the file each value came
 * from (0: the built-in default). */
struct qconf {
    struct qsettings v;
    int line[QSET_MAX];
    const char *section; /* the section that made it: "[queue]", "[queue \"jobs.*\"]", ... */
};

struct conffile;

/* What loading found wrong: "file:line: what" in msg. */
struct conf_error {
    char msg[512];
};

/* Reads the file at path (NULL: none, only the defaults). Its [server]
 * values are applied to srv when srv is not NULL (a reload passes a scratch
 * copy). Warnings (keys accepted but ignored) go to warn, one line each.
 * Returns 0 with *out the caller's (conffile_free), or -EINVAL (anything
 * wrong in the file) or -errno (it cannot be read), with err filled and
 * nothing else changed. */
int conffile_load(const char *path, struct config *srv, void (*warn)(void *ctx, const char *line), void *warn_ctx,
                  struct conffile **out, struct conf_error *err);
void conffile_free(struct conffile *f);

/* The settings of the queue called name (len bytes): its own section (the
 * exact name, else the matching glob with the most literal characters, a
 * tie going to the later section) over [queue] over the defaults. Valid
 * until f is freed. */
const struct qconf *conffile_queue(const struct conffile *f, const char *name, size_t len);

/* An alias: a set-only name whose sets go to each of its destinations. */
struct conf_alias {
    const char *name;
    size_t name_len;
    char **dest; /* queue names */
    size_t ndest;
};

/* The alias called name, or NULL. */
const struct conf_alias *conffile_alias(const struct conffile *f, const char *name, size_t len);

/* Appends qc's settings to out, one "  key=value (where)" line each, where
 * being "default" or "FILE:LINE". */
struct buf;
void conffile_dump(const struct conffile *f, const struct qconf *qc, struct buf *out);

/* The shortest time between fsyncs any queue's settings ask for (the
 * [queue] defaults and every section), or 0 when none asks for one. */
uint64_t conffile_min_fsync_ms(const struct conffile *f);

/* The server settings as the built-in defaults and the file's [server]
 * give them (no flag): what a reload compares. */
const struct config *conffile_server(const struct conffile *f);

/* The file's path, or "" when there is none. */
const char *conffile_path(const struct conffile *f);

/* The n-th queue setting in the table (0 <= n < conffile_nqset()). */
const struct setting *conffile_qset(size_t n);
size_t conffile_nqset(void);

#endif
