/* Unit tests for delivery counts and moves between queues
 * (queue/transfer.c, the XFER and COUNT records): counts survive a reopen,
 * max_deliveries makes dead letters (also of items open at a crash), kick
 * sends them back, and a move cut short after any of its writes leaves the
 * item in exactly one place once its queue opens again. */
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

static int setup(void **state) { return fx_setup(state, "[queue \"q\"]\nmax_deliveries = 2\n"); }
static int teardown(void **state) { return fx_teardown(state); }

static void qput(struct queue *q, const char *s)
{
    assert_int_equal(queue_put(q, &(struct jnl_attrs){.priority = JNL_PRIORITY_DEFAULT}, s, strlen(s)), 0);
}

/* Gets the head in mode, checks it is s and its delivery count (as the
 * item carried it before this hand-out); returns the open record. */
static struct qopen *qget(struct queue *q, enum qget_mode mode, const char *s, uint32_t deliveries)
{
    struct qopen *o = NULL;
    struct qitem it;
    int rc = queue_get(q, mode, &o, &it);
    if (rc != 0)
        fail_msg("queue %s: expected \"%s\", got rc %d", q->name, s, rc);
    assert_int_equal(it.len, strlen(s));
    assert_memory_equal(it.data, s, it.len);
    assert_int_equal(it.where.deliveries, deliveries);
    qitem_release(&it);
    return o;
}

static uint64_t items(struct queue *q)
{
    struct jnl_stats st;
    assert_int_equal(registry_queue_stats(q->reg, q, &st), 0);
    return st.items;
}

static void qempty(struct queue *q)
{
    struct qopen *o = NULL;
    struct qitem it;
    assert_int_equal(queue_get(q, QGET_REMOVE, &o, &it), -ENOENT);
}

/* The start of q's newest ack file (highest generation) into raw; returns
 * its generation (0: none readable). */
static uint64_t newest_acks(struct queue *q, unsigned char raw[3 * JF_ACK_REC])
{
    unsigned char other[3 * JF_ACK_REC];
    uint64_t gen = 0;
    for (int i = 0; i < 2; i++) {
        char path[PATH_MAX * 2];
        snprintf(path, sizeof(path), "%s/acks.%d", q->dir, i);
        FILE *f = fopen(path, "rb");
        struct jf_ack_hdr h;
        if (f && fread(other, 1, sizeof(other), f) == sizeof(other) && jf_ack_hdr_decode(other, &h) == 0 &&
            h.generation > gen) {
            gen = h.generation;
            memcpy(raw, other, sizeof(other));
        }
        if (f)
            fclose(f);
    }
    return gen;
}

static void test_delivery_counts_survive_a_reopen(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "other"); /* no max_deliveries */
    qput(q, "a");
    queue_abort(qget(q, QGET_OPEN, "a", 0));
    qget(q, QGET_OPEN, "a", 1); /* a COUNT record: open again */
    reopen(fx);
    q = registry_find(fx->r, "other", 5);
    queue_abort(qget(q, QGET_OPEN, "a", 2));
    /* and through a checkpoint of the ack log (OUT records carry counts):
     * a tiny ack log is rewritten once it is more than twice its
     * checkpoint (the cursor and a's OUT), so a few hand-outs do it */
    fx->conf.ack_compact_bytes = 64;
    reopen(fx);
    q = registry_find(fx->r, "other", 5);
    qput(q, "b");
    unsigned char raw[3 * JF_ACK_REC];
    uint64_t gen0 = newest_acks(q, raw), gen = gen0;
    uint32_t d = 3;
    while (gen == gen0 && d < 20) {
        queue_abort(qget(q, QGET_OPEN, "a", d++));
        assert_int_equal(registry_flush(fx->r), 0); /* the end of a loop turn */
        gen = newest_acks(q, raw);
    }
    assert_true(gen > gen0);
    /* the log now starts with a checkpoint: the cursor, then a's OUT */
    struct jf_ack ckpt, out;
    assert_int_equal(jf_ack_decode(raw + JF_ACK_HDR, &ckpt), 0);
    assert_int_equal(jf_ack_decode(raw + JF_ACK_HDR + JF_ACK_REC, &out), 0);
    assert_int_equal(ckpt.type, JF_ACK_CKPT);
    assert_int_equal(out.type, JF_ACK_OUT);
    assert_int_equal(out.deliveries, d);
    reopen(fx);
    q = registry_find(fx->r, "other", 5);
    qget(q, QGET_REMOVE, "a", d);
    qget(q, QGET_REMOVE, "b", 0);
}

