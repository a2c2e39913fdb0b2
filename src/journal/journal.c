/* journal/journal.c: one queue's segmented journal: append, cursor, ack log,
 * recovery and reclaiming of segments. */
#include "journal/journal.h"

#include "journal/format.h"
#include "util/buf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#define INLINE_WRITE_MAX (64 * 1024) /* payloads up to this go out in one write */
#define VERIFY_CHUNK (64 * 1024)

struct jnl {
    struct jnl_conf conf;
    char *dir;
    int dir_fd; /* for syncing new directory entries; -1 until needed */
    int dir_dirty;
    int dirty;

    /* segments [oldest_seg, tail_seg] exist; appends go to tail_fd at tail_off */
    uint64_t oldest_seg, tail_seg, tail_off;
    int tail_fd;
    uint64_t next_id, tail_cum;
    uint64_t disk_bytes; /* sum of segment file sizes */
    int *pending_fds;    /* fds the journal is done with that still need a sync */
    size_t npending, cappending;
    struct buf wbuf; /* scratch for one record */

    /* the read cursor: next never-handed-out record */
    uint64_t r_seg, r_off, r_id, r_cum;
    int r_fd;
    uint64_t r_fd_seg;

    /* live items behind the cursor */
    struct list returned; /* given back; sorted by id */
    struct list open;     /* held open */
    uint64_t nnodes, nopen, node_bytes;

    /* the ack log: acks.<ack_idx> */
    int ack_fd, ack_idx;
    uint64_t ack_off, ack_gen;
    uint64_t ack_ckpt_epoch; /* sync epoch that makes its checkpoint durable */
};

static void path_of(const struct jnl *j, char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", j->dir, name);
}

static void seg_path(const struct jnl *j, uint64_t seq, char *out, size_t cap)
{
    snprintf(out, cap, "%s/seg-%016" PRIx64 ".dat", j->dir, seq);
}

static uint64_t rec_size(uint64_t len) { return JF_REC_HDR + len; }

static void close_fd(const struct jnl *j, int *fd)
{
    if (*fd >= 0)
        j->conf.io->close(j->conf.io->ctx, *fd);
    *fd = -1;
}

/* Keeps an fd the journal no longer needs until the next sync takes it. */
static void retire_fd(struct jnl *j, int *fd)
{
    if (*fd < 0)
        return;
    if (j->conf.sync_never) {
        close_fd(j, fd);
        return;
    }
    if (j->npending == j->cappending) {
        size_t cap = j->cappending ? j->cappending * 2 : 4;
        int *p = realloc(j->pending_fds, cap * sizeof(*p));
        if (!p) {
            /* Cannot keep it for the sync job: sync it here, rarely. */
            j->conf.io->fsync(j->conf.io->ctx, *fd);
            close_fd(j, fd);
            return;
        }
        j->pending_fds = p;
        j->cappending = cap;
    }
    j->pending_fds[j->npending++] = *fd;
    *fd = -1;
}

/* ---- the ack log ---- */

static int ack_put(struct jnl *j, int fd, uint64_t *off, const struct jf_ack *a)
{
    unsigned char rec[JF_ACK_REC];
    jf_ack_encode(rec, a);
    int rc = jio_pwrite_all(j->conf.io, fd, rec, sizeof(rec), (off_t)*off);
    if (rc < 0)
        return rc;
    *off += JF_ACK_REC;
    return 0;
}

/* Appends one record to the current ack log. */
static int ack_write(struct jnl *j, const struct jf_ack *a)
{
    int rc = ack_put(j, j->ack_fd, &j->ack_off, a);
    if (rc == 0)
        j->dirty = 1;
    return rc;
}

static void node_to_ack(const struct jnl_node *n, struct jf_ack *a)
{
    *a = (struct jf_ack){.type = JF_ACK_OUT,
                         .id = n->item.id,
                         .seg = n->item.seg,
                         .off = n->item.off,
                         .len = n->item.len};
}

/* Writes a whole ack file (header, checkpoint, live items) to fd; returns the
 * length written in *len. */
static int ack_write_ckpt(struct jnl *j, int fd, uint64_t gen, uint64_t *len)
{
    unsigned char hdr[JF_ACK_HDR];
    jf_ack_hdr_encode(hdr, &(struct jf_ack_hdr){.version = JF_VERSION, .generation = gen});
    int rc = jio_pwrite_all(j->conf.io, fd, hdr, sizeof(hdr), 0);
    if (rc < 0)
        return rc;
    uint64_t off = JF_ACK_HDR;
    struct jf_ack a = {.type = JF_ACK_CKPT,
                       .id = j->r_id,
                       .seg = j->r_seg,
                       .off = j->r_off,
                       .len = j->nnodes,
                       .cum = j->r_cum};
    if ((rc = ack_put(j, fd, &off, &a)) < 0)
        return rc;
    struct list *lists[2] = {&j->returned, &j->open};
    for (int i = 0; i < 2; i++) {
        struct list *pos, *tmp;
        list_for_each_safe(pos, tmp, lists[i])
        {
            node_to_ack(list_entry(pos, struct jnl_node, link), &a);
            if ((rc = ack_put(j, fd, &off, &a)) < 0)
                return rc;
        }
    }
    if ((rc = j->conf.io->ftruncate(j->conf.io->ctx, fd, (off_t)off)) < 0)
        return rc;
    *len = off;
    return 0;
}

