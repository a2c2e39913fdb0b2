/* auth.c: an auth file's text parsed into a table of users sorted by name;
 * logins with a constant-time password compare; queue permissions by
 * shell patterns (util/glob.h). */
#include "auth.h"
#include "util/compat.h"

#include "util/glob.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct auth_table {
    char *text;             /* a copy of the file; every field NUL-terminated in place */
    struct auth_user *user; /* sorted by name (bytes, then length) */
    size_t n;
    struct auth_rule *rule; /* each user's rules, one run per user */
};

/* One line of the file, before lines of one user are merged. */
struct entry {
    char *name, *pass, *glob; /* glob NULL: no queue limit */
    size_t name_len, pass_len;
    unsigned perm;
    int line;
};

/* The access words of a rule's fourth field. */
static const struct {
    const char *word;
    unsigned perm;
} PERMS[] = {{"r", AUTH_READ}, {"w", AUTH_WRITE}, {"rw", AUTH_READ | AUTH_WRITE}};

static int is_ctl(unsigned char ch) { return ch < 0x20 || ch == 0x7f; }

/* Whether s[0..len) holds a byte for which bad() is true. */
static int has_byte(const char *s, size_t len, int (*bad)(unsigned char))
{
    for (size_t i = 0; i < len; i++)
        if (bad((unsigned char)s[i]))
            return 1;
    return 0;
}

static int bad_in_name(unsigned char ch) { return is_ctl(ch) || ch == ' '; }
static int bad_in_glob(unsigned char ch) { return is_ctl(ch) || ch == ' ' || ch == '/'; }

static int fail(struct auth_error *err, int line, const char *fmt, ...) PRINTF_LIKE(3, 4);

