/* cell/io.c: the recording syscall table of a cell's leader (cell/io.h). */
#include "cell/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

struct cell_io_deferred {
    char *path; /* relative (ours) */
    size_t len;
    uint32_t pending; /* removals recorded, not yet committed */
    int remade;       /* the journal made the path again after them */
};

#define C(ctx) ((struct cell_io *)(ctx))
#define IN(c) ((c)->inner)

/* The path relative to the data folder, if path is in it and replicated
 * (not tmp/, not raft/), else NULL. */
static const char *rel_of(const struct cell_io *c, const char *path, size_t *n)
{
    if (strncmp(path, c->root, c->root_len) != 0 || path[c->root_len] != '/')
        return NULL;
    const char *r = path + c->root_len + 1;
    *n = strlen(r);
    return cop_path_ok(r, *n) ? r : NULL;
}

/* Under c->lock. Records op; a failure is kept in c->err (the cell stops). */
static void record(struct cell_io *c, const struct cop *op)
{
    int rc = cop_append(&c->pending, op);
    if (rc < 0 && c->err == 0)
        c->err = rc;
    c->ops++;
    if (c->touch && op->kind != COP_UNLINK && op->kind != COP_RMDIR) {
        const char *p = op->kind == COP_RENAME || op->kind == COP_LINK ? op->path2 : op->path;
        size_t n = op->kind == COP_RENAME || op->kind == COP_LINK ? op->path2_len : op->path_len;
        if ((rc = cop_applier_touch(c->touch, p, n)) < 0 && c->err == 0)
            c->err = rc;
    }
}

/* Under c->lock: the deferred entry of a path, or NULL. */
static struct cell_io_deferred *deferred_find(struct cell_io *c, const char *p, size_t n)
{
    for (size_t i = 0; i < c->ndefer; i++)
        if (c->defer[i].len == n && memcmp(c->defer[i].path, p, n) == 0)
            return &c->defer[i];
    return NULL;
}

/* Under c->lock: one more removal of p waits for its commit. */
static int deferred_add(struct cell_io *c, const char *p, size_t n)
{
    struct cell_io_deferred *d = deferred_find(c, p, n);
    if (d) {
        d->pending++;
        d->remade = 0;
        return 0;
    }
    if (c->ndefer == c->capdefer) {
        size_t cap = c->capdefer ? c->capdefer * 2 : 16;
        struct cell_io_deferred *m = realloc(c->defer, cap * sizeof(*m));
        if (!m)
            return -ENOMEM;
        c->defer = m;
        c->capdefer = cap;
    }
    char *copy = malloc(n + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, p, n);
    copy[n] = '\0';
    c->defer[c->ndefer++] = (struct cell_io_deferred){.path = copy, .len = n, .pending = 1};
    return 0;
}

/* Under c->lock: the journal makes p again; a removal of it (or of a folder
 * holding it) still to come must not undo that on this member. */
static void deferred_remade(struct cell_io *c, const char *p, size_t n)
{
    for (size_t i = 0; i < c->ndefer; i++) {
        struct cell_io_deferred *d = &c->defer[i];
        if (d->len <= n && memcmp(d->path, p, d->len) == 0 && (d->len == n || p[d->len] == '/'))
            d->remade = 1;
    }
}

/* Under c->lock: fd (open for writing) names rel from now on. */
static int fd_set_path(struct cell_io *c, int fd, const char *rel, size_t n)
{
    if (fd >= c->nfdpath) {
        int cap = c->nfdpath ? c->nfdpath : 64;
        while (cap <= fd)
            cap *= 2;
        char **m = realloc(c->fdpath, (size_t)cap * sizeof(*m));
        if (!m)
            return -ENOMEM;
        memset(m + c->nfdpath, 0, (size_t)(cap - c->nfdpath) * sizeof(*m));
        c->fdpath = m;
        c->nfdpath = cap;
    }
    char *copy = malloc(n + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, rel, n);
    copy[n] = '\0';
    free(c->fdpath[fd]);
    c->fdpath[fd] = copy;
    return 0;
}

