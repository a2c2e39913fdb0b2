/* io_stats.h: an I/O table that counts what passes through another one:
 * bytes written and how long each fsync took (a histogram). The server
 * wraps the real table in it; /metrics and stats read the counts. */
#ifndef DARNER_JOURNAL_IO_STATS_H
#define DARNER_JOURNAL_IO_STATS_H

#include "journal/io.h"

#include <stdint.h>

/* Upper bounds of the fsync histogram's buckets, in microseconds; one more
 * bucket (+Inf) follows the last. */
#define IO_STATS_BUCKETS 16
extern const uint64_t io_stats_bucket_us[IO_STATS_BUCKETS];

/* Written on whichever thread does the I/O (fsyncs run on libuv's pool),
 * read on the loop thread: every field is accessed atomically. */
struct io_stats {
    struct jio table; /* hand &table to the journal */
    const struct jio *inner;
    uint64_t bytes_written;
    uint64_t fsyncs, fsync_ns;               /* count and sum of durations */
    uint64_t fsync_le[IO_STATS_BUCKETS + 1]; /* per bucket (not cumulative); the last is +Inf */
};

/* A copy of the counts, read atomically field by field. */
struct io_stats_snap {
    uint64_t bytes_written, fsyncs, fsync_ns;
    uint64_t fsync_le[IO_STATS_BUCKETS + 1];
};

/* Makes s a counting wrapper of inner (borrowed; must outlive s). */
void io_stats_init(struct io_stats *s, const struct jio *inner);
void io_stats_read(const struct io_stats *s, struct io_stats_snap *out);

#endif
