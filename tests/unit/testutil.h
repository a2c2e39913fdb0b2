/* tests/unit/testutil.h: small file-system helpers shared by the unit tests.
 *
 * Include after <cmocka.h>. Every helper is static inline, so a test file
 * that does not use one gets no unused-function warning. Files are read and
 * written through the journal's I/O table (jio_posix(): io_unix.c, or
 * io_win.c on Windows), folders made, listed and removed through libuv's
 * synchronous uv_fs_* calls, so the same code runs on every platform. */
#ifndef DARNER_TESTS_TESTUTIL_H
#define DARNER_TESTS_TESTUTIL_H

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "journal/io.h"
#include "testplat.h"

/* snprintf that fails the test when the output does not fit. */
#define tu_fmt(buf, cap, ...)                                                                                          \
    do {                                                                                                               \
        int tu_n_ = snprintf((buf), (cap), __VA_ARGS__);                                                               \
        assert_true(tu_n_ >= 0 && (size_t)tu_n_ < (size_t)(cap));                                                      \
    } while (0)

/* The platform's real calls, for the helpers and for tests that touch the
 * journal's files behind its back. */
static inline const struct jio *tu_io(void) { return jio_posix(); }

/* A fresh directory in the temporary folder (uv_os_tmpdir: $TMPDIR or /tmp;
 * GetTempPath's folder on Windows); out must hold PATH_MAX bytes. */
static inline void tu_mkdtemp(char *out)
{
    char base[PATH_MAX], tpl[PATH_MAX];
    size_t n = sizeof(base);
    assert_int_equal(uv_os_tmpdir(base, &n), 0);
    tu_fmt(tpl, sizeof(tpl), "%s/darner-ut-XXXXXX", base);
    uv_fs_t req;
    int rc = uv_fs_mkdtemp(NULL, &req, tpl, NULL);
    if (rc == 0)
        tu_fmt(out, PATH_MAX, "%s", req.path);
    uv_fs_req_cleanup(&req);
    assert_int_equal(rc, 0);
}

static inline void tu_join(char *out, const char *dir, const char *name) { tu_fmt(out, PATH_MAX, "%s/%s", dir, name); }

/* The canonical absolute path of an existing path into out (PATH_MAX bytes). */
static inline void tu_realpath(const char *path, char *out)
{
    uv_fs_t req;
    int rc = uv_fs_realpath(NULL, &req, path, NULL);
    if (rc == 0)
        tu_fmt(out, PATH_MAX, "%s", (const char *)req.ptr);
    uv_fs_req_cleanup(&req);
    assert_int_equal(rc, 0);
}

static inline void tu_mkdir(const char *path) { assert_int_equal(tu_io()->mkdir(tu_io()->ctx, path, 0755), 0); }

static inline int tu_is_dir(const char *path)
{
    uv_fs_t req;
    int rc = uv_fs_lstat(NULL, &req, path, NULL);
    int dir = rc == 0 && (req.statbuf.st_mode & S_IFMT) == S_IFDIR;
    uv_fs_req_cleanup(&req);
    return dir;
}

/* Removes a directory tree (the temporary directory of a test), as far as
 * it can: errors are ignored. */
static inline void tu_rmtree(const char *dir)
{
    uv_fs_t req;
    uv_dirent_t e;
    if (uv_fs_scandir(NULL, &req, dir, 0, NULL) >= 0) {
        while (uv_fs_scandir_next(&req, &e) != UV_EOF) {
            char path[PATH_MAX];
            tu_join(path, dir, e.name);
            if (e.type == UV_DIRENT_DIR || (e.type == UV_DIRENT_UNKNOWN && tu_is_dir(path)))
                tu_rmtree(path);
            else
                tu_io()->unlink(tu_io()->ctx, path);
        }
    }
    uv_fs_req_cleanup(&req);
    tu_io()->rmdir(tu_io()->ctx, dir);
}

/* Size of a file, or -1 if it does not exist. */
static inline long long tu_file_size(const char *path)
{
    uint64_t size;
    return tu_io()->size(tu_io()->ctx, path, &size) == 0 ? (long long)size : -1;
}

