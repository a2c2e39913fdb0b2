/* tests/unit/journal_fixture.h: what the journal's unit tests share: an I/O
 * table that injects faults, the per-test folder, and helpers that append,
 * take and check items. Include after <cmocka.h>; every helper is static
 * inline, so a test file that does not use one gets no warning. */
#ifndef DARNER_TESTS_JOURNAL_FIXTURE_H
#define DARNER_TESTS_JOURNAL_FIXTURE_H

#include <errno.h>
#include <fcntl.h>
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
    char kind[4096];       /* per fd: 'a' an ack file, 's' a segment, 0 other */
    int pwrite_err;        /* nonzero: pwrites fail with it once budget is spent */
    long long budget;      /* bytes that may still be written before pwrite_err */
    int ack_err;           /* nonzero: pwrites to ack files fail with it ... */
    long long ack_err_off; /* ... at this offset only (or at any, if < 0) */
    int one_byte;          /* pwrite writes at most one byte per call */
    long pwrites;          /* pwrite calls seen */
    int dup_err;           /* nonzero: dup fails with it */
    long preads;           /* pread calls seen */
    long ack_rewrites;     /* ack files opened with O_TRUNC: each a rewrite */
    int no_dir_sync;       /* open_dir answers -EOPNOTSUPP, as on a platform without folder fsync */
};

static inline int f_open(void *ctx, const char *path, int flags, int mode)
{
    struct fault *f = ctx;
    int fd = f->real->open(f->real->ctx, path, flags, mode);
    if (fd >= 0 && (size_t)fd < sizeof(f->kind)) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        f->kind[fd] = strncmp(base, "acks.", 5) == 0 ? 'a' : strncmp(base, "seg-", 4) == 0 ? 's' : 0;
        f->ack_rewrites += f->kind[fd] == 'a' && (flags & O_TRUNC);
    }
    return fd;
}

static inline ssize_t f_pwrite(void *ctx, int fd, const void *p, size_t n, off_t off)
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

static inline ssize_t f_pread(void *ctx, int fd, void *p, size_t n, off_t off)
{
    struct fault *f = ctx;
    f->preads++;
    return f->real->pread(f->real->ctx, fd, p, n, off);
}
static inline int f_fsync(void *ctx, int fd)
{
    struct fault *f = ctx;
    return f->real->fsync(f->real->ctx, fd);
}
static inline int f_ftruncate(void *ctx, int fd, off_t len)
{
    struct fault *f = ctx;
    return f->real->resize(f->real->ctx, fd, len);
}
static inline int f_close(void *ctx, int fd)
{
    struct fault *f = ctx;
    if (fd >= 0 && (size_t)fd < sizeof(f->kind))
        f->kind[fd] = 0;
    return f->real->close(f->real->ctx, fd);
}
static inline int f_unlink(void *ctx, const char *path)
{
    struct fault *f = ctx;
    return f->real->unlink(f->real->ctx, path);
}
static inline int f_rename(void *ctx, const char *from, const char *to)
{
    struct fault *f = ctx;
    return f->real->rename(f->real->ctx, from, to);
}
static inline int f_mkdir(void *ctx, const char *path, int mode)
{
    struct fault *f = ctx;
    return f->real->mkdir(f->real->ctx, path, mode);
}
static inline int f_fsize(void *ctx, int fd, off_t *size)
{
    struct fault *f = ctx;
    return f->real->fsize(f->real->ctx, fd, size);
}

static inline int f_dup(void *ctx, int fd)
{
    struct fault *f = ctx;
    if (f->dup_err)
        return f->dup_err;
    return f->real->dup(f->real->ctx, fd);
}

static inline int f_open_dir(void *ctx, const char *path)
{
    struct fault *f = ctx;
    return f->no_dir_sync ? -EOPNOTSUPP : f->real->open_dir(f->real->ctx, path);
}

static inline void fault_init(struct fault *f)
{
    memset(f, 0, sizeof(*f));
    f->real = jio_posix();
    f->ack_err_off = -1;
    f->io = (struct jio){.ctx = f,
                         .open = f_open,
                         .pwrite = f_pwrite,
                         .pread = f_pread,
                         .fsync = f_fsync,
                         .resize = f_ftruncate,
                         .close = f_close,
                         .unlink = f_unlink,
                         .rename = f_rename,
                         .mkdir = f_mkdir,
                         .rmdir = jio_posix()->rmdir,
                         .fsize = f_fsize,
                         .dup = f_dup,
                         .open_dir = f_open_dir,
                         .listdir = jio_posix()->listdir,
                         .size = jio_posix()->size};
}

