/* Unit tests for cell/ops.c and cell/state.c: the encoding of a cell's file
 * operations (round trips, truncated and damaged input), the paths an
 * operation may name, applying a realistic run of operations and replaying
 * it over files that went further (from the start, and from a snapshot's
 * state after cst_reconcile), and the committed state's manifest.
 *
 * Every test that touches files gets a fresh directory in the temporary
 * folder, removed afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cell_fixture.h"

/* ---- paths ---- */

static void test_path_ok(void **state)
{
    (void)state;
    static const struct {
        const char *p;
        int ok;
    } cases[] = {
        {"q-1", 1},      {"q-1/seg-1", 1}, {"rafter", 1}, {"tmpx", 1},    {"q/raft", 1}, {"q/tmp/x", 1},
        {"a/b/c/d", 1},  {"...", 1},       {".x", 1},     {"", 0},        {"/q-1", 0},   {"q-1/", 0},
        {"q-1//seg", 0}, {".", 0},         {"..", 0},     {"q/./x", 0},   {"q/../x", 0}, {"q/..", 0},
        {"raft", 0},     {"raft/log", 0},  {"tmp", 0},    {"tmp/a/b", 0}, {"/", 0},      {"a//", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cop_path_ok(cases[i].p, strlen(cases[i].p)) != cases[i].ok)
            fail_msg("cop_path_ok(\"%s\") != %d", cases[i].p, cases[i].ok);
    }
    assert_int_equal(cop_path_ok("a\0b", 3), 0);
    assert_int_equal(cop_path_ok(NULL, 0), 0);
    char longp[COP_PATH_MAX + 2];
    memset(longp, 'a', sizeof(longp));
    for (size_t i = 100; i < sizeof(longp); i += 100)
        longp[i] = '/';
    assert_int_equal(cop_path_ok(longp, COP_PATH_MAX), 1);
    assert_int_equal(cop_path_ok(longp, COP_PATH_MAX + 1), 0);
}

/* ---- encoding ---- */

static void assert_same_op(const struct cop *a, const struct cop *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->path_len, b->path_len);
    assert_memory_equal(a->path, b->path, a->path_len);
    if (a->kind == COP_RENAME || a->kind == COP_LINK) {
        assert_int_equal(a->path2_len, b->path2_len);
        assert_memory_equal(a->path2, b->path2, a->path2_len);
    }
    if (a->kind == COP_WRITE) {
        assert_true(a->off == b->off);
        assert_true(a->len == b->len);
        if (a->len)
            assert_memory_equal(a->data, b->data, (size_t)a->len);
    }
    if (a->kind == COP_RESIZE)
        assert_true(a->len == b->len);
}

/* Every kind, and the extremes of the numbers, encoded and decoded. */
static void test_encoding_round_trip(void **state)
{
    (void)state;
    size_t n;
    const struct cop *run = run_ops(&n);
    struct cop extra[] = {
        {.kind = COP_WRITE, .path = S("a"), .off = (uint64_t)INT64_MAX, .len = 0, .data = NULL},
        {.kind = COP_WRITE, .path = S("a"), .off = 0, .len = 1, .data = "\0"},
        {.kind = COP_RESIZE, .path = S("a/b"), .len = (uint64_t)INT64_MAX},
        {.kind = COP_LINK, .flags = COP_F_DEFERRED, .path = S("a"), .path2 = S("b/c")},
    };
    struct cop_buf b = {0};
    for (int pass = 0; pass < 2; pass++) {
        size_t want = 0;
        for (size_t i = 0; i < n; i++)
            if (run[i].kind) {
                assert_int_equal(cop_append(&b, &run[i]), 0);
                want++;
            }
        for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
            assert_int_equal(cop_append(&b, &extra[i]), 0);
        want += sizeof(extra) / sizeof(extra[0]);
        assert_int_equal(b.nops, want);
        size_t pos = 0, got = 0;
        struct cop op;
        for (size_t i = 0; i < n; i++)
            if (run[i].kind) {
                assert_int_equal(cop_next(b.p, b.len, &pos, &op), 1);
                assert_same_op(&run[i], &op);
                got++;
            }
        for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
            assert_int_equal(cop_next(b.p, b.len, &pos, &op), 1);
            assert_same_op(&extra[i], &op);
        }
        assert_int_equal(cop_next(b.p, b.len, &pos, &op), 0);
        assert_int_equal(pos, b.len);
        cop_buf_reset(&b); /* the second pass reuses the memory */
        assert_int_equal(b.len, 0);
        assert_int_equal(b.nops, 0);
    }
    cop_buf_free(&b);
    cop_buf_free(&b);
}

