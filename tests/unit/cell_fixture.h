/* tests/unit/cell_fixture.h: what test_cell_ops.c builds its cases from:
 * operations, a realistic run of them (entries of a queue's life), a
 * folder's tree as text, a fresh folder per test, applying a range of a run,
 * and the committed state of a run or of files on disk.
 *
 * Include after <cmocka.h>. */
#ifndef DARNER_TESTS_CELL_FIXTURE_H
#define DARNER_TESTS_CELL_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "cell/ops.h"
#include "testutil.h"
#include "util/buf.h"

/* ---- building operations ---- */

#define S(s) (s), strlen(s)

static inline struct cop op_write(const char *path, uint64_t off, const char *data)
{
    return (struct cop){.kind = COP_WRITE,
                        .path = path,
                        .path_len = strlen(path),
                        .off = off,
                        .len = strlen(data),
                        .data = data};
}
static inline struct cop op_resize(const char *path, uint64_t len)
{
    return (struct cop){.kind = COP_RESIZE, .path = path, .path_len = strlen(path), .len = len};
}
static inline struct cop op1(enum cop_kind k, const char *path)
{
    return (struct cop){.kind = k, .path = path, .path_len = strlen(path)};
}
static inline struct cop op2(enum cop_kind k, const char *path, const char *path2)
{
    return (struct cop){.kind = k, .path = path, .path_len = strlen(path), .path2 = path2, .path2_len = strlen(path2)};
}

#define HDR "DNSEG1\x01\x02 header of a segment, 40 bytes.." /* 40 bytes */
#define BATCH1 "batch one: items 1..3 ------------------------------------------------------ end"
#define BATCH2 "batch two: items 4..9"
#define BATCH3 "batch three, after a torn tail was cut"

/* A realistic run: entries (one Raft entry each: a loop turn's operations)
 * of a queue made under a staging name, appended to, its ack logs written
 * and rewritten, a segment removed, a queue deleted, a folder removed, a
 * file replaced by a rename. ENTRY marks where each entry starts. */
#define ENTRY                                                                                                          \
    (struct cop) { .kind = 0 }
static inline const struct cop *run_ops(size_t *n)
{
    static struct cop v[64];
    size_t k = 0;
    /* a queue is made in c-1 and renamed in one turn */
    v[k++] = ENTRY;
    v[k++] = op1(COP_MKDIR, "c-1");
    v[k++] = op_write("c-1/NAME", 0, "q-1");
    v[k++] = op_write("c-1/seg-1", 0, HDR);
    v[k++] = op_write("c-1/seg-1", 40, BATCH1);
    v[k++] = op2(COP_RENAME, "c-1", "q-1");
    v[k++] = ENTRY;
    v[k++] = op_write("q-1/seg-1", 40 + 80, BATCH2);
    v[k++] = op1(COP_CREATE, "q-1/acks.0");
    v[k++] = ENTRY;
    v[k++] = op_resize("q-1/seg-1", 130); /* a torn tail cut */
    v[k++] = op_write("q-1/seg-1", 130, BATCH3);
    v[k++] = op_write("q-1/acks.0", 0, "ACK0 records: 1 2 3");
    v[k++] = ENTRY;
    v[k++] = op_resize("q-1/acks.1", 0);
    v[k++] = op_write("q-1/acks.1", 0, "ACK1 rewritten once, a longer text than the second time");
    v[k++] = op_write("q-1/acks.0", 19, " 4 5 6");
    v[k++] = ENTRY;
    v[k++] = op_write("q-1/seg-2", 0, HDR);
    v[k++] = op_write("q-1/seg-2", 40, BATCH1);
    v[k++] = ENTRY;
    v[k++] = op1(COP_UNLINK, "q-1/seg-1");
    v[k++] = op_resize("q-1/acks.1", 0);
    v[k++] = op_write("q-1/acks.1", 0, "ACK1 second");
    v[k++] = ENTRY;
    v[k++] = op1(COP_MKDIR, "c-2");
    v[k++] = op_write("c-2/NAME", 0, "q-2");
    v[k++] = op_write("c-2/seg-1", 0, HDR);
    v[k++] = op2(COP_RENAME, "c-2", "q-2");
    v[k++] = ENTRY;
    v[k++] = op_write("q-2/seg-1", 40, BATCH2);
    v[k++] = op2(COP_LINK, "q-1/seg-2", "q-1/seg-2.keep");
    v[k++] = ENTRY;
    v[k++] = op2(COP_RENAME, "q-2", "d-2"); /* a queue's delete */
    v[k++] = ENTRY;
    v[k++] = op1(COP_MKDIR, "q-3/sub");
    v[k++] = op_write("q-3/sub/x", 0, "x");
    v[k++] = op_write("q-3/y", 5, "sparse y");
    v[k++] = ENTRY;
    v[k++] = (struct cop){.kind = COP_RMDIR, .flags = COP_F_DEFERRED, .path = "q-3", .path_len = 3};
    v[k++] = op1(COP_UNLINK, "q-1/seg-2.keep");
    v[k++] = ENTRY;
    v[k++] = op_write("queues.new", 0, "v1");
    v[k++] = op2(COP_RENAME, "queues.new", "queues");
    v[k++] = op_write("q-1/acks.0", 25, " 7");
    v[k++] = op_write("q-1/seg-2", 120, BATCH2); /* only once its link is gone (see cst_apply) */
    v[k++] = ENTRY;
    v[k++] = op_write("queues.new", 0, "v2, longer");
    v[k++] = op2(COP_RENAME, "queues.new", "queues");
    v[k++] = op_resize("q-1/seg-2", 200);
    v[k++] = op1(COP_CREATE, "q-1/acks.2");
    assert_true(k <= 64);
    *n = k;
    return v;
}

