/* tests/crash/crash_state.c: replaying the event log into crash states (see
 * crash_state.h for the rules). */
#include "crash_state.h"

#include "crash_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define SECTOR 512

/* ---- entries and bytes ---- */

static int ent_find(const struct cf_ent *e, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(e[i].name, name) == 0)
            return (int)i;
    return -1;
}

static void ent_put(struct cf_ent **e, size_t *n, size_t *cap, const char *name, int ino)
{
    int i = ent_find(*e, *n, name);
    if (i >= 0) {
        (*e)[i].ino = ino;
        return;
    }
    CU_GROW(*e, *n, *cap);
    snprintf((*e)[*n].name, CF_NAME_MAX, "%s", name);
    (*e)[(*n)++].ino = ino;
}

static void ent_drop(struct cf_ent *e, size_t *n, const char *name, int ino)
{
    int i = ent_find(e, *n, name);
    if (i >= 0 && e[i].ino == ino)
        e[i] = e[--*n];
}

/* Applies entry event ev to the entries of folder dir. */
static void dir_apply(const struct cf_ev *ev, int dir, struct cf_ent **e, size_t *n, size_t *cap)
{
    switch ((enum cf_op)ev->op) {
    case CF_MKDIR:
    case CF_CREATE:
        ent_put(e, n, cap, ev->name, ev->ino);
        break;
    case CF_UNLINK:
        ent_drop(*e, n, ev->name, ev->ino);
        break;
    case CF_RENAME:
        if (ev->from_dir == dir)
            ent_drop(*e, n, ev->from, ev->ino);
        ent_put(e, n, cap, ev->name, ev->ino);
        break;
    default:
        break;
    }
}

static void resize(unsigned char **buf, size_t *len, size_t *cap, size_t want)
{
    if (want > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < want)
            c *= 2;
        *buf = cu_realloc(*buf, c);
        *cap = c;
    }
    if (want > *len)
        memset(*buf + *len, 0, want - *len);
    *len = want;
}

static void put(unsigned char **buf, size_t *len, size_t *cap, uint64_t off, const unsigned char *p, size_t n)
{
    if (off + n > *len)
        resize(buf, len, cap, (size_t)(off + n));
    memcpy(*buf + off, p, n);
}

/* ---- the walk ---- */

void cs_walk_init(struct cs_walk *w, const struct cf_rec *rec)
{
    *w = (struct cs_walk){.rec = rec, .nf = rec->nino};
    w->f = cu_calloc(rec->nino, sizeof(*w->f));
}

void cs_walk_free(struct cs_walk *w)
{
    for (size_t i = 0; i < w->nf; i++) {
        free(w->f[i].dur);
        free(w->f[i].ops);
        free(w->f[i].dent);
        free(w->f[i].dops);
    }
    free(w->f);
    *w = (struct cs_walk){0};
}

static void push(uint32_t **a, size_t *n, size_t *cap, uint32_t v)
{
    CU_GROW(*a, *n, *cap);
    (*a)[(*n)++] = v;
}

static void walk_one(struct cs_walk *w, uint32_t i)
{
    const struct cf_ev *ev = &w->rec->ev[i];
    struct cs_file *f;
    switch ((enum cf_op)ev->op) {
    case CF_MKDIR:
    case CF_CREATE:
    case CF_UNLINK:
    case CF_RENAME:
        f = &w->f[ev->dir];
        push(&f->dops, &f->ndops, &f->capdops, i);
        break;
    case CF_WRITE:
    case CF_TRUNC:
        f = &w->f[ev->ino];
        push(&f->ops, &f->nops, &f->capops, i);
        break;
    case CF_FSYNC:
        f = &w->f[ev->ino];
        if (w->rec->ino[ev->ino].is_dir) {
            for (; f->dsync < f->ndops; f->dsync++)
                dir_apply(&w->rec->ev[f->dops[f->dsync]], ev->ino, &f->dent, &f->ndent, &f->capdent);
            break;
        }
        for (; f->nsync < f->nops; f->nsync++) {
            const struct cf_ev *o = &w->rec->ev[f->ops[f->nsync]];
            if (o->op == CF_WRITE)
                put(&f->dur, &f->dlen, &f->dcap, o->off, o->data, (size_t)o->len);
            else
                resize(&f->dur, &f->dlen, &f->dcap, (size_t)o->len);
        }
        break;
    case CF_RESERVE:
        break;
    }
}

