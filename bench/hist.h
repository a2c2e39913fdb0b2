/* hist.h: a latency histogram with HDR-style log buckets.
 *
 * Values are nanoseconds. Below 1024 each value has its own bucket; above,
 * every power of two is cut into 512 equal buckets, so a bucket is never wider
 * than 1/512 (0.2%) of the values in it. The range ends at 2^43 ns (about
 * 2.4 hours); larger values land in the last bucket. One histogram is about
 * 140 KiB; adding a value is a few instructions and no allocation. */
#ifndef DARNER_BENCH_HIST_H
#define DARNER_BENCH_HIST_H

#include <stdint.h>

#define HIST_LINEAR 1024u
#define HIST_SUB_BITS 9u
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_MAX_EXP 42u /* highest power of two covered */
#define HIST_BUCKETS (HIST_LINEAR + (HIST_MAX_EXP - 10u + 1u) * HIST_SUB)

struct hist {
    uint64_t count;
    uint64_t sum; /* ns, for the mean */
    uint64_t min;
    uint64_t max;
    uint64_t b[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_add(struct hist *h, uint64_t ns);
/* Adds every value of src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);
/* The value at quantile q (0..1): the smallest bucket value with at least
 * ceil(q * count) values at or below it; q >= 1 gives the exact maximum.
 * 0 for an empty histogram. */
uint64_t hist_quantile(const struct hist *h, double q);
double hist_mean(const struct hist *h);
/* Bucket index of a value and the representative (middle) value of a bucket;
 * exposed for the self-test. */
unsigned hist_index(uint64_t ns);
uint64_t hist_bucket_value(unsigned idx);
/* Returns 0 when the histogram's own checks pass, else prints and returns -1. */
int hist_self_test(void);

#endif