static void test_append_refuses_bad_ops(void **state)
{
    (void)state;
    struct cop_buf b = {0};
    struct cop bad[] = {
        {.kind = COP_MKDIR, .path = S("raft/x")},
        {.kind = COP_MKDIR, .path = S("../x")},
        {.kind = COP_RENAME, .path = S("a"), .path2 = S("tmp")},
        {.kind = COP_LINK, .path = S("a"), .path2 = NULL, .path2_len = 0},
        {.kind = (enum cop_kind)9, .path = S("a")},
        {.kind = (enum cop_kind)0, .path = S("a")},
        {.kind = COP_MKDIR, .flags = 2, .path = S("a")},
        {.kind = COP_WRITE, .path = S("a"), .off = (uint64_t)INT64_MAX, .len = 1, .data = "x"},
        {.kind = COP_RESIZE, .path = S("a"), .len = (uint64_t)INT64_MAX + 1},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(cop_append(&b, &bad[i]), -EINVAL);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.nops, 0);
    cop_buf_free(&b);
}

/* Decodes all of p[0..n); returns how many ops, or -1 when it stopped on
 * -EBADMSG. Every op decoded is checked to lie within p. */
static int decode_all(const unsigned char *p, size_t n)
{
    size_t pos = 0;
    int count = 0;
    struct cop op;
    for (;;) {
        size_t before = pos;
        int rc = cop_next(p, n, &pos, &op);
        if (rc == 0)
            return count;
        if (rc < 0) {
            assert_int_equal(rc, -EBADMSG);
            assert_int_equal(pos, before);
            return -1;
        }
        assert_true(pos > before && pos <= n);
        assert_true(cop_path_ok(op.path, op.path_len));
        assert_true(op.path >= (const char *)p && op.path + op.path_len <= (const char *)p + n);
        if (op.kind == COP_RENAME || op.kind == COP_LINK)
            assert_true(cop_path_ok(op.path2, op.path2_len));
        if (op.kind == COP_WRITE && op.len)
            assert_true((const unsigned char *)op.data >= p && (const unsigned char *)op.data + op.len <= p + n);
        count++;
    }
}

/* A valid run cut at every length decodes the ops before the cut and then
 * fails, or ends cleanly when cut between ops; every byte flipped (several
 * ways) decodes or fails without reading outside the bytes (each copy is
 * exactly as long as its input, for ASan). */
static void test_truncated_and_damaged_input(void **state)
{
    (void)state;
    size_t n;
    const struct cop *run = run_ops(&n);
    struct cop_buf b = {0};
    size_t ends[64], ne = 0;
    for (size_t i = 0; i < n; i++)
        if (run[i].kind) {
            assert_int_equal(cop_append(&b, &run[i]), 0);
            ends[ne++] = b.len;
        }
    for (size_t cut = 0; cut <= b.len; cut++) {
        unsigned char *p = malloc(cut ? cut : 1);
        memcpy(p, b.p, cut);
        int whole = 0, boundary = cut == 0;
        for (size_t i = 0; i < ne; i++) {
            whole += ends[i] <= cut;
            boundary |= ends[i] == cut;
        }
        int got = decode_all(p, cut);
        assert_int_equal(got, boundary ? whole : -1);
        free(p);
    }
    static const unsigned char masks[] = {0x01, 0x80, 0xff, 0x10, 0x40};
    unsigned char *p = malloc(b.len);
    for (size_t i = 0; i < b.len; i++)
        for (size_t m = 0; m < sizeof(masks); m++) {
            memcpy(p, b.p, b.len);
            p[i] ^= masks[m];
            (void)decode_all(p, b.len);
        }
    free(p);
    cop_buf_free(&b);
}

