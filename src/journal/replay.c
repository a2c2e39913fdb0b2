/* journal/replay.c: the record scanner and the ack-file reader shared by
 * start-up and darner-journal. */
#include "journal/replay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define SCAN_WINDOW (1u << 20)

int jbatch_parse(const unsigned char *p, uint64_t n, const struct jf_seg_hdr *sh, struct jbatch *bt, uint64_t *need,
                 const char **why, int check)
{
    bt->version = sh->version;
    bt->p = p;
    bt->b = (struct jf_batch){0};
    if (sh->version == 1) {
        if (n < JF_REC_HDR) {
            *need = JF_REC_HDR;
            return -EAGAIN;
        }
        if (jf_rec_decode(p, &bt->v1) < 0) {
            *why = "damaged record header";
            return -EBADMSG;
        }
        uint64_t body = bt->v1.type == JF_REC_ITEM ? bt->v1.len : 0;
        bt->b = (struct jf_batch){.count = 1, .first_id = bt->v1.id, .hdr_len = JF_REC_HDR, .elen = body};
        if (n - JF_REC_HDR < body) {
            *need = JF_REC_HDR + body;
            return -EAGAIN;
        }
        if (check && bt->v1.type == JF_REC_ITEM && jf_payload_sum(p + JF_REC_HDR, (size_t)body) != bt->v1.payload_sum) {
            *why = "payload checksum mismatch";
            return -EBADMSG;
        }
        return 0;
    }
    int rc = jf_batch_decode(p, (size_t)(n < SIZE_MAX ? n : SIZE_MAX), sh, &bt->b);
    if (rc == -ENODATA) {
        *need = JF_BATCH_HDR_MAX;
        return -EAGAIN;
    }
    if (rc < 0) {
        *why = "damaged batch header";
        return rc;
    }
    if (n < jf_batch_size(&bt->b)) {
        *need = jf_batch_size(&bt->b);
        return -EAGAIN;
    }
    if (check && jf_batch_check(p, &bt->b) < 0) {
        *why = "batch checksum mismatch";
        return -EBADMSG;
    }
    return 0;
}

int jbatch_entry(const struct jbatch *bt, uint64_t *pos, uint64_t *next_id, struct jf_entry *e)
{
    if (bt->version == 1) {
        if (*pos != 0)
            return -EBADMSG;
        e->r = bt->v1;
        e->payload_pos = 0;
        e->start = 0;
        e->origin = NULL;
        e->origin_len = 0;
        *pos = 1;
        if (!(e->r.rflags & JF_RF_MOVED))
            *next_id = e->r.id + 1;
        return 0;
    }
    return jf_entry_next(bt->p + bt->b.hdr_len, &bt->b, pos, next_id, e);
}

int jbatch_entry_at(const struct jbatch *bt, uint32_t idx, struct jf_entry *e)
{
    uint64_t pos = 0, next = bt->b.first_id;
    if (idx >= bt->b.count)
        return -EBADMSG;
    for (uint32_t i = 0; i <= idx; i++)
        if (jbatch_entry(bt, &pos, &next, e) < 0)
            return -EBADMSG;
    return 0;
}

int jbatch_check_sequence(const struct jbatch *bt, const struct jst *s, const char **why)
{
    uint64_t pos = 0, next = bt->b.first_id, want = s->next_id;
    struct jf_entry e;
    for (uint32_t i = 0; i < bt->b.count; i++) {
        if (jbatch_entry(bt, &pos, &next, &e) < 0) {
            *why = "damaged batch entry";
            return -EBADMSG;
        }
        if (e.r.rflags & JF_RF_MOVED ? e.r.id >= want : e.r.id != want) {
            *why = "record out of sequence";
            return -EBADMSG;
        }
        want += !(e.r.rflags & JF_RF_MOVED);
    }
    if (bt->version == 2 && pos != bt->b.elen) {
        *why = "damaged batch entry";
        return -EBADMSG;
    }
    return 0;
}

int jscan_init(struct jscan *sc, const struct jio *io, int fd, const struct jf_seg_hdr *sh, uint64_t size, uint64_t off)
{
    *sc = (struct jscan){.io = io,
                         .fd = fd,
                         .sh = *sh,
                         .size = size,
                         .off = off,
                         .buf = malloc(SCAN_WINDOW),
                         .cap = SCAN_WINDOW};
    return sc->buf ? 0 : -ENOMEM;
}

void jscan_free(struct jscan *sc)
{
    free(sc->buf);
    sc->buf = NULL;
}

/* Makes bytes [off, off + n) of the file (n <= sc->cap) the window's
 * start or inside it. Returns the bytes available from off (< n at the end
 * of the file), or -errno. */
