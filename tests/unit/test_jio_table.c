/* Unit tests for the platform's I/O table, jio_posix() (io_unix.c on Linux,
 * the BSDs and macOS; io_win.c on Windows), in a temporary folder: what the
 * journal relies on from each call, the same on every platform. Every file
 * operation goes through the table, so this file builds for Windows too.
 * Under Wine, from a cross build (cmake/mingw-w64.cmake, -DBUILD_TESTING=ON,
 * cmocka from scripts/windows/build-deps), or by hand:
 *
 *   P=build-win/prefix; x86_64-w64-mingw32-gcc -std=c17 -D_GNU_SOURCE \
 *     -D_FILE_OFFSET_BITS=64 -D__USE_MINGW_ANSI_STDIO=1 -D_WIN32_WINNT=0x0A00 \
 *     -DWIN32_LEAN_AND_MEAN -Isrc -I$P/include tests/unit/test_jio_table.c \
 *     src/journal/io_win.c src/journal/io.c -L$P/lib -lcmocka-static \
 *     -static-libgcc -o build-win/w-io/test_jio_table.exe
 *   wine build-win/w-io/test_jio_table.exe              (GetTempPath: C:\...)
 *   TMPDIR=/tmp wine build-win/w-io/test_jio_table.exe  (root-relative paths)
 *
 * Wine 8 is not Windows in one respect these tests see: it has neither
 * POSIX-semantics rename nor delete (FileRenameInfoEx and
 * FileDispositionInfoEx answer STATUS_NOT_IMPLEMENTED), which NTFS on
 * Windows 10 1709 and later has. So under Wine a rename over a file that is
 * open fails with -EACCES (rename_over_an_open_file), and a removed
 * open file lives on under a hidden name until closed
 * (unlink_an_open_file_then_create_it_again). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journal/io.h"

/* Paths here may be longer than Windows' MAX_PATH (test_long_paths). */
enum { PATHCAP = 4096 };

#ifdef _WIN32
#include <io.h>
#include <windows.h>
#include <winioctl.h>

/* $TMPDIR if set (under Wine, TMPDIR=/tmp tries root-relative paths), else
 * GetTempPath's folder, as UTF-8. */
static void temp_base(char *out, size_t cap)
{
    const char *t = getenv("TMPDIR");
    if (t && *t) {
        snprintf(out, cap, "%s", t);
        return;
    }
    wchar_t w[MAX_PATH + 1];
    DWORD n = GetTempPathW(MAX_PATH + 1, w);
    assert_true(n > 0 && n <= MAX_PATH);
    assert_true(WideCharToMultiByte(CP_UTF8, 0, w, -1, out, (int)cap, NULL, NULL) > 0);
}

/* Wine's ntdll exports wine_get_version; Windows' does not. */
static int under_wine(void) { return GetProcAddress(GetModuleHandleW(L"ntdll.dll"), "wine_get_version") != NULL; }

/* NTFS fills a non-sparse file with zeros up to a write far past its end. */
static void make_sparse(int fd)
{
    DWORD n;
    DeviceIoControl((HANDLE)_get_osfhandle(fd), FSCTL_SET_SPARSE, NULL, 0, NULL, 0, &n, NULL);
}
#else
static void temp_base(char *out, size_t cap)
{
    const char *t = getenv("TMPDIR");
    snprintf(out, cap, "%s", t && *t ? t : "/tmp");
}

static int under_wine(void) { return 0; }

static void make_sparse(int fd) { (void)fd; }
#endif

struct fx {
    const struct jio *io;
    char dir[PATHCAP];
};

/* dir/name into out (PATHCAP bytes). */
static void join(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, PATHCAP, "%s/%s", dir, name);
    assert_true(n > 0 && n < PATHCAP);
}

struct names {
    char **v;
    size_t n;
};

static int collect(void *arg, const char *name)
{
    struct names *ns = arg;
    char **v = realloc(ns->v, (ns->n + 1) * sizeof(*v));
    assert_non_null(v);
    ns->v = v;
    assert_non_null(ns->v[ns->n++] = strdup(name));
    return 0;
}

static void names_free(struct names *ns)
{
    for (size_t i = 0; i < ns->n; i++)
        free(ns->v[i]);
    free(ns->v);
    *ns = (struct names){0};
}

