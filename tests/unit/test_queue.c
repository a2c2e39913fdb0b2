/* Unit tests for queue/queue.c and queue/registry.c: queue folders and names,
 * reopening, deleting, get/open/confirm/abort/peek, expiry, waiters and
 * flushing.
 *
 * Every test gets a fresh directory in the temporary folder (removed
 * afterwards) with the data folder <tmp>/data in it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conffile.h"
#include "journal/journal.h"
#include "queue/lease.h"
#include "queue/queue.h"
#include "queue/registry.h"
#include "registry_fixture.h"

static int setup(void **state) { return fx_setup(state, NULL); } /* no file: the built-in settings */
static int teardown(void **state) { return fx_teardown(state); }

static struct queue *mkq_n(struct fx *fx, const char *name, size_t len)
{
    struct queue *q = NULL;
    assert_int_equal(registry_get_or_create(fx->r, name, len, &q), 0);
    assert_non_null(q);
    return q;
}

static struct queue *findq(struct fx *fx, const char *name) { return registry_find(fx->r, name, strlen(name)); }

static struct jnl_attrs attrs(uint32_t flags, uint64_t expire_ms)
{
    return (struct jnl_attrs){.flags = flags, .expire_ms = expire_ms, .priority = JNL_PRIORITY_DEFAULT};
}

static void qput(struct queue *q, const char *s)
{
    assert_int_equal(queue_put(q, &(struct jnl_attrs){.priority = JNL_PRIORITY_DEFAULT}, s, strlen(s)), 0);
}

static void qput_exp(struct queue *q, const char *s, uint64_t expire_ms)
{
    struct jnl_attrs a = attrs(0, expire_ms);
    assert_int_equal(queue_put(q, &a, s, strlen(s)), 0);
}

/* Gets the head in mode and checks it is s; returns the open record for
 * QGET_OPEN. */
static struct qopen *qget_is(struct queue *q, enum qget_mode mode, const char *s)
{
    struct qopen *o = NULL;
    struct qitem it;
    int rc = queue_get(q, mode, &o, &it);
    if (rc != 0)
        fail_msg("expected \"%s\", got rc %d", s, rc);
    assert_int_equal(it.len, strlen(s));
    assert_non_null(it.data);
    assert_int_equal(it.fd, -1);
    assert_memory_equal(it.data, s, strlen(s));
    qitem_release(&it);
    if (mode == QGET_OPEN) {
        assert_non_null(o);
        assert_ptr_equal(o->q, q);
    }
    if (mode != QGET_PEEK) { /* the end of the server's loop turn writes its ack record */
        assert_true(list_linked(&q->flush_link));
        assert_int_equal(registry_flush(q->reg), 0);
    }
    return o;
}

static void qtake(struct queue *q, const char *s) { qget_is(q, QGET_REMOVE, s); }

static void qempty(struct queue *q)
{
    struct qopen *o = NULL;
    struct qitem it;
    assert_int_equal(queue_get(q, QGET_PEEK, &o, &it), -ENOENT);
    assert_int_equal(queue_get(q, QGET_REMOVE, &o, &it), -ENOENT);
    assert_int_equal(queue_get(q, QGET_OPEN, &o, &it), -ENOENT);
    assert_null(o);
}

static void qstats(struct queue *q, uint64_t items, uint64_t open)
{
    struct jnl_stats st;
    assert_int_equal(registry_queue_stats(q->reg, q, &st), 0);
    assert_int_equal(st.items, items);
    assert_int_equal(st.open, open);
}

/* The folder of q is "<data>/q-<16 hex digits>" and its NAME file holds the
 * name's bytes exactly. */