/* Starts a new ack file (the other of the two) holding the current state. */
static int ack_rewrite(struct jnl *j, uint64_t epoch_next)
{
    char path[PATH_MAX], name[16];
    int idx = j->ack_fd >= 0 ? 1 - j->ack_idx : 0;
    snprintf(name, sizeof(name), "acks.%d", idx & 1);
    path_of(j, path, sizeof(path), name);
    int fd = j->conf.io->open(j->conf.io->ctx, path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return fd;
    uint64_t len;
    int rc = ack_write_ckpt(j, fd, j->ack_gen + 1, &len);
    if (rc < 0) {
        /* A header of a newer generation must not stand in front of stale
         * records: empty the file, so recovery ignores it. */
        j->conf.io->ftruncate(j->conf.io->ctx, fd, 0);
        j->conf.io->close(j->conf.io->ctx, fd);
        return rc;
    }
    retire_fd(j, &j->ack_fd);
    j->ack_fd = fd;
    j->ack_idx = idx;
    j->ack_off = len;
    j->ack_gen++;
    j->ack_ckpt_epoch = epoch_next;
    j->dirty = 1;
    j->dir_dirty = 1;
    return 0;
}

/* ---- live items ---- */

static void returned_insert(struct jnl *j, struct jnl_node *n)
{
    struct list *pos = j->returned.next;
    while (pos != &j->returned && list_entry(pos, struct jnl_node, link)->item.id < n->item.id)
        pos = pos->next;
    list_insert_before(pos, &n->link);
}

static struct jnl_node *node_new(struct jnl *j, const struct jnl_item *it)
{
    struct jnl_node *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->item = *it;
    list_init(&n->link);
    j->nnodes++;
    j->node_bytes += it->len;
    return n;
}

static void node_free(struct jnl *j, struct jnl_node *n)
{
    list_remove(&n->link);
    if (n->owner)
        j->nopen--;
    j->nnodes--;
    j->node_bytes -= n->item.len;
    free(n);
}

static void nodes_free_all(struct jnl *j)
{
    struct list *lists[2] = {&j->returned, &j->open};
    for (int i = 0; i < 2; i++) {
        struct list *pos, *tmp;
        list_for_each_safe(pos, tmp, lists[i]) node_free(j, list_entry(pos, struct jnl_node, link));
    }
}

static struct jnl_node *node_find(struct jnl *j, uint64_t id)
{
    struct list *lists[2] = {&j->returned, &j->open};
    for (int i = 0; i < 2; i++) {
        struct list *pos, *tmp;
        list_for_each_safe(pos, tmp, lists[i])
        {
            struct jnl_node *n = list_entry(pos, struct jnl_node, link);
            if (n->item.id == id)
                return n;
        }
    }
    return NULL;
}

/* ---- segments ---- */

static int seg_open(struct jnl *j, uint64_t seq, int flags)
{
    char path[PATH_MAX];
    seg_path(j, seq, path, sizeof(path));
    return j->conf.io->open(j->conf.io->ctx, path, flags, 0644);
}

static int seg_read_hdr(struct jnl *j, int fd, struct jf_seg_hdr *h)
{
    unsigned char raw[JF_SEG_HDR];
    int rc = jio_pread_all(j->conf.io, fd, raw, sizeof(raw), 0);
    if (rc < 0)
        return rc == -ENODATA ? -EBADMSG : rc;
    return jf_seg_hdr_decode(raw, h);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Writes a fresh segment header into fd and cuts the file after it. */
static int seg_init(struct jnl *j, int fd, uint64_t seq)
{
    unsigned char raw[JF_SEG_HDR];
    jf_seg_hdr_encode(raw, &(struct jf_seg_hdr){.version = JF_VERSION,
                                                 .seq = seq,
                                                 .first_id = j->next_id,
                                                 .cum_bytes = j->tail_cum,
                                                 .created_ms = now_ms()});
    int rc = jio_pwrite_all(j->conf.io, fd, raw, sizeof(raw), 0);
    if (rc == 0)
        rc = j->conf.io->ftruncate(j->conf.io->ctx, fd, JF_SEG_HDR);
    return rc;
}

/* Starts segment tail_seg + 1 (or 1 for a new journal). */
static int seg_roll(struct jnl *j)
{
    uint64_t seq = j->tail_fd >= 0 ? j->tail_seg + 1 : j->tail_seg;
    int fd = seg_open(j, seq, O_RDWR | O_CREAT);
    if (fd < 0)
        return fd;
    int rc = seg_init(j, fd, seq);
    if (rc < 0) {
        char path[PATH_MAX];
        j->conf.io->close(j->conf.io->ctx, fd);
        seg_path(j, seq, path, sizeof(path));
        j->conf.io->unlink(j->conf.io->ctx, path);
        return rc;
    }
    retire_fd(j, &j->tail_fd);
    j->tail_fd = fd;
    j->tail_seg = seq;
    j->tail_off = JF_SEG_HDR;
    j->disk_bytes += JF_SEG_HDR;
    j->dirty = 1;
    j->dir_dirty = 1;
    return 0;
}

/* An fd reading segment seq: one the journal keeps (*temp = 0) or a new one
 * the caller closes (*temp = 1). */
static int seg_fd(struct jnl *j, uint64_t seq, int *fd, int *temp)
{
    *temp = 0;
    if (seq == j->tail_seg && j->tail_fd >= 0) {
        *fd = j->tail_fd;
        return 0;
    }
    if (seq == j->r_fd_seg && j->r_fd >= 0) {
        *fd = j->r_fd;
        return 0;
    }
    int f = seg_open(j, seq, O_RDONLY);
    if (f < 0)
        return f;
    *fd = f;
    *temp = 1;
    return 0;
}

/* Reads a record header at (seq, off). Returns 0, -ENODATA at the segment's
 * end, -EBADMSG when damaged, or -errno. */
static int rec_read_hdr(struct jnl *j, int fd, uint64_t off, struct jf_rec *r)
{
    unsigned char raw[JF_REC_HDR];
    int rc = jio_pread_all(j->conf.io, fd, raw, sizeof(raw), (off_t)off);
    if (rc < 0)
        return rc;
    return jf_rec_decode(raw, r);
}

/* Checks the payload of the record whose header is r, at off in fd. */
static int rec_verify_payload(struct jnl *j, int fd, uint64_t off, const struct jf_rec *r)
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
        if ((rc = jio_pread_all(j->conf.io, fd, chunk, n, (off_t)(off + JF_REC_HDR + done))) < 0)
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

static void item_from_rec(struct jnl_item *it, const struct jf_rec *r, uint64_t seg, uint64_t off)
{
    *it = (struct jnl_item){.id = r->id,
                            .seg = seg,
                            .off = off,
                            .len = r->len,
                            .add_ms = r->add_ms,
                            .expire_ms = r->expire_ms,
                            .payload_sum = r->payload_sum,
                            .flags = r->flags};
}

/* ---- recovery ---- */

/* Finds the segments in dir; removes leftover temporary files. */
static int scan_dir(struct jnl *j, uint64_t *min, uint64_t *max)
{
    DIR *d = opendir(j->dir);
    if (!d)
        return -errno;
    struct dirent *e;
    *min = UINT64_MAX;
    *max = 0;
    while ((e = readdir(d)) != NULL) {
        uint64_t seq;
        char tail[8];
        if (sscanf(e->d_name, "seg-%16" SCNx64 ".%3s", &seq, tail) == 2 && strcmp(tail, "dat") == 0) {
            struct stat st;
            if (fstatat(dirfd(d), e->d_name, &st, 0) == 0)
                j->disk_bytes += (uint64_t)st.st_size;
            if (seq < *min)
                *min = seq;
            if (seq > *max)
                *max = seq;
        } else if (strstr(e->d_name, ".tmp") != NULL) {
            char path[PATH_MAX];
            path_of(j, path, sizeof(path), e->d_name);
            j->conf.io->unlink(j->conf.io->ctx, path);
        }
    }
    closedir(d);
    return 0;
}

/* Finds the valid end of the tail segment, cutting off a damaged tail. */
static int recover_tail(struct jnl *j)
{
    for (;;) {
        int fd = seg_open(j, j->tail_seg, O_RDWR);
        if (fd < 0)
            return fd;
        struct jf_seg_hdr sh;
        int rc = seg_read_hdr(j, fd, &sh);
        if (rc == -EBADMSG && j->tail_seg > j->oldest_seg) {
            /* A segment whose header never made it: it holds nothing. */
            char path[PATH_MAX];
            off_t size = 0;
            j->conf.io->fsize(j->conf.io->ctx, fd, &size);
            j->conf.io->close(j->conf.io->ctx, fd);
            seg_path(j, j->tail_seg, path, sizeof(path));
            log_warn(j->conf.log, "journal %s: segment %" PRIu64 " has a damaged header: removed it (%lld bytes)",
                     j->dir, j->tail_seg, (long long)size);
            j->conf.io->unlink(j->conf.io->ctx, path);
            j->disk_bytes -= (uint64_t)size < j->disk_bytes ? (uint64_t)size : j->disk_bytes;
            j->tail_seg--;
            continue;
        }
        if (rc == -EBADMSG) {
            /* The only segment: start it over with what the ack log knows. */
            log_warn(j->conf.log, "journal %s: segment %" PRIu64 " has a damaged header: starting it empty",
                     j->dir, j->tail_seg);
            j->tail_fd = fd;
            j->next_id = j->next_id ? j->next_id : 1;
            if ((rc = seg_init(j, fd, j->tail_seg)) < 0)
                return rc;
            j->tail_off = JF_SEG_HDR;
            return 0;
        }
        if (rc < 0) {
            j->conf.io->close(j->conf.io->ctx, fd);
            return rc;
        }
        j->tail_fd = fd;
        j->next_id = sh.first_id;
        j->tail_cum = sh.cum_bytes;
        off_t size;
        if ((rc = j->conf.io->fsize(j->conf.io->ctx, fd, &size)) < 0)
            return rc;
        uint64_t off = JF_SEG_HDR;
        const char *why = NULL;
        while (off < (uint64_t)size) {
            struct jf_rec r;
            rc = rec_read_hdr(j, fd, off, &r);
            if (rc == -ENODATA) {
                why = "truncated record header";
                break;
            }
            if (rc == -EBADMSG) {
                why = "damaged record header";
                break;
            }
            if (rc < 0)
                return rc;
            if (r.id != j->next_id) {
                why = "record out of sequence";
                break;
            }
            if (off + rec_size(r.len) > (uint64_t)size) {
                why = "truncated record payload";
                break;
            }
            rc = rec_verify_payload(j, fd, off, &r);
            if (rc == -EBADMSG) {
                why = "payload checksum mismatch";
                break;
            }
            if (rc < 0)
                return rc;
            off += rec_size(r.len);
            j->next_id++;
            j->tail_cum += r.len;
        }
        if (why) {
            log_warn(j->conf.log,
                     "journal %s: segment %" PRIu64 ": %s at offset %" PRIu64 ": cut off %" PRIu64
                     " bytes of damaged tail",
                     j->dir, j->tail_seg, why, off, (uint64_t)size - off);
            if ((rc = j->conf.io->ftruncate(j->conf.io->ctx, fd, (off_t)off)) < 0)
                return rc;
            j->disk_bytes -= (uint64_t)size - off;
            j->dirty = 1;
        }
        j->tail_off = off;
        return 0;
    }
}

/* Applies one ack record (after the checkpoint) to the recovered state. */
static int ack_apply(struct jnl *j, const struct jf_ack *a)
{
    struct jnl_node *n;
    switch (a->type) {
    case JF_ACK_OPEN:
    case JF_ACK_OUT:
        n = node_new(j, &(struct jnl_item){.id = a->id, .seg = a->seg, .off = a->off, .len = a->len});
        if (!n)
            return -ENOMEM;
        returned_insert(j, n);
        if (a->type == JF_ACK_OUT)
            return 0;
        /* OPEN moves the cursor like TAKE */
        __attribute__((fallthrough));
    case JF_ACK_TAKE:
        j->r_seg = a->seg;
        j->r_off = a->off + rec_size(a->len);
        j->r_id = a->id + 1;
        j->r_cum += a->len;
        return 0;
    case JF_ACK_CONFIRM:
        if ((n = node_find(j, a->id)) != NULL)
            node_free(j, n);
        return 0;
    case JF_ACK_FLUSH:
        nodes_free_all(j);
        __attribute__((fallthrough));
    case JF_ACK_CKPT:
        j->r_seg = a->seg;
        j->r_off = a->off;
        j->r_id = a->id;
        j->r_cum = a->cum;
        return 0;
    default:
        return -EBADMSG;
    }
}

/* Loads acks.<idx>: its checkpoint and the records after it. Returns 0 with the
 * state applied, or -errno (-EBADMSG: no usable checkpoint). */
static int ack_load(struct jnl *j, int idx, int fd)
{
    unsigned char raw[JF_ACK_REC];
    struct jf_ack a;
    uint64_t off = JF_ACK_HDR;
    int rc = jio_pread_all(j->conf.io, fd, raw, sizeof(raw), (off_t)off);
    if (rc < 0 || jf_ack_decode(raw, &a) < 0 || a.type != JF_ACK_CKPT)
        return -EBADMSG;
    ack_apply(j, &a);
    off += JF_ACK_REC;
    for (uint64_t i = 0; i < a.len; i++, off += JF_ACK_REC) {
        struct jf_ack o;
        if (jio_pread_all(j->conf.io, fd, raw, sizeof(raw), (off_t)off) < 0 || jf_ack_decode(raw, &o) < 0 ||
            o.type != JF_ACK_OUT) {
            nodes_free_all(j);
            return -EBADMSG;
        }
        if ((rc = ack_apply(j, &o)) < 0)
            return rc;
    }
    off_t size;
    if ((rc = j->conf.io->fsize(j->conf.io->ctx, fd, &size)) < 0)
        return rc;
    while (off + JF_ACK_REC <= (uint64_t)size) {
        if ((rc = jio_pread_all(j->conf.io, fd, raw, sizeof(raw), (off_t)off)) < 0)
            return rc;
        if (jf_ack_decode(raw, &a) < 0 || a.type == JF_ACK_CKPT || a.type == JF_ACK_OUT)
            break;
        if ((rc = ack_apply(j, &a)) < 0)
            return rc;
        off += JF_ACK_REC;
    }
    if (off != (uint64_t)size) {
        log_warn(j->conf.log, "journal %s: acks.%d: cut off %" PRIu64 " bytes of damaged tail at offset %" PRIu64,
                 j->dir, idx, (uint64_t)size - off, off);
        if ((rc = j->conf.io->ftruncate(j->conf.io->ctx, fd, (off_t)off)) < 0)
            return rc;
    }
    j->ack_off = off;
    return 0;
}

/* Picks the newer usable ack file and loads it; none usable: a cursor at the
 * start of the oldest segment, and a fresh ack file. */
static int recover_acks(struct jnl *j)
{
    int fds[2] = {-1, -1};
    uint64_t gens[2] = {0, 0};
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        char path[PATH_MAX], name[16];
        snprintf(name, sizeof(name), "acks.%d", i);
        path_of(j, path, sizeof(path), name);
        fds[i] = j->conf.io->open(j->conf.io->ctx, path, O_RDWR, 0);
        if (fds[i] < 0) {
            if (fds[i] != -ENOENT) {
                rc = fds[i];
                goto out;
            }
            continue;
        }
        unsigned char raw[JF_ACK_HDR];
        struct jf_ack_hdr h;
        if (jio_pread_all(j->conf.io, fds[i], raw, sizeof(raw), 0) == 0 && jf_ack_hdr_decode(raw, &h) == 0)
            gens[i] = h.generation;
    }
    int order[2] = {gens[1] > gens[0] ? 1 : 0, gens[1] > gens[0] ? 0 : 1};
    for (int k = 0; k < 2; k++) {
        int i = order[k];
        if (fds[i] < 0 || gens[i] == 0)
            continue;
        rc = ack_load(j, i, fds[i]);
        if (rc == -EBADMSG) {
            log_warn(j->conf.log, "journal %s: acks.%d has no usable checkpoint; trying the other", j->dir, i);
            continue;
        }
        if (rc < 0)
            goto out;
        j->ack_fd = fds[i];
        fds[i] = -1;
        j->ack_idx = i;
        j->ack_gen = gens[i];
        goto out;
    }
    /* No usable ack file: everything from the oldest segment on is live. */
    if (fds[0] >= 0 || fds[1] >= 0)
        log_warn(j->conf.log, "journal %s: no usable ack log: serving every item still on disk", j->dir);
    j->r_seg = j->oldest_seg;
    j->r_off = JF_SEG_HDR;
    j->r_id = 0; /* set from the segment header below */
    j->ack_gen = gens[0] > gens[1] ? gens[0] : gens[1];
    rc = 1; /* the caller writes a fresh ack file once the cursor is known */
out:
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            j->conf.io->close(j->conf.io->ctx, fds[i]);
    return rc;
}

/* Makes the cursor and live items agree with the segments that exist.
 * Returns 1 when the ack log must be rewritten (it is ahead of the segments:
 * its stale records would otherwise apply to the ids appended next). */
static int reconcile(struct jnl *j)
{
    int rewrite = 0;
    int rc;
    int past_tail = j->r_seg > j->tail_seg || (j->r_seg == j->tail_seg && j->r_off > j->tail_off) ||
                    j->r_id > j->next_id;
    if (past_tail) {
        log_warn(j->conf.log, "journal %s: ack log is ahead of the segments: cursor set to the end", j->dir);
        j->r_seg = j->tail_seg;
        j->r_off = j->tail_off;
        j->r_id = j->next_id;
        j->r_cum = j->tail_cum;
        rewrite = 1;
    } else if (j->r_seg < j->oldest_seg || j->r_id == 0) {
        int fd = seg_open(j, j->oldest_seg, O_RDONLY);
        if (fd < 0)
            return fd;
        struct jf_seg_hdr sh;
        rc = seg_read_hdr(j, fd, &sh);
        j->conf.io->close(j->conf.io->ctx, fd);
        if (rc < 0)
            return rc;
        j->r_seg = j->oldest_seg;
        j->r_off = JF_SEG_HDR;
        j->r_id = sh.first_id;
        j->r_cum = sh.cum_bytes;
    }
    /* Live items: fill in what the ack log does not carry from their headers. */
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &j->returned)
    {
        struct jnl_node *n = list_entry(pos, struct jnl_node, link);
        struct jf_rec r;
        int fd, temp;
        rc = n->item.seg < j->oldest_seg || n->item.id >= j->next_id ? -ENOENT
                                                                     : seg_fd(j, n->item.seg, &fd, &temp);
        if (rc == 0) {
            rc = rec_read_hdr(j, fd, n->item.off, &r);
            if (temp)
                j->conf.io->close(j->conf.io->ctx, fd);
            if (rc == 0 && r.id != n->item.id)
                rc = -EBADMSG;
        }
        if (rc < 0) {
            log_warn(j->conf.log, "journal %s: open item %" PRIu64 " is no longer on disk (%s): dropped", j->dir,
                     n->item.id, strerror(-rc));
            node_free(j, n);
            continue;
        }
        item_from_rec(&n->item, &r, n->item.seg, n->item.off);
    }
    return rewrite;
}

