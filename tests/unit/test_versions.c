/* Unit tests for format versions: a journal or data folder written by another
 * build (another version, intact checksums) is refused with
 * -EPROTONOSUPPORT and left byte for byte as it was; the data folder's
 * FORMAT file is written when missing and checked when present. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "journal/datadir.h"
#include "journal/format.h"
#include "journal/io.h"
#include "journal/journal.h"
#include "testutil.h"
#include "util/buf.h"

#define SEG1 "seg-0000000000000001.dat"

struct fx {
    char tmp[PATH_MAX];
    char dir[PATH_MAX];
    struct jnl_conf conf;
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    tu_mkdtemp(fx->tmp);
    tu_join(fx->dir, fx->tmp, "q");
    fx->conf = (struct jnl_conf){.io = jio_posix(), .segment_size = 1 << 20, .ack_compact_bytes = 1 << 20};
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    tu_rmtree(fx->tmp);
    free(fx);
    return 0;
}

/* A snapshot of a folder: every file's name and bytes, sorted by name. */
struct snap {
    char names[64][256];
    char *data[64];
    size_t len[64];
    int n;
};

static int snap_name(void *arg, const char *name)
{
    struct snap *s = arg;
    if (name[0] != '.') {
        assert_true(s->n < 64);
        tu_fmt(s->names[s->n], sizeof(s->names[0]), "%s", name);
        s->n++;
    }
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(a, b); }

static void snap_take(const char *dir, struct snap *s)
{
    s->n = 0;
    assert_int_equal(tu_io()->listdir(tu_io()->ctx, dir, snap_name, s), 0);
    qsort(s->names, (size_t)s->n, sizeof(s->names[0]), by_name);
    for (int i = 0; i < s->n; i++) {
        char path[PATH_MAX];
        tu_join(path, dir, s->names[i]);
        long long size = tu_file_size(path);
        assert_true(size >= 0);
        s->data[i] = malloc((size_t)size + 1);
        assert_non_null(s->data[i]);
        s->len[i] = tu_read_file(path, s->data[i], (size_t)size + 1);
    }
}

static void snap_free(struct snap *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->data[i]);
}

static void snap_equal(const struct snap *a, const struct snap *b)
{
    assert_int_equal(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        assert_string_equal(a->names[i], b->names[i]);
        assert_int_equal(a->len[i], b->len[i]);
        assert_memory_equal(a->data[i], b->data[i], a->len[i]);
    }
}

/* Rewrites the version of the 64-byte header at the start of path, keeping
 * its checksum right: what a build of that version would have written. */
static void restamp(const char *path, uint32_t version)
{
    unsigned char raw[64];
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fread(raw, 1, sizeof(raw), f), sizeof(raw));
    put_u32le(raw + 8, version);
    put_u64le(raw + 56, XXH3_64bits(raw, 56));
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    assert_int_equal(fwrite(raw, 1, sizeof(raw), f), sizeof(raw));
    fclose(f);
}

/* A journal with live items of every kind: taken, open, and at the cursor,
 * plus a leftover temporary file that recovery would otherwise remove. */
