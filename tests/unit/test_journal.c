/* Unit tests for journal/journal.c: appending, reading, holding, removing,
 * statistics, recovery after reopen, segment rolling and reclaiming, ack log
 * compaction, torn tails and injected I/O faults.
 *
 * Every test gets a fresh directory under /tmp (removed afterwards); the
 * journal itself lives in <tmp>/q. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/format.h"
#include "journal/io.h"
#include "journal/journal.h"
#include "testutil.h"

#define SEG1 "seg-0000000000000001.dat"

/* ---- an I/O table that injects faults ---- */

struct fault {
    struct jio io;
    const struct jio *real;
    char kind[4096];     /* per fd: 'a' an ack file, 's' a segment, 0 other */
    int pwrite_err;      /* nonzero: pwrites fail with it once budget is spent */
    long long budget;    /* bytes that may still be written before pwrite_err */
    int ack_err;         /* nonzero: pwrites to ack files fail with it ... */
    long long ack_err_off; /* ... at this offset only (or at any, if < 0) */
    int one_byte;        /* pwrite writes at most one byte per call */
    long pwrites;        /* pwrite calls seen */
    int dup_err;         /* nonzero: dup fails with it */
    long preads;         /* pread calls seen */
};

static int f_open(void *ctx, const char *path, int flags, int mode)
{
    struct fault *f = ctx;
    int fd = f->real->open(f->real->ctx, path, flags, mode);
    if (fd >= 0 && (size_t)fd < sizeof(f->kind)) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        f->kind[fd] = strncmp(base, "acks.", 5) == 0 ? 'a' : strncmp(base, "seg-", 4) == 0 ? 's' : 0;
    }
    return fd;
}

static ssize_t f_pwrite(void *ctx, int fd, const void *p, size_t n, off_t off)
{
    struct fault *f = ctx;
    char kind = fd >= 0 && (size_t)fd < sizeof(f->kind) ? f->kind[fd] : 0;
    f->pwrites++;
    if (kind == 'a' && f->ack_err && (f->ack_err_off < 0 || (long long)off == f->ack_err_off))
        return f->ack_err;
    if (f->pwrite_err) {
        if (f->budget <= 0)
            return f->pwrite_err;
        if ((long long)n > f->budget)
            n = (size_t)f->budget;
        f->budget -= (long long)n;
    }
    if (f->one_byte && n > 1)
        n = 1;
    return f->real->pwrite(f->real->ctx, fd, p, n, off);
}

static ssize_t f_pread(void *ctx, int fd, void *p, size_t n, off_t off)
{
    struct fault *f = ctx;
    f->preads++;
    return f->real->pread(f->real->ctx, fd, p, n, off);
}
static int f_fsync(void *ctx, int fd)
{
    struct fault *f = ctx;
    return f->real->fsync(f->real->ctx, fd);
}
static int f_ftruncate(void *ctx, int fd, off_t len)
{
    struct fault *f = ctx;
    return f->real->ftruncate(f->real->ctx, fd, len);
}
static int f_close(void *ctx, int fd)
{
    struct fault *f = ctx;
    if (fd >= 0 && (size_t)fd < sizeof(f->kind))
        f->kind[fd] = 0;
    return f->real->close(f->real->ctx, fd);
}
static int f_unlink(void *ctx, const char *path)
{
    struct fault *f = ctx;
    return f->real->unlink(f->real->ctx, path);
}
static int f_rename(void *ctx, const char *from, const char *to)
{
    struct fault *f = ctx;
    return f->real->rename(f->real->ctx, from, to);
}
static int f_mkdir(void *ctx, const char *path, int mode)
{
    struct fault *f = ctx;
    return f->real->mkdir(f->real->ctx, path, mode);
}
static int f_fsize(void *ctx, int fd, off_t *size)
{
    struct fault *f = ctx;
    return f->real->fsize(f->real->ctx, fd, size);
}

static int f_dup(void *ctx, int fd)
{
    struct fault *f = ctx;
    if (f->dup_err)
        return f->dup_err;
    return f->real->dup(f->real->ctx, fd);
}

