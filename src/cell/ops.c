/* cell/ops.c: the encoding of the file operations a cell replicates, and
 * their applier (cell/ops.h).
 *
 * Encoding, version 1. An entry's bytes are operations one after another,
 * each:
 *
 *   byte      COP_ENC_VERSION << 4 | kind (1..8)
 *   varint    flags (only COP_F_DEFERRED is known)
 *   varint    path length (1..COP_PATH_MAX), then the path's bytes
 *   RENAME, LINK: varint path2 length, then path2's bytes
 *   WRITE:    varint off, varint len, then len bytes of data
 *   RESIZE:   varint len (the size)
 *
 * Varints are LEB128 (7 bits a byte, least significant first, at most 10
 * bytes, the shortest form only). off + len of a WRITE, and a RESIZE's len,
 * are at most INT64_MAX (an off_t). cop_next refuses anything else. */
#include "cell/ops.h"
#include "util/varint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cell/ops_int.h"
#include "cell/pathmap.h"

#define COP_ENC_VERSION 1u
#define COP_KNOWN_FLAGS COP_F_DEFERRED
#define COP_FD_CACHE 32

/* ---- paths ---- */

static int comp_is(const char *p, size_t n, const char *s)
{
    size_t k = strlen(s);
    return n == k && memcmp(p, s, k) == 0;
}

int cop_path_ok(const char *p, size_t n)
{
    if (!p || n == 0 || n > COP_PATH_MAX)
        return 0;
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] == '\0')
            return 0;
        if (i < n && p[i] != '/')
            continue;
        size_t cl = i - start;
        if (cl == 0 || comp_is(p + start, cl, ".") || comp_is(p + start, cl, ".."))
            return 0;
        if (start == 0 && (comp_is(p, cl, "raft") || comp_is(p, cl, "tmp")))
            return 0;
        start = i + 1;
    }
    return 1;
}

static int kind_has_path2(unsigned k) { return k == COP_RENAME || k == COP_LINK; }

/* ---- encoding ---- */

/* Reads a varint at p[*pos..len). Returns 0 or -EBADMSG (truncated, too
 * long, or not the shortest form). */
static int get_varint(const unsigned char *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 10; i++) {
        if (*pos + i >= len)
            return -EBADMSG;
        unsigned char c = p[*pos + i];
        if (i == 9 && c > 1)
            return -EBADMSG;
        v |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            if (c == 0 && i > 0)
                return -EBADMSG; /* a longer form than needed */
            *pos += i + 1;
            *out = v;
            return 0;
        }
    }
    return -EBADMSG;
}

int cop_append(struct cop_buf *b, const struct cop *op)
{
    unsigned k = (unsigned)op->kind;
    if (k < COP_WRITE || k > COP_LINK || (op->flags & ~COP_KNOWN_FLAGS))
        return -EINVAL;
    if (!cop_path_ok(op->path, op->path_len))
        return -EINVAL;
    int two = kind_has_path2(k);
    if (two && !cop_path_ok(op->path2, op->path2_len))
        return -EINVAL;
    size_t data = 0;
    if (k == COP_WRITE) {
        if (op->off > INT64_MAX || op->len > (uint64_t)INT64_MAX - op->off || op->len > SIZE_MAX / 2 ||
            (op->len && !op->data))
            return -EINVAL;
        data = (size_t)op->len;
    } else if (k == COP_RESIZE && op->len > INT64_MAX) {
        return -EINVAL;
    }
    size_t need = 1 + 5 * 10 + op->path_len + (two ? op->path2_len : 0);
    if (data > SIZE_MAX - need - b->len)
        return -ENOMEM;
    need += data;
    if (b->cap - b->len < need) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < need)
            cap = cap > SIZE_MAX / 2 ? b->len + need : cap * 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p)
            return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    unsigned char *w = b->p + b->len;
    size_t n = 0;
    w[n++] = (unsigned char)(COP_ENC_VERSION << 4 | k);
    n += varint_put(w + n, op->flags);
    n += varint_put(w + n, op->path_len);
    memcpy(w + n, op->path, op->path_len);
    n += op->path_len;
    if (two) {
        n += varint_put(w + n, op->path2_len);
        memcpy(w + n, op->path2, op->path2_len);
        n += op->path2_len;
    }
    if (k == COP_WRITE) {
        n += varint_put(w + n, op->off);
        n += varint_put(w + n, op->len);
        if (data)
            memcpy(w + n, op->data, data);
        n += data;
    } else if (k == COP_RESIZE) {
        n += varint_put(w + n, op->len);
    }
    b->len += n;
    b->nops++;
    return 0;
}

