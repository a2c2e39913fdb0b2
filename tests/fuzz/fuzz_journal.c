/* tests/fuzz/fuzz_journal.c: libFuzzer target for journal recovery.
 *
 * Input layout (tests/fuzz/pack_journal.py writes seeds in it):
 *
 *   byte 0      mode bits: 1 = fix checksums, 2 = write the ack file
 *   bytes 1..4  segment length, little-endian (clamped to what is there)
 *   then        the segment file's bytes, then the ack file's bytes
 *
 * The bytes become seg-0000000000000001.dat (and acks.0) in a fresh folder,
 * the journal is opened with create = 0 and drained with jnl_head / jnl_read /
 * jnl_remove_head, bounded by a count. With "fix checksums" the target first
 * recomputes every checksum it can find (segment header, record headers and
 * payloads, ack header and records), so the fuzzer reaches the logic behind
 * the checksums instead of only the checks.
 *
 * Checked:
 * - never a crash, a sanitizer report, a leak or a hang;
 * - without an ack file, recovery hands out exactly the valid prefix of the
 *   segment: the records that an independent walk here accepts (header and
 *   payload checksums, ids in sequence, record inside the file), in order,
 *   with their flags and payload bytes, moved copies skipped;
 * - an item is never handed out twice in one drain (with an ack file too);
 * - after a complete drain the journal still works: three appended items
 *   (rolling small segments) come back in order after closing and reopening. */
#include "journal/format.h"
#include "journal/journal.h"
#include "util/buf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define MODE_FIX_SUMS 1u
#define MODE_ACKS 2u

#define MAX_DRAIN 100000    /* heads taken per input, at most */
#define MAX_READ (4u << 20) /* payloads read whole up to this size */
#define SEGMENT_SIZE 1024   /* small, so the appends after the drain roll */

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "fuzz_journal: check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);                   \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

static char g_root[PATH_MAX]; /* a private folder for this process */
static char g_dir[PATH_MAX];  /* the journal's folder inside it */
static struct log g_log;
static int g_verbose;

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

static void rmtree(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static void cleanup(void) { rmtree(g_root); }

/* Folders of earlier processes that crashed (an abort skips atexit):
 * darner-fuzz-journal-<pid> whose process is gone. */
static void remove_stale(const char *base)
{
    DIR *d = opendir(base);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid;
        char path[PATH_MAX];
        if (sscanf(e->d_name, "darner-fuzz-journal-%ld", &pid) != 1 || pid <= 0)
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue;
        snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
        rmtree(path);
    }
    closedir(d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *base = getenv("FUZZ_TMPDIR");
    if (!base)
        base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    remove_stale(base);
    snprintf(g_root, sizeof(g_root), "%s/darner-fuzz-journal-%ld", base, (long)getpid());
    rmtree(g_root);
    CHECK(mkdir(g_root, 0700) == 0);
    snprintf(g_dir, sizeof(g_dir), "%s/q", g_root);
    atexit(cleanup);
    g_verbose = getenv("FUZZ_VERBOSE") != NULL;
    g_log = (struct log){.level = LOG_DEBUG, .out = stderr};
    return 0;
}

static void write_file(const char *name, const unsigned char *p, size_t n)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", g_dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0);
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);
        CHECK(w > 0);
        done += (size_t)w;
    }
    close(fd);
}

/* Recomputes the checksums of whatever looks like a segment: the header
 * seal, then each record (magic in place) its payload sum and header sum. */
static void fix_segment(unsigned char *s, size_t n)
{
    if (n < JF_SEG_HDR)
        return;
    put_u64le(s + 56, XXH3_64bits(s, 56));
    uint64_t off = JF_SEG_HDR;
    while (off + JF_REC_HDR <= n) {
        unsigned char *h = s + off;
        if (get_u32le(h) != JF_REC_MAGIC)
            return;
        uint64_t len = get_u64le(h + 56);
        uint64_t size = JF_REC_HDR;
        if (h[8] == JF_REC_ITEM) {
            if (len > n - off - JF_REC_HDR)
                len = UINT64_MAX; /* does not fit: leave its payload sum */
            else
                put_u64le(h + 64, jf_payload_sum(h + JF_REC_HDR, (size_t)len));
            size = len == UINT64_MAX ? (uint64_t)n : JF_REC_HDR + len;
        }
        put_u32le(h + 4, (uint32_t)XXH3_64bits(h + 8, JF_REC_HDR - 8));
        if (size > n - off)
            return;
        off += size;
    }
}

