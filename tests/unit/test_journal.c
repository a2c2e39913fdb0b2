/* Unit tests for journal/journal.c: appending, reading, holding, removing,
 * statistics, recovery after reopen, segment rolling and reclaiming, and ack
 * log compaction (tests/unit/test_journal_io.c: syncs, batches, torn tails
 * and injected faults).
 *
 * Every test gets a fresh directory in the temporary folder (removed
 * afterwards); the journal itself lives in <tmp>/q. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "journal_fixture.h"

/* ---- basic operations ---- */

static void test_new_journal_is_empty(void **state)
{
    struct fx *fx = *state;
    jopen(fx);
    expect_empty(fx->j);
    expect_stats(fx->j, 0, 0, 0);
    assert_int_equal(nsegs(fx), 1);
}

static void test_open_without_create_of_missing_journal_is_enoent(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(jnl_open(&fx->j, &fx->conf, fx->dir, 0), -ENOENT);
    fx->j = NULL;
    assert_false(tu_exists(fx->dir));
}

static void test_append_then_head_returns_items_in_order_intact(void **state)
{
    struct fx *fx = *state;
    jopen(fx);
    assert_int_equal(
        jnl_append(
            fx->j,
            &(struct jnl_attrs){.flags = 0xfeedu, .add_ms = 111, .expire_ms = 999999, .priority = JNL_PRIORITY_DEFAULT},
            "alpha", 5),
        0);
    assert_int_equal(
        jnl_append(fx->j,
                   &(struct jnl_attrs){.flags = 0, .add_ms = 222, .expire_ms = 0, .priority = JNL_PRIORITY_DEFAULT}, "",
                   0),
        0);
    assert_int_equal(
        jnl_append(fx->j,
                   &(struct jnl_attrs){.flags = 7, .add_ms = 333, .expire_ms = 42, .priority = JNL_PRIORITY_DEFAULT},
                   "gamma!", 6),
        0);

    struct jnl_head h;
    char buf[16];
    assert_int_equal(jnl_head(fx->j, &h), 0);
    assert_null(h.node);
    assert_int_equal(h.item.id, 1);
    assert_int_equal(h.item.flags, 0xfeedu);
    assert_int_equal(h.item.add_ms, 111);
    assert_int_equal(h.item.expire_ms, 999999);
    assert_int_equal(h.item.len, 5);
    assert_int_equal(jnl_read(fx->j, &h.item, 0, buf, 5), 0);
    assert_memory_equal(buf, "alpha", 5);
    /* head does not consume */
    assert_int_equal(jnl_head(fx->j, &h), 0);
    assert_int_equal(h.item.id, 1);
    assert_int_equal(jnl_remove_head(fx->j, &h), 0);

    assert_int_equal(jnl_head(fx->j, &h), 0);
    assert_int_equal(h.item.id, 2);
    assert_int_equal(h.item.len, 0);
    assert_int_equal(h.item.add_ms, 222);
    assert_int_equal(h.item.expire_ms, 0);
    assert_int_equal(jnl_read(fx->j, &h.item, 0, buf, 0), 0);
    assert_int_equal(jnl_remove_head(fx->j, &h), 0);

    assert_int_equal(jnl_head(fx->j, &h), 0);
    assert_int_equal(h.item.id, 3);
    assert_int_equal(h.item.flags, 7);
    assert_int_equal(h.item.add_ms, 333);
    assert_int_equal(h.item.expire_ms, 42);
    assert_int_equal(jnl_read(fx->j, &h.item, 0, buf, 6), 0);
    assert_memory_equal(buf, "gamma!", 6);
    /* a partial read at an offset */
    assert_int_equal(jnl_read(fx->j, &h.item, 2, buf, 3), 0);
    assert_memory_equal(buf, "mma", 3);
}

static void test_remove_head_advances_until_empty(void **state)
{
    struct fx *fx = *state;
    jopen(fx);
    for (int i = 1; i <= 5; i++)
        put(fx->j, i);
    for (int i = 1; i <= 5; i++)
        take(fx->j, i);
    expect_empty(fx->j);
    /* appending after draining works */
    put(fx->j, 6);
    take(fx->j, 6);
    expect_empty(fx->j);
}

