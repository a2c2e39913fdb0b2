/* stats.c: the `stats` answer, memcache's general keys plus Kestrel's
 * per-queue ones. */
#include "stats.h"

#include "queue/delay.h"

#include "queue/registry.h"
#include "server.h"

#include <inttypes.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static void stat_u64(struct buf *b, const char *name, uint64_t v)
{
    buf_printf(b, "STAT %s %" PRIu64 "\r\n", name, v);
}

/* One stat of a queue. */
struct qstat {
    const char *key;
    uint64_t v;
};

#define QSTATS 32

/* Every stat of q, in Kestrel's order and names (age and age_msec are
 * both the last handed-out item's wait in milliseconds). Returns how many. */
static size_t queue_stats(const struct server *s, struct queue *q, struct qstat *out)
{
    struct jnl_stats js;
    registry_queue_stats(s->reg, q, &js);
    uint64_t waiters = 0;
    struct list *w;
    for (w = q->waiters.next; w != &q->waiters; w = w->next)
        waiters++;
    size_t n = 0;
    out[n++] = (struct qstat){"items", js.items};
    out[n++] = (struct qstat){"bytes", js.bytes};
    out[n++] = (struct qstat){"total_items", q->total_items};
    out[n++] = (struct qstat){"logsize", js.logsize};
    out[n++] = (struct qstat){"expired_items", q->expired};
    out[n++] = (struct qstat){"age", q->age_ms};
    out[n++] = (struct qstat){"discarded", q->discarded};
    out[n++] = (struct qstat){"waiters", waiters};
    out[n++] = (struct qstat){"open_transactions", js.open};
    out[n++] = (struct qstat){"transactions", q->transactions};
    out[n++] = (struct qstat){"canceled_transactions", q->canceled};
    out[n++] = (struct qstat){"lease_expired", q->lease_expired};
    out[n++] = (struct qstat){"dead_lettered", q->dead_lettered};
    out[n++] = (struct qstat){"redeliveries", q->redeliveries};
    out[n++] = (struct qstat){"total_flushes", q->flushes};
    out[n++] = (struct qstat){"delayed_items", q->delays ? queue_delayed_items(q) : 0};
    /* a queue with lanes: its items at each level that has some */
    static const char *const pri[QUEUE_LEVELS] = {"items_pri0", "items_pri1", "items_pri2", "items_pri3",
                                                  "items_pri4", "items_pri5", "items_pri6", "items_pri7",
                                                  "items_pri8", "items_pri9"};
    for (unsigned level = 0; q->lanes && level < QUEUE_LEVELS; level++) {
        uint64_t v = queue_level_items(q, level);
        if (v)
            out[n++] = (struct qstat){pri[level], v};
    }
    out[n++] = (struct qstat){"age_msec", q->age_ms};
    out[n++] = (struct qstat){"create_time", q->create_ms / 1000};
    return n;
}

void stats_dump_queue(const struct server *s, struct queue *q, struct buf *out)
{
    struct qstat st[QSTATS];
    size_t n = queue_stats(s, q, st);
    buf_append(out, "queue '", 7);
    buf_append(out, q->name, q->name_len);
    buf_append(out, "' {\r\n", 5);
    for (size_t i = 0; i < n; i++)
        buf_printf(out, "  %s=%" PRIu64 "\r\n", st[i].key, st[i].v);
    buf_append(out, "}\r\n", 3);
}

void stats_write(const struct server *s, struct buf *out)
{
    uint64_t items = 0, bytes = 0, total_items = 0, open = 0;
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &s->reg->all)
    {
        struct queue *q = list_entry(pos, struct queue, all);
        struct jnl_stats js;
        if (q->level >= 0)
            continue; /* a lane: counted in its queue */
        registry_queue_stats(s->reg, q, &js);
        items += js.items;
        bytes += js.bytes;
        open += js.open;
        total_items += q->total_items;
    }
    uint64_t now = queue_now_ms();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    stat_u64(out, "pid", (uint64_t)getpid());
    stat_u64(out, "uptime", (now - s->start_ms) / 1000);
    stat_u64(out, "time", now / 1000);
    buf_printf(out, "STAT version %s\r\n", DARNER_VERSION);
    buf_printf(out, "STAT rusage_user %ld.%06ld\r\n", (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec);
    buf_printf(out, "STAT rusage_system %ld.%06ld\r\n", (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec);
    stat_u64(out, "curr_items", items);
    stat_u64(out, "total_items", total_items);
    stat_u64(out, "bytes", bytes);
    stat_u64(out, "open_transactions", open);
    stat_u64(out, "curr_connections", s->nconns);
    stat_u64(out, "total_connections", s->st.total_connections);
    stat_u64(out, "rejected_connections", s->st.refused_connections);
    stat_u64(out, "cmd_get", s->st.cmd_get);
    stat_u64(out, "cmd_set", s->st.cmd_set);
    stat_u64(out, "cmd_peek", s->st.cmd_peek);
    stat_u64(out, "cmd_monitor", s->st.cmd_monitor);
    stat_u64(out, "get_hits", s->st.get_hits);
    stat_u64(out, "get_misses", s->st.get_misses);
    stat_u64(out, "bytes_read", s->st.bytes_read);
    stat_u64(out, "bytes_written", s->st.bytes_written);
    stat_u64(out, "queues", s->reg->count - s->reg->nhidden);
    stat_u64(out, "queue_creates", s->reg->queue_creates);
    stat_u64(out, "queue_deletes", s->reg->queue_deletes);
    stat_u64(out, "queue_expires", s->reg->queue_expires); /* queues deleted for their max_queue_age */
    stat_u64(out, "fsyncs", s->sync.syncs);
    list_for_each_safe(pos, tmp, &s->reg->all)
    {
        struct queue *q = list_entry(pos, struct queue, all);
        struct qstat st[QSTATS];
        if (q->level >= 0)
            continue;
        size_t n = queue_stats(s, q, st);
        for (size_t i = 0; i < n; i++) {
            buf_append(out, "STAT queue_", 11);
            buf_append(out, q->name, q->name_len);
            buf_printf(out, "_%s %" PRIu64 "\r\n", st[i].key, st[i].v);
        }
    }
    buf_append(out, "END\r\n", 5);
}