int jnl_open(struct jnl **out, const struct jnl_conf *conf, const char *dir, int create)
{
    int rc;
    struct jnl *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->conf = *conf;
    j->dir_fd = j->tail_fd = j->r_fd = j->ack_fd = -1;
    list_init(&j->returned);
    list_init(&j->open);
    if (!(j->dir = strdup(dir))) {
        rc = -ENOMEM;
        goto fail;
    }
    if (create) {
        rc = conf->io->mkdir(conf->io->ctx, dir, 0755);
        if (rc < 0 && rc != -EEXIST)
            goto fail;
    }
    uint64_t min, max;
    if ((rc = scan_dir(j, &min, &max)) < 0)
        goto fail;
    if (max == 0) {
        if (!create) {
            rc = -ENOENT;
            goto fail;
        }
        /* A new journal: segment 1 and an ack file with the cursor at its start. */
        j->next_id = 1;
        j->oldest_seg = j->tail_seg = 1;
        if ((rc = seg_roll(j)) < 0)
            goto fail;
        j->r_seg = 1;
        j->r_off = JF_SEG_HDR;
        j->r_id = 1;
        if ((rc = ack_rewrite(j, 0)) < 0)
            goto fail;
        j->dir_dirty = 1;
        *out = j;
        return 0;
    }
    j->oldest_seg = min;
    j->tail_seg = max;
    if ((rc = recover_tail(j)) < 0)
        goto fail;
    int fresh = recover_acks(j);
    if (fresh < 0) {
        rc = fresh;
        goto fail;
    }
    if ((rc = reconcile(j)) < 0)
        goto fail;
    fresh |= rc;
    if (fresh && (rc = ack_rewrite(j, 0)) < 0)
        goto fail;
    *out = j;
    return 0;
fail:
    jnl_close(j);
    return rc;
}

