/* tests/crash/crash_fs.c: the recording I/O table (see crash_fs.h). */
#include "crash_fs.h"
#include "util/compat.h"

#include "crash_util.h"
#include "journal/format.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Notes the first disagreement between the view and the real file system:
 * the run is then reported as broken, never silently wrong. */
static void fail(struct cf_rec *r, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void fail(struct cf_rec *r, const char *fmt, ...)
{
    if (r->err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
}

static struct cf_ev *ev_new(struct cf_rec *r, enum cf_op op, int ino)
{
    CU_GROW(r->ev, r->nev, r->capev);
    struct cf_ev *e = &r->ev[r->nev++];
    *e = (struct cf_ev){.op = (uint8_t)op, .ino = ino, .dir = -1, .from_dir = -1};
    return e;
}

/* Names inode ino by its place: name in folder dir (descriptions only). */
static void set_path(struct cf_rec *r, int ino, int dir, const char *name)
{
    char buf[CF_PATH_MAX + CF_NAME_MAX + 2];
    snprintf(buf, sizeof(buf), "%s%s%s", r->ino[dir].path, dir ? "/" : "", name);
    size_t n = strlen(buf);
    n = n < CF_PATH_MAX ? n : CF_PATH_MAX - 1;
    memcpy(r->ino[ino].path, buf, n);
    r->ino[ino].path[n] = '\0';
}

static int ino_new(struct cf_rec *r, int is_dir, int parent, const char *name)
{
    CU_GROW(r->ino, r->nino, r->capino);
    r->ino[r->nino] = (struct cf_inode){.is_dir = is_dir};
    if (parent >= 0)
        set_path(r, (int)r->nino, parent, name);
    return (int)r->nino++;
}

int cf_lookup(const struct cf_rec *r, int dir, const char *name)
{
    const struct cf_inode *d = &r->ino[dir];
    for (size_t i = 0; i < d->nent; i++)
        if (strcmp(d->ent[i].name, name) == 0)
            return d->ent[i].ino;
    return -1;
}

static void ent_set(struct cf_rec *r, int dir, const char *name, int ino)
{
    struct cf_inode *d = &r->ino[dir];
    for (size_t i = 0; i < d->nent; i++) {
        if (strcmp(d->ent[i].name, name) == 0) {
            d->ent[i].ino = ino;
            return;
        }
    }
    CU_GROW(d->ent, d->nent, d->capent);
    snprintf(d->ent[d->nent].name, CF_NAME_MAX, "%s", name);
    d->ent[d->nent++].ino = ino;
}

static void ent_del(struct cf_rec *r, int dir, const char *name)
{
    struct cf_inode *d = &r->ino[dir];
    for (size_t i = 0; i < d->nent; i++) {
        if (strcmp(d->ent[i].name, name) == 0) {
            d->ent[i] = d->ent[--d->nent];
            return;
        }
    }
}

/* Splits path (under the root) into its folder's inode and its last name.
 * The root itself gives *dir = -1 and name "". Returns 0, or -1 for a path
 * outside the root or through a folder the view does not have. */
static int resolve(struct cf_rec *r, const char *path, int *dir, char name[CF_NAME_MAX])
{
    if (strncmp(path, r->root, r->rootlen) != 0 || (path[r->rootlen] != '\0' && path[r->rootlen] != '/')) {
        fail(r, "path outside the recorded root: %s", path);
        return -1;
    }
    const char *p = path + r->rootlen;
    *dir = -1;
    name[0] = '\0';
    int cur = 0;
    while (*p == '/') {
        p++;
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || n >= CF_NAME_MAX) {
            fail(r, "unexpected path component in %s", path);
            return -1;
        }
        if (!end) {
            *dir = cur;
            memcpy(name, p, n);
            name[n] = '\0';
            return 0;
        }
        char comp[CF_NAME_MAX];
        memcpy(comp, p, n);
        comp[n] = '\0';
        if ((cur = cf_lookup(r, cur, comp)) < 0 || !r->ino[cur].is_dir) {
            fail(r, "no folder %s in the view of %s", comp, path);
            return -1;
        }
        p = end;
    }
    return 0; /* the root */
}

static void fd_track(struct cf_rec *r, int fd, int ino)
{
    if (fd < 0)
        return;
    if ((size_t)fd >= r->capfd) {
        size_t cap = (size_t)fd * 2 + 16;
        r->fd_ino = cu_realloc(r->fd_ino, cap * sizeof(int));
        for (size_t i = r->capfd; i < cap; i++)
            r->fd_ino[i] = -1;
        r->capfd = cap;
    }
    r->fd_ino[fd] = ino;
}

static int fd_ino(struct cf_rec *r, int fd)
{
    int ino = fd >= 0 && (size_t)fd < r->capfd ? r->fd_ino[fd] : -1;
    if (ino < 0)
        fail(r, "a call on fd %d, which the recorder does not know", fd);
    return ino;
}

/* ---- the table ---- */

static int rc_open(void *ctx, const char *path, int flags, int mode)
{
    struct cf_rec *r = ctx;
    int fd = r->real->open(r->real->ctx, path, flags, mode);
    if (fd < 0)
        return fd;
    int dir, ino;
    char name[CF_NAME_MAX];
    if (resolve(r, path, &dir, name) < 0) {
        fd_track(r, fd, -1);
        return fd;
    }
    ino = dir < 0 ? 0 : cf_lookup(r, dir, name);
    if (ino < 0) {
        if (!(flags & O_CREAT)) {
            fail(r, "opened %s, which the view does not have", path);
            fd_track(r, fd, -1);
            return fd;
        }
        ino = ino_new(r, 0, dir, name);
        ent_set(r, dir, name, ino);
        struct cf_ev *e = ev_new(r, CF_CREATE, ino);
        e->dir = dir;
        snprintf(e->name, sizeof(e->name), "%s", name);
    } else if ((flags & O_TRUNC) && !r->ino[ino].is_dir && (flags & O_ACCMODE) != O_RDONLY) {
        ev_new(r, CF_TRUNC, ino)->len = 0;
    }
    fd_track(r, fd, ino);
    return fd;
}

/* Whether inode ino is an ack file (acks.0, acks.1). */
static int is_ack_file(const struct cf_rec *r, int ino)
{
    const char *path = r->ino[ino].path, *base = strrchr(path, '/');
    return strncmp(base ? base + 1 : path, "acks.", 5) == 0;
}

/* CF_LIE_XFER_REC: rewrites the XFER records among the bytes p (written at
 * file offset off) as COUNT records of the same item and count. Ack records
 * start on 64-byte boundaries (after a 64-byte header); a COUNT changes
 * nothing the XFER did not (the count is the item's), so the log reads as
 * if the XFER had never been written and nothing else changed. */
static void lie_xfer(unsigned char *p, size_t n, uint64_t off)
{
    for (size_t i = (size_t)((JF_ACK_REC - off % JF_ACK_REC) % JF_ACK_REC); i + JF_ACK_REC <= n; i += JF_ACK_REC) {
        struct jf_ack a;
        if (off + i < JF_ACK_HDR || jf_ack_decode(p + i, &a) < 0 || a.type != JF_ACK_XFER)
            continue;
        a.type = JF_ACK_COUNT;
        a.xfer = 0;
        a.cum = 0;
        jf_ack_encode(p + i, &a);
    }
}

static ssize_t rc_pwrite(void *ctx, int fd, const void *p, size_t n, off_t off)
{
    struct cf_rec *r = ctx;
    ssize_t w = r->real->pwrite(r->real->ctx, fd, p, n, off);
    int ino = fd_ino(r, fd);
    if (w > 0 && ino >= 0) {
        struct cf_ev *e = ev_new(r, CF_WRITE, ino);
        e->off = (uint64_t)off;
        e->len = (uint64_t)w;
        e->data = cu_realloc(NULL, (size_t)w);
        memcpy(e->data, p, (size_t)w);
        if ((r->lie & CF_LIE_XFER_REC) && is_ack_file(r, ino))
            lie_xfer(e->data, (size_t)w, e->off);
    }
    return w;
}

static ssize_t rc_pread(void *ctx, int fd, void *p, size_t n, off_t off)
{
    struct cf_rec *r = ctx;
    return r->real->pread(r->real->ctx, fd, p, n, off);
}

static int rc_fsync(void *ctx, int fd)
{
    struct cf_rec *r = ctx;
    int rc = r->real->fsync(r->real->ctx, fd);
    int ino = fd_ino(r, fd);
    if (rc < 0 || ino < 0)
        return rc;
    const struct cf_inode *n = &r->ino[ino];
    if ((r->lie & CF_LIE_ACK_FSYNC) && is_ack_file(r, ino))
        return rc;
    if ((r->lie & CF_LIE_DIR_FSYNC) && n->is_dir && ino != 0)
        return rc;
    ev_new(r, CF_FSYNC, ino);
    return rc;
}

static int rc_ftruncate(void *ctx, int fd, off_t len)
{
    struct cf_rec *r = ctx;
    int rc = r->real->resize(r->real->ctx, fd, len);
    int ino = fd_ino(r, fd);
    if (rc == 0 && ino >= 0)
        ev_new(r, CF_TRUNC, ino)->len = (uint64_t)len;
    return rc;
}

static int rc_close(void *ctx, int fd)
{
    struct cf_rec *r = ctx;
    if (fd >= 0 && (size_t)fd < r->capfd)
        r->fd_ino[fd] = -1;
    return r->real->close(r->real->ctx, fd);
}

static int rc_unlink(void *ctx, const char *path)
{
    struct cf_rec *r = ctx;
    int rc = r->real->unlink(r->real->ctx, path);
    int dir;
    char name[CF_NAME_MAX];
    if (rc < 0 || resolve(r, path, &dir, name) < 0)
        return rc;
    int ino = dir < 0 ? -1 : cf_lookup(r, dir, name);
    if (ino < 0) {
        fail(r, "unlinked %s, which the view does not have", path);
        return rc;
    }
    ent_del(r, dir, name);
    struct cf_ev *e = ev_new(r, CF_UNLINK, ino);
    e->dir = dir;
    snprintf(e->name, sizeof(e->name), "%s", name);
    return rc;
}

static int rc_rename(void *ctx, const char *from, const char *to)
{
    struct cf_rec *r = ctx;
    int rc = r->real->rename(r->real->ctx, from, to);
    int fdir, tdir;
    char fname[CF_NAME_MAX], tname[CF_NAME_MAX];
    if (rc < 0 || resolve(r, from, &fdir, fname) < 0 || resolve(r, to, &tdir, tname) < 0)
        return rc;
    int ino = fdir < 0 || tdir < 0 ? -1 : cf_lookup(r, fdir, fname);
    if (ino < 0) {
        fail(r, "renamed %s, which the view does not have", from);
        return rc;
    }
    ent_del(r, fdir, fname);
    ent_set(r, tdir, tname, ino);
    set_path(r, ino, tdir, tname);
    struct cf_ev *e = ev_new(r, CF_RENAME, ino);
    e->dir = tdir;
    e->from_dir = fdir;
    snprintf(e->name, sizeof(e->name), "%s", tname);
    snprintf(e->from, sizeof(e->from), "%s", fname);
    return rc;
}

static int rc_mkdir(void *ctx, const char *path, int mode)
{
    struct cf_rec *r = ctx;
    int rc = r->real->mkdir(r->real->ctx, path, mode);
    int dir;
    char name[CF_NAME_MAX];
    if (rc < 0 || resolve(r, path, &dir, name) < 0)
        return rc;
    if (dir < 0) {
        fail(r, "mkdir of the root");
        return rc;
    }
    int ino = ino_new(r, 1, dir, name);
    ent_set(r, dir, name, ino);
    struct cf_ev *e = ev_new(r, CF_MKDIR, ino);
    e->dir = dir;
    snprintf(e->name, sizeof(e->name), "%s", name);
    return rc;
}

static int rc_fsize(void *ctx, int fd, off_t *size)
{
    struct cf_rec *r = ctx;
    return r->real->fsize(r->real->ctx, fd, size);
}

static int rc_dup(void *ctx, int fd)
{
    struct cf_rec *r = ctx;
    int d = r->real->dup(r->real->ctx, fd);
    if (d >= 0)
        fd_track(r, d, fd >= 0 && (size_t)fd < r->capfd ? r->fd_ino[fd] : -1);
    return d;
}

static int rc_reserve(void *ctx, int fd, off_t off, off_t len)
{
    struct cf_rec *r = ctx;
    int rc = r->real->reserve ? r->real->reserve(r->real->ctx, fd, off, len) : -EOPNOTSUPP;
    int ino = fd_ino(r, fd);
    if (rc == 0 && ino >= 0) {
        struct cf_ev *e = ev_new(r, CF_RESERVE, ino);
        e->off = (uint64_t)off;
        e->len = (uint64_t)len;
    }
    return rc;
}

/* A folder's fd: as any open of it (the view tracks its syncs). */
static int rc_open_dir(void *ctx, const char *path) { return rc_open(ctx, path, O_RDONLY | O_DIRECTORY, 0); }

/* Folder removal: not part of the recorded workloads (queues are never
 * deleted there), passed through. */
static int rc_rmdir(void *ctx, const char *path)
{
    struct cf_rec *r = ctx;
    return r->real->rmdir(r->real->ctx, path);
}

/* Listing and sizes read the real folder: what is there now, as the
 * journal's own reads do. */
static int rc_listdir(void *ctx, const char *path, int (*each)(void *arg, const char *name), void *arg)
{
    struct cf_rec *r = ctx;
    return r->real->listdir(r->real->ctx, path, each, arg);
}

static int rc_size(void *ctx, const char *path, uint64_t *size)
{
    struct cf_rec *r = ctx;
    return r->real->size(r->real->ctx, path, size);
}

int cf_init(struct cf_rec *r, const char *root, unsigned lie)
{
    *r = (struct cf_rec){0};
    size_t n = strlen(root);
    if (n == 0 || n >= sizeof(r->root))
        return -ENAMETOOLONG;
    memcpy(r->root, root, n + 1);
    while (n > 1 && r->root[n - 1] == '/')
        r->root[--n] = '\0';
    r->rootlen = n;
    r->real = jio_posix();
    r->lie = lie;
    r->io = (struct jio){.ctx = r,
                         .open = rc_open,
                         .pwrite = rc_pwrite,
                         .pread = rc_pread,
                         .fsync = rc_fsync,
                         .resize = rc_ftruncate,
                         .close = rc_close,
                         .unlink = rc_unlink,
                         .rename = rc_rename,
                         .mkdir = rc_mkdir,
                         .fsize = rc_fsize,
                         .dup = rc_dup,
                         .reserve = rc_reserve,
                         .rmdir = rc_rmdir,
                         .open_dir = rc_open_dir,
                         .listdir = rc_listdir,
                         .size = rc_size};
    ino_new(r, 1, -1, ""); /* the root: inode 0 */
    return 0;
}

void cf_free(struct cf_rec *r)
{
    for (size_t i = 0; i < r->nev; i++)
        free(r->ev[i].data);
    for (size_t i = 0; i < r->nino; i++)
        free(r->ino[i].ent);
    free(r->ev);
    free(r->ino);
    free(r->fd_ino);
    *r = (struct cf_rec){0};
}

/* "<folder>/<name>" under the root, or "<name>" for an entry of the root. */
static const char *join(const struct cf_rec *r, int dir, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s%s", r->ino[dir].path, dir ? "/" : "", name);
    return buf;
}

void cf_describe(const struct cf_rec *r, size_t i, char *out, size_t cap)
{
    const struct cf_ev *e = &r->ev[i];
    const char *p = e->ino ? r->ino[e->ino].path : "<root>";
    char a[CF_PATH_MAX + CF_NAME_MAX], b[CF_PATH_MAX + CF_NAME_MAX];
    switch ((enum cf_op)e->op) {
    case CF_MKDIR:
        snprintf(out, cap, "mkdir %s", p);
        break;
    case CF_CREATE:
        snprintf(out, cap, "create %s", join(r, e->dir, e->name, a, sizeof(a)));
        break;
    case CF_WRITE:
        snprintf(out, cap, "write %s [%" PRIu64 ", +%" PRIu64 ")", p, e->off, e->len);
        break;
    case CF_TRUNC:
        snprintf(out, cap, "truncate %s to %" PRIu64, p, e->len);
        break;
    case CF_UNLINK:
        snprintf(out, cap, "unlink %s", join(r, e->dir, e->name, a, sizeof(a)));
        break;
    case CF_RENAME:
        snprintf(out, cap, "rename %s -> %s", join(r, e->from_dir, e->from, a, sizeof(a)),
                 join(r, e->dir, e->name, b, sizeof(b)));
        break;
    case CF_FSYNC:
        snprintf(out, cap, "fsync %s%s", p, r->ino[e->ino].is_dir ? "/" : "");
        break;
    case CF_RESERVE:
        snprintf(out, cap, "reserve %s [%" PRIu64 ", +%" PRIu64 ")", p, e->off, e->len);
        break;
    }
}