static int has_name(const struct names *ns, const char *name)
{
    int k = 0;
    for (size_t i = 0; i < ns->n; i++)
        k += strcmp(ns->v[i], name) == 0;
    return k;
}

/* Removes a folder and all in it through the table (a name that unlink
 * refuses is taken for a folder). */
static void rm_tree(const struct jio *io, const char *dir)
{
    struct names ns = {0};
    if (io->listdir(io->ctx, dir, collect, &ns) < 0)
        return;
    char path[PATHCAP];
    for (size_t i = 0; i < ns.n; i++) {
        join(path, dir, ns.v[i]);
        if (io->unlink(io->ctx, path) < 0)
            rm_tree(io, path);
    }
    names_free(&ns);
    io->rmdir(io->ctx, dir);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->io = jio_posix();
    char base[PATHCAP];
    temp_base(base, sizeof(base));
    srand((unsigned)time(NULL) ^ (unsigned)clock() ^ (unsigned)(uintptr_t)f);
    int rc = -EEXIST;
    for (int i = 0; i < 100 && rc == -EEXIST; i++) {
        char name[64];
        snprintf(name, sizeof(name), "darner-jio-%08x", (unsigned)rand() ^ ((unsigned)rand() << 16));
        join(f->dir, base, name);
        rc = f->io->mkdir(f->io->ctx, f->dir, 0700);
    }
    assert_int_equal(rc, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    rm_tree(f->io, f->dir);
    free(f);
    return 0;
}

/* Opens dir/name with flags; fails the test unless that gives an fd. */
static int open_in(const struct fx *f, const char *name, int flags)
{
    char path[PATHCAP];
    join(path, f->dir, name);
    int fd = f->io->open(f->io->ctx, path, flags, 0644);
    assert_true(fd >= 0);
    return fd;
}

/* Makes dir/name hold exactly text. */
static void put(const struct fx *f, const char *name, const char *text)
{
    int fd = open_in(f, name, O_WRONLY | O_CREAT | O_TRUNC);
    assert_int_equal(jio_pwrite_all(f->io, fd, text, strlen(text), 0), 0);
    assert_int_equal(f->io->close(f->io->ctx, fd), 0);
}

/* Reads all of an open file into buf (NUL-terminated). */
static void read_fd(const struct fx *f, int fd, char *buf, size_t cap)
{
    off_t size;
    assert_int_equal(f->io->fsize(f->io->ctx, fd, &size), 0);
    assert_true((size_t)size < cap);
    assert_int_equal(jio_pread_all(f->io, fd, buf, (size_t)size, 0), 0);
    buf[size] = '\0';
}

/* Fails the test unless dir/name holds exactly text. */
static void expect_text(const struct fx *f, const char *name, const char *text)
{
    char buf[256];
    int fd = open_in(f, name, O_RDONLY);
    read_fd(f, fd, buf, sizeof(buf));
    f->io->close(f->io->ctx, fd);
    assert_string_equal(buf, text);
}

static int size_of(const struct fx *f, const char *name, uint64_t *size)
{
    char path[PATHCAP];
    join(path, f->dir, name);
    return f->io->size(f->io->ctx, path, size);
}

static int rename_in(const struct fx *f, const char *from, const char *to)
{
    char a[PATHCAP], b[PATHCAP];
    join(a, f->dir, from);
    join(b, f->dir, to);
    return f->io->rename(f->io->ctx, a, b);
}

static void the_table_is_complete(void **state)
{
    (void)state;
    assert_true(jio_complete(jio_posix()));
}

static void writes_and_reads_at_offsets(void **state)
{
    struct fx *f = *state;
    int fd = open_in(f, "data", O_RDWR | O_CREAT | O_TRUNC);
    assert_int_equal(f->io->pwrite(f->io->ctx, fd, "hello", 5, 0), 5);
    assert_int_equal(f->io->pwrite(f->io->ctx, fd, "world", 5, 100), 5);
    assert_int_equal(f->io->pwrite(f->io->ctx, fd, "J", 1, 0), 1); /* over, not appended */
    off_t size;
    assert_int_equal(f->io->fsize(f->io->ctx, fd, &size), 0);
    assert_int_equal(size, 105);

    char buf[16] = {0};
    assert_int_equal(f->io->pread(f->io->ctx, fd, buf, 5, 100), 5);
    assert_memory_equal(buf, "world", 5);
    assert_int_equal(f->io->pread(f->io->ctx, fd, buf, 5, 0), 5);
    assert_memory_equal(buf, "Jello", 5);
    assert_int_equal(f->io->pread(f->io->ctx, fd, buf, 4, 50), 4); /* the gap reads as zeros */
    assert_memory_equal(buf, "\0\0\0\0", 4);
    assert_int_equal(f->io->pread(f->io->ctx, fd, buf, 16, 102), 3); /* short at the end */
    assert_memory_equal(buf, "rld", 3);
    assert_int_equal(f->io->pread(f->io->ctx, fd, buf, 16, 105), 0);     /* at the end */
    assert_int_equal(f->io->pread(f->io->ctx, fd, buf, 16, 1 << 20), 0); /* past it */
    assert_int_equal(jio_pread_all(f->io, fd, buf, 16, 100), -ENODATA);
    assert_int_equal(f->io->close(f->io->ctx, fd), 0);

    uint64_t n;
    assert_int_equal(size_of(f, "data", &n), 0);
    assert_int_equal(n, 105);
}

static void offsets_past_4_gib(void **state)
{
    struct fx *f = *state;
    int fd = open_in(f, "sparse", O_RDWR | O_CREAT | O_TRUNC);
    make_sparse(fd);
    off_t beyond = ((off_t)5 << 30) + 7; /* beyond 32 bits: the OVERLAPPED's OffsetHigh */
    /* a file system without sparse files may refuse to grow so far */
    assert_int_equal(f->io->resize(f->io->ctx, fd, beyond + 3), 0);
    assert_int_equal(f->io->pwrite(f->io->ctx, fd, "abc", 3, beyond), 3);
    char buf[3];
    assert_int_equal(f->io->pread(f->io->ctx, fd, buf, 3, beyond), 3);
    assert_memory_equal(buf, "abc", 3);
    off_t size;
    assert_int_equal(f->io->fsize(f->io->ctx, fd, &size), 0);
    assert_int_equal(size, beyond + 3);
    assert_int_equal(f->io->close(f->io->ctx, fd), 0);
}

static void resize_shrinks_and_grows(void **state)
{
    struct fx *f = *state;
    put(f, "r", "hello world");
    int fd = open_in(f, "r", O_RDWR);
    assert_int_equal(f->io->resize(f->io->ctx, fd, 3), 0);
    off_t size;
    assert_int_equal(f->io->fsize(f->io->ctx, fd, &size), 0);
    assert_int_equal(size, 3);
    char buf[8];
    assert_int_equal(f->io->pread(f->io->ctx, fd, buf, 8, 0), 3);
    assert_memory_equal(buf, "hel", 3);
    assert_int_equal(f->io->resize(f->io->ctx, fd, 6), 0);
    assert_int_equal(f->io->pread(f->io->ctx, fd, buf, 8, 0), 6);
    assert_memory_equal(buf, "hel\0\0\0", 6);
    assert_int_equal(f->io->close(f->io->ctx, fd), 0);
}

/* fsync works on a read-only fd as well (jio_fsync_path, a cloned blob's
 * fd): Windows' FlushFileBuffers needs write access, io_win.c gets it. */
static void fsync_on_written_and_read_only_fds(void **state)
{
    struct fx *f = *state;
    int fd = open_in(f, "s", O_RDWR | O_CREAT | O_TRUNC);
    assert_int_equal(jio_pwrite_all(f->io, fd, "x", 1, 0), 0);
    assert_int_equal(f->io->fsync(f->io->ctx, fd), 0);
    assert_int_equal(f->io->close(f->io->ctx, fd), 0);
    fd = open_in(f, "s", O_RDONLY);
    assert_int_equal(f->io->fsync(f->io->ctx, fd), 0);
    assert_int_equal(f->io->close(f->io->ctx, fd), 0);

    char path[PATHCAP];
    join(path, f->dir, "s");
    assert_int_equal(jio_fsync_path(f->io, path), 0);
    join(path, f->dir, "missing");
    assert_int_equal(jio_fsync_path(f->io, path), -ENOENT);
}

static void dup_is_the_same_open_file(void **state)
{
    struct fx *f = *state;
    int fd = open_in(f, "d", O_RDWR | O_CREAT | O_TRUNC);
    int d = f->io->dup(f->io->ctx, fd);
    assert_true(d >= 0 && d != fd);
    assert_int_equal(jio_pwrite_all(f->io, d, "through dup", 11, 0), 0);
    assert_int_equal(f->io->fsync(f->io->ctx, d), 0);
    char buf[32];
    read_fd(f, fd, buf, sizeof(buf));
    assert_string_equal(buf, "through dup");
    assert_int_equal(f->io->close(f->io->ctx, fd), 0);
    assert_int_equal(jio_pwrite_all(f->io, d, "!", 1, 11), 0); /* outlives the original */
    read_fd(f, d, buf, sizeof(buf));
    assert_string_equal(buf, "through dup!");
    assert_int_equal(f->io->close(f->io->ctx, d), 0);
}

static void rename_replaces_an_existing_file(void **state)
{
    struct fx *f = *state;
    put(f, "a", "new");
    put(f, "b", "old");
    assert_int_equal(rename_in(f, "a", "b"), 0);
    expect_text(f, "b", "new");
    uint64_t n;
    assert_int_equal(size_of(f, "a", &n), -ENOENT);
    assert_int_equal(rename_in(f, "a", "c"), -ENOENT);
}

/* A file open elsewhere can be renamed (files are shared for delete). */
static void rename_an_open_file(void **state)
{
    struct fx *f = *state;
    put(f, "src", "data");
    int fd = open_in(f, "src", O_RDWR);
    assert_int_equal(rename_in(f, "src", "dst"), 0);
    assert_int_equal(jio_pwrite_all(f->io, fd, "!", 1, 4), 0);
    assert_int_equal(f->io->close(f->io->ctx, fd), 0);
    expect_text(f, "dst", "data!");
}

/* POSIX: the open fd keeps the replaced file. Windows: the same on NTFS
 * (POSIX-semantics rename); Wine 8 has none, and the classic rename
 * refuses to replace an open file (-EACCES), leaving both as they were. */
static void rename_over_an_open_file(void **state)
{
    struct fx *f = *state;
    put(f, "target", "old");
    put(f, "next", "new");
    int fd = open_in(f, "target", O_RDONLY);
    int rc = rename_in(f, "next", "target");
    char buf[16];
    if (under_wine() && rc == -EACCES) {
        print_message("Wine: no POSIX-semantics rename; replacing an open file gives -EACCES\n");
        expect_text(f, "target", "old");
        expect_text(f, "next", "new");
    } else {
        assert_int_equal(rc, 0);
        expect_text(f, "target", "new");
        uint64_t n;
        assert_int_equal(size_of(f, "next", &n), -ENOENT);
    }
    read_fd(f, fd, buf, sizeof(buf));
    assert_string_equal(buf, "old");
    assert_int_equal(f->io->close(f->io->ctx, fd), 0);
}

/* The registry renames queue folders (c-, q-, d-) while their journals
 * hold files in them open. */
static void rename_a_folder_with_open_files_in_it(void **state)
{
    struct fx *f = *state;
    char a[PATHCAP], b[PATHCAP], file[PATHCAP];
    join(a, f->dir, "c-1");
    join(b, f->dir, "q-1");
    join(file, a, "seg-1");
    assert_int_equal(f->io->mkdir(f->io->ctx, a, 0755), 0);
    int fd = f->io->open(f->io->ctx, file, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(f->io->rename(f->io->ctx, a, b), 0);
    assert_int_equal(jio_pwrite_all(f->io, fd, "moved", 5, 0), 0);
    assert_int_equal(f->io->close(f->io->ctx, fd), 0);
    join(file, b, "seg-1");
    uint64_t n;
    assert_int_equal(f->io->size(f->io->ctx, file, &n), 0);
    assert_int_equal(n, 5);
}

/* The name goes at once while the fd still reads the file (the delay
 * index's run files live so), and the name can be used again at once. */
static void unlink_an_open_file_then_create_it_again(void **state)
{
    struct fx *f = *state;
    put(f, "x", "first");
    int fd = open_in(f, "x", O_RDWR);
    char path[PATHCAP];
    join(path, f->dir, "x");
    assert_int_equal(f->io->unlink(f->io->ctx, path), 0);
    uint64_t n;
    assert_int_equal(size_of(f, "x", &n), -ENOENT);
    assert_int_equal(f->io->open(f->io->ctx, path, O_RDONLY, 0), -ENOENT);

    int again = open_in(f, "x", O_RDWR | O_CREAT | O_EXCL);
    assert_int_equal(jio_pwrite_all(f->io, again, "second", 6, 0), 0);
    assert_int_equal(jio_pwrite_all(f->io, fd, "!", 1, 5), 0); /* the removed one is still writable */
    char buf[16];
    read_fd(f, fd, buf, sizeof(buf));
    assert_string_equal(buf, "first!");
    read_fd(f, again, buf, sizeof(buf));
    assert_string_equal(buf, "second");

    /* without POSIX-semantics delete (Wine 8, FAT) the removed file is
     * still listed, under io_win.c's hidden .jio-gone- name, until closed */
    struct names ns = {0};
    assert_int_equal(f->io->listdir(f->io->ctx, f->dir, collect, &ns), 0);
    assert_int_equal(has_name(&ns, "x"), 1);
    size_t gone = 0;
    for (size_t i = 0; i < ns.n; i++)
        gone += strncmp(ns.v[i], ".jio-gone-", 10) == 0;
    assert_true(gone <= 1);
    if (gone)
        print_message("no POSIX-semantics delete: the removed file is listed as .jio-gone-* until closed\n");
    assert_int_equal(ns.n, 1 + gone);
    names_free(&ns);
    assert_int_equal(f->io->close(f->io->ctx, fd), 0);
    assert_int_equal(f->io->listdir(f->io->ctx, f->dir, collect, &ns), 0);
    assert_int_equal(ns.n, 1);
    assert_string_equal(ns.v[0], "x");
    names_free(&ns);
    assert_int_equal(f->io->close(f->io->ctx, again), 0);
    assert_int_equal(f->io->unlink(f->io->ctx, path), 0);
    assert_int_equal(f->io->unlink(f->io->ctx, path), -ENOENT);
}

static int stop_at_second(void *arg, const char *name)
{
    (void)name;
    return ++*(int *)arg == 2 ? 7 : 0;
}

static void listdir_gives_every_name_but_dot_and_dotdot(void **state)
{
    struct fx *f = *state;
    put(f, "seg-1", "a");
    put(f, "acks.0", "b");
    put(f, "caf\xc3\xa9", "c"); /* UTF-8 in, UTF-8 out */
    char path[PATHCAP];
    join(path, f->dir, "sub");
    assert_int_equal(f->io->mkdir(f->io->ctx, path, 0755), 0);

    struct names ns = {0};
    assert_int_equal(f->io->listdir(f->io->ctx, f->dir, collect, &ns), 0);
    assert_int_equal(ns.n, 4);
    assert_int_equal(has_name(&ns, "seg-1"), 1);
    assert_int_equal(has_name(&ns, "acks.0"), 1);
    assert_int_equal(has_name(&ns, "caf\xc3\xa9"), 1);
    assert_int_equal(has_name(&ns, "sub"), 1);
    names_free(&ns);
    expect_text(f, "caf\xc3\xa9", "c");

    int calls = 0;
    assert_int_equal(f->io->listdir(f->io->ctx, f->dir, stop_at_second, &calls), 7);
    assert_int_equal(calls, 2);

    assert_int_equal(f->io->listdir(f->io->ctx, path, collect, &ns), 0); /* empty */
    assert_int_equal(ns.n, 0);
    join(path, f->dir, "missing");
    assert_int_equal(f->io->listdir(f->io->ctx, path, collect, &ns), -ENOENT);
}

static void size_by_path(void **state)
{
    struct fx *f = *state;
    put(f, "z", "");
    put(f, "five", "12345");
    uint64_t n = 99;
    assert_int_equal(size_of(f, "z", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(size_of(f, "five", &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(size_of(f, "missing", &n), -ENOENT);
}

static void mkdir_and_rmdir(void **state)
{
    struct fx *f = *state;
    char sub[PATHCAP], file[PATHCAP];
    join(sub, f->dir, "q-1");
    join(file, sub, "seg-1");
    assert_int_equal(f->io->mkdir(f->io->ctx, sub, 0755), 0);
    assert_int_equal(f->io->mkdir(f->io->ctx, sub, 0755), -EEXIST);
    int fd = f->io->open(f->io->ctx, file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(f->io->close(f->io->ctx, fd), 0);
    assert_int_equal(f->io->rmdir(f->io->ctx, sub), -ENOTEMPTY);
    assert_int_equal(f->io->unlink(f->io->ctx, file), 0);
    assert_int_equal(f->io->rmdir(f->io->ctx, sub), 0);
    assert_int_equal(f->io->rmdir(f->io->ctx, sub), -ENOENT);
    join(file, sub, "deeper");
    assert_int_equal(f->io->mkdir(f->io->ctx, file, 0755), -ENOENT);
}

static void open_errors_and_flags(void **state)
{
    struct fx *f = *state;
    char path[PATHCAP];
    join(path, f->dir, "missing");
    assert_int_equal(f->io->open(f->io->ctx, path, O_RDONLY, 0), -ENOENT);
    assert_int_equal(f->io->open(f->io->ctx, path, O_RDWR, 0), -ENOENT);
    join(path, f->dir, "missing/file");
    assert_int_equal(f->io->open(f->io->ctx, path, O_RDWR | O_CREAT, 0644), -ENOENT);

    put(f, "e", "exists");
    join(path, f->dir, "e");
    assert_int_equal(f->io->open(f->io->ctx, path, O_RDWR | O_CREAT | O_EXCL, 0644), -EEXIST);
    int fd = f->io->open(f->io->ctx, path, O_RDWR | O_CREAT, 0644); /* kept as it is */
    assert_true(fd >= 0);
    off_t size;
    assert_int_equal(f->io->fsize(f->io->ctx, fd, &size), 0);
    assert_int_equal(size, 6);
    assert_int_equal(f->io->close(f->io->ctx, fd), 0);
    fd = f->io->open(f->io->ctx, path, O_WRONLY | O_TRUNC, 0); /* emptied */
    assert_true(fd >= 0);
    assert_int_equal(f->io->fsize(f->io->ctx, fd, &size), 0);
    assert_int_equal(size, 0);
    assert_int_equal(f->io->close(f->io->ctx, fd), 0);
}

/* Either an fd whose fsync syncs the folder, or -EOPNOTSUPP (Windows). */
static void open_dir_gives_an_fd_or_eopnotsupp(void **state)
{
    struct fx *f = *state;
    int fd = f->io->open_dir(f->io->ctx, f->dir);
    if (fd == -EOPNOTSUPP)
        return;
    assert_true(fd >= 0);
    assert_int_equal(f->io->fsync(f->io->ctx, fd), 0);
    assert_int_equal(f->io->close(f->io->ctx, fd), 0);
}

/* A sync owed for a folder (a journal closed before its folder's entries
 * were synced) goes through jio_fsync_path too: it must succeed, by
 * syncing the folder or by there being nothing to sync (Windows), not fail
 * every sync after it. */
static void fsync_path_of_a_folder(void **state)
{
    struct fx *f = *state;
    assert_int_equal(jio_fsync_path(f->io, f->dir), 0);
    char sub[PATHCAP];
    join(sub, f->dir, "sub");
    assert_int_equal(f->io->mkdir(f->io->ctx, sub, 0755), 0);
    assert_int_equal(jio_fsync_path(f->io, sub), 0);
    assert_int_equal(f->io->rmdir(f->io->ctx, sub), 0);
    assert_int_equal(jio_fsync_path(f->io, sub), -ENOENT);
}

/* A second name for the same file, or -EOPNOTSUPP (FAT). */
static void link_makes_a_second_name(void **state)
{
    struct fx *f = *state;
    put(f, "one", "shared");
    char a[PATHCAP], b[PATHCAP];
    join(a, f->dir, "one");
    join(b, f->dir, "two");
    assert_non_null(f->io->link);
    int rc = f->io->link(f->io->ctx, a, b);
    if (rc == -EOPNOTSUPP)
        return;
    assert_int_equal(rc, 0);
    expect_text(f, "two", "shared");
    int fd = open_in(f, "two", O_RDWR);
    assert_int_equal(jio_pwrite_all(f->io, fd, "S", 1, 0), 0);
    assert_int_equal(f->io->close(f->io->ctx, fd), 0);
    expect_text(f, "one", "Shared");
    assert_int_equal(f->io->unlink(f->io->ctx, a), 0);
    expect_text(f, "two", "Shared");
    assert_int_equal(f->io->link(f->io->ctx, a, b), -ENOENT);
}

/* Reserving blocks never changes the size (or is not done at all). */
static void reserve_keeps_the_size(void **state)
{
    struct fx *f = *state;
    put(f, "res", "abc");
    int fd = open_in(f, "res", O_RDWR);
    assert_non_null(f->io->reserve);
    int rc = f->io->reserve(f->io->ctx, fd, 3, 1 << 20);
    assert_true(rc == 0 || rc == -EOPNOTSUPP);
    off_t size;
    assert_int_equal(f->io->fsize(f->io->ctx, fd, &size), 0);
    assert_int_equal(size, 3);
    assert_int_equal(f->io->close(f->io->ctx, fd), 0);
}

/* Paths past Windows' 260-character MAX_PATH (io_win.c's \\?\ prefix). */
static void long_paths(void **state)
{
    struct fx *f = *state;
    char comp[101], dir[PATHCAP], path[PATHCAP], to[PATHCAP];
    memset(comp, 'd', 100);
    comp[100] = '\0';
    snprintf(dir, sizeof(dir), "%s", f->dir);
    for (int i = 0; i < 3; i++) {
        join(path, dir, comp);
        snprintf(dir, sizeof(dir), "%s", path);
        assert_int_equal(f->io->mkdir(f->io->ctx, dir, 0755), 0);
    }
    join(path, dir, "a-file-at-the-end-of-a-long-path");
    join(to, dir, "renamed");
    assert_true(strlen(path) > 300);
    int fd = f->io->open(f->io->ctx, path, O_RDWR | O_CREAT | O_EXCL, 0644);
    assert_true(fd >= 0);
    assert_int_equal(jio_pwrite_all(f->io, fd, "deep", 4, 0), 0);
    assert_int_equal(f->io->close(f->io->ctx, fd), 0);
    assert_int_equal(f->io->rename(f->io->ctx, path, to), 0);
    uint64_t n;
    assert_int_equal(f->io->size(f->io->ctx, to, &n), 0);
    assert_int_equal(n, 4);
    struct names ns = {0};
    assert_int_equal(f->io->listdir(f->io->ctx, dir, collect, &ns), 0);
    assert_int_equal(ns.n, 1);
    assert_string_equal(ns.v[0], "renamed");
    names_free(&ns);
    assert_int_equal(f->io->unlink(f->io->ctx, to), 0);
    assert_int_equal(f->io->rmdir(f->io->ctx, dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_table_is_complete),
        cmocka_unit_test_setup_teardown(writes_and_reads_at_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(offsets_past_4_gib, setup, teardown),
        cmocka_unit_test_setup_teardown(resize_shrinks_and_grows, setup, teardown),
        cmocka_unit_test_setup_teardown(fsync_on_written_and_read_only_fds, setup, teardown),
        cmocka_unit_test_setup_teardown(dup_is_the_same_open_file, setup, teardown),
        cmocka_unit_test_setup_teardown(rename_replaces_an_existing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(rename_an_open_file, setup, teardown),
        cmocka_unit_test_setup_teardown(rename_over_an_open_file, setup, teardown),
        cmocka_unit_test_setup_teardown(rename_a_folder_with_open_files_in_it, setup, teardown),
        cmocka_unit_test_setup_teardown(unlink_an_open_file_then_create_it_again, setup, teardown),
        cmocka_unit_test_setup_teardown(fsync_path_of_a_folder, setup, teardown),
        cmocka_unit_test_setup_teardown(listdir_gives_every_name_but_dot_and_dotdot, setup, teardown),
        cmocka_unit_test_setup_teardown(size_by_path, setup, teardown),
        cmocka_unit_test_setup_teardown(mkdir_and_rmdir, setup, teardown),
        cmocka_unit_test_setup_teardown(open_errors_and_flags, setup, teardown),
        cmocka_unit_test_setup_teardown(open_dir_gives_an_fd_or_eopnotsupp, setup, teardown),
        cmocka_unit_test_setup_teardown(link_makes_a_second_name, setup, teardown),
        cmocka_unit_test_setup_teardown(reserve_keeps_the_size, setup, teardown),
        cmocka_unit_test_setup_teardown(long_paths, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
