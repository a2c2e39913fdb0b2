/* journal/io_win.c: the I/O table on Windows, over Win32 handles wrapped in
 * C runtime fds (_open_osfhandle), so the journal's int fds work unchanged.
 *
 * - Every handle shares read, write and delete: darner removes and renames
 *   files while they are open (delay runs are unlinked once open, segments
 *   and blobs are renamed and reclaimed under readers). Handles are never
 *   inherited by child processes.
 * - Paths come in as UTF-8 with '/' or '\'; they are made absolute and
 *   given the \\?\ prefix (no MAX_PATH limit). A root-relative path such as
 *   /tmp/x (what a program run by Wine from a Unix folder is given) is on
 *   the current drive.
 * - Reads and writes are positional (an OVERLAPPED carrying the offset, on
 *   a synchronous handle): they move the handle's file pointer, which
 *   nothing in darner reads, since no fd of this table goes to read(2) or
 *   write(2).
 * - Removal and rename ask for POSIX semantics first (the name goes at
 *   once, and a rename may replace a file open elsewhere: NTFS on Windows 10
 *   1709 and later) and fall back to the classic calls where the file
 *   system or Windows has none (FAT, older Windows, Wine): then replacing
 *   an open file fails with -EACCES, and a removed file that is still open
 *   lives on under a hidden name until its last handle closes
 *   (unlink_classic), so its own name is free at once as on POSIX.
 * - Folder entries have no fsync of their own: open_dir answers
 *   -EOPNOTSUPP (docs/platforms.md). NTFS keeps names in its metadata log;
 *   a rename with POSIX semantics is followed by FlushFileBuffers of the
 *   renamed file, the fallback is MOVEFILE_WRITE_THROUGH. (Microsoft does
 *   not document precisely what either commits of the log.)
 *
 * Wine 8.0, tried by tests/unit/test_jio_table.c and by hand:
 * SetFileInformationByHandle answers ERROR_INVALID_PARAMETER for
 * FileRenameInfoEx and FileDispositionInfoEx (ntdll: STATUS_NOT_IMPLEMENTED
 * for FileRenameInformationEx and FileDispositionInformationEx), so the
 * fallbacks run there. Its classic calls behave as Windows': DeleteFileW of
 * an open file succeeds but the name stays (CreateFile CREATE_NEW on it:
 * ERROR_FILE_EXISTS) until the last handle closes; MoveFileExW and
 * FileRenameInfo over an open file: ERROR_ACCESS_DENIED; renaming an open
 * file (shared for delete) works. FlushFileBuffers is fsync(2) of the file
 * and, as on Windows, needs write access (ReOpenFile works);
 * FileAllocationInfo: ERROR_CALL_NOT_IMPLEMENTED. CreateHardLinkW works. */
#include "journal/io.h"

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <windows.h>

/* mingw-w64's minwinbase.h declares these two only when _WIN32_WINNT >=
 * 0x0A000002 (an NTDDI_ value, which _WIN32_WINNT never is); their values
 * are the Windows ABI's. */
#define JIO_FILE_DISPOSITION_INFO_EX ((FILE_INFO_BY_HANDLE_CLASS)21)
#define JIO_FILE_RENAME_INFO_EX ((FILE_INFO_BY_HANDLE_CLASS)22)
#ifndef FILE_RENAME_FLAG_REPLACE_IF_EXISTS
#define FILE_RENAME_FLAG_REPLACE_IF_EXISTS 0x00000001
#endif
#ifndef FILE_RENAME_FLAG_POSIX_SEMANTICS
#define FILE_RENAME_FLAG_POSIX_SEMANTICS 0x00000002
#endif
#ifndef FILE_DISPOSITION_FLAG_DELETE
#define FILE_DISPOSITION_FLAG_DELETE 0x00000001
#endif
#ifndef FILE_DISPOSITION_FLAG_POSIX_SEMANTICS
#define FILE_DISPOSITION_FLAG_POSIX_SEMANTICS 0x00000002
#endif
#ifndef ERROR_DISK_QUOTA_EXCEEDED /* not in mingw-w64's winerror.h */
#define ERROR_DISK_QUOTA_EXCEEDED 1295L
#endif

/* FILE_DISPOSITION_INFO_EX and FILE_RENAME_INFO (its Flags form), spelled
 * out: older mingw-w64 headers have neither the one nor the union. */