static void test_malformed_examples(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t n;
    } bad[] = {
        {"\x15\x00\x01"
         "a",
         4}, /* no such kind: 0x15 is kind 5 of version 1; next ones aren't */
        {"\x10\x00\x01"
         "a",
         4}, /* kind 0 */
        {"\x19\x00\x01"
         "a",
         4}, /* kind 9 */
        {"\x25\x00\x01"
         "a",
         4}, /* version 2 */
        {"\x15\x02\x01"
         "a",
         4}, /* an unknown flag */
        {"\x15\x80\x00\x01"
         "a",
         5},                 /* a varint longer than needed */
        {"\x15\x00\x00", 3}, /* an empty path */
        {"\x15\x00\x02"
         "..",
         5}, /* ".." */
        {"\x15\x00\x04"
         "raft",
         7}, /* the member's own folder */
        {"\x15\x00\x05"
         "a",
         4}, /* path longer than the input */
        {"\x11\x00\x01"
         "a"
         "\x01\x05"
         "abcd",
         10}, /* data cut short */
        {"\x12\x00\x01"
         "a"
         "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
         14}, /* a size past INT64_MAX */
        {"\x17\x00\x01"
         "a",
         4},                                                      /* a rename without path2 */
        {"\x15\x00\x81\x80\x80\x80\x80\x80\x80\x80\x80\x02", 12}, /* a varint of 11 bytes' worth */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned char *p = malloc(bad[i].n);
        memcpy(p, bad[i].bytes, bad[i].n);
        size_t pos = 0;
        struct cop op;
        int rc = cop_next(p, bad[i].n, &pos, &op);
        if (i == 0) {
            assert_int_equal(rc, 1); /* the control: MKDIR "a" */
            assert_int_equal(op.kind, COP_MKDIR);
        } else if (rc != -EBADMSG) {
            fail_msg("case %zu: %d", i, rc);
        }
        free(p);
    }
    size_t pos = 5;
    struct cop op;
    assert_int_equal(cop_next((const unsigned char *)"abc", 3, &pos, &op), -EBADMSG);
}

/* ---- applying ---- */

/* The run applied once gives the files expected; replayed from the start
 * over them, the same files. */
static void test_apply_and_replay_from_start(void **state)
{
    struct fx *fx = *state;
    size_t n;
    const struct cop *v = run_ops(&n);
    char root[PATH_MAX], raft[PATH_MAX], path[PATH_MAX], buf[256];
    subdir(fx, "data", root);
    tu_join(raft, root, "raft");
    tu_mkdir(raft); /* the member's own: never touched */
    tu_join(path, root, "raft/log");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fclose(f);
    apply_range(root, v, 0, n);
    char *once = tree(root);
    const char *want = "q-1/\n"
                       "q-1/NAME 3 ";
    assert_memory_equal(once, want, strlen(want));
    assert_null(strstr(once, "c-1"));
    assert_null(strstr(once, "q-2"));
    assert_null(strstr(once, "d-2"));
    assert_null(strstr(once, "q-3"));
    assert_null(strstr(once, "seg-1"));
    assert_null(strstr(once, "seg-2.keep"));
    assert_non_null(strstr(once, "q-1/seg-2 200 "));
    assert_non_null(strstr(once, "q-1/acks.1 11 "));
    assert_non_null(strstr(once, "q-1/acks.2 0 "));
    assert_non_null(strstr(once, "queues 10 "));
    assert_non_null(strstr(once, "raft/log 0 "));
    tu_join(path, root, "q-1/acks.0");
    assert_int_equal(tu_read_file(path, buf, sizeof(buf)), 27);
    assert_string_equal(buf, "ACK0 records: 1 2 3 4 5 6 7");
    tu_join(path, root, "queues");
    tu_read_file(path, buf, sizeof(buf));
    assert_string_equal(buf, "v2, longer");

    /* the committed state says what the files are */
    struct cop_state *st = state_of(v, n), *disk;
    assert_int_equal(cst_new(&disk), 0);
    state_from_disk(disk, root, "");
    assert_same_state(st, disk);
    cst_free(disk);
    cst_free(st);

    apply_range(root, v, 0, n);
    char *twice = tree(root);
    assert_string_equal(once, twice);
    free(once);
    free(twice);
}

/* The snapshot in the middle: the files after entries [0, k), its state
 * (through a manifest), the files gone further (the committed entries after
 * it, then changes never committed), cst_reconcile back to it and the
 * entries after k replayed: the files of the run applied once, for every
 * entry boundary k. The state at k also matches the files at k.
 *
 * Only entry boundaries: a rename of what an earlier entry made (c-1 filled
 * in one entry, renamed to q-1 in a later one; queues.new written in one,
 * renamed in the next) is not recoverable from a snapshot between the two:
 * cst_reconcile removes the target (the snapshot does not hold it) and the
 * replayed rename finds no source. So a file or folder made under a staging
 * name must be filled and renamed in one entry, as the run does. */