static void test_large_payload_round_trip(void **state)
{
    struct fx *fx = *state;
    jopen(fx);
    size_t big = 200 * 1024; /* above the single-write limit */
    put(fx->j, 1);
    assert_int_equal(put_n(fx->j, 2, big), 0);
    put(fx->j, 3);
    struct jnl_head h;
    take(fx->j, 1);
    head_is_n(fx->j, 2, big, &h);
    assert_int_equal(jnl_remove_head(fx->j, &h), 0);
    take(fx->j, 3);
    reopen(fx);
    expect_empty(fx->j);
}

static void test_read_of_damaged_payload_is_ebadmsg(void **state)
{
    struct fx *fx = *state;
    jopen(fx);
    put(fx->j, 1);
    put(fx->j, 2);
    char seg[PATH_MAX], buf[100];
    tu_join(seg, fx->dir, SEG1);
    tu_flip_byte(seg, JF_SEG_HDR + REC - 50, 0x20); /* in item 1's payload */
    struct jnl_head h;
    assert_int_equal(jnl_head(fx->j, &h), 0);
    assert_int_equal(h.item.id, 1);
    assert_int_equal(jnl_read(fx->j, &h.item, 0, buf, sizeof(buf)), -EBADMSG);
}

static void test_hold_then_release_puts_item_before_newer_ones(void **state)
{
    struct fx *fx = *state;
    int owner;
    jopen(fx);
    for (int i = 1; i <= 4; i++)
        put(fx->j, i);
    struct jnl_node *n = hold(fx->j, 1, &owner);
    /* while it is open, the next item is the head */
    take(fx->j, 2);
    jnl_release(fx->j, n);
    assert_null(n->owner);
    struct jnl_head h;
    head_is(fx->j, 1, &h);
    assert_ptr_equal(h.node, n);
    assert_int_equal(jnl_remove_head(fx->j, &h), 0);
    take(fx->j, 3);
    take(fx->j, 4);
    expect_empty(fx->j);
}

static void test_several_released_come_back_lowest_id_first(void **state)
{
    struct fx *fx = *state;
    int owner;
    jopen(fx);
    for (int i = 1; i <= 6; i++)
        put(fx->j, i);
    struct jnl_node *n1 = hold(fx->j, 1, &owner);
    struct jnl_node *n2 = hold(fx->j, 2, &owner);
    struct jnl_node *n3 = hold(fx->j, 3, &owner);
    jnl_release(fx->j, n3);
    jnl_release(fx->j, n1);
    jnl_release(fx->j, n2);
    for (int i = 1; i <= 6; i++)
        take(fx->j, i);
    expect_empty(fx->j);
}

static void test_given_back_item_can_be_held_again(void **state)
{
    struct fx *fx = *state;
    int a, b;
    jopen(fx);
    put(fx->j, 1);
    put(fx->j, 2);
    struct jnl_node *n = hold(fx->j, 1, &a);
    jnl_release(fx->j, n);
    struct jnl_node *m = hold(fx->j, 1, &b);
    assert_ptr_equal(m, n);
    expect_stats(fx->j, 2, 200, 1);
    assert_int_equal(jnl_confirm(fx->j, m), 0);
    take(fx->j, 2);
    expect_empty(fx->j);
}

static void test_confirm_removes_open_item(void **state)
{
    struct fx *fx = *state;
    int owner;
    jopen(fx);
    put(fx->j, 1);
    put(fx->j, 2);
    put(fx->j, 3);
    struct jnl_node *n1 = hold(fx->j, 1, &owner);
    struct jnl_node *n2 = hold(fx->j, 2, &owner);
    /* confirmed out of order */
    assert_int_equal(jnl_confirm(fx->j, n2), 0);
    jnl_release(fx->j, n1);
    take(fx->j, 1);
    take(fx->j, 3);
    expect_empty(fx->j);
    reopen(fx);
    expect_empty(fx->j);
}

