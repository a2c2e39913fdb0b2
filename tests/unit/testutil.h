/* tests/unit/testutil.h: small file-system helpers shared by the unit tests.
 *
 * Include after <cmocka.h>. Every helper is static inline, so a test file
 * that does not use one gets no unused-function warning. */
#ifndef DARNER_TESTS_TESTUTIL_H
#define DARNER_TESTS_TESTUTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* snprintf that fails the test when the output does not fit. */
#define tu_fmt(buf, cap, ...)                                                                                          \
    do {                                                                                                               \
        int tu_n_ = snprintf((buf), (cap), __VA_ARGS__);                                                               \
        assert_true(tu_n_ >= 0 && (size_t)tu_n_ < (size_t)(cap));                                                      \
    } while (0)

/* A fresh directory under /tmp; out must hold PATH_MAX bytes. */
static inline void tu_mkdtemp(char *out)
{
    tu_fmt(out, PATH_MAX, "/tmp/darner-ut-XXXXXX");
    assert_non_null(mkdtemp(out));
}

static inline int tu_rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

/* Removes a directory tree (the temporary directory of a test). */
static inline void tu_rmtree(const char *dir) { nftw(dir, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static inline void tu_join(char *out, const char *dir, const char *name) { tu_fmt(out, PATH_MAX, "%s/%s", dir, name); }

/* Size of a file, or -1 if it does not exist. */
static inline long long tu_file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return (long long)st.st_size;
}

static inline int tu_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static inline int tu_has(const char *name, const char *prefix, const char *suffix)
{
    size_t n = strlen(name), p = strlen(prefix), s = strlen(suffix);
    return n >= p + s && strncmp(name, prefix, p) == 0 && strcmp(name + n - s, suffix) == 0;
}

/* Entries of dir whose names start with prefix and end with suffix. */
static inline int tu_count(const char *dir, const char *prefix, const char *suffix)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && tu_has(e->d_name, prefix, suffix))
            n++;
    closedir(d);
    return n;
}

/* The name-wise greatest entry with that prefix and suffix, joined to dir
 * into out (PATH_MAX bytes). Fails the test if there is none. */
static inline void tu_last(const char *dir, const char *prefix, const char *suffix, char *out)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    char best[NAME_MAX + 1] = "";
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (tu_has(e->d_name, prefix, suffix) && strcmp(e->d_name, best) > 0)
            tu_fmt(best, sizeof(best), "%s", e->d_name);
    closedir(d);
    assert_true(best[0] != '\0');
    tu_join(out, dir, best);
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

static inline void tu_append_bytes(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

static inline void tu_truncate(const char *path, long long len) { assert_int_equal(truncate(path, (off_t)len), 0); }

/* XORs one byte of a file with x. */
static inline void tu_flip_byte(const char *path, long long off, unsigned char x)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
    c ^= x;
    assert_int_equal(pwrite(fd, &c, 1, (off_t)off), 1);
    close(fd);
}

#endif