static void check_folder(struct fx *fx, const struct queue *q, const char *name, size_t len)
{
    size_t dl = strlen(fx->data);
    assert_int_equal(strncmp(q->dir, fx->data, dl), 0);
    const char *base = q->dir + dl;
    assert_int_equal(base[0], '/');
    base++;
    assert_int_equal(strlen(base), 18);
    assert_int_equal(strncmp(base, "q-", 2), 0);
    for (int i = 2; i < 18; i++)
        assert_non_null(strchr("0123456789abcdef", base[i]));
    assert_null(strchr(base, '/'));
    char up[PATH_MAX], parent[PATH_MAX], realdata[PATH_MAX];
    tu_join(up, q->dir, "..");
    tu_realpath(up, parent);
    tu_realpath(fx->data, realdata);
    assert_string_equal(parent, realdata);

    char path[PATH_MAX], buf[512];
    tu_join(path, q->dir, "NAME");
    size_t n = tu_read_file(path, buf, sizeof(buf));
    assert_int_equal(n, len);
    assert_memory_equal(buf, name, len);
}

/* ---- the registry ---- */

static void test_get_or_create_makes_folder_with_name_file(void **state)
{
    struct fx *fx = *state;
    assert_null(findq(fx, "jobs"));
    struct queue *q = mkq(fx, "jobs");
    check_folder(fx, q, "jobs", 4);
    assert_int_equal(tu_count(fx->data, "q-", ""), 1);
    assert_ptr_equal(findq(fx, "jobs"), q);
    assert_ptr_equal(mkq(fx, "jobs"), q);
    assert_int_equal(tu_count(fx->data, "q-", ""), 1);
    assert_int_equal(fx->r->count, 1);
    qempty(q);
}

static void test_odd_names_are_distinct_queues_inside_data_dir(void **state)
{
    struct fx *fx = *state;
    static const struct {
        const char *s;
        size_t len;
    } names[] = {
        {"..", 2},        {".", 1},        {"CON", 3}, {"con", 3}, {"NUL", 3},  {"a\\b", 3}, {"a/b", 3},
        {"../escape", 9}, {"/abs", 4},     {"Q", 1},   {"q", 1},   {"x\0y", 3}, {"x", 1},    {"q-0000000000000001", 18},
        {"NAME", 4},      {"COM1.txt", 8}, {"d-1", 3},
    };
    enum { N = sizeof(names) / sizeof(names[0]) };
    struct queue *qs[N];
    for (int i = 0; i < N; i++) {
        qs[i] = mkq_n(fx, names[i].s, names[i].len);
        char item[32];
        tu_fmt(item, sizeof(item), "item %d", i);
        qput(qs[i], item);
    }
    assert_int_equal(fx->r->count, N);
    assert_int_equal(tu_count(fx->data, "q-", ""), N);
    assert_int_equal(tu_count(fx->data, "", ""), N + 2); /* nothing else in the data folder but tmp/ and FORMAT */
    assert_int_equal(tu_count(fx->tmp, "", ""), 1);      /* nothing next to it */
    for (int i = 0; i < N; i++) {
        for (int k = 0; k < i; k++)
            assert_ptr_not_equal(qs[i], qs[k]);
        check_folder(fx, qs[i], names[i].s, names[i].len);
        assert_ptr_equal(registry_find(fx->r, names[i].s, names[i].len), qs[i]);
    }
    for (int i = 0; i < N; i++) {
        char item[32];
        tu_fmt(item, sizeof(item), "item %d", i);
        qtake(qs[i], item);
        qempty(qs[i]);
    }
}

