/* tests/crash/crash_state.h: the file states a power cut may leave.
 *
 * A walk replays the event log one event at a time and keeps, per inode,
 * what is durable: a file's bytes as of its last completed fsync, a folder's
 * entries as of its last completed fsync. At a crash point (after k events)
 * everything after that is open: cs_point_build() lists those events as
 * choices, a variant picks one option per choice, and cs_image_build() turns
 * the durable state plus the picked events into the journal folder's files.
 *
 * The rules (docs/hardening.md, "Crash-state exploration"):
 * - a file's writes and truncations before its last fsync are kept;
 * - each later write is kept or dropped on its own, and the file's last
 *   write may be torn at any 512-byte boundary: only its first sectors
 *   land, either with the file's size following them or with the size of
 *   the whole write (the rest then reads as zeros);
 * - truncations of one file persist in order, and a write reaching past a
 *   truncation that did not persist does not persist either (it would sit
 *   in blocks that truncation freed);
 * - creations, renames and unlinks persist only with an fsync of the folder
 *   holding the new name; before that each may or may not have happened,
 *   independently of the others and of the files' data;
 * - different files are independent of each other. */
#ifndef DARNER_TESTS_CRASH_STATE_H
#define DARNER_TESTS_CRASH_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "crash_fs.h"

struct cs_file {
    unsigned char *dur; /* a file's durable bytes */
    size_t dlen, dcap;
    uint32_t *ops; /* its WRITE and TRUNC events so far; ops[0, nsync) are durable */
    size_t nops, capops, nsync;
    struct cf_ent *dent; /* a folder's durable entries */
    size_t ndent, capdent;
    uint32_t *dops; /* events changing its entries so far; dops[0, dsync) are durable */
    size_t ndops, capdops, dsync;
};

struct cs_walk {
    const struct cf_rec *rec;
    struct cs_file *f; /* per inode */
    size_t nf;
    size_t k; /* events replayed */
};

void cs_walk_init(struct cs_walk *w, const struct cf_rec *rec);
/* Replays events up to (not including) k; k never goes back. */
void cs_walk_to(struct cs_walk *w, size_t k);
void cs_walk_free(struct cs_walk *w);

/* One event whose fate a power cut decides. Options: 0 kept, 1 dropped;
 * a torn write adds 2 + i (torn at cut i, the size follows the data) and
 * 2 + ncut + i (the size of the whole write, data up to cut i - 1, or
 * none for i = 0). */
struct cs_choice {
    uint32_t ev;
    uint16_t nopt, ncut;
};

struct cs_point {
    struct cs_choice *c;
    size_t n, cap;
    int qdir; /* the journal folder's inode */
};

/* Lists the open events at the walk's crash point that can change the
 * journal folder (its entry in the root, its entries, its files' bytes). */
void cs_point_build(const struct cs_walk *w, int qdir, struct cs_point *pt);
void cs_point_free(struct cs_point *pt);
/* The number of variants of pt, or UINT64_MAX if that overflows. */
uint64_t cs_point_space(const struct cs_point *pt);

struct cs_img_file {
    char name[CF_NAME_MAX];
    const unsigned char *data; /* into the walk's durable bytes or the image's buffer */
    size_t len;
};

/* The journal folder as one variant leaves it. Owns its buffers; reuse it
 * for the next variant, then free it with cs_image_free(). */
struct cs_image {
    int qexists;
    struct cs_img_file *f;
    size_t nf, capf;
    unsigned char **bufs; /* per f[i]: a buffer of its own, or NULL */
    size_t *bufcap;
    size_t capbufs;
    struct cf_ent *ent; /* scratch: the journal folder's entries */
    size_t nent, capent;
    int32_t *pick; /* per event: the option picked, or -1 */
    size_t npick;
    uint64_t hash;
};

void cs_image_build(const struct cs_walk *w, const struct cs_point *pt, const uint16_t *pick, struct cs_image *img);
void cs_image_free(struct cs_image *img);

/* Writes img into dir (created; it must not exist). Returns 0 or -errno. */
int cs_materialize(const struct cs_image *img, const char *dir);
/* Removes dir and the files in it (whatever recovery left there). */
void cs_remove(const char *dir);

/* Describes variant pick of pt: one line per open event, with its fate. */
void cs_describe(const struct cs_walk *w, const struct cs_point *pt, const uint16_t *pick, char *out, size_t cap);

#endif
