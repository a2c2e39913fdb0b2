/* Unit tests for the journal's I/O: handing fds to syncs, the hot tail,
 * deferred appends written in one batch, torn and damaged tails, and injected
 * faults (ENOSPC, short writes, EIO).
 *
 * Every test gets a fresh directory in the temporary folder (removed
 * afterwards); the journal itself lives in <tmp>/q. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "journal_fixture.h"

static void test_sync_fds_hands_out_fds_and_marks_clean(void **state)
{
    struct fx *fx = *state;
    jopen(fx);
    int fds[16];
    int n = jnl_sync_fds(fx->j, fds, 16);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++)
        tu_close(fds[i]);
    assert_false(jnl_dirty(fx->j));
    put(fx->j, 1);
    assert_true(jnl_dirty(fx->j));
    assert_int_equal(jnl_sync_fds(fx->j, fds, 1), -ENOBUFS);
    /* Only the file written is synced: a set wrote the segment only... */
    n = jnl_sync_fds(fx->j, fds, 16);
    assert_int_equal(n, 1);
    for (int i = 0; i < n; i++) {
        assert_true(fds[i] >= 0);
        assert_int_equal(tu_fsync(fds[i]), 0);
        tu_close(fds[i]);
    }
    assert_false(jnl_dirty(fx->j));
    assert_int_equal(jnl_sync_fds(fx->j, fds, 16), 0);
    /* ... and a removal the ack log only. */
    take(fx->j, 1);
    n = jnl_sync_fds(fx->j, fds, 16);
    assert_int_equal(n, 1);
    tu_close(fds[0]);
    assert_false(jnl_dirty(fx->j));
}

/* The only segment's header is damaged: recovery starts it over, and the
 * items its ack log names are gone. New items take ids after every one the
 * log names, and come back after a restart (an id taken for an old, removed
 * one lost them: found by fuzz_journal). */
static void test_segment_started_over_keeps_new_items(void **state)
{
    struct fx *fx = *state;
    jopen(fx);
    for (int i = 1; i <= 6; i++)
        put(fx->j, i);
    take(fx->j, 1);
    take(fx->j, 2);
    take(fx->j, 3);
    struct jnl_node *held = hold(fx->j, 4, fx);
    (void)held;
    jnl_close(fx->j);
    fx->j = NULL;
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", fx->dir, SEG1);
    int fd = tu_open(path, O_WRONLY);
    assert_int_equal(tu_pwrite(fd, "garbage!", 8, 20), 8); /* inside the header: its seal fails */
    tu_close(fd);
    assert_int_equal(jnl_open(&fx->j, &fx->conf, fx->dir, 0), 0);
    struct jnl_head h;
    assert_int_equal(jnl_head(fx->j, &h), -ENOENT); /* the old items are gone, the held one too */
    for (int k = 0; k < 3; k++)
        assert_int_equal(put_n(fx->j, 100 + k, 100), 0);
    reopen(fx);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(jnl_head(fx->j, &h), 0);
        assert_int_equal(h.item.flags, 100u + (unsigned)k);
        assert_true(h.item.id > 4); /* after every id the old ack log named */
        assert_int_equal(jnl_remove_head(fx->j, &h), 0);
    }
    assert_int_equal(jnl_head(fx->j, &h), -ENOENT);
}

/* Where the platform has no folder fsync (open_dir: -EOPNOTSUPP), a sync
 * covers the files alone and the journal comes back whole. */
static void test_no_folder_fsync_platform(void **state)
{
    struct fx *fx = *state;
    fx->conf.io = &fx->fault.io;
    fx->fault.no_dir_sync = 1;
    jopen(fx);
    put(fx->j, 1);
    put(fx->j, 2);
    int fds[16];
    int n = jnl_sync_fds(fx->j, fds, 16);
    assert_true(n >= 1); /* the segment (and ack log), no folder */
    for (int i = 0; i < n; i++)
        tu_close(fds[i]);
    assert_false(jnl_dirty(fx->j));
    take(fx->j, 1);
    reopen(fx);
    take(fx->j, 2);
    fx->fault.no_dir_sync = 0;
}

