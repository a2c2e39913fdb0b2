/* conffile.c: reading the config file with libinih, checking every line,
 * and resolving each section's queue settings. */
#include "conffile.h"
#include "util/compat.h"
#include "util/errstr.h"

#include "util/glob.h"
#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/parse.h"
#include "util/buf.h"

enum sec_kind { SEC_NONE, SEC_SERVER, SEC_QUEUE_ALL, SEC_QUEUE, SEC_GLOB, SEC_ALIAS };

struct section {
    enum sec_kind kind;
    char *name;  /* queue name, glob or alias name; NULL for [server] and [queue] */
    char *title; /* as dump_config names it: [queue "jobs.*"] */
    int line;
    size_t literal;   /* a glob's literal characters */
    struct qconf own; /* values set in this section (own.line[i] > 0) */
    struct qconf resolved;
    struct conf_alias alias;
    int has_dest;
};

struct conffile {
    char *path;
    struct section *sec;
    size_t nsec, capsec;
    struct qconf base;    /* defaults, then [queue] */
    size_t naliases;      /* (every set and get asks whether its name is one) */
    struct config server; /* the server settings as the defaults and this file give them */
};

/* ---- the queue settings, in table order ---- */

size_t conffile_nqset(void)
{
    size_t n = 0;
    for (size_t i = 0; i < NSETTINGS; i++)
        n += SETTINGS[i].scope == SCOPE_QUEUE;
    return n;
}

const struct setting *conffile_qset(size_t n)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (SETTINGS[i].scope == SCOPE_QUEUE && n-- == 0)
            return &SETTINGS[i];
    return NULL;
}

static int qset_index(const struct setting *s)
{
    int n = 0;
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (&SETTINGS[i] == s)
            return n;
        n += SETTINGS[i].scope == SCOPE_QUEUE;
    }
    return -1;
}

/* Copies the values set in from over to. */
static void overlay(struct qconf *to, const struct qconf *from)
{
    size_t n = conffile_nqset();
    for (size_t i = 0; i < n; i++) {
        if (!from->line[i])
            continue;
        const struct setting *s = conffile_qset(i);
        char text[300];
        const char *why;
        setting_format(s, &from->v, text, sizeof(text));
        setting_parse(s, text, &to->v, &why);
        to->line[i] = from->line[i];
    }
}

/* ---- parsing ---- */

struct load {
    struct conffile *f;
    struct config *srv;
    const char *path;
    int line;             /* of the line inih is on (counted by read_line) */
    int server_lines[64]; /* line of each [server] key set, by table index */
    struct section *cur;
    enum sec_kind cur_kind;
    int key_seen; /* a key line since the last header */
    struct conf_error *err;
    int failed;
    void (*warn)(void *ctx, const char *line);
    void *warn_ctx;
    FILE *in;
};