static const char *fd_path(const struct cell_io *c, int fd)
{
    return fd >= 0 && fd < c->nfdpath ? c->fdpath[fd] : NULL;
}

static int w_open(void *ctx, const char *path, int flags, int mode)
{
    struct cell_io *c = C(ctx);
    size_t n;
    const char *rel = rel_of(c, path, &n);
    int writes = (flags & (O_WRONLY | O_RDWR)) != 0;
    if (!rel || !writes)
        return IN(c)->open(IN(c)->ctx, path, flags, mode);
    uv_mutex_lock(&c->lock);
    int fd = c->fenced ? -EROFS : IN(c)->open(IN(c)->ctx, path, flags, mode);
    if (fd >= 0) {
        int rc = fd_set_path(c, fd, rel, n);
        if (rc < 0) {
            IN(c)->close(IN(c)->ctx, fd);
            fd = rc;
        } else {
            if (flags & O_CREAT) {
                record(c, &(struct cop){.kind = COP_CREATE, .path = rel, .path_len = n});
                deferred_remade(c, rel, n);
            }
            if (flags & O_TRUNC)
                record(c, &(struct cop){.kind = COP_RESIZE, .path = rel, .path_len = n, .len = 0});
        }
    }
    uv_mutex_unlock(&c->lock);
    return fd;
}

static ssize_t w_pwrite(void *ctx, int fd, const void *p, size_t n, off_t off)
{
    struct cell_io *c = C(ctx);
    uv_mutex_lock(&c->lock);
    const char *rel = fd_path(c, fd);
    ssize_t rc = c->fenced && rel ? -EROFS : IN(c)->pwrite(IN(c)->ctx, fd, p, n, off);
    if (rc > 0 && rel)
        record(c, &(struct cop){.kind = COP_WRITE,
                                .path = rel,
                                .path_len = strlen(rel),
                                .off = (uint64_t)off,
                                .len = (uint64_t)rc,
                                .data = p});
    uv_mutex_unlock(&c->lock);
    return rc;
}

static int w_resize(void *ctx, int fd, off_t len)
{
    struct cell_io *c = C(ctx);
    uv_mutex_lock(&c->lock);
    const char *rel = fd_path(c, fd);
    int rc = c->fenced && rel ? -EROFS : IN(c)->resize(IN(c)->ctx, fd, len);
    if (rc == 0 && rel)
        record(c, &(struct cop){.kind = COP_RESIZE, .path = rel, .path_len = strlen(rel), .len = (uint64_t)len});
    uv_mutex_unlock(&c->lock);
    return rc;
}

static int w_close(void *ctx, int fd)
{
    struct cell_io *c = C(ctx);
    uv_mutex_lock(&c->lock);
    if (fd >= 0 && fd < c->nfdpath) {
        free(c->fdpath[fd]);
        c->fdpath[fd] = NULL;
    }
    uv_mutex_unlock(&c->lock);
    return IN(c)->close(IN(c)->ctx, fd);
}

/* A removal: recorded now, made when committed (cell_io_deferred). */
static int removal(struct cell_io *c, enum cop_kind kind, const char *rel, size_t n, const char *rel2, size_t n2)
{
    uv_mutex_lock(&c->lock);
    int rc = c->fenced ? -EROFS : deferred_add(c, rel, n);
    if (rc == 0)
        record(c, &(struct cop){.kind = kind,
                                .flags = COP_F_DEFERRED,
                                .path = rel,
                                .path_len = n,
                                .path2 = rel2,
                                .path2_len = n2});
    uv_mutex_unlock(&c->lock);
    return rc;
}

static int w_unlink(void *ctx, const char *path)
{
    struct cell_io *c = C(ctx);
    size_t n;
    const char *rel = rel_of(c, path, &n);
    return rel ? removal(c, COP_UNLINK, rel, n, NULL, 0) : IN(c)->unlink(IN(c)->ctx, path);
}