static void test_clear_removes_everything_including_open_items(void **state)
{
    struct fx *fx = *state;
    int owner;
    jopen(fx);
    for (int i = 1; i <= 4; i++)
        put(fx->j, i);
    hold(fx->j, 1, &owner);
    struct jnl_node *n2 = hold(fx->j, 2, &owner);
    jnl_release(fx->j, n2);
    assert_int_equal(jnl_clear(fx->j), 0);
    expect_empty(fx->j);
    expect_stats(fx->j, 0, 0, 0);
    put(fx->j, 5);
    reopen(fx);
    take(fx->j, 5);
    expect_empty(fx->j);
    reopen(fx);
    expect_empty(fx->j);
}

static void test_stats_follow_each_operation(void **state)
{
    struct fx *fx = *state;
    int owner;
    struct jnl_stats st0, st1;
    jopen(fx);
    jnl_get_stats(fx->j, &st0);
    assert_int_equal(
        jnl_append(fx->j,
                   &(struct jnl_attrs){.flags = 0, .add_ms = 0, .expire_ms = 0, .priority = JNL_PRIORITY_DEFAULT},
                   "0123456789", 10),
        0);
    jnl_get_stats(fx->j, &st1);
    assert_true(st1.logsize >= st0.logsize + 10);
    assert_int_equal(
        jnl_append(fx->j,
                   &(struct jnl_attrs){.flags = 0, .add_ms = 0, .expire_ms = 0, .priority = JNL_PRIORITY_DEFAULT},
                   "01234567890123456789", 20),
        0);
    assert_int_equal(
        jnl_append(fx->j,
                   &(struct jnl_attrs){.flags = 0, .add_ms = 0, .expire_ms = 0, .priority = JNL_PRIORITY_DEFAULT},
                   "012345678901234567890123456789", 30),
        0);
    expect_stats(fx->j, 3, 60, 0);

    struct jnl_head h;
    struct jnl_node *n;
    assert_int_equal(jnl_head(fx->j, &h), 0);
    assert_int_equal(jnl_hold_head(fx->j, &h, &owner, &n), 0);
    expect_stats(fx->j, 3, 60, 1);
    jnl_release(fx->j, n);
    expect_stats(fx->j, 3, 60, 0);
    assert_int_equal(jnl_head(fx->j, &h), 0);
    assert_ptr_equal(h.node, n);
    assert_int_equal(jnl_hold_head(fx->j, &h, &owner, &n), 0);
    expect_stats(fx->j, 3, 60, 1);
    assert_int_equal(jnl_confirm(fx->j, n), 0);
    expect_stats(fx->j, 2, 50, 0);
    assert_int_equal(jnl_head(fx->j, &h), 0);
    assert_int_equal(jnl_remove_head(fx->j, &h), 0);
    expect_stats(fx->j, 1, 30, 0);
    assert_int_equal(jnl_head(fx->j, &h), 0);
    assert_int_equal(jnl_hold_head(fx->j, &h, &owner, &n), 0);
    expect_stats(fx->j, 1, 30, 1);
    assert_int_equal(jnl_clear(fx->j), 0);
    expect_stats(fx->j, 0, 0, 0);
}

static void test_stats_survive_reopen(void **state)
{
    struct fx *fx = *state;
    int owner;
    jopen(fx);
    for (int i = 1; i <= 5; i++)
        put(fx->j, i);
    take(fx->j, 1);
    hold(fx->j, 2, &owner);
    expect_stats(fx->j, 4, 400, 1);
    reopen(fx);
    expect_stats(fx->j, 4, 400, 0);
}

/* ---- reopen ---- */

static void test_reopen_keeps_order_and_removed_items_stay_removed(void **state)
{
    struct fx *fx = *state;
    jopen(fx);
    for (int i = 1; i <= 6; i++)
        put(fx->j, i);
    take(fx->j, 1);
    take(fx->j, 2);
    reopen(fx);
    take(fx->j, 3);
    reopen(fx);
    for (int i = 4; i <= 6; i++)
        take(fx->j, i);
    expect_empty(fx->j);
    reopen(fx);
    expect_empty(fx->j);
    /* ids go on after a reopen */
    put(fx->j, 7);
    take(fx->j, 7);
}