void cop_buf_reset(struct cop_buf *b)
{
    b->len = 0;
    b->nops = 0;
}

void cop_buf_free(struct cop_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

/* A length-prefixed path at p[*pos..len) into *s and *n. */
static int get_path(const unsigned char *p, size_t len, size_t *pos, const char **s, size_t *n)
{
    uint64_t pl;
    if (get_varint(p, len, pos, &pl) < 0 || pl > len - *pos || !cop_path_ok((const char *)p + *pos, (size_t)pl))
        return -EBADMSG;
    *s = (const char *)p + *pos;
    *n = (size_t)pl;
    *pos += (size_t)pl;
    return 0;
}

int cop_next(const unsigned char *p, size_t len, size_t *pos, struct cop *out)
{
    size_t at = *pos;
    if (at == len)
        return 0;
    if (at > len || !p)
        return -EBADMSG;
    unsigned char h = p[at++];
    unsigned k = h & 0x0f;
    if ((h >> 4) != COP_ENC_VERSION || k < COP_WRITE || k > COP_LINK)
        return -EBADMSG;
    struct cop op = {.kind = (enum cop_kind)k};
    uint64_t v;
    if (get_varint(p, len, &at, &v) < 0 || (v & ~(uint64_t)COP_KNOWN_FLAGS))
        return -EBADMSG;
    op.flags = (uint32_t)v;
    if (get_path(p, len, &at, &op.path, &op.path_len) < 0)
        return -EBADMSG;
    if (kind_has_path2(k) && get_path(p, len, &at, &op.path2, &op.path2_len) < 0)
        return -EBADMSG;
    if (k == COP_WRITE) {
        if (get_varint(p, len, &at, &op.off) < 0 || get_varint(p, len, &at, &op.len) < 0)
            return -EBADMSG;
        if (op.off > INT64_MAX || op.len > (uint64_t)INT64_MAX - op.off || op.len > len - at)
            return -EBADMSG;
        op.data = p + at;
        at += (size_t)op.len;
    } else if (k == COP_RESIZE) {
        if (get_varint(p, len, &at, &op.len) < 0 || op.len > INT64_MAX)
            return -EBADMSG;
    }
    *out = op;
    *pos = at;
    return 1;
}

/* ---- removing a tree ---- */

/* Removes everything in the folder fd (which it closes). */
static int rm_contents(int fd)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = -errno;
        close(fd);
        return e;
    }
    int rc = 0;
    struct dirent *de;
    errno = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        rc = cop_rmtree_at(dirfd(d), de->d_name);
        errno = 0;
    }
    if (rc == 0 && errno != 0)
        rc = -errno;
    closedir(d);
    return rc;
}