static void fix_acks(unsigned char *a, size_t n)
{
    if (n < JF_ACK_HDR)
        return;
    put_u64le(a + 56, XXH3_64bits(a, 56));
    for (size_t off = JF_ACK_HDR; off + JF_ACK_REC <= n; off += JF_ACK_REC)
        put_u64le(a + off + 56, XXH3_64bits(a + off, 56));
}

/* One record the independent walk accepted. */
struct want {
    uint64_t id, len, payload_sum;
    uint32_t flags;
    uint8_t kind;
};

/* The valid prefix of a lone segment, as recovery must find it: a readable
 * header, then records with good header and payload checksums, inside the
 * file, whose ids run on from the header's first id (moved copies keep an
 * older id and take none). Returns the records the cursor hands out (moved
 * copies excluded). */
static size_t valid_prefix(const unsigned char *s, size_t n, struct want *out, size_t cap)
{
    struct jf_seg_hdr sh;
    if (n < JF_SEG_HDR || jf_seg_hdr_decode(s, &sh) < 0)
        return 0;
    uint64_t next = sh.first_id, off = JF_SEG_HDR;
    size_t count = 0;
    while (off < n && n - off >= JF_REC_HDR) {
        struct jf_rec r;
        if (jf_rec_decode(s + off, &r) < 0)
            break;
        uint64_t body = r.type == JF_REC_ITEM ? r.len : 0;
        if (body > n - off - JF_REC_HDR)
            break;
        if (r.type == JF_REC_ITEM && jf_payload_sum(s + off + JF_REC_HDR, (size_t)body) != r.payload_sum)
            break;
        int moved = (r.rflags & JF_RF_MOVED) != 0;
        if (moved ? r.id >= next : r.id != next)
            break;
        off += JF_REC_HDR + body;
        if (moved)
            continue;
        next++;
        if (count < cap)
            out[count] =
                (struct want){.id = r.id, .len = r.len, .payload_sum = r.payload_sum, .flags = r.flags, .kind = r.type};
        count++;
    }
    return count;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* After a complete drain: appends three items, reopens, expects them back. */
static void check_appends(struct jnl *j, const struct jnl_conf *conf)
{
    static const char *items[] = {"first", "second item, a little longer than the first", "third"};
    for (int i = 0; i < 3; i++) {
        int rc = jnl_append(j, &(struct jnl_attrs){.flags = (uint32_t)i, .add_ms = 1, .priority = JNL_PRIORITY_DEFAULT},
                            items[i], strlen(items[i]));
        if (rc < 0) {
            /* A journal that cannot append (its folder state refused it)
             * must say so with an error, which it did. */
            jnl_close(j);
            return;
        }
    }
    jnl_close(j);
    CHECK(jnl_open(&j, conf, g_dir, 0) == 0);
    for (int i = 0; i < 3; i++) {
        struct jnl_head h;
        int rc = jnl_head(j, &h);
        if (rc != 0)
            fprintf(stderr, "fuzz_journal: appended item %d not found after reopen: %s\n", i, strerror(-rc));
        CHECK(rc == 0);
        CHECK(h.item.len == strlen(items[i]) && h.item.flags == (uint32_t)i);
        char buf[64];
        CHECK(jnl_read(j, &h.item, 0, buf, (size_t)h.item.len) == 0);
        CHECK(memcmp(buf, items[i], (size_t)h.item.len) == 0);
        CHECK(jnl_remove_head(j, &h) == 0);
    }
    struct jnl_head h;
    CHECK(jnl_head(j, &h) == -ENOENT);
    jnl_close(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5)
        return 0;
    unsigned mode = data[0];
    size_t seg_len = (size_t)get_u32le(data + 1);
    size_t rest = size - 5;
    if (seg_len > rest)
        seg_len = rest;
    size_t ack_len = rest - seg_len;

    /* A private, writable copy of both files. */
    unsigned char *seg = malloc(seg_len + 1), *ack = malloc(ack_len + 1);
    CHECK(seg && ack);
    memcpy(seg, data + 5, seg_len);
    memcpy(ack, data + 5 + seg_len, ack_len);
    if (mode & MODE_FIX_SUMS) {
        fix_segment(seg, seg_len);
        fix_acks(ack, ack_len);
    }

    rmtree(g_dir);
    CHECK(mkdir(g_dir, 0755) == 0);
    write_file("seg-0000000000000001.dat", seg, seg_len);
    int with_acks = (mode & MODE_ACKS) != 0;
    if (with_acks)
        write_file("acks.0", ack, ack_len);

    size_t cap = seg_len / JF_REC_HDR + 1;
    struct want *want = calloc(cap, sizeof(*want));
    uint64_t *seen = calloc(MAX_DRAIN, sizeof(*seen));
    CHECK(want && seen);
    size_t nwant = valid_prefix(seg, seg_len, want, cap);
    /* The independent walk knows version-1 records only: a segment of
     * another version (batches) gets the other checks, not this one. */
    struct jf_seg_hdr vh;
    int exact = !(mode & MODE_ACKS) && seg_len >= JF_SEG_HDR && jf_seg_hdr_decode(seg, &vh) == 0 && vh.version == 1;

    struct jnl_conf conf = {.io = jio_posix(),
                            .log = g_verbose ? &g_log : NULL,
                            .segment_size = SEGMENT_SIZE,
                            .ack_compact_bytes = 4096,
                            .sync_never = 1};
    struct jnl *j = NULL;
    int rc = jnl_open(&j, &conf, g_dir, 0);
    if (rc < 0) {
        /* A refusal is allowed where there is nothing to serve, and for a
         * file of another format version (-EPROTONOSUPPORT: never taken for
         * damage); a lone segment of ours without an ack file is always
         * recoverable. */
        if (!with_acks && rc != -EPROTONOSUPPORT)
            fprintf(stderr, "fuzz_journal: jnl_open without an ack file failed: %s\n", strerror(-rc));
        CHECK(with_acks || rc == -EPROTONOSUPPORT);
        goto out;
    }

    size_t got = 0, nseen = 0;
    int complete = 0;
    char *payload = NULL;
    for (size_t i = 0; i < MAX_DRAIN; i++) {
        struct jnl_head h;
        rc = jnl_head(j, &h);
        if (rc == -ENOENT) {
            complete = 1;
            break;
        }
        if (rc < 0)
            break; /* damage it reports: allowed, not a crash */
        if (h.item.kind == JF_REC_ITEM && h.item.len <= MAX_READ) {
            payload = realloc(payload, (size_t)h.item.len + 1);
            CHECK(payload != NULL);
            rc = jnl_read(j, &h.item, 0, payload, (size_t)h.item.len);
            if (!with_acks) {
                /* Every record of a lone segment was checked at start. */
                CHECK(rc == 0);
            }
        }
        if (exact) {
            /* The cursor walks the valid prefix, in order. */
            CHECK(h.node == NULL);
            CHECK(got < nwant);
            CHECK(h.item.id == want[got].id);
            CHECK(h.item.len == want[got].len);
            CHECK(h.item.flags == want[got].flags);
            CHECK(h.item.kind == want[got].kind);
            CHECK(h.item.payload_sum == want[got].payload_sum);
        }
        seen[nseen++] = h.item.id;
        got++;
        if ((rc = jnl_remove_head(j, &h)) < 0)
            break;
    }
    free(payload);
    if (exact) {
        CHECK(complete);
        CHECK(got == nwant);
    }
    /* No item twice in one drain. */
    qsort(seen, nseen, sizeof(*seen), cmp_u64);
    for (size_t i = 1; i < nseen; i++) {
        if (seen[i] == seen[i - 1])
            fprintf(stderr, "fuzz_journal: item %llu handed out twice\n", (unsigned long long)seen[i]);
        CHECK(seen[i] != seen[i - 1]);
    }
    if (complete)
        check_appends(j, &conf);
    else
        jnl_close(j);
out:
    free(want);
    free(seen);
    free(seg);
    free(ack);
    return 0;
}
