/* dashboard.h: the admin port's dashboard page, served from the binary.
 *
 * The page's files (src/dashboard/) and Chart.js (Debian's libjs-chart.js)
 * are embedded at build time by cmake/embed.cmake; nothing is loaded from
 * anywhere else. docs/operations.md, "The dashboard". */
#ifndef DARNER_DASHBOARD_H
#define DARNER_DASHBOARD_H

#include <stddef.h>

/* One embedded file: name is its path without the leading '/'; body holds
 * len bytes followed by a NUL that len does not count. */
struct dashboard_file {
    const char *name;
    const unsigned char *body;
    size_t len;
};

/* The generated table (build/generated/dashboard_files.c). */
extern const struct dashboard_file dashboard_files[];
extern const size_t dashboard_nfiles;

/* The file served at path (path_len bytes, no NUL needed, no query string):
 * "/" and "/index.html" are the page, "/chart.js", "/dashboard.js" and
 * "/dashboard.css" what it loads. Returns 0 and sets *content_type (with a
 * charset), *body and *len; -ENOENT for any other path. */
int dashboard_asset(const char *path, size_t path_len, const char **content_type, const unsigned char **body,
                    size_t *len);

#endif