static inline int tu_exists(const char *path)
{
    uv_fs_t req;
    int rc = uv_fs_lstat(NULL, &req, path, NULL);
    uv_fs_req_cleanup(&req);
    return rc == 0;
}

static inline int tu_has(const char *name, const char *prefix, const char *suffix)
{
    size_t n = strlen(name), p = strlen(prefix), s = strlen(suffix);
    return n >= p + s && strncmp(name, prefix, p) == 0 && strcmp(name + n - s, suffix) == 0;
}

/* What tu_count and tu_last look for, and what they found. */
struct tu_match {
    const char *prefix, *suffix;
    int n;
    char best[1024]; /* a name of 255 UTF-16 units is at most 765 bytes of UTF-8 */
};

static inline int tu_match_one(void *arg, const char *name)
{
    struct tu_match *m = arg;
    if (tu_has(name, m->prefix, m->suffix)) {
        m->n++;
        if (strcmp(name, m->best) > 0)
            tu_fmt(m->best, sizeof(m->best), "%s", name);
    }
    return 0;
}

static inline void tu_match(const char *dir, struct tu_match *m)
{
    assert_int_equal(tu_io()->listdir(tu_io()->ctx, dir, tu_match_one, m), 0);
}

/* Entries of dir whose names start with prefix and end with suffix. */
static inline int tu_count(const char *dir, const char *prefix, const char *suffix)
{
    struct tu_match m = {.prefix = prefix, .suffix = suffix};
    tu_match(dir, &m);
    return m.n;
}

/* The name-wise greatest entry with that prefix and suffix, joined to dir
 * into out (PATH_MAX bytes). Fails the test if there is none. */
static inline void tu_last(const char *dir, const char *prefix, const char *suffix, char *out)
{
    struct tu_match m = {.prefix = prefix, .suffix = suffix};
    tu_match(dir, &m);
    assert_true(m.best[0] != '\0');
    tu_join(out, dir, m.best);
}

/* Reads a whole small file into buf (NUL-terminated); returns its length. */
static inline size_t tu_read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n;
}

/* An fd of the I/O table on an existing file (flags: O_RDONLY, O_WRONLY or
 * O_RDWR), for tu_pread, tu_pwrite and tu_close. */
static inline int tu_open(const char *path, int flags)
{
    int fd = tu_io()->open(tu_io()->ctx, path, flags, 0);
    assert_true(fd >= 0);
    return fd;
}

static inline void tu_close(int fd) { tu_io()->close(tu_io()->ctx, fd); }

static inline ssize_t tu_pread(int fd, void *p, size_t n, long long off)
{
    return tu_io()->pread(tu_io()->ctx, fd, p, n, (off_t)off);
}

static inline ssize_t tu_pwrite(int fd, const void *p, size_t n, long long off)
{
    return tu_io()->pwrite(tu_io()->ctx, fd, p, n, (off_t)off);
}

static inline int tu_fsync(int fd) { return tu_io()->fsync(tu_io()->ctx, fd); }

/* Removes a file; returns 0 or -errno. */
static inline int tu_unlink(const char *path) { return tu_io()->unlink(tu_io()->ctx, path); }

static inline void tu_append_bytes(const char *path, const void *p, size_t n)
{
    int fd = tu_open(path, O_WRONLY);
    off_t size;
    assert_int_equal(tu_io()->fsize(tu_io()->ctx, fd, &size), 0);
    assert_int_equal(tu_pwrite(fd, p, n, (long long)size), (ssize_t)n);
    tu_close(fd);
}

static inline void tu_truncate(const char *path, long long len)
{
    int fd = tu_open(path, O_WRONLY);
    assert_int_equal(tu_io()->resize(tu_io()->ctx, fd, (off_t)len), 0);
    tu_close(fd);
}

/* XORs one byte of a file with x. */
static inline void tu_flip_byte(const char *path, long long off, unsigned char x)
{
    int fd = tu_open(path, O_RDWR);
    unsigned char c;
    assert_int_equal(tu_pread(fd, &c, 1, off), 1);
    c ^= x;
    assert_int_equal(tu_pwrite(fd, &c, 1, off), 1);
    tu_close(fd);
}

#endif
