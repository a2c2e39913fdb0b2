/* tests/crash/crash_model.h: what the workload was promised.
 *
 * Items are named by a tag (0, 1, 2, ... in the order their appends began).
 * An item's payload, flags and length follow from the workload seed and its
 * tag, and its add_ms field carries CM_TAG_BASE + tag, so anything a
 * recovered journal hands out can be named and checked byte for byte.
 *
 * The model keeps, per item, the calls that changed whether it is live
 * (append, removal by get or confirm or clear, restore), each with the span
 * [b, e) of event-log positions the call covered, and the list of sync points
 * that completed. From these cm_expect() tells, for a crash after k events,
 * which items must come back, which must not, and which may. */
#ifndef DARNER_TESTS_CRASH_MODEL_H
#define DARNER_TESTS_CRASH_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define CM_TAG_BASE (UINT64_C(1) << 40) /* add_ms of the item tagged t: CM_TAG_BASE + t */

enum cm_class {
    CM_MAY = 0,     /* a change to it was under way after the last completed sync point */
    CM_MUST = 1,    /* live at the last completed sync point, untouched since */
    CM_MUSTNOT = 2, /* removed by the last completed sync point (or never appended), untouched since */
};

struct cm_tr {
    uint32_t b, e; /* the call spanned events [b, e) */
    uint32_t seq;  /* its place among calls and sync points (a call may write nothing) */
    uint8_t live;  /* the item was live after it */
};

struct cm_item {
    uint32_t len;
    uint8_t blob;       /* appended as a blob file */
    uint8_t live, open; /* in the live run, now */
    struct cm_tr *tr;
    size_t ntr, captr;
};

struct cm_sync {
    uint32_t start, end; /* jnl_sync_fds() was called at event start; its last fsync ended before end */
    uint32_t seq;        /* calls with a lower seq were made before it */
};

struct cm_model {
    uint64_t seed;
    struct cm_item *it;
    size_t nit, capit;
    struct cm_sync *sy;
    size_t nsy, capsy;
    size_t lo;    /* no item below this tag is live */
    uint32_t seq; /* the next cm_tr or cm_sync's seq */
};

/* What a crash after k events must leave. cls has one class per tag. */
struct cm_expect {
    uint8_t *cls;
    size_t n;
    int acked_any;  /* some item was appended before a completed sync point */
    long sync;      /* index of the last completed sync point, or -1 */
    size_t started; /* items whose append began before the crash: tags [0, started) */
    size_t nmust, nmay;
};

void cm_init(struct cm_model *m, uint64_t seed);
void cm_free(struct cm_model *m);

/* A new item of len bytes; returns its tag. */
uint32_t cm_new_item(struct cm_model *m, uint32_t len, int blob);
/* The payload of tag: len bytes into buf. */
void cm_fill(const struct cm_model *m, uint32_t tag, unsigned char *buf, size_t len);
/* The memcache flags the item of tag carries. */
uint32_t cm_flags(const struct cm_model *m, uint32_t tag);

/* A call spanning events [b, e) left the item live (1) or removed (0). */
void cm_set(struct cm_model *m, uint32_t tag, uint32_t b, uint32_t e, int live);
/* A sync point completed: every call recorded before it is durable (its
 * writes, and the records it queued, which the sync writes first). */
void cm_sync(struct cm_model *m, uint32_t start, uint32_t end);
/* The item the live journal must hand out next: the lowest live tag not held
 * open (given-back items and the read cursor's items, oldest first), or -1. */
long cm_head(struct cm_model *m);

/* Fills e (e->cls is allocated here, for cm_expect_free) for a crash after
 * the first k events. */
void cm_expect(const struct cm_model *m, uint32_t k, struct cm_expect *e);
void cm_expect_free(struct cm_expect *e);

#endif
