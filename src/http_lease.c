/* http_lease.c: the lease handles of the HTTP API (http_lease.h). A
 * handle is "<id>.<token>": the id finds the lease in a hash table, the
 * token (16 random bytes from OpenSSL, in hex) proves it was handed out, and
 * is compared in constant time. A lease holds its open item's conn_link in
 * a list of its own, which the queue layer empties when the item goes back
 * without us (its lease ran out, its queue went), so a handle never reaches
 * a freed open record. Leases live in memory only: a restart gives
 * their items back to their queues (docs/api.md). */
#include "http_lease.h"

#include "auth.h"
#include "queue/queue.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_leases_init(struct api_leases *t)
{
    memset(t, 0, sizeof(*t));
    t->next_id = 1;
    list_init(&t->all);
}

static int gone(const struct api_lease *l) { return list_empty(&l->held); }

static size_t slot(const struct api_leases *t, uint64_t id)
{
    return (size_t)((id * UINT64_C(0x9E3779B97F4A7C15)) >> 17) & (t->nbucket - 1);
}

/* Takes l out of its bucket and the list, and frees it. */
static void forget(struct api_leases *t, struct api_lease *l)
{
    struct api_lease **p = &t->bucket[slot(t, l->id)];
    while (*p != l)
        p = &(*p)->next_in_bucket;
    *p = l->next_in_bucket;
    list_remove(&l->link);
    list_remove(&l->held); /* o, if it lives, no longer points here */
    free(l);
    t->n--;
}

void api_leases_free(struct api_leases *t)
{
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &t->all) {
        struct api_lease *l = list_entry(pos, struct api_lease, link);
        struct qopen *o = gone(l) ? NULL : l->o;
        forget(t, l);
        if (o)
            queue_abort(o);
    }
    free(t->bucket);
    t->bucket = NULL;
    t->nbucket = 0;
}

/* Doubles the buckets (or makes the first ones). */
static int grow(struct api_leases *t)
{
    size_t nb = t->nbucket ? t->nbucket * 2 : 64;
    struct api_lease **b = calloc(nb, sizeof(*b));
    if (!b)
        return -ENOMEM;
    struct api_leases old = *t;
    t->bucket = b;
    t->nbucket = nb;
    for (size_t i = 0; i < old.nbucket; i++)
        for (struct api_lease *l = old.bucket[i], *next; l; l = next) {
            next = l->next_in_bucket;
            size_t s = slot(t, l->id);
            l->next_in_bucket = b[s];
            b[s] = l;
        }
    free(old.bucket);
    return 0;
}

int api_lease_add(struct api_leases *t, struct qopen *o, size_t max, char *out)
{
    if (t->n >= max) { /* full: the leases whose items went back go first */
        struct list *pos, *tmp;
        list_for_each_safe(pos, tmp, &t->all) {
            struct api_lease *l = list_entry(pos, struct api_lease, link);
            if (gone(l))
                forget(t, l);
        }
        if (t->n >= max)
            return -ENOSPC;
    }
    if (t->n >= t->nbucket && grow(t) < 0)
        return -ENOMEM;
    struct api_lease *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    if (RAND_bytes(l->token, sizeof(l->token)) != 1) {
        free(l);
        return -EIO;
    }
    l->id = t->next_id++;
    l->o = o;
    list_init(&l->held);
    list_push_back(&l->held, &o->conn_link);
    size_t s = slot(t, l->id);
    l->next_in_bucket = t->bucket[s];
    t->bucket[s] = l;
    list_push_back(&t->all, &l->link);
    t->n++;
    int k = snprintf(out, LEASE_HANDLE_MAX, "%" PRIu64 ".", l->id);
    for (size_t i = 0; i < sizeof(l->token); i++)
        k += snprintf(out + k, LEASE_HANDLE_MAX - (size_t)k, "%02x", l->token[i]);
    return 0;
}

static int hexval(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }

struct api_lease *api_lease_find(struct api_leases *t, const char *p, size_t n)
{
    const char *dot = memchr(p, '.', n);
    uint64_t id = 0;
    unsigned char token[LEASE_TOKEN_BYTES];
    if (!dot || dot == p || dot - p > 20 || n - (size_t)(dot - p) - 1 != 2 * sizeof(token) || !t->nbucket)
        return NULL;
    for (const char *c = p; c < dot; c++) {
        if (*c < '0' || *c > '9' || id > (UINT64_MAX - 9) / 10)
            return NULL;
        id = id * 10 + (uint64_t)(*c - '0');
    }
    for (size_t i = 0; i < sizeof(token); i++) {
        int hi = hexval(dot[1 + 2 * i]), lo = hexval(dot[2 + 2 * i]);
        if (hi < 0 || lo < 0)
            return NULL;
        token[i] = (unsigned char)(hi << 4 | lo);
    }
    struct api_lease *l = t->bucket[slot(t, id)];
    while (l && l->id != id)
        l = l->next_in_bucket;
    if (!l || !auth_ct_equal(l->token, sizeof(l->token), token, sizeof(token)))
        return NULL;
    if (gone(l)) { /* its item is back in its queue */
        forget(t, l);
        return NULL;
    }
    return l;
}

void api_lease_drop(struct api_leases *t, struct api_lease *l) { forget(t, l); }