struct jio_disposition_ex {
    DWORD flags;
};
struct jio_rename_info {
    DWORD flags; /* ReplaceIfExists (a BOOLEAN) for FileRenameInfo */
    HANDLE root;
    DWORD length; /* of name, in bytes, without the terminating NUL */
    WCHAR name[];
};

#define SHARE_ALL (FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)
/* One read or write moves at most this much (a DWORD count); callers
 * finish with jio_pwrite_all / jio_pread_all. */
#define IO_MAX ((size_t)1 << 30)

static const struct {
    DWORD win;
    int err;
} win_errors[] = {
    {ERROR_FILE_NOT_FOUND, ENOENT},
    {ERROR_PATH_NOT_FOUND, ENOENT},
    {ERROR_INVALID_DRIVE, ENOENT},
    {ERROR_BAD_NETPATH, ENOENT},
    {ERROR_BAD_NET_NAME, ENOENT},
    {ERROR_BAD_PATHNAME, ENOENT},
    {ERROR_DEV_NOT_EXIST, ENOENT},
    {ERROR_DELETE_PENDING, ENOENT}, /* removed, its last handle still open */
    {ERROR_ACCESS_DENIED, EACCES},
    {ERROR_NETWORK_ACCESS_DENIED, EACCES},
    {ERROR_SHARING_VIOLATION, EBUSY},
    {ERROR_LOCK_VIOLATION, EBUSY},
    {ERROR_ALREADY_EXISTS, EEXIST},
    {ERROR_FILE_EXISTS, EEXIST},
    {ERROR_DISK_FULL, ENOSPC},
    {ERROR_HANDLE_DISK_FULL, ENOSPC},
    {ERROR_DISK_QUOTA_EXCEEDED, ENOSPC}, /* mingw has no EDQUOT */
    {ERROR_DIR_NOT_EMPTY, ENOTEMPTY},
    {ERROR_DIRECTORY, ENOTDIR},
    {ERROR_INVALID_NAME, EINVAL},
    {ERROR_INVALID_PARAMETER, EINVAL},
    {ERROR_NEGATIVE_SEEK, EINVAL},
    {ERROR_NOT_SAME_DEVICE, EXDEV},
    {ERROR_INVALID_HANDLE, EBADF},
    {ERROR_NOT_ENOUGH_MEMORY, ENOMEM},
    {ERROR_OUTOFMEMORY, ENOMEM},
    {ERROR_FILENAME_EXCED_RANGE, ENAMETOOLONG},
    {ERROR_BUFFER_OVERFLOW, ENAMETOOLONG},
    {ERROR_TOO_MANY_OPEN_FILES, EMFILE},
    {ERROR_WRITE_PROTECT, EROFS},
    {ERROR_TOO_MANY_LINKS, EMLINK},
    {ERROR_CANT_RESOLVE_FILENAME, ELOOP},
    {ERROR_NO_UNICODE_TRANSLATION, EILSEQ},
    {ERROR_NOT_SUPPORTED, EOPNOTSUPP},
    {ERROR_CALL_NOT_IMPLEMENTED, EOPNOTSUPP},
    {ERROR_INVALID_FUNCTION, EOPNOTSUPP},
};

/* A Win32 error as a negative errno; -EIO for one not in the table. */
static int errno_of(DWORD e)
{
    for (size_t i = 0; i < sizeof(win_errors) / sizeof(win_errors[0]); i++)
        if (win_errors[i].win == e)
            return -win_errors[i].err;
    return -EIO;
}

static int last_error(void) { return errno_of(GetLastError()); }

/* Whether a POSIX-semantics call failed for want of support (older Windows,
 * FAT, exFAT), so the classic call is to be made instead. */
static int unsupported(int rc) { return rc == -EOPNOTSUPP || rc == -EINVAL; }

/* path (UTF-8, '/' or '\') as an absolute \\?\ path in UTF-16, malloc'd
 * into *out, which the caller frees. Returns its length in WCHARs or
 * -errno. */
