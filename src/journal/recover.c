/* journal/recover.c: opening a journal: finding the segments, cutting a
 * damaged tail, loading the ack log, and reconciling the two. */
#include "journal/jnl_int.h"
#include "util/errstr.h"

#include "journal/format.h"
#include "journal/replay.h"
#include "util/buf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

/* ---- recovery ---- */

/* The size of file name in the journal's folder (0 if it cannot be read). */
static uint64_t file_size(struct jnl *j, const char *name)
{
    char path[PATH_MAX];
    uint64_t size;
    ji_path_of(j, path, sizeof(path), name);
    return j->conf.io->size(j->conf.io->ctx, path, &size) == 0 ? size : 0;
}

struct scan {
    struct jnl *j;
    uint64_t min, max;
};

static int scan_one(void *arg, const char *name)
{
    struct scan *sc = arg;
    struct jnl *j = sc->j;
    uint64_t seq;
    if (jf_parse_file_name(name, "seg-", &seq)) {
        j->disk_bytes += file_size(j, name);
        if (seq < sc->min)
            sc->min = seq;
        if (seq > sc->max)
            sc->max = seq;
    } else if (strncmp(name, "blob-", 5) == 0) {
        uint64_t size = file_size(j, name);
        j->disk_bytes += size;
        j->blob_bytes += size;
    }
    return 0;
}

/* Finds the segments in dir and adds up their sizes; changes nothing. */
static int scan_dir(struct jnl *j, uint64_t *min, uint64_t *max)
{
    struct scan sc = {.j = j, .min = UINT64_MAX, .max = 0};
    int rc = j->conf.io->listdir(j->conf.io->ctx, j->dir, scan_one, &sc);
    *min = sc.min;
    *max = sc.max;
    return rc;
}

static int remove_tmp(void *arg, const char *name)
{
    struct jnl *j = arg;
    if (strstr(name, ".tmp") != NULL) {
        char path[PATH_MAX];
        ji_path_of(j, path, sizeof(path), name);
        j->conf.io->unlink(j->conf.io->ctx, path);
    }
    return 0;
}

/* Removes leftover temporary files (writes that never completed). */
static void remove_tmp_files(struct jnl *j) { j->conf.io->listdir(j->conf.io->ctx, j->dir, remove_tmp, j); }

/* Reads the header of file `name` in the journal's folder with decode.
 * Returns 0, or -EPROTONOSUPPORT when it is intact but of a version this
 * build does not know (logged, with the version); damage and absence are left
 * to recovery. */
static int check_one_version(struct jnl *j, const char *name, size_t hdr,
                             int (*decode)(const unsigned char *, uint32_t *), int ours)
{
    char path[PATH_MAX];
    unsigned char raw[JF_SEG_HDR > JF_ACK_HDR ? JF_SEG_HDR : JF_ACK_HDR];
    uint32_t version = 0;
    ji_path_of(j, path, sizeof(path), name);
    int fd = j->conf.io->open(j->conf.io->ctx, path, O_RDONLY, 0);
    if (fd < 0)
        return 0;
    int rc = jio_pread_all(j->conf.io, fd, raw, hdr, 0);
    j->conf.io->close(j->conf.io->ctx, fd);
    if (rc < 0 || decode(raw, &version) != -EPROTONOSUPPORT)
        return 0;
    log_error(j->conf.log,
              "journal %s: %s is in journal format version %" PRIu32 ", which this build (version %d) cannot read: "
              "the queue is not opened and nothing in its folder is changed; run a darner that knows version %" PRIu32,
              j->dir, name, version, ours, version);
    return -EPROTONOSUPPORT;
}

static int seg_version(const unsigned char *raw, uint32_t *version)
{
    struct jf_seg_hdr h = {0};
    int rc = jf_seg_hdr_decode(raw, &h);
    *version = h.version;
    return rc;
}