static void test_snapshot_in_the_middle(void **state)
{
    struct fx *fx = *state;
    size_t n;
    const struct cop *v = run_ops(&n);
    char ref[PATH_MAX];
    subdir(fx, "ref", ref);
    apply_range(ref, v, 0, n);
    char *want = tree(ref);
    int boundaries = 0;
    for (size_t k = 0; k <= n; k++) {
        if (k < n && v[k].kind)
            continue; /* snapshots fall between entries (see below) */
        boundaries++;
        char root[PATH_MAX], tmp[PATH_MAX], name[32];
        snprintf(name, sizeof(name), "k%zu", k);
        subdir(fx, name, root);
        tu_join(tmp, root, "tmp");
        tu_mkdir(tmp);
        apply_range(root, v, 0, k);
        struct cop_state *st = state_of(v, k), *disk, *back;
        assert_int_equal(cst_new(&disk), 0);
        state_from_disk(disk, root, "");
        assert_same_state(st, disk);
        cst_free(disk);
        void *man;
        size_t mn;
        assert_int_equal(cst_encode(st, &man, &mn), 0);
        assert_int_equal(cst_new(&back), 0);
        assert_int_equal(cst_decode(back, man, mn), 0);
        assert_int_equal(cst_count(back), cst_count(st));
        free(man);
        cst_free(st);

        apply_range(root, v, k, n);
        /* uncommitted: an append, a new file, a new folder, a file in tmp */
        char seg[PATH_MAX];
        tu_join(seg, root, "q-1/seg-2");
        struct cop extra[] = {
            op_write("q-1/seg-2", (uint64_t)tu_file_size(seg), "an item never committed"),
            op_write("q-1/seg-3", 0, HDR),
            op1(COP_MKDIR, "c-9/sub"),
            op_write("c-9/sub/NAME", 0, "q-9"),
            op_write("top", 0, "x"),
        };
        apply_range(root, extra, 0, sizeof(extra) / sizeof(extra[0]));
        char tmpf[PATH_MAX];
        tu_join(tmpf, root, "tmp/keep");
        FILE *f = fopen(tmpf, "wb");
        assert_non_null(f);
        fclose(f);

        assert_int_equal(cst_reconcile(back, root), 0);
        assert_true(tu_exists(tmpf));                   /* tmp is the member's own */
        assert_int_equal(cst_reconcile(back, root), 0); /* again: nothing more */
        cst_free(back);
        apply_range(root, v, k, n);
        tu_rmtree(tmp);
        char *got = tree(root);
        if (strcmp(got, want) != 0)
            fail_msg("snapshot after op %zu:\n%s\nwant:\n%s", k, got, want);
        free(got);
        tu_rmtree(root);
    }
    assert_true(boundaries > 10);
    free(want);
}

/* More files than the applier keeps open, written round and round; a
 * folder renamed and removed under open files. */