/* ---- a folder's tree as text: names, kinds, sizes, contents ---- */

static inline int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static inline void dump_tree(struct buf *out, const char *dir, const char *rel)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *names[256];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            assert_true(n < 256);
            names[n++] = strdup(de->d_name);
        }
    closedir(d);
    qsort(names, n, sizeof(*names), name_cmp);
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX], r[PATH_MAX];
        tu_join(path, dir, names[i]);
        tu_fmt(r, sizeof(r), "%s%s%s", rel, *rel ? "/" : "", names[i]);
        if (tu_is_dir(path)) {
            assert_int_equal(buf_printf(out, "%s/\n", r), 0);
            dump_tree(out, path, r);
        } else {
            static char data[1 << 16];
            FILE *f = fopen(path, "rb");
            assert_non_null(f);
            size_t len = fread(data, 1, sizeof(data), f);
            fclose(f);
            assert_int_equal(buf_printf(out, "%s %zu %016llx\n", r, len, (unsigned long long)XXH3_64bits(data, len)),
                             0);
        }
        free(names[i]);
    }
}

/* The tree of dir into a fresh string (the caller frees it). */
static inline char *tree(const char *dir)
{
    struct buf b = {0};
    dump_tree(&b, dir, "");
    assert_int_equal(buf_append(&b, "", 1), 0);
    return b.data;
}

/* ---- fixtures ---- */

struct fx {
    char dir[PATH_MAX];
};

static inline int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    tu_mkdtemp(fx->dir);
    *state = fx;
    return 0;
}

static inline int teardown(void **state)
{
    struct fx *fx = *state;
    tu_rmtree(fx->dir);
    free(fx);
    return 0;
}

/* A fresh folder name under the test's directory, made. */
static inline void subdir(struct fx *fx, const char *name, char *out)
{
    tu_join(out, fx->dir, name);
    tu_mkdir(out);
}

/* Applies ops [from, to) of v (entry marks skipped) under root, then syncs. */
static inline void apply_range(const char *root, const struct cop *v, size_t from, size_t to)
{
    struct cop_applier *a;
    assert_int_equal(cop_applier_new(&a, root), 0);
    for (size_t i = from; i < to; i++)
        if (v[i].kind)
            assert_int_equal(cop_apply(a, &v[i]), 0);
    assert_int_equal(cop_applier_sync(a), 0);
    cop_applier_free(a);
}

/* The committed state after ops [0, to) of v. */
static inline struct cop_state *state_of(const struct cop *v, size_t to)
{
    struct cop_state *st;
    assert_int_equal(cst_new(&st), 0);
    for (size_t i = 0; i < to; i++)
        if (v[i].kind)
            assert_int_equal(cst_apply(st, &v[i]), 0);
    return st;
}

/* The state of the files under dir, as cst_apply would have it (a folder:
 * MKDIR; a file: its first bytes written and its size set). */
static inline void state_from_disk(struct cop_state *st, const char *dir, const char *rel)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (!*rel && (strcmp(de->d_name, "raft") == 0 || strcmp(de->d_name, "tmp") == 0))
            continue; /* the member's own */
        char path[PATH_MAX], r[PATH_MAX];
        tu_join(path, dir, de->d_name);
        tu_fmt(r, sizeof(r), "%s%s%s", rel, *rel ? "/" : "", de->d_name);
        if (tu_is_dir(path)) {
            struct cop op = op1(COP_MKDIR, r);
            assert_int_equal(cst_apply(st, &op), 0);
            state_from_disk(st, path, r);
            continue;
        }
        unsigned char head[COP_HEAD];
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        size_t n = fread(head, 1, sizeof(head), f);
        fclose(f);
        struct cop op = op_resize(r, 0);
        assert_int_equal(cst_apply(st, &op), 0);
        op = (struct cop){.kind = COP_WRITE, .path = r, .path_len = strlen(r), .len = n, .data = head};
        assert_int_equal(cst_apply(st, &op), 0);
        op = op_resize(r, (uint64_t)tu_file_size(path));
        assert_int_equal(cst_apply(st, &op), 0);
    }
    closedir(d);
}

static inline void assert_same_state(const struct cop_state *a, const struct cop_state *b)
{
    void *pa, *pb;
    size_t na, nb;
    assert_int_equal(cst_encode(a, &pa, &na), 0);
    assert_int_equal(cst_encode(b, &pb, &nb), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(pa, pb, na);
    free(pa);
    free(pb);
}

#endif
