/* Unit tests for priority lanes (queue/lanes.c): strict order, weighted
 * shares, lanes found again at start (also without their queue's folder),
 * ids unique across a queue's lanes, and never repeated (lanes stay). */
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
#include "queue/queue.h"
#include "queue/registry.h"
#include "registry_fixture.h"

static int setup(void **state) { return fx_setup(state, "[queue \"w\"]\npriority_policy = weighted\n"); }
static int teardown(void **state) { return fx_teardown(state); }

static void put(struct queue *q, unsigned pri, const char *s)
{
    struct jnl_attrs a = {.priority = (uint8_t)pri};
    assert_int_equal(queue_put(q, &a, s, strlen(s)), 0);
}

/* Takes the head; returns its first byte, or 0 when the queue is empty.
 * *id gets its id (may be NULL). */
static char take(struct queue *q, uint64_t *id)
{
    struct qopen *o = NULL;
    struct qitem it;
    int rc = queue_get(q, QGET_REMOVE, &o, &it);
    if (rc == -ENOENT)
        return 0;
    assert_int_equal(rc, 0);
    char c = it.data[0];
    if (id)
        *id = it.where.id;
    qitem_release(&it);
    return c;
}

static void test_strict_takes_the_most_urgent_level_first(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    put(q, 9, "z");
    put(q, 5, "m");
    put(q, 0, "a");
    put(q, 0, "b");
    put(q, 3, "d");
    assert_non_null(q->lanes);
    assert_null(q->lanes->q[5]); /* the default level is the queue's own journal */
    const char want[] = "abdmz";
    for (int i = 0; want[i]; i++)
        assert_int_equal(take(q, NULL), want[i]);
    assert_int_equal(take(q, NULL), 0);
}

static void test_ids_never_repeat_across_a_queues_levels(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    uint64_t ids[4];
    put(q, 0, "a");
    put(q, 1, "b");
    put(q, 5, "c");
    put(q, 9, "d");
    for (int i = 0; i < 4; i++)
        assert_true(take(q, &ids[i]) != 0);
    for (int i = 0; i < 4; i++)
        for (int k = i + 1; k < 4; k++)
            assert_true(ids[i] != ids[k]);
    assert_true(ids[2] < (UINT64_C(1) << 44)); /* the queue's own journal counts from 1 */
    assert_true(ids[3] < (UINT64_C(1) << 48)); /* every id fits the cas of gets */
}

static void test_weighted_gives_each_level_twice_the_share_of_the_next(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "w");
    char one[2] = {0};
    for (int i = 0; i < 1000; i++)
        for (unsigned pri = 0; pri < 4; pri++) {
            one[0] = (char)('0' + pri);
            put(q, pri, one);
        }
    int got[4] = {0};
    for (int i = 0; i < 1500; i++)
        got[take(q, NULL) - '0']++;
    /* 8:4:2:1 of 1500 while every level has items */
    assert_in_range(got[0], 798, 802);
    assert_in_range(got[1], 398, 402);
    assert_in_range(got[2], 198, 202);
    assert_in_range(got[3], 98, 102);
    /* a level that was idle does not get the service it missed */
    put(q, 3, "3");
    int lows = 0;
    for (int i = 0; i < 30; i++)
        lows += take(q, NULL) == '3';
    assert_true(lows <= 4);
}

static void test_lanes_are_found_again_at_start(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    put(q, 7, "late");
    put(q, 1, "early");
    reopen(fx);
    q = registry_find(fx->r, "q", 1);
    assert_non_null(q);
    assert_non_null(q->lanes);
    assert_int_equal(take(q, NULL), 'e');
    assert_int_equal(take(q, NULL), 'l');
    assert_int_equal(fx->r->count - fx->r->nhidden, 1);
}

static void test_a_lane_without_its_queue_gets_the_queue_back(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    put(q, 2, "x");
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", q->dir);
    registry_close(fx->r);
    fx->r = NULL;
    assert_int_equal(jnl_remove_dir(&fx->conf, dir), 0); /* the queue's own folder is gone */
    assert_int_equal(registry_open(&fx->r, fx->data, &fx->conf, fx->file), 0);
    q = registry_find(fx->r, "q", 1);
    assert_non_null(q);
    assert_int_equal(take(q, NULL), 'x');
}

static void test_a_lane_stays_so_its_ids_never_repeat(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    uint64_t first, second;
    put(q, 0, "a");
    assert_int_equal(take(q, &first), 'a');
    registry_flush(fx->r);
    reopen(fx);
    q = registry_find(fx->r, "q", 1);
    assert_non_null(q->lanes); /* empty, and still there */
    put(q, 0, "b");
    assert_int_equal(take(q, &second), 'b');
    assert_true(second > first);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_strict_takes_the_most_urgent_level_first),
        T(test_ids_never_repeat_across_a_queues_levels),
        T(test_weighted_gives_each_level_twice_the_share_of_the_next),
        T(test_lanes_are_found_again_at_start),
        T(test_a_lane_without_its_queue_gets_the_queue_back),
        T(test_a_lane_stays_so_its_ids_never_repeat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
