/* auth_file.c: the auth file read whole and handed to auth_parse; errors
 * name the file and the line. */
#include "auth_file.h"
#include "util/errstr.h"

#include "auth.h"

#include "util/compat.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads the regular file at path whole into *text (ours to free, also on
 * failure: NULL then). */
static int read_whole(const char *path, char **text, size_t *len)
{
    struct stat st;
    size_t cap;
    int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC_BINARY);
    *text = NULL;
    *len = 0;
    if (fd < 0) {
        rc = -errno; /* Windows' C runtime cannot open a folder: EACCES */
        return rc == -EACCES && stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? -EINVAL : rc;
    }
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        goto out;
    }
    cap = (size_t)st.st_size + 1; /* grows if the file does while it is read */
    if (!(*text = malloc(cap))) {
        rc = -ENOMEM;
        goto out;
    }
    for (;;) {
        if (*len == cap) {
            char *more = realloc(*text, cap * 2);
            if (!more) {
                rc = -ENOMEM;
                goto out;
            }
            *text = more;
            cap *= 2;
        }
        ssize_t n = read(fd, *text + *len, cap - *len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            goto out;
        }
        if (n == 0)
            break;
        *len += (size_t)n;
    }
out:
    close(fd);
    if (rc < 0) {
        free(*text);
        *text = NULL;
    }
    return rc;
}

int auth_file_load(const char *path, struct auth_table **out, char *why, size_t cap)
{
    char *text;
    size_t len;
    struct auth_error e;
    *out = NULL;
    int rc = read_whole(path, &text, &len);
    if (rc < 0) {
        snprintf(why, cap, "cannot read the auth file %s: %s", path, rc == -EINVAL ? "not a regular file" : errstr(rc));
        return rc;
    }
    rc = auth_parse(text, len, out, &e);
    free(text);
    if (rc < 0 && e.line)
        snprintf(why, cap, "%s:%d: %s", path, e.line, e.msg);
    else if (rc < 0)
        snprintf(why, cap, "%s: %s", path, e.msg);
    return rc;
}
