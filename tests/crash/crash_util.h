/* tests/crash/crash_util.h: small helpers shared by the crash-state explorer:
 * a seeded PRNG, checked allocation and growable arrays.
 *
 * The explorer is a test program: running out of memory ends it (exit 2,
 * with a message) instead of threading -ENOMEM through every model update. */
#ifndef DARNER_TESTS_CRASH_UTIL_H
#define DARNER_TESTS_CRASH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* SplitMix64: one 64-bit word of state, so a seed is a whole replayable
 * stream and sub-streams are derived with cu_mix(). */
struct cu_prng {
    uint64_t s;
};

static inline uint64_t cu_mix(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

static inline uint64_t cu_next(struct cu_prng *p)
{
    p->s += UINT64_C(0x9e3779b97f4a7c15);
    uint64_t x = p->s;
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* Uniform in [0, n); 0 when n is 0. */
static inline uint64_t cu_below(struct cu_prng *p, uint64_t n) { return n ? cu_next(p) % n : 0; }

/* Uniform in [lo, hi]. */
static inline uint64_t cu_range(struct cu_prng *p, uint64_t lo, uint64_t hi) { return lo + cu_below(p, hi - lo + 1); }

/* True with probability pct/100. */
static inline int cu_chance(struct cu_prng *p, unsigned pct) { return cu_below(p, 100) < pct; }

static inline void *cu_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "crash-states: out of memory (%zu bytes)\n", n);
        exit(2);
    }
    return q;
}

static inline void *cu_calloc(size_t n, size_t size)
{
    void *q = calloc(n ? n : 1, size ? size : 1);
    if (!q) {
        fprintf(stderr, "crash-states: out of memory\n");
        exit(2);
    }
    return q;
}

/* Makes room for one more element in a growable array (ptr, n, cap). */
#define CU_GROW(ptr, n, cap)                                                                                           \
    do {                                                                                                               \
        if ((n) == (cap)) {                                                                                            \
            (cap) = (cap) ? (cap)*2 : 16;                                                                              \
            (ptr) = cu_realloc((ptr), (cap) * sizeof(*(ptr)));                                                         \
        }                                                                                                              \
    } while (0)

#endif