static int wide_path(const char *path, wchar_t **out)
{
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, NULL, 0);
    if (n <= 0)
        return last_error();
    wchar_t *w = malloc((size_t)n * sizeof(*w));
    if (!w)
        return -ENOMEM;
    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, w, n);
    for (wchar_t *c = w; *c; c++)
        if (*c == L'/')
            *c = L'\\';
    if (wcsncmp(w, L"\\\\?\\", 4) == 0 || wcsncmp(w, L"\\\\.\\", 4) == 0) {
        *out = w;
        return n - 1;
    }
    DWORD full = GetFullPathNameW(w, 0, NULL, NULL);
    if (full == 0) {
        int rc = last_error();
        free(w);
        return rc;
    }
    /* the full path goes after room for the prefix: \\?\ or, for a
     * \\server\share path, \\?\UNC in place of its first '\' */
    enum { ROOM = 8 };
    wchar_t *p = malloc((ROOM + (size_t)full) * sizeof(*p));
    DWORD got = p ? GetFullPathNameW(w, full, p + ROOM, NULL) : 0;
    int rc = !p ? -ENOMEM : got == 0 ? last_error() : got >= full ? -ENAMETOOLONG : 0;
    free(w);
    if (rc < 0) {
        free(p);
        return rc;
    }
    const wchar_t *prefix = L"\\\\?\\";
    wchar_t *tail = p + ROOM;
    if (tail[0] == L'\\' && tail[1] == L'\\') {
        prefix = L"\\\\?\\UNC";
        tail++;
    }
    size_t np = wcslen(prefix), nt = wcslen(tail);
    memmove(p + np, tail, (nt + 1) * sizeof(*p));
    memcpy(p, prefix, np * sizeof(*p));
    *out = p;
    return (int)(np + nt);
}

static HANDLE handle_of(int fd) { return (HANDLE)_get_osfhandle(fd); }

/* A C runtime fd owning h (binary, not inherited); h is closed on failure. */
static int fd_of(HANDLE h, int crt_flags)
{
    int fd = _open_osfhandle((intptr_t)h, _O_BINARY | _O_NOINHERIT | crt_flags);
    if (fd < 0)
        CloseHandle(h);
    return fd < 0 ? -EMFILE : fd;
}

/* An OVERLAPPED that places a synchronous read or write at off. */
static OVERLAPPED at(off_t off)
{
    OVERLAPPED ov = {0};
    ov.Offset = (DWORD)((uint64_t)off & 0xffffffffu);
    ov.OffsetHigh = (DWORD)((uint64_t)off >> 32);
    return ov;
}

/* The access rights for open's flags. O_APPEND gives append rights without
 * FILE_WRITE_DATA: Windows then writes at the end whatever the offset, as
 * Linux's pwrite does on an O_APPEND fd (no caller opens so today). */
static DWORD access_of(int flags)
{
    static const DWORD by_mode[4] = {
        [O_RDONLY] = GENERIC_READ,
        [O_WRONLY] = GENERIC_WRITE,
        [O_RDWR] = GENERIC_READ | GENERIC_WRITE,
        [O_ACCMODE] = GENERIC_READ | GENERIC_WRITE,
    };
    DWORD a = by_mode[flags & O_ACCMODE];
    if ((flags & O_APPEND) && (a & GENERIC_WRITE))
        a = (a & ~(DWORD)GENERIC_WRITE) | (FILE_GENERIC_WRITE & ~(DWORD)FILE_WRITE_DATA);
    return a;
}

/* CreateFile's disposition for O_CREAT, O_EXCL and O_TRUNC as open(2) reads
 * them (O_EXCL without O_CREAT means nothing). */
static DWORD disposition_of(int flags)
{
    if (!(flags & O_CREAT))
        return flags & O_TRUNC ? TRUNCATE_EXISTING : OPEN_EXISTING;
    if (flags & O_EXCL)
        return CREATE_NEW;
    return flags & O_TRUNC ? CREATE_ALWAYS : OPEN_ALWAYS;
}

/* mode is not used: a file's permissions on Windows are its folder's ACL.
 * Flags other than the access mode, O_CREAT, O_EXCL, O_TRUNC and O_APPEND
 * are ignored (handles are never inherited, so O_CLOEXEC is a given). */
static int w_open(void *ctx, const char *path, int flags, int mode)
{
    (void)ctx;
    (void)mode;
    wchar_t *w;
    int rc = wide_path(path, &w);
    if (rc < 0)
        return rc;
    HANDLE h = CreateFileW(w, access_of(flags), SHARE_ALL, NULL, disposition_of(flags), FILE_ATTRIBUTE_NORMAL, NULL);
    rc = h == INVALID_HANDLE_VALUE ? last_error() : 0;
    /* a folder cannot be opened as a file here: say so as POSIX does for a
     * write open (jio_fsync_path then syncs it as a folder, through open_dir) */
    DWORD attrs = rc == -EACCES ? GetFileAttributesW(w) : INVALID_FILE_ATTRIBUTES;
    if (attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_DIRECTORY))
        rc = -EISDIR;
    free(w);
    return rc < 0 ? rc : fd_of(h, flags & O_APPEND ? _O_APPEND : 0);
}