static void test_fd_cache(void **state)
{
    struct fx *fx = *state;
    char root[PATH_MAX];
    subdir(fx, "data", root);
    struct cop_applier *a;
    assert_int_equal(cop_applier_new(&a, root), 0);
    char names[40][32];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 40; i++) {
            snprintf(names[i], sizeof(names[i]), "q/f-%02d", i);
            char c[2] = {(char)('a' + round), 0};
            struct cop op = op_write(names[i], (uint64_t)round, c);
            assert_int_equal(cop_apply(a, &op), 0);
        }
    for (int i = 0; i < 40; i++) {
        char path[PATH_MAX], buf[8];
        tu_join(path, root, names[i]);
        assert_int_equal(tu_read_file(path, buf, sizeof(buf)), 3);
        assert_string_equal(buf, "abc");
    }
    struct cop ren = op2(COP_RENAME, "q", "r"), w = op_write("q/f-00", 3, "d");
    assert_int_equal(cop_apply(a, &ren), 0);
    assert_int_equal(cop_apply(a, &w), 0); /* a new q/f-00, not the renamed file */
    char path[PATH_MAX], buf[8];
    tu_join(path, root, "r/f-00");
    assert_int_equal(tu_read_file(path, buf, sizeof(buf)), 3);
    tu_join(path, root, "q/f-00");
    assert_int_equal(tu_file_size(path), 4);
    struct cop del = op2(COP_RENAME, "r", "d-r");
    assert_int_equal(cop_apply(a, &del), 0);
    tu_join(path, root, "d-r");
    assert_false(tu_exists(path));
    /* a file replaced behind the applier's back and noted: the new one is written */
    struct cop t1 = op_write("t/f", 0, "old"), t2 = op_write("t/f", 3, "!");
    assert_int_equal(cop_apply(a, &t1), 0);
    tu_join(path, root, "t/f");
    assert_int_equal(tu_unlink(path), 0);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite("new", 1, 3, f), 3);
    fclose(f);
    assert_int_equal(cop_applier_touch(a, S("t")), 0);
    assert_int_equal(cop_apply(a, &t2), 0);
    tu_read_file(path, buf, sizeof(buf));
    assert_string_equal(buf, "new!");
    assert_int_equal(cop_applier_touch(a, S("never/was")), 0);
    assert_int_equal(cop_applier_sync(a), 0);
    assert_int_equal(cop_applier_sync(a), 0);
    /* a folder onto a folder that exists: the source goes, the target stays */
    struct cop mk = op1(COP_MKDIR, "x/y"), onto = op2(COP_RENAME, "q", "x");
    assert_int_equal(cop_apply(a, &mk), 0);
    assert_int_equal(cop_apply(a, &onto), 0);
    tu_join(path, root, "q");
    assert_false(tu_exists(path));
    tu_join(path, root, "x/y");
    assert_true(tu_is_dir(path));
    /* a link: absent source or present target, nothing */
    struct cop l1 = op2(COP_LINK, "nope", "x/l"), l2 = op2(COP_LINK, "x/y", "x/y");
    assert_int_equal(cop_apply(a, &l1), 0);
    assert_int_equal(cop_apply(a, &l2), 0);
    tu_join(path, root, "x/l");
    assert_false(tu_exists(path));
    assert_int_equal(cop_applier_sync(a), 0);
    cop_applier_free(a);
    cop_applier_free(NULL);
    assert_int_equal(cop_applier_new(&a, "/nonexistent/darner"), -ENOENT);
}

/* ---- the committed state ---- */

static void test_state_rules(void **state)
{
    (void)state;
    struct cop_state *st;
    assert_int_equal(cst_new(&st), 0);
    struct cop ops[] = {
        op_write("a/b/f", 60, "0123456789"), /* a, a/b, a/b/f */
        op_resize("a/b/f", 62),
        op_write("a/b/f", 0, "head"),
        op1(COP_CREATE, "a/g"),
        op2(COP_LINK, "a/b/f", "a/h"),
        op1(COP_CREATE, "a/h"), /* present: untouched */
    };
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        assert_int_equal(cst_apply(st, &ops[i]), 0);
    assert_int_equal(cst_count(st), 5);
    struct cop_state *want;
    assert_int_equal(cst_new(&want), 0);
    unsigned char f[62] = {0};
    memcpy(f, "head", 4);
    memcpy(f + 60, "01", 2);
    struct cop wops[] = {
        {.kind = COP_WRITE, .path = S("a/b/f"), .len = 62, .data = f},
        op1(COP_CREATE, "a/g"),
        {.kind = COP_WRITE, .path = S("a/h"), .len = 62, .data = f},
    };
    for (size_t i = 0; i < sizeof(wops) / sizeof(wops[0]); i++)
        assert_int_equal(cst_apply(want, &wops[i]), 0);
    assert_same_state(st, want);

    struct cop more[] = {
        op2(COP_RENAME, "a", "q"),       op1(COP_MKDIR, "q/e/f"), op2(COP_RENAME, "q/e", "d-e"), /* removed */
        op2(COP_RENAME, "nope", "x"),    op1(COP_UNLINK, "q/g"),  op1(COP_UNLINK, "q"),          /* a folder: no */
        op2(COP_RENAME, "q/h", "q/b/f"),
    };
    for (size_t i = 0; i < sizeof(more) / sizeof(more[0]); i++)
        assert_int_equal(cst_apply(st, &more[i]), 0);
    cst_free(want);
    assert_int_equal(cst_new(&want), 0);
    struct cop w2[] = {{.kind = COP_WRITE, .path = S("q/b/f"), .len = 62, .data = f}};
    assert_int_equal(cst_apply(want, &w2[0]), 0);
    assert_same_state(st, want);
    struct cop rm = op1(COP_RMDIR, "q");
    assert_int_equal(cst_apply(st, &rm), 0);
    assert_int_equal(cst_count(st), 0);
    cst_free(want);
    cst_free(st);
    cst_free(NULL);
}