static int ack_version(const unsigned char *raw, uint32_t *version)
{
    struct jf_ack_hdr h = {0};
    int rc = jf_ack_hdr_decode(raw, &h);
    *version = h.version;
    return rc;
}

/* Refuses a journal any of whose files says it is of another format version,
 * before recovery changes a byte (a downgrade, or a folder written by a newer
 * build, must never lose data). Returns 0, -EPROTONOSUPPORT or -errno. */
static int check_one(void *arg, const char *name)
{
    struct jnl *j = arg;
    uint64_t seq;
    if (jf_parse_file_name(name, "seg-", &seq))
        return check_one_version(j, name, JF_SEG_HDR, seg_version, JF_VERSION);
    if (strcmp(name, "acks.0") == 0 || strcmp(name, "acks.1") == 0)
        return check_one_version(j, name, JF_ACK_HDR, ack_version, JF_ACK_VERSION);
    return 0;
}

static int check_versions(struct jnl *j) { return j->conf.io->listdir(j->conf.io->ctx, j->dir, check_one, j); }

/* Finds the valid end of the tail segment, cutting off a damaged tail. */
static int recover_tail(struct jnl *j)
{
    for (;;) {
        int fd = ji_seg_open(j, j->tail_seg, O_RDWR);
        if (fd == -ENOENT && j->tail_seg > j->oldest_seg) {
            /* A gap: its creation never reached the disk (nothing in it was
             * durable, or its folder entry would be). */
            log_warn(j->conf.log, "journal %s: segment %" PRIu64 " is missing: skipped", j->dir, j->tail_seg);
            j->tail_seg--;
            continue;
        }
        if (fd < 0)
            return fd;
        struct jf_seg_hdr sh;
        int rc = ji_seg_read_hdr(j, fd, &sh);
        if (rc == -EBADMSG && j->tail_seg > j->oldest_seg) {
            /* A segment whose header never made it: it holds nothing. */
            char path[PATH_MAX];
            off_t size = 0;
            j->conf.io->fsize(j->conf.io->ctx, fd, &size);
            j->conf.io->close(j->conf.io->ctx, fd);
            ji_seg_path(j, j->tail_seg, path, sizeof(path));
            log_warn(j->conf.log, "journal %s: segment %" PRIu64 " has a damaged header: removed it (%lld bytes)",
                     j->dir, j->tail_seg, (long long)size);
            j->conf.io->unlink(j->conf.io->ctx, path);
            j->disk_bytes -= (uint64_t)size < j->disk_bytes ? (uint64_t)size : j->disk_bytes;
            j->tail_seg--;
            continue;
        }
        if (rc == -EBADMSG) {
            /* The only segment, and its header is gone: start it over with
             * ids from 1 (the ack log is read later and reconciled). */
            log_warn(j->conf.log, "journal %s: segment %" PRIu64 " has a damaged header: starting it empty", j->dir,
                     j->tail_seg);
            j->tail_fd = fd;
            j->st.next_id = j->st.next_id ? j->st.next_id : 1;
            if ((rc = ji_seg_init(j, fd, j->tail_seg, j->st.next_id, j->st.tail_cum)) < 0)
                return rc;
            j->tail_off = JF_SEG_HDR;
            j->started_over = 1;
            return 0;
        }
        if (rc < 0) {
            j->conf.io->close(j->conf.io->ctx, fd);
            return rc;
        }
        j->tail_fd = fd;
        j->tail_sh = sh;
        j->st.next_id = sh.first_id;
        j->st.tail_cum = sh.cum_bytes;
        off_t size;
        if ((rc = j->conf.io->fsize(j->conf.io->ctx, fd, &size)) < 0)
            return rc;
        const char *why = NULL;
        struct jscan sc;
        if ((rc = jscan_init(&sc, j->conf.io, fd, &sh, (uint64_t)size, JF_SEG_HDR)) < 0)
            return rc;
        while (sc.off < (uint64_t)size) {
            struct jbatch bt;
            rc = jscan_next(&sc, &bt, &why);
            if (rc == -ENODATA || rc == -EBADMSG)
                break;
            if (rc < 0) {
                jscan_free(&sc);
                return rc;
            }
            /* The whole batch or nothing of it. */
            if (jbatch_check_sequence(&bt, &j->st, &why) < 0)
                break;
            uint64_t pos = 0, next = bt.b.first_id;
            struct jf_entry e;
            for (uint32_t i = 0; i < bt.b.count && jbatch_entry(&bt, &pos, &next, &e) == 0; i++)
                jst_apply_rec(&j->st, &e.r);
            jscan_skip(&sc, &bt);
        }
        jscan_free(&sc);
        uint64_t off = sc.off;
        if (why) {
            log_warn(j->conf.log,
                     "journal %s: segment %" PRIu64 ": %s at offset %" PRIu64 ": cut off %" PRIu64
                     " bytes of damaged tail",
                     j->dir, j->tail_seg, why, off, (uint64_t)size - off);
            if ((rc = j->conf.io->resize(j->conf.io->ctx, fd, (off_t)off)) < 0)
                return rc;
            j->disk_bytes -= (uint64_t)size - off;
            j->seg_dirty = 1;
        }
        j->tail_off = off;
        return 0;
    }
}