static ssize_t w_pwrite(void *ctx, int fd, const void *p, size_t n, off_t off)
{
    (void)ctx;
    if (off < 0)
        return -EINVAL;
    OVERLAPPED ov = at(off);
    DWORD done;
    if (!WriteFile(handle_of(fd), p, (DWORD)(n < IO_MAX ? n : IO_MAX), &done, &ov))
        return last_error();
    return (ssize_t)done;
}

/* A read at or past the end reads 0 bytes (ERROR_HANDLE_EOF). */
static ssize_t w_pread(void *ctx, int fd, void *p, size_t n, off_t off)
{
    (void)ctx;
    if (off < 0)
        return -EINVAL;
    OVERLAPPED ov = at(off);
    DWORD done;
    if (!ReadFile(handle_of(fd), p, (DWORD)(n < IO_MAX ? n : IO_MAX), &done, &ov))
        return GetLastError() == ERROR_HANDLE_EOF ? 0 : last_error();
    return (ssize_t)done;
}

/* FlushFileBuffers (data and metadata). It needs write access: an fd opened
 * read-only (jio_fsync_path, a cloned blob's) is flushed through a second
 * handle with write access to the same file. */
static int w_fsync(void *ctx, int fd)
{
    (void)ctx;
    HANDLE h = handle_of(fd);
    if (FlushFileBuffers(h))
        return 0;
    if (GetLastError() != ERROR_ACCESS_DENIED)
        return last_error();
    HANDLE wh = ReOpenFile(h, GENERIC_WRITE, SHARE_ALL, 0);
    if (wh == INVALID_HANDLE_VALUE)
        return last_error();
    int rc = FlushFileBuffers(wh) ? 0 : last_error();
    CloseHandle(wh);
    return rc;
}

static int w_resize(void *ctx, int fd, off_t len)
{
    (void)ctx;
    if (len < 0)
        return -EINVAL;
    FILE_END_OF_FILE_INFO eof = {.EndOfFile.QuadPart = len};
    return SetFileInformationByHandle(handle_of(fd), FileEndOfFileInfo, &eof, sizeof(eof)) ? 0 : last_error();
}

static int w_close(void *ctx, int fd)
{
    (void)ctx;
    return _close(fd) == 0 ? 0 : -errno;
}

/* The classic delete, where POSIX semantics are missing (Wine 8, FAT,
 * Windows before 10 1709): it leaves the name in place until the file's
 * last handle closes, so the file is first renamed to a hidden sibling,
 * .jio-gone-PID-HANDLE-TICKS, which frees its name at once. A crash
 * between the two leaves that name behind; nothing in darner reads it, and
 * jnl_remove_dir removes it with the rest of a folder. */
static int unlink_classic(HANDLE h, const wchar_t *path)
{
    const wchar_t *slash = wcsrchr(path, L'\\');
    size_t dir = slash ? (size_t)(slash - path) + 1 : 0;
    enum { GONE = 64 };
    size_t size = sizeof(struct jio_rename_info) + (dir + GONE) * sizeof(WCHAR);
    struct jio_rename_info *ri = calloc(1, size);
    if (ri) {
        memcpy(ri->name, path, dir * sizeof(WCHAR));
        swprintf(ri->name + dir, GONE, L".jio-gone-%lx-%llx-%llx", (unsigned long)GetCurrentProcessId(),
                 (unsigned long long)(uintptr_t)h, (unsigned long long)GetTickCount64());
        ri->length = (DWORD)(wcslen(ri->name) * sizeof(WCHAR));
        SetFileInformationByHandle(h, FileRenameInfo, ri, (DWORD)size); /* best effort */
        free(ri);
    }
    FILE_DISPOSITION_INFO classic = {.DeleteFile = TRUE};
    return SetFileInformationByHandle(h, FileDispositionInfo, &classic, sizeof(classic)) ? 0 : last_error();
}

/* Removes the name at once, even while the file is open: POSIX semantics
 * (the file lives on, nameless, for its handles), or unlink_classic. */