/* A manifest cut at every length or with any byte flipped is refused, and
 * the state it was decoded into is kept; a manifest with a good checksum
 * but an entry without its parent is refused too. */
static void test_manifest_damage(void **state)
{
    (void)state;
    size_t n;
    const struct cop *v = run_ops(&n);
    struct cop_state *st = state_of(v, n), *other;
    void *man;
    size_t mn;
    assert_int_equal(cst_encode(st, &man, &mn), 0);
    assert_int_equal(cst_new(&other), 0);
    assert_int_equal(cst_decode(other, man, mn), 0);
    assert_same_state(st, other);
    size_t count = cst_count(other);
    for (size_t cut = 0; cut < mn; cut++) {
        unsigned char *p = malloc(cut ? cut : 1);
        memcpy(p, man, cut);
        assert_int_equal(cst_decode(other, p, cut), -EBADMSG);
        free(p);
    }
    unsigned char *p = malloc(mn);
    for (size_t i = 0; i < mn; i++) {
        memcpy(p, man, mn);
        p[i] ^= 0x20;
        assert_int_equal(cst_decode(other, p, mn), -EBADMSG);
    }
    free(p);
    assert_int_equal(cst_count(other), count);
    assert_same_state(st, other);

    /* "a/b" without "a", with a good checksum */
    unsigned char bad[64];
    memcpy(bad, "DNCS", 4);
    put_u32le(bad + 4, 1);
    put_u64le(bad + 8, 1);
    size_t w = 16;
    bad[w++] = 3;
    bad[w++] = 0;
    memcpy(bad + w, "a/b", 3);
    w += 3;
    bad[w++] = 2;
    put_u64le(bad + w, XXH3_64bits(bad, w));
    assert_int_equal(cst_decode(other, bad, w + 8), -EBADMSG);
    bad[16 + 2 + 1] = 'x'; /* "axb": fine */
    put_u64le(bad + w, XXH3_64bits(bad, w));
    assert_int_equal(cst_decode(other, bad, w + 8), 0);
    assert_int_equal(cst_count(other), 1);
    free(man);
    cst_free(other);
    cst_free(st);
}

/* A file that is a folder in the state and the reverse are removed; a
 * file whose head differs is cut to 0; smaller files are left. */
static void test_reconcile_kinds(void **state)
{
    struct fx *fx = *state;
    char root[PATH_MAX];
    subdir(fx, "data", root);
    struct cop disk[] = {
        op_write("was-file/x", 0, "x"),
        op_write("was-dir", 0, "y"),
        op_write("short", 0, "ab"),
        op_write("rewritten", 0, "NEW contents"),
    };
    apply_range(root, disk, 0, sizeof(disk) / sizeof(disk[0]));
    struct cop_state *st;
    assert_int_equal(cst_new(&st), 0);
    struct cop want[] = {
        op_write("was-file", 0, "f"),
        op1(COP_MKDIR, "was-dir"),
        op_write("short", 0, "abcdef"),
        op_write("rewritten", 0, "OLD contents, longer"),
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_int_equal(cst_apply(st, &want[i]), 0);
    assert_int_equal(cst_reconcile(st, root), 0);
    char *got = tree(root);
    char want_tree[128];
    snprintf(want_tree, sizeof(want_tree), "rewritten 0 %016llx\nshort 2 %016llx\n",
             (unsigned long long)XXH3_64bits("", 0), (unsigned long long)XXH3_64bits("ab", 2));
    assert_string_equal(got, want_tree);
    free(got);
    assert_int_equal(cst_reconcile(st, "/nonexistent/darner"), -ENOENT);
    cst_free(st);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_ok),
        cmocka_unit_test(test_encoding_round_trip),
        cmocka_unit_test(test_append_refuses_bad_ops),
        cmocka_unit_test(test_truncated_and_damaged_input),
        cmocka_unit_test(test_malformed_examples),
        T(test_apply_and_replay_from_start),
        T(test_snapshot_in_the_middle),
        T(test_fd_cache),
        cmocka_unit_test(test_state_rules),
        cmocka_unit_test(test_manifest_damage),
        T(test_reconcile_kinds),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