static int w_rmdir(void *ctx, const char *path)
{
    struct cell_io *c = C(ctx);
    size_t n;
    const char *rel = rel_of(c, path, &n);
    return rel ? removal(c, COP_RMDIR, rel, n, NULL, 0) : IN(c)->rmdir(IN(c)->ctx, path);
}

/* A queue folder renamed to d-... is a delete: deferred like a removal. */
static int is_delete_name(const char *rel, size_t n)
{
    return n > 2 && memcmp(rel, "d-", 2) == 0 && !memchr(rel, '/', n);
}

/* Under c->lock: open files under from are under to now. */
static int fds_renamed(struct cell_io *c, const char *from, size_t nf, const char *to, size_t nt)
{
    for (int fd = 0; fd < c->nfdpath; fd++) {
        char *p = c->fdpath[fd];
        size_t pl = p ? strlen(p) : 0;
        if (!p || pl < nf || memcmp(p, from, nf) != 0 || (pl > nf && p[nf] != '/'))
            continue;
        char *np = malloc(nt + (pl - nf) + 1);
        if (!np)
            return -ENOMEM;
        memcpy(np, to, nt);
        memcpy(np + nt, p + nf, pl - nf + 1);
        free(p);
        c->fdpath[fd] = np;
    }
    return 0;
}

static int w_rename(void *ctx, const char *from, const char *to)
{
    struct cell_io *c = C(ctx);
    size_t nf = 0, nt = 0;
    const char *rf = rel_of(c, from, &nf), *rt = rel_of(c, to, &nt);
    if (!rf && !rt)
        return IN(c)->rename(IN(c)->ctx, from, to);
    if (!rf || !rt) {
        /* into the folder from tmp/ (a large item), or out of it: the
         * bytes would not reach the other members */
        log_error(c->log, "cell: cannot rename %s to %s: items over the inline size are not replicated yet", from, to);
        return -EXDEV;
    }
    if (is_delete_name(rt, nt))
        return removal(c, COP_RENAME, rf, nf, rt, nt);
    uv_mutex_lock(&c->lock);
    int rc = c->fenced ? -EROFS : IN(c)->rename(IN(c)->ctx, from, to);
    if (rc == 0) {
        record(c, &(struct cop){.kind = COP_RENAME, .path = rf, .path_len = nf, .path2 = rt, .path2_len = nt});
        deferred_remade(c, rt, nt);
        if ((rc = fds_renamed(c, rf, nf, rt, nt)) < 0 && c->err == 0)
            c->err = rc;
        rc = 0;
    }
    uv_mutex_unlock(&c->lock);
    return rc;
}

static int w_link(void *ctx, const char *from, const char *to)
{
    struct cell_io *c = C(ctx);
    size_t nf = 0, nt = 0;
    const char *rf = rel_of(c, from, &nf), *rt = rel_of(c, to, &nt);
    if (!IN(c)->link)
        return -EOPNOTSUPP;
    if (!rt) /* a second name in tmp/ (a copy of an item): local */
        return IN(c)->link(IN(c)->ctx, from, to);
    if (!rf)
        return -EXDEV;
    uv_mutex_lock(&c->lock);
    int rc = c->fenced ? -EROFS : IN(c)->link(IN(c)->ctx, from, to);
    if (rc == 0) {
        record(c, &(struct cop){.kind = COP_LINK, .path = rf, .path_len = nf, .path2 = rt, .path2_len = nt});
        deferred_remade(c, rt, nt);
    }
    uv_mutex_unlock(&c->lock);
    return rc;
}

static int w_mkdir(void *ctx, const char *path, int mode)
{
    struct cell_io *c = C(ctx);
    size_t n;
    const char *rel = rel_of(c, path, &n);
    if (!rel)
        return IN(c)->mkdir(IN(c)->ctx, path, mode);
    uv_mutex_lock(&c->lock);
    int rc = c->fenced ? -EROFS : IN(c)->mkdir(IN(c)->ctx, path, mode);
    if (rc == 0) {
        record(c, &(struct cop){.kind = COP_MKDIR, .path = rel, .path_len = n});
        deferred_remade(c, rel, n);
    }
    uv_mutex_unlock(&c->lock);
    return rc;
}

