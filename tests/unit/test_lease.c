/* Unit tests for the lease heap (queue/lease.c): random sets, moves and
 * clears against a plain model; the top is always the soonest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "queue/lease.h"
#include "queue/queue.h"

#define N 200

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void check(const struct lease_heap *lh, struct qopen *o, const int *has)
{
    uint64_t min = UINT64_MAX;
    size_t count = 0;
    for (int i = 0; i < N; i++) {
        if (!has[i]) {
            assert_int_equal(o[i].lease_idx, LEASE_NONE);
            continue;
        }
        count++;
        assert_ptr_equal(lh->h[o[i].lease_idx], &o[i]);
        if (o[i].lease_ms < min)
            min = o[i].lease_ms;
    }
    assert_int_equal(lh->n, count);
    if (count)
        assert_int_equal(lease_top(lh)->lease_ms, min);
    else
        assert_null(lease_top(lh));
}

static void test_heap_keeps_the_soonest_on_top(void **state)
{
    (void)state;
    struct lease_heap lh = {0};
    struct qopen o[N] = {0};
    int has[N] = {0};
    uint32_t seed = 7;
    for (int i = 0; i < N; i++)
        o[i].lease_idx = LEASE_NONE;
    for (int step = 0; step < 20000; step++) {
        int i = (int)(lcg(&seed) % N);
        if (lcg(&seed) % 3 == 0) {
            lease_clear(&lh, &o[i]);
            has[i] = 0;
        } else {
            assert_int_equal(lease_set(&lh, &o[i], lcg(&seed) % 1000), 0);
            has[i] = 1;
        }
        check(&lh, o, has);
    }
    /* draining from the top gives the deadlines in order */
    uint64_t last = 0;
    struct qopen *top;
    while ((top = lease_top(&lh)) != NULL) {
        assert_true(top->lease_ms >= last);
        last = top->lease_ms;
        lease_clear(&lh, top);
    }
    lease_heap_free(&lh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_heap_keeps_the_soonest_on_top)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
