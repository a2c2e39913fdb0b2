/* hist.c: see hist.h. */
#include "hist.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned hist_index(uint64_t ns)
{
    if (ns < HIST_LINEAR)
        return (unsigned)ns;
    unsigned e = 63u - (unsigned)__builtin_clzll(ns); /* >= 10 */
    if (e > HIST_MAX_EXP)
        return HIST_BUCKETS - 1u;
    unsigned m = (unsigned)(ns >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1u);
    return HIST_LINEAR + (e - 10u) * HIST_SUB + m;
}

uint64_t hist_bucket_value(unsigned idx)
{
    if (idx < HIST_LINEAR)
        return idx;
    unsigned k = idx - HIST_LINEAR;
    unsigned e = k / HIST_SUB + 10u;
    uint64_t m = k % HIST_SUB;
    uint64_t width = 1ull << (e - HIST_SUB_BITS);
    uint64_t lo = (HIST_SUB + m) << (e - HIST_SUB_BITS);
    return lo + width / 2u;
}

void hist_add(struct hist *h, uint64_t ns)
{
    h->b[hist_index(ns)]++;
    h->count++;
    h->sum += ns;
    if (ns < h->min)
        h->min = ns;
    if (ns > h->max)
        h->max = ns;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    if (!src->count)
        return;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (!h->count)
        return 0;
    if (q >= 1.0)
        return h->max;
    if (q <= 0.0)
        return h->min;
    uint64_t want = (uint64_t)ceil(q * (double)h->count);
    if (want < 1)
        want = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            uint64_t v = hist_bucket_value(i);
            if (v > h->max)
                v = h->max;
            if (v < h->min)
                v = h->min;
            return v;
        }
    }
    return h->max;
}

double hist_mean(const struct hist *h) { return h->count ? (double)h->sum / (double)h->count : 0.0; }

static int check(int ok, const char *what)
{
    if (!ok)
        fprintf(stderr, "hist self-test failed: %s\n", what);
    return ok ? 0 : -1;
}

int hist_self_test(void)
{
    int rc = 0;
    /* Indexes are monotonic and every value maps into its own bucket's range. */
    unsigned prev = 0;
    for (uint64_t v = 0; v < (1ull << 20); v += 1 + v / 700) {
        unsigned i = hist_index(v);
        if (i < prev)
            return check(0, "index not monotonic");
        prev = i;
        uint64_t mid = hist_bucket_value(i);
        double err = v ? fabs((double)mid - (double)v) / (double)v : 0.0;
        if (err > 1.0 / HIST_SUB)
            return check(0, "bucket value too far from the value");
    }
    rc |= check(hist_index(UINT64_MAX) == HIST_BUCKETS - 1u, "overflow bucket");
    rc |= check(hist_index(1ull << HIST_MAX_EXP) < HIST_BUCKETS, "top of range");

    static struct hist h; /* 140 KiB: not on the stack */
    hist_init(&h);
    for (uint64_t v = 1; v <= 100000; v++)
        hist_add(&h, v * 1000); /* 1 us .. 100 ms, uniform */
    struct {
        double q;
        double want;
    } qs[] = {{0.5, 50e6}, {0.9, 90e6}, {0.99, 99e6}, {0.999, 99.9e6}};
    for (unsigned k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
        double got = (double)hist_quantile(&h, qs[k].q);
        rc |= check(fabs(got - qs[k].want) / qs[k].want < 0.003, "quantile of a uniform spread");
    }
    rc |= check(hist_quantile(&h, 1.0) == 100000000ull, "max");
    rc |= check(hist_quantile(&h, 0.0) == 1000ull, "min");
    rc |= check(fabs(hist_mean(&h) - 50000500.0) < 1.0, "mean");

    static struct hist a, b;
    hist_init(&a);
    hist_init(&b);
    hist_add(&a, 10);
    hist_add(&b, 5000000);
    hist_merge(&a, &b);
    rc |= check(a.count == 2 && a.min == 10 && a.max == 5000000, "merge");
    rc |= check(hist_quantile(&a, 0.5) == 10, "merged median");
    return rc;
}
