/* stats.c: darner_stats, the STAT lines of one server and the per-queue
 * figures found in them. */
#include "stats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct stat_line {
    char *name;
    char *value;
};

struct darner_stats {
    struct stat_line *lines;
    size_t n, cap;
    darner_queue_stats *queues;
    char **qnames; /* owned names the queues point to */
    size_t nqueues;
};

darner_stats *dn_stats_new(void) { return calloc(1, sizeof(darner_stats)); }

static char *dup_n(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

int dn_stats_add(darner_stats *s, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct stat_line *l = realloc(s->lines, cap * sizeof(*l));
        if (!l)
            return -ENOMEM;
        s->lines = l;
        s->cap = cap;
    }
    char *n = dup_n(name, nlen), *v = dup_n(value, vlen);
    if (!n || !v) {
        free(n);
        free(v);
        return -ENOMEM;
    }
    s->lines[s->n++] = (struct stat_line){n, v};
    return 0;
}

static uint64_t to_u64(const char *v)
{
    uint64_t x = 0;
    if (!v)
        return 0;
    for (; *v >= '0' && *v <= '9'; v++)
        x = x * 10 + (uint64_t)(*v - '0');
    return x;
}

static int is_figure(const char *n, const char *q, size_t qlen, const char *key, size_t klen)
{
    return strlen(n) == 6 + qlen + 1 + klen && memcmp(n, "queue_", 6) == 0 &&
           memcmp(n + 6, q, qlen) == 0 && n[6 + qlen] == '_' && memcmp(n + 7 + qlen, key, klen) == 0;
}

/* The value of "queue_<q>_<key>", or 0. Names alone can be ambiguous
 * ("queue_a_total_items" is total_items of "a" and items of "a_total"), but
 * the server writes a queue's seven lines together in a fixed order, so the
 * line at the figure's place next to the queue's logsize line (`at`,
 * offset `off`) is tried first; the whole list only when it does not
 * match. This also keeps thousands of queues fast. */
static uint64_t queue_figure(const darner_stats *s, size_t at, int off, const char *q, size_t qlen,
                             const char *key)
{
    size_t klen = strlen(key);
    if ((off >= 0 || at >= (size_t)-off) && at + (size_t)off < s->n &&
        is_figure(s->lines[at + (size_t)off].name, q, qlen, key, klen))
        return to_u64(s->lines[at + (size_t)off].value);
    for (size_t i = 0; i < s->n; i++)
        if (is_figure(s->lines[i].name, q, qlen, key, klen))
            return to_u64(s->lines[i].value);
    return 0;
}

int dn_stats_index_queues(darner_stats *s)
{
    static const char suffix[] = "_logsize";
    const size_t slen = sizeof(suffix) - 1;
    size_t count = 0;
    for (size_t i = 0; i < s->n; i++) {
        size_t len = strlen(s->lines[i].name);
        count += len > 6 + slen && memcmp(s->lines[i].name, "queue_", 6) == 0 &&
                 memcmp(s->lines[i].name + len - slen, suffix, slen) == 0;
    }
    s->queues = calloc(count ? count : 1, sizeof(*s->queues));
    s->qnames = calloc(count ? count : 1, sizeof(*s->qnames));
    if (!s->queues || !s->qnames)
        return -ENOMEM;
    for (size_t i = 0; i < s->n; i++) {
        const char *n = s->lines[i].name;
        size_t len = strlen(n);
        if (!(len > 6 + slen && memcmp(n, "queue_", 6) == 0 && memcmp(n + len - slen, suffix, slen) == 0))
            continue;
        size_t qlen = len - 6 - slen;
        char *q = dup_n(n + 6, qlen);
        if (!q)
            return -ENOMEM;
        s->qnames[s->nqueues] = q;
        s->queues[s->nqueues++] = (darner_queue_stats){
            .name = q,
            .items = queue_figure(s, i, -3, q, qlen, "items"),
            .bytes = queue_figure(s, i, -2, q, qlen, "bytes"),
            .total_items = queue_figure(s, i, -1, q, qlen, "total_items"),
            .logsize = to_u64(s->lines[i].value),
            .age_ms = queue_figure(s, i, 1, q, qlen, "age"),
            .waiters = queue_figure(s, i, 2, q, qlen, "waiters"),
            .open_transactions = queue_figure(s, i, 3, q, qlen, "open_transactions"),
        };
    }
    return 0;
}

size_t darner_stats_count(const darner_stats *s) { return s->n; }

const char *darner_stats_name(const darner_stats *s, size_t i) { return i < s->n ? s->lines[i].name : NULL; }

const char *darner_stats_value(const darner_stats *s, size_t i)
{
    return i < s->n ? s->lines[i].value : NULL;
}

const char *darner_stats_get(const darner_stats *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->lines[i].name, name) == 0)
            return s->lines[i].value;
    return NULL;
}

size_t darner_stats_queue_count(const darner_stats *s) { return s->nqueues; }

int darner_stats_queue(const darner_stats *s, size_t i, darner_queue_stats *out)
{
    if (i >= s->nqueues)
        return -ERANGE;
    *out = s->queues[i];
    return 0;
}

void darner_stats_free(darner_stats *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->lines[i].name);
        free(s->lines[i].value);
    }
    for (size_t i = 0; i < s->nqueues; i++)
        free(s->qnames[i]);
    free(s->lines);
    free(s->queues);
    free(s->qnames);
    free(s);
}