static void fault_init(struct fault *f)
{
    memset(f, 0, sizeof(*f));
    f->real = jio_posix();
    f->ack_err_off = -1;
    f->io = (struct jio){.ctx = f,
                         .open = f_open,
                         .pwrite = f_pwrite,
                         .pread = f_pread,
                         .fsync = f_fsync,
                         .ftruncate = f_ftruncate,
                         .close = f_close,
                         .unlink = f_unlink,
                         .rename = f_rename,
                         .mkdir = f_mkdir,
                         .rmdir = jio_posix()->rmdir,
                         .fsize = f_fsize,
                         .dup = f_dup};
}

/* ---- fixture ---- */

struct fx {
    char tmp[PATH_MAX];
    char dir[PATH_MAX]; /* the journal's folder */
    struct jnl_conf conf;
    struct jnl *j;
    struct fault fault;
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    tu_mkdtemp(fx->tmp);
    tu_join(fx->dir, fx->tmp, "q");
    fx->conf = (struct jnl_conf){.io = jio_posix(),
                                 .log = NULL,
                                 .segment_size = 1 << 20,
                                 .ack_compact_bytes = 1 << 20,
                                 .sync_never = 0};
    fault_init(&fx->fault);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    jnl_close(fx->j);
    tu_rmtree(fx->tmp);
    free(fx);
    return 0;
}

static void jopen(struct fx *fx)
{
    assert_null(fx->j);
    int rc = jnl_open(&fx->j, &fx->conf, fx->dir, 1);
    assert_int_equal(rc, 0);
    assert_non_null(fx->j);
}

/* Closes and opens again without create, as a restart does. */
static void reopen(struct fx *fx)
{
    jnl_close(fx->j);
    fx->j = NULL;
    int rc = jnl_open(&fx->j, &fx->conf, fx->dir, 0);
    assert_int_equal(rc, 0);
}

/* The payload of item i: "item-<i>:" then filler, len bytes (len >= 16). */
static void payload_of(int i, char *buf, size_t len)
{
    assert_true(len >= 16);
    memset(buf, 'a' + i % 26, len);
    int n = snprintf(buf, len, "item-%d:", i);
    buf[n] = ':';
}

static int put_n(struct jnl *j, int i, size_t len)
{
    char *p = malloc(len);
    assert_non_null(p);
    payload_of(i, p, len);
    int rc = jnl_append(j, &(struct jnl_attrs){.flags = (uint32_t)i, .add_ms = 1000u + (uint64_t)i,
                                              .priority = JNL_PRIORITY_DEFAULT},
                        p, len);
    free(p);
    return rc;
}

static void put(struct jnl *j, int i) { assert_int_equal(put_n(j, i, 100), 0); }

/* The head is item i (len bytes): id, flags, add time and payload. */
static void head_is_n(struct jnl *j, int i, size_t len, struct jnl_head *h)
{
    int rc = jnl_head(j, h);
    if (rc != 0)
        fail_msg("expected item %d at the head, got rc %d", i, rc);
    assert_int_equal(h->item.id, (uint64_t)i);
    assert_int_equal(h->item.len, len);
    assert_int_equal(h->item.flags, (uint32_t)i);
    assert_int_equal(h->item.add_ms, 1000u + (uint64_t)i);
    char *want = malloc(len), *got = malloc(len);
    assert_non_null(want);
    assert_non_null(got);
    payload_of(i, want, len);
    assert_int_equal(jnl_read(j, &h->item, 0, got, len), 0);
    assert_memory_equal(got, want, len);
    free(want);
    free(got);
}

static void head_is(struct jnl *j, int i, struct jnl_head *h) { head_is_n(j, i, 100, h); }

static void take(struct jnl *j, int i)
{
    struct jnl_head h;
    head_is(j, i, &h);
    assert_int_equal(jnl_remove_head(j, &h), 0);
}

static struct jnl_node *hold(struct jnl *j, int i, void *owner)
{
    struct jnl_head h;
    struct jnl_node *n = NULL;
    head_is(j, i, &h);
    assert_int_equal(jnl_hold_head(j, &h, owner, &n), 0);
    assert_non_null(n);
    assert_int_equal(n->item.id, (uint64_t)i);
    assert_ptr_equal(n->owner, owner);
    return n;
}