static int w_unlink(void *ctx, const char *path)
{
    (void)ctx;
    wchar_t *w;
    int rc = wide_path(path, &w);
    if (rc < 0)
        return rc;
    HANDLE h = CreateFileW(w, DELETE, SHARE_ALL, NULL, OPEN_EXISTING, FILE_FLAG_OPEN_REPARSE_POINT, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        rc = last_error();
        free(w);
        return rc;
    }
    struct jio_disposition_ex posix = {FILE_DISPOSITION_FLAG_DELETE | FILE_DISPOSITION_FLAG_POSIX_SEMANTICS};
    rc = SetFileInformationByHandle(h, JIO_FILE_DISPOSITION_INFO_EX, &posix, sizeof(posix)) ? 0 : last_error();
    if (unsupported(rc))
        rc = unlink_classic(h, w);
    CloseHandle(h);
    free(w);
    return rc;
}

/* Flushes the file or folder behind h through a handle with write access,
 * which commits the metadata log that holds its new name; best effort (a
 * read-only file cannot be opened so), as MOVEFILE_WRITE_THROUGH is. */
static void flush_name(HANDLE h)
{
    HANDLE wh = ReOpenFile(h, GENERIC_WRITE, SHARE_ALL, FILE_FLAG_BACKUP_SEMANTICS);
    if (wh == INVALID_HANDLE_VALUE)
        return;
    FlushFileBuffers(wh);
    CloseHandle(wh);
}

/* Renames from to to (len WCHARs), replacing it even while it is open:
 * the replaced file lives on, nameless, for its handles. */
