/* Unit tests for client/stats.c: the per-queue figures found in STAT lines,
 * also for queue names that hold '_' or look like a figure's name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "stats.h"

static void add(darner_stats *s, const char *name, const char *value)
{
    assert_int_equal(dn_stats_add(s, name, strlen(name), value, strlen(value)), 0);
}

/* The seven lines the server writes for one queue, in its order. */
static void add_queue(darner_stats *s, const char *q, unsigned base)
{
    static const char *keys[] = {"items", "bytes", "total_items", "logsize", "age", "waiters", "open_transactions"};
    for (unsigned k = 0; k < 7; k++) {
        char name[300], value[32];
        snprintf(name, sizeof(name), "queue_%s_%s", q, keys[k]);
        snprintf(value, sizeof(value), "%u", base + k);
        add(s, name, value);
    }
}

static const darner_queue_stats *find(const darner_stats *s, const char *name, darner_queue_stats *q)
{
    for (size_t i = 0; i < darner_stats_queue_count(s); i++) {
        assert_int_equal(darner_stats_queue(s, i, q), 0);
        if (strcmp(q->name, name) == 0)
            return q;
    }
    return NULL;
}

static void general_stats_are_kept_in_order(void **state)
{
    (void)state;
    darner_stats *s = dn_stats_new();
    add(s, "pid", "42");
    add(s, "version", "1.0.0");
    add(s, "queue_creates", "3");
    assert_int_equal(dn_stats_index_queues(s), 0);
    assert_int_equal(darner_stats_count(s), 3);
    assert_string_equal(darner_stats_name(s, 1), "version");
    assert_string_equal(darner_stats_value(s, 1), "1.0.0");
    assert_string_equal(darner_stats_get(s, "pid"), "42");
    assert_null(darner_stats_get(s, "nope"));
    assert_null(darner_stats_name(s, 3));
    assert_int_equal(darner_stats_queue_count(s), 0); /* queue_creates is no queue */
    darner_stats_free(s);
}

static void queue_figures(void **state)
{
    (void)state;
    darner_stats *s = dn_stats_new();
    add(s, "queue_deletes", "0");
    add_queue(s, "jobs", 10);
    assert_int_equal(dn_stats_index_queues(s), 0);
    assert_int_equal(darner_stats_queue_count(s), 1);
    darner_queue_stats q;
    assert_non_null(find(s, "jobs", &q));
    assert_int_equal(q.items, 10);
    assert_int_equal(q.bytes, 11);
    assert_int_equal(q.total_items, 12);
    assert_int_equal(q.logsize, 13);
    assert_int_equal(q.age_ms, 14);
    assert_int_equal(q.waiters, 15);
    assert_int_equal(q.open_transactions, 16);
    assert_int_equal(darner_stats_queue(s, 1, &q), -ERANGE);
    darner_stats_free(s);
}

static void names_that_look_like_figures(void **state)
{
    (void)state;
    /* "a", "a_total" and "a_total_items_logsize" side by side: every
     * figure must land on the right queue. */
    darner_stats *s = dn_stats_new();
    add_queue(s, "a", 100);
    add_queue(s, "a_total", 200);
    add_queue(s, "a_total_items_logsize", 300);
    add_queue(s, "queue", 400);
    add_queue(s, "_", 500);
    assert_int_equal(dn_stats_index_queues(s), 0);
    assert_int_equal(darner_stats_queue_count(s), 5);
    darner_queue_stats q;
    assert_non_null(find(s, "a", &q));
    assert_int_equal(q.items, 100);
    assert_int_equal(q.total_items, 102);
    assert_non_null(find(s, "a_total", &q));
    assert_int_equal(q.items, 200);
    assert_int_equal(q.open_transactions, 206);
    assert_non_null(find(s, "a_total_items_logsize", &q));
    assert_int_equal(q.logsize, 303);
    assert_non_null(find(s, "queue", &q));
    assert_int_equal(q.waiters, 405);
    assert_non_null(find(s, "_", &q));
    assert_int_equal(q.bytes, 501);
    darner_stats_free(s);
}

static void figures_found_when_lines_are_far_apart(void **state)
{
    (void)state;
    darner_stats *s = dn_stats_new();
    add(s, "queue_far_items", "7");
    for (int i = 0; i < 40; i++) {
        char n[32];
        snprintf(n, sizeof(n), "filler%d", i);
        add(s, n, "0");
    }
    add(s, "queue_far_logsize", "9");
    assert_int_equal(dn_stats_index_queues(s), 0);
    darner_queue_stats q;
    assert_non_null(find(s, "far", &q));
    assert_int_equal(q.items, 7);
    assert_int_equal(q.logsize, 9);
    assert_int_equal(q.bytes, 0); /* missing: 0 */
    darner_stats_free(s);
}

static void many_queues(void **state)
{
    (void)state;
    darner_stats *s = dn_stats_new();
    for (unsigned i = 0; i < 2000; i++) {
        char q[32];
        snprintf(q, sizeof(q), "q%u", i);
        add_queue(s, q, i * 10);
    }
    assert_int_equal(dn_stats_index_queues(s), 0);
    assert_int_equal(darner_stats_queue_count(s), 2000);
    darner_queue_stats q;
    assert_non_null(find(s, "q1999", &q));
    assert_int_equal(q.items, 19990);
    assert_int_equal(q.open_transactions, 19996);
    darner_stats_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(general_stats_are_kept_in_order),
        cmocka_unit_test(queue_figures),
        cmocka_unit_test(names_that_look_like_figures),
        cmocka_unit_test(figures_found_when_lines_are_far_apart),
        cmocka_unit_test(many_queues),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