static void expect_empty(struct jnl *j)
{
    struct jnl_head h;
    assert_int_equal(jnl_head(j, &h), -ENOENT);
}

static void expect_stats(struct jnl *j, uint64_t items, uint64_t bytes, uint64_t open)
{
    struct jnl_stats st;
    jnl_get_stats(j, &st);
    if (st.items != items || st.bytes != bytes || st.open != open)
        fail_msg("stats: items %llu bytes %llu open %llu, expected %llu %llu %llu", (unsigned long long)st.items,
                 (unsigned long long)st.bytes, (unsigned long long)st.open, (unsigned long long)items,
                 (unsigned long long)bytes, (unsigned long long)open);
}

static int nsegs(struct fx *fx) { return tu_count(fx->dir, "seg-", ".dat"); }

static void seg_file(struct fx *fx, uint64_t seq, char *out)
{
    char name[64];
    tu_fmt(name, sizeof(name), "seg-%016llx.dat", (unsigned long long)seq);
    tu_join(out, fx->dir, name);
}

/* Size of a segment holding n records of 100 bytes. */
/* Bytes one 100-byte item takes in a segment (its batch), measured once by
 * measure_rec() for the format this build writes. */
static long long REC;
#define SEG_WITH(n) ((long long)JF_SEG_HDR + (long long)(n) * REC)

static int measure_rec(void **state)
{
    (void)state;
    char tmp[PATH_MAX], dir[PATH_MAX], seg[PATH_MAX];
    struct jnl_conf conf = {.io = jio_posix(), .segment_size = 1 << 20, .ack_compact_bytes = 1 << 20};
    struct jnl *j = NULL;
    tu_mkdtemp(tmp);
    tu_join(dir, tmp, "q");
    if (jnl_open(&j, &conf, dir, 1) < 0 || put_n(j, 1, 100) < 0)
        return -1;
    jnl_close(j);
    tu_join(seg, dir, SEG1);
    REC = tu_file_size(seg) - JF_SEG_HDR;
    tu_rmtree(tmp);
    return REC > 100 && REC < 100 + 64 ? 0 : -1;
}

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
    assert_int_equal(jnl_append(fx->j, &(struct jnl_attrs){.flags = 0xfeedu, .add_ms = 111, .expire_ms = 999999, .priority = JNL_PRIORITY_DEFAULT}, "alpha", 5), 0);
    assert_int_equal(jnl_append(fx->j, &(struct jnl_attrs){.flags = 0, .add_ms = 222, .expire_ms = 0, .priority = JNL_PRIORITY_DEFAULT}, "", 0), 0);
    assert_int_equal(jnl_append(fx->j, &(struct jnl_attrs){.flags = 7, .add_ms = 333, .expire_ms = 42, .priority = JNL_PRIORITY_DEFAULT}, "gamma!", 6), 0);

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
    assert_int_equal(jnl_append(fx->j, &(struct jnl_attrs){.flags = 0, .add_ms = 0, .expire_ms = 0, .priority = JNL_PRIORITY_DEFAULT}, "0123456789", 10), 0);
    jnl_get_stats(fx->j, &st1);
    assert_true(st1.logsize >= st0.logsize + 10);
    assert_int_equal(jnl_append(fx->j, &(struct jnl_attrs){.flags = 0, .add_ms = 0, .expire_ms = 0, .priority = JNL_PRIORITY_DEFAULT}, "01234567890123456789", 20), 0);
    assert_int_equal(jnl_append(fx->j, &(struct jnl_attrs){.flags = 0, .add_ms = 0, .expire_ms = 0, .priority = JNL_PRIORITY_DEFAULT}, "012345678901234567890123456789", 30), 0);
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
    assert_int_equal(unlink(path), 0);
    seg_file(fx, 1, path);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "XX", 2, 3), 2);
    close(fd);
    assert_int_equal(jnl_open(&fx->j, &fx->conf, fx->dir, 0), 0);
    struct jnl_head h;
    for (int i = 4; i <= 7; i++)
        take(fx->j, i); /* the items of segment 1 are lost; the rest are served */
    assert_int_equal(jnl_head(fx->j, &h), -ENOENT);
    (void)h;
}