/* ---- fixture ---- */

struct fx {
    char tmp[PATH_MAX];
    char dir[PATH_MAX]; /* the journal's folder */
    struct jnl_conf conf;
    struct jnl *j;
    struct fault fault;
};

static inline int setup(void **state)
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

static inline int teardown(void **state)
{
    struct fx *fx = *state;
    jnl_close(fx->j);
    tu_rmtree(fx->tmp);
    free(fx);
    return 0;
}

static inline void jopen(struct fx *fx)
{
    assert_null(fx->j);
    int rc = jnl_open(&fx->j, &fx->conf, fx->dir, 1);
    assert_int_equal(rc, 0);
    assert_non_null(fx->j);
}

/* Closes and opens again without create, as a restart does. */
static inline void reopen(struct fx *fx)
{
    jnl_close(fx->j);
    fx->j = NULL;
    int rc = jnl_open(&fx->j, &fx->conf, fx->dir, 0);
    assert_int_equal(rc, 0);
}

/* The payload of item i: "item-<i>:" then filler, len bytes (len >= 16). */
static inline void payload_of(int i, char *buf, size_t len)
{
    assert_true(len >= 16);
    memset(buf, 'a' + i % 26, len);
    int n = snprintf(buf, len, "item-%d:", i);
    buf[n] = ':';
}

static inline int put_n(struct jnl *j, int i, size_t len)
{
    char *p = malloc(len);
    assert_non_null(p);
    payload_of(i, p, len);
    int rc = jnl_append(
        j, &(struct jnl_attrs){.flags = (uint32_t)i, .add_ms = 1000u + (uint64_t)i, .priority = JNL_PRIORITY_DEFAULT},
        p, len);
    free(p);
    return rc;
}

static inline void put(struct jnl *j, int i) { assert_int_equal(put_n(j, i, 100), 0); }

/* The head is item i (len bytes): id, flags, add time and payload. */
static inline void head_is_n(struct jnl *j, int i, size_t len, struct jnl_head *h)
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

static inline void head_is(struct jnl *j, int i, struct jnl_head *h) { head_is_n(j, i, 100, h); }

/* take() and hold() end like the server's loop turn: the ack record each
 * queued is written by jnl_flush(). */
static inline void take(struct jnl *j, int i)
{
    struct jnl_head h;
    head_is(j, i, &h);
    assert_int_equal(jnl_remove_head(j, &h), 0);
    assert_int_equal(jnl_flush(j), 0);
}

static struct jnl_node *hold(struct jnl *j, int i, void *owner)
{
    struct jnl_head h;
    struct jnl_node *n = NULL;
    head_is(j, i, &h);
    assert_int_equal(jnl_hold_head(j, &h, owner, &n), 0);
    assert_int_equal(jnl_flush(j), 0);
    assert_non_null(n);
    assert_int_equal(n->item.id, (uint64_t)i);
    assert_ptr_equal(n->owner, owner);
    return n;
}

static inline void expect_empty(struct jnl *j)
{
    struct jnl_head h;
    assert_int_equal(jnl_head(j, &h), -ENOENT);
}

static inline void expect_stats(struct jnl *j, uint64_t items, uint64_t bytes, uint64_t open)
{
    struct jnl_stats st;
    jnl_get_stats(j, &st);
    if (st.items != items || st.bytes != bytes || st.open != open)
        fail_msg("stats: items %llu bytes %llu open %llu, expected %llu %llu %llu", (unsigned long long)st.items,
                 (unsigned long long)st.bytes, (unsigned long long)st.open, (unsigned long long)items,
                 (unsigned long long)bytes, (unsigned long long)open);
}

static inline int nsegs(struct fx *fx) { return tu_count(fx->dir, "seg-", ".dat"); }

static inline void seg_file(struct fx *fx, uint64_t seq, char *out)
{
    char name[64];
    tu_fmt(name, sizeof(name), "seg-%016llx.dat", (unsigned long long)seq);
    tu_join(out, fx->dir, name);
}

/* Size of a segment holding n records of 100 bytes. */
/* Bytes one 100-byte item takes in a segment (its batch), measured once by
 * measure_rec() for the format this build writes. */
static long long REC __attribute__((unused));
#define SEG_WITH(n) ((long long)JF_SEG_HDR + (long long)(n)*REC)

static inline int measure_rec(void **state)
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

#endif
