/* tools/darner_journal.c: `darner-journal check|dump|repair <queue folder>`.
 *
 * check and dump open the files of a queue folder (NAME, seg-*.dat, blob-*.dat,
 * acks.0/1) read-only and change nothing. They decode with journal/format.h
 * and judge what they find by the rules of recovery (journal/recover.c), but
 * read every segment, not only the last. repair opens the journal with
 * jnl_open(), which is exactly what start-up does (it cuts a damaged tail),
 * syncs what that wrote, and checks again. See docs/journal-tool.md. */
#include "journal/format.h"
#include "journal/io.h"
#include "journal/journal.h"
#include "journal/replay.h"
#include "journal/state.h"
#include "log.h"
#include "tools/jtool.h"
#include "util/errstr.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* dir/name into path (PATH_MAX bytes). Returns 0 or -ENAMETOOLONG. */
static int path_in(char *path, const char *dir, const char *name)
{
    return snprintf(path, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* Opens dir/name read-only. Returns 0 with *fd (the caller's) and its size. */
static int open_in(const struct tool *t, const char *name, int *fd, uint64_t *size)
{
    char path[PATH_MAX];
    off_t sz;
    int rc = path_in(path, t->dir, name);
    if (rc < 0)
        return rc;
    int f = t->io->open(t->io->ctx, path, O_RDONLY, 0); /* the table adds close-on-exec */
    if (f < 0)
        return f;
    if ((rc = t->io->fsize(t->io->ctx, f, &sz)) < 0) {
        t->io->close(t->io->ctx, f);
        return rc;
    }
    *fd = f;
    *size = (uint64_t)sz;
    return 0;
}

/* Makes room for one more element of size sz in *a (n used, *cap allocated;
 * the caller owns *a). Returns 0 or -ENOMEM. */
static int grow(void *a, size_t n, size_t *cap, size_t sz)
{
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 16;
    void *p = realloc(*(void **)a, c * sz);
    if (!p)
        return -ENOMEM;
    *(void **)a = p;
    *cap = c;
    return 0;
}

/* A folder's entry names, as the I/O table's listdir gives them. */
struct names {
    char **v; /* owned, each malloc'd */
    size_t n, cap;
    int (*keep)(const char *name); /* NULL: every name */
};

/* listdir callback: copies the name into the struct names arg. */
static int add_name(void *arg, const char *name)
{
    struct names *l = arg;
    if (l->keep && !l->keep(name))
        return 0;
    int rc = grow(&l->v, l->n, &l->cap, sizeof(*l->v));
    if (rc < 0)
        return rc;
    if (!(l->v[l->n] = strdup(name)))
        return -ENOMEM;
    l->n++;
    return 0;
}

static void names_free(struct names *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The names in folder dir that keep accepts (NULL: all), sorted bytewise,
 * into *l (the caller frees with names_free). Returns 0 or -errno. */
static int list_folder(const struct jio *io, const char *dir, int (*keep)(const char *), struct names *l)
{
    *l = (struct names){.keep = keep};
    int rc = io->listdir(io->ctx, dir, add_name, l);
    if (rc < 0) {
        names_free(l);
        return rc;
    }
    if (l->n)
        qsort(l->v, l->n, sizeof(*l->v), cmp_name);
    return 0;
}

static void seg_name(char out[32], uint64_t seq) { snprintf(out, 32, "seg-%016" PRIx64 ".dat", seq); }
static void blob_name(char out[32], uint64_t id) { snprintf(out, 32, "blob-%016" PRIx64 ".dat", id); }

/* Frees what the last folder's pass owned and starts a fresh one. */
static void tool_reset(struct tool *t, const char *dir)
{
    jst_free_nodes(&t->ack[0].st);
    jst_free_nodes(&t->ack[1].st);
    free(t->segs);
    free(t->missing);
    struct tool fresh = {.cmd = t->cmd,
                         .json = t->json,
                         .payload = t->payload,
                         .out = t->out,
                         .io = t->io,
                         .dir = dir,
                         .buf = t->buf,
                         .next_id = 1};
    *t = fresh;
    jst_init(&t->ack[0].st);
    jst_init(&t->ack[1].st);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Prints the queue's name and collects the segment numbers (as scan_dir()). */
static int read_folder(struct tool *t)
{
    int fd, rc;
    uint64_t size;
    ssize_t n = -1;
    if (open_in(t, "NAME", &fd, &size) == 0) {
        n = t->io->pread(t->io->ctx, fd, t->buf, CHUNK, 0);
        t->io->close(t->io->ctx, fd);
    }
    fputs(t->json ? "{\"type\":\"queue\",\"name\":\"" : "queue \"", t->out);
    esc(t, t->buf, n > 0 ? (size_t)n : 0);
    fputs(t->json ? "\",\"dir\":\"" : "\" in ", t->out);
    esc(t, t->dir, strlen(t->dir));
    fputs(t->json ? "\"}\n" : "\n", t->out);
    if (n < 0)
        report(t, 1, "NAME", 0, 0, "missing or unreadable: the server removes this folder at start");
    struct names l;
    if ((rc = list_folder(t->io, t->dir, NULL, &l)) < 0)
        return rc;
    for (size_t i = 0; i < l.n; i++) {
        uint64_t seq;
        if (!jf_parse_file_name(l.v[i], "seg-", &seq))
            continue;
        if ((rc = grow(&t->segs, t->nsegs, &t->cap_segs, sizeof(*t->segs))) < 0) {
            names_free(&l);
            return rc;
        }
        t->segs[t->nsegs++] = seq;
    }
    names_free(&l);
    if (t->nsegs)
        qsort(t->segs, t->nsegs, sizeof(*t->segs), cmp_u64);
    return 0;
}

/* Opens segment seq and decodes its header. Returns 0, -EBADMSG (damaged
 * header; *fd is still open) or -errno. The caller closes *fd if >= 0. */
static int seg_header(const struct tool *t, uint64_t seq, int *fd, uint64_t *size, struct jf_seg_hdr *h)
{
    char name[32];
    unsigned char raw[JF_SEG_HDR];
    seg_name(name, seq);
    int rc = open_in(t, name, fd, size);
    if (rc < 0)
        return rc;
    rc = jio_pread_all(t->io, *fd, raw, sizeof(raw), 0);
    return rc == -ENODATA || (rc == 0 && jf_seg_hdr_decode(raw, h) < 0) ? -EBADMSG : rc;
}

/* XXH3-64 (what jf_payload_sum() computes) of len bytes at base in fd. */
static int sum_range(struct tool *t, int fd, uint64_t base, uint64_t len, uint64_t *sum)
{
    XXH3_state_t *st = XXH3_createState();
    int rc = st ? 0 : -ENOMEM;
    if (st)
        XXH3_64bits_reset(st);
    for (uint64_t done = 0, n; rc == 0 && done < len; done += n) {
        n = len - done < CHUNK ? len - done : CHUNK;
        if ((rc = jio_pread_all(t->io, fd, t->buf, (size_t)n, (off_t)(base + done))) == 0)
            XXH3_64bits_update(st, t->buf, (size_t)n);
    }
    if (rc == 0)
        *sum = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    return rc;
}

/* Checks (and with dump lists) the blob file of record r; *ok as emit_rec(). */
static int check_blob(struct tool *t, uint64_t seq, uint64_t off, const struct jf_rec *r, int *ok)
{
    char name[32];
    int fd = -1;
    uint64_t size = 0, sum = 0;
    blob_name(name, r->id);
    int rc = open_in(t, name, &fd, &size);
    if (rc == -ENOENT) { /* normal once the item is gone; scan() decides */
        *ok = -1;
        rc = r->rflags & JF_RF_MOVED ? 0 : grow(&t->missing, t->nmissing, &t->cap_missing, sizeof(uint64_t));
        if (rc == 0 && !(r->rflags & JF_RF_MOVED))
            t->missing[t->nmissing++] = r->id;
    } else if (rc == 0) {
        rc = size == r->len ? sum_range(t, fd, 0, size, &sum) : 0;
        if (!(*ok = size == r->len && sum == r->payload_sum))
            report(t, 1, name, 0, size, "blob of item %" PRIu64 ": %s: the server cannot hand it out", r->id,
                   size == r->len ? "payload checksum mismatch" : "size differs from the record's");
    }
    if (rc == 0 && t->cmd == CMD_DUMP)
        rc = emit_rec(t, seq, off, r, *ok, fd, 0);
    if (fd >= 0)
        t->io->close(t->io->ctx, fd);
    return rc;
}

/* Reads the records of segment seq (fd, size bytes) from its header sh on,
 * with the scanner and the apply step start-up uses (jscan_next,
 * jst_apply_rec), but in any segment; last: start-up's tail. Sets *end to the
 * valid end and returns 1 if it stopped at damage, 0 at the end, or -errno. */
static int walk_records(struct tool *t, uint64_t seq, int fd, uint64_t size, const struct jf_seg_hdr *sh, int last,
                        uint64_t *end)
{
    char name[32];
    uint64_t nrec = 0, nmoved = 0;
    const char *why = NULL; /* the damage that ended the walk ("": reported already) */
    struct jst st;
    struct jscan sc;
    jst_init(&st);
    st.next_id = sh->first_id;
    st.tail_cum = sh->cum_bytes;
    seg_name(name, seq);
    int rc = jscan_init(&sc, t->io, fd, sh, size, JF_SEG_HDR);
    if (rc < 0)
        return rc;
    while (sc.off < size) {
        struct jbatch bt;
        const char *bad = NULL;
        uint64_t off = sc.off;
        rc = jscan_next(&sc, &bt, &bad);
        if (rc == -ENODATA || (rc == -EBADMSG && !sc.payload_bad)) {
            why = bad;
            break;
        }
        if (rc < 0 && rc != -EBADMSG)
            goto out;
        int ok = rc == 0;
        const char *seq_bad = NULL;
        if (jbatch_check_sequence(&bt, &st, &seq_bad) < 0 && (ok || last)) { /* as recover_tail() does */
            why = ok ? seq_bad : bad;
            break;
        }
        uint64_t pos = 0, next = bt.b.first_id;
        struct jf_entry e;
        for (uint32_t i = 0; i < bt.b.count && jbatch_entry(&bt, &pos, &next, &e) == 0; i++) {
            int eok = ok, moved = (e.r.rflags & JF_RF_MOVED) != 0;
            t->cur_size = jbatch_size(&bt);
            t->cur_idx = i;
            t->cur_payload_at = off + bt.b.hdr_len + e.payload_pos;
            rc = 0;
            if (e.r.type == JF_REC_BLOB)
                rc = check_blob(t, seq, off, &e.r, &eok);
            else if (t->cmd == CMD_DUMP)
                rc = emit_rec(t, seq, off, &e.r, eok, fd, off + bt.b.hdr_len + e.payload_pos);
            if (rc < 0)
                goto out;
            if (!seq_bad) /* a bad batch of an older segment still counts, as the server reads it */
                jst_apply_rec(&st, &e.r);
            nmoved += moved;
            nrec += !moved;
        }
        if (!ok) {
            report(t, 1, name, off, last ? size - off : jbatch_size(&bt), "%s (ids from %" PRIu64 "): %s", bad,
                   bt.b.first_id, last ? "start-up cuts the tail here" : "the server cannot hand these items out");
            if (last) {
                why = "";
                break;
            }
        }
        jscan_skip(&sc, &bt);
    }
    if (why && *why)
        report(t, 1, name, sc.off, size - sc.off, "%s: %s", why,
               last ? "start-up cuts the tail here" : "not repaired: start-up checks the last segment only");
    t->next_id = st.next_id;
    t->tail_cum = st.tail_cum;
    *end = sc.off;
    if (t->json)
        fprintf(t->out,
                "{\"type\":\"segment\",\"seg\":%" PRIu64 ",\"size\":%" PRIu64 ",\"header\":\"ok\",\"first_id\":%" PRIu64
                ",\"records\":%" PRIu64 ",\"moved\":%" PRIu64 ",\"valid_end\":%" PRIu64 "}\n",
                seq, size, sh->first_id, nrec, nmoved, sc.off);
    else
        fprintf(t->out, "  %" PRIu64 " records (+%" PRIu64 " moved copies)%s, valid up to offset %" PRIu64 "\n", nrec,
                nmoved, why ? " before the damage" : "", sc.off);
    rc = why != NULL;
out:
    jscan_free(&sc);
    return rc;
}

/* Checks segment t->segs[k]: its place in the sequence, its header, then its
 * records. *clean (in: the segment before was read whole; out: this one was)
 * guards the checks between segments. Returns 0 or -errno. */
static int walk_segment(struct tool *t, size_t k, int *clean)
{
    uint64_t seq = t->segs[k], size = 0, end = JF_SEG_HDR;
    int last = k == t->eff_last, prev_clean = *clean, fd = -1;
    char name[32], created[40];
    struct jf_seg_hdr sh;
    seg_name(name, seq);
    *clean = 0;
    if (k > 0 && seq != t->segs[k - 1] + 1)
        report(t, 1, name, 0, 0, "segments %" PRIu64 "..%" PRIu64 " are missing", t->segs[k - 1] + 1, seq - 1);
    int rc = seg_header(t, seq, &fd, &size, &sh);
    t->seg_bytes += size;
    if (rc == -EBADMSG) {
        report(t, 1, name, 0, size, "damaged segment header: %s",
               k > t->eff_last ? "start-up removes this segment"
               : last          ? "start-up starts it empty"
                               : "the server skips this segment");
        if (last) { /* the oldest and only segment left: start-up writes a fresh header */
            t->tail_seg = seq;
            t->tail_off = JF_SEG_HDR;
            t->next_id = t->oldest_first_id = 1;
            t->tail_cum = t->oldest_cum = 0;
        }
        fprintf(t->out,
                t->json ? "{\"type\":\"segment\",\"seg\":%" PRIu64 ",\"size\":%" PRIu64 ",\"header\":\"bad\"}\n"
                        : "segment %" PRIu64 " (%" PRIu64 " bytes): header damaged\n",
                seq, size);
        rc = 0;
        goto out;
    }
    if (rc < 0)
        goto out;
    if (sh.seq != seq)
        report(t, 1, name, 16, 8, "header says segment %" PRIu64, sh.seq);
    if (prev_clean && (sh.first_id != t->next_id || sh.cum_bytes != t->tail_cum))
        report(t, 1, name, 24, 16,
               "header says first id %" PRIu64 " after %" PRIu64
               " payload bytes; the segment before ends at id %" PRIu64 " after %" PRIu64,
               sh.first_id, sh.cum_bytes, t->next_id, t->tail_cum);
    if (k == 0) {
        t->oldest_first_id = sh.first_id;
        t->oldest_cum = sh.cum_bytes;
    }
    if (!t->json)
        fprintf(t->out, "segment %" PRIu64 " (%s): %" PRIu64 " bytes, first id %" PRIu64 ", created %s\n", seq, name,
                size, sh.first_id, fmt_ms(created, sh.created_ms));
    if ((rc = walk_records(t, seq, fd, size, &sh, last, &end)) < 0)
        goto out;
    *clean = rc == 0;
    rc = 0;
    if (k <= t->eff_last) {
        t->tail_seg = seq;
        t->tail_off = end;
    }
out:
    if (fd >= 0)
        t->io->close(t->io->ctx, fd);
    return rc;
}

/* Reads acks.<i> as start-up does (jst_load_acks); dump lists every record.
 * Fills t->ack[i]. Returns 0 (also when the file is absent) or -errno. */
static int ack_read(struct tool *t, int i)
{
    struct acks *a = &t->ack[i];
    char name[8];
    unsigned char raw[JF_ACK_HDR];
    struct jf_ack_hdr h;
    int fd;
    snprintf(name, sizeof(name), "acks.%d", i);
    int rc = open_in(t, name, &fd, &a->size);
    if (rc < 0)
        return rc == -ENOENT ? 0 : rc;
    a->present = 1;
    if (jio_pread_all(t->io, fd, raw, JF_ACK_HDR, 0) == 0 && jf_ack_hdr_decode(raw, &h) == 0)
        a->gen = h.generation;
    if (t->cmd == CMD_DUMP && !t->json)
        fprintf(t->out, "%s: %" PRIu64 " bytes, generation %" PRIu64 "%s\n", name, a->size, a->gen,
                a->gen ? "" : " (header missing or damaged)");
    struct dump_ctx d = {.t = t, .name = name};
    struct jack_load l = {.each = t->cmd == CMD_DUMP ? dump_ack : NULL, .ctx = &d};
    if (a->gen) { /* recover_acks() skips a file without a good header */
        rc = jst_load_acks(&a->st, t->io, fd, a->size, &l);
        a->usable = rc == 0;
        a->records = l.records;
        a->end = l.end;
        rc = rc == -EBADMSG ? 0 : rc;
    } else {
        a->end = JF_ACK_HDR;
        if (l.each)
            for (uint64_t off = JF_ACK_HDR; rc == 0 && off + JF_ACK_REC <= a->size; off += JF_ACK_REC) {
                unsigned char rec[JF_ACK_REC];
                struct jf_ack r = {0};
                if ((rc = jio_pread_all(t->io, fd, rec, sizeof(rec), (off_t)off)) == 0)
                    dump_ack(&d, off, &r, jf_ack_decode(rec, &r) == 0);
            }
    }
    t->io->close(t->io->ctx, fd);
    return rc;
}

/* Reads both ack files, picks the one start-up would (recover_acks()), and
 * reports on each. Returns 0 with *out the index chosen (-1: none), or -errno. */
static int check_acks(struct tool *t, int *out)
{
    int rc, first, chosen = -1;
    for (int i = 0; i < 2; i++)
        if ((rc = ack_read(t, i)) < 0)
            return rc;
    first = t->ack[1].gen > t->ack[0].gen;
    for (int k = 0; k < 2 && chosen < 0; k++)
        if (t->ack[k ? !first : first].usable)
            chosen = k ? !first : first;
    for (int i = 0; i < 2; i++) {
        const struct acks *a = &t->ack[i];
        char name[8];
        snprintf(name, sizeof(name), "acks.%d", i);
        if (t->json)
            fprintf(t->out,
                    "{\"type\":\"acks\",\"file\":\"%s\",\"present\":%s,\"generation\":%" PRIu64 ",\"size\":%" PRIu64
                    ",\"usable\":%s,\"used\":%s,\"records\":%" PRIu64 ",\"cursor_id\":%" PRIu64
                    ",\"cursor_seg\":%" PRIu64 ",\"cursor_off\":%" PRIu64 ",\"live\":%zu}\n",
                    name, a->present ? "true" : "false", a->gen, a->size, a->usable ? "true" : "false",
                    i == chosen ? "true" : "false", a->records, a->st.r_id, a->st.r_seg, a->st.r_off,
                    (size_t)a->st.nnodes);
        else if (!a->present)
            fprintf(t->out, "%s: absent\n", name);
        else if (!a->usable)
            fprintf(t->out, "%s: generation %" PRIu64 ", %" PRIu64 " bytes, no usable checkpoint\n", name, a->gen,
                    a->size);
        else
            fprintf(t->out,
                    "%s: generation %" PRIu64 ", %" PRIu64 " bytes, %" PRIu64 " records, cursor id %" PRIu64
                    " (segment %" PRIu64 " offset %" PRIu64 "), %zu live behind it%s\n",
                    name, a->gen, a->size, a->records, a->st.r_id, a->st.r_seg, a->st.r_off, (size_t)a->st.nnodes,
                    i == chosen ? " (in use)" : " (older, not used)");
        if (i == chosen && a->end != a->size)
            report(t, 1, name, a->end, a->size - a->end, "damaged tail: start-up cuts it");
        else if (i != chosen && a->present && chosen >= 0 && a->gen > t->ack[chosen].gen)
            report(t, 0, name, 0, a->size, "newer but unusable: start-up uses acks.%d", chosen);
    }
    if (chosen < 0)
        report(t, 1, "acks.*", 0, 0,
               "no usable ack log: start-up serves every item still on disk again and writes a fresh one");
    *out = chosen;
    return 0;
}

/* Whether id is live: from the cursor to the tail, or listed behind it. */
static int is_live(const struct tool *t, struct acks *a, uint64_t id)
{
    if (jst_find(&a->st, id))
        return 1;
    return id >= a->st.r_id && id < t->next_id;
}

/* Whether a live item's record is still at its position (as reconcile()). */
static int live_on_disk(struct tool *t, const struct jnl_item *l)
{
    char name[32];
    unsigned char raw[JF_SEG_HDR];
    struct jf_seg_hdr sh;
    struct jscan sc;
    struct jbatch bt;
    struct jf_entry e;
    const char *why;
    int fd, ok = 0;
    uint64_t size;
    seg_name(name, l->seg);
    if (l->seg < t->segs[0] || l->id >= t->next_id || open_in(t, name, &fd, &size) < 0)
        return 0;
    /* as reconcile() does: the batch decodes and its entry is the item */
    if (jio_pread_all(t->io, fd, raw, sizeof(raw), 0) == 0 && jf_seg_hdr_decode(raw, &sh) == 0 &&
        jscan_init(&sc, t->io, fd, &sh, size, l->off) == 0) {
        int rc = jscan_next(&sc, &bt, &why);
        ok = (rc == 0 || (rc == -EBADMSG && sc.payload_bad)) && jbatch_entry_at(&bt, l->idx, &e) == 0 &&
             e.r.id == l->id;
        jscan_free(&sc);
    }
    t->io->close(t->io->ctx, fd);
    return ok;
}

/* With the cursor a known: reconciles as start-up would, checks live items
 * and blob files, and prints the summary. Returns 0 or -errno. */
static int check_live(struct tool *t, struct acks *a, const char *ackfile)
{
    if (a->st.r_seg > t->tail_seg || (a->st.r_seg == t->tail_seg && a->st.r_off > t->tail_off) ||
        a->st.r_id > t->next_id) {
        report(t, 1, ackfile, 0, 0,
               "cursor (id %" PRIu64 ", segment %" PRIu64 " offset %" PRIu64
               ") is past the end of the segments (id %" PRIu64 ", segment %" PRIu64 " offset %" PRIu64
               "): start-up moves it to the end",
               a->st.r_id, a->st.r_seg, a->st.r_off, t->next_id, t->tail_seg, t->tail_off);
        a->st.r_id = t->next_id;
        a->st.r_cum = t->tail_cum;
    } else if (a->st.r_seg < t->segs[0]) {
        report(t, 0, ackfile, 0, 0, "cursor is in segment %" PRIu64 ", which is gone: start-up moves it on",
               a->st.r_seg);
        a->st.r_id = t->oldest_first_id;
        a->st.r_cum = t->oldest_cum;
    }
    if (a->st.r_id == 0) /* reconcile() needs the oldest header for the cursor */
        report(t, 1, ackfile, 0, 0,
               "the cursor must start at segment %" PRIu64 ", whose header is damaged: start-up "
               "cannot open this journal",
               t->segs[0]);
    uint64_t items = t->next_id > a->st.r_id ? t->next_id - a->st.r_id : 0;
    uint64_t bytes = t->tail_cum > a->st.r_cum ? t->tail_cum - a->st.r_cum : 0;
    struct list *pos, *tmp;
    struct list *lists[2] = {&a->st.returned, &a->st.open};
    for (int k = 0; k < 2; k++)
        list_for_each_safe(pos, tmp, lists[k]) {
            struct jnl_node *n = list_entry(pos, struct jnl_node, link);
            if (live_on_disk(t, &n->item)) {
                bytes += n->item.len;
                continue;
            }
            report(t, 0, ackfile, 0, 0, "live item %" PRIu64 " is no longer on disk: start-up drops it", n->item.id);
            /* as reconcile() does: dropped in memory only, as a CONFIRM would */
            jst_apply_ack(&a->st, &(struct jf_ack){.type = JF_ACK_CONFIRM, .id = n->item.id}, n, NULL);
        }
    char name[32];
    for (size_t i = 0; i < t->nmissing; i++)
        if (is_live(t, a, t->missing[i])) {
            blob_name(name, t->missing[i]);
            report(t, 1, name, 0, 0, "missing: item %" PRIu64 " is live, the server cannot hand it out", t->missing[i]);
        }
    struct names l;
    int rc = list_folder(t->io, t->dir, NULL, &l);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < l.n; i++) {
        uint64_t id, size = 0;
        char path[PATH_MAX];
        if (!jf_parse_file_name(l.v[i], "blob-", &id))
            continue;
        if (path_in(path, t->dir, l.v[i]) < 0 || t->io->size(t->io->ctx, path, &size) < 0)
            size = 0;
        t->blob_bytes += size;
        if (!is_live(t, a, id))
            report(t, 0, l.v[i], 0, size, "its item is gone: start-up removes it");
    }
    names_free(&l);
    uint64_t disk = t->seg_bytes + t->blob_bytes + t->ack[0].size + t->ack[1].size;
    fprintf(t->out,
            t->json ? "{\"type\":\"summary\",\"items\":%" PRIu64 ",\"from_cursor\":%" PRIu64 ",\"behind_cursor\":%zu"
                      ",\"bytes\":%" PRIu64 ",\"next_id\":%" PRIu64 ",\"segments\":%zu,\"disk_bytes\":%" PRIu64
                      ",\"damages\":%" PRIu64 ",\"notes\":%" PRIu64 ",\"clean\":%s}\n"
                    : "summary: %" PRIu64 " items live (%" PRIu64
                      " from the cursor to the tail, %zu behind it), %" PRIu64 " payload bytes; next id %" PRIu64
                      "; segments: %zu, %" PRIu64 " bytes on disk; %" PRIu64 " damage, %" PRIu64 " notes: %s\n",
            items + (size_t)a->st.nnodes, items, (size_t)a->st.nnodes, bytes, t->next_id, t->nsegs, disk, t->damages,
            t->notes, t->json ? (t->damages ? "false" : "true") : (t->damages ? "DAMAGED" : "clean"));
    return 0;
}

/* One pass of check (or dump) over a queue folder. Returns 0 (findings are
 * counted in t->damages) or -errno when the folder cannot be read. */
static int scan(struct tool *t, const char *dir)
{
    tool_reset(t, dir);
    int rc = read_folder(t), clean = 0, chosen;
    if (rc < 0)
        return rc;
    if (t->nsegs == 0) {
        report(t, 1, "seg-*.dat", 0, 0, "no segments: the server removes this folder at start");
        return 0;
    }
    /* Start-up removes trailing segments whose header is damaged. */
    for (t->eff_last = t->nsegs - 1; t->eff_last > 0; t->eff_last--) {
        int fd = -1;
        uint64_t size;
        struct jf_seg_hdr sh;
        rc = seg_header(t, t->segs[t->eff_last], &fd, &size, &sh);
        if (fd >= 0)
            t->io->close(t->io->ctx, fd);
        if (rc != -EBADMSG)
            break;
    }
    for (size_t k = 0; k < t->nsegs; k++)
        if ((rc = walk_segment(t, k, &clean)) < 0)
            return rc;
    if ((rc = check_acks(t, &chosen)) < 0)
        return rc;
    struct acks none = {0};
    jst_init(&none.st);
    none.st.r_seg = t->segs[0];
    none.st.r_off = JF_SEG_HDR;
    none.st.r_id = t->oldest_first_id;
    none.st.r_cum = t->oldest_cum;
    return check_live(t, chosen >= 0 ? &t->ack[chosen] : &none, chosen == 1 ? "acks.1" : "acks.0");
}

/* Opens the journal as start-up does (that is the repair), makes what it wrote
 * durable, and closes it. Returns 0 or -errno. */
static int reopen(const char *dir)
{
    const struct jio *io = jio_posix();
    struct log lg = {.level = LOG_INFO, .out = stderr};
    struct jnl_conf conf = {.io = io, .log = &lg, .segment_size = 64ull << 20, .ack_compact_bytes = 1u << 20};
    struct jnl *j = NULL;
    int fds[32], n, rc = jnl_open(&j, &conf, dir, 0);
    if (rc < 0)
        return rc;
    if ((n = jnl_sync_fds(j, fds, 32)) < 0)
        rc = n;
    for (int i = 0; i < n; i++) {
        int s = io->fsync(io->ctx, fds[i]);
        if (s < 0 && rc == 0)
            rc = s;
        io->close(io->ctx, fds[i]);
    }
    jnl_close(j);
    /* The segments it removed: -EOPNOTSUPP where the platform has no folder
     * fsync (Windows), whose removals need none. */
    int dfd = io->open_dir(io->ctx, dir);
    if (dfd >= 0) {
        int s = io->fsync(io->ctx, dfd);
        if (s < 0 && rc == 0)
            rc = s;
        io->close(io->ctx, dfd);
    } else if (dfd != -EOPNOTSUPP && rc == 0) {
        rc = dfd;
    }
    return rc;
}

/* Runs the command on one queue folder. Returns its exit code. */
static int run_one(struct tool *t, const char *dir)
{
    const char *phase = t->json ? "{\"type\":\"repair\",\"phase\":\"%s\"}\n" : "== %s ==\n";
    if (t->cmd == CMD_REPAIR)
        fprintf(t->out, phase, "before repair");
    int rc = scan(t, dir);
    if (rc == 0 && t->cmd == CMD_REPAIR) {
        fflush(t->out);
        if ((rc = reopen(dir)) == 0) {
            fprintf(t->out, phase, "after repair");
            rc = scan(t, dir);
        }
    }
    fflush(t->out);
    if (rc < 0) {
        fprintf(stderr, "darner-journal: %s: %s\n", dir, errstr(rc));
        return EXIT_ERROR;
    }
    return t->damages ? EXIT_DAMAGE : EXIT_CLEAN;
}

/* Whether name is a queue's folder, q-<hex>. */
static int is_queue_dir(const char *name)
{
    uint64_t id;
    char rest;
    return sscanf(name, "q-%16" SCNx64 "%c", &id, &rest) == 1;
}

/* Runs the command on every q-* folder of a data folder, in name order; the
 * worst exit code wins. */
static int run_all(struct tool *t, const char *data)
{
    struct names l;
    int rc = list_folder(t->io, data, is_queue_dir, &l), worst = EXIT_CLEAN;
    if (rc < 0) {
        fprintf(stderr, "darner-journal: %s: %s\n", data, errstr(rc));
        return EXIT_ERROR;
    }
    for (size_t i = 0; i < l.n; i++) {
        char path[PATH_MAX];
        rc = path_in(path, data, l.v[i]) == 0 ? run_one(t, path) : EXIT_ERROR;
        worst = rc > worst ? rc : worst;
    }
    names_free(&l);
    return worst;
}

static int usage(FILE *f, int code)
{
    fputs("usage: darner-journal check|dump|repair [--json] [--payload] <queue folder>\n"
          "       darner-journal check|dump|repair [--json] [--payload] --all <data folder>\n"
          "  check   read-only: report segments, ack files and every damage found\n"
          "  dump    read-only: also list every record and every ack record\n"
          "  repair  open the journal as the server's start-up does (it cuts a damaged\n"
          "          tail), then check again; never while a server uses the folder\n"
          "  --json  one JSON object per line;  --payload  dump whole payloads\n"
          "exit: 0 clean, 1 damage found (after repair: damage left), 2 usage or I/O error\n",
          f);
    return code;
}

int main(int argc, char **argv)
{
    static const char *const cmds[] = {"check", "dump", "repair"};
    struct tool t = {.out = stdout, .io = jio_posix()};
    jst_init(&t.ack[0].st);
    jst_init(&t.ack[1].st);
    const char *folder = NULL;
    int all = 0, cmd = -1, rc;
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
        return usage(stdout, EXIT_CLEAN);
    for (int i = 0; i < 3 && argc > 1; i++)
        if (strcmp(argv[1], cmds[i]) == 0)
            cmd = i;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            t.json = 1;
        else if (strcmp(argv[i], "--payload") == 0)
            t.payload = 1;
        else if (strcmp(argv[i], "--all") == 0)
            all = 1;
        else if (argv[i][0] == '-' || folder)
            return usage(stderr, EXIT_ERROR);
        else
            folder = argv[i];
    }
    if (cmd < 0 || !folder)
        return usage(stderr, EXIT_ERROR);
    t.cmd = (enum cmd)cmd;
    if (!(t.buf = malloc(CHUNK)))
        return EXIT_ERROR;
    rc = all ? run_all(&t, folder) : run_one(&t, folder);
    tool_reset(&t, NULL);
    free(t.buf);
    return rc;
}
