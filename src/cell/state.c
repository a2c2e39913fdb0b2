/* cell/state.c: the committed state of a cell's files, its manifest, and
 * bringing files back to it (cell/ops.h).
 *
 * Manifest, version 1 (integers little-endian):
 *
 *   "DNCS"    magic
 *   u32       version (1)
 *   u64       count of entries
 *   entries   in strictly increasing path order (bytes, a prefix first):
 *               u16 path length, the path (cop_path_ok)
 *               u8  type: 1 file, 2 folder
 *               file: u64 size (<= INT64_MAX), u8 head length
 *                     (min(size, COP_HEAD)), the head's bytes
 *   u64       XXH3-64 of every byte before it
 *
 * Every entry's parent folder is an entry too. cst_decode refuses anything
 * else with -EBADMSG. */
#include "cell/ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "cell/ops_int.h"
#include "cell/pathmap.h"
#include "util/buf.h"

#define CST_MAGIC "DNCS"
#define CST_VERSION 1u
#define CST_FILE 1
#define CST_DIR 2

/* An entry; the bytes of head past head_len are always 0. */
struct cst_ent {
    uint64_t size;
    int dir;
    unsigned head_len;
    unsigned char head[COP_HEAD];
};

struct cop_state {
    struct pathmap m; /* path -> struct cst_ent (malloc'd, the map's) */
};

