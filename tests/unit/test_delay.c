/* Unit tests for delayed items (queue/delay.c): the index (runs of sorted
 * chunks, the heap of later sets) fires items in (due, id) order; a FIRING
 * cut short fires its items again unless its last copy is in the lane;
 * buckets are deleted once spent. Time is passed in, so nothing sleeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conffile.h"
#include "journal/journal.h"
#include "queue/delay.h"
#include "queue/delay_int.h"
#include "queue/queue.h"
#include "queue/registry.h"
#include "registry_fixture.h"

static int setup(void **state) { return fx_setup(state, NULL); }
static int teardown(void **state) { return fx_teardown(state); }

/* Sets an item due at due whose bytes are its number n. */
static void put_due(struct queue *q, uint64_t due, uint32_t n)
{
    struct jnl_attrs a = {.priority = JNL_PRIORITY_DEFAULT, .visible_ms = due};
    assert_int_equal(queue_put(q, &a, &n, sizeof(n)), 0);
}

/* The next visible item's number, or -1. */
static long take(struct queue *q)
{
    struct qopen *o = NULL;
    struct qitem it;
    int rc = queue_get(q, QGET_REMOVE, &o, &it);
    if (rc == -ENOENT)
        return -1;
    assert_int_equal(rc, 0);
    uint32_t n;
    assert_int_equal(it.len, sizeof(n));
    memcpy(&n, it.data, sizeof(n));
    qitem_release(&it);
    return n;
}