static void test_reopen_turns_open_items_into_given_back_ones_first(void **state)
{
    struct fx *fx = *state;
    int owner;
    jopen(fx);
    for (int i = 1; i <= 6; i++)
        put(fx->j, i);
    hold(fx->j, 1, &owner);
    struct jnl_node *n2 = hold(fx->j, 2, &owner);
    hold(fx->j, 3, &owner);
    take(fx->j, 4);
    assert_int_equal(jnl_confirm(fx->j, n2), 0);
    reopen(fx);
    expect_stats(fx->j, 4, 400, 0);
    struct jnl_head h;
    /* given-back ones carry their metadata (checked by head_is) and come first */
    head_is(fx->j, 1, &h);
    assert_non_null(h.node);
    assert_int_equal(jnl_remove_head(fx->j, &h), 0);
    head_is(fx->j, 3, &h);
    assert_non_null(h.node);
    assert_int_equal(jnl_remove_head(fx->j, &h), 0);
    take(fx->j, 5);
    take(fx->j, 6);
    expect_empty(fx->j);
    reopen(fx);
    expect_empty(fx->j);
}

static void test_reopen_keeps_given_back_items_first(void **state)
{
    struct fx *fx = *state;
    int owner;
    jopen(fx);
    for (int i = 1; i <= 4; i++)
        put(fx->j, i);
    struct jnl_node *n1 = hold(fx->j, 1, &owner);
    struct jnl_node *n2 = hold(fx->j, 2, &owner);
    jnl_release(fx->j, n2);
    jnl_release(fx->j, n1);
    reopen(fx);
    for (int i = 1; i <= 4; i++)
        take(fx->j, i);
    expect_empty(fx->j);
}

static void test_confirm_of_item_given_back_by_reopen_is_durable(void **state)
{
    struct fx *fx = *state;
    int owner;
    jopen(fx);
    put(fx->j, 1);
    put(fx->j, 2);
    hold(fx->j, 1, &owner);
    reopen(fx);
    struct jnl_node *n = hold(fx->j, 1, &owner);
    assert_int_equal(jnl_confirm(fx->j, n), 0);
    reopen(fx);
    take(fx->j, 2);
    expect_empty(fx->j);
}

static void test_remove_dir_deletes_the_journal(void **state)
{
    struct fx *fx = *state;
    jopen(fx);
    put(fx->j, 1);
    jnl_close(fx->j);
    fx->j = NULL;
    assert_int_equal(jnl_remove_dir(&fx->conf, fx->dir), 0);
    assert_false(tu_exists(fx->dir));
    assert_int_equal(jnl_remove_dir(&fx->conf, fx->dir), 0);
}

/* ---- segments ---- */

static void test_segments_roll_at_segment_size(void **state)
{
    struct fx *fx = *state;
    fx->conf.segment_size = (uint64_t)SEG_WITH(3);
    jopen(fx);
    for (int i = 1; i <= 10; i++)
        put(fx->j, i);
    assert_int_equal(nsegs(fx), 4);
    char seg[PATH_MAX];
    for (uint64_t s = 1; s <= 3; s++) {
        seg_file(fx, s, seg);
        assert_int_equal(tu_file_size(seg), SEG_WITH(3));
    }
    seg_file(fx, 4, seg);
    assert_int_equal(tu_file_size(seg), SEG_WITH(1));
    /* an item larger than a segment gets one of its own */
    assert_int_equal(put_n(fx->j, 11, 2000), 0);
    put(fx->j, 12);
    assert_int_equal(nsegs(fx), 6);
    for (int i = 1; i <= 10; i++)
        take(fx->j, i);
    struct jnl_head h;
    head_is_n(fx->j, 11, 2000, &h);
    assert_int_equal(jnl_remove_head(fx->j, &h), 0);
    take(fx->j, 12);
    expect_empty(fx->j);
}

static void test_items_span_segments_across_reopen(void **state)
{
    struct fx *fx = *state;
    fx->conf.segment_size = (uint64_t)SEG_WITH(2);
    jopen(fx);
    for (int i = 1; i <= 7; i++)
        put(fx->j, i);
    take(fx->j, 1);
    take(fx->j, 2);
    take(fx->j, 3);
    reopen(fx);
    put(fx->j, 8);
    for (int i = 4; i <= 8; i++)
        take(fx->j, i);
    expect_empty(fx->j);
}