/* A failure on the way to an fsync (here: no fd left to duplicate) hands out
 * nothing and leaves the journal dirty, so the sync is not reported done and
 * the next one covers the writes. */
static void test_sync_fds_failure_leaves_journal_dirty(void **state)
{
    struct fx *fx = *state;
    fx->conf.io = &fx->fault.io;
    jopen(fx);
    int fds[16];
    int n = jnl_sync_fds(fx->j, fds, 16);
    for (int i = 0; i < n; i++)
        tu_close(fds[i]);
    put(fx->j, 1);
    take(fx->j, 1);
    put(fx->j, 2);
    assert_true(jnl_dirty(fx->j));
    fx->fault.dup_err = -EMFILE;
    for (int i = 0; i < 16; i++)
        fds[i] = -1;
    assert_int_equal(jnl_sync_fds(fx->j, fds, 16), -EMFILE);
    assert_true(jnl_dirty(fx->j));
    fx->fault.dup_err = 0;
    n = jnl_sync_fds(fx->j, fds, 16);
    assert_int_equal(n, 2); /* the segment and the ack log, both still owed */
    for (int i = 0; i < n; i++)
        tu_close(fds[i]);
    assert_false(jnl_dirty(fx->j));
    jnl_mark_unsynced(fx->j);
    assert_true(jnl_dirty(fx->j));
}

/* The hot tail: an item taken right after it was appended is served from
 * the batch just written, without reading the segment; an older one is read. */
static void test_item_taken_right_after_its_append_needs_no_read(void **state)
{
    struct fx *fx = *state;
    fx->conf.io = &fx->fault.io;
    jopen(fx);
    put(fx->j, 1);
    fx->fault.preads = 0;
    take(fx->j, 1);
    assert_int_equal(fx->fault.preads, 0);
    put(fx->j, 2);
    put(fx->j, 3);
    take(fx->j, 2);
    assert_true(fx->fault.preads > 0);
    fx->fault.preads = 0;
    take(fx->j, 3);
    expect_empty(fx->j);
}

/* ---- deferred appends: one write per batch ---- */

static struct jnl_ticket *put_deferred(struct jnl *j, int i)
{
    char buf[100];
    struct jnl_ticket *t = NULL;
    payload_of(i, buf, sizeof(buf));
    struct jnl_attrs a = {.flags = (uint32_t)i, .add_ms = 1000u + (uint64_t)i, .priority = JNL_PRIORITY_DEFAULT};
    assert_int_equal(jnl_append_deferred(j, &a, buf, sizeof(buf), &t), 0);
    assert_non_null(t);
    return t;
}

static void test_deferred_appends_go_to_disk_in_one_write(void **state)
{
    struct fx *fx = *state;
    fx->conf.io = &fx->fault.io;
    jopen(fx);
    put(fx->j, 1);
    long before = fx->fault.pwrites;
    struct jnl_ticket *t[3];
    for (int i = 0; i < 3; i++)
        t[i] = put_deferred(fx->j, 2 + i);
    assert_int_equal(fx->fault.pwrites, before);
    assert_true(jnl_pending(fx->j));
    assert_int_equal(t[0]->state, 0);
    expect_stats(fx->j, 4, 400, 0); /* they count at once */
    assert_int_equal(jnl_flush(fx->j), 0);
    assert_int_equal(fx->fault.pwrites, before + 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(t[i]->state, 1);
        jnl_ticket_put(t[i]);
    }
    assert_false(jnl_pending(fx->j));
    reopen(fx);
    for (int i = 1; i <= 4; i++)
        take(fx->j, i);
    expect_empty(fx->j);
}

/* A get that reaches items not written yet writes them first: nothing is
 * handed out before it is on disk. */