/* Counts this process's fds open on deleted segment files. */
static int fds_on_deleted_segments(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char link[64], target[PATH_MAX];
        tu_fmt(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(link, target, sizeof(target) - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        if (strstr(target, "/seg-") && strstr(target, "(deleted)"))
            n++;
    }
    closedir(d);
    return n;
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
    assert_int_equal(fds_on_deleted_segments(), 0);
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

static int model_head(const struct model *m) { return m->nreturned ? m->returned[0] : m->cursor < m->next ? m->cursor : 0; }

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

static void test_sync_fds_hands_out_fds_and_marks_clean(void **state)
{
    struct fx *fx = *state;
    jopen(fx);
    int fds[16];
    int n = jnl_sync_fds(fx->j, fds, 16);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    assert_false(jnl_dirty(fx->j));
    put(fx->j, 1);
    assert_true(jnl_dirty(fx->j));
    assert_int_equal(jnl_sync_fds(fx->j, fds, 1), -ENOBUFS);
    /* Only the file written is synced: a set wrote the segment only... */
    n = jnl_sync_fds(fx->j, fds, 16);
    assert_int_equal(n, 1);
    for (int i = 0; i < n; i++) {
        assert_true(fds[i] >= 0);
        assert_int_equal(fsync(fds[i]), 0);
        close(fds[i]);
    }
    assert_false(jnl_dirty(fx->j));
    assert_int_equal(jnl_sync_fds(fx->j, fds, 16), 0);
    /* ... and a removal the ack log only. */
    take(fx->j, 1);
    n = jnl_sync_fds(fx->j, fds, 16);
    assert_int_equal(n, 1);
    close(fds[0]);
    assert_false(jnl_dirty(fx->j));
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
        close(fds[i]);
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
        close(fds[i]);
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
        if (fread(raw, 1, sizeof(raw), f) == sizeof(raw) && jf_ack_hdr_decode(raw, &h) == 0 &&
            h.generation > best) {
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

static void test_eio_on_ack_write_fails_removal_and_keeps_head(void **state)
{
    struct fx *fx = *state;
    int owner;
    use_fault(fx);
    jopen(fx);
    for (int i = 1; i <= 3; i++)
        put(fx->j, i);
    struct jnl_node *n2 = NULL;
    take(fx->j, 1);
    n2 = hold(fx->j, 2, &owner);
    jnl_release(fx->j, n2);

    fx->fault.ack_err = -EIO;
    struct jnl_head h;
    head_is(fx->j, 2, &h);
    assert_int_equal(jnl_remove_head(fx->j, &h), -EIO);
    head_is(fx->j, 2, &h);
    expect_stats(fx->j, 2, 200, 0);
    /* confirming an open item fails and leaves it open */
    n2 = hold(fx->j, 2, &owner);
    assert_int_equal(jnl_confirm(fx->j, n2), -EIO);
    expect_stats(fx->j, 2, 200, 1);
    jnl_release(fx->j, n2);
    n2 = hold(fx->j, 2, &owner); /* given back: no ack needed */
    /* the record at the cursor can be neither removed nor held */
    head_is(fx->j, 3, &h);
    assert_int_equal(jnl_remove_head(fx->j, &h), -EIO);
    struct jnl_node *n3 = NULL;
    assert_int_equal(jnl_hold_head(fx->j, &h, &owner, &n3), -EIO);
    expect_stats(fx->j, 2, 200, 1);
    head_is(fx->j, 3, &h);
    assert_int_equal(jnl_clear(fx->j), -EIO);
    expect_stats(fx->j, 2, 200, 1);

    fx->fault.ack_err = 0;
    assert_int_equal(jnl_confirm(fx->j, n2), 0);
    reopen_posix(fx);
    take(fx->j, 3);
    expect_empty(fx->j);
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
        T(test_sync_fds_hands_out_fds_and_marks_clean),
        T(test_sync_fds_failure_leaves_journal_dirty),
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
        T(test_eio_on_ack_write_fails_removal_and_keeps_head),
        T(test_failed_ack_rewrite_does_not_resurrect_removed_items),
    };
#undef T
    return cmocka_run_group_tests(tests, measure_rec, NULL);
}
