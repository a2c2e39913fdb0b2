/* queue/fanout.c: fanout groups: the queues named "parent+child" of each
 * parent name, so a set into the parent finds its children. */
#include "queue/registry.h"

#include "proto/parse.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct fgroup *fgroup_find(struct registry *r, const char *name, size_t len)
{
    for (struct fgroup *g = r->fgroups; g; g = g->next)
        if (g->len == len && memcmp(g->name, name, len) == 0)
            return g;
    return NULL;
}

/* Puts a fanout child in its parent's group (made if needed). */
int registry_fanout_join(struct registry *r, struct queue *q)
{
    size_t plen = proto_fanout_parent_len(q->name, q->name_len);
    if (!plen)
        return 0;
    struct fgroup *g = fgroup_find(r, q->name, plen);
    if (!g) {
        if (!(g = calloc(1, sizeof(*g))) || !(g->name = malloc(plen))) {
            free(g);
            return -ENOMEM;
        }
        memcpy(g->name, q->name, plen);
        g->len = plen;
        list_init(&g->children);
        g->next = r->fgroups;
        r->fgroups = g;
    }
    list_push_back(&g->children, &q->fanout_link);
    return 0;
}

struct list *registry_children(struct registry *r, const char *name, size_t len)
{
    struct fgroup *g = r->fgroups ? fgroup_find(r, name, len) : NULL;
    return g && !list_empty(&g->children) ? &g->children : NULL;
}

void registry_fanout_free(struct registry *r)
{
    while (r->fgroups) {
        struct fgroup *g = r->fgroups;
        r->fgroups = g->next;
        free(g->name);
        free(g);
    }
}