static void fail(struct load *l, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void fail(struct load *l, const char *fmt, ...)
{
    if (l->failed++)
        return; /* the first problem is the one reported */
    int n = snprintf(l->err->msg, sizeof(l->err->msg), "%s:%d: ", l->path, l->line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->err->msg + n, sizeof(l->err->msg) - (size_t)n, fmt, ap);
    va_end(ap);
}

static int is_glob(const char *name) { return strpbrk(name, "*?[") != NULL; }

static size_t literal_chars(const char *glob)
{
    size_t n = 0;
    for (const char *p = glob; *p; p++) {
        if (*p == '[') { /* a bracket expression counts for nothing */
            const char *close = strchr(p + 1, ']');
            if (close) {
                p = close;
                continue;
            }
        }
        if (*p != '*' && *p != '?')
            n++;
    }
    return n;
}

static int valid_queue_name(const char *name)
{
    struct proto_key k;
    const char *e;
    size_t n = strlen(name);
    return n && proto_parse_key(name, n, 0, &k, &e) == 0 && !k.opts && k.name.len == n;
}

/* Splits `queue "x"` into its word and its quoted name (NULL if none).
 * Returns -1 when the header is malformed. */
static int split_header(char *title, char **word, char **name)
{
    char *q = strchr(title, '"');
    *word = title;
    *name = NULL;
    if (!q)
        return strchr(title, ' ') ? -1 : 0;
    char *end = strrchr(title, '"');
    if (end == q || end[1] != '\0')
        return -1;
    char *w = q;
    while (w > title && w[-1] == ' ')
        w--;
    if (w == q) /* no space between the word and the quote */
        return -1;
    *w = '\0';
    *end = '\0';
    *name = q + 1;
    return 0;
}

static struct section *find_section(struct conffile *f, enum sec_kind kind, const char *name)
{
    for (size_t i = 0; i < f->nsec; i++) {
        struct section *s = &f->sec[i];
        if (s->kind == kind && ((!s->name && !name) || (s->name && name && strcmp(s->name, name) == 0)))
            return s;
    }
    return NULL;
}

static struct section *new_section(struct load *l, enum sec_kind kind, const char *name, const char *title)
{
    struct conffile *f = l->f;
    if (f->nsec == f->capsec) {
        size_t cap = f->capsec ? f->capsec * 2 : 8;
        struct section *p = realloc(f->sec, cap * sizeof(*p));
        if (!p)
            return NULL;
        f->sec = p;
        f->capsec = cap;
    }
    struct section *s = &f->sec[f->nsec];
    *s = (struct section){.kind = kind, .line = l->line};
    s->name = name ? strdup(name) : NULL;
    s->title = strdup(title);
    if ((name && !s->name) || !s->title) {
        free(s->name);
        free(s->title);
        return NULL;
    }
    if (kind == SEC_GLOB)
        s->literal = literal_chars(name);
    f->naliases += kind == SEC_ALIAS;
    s->alias.name = s->name;
    s->alias.name_len = name ? strlen(name) : 0;
    f->nsec++;
    return s;
}

/* Starts the section headed [title]. */
static void begin_section(struct load *l, const char *title)
{
    char buf[512], *word, *name, shown[600];
    snprintf(buf, sizeof(buf), "%s", title);
    if (split_header(buf, &word, &name) < 0) {
        fail(l, "bad section header [%s]: use [server], [queue], [queue \"NAME\"] or [alias \"NAME\"]", title);
        return;
    }
    enum sec_kind kind = SEC_NONE;
    if (strcmp(word, "server") == 0 && !name)
        kind = SEC_SERVER;
    else if (strcmp(word, "queue") == 0)
        kind = !name ? SEC_QUEUE_ALL : is_glob(name) ? SEC_GLOB : SEC_QUEUE;
    else if (strcmp(word, "alias") == 0 && name)
        kind = SEC_ALIAS;
    if (kind == SEC_NONE) {
        fail(l, "unknown section [%s]: use [server], [queue], [queue \"NAME\"] or [alias \"NAME\"]", title);
        return;
    }
    if ((kind == SEC_QUEUE || kind == SEC_ALIAS) && !valid_queue_name(name)) {
        fail(l, "[%s]: '%s' is not a valid queue name (1 to 250 bytes, no '/', space or control character)", title,
             name);
        return;
    }
    if (kind == SEC_GLOB && (strlen(name) > PROTO_MAX_NAME || strpbrk(name, "/ "))) {
        fail(l, "[%s]: a queue pattern is at most 250 bytes, with no '/' or space", title);
        return;
    }
    if (name)
        snprintf(shown, sizeof(shown), "[%s \"%s\"]", word, name);
    else
        snprintf(shown, sizeof(shown), "[%s]", word);
    struct section *dup = find_section(l->f, kind, name);
    if (kind == SEC_ALIAS && !dup)
        dup = find_section(l->f, SEC_QUEUE, name);
    if (kind == SEC_QUEUE && !dup)
        dup = find_section(l->f, SEC_ALIAS, name);
    if (dup) {
        fail(l, "%s: %s is already defined at line %d", shown, dup->kind == kind ? "this section" : "that name",
             dup->line);
        return;
    }
    if (!(l->cur = new_section(l, kind, name, shown)))
        fail(l, "out of memory");
    l->cur_kind = kind;
}

static int parse_dest(struct load *l, struct section *s, const char *value)
{
    char *copy = strdup(value), *save = NULL;
    if (!copy)
        return -ENOMEM;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ' || *tok == '\t')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && (end[-1] == ' ' || end[-1] == '\t'))
            *--end = '\0';
        if (!valid_queue_name(tok) || find_section(l->f, SEC_ALIAS, tok)) {
            fail(l, "destination_queues: '%s' is not a queue name", tok);
            break;
        }
        char **d = realloc(s->alias.dest, (s->alias.ndest + 1) * sizeof(*d));
        if (!d || !(d[s->alias.ndest] = strdup(tok))) {
            if (d)
                s->alias.dest = d;
            fail(l, "out of memory");
            break;
        }
        s->alias.dest = d;
        s->alias.ndest++;
    }
    free(copy);
    if (!l->failed && s->alias.ndest == 0)
        fail(l, "destination_queues: name at least one queue");
    return 0;
}