static int64_t win_get(struct jscan *sc, uint64_t off, size_t n, const unsigned char **p)
{
    if (off < sc->wstart || off + n > sc->wstart + sc->wlen) {
        size_t got = 0;
        while (got < sc->cap) {
            ssize_t r = sc->io->pread(sc->io->ctx, sc->fd, sc->buf + got, sc->cap - got, (off_t)(off + got));
            if (r < 0)
                return r;
            if (r == 0)
                break;
            got += (size_t)r;
        }
        sc->wstart = off;
        sc->wlen = got;
    }
    *p = sc->buf + (off - sc->wstart);
    return (int64_t)(sc->wstart + sc->wlen - off);
}

int jscan_next(struct jscan *sc, struct jbatch *bt, const char **why)
{
    uint64_t need = JF_BATCH_HDR_MAX > JF_REC_HDR ? JF_BATCH_HDR_MAX : JF_REC_HDR;
    sc->payload_bad = 0;
    for (;;) {
        uint64_t left = sc->size - sc->off;
        if (need > left)
            need = left;
        if (need > sc->cap) {
            unsigned char *nb = realloc(sc->buf, (size_t)need);
            if (!nb)
                return -ENOMEM;
            sc->buf = nb;
            sc->cap = (size_t)need;
            sc->wlen = 0;
        }
        const unsigned char *p;
        int64_t have = win_get(sc, sc->off, (size_t)need, &p);
        if (have < 0)
            return (int)have;
        uint64_t more;
        int rc = jbatch_parse(p, (uint64_t)have, &sc->sh, bt, &more, why, !sc->nocheck);
        if (rc == -EAGAIN) {
            if (more > left || (uint64_t)have >= left) {
                if (sc->sh.version == 1)
                    *why = (uint64_t)have >= JF_REC_HDR ? "truncated record payload" : "truncated record header";
                else
                    *why = "truncated batch";
                return -ENODATA;
            }
            need = more > (uint64_t)have ? more : (uint64_t)have + 1;
            continue;
        }
        if (rc == -EBADMSG && bt->b.hdr_len) /* whole, and only its checksum fails */
            sc->payload_bad = strcmp(*why, "payload checksum mismatch") == 0 ||
                              strcmp(*why, "batch checksum mismatch") == 0;
        return rc;
    }
}

/* Reads the ack record at off. Returns 1 if it decoded, 0 if not, or -errno. */
static int read_ack(const struct jio *io, int fd, uint64_t off, struct jf_ack *a)
{
    unsigned char raw[JF_ACK_REC];
    int rc = jio_pread_all(io, fd, raw, sizeof(raw), (off_t)off);
    if (rc < 0)
        return rc == -ENODATA ? 0 : rc;
    return jf_ack_decode(raw, a) == 0;
}

/* The types a checkpoint holds after its CKPT (its `len` of them): OUT
 * records, and since version 3 the state of transfers and of a delay
 * bucket's firing. */
static int ckpt_type(unsigned t)
{
    return t == JF_ACK_OUT || t == JF_ACK_XFER || t == JF_ACK_FIRED || t == JF_ACK_FIRING;
}

int jst_load_acks(struct jst *s, const struct jio *io, int fd, uint64_t size, struct jack_load *l)
{
    uint64_t off = JF_ACK_HDR, outs = 0;
    int stage = 0; /* 0: the checkpoint is next, 1: its OUT records, 2: the records after them, 3: past the end */
    int usable = 0, rc;
    l->end = JF_ACK_HDR;
    l->records = 0;
    for (; off + JF_ACK_REC <= size && (stage < 3 || l->each); off += JF_ACK_REC) {
        struct jf_ack a = {0};
        int ok = read_ack(io, fd, off, &a);
        if (ok < 0)
            return ok;
        if (l->each)
            l->each(l->ctx, off, &a, ok);
        if (stage >= 3)
            continue;
        if (stage == 0 && ok && a.type == JF_ACK_CKPT)
            stage = (outs = a.len) ? 1 : 2;
        else if (stage == 1 && ok && ckpt_type(a.type))
            stage = --outs ? 1 : 2;
        else if (stage == 2 && ok && a.type != JF_ACK_CKPT && a.type != JF_ACK_OUT)
            ;
        else {
            stage = stage < 2 ? 4 : 3; /* 4: no usable checkpoint */
            continue;
        }
        if ((rc = jst_apply_ack(s, &a, NULL, NULL)) < 0)
            return rc;
        l->records++;
        l->end = off + JF_ACK_REC;
        usable = stage == 2;
    }
    if (!usable || stage == 1 || stage == 4) {
        jst_free_nodes(s);
        return -EBADMSG;
    }
    return 0;
}