static void test_max_deliveries_makes_a_dead_letter_and_kick_brings_it_back(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    qput(q, "a");
    qput(q, "b");
    queue_abort(qget(q, QGET_OPEN, "a", 0));
    queue_abort(qget(q, QGET_OPEN, "a", 1)); /* the second give-back: a dead letter */
    assert_int_equal(q->dead_lettered, 1);
    struct queue *dlq = registry_find(fx->r, "q_errors", 8);
    assert_non_null(dlq);
    assert_int_equal(items(dlq), 1);
    assert_int_equal(items(q), 1);
    reopen(fx);
    q = registry_find(fx->r, "q", 1);
    dlq = registry_find(fx->r, "q_errors", 8);
    uint64_t n;
    assert_int_equal(queue_kick(dlq, 10, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(items(dlq), 0);
    qget(q, QGET_REMOVE, "b", 0);
    qget(q, QGET_REMOVE, "a", 0); /* back, its count reset */
    qempty(q);
}

static void test_items_open_at_a_crash_that_reached_the_limit_are_dead_letters_at_open(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    qput(q, "a");
    qput(q, "b");
    queue_abort(qget(q, QGET_OPEN, "a", 0));
    qget(q, QGET_OPEN, "a", 1); /* open at the "crash" */
    reopen(fx);
    q = registry_find(fx->r, "q", 1);
    qget(q, QGET_REMOVE, "b", 0);
    qempty(q);
    struct queue *dlq = registry_find(fx->r, "q_errors", 8);
    assert_non_null(dlq);
    qget(dlq, QGET_REMOVE, "a", 2);
}

/* Cuts a move from q to q_errors short after its XFER record (copy == 0)
 * or after its copy too (copy == 1), as a kill -9 would, then reopens. If
 * other is set, the dead-letter queue takes another item before q is used
 * again (queues open lazily). The item ends up in q_errors once, and gone
 * from q. */
static void cut_short(struct fx *fx, int copy, int other)
{
    struct queue *q = mkq(fx, "q"), *dlq = mkq(fx, "q_errors");
    qput(q, "a");
    qput(q, "b");
    struct jnl *j, *dj;
    struct jnl_head h;
    struct jnl_node *n;
    q->pinned++;
    assert_int_equal(registry_jnl(fx->r, dlq, &dj), 0);
    uint64_t dst_id = jnl_next_id(dj);
    assert_int_equal(registry_jnl(fx->r, q, &j), 0);
    assert_int_equal(jnl_head(j, &h), 0);
    assert_int_equal(
        jnl_xfer_begin(j, &h, &(struct jnl_xfer){.dir = dlq->dir_id, .id = dst_id, .reason = JF_REASON_BURIED}, &n), 0);
    if (copy) {
        struct jnl_attrs a = {.priority = JNL_PRIORITY_DEFAULT,
                              .origin = "q",
                              .origin_len = 1,
                              .origin_id = h.item.id,
                              .reason = JF_REASON_BURIED};
        assert_int_equal(jnl_append(dj, &a, "a", 1), 0);
    }
    q->pinned--;
    /* the item in transfer is not handed out meanwhile */
    qget(q, QGET_PEEK, "b", 0);
    reopen(fx);
    dlq = registry_find(fx->r, "q_errors", 8);
    if (other)
        qput(dlq, "x");
    q = registry_find(fx->r, "q", 1);
    qget(q, QGET_REMOVE, "b", 0);
    qempty(q);
    assert_int_equal(items(dlq), other ? 2 : 1);
    qget(dlq, QGET_REMOVE, other && copy ? "a" : other ? "x" : "a", 0);
    if (other)
        qget(dlq, QGET_REMOVE, copy ? "x" : "a", 0);
    qempty(dlq);
    reopen(fx); /* and nothing changes at the next start */
    q = registry_find(fx->r, "q", 1);
    dlq = registry_find(fx->r, "q_errors", 8);
    qempty(q);
    qempty(dlq);
}

static void test_move_cut_short_after_its_xfer_record(void **state) { cut_short(*state, 0, 0); }
static void test_move_cut_short_after_its_copy(void **state) { cut_short(*state, 1, 0); }
static void test_move_cut_short_then_the_destination_takes_a_set_first(void **state)
{
    cut_short(*state, 0, 1);
    teardown(state);
    setup(state);
    cut_short(*state, 1, 1);
}

/* A source deleted and made again reuses item ids: a dead letter of the
 * old one is never taken for the copy of a new one's move. */
static void test_a_recreated_source_is_not_fooled_by_an_old_dead_letter(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    qput(q, "old");
    assert_int_equal(queue_bury(qget(q, QGET_OPEN, "old", 0)), 0);
    assert_int_equal(registry_delete(fx->r, q), 0);
    q = mkq(fx, "q");
    qput(q, "new"); /* the same id as "old" had */
    struct queue *dlq = registry_find(fx->r, "q_errors", 8);
    struct jnl *j, *dj;
    struct jnl_head h;
    struct jnl_node *n;
    q->pinned++;
    assert_int_equal(registry_jnl(fx->r, dlq, &dj), 0);
    assert_int_equal(registry_jnl(fx->r, q, &j), 0);
    assert_int_equal(jnl_head(j, &h), 0);
    assert_int_equal(
        jnl_xfer_begin(j, &h, &(struct jnl_xfer){.dir = dlq->dir_id, .id = jnl_next_id(dj), .reason = JF_REASON_BURIED},
                       &n),
        0);
    q->pinned--;
    reopen(fx); /* the crash: XFER written, no copy */
    q = registry_find(fx->r, "q", 1);
    dlq = registry_find(fx->r, "q_errors", 8);
    qempty(q);
    qget(dlq, QGET_REMOVE, "old", 1);
    qget(dlq, QGET_REMOVE, "new", 0);
    qempty(dlq);
}

/* With fsyncs, a move's removal from its source is recorded only once a
 * sync that covers the copy has completed: until then the item is held in
 * the source (never handed out), so a power cut cannot keep the removal
 * and lose the copy. */
static void test_the_removal_waits_for_a_sync_covering_the_copy(void **state)
{
    struct fx *fx = *state;
    fx->conf.sync_never = 0;
    reopen(fx);
    fx->r->sync_epoch_next = 1; /* as the syncer starts it (sync.c) */
    struct queue *q = mkq(fx, "other"), *dlq;
    qput(q, "a");
    assert_int_equal(queue_bury(qget(q, QGET_OPEN, "a", 0)), 0);
    struct jnl *j;
    assert_int_equal(registry_jnl(fx->r, q, &j), 0);
    assert_false(jnl_idle(j));     /* the item is held in transfer, its CONFIRM not written */
    assert_int_equal(items(q), 0); /* counted in the destination only */
    qempty(q);
    dlq = registry_find(fx->r, "other_errors", 12);
    assert_int_equal(items(dlq), 1);
    reopen(fx); /* a crash before any sync: the copy is there, the removal follows */
    fx->r->sync_epoch_next = 1;
    q = registry_find(fx->r, "other", 5);
    dlq = registry_find(fx->r, "other_errors", 12);
    qempty(q);
    assert_int_equal(items(dlq), 1);
    assert_int_equal(registry_jnl(fx->r, q, &j), 0);
    assert_false(jnl_idle(j));
    /* a sync starts and completes */
    fx->r->sync_epoch_done = fx->r->sync_epoch_next++;
    registry_after_sync(fx->r);
    registry_flush(fx->r);
    assert_int_equal(registry_jnl(fx->r, q, &j), 0);
    assert_true(jnl_idle(j));
    reopen(fx);
    q = registry_find(fx->r, "other", 5);
    dlq = registry_find(fx->r, "other_errors", 12);
    qempty(q);
    qget(dlq, QGET_REMOVE, "a", 1);
}

static void test_a_move_whose_copy_fails_leaves_the_item_given_back(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    qput(q, "a");
    struct jnl *j;
    struct jnl_head h;
    struct jnl_node *n;
    assert_int_equal(registry_jnl(fx->r, q, &j), 0);
    assert_int_equal(jnl_head(j, &h), 0);
    assert_int_equal(jnl_xfer_begin(j, &h, &(struct jnl_xfer){.dir = 12345, .id = 1, .reason = JF_REASON_BURIED}, &n),
                     0);
    assert_int_equal(jnl_xfer_cancel(j, n), 0);
    qget(q, QGET_PEEK, "a", 0);
    reopen(fx);
    q = registry_find(fx->r, "q", 1);
    qget(q, QGET_REMOVE, "a", 0);
    qempty(q);
    assert_null(registry_find(fx->r, "q_errors", 8));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_delivery_counts_survive_a_reopen),
        T(test_max_deliveries_makes_a_dead_letter_and_kick_brings_it_back),
        T(test_items_open_at_a_crash_that_reached_the_limit_are_dead_letters_at_open),
        T(test_move_cut_short_after_its_xfer_record),
        T(test_move_cut_short_after_its_copy),
        T(test_move_cut_short_then_the_destination_takes_a_set_first),
        T(test_a_recreated_source_is_not_fooled_by_an_old_dead_letter),
        T(test_the_removal_waits_for_a_sync_covering_the_copy),
        T(test_a_move_whose_copy_fails_leaves_the_item_given_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