void jnl_close(struct jnl *j)
{
    if (!j)
        return;
    nodes_free_all(j);
    close_fd(j, &j->tail_fd);
    close_fd(j, &j->r_fd);
    close_fd(j, &j->ack_fd);
    close_fd(j, &j->dir_fd);
    for (size_t i = 0; i < j->npending; i++)
        j->conf.io->close(j->conf.io->ctx, j->pending_fds[i]);
    free(j->pending_fds);
    buf_free(&j->wbuf);
    free(j->dir);
    free(j);
}

int jnl_remove_dir(const struct jnl_conf *conf, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        int r = conf->io->unlink(conf->io->ctx, path);
        if (r < 0 && rc == 0)
            rc = r;
    }
    closedir(d);
    if (rc == 0 && rmdir(dir) < 0)
        rc = -errno;
    return rc;
}

/* ---- appending ---- */

int jnl_append(struct jnl *j, uint32_t flags, uint64_t add_ms, uint64_t expire_ms, const void *data, size_t len)
{
    int rc;
    uint64_t need = rec_size(len);
    if (j->tail_off > JF_SEG_HDR && j->tail_off + need > j->conf.segment_size)
        if ((rc = seg_roll(j)) < 0)
            return rc;
    struct jf_rec r = {.type = JF_REC_ITEM,
                       .flags = flags,
                       .id = j->next_id,
                       .add_ms = add_ms,
                       .expire_ms = expire_ms,
                       .len = len,
                       .payload_sum = jf_payload_sum(data, len)};
    unsigned char hdr[JF_REC_HDR];
    jf_rec_encode(hdr, &r);
    if (len <= INLINE_WRITE_MAX) {
        j->wbuf.len = 0;
        if ((rc = buf_append(&j->wbuf, hdr, sizeof(hdr))) < 0 || (rc = buf_append(&j->wbuf, data, len)) < 0)
            return rc;
        rc = jio_pwrite_all(j->conf.io, j->tail_fd, j->wbuf.data, j->wbuf.len, (off_t)j->tail_off);
    } else {
        rc = jio_pwrite_all(j->conf.io, j->tail_fd, hdr, sizeof(hdr), (off_t)j->tail_off);
        if (rc == 0)
            rc = jio_pwrite_all(j->conf.io, j->tail_fd, data, len, (off_t)(j->tail_off + JF_REC_HDR));
    }
    if (rc < 0) {
        /* Leave no partial record behind; if even that fails, recovery cuts it. */
        j->conf.io->ftruncate(j->conf.io->ctx, j->tail_fd, (off_t)j->tail_off);
        return rc;
    }
    j->tail_off += need;
    j->disk_bytes += need;
    j->next_id++;
    j->tail_cum += len;
    j->dirty = 1;
    return 0;
}

