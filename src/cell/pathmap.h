/* cell/pathmap.h: a hash map keyed by path (bytes, not NUL-terminated on
 * input; kept NUL-terminated), for the applier's set of changed paths and
 * the committed state's entries (cell/ops.c, cell/state.c). Internal to
 * src/cell/. Single-threaded. */
#ifndef DARNER_CELL_PATHMAP_H
#define DARNER_CELL_PATHMAP_H

#include <stddef.h>
#include <stdint.h>

struct pm_node {
    struct pm_node *next; /* the bucket's chain */
    uint64_t hash;
    void *val; /* the caller's; the map never frees it */
    size_t len;
    char key[]; /* len bytes and a NUL */
};

struct pathmap {
    struct pm_node **b;
    size_t nb; /* buckets: 0 or a power of two */
    size_t count;
};

/* The node of key, or NULL. */
struct pm_node *pm_get(const struct pathmap *m, const char *key, size_t len);
/* The node of key, made (val NULL) if absent; *made says which. NULL: out
 * of memory. The node is the map's until pm_del. */
struct pm_node *pm_put(struct pathmap *m, const char *key, size_t len, int *made);
/* Removes key's node (its val is returned, for the caller to free), or NULL. */
void *pm_del(struct pathmap *m, const char *key, size_t len);
/* Removes key's node and every node under it (pm_under), calling free_val
 * (when not NULL) on their vals. */
void pm_del_under(struct pathmap *m, const char *dir, size_t dn, void (*free_val)(void *));
/* The nodes in an array (malloc'd, count entries, owned by the caller; the
 * nodes stay the map's), or NULL when empty or out of memory (*ok 0). */
struct pm_node **pm_list(const struct pathmap *m, int *ok);
/* Frees every node (not the vals: free_val, when not NULL, is called on each). */
void pm_clear(struct pathmap *m, void (*free_val)(void *));

/* Whether p (n bytes) is dir itself or under it ("a/b" is under "a", "ab"
 * is not). */
static inline int pm_under(const char *p, size_t n, const char *dir, size_t dn)
{
    if (n < dn)
        return 0;
    for (size_t i = 0; i < dn; i++)
        if (p[i] != dir[i])
            return 0;
    return n == dn || p[dn] == '/';
}

#endif
