/* stats.c: the `stats` answer, memcache's general keys plus Kestrel's
 * per-queue ones. */
#include "stats.h"

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

static void stat_queue(struct buf *b, const struct queue *q, const char *key, uint64_t v)
{
    buf_append(b, "STAT queue_", 11);
    buf_append(b, q->name, q->name_len);
    buf_printf(b, "_%s %" PRIu64 "\r\n", key, v);
}

void stats_write(const struct server *s, struct buf *out)
{
    uint64_t items = 0, bytes = 0, total_items = 0, open = 0;
    struct list *pos, *tmp;
    list_for_each_safe(pos, tmp, &s->reg->all)
    {
        struct queue *q = list_entry(pos, struct queue, all);
        struct jnl_stats js;
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
    stat_u64(out, "get_hits", s->st.get_hits);
    stat_u64(out, "get_misses", s->st.get_misses);
    stat_u64(out, "bytes_read", s->st.bytes_read);
    stat_u64(out, "bytes_written", s->st.bytes_written);
    stat_u64(out, "queues", s->reg->count);
    stat_u64(out, "queue_creates", s->reg->queue_creates);
    stat_u64(out, "queue_deletes", s->reg->queue_deletes);
    stat_u64(out, "fsyncs", s->sync.syncs);
    list_for_each_safe(pos, tmp, &s->reg->all)
    {
        struct queue *q = list_entry(pos, struct queue, all);
        struct jnl_stats js;
        registry_queue_stats(s->reg, q, &js);
        uint64_t waiters = 0;
        struct list *w, *wt;
        list_for_each_safe(w, wt, &q->waiters) waiters++;
        stat_queue(out, q, "items", js.items);
        stat_queue(out, q, "bytes", js.bytes);
        stat_queue(out, q, "total_items", q->total_items);
        stat_queue(out, q, "logsize", js.logsize);
        stat_queue(out, q, "age", q->age_ms);
        stat_queue(out, q, "waiters", waiters);
        stat_queue(out, q, "open_transactions", js.open);
        stat_queue(out, q, "discarded", q->discarded);
    }
    buf_append(out, "END\r\n", 5);
}