/* Loads acks.<idx>: its checkpoint and the records after it, cutting a
 * damaged tail. Returns 0 with the state applied, or -errno (-EBADMSG: no
 * usable checkpoint). */
static int ack_load(struct jnl *j, int idx, int fd)
{
    off_t size;
    struct jack_load l = {0};
    int rc = j->conf.io->fsize(j->conf.io->ctx, fd, &size);
    if (rc < 0 || (rc = jst_load_acks(&j->st, j->conf.io, fd, (uint64_t)size, &l)) < 0)
        return rc;
    if (l.end != (uint64_t)size) {
        log_warn(j->conf.log, "journal %s: acks.%d: cut off %" PRIu64 " bytes of damaged tail at offset %" PRIu64,
                 j->dir, idx, (uint64_t)size - l.end, l.end);
        if ((rc = j->conf.io->resize(j->conf.io->ctx, fd, (off_t)l.end)) < 0)
            return rc;
    }
    j->ack_off = l.end;
    return 0;
}

/* Picks the newer usable ack file and loads it; none usable: a cursor at the
 * start of the oldest segment, and a fresh ack file. */
static int recover_acks(struct jnl *j)
{
    int fds[2] = {-1, -1};
    uint64_t gens[2] = {0, 0};
    uint32_t versions[2] = {0, 0};
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        char path[PATH_MAX], name[16];
        snprintf(name, sizeof(name), "acks.%d", i);
        ji_path_of(j, path, sizeof(path), name);
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
        if (jio_pread_all(j->conf.io, fds[i], raw, sizeof(raw), 0) == 0 && jf_ack_hdr_decode(raw, &h) == 0) {
            gens[i] = h.generation;
            versions[i] = h.version;
        }
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
        /* Whether its checkpoint is durable yet is not known (a journal is
         * also reopened after its files were handed to a sync still to
         * come): the first jnl_maintain stamps the next sync's epoch. */
        j->ack_ckpt_epoch = UINT64_MAX;
        ji_ack_reserve(j);
        /* An ack log of an older version is rewritten in this one (into the
         * other file: the old one stays until that is complete). */
        rc = versions[i] < JF_ACK_VERSION;
        goto out;
    }
    /* No usable ack file: everything from the oldest segment on is live. */
    if (fds[0] >= 0 || fds[1] >= 0)
        log_warn(j->conf.log, "journal %s: no usable ack log: serving every item still on disk", j->dir);
    j->st.r_seg = j->oldest_seg;
    j->st.r_off = JF_SEG_HDR;
    j->st.r_idx = 0;
    j->st.r_id = 0; /* set from the segment header below */
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
/* Fills live node n's attributes from its entry, keeping what only the ack
 * log knows (its delivery count, a transfer under way); a node whose entry
 * is gone is dropped. */