static int fail(struct auth_error *err, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err->line = line;
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* Splits line (NUL-terminated, its own bytes) at ':' into at most max
 * fields; returns how many, or max + 1 when there are more. */
static size_t split_fields(char *line, char **field, size_t max)
{
    size_t n = 0;
    field[n++] = line;
    for (char *p = line; *p; p++) {
        if (*p != ':')
            continue;
        if (n == max)
            return max + 1;
        *p = '\0';
        field[n++] = p + 1;
    }
    return n;
}

/* Checks one line's fields and fills e, whose strings are the fields
 * themselves (borrowed from the line). Returns 0 or -EINVAL (err). */
static int parse_entry(char **f, size_t nf, int line, struct entry *e, struct auth_error *err)
{
    if (nf < 2)
        return fail(err, line,
                    "wants user:password, user:password:queue-pattern or "
                    "user:password:queue-pattern:r|w|rw");
    if (nf > 4)
        return fail(err, line, "too many ':' (user:password[:queue-pattern[:r|w|rw]]); a password cannot hold ':'");
    *e = (struct entry){.name = f[0],
                        .pass = f[1],
                        .name_len = strlen(f[0]),
                        .pass_len = strlen(f[1]),
                        .perm = AUTH_READ | AUTH_WRITE,
                        .line = line};
    if (e->name_len == 0)
        return fail(err, line, "empty user name");
    if (e->name_len > AUTH_NAME_MAX)
        return fail(err, line, "user name over %d bytes", AUTH_NAME_MAX);
    if (has_byte(e->name, e->name_len, bad_in_name))
        return fail(err, line, "a user name has no space or control byte");
    if (e->pass_len == 0)
        return fail(err, line, "empty password");
    if (has_byte(e->pass, e->pass_len, is_ctl))
        return fail(err, line, "a control byte in the password");
    if (e->pass[0] == ' ' || e->pass[e->pass_len - 1] == ' ')
        return fail(err, line, "the password begins or ends with a space");
    if (e->name_len + 1 + e->pass_len > AUTH_TOKEN_MAX)
        return fail(err, line, "user name and password together over %d bytes (a handshake token is at most %d)",
                    AUTH_TOKEN_MAX - 1, AUTH_TOKEN_MAX);
    if (nf < 3)
        return 0;
    e->glob = f[2];
    if (!*e->glob)
        return fail(err, line, "empty queue pattern");
    if (has_byte(e->glob, strlen(e->glob), bad_in_glob))
        return fail(err, line, "a queue pattern has no space, '/' or control byte (queue names have none)");
    if (nf < 4)
        return 0;
    for (size_t i = 0; i < sizeof(PERMS) / sizeof(PERMS[0]); i++) {
        if (strcmp(f[3], PERMS[i].word) == 0) {
            e->perm = PERMS[i].perm;
            return 0;
        }
    }
    return fail(err, line, "access must be r, w or rw, not '%.32s'", f[3]);
}

/* Splits text (NUL-terminated, ours) into entries, one per line that is
 * not empty or a comment ('#' first). *out is ours to free, also on
 * failure. */
static int parse_lines(char *text, size_t len, struct entry **out, size_t *n, struct auth_error *err)
{
    size_t cap = 0;
    int line = 0;
    *out = NULL;
    *n = 0;
    for (char *p = text; p < text + len;) {
        char *end = memchr(p, '\n', (size_t)(text + len - p));
        char *next = end ? end + 1 : text + len;
        if (!end)
            end = text + len;
        line++;
        if (end > p && end[-1] == '\r') /* a CRLF file */
            end--;
        *end = '\0';
        if (memchr(p, '\0', (size_t)(end - p)))
            return fail(err, line, "a NUL byte in the line");
        if (*p && *p != '#') {
            char *f[5];
            if (*n == cap) {
                cap = cap ? cap * 2 : 16;
                struct entry *grown = realloc(*out, cap * sizeof(*grown));
                if (!grown)
                    return -ENOMEM;
                *out = grown;
            }
            int rc = parse_entry(f, split_fields(p, f, 4), line, &(*out)[*n], err);
            if (rc < 0)
                return rc;
            (*n)++;
        }
        p = next;
    }
    return 0;
}

static int cmp_name(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

static int cmp_entry(const void *x, const void *y)
{
    const struct entry *a = x, *b = y;
    int c = cmp_name(a->name, a->name_len, b->name, b->name_len);
    return c ? c : (a->line > b->line) - (a->line < b->line);
}

/* The lines of one user, e[0..k) in line order, must agree: one password,
 * and either one line without a queue pattern or only lines with one.
 * Returns the line of the first disagreement (0: none), message in err. */
static int check_user(const struct entry *e, size_t k, struct auth_error *err)
{
    for (size_t i = 1; i < k; i++) {
        if (!e[0].glob || !e[i].glob) {
            fail(err, e[i].line,
                 "user '%.64s' is on line %d already: a user without a queue pattern has one line, "
                 "a user with queue patterns one line per pattern",
                 e[0].name, e[0].line);
            return e[i].line;
        }
        if (e[i].pass_len != e[0].pass_len || memcmp(e[i].pass, e[0].pass, e[0].pass_len) != 0) {
            fail(err, e[i].line, "user '%.64s' has another password on line %d", e[0].name, e[0].line);
            return e[i].line;
        }
    }
    return 0;
}

/* Merges the sorted entries into t's users and rules (arrays t owns; the
 * strings stay in t->text). Reports the disagreement with the lowest line. */
static int build(struct auth_table *t, const struct entry *e, size_t n, struct auth_error *err)
{
    size_t nrules = 0;
    int worst = 0;
    struct auth_error one;
    t->user = calloc(n ? n : 1, sizeof(*t->user));
    t->rule = calloc(n ? n : 1, sizeof(*t->rule));
    if (!t->user || !t->rule)
        return -ENOMEM;
    for (size_t i = 0, k; i < n; i += k) {
        for (k = 1; i + k < n && cmp_name(e[i].name, e[i].name_len, e[i + k].name, e[i + k].name_len) == 0; k++)
            ;
        int bad = check_user(e + i, k, &one);
        if (bad && (!worst || bad < worst)) {
            worst = bad;
            *err = one;
        }
        struct auth_user *u = &t->user[t->n++];
        *u = (struct auth_user){.name = e[i].name,
                                .name_len = e[i].name_len,
                                .pass = e[i].pass,
                                .pass_len = e[i].pass_len,
                                .rules = t->rule + nrules,
                                .line = e[i].line};
        for (size_t j = i; j < i + k && e[i].glob; j++)
            t->rule[nrules++] = (struct auth_rule){.glob = e[j].glob, .perm = e[j].perm, .line = e[j].line};
        u->nrules = (size_t)(t->rule + nrules - u->rules);
    }
    return worst ? -EINVAL : 0;
}

int auth_parse(const char *text, size_t len, struct auth_table **out, struct auth_error *err)
{
    struct entry *e = NULL;
    size_t n = 0;
    struct auth_table *t = calloc(1, sizeof(*t));
    int rc = -ENOMEM;
    *out = NULL;
    *err = (struct auth_error){0};
    if (!t || !(t->text = malloc(len + 1)))
        goto out;
    memcpy(t->text, text, len);
    t->text[len] = '\0';
    if ((rc = parse_lines(t->text, len, &e, &n, err)) < 0)
        goto out;
    if (n)
        qsort(e, n, sizeof(*e), cmp_entry);
    if ((rc = build(t, e, n, err)) < 0)
        goto out;
    *out = t;
    t = NULL;
out:
    if (rc == -ENOMEM)
        snprintf(err->msg, sizeof(err->msg), "out of memory");
    free(e);
    auth_free(t);
    return rc;
}

void auth_free(struct auth_table *t)
{
    if (!t)
        return;
    free(t->user);
    free(t->rule);
    free(t->text);
    free(t);
}

size_t auth_count(const struct auth_table *t) { return t ? t->n : 0; }

const struct auth_user *auth_find(const struct auth_table *t, const char *name, size_t len)
{
    size_t lo = 0, hi = t ? t->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_name(t->user[mid].name, t->user[mid].name_len, name, len);
        if (c == 0)
            return &t->user[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int auth_token_split(const char *data, size_t len, struct auth_cred *out)
{
    const char *sp = memchr(data, ' ', len);
    if (!sp || sp == data || sp == data + len - 1 || has_byte(data, len, is_ctl))
        return -EINVAL;
    *out = (struct auth_cred){.user = data,
                              .user_len = (size_t)(sp - data),
                              .pass = sp + 1,
                              .pass_len = len - (size_t)(sp - data) - 1};
    return 0;
}

int auth_ct_equal(const void *secret, size_t slen, const void *given, size_t glen)
{
    const volatile unsigned char *s = slen ? secret : (const void *)"", *g = given;
    volatile unsigned char acc = 0;
    for (size_t i = 0; i < glen; i++) {
        size_t inside = (size_t)0 - (size_t)(i < slen); /* all ones while i is inside the secret */
        acc |= (unsigned char)(s[i & inside] ^ g[i]);
    }
    return (acc | (slen != glen)) == 0;
}

const struct auth_user *auth_login(const struct auth_table *t, const struct auth_cred *cred)
{
    static const char nobody[] = "no such user: the compare is made all the same";
    const struct auth_user *u = auth_find(t, cred->user, cred->user_len);
    int same = u ? auth_ct_equal(u->pass, u->pass_len, cred->pass, cred->pass_len)
                 : auth_ct_equal(nobody, sizeof(nobody) - 1, cred->pass, cred->pass_len);
    return u && same ? u : NULL;
}

int auth_may(const struct auth_user *u, const char *name, size_t len, unsigned perm)
{
    char q[AUTH_NAME_MAX + 1];
    unsigned have = 0;
    if (u->nrules == 0)
        return 1;
    if (len > AUTH_NAME_MAX || memchr(name, '\0', len))
        return 0;
    memcpy(q, name, len);
    q[len] = '\0';
    for (size_t i = 0; i < u->nrules && (have & perm) != perm; i++)
        if ((u->rules[i].perm & ~have) && glob_match(u->rules[i].glob, q))
            have |= u->rules[i].perm;
    return (have & perm) == perm;
}

int auth_same_password(const struct auth_user *a, const struct auth_user *b)
{
    return auth_ct_equal(a->pass, a->pass_len, b->pass, b->pass_len);
}