static void test_registry_open_finds_queues_again_by_name(void **state)
{
    struct fx *fx = *state;
    static const struct {
        const char *s;
        size_t len;
    } names[] = {{"alpha", 5}, {"Alpha", 5}, {"..", 2}, {"a\\b", 3}, {"x\0y", 3}};
    enum { N = sizeof(names) / sizeof(names[0]) };
    char dirs[N][PATH_MAX];
    for (int i = 0; i < N; i++) {
        struct queue *q = mkq_n(fx, names[i].s, names[i].len);
        tu_fmt(dirs[i], PATH_MAX, "%s", q->dir);
        char item[32];
        tu_fmt(item, sizeof(item), "item %d", i);
        qput(q, item);
    }
    reopen(fx);
    assert_int_equal(fx->r->count, N);
    for (int i = 0; i < N; i++) {
        struct queue *q = registry_find(fx->r, names[i].s, names[i].len);
        assert_non_null(q);
        assert_int_equal(q->name_len, names[i].len);
        assert_memory_equal(q->name, names[i].s, names[i].len);
        assert_string_equal(q->dir, dirs[i]);
        char item[32];
        tu_fmt(item, sizeof(item), "item %d", i);
        qtake(q, item);
        qempty(q);
    }
    /* a queue made after the reopen gets a folder of its own */
    struct queue *n = mkq(fx, "new");
    for (int i = 0; i < N; i++)
        assert_string_not_equal(n->dir, dirs[i]);
    assert_int_equal(tu_count(fx->data, "q-", ""), N + 1);
}

static void test_longest_name_survives_reopen(void **state)
{
    struct fx *fx = *state;
    char name[250];
    memset(name, 'n', sizeof(name));
    name[0] = '.';
    name[249] = '/';
    qput(mkq_n(fx, name, sizeof(name)), "kept");
    reopen(fx);
    struct queue *q = registry_find(fx->r, name, sizeof(name));
    assert_non_null(q);
    qtake(q, "kept");
}

static void test_registry_delete_removes_folder(void **state)
{
    struct fx *fx = *state;
    struct queue *a = mkq(fx, "a");
    struct queue *b = mkq(fx, "b");
    qput(a, "a1");
    qput(b, "b1");
    qget_is(a, QGET_OPEN, "a1"); /* an open item is freed with the queue */
    char adir[PATH_MAX];
    tu_fmt(adir, sizeof(adir), "%s", a->dir);
    assert_int_equal(registry_delete(fx->r, a), 0);
    assert_false(tu_exists(adir));
    assert_null(findq(fx, "a"));
    assert_int_equal(tu_count(fx->data, "q-", ""), 1);
    assert_int_equal(tu_count(fx->data, "d-", ""), 0);
    assert_int_equal(fx->r->count, 1);
    assert_ptr_equal(findq(fx, "b"), b);

    struct queue *a2 = mkq(fx, "a");
    assert_string_not_equal(a2->dir, adir);
    qempty(a2);
    reopen(fx);
    qempty(findq(fx, "a"));
    qtake(findq(fx, "b"), "b1");
}

/* A rename of a folder that fails as on Windows while a file in it is
 * still open (a sync job's descriptor): the rename to d-<id> of a delete. */
static int rename_busy_folder(void *ctx, const char *from, const char *to)
{
    (void)ctx;
    const char *base = strrchr(to, '/');
    if (base && strncmp(base + 1, "d-", 2) == 0)
        return -EACCES;
    return jio_posix()->rename(NULL, from, to);
}

/* The delete goes on in place, its NAME first, so a queue made again under
 * the same name is the only one with it, also after a restart. */
static void test_registry_delete_whose_folder_cannot_be_renamed(void **state)
{
    struct fx *fx = *state;
    struct queue *a = mkq(fx, "a");
    qput(a, "old");
    char adir[PATH_MAX];
    tu_fmt(adir, sizeof(adir), "%s", a->dir);
    struct jio busy = *jio_posix();
    busy.rename = rename_busy_folder;
    const struct jio *real = fx->r->jconf.io;
    fx->r->jconf.io = &busy;
    assert_int_equal(registry_delete(fx->r, a), 0);
    fx->r->jconf.io = real;
    assert_false(tu_exists(adir));
    assert_null(findq(fx, "a"));
    qput(mkq(fx, "a"), "new");
    reopen(fx);
    qtake(findq(fx, "a"), "new");
    qempty(findq(fx, "a"));
}