static void test_maintain_deletes_fully_consumed_segments(void **state)
{
    struct fx *fx = *state;
    fx->conf.segment_size = (uint64_t)SEG_WITH(3);
    jopen(fx);
    for (int i = 1; i <= 10; i++)
        put(fx->j, i);
    assert_int_equal(nsegs(fx), 4);
    for (int i = 1; i <= 6; i++)
        take(fx->j, i);
    struct jnl_head h;
    head_is(fx->j, 7, &h); /* the cursor is in segment 3 now */
    jnl_maintain(fx->j, 0, 0);
    assert_int_equal(nsegs(fx), 2);
    char seg[PATH_MAX];
    seg_file(fx, 3, seg);
    assert_true(tu_exists(seg));
    for (int i = 7; i <= 10; i++)
        take(fx->j, i);
    expect_empty(fx->j);
    jnl_maintain(fx->j, 0, 0);
    assert_int_equal(nsegs(fx), 1); /* the tail segment stays */
    reopen(fx);
    expect_empty(fx->j);
    put(fx->j, 11);
    take(fx->j, 11);
}

static void test_held_item_pinning_an_old_segment_moves_forward(void **state)
{
    struct fx *fx = *state;
    int owner;
    fx->conf.segment_size = (uint64_t)SEG_WITH(3);
    jopen(fx);
    for (int i = 1; i <= 10; i++)
        put(fx->j, i);
    struct jnl_node *n = hold(fx->j, 1, &owner);
    for (int i = 2; i <= 9; i++)
        take(fx->j, i);
    struct jnl_head h;
    head_is(fx->j, 10, &h); /* the cursor is in segment 4, item 1 pins segment 1 */
    jnl_maintain(fx->j, 0, 0);
    char seg1[PATH_MAX];
    tu_join(seg1, fx->dir, SEG1);
    assert_false(tu_exists(seg1));
    assert_int_equal(nsegs(fx), 1); /* the copy went to the tail segment */
    expect_stats(fx->j, 2, 200, 1);
    assert_int_equal(n->item.id, 1); /* same item, same node, new place */

    /* the moved copy is skipped by the cursor, and comes back first after a restart */
    head_is(fx->j, 10, &h);
    reopen(fx);
    expect_stats(fx->j, 2, 200, 0);
    head_is(fx->j, 1, &h); /* payload checked at its new place */
    n = hold(fx->j, 1, &owner);
    head_is(fx->j, 10, &h);
    take(fx->j, 10);
    expect_empty(fx->j);
    assert_int_equal(jnl_confirm(fx->j, n), 0);
    expect_stats(fx->j, 0, 0, 0);
    reopen(fx);
    expect_empty(fx->j);
}

static void test_damaged_oldest_segment_header_skips_it_and_still_opens(void **state)
{
    struct fx *fx = *state;
    fx->conf.segment_size = (uint64_t)SEG_WITH(3);
    jopen(fx);
    for (int i = 1; i <= 7; i++)
        put(fx->j, i);
    assert_int_equal(nsegs(fx), 3);
    jnl_close(fx->j);
    fx->j = NULL;
    /* No usable ack log, so the cursor must start from the oldest segment,
     * whose header is damaged. */
    char path[PATH_MAX];
    tu_join(path, fx->dir, "acks.0");
    assert_int_equal(tu_unlink(path), 0);
    seg_file(fx, 1, path);
    int fd = tu_open(path, O_WRONLY);
    assert_int_equal(tu_pwrite(fd, "XX", 2, 3), 2);
    tu_close(fd);
    assert_int_equal(jnl_open(&fx->j, &fx->conf, fx->dir, 0), 0);
    struct jnl_head h;
    for (int i = 4; i <= 7; i++)
        take(fx->j, i); /* the items of segment 1 are lost; the rest are served */
    assert_int_equal(jnl_head(fx->j, &h), -ENOENT);
    (void)h;
}

/* Consumed segments are deleted once the removals that freed them are
 * durable, and then hold no space through fds kept for a sync. */