int cop_rmtree_at(int dirfd, const char *name)
{
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -errno;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    int rc = rm_contents(fd);
    if (rc < 0)
        return rc;
    if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

/* ---- the applier ---- */

struct fdc {
    int fd; /* -1: free */
    uint64_t used;
    size_t len;
    char path[COP_PATH_MAX + 1];
};

struct cop_applier {
    int rootfd;
    uint64_t tick;
    struct fdc c[COP_FD_CACHE];
    struct pathmap touched; /* paths changed since the last sync; vals unused */
};

int cop_applier_new(struct cop_applier **out, const char *root)
{
    struct cop_applier *a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (a->rootfd < 0) {
        int e = -errno;
        free(a);
        return e;
    }
    for (int i = 0; i < COP_FD_CACHE; i++)
        a->c[i].fd = -1;
    *out = a;
    return 0;
}

void cop_applier_free(struct cop_applier *a)
{
    if (!a)
        return;
    for (int i = 0; i < COP_FD_CACHE; i++)
        if (a->c[i].fd >= 0)
            close(a->c[i].fd);
    pm_clear(&a->touched, NULL);
    close(a->rootfd);
    free(a);
}

/* Notes path as changed, for the next sync. Returns 0 or -ENOMEM. */
static int note(struct cop_applier *a, const char *path, size_t n)
{
    int made;
    return pm_put(&a->touched, path, n, &made) ? 0 : -ENOMEM;
}

/* Closes the cached fds of path and of everything under it. */
static void fdc_drop(struct cop_applier *a, const char *p, size_t n)
{
    for (int i = 0; i < COP_FD_CACHE; i++) {
        struct fdc *c = &a->c[i];
        if (c->fd >= 0 && pm_under(c->path, c->len, p, n)) {
            close(c->fd);
            c->fd = -1;
        }
    }
}

/* Someone else changed path: what it names may be another file now, so the
 * cached fds under it go too. */
int cop_applier_touch(struct cop_applier *a, const char *path, size_t n)
{
    fdc_drop(a, path, n);
    return note(a, path, n);
}

/* Makes the missing folders of path's first n bytes' parents (all of them
 * when whole, the last component too), noting the ones made. buf holds the
 * path, NUL-terminated; it is restored. Returns 0 or -errno. */
static int mkdirs(struct cop_applier *a, char *buf, size_t n, int whole)
{
    for (size_t i = 1; i <= n; i++) {
        if (i < n && buf[i] != '/')
            continue;
        if (i == n && !whole)
            break;
        char saved = buf[i];
        buf[i] = '\0';
        int rc = mkdirat(a->rootfd, buf, 0755);
        int e = errno;
        buf[i] = saved;
        if (rc == 0) {
            if (note(a, buf, i) < 0)
                return -ENOMEM;
        } else if (e != EEXIST) {
            return -e;
        }
    }
    return 0;
}

/* The op's path (or path2) as a C string in buf (COP_PATH_MAX + 1 bytes). */
static void cstr(char *buf, const char *p, size_t n)
{
    memcpy(buf, p, n);
    buf[n] = '\0';
}

/* An fd (the cache's: not to be closed by the caller) on the file at p,
 * made with its parent folders if absent. Returns the fd or -errno. */
static int fdc_get(struct cop_applier *a, const char *p, size_t n)
{
    struct fdc *victim = &a->c[0];
    for (int i = 0; i < COP_FD_CACHE; i++) {
        struct fdc *c = &a->c[i];
        if (c->fd >= 0 && c->len == n && memcmp(c->path, p, n) == 0) {
            c->used = ++a->tick;
            return c->fd;
        }
        if (victim->fd >= 0 && (c->fd < 0 || c->used < victim->used))
            victim = c;
    }
    char buf[COP_PATH_MAX + 1];
    cstr(buf, p, n);
    int fd = openat(a->rootfd, buf, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 && errno == ENOENT) {
        int rc = mkdirs(a, buf, n, 0);
        if (rc < 0)
            return rc;
        fd = openat(a->rootfd, buf, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    }
    if (fd < 0)
        return -errno;
    if (victim->fd >= 0)
        close(victim->fd);
    victim->fd = fd;
    victim->used = ++a->tick;
    victim->len = n;
    memcpy(victim->path, p, n);
    victim->path[n] = '\0';
    return fd;
}

/* Kind of what is at buf: 0 absent, 1 file (or anything not a folder), 2
 * folder; or -errno. */
static int what_is(struct cop_applier *a, const char *buf)
{
    struct stat s;
    if (fstatat(a->rootfd, buf, &s, AT_SYMLINK_NOFOLLOW) < 0)
        return errno == ENOENT ? 0 : -errno;
    return S_ISDIR(s.st_mode) ? 2 : 1;
}

static int apply_write(struct cop_applier *a, const struct cop *op)
{
    int fd = fdc_get(a, op->path, op->path_len);
    if (fd < 0)
        return fd;
    const unsigned char *d = op->data;
    size_t left = (size_t)op->len;
    off_t off = (off_t)op->off;
    while (left > 0) {
        ssize_t w = pwrite(fd, d, left, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        d += w;
        left -= (size_t)w;
        off += w;
    }
    return 0;
}

/* RENAME by the rules of ops.h. */
static int apply_rename(struct cop_applier *a, const struct cop *op)
{
    char src[COP_PATH_MAX + 1], dst[COP_PATH_MAX + 1];
    cstr(src, op->path, op->path_len);
    cstr(dst, op->path2, op->path2_len);
    fdc_drop(a, op->path, op->path_len);
    fdc_drop(a, op->path2, op->path2_len);
    int ws = what_is(a, src);
    if (ws < 0)
        return ws;
    int rc = 0;
    if (ws == 2 && (rc = what_is(a, dst)) == 2) {
        rc = cop_rmtree_at(a->rootfd, src); /* a replay: dst is src gone further */
    } else if (ws > 0 && rc >= 0) {
        rc = mkdirs(a, dst, op->path2_len, 0);
        if (rc == 0 && renameat(a->rootfd, src, a->rootfd, dst) < 0)
            rc = -errno;
    }
    /* A queue's delete completes whether or not this replay found its
     * source: a member stopped between the rename and the removal. */
    if (rc == 0 && cop_is_delete_name(op->path2, op->path2_len) && what_is(a, dst) == 2)
        rc = cop_rmtree_at(a->rootfd, dst);
    return rc;
}

static int apply_link(struct cop_applier *a, const struct cop *op)
{
    char src[COP_PATH_MAX + 1], dst[COP_PATH_MAX + 1];
    cstr(src, op->path, op->path_len);
    cstr(dst, op->path2, op->path2_len);
    int ws = what_is(a, src), wd = what_is(a, dst);
    if (ws < 0 || wd < 0)
        return ws < 0 ? ws : wd;
    if (ws == 0 || wd != 0)
        return 0;
    int rc = mkdirs(a, dst, op->path2_len, 0);
    if (rc == 0 && linkat(a->rootfd, src, a->rootfd, dst, 0) < 0)
        rc = -errno;
    return rc;
}

/* Applies op; the paths it changed are noted for the next sync. */
int cop_apply(struct cop_applier *a, const struct cop *op)
{
    if (!cop_path_ok(op->path, op->path_len) || (kind_has_path2(op->kind) && !cop_path_ok(op->path2, op->path2_len)))
        return -EINVAL;
    char buf[COP_PATH_MAX + 1];
    int rc, fd;
    switch (op->kind) {
    case COP_WRITE:
        rc = apply_write(a, op);
        break;
    case COP_RESIZE:
        fd = fdc_get(a, op->path, op->path_len);
        rc = fd < 0 ? fd : ftruncate(fd, (off_t)op->len) < 0 ? -errno : 0;
        break;
    case COP_CREATE:
        fd = fdc_get(a, op->path, op->path_len);
        rc = fd < 0 ? fd : 0;
        break;
    case COP_UNLINK:
        fdc_drop(a, op->path, op->path_len);
        cstr(buf, op->path, op->path_len);
        rc = unlinkat(a->rootfd, buf, 0) < 0 && errno != ENOENT ? -errno : 0;
        break;
    case COP_MKDIR:
        cstr(buf, op->path, op->path_len);
        rc = mkdirs(a, buf, op->path_len, 1);
        break;
    case COP_RMDIR:
        fdc_drop(a, op->path, op->path_len);
        cstr(buf, op->path, op->path_len);
        rc = cop_rmtree_at(a->rootfd, buf);
        break;
    case COP_RENAME:
        rc = apply_rename(a, op);
        break;
    case COP_LINK:
        rc = apply_link(a, op);
        break;
    default:
        return -EINVAL;
    }
    if (rc == 0)
        rc = note(a, op->path, op->path_len);
    if (rc == 0 && kind_has_path2(op->kind))
        rc = note(a, op->path2, op->path2_len);
    return rc;
}

/* fsyncs what is at path (absent: 0), or the root when n is 0. */
static int sync_one(struct cop_applier *a, const char *path, size_t n)
{
    if (n == 0)
        return fsync(a->rootfd) < 0 ? -errno : 0;
    int fd = openat(a->rootfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? 0 : -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

int cop_applier_sync(struct cop_applier *a)
{
    int ok;
    struct pm_node **v = pm_list(&a->touched, &ok);
    if (!ok)
        return -ENOMEM;
    size_t n = a->touched.count;
    int made, rc = 0;
    /* The parent folders join the set (each once); the root is the empty
     * path. The listed nodes stay valid while the set grows. */
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *slash = memrchr(v[i]->key, '/', v[i]->len);
        size_t pl = slash ? (size_t)(slash - v[i]->key) : 0;
        if (!pm_put(&a->touched, v[i]->key, pl, &made))
            rc = -ENOMEM;
    }
    free(v);
    if (rc < 0)
        return rc;
    v = pm_list(&a->touched, &ok);
    if (!ok)
        return -ENOMEM;
    n = a->touched.count;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = sync_one(a, v[i]->key, v[i]->len);
    free(v);
    if (rc == 0)
        pm_clear(&a->touched, NULL);
    return rc;
}