/* ---- reading ---- */

/* Moves the cursor to the start of the next segment. */
static int cursor_next_seg(struct jnl *j)
{
    for (uint64_t seq = j->r_seg + 1; seq <= j->tail_seg; seq++) {
        int fd = seg_open(j, seq, O_RDONLY);
        if (fd == -ENOENT)
            continue;
        if (fd < 0)
            return fd;
        struct jf_seg_hdr sh;
        int rc = seg_read_hdr(j, fd, &sh);
        if (rc < 0) {
            j->conf.io->close(j->conf.io->ctx, fd);
            if (rc == -EBADMSG) {
                log_error(j->conf.log, "journal %s: segment %" PRIu64 " has a damaged header: skipped", j->dir,
                          seq);
                continue;
            }
            return rc;
        }
        close_fd(j, &j->r_fd);
        j->r_fd = fd;
        j->r_fd_seg = seq;
        j->r_seg = seq;
        j->r_off = JF_SEG_HDR;
        j->r_id = sh.first_id;
        j->r_cum = sh.cum_bytes;
        return 0;
    }
    return -ENOENT;
}

int jnl_head(struct jnl *j, struct jnl_head *h)
{
    struct list *first = list_first(&j->returned);
    if (first) {
        h->node = list_entry(first, struct jnl_node, link);
        h->item = h->node->item;
        return 0;
    }
    for (;;) {
        if (j->r_seg == j->tail_seg && j->r_off >= j->tail_off)
            return -ENOENT;
        int fd, temp, rc;
        if (j->r_seg == j->tail_seg) {
            fd = j->tail_fd;
        } else {
            if (j->r_fd < 0 || j->r_fd_seg != j->r_seg) {
                close_fd(j, &j->r_fd);
                if ((rc = seg_fd(j, j->r_seg, &fd, &temp)) == -ENOENT) {
                    if ((rc = cursor_next_seg(j)) < 0)
                        return rc;
                    continue;
                }
                if (rc < 0)
                    return rc;
                j->r_fd = fd;
                j->r_fd_seg = j->r_seg;
            }
            fd = j->r_fd;
        }
        struct jf_rec r;
        rc = rec_read_hdr(j, fd, j->r_off, &r);
        if (rc == 0) {
            if (r.id != j->r_id)
                j->r_id = r.id;
            item_from_rec(&h->item, &r, j->r_seg, j->r_off);
            h->node = NULL;
            return 0;
        }
        if (j->r_seg == j->tail_seg)
            return rc == -ENODATA || rc == -EBADMSG ? -EIO : rc;
        if (rc == -EBADMSG)
            log_error(j->conf.log, "journal %s: segment %" PRIu64 ": damaged record at offset %" PRIu64
                                   ": skipped the rest of the segment",
                      j->dir, j->r_seg, j->r_off);
        else if (rc != -ENODATA)
            return rc;
        if ((rc = cursor_next_seg(j)) < 0)
            return rc == -ENOENT ? -EIO : rc;
    }
}

