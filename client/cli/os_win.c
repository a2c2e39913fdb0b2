/* os_win.c: os.h for Windows: binary standard streams, the console's
 * escape sequences, a delete-on-close spool file, and CreateProcess for the
 * command of `get --exec` (run by cmd.exe, there being no /bin/sh). */
#include "cli.h"
#include "os.h"

#include <windows.h>

#include <shellapi.h>

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* A Win32 error (GetLastError) as an errno. */
static int win_errno(DWORD e)
{
    switch (e) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_DRIVE:
        return ENOENT;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
        return EACCES;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
        return ENOMEM;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL:
        return ENOSPC;
    case ERROR_FILENAME_EXCED_RANGE:
    case ERROR_BUFFER_OVERFLOW:
        return ENAMETOOLONG;
    case ERROR_BAD_EXE_FORMAT:
        return ENOEXEC;
    case ERROR_TOO_MANY_OPEN_FILES:
        return EMFILE;
    default:
        return EIO;
    }
}

/* Turns on the escape sequences (cursor, erase) of a console, if h is one. */
static void console_vt(DWORD which)
{
    HANDLE h = GetStdHandle(which);
    DWORD mode;
    if (h && h != INVALID_HANDLE_VALUE && GetConsoleMode(h, &mode))
        SetConsoleMode(h, mode | ENABLE_VIRTUAL_TERMINAL_PROCESSING);
}

/* The command line's arguments in UTF-8, kept for the process's life; argv
 * itself if they cannot be had. */
static char **utf8_args(int argc, char **argv)
{
    int n = 0;
    wchar_t **w = CommandLineToArgvW(GetCommandLineW(), &n);
    char **out = w && n == argc ? calloc((size_t)n + 1, sizeof(*out)) : NULL;
    for (int i = 0; out && i < n; i++) {
        int len = WideCharToMultiByte(CP_UTF8, 0, w[i], -1, NULL, 0, NULL, NULL);
        if (len <= 0 || !(out[i] = malloc((size_t)len)) ||
            WideCharToMultiByte(CP_UTF8, 0, w[i], -1, out[i], len, NULL, NULL) != len) {
            for (int k = 0; k <= i; k++)
                free(out[k]);
            free(out);
            out = NULL;
        }
    }
    LocalFree(w);
    return out ? out : argv;
}

char **cli_os_init(int argc, char **argv)
{
    _setmode(_fileno(stdin), _O_BINARY);
    _setmode(_fileno(stdout), _O_BINARY);
    console_vt(STD_OUTPUT_HANDLE);
    console_vt(STD_ERROR_HANDLE);
    SetConsoleOutputCP(CP_UTF8);
    return utf8_args(argc, argv);
}

int64_t cli_now_ms(void) { return (int64_t)GetTickCount64(); }

void cli_sleep_ms(int64_t ms)
{
    while (ms > 0) {
        DWORD step = ms > 0x7fffffff ? 0x7fffffff : (DWORD)ms;
        Sleep(step);
        ms -= step;
    }
}

/* getline's contract with getc: the C runtime here has no getline. */
int64_t cli_getline(char **line, size_t *cap, FILE *f)
{
    size_t n = 0;
    int c;
    while ((c = getc(f)) != EOF) {
        if (n + 2 > *cap) {
            size_t ncap = *cap ? *cap * 2 : 128;
            char *p = realloc(*line, ncap);
            if (!p) {
                errno = ENOMEM;
                return -1;
            }
            *line = p;
            *cap = ncap;
        }
        (*line)[n++] = (char)c;
        if (c == '\n')
            break;
    }
    if (n == 0)
        return -1;
    (*line)[n] = '\0';
    return (int64_t)n;
}

/* GetTempFileName in the temp folder, opened again delete-on-close, as a
 * binary FILE of the C runtime. */
FILE *cli_spool_file(void)
{
    char dir[MAX_PATH + 1], path[MAX_PATH + 1];
    DWORD n = GetTempPathA(sizeof(dir), dir);
    if (n == 0 || n >= sizeof(dir)) {
        errno = n ? ENAMETOOLONG : win_errno(GetLastError());
        return NULL;
    }
    if (!GetTempFileNameA(dir, "dnc", 0, path)) {
        errno = win_errno(GetLastError());
        return NULL;
    }
    HANDLE h = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                           NULL, CREATE_ALWAYS, FILE_ATTRIBUTE_TEMPORARY | FILE_FLAG_DELETE_ON_CLOSE, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        errno = win_errno(GetLastError());
        DeleteFileA(path);
        return NULL;
    }
    int fd = _open_osfhandle((intptr_t)h, _O_RDWR | _O_BINARY);
    if (fd < 0) {
        CloseHandle(h);
        return NULL;
    }
    FILE *f = _fdopen(fd, "w+b");
    if (!f)
        _close(fd);
    return f;
}