/* registry.h: "Opens every queue found in data_dir (created if missing)". */
static void test_registry_open_creates_missing_data_dir(void **state)
{
    struct fx *fx = *state;
    char missing[PATH_MAX];
    struct registry *r = NULL;
    tu_join(missing, fx->tmp, "fresh");
    int rc = registry_open(&r, missing, &fx->conf, fx->file);
    assert_int_equal(rc, 0);
    assert_true(tu_exists(missing));
    struct queue *q = NULL;
    assert_int_equal(registry_get_or_create(r, "x", 1, &q), 0);
    registry_close(r);
}

static void test_registry_open_removes_unfinished_creates_and_deletes(void **state)
{
    struct fx *fx = *state;
    mkq(fx, "keep");
    registry_close(fx->r);
    fx->r = NULL;
    /* a create that stopped before its NAME file, and a delete that stopped
     * after its rename */
    char noname[PATH_MAX], gone[PATH_MAX], gone_file[PATH_MAX];
    tu_join(noname, fx->data, "q-0000000000000009");
    tu_join(gone, fx->data, "d-0000000000000003");
    tu_join(gone_file, gone, "seg-0000000000000001.dat");
    tu_mkdir(noname);
    tu_mkdir(gone);
    char creating[PATH_MAX], creating_file[PATH_MAX];
    tu_join(creating, fx->data, "c-0000000000000005"); /* a create cut short before its rename */
    tu_join(creating_file, creating, "NAME");
    tu_mkdir(creating);
    FILE *cf = fopen(creating_file, "w");
    assert_non_null(cf);
    fclose(cf);
    FILE *f = fopen(gone_file, "w");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
    assert_int_equal(registry_open(&fx->r, fx->data, &fx->conf, fx->file), 0);
    assert_false(tu_exists(noname));
    assert_false(tu_exists(gone));
    assert_false(tu_exists(creating));
    assert_int_equal(fx->r->count, 1);
    assert_non_null(findq(fx, "keep"));
    /* folder numbers are never reused */
    struct queue *q = mkq(fx, "next");
    char want[PATH_MAX];
    tu_join(want, fx->data, "q-000000000000000a");
    assert_string_equal(q->dir, want);
}

/* ---- the open-journal cache ---- */

/* With room for 2 open journals, 10 queues are used in turn: idle journals
 * are closed (what they owe a sync handed over by path), an open item keeps
 * its journal open, and every queue serves its items, also after a restart
 * that opens none of them until used. */
static void test_journal_cache_closes_idle_journals_and_reopens_on_use(void **state)
{
    struct fx *fx = *state;
    registry_close(fx->r);
    fx->conf.sync_never = 0;
    assert_int_equal(registry_open(&fx->r, fx->data, &fx->conf, fx->file), 0);
    registry_set_max_open(fx->r, 2);
    char name[16], item[16];
    struct queue *q0 = mkq(fx, "q0");
    qput(q0, "held");
    struct qopen *o = qget_is(q0, QGET_OPEN, "held");
    for (int i = 1; i < 10; i++) {
        tu_fmt(name, sizeof(name), "q%d", i);
        tu_fmt(item, sizeof(item), "item%d", i);
        qput(mkq(fx, name), item);
        assert_true(fx->r->nopen_jnl <= 3); /* 2, and q0 pinned by its open item */
    }
    assert_non_null(q0->jnl);
    assert_true(fx->r->parks >= 7);
    size_t n;
    char **owed = registry_take_owed(fx->r, &n);
    assert_true(n >= 7 * 2); /* each closed journal owed its segment, ack file and folder */
    for (size_t i = 0; i < n; i++) {
        assert_true(tu_exists(owed[i]));
        free(owed[i]);
    }
    free(owed);
    qstats(findq(fx, "q1"), 1, 0); /* counts kept while closed */
    assert_int_equal(queue_confirm(o), 0);
    for (int i = 1; i < 10; i++) {
        tu_fmt(name, sizeof(name), "q%d", i);
        tu_fmt(item, sizeof(item), "item%d", i);
        qget_is(findq(fx, name), QGET_PEEK, item);
    }
    reopen(fx);
    registry_set_max_open(fx->r, 2);
    assert_int_equal(fx->r->nopen_jnl, 0);
    for (int i = 1; i < 10; i++) {
        tu_fmt(name, sizeof(name), "q%d", i);
        tu_fmt(item, sizeof(item), "item%d", i);
        qtake(findq(fx, name), item);
        assert_true(fx->r->nopen_jnl <= 2);
    }
    qempty(findq(fx, "q0"));
}