static int rename_posix(const wchar_t *from, const wchar_t *to, int len)
{
    HANDLE h = CreateFileW(from, DELETE | SYNCHRONIZE, SHARE_ALL, NULL, OPEN_EXISTING,
                           FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return last_error();
    size_t size = sizeof(struct jio_rename_info) + ((size_t)len + 1) * sizeof(WCHAR);
    struct jio_rename_info *ri = calloc(1, size);
    int rc = -ENOMEM;
    if (ri) {
        ri->flags = FILE_RENAME_FLAG_REPLACE_IF_EXISTS | FILE_RENAME_FLAG_POSIX_SEMANTICS;
        ri->length = (DWORD)len * sizeof(WCHAR);
        memcpy(ri->name, to, ((size_t)len + 1) * sizeof(WCHAR));
        rc = SetFileInformationByHandle(h, JIO_FILE_RENAME_INFO_EX, ri, (DWORD)size) ? 0 : last_error();
    }
    if (rc == 0)
        flush_name(h);
    free(ri);
    CloseHandle(h);
    return rc;
}

/* rename(2): POSIX semantics where the file system has them; elsewhere
 * MoveFileExW, which fails with -EACCES when to is open. */
static int w_rename(void *ctx, const char *from, const char *to)
{
    (void)ctx;
    wchar_t *wf = NULL, *wt = NULL;
    int rc, len = 0;
    if ((rc = wide_path(from, &wf)) >= 0 && (rc = len = wide_path(to, &wt)) >= 0)
        rc = rename_posix(wf, wt, len);
    if (unsupported(rc) && wt)
        rc = MoveFileExW(wf, wt, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH) ? 0 : last_error();
    free(wf);
    free(wt);
    return rc;
}

/* A hard link: NTFS has them; FAT answers -EOPNOTSUPP. */
static int w_link(void *ctx, const char *from, const char *to)
{
    (void)ctx;
    wchar_t *wf = NULL, *wt = NULL;
    int rc;
    if ((rc = wide_path(from, &wf)) >= 0 && (rc = wide_path(to, &wt)) >= 0)
        rc = CreateHardLinkW(wt, wf, NULL) ? 0 : last_error();
    free(wf);
    free(wt);
    return rc;
}

/* mode is not used (permissions are ACLs, inherited from the parent). */
static int w_mkdir(void *ctx, const char *path, int mode)
{
    (void)ctx;
    (void)mode;
    wchar_t *w;
    int rc = wide_path(path, &w);
    if (rc < 0)
        return rc;
    rc = CreateDirectoryW(w, NULL) ? 0 : last_error();
    free(w);
    return rc;
}

static int w_rmdir(void *ctx, const char *path)
{
    (void)ctx;
    wchar_t *w;
    int rc = wide_path(path, &w);
    if (rc < 0)
        return rc;
    rc = RemoveDirectoryW(w) ? 0 : last_error();
    free(w);
    return rc;
}

static int w_fsize(void *ctx, int fd, off_t *size)
{
    (void)ctx;
    LARGE_INTEGER s;
    if (!GetFileSizeEx(handle_of(fd), &s))
        return last_error();
    *size = (off_t)s.QuadPart;
    return 0;
}

/* A second handle to the same open file (sharing its file pointer, as
 * dup(2) does), not inherited. */
static int w_dup(void *ctx, int fd)
{
    (void)ctx;
    HANDLE d, self = GetCurrentProcess();
    if (!DuplicateHandle(self, handle_of(fd), self, &d, 0, FALSE, DUPLICATE_SAME_ACCESS))
        return last_error();
    return fd_of(d, 0);
}

/* Not done: FileAllocationInfo truncates a file longer than the size asked
 * for (a race with appends through another fd), NTFS may give allocation past
 * the end back when the last handle closes, and Wine does not implement it.
 * Segments grow as they are written, as on the BSDs and macOS. */
static int w_reserve(void *ctx, int fd, off_t off, off_t len)
{
    (void)ctx;
    (void)fd;
    (void)off;
    (void)len;
    return -EOPNOTSUPP;
}

/* Windows has no folder fsync: new, renamed and removed entries are made
 * durable by NTFS's metadata log (committed by FlushFileBuffers), so there
 * is nothing to open (io.h). */
static int w_open_dir(void *ctx, const char *path)
{
    (void)ctx;
    (void)path;
    return -EOPNOTSUPP;
}

/* FindFirstFileExW over path\*, names as UTF-8 (a name with an unpaired
 * surrogate, which UTF-8 cannot carry, comes with U+FFFD in its place). */
static int w_listdir(void *ctx, const char *path, int (*each)(void *arg, const char *name), void *arg)
{
    (void)ctx;
    wchar_t *w;
    int len = wide_path(path, &w);
    if (len < 0)
        return len;
    wchar_t *pattern = realloc(w, ((size_t)len + 3) * sizeof(*w));
    if (!pattern) {
        free(w);
        return -ENOMEM;
    }
    wcscpy(pattern + len, len > 0 && pattern[len - 1] == L'\\' ? L"*" : L"\\*");
    WIN32_FIND_DATAW e;
    HANDLE f = FindFirstFileExW(pattern, FindExInfoBasic, &e, FindExSearchNameMatch, NULL, FIND_FIRST_EX_LARGE_FETCH);
    int rc = f == INVALID_HANDLE_VALUE ? last_error() : 0;
    free(pattern);
    if (rc < 0)
        return rc;
    char name[MAX_PATH * 3 + 1];
    do {
        if (wcscmp(e.cFileName, L".") == 0 || wcscmp(e.cFileName, L"..") == 0)
            continue;
        if (WideCharToMultiByte(CP_UTF8, 0, e.cFileName, -1, name, (int)sizeof(name), NULL, NULL) <= 0)
            rc = last_error();
        else
            rc = each(arg, name);
    } while (rc == 0 && FindNextFileW(f, &e));
    if (rc == 0 && GetLastError() != ERROR_NO_MORE_FILES)
        rc = last_error();
    FindClose(f);
    return rc;
}

static int w_size(void *ctx, const char *path, uint64_t *size)
{
    (void)ctx;
    wchar_t *w;
    int rc = wide_path(path, &w);
    if (rc < 0)
        return rc;
    WIN32_FILE_ATTRIBUTE_DATA a;
    rc = GetFileAttributesExW(w, GetFileExInfoStandard, &a) ? 0 : last_error();
    free(w);
    if (rc == 0)
        *size = (uint64_t)a.nFileSizeHigh << 32 | a.nFileSizeLow;
    return rc;
}

static const struct jio win_table = {
    .ctx = NULL,
    .open = w_open,
    .pwrite = w_pwrite,
    .pread = w_pread,
    .fsync = w_fsync,
    .resize = w_resize,
    .close = w_close,
    .unlink = w_unlink,
    .rename = w_rename,
    .link = w_link,
    .mkdir = w_mkdir,
    .rmdir = w_rmdir,
    .fsize = w_fsize,
    .dup = w_dup,
    .reserve = w_reserve,
    .open_dir = w_open_dir,
    .listdir = w_listdir,
    .size = w_size,
};

/* On Windows this is the Win32 table: the name is the one every caller
 * (main, the tools, the tests) uses for "the platform's real calls". */
const struct jio *jio_posix(void) { return &win_table; }