static void test_head_writes_deferred_items_before_handing_them_out(void **state)
{
    struct fx *fx = *state;
    jopen(fx);
    struct jnl_ticket *t = put_deferred(fx->j, 1);
    struct jnl_head h;
    head_is(fx->j, 1, &h);
    assert_int_equal(t->state, 1);
    assert_false(jnl_pending(fx->j));
    jnl_ticket_put(t);
    assert_int_equal(jnl_remove_head(fx->j, &h), 0);
    expect_empty(fx->j);
}

/* A batch whose write fails leaves nothing behind: its tickets say why, its
 * items are forgotten (they were never handed out), and the journal goes on. */
static void test_failed_deferred_write_forgets_its_items(void **state)
{
    struct fx *fx = *state;
    fx->conf.io = &fx->fault.io;
    jopen(fx);
    put(fx->j, 1);
    char seg[PATH_MAX];
    tu_join(seg, fx->dir, SEG1);
    long long size = tu_file_size(seg);
    struct jnl_ticket *a = put_deferred(fx->j, 2), *b = put_deferred(fx->j, 3);
    fx->fault.pwrite_err = -ENOSPC;
    fx->fault.budget = 20; /* a partial write, then the error */
    assert_int_equal(jnl_flush(fx->j), -ENOSPC);
    fx->fault.pwrite_err = 0;
    assert_int_equal(a->state, -ENOSPC);
    assert_int_equal(b->state, -ENOSPC);
    jnl_ticket_put(a);
    jnl_ticket_put(b);
    assert_int_equal(tu_file_size(seg), size);
    expect_stats(fx->j, 1, 100, 0);
    struct jnl_ticket *c = put_deferred(fx->j, 2); /* the ids are given again */
    assert_int_equal(jnl_flush(fx->j), 0);
    jnl_ticket_put(c);
    fx->conf.io = jio_posix();
    reopen(fx);
    take(fx->j, 1);
    take(fx->j, 2);
    expect_empty(fx->j);
}

/* ---- torn and damaged tails ---- */

/* Builds a journal with items 1..5 (100 bytes each), item 1 removed, and
 * closes it; returns the path of its segment. */
static void build_five(struct fx *fx, char *seg)
{
    jopen(fx);
    for (int i = 1; i <= 5; i++)
        put(fx->j, i);
    take(fx->j, 1);
    jnl_close(fx->j);
    fx->j = NULL;
    tu_last(fx->dir, "seg-", ".dat", seg);
    assert_int_equal(tu_file_size(seg), SEG_WITH(5));
}

/* After the last record was damaged: 2..4 are served, 5 is gone, the file was
 * cut back to the end of record 4, and new items go on from there. */
static void expect_cut_after_four(struct fx *fx, const char *seg)
{
    reopen(fx);
    assert_int_equal(tu_file_size(seg), SEG_WITH(4));
    expect_stats(fx->j, 3, 300, 0);
    for (int i = 2; i <= 4; i++)
        take(fx->j, i);
    expect_empty(fx->j);
    put(fx->j, 5);
    reopen(fx);
    take(fx->j, 5);
    expect_empty(fx->j);
}

static void test_torn_tail_truncated_mid_record_is_cut(void **state)
{
    struct fx *fx = *state;
    const long long cuts[] = {1, 5, 10, 16, REC / 2, REC - 50, REC - 1};
    for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
        char name[32], seg[PATH_MAX];
        tu_fmt(name, sizeof(name), "q%zu", k);
        tu_join(fx->dir, fx->tmp, name);
        build_five(fx, seg);
        tu_truncate(seg, SEG_WITH(4) + cuts[k]);
        expect_cut_after_four(fx, seg);
        jnl_close(fx->j);
        fx->j = NULL;
    }
}