static void fill_node(struct jnl *j, struct jnl_node *n)
{
    struct jbatch bt;
    struct jf_entry e;
    unsigned char *owned = NULL;
    int rc = n->item.seg < j->oldest_seg || n->item.id >= j->st.next_id
                 ? -ENOENT
                 : ji_batch_load(j, n->item.seg, n->item.off, &bt, &owned, 0);
    if (rc == 0 && (jbatch_entry_at(&bt, n->item.idx, &e) < 0 || e.r.id != n->item.id))
        rc = -EBADMSG;
    free(owned);
    if (rc < 0) {
        log_warn(j->conf.log, "journal %s: open item %" PRIu64 " is no longer on disk (%s): dropped", j->dir,
                 n->item.id, errstr(rc));
        /* gone from disk: dropped in memory only, as a CONFIRM would */
        jst_apply_ack(&j->st, &(struct jf_ack){.type = JF_ACK_CONFIRM, .id = n->item.id}, n, NULL);
        return;
    }
    struct jnl_item logged = n->item;
    ji_item_from_entry(&n->item, &e, n->item.seg, n->item.off, n->item.idx);
    if (logged.deliveries > n->item.deliveries)
        n->item.deliveries = logged.deliveries;
    n->item.xfer = logged.xfer;
    n->item.xfer_dir = logged.xfer_dir;
    n->item.xfer_id = logged.xfer_id;
    n->item.xfer_due = logged.xfer_due;
}

static int reconcile(struct jnl *j)
{
    int rewrite = 0;
    int rc;
    int past_tail = j->st.r_seg > j->tail_seg || (j->st.r_seg == j->tail_seg && j->st.r_off > j->tail_off) ||
                    j->st.r_id > j->st.next_id;
    if (past_tail) {
        log_warn(j->conf.log, "journal %s: ack log is ahead of the segments: cursor set to the end", j->dir);
        j->st.r_seg = j->tail_seg;
        j->st.r_off = j->tail_off;
        j->st.r_idx = 0;
        j->st.r_id = j->st.next_id;
        j->st.r_cum = j->st.tail_cum;
        rewrite = 1;
    } else if (j->st.r_seg < j->oldest_seg || j->st.r_id == 0) {
        /* The cursor starts at the oldest segment whose header can be read;
         * a segment with a damaged header cannot be walked, so its items are
         * lost, and the log says so, but the queue still opens. */
        uint64_t seq;
        struct jf_seg_hdr sh;
        for (seq = j->oldest_seg; seq <= j->tail_seg; seq++) {
            int fd = ji_seg_open(j, seq, O_RDONLY);
            if (fd == -ENOENT)
                continue;
            if (fd < 0)
                return fd;
            rc = ji_seg_read_hdr(j, fd, &sh);
            j->conf.io->close(j->conf.io->ctx, fd);
            if (rc == 0)
                break;
            if (rc != -EBADMSG)
                return rc;
            log_error(j->conf.log, "journal %s: segment %" PRIu64 " has a damaged header: its items are skipped",
                      j->dir, seq);
        }
        if (seq > j->tail_seg)
            return -EBADMSG;
        j->st.r_seg = seq;
        j->st.r_off = JF_SEG_HDR;
        j->st.r_idx = 0;
        j->st.r_id = sh.first_id;
        j->st.r_cum = sh.cum_bytes;
        rewrite = 1;
    }
    if (!past_tail && j->st.r_seg == j->tail_seg && j->st.r_off == j->tail_off &&
        (j->st.r_idx != 0 || j->st.r_id != j->st.next_id)) {
        /* At the end of the segments, where no batch is yet, the cursor can
         * only be at the first entry of what comes next (a damaged ack
         * record said otherwise: the next appended batch would be skipped) */
        j->st.r_idx = 0;
        j->st.r_id = j->st.next_id;
        rewrite = 1;
    }
    /* Live items (given back ones, and those in transfer): what the ack
     * log does not carry comes from their entries. */
    struct list *lists[2] = {&j->st.returned, &j->st.open};
    for (int li = 0; li < 2; li++) {
        struct list *pos, *tmp;
        list_for_each_safe(pos, tmp, lists[li])
            fill_node(j, list_entry(pos, struct jnl_node, link));
    }
    return rewrite;
}