static void test_deleted_segments_hold_no_space_while_a_sync_is_pending(void **state)
{
    struct fx *fx = *state;
    fx->conf.segment_size = (uint64_t)SEG_WITH(2);
    fx->conf.sync_never = 0; /* rolled segments' fds wait for a sync */
    jopen(fx);
    for (int i = 1; i <= 7; i++)
        put(fx->j, i);
    for (int i = 1; i <= 6; i++)
        take(fx->j, i);
    struct jnl_head h;
    head_is(fx->j, 7, &h);
    jnl_maintain(fx->j, 1, 0); /* no sync has run: the removals are not durable */
    assert_int_equal(nsegs(fx), 4);
    jnl_maintain(fx->j, 2, 1); /* the sync that covers them completed */
    assert_int_equal(nsegs(fx), 1);
    /* none left open (-1: the platform cannot tell; testplat.h) */
    assert_true(tp_open_deleted(fx->dir, "/seg-") <= 0);
}

static void test_held_item_within_slack_is_not_moved(void **state)
{
    struct fx *fx = *state;
    int owner;
    fx->conf.segment_size = (uint64_t)SEG_WITH(3);
    jopen(fx);
    for (int i = 1; i <= 5; i++)
        put(fx->j, i);
    struct jnl_node *n = hold(fx->j, 1, &owner);
    for (int i = 2; i <= 3; i++)
        take(fx->j, i);
    struct jnl_head h;
    head_is(fx->j, 4, &h); /* cursor in segment 2: one segment behind, within the slack */
    jnl_maintain(fx->j, 0, 0);
    char seg1[PATH_MAX];
    tu_join(seg1, fx->dir, SEG1);
    assert_true(tu_exists(seg1));
    assert_int_equal(n->item.seg, 1);
}

static void test_clear_lets_maintain_delete_old_segments(void **state)
{
    struct fx *fx = *state;
    int owner;
    fx->conf.segment_size = (uint64_t)SEG_WITH(2);
    jopen(fx);
    for (int i = 1; i <= 7; i++)
        put(fx->j, i);
    hold(fx->j, 1, &owner);
    assert_int_equal(jnl_clear(fx->j), 0);
    jnl_maintain(fx->j, 0, 0);
    assert_int_equal(nsegs(fx), 1);
    reopen(fx);
    expect_empty(fx->j);
    expect_stats(fx->j, 0, 0, 0);
}

/* ---- the ack log ---- */

/* A model of the journal's live items for the randomized run. */
struct model {
    int returned[64], nreturned; /* sorted */
    struct {
        int id;
        struct jnl_node *node;
    } open[64];
    int nopen;
    int cursor, next; /* ids [cursor, next) were never handed out */
};

static int model_head(const struct model *m)
{
    return m->nreturned ? m->returned[0] : m->cursor < m->next ? m->cursor : 0;
}

static void model_take_head(struct model *m)
{
    if (m->nreturned) {
        memmove(m->returned, m->returned + 1, (size_t)--m->nreturned * sizeof(int));
    } else {
        m->cursor++;
    }
}

static void model_give_back(struct model *m, int id)
{
    int k = 0;
    while (k < m->nreturned && m->returned[k] < id)
        k++;
    memmove(m->returned + k + 1, m->returned + k, (size_t)(m->nreturned - k) * sizeof(int));
    m->returned[k] = id;
    m->nreturned++;
}