static void test_torn_tail_flipped_payload_byte_is_cut(void **state)
{
    struct fx *fx = *state;
    char seg[PATH_MAX];
    build_five(fx, seg);
    tu_flip_byte(seg, SEG_WITH(4) + REC - 40, 0x04);
    expect_cut_after_four(fx, seg);
}

static void test_torn_tail_flipped_header_byte_is_cut(void **state)
{
    struct fx *fx = *state;
    char seg[PATH_MAX];
    build_five(fx, seg);
    tu_flip_byte(seg, SEG_WITH(4) + 3, 0x01);
    expect_cut_after_four(fx, seg);
}

static void test_torn_tail_zero_filled_is_cut(void **state)
{
    struct fx *fx = *state;
    char seg[PATH_MAX];
    static const char zeros[4096];
    build_five(fx, seg);
    tu_append_bytes(seg, zeros, sizeof(zeros));
    reopen(fx);
    assert_int_equal(tu_file_size(seg), SEG_WITH(5));
    for (int i = 2; i <= 5; i++)
        take(fx->j, i);
    expect_empty(fx->j);
    put(fx->j, 6);
    reopen(fx);
    take(fx->j, 6);
    expect_empty(fx->j);
}

/* The ack log may reach the disk before the segment's tail did: it then
 * names a removal of a record that is gone. An item appended after that
 * recovery must not be taken for the removed one at the next reopen. */
static void test_new_item_after_ack_log_ahead_of_torn_tail_survives_reopen(void **state)
{
    struct fx *fx = *state;
    char seg[PATH_MAX];
    build_five(fx, seg);
    jopen(fx); /* reopen the built journal and remove everything */
    for (int i = 2; i <= 5; i++)
        take(fx->j, i);
    jnl_close(fx->j);
    fx->j = NULL;
    tu_truncate(seg, SEG_WITH(4)); /* record 5 never made it */
    reopen(fx);
    expect_empty(fx->j);
    put(fx->j, 5); /* gets id 5 again, at the same place */
    reopen(fx);
    take(fx->j, 5);
    expect_empty(fx->j);
}

/* The same, with a longer new item: the stale removal then points into the
 * middle of it, and the queue must not be stuck at an unreadable head. */
static void test_longer_item_after_ack_log_ahead_of_torn_tail_is_served(void **state)
{
    struct fx *fx = *state;
    char seg[PATH_MAX];
    build_five(fx, seg);
    jopen(fx);
    for (int i = 2; i <= 5; i++)
        take(fx->j, i);
    jnl_close(fx->j);
    fx->j = NULL;
    tu_truncate(seg, SEG_WITH(4) + 30);
    reopen(fx);
    expect_empty(fx->j);
    assert_int_equal(put_n(fx->j, 5, 300), 0);
    reopen(fx);
    struct jnl_head h;
    head_is_n(fx->j, 5, 300, &h);
    assert_int_equal(jnl_remove_head(fx->j, &h), 0);
    expect_empty(fx->j);
}