static void make_journal(struct fx *fx)
{
    struct jnl *j = NULL;
    assert_int_equal(jnl_open(&j, &fx->conf, fx->dir, 1), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(jnl_append(j, &(struct jnl_attrs){.add_ms = 1, .priority = JNL_PRIORITY_DEFAULT}, "hello", 5),
                         0);
    struct jnl_head h;
    struct jnl_node *n;
    assert_int_equal(jnl_head(j, &h), 0);
    assert_int_equal(jnl_remove_head(j, &h), 0);
    assert_int_equal(jnl_head(j, &h), 0);
    assert_int_equal(jnl_hold_head(j, &h, fx, &n), 0);
    jnl_close(j);
    char path[PATH_MAX];
    tu_join(path, fx->dir, "seg-0000000000000002.dat.tmp");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fclose(f);
}

static void expect_refused_untouched(struct fx *fx)
{
    struct snap before, after;
    struct jnl *j = NULL;
    snap_take(fx->dir, &before);
    assert_int_equal(jnl_open(&j, &fx->conf, fx->dir, 0), -EPROTONOSUPPORT);
    assert_null(j);
    assert_int_equal(jnl_open(&j, &fx->conf, fx->dir, 1), -EPROTONOSUPPORT);
    snap_take(fx->dir, &after);
    snap_equal(&before, &after);
    snap_free(&before);
    snap_free(&after);
}

static void test_segment_of_a_newer_version_is_refused_untouched(void **state)
{
    struct fx *fx = *state;
    char path[PATH_MAX];
    make_journal(fx);
    tu_join(path, fx->dir, SEG1);
    restamp(path, JF_VERSION + 1);
    expect_refused_untouched(fx);
}

static void test_ack_log_of_a_newer_version_is_refused_untouched(void **state)
{
    struct fx *fx = *state;
    char path[PATH_MAX];
    make_journal(fx);
    tu_join(path, fx->dir, "acks.0");
    if (!tu_exists(path))
        tu_join(path, fx->dir, "acks.1");
    restamp(path, 7);
    expect_refused_untouched(fx);
}

/* The same header with a damaged checksum is damage, handled by recovery as
 * before (the queue opens): only an intact header of another version is
 * refused. */
static void test_damaged_header_is_still_damage_not_a_version(void **state)
{
    struct fx *fx = *state;
    char path[PATH_MAX];
    struct jnl *j = NULL;
    make_journal(fx);
    tu_join(path, fx->dir, SEG1);
    tu_flip_byte(path, 8, 0x02);
    assert_int_equal(jnl_open(&j, &fx->conf, fx->dir, 0), 0);
    jnl_close(j);
}

static void test_format_file_is_written_in_a_new_folder(void **state)
{
    struct fx *fx = *state;
    char path[PATH_MAX], text[32];
    uint32_t found = 99;
    assert_int_equal(jdd_check_format(&fx->conf, fx->tmp, &found), 0);
    assert_int_equal(found, 0);
    tu_join(path, fx->tmp, JDD_FORMAT_FILE);
    tu_read_file(path, text, sizeof(text));
    char want[16];
    snprintf(want, sizeof(want), "%d\n", JDD_FORMAT);
    assert_string_equal(text, want);
    assert_int_equal(jdd_check_format(&fx->conf, fx->tmp, &found), 0);
    assert_int_equal(found, JDD_FORMAT);
    tu_join(path, fx->tmp, JDD_FORMAT_FILE ".tmp");
    assert_false(tu_exists(path));
}

static void format_file_refused(struct fx *fx, const char *content)
{
    char path[PATH_MAX];
    struct snap before, after;
    tu_join(path, fx->tmp, JDD_FORMAT_FILE);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    snap_take(fx->tmp, &before);
    assert_int_equal(jdd_check_format(&fx->conf, fx->tmp, NULL), -EPROTONOSUPPORT);
    snap_take(fx->tmp, &after);
    snap_equal(&before, &after);
    snap_free(&before);
    snap_free(&after);
}

static void test_format_file_of_a_newer_version_is_refused_untouched(void **state)
{
    struct fx *fx = *state;
    char text[16];
    snprintf(text, sizeof(text), "%d\n", JDD_FORMAT + 1);
    format_file_refused(fx, text);
    format_file_refused(fx, "4294967295\n");
}

static void test_format_file_without_a_version_is_refused_untouched(void **state)
{
    struct fx *fx = *state;
    format_file_refused(fx, "");
    format_file_refused(fx, "one\n");
    format_file_refused(fx, "1 \n");
    format_file_refused(fx, "0x1\n");
    format_file_refused(fx, "99999999999\n");
    format_file_refused(fx, "0\n");
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_segment_of_a_newer_version_is_refused_untouched),
        T(test_ack_log_of_a_newer_version_is_refused_untouched),
        T(test_damaged_header_is_still_damage_not_a_version),
        T(test_format_file_is_written_in_a_new_folder),
        T(test_format_file_of_a_newer_version_is_refused_untouched),
        T(test_format_file_without_a_version_is_refused_untouched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