/* Runs ticks at now until nothing is left to do now. */
static void tick_all(struct fx *fx, uint64_t now)
{
    for (int i = 0; i < 100000; i++) {
        uint64_t next = registry_delay_tick(fx->r, now);
        if (!next || next > now)
            return;
    }
    fail_msg("the delay tick does not settle");
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

/* More items than one sorted chunk, set in random due order into one
 * bucket, then more set after the index is built (the heap): every one
 * fires in (due, set order) order, none early. */
static void test_items_fire_in_due_order_across_runs_and_the_heap(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    uint64_t now = queue_now_ms(), base = (now / 3600000 + 2) * 3600000; /* an hour bucket ahead */
    enum { N = 40000, LATE = 3000 };
    static uint64_t due[N + LATE];
    uint32_t seed = 42;
    for (uint32_t i = 0; i < N; i++) {
        due[i] = base + lcg(&seed) % 1000000;
        put_due(q, due[i], i);
    }
    assert_int_equal(queue_delayed_items(q), N);
    tick_all(fx, base - 30000); /* within the lookahead: indexed, nothing due */
    assert_int_equal(take(q), -1);
    for (uint32_t i = N; i < N + LATE; i++) { /* into the indexed bucket: the heap (spilled once) */
        due[i] = base + lcg(&seed) % 1000000;
        put_due(q, due[i], i);
    }
    uint64_t t = base + 500000;
    tick_all(fx, t);
    long prev = -1;
    uint64_t prev_due = 0, n = 0;
    for (long got; (got = take(q)) >= 0; n++) {
        assert_true(due[got] <= t);
        assert_true(due[got] > prev_due || (due[got] == prev_due && got > prev));
        prev_due = due[got];
        prev = got;
    }
    tick_all(fx, base + 1000000);
    for (long got; (got = take(q)) >= 0; n++) {
        assert_true(due[got] > prev_due || (due[got] == prev_due && got > prev));
        prev_due = due[got];
        prev = got;
    }
    assert_int_equal(n, N + LATE);
    assert_int_equal(queue_delayed_items(q), 0);
    tick_all(fx, base + 3600000 + 1); /* its range is past: the bucket goes */
    assert_null(q->delays);
}

/* A FIRING written, its copies not: after a restart the items fire again.
 * With its last copy in the lane: they do not. */
static void firing_cut_short(struct fx *fx, int copied)
{
    struct queue *q = mkq(fx, "q");
    uint64_t now = queue_now_ms(), due = now + 1000;
    put_due(q, due, 7);
    assert_non_null(q->delays);
    struct queue *b = first_of_kind(fx, QK_BUCKET);
    assert_non_null(b);
    struct jnl *bj, *lj;
    assert_int_equal(registry_jnl(fx->r, b, &bj), 0);
    assert_int_equal(registry_jnl(fx->r, q, &lj), 0);
    struct jnl_item it;
    jnl_last_appended(bj, &it);
    struct jnl_fire key = {.due = due, .id = it.id, .fired = 1, .lane_dir = q->dir_id, .lane_id = jnl_next_id(lj)};
    assert_int_equal(jnl_fire_begin(bj, &key), 0);
    if (copied) {
        uint32_t n = 7;
        struct jnl_attrs a = {.priority = JNL_PRIORITY_DEFAULT,
                              .origin = b->name,
                              .origin_len = b->name_len,
                              .origin_id = it.id,
                              .reason = JF_REASON_DELAYED};
        assert_int_equal(jnl_append(lj, &a, &n, sizeof(n)), 0);
    }
    reopen(fx);
    q = registry_find(fx->r, "q", 1);
    assert_false(queue_delays_counted(q));
    queue_count_delayed(q); /* the FIRING is settled first (an open), then counted */
    assert_true(queue_delays_counted(q));
    assert_int_equal(queue_delayed_items(q), copied ? 0 : 1);
    tick_all(fx, due + 1);
    if (copied)
        assert_int_equal(take(q), 7);
    assert_int_equal(take(q), copied ? -1 : 7);
    assert_int_equal(take(q), -1);
    reopen(fx);
    q = registry_find(fx->r, "q", 1);
    tick_all(fx, due + 2);
    assert_int_equal(take(q), -1); /* nothing fires twice */
}

/* Two FIRINGs after the last FIRED (a power cut before the sync that
 * would have said so): the first one's copy is in the lane, the second's is
 * not. The first counts as done, the second is void and its item fires
 * again: each item is handed out once. */
static void test_firings_are_settled_in_order_up_to_the_first_copy_missing(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    uint64_t now = queue_now_ms(), due = now + 1000;
    put_due(q, due, 1);
    put_due(q, due + 1, 2);
    struct queue *b = first_of_kind(fx, QK_BUCKET);
    assert_non_null(b);
    struct jnl *bj, *lj;
    assert_int_equal(registry_jnl(fx->r, b, &bj), 0);
    assert_int_equal(registry_jnl(fx->r, q, &lj), 0);
    struct jnl_item last;
    jnl_last_appended(bj, &last); /* item 2: item 1 has the id before it */
    uint64_t lane_id = jnl_next_id(lj);
    struct jnl_fire k1 = {.due = due, .id = last.id - 1, .fired = 1, .lane_dir = q->dir_id, .lane_id = lane_id};
    struct jnl_fire k2 = {.due = due + 1, .id = last.id, .fired = 2, .lane_dir = q->dir_id, .lane_id = lane_id + 1};
    assert_int_equal(jnl_fire_begin(bj, &k1), 0);
    uint32_t n = 1;
    struct jnl_attrs a = {.priority = JNL_PRIORITY_DEFAULT,
                          .origin = b->name,
                          .origin_len = b->name_len,
                          .origin_id = k1.id,
                          .reason = JF_REASON_DELAYED};
    assert_int_equal(jnl_append(lj, &a, &n, sizeof(n)), 0);
    assert_int_equal(jnl_fire_begin(bj, &k2), 0); /* its copy never written */
    reopen(fx);
    q = registry_find(fx->r, "q", 1);
    tick_all(fx, now); /* counted: item 2 waits (its FIRING is void) */
    assert_true(queue_delays_counted(q));
    assert_int_equal(queue_delayed_items(q), 1);
    tick_all(fx, due + 2);
    assert_int_equal(take(q), 1);
    assert_int_equal(take(q), 2);
    assert_int_equal(take(q), -1);
    reopen(fx);
    q = registry_find(fx->r, "q", 1);
    tick_all(fx, due + 3);
    assert_int_equal(take(q), -1);
}

static void test_a_firing_cut_short_before_its_copies_fires_again(void **state) { firing_cut_short(*state, 0); }
static void test_a_firing_cut_short_after_its_copies_is_done(void **state) { firing_cut_short(*state, 1); }

static void test_kick_and_peek_take_the_soonest_across_buckets(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    uint64_t now = queue_now_ms();
    put_due(q, now + 5 * 86400000ull, 1); /* a day bucket */
    put_due(q, now + 3600000, 2);         /* an hour bucket */
    put_due(q, now + 7200000, 3);
    struct qitem it;
    assert_int_equal(queue_peek_delayed(q, &it), 0);
    assert_int_equal(*(uint32_t *)it.data, 2);
    qitem_release(&it);
    uint64_t n;
    assert_int_equal(queue_kick_delayed(q, 2, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(take(q), 2);
    assert_int_equal(take(q), 3);
    assert_int_equal(queue_delayed_items(q), 1);
    assert_int_equal(queue_flush(q), 0);
    assert_null(q->delays);
    assert_int_equal(queue_peek_delayed(q, &it), -ENOENT);
}

/* A kick fires an item before its time: an item set later for an earlier
 * time of the same bucket must not count as fired (it goes to the bucket's
 * next generation), also across a restart. */
static void test_an_item_set_after_a_kick_for_an_earlier_time_still_fires(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    uint64_t now = queue_now_ms(), hour = (now / 3600000 + 2) * 3600000;
    put_due(q, hour + 50 * 60000, 1);
    uint64_t n;
    assert_int_equal(queue_kick_delayed(q, 1, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(take(q), 1);
    put_due(q, hour + 10 * 60000, 2); /* earlier than what was kicked, same hour */
    registry_flush(fx->r);
    reopen(fx);
    q = registry_find(fx->r, "q", 1);
    tick_all(fx, now); /* counted after the start, in steps */
    assert_true(queue_delays_counted(q));
    assert_int_equal(queue_delayed_items(q), 1);
    tick_all(fx, hour + 10 * 60000 - 1);
    assert_int_equal(take(q), -1);
    tick_all(fx, hour + 10 * 60000);
    assert_int_equal(take(q), 2);
}

/* Items set in due order (a fixed delay) into an indexed bucket spill their
 * heap into the same run again and again: the bucket keeps one run (one fd)
 * however many items it takes. Out of order, each spill is a run of its own. */
static void test_items_set_in_due_order_keep_one_run(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    uint64_t now = queue_now_ms(), hour = (now / 3600000 + 2) * 3600000;
    put_due(q, hour + 1, 0);
    tick_all(fx, hour - 30000); /* indexed */
    struct queue *b = first_of_kind(fx, QK_BUCKET);
    assert_non_null(b);
    for (uint32_t i = 1; i <= 10 * DHEAP_MAX; i++)
        put_due(q, hour + 1 + i, i);
    assert_true(b->bucket->nruns <= 2);
    for (uint32_t i = 1; i <= 3 * DHEAP_MAX; i++)
        put_due(q, hour + 100000 - i, 100000 + i); /* in reverse: a run a spill */
    assert_true(b->bucket->nruns >= 3);
    tick_all(fx, hour + 200000);
    long prev_due = -1;
    uint32_t n = 0;
    for (long got; (got = take(q)) >= 0; n++) {
        long due = got < 100000 ? got : 100000 - (got - 100000);
        assert_true(due > prev_due);
        prev_due = due;
    }
    assert_int_equal(n, 1 + 13 * DHEAP_MAX);
}

/* Items set out of order into an indexed bucket make a run a spill; the
 * tick merges the smallest runs in steps, so a bucket keeps at most
 * DRUNS_MAX runs (and the one a merge writes) however many items it takes.
 * Items fired while a merge is half done, and items set meanwhile, still
 * come out in (due, set order) order, each exactly once. */
static void test_runs_set_out_of_order_are_merged(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    uint64_t now = queue_now_ms(), hour = (now / 3600000 + 2) * 3600000;
    enum { N = 60 * DHEAP_MAX, SPAN = 1000000 };
    static uint8_t seen[N];
    static uint64_t due[N];
    uint32_t seed = 7;
    due[0] = hour + SPAN;
    put_due(q, due[0], 0);
    tick_all(fx, hour - 30000); /* indexed */
    struct queue *b = first_of_kind(fx, QK_BUCKET);
    assert_non_null(b);
    for (uint32_t i = 1; i < N / 2; i++) { /* out of order: a run a spill */
        due[i] = hour + 1 + lcg(&seed) % SPAN;
        put_due(q, due[i], i);
    }
    assert_true(b->bucket->nruns > DRUNS_MAX);
    size_t maxruns = 0;
    for (int i = 0; i < 100000 && dindex_merge_wanted(b); i++) {
        assert_true(dindex_merge_step(b) >= 0);
        if (i == 2) { /* half way through a merge: more sets, and some fire */
            for (uint32_t k = N / 2; k < N; k++) {
                due[k] = hour + 1 + lcg(&seed) % SPAN;
                put_due(q, due[k], k);
            }
            tick_all(fx, hour + SPAN / 4);
        }
        maxruns = b->bucket->nruns > maxruns ? b->bucket->nruns : maxruns;
    }
    assert_false(dindex_merge_wanted(b));
    assert_true(b->bucket->nruns <= DRUNS_MAX);
    tick_all(fx, hour + 2 * SPAN);
    uint64_t n = 0, prev_due = 0;
    long prev = -1;
    for (long got; (got = take(q)) >= 0; n++) {
        assert_true(got >= 0 && got < N);
        assert_int_equal(seen[got], 0);
        seen[got] = 1;
        assert_true(due[got] > prev_due || (due[got] == prev_due && got > prev));
        prev_due = due[got];
        prev = got;
    }
    assert_int_equal(n, N);
    assert_int_equal(queue_delayed_items(q), 0);
    print_message("runs at most %llu while merging\n", (unsigned long long)maxruns);
}

/* After a restart, buckets are indexed in steps: a small bucket indexed
 * at once must not fire its items while a larger one of the same level,
 * still being indexed, holds items due before them. */
static void test_a_bucket_being_indexed_holds_back_later_items(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    uint64_t now = queue_now_ms(), hour = (now / 3600000 + 2) * 3600000;
    enum { N = 3 * BUILD_BATCHES }; /* a set a batch: three build steps */
    for (uint32_t i = 0; i < N; i++)
        put_due(q, hour + i, i);
    put_due(q, hour + 3600000 + 5, N); /* the next hour's bucket: one step */
    reopen(fx);
    q = registry_find(fx->r, "q", 1);
    tick_all(fx, hour + 2 * 3600000);
    for (uint32_t i = 0; i <= N; i++)
        assert_int_equal(take(q), i);
    assert_int_equal(take(q), -1);
}

/* Sets an item due at due of len bytes (its first 4 are n). */
static void put_sized(struct queue *q, uint64_t due, uint32_t n, size_t len)
{
    static char buf[1024];
    struct jnl_attrs a = {.priority = JNL_PRIORITY_DEFAULT, .visible_ms = due};
    memcpy(buf, &n, sizeof(n));
    assert_int_equal(queue_put(q, &a, buf, len), 0);
}

static void assert_count(struct queue *q, uint64_t items, uint64_t bytes)
{
    assert_true(queue_delays_counted(q));
    assert_int_equal(queue_delayed_items(q), items);
    assert_int_equal(queue_delayed_bytes(q), bytes);
}

/* The count of delayed items (and their bytes) is kept as items are set,
 * fire, are kicked and flushed, and is found again after a start: by the
 * census in steps on the tick (more than one step, while the bucket fires
 * meanwhile, and with sets into a bucket not counted yet) or at once. */
static void test_delayed_items_are_counted_across_fires_kicks_restarts_and_flush(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    uint64_t now = queue_now_ms(), hour = (now / 3600000 + 2) * 3600000;
    enum { N = 10000, LEN = 300 };
    for (uint32_t i = 0; i < N; i++) /* about 3 MiB: a census of several steps */
        put_sized(q, hour + (uint64_t)i * 100, i, LEN);
    put_due(q, now + 5 * 86400000ull, N); /* a day bucket */
    assert_count(q, N + 1, (uint64_t)N * LEN + 4);
    tick_all(fx, hour + 2999 * 100); /* 3,000 fire */
    assert_count(q, N - 3000 + 1, (uint64_t)(N - 3000) * LEN + 4);
    uint64_t n;
    assert_int_equal(queue_kick_delayed(q, 10, &n), 0);
    assert_int_equal(n, 10);
    assert_count(q, N - 3010 + 1, (uint64_t)(N - 3010) * LEN + 4);
    registry_flush(fx->r);

    reopen(fx); /* counted in steps, while the bucket fires */
    q = registry_find(fx->r, "q", 1);
    assert_false(queue_delays_counted(q));
    assert_true(fx->r->delays_uncounted > 0);
    put_due(q, now + 5 * 86400000ull + 1, N + 1); /* into a bucket not counted yet */
    tick_all(fx, hour + 5999 * 100);
    assert_int_equal(fx->r->delays_uncounted, 0);
    assert_count(q, N - 6000 + 2, (uint64_t)(N - 6000) * LEN + 8);

    reopen(fx); /* counted at once (a set into a queue with limits) */
    q = registry_find(fx->r, "q", 1);
    queue_count_delayed(q);
    assert_count(q, N - 6000 + 2, (uint64_t)(N - 6000) * LEN + 8);
    assert_int_equal(fx->r->delays_uncounted, 0);
    assert_int_equal(queue_flush(q), 0);
    assert_count(q, 0, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_items_fire_in_due_order_across_runs_and_the_heap),
        T(test_firings_are_settled_in_order_up_to_the_first_copy_missing),
        T(test_a_firing_cut_short_before_its_copies_fires_again),
        T(test_a_firing_cut_short_after_its_copies_is_done),
        T(test_kick_and_peek_take_the_soonest_across_buckets),
        T(test_an_item_set_after_a_kick_for_an_earlier_time_still_fires),
        T(test_items_set_in_due_order_keep_one_run),
        T(test_runs_set_out_of_order_are_merged),
        T(test_a_bucket_being_indexed_holds_back_later_items),
        T(test_delayed_items_are_counted_across_fires_kicks_restarts_and_flush),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