void cs_walk_to(struct cs_walk *w, size_t k)
{
    for (; w->k < k; w->k++)
        walk_one(w, (uint32_t)w->k);
}

/* ---- choices ---- */

/* Sector boundaries strictly inside a write of len bytes at off. */
static uint64_t first_cut(uint64_t off) { return (off / SECTOR + 1) * SECTOR; }
static unsigned ncuts(uint64_t off, uint64_t len)
{
    uint64_t c = first_cut(off);
    return c >= off + len ? 0 : (unsigned)((off + len - c + SECTOR - 1) / SECTOR);
}

static void add_choice(struct cs_point *pt, uint32_t ev, unsigned nopt, unsigned ncut)
{
    CU_GROW(pt->c, pt->n, pt->cap);
    pt->c[pt->n++] = (struct cs_choice){.ev = ev, .nopt = (uint16_t)nopt, .ncut = (uint16_t)ncut};
}

static void file_choices(const struct cs_walk *w, int ino, struct cs_point *pt)
{
    const struct cs_file *f = &w->f[ino];
    size_t last = f->nops;
    for (size_t i = f->nops; i-- > f->nsync;) {
        if (w->rec->ev[f->ops[i]].op == CF_WRITE) {
            last = i;
            break;
        }
    }
    for (size_t i = f->nsync; i < f->nops; i++) {
        const struct cf_ev *e = &w->rec->ev[f->ops[i]];
        unsigned nc = i == last ? ncuts(e->off, e->len) : 0;
        if (nc > 200)
            nc = 200; /* keeps the option count in 16 bits; no write is this large */
        add_choice(pt, f->ops[i], i == last ? 3 + 2 * nc : 2, nc);
    }
}

void cs_point_build(const struct cs_walk *w, int qdir, struct cs_point *pt)
{
    pt->n = 0;
    pt->qdir = qdir;
    int dirs[2] = {0, qdir};
    for (int d = 0; d < 2; d++) {
        if (dirs[d] < 0 || (size_t)dirs[d] >= w->nf || (d == 1 && qdir == 0))
            continue;
        const struct cs_file *f = &w->f[dirs[d]];
        for (size_t i = f->dsync; i < f->ndops; i++)
            add_choice(pt, f->dops[i], 2, 0);
    }
    if (qdir <= 0 || (size_t)qdir >= w->nf)
        return;
    /* The files the journal folder may name: its durable entries, and what
     * its open entry events would add. Each once. */
    const struct cs_file *q = &w->f[qdir];
    for (size_t i = 0; i < q->ndent; i++)
        if (!w->rec->ino[q->dent[i].ino].is_dir)
            file_choices(w, q->dent[i].ino, pt);
    for (size_t i = q->dsync; i < q->ndops; i++) {
        const struct cf_ev *e = &w->rec->ev[q->dops[i]];
        if (e->op != CF_CREATE && e->op != CF_RENAME)
            continue;
        int seen = 0;
        for (size_t j = 0; j < q->ndent && !seen; j++)
            seen = q->dent[j].ino == e->ino;
        for (size_t j = q->dsync; j < i && !seen; j++) {
            const struct cf_ev *o = &w->rec->ev[q->dops[j]];
            seen = (o->op == CF_CREATE || o->op == CF_RENAME) && o->ino == e->ino;
        }
        if (!seen)
            file_choices(w, e->ino, pt);
    }
}

void cs_point_free(struct cs_point *pt)
{
    free(pt->c);
    *pt = (struct cs_point){0};
}

uint64_t cs_point_space(const struct cs_point *pt)
{
    uint64_t n = 1;
    for (size_t i = 0; i < pt->n; i++) {
        if (n > UINT64_MAX / pt->c[i].nopt)
            return UINT64_MAX;
        n *= pt->c[i].nopt;
    }
    return n;
}

/* ---- images ---- */

