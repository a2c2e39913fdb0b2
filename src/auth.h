/* auth.h: the users of an auth file (--auth-file, memcached's -Y): who may
 * use the server, with which password, and which queues each may read or
 * write. docs/operations.md ("Authentication") gives the file's format and
 * its rules.
 *
 * Pure: text in, a table out; lookups and checks. No I/O (auth_file.c reads
 * the file), no globals. */
#ifndef DARNER_AUTH_H
#define DARNER_AUTH_H

#include <stddef.h>

/* memcached's limit: the longest "user password" token a handshake takes. */
#define AUTH_TOKEN_MAX 16384
/* The longest user name, and the longest queue name a rule is checked on. */
#define AUTH_NAME_MAX 250

/* What a rule lets a user do with the queues its pattern matches. */
enum auth_perm { AUTH_READ = 1u, AUTH_WRITE = 2u };

/* One line with a queue pattern: user:password:pattern[:r|w|rw]. */
struct auth_rule {
    const char *glob; /* a shell pattern (util/glob.h, as fnmatch without flags), as [queue "PATTERN"] sections */
    unsigned perm;    /* AUTH_READ and/or AUTH_WRITE */
    int line;
};

/* A user and every rule of its lines. */
struct auth_user {
    const char *name, *pass;
    size_t name_len, pass_len;
    const struct auth_rule *rules;
    size_t nrules; /* 0: no queue limit: every queue, and the server-wide commands */
    int line;      /* its first line */
};

struct auth_table;

/* What is wrong with a file: the line (1-based; 0: not one line's fault)
 * and a reason without the line. */
struct auth_error {
    int line;
    char msg[384];
};

/* Parses an auth file's text (len bytes, need not be NUL-terminated).
 * Returns 0 with *out the caller's (auth_free), or -EINVAL with err filled
 * (the first wrong line) or -ENOMEM; nothing is kept on failure. */
int auth_parse(const char *text, size_t len, struct auth_table **out, struct auth_error *err);
void auth_free(struct auth_table *t);

/* Users in the table. */
size_t auth_count(const struct auth_table *t);

/* The user called name (len bytes), or NULL. Valid until t is freed. */
const struct auth_user *auth_find(const struct auth_table *t, const char *name, size_t len);

/* A handshake's token, split: "user password". */
struct auth_cred {
    const char *user, *pass;
    size_t user_len, pass_len;
};

/* Splits the data of a handshake set at its first space. Returns 0, or
 * -EINVAL for a token without a space, with an empty user or password, or
 * with a control byte. Borrows data. */
int auth_token_split(const char *data, size_t len, struct auth_cred *out);

/* The user whose name and password cred gives, or NULL. The password is
 * compared in constant time, and an unknown user costs a compare too. */
const struct auth_user *auth_login(const struct auth_table *t, const struct auth_cred *cred);

/* Whether u may do perm (AUTH_READ, AUTH_WRITE or both) on the queue
 * called name (len bytes): a user without a queue limit may do anything;
 * otherwise the rules whose pattern matches name together must grant it. */
int auth_may(const struct auth_user *u, const char *name, size_t len, unsigned perm);

/* Whether two users (of two tables: a reload) have the same password. */
int auth_same_password(const struct auth_user *a, const struct auth_user *b);

/* Whether secret[0..slen) equals given[0..glen). Its time depends only on
 * glen (the client's own length), never on where the bytes differ. */
int auth_ct_equal(const void *secret, size_t slen, const void *given, size_t glen);

#endif