static void model_check_drain(struct jnl *j, struct model *m)
{
    int id;
    while ((id = model_head(m)) != 0) {
        take(j, id);
        model_take_head(m);
    }
    expect_empty(j);
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static void test_ack_compaction_keeps_state_and_files_small(void **state)
{
    struct fx *fx = *state;
    int owner;
    fx->conf.ack_compact_bytes = 512;
    fx->conf.sync_never = 1;
    fx->conf.segment_size = (uint64_t)SEG_WITH(8);
    jopen(fx);
    struct model m = {.cursor = 1, .next = 1};
    uint32_t seed = 12345;
    long long max_ack = 0;
    char ack0[PATH_MAX], ack1[PATH_MAX];
    tu_join(ack0, fx->dir, "acks.0");
    tu_join(ack1, fx->dir, "acks.1");
    for (int op = 0; op < 3000; op++) {
        uint32_t r = lcg(&seed) % 100;
        int head = model_head(&m);
        if (r < 40 || !head) {
            put(fx->j, m.next++);
        } else if (r < 65) {
            take(fx->j, head);
            model_take_head(&m);
        } else if (r < 80 && m.nopen < 4) {
            struct jnl_node *n = hold(fx->j, head, &owner);
            model_take_head(&m);
            m.open[m.nopen].id = head;
            m.open[m.nopen].node = n;
            m.nopen++;
        } else if (m.nopen > 0) {
            int k = (int)(lcg(&seed) % (uint32_t)m.nopen);
            if (r < 90) {
                jnl_release(fx->j, m.open[k].node);
                model_give_back(&m, m.open[k].id);
            } else {
                assert_int_equal(jnl_confirm(fx->j, m.open[k].node), 0);
            }
            m.open[k] = m.open[--m.nopen];
        }
        assert_int_equal(jnl_flush(fx->j), 0); /* the end of a loop turn */
        jnl_maintain(fx->j, 0, 0);
        long long s0 = tu_file_size(ack0), s1 = tu_file_size(ack1);
        if (s0 > max_ack)
            max_ack = s0;
        if (s1 > max_ack)
            max_ack = s1;
    }
    /* it was rewritten (both files exist) and never grew past the limit much */
    assert_true(tu_exists(ack0));
    assert_true(tu_exists(ack1));
    assert_true(max_ack <= 512 + 64 * 8);
    uint64_t live = (uint64_t)(m.next - m.cursor + m.nreturned + m.nopen);
    expect_stats(fx->j, live, live * 100, (uint64_t)m.nopen);

    reopen(fx);
    for (int k = 0; k < m.nopen; k++)
        model_give_back(&m, m.open[k].id);
    m.nopen = 0;
    expect_stats(fx->j, live, live * 100, 0);
    /* the old segments were reclaimed along the way */
    assert_true(nsegs(fx) < (m.next - 1) / 8);
    model_check_drain(fx->j, &m);
    reopen(fx);
    expect_empty(fx->j);
}

/* With fsync on, the ack log is only rewritten once its checkpoint is durable. */
static void test_ack_rewrite_waits_for_durable_checkpoint(void **state)
{
    struct fx *fx = *state;
    fx->conf.ack_compact_bytes = 256;
    fx->conf.sync_never = 0;
    jopen(fx);
    char ack0[PATH_MAX], ack1[PATH_MAX];
    tu_join(ack0, fx->dir, "acks.0");
    tu_join(ack1, fx->dir, "acks.1");
    for (int i = 1; i <= 12; i++)
        put(fx->j, i);
    for (int i = 1; i <= 4; i++)
        take(fx->j, i);
    assert_int_equal(tu_file_size(ack0), JF_ACK_HDR + 5 * JF_ACK_REC);
    /* the first checkpoint has epoch 0, done */
    jnl_maintain(fx->j, 1, 0);
    assert_int_equal(tu_file_size(ack1), JF_ACK_HDR + JF_ACK_REC);
    for (int i = 5; i <= 8; i++)
        take(fx->j, i);
    assert_int_equal(tu_file_size(ack1), JF_ACK_HDR + 5 * JF_ACK_REC);
    /* its checkpoint needs sync 1, which has not completed */
    jnl_maintain(fx->j, 2, 0);
    assert_int_equal(tu_file_size(ack0), JF_ACK_HDR + 5 * JF_ACK_REC);
    assert_int_equal(tu_file_size(ack1), JF_ACK_HDR + 5 * JF_ACK_REC);
    jnl_maintain(fx->j, 2, 1);
    assert_int_equal(tu_file_size(ack0), JF_ACK_HDR + JF_ACK_REC);
    reopen(fx);
    for (int i = 9; i <= 12; i++)
        take(fx->j, i);
    expect_empty(fx->j);
}

/* Many live items: their checkpoint alone passes ack_compact_bytes. The log
 * is rewritten only once that at least halves it (it was rewritten at every
 * sync: each second, 6.4 MB for 100,000 open items, on the loop), and a
 * rewrite is a few large writes, not one per record. */
static void test_ack_log_of_many_open_items_is_rewritten_rarely_in_few_writes(void **state)
{
    enum { N = 600, TURNS = 3 * N };
    struct fx *fx = *state;
    int owner;
    struct jnl_node *held[N];
    fx->conf.io = &fx->fault.io;
    fx->conf.ack_compact_bytes = 256;
    fx->conf.sync_never = 1;
    jopen(fx);
    for (int i = 1; i <= N; i++)
        put(fx->j, i);
    for (int i = 1; i <= N; i++) {
        held[i - 1] = hold(fx->j, i, &owner);
        jnl_maintain(fx->j, 0, 0);
    }
    char ack0[PATH_MAX], ack1[PATH_MAX];
    tu_join(ack0, fx->dir, "acks.0");
    tu_join(ack1, fx->dir, "acks.1");
    long long ckpt = JF_ACK_HDR + (1 + N) * JF_ACK_REC, max_ack = 0;
    long rewrites = 0, max_writes = 0;
    for (int t = 0; t < TURNS; t++) { /* each turn gives one back and takes it again: 2 records */
        int k = t % N;
        jnl_release(fx->j, held[k]);
        assert_int_equal(jnl_flush(fx->j), 0);
        held[k] = hold(fx->j, k + 1, &owner);
        long r0 = fx->fault.ack_rewrites, w0 = fx->fault.pwrites;
        jnl_maintain(fx->j, 0, 0);
        if (fx->fault.ack_rewrites > r0) {
            rewrites++;
            max_writes = fx->fault.pwrites - w0 > max_writes ? fx->fault.pwrites - w0 : max_writes;
        }
        long long s0 = tu_file_size(ack0), s1 = tu_file_size(ack1);
        max_ack = s0 > max_ack ? s0 : max_ack;
        max_ack = s1 > max_ack ? s1 : max_ack;
    }
    /* 2 x TURNS records, a rewrite after about N + 1 of them */
    assert_true(rewrites >= 2);
    assert_true(rewrites <= 2 * TURNS / N + 1);
    assert_true(max_ack <= 2 * ckpt + 2 * JF_ACK_REC);
    /* 38 KiB of checkpoint: 3 writes of the buffer (and the folder's) */
    assert_true(max_writes <= 6);
    for (int i = 0; i < N; i++)
        jnl_release(fx->j, held[i]);
    assert_int_equal(jnl_flush(fx->j), 0);
    reopen(fx);
    expect_stats(fx->j, N, N * 100, 0);
    for (int i = 1; i <= N; i++)
        take(fx->j, i);
    expect_empty(fx->j);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_new_journal_is_empty),
        T(test_open_without_create_of_missing_journal_is_enoent),
        T(test_append_then_head_returns_items_in_order_intact),
        T(test_remove_head_advances_until_empty),
        T(test_large_payload_round_trip),
        T(test_read_of_damaged_payload_is_ebadmsg),
        T(test_hold_then_release_puts_item_before_newer_ones),
        T(test_several_released_come_back_lowest_id_first),
        T(test_given_back_item_can_be_held_again),
        T(test_confirm_removes_open_item),
        T(test_clear_removes_everything_including_open_items),
        T(test_stats_follow_each_operation),
        T(test_stats_survive_reopen),
        T(test_reopen_keeps_order_and_removed_items_stay_removed),
        T(test_reopen_turns_open_items_into_given_back_ones_first),
        T(test_reopen_keeps_given_back_items_first),
        T(test_confirm_of_item_given_back_by_reopen_is_durable),
        T(test_remove_dir_deletes_the_journal),
        T(test_segments_roll_at_segment_size),
        T(test_items_span_segments_across_reopen),
        T(test_maintain_deletes_fully_consumed_segments),
        T(test_held_item_pinning_an_old_segment_moves_forward),
        T(test_held_item_within_slack_is_not_moved),
        T(test_deleted_segments_hold_no_space_while_a_sync_is_pending),
        T(test_damaged_oldest_segment_header_skips_it_and_still_opens),
        T(test_clear_lets_maintain_delete_old_segments),
        T(test_ack_compaction_keeps_state_and_files_small),
        T(test_ack_rewrite_waits_for_durable_checkpoint),
        T(test_ack_log_of_many_open_items_is_rewritten_rarely_in_few_writes),
    };
#undef T
    return cmocka_run_group_tests(tests, measure_rec, NULL);
}