static void queue_key(struct load *l, const char *key, const char *value)
{
    struct section *s = l->cur;
    const struct setting *st = setting_find(SCOPE_QUEUE, key);
    if (!st) {
        for (int i = 0; SETTINGS_IGNORED[i]; i++) {
            if (strcmp(key, SETTINGS_IGNORED[i]) == 0) {
                char msg[600];
                snprintf(msg, sizeof(msg),
                         "%s:%d: %s means nothing in darner (its journal is not kept in memory): ignored", l->path,
                         l->line, key);
                if (l->warn)
                    l->warn(l->warn_ctx, msg);
                return;
            }
        }
        fail(l, "unknown key '%s' in %s", key, s ? s->title : "[queue]");
        return;
    }
    int idx = qset_index(st);
    const char *why;
    if (s->own.line[idx]) {
        fail(l, "%s is already set in this section, at line %d", key, s->own.line[idx]);
        return;
    }
    if (setting_parse(st, value, &s->own.v, &why) < 0) {
        fail(l, "%s %s, not '%s'", key, why, value);
        return;
    }
    s->own.line[idx] = l->line;
}

static int on_value(void *user, const char *section, const char *key, const char *value)
{
    struct load *l = user;
    (void)section; /* ours is l->cur, from read_line */
    if (l->failed)
        return 1;
    if (l->cur_kind == SEC_NONE) {
        fail(l, "'%s' is outside any section: put it under [server] or [queue]", key);
        return 0;
    }
    switch (l->cur_kind) {
    case SEC_SERVER: {
        const struct setting *st = setting_find(SCOPE_SERVER, key);
        const char *why;
        if (!st) {
            fail(l, "unknown key '%s' in [server]", key);
            return 0;
        }
        size_t idx = (size_t)(st - SETTINGS);
        if (idx < 64 && l->server_lines[idx]) {
            fail(l, "%s is already set in [server], at line %d", key, l->server_lines[idx]);
            return 0;
        }
        if (setting_parse(st, value, l->srv, &why) < 0) {
            fail(l, "%s %s, not '%s'", key, why, value);
            return 0;
        }
        if (idx < 64)
            l->server_lines[idx] = l->line;
        return 1;
    }
    case SEC_ALIAS:
        if (strcmp(key, "destination_queues") != 0) {
            fail(l, "unknown key '%s' in %s: an alias takes destination_queues only", key, l->cur->title);
            return 0;
        }
        if (l->cur->has_dest++) {
            fail(l, "destination_queues is already set in this section");
            return 0;
        }
        parse_dest(l, l->cur, value);
        return !l->failed;
    default:
        queue_key(l, key, value);
        return !l->failed;
    }
}