/* An inheritable copy of h for a child's standard stream (NULL if none). */
static HANDLE inheritable(HANDLE h)
{
    HANDLE self = GetCurrentProcess(), d = NULL;
    if (h && h != INVALID_HANDLE_VALUE && !DuplicateHandle(self, h, self, &d, 0, TRUE, DUPLICATE_SAME_ACCESS))
        d = NULL;
    return d;
}

/* What a variable held before cli_run_command() set it (NULL: unset). */
/* UTF-8 to a new UTF-16 string (free it), or NULL. */
static wchar_t *to_wide(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    wchar_t *w = n > 0 ? malloc((size_t)n * sizeof(*w)) : NULL;
    if (w && MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n) != n) {
        free(w);
        w = NULL;
    }
    return w;
}

/* The variable's value now (to put back), or NULL when it is unset. */
static wchar_t *env_save(const wchar_t *name)
{
    DWORD n = GetEnvironmentVariableW(name, NULL, 0);
    wchar_t *v = n ? malloc(n * sizeof(*v)) : NULL;
    if (v && GetEnvironmentVariableW(name, v, n) >= n) {
        free(v);
        v = NULL;
    }
    return v;
}

/* cmd.exe /d /s /c "command" (with /s, cmd takes everything between the
 * outer quotes as it is), started with the variables set in our own
 * environment, which the child copies, and put back at once after. The
 * command and the values are UTF-8 (queue names): passed on as UTF-16. */
int cli_run_command(const char *command, FILE *in, const struct cli_env *env, size_t nenv, struct cli_exit *ex)
{
    wchar_t shell[MAX_PATH + 16];
    UINT sl = GetSystemDirectoryW(shell, MAX_PATH);
    if (sl == 0 || sl >= MAX_PATH)
        return -ENOENT;
    wcscat(shell, L"\\cmd.exe");
    size_t len = strlen(command) + 32;
    char *line = malloc(len);
    wchar_t **names = calloc(nenv ? nenv : 1, sizeof(*names));
    wchar_t **old = calloc(nenv ? nenv : 1, sizeof(*old));
    wchar_t *wline = NULL;
    int rc = line && names && old ? 0 : -ENOMEM;
    if (rc == 0) {
        snprintf(line, len, "cmd.exe /d /s /c \"%s\"", command);
        rc = (wline = to_wide(line)) ? 0 : -EINVAL;
    }
    for (size_t i = 0; rc == 0 && i < nenv; i++) {
        wchar_t *value = to_wide(env[i].value);
        if (!(names[i] = to_wide(env[i].name)) || !value) {
            free(value);
            rc = -EINVAL;
            break;
        }
        old[i] = env_save(names[i]);
        SetEnvironmentVariableW(names[i], value);
        free(value);
    }
    STARTUPINFOW si = {.cb = sizeof(si), .dwFlags = STARTF_USESTDHANDLES};
    PROCESS_INFORMATION pi;
    BOOL started = FALSE;
    if (rc == 0) {
        si.hStdInput = inheritable((HANDLE)_get_osfhandle(_fileno(in)));
        si.hStdOutput = inheritable(GetStdHandle(STD_OUTPUT_HANDLE));
        si.hStdError = inheritable(GetStdHandle(STD_ERROR_HANDLE));
        started = CreateProcessW(shell, wline, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi);
        rc = started ? 0 : -win_errno(GetLastError());
    }
    for (size_t i = 0; names && i < nenv; i++) {
        if (names[i])
            SetEnvironmentVariableW(names[i], old[i]);
        free(names[i]);
        free(old[i]);
    }
    free(names);
    free(old);
    free(wline);
    free(line);
    HANDLE mine[3] = {si.hStdInput, si.hStdOutput, si.hStdError};
    for (int i = 0; i < 3; i++)
        if (mine[i])
            CloseHandle(mine[i]);
    if (!started)
        return rc;
    DWORD code = 0;
    WaitForSingleObject(pi.hProcess, INFINITE);
    if (!GetExitCodeProcess(pi.hProcess, &code))
        rc = -win_errno(GetLastError());
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    ex->code = (int)code;
    ex->signal = 0;
    return rc;
}