/* Whether the blob file of first id `id` belongs to a live item. */
static int blob_live(struct jnl *j, uint64_t id)
{
    if (id >= j->st.r_id && id < j->st.next_id)
        return 1;
    const struct jnl_node *n = jst_find(&j->st, id);
    return n && n->item.kind == JF_REC_BLOB;
}

/* Removes blob files whose items are gone (a crash between recording a
 * removal and removing the file, or between writing a blob and its record). */
static int orphan_blob(void *arg, const char *name)
{
    struct jnl *j = arg;
    uint64_t id;
    if (!jf_parse_file_name(name, "blob-", &id))
        return 0;
    if (blob_live(j, id)) {
        ji_owe_name(j, name); /* its data may not be durable yet */
        return 0;
    }
    char path[PATH_MAX];
    uint64_t size = file_size(j, name);
    ji_path_of(j, path, sizeof(path), name);
    if (j->conf.io->unlink(j->conf.io->ctx, path) == 0) {
        log_info(j->conf.log, "journal %s: removed %s, whose item is gone", j->dir, name);
        j->disk_bytes -= size < j->disk_bytes ? size : j->disk_bytes;
        j->blob_bytes -= size < j->blob_bytes ? size : j->blob_bytes;
    }
    return 0;
}

static void remove_orphan_blobs(struct jnl *j) { j->conf.io->listdir(j->conf.io->ctx, j->dir, orphan_blob, j); }

/* The only segment was started over (its header was damaged): what the ack
 * log says is about items that are gone. Its live items are dropped, and
 * new items take ids after every id it names, so none of its records can
 * ever be taken for a new item's (a new item lost at the next start, or
 * an id handed out twice). Returns 0 or -EOVERFLOW (the ids are spent). */
static int forget_lost_items(struct jnl *j)
{
    uint64_t first = j->st.ack_max_id >= j->st.next_id ? j->st.ack_max_id + 1 : j->st.next_id;
    if (first >= JF_COUNT_MAX) {
        log_error(j->conf.log, "journal %s: its ack log names ids up to the format's limit: refused", j->dir);
        return -EOVERFLOW;
    }
    if (first != j->st.next_id)
        log_warn(j->conf.log,
                 "journal %s: its ack log names items up to id %" PRIu64
                 ", which are gone: new items start at %" PRIu64,
                 j->dir, j->st.ack_max_id, first);
    jst_free_nodes(&j->st);
    j->st.next_id = first;
    j->st.r_seg = j->tail_seg;
    j->st.r_off = JF_SEG_HDR;
    j->st.r_idx = 0;
    j->st.r_id = first;
    j->st.r_cum = j->st.tail_cum;
    return ji_seg_init(j, j->tail_fd, j->tail_seg, first, j->st.tail_cum);
}