int jnl_read(struct jnl *j, const struct jnl_item *it, uint64_t off, void *buf, size_t n)
{
    int fd, temp;
    int rc = seg_fd(j, it->seg, &fd, &temp);
    if (rc < 0)
        return rc;
    rc = jio_pread_all(j->conf.io, fd, buf, n, (off_t)(it->off + JF_REC_HDR + off));
    if (temp)
        j->conf.io->close(j->conf.io->ctx, fd);
    if (rc == -ENODATA)
        rc = -EIO;
    if (rc == 0 && off == 0 && n == it->len && jf_payload_sum(buf, n) != it->payload_sum)
        rc = -EBADMSG;
    return rc;
}

int jnl_payload_fd(struct jnl *j, const struct jnl_item *it, int *fd, uint64_t *payload_off)
{
    int f, temp;
    int rc = seg_fd(j, it->seg, &f, &temp);
    if (rc < 0)
        return rc;
    if (!temp) {
        f = fcntl(f, F_DUPFD_CLOEXEC, 0);
        if (f < 0)
            return -errno;
    }
    *fd = f;
    *payload_off = it->off + JF_REC_HDR;
    return 0;
}

/* ---- consuming ---- */

static void cursor_past(struct jnl *j, const struct jnl_item *it)
{
    j->r_seg = it->seg;
    j->r_off = it->off + rec_size(it->len);
    j->r_id = it->id + 1;
    j->r_cum += it->len;
}

