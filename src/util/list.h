/* util/list.h: intrusive doubly linked list (circular, with a head node). */
#ifndef DARNER_UTIL_LIST_H
#define DARNER_UTIL_LIST_H

#include <stddef.h>

struct list {
    struct list *prev, *next;
};

#define LIST_INIT(name)                                                                                                \
    {                                                                                                                  \
        &(name), &(name)                                                                                               \
    }
#define list_entry(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define list_for_each_safe(pos, tmp, head)                                                                             \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); (pos) = (tmp), (tmp) = (pos)->next)

static inline void list_init(struct list *l) { l->prev = l->next = l; }
static inline int list_empty(const struct list *l) { return l->next == l; }
static inline int list_linked(const struct list *l) { return l->next != NULL && l->next != l; }

static inline void list_insert_before(struct list *at, struct list *n)
{
    n->prev = at->prev;
    n->next = at;
    at->prev->next = n;
    at->prev = n;
}

static inline void list_push_back(struct list *head, struct list *n) { list_insert_before(head, n); }
static inline void list_push_front(struct list *head, struct list *n) { list_insert_before(head->next, n); }

/* Unlinks n and leaves it self-linked, so unlinking twice is harmless. */
static inline void list_remove(struct list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

static inline struct list *list_first(const struct list *head) { return list_empty(head) ? NULL : head->next; }

#endif
