/* cell/pathmap.c: a chained hash map keyed by path (see pathmap.h). */
#include "cell/pathmap.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

struct pm_node *pm_get(const struct pathmap *m, const char *key, size_t len)
{
    if (m->nb == 0)
        return NULL;
    uint64_t h = XXH3_64bits(key, len);
    for (struct pm_node *n = m->b[h & (m->nb - 1)]; n; n = n->next)
        if (n->hash == h && n->len == len && memcmp(n->key, key, len) == 0)
            return n;
    return NULL;
}

/* Doubles the buckets (or makes the first 64). Returns 0 or -1. */
static int pm_grow(struct pathmap *m)
{
    size_t nb = m->nb ? m->nb * 2 : 64;
    struct pm_node **b = calloc(nb, sizeof(*b));
    if (!b)
        return -1;
    for (size_t i = 0; i < m->nb; i++) {
        struct pm_node *n = m->b[i];
        while (n) {
            struct pm_node *next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
            n = next;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

struct pm_node *pm_put(struct pathmap *m, const char *key, size_t len, int *made)
{
    struct pm_node *n = pm_get(m, key, len);
    *made = 0;
    if (n)
        return n;
    if (m->count >= m->nb && pm_grow(m) < 0)
        return NULL;
    n = malloc(sizeof(*n) + len + 1);
    if (!n)
        return NULL;
    n->hash = XXH3_64bits(key, len);
    n->val = NULL;
    n->len = len;
    memcpy(n->key, key, len);
    n->key[len] = '\0';
    n->next = m->b[n->hash & (m->nb - 1)];
    m->b[n->hash & (m->nb - 1)] = n;
    m->count++;
    *made = 1;
    return n;
}

void *pm_del(struct pathmap *m, const char *key, size_t len)
{
    if (m->nb == 0)
        return NULL;
    uint64_t h = XXH3_64bits(key, len);
    for (struct pm_node **pp = &m->b[h & (m->nb - 1)]; *pp; pp = &(*pp)->next) {
        struct pm_node *n = *pp;
        if (n->hash == h && n->len == len && memcmp(n->key, key, len) == 0) {
            void *val = n->val;
            *pp = n->next;
            free(n);
            m->count--;
            return val;
        }
    }
    return NULL;
}

void pm_del_under(struct pathmap *m, const char *dir, size_t dn, void (*free_val)(void *))
{
    for (size_t i = 0; i < m->nb; i++) {
        struct pm_node **pp = &m->b[i];
        while (*pp) {
            struct pm_node *n = *pp;
            if (pm_under(n->key, n->len, dir, dn)) {
                *pp = n->next;
                if (free_val)
                    free_val(n->val);
                free(n);
                m->count--;
            } else {
                pp = &n->next;
            }
        }
    }
}

struct pm_node **pm_list(const struct pathmap *m, int *ok)
{
    *ok = 1;
    if (m->count == 0)
        return NULL;
    struct pm_node **v = malloc(m->count * sizeof(*v));
    if (!v) {
        *ok = 0;
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < m->nb; i++)
        for (struct pm_node *n = m->b[i]; n; n = n->next)
            v[k++] = n;
    return v;
}

void pm_clear(struct pathmap *m, void (*free_val)(void *))
{
    for (size_t i = 0; i < m->nb; i++) {
        struct pm_node *n = m->b[i];
        while (n) {
            struct pm_node *next = n->next;
            if (free_val)
                free_val(n->val);
            free(n);
            n = next;
        }
    }
    free(m->b);
    m->b = NULL;
    m->nb = 0;
    m->count = 0;
}