/* ---- queue semantics ---- */

static void test_items_come_out_fifo(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "fifo");
    qput(q, "one");
    qput(q, "two");
    qput(q, "three");
    qtake(q, "one");
    qput(q, "four");
    qtake(q, "two");
    qtake(q, "three");
    qtake(q, "four");
    qempty(q);
    assert_int_equal(q->total_items, 4);
}

static void test_put_keeps_flags(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "flags");
    struct jnl_attrs a = attrs(0xabcdu, 0);
    assert_int_equal(queue_put(q, &a, "v", 1), 0);
    struct qitem it;
    assert_int_equal(queue_get(q, QGET_REMOVE, NULL, &it), 0);
    assert_int_equal(it.flags, 0xabcdu);
    qitem_release(&it);
}

static void test_open_then_abort_puts_item_back_at_head(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    qput(q, "a");
    qput(q, "b");
    qput(q, "c");
    struct qopen *oa = qget_is(q, QGET_OPEN, "a");
    qstats(q, 3, 1);
    struct qopen *ob = qget_is(q, QGET_OPEN, "b"); /* a is not handed out twice */
    queue_abort(oa);
    qstats(q, 3, 1);
    qtake(q, "a");
    queue_abort(ob);
    qtake(q, "b");
    qtake(q, "c");
    qempty(q);
}

static void test_confirm_removes_open_item(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    qput(q, "a");
    qput(q, "b");
    struct qopen *o = qget_is(q, QGET_OPEN, "a");
    assert_int_equal(queue_confirm(o), 0);
    qstats(q, 1, 0);
    assert_true(list_empty(&q->opens));
    reopen(fx);
    q = findq(fx, "q");
    qtake(q, "b");
    qempty(q);
}

static void test_open_item_comes_back_after_reopen(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    qput(q, "a");
    qput(q, "b");
    qget_is(q, QGET_OPEN, "a");
    reopen(fx);
    q = findq(fx, "q");
    qtake(q, "a");
    qtake(q, "b");
    qempty(q);
}

static void test_peek_does_not_remove(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    qput(q, "a");
    qput(q, "b");
    qget_is(q, QGET_PEEK, "a");
    qget_is(q, QGET_PEEK, "a");
    qstats(q, 2, 0);
    qtake(q, "a");
    qget_is(q, QGET_PEEK, "b");
    qtake(q, "b");
    qempty(q);
}

static void test_expired_items_are_never_returned(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    uint64_t now = queue_now_ms();
    qput_exp(q, "old", now - 1000);
    qput_exp(q, "live", 0);
    qput_exp(q, "just-old", now - 1);
    qput_exp(q, "later", now + 3600 * 1000);
    qput_exp(q, "older", 1);
    qget_is(q, QGET_PEEK, "live");
    qtake(q, "live");
    struct qopen *o = qget_is(q, QGET_OPEN, "later");
    queue_abort(o);
    qtake(q, "later");
    qempty(q);
    qstats(q, 0, 0);

    struct queue *e = mkq(fx, "only-expired");
    qput_exp(e, "x", now - 5);
    qput_exp(e, "y", now - 5);
    qempty(e);
    qstats(e, 0, 0);
}

