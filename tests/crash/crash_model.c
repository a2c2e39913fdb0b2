/* tests/crash/crash_model.c: items, their history, and what a crash must
 * leave (see crash_model.h). */
#include "crash_model.h"

#include "crash_util.h"

#include <string.h>

void cm_init(struct cm_model *m, uint64_t seed) { *m = (struct cm_model){.seed = seed}; }

void cm_free(struct cm_model *m)
{
    for (size_t i = 0; i < m->nit; i++)
        free(m->it[i].tr);
    free(m->it);
    free(m->sy);
    *m = (struct cm_model){0};
}

uint32_t cm_new_item(struct cm_model *m, uint32_t len, int blob)
{
    CU_GROW(m->it, m->nit, m->capit);
    m->it[m->nit] = (struct cm_item){.len = len, .blob = (uint8_t)blob};
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

void cm_set(struct cm_model *m, uint32_t tag, uint32_t b, uint32_t e, int live)
{
    struct cm_item *it = &m->it[tag];
    CU_GROW(it->tr, it->ntr, it->captr);
    it->tr[it->ntr++] = (struct cm_tr){.b = b, .e = e, .seq = m->seq++, .live = (uint8_t)live};
    it->live = (uint8_t)live;
    if (!live)
        it->open = 0;
    if (live && tag < m->lo)
        m->lo = tag;
}

void cm_sync(struct cm_model *m, uint32_t start, uint32_t end)
{
    CU_GROW(m->sy, m->nsy, m->capsy);
    m->sy[m->nsy++] = (struct cm_sync){.start = start, .end = end, .seq = m->seq++};
}

long cm_head(struct cm_model *m)
{
    while (m->lo < m->nit && !m->it[m->lo].live)
        m->lo++;
    for (size_t t = m->lo; t < m->nit; t++)
        if (m->it[t].live && !m->it[t].open)
            return (long)t;
    return -1;
}

/* The class of one item for a crash after k events, sy being the last
 * completed sync point (NULL: none).
 *
 * Every call made before sy is durable (ordered by seq, not by events: a
 * removal writes nothing until its queued ack record is flushed, at the
 * latest by the next sync point). A call made after it that began before
 * the crash is in flight as far as the disk knows: any of its writes may or
 * may not have landed, so the item's state is open (MAY). Otherwise the item
 * is exactly as it was at sy. */
static enum cm_class classify(const struct cm_item *it, const struct cm_sync *sy, uint32_t k, int *acked)
{
    int live = 0, pending = 0;
    for (size_t i = 0; i < it->ntr; i++) {
        const struct cm_tr *t = &it->tr[i];
        if (sy && t->seq < sy->seq) {
            live = t->live;
            if (i == 0)
                *acked = 1;
        } else if (t->b < k) {
            pending = 1;
        }
    }
    return pending ? CM_MAY : live ? CM_MUST : CM_MUSTNOT;
}

void cm_expect(const struct cm_model *m, uint32_t k, struct cm_expect *e)
{
    *e = (struct cm_expect){.cls = cu_calloc(m->nit, 1), .n = m->nit, .sync = -1};
    for (size_t i = 0; i < m->nsy; i++)
        if (m->sy[i].end <= k)
            e->sync = (long)i;
    const struct cm_sync *sy = e->sync >= 0 ? &m->sy[e->sync] : NULL;
    for (size_t t = 0; t < m->nit; t++) {
        e->cls[t] = (uint8_t)classify(&m->it[t], sy, k, &e->acked_any);
        e->nmust += e->cls[t] == CM_MUST;
        e->nmay += e->cls[t] == CM_MAY;
        if (m->it[t].ntr && m->it[t].tr[0].b < k)
            e->started = t + 1;
    }
}

void cm_expect_free(struct cm_expect *e)
{
    free(e->cls);
    e->cls = NULL;
}
