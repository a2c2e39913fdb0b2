/* journal/replay.c: the record scanner and the ack-file reader shared by
 * start-up and darner-journal. */
#include "journal/replay.h"

#include <errno.h>
#include <stdlib.h>
#include <xxhash.h>

#define SCAN_WINDOW (1u << 20)
#define VERIFY_CHUNK (64 * 1024)

int jscan_init(struct jscan *sc, const struct jio *io, int fd, uint64_t size, uint64_t off)
{
    *sc = (struct jscan){.io = io, .fd = fd, .size = size, .off = off, .buf = malloc(SCAN_WINDOW)};
    return sc->buf ? 0 : -ENOMEM;
}

void jscan_free(struct jscan *sc)
{
    free(sc->buf);
    sc->buf = NULL;
}

/* Points *p at bytes [off, off + n) of the file, n <= SCAN_WINDOW. Returns
 * 0, -ENODATA when the file ends first, or -errno. */
static int win_get(struct jscan *sc, uint64_t off, size_t n, const unsigned char **p)
{
    if (off < sc->wstart || off + n > sc->wstart + sc->wlen) {
        size_t got = 0;
        while (got < SCAN_WINDOW) {
            ssize_t r = sc->io->pread(sc->io->ctx, sc->fd, sc->buf + got, SCAN_WINDOW - got, (off_t)(off + got));
            if (r < 0)
                return (int)r;
            if (r == 0)
                break;
            got += (size_t)r;
        }
        sc->wstart = off;
        sc->wlen = got;
        if (n > got)
            return -ENODATA;
    }
    *p = sc->buf + (off - sc->wstart);
    return 0;
}

int jscan_verify_payload(const struct jio *io, int fd, uint64_t off, const struct jf_rec *r)
{
    XXH3_state_t *st = XXH3_createState();
    char *chunk = malloc(VERIFY_CHUNK);
    int rc = 0;
    if (!st || !chunk) {
        rc = -ENOMEM;
        goto out;
    }
    XXH3_64bits_reset(st);
    for (uint64_t done = 0; done < r->len;) {
        size_t n = r->len - done < VERIFY_CHUNK ? (size_t)(r->len - done) : VERIFY_CHUNK;
        if ((rc = jio_pread_all(io, fd, chunk, n, (off_t)(off + JF_REC_HDR + done))) < 0)
            goto out;
        XXH3_64bits_update(st, chunk, n);
        done += n;
    }
    if (XXH3_64bits_digest(st) != r->payload_sum)
        rc = -EBADMSG;
out:
    free(chunk);
    XXH3_freeState(st);
    return rc;
}

int jscan_next(struct jscan *sc, struct jf_rec *r, const char **why)
{
    const unsigned char *p;
    sc->payload_bad = 0;
    int rc = win_get(sc, sc->off, JF_REC_HDR, &p);
    if (rc == -ENODATA)
        *why = "truncated record header";
    if (rc < 0)
        return rc;
    if (jf_rec_decode(p, r) < 0) {
        *why = "damaged record header";
        return -EBADMSG;
    }
    if (jst_rec_size(r->type, r->len) > sc->size - sc->off) {
        *why = "truncated record payload";
        return -ENODATA;
    }
    if (r->type != JF_REC_ITEM)
        return 0;
    if (r->len <= SCAN_WINDOW) {
        if ((rc = win_get(sc, sc->off + JF_REC_HDR, (size_t)r->len, &p)) < 0)
            return rc;
        rc = jf_payload_sum(p, (size_t)r->len) == r->payload_sum ? 0 : -EBADMSG;
    } else {
        rc = jscan_verify_payload(sc->io, sc->fd, sc->off, r);
    }
    if (rc == -EBADMSG) {
        *why = "payload checksum mismatch";
        sc->payload_bad = 1;
    }
    return rc;
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
        else if (stage == 1 && ok && a.type == JF_ACK_OUT)
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