int jnl_remove_head(struct jnl *j, const struct jnl_head *h)
{
    int rc;
    if (h->node)
        return jnl_confirm(j, h->node);
    struct jf_ack a = {.type = JF_ACK_TAKE, .id = h->item.id, .seg = h->item.seg, .off = h->item.off, .len = h->item.len};
    if ((rc = ack_write(j, &a)) < 0)
        return rc;
    cursor_past(j, &h->item);
    return 0;
}

int jnl_hold_head(struct jnl *j, const struct jnl_head *h, void *owner, struct jnl_node **out)
{
    struct jnl_node *n = h->node;
    if (!n) {
        if (!(n = node_new(j, &h->item)))
            return -ENOMEM;
        struct jf_ack a = {.type = JF_ACK_OPEN, .id = h->item.id, .seg = h->item.seg, .off = h->item.off, .len = h->item.len};
        int rc = ack_write(j, &a);
        if (rc < 0) {
            node_free(j, n);
            return rc;
        }
        cursor_past(j, &h->item);
    }
    list_remove(&n->link);
    list_push_back(&j->open, &n->link);
    n->owner = owner;
    j->nopen++;
    *out = n;
    return 0;
}

int jnl_confirm(struct jnl *j, struct jnl_node *n)
{
    struct jf_ack a = {.type = JF_ACK_CONFIRM, .id = n->item.id, .seg = n->item.seg, .off = n->item.off, .len = n->item.len};
    int rc = ack_write(j, &a);
    if (rc < 0)
        return rc;
    node_free(j, n);
    return 0;
}

