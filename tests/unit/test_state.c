/* Unit tests for journal/apply.c's live nodes: the returned list stays in id
 * order and every node is found by id however nodes come and go (the treap
 * that finds their places, kept in step with the list), and the cached
 * lowest live segment is always what a walk of every node gives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>

#include "journal/state.h"

#define N 5000

/* A deterministic shuffle of 1..n (xorshift). */
static void shuffled(uint64_t *ids, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        ids[i] = i + 1;
    for (size_t i = n - 1; i > 0; i--) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        size_t k = (size_t)(seed % (i + 1));
        uint64_t t = ids[i];
        ids[i] = ids[k];
        ids[k] = t;
    }
}

static void apply(struct jst *s, uint8_t type, uint64_t id)
{
    struct jf_ack a = {.type = type, .id = id, .seg = 1 + id / 100, .off = id * 64, .len = 8};
    assert_int_equal(jst_apply_ack(s, &a, NULL, NULL), 0);
}

/* The returned list's ids, in order, are strictly rising; returns their count. */
static size_t check_order(const struct jst *s)
{
    uint64_t last = 0;
    size_t n = 0;
    for (const struct list *pos = s->returned.next; pos != &s->returned; pos = pos->next) {
        uint64_t id = list_entry(pos, struct jnl_node, link)->item.id;
        assert_true(id > last);
        last = id;
        n++;
    }
    return n;
}

static void given_back_in_any_order_stay_sorted_and_found(void **state)
{
    (void)state;
    struct jst s;
    jst_init(&s);
    uint64_t *ids = malloc(N * sizeof(*ids));
    assert_non_null(ids);
    shuffled(ids, N, 88172645463325252ull);
    for (size_t i = 0; i < N; i++)
        apply(&s, JF_ACK_OUT, ids[i]); /* given back in a random order */
    assert_int_equal(check_order(&s), N);
    for (uint64_t id = 1; id <= N; id++) {
        struct jnl_node *n = jst_find(&s, id);
        assert_non_null(n);
        assert_int_equal(n->item.id, id);
    }
    assert_null(jst_find(&s, N + 1));

    /* half handed out (open), then given back in another random order */
    static int owner;
    shuffled(ids, N, 7);
    for (size_t i = 0; i < N / 2; i++)
        jst_hold(&s, jst_find(&s, ids[i]), &owner);
    assert_int_equal(check_order(&s), N - N / 2);
    for (size_t i = 0; i < N / 2; i++)
        assert_ptr_equal(jst_find(&s, ids[i])->owner, &owner); /* found in the open list */
    shuffled(ids, N / 2, 99);
    for (size_t i = 0; i < N / 2; i++) {
        struct jnl_node *n = NULL;
        for (uint64_t id = 1; id <= N && !n; id++) /* the i-th open one in this order */
            if ((n = jst_find(&s, id)) && n->owner != &owner)
                n = NULL;
        jst_release(&s, n);
    }
    assert_int_equal(check_order(&s), N);

    /* a third confirmed (freed) in a random order */
    shuffled(ids, N, 12345);
    for (size_t i = 0; i < N / 3; i++)
        apply(&s, JF_ACK_CONFIRM, ids[i]);
    assert_int_equal(check_order(&s), N - N / 3);
    for (size_t i = 0; i < N; i++)
        assert_true((jst_find(&s, ids[i]) == NULL) == (i < N / 3));
    jst_free_nodes(&s);
    assert_int_equal(check_order(&s), 0);
    assert_null(s.by_id);
    free(ids);
}

/* Only a damaged ack log names an id twice: both nodes are kept, in order,
 * and each goes when confirmed, as before the treap. */
static void the_same_id_twice(void **state)
{
    (void)state;
    struct jst s;
    jst_init(&s);
    for (uint64_t id = 1; id <= 50; id++)
        apply(&s, JF_ACK_OUT, id % 10 + 1);
    assert_int_equal(s.nnodes, 50);
    uint64_t last = 0;
    for (const struct list *pos = s.returned.next; pos != &s.returned; pos = pos->next) {
        uint64_t id = list_entry(pos, struct jnl_node, link)->item.id;
        assert_true(id >= last);
        last = id;
    }
    for (int i = 0; i < 50; i++)
        apply(&s, JF_ACK_CONFIRM, (uint64_t)i % 10 + 1);
    assert_int_equal(s.nnodes, 0);
    assert_null(s.by_id);
    jst_free_nodes(&s);
}

/* The lowest segment a live item is in, by a walk of every live node. */
static uint64_t lowest_by_walk(const struct jst *s)
{
    uint64_t low = UINT64_MAX;
    const struct list *lists[2] = {&s->returned, &s->open};
    for (int i = 0; i < 2; i++)
        for (const struct list *pos = lists[i]->next; pos != lists[i]; pos = pos->next) {
            uint64_t seg = list_entry(pos, struct jnl_node, link)->item.seg;
            low = seg < low ? seg : low;
        }
    return low;
}

/* The cached answer (kept with a count of the items in that segment) is
 * the walk's after every change: nodes made, freed in a random order, and
 * moved to another segment. */
static void lowest_live_segment_follows_every_change(void **state)
{
    (void)state;
    struct jst s;
    jst_init(&s);
    uint64_t *ids = malloc(N * sizeof(*ids));
    assert_non_null(ids);
    shuffled(ids, N, 424242);
    for (size_t i = 0; i < N; i++) {
        apply(&s, JF_ACK_OUT, ids[i]);
        if (i % 97 == 0)
            assert_int_equal(jst_lowest_live_seg(&s), lowest_by_walk(&s));
    }
    shuffled(ids, N, 31337);
    for (size_t i = 0; i < N; i++) {
        if (i % 5 == 0) { /* moved to a later segment (a reclaim's copy) */
            struct jf_ack m = {.type = JF_ACK_MOVE, .id = ids[i], .seg = 1000 + i, .off = 64};
            assert_int_equal(jst_apply_ack(&s, &m, NULL, NULL), 0);
        } else {
            apply(&s, JF_ACK_CONFIRM, ids[i]);
        }
        assert_int_equal(jst_lowest_live_seg(&s), lowest_by_walk(&s));
    }
    jst_free_nodes(&s);
    assert_int_equal(jst_lowest_live_seg(&s), UINT64_MAX);
    free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(given_back_in_any_order_stay_sorted_and_found),
        cmocka_unit_test(the_same_id_twice),
        cmocka_unit_test(lowest_live_segment_follows_every_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