static void test_large_item_is_handed_out_as_fd(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "big");
    size_t len = QUEUE_INLINE_MAX + 12345;
    char *p = malloc(len), *got = malloc(len);
    assert_non_null(p);
    assert_non_null(got);
    for (size_t i = 0; i < len; i++)
        p[i] = (char)(i * 7 + 3);
    struct jnl_attrs a = attrs(5, 0);
    assert_int_equal(queue_put(q, &a, p, len), 0);
    qput(q, "small");
    struct qitem it;
    assert_int_equal(queue_get(q, QGET_REMOVE, NULL, &it), 0);
    assert_null(it.data);
    assert_true(it.fd >= 0);
    assert_int_equal(it.len, len);
    assert_int_equal(it.flags, 5);
    assert_int_equal(tu_pread(it.fd, got, len, (long long)it.off), (ssize_t)len);
    assert_memory_equal(got, p, len);
    qitem_release(&it);
    assert_int_equal(it.fd, -1);
    qtake(q, "small");
    free(p);
    free(got);
}

/* ---- waiters ---- */

struct events {
    int who[32];
    enum qwait_event ev[32];
    int n;
    char served[32][16];
    int nserved;
};

struct tw {
    struct qwaiter w;
    struct events *log;
    struct queue *q; /* where to get from; set when it waits */
    int id;
    int serve; /* try a get on READY (else decline) */
};

static int tw_cb(struct qwaiter *w, enum qwait_event ev)
{
    struct tw *t = (struct tw *)((char *)w - offsetof(struct tw, w));
    struct events *l = t->log;
    assert_true(l->n < 32);
    l->who[l->n] = t->id;
    l->ev[l->n] = ev;
    l->n++;
    if (ev == QWAIT_GONE)
        return 0;
    if (t->serve) {
        struct qitem it;
        if (queue_get(t->q, QGET_REMOVE, NULL, &it) == 0) {
            tu_fmt(l->served[l->nserved++], 16, "%d:%.*s", t->id, (int)it.len, it.data);
            qitem_release(&it);
            return 1;
        }
    }
    queue_wait_front(t->q, w);
    return 0;
}

static void tw_init(struct tw *t, struct events *l, int id, int serve)
{
    memset(t, 0, sizeof(*t));
    t->w.cb = tw_cb;
    list_init(&t->w.link);
    t->log = l;
    t->id = id;
    t->serve = serve;
}

static void tw_wait(struct tw *t, struct queue *q)
{
    t->q = q;
    queue_wait(q, &t->w);
}

static void test_waiter_on_empty_queue_is_called_on_put(void **state)
{
    struct fx *fx = *state;
    struct events l = {0};
    struct tw t;
    struct queue *q = mkq(fx, "q");
    tw_init(&t, &l, 1, 1);
    tw_wait(&t, q);
    assert_int_equal(l.n, 0);
    qput(q, "hello");
    assert_int_equal(l.n, 1);
    assert_int_equal(l.who[0], 1);
    assert_int_equal(l.ev[0], QWAIT_READY);
    assert_int_equal(l.nserved, 1);
    assert_string_equal(l.served[0], "1:hello");
    assert_true(list_empty(&q->waiters));
    qempty(q);
    qput(q, "again"); /* no longer waiting: not called */
    assert_int_equal(l.n, 1);
}

static void test_waiters_are_called_first_come_first_served(void **state)
{
    struct fx *fx = *state;
    struct events l = {0};
    struct tw t[3];
    struct queue *q = mkq(fx, "q");
    for (int i = 0; i < 3; i++) {
        tw_init(&t[i], &l, i + 1, 1);
        tw_wait(&t[i], q);
    }
    qput(q, "i1");
    qput(q, "i2");
    qput(q, "i3");
    assert_int_equal(l.nserved, 3);
    assert_string_equal(l.served[0], "1:i1");
    assert_string_equal(l.served[1], "2:i2");
    assert_string_equal(l.served[2], "3:i3");
    assert_true(list_empty(&q->waiters));
    qempty(q);
}

