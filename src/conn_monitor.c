/* conn_monitor.c: Kestrel's monitor (items as open reads, for a while) and
 * confirm (the oldest open items of a queue, closed together). */
#include "conn_int.h"

#include "conffile.h"
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* monitor <q> <seconds> [max_items]: hands out items of q open, each as a
 * VALUE block sent as soon as its record is written, until max_items were
 * handed out (default: the queue's max_open), the connection holds that
 * many open on q, or the seconds are over; then END. Returns 1 when it is
 * finished, 0 while it waits for an item. */
int ci_do_monitor(struct conn *c, const struct proto_req *req)
{
    struct server *s = c->srv;
    struct proto_key k = req->key;
    uint64_t now = uv_now(s->loop);
    if (!c->mon.active) {
        c->mon.active = 1;
        c->mon.deadline_ms = now + req->key.timeout_ms;
        c->mon.handed = 0;
        s->st.cmd_monitor++;
    }
    ci_guard_end(c);                 /* an item the wait got: its answer may go */
    c->mon.handed += c->wait_served; /* an item the wait got counts */
    c->wait_served = 0;
    c->get_done = 0;
    if (c->get_failed) { /* the waited-for item answered SERVER_ERROR: the end */
        c->get_failed = 0;
        c->mon.active = 0;
        return 1;
    }
    const struct qconf *qc = conffile_queue(s->reg->conf, k.name.p, k.name.len);
    uint64_t limit = qc->v.max_open, max = req->count ? req->count : limit;
    k.opts = PROTO_OPT_OPEN;
    for (;;) {
        struct queue *q = registry_find(s->reg, k.name.p, k.name.len);
        if (c->mon.handed >= max || (q && ci_open_count(c, q) >= limit) || now >= c->mon.deadline_ms)
            break;
        ci_guard_begin(c);
        c->get_cas = 0;
        enum get_result r = ci_get_key(c, &k);
        if (r == GK_SERVED) {
            ci_guard_end(c);
            c->mon.handed++;
            continue;
        }
        if (r == GK_ERROR) {
            ci_guard_end(c);
            c->mon.active = 0;
            return 1; /* the SERVER_ERROR is the end of the answer */
        }
        /* Nothing now: wait for an item until the deadline, the guard open
         * for the item the wait may get. */
        k.opts |= PROTO_OPT_TIMEOUT;
        k.timeout_ms = (uint32_t)(c->mon.deadline_ms - now);
        if (ci_start_wait(c, &k) == 0)
            return 0;
        ci_guard_end(c);
        break;
    }
    c->mon.active = 0;
    ci_out_str(c, "END\r\n");
    return 1;
}

/* touch <q>[/ttr=ms] <seconds>: this connection's open items on q get a
 * lease ending that long from now (0 without /ttr=: none, held until the
 * connection ends). TOUCHED, or NOT_FOUND when none is open. */
int ci_do_touch(struct conn *c, const struct proto_req *req)
{
    struct server *s = c->srv;
    struct queue *q = registry_find(s->reg, req->key.name.p, req->key.name.len);
    uint64_t ttr = (req->key.opts & PROTO_OPT_TTR) ? req->key.ttr_ms : req->count * 1000;
    size_t n = 0;
    struct list *pos;
    for (pos = c->opens.next; q && pos != &c->opens; pos = pos->next) {
        struct qopen *o = list_entry(pos, struct qopen, conn_link);
        if (queue_top(o->q) != q)
            continue;
        if (!ttr)
            lease_clear(&s->reg->leases, o);
        else if (lease_set(&s->reg->leases, o, uv_now(s->loop) + ttr) < 0)
            continue;
        n++;
    }
    if (!req->noreply)
        ci_out_str(c, n ? "TOUCHED\r\n" : "NOT_FOUND\r\n");
    return 1;
}

/* confirm <q> <count>: the oldest count items this connection holds open on
 * q are removed for good. END once at least one was (and its record is
 * written), else ERROR, as Kestrel answers. */
int ci_do_confirm(struct conn *c, const struct proto_req *req)
{
    struct queue *q = registry_find(c->srv->reg, req->key.name.p, req->key.name.len);
    uint64_t done = 0;
    struct qopen *o;
    ci_guard_begin(c);
    while (q && done < req->count && (o = ci_open_on(c, q)) != NULL) {
        struct jnl_item closed = o->node->item;
        struct queue *jq = o->q; /* the journal it is in: q's, or one of q's lanes */
        int rc = queue_confirm(o);
        if (rc < 0) {
            ci_out_server_error(c, rc);
            ci_guard_end(c);
            return 1;
        }
        ci_journal_touched(c, jq);
        ci_guard_add(c, jq, &closed, 0);
        if (c->sync_wanted)
            ci_remember_undo(c, jq, &closed, 0); /* a failed fsync brings it back */
        done++;
    }
    ci_out_str(c, done ? "END\r\n" : "ERROR\r\n");
    ci_guard_end(c);
    return 1;
}
