/* tests/unit/testplat.h: the few things the unit tests need that differ
 * between platforms, chosen once here, at file level: everything else goes
 * through the journal's I/O table (jio_posix()) or libuv (testutil.h).
 *
 * - tp_map, tp_protect_none, tp_unmap, tp_page_size: pages for guard-page
 *   tests (mmap and mprotect; VirtualAlloc and VirtualProtect).
 * - tp_open_deleted: how many files this process still holds open after
 *   removing them, as far as the platform lets a test see that.
 * - TP_WINDOWS: 1 on Windows, for a test that leaves out a check which is
 *   POSIX-only by nature (it says why where it does). */
#ifndef DARNER_TESTS_TESTPLAT_H
#define DARNER_TESTS_TESTPLAT_H

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "journal/io.h"

#ifdef _WIN32
#include <windows.h>

#define TP_WINDOWS 1

static inline size_t tp_page_size(void)
{
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return (size_t)si.dwPageSize;
}

/* n bytes of fresh read-write pages, or NULL. */
static inline void *tp_map(size_t n) { return VirtualAlloc(NULL, n, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE); }

/* Makes [p, p + n) (whole pages) unreadable. Returns 0 or -1. */
static inline int tp_protect_none(void *p, size_t n)
{
    DWORD old;
    return VirtualProtect(p, n, PAGE_NOACCESS, &old) ? 0 : -1;
}

static inline void tp_unmap(void *p, size_t n)
{
    (void)n;
    VirtualFree(p, 0, MEM_RELEASE);
}

/* Windows has no list of a process's handles by name. Where removal falls
 * back to classic semantics (Wine, FAT, Windows before 10 1709), io_win.c
 * renames a removed file that is still open to .jio-gone-* in its folder
 * until the last handle closes, so those are counted. With NTFS's POSIX
 * semantics such a file has no name left and this sees nothing. */
static inline int tp_gone_one(void *arg, const char *name)
{
    if (strncmp(name, ".jio-gone-", 10) == 0)
        ++*(int *)arg;
    return 0;
}

/* Files in dir removed while still open (needle: not used here). */
static inline int tp_open_deleted(const char *dir, const char *needle)
{
    (void)needle;
    int n = 0;
    return jio_posix()->listdir(NULL, dir, tp_gone_one, &n) < 0 ? -1 : n;
}

#else
#include <dirent.h>
#include <sys/mman.h>
#include <unistd.h>

#define TP_WINDOWS 0

static inline size_t tp_page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static inline void *tp_map(size_t n)
{
    void *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

static inline int tp_protect_none(void *p, size_t n) { return mprotect(p, n, PROT_NONE) == 0 ? 0 : -1; }

static inline void tp_unmap(void *p, size_t n) { munmap(p, n); }

#ifdef __linux__
/* Fds of this process on deleted files whose path contains needle, read
 * from /proc/self/fd (dir: not used here). */
static inline int tp_open_deleted(const char *dir, const char *needle)
{
    (void)dir;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char link[320], target[4096];
        snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(link, target, sizeof(target) - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        if (strstr(target, needle) && strstr(target, "(deleted)"))
            n++;
    }
    closedir(d);
    return n;
}
#else
/* Other Unix systems have no portable list of a process's fds by path. */
static inline int tp_open_deleted(const char *dir, const char *needle)
{
    (void)dir;
    (void)needle;
    return -1;
}
#endif
#endif

#endif
