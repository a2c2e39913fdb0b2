/* proc_win.c: proc.h on Windows. */
#include "proc.h"

#include "util/utf16.h"

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>
#include <windows.h>

#include <psapi.h>
#include <shellapi.h>

/* msvcrt's table of file descriptors holds 2048 (_NHANDLE_), and the
 * journal's files are C runtime descriptors (journal/io_win.c). */
#define CRT_MAX_FDS 2048

const struct proc_signal PROC_SIGNALS[PROC_NSIGNALS] = {
    {SIGINT, PROC_SIG_STOP},   /* Ctrl-C */
    {SIGBREAK, PROC_SIG_STOP}, /* Ctrl-Break */
    {SIGHUP, PROC_SIG_STOP},   /* the console window is closing */
};

void proc_init(void) {}

char **proc_args(int argc, char **argv)
{
    int n = 0;
    wchar_t **w = CommandLineToArgvW(GetCommandLineW(), &n);
    char **out = w && n == argc ? calloc((size_t)n + 1, sizeof(*out)) : NULL;
    for (int i = 0; out && i < n; i++) {
        if (!(out[i] = utf16_to_utf8(w[i]))) {
            for (int k = 0; k < i; k++)
                free(out[k]);
            free(out);
            out = NULL;
        }
    }
    LocalFree(w);
    return out ? out : argv;
}

int proc_raise_fd_limit(struct proc_fd_limit *l)
{
    l->was = l->soft = l->hard = CRT_MAX_FDS;
    return 0;
}

uint64_t proc_max_fds(void) { return CRT_MAX_FDS; }

/* Resident: the working set; virtual: the private bytes committed (as
 * Prometheus's own Windows process collector reports them). */
void proc_memory(uint64_t *rss, uint64_t *virt)
{
    *rss = *virt = 0;
    size_t r;
    if (uv_resident_set_memory(&r) == 0)
        *rss = r;
    PROCESS_MEMORY_COUNTERS_EX pmc;
    if (GetProcessMemoryInfo(GetCurrentProcess(), (PROCESS_MEMORY_COUNTERS *)&pmc, sizeof(pmc)))
        *virt = pmc.PrivateUsage;
}

/* Windows counts the process's handles in one call: one step. */
struct proc_fds {
    int unused;
};

struct proc_fds *proc_fds_begin(void) { return calloc(1, sizeof(struct proc_fds)); }

int proc_fds_step(struct proc_fds *f, size_t n, uint64_t *count)
{
    (void)f;
    (void)n;
    DWORD h = 0;
    *count = GetProcessHandleCount(GetCurrentProcess(), &h) ? h : 0;
    return 1;
}

void proc_fds_end(struct proc_fds *f) { free(f); }

/* Creates w (one level) unless it is there already. */
static int make_one(const wchar_t *w)
{
    if (CreateDirectoryW(w, NULL) || GetLastError() == ERROR_ALREADY_EXISTS)
        return 0;
    switch (GetLastError()) {
    case ERROR_ACCESS_DENIED:
        return -EACCES;
    case ERROR_PATH_NOT_FOUND:
    case ERROR_FILE_NOT_FOUND:
        return -ENOENT;
    case ERROR_INVALID_NAME:
        return -EINVAL;
    default:
        return -EIO;
    }
}

static int is_sep(wchar_t c) { return c == L'/' || c == L'\\'; }

/* Where the levels that may need making start in w: after "\\server\share\"
 * (a UNC path's root) or "\\?\" (a long-path prefix); else at w + 1, the
 * drive's "C:\" being skipped by the caller's rule. */
static wchar_t *first_level(wchar_t *w)
{
    if (!is_sep(w[0]) || !is_sep(w[1]))
        return w + 1;
    if (w[2] == L'?' && is_sep(w[3]))
        return w + 4;
    wchar_t *p = w + 2;
    for (int seps = 0; *p && seps < 2; p++)
        seps += is_sep(*p);
    return p;
}

/* Each level after the root ("C:\", "\\server\share\", "\\?\C:\", "\"
 * or nothing): separators are either slash. Whether the folder is writable
 * shows at the first file the journal creates there, with its own message. */
int proc_prepare_dir(const char *dir)
{
    if (!dir[0])
        return -ENAMETOOLONG;
    wchar_t *w = utf8_to_utf16(dir);
    if (!w)
        return -EINVAL;
    int rc = 0;
    for (wchar_t *p = first_level(w); *p && rc == 0; p++) {
        if (!is_sep(*p) || p[-1] == L':' || is_sep(p[-1]))
            continue;
        wchar_t c = *p;
        *p = L'\0';
        rc = make_one(w);
        *p = c;
    }
    if (rc == 0)
        rc = make_one(w);
    DWORD a = rc == 0 ? GetFileAttributesW(w) : 0;
    if (rc == 0 && a == INVALID_FILE_ATTRIBUTES)
        rc = -ENOENT;
    else if (rc == 0 && !(a & FILE_ATTRIBUTE_DIRECTORY))
        rc = -ENOTDIR;
    free(w);
    return rc;
}

/* CreateFileW shared for reading, writing and deletion (a rotating tool may
 * rename the file), appending, then a C runtime stream over it. */
FILE *proc_fopen_append(const char *path)
{
    wchar_t *w = utf8_to_utf16(path);
    if (!w) {
        errno = EINVAL;
        return NULL;
    }
    HANDLE h = CreateFileW(w, FILE_APPEND_DATA | SYNCHRONIZE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           NULL, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    free(w);
    if (h == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        errno = e == ERROR_PATH_NOT_FOUND || e == ERROR_FILE_NOT_FOUND     ? ENOENT
                : e == ERROR_ACCESS_DENIED || e == ERROR_SHARING_VIOLATION ? EACCES
                                                                           : EIO;
        return NULL;
    }
    int fd = _open_osfhandle((intptr_t)h, _O_APPEND | _O_TEXT);
    FILE *f = fd < 0 ? NULL : _fdopen(fd, "a");
    if (!f && fd >= 0)
        _close(fd);
    else if (fd < 0)
        CloseHandle(h);
    if (!f)
        errno = EIO;
    return f;
}

void proc_gmtime(time_t secs, struct tm *tm) { gmtime_s(tm, &secs); }