int cst_new(struct cop_state **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

void cst_free(struct cop_state *st)
{
    if (!st)
        return;
    pm_clear(&st->m, free);
    free(st);
}

size_t cst_count(const struct cop_state *st) { return st->m.count; }

static struct cst_ent *ent_get(const struct cop_state *st, const char *p, size_t n)
{
    struct pm_node *nd = pm_get(&st->m, p, n);
    return nd ? nd->val : NULL;
}

/* The entry of p, made (a file of size 0, or a folder) if absent. A kind
 * other than asked is made so (what was under a folder goes). NULL: out of
 * memory. */
static struct cst_ent *ent_put(struct cop_state *st, const char *p, size_t n, int dir)
{
    int made;
    struct pm_node *nd = pm_put(&st->m, p, n, &made);
    if (!nd)
        return NULL;
    if (made) {
        nd->val = calloc(1, sizeof(struct cst_ent));
        if (!nd->val) {
            pm_del(&st->m, p, n);
            return NULL;
        }
    }
    struct cst_ent *e = nd->val;
    if (e->dir != dir) {
        if (e->dir) {
            /* the folder's contents go: every node under p but p */
            free(pm_del(&st->m, p, n));
            pm_del_under(&st->m, p, n, free);
            return ent_put(st, p, n, dir);
        }
        memset(e, 0, sizeof(*e));
        e->dir = dir;
    }
    return e;
}

/* The parent folders of p, made where absent. Returns 0 or -ENOMEM. */
static int put_parents(struct cop_state *st, const char *p, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (p[i] == '/' && !ent_put(st, p, i, 1))
            return -ENOMEM;
    return 0;
}

static struct cst_ent *file_put(struct cop_state *st, const char *p, size_t n)
{
    return put_parents(st, p, n) < 0 ? NULL : ent_put(st, p, n, 0);
}

static void set_size(struct cst_ent *e, uint64_t size)
{
    e->size = size;
    unsigned hl = size < COP_HEAD ? (unsigned)size : COP_HEAD;
    if (hl < e->head_len)
        memset(e->head + hl, 0, COP_HEAD - hl);
    e->head_len = hl;
}

/* Moves the entry of src and everything under it to dst. Returns 0 or
 * -ENOMEM. */
static int move_tree(struct cop_state *st, const char *src, size_t sn, const char *dst, size_t dn)
{
    int ok;
    struct pm_node **v = pm_list(&st->m, &ok);
    if (!ok)
        return -ENOMEM;
    size_t count = st->m.count, k = 0;
    for (size_t i = 0; i < count; i++)
        if (pm_under(v[i]->key, v[i]->len, src, sn))
            v[k++] = v[i];
    char key[2 * COP_PATH_MAX + 2];
    int rc = 0;
    for (size_t i = 0; i < k; i++) {
        size_t rest = v[i]->len - sn;
        memcpy(key, dst, dn);
        memcpy(key + dn, v[i]->key + sn, rest);
        char old[2 * COP_PATH_MAX + 2];
        size_t on = v[i]->len;
        memcpy(old, v[i]->key, on);
        void *val = pm_del(&st->m, old, on);
        int made;
        struct pm_node *nd = pm_put(&st->m, key, dn + rest, &made);
        if (!nd) {
            free(val);
            rc = -ENOMEM;
            continue;
        }
        free(nd->val);
        nd->val = val;
    }
    free(v);
    return rc;
}

static int cst_rename(struct cop_state *st, const struct cop *op)
{
    const char *s = op->path, *d = op->path2;
    size_t sn = op->path_len, dn = op->path2_len;
    struct cst_ent *es = ent_get(st, s, sn), *ed = ent_get(st, d, dn);
    int rc = 0;
    if (es && !pm_under(d, dn, s, sn)) {
        if (es->dir && ed && ed->dir) {
            pm_del_under(&st->m, s, sn, free); /* a replay: dst is src gone further */
        } else {
            if (ed)
                pm_del_under(&st->m, d, dn, free);
            rc = put_parents(st, d, dn);
            if (rc == 0)
                rc = move_tree(st, s, sn, d, dn);
        }
    }
    ed = ent_get(st, d, dn);
    if (rc == 0 && ed && ed->dir && cop_is_delete_name(d, dn))
        pm_del_under(&st->m, d, dn, free);
    return rc;
}

int cst_apply(struct cop_state *st, const struct cop *op)
{
    struct cst_ent *e;
    switch (op->kind) {
    case COP_WRITE: {
        if (!(e = file_put(st, op->path, op->path_len)))
            return -ENOMEM;
        uint64_t end = op->off + op->len;
        if (op->len > 0 && end > e->size) /* an empty write makes no file longer */
            set_size(e, end);
        const unsigned char *d = op->data;
        for (uint64_t i = op->off; i < end && i < COP_HEAD; i++)
            e->head[i] = d[i - op->off];
        return 0;
    }
    case COP_RESIZE:
        if (!(e = file_put(st, op->path, op->path_len)))
            return -ENOMEM;
        set_size(e, op->len);
        return 0;
    case COP_CREATE:
        if (ent_get(st, op->path, op->path_len))
            return 0;
        return file_put(st, op->path, op->path_len) ? 0 : -ENOMEM;
    case COP_UNLINK:
        e = ent_get(st, op->path, op->path_len);
        if (e && !e->dir)
            free(pm_del(&st->m, op->path, op->path_len));
        return 0;
    case COP_MKDIR:
        if (put_parents(st, op->path, op->path_len) < 0 || !ent_put(st, op->path, op->path_len, 1))
            return -ENOMEM;
        return 0;
    case COP_RMDIR:
        pm_del_under(&st->m, op->path, op->path_len, free);
        return 0;
    case COP_RENAME:
        return cst_rename(st, op);
    case COP_LINK: {
        struct cst_ent *es = ent_get(st, op->path, op->path_len);
        if (!es || es->dir || ent_get(st, op->path2, op->path2_len))
            return 0;
        struct cst_ent copy = *es;
        if (!(e = file_put(st, op->path2, op->path2_len)))
            return -ENOMEM;
        *e = copy;
        return 0;
    }
    }
    return 0;
}

/* ---- the manifest ---- */

static int node_cmp(const void *x, const void *y)
{
    const struct pm_node *a = *(struct pm_node *const *)x, *b = *(struct pm_node *const *)y;
    int c = memcmp(a->key, b->key, a->len < b->len ? a->len : b->len);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

int cst_each(const struct cop_state *st, int (*fn)(void *arg, const struct cst_item *it), void *arg)
{
    if (st->m.count == 0)
        return 0;
    int ok;
    struct pm_node **v = pm_list(&st->m, &ok);
    if (!v)
        return -ENOMEM;
    qsort(v, st->m.count, sizeof(*v), node_cmp);
    int rc = 0;
    for (size_t i = 0; i < st->m.count && rc == 0; i++) {
        const struct cst_ent *e = v[i]->val;
        struct cst_item it = {.path = v[i]->key,
                              .path_len = v[i]->len,
                              .dir = e->dir,
                              .size = e->size,
                              .head = e->head,
                              .head_len = e->head_len};
        rc = fn(arg, &it);
    }
    free(v);
    return rc;
}

/* Writes the manifest into *out (malloc'd, the caller's) and *n. */
int cst_encode(const struct cop_state *st, void **out, size_t *n)
{
    int ok;
    struct pm_node **v = pm_list(&st->m, &ok);
    if (!ok)
        return -ENOMEM;
    size_t count = st->m.count;
    if (count > 1)
        qsort(v, count, sizeof(*v), node_cmp);
    size_t cap = 24;
    for (size_t i = 0; i < count; i++)
        cap += 2 + v[i]->len + 1 + 8 + 1 + COP_HEAD;
    unsigned char *p = malloc(cap);
    if (!p) {
        free(v);
        return -ENOMEM;
    }
    size_t w = 0;
    memcpy(p, CST_MAGIC, 4);
    put_u32le(p + 4, CST_VERSION);
    put_u64le(p + 8, count);
    w = 16;
    for (size_t i = 0; i < count; i++) {
        const struct cst_ent *e = v[i]->val;
        p[w] = (unsigned char)v[i]->len;
        p[w + 1] = (unsigned char)(v[i]->len >> 8);
        memcpy(p + w + 2, v[i]->key, v[i]->len);
        w += 2 + v[i]->len;
        p[w++] = e->dir ? CST_DIR : CST_FILE;
        if (!e->dir) {
            put_u64le(p + w, e->size);
            p[w + 8] = (unsigned char)e->head_len;
            memcpy(p + w + 9, e->head, e->head_len);
            w += 9 + e->head_len;
        }
    }
    put_u64le(p + w, XXH3_64bits(p, w));
    w += 8;
    free(v);
    *out = p;
    *n = w;
    return 0;
}

/* Reads the entries of a manifest into st (empty). Returns 0, -EBADMSG or
 * -ENOMEM. */
static int decode_into(struct cop_state *st, const unsigned char *p, size_t n)
{
    if (n < 24 || memcmp(p, CST_MAGIC, 4) != 0 || get_u32le(p + 4) != CST_VERSION)
        return -EBADMSG;
    size_t end = n - 8;
    if (get_u64le(p + end) != XXH3_64bits(p, end))
        return -EBADMSG;
    uint64_t count = get_u64le(p + 8);
    if (count > (end - 16) / 4) /* the smallest entry: 2 + 1 + 1 bytes */
        return -EBADMSG;
    size_t r = 16, prev = 0, prev_len = 0;
    for (uint64_t i = 0; i < count; i++) {
        if (end - r < 3)
            return -EBADMSG;
        size_t pl = (size_t)p[r] | (size_t)p[r + 1] << 8;
        r += 2;
        if (pl > end - r - 1 || !cop_path_ok((const char *)p + r, pl))
            return -EBADMSG;
        const char *path = (const char *)p + r;
        if (i > 0) { /* strictly increasing: no duplicate, parents first */
            size_t m = pl < prev_len ? pl : prev_len;
            int c = memcmp(p + prev, path, m);
            if (c > 0 || (c == 0 && prev_len >= pl))
                return -EBADMSG;
        }
        prev = r;
        prev_len = pl;
        r += pl;
        unsigned type = p[r++];
        struct cst_ent e = {.dir = type == CST_DIR};
        if (type == CST_FILE) {
            if (end - r < 9)
                return -EBADMSG;
            e.size = get_u64le(p + r);
            e.head_len = p[r + 8];
            r += 9;
            if (e.size > INT64_MAX || e.head_len != (e.size < COP_HEAD ? e.size : COP_HEAD) || e.head_len > end - r)
                return -EBADMSG;
            memcpy(e.head, p + r, e.head_len);
            r += e.head_len;
        } else if (type != CST_DIR) {
            return -EBADMSG;
        }
        const char *slash = memrchr(path, '/', pl);
        if (slash) {
            struct cst_ent *parent = ent_get(st, path, (size_t)(slash - path));
            if (!parent || !parent->dir)
                return -EBADMSG;
        }
        struct cst_ent *ne = ent_put(st, path, pl, e.dir);
        if (!ne)
            return -ENOMEM;
        *ne = e;
    }
    return r == end ? 0 : -EBADMSG;
}

/* Replaces st's entries by the manifest's; on failure st is unchanged. */
int cst_decode(struct cop_state *st, const void *p, size_t n)
{
    struct cop_state tmp = {0};
    int rc = p ? decode_into(&tmp, p, n) : -EBADMSG;
    if (rc < 0) {
        pm_clear(&tmp.m, free);
        return rc;
    }
    pm_clear(&st->m, free);
    st->m = tmp.m;
    return 0;
}

/* ---- reconcile ---- */

/* Brings the file name (an fd in dir) back to e. *changed: set when cut. */
static int reconcile_file(int dir, const char *name, const struct cst_ent *e, int *changed)
{
    int fd = openat(dir, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat s;
    int rc = fstat(fd, &s) < 0 ? -errno : 0;
    uint64_t size = rc == 0 ? (uint64_t)s.st_size : 0;
    int cut = 0;
    if (rc == 0 && size > e->size) {
        rc = ftruncate(fd, (off_t)e->size) < 0 ? -errno : 0;
        size = e->size;
        cut = 1;
    }
    size_t hl = size < e->head_len ? (size_t)size : e->head_len;
    unsigned char head[COP_HEAD];
    size_t got = 0;
    while (rc == 0 && got < hl) {
        ssize_t r = pread(fd, head + got, hl - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : -EIO;
            break;
        }
        got += (size_t)r;
    }
    if (rc == 0 && memcmp(head, e->head, hl) != 0) {
        rc = ftruncate(fd, 0) < 0 ? -errno : 0;
        cut = 1;
    }
    if (rc == 0 && cut)
        rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    *changed |= cut;
    return rc;
}

/* Walks the folder fd (closed here), path rel (n bytes; 0 at the root). */
static int reconcile_dir(const struct cop_state *st, int fd, char *rel, size_t n)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = -errno;
        close(fd);
        return e;
    }
    int rc = 0, changed = 0;
    struct dirent *de;
    errno = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        size_t nl = strlen(name);
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if (n == 0 && (strcmp(name, "raft") == 0 || strcmp(name, "tmp") == 0))
            continue;
        size_t pl = n ? n + 1 + nl : nl;
        const struct cst_ent *e = NULL;
        if (pl <= COP_PATH_MAX) {
            if (n)
                rel[n] = '/';
            memcpy(rel + (n ? n + 1 : 0), name, nl);
            rel[pl] = '\0';
            e = ent_get(st, rel, pl);
        }
        struct stat s;
        if (fstatat(dirfd(d), name, &s, AT_SYMLINK_NOFOLLOW) < 0) {
            rc = errno == ENOENT ? 0 : -errno;
        } else if (e && e->dir && S_ISDIR(s.st_mode)) {
            int sub = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            rc = sub < 0 ? -errno : reconcile_dir(st, sub, rel, pl);
        } else if (e && !e->dir && S_ISREG(s.st_mode)) {
            rc = reconcile_file(dirfd(d), name, e, &changed);
        } else {
            rc = cop_rmtree_at(dirfd(d), name); /* not held, or not of its kind */
            changed = 1;
        }
        rel[n] = '\0';
        errno = 0;
    }
    if (rc == 0 && errno != 0)
        rc = -errno;
    if (rc == 0 && changed && fsync(dirfd(d)) < 0)
        rc = -errno;
    closedir(d);
    return rc;
}

int cst_reconcile(const struct cop_state *st, const char *root)
{
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char rel[COP_PATH_MAX + 1] = "";
    return reconcile_dir(st, fd, rel, 0);
}
