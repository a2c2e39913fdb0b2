/* tools/jtool.h: darner-journal's shared state, and its output
 * (jtool_out.c: text or one JSON object a line). */
#ifndef DARNER_TOOLS_JTOOL_H
#define DARNER_TOOLS_JTOOL_H

#include "util/compat.h"
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "journal/format.h"
#include "journal/io.h"
#include "journal/state.h"

#define PREVIEW 32          /* payload bytes dump shows without --payload */
#define CHUNK (1024 * 1024) /* payloads are read in pieces of this size */
enum { EXIT_CLEAN = 0, EXIT_DAMAGE = 1, EXIT_ERROR = 2 };
enum cmd { CMD_CHECK, CMD_DUMP, CMD_REPAIR };

/* What one ack file says, replayed into a state by the code start-up uses
 * (jst_load_acks, jst_apply_ack). */
struct acks {
    int present, usable;
    uint64_t gen, size, end, records;
    struct jst st; /* cursor and live items; nodes freed by tool_reset() */
};

/* Everything one run needs; there are no globals. */
struct tool {
    enum cmd cmd;
    int json, payload;
    FILE *out;
    const struct jio *io;
    const char *dir;
    unsigned char *buf; /* CHUNK bytes of scratch; owned */
    uint64_t damages, notes;
    uint64_t *segs; /* segment numbers found, sorted; owned */
    size_t nsegs, cap_segs;
    size_t eff_last;   /* index of the segment start-up treats as the tail */
    uint64_t *missing; /* ids of blob records whose file is absent; owned */
    size_t nmissing, cap_missing;
    uint64_t seg_bytes, blob_bytes;
    uint64_t tail_seg, tail_off, next_id, tail_cum; /* the valid end, as start-up finds it */
    uint64_t oldest_first_id, oldest_cum;           /* 0, 0: the oldest header is damaged */
    struct acks ack[2];
    /* the batch being listed: its size, and the entry's index and payload's
     * file offset (dump) */
    uint64_t cur_size, cur_payload_at;
    uint32_t cur_idx;
};

/* What dump_ack() lists for: the tool and the ack file's name. */
struct dump_ctx {
    struct tool *t;
    const char *name;
};

/* UTC calendar time of *s into *tm: gmtime_r, which Windows's C runtime
 * has as gmtime_s (arguments swapped). Returns tm, or NULL. */
#if defined(_WIN32)
static inline struct tm *jt_gmtime(const time_t *s, struct tm *tm) { return gmtime_s(tm, s) == 0 ? tm : NULL; }
#else
static inline struct tm *jt_gmtime(const time_t *s, struct tm *tm) { return gmtime_r(s, tm); }
#endif

/* Writes p[0..n) escaped for a "..." string: JSON, or C-like for text. */
void esc(const struct tool *t, const void *p, size_t n);
/* A Unix ms time as an ISO date, or "never" for 0; out holds 40 bytes. */
const char *fmt_ms(char out[40], uint64_t ms);
/* Counts and prints one finding: damage (makes the exit code 1) or a note. */
PRINTF_LIKE(6, 7)
void report(struct tool *t, int damage, const char *file, uint64_t off, uint64_t bytes, const char *fmt, ...);
/* Lists one record (dump). ok: 1 checksum good, 0 bad, -1 no blob file. The
 * payload is at base in fd (fd < 0: none to show). */
int emit_rec(struct tool *t, uint64_t seq, uint64_t off, const struct jf_rec *r, int ok, int fd, uint64_t base);
/* Lists one ack record (dump); ctx is a struct dump_ctx. */
void dump_ack(void *ctx, uint64_t off, const struct jf_ack *r, int ok);

#endif
