/* fleet.h: the servers of one client, their health and which one serves the
 * next request. Pure: times are passed in, so the rules are unit-tested
 * without a network. */
#ifndef DARNER_CLIENT_FLEET_H
#define DARNER_CLIENT_FLEET_H

#include "addr.h"
#include "conn.h"

#include <stddef.h>
#include <stdint.h>

struct dn_server {
    struct dn_addr addr; /* the address in use: a cell's leader when known */
    /* A cell (its members answered `cluster` with MEMBER lines): every
     * member's memcache address; addr is one of them (members[member]).
     * NULL for a single server. */
    struct dn_addr *members;
    size_t nmembers, member;
    int probe; /* named by a CELL line but not reached yet: asked again */
    /* the last depth of a queue seen here (gets' power-of-two choices) */
    char *depth_queue;
    uint64_t depth;
    int64_t depth_at; /* monotonic ms; 0: none */
    struct dn_conn conn;
    uint64_t gen;     /* bumped on every new connection; ties open items to it */
    int failures;     /* consecutive failures, 0 when healthy */
    int64_t retry_at; /* monotonic ms before which the server is left alone */
};

struct dn_fleet {
    struct dn_server *servers;
    size_t n;
    size_t next_get; /* where the next get's rotation starts */
    uint64_t rng;
    int backoff_min_ms, backoff_max_ms;
    int cells;       /* some server is a cell: sets go round-robin, gets by depth */
    size_t next_set; /* where the next set's round looks first (cells) */
};

/* Takes ownership of addrs (n entries, malloc'd); seeds the random source.
 * Returns 0 or -ENOMEM (addrs is freed either way). */
int dn_fleet_init(struct dn_fleet *f, struct dn_addr *addrs, size_t n, uint64_t seed);

/* Closes every connection and frees the server table. */
void dn_fleet_free(struct dn_fleet *f);

/* Frees what server s holds beyond its connection (members, depth). */
void dn_server_free_extra(struct dn_server *s);

/* A uniformly distributed number below bound (bound > 0). */
uint64_t dn_fleet_random(struct dn_fleet *f, uint64_t bound);

/* 1 if server i is connected or its backoff has run out at now. */
int dn_fleet_healthy(const struct dn_fleet *f, size_t i, int64_t now);

/* Records a failure of server i at now: its backoff doubles from
 * backoff_min_ms up to backoff_max_ms, with up to 25% jitter on top. */
void dn_fleet_failed(struct dn_fleet *f, size_t i, int64_t now);

/* Records a success: the backoff is reset. */
void dn_fleet_succeeded(struct dn_fleet *f, size_t i);

/* A random healthy server not marked in skip (skip may be NULL), or f->n
 * when there is none. */
size_t dn_fleet_pick_random(struct dn_fleet *f, const unsigned char *skip, int64_t now);

/* The next healthy server not marked in skip from next_set on (which moves
 * past it), or f->n when there is none: sets spread exactly evenly. */
size_t dn_fleet_pick_next(struct dn_fleet *f, const unsigned char *skip, int64_t now);

/* The server where the next get's rotation starts; moves the rotation on by
 * one. */
size_t dn_fleet_rotate(struct dn_fleet *f);

/* The earliest retry_at of the servers not marked in skip that are backing
 * off, or INT64_MAX when there is none. */
int64_t dn_fleet_next_retry(const struct dn_fleet *f, const unsigned char *skip);

#endif
