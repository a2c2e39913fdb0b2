/* auth_file.h: reading the auth file (--auth-file) into a table of users
 * (auth.h parses it). */
#ifndef DARNER_AUTH_FILE_H
#define DARNER_AUTH_FILE_H

#include <stddef.h>

struct auth_table;

/* Reads and parses the file at path. Returns 0 with *out the caller's
 * (auth_free), or -errno with why holding "PATH:LINE: reason" (or "cannot
 * read PATH: ...") and *out NULL. */
int auth_file_load(const char *path, struct auth_table **out, char *why, size_t cap);

#endif