void jnl_release(struct jnl *j, struct jnl_node *n)
{
    if (n->owner)
        j->nopen--;
    n->owner = NULL;
    list_remove(&n->link);
    returned_insert(j, n);
}

int jnl_clear(struct jnl *j)
{
    struct jf_ack a = {.type = JF_ACK_FLUSH, .id = j->next_id, .seg = j->tail_seg, .off = j->tail_off, .cum = j->tail_cum};
    int rc = ack_write(j, &a);
    if (rc < 0)
        return rc;
    nodes_free_all(j);
    j->r_seg = j->tail_seg;
    j->r_off = j->tail_off;
    j->r_id = j->next_id;
    j->r_cum = j->tail_cum;
    return 0;
}

/* ---- upkeep ---- */

void jnl_maintain(struct jnl *j, uint64_t sync_epoch_next, uint64_t sync_epoch_done)
{
    uint64_t low = j->r_seg;
    struct list *lists[2] = {&j->returned, &j->open};
    for (int i = 0; i < 2; i++) {
        struct list *pos, *tmp;
        list_for_each_safe(pos, tmp, lists[i])
        {
            uint64_t s = list_entry(pos, struct jnl_node, link)->item.seg;
            if (s < low)
                low = s;
        }
    }
    for (; j->oldest_seg < low; j->oldest_seg++) {
        char path[PATH_MAX];
        struct stat st;
        seg_path(j, j->oldest_seg, path, sizeof(path));
        if (stat(path, &st) == 0)
            j->disk_bytes -= (uint64_t)st.st_size < j->disk_bytes ? (uint64_t)st.st_size : j->disk_bytes;
        int rc = j->conf.io->unlink(j->conf.io->ctx, path);
        if (rc < 0 && rc != -ENOENT) {
            log_error(j->conf.log, "journal %s: cannot remove segment %" PRIu64 ": %s", j->dir, j->oldest_seg,
                      strerror(-rc));
            break;
        }
        if (j->r_fd >= 0 && j->r_fd_seg == j->oldest_seg)
            close_fd(j, &j->r_fd);
        j->dir_dirty = 1;
    }
    if (j->ack_off > j->conf.ack_compact_bytes && (j->conf.sync_never || sync_epoch_done >= j->ack_ckpt_epoch)) {
        int rc = ack_rewrite(j, sync_epoch_next);
        if (rc < 0)
            log_error(j->conf.log, "journal %s: cannot rewrite the ack log: %s", j->dir, strerror(-rc));
    }
}

int jnl_dirty(const struct jnl *j) { return j->dirty || j->dir_dirty || j->npending > 0; }

int jnl_sync_fds(struct jnl *j, int *fds, int cap)
{
    int n = 0;
    if (!jnl_dirty(j))
        return 0;
    if ((size_t)cap < j->npending + 3)
        return -ENOMEM;
    if (j->dir_dirty) {
        if (j->dir_fd < 0)
            j->dir_fd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (j->dir_fd >= 0 && (fds[n] = fcntl(j->dir_fd, F_DUPFD_CLOEXEC, 0)) >= 0)
            n++;
    }
    int mine[2] = {j->tail_fd, j->ack_fd};
    for (int i = 0; i < 2; i++)
        if (mine[i] >= 0 && (fds[n] = fcntl(mine[i], F_DUPFD_CLOEXEC, 0)) >= 0)
            n++;
    for (size_t i = 0; i < j->npending; i++)
        fds[n++] = j->pending_fds[i];
    j->npending = 0;
    j->dirty = j->dir_dirty = 0;
    return n;
}

void jnl_get_stats(const struct jnl *j, struct jnl_stats *st)
{
    st->items = (j->next_id > j->r_id ? j->next_id - j->r_id : 0) + j->nnodes;
    st->bytes = (j->tail_cum > j->r_cum ? j->tail_cum - j->r_cum : 0) + j->node_bytes;
    st->open = j->nopen;
    st->logsize = j->disk_bytes + j->ack_off;
}