/* inih calls its handler for keys only: section headers are taken here,
 * as each line is read, where the line number is known. A header is a line
 * whose first character other than a space is '[', as inih reads it (an
 * indented line right after a key continues that key's value instead). */
static char *read_line(char *str, int num, void *stream)
{
    struct load *l = stream;
    char *r = fgets(str, num, l->in);
    if (!r)
        return r;
    l->line++;
    if (l->line == 1 && (unsigned char)str[0] == 0xEF && (unsigned char)str[1] == 0xBB && (unsigned char)str[2] == 0xBF)
        memmove(str, str + 3, strlen(str + 3) + 1); /* a UTF-8 byte-order mark, as inih skips it */
    size_t n = strlen(str);
    if (n == (size_t)num - 1 && str[n - 1] != '\n' && !feof(l->in)) {
        /* inih would take the rest as lines of their own */
        fail(l, "line longer than %d characters (a longer queue name is matched with a [queue \"PATTERN\"])", num - 2);
        return NULL;
    }
    char *p = str;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '[' && (p == str || !l->key_seen) && !l->failed) {
        char *close = strchr(p, ']');
        if (close) {
            char title[512];
            snprintf(title, sizeof(title), "%.*s", (int)(close - p - 1), p + 1);
            begin_section(l, title);
            l->key_seen = 0;
        }
    } else if (*p && *p != ';' && *p != '#' && *p != '\n' && *p != '\r') {
        l->key_seen = 1;
    }
    return r;
}

/* ---- resolution ---- */

static void resolve(struct conffile *f)
{
    qsettings_defaults(&f->base.v);
    memset(f->base.line, 0, sizeof(f->base.line));
    f->base.section = "[queue]";
    struct section *all = find_section(f, SEC_QUEUE_ALL, NULL);
    if (all)
        overlay(&f->base, &all->own);
    /* Patterns and plain names first: a fanout child's own section starts
     * from its parent's settings, which may come from either. */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < f->nsec; i++) {
            struct section *s = &f->sec[i];
            if (s->kind != SEC_QUEUE && s->kind != SEC_GLOB)
                continue;
            size_t plen = s->kind == SEC_QUEUE ? proto_fanout_parent_len(s->name, strlen(s->name)) : 0;
            if ((plen != 0) != (pass == 1))
                continue;
            s->resolved = plen ? *conffile_queue(f, s->name, plen) : f->base;
            s->resolved.section = s->title;
            overlay(&s->resolved, &s->own);
        }
    }
}

const struct qconf *conffile_queue(const struct conffile *f, const char *name, size_t len)
{
    char buf[PROTO_MAX_NAME + 1];
    const struct section *best = NULL;
    if (len > PROTO_MAX_NAME)
        return &f->base;
    memcpy(buf, name, len);
    buf[len] = '\0';
    for (size_t i = 0; i < f->nsec; i++) {
        const struct section *s = &f->sec[i];
        if (s->kind == SEC_QUEUE && strcmp(s->name, buf) == 0)
            return &s->resolved;
        if (s->kind == SEC_GLOB && glob_match(s->name, buf) && (!best || s->literal >= best->literal))
            best = s;
    }
    if (best)
        return &best->resolved;
    /* a fanout child without a section of its own: its parent's settings */
    size_t plen = proto_fanout_parent_len(buf, len);
    return plen ? conffile_queue(f, buf, plen) : &f->base;
}

const struct conf_alias *conffile_alias(const struct conffile *f, const char *name, size_t len)
{
    if (!f->naliases)
        return NULL;
    for (size_t i = 0; i < f->nsec; i++) {
        const struct section *s = &f->sec[i];
        if (s->kind == SEC_ALIAS && s->alias.name_len == len && memcmp(s->name, name, len) == 0)
            return &s->alias;
    }
    return NULL;
}

const char *conffile_path(const struct conffile *f) { return f->path ? f->path : ""; }

const struct config *conffile_server(const struct conffile *f) { return &f->server; }

