/* Unit tests for client/fleet.c: random choice for sets, rotation for gets,
 * backoff after failures. No network: time is passed in, and a server counts
 * as connected when its fd is set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "fleet.h"

static void make(struct dn_fleet *f, size_t n)
{
    struct dn_addr *a = calloc(n, sizeof(*a));
    assert_non_null(a);
    assert_int_equal(dn_fleet_init(f, a, n, 12345), 0);
    f->backoff_min_ms = 100;
    f->backoff_max_ms = 1000;
}

static void random_pick_is_even(void **state)
{
    (void)state;
    struct dn_fleet f;
    make(&f, 3);
    unsigned count[3] = {0};
    for (int i = 0; i < 30000; i++) {
        size_t s = dn_fleet_pick_random(&f, NULL, 0);
        assert_true(s < 3);
        count[s]++;
    }
    for (int s = 0; s < 3; s++)
        assert_true(count[s] > 9000 && count[s] < 11000);
    dn_fleet_free(&f);
}

static void random_pick_skips_tried_and_backing_off(void **state)
{
    (void)state;
    struct dn_fleet f;
    make(&f, 3);
    unsigned char skip[3] = {1, 0, 0};
    dn_fleet_failed(&f, 1, 1000); /* server 1 backs off until >= 1100 */
    for (int i = 0; i < 100; i++)
        assert_int_equal(dn_fleet_pick_random(&f, skip, 1050), 2);
    skip[2] = 1;
    assert_int_equal(dn_fleet_pick_random(&f, skip, 1050), 3); /* none */
    assert_int_equal(dn_fleet_pick_random(&f, skip, 2000), 1); /* backoff over */
    dn_fleet_free(&f);
}

static void rotation_visits_every_server_in_turn(void **state)
{
    (void)state;
    struct dn_fleet f;
    make(&f, 4);
    size_t first = dn_fleet_rotate(&f);
    for (size_t k = 1; k < 9; k++)
        assert_int_equal(dn_fleet_rotate(&f), (first + k) % 4);
    dn_fleet_free(&f);
}

static void rotation_starts_at_a_random_server(void **state)
{
    (void)state;
    unsigned seen[3] = {0};
    for (uint64_t seed = 1; seed <= 300; seed++) {
        struct dn_addr *a = calloc(3, sizeof(*a));
        struct dn_fleet f;
        assert_int_equal(dn_fleet_init(&f, a, 3, seed * 7919), 0);
        seen[dn_fleet_rotate(&f)]++;
        dn_fleet_free(&f);
    }
    for (int s = 0; s < 3; s++)
        assert_true(seen[s] > 50);
}

static void backoff_doubles_up_to_the_maximum(void **state)
{
    (void)state;
    struct dn_fleet f;
    make(&f, 1);
    int64_t want[] = {100, 200, 400, 800, 1000, 1000};
    for (int k = 0; k < 6; k++) {
        dn_fleet_failed(&f, 0, 0);
        int64_t d = f.servers[0].retry_at;
        /* The delay, plus up to a quarter of it as jitter. */
        assert_true(d >= want[k] && d <= want[k] + want[k] / 4);
        assert_false(dn_fleet_healthy(&f, 0, d - 1));
        assert_true(dn_fleet_healthy(&f, 0, d));
    }
    dn_fleet_succeeded(&f, 0);
    assert_true(dn_fleet_healthy(&f, 0, 0));
    dn_fleet_failed(&f, 0, 0);
    assert_true(f.servers[0].retry_at <= 125); /* back to the minimum */
    dn_fleet_free(&f);
}

static void connected_server_is_healthy_whatever_its_backoff(void **state)
{
    (void)state;
    struct dn_fleet f;
    make(&f, 1);
    dn_fleet_failed(&f, 0, 0);
    assert_false(dn_fleet_healthy(&f, 0, 1));
    f.servers[0].conn.fd = 99; /* pretend */
    assert_true(dn_fleet_healthy(&f, 0, 1));
    f.servers[0].conn.fd = -1;
    dn_fleet_free(&f);
}

static void next_retry_is_the_earliest(void **state)
{
    (void)state;
    struct dn_fleet f;
    make(&f, 3);
    assert_true(dn_fleet_next_retry(&f, NULL) == INT64_MAX);
    dn_fleet_failed(&f, 0, 5000);
    dn_fleet_failed(&f, 2, 1000);
    int64_t r = dn_fleet_next_retry(&f, NULL);
    assert_true(r >= 1100 && r <= 1125);
    unsigned char skip[3] = {0, 0, 1};
    r = dn_fleet_next_retry(&f, skip);
    assert_true(r >= 5100 && r <= 5125);
    dn_fleet_free(&f);
}

static void random_bound_is_respected(void **state)
{
    (void)state;
    struct dn_fleet f;
    make(&f, 1);
    for (int i = 0; i < 10000; i++)
        assert_true(dn_fleet_random(&f, 7) < 7);
    assert_int_equal(dn_fleet_random(&f, 1), 0);
    dn_fleet_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_pick_is_even),
        cmocka_unit_test(random_pick_skips_tried_and_backing_off),
        cmocka_unit_test(rotation_visits_every_server_in_turn),
        cmocka_unit_test(rotation_starts_at_a_random_server),
        cmocka_unit_test(backoff_doubles_up_to_the_maximum),
        cmocka_unit_test(connected_server_is_healthy_whatever_its_backoff),
        cmocka_unit_test(next_retry_is_the_earliest),
        cmocka_unit_test(random_bound_is_respected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