/* A file's bytes as variant img->pick leaves them, into *buf. */
static void file_build(const struct cs_walk *w, int ino, const int32_t *pick, unsigned char **buf, size_t *len,
                       size_t *cap)
{
    const struct cs_file *f = &w->f[ino];
    *len = 0;
    resize(buf, len, cap, f->dlen);
    if (f->dlen)
        memcpy(*buf, f->dur, f->dlen);
    uint64_t floor = UINT64_MAX; /* the lowest truncation that did not persist */
    for (size_t i = f->nsync; i < f->nops; i++) {
        const struct cf_ev *e = &w->rec->ev[f->ops[i]];
        int p = pick[f->ops[i]] < 0 ? 0 : pick[f->ops[i]];
        if (e->op == CF_TRUNC) {
            if (p == 1 || floor != UINT64_MAX) /* truncations persist in order */
                floor = e->len < floor ? e->len : floor;
            else
                resize(buf, len, cap, (size_t)e->len);
            continue;
        }
        uint64_t end = e->off + e->len;
        if (p == 1 || end > floor)
            continue;
        unsigned nc = ncuts(e->off, e->len);
        if (p == 0) {
            put(buf, len, cap, e->off, e->data, (size_t)e->len);
        } else if ((unsigned)p < 2 + nc) { /* torn: the first sectors, the size follows */
            uint64_t cut = first_cut(e->off) + (uint64_t)(p - 2) * SECTOR;
            put(buf, len, cap, e->off, e->data, (size_t)(cut - e->off));
        } else { /* torn: the size of the whole write, data up to a cut */
            unsigned zi = (unsigned)p - 2 - nc;
            uint64_t cut = zi == 0 ? e->off : first_cut(e->off) + (uint64_t)(zi - 1) * SECTOR;
            if (end > *len)
                resize(buf, len, cap, (size_t)end);
            memcpy(*buf + e->off, e->data, (size_t)(cut - e->off));
        }
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct cs_img_file *)a)->name, ((const struct cs_img_file *)b)->name);
}

void cs_image_build(const struct cs_walk *w, const struct cs_point *pt, const uint16_t *pick, struct cs_image *img)
{
    const struct cf_rec *rec = w->rec;
    if (img->npick < rec->nev) {
        img->pick = cu_realloc(img->pick, rec->nev * sizeof(*img->pick));
        for (size_t i = img->npick; i < rec->nev; i++)
            img->pick[i] = -1;
        img->npick = rec->nev;
    }
    for (size_t i = 0; i < pt->n; i++)
        img->pick[pt->c[i].ev] = pick[i];
    img->nf = 0;
    img->hash = UINT64_C(0x6a09e667f3bcc908);

    /* Does the root still name the journal folder? */
    const struct cs_file *root = &w->f[0];
    int qdir = pt->qdir;
    img->qexists = 0;
    for (size_t i = 0; i < root->ndent; i++)
        img->qexists |= root->dent[i].ino == qdir;
    for (size_t i = root->dsync; i < root->ndops; i++) {
        const struct cf_ev *e = &rec->ev[root->dops[i]];
        if (e->ino != qdir || img->pick[root->dops[i]] == 1)
            continue;
        img->qexists = e->op != CF_UNLINK;
    }
    if (img->qexists && qdir > 0) {
        const struct cs_file *q = &w->f[qdir];
        img->nent = 0;
        for (size_t i = 0; i < q->ndent; i++)
            ent_put(&img->ent, &img->nent, &img->capent, q->dent[i].name, q->dent[i].ino);
        for (size_t i = q->dsync; i < q->ndops; i++)
            if (img->pick[q->dops[i]] != 1)
                dir_apply(&rec->ev[q->dops[i]], qdir, &img->ent, &img->nent, &img->capent);
        for (size_t i = 0; i < img->nent; i++) {
            int ino = img->ent[i].ino;
            if (rec->ino[ino].is_dir)
                continue;
            if (img->nf == img->capf) {
                size_t old = img->capf;
                img->capf = old ? old * 2 : 16;
                img->f = cu_realloc(img->f, img->capf * sizeof(*img->f));
            }
            if (img->nf == img->capbufs) {
                size_t old = img->capbufs;
                img->capbufs = old ? old * 2 : 16;
                img->bufs = cu_realloc(img->bufs, img->capbufs * sizeof(*img->bufs));
                img->bufcap = cu_realloc(img->bufcap, img->capbufs * sizeof(*img->bufcap));
                for (size_t b = old; b < img->capbufs; b++) {
                    img->bufs[b] = NULL;
                    img->bufcap[b] = 0;
                }
            }
            struct cs_img_file *out = &img->f[img->nf];
            snprintf(out->name, sizeof(out->name), "%s", img->ent[i].name);
            const struct cs_file *f = &w->f[ino];
            if (f->nsync == f->nops) {
                out->data = f->dur;
                out->len = f->dlen;
            } else {
                file_build(w, ino, img->pick, &img->bufs[img->nf], &out->len, &img->bufcap[img->nf]);
                out->data = img->bufs[img->nf];
            }
            img->nf++;
        }
        if (img->nf > 1)
            qsort(img->f, img->nf, sizeof(*img->f), by_name);
        img->hash = UINT64_C(0xbb67ae8584caa73b);
        for (size_t i = 0; i < img->nf; i++) {
            uint64_t h = XXH3_64bits_withSeed(img->f[i].data, img->f[i].len,
                                              XXH3_64bits(img->f[i].name, strlen(img->f[i].name)));
            img->hash = cu_mix(img->hash ^ h) + img->f[i].len;
        }
    }
    for (size_t i = 0; i < pt->n; i++)
        img->pick[pt->c[i].ev] = -1;
}