int jnl_open(struct jnl **out, const struct jnl_conf *conf, const char *dir, int create)
{
    int rc;
    if (!jio_complete(conf->io))
        return -EINVAL;
    struct jnl *j = calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    j->conf = *conf;
    j->dir_fd = j->tail_fd = j->r_fd = j->ack_fd = -1;
    jst_init(&j->st);
    if (!(j->dir = strdup(dir))) {
        rc = -ENOMEM;
        goto fail;
    }
    if (create) {
        rc = conf->io->mkdir(conf->io->ctx, dir, 0755);
        if (rc < 0 && rc != -EEXIST)
            goto fail;
    }
    uint64_t min = 0, max = 0;
    if ((rc = check_versions(j)) < 0 || (rc = scan_dir(j, &min, &max)) < 0)
        goto fail;
    remove_tmp_files(j);
    if (max == 0) {
        if (!create) {
            rc = -ENOENT;
            goto fail;
        }
        /* A new journal: segment 1 and an ack file with the cursor at its
         * start. Ack files left without any segment mean nothing, and one of
         * a higher generation would win over ours at the next start. */
        for (int i = 0; i < 2; i++) {
            char path[PATH_MAX], name[16];
            snprintf(name, sizeof(name), "acks.%d", i);
            ji_path_of(j, path, sizeof(path), name);
            conf->io->unlink(conf->io->ctx, path);
        }
        j->st.next_id = conf->first_id && conf->first_id < JF_COUNT_MAX ? conf->first_id : 1;
        j->oldest_seg = j->tail_seg = 1;
        if ((rc = ji_seg_roll(j, j->st.next_id, j->st.tail_cum)) < 0)
            goto fail;
        j->st.r_seg = 1;
        j->st.r_off = JF_SEG_HDR;
        j->st.r_idx = 0;
        j->st.r_id = j->st.next_id;
        if ((rc = ji_ack_rewrite(j, 0)) < 0)
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
    if (j->started_over) {
        if ((rc = forget_lost_items(j)) < 0)
            goto fail;
        fresh = 1;
    }
    if ((rc = reconcile(j)) < 0)
        goto fail;
    fresh |= rc;
    if (fresh) {
        if ((rc = ji_ack_rewrite(j, 0)) < 0)
            goto fail;
        j->ack_ckpt_epoch = UINT64_MAX; /* durable only once a sync covers it */
    }
    remove_orphan_blobs(j);
    /* What the previous process wrote may not be durable yet (it may have
     * died before its sync): the first sync of this one covers it. */
    if (!conf->sync_never) {
        jnl_mark_unsynced(j);
        for (uint64_t seq = j->oldest_seg; seq < j->tail_seg; seq++) {
            char name[32];
            snprintf(name, sizeof(name), "seg-%016" PRIx64 ".dat", seq);
            ji_owe_name(j, name);
        }
        ji_owe_name(j, j->ack_idx ? "acks.0" : "acks.1");
    }
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
    if (jnl_flush(j) < 0)
        log_error(j->conf.log, "journal %s: what changed last could not be written at close", j->dir);
    ji_ack_discard(j, -EIO);
    buf_free(&j->pend.e);
    jst_free_nodes(&j->st);
    ji_close_fd(j, &j->tail_fd);
    ji_close_fd(j, &j->r_fd);
    ji_close_fd(j, &j->ack_fd);
    ji_close_fd(j, &j->dir_fd);
    for (size_t i = 0; i < j->npending; i++)
        j->conf.io->close(j->conf.io->ctx, j->pending_fds[i].fd);
    free(j->bc);
    free(j->inflight);
    free(j->owed);
    free(j->doomed);
    free(j->pxfer);
    free(j->pfire);
    free(j->pending_fds);
    buf_free(&j->wbuf);
    free(j->dir);
    free(j);
}

struct remove_all {
    const struct jnl_conf *conf;
    const char *dir;
    int rc; /* the first failure */
};

static int remove_one(void *arg, const char *name)
{
    struct remove_all *ra = arg;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", ra->dir, name);
    int r = ra->conf->io->unlink(ra->conf->io->ctx, path);
    if (r < 0 && ra->rc == 0)
        ra->rc = r;
    return 0;
}

int jnl_remove_dir(const struct jnl_conf *conf, const char *dir)
{
    struct remove_all ra = {.conf = conf, .dir = dir};
    int rc = conf->io->listdir(conf->io->ctx, dir, remove_one, &ra);
    if (rc == -ENOENT)
        return 0;
    if (rc == 0)
        rc = ra.rc;
    if (rc == 0)
        rc = conf->io->rmdir(conf->io->ctx, dir);
    return rc;
}