/* Returns the ack file with the highest generation. */
static void newest_ack(struct fx *fx, char *out)
{
    uint64_t best = 0;
    for (int i = 0; i < 2; i++) {
        char name[16], path[PATH_MAX];
        tu_fmt(name, sizeof(name), "acks.%d", i);
        tu_join(path, fx->dir, name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        unsigned char raw[JF_ACK_HDR];
        struct jf_ack_hdr h;
        if (fread(raw, 1, sizeof(raw), f) == sizeof(raw) && jf_ack_hdr_decode(raw, &h) == 0 && h.generation > best) {
            best = h.generation;
            tu_fmt(out, PATH_MAX, "%s", path);
        }
        fclose(f);
    }
    assert_true(best > 0);
}

static void test_damaged_ack_log_tail_is_cut_and_state_kept(void **state)
{
    struct fx *fx = *state;
    int owner;
    jopen(fx);
    for (int i = 1; i <= 6; i++)
        put(fx->j, i);
    take(fx->j, 1);
    take(fx->j, 2);
    hold(fx->j, 3, &owner);
    jnl_close(fx->j);
    fx->j = NULL;
    char ack[PATH_MAX];
    newest_ack(fx, ack);
    long long good = tu_file_size(ack);
    assert_int_equal(good % JF_ACK_REC, 0);
    unsigned char junk[100];
    memset(junk, 0xa5, sizeof(junk));
    tu_append_bytes(ack, junk, sizeof(junk));
    reopen(fx);
    assert_int_equal(tu_file_size(ack), good);
    expect_stats(fx->j, 4, 400, 0);
    take(fx->j, 3);
    /* acks written after the cut are read back */
    reopen(fx);
    for (int i = 4; i <= 6; i++)
        take(fx->j, i);
    expect_empty(fx->j);
}

static void test_damaged_ack_record_in_the_middle_cuts_from_there(void **state)
{
    struct fx *fx = *state;
    jopen(fx);
    for (int i = 1; i <= 5; i++)
        put(fx->j, i);
    take(fx->j, 1);
    take(fx->j, 2);
    take(fx->j, 3);
    jnl_close(fx->j);
    fx->j = NULL;
    char ack[PATH_MAX];
    newest_ack(fx, ack);
    /* header, checkpoint, TAKE 1, TAKE 2 (damaged), TAKE 3 */
    long long at = JF_ACK_HDR + 2 * JF_ACK_REC;
    tu_flip_byte(ack, at + 10, 0x08);
    reopen(fx);
    assert_int_equal(tu_file_size(ack), at);
    /* removals after the damage are lost, earlier ones kept */
    for (int i = 2; i <= 5; i++)
        take(fx->j, i);
    expect_empty(fx->j);
}

/* ---- injected faults ---- */

static void use_fault(struct fx *fx) { fx->conf.io = &fx->fault.io; }

static void reopen_posix(struct fx *fx)
{
    fx->conf.io = jio_posix();
    reopen(fx);
}

static void test_enospc_append_fails_and_leaves_nothing_partial(void **state)
{
    struct fx *fx = *state;
    use_fault(fx);
    jopen(fx);
    for (int i = 1; i <= 3; i++)
        put(fx->j, i);
    char seg[PATH_MAX];
    tu_join(seg, fx->dir, SEG1);
    const long long budgets[] = {0, 1, 10, REC / 2, REC - 1};
    for (size_t k = 0; k < sizeof(budgets) / sizeof(budgets[0]); k++) {
        fx->fault.pwrite_err = -ENOSPC;
        fx->fault.budget = budgets[k];
        assert_int_equal(put_n(fx->j, 4, 100), -ENOSPC);
        assert_int_equal(tu_file_size(seg), SEG_WITH(3));
        expect_stats(fx->j, 3, 300, 0);
    }
    /* a large item written in two pieces */
    fx->fault.budget = 1000;
    assert_int_equal(put_n(fx->j, 4, 100000), -ENOSPC);
    assert_int_equal(tu_file_size(seg), SEG_WITH(3));
    fx->fault.pwrite_err = 0;
    put(fx->j, 4);
    take(fx->j, 1);
    reopen_posix(fx);
    for (int i = 2; i <= 4; i++)
        take(fx->j, i);
    expect_empty(fx->j);
}

static void test_enospc_on_segment_roll_leaves_no_segment_behind(void **state)
{
    struct fx *fx = *state;
    fx->conf.segment_size = (uint64_t)SEG_WITH(2);
    use_fault(fx);
    jopen(fx);
    put(fx->j, 1);
    put(fx->j, 2);
    /* the next append must roll: fail in the new header, then in the record */
    fx->fault.pwrite_err = -ENOSPC;
    fx->fault.budget = 0;
    assert_int_equal(put_n(fx->j, 3, 100), -ENOSPC);
    assert_int_equal(nsegs(fx), 1);
    fx->fault.budget = 10;
    assert_int_equal(put_n(fx->j, 3, 100), -ENOSPC);
    assert_int_equal(nsegs(fx), 1);
    fx->fault.budget = JF_SEG_HDR + 20;
    assert_int_equal(put_n(fx->j, 3, 100), -ENOSPC);
    expect_stats(fx->j, 2, 200, 0);
    fx->fault.pwrite_err = 0;
    put(fx->j, 3);
    put(fx->j, 4);
    put(fx->j, 5);
    take(fx->j, 1);
    reopen_posix(fx);
    for (int i = 2; i <= 5; i++)
        take(fx->j, i);
    expect_empty(fx->j);
}

static void test_short_writes_still_produce_a_correct_journal(void **state)
{
    struct fx *fx = *state;
    int owner;
    use_fault(fx);
    fx->fault.one_byte = 1;
    fx->conf.segment_size = (uint64_t)SEG_WITH(3);
    fx->conf.ack_compact_bytes = 256;
    jopen(fx);
    for (int i = 1; i <= 8; i++)
        put(fx->j, i);
    take(fx->j, 1);
    take(fx->j, 2);
    hold(fx->j, 3, &owner);
    take(fx->j, 4);
    jnl_maintain(fx->j, 0, 0);
    jnl_maintain(fx->j, 1, 1);
    assert_true(fx->fault.pwrites > 8 * (JF_REC_HDR + 100));
    reopen_posix(fx);
    take(fx->j, 3);
    for (int i = 5; i <= 8; i++)
        take(fx->j, i);
    expect_empty(fx->j);
}

/* The state a ticket settled in, dropping the reference. */
static int settled(struct jnl_ticket *t)
{
    assert_non_null(t);
    int state = t->state;
    jnl_ticket_put(t);
    return state;
}

/* Removals of one loop turn are written with one write. */
static void test_ack_records_of_a_turn_go_to_disk_in_one_write(void **state)
{
    struct fx *fx = *state;
    int owner;
    use_fault(fx);
    jopen(fx);
    for (int i = 1; i <= 6; i++)
        put(fx->j, i);
    long long before = fx->fault.pwrites;
    struct jnl_head h;
    struct jnl_node *n = NULL;
    head_is(fx->j, 1, &h);
    assert_int_equal(jnl_remove_head(fx->j, &h), 0);
    head_is(fx->j, 2, &h);
    assert_int_equal(jnl_hold_head(fx->j, &h, &owner, &n), 0);
    assert_int_equal(jnl_confirm(fx->j, n), 0);
    head_is(fx->j, 3, &h);
    assert_int_equal(jnl_remove_head(fx->j, &h), 0);
    struct jnl_ticket *t = jnl_ack_ticket(fx->j);
    assert_int_equal(t->state, 0);
    assert_true(jnl_pending(fx->j));
    assert_int_equal(fx->fault.pwrites, before); /* nothing written yet */
    assert_int_equal(jnl_flush(fx->j), 0);
    assert_int_equal(fx->fault.pwrites, before + 1);
    assert_int_equal(settled(t), 1);
    assert_false(jnl_pending(fx->j));
    assert_null(jnl_ack_ticket(fx->j));
    reopen_posix(fx);
    take(fx->j, 4);
}

/* A failed ack write fails the ticket of every removal in it; the records
 * stay queued and are written, ahead of later ones, once writes work: the
 * caller's undo (a RESTORE) then lands after them, as it was applied. */
static void test_eio_on_ack_write_fails_ticket_and_keeps_order(void **state)
{
    struct fx *fx = *state;
    int owner;
    use_fault(fx);
    jopen(fx);
    for (int i = 1; i <= 4; i++)
        put(fx->j, i);
    take(fx->j, 1);
    struct jnl_node *n2 = hold(fx->j, 2, &owner);

    fx->fault.ack_err = -EIO;
    struct jnl_head h;
    head_is(fx->j, 3, &h);
    struct jnl_item third = h.item;
    assert_int_equal(jnl_remove_head(fx->j, &h), 0);
    struct jnl_item second = n2->item;
    assert_int_equal(jnl_confirm(fx->j, n2), 0);
    struct jnl_ticket *t = jnl_ack_ticket(fx->j);
    assert_int_equal(jnl_flush(fx->j), -EIO);
    assert_int_equal(settled(t), -EIO);
    assert_true(jnl_pending(fx->j)); /* kept, to be written again */
    assert_false(jnl_idle(fx->j));   /* so the journal is not closed meanwhile */
    /* the answers were errors: both come back, as the connection undoes them */
    assert_int_equal(jnl_restore(fx->j, &third), 0);
    assert_int_equal(jnl_restore(fx->j, &second), 0);
    t = jnl_ack_ticket(fx->j);
    assert_int_equal(jnl_flush(fx->j), -EIO);
    assert_int_equal(settled(t), -EIO);
    expect_stats(fx->j, 3, 300, 0);

    fx->fault.ack_err = 0;
    assert_int_equal(jnl_flush(fx->j), 0);
    assert_false(jnl_pending(fx->j));
    reopen_posix(fx);
    take(fx->j, 2);
    take(fx->j, 3);
    take(fx->j, 4);
    expect_empty(fx->j);
}

/* While writes fail, queued records are bounded: past the bound a removal
 * is refused and the head stays. Clearing is written at once, so its
 * failure is told to its caller. */
static void test_ack_queue_is_bounded_while_writes_fail(void **state)
{
    struct fx *fx = *state;
    int owner;
    use_fault(fx);
    jopen(fx);
    put(fx->j, 1);
    fx->fault.ack_err = -EIO;
    struct jnl_head h;
    struct jnl_node *n = NULL;
    head_is(fx->j, 1, &h);
    assert_int_equal(jnl_hold_head(fx->j, &h, &owner, &n), 0);
    jnl_release(fx->j, n);
    int rounds, rc = 0;
    for (rounds = 0; rounds < 100000; rounds++)
        if ((rc = jnl_restore(fx->j, &n->item)) < 0)
            break;
    assert_int_equal(rc, -EIO);
    assert_true(rounds > 64 && rounds < 100000);
    head_is(fx->j, 1, &h);
    assert_int_equal(jnl_remove_head(fx->j, &h), -EIO);
    head_is(fx->j, 1, &h);
    expect_stats(fx->j, 1, 100, 0);
    assert_int_equal(jnl_clear(fx->j), -EIO);
    fx->fault.ack_err = 0;
    assert_int_equal(jnl_flush(fx->j), 0);
    reopen_posix(fx);
    take(fx->j, 1);
    expect_empty(fx->j);
}

/* Under fsync "never" a removed blob's file goes once the removal's record
 * is written, not before: if that write fails, the item (given back) can
 * still be read. */
static void test_never_blob_file_waits_for_its_ack_record(void **state)
{
    struct fx *fx = *state;
    use_fault(fx);
    fx->conf.sync_never = 1;
    jopen(fx);
    char tmp[PATH_MAX], blob[PATH_MAX];
    tu_fmt(tmp, sizeof(tmp), "%s/stream.tmp", fx->tmp);
    struct jnl_blob *b;
    static const char payload[] = "a streamed item";
    assert_int_equal(jnl_blob_begin(&fx->conf, tmp, sizeof(payload), &b), 0);
    assert_int_equal(jnl_blob_write(b, payload, sizeof(payload)), 0);
    assert_int_equal(jnl_append_blob(fx->j, b, &(struct jnl_attrs){.priority = JNL_PRIORITY_DEFAULT}), 0);
    struct jnl_head h;
    assert_int_equal(jnl_head(fx->j, &h), 0);
    tu_fmt(blob, sizeof(blob), "%s/blob-%016llx.dat", fx->dir, (unsigned long long)h.item.id);
    assert_true(tu_exists(blob));

    fx->fault.ack_err = -EIO;
    struct jnl_item it = h.item;
    assert_int_equal(jnl_remove_head(fx->j, &h), 0);
    jnl_maintain(fx->j, 0, 0);
    assert_true(tu_exists(blob)); /* its TAKE is not written */
    assert_int_equal(jnl_flush(fx->j), -EIO);
    assert_int_equal(jnl_restore(fx->j, &it), 0); /* the get's answer was an error */
    fx->fault.ack_err = 0;
    assert_int_equal(jnl_flush(fx->j), 0);
    char back[sizeof(payload)];
    assert_int_equal(jnl_head(fx->j, &h), 0);
    assert_int_equal(jnl_read(fx->j, &h.item, 0, back, sizeof(back)), 0);
    assert_memory_equal(back, payload, sizeof(payload));
    assert_int_equal(jnl_remove_head(fx->j, &h), 0);
    assert_false(tu_exists(blob)); /* written now: the file goes at once */
}

/* A rewrite of the ack log that fails after its header must not leave a file
 * that wins at the next open with an older state. */
static void test_failed_ack_rewrite_does_not_resurrect_removed_items(void **state)
{
    struct fx *fx = *state;
    use_fault(fx);
    fx->conf.sync_never = 1;
    fx->conf.ack_compact_bytes = 256;
    jopen(fx); /* acks.0, generation 1 */
    for (int i = 1; i <= 20; i++)
        put(fx->j, i);
    for (int i = 1; i <= 4; i++)
        take(fx->j, i);
    jnl_maintain(fx->j, 0, 0); /* -> acks.1, generation 2 */
    for (int i = 5; i <= 8; i++)
        take(fx->j, i);
    /* the rewrite into acks.0 (still holding generation 1's records) fails
     * right after the header */
    fx->fault.ack_err = -ENOSPC;
    fx->fault.ack_err_off = JF_ACK_HDR;
    jnl_maintain(fx->j, 0, 0);
    fx->fault.ack_err = 0;
    for (int i = 9; i <= 10; i++)
        take(fx->j, i);
    reopen_posix(fx);
    take(fx->j, 11);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_sync_fds_hands_out_fds_and_marks_clean),
        T(test_sync_fds_failure_leaves_journal_dirty),
        T(test_no_folder_fsync_platform),
        T(test_segment_started_over_keeps_new_items),
        T(test_item_taken_right_after_its_append_needs_no_read),
        T(test_deferred_appends_go_to_disk_in_one_write),
        T(test_head_writes_deferred_items_before_handing_them_out),
        T(test_failed_deferred_write_forgets_its_items),
        T(test_torn_tail_truncated_mid_record_is_cut),
        T(test_torn_tail_flipped_payload_byte_is_cut),
        T(test_torn_tail_flipped_header_byte_is_cut),
        T(test_torn_tail_zero_filled_is_cut),
        T(test_new_item_after_ack_log_ahead_of_torn_tail_survives_reopen),
        T(test_longer_item_after_ack_log_ahead_of_torn_tail_is_served),
        T(test_damaged_ack_log_tail_is_cut_and_state_kept),
        T(test_damaged_ack_record_in_the_middle_cuts_from_there),
        T(test_enospc_append_fails_and_leaves_nothing_partial),
        T(test_enospc_on_segment_roll_leaves_no_segment_behind),
        T(test_short_writes_still_produce_a_correct_journal),
        T(test_ack_records_of_a_turn_go_to_disk_in_one_write),
        T(test_eio_on_ack_write_fails_ticket_and_keeps_order),
        T(test_ack_queue_is_bounded_while_writes_fail),
        T(test_never_blob_file_waits_for_its_ack_record),
        T(test_failed_ack_rewrite_does_not_resurrect_removed_items),
    };
#undef T
    return cmocka_run_group_tests(tests, measure_rec, NULL);
}