uint64_t conffile_min_fsync_ms(const struct conffile *f)
{
    uint64_t min = f->base.v.fsync.policy == FSYNC_PERIODIC ? f->base.v.fsync.ms : 0;
    for (size_t i = 0; i < f->nsec; i++) {
        const struct section *s = &f->sec[i];
        if ((s->kind != SEC_QUEUE && s->kind != SEC_GLOB) || s->resolved.v.fsync.policy != FSYNC_PERIODIC)
            continue;
        if (!min || s->resolved.v.fsync.ms < min)
            min = s->resolved.v.fsync.ms;
    }
    return min;
}

void conffile_dump(const struct conffile *f, const struct qconf *qc, struct buf *out)
{
    size_t n = conffile_nqset();
    for (size_t i = 0; i < n; i++) {
        const struct setting *s = conffile_qset(i);
        char text[300];
        setting_format(s, &qc->v, text, sizeof(text));
        if (qc->line[i])
            buf_printf(out, "  %s=%s (%s:%d)\r\n", s->key, text, conffile_path(f), qc->line[i]);
        else
            buf_printf(out, "  %s=%s (default)\r\n", s->key, text);
    }
}

void conffile_free(struct conffile *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nsec; i++) {
        for (size_t k = 0; k < f->sec[i].alias.ndest; k++)
            free(f->sec[i].alias.dest[k]);
        free(f->sec[i].alias.dest);
        free(f->sec[i].name);
        free(f->sec[i].title);
    }
    free(f->sec);
    free(f->path);
    free(f);
}

int conffile_load(const char *path, struct config *srv, void (*warn)(void *ctx, const char *line), void *warn_ctx,
                  struct conffile **out, struct conf_error *err)
{
    struct conffile *f = calloc(1, sizeof(*f));
    if (!f) {
        snprintf(err->msg, sizeof(err->msg), "out of memory");
        return -ENOMEM;
    }
    /* [server] values go to a copy, given to srv only when the whole file is good */
    struct config scratch;
    if (srv)
        scratch = *srv;
    else
        config_defaults(&scratch);
    struct load l = {.f = f, .srv = &scratch, .path = path, .err = err, .warn = warn, .warn_ctx = warn_ctx};
    int rc = 0;
    if (path) {
        if (!(f->path = strdup(path)) || !(l.in = fopen(path, "r"))) {
            rc = f->path ? -errno : -ENOMEM;
            snprintf(err->msg, sizeof(err->msg), "%s: %s", path, errstr(rc));
            conffile_free(f);
            return rc;
        }
        int bad = ini_parse_stream(read_line, &l, on_value, &l);
        fclose(l.in);
        if (!l.failed && bad > 0) {
            l.line = bad;
            fail(&l, "not a `key = value` line, a [section] header or a comment (lines are at most %d characters)",
                 INI_MAX_LINE - 1);
        } else if (!l.failed && bad < 0) {
            fail(&l, "out of memory");
        }
        if (l.failed) {
            conffile_free(f);
            return -EINVAL;
        }
    }
    /* expired items and dead letters must go to a queue: an alias would
     * take them nowhere */
    static const char *const to_queue[] = {"expire_to_queue", "dead_letter_queue"};
    for (size_t k = 0; k < sizeof(to_queue) / sizeof(to_queue[0]); k++) {
        const struct setting *set = setting_find(SCOPE_QUEUE, to_queue[k]);
        int eq = qset_index(set);
        for (size_t i = 0; i < f->nsec && eq >= 0; i++) {
            const struct section *s = &f->sec[i];
            const char *to = (const char *)&s->own.v + set->off;
            if (s->own.line[eq] && to[0] && conffile_alias(f, to, strlen(to))) {
                l.line = s->own.line[eq];
                fail(&l, "%s names the alias '%s': name a queue", to_queue[k], to);
                conffile_free(f);
                return -EINVAL;
            }
        }
    }
    resolve(f);
    f->server = scratch;
    if (srv)
        *srv = scratch;
    *out = f;
    return 0;
}
