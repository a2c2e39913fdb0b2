/* tests/crash/crash_fs.h: a recording journal I/O table.
 *
 * cf_rec wraps jio_posix(): every call still reaches the real file system,
 * and every call that changes it is appended, in order, to an event log with
 * the bytes written. Alongside, the recorder keeps its own view of the folder
 * tree under a root (folders and files as inodes, names as entries), so each
 * fd, dup'd ones included, is known to refer to one inode, and each event
 * names the inode and folder it changes. crash_state.c replays a prefix of
 * this log to build the file states a power cut may leave. */
#ifndef DARNER_TESTS_CRASH_FS_H
#define DARNER_TESTS_CRASH_FS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "journal/io.h"

#define CF_NAME_MAX 40  /* journal file names are short: seg-<16 hex>.dat */
#define CF_PATH_MAX 128 /* an inode's path under the root, for descriptions */

enum cf_op {
    CF_MKDIR,   /* a folder `ino` named `name` in `dir` */
    CF_CREATE,  /* an empty file `ino` named `name` in `dir` (open with O_CREAT) */
    CF_WRITE,   /* `len` bytes `data` at `off` into file `ino` */
    CF_TRUNC,   /* file `ino` cut (or extended) to `len`: ftruncate, or O_TRUNC on an existing file */
    CF_UNLINK,  /* entry `name` (inode `ino`) removed from `dir` */
    CF_RENAME,  /* `from` in `from_dir` is now `name` in `dir` (inode `ino`) */
    CF_FSYNC,   /* fsync of `ino`: a file's data, or a folder's entries */
    CF_RESERVE, /* blocks reserved for [off, off + len) of `ino`; changes no byte or size */
};

struct cf_ev {
    uint8_t op;        /* enum cf_op */
    int ino;           /* the inode the event is about */
    int dir, from_dir; /* folders whose entries change (-1: none) */
    char name[CF_NAME_MAX], from[CF_NAME_MAX];
    uint64_t off, len;
    unsigned char *data; /* CF_WRITE: owned by the log */
};

struct cf_ent {
    char name[CF_NAME_MAX];
    int ino;
};

struct cf_inode {
    int is_dir;
    char path[CF_PATH_MAX]; /* its latest path under the root, for descriptions */
    struct cf_ent *ent;     /* a folder's entries as the live file system has them */
    size_t nent, capent;
};

/* Lies for --self-test: the call still runs as made, but the log says
 * otherwise, so the states are built from what the lie says happened. */
enum cf_lie {
    CF_LIE_ACK_FSYNC = 1 << 0, /* fsyncs of ack files (acks.0, acks.1) are not logged */
    CF_LIE_DIR_FSYNC = 1 << 1, /* fsyncs of folders below the root are not logged */
    /* an XFER record written to an ack file is logged as a COUNT record for
     * the same item and count, which changes nothing: a journal that never
     * writes its XFER records (a move that does not survive a crash) */
    CF_LIE_XFER_REC = 1 << 2,
};

struct cf_rec {
    struct jio io; /* the table to hand to the journal; io.ctx is this recorder */
    const struct jio *real;
    char root[PATH_MAX]; /* inode 0; must exist and is taken as durable */
    size_t rootlen;
    struct cf_ev *ev;
    size_t nev, capev;
    struct cf_inode *ino;
    size_t nino, capino;
    int *fd_ino; /* per fd: its inode, or -1 */
    size_t capfd;
    unsigned lie;  /* enum cf_lie bits */
    char err[256]; /* the first disagreement between the view and the real calls, or "" */
};

/* Starts a recorder over root (an existing folder). Returns 0 or -errno. The
 * recorder owns everything it allocates; free it with cf_free(). */
int cf_init(struct cf_rec *r, const char *root, unsigned lie);
void cf_free(struct cf_rec *r);

/* The inode of entry name in folder dir in the live view, or -1. */
int cf_lookup(const struct cf_rec *r, int dir, const char *name);

/* One line describing event i, into out. */
void cf_describe(const struct cf_rec *r, size_t i, char *out, size_t cap);

#endif
