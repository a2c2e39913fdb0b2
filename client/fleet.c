/* fleet.c: health, backoff and choice of server. Sets pick a random healthy
 * server, so writers spread evenly without coordinating; gets rotate, so one
 * reader drains every server in turn. */
#include "fleet.h"

#include <errno.h>
#include <stdlib.h>

int dn_fleet_init(struct dn_fleet *f, struct dn_addr *addrs, size_t n, uint64_t seed)
{
    f->servers = calloc(n, sizeof(*f->servers));
    if (!f->servers) {
        free(addrs);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        f->servers[i].addr = addrs[i];
        dn_conn_init(&f->servers[i].conn);
    }
    free(addrs);
    f->n = n;
    f->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
    f->backoff_min_ms = 50;
    f->backoff_max_ms = 2000;
    /* Start the rotation at a random server, so one-shot processes (one get
     * each) spread over the fleet instead of all asking the first. */
    f->next_get = (size_t)dn_fleet_random(f, n);
    return 0;
}

void dn_server_free_extra(struct dn_server *s)
{
    free(s->members);
    s->members = NULL;
    s->nmembers = s->member = 0;
    free(s->depth_queue);
    s->depth_queue = NULL;
}

void dn_fleet_free(struct dn_fleet *f)
{
    for (size_t i = 0; i < f->n; i++) {
        dn_conn_close(&f->servers[i].conn);
        dn_server_free_extra(&f->servers[i]);
    }
    free(f->servers);
    f->servers = NULL;
    f->n = 0;
}

/* splitmix64: small, fast, good enough to spread load; per client, so no
 * shared state between threads. */
static uint64_t next64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t dn_fleet_random(struct dn_fleet *f, uint64_t bound)
{
    /* Rejection sampling removes the modulo bias. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do
        x = next64(&f->rng);
    while (x >= limit);
    return x % bound;
}

int dn_fleet_healthy(const struct dn_fleet *f, size_t i, int64_t now)
{
    const struct dn_server *s = &f->servers[i];
    return s->conn.fd >= 0 || s->failures == 0 || now >= s->retry_at;
}

void dn_fleet_failed(struct dn_fleet *f, size_t i, int64_t now)
{
    struct dn_server *s = &f->servers[i];
    if (s->failures < 30)
        s->failures++;
    int64_t delay = f->backoff_min_ms;
    for (int k = 1; k < s->failures && delay < f->backoff_max_ms; k++)
        delay *= 2;
    if (delay > f->backoff_max_ms)
        delay = f->backoff_max_ms;
    if (delay > 0)
        delay += (int64_t)dn_fleet_random(f, (uint64_t)delay / 4 + 1);
    s->retry_at = now + delay;
}

void dn_fleet_succeeded(struct dn_fleet *f, size_t i)
{
    f->servers[i].failures = 0;
    f->servers[i].retry_at = 0;
}

size_t dn_fleet_pick_random(struct dn_fleet *f, const unsigned char *skip, int64_t now)
{
    size_t count = 0;
    for (size_t i = 0; i < f->n; i++)
        count += (!skip || !skip[i]) && dn_fleet_healthy(f, i, now);
    if (count == 0)
        return f->n;
    size_t k = (size_t)dn_fleet_random(f, count);
    for (size_t i = 0; i < f->n; i++) {
        if ((skip && skip[i]) || !dn_fleet_healthy(f, i, now))
            continue;
        if (k-- == 0)
            return i;
    }
    return f->n; /* not reached */
}

size_t dn_fleet_pick_next(struct dn_fleet *f, const unsigned char *skip, int64_t now)
{
    for (size_t k = 0; k < f->n; k++) {
        size_t i = (f->next_set + k) % f->n;
        if ((skip && skip[i]) || !dn_fleet_healthy(f, i, now))
            continue;
        f->next_set = (i + 1) % f->n;
        return i;
    }
    return f->n;
}

size_t dn_fleet_rotate(struct dn_fleet *f)
{
    size_t i = f->next_get % f->n;
    f->next_get = (i + 1) % f->n;
    return i;
}

int64_t dn_fleet_next_retry(const struct dn_fleet *f, const unsigned char *skip)
{
    int64_t best = INT64_MAX;
    for (size_t i = 0; i < f->n; i++) {
        const struct dn_server *s = &f->servers[i];
        if ((skip && skip[i]) || s->conn.fd >= 0 || s->failures == 0)
            continue;
        if (s->retry_at < best)
            best = s->retry_at;
    }
    return best;
}
