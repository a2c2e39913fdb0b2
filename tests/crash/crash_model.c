/* tests/crash/crash_model.c: items, their history, and what a crash must
 * leave (see crash_model.h). */
#include "crash_model.h"

#include "crash_util.h"

#include <string.h>

void cm_init(struct cm_model *m, uint64_t seed) { *m = (struct cm_model){.seed = seed}; }

void cm_free(struct cm_model *m)
{
    for (size_t i = 0; i < m->nit; i++) {
        free(m->it[i].tr);
        free(m->it[i].ho);
    }
    free(m->it);
    free(m->sy);
    *m = (struct cm_model){0};
}

uint32_t cm_new_item(struct cm_model *m, uint32_t len, int blob)
{
    CU_GROW(m->it, m->nit, m->capit);
    m->it[m->nit] = (struct cm_item){.len = len, .blob = (uint8_t)blob, .state = CM_GONE};
    return (uint32_t)m->nit++;
}

void cm_fill(const struct cm_model *m, uint32_t tag, unsigned char *buf, size_t len)
{
    struct cu_prng p = {cu_mix(m->seed ^ (UINT64_C(0x51ed270b27dd1d3d) * (tag + 1)))};
    size_t i = 0;
    /* The tag leads the payload, so a stray copy of it is recognisable. */
    for (; i < len && i < 4; i++)
        buf[i] = (unsigned char)(tag >> (8 * i));
    while (i < len) {
        uint64_t w = cu_next(&p);
        for (int b = 0; b < 8 && i < len; b++, i++)
            buf[i] = (unsigned char)(w >> (8 * b));
    }
}

uint32_t cm_flags(const struct cm_model *m, uint32_t tag) { return (uint32_t)cu_mix(m->seed + tag); }

void cm_set(struct cm_model *m, uint32_t tag, uint32_t b, uint32_t e, uint8_t state)
{
    struct cm_item *it = &m->it[tag];
    CU_GROW(it->tr, it->ntr, it->captr);
    it->tr[it->ntr++] = (struct cm_tr){.b = b, .e = e, .seq = m->seq++, .state = state};
    it->state = state;
    if (state != CM_LIVE) /* removed, or held by the journal for its move */
        it->open = 0;
    if (state == CM_LIVE && tag < m->lo)
        m->lo = tag;
}

void cm_hand_out(struct cm_model *m, uint32_t tag, uint32_t b)
{
    struct cm_item *it = &m->it[tag];
    CU_GROW(it->ho, it->nho, it->capho);
    it->ho[it->nho++] = (struct cm_hand){.b = b, .seq = m->seq++};
}

void cm_sync(struct cm_model *m, uint32_t start, uint32_t end)
{
    CU_GROW(m->sy, m->nsy, m->capsy);
    m->sy[m->nsy++] = (struct cm_sync){.start = start, .end = end, .seq = m->seq++};
}

long cm_head(struct cm_model *m)
{
    while (m->lo < m->nit && m->it[m->lo].state != CM_LIVE)
        m->lo++;
    for (size_t t = m->lo; t < m->nit; t++)
        if (m->it[t].state == CM_LIVE && !m->it[t].open)
            return (long)t;
    return -1;
}

/* The class of one item for a crash after k events, sy being the last
 * completed sync point (NULL: none).
 *
 * Every call made before sy is durable (ordered by seq, not by events: a
 * removal writes nothing until its queued ack record is flushed, at the
 * latest by the next sync point): the disk holds the state the last of them
 * left. A call made after sy that began before the crash is in flight as
 * far as the disk knows; the ack records are replayed in order up to the
 * first one missing, so the disk may hold the state after any of these
 * calls instead. An item untouched since sy has one state: its class is
 * MUST, MUSTNOT or MUST_XFER. */
static uint8_t classify(const struct cm_item *it, const struct cm_sync *sy, uint32_t k, int *acked)
{
    uint8_t at = CM_GONE, later = 0;
    for (size_t i = 0; i < it->ntr; i++) {
        const struct cm_tr *t = &it->tr[i];
        if (sy && t->seq < sy->seq) {
            at = t->state;
            if (i == 0)
                *acked = 1;
        } else if (t->b < k) {
            later |= t->state;
        }
    }
    return (uint8_t)(at | later);
}

/* The bounds of the delivery count the item may come back with: every
 * hand-out before sy is durable (its OPEN or COUNT record, or a later
 * checkpoint, carries the count), and none begun after the crash can have
 * reached the disk. */
static void count_bounds(const struct cm_item *it, const struct cm_sync *sy, uint32_t k, uint32_t *lo, uint32_t *hi)
{
    *lo = *hi = 0;
    for (size_t i = 0; i < it->nho; i++) {
        *lo += sy && it->ho[i].seq < sy->seq;
        *hi += it->ho[i].b < k;
    }
}

void cm_expect(const struct cm_model *m, uint32_t k, struct cm_expect *e)
{
    *e = (struct cm_expect){.cls = cu_calloc(m->nit, 1),
                            .dlo = cu_calloc(m->nit, sizeof(uint32_t)),
                            .dhi = cu_calloc(m->nit, sizeof(uint32_t)),
                            .n = m->nit,
                            .sync = -1};
    for (size_t i = 0; i < m->nsy; i++)
        if (m->sy[i].end <= k)
            e->sync = (long)i;
    const struct cm_sync *sy = e->sync >= 0 ? &m->sy[e->sync] : NULL;
    for (size_t t = 0; t < m->nit; t++) {
        e->cls[t] = classify(&m->it[t], sy, k, &e->acked_any);
        count_bounds(&m->it[t], sy, k, &e->dlo[t], &e->dhi[t]);
        e->nmust += e->cls[t] == CM_MUST;
        e->nxfer += e->cls[t] == CM_MUST_XFER;
        e->nmay += cm_may(e->cls[t]);
        if (m->it[t].ntr && m->it[t].tr[0].b < k)
            e->started = t + 1;
    }
}

void cm_expect_free(struct cm_expect *e)
{
    free(e->cls);
    free(e->dlo);
    free(e->dhi);
    e->cls = NULL;
    e->dlo = e->dhi = NULL;
}