void cs_image_free(struct cs_image *img)
{
    for (size_t i = 0; i < img->capbufs; i++)
        free(img->bufs[i]);
    free(img->bufs);
    free(img->bufcap);
    free(img->f);
    free(img->ent);
    free(img->pick);
    *img = (struct cs_image){0};
}

int cs_materialize(const struct cs_image *img, const char *dir)
{
    if (!img->qexists)
        return 0;
    if (mkdir(dir, 0755) < 0)
        return -errno;
    for (size_t i = 0; i < img->nf; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, img->f[i].name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
            return -errno;
        size_t done = 0;
        while (done < img->f[i].len) {
            ssize_t n = write(fd, img->f[i].data + done, img->f[i].len - done);
            if (n <= 0) {
                int rc = n < 0 ? -errno : -EIO;
                close(fd);
                return rc;
            }
            done += (size_t)n;
        }
        close(fd);
    }
    return 0;
}

void cs_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

void cs_describe(const struct cs_walk *w, const struct cs_point *pt, const uint16_t *pick, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    if (pt->n == 0)
        snprintf(out, cap, "    (nothing open: every change so far is durable)\n");
    for (size_t i = 0; i < pt->n && used + 1 < cap; i++) {
        const struct cs_choice *c = &pt->c[i];
        const struct cf_ev *e = &w->rec->ev[c->ev];
        char what[256], fate[64];
        cf_describe(w->rec, c->ev, what, sizeof(what));
        if (pick[i] == 0)
            snprintf(fate, sizeof(fate), "kept");
        else if (pick[i] == 1)
            snprintf(fate, sizeof(fate), "dropped");
        else if (pick[i] < 2 + c->ncut)
            snprintf(fate, sizeof(fate), "torn: landed up to %" PRIu64,
                     first_cut(e->off) + (uint64_t)(pick[i] - 2) * SECTOR);
        else if (pick[i] == 2 + c->ncut)
            snprintf(fate, sizeof(fate), "torn: size grew, no data");
        else
            snprintf(fate, sizeof(fate), "torn: size grew, data up to %" PRIu64,
                     first_cut(e->off) + (uint64_t)(pick[i] - 3 - c->ncut) * SECTOR);
        int n = snprintf(out + used, cap - used, "    ev %5" PRIu32 " %-60s %s\n", c->ev, what, fate);
        if (n < 0 || (size_t)n >= cap - used) {
            snprintf(out + (cap > 8 ? cap - 8 : 0), cap > 8 ? 8 : cap, "...\n");
            break;
        }
        used += (size_t)n;
    }
}