static ssize_t w_pread(void *ctx, int fd, void *p, size_t n, off_t off)
{
    return IN(C(ctx))->pread(IN(C(ctx))->ctx, fd, p, n, off);
}
static int w_fsync(void *ctx, int fd) { return IN(C(ctx))->fsync(IN(C(ctx))->ctx, fd); }
static int w_fsize(void *ctx, int fd, off_t *size) { return IN(C(ctx))->fsize(IN(C(ctx))->ctx, fd, size); }
static int w_dup(void *ctx, int fd) { return IN(C(ctx))->dup(IN(C(ctx))->ctx, fd); }
static int w_reserve(void *ctx, int fd, off_t off, off_t len)
{
    return IN(C(ctx))->reserve ? IN(C(ctx))->reserve(IN(C(ctx))->ctx, fd, off, len) : -EOPNOTSUPP;
}
static int w_open_dir(void *ctx, const char *path) { return IN(C(ctx))->open_dir(IN(C(ctx))->ctx, path); }
static int w_listdir(void *ctx, const char *path, int (*each)(void *arg, const char *name), void *arg)
{
    return IN(C(ctx))->listdir(IN(C(ctx))->ctx, path, each, arg);
}
static int w_size(void *ctx, const char *path, uint64_t *size) { return IN(C(ctx))->size(IN(C(ctx))->ctx, path, size); }

int cell_io_init(struct cell_io *c, const struct jio *inner, const char *root, struct cop_applier *touch,
                 const struct log *log)
{
    memset(c, 0, sizeof(*c));
    c->inner = inner;
    c->touch = touch;
    c->log = log;
    c->root_len = strlen(root);
    while (c->root_len > 1 && root[c->root_len - 1] == '/')
        c->root_len--;
    if (!(c->root = malloc(c->root_len + 1)))
        return -ENOMEM;
    memcpy(c->root, root, c->root_len);
    c->root[c->root_len] = '\0';
    int rc = uv_mutex_init(&c->lock);
    if (rc < 0) {
        free(c->root);
        c->root = NULL;
        return rc;
    }
    c->table = (struct jio){.ctx = c,
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
                            .size = w_size};
    return 0;
}

void cell_io_free(struct cell_io *c)
{
    if (!c->root)
        return;
    for (int i = 0; i < c->nfdpath; i++)
        free(c->fdpath[i]);
    free(c->fdpath);
    for (size_t i = 0; i < c->ndefer; i++)
        free(c->defer[i].path);
    free(c->defer);
    cop_buf_free(&c->pending);
    uv_mutex_destroy(&c->lock);
    free(c->root);
    c->root = NULL;
}

size_t cell_io_take(struct cell_io *c, struct cop_buf *out)
{
    uv_mutex_lock(&c->lock);
    struct cop_buf t = *out;
    *out = c->pending;
    c->pending = t;
    cop_buf_reset(&c->pending);
    size_t n = out->len;
    uv_mutex_unlock(&c->lock);
    return n;
}

size_t cell_io_pending(struct cell_io *c)
{
    uv_mutex_lock(&c->lock);
    size_t n = c->pending.len;
    uv_mutex_unlock(&c->lock);
    return n;
}

int cell_io_deferred(struct cell_io *c, struct cop_applier *a, const struct cop *op)
{
    uv_mutex_lock(&c->lock);
    struct cell_io_deferred *d = deferred_find(c, op->path, op->path_len);
    int skip = d && d->remade;
    if (d && --d->pending == 0) {
        free(d->path);
        *d = c->defer[--c->ndefer];
    }
    uv_mutex_unlock(&c->lock);
    return skip ? 0 : cop_apply(a, op);
}

void cell_io_fence(struct cell_io *c)
{
    uv_mutex_lock(&c->lock);
    c->fenced = 1;
    uv_mutex_unlock(&c->lock);
}
