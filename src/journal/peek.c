/* journal/peek.c: reading a closed journal's folder without opening it
 * (jnl_open reads and checks the whole last segment before it returns) and
 * without changing a byte: its firing state from the ack log, then its
 * entries in steps of a bounded number of bytes. A delay bucket's items are
 * counted this way after a restart (queue/delay.c), on the loop thread,
 * between requests. */
#include "journal/jnl_int.h"

#include "journal/format.h"
#include "journal/replay.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct jnl_peek {
    struct jnl_conf conf;
    char *dir;
    uint64_t oldest, tail; /* segments found (tail 0: none) */
    struct jnl_fire done;
    size_t npend;
};

static int peek_seg(void *arg, const char *name)
{
    struct jnl_peek *p = arg;
    uint64_t seq;
    if (jf_parse_file_name(name, "seg-", &seq)) {
        if (!p->tail || seq < p->oldest)
            p->oldest = seq;
        if (seq > p->tail)
            p->tail = seq;
    }
    return 0;
}

static int peek_open_file(const struct jnl_peek *p, const char *name, int *fd)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", p->dir, name) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    *fd = p->conf.io->open(p->conf.io->ctx, path, O_RDONLY, 0);
    return *fd < 0 ? *fd : 0;
}

/* The firing state of the ack log recovery would use: the newer of the
 * two files that has a usable checkpoint (none: nothing fired). */
static int peek_acks(struct jnl_peek *p)
{
    int fds[2] = {-1, -1}, rc = 0;
    uint64_t gens[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        char name[16];
        unsigned char raw[JF_ACK_HDR];
        struct jf_ack_hdr h;
        snprintf(name, sizeof(name), "acks.%d", i);
        if ((rc = peek_open_file(p, name, &fds[i])) < 0 && rc != -ENOENT)
            goto out;
        rc = 0;
        if (fds[i] >= 0 && jio_pread_all(p->conf.io, fds[i], raw, sizeof(raw), 0) == 0 &&
            jf_ack_hdr_decode(raw, &h) == 0)
            gens[i] = h.generation;
    }
    for (int k = 0; k < 2; k++) {
        int i = (gens[1] > gens[0]) == (k == 0);
        off_t size;
        struct jst st;
        struct jack_load l = {0};
        if (fds[i] < 0 || gens[i] == 0 || p->conf.io->fsize(p->conf.io->ctx, fds[i], &size) < 0)
            continue;
        jst_init(&st);
        rc = jst_load_acks(&st, p->conf.io, fds[i], (uint64_t)size, &l);
        if (rc == 0) {
            p->done = (struct jnl_fire){.due = st.fire.due, .id = st.fire.id, .fired = st.fire.fired};
            p->npend = st.npend;
        }
        jst_free_nodes(&st); /* (its FIRINGs too) */
        if (rc != -EBADMSG)
            goto out; /* read (or an error): no other file is tried */
        rc = 0;
    }
out:
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            p->conf.io->close(p->conf.io->ctx, fds[i]);
    return rc;
}

/* Ownership: *out is the caller's, freed with jnl_peek_close. */
int jnl_peek_open(const struct jnl_conf *conf, const char *dir, struct jnl_peek **out)
{
    struct jnl_peek *p = calloc(1, sizeof(*p));
    int rc;
    if (!p)
        return -ENOMEM;
    p->conf = *conf;
    if (!(p->dir = strdup(dir))) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = conf->io->listdir(conf->io->ctx, dir, peek_seg, p)) < 0 || (rc = peek_acks(p)) < 0)
        goto fail;
    *out = p;
    return 0;
fail:
    jnl_peek_close(p);
    return rc;
}

void jnl_peek_close(struct jnl_peek *p)
{
    if (!p)
        return;
    free(p->dir);
    free(p);
}

void jnl_peek_fire(const struct jnl_peek *p, struct jnl_fire *done, size_t *npend)
{
    *done = p->done;
    *npend = p->npend;
}

/* Walks one segment from *off on, at most about *budget bytes; *budget is
 * what is left. Returns 1 when the segment ended, 0 when the budget did,
 * or -errno. */
static int peek_one(struct jnl_peek *p, uint64_t seg, uint64_t *off, uint64_t *budget,
                    void (*fn)(void *ctx, const struct jnl_item *it), void *ctx)
{
    char name[32];
    unsigned char raw[JF_SEG_HDR];
    struct jf_seg_hdr sh;
    struct jscan sc;
    off_t size;
    int fd, rc;
    snprintf(name, sizeof(name), "seg-%016" PRIx64 ".dat", seg);
    if ((rc = peek_open_file(p, name, &fd)) < 0)
        return rc == -ENOENT ? 1 : rc; /* a gap: as recovery, skipped */
    if ((rc = jio_pread_all(p->conf.io, fd, raw, sizeof(raw), 0)) < 0 || (rc = jf_seg_hdr_decode(raw, &sh)) < 0 ||
        (rc = p->conf.io->fsize(p->conf.io->ctx, fd, &size)) < 0) {
        p->conf.io->close(p->conf.io->ctx, fd);
        return rc == -ENODATA || rc == -EBADMSG ? 1 : rc; /* a damaged header: nothing to read in it */
    }
    if (*off < JF_SEG_HDR)
        *off = JF_SEG_HDR;
    if ((rc = jscan_init(&sc, p->conf.io, fd, &sh, (uint64_t)size, *off)) < 0) {
        p->conf.io->close(p->conf.io->ctx, fd);
        return rc;
    }
    sc.nocheck = 1; /* entries are counted, not handed out: parsed as jnl_scan does */
    for (;;) {
        struct jbatch bt;
        const char *why;
        if (sc.off >= (uint64_t)size) {
            rc = 1;
            break;
        }
        if (*budget == 0) {
            rc = 0;
            break;
        }
        rc = jscan_next(&sc, &bt, &why);
        if (rc == -ENODATA || rc == -EBADMSG) { /* a damaged tail ends the segment, as at start */
            rc = 1;
            break;
        }
        if (rc < 0)
            break;
        uint64_t pos = 0, next = bt.b.first_id;
        struct jf_entry e;
        for (uint32_t i = 0; i < bt.b.count && jbatch_entry(&bt, &pos, &next, &e) == 0; i++) {
            struct jnl_item it;
            if (e.r.rflags & JF_RF_MOVED)
                continue;
            ji_item_from_entry(&it, &e, seg, sc.off, i);
            fn(ctx, &it);
        }
        uint64_t n = jbatch_size(&bt);
        *budget = n < *budget ? *budget - n : 0;
        jscan_skip(&sc, &bt);
    }
    *off = sc.off;
    jscan_free(&sc);
    p->conf.io->close(p->conf.io->ctx, fd);
    return rc;
}

int jnl_peek_scan(struct jnl_peek *p, uint64_t *seg, uint64_t *off, uint64_t max_bytes,
                  void (*fn)(void *ctx, const struct jnl_item *it), void *ctx)
{
    if (!p->tail)
        return 1;
    if (*seg < p->oldest) {
        *seg = p->oldest;
        *off = JF_SEG_HDR;
    }
    uint64_t budget = max_bytes ? max_bytes : 1;
    while (*seg <= p->tail) {
        int rc = peek_one(p, *seg, off, &budget, fn, ctx);
        if (rc <= 0)
            return rc;
        if (*seg == p->tail) {
            (*seg)++; /* past the end: the next call finds nothing either */
            *off = JF_SEG_HDR;
            return 1;
        }
        (*seg)++;
        *off = JF_SEG_HDR;
    }
    return 1;
}