static void test_waiter_returning_zero_stops_the_round(void **state)
{
    struct fx *fx = *state;
    struct events l = {0};
    struct tw t1, t2;
    struct queue *q = mkq(fx, "q");
    tw_init(&t1, &l, 1, 0); /* declines */
    tw_init(&t2, &l, 2, 1);
    tw_wait(&t1, q);
    tw_wait(&t2, q);
    qput(q, "x");
    assert_int_equal(l.n, 1);
    assert_int_equal(l.who[0], 1);
    assert_int_equal(l.nserved, 0);
    /* t1 put itself back at the front, t2 still waits behind it */
    assert_ptr_equal(list_first(&q->waiters), &t1.w.link);
    assert_ptr_equal(q->waiters.prev, &t2.w.link);
    queue_unwait(&t1.w);
    queue_wake(q);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.served[0], "2:x");
}

static void test_abort_wakes_a_waiter(void **state)
{
    struct fx *fx = *state;
    struct events l = {0};
    struct tw t;
    struct queue *q = mkq(fx, "q");
    qput(q, "a");
    struct qopen *o = qget_is(q, QGET_OPEN, "a");
    tw_init(&t, &l, 1, 1);
    tw_wait(&t, q);
    queue_abort(o);
    assert_int_equal(l.nserved, 1);
    assert_string_equal(l.served[0], "1:a");
    qempty(q);
}

static void test_registry_delete_tells_waiters_gone(void **state)
{
    struct fx *fx = *state;
    struct events l = {0};
    struct tw t[3];
    struct queue *q = mkq(fx, "doomed");
    for (int i = 0; i < 3; i++) {
        tw_init(&t[i], &l, i + 1, 1);
        tw_wait(&t[i], q);
    }
    assert_int_equal(registry_delete(fx->r, q), 0);
    assert_int_equal(l.n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(l.who[i], i + 1);
        assert_int_equal(l.ev[i], QWAIT_GONE);
        assert_false(list_linked(&t[i].w.link));
    }
    assert_int_equal(l.nserved, 0);
}

static void test_absent_waiter_moves_to_the_new_queue(void **state)
{
    struct fx *fx = *state;
    struct events l = {0};
    struct tw t1, t2, t3;
    tw_init(&t1, &l, 1, 1);
    tw_init(&t2, &l, 2, 1);
    tw_init(&t3, &l, 3, 1);
    t1.w.name = t2.w.name = "later";
    t1.w.name_len = t2.w.name_len = 5;
    t3.w.name = "other";
    t3.w.name_len = 5;
    registry_wait_absent(fx->r, &t1.w);
    registry_wait_absent(fx->r, &t3.w);
    registry_wait_absent(fx->r, &t2.w);

    struct queue *unrelated = mkq(fx, "late");
    qput(unrelated, "u");
    assert_int_equal(l.n, 0);

    struct queue *q = mkq(fx, "later");
    t1.q = t2.q = q;
    assert_int_equal(l.n, 0);
    assert_ptr_equal(list_first(&q->waiters), &t1.w.link);
    assert_ptr_equal(q->waiters.prev, &t2.w.link);
    assert_ptr_equal(list_first(&fx->r->absent_waiters), &t3.w.link);
    qput(q, "x");
    qput(q, "y");
    assert_int_equal(l.nserved, 2);
    assert_string_equal(l.served[0], "1:x");
    assert_string_equal(l.served[1], "2:y");
    queue_unwait(&t3.w);
    assert_true(list_empty(&fx->r->absent_waiters));
}

/* ---- flushing ---- */

static void test_flush_drops_open_items_too(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q");
    qput(q, "a");
    qput(q, "b");
    qput(q, "c");
    struct qopen *o = qget_is(q, QGET_OPEN, "a");
    struct list conn; /* a connection's list of open items */
    list_init(&conn);
    list_push_back(&conn, &o->conn_link);
    assert_int_equal(queue_flush(q), 0);
    assert_true(list_empty(&conn)); /* unlinked from the connection */
    assert_true(list_empty(&q->opens));
    qstats(q, 0, 0);
    qempty(q);
    reopen(fx);
    q = findq(fx, "q");
    qempty(q);
    qput(q, "d");
    qtake(q, "d");
}

static void test_flush_all_empties_all_queues(void **state)
{
    struct fx *fx = *state;
    struct queue *qs[3] = {mkq(fx, "one"), mkq(fx, "two"), mkq(fx, "three")};
    for (int i = 0; i < 3; i++) {
        qput(qs[i], "x");
        qput(qs[i], "y");
    }
    qget_is(qs[1], QGET_OPEN, "x");
    assert_int_equal(registry_flush_all(fx->r), 0);
    for (int i = 0; i < 3; i++) {
        qstats(qs[i], 0, 0);
        qempty(qs[i]);
    }
    reopen(fx);
    qempty(findq(fx, "one"));
    qempty(findq(fx, "two"));
    qempty(findq(fx, "three"));
}

/* A holder's count of its open items on one queue (the max_open check) is
 * kept as they go, by any way: abort, confirm, a lease running out; an item
 * of another queue leaves it alone, and the queue's deletion makes it stale. */
static void test_open_items_count_themselves_out_of_their_holders_tally(void **state)
{
    struct fx *fx = *state;
    struct queue *q = mkq(fx, "q"), *r = mkq(fx, "r");
    struct open_tally t = {.q = q};
    for (const char *s = "abcd"; *s; s++)
        qput(q, (char[]){*s, 0});
    qput(r, "x");
    struct qopen *o[4];
    for (int i = 0; i < 3; i++) {
        o[i] = qget_is(q, QGET_OPEN, (char[]){(char)('a' + i), 0});
        o[i]->tally = &t;
        t.n++;
    }
    struct qopen *ox = qget_is(r, QGET_OPEN, "x");
    ox->tally = &t;
    queue_abort(ox); /* r's: not counted */
    assert_int_equal(t.n, 3);
    queue_abort(o[0]);
    assert_int_equal(t.n, 2);
    assert_int_equal(queue_confirm(o[1]), 0);
    assert_int_equal(t.n, 1);
    assert_int_equal(lease_set(&fx->r->leases, o[2], 5), 0);
    assert_int_equal(registry_expire_leases(fx->r, 10), 1);
    assert_int_equal(t.n, 0);
    assert_false(t.stale);
    o[3] = qget_is(q, QGET_OPEN, "a");
    o[3]->tally = &t;
    t.n++;
    assert_int_equal(registry_delete(fx->r, q), 0);
    assert_true(t.stale);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_get_or_create_makes_folder_with_name_file),
        T(test_odd_names_are_distinct_queues_inside_data_dir),
        T(test_registry_open_finds_queues_again_by_name),
        T(test_longest_name_survives_reopen),
        T(test_registry_delete_removes_folder),
        T(test_registry_delete_whose_folder_cannot_be_renamed),
        T(test_registry_open_creates_missing_data_dir),
        T(test_registry_open_removes_unfinished_creates_and_deletes),
        T(test_journal_cache_closes_idle_journals_and_reopens_on_use),
        T(test_items_come_out_fifo),
        T(test_put_keeps_flags),
        T(test_open_then_abort_puts_item_back_at_head),
        T(test_confirm_removes_open_item),
        T(test_open_item_comes_back_after_reopen),
        T(test_peek_does_not_remove),
        T(test_expired_items_are_never_returned),
        T(test_large_item_is_handed_out_as_fd),
        T(test_waiter_on_empty_queue_is_called_on_put),
        T(test_waiters_are_called_first_come_first_served),
        T(test_waiter_returning_zero_stops_the_round),
        T(test_abort_wakes_a_waiter),
        T(test_registry_delete_tells_waiters_gone),
        T(test_absent_waiter_moves_to_the_new_queue),
        T(test_flush_drops_open_items_too),
        T(test_flush_all_empties_all_queues),
        T(test_open_items_count_themselves_out_of_their_holders_tally),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
