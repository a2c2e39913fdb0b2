/* tests/crash/crash_main.c: crash-states, the power-loss explorer for the
 * journal (docs/hardening.md, "Crash-state exploration").
 *
 *   crash-states [--seed N] [--states N] [--verbose] [--ordered-dirs]
 *                [--workload W [--point K]] [--ops N] [--dir PATH] [--keep]
 *   crash-states --self-test [--seed N] [--states N]
 *
 * Runs seeded workloads through the journal API on a recording I/O table
 * (crash_work.c), builds the file states a power cut after each recorded
 * event may leave (crash_state.c), recovers each and checks it against what
 * was promised (crash_check.c). Exit status: 0 when no violation was found,
 * 1 when one was, 2 when the harness itself failed. --self-test runs with
 * fsyncs that lie, and with XFER records left out, and exits 0 only if the
 * explorer catches every lie. */
#include "crash_check.h"
#include "crash_model.h"
#include "crash_state.h"
#include "crash_util.h"
#include "crash_work.h"

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_STATES 30000  /* per run */
#define SELF_TEST_STATES 4500 /* per run: four runs take what three of 6,000 took */
#define WORKLOAD_STATES 2000  /* states explored per workload */
#define MAX_PASSES 64         /* variants tried per crash point, at most */
#define EXHAUSTIVE 16         /* crash points with at most this many variants get all of them */
#define DETAILED 6            /* violating states described in full */
#define LISTED 40             /* ... and in one line */
#define MAX_KINDS 32

struct opts {
    uint64_t seed;
    long states;
    int verbose, self_test, keep, ops;
    int quiet;            /* count violations, describe none (--self-test) */
    int ordered_dirs;     /* a folder's entry changes persist in order */
    long workload, point; /* -1: all */
    const char *dir;
    unsigned lie;
};

struct kind {
    char text[96];
    long n;
};

/* Everything one run accumulates; lives on main()'s stack. */
struct run {
    const struct opts *o;
    char base[PATH_MAX], statedir[PATH_MAX + 8];
    long states, points, violations, bad_states, no_journal, workloads, damaged;
    size_t drained, in_xfer;
    struct kind kinds[MAX_KINDS];
    int nkinds;
    int harness_failed;
};

/* ---- a set of seen states ---- */

struct seen {
    uint64_t *slot;
    size_t cap, n;
};

/* Adds key; returns 1 if it is new. */
static int seen_add(struct seen *s, uint64_t key)
{
    key |= 1; /* 0 marks an empty slot */
    if ((s->n + 1) * 2 > s->cap) {
        struct seen g = {.cap = s->cap ? s->cap * 2 : 4096};
        g.slot = cu_calloc(g.cap, sizeof(*g.slot));
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i])
                seen_add(&g, s->slot[i]);
        free(s->slot);
        *s = g;
    }
    size_t i = (size_t)(cu_mix(key) & (s->cap - 1));
    for (; s->slot[i]; i = (i + 1) & (s->cap - 1))
        if (s->slot[i] == key)
            return 0;
    s->slot[i] = key;
    s->n++;
    return 1;
}

/* ---- variants ---- */

/* The inode (file or folder) whose list a choice belongs to. */
static int group_of(const struct cf_rec *rec, uint32_t ev)
{
    const struct cf_ev *e = &rec->ev[ev];
    return e->op == CF_WRITE || e->op == CF_TRUNC ? e->ino : -2 - e->dir;
}

/* Picks the variant of pass `pass` at a crash point. Pass 0 keeps every open
 * event (what a process crash leaves), pass 1 drops them all (only what was
 * fsynced), later passes enumerate small spaces and sample large ones: each
 * event on its own with a pass-dependent odds, or, every third pass, a prefix
 * of each file's and folder's events (in-order writeback). Returns 0 when the
 * point has no variant left for this pass. */
static int variant(const struct cf_rec *rec, const struct cs_point *pt, uint64_t space, int pass, uint64_t seed,
                   uint16_t *pick)
{
    static const unsigned keep_pct[] = {50, 80, 20, 65};
    struct cu_prng p = {seed};
    if (pass < 2) {
        for (size_t i = 0; i < pt->n; i++)
            pick[i] = (uint16_t)pass;
        return pass == 0 || pt->n > 0;
    }
    if (space <= EXHAUSTIVE) {
        uint64_t idx = (uint64_t)pass - 2;
        if (idx >= space)
            return 0;
        for (size_t i = 0; i < pt->n; i++) {
            pick[i] = (uint16_t)(idx % pt->c[i].nopt);
            idx /= pt->c[i].nopt;
        }
        return 1;
    }
    unsigned keep = keep_pct[(pass / 3) % 4];
    int prefix = pass % 3 == 2, group = -1, dropping = 0;
    for (size_t i = 0; i < pt->n; i++) {
        int g = group_of(rec, pt->c[i].ev);
        if (g != group) {
            group = g;
            dropping = 0;
        }
        int kept = prefix ? !(dropping = dropping || !cu_chance(&p, keep)) : cu_chance(&p, keep);
        pick[i] = kept ? 0 : 1;
        if (kept && pt->c[i].nopt > 2 && cu_chance(&p, 40))
            pick[i] = (uint16_t)cu_range(&p, 2, pt->c[i].nopt - 1);
    }
    return 1;
}

/* --ordered-dirs: once one change to a folder's entries is dropped, so are
 * the later ones (file systems that journal them in order: ext4, XFS). */
static void order_dirs(const struct cf_rec *rec, const struct cs_point *pt, uint16_t *pick)
{
    int group = -1, dropping = 0;
    for (size_t i = 0; i < pt->n; i++) {
        int g = group_of(rec, pt->c[i].ev);
        if (g >= 0)
            continue;
        if (g != group) {
            group = g;
            dropping = 0;
        }
        dropping |= pick[i] == 1;
        if (dropping)
            pick[i] = 1;
    }
}

/* ---- reporting ---- */

/* Tallies a violation by its kind: the message without numbers and
 * parenthesised details. */
static void count_kind(struct run *r, const char *msg)
{
    char k[sizeof(r->kinds[0].text)];
    size_t n = 0;
    for (const char *p = msg; *p && n + 2 < sizeof(k); p++) {
        if (*p >= '0' && *p <= '9') {
            if (n == 0 || k[n - 1] != 'N')
                k[n++] = 'N';
            while (p[1] >= '0' && p[1] <= '9')
                p++;
        } else if (*p == '(') { /* details: ids, lists, positions */
            while (p[1] && p[1] != ')')
                p++;
            if (p[1])
                p++;
            while (n && k[n - 1] == ' ')
                n--;
        } else {
            k[n++] = *p;
        }
    }
    while (n && k[n - 1] == ' ')
        n--;
    k[n] = '\0';
    for (int i = 0; i < r->nkinds; i++) {
        if (strcmp(r->kinds[i].text, k) == 0) {
            r->kinds[i].n++;
            return;
        }
    }
    if (r->nkinds < MAX_KINDS) {
        snprintf(r->kinds[r->nkinds].text, sizeof(r->kinds[0].text), "%s", k);
        r->kinds[r->nkinds++].n = 1;
    }
}

/* Prints the journal's log lines of one recovery, indented, without their
 * time stamps. */
static void print_said(const char *said, size_t n)
{
    for (const char *p = said, *end = said ? said + n : NULL; p && p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        const char *sp = memchr(p, ' ', len); /* after the time stamp */
        const char *msg = sp ? sp + 1 : p;
        printf("  journal: %.*s\n", (int)(len - (size_t)(msg - p)), msg);
        p += len + 1;
    }
}

static void report(struct run *r, int widx, size_t k, int pass, const struct cm_expect *e, const struct cc_result *res,
                   const struct cs_walk *w, const struct cs_point *pt, const uint16_t *pick, const struct cw_run *cw,
                   const char *said, size_t nsaid)
{
    r->violations += res->nviol;
    r->bad_states++;
    for (int i = 0; i < res->nviol && i < CC_MAX_MSGS; i++)
        count_kind(r, res->msg[i]);
    if (r->o->quiet || (r->bad_states > LISTED && !r->o->verbose))
        return;
    char ev[160] = "(start)";
    if (k > 0)
        cf_describe(&cw->rec, k - 1, ev, sizeof(ev));
    printf("VIOLATION seed=%" PRIu64 " workload=%d point=%zu pass=%d: crash after event %zu (%s); %ld sync points "
           "done; %zu items must come back, %zu in transfer, %zu may\n",
           r->o->seed, widx, k, pass, k, ev, e->sync + 1, e->nmust, e->nxfer, e->nmay);
    for (int i = 0; i < res->nviol && i < CC_MAX_MSGS; i++)
        printf("  - %s\n", res->msg[i]);
    if (r->bad_states <= DETAILED || r->o->verbose) {
        print_said(said, nsaid);
        size_t cap = 64 * 1024;
        char *d = cu_realloc(NULL, cap);
        cs_describe(w, pt, pick, d, cap);
        printf("  state (events not yet durable, and their fate):\n%s", d);
        free(d);
        printf("  replay: crash-states --seed %" PRIu64 " --workload %d --point %zu --verbose\n", r->o->seed, widx, k);
    }
}

/* ---- exploring one workload ---- */

/* Two crash points whose states match are one state only if they also
 * expect the same (classes and delivery counts): the key covers both. */
static uint64_t expect_hash(const struct cm_expect *e)
{
    uint64_t h = cu_mix((uint64_t)e->acked_any + 3 * e->started);
    for (size_t t = 0; t < e->n; t++)
        if (e->cls[t] != CM_MUSTNOT)
            h = cu_mix(h ^ (t * 8 + e->cls[t]) ^ ((uint64_t)e->dlo[t] << 32) ^ ((uint64_t)e->dhi[t] << 48));
    return h;
}

static void explore(struct run *r, int widx, uint64_t wseed, const struct cw_run *cw, long budget)
{
    const struct opts *o = r->o;
    struct seen seen = {0};
    struct cs_point pt = {0};
    struct cs_image img = {0};
    uint16_t *pick = NULL;
    size_t cappick = 0, nev = cw->rec.nev;
    size_t kmin = o->point >= 0 ? (size_t)o->point : 0, kmax = o->point >= 0 ? (size_t)o->point : nev;
    struct jnl_conf jc = {.segment_size = cw->segment_size, .ack_compact_bytes = cw->ack_compact_bytes};
    long states = 0;
    if (kmax > nev)
        kmax = nev;
    if (o->point >= 0 && o->verbose) {
        printf("events before crash point %zu (the crash comes after the last one):\n", kmin);
        for (size_t i = kmin > 24 ? kmin - 24 : 0; i < kmin; i++) {
            char d[256];
            cf_describe(&cw->rec, i, d, sizeof(d));
            printf("    ev %5zu %s\n", i, d);
        }
    }
    for (int pass = 0; pass < MAX_PASSES && states < budget; pass++) {
        long fresh = 0;
        struct cs_walk w;
        cs_walk_init(&w, &cw->rec);
        for (size_t k = kmin; k <= kmax && states < budget; k++) {
            cs_walk_to(&w, k);
            cs_point_build(&w, cw->qdir_ino, &pt);
            if (pt.n > cappick) {
                cappick = pt.n * 2;
                pick = cu_realloc(pick, cappick * sizeof(*pick));
            }
            uint64_t seed = cu_mix(wseed ^ cu_mix(k * 131 + (uint64_t)pass));
            if (!variant(&cw->rec, &pt, cs_point_space(&pt), pass, seed, pick))
                continue;
            if (o->ordered_dirs)
                order_dirs(&cw->rec, &pt, pick);
            cs_image_build(&w, &pt, pick, &img);
            struct cm_expect e;
            cm_expect(&cw->model, (uint32_t)k, &e);
            if (!seen_add(&seen, cu_mix(img.hash ^ expect_hash(&e)))) {
                cm_expect_free(&e);
                continue;
            }
            struct cc_result res;
            char *said = NULL; /* what the journal logged while recovering */
            size_t nsaid = 0;
            FILE *lf = open_memstream(&said, &nsaid);
            struct log lg = {LOG_INFO, lf};
            jc.log = lf ? &lg : NULL;
            int rc = cs_materialize(&img, r->statedir);
            if (rc < 0) {
                fprintf(stderr, "crash-states: cannot write a state into %s: %s\n", r->statedir, strerror(-rc));
                r->harness_failed = 1;
                cm_expect_free(&e);
                cs_remove(r->statedir);
                if (lf)
                    fclose(lf);
                free(said);
                goto out;
            }
            cc_check(r->statedir, &jc, &cw->model, &e, &res);
            cs_remove(r->statedir);
            if (lf)
                fclose(lf);
            states++;
            fresh++;
            r->drained += res.drained;
            r->in_xfer += res.in_xfer;
            r->damaged += (long)res.damaged;
            r->no_journal += res.no_journal;
            if (o->point >= 0 && o->verbose) {
                size_t cap = 64 * 1024;
                char *d = cu_realloc(NULL, cap);
                cs_describe(&w, &pt, pick, d, cap);
                printf("point %zu pass %d: %zu handed out, %zu in transfer, %zu damaged, %s; %d violations\n%s", k,
                       pass, res.drained, res.in_xfer, res.damaged, res.no_journal ? "no journal" : "journal",
                       res.nviol, d);
                print_said(said, nsaid);
                free(d);
            }
            if (res.nviol)
                report(r, widx, k, pass, &e, &res, &w, &pt, pick, cw, said, nsaid);
            free(said);
            cm_expect_free(&e);
        }
        cs_walk_free(&w);
        if (fresh == 0 && pass >= 2 + EXHAUSTIVE)
            break;
    }
out:
    r->states += states;
    r->points += (long)(kmax - kmin + 1);
    free(seen.slot);
    free(pick);
    cs_point_free(&pt);
    cs_image_free(&img);
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

/* Runs and explores workload widx. */
static void workload(struct run *r, int widx, long budget)
{
    const struct opts *o = r->o;
    uint64_t wseed = cu_mix(o->seed + (uint64_t)widx * UINT64_C(0x9e3779b97f4a7c15));
    char root[PATH_MAX + 16];
    snprintf(root, sizeof(root), "%s/w%d", r->base, widx);
    if (mkdir(root, 0755) < 0) {
        fprintf(stderr, "crash-states: cannot make %s: %s\n", root, strerror(errno));
        r->harness_failed = 1;
        return;
    }
    struct cw_run cw;
    struct cw_conf c = {.seed = wseed,
                        .root = root,
                        .nops = o->ops,
                        .lie = o->lie,
                        .verbose = o->verbose && o->workload >= 0};
    int rc = cw_run(&cw, &c);
    if (rc < 0) {
        fprintf(stderr, "crash-states: workload %d: %s\n", widx, cw.failure);
        r->harness_failed = 1;
    } else {
        if (cw.failure[0]) {
            r->violations++;
            r->bad_states++;
            count_kind(r, cw.failure);
            if (!o->quiet)
                printf("VIOLATION seed=%" PRIu64 " workload=%d: %s\n  replay: crash-states --seed %" PRIu64
                       " --workload %d --verbose\n",
                       o->seed, widx, cw.failure, o->seed, widx);
        }
        long before = r->states, vbefore = r->violations;
        explore(r, widx, wseed, &cw, budget);
        const struct cw_counts *n = &cw.n;
        if (o->verbose || o->workload >= 0)
            printf("workload %d: segment %" PRIu64 ", ack_compact %" PRIu64 "; %d ops: %u appends (%u blobs), %u gets, "
                   "%u opens, %u confirms, %u releases, %u restores, %u clears, %u maintains, %u syncs "
                   "(+%u failed), %u reopens, %u transfers (%u ended, %u given up, %u found by a reopen); "
                   "%zu events; %ld states, %ld violations\n",
                   widx, cw.segment_size, cw.ack_compact_bytes, o->ops, n->appends, n->blobs, n->gets, n->opens,
                   n->confirms, n->releases, n->restores, n->clears, n->maintains, n->syncs, n->failed_syncs,
                   n->reopens, n->xfers, n->xfer_ends, n->xfer_cancels, n->xfer_reopened, cw.rec.nev,
                   r->states - before, r->violations - vbefore);
    }
    r->workloads++;
    cw_free(&cw);
    if (!o->keep)
        nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A folder for temporary files: --dir, $TMPDIR, /dev/shm (memory: the real
 * fsyncs of the live runs cost nothing there), /tmp. */
static const char *tmp_parent(const struct opts *o)
{
    const char *t = o->dir ? o->dir : getenv("TMPDIR");
    if (t && *t)
        return t;
    return access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
}

/* One whole run: workloads until the state budget is spent. Returns the
 * number of violations, or -1 if the harness failed. */
static long run_all(struct run *r)
{
    const struct opts *o = r->o;
    snprintf(r->base, sizeof(r->base), "%s/darner-crash-XXXXXX", tmp_parent(o));
    if (!mkdtemp(r->base)) {
        fprintf(stderr, "crash-states: cannot make a folder in %s: %s\n", tmp_parent(o), strerror(errno));
        return -1;
    }
    snprintf(r->statedir, sizeof(r->statedir), "%s/state", r->base);
    if (o->workload >= 0) {
        workload(r, (int)o->workload,
                 o->point >= 0 ? MAX_PASSES : (o->states < WORKLOAD_STATES ? o->states : WORKLOAD_STATES));
    } else {
        for (int w = 0; r->states < o->states && !r->harness_failed; w++) {
            long left = o->states - r->states;
            workload(r, w, left < WORKLOAD_STATES ? left : WORKLOAD_STATES);
        }
    }
    if (!o->keep)
        nftw(r->base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    else
        printf("kept %s\n", r->base);
    return r->harness_failed ? -1 : r->violations;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: crash-states [--seed N] [--states N] [--verbose] [--workload W [--point K]] [--ops N]\n"
               "                    [--ordered-dirs] [--dir PATH] [--keep] [--self-test]\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
            o->verbose = 1;
            continue;
        }
        if (strcmp(a, "--self-test") == 0) {
            o->self_test = 1;
            continue;
        }
        if (strcmp(a, "--keep") == 0) {
            o->keep = 1;
            continue;
        }
        if (strcmp(a, "--ordered-dirs") == 0) {
            o->ordered_dirs = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (!v)
            goto bad;
        i++;
        if (strcmp(a, "--dir") == 0) {
            o->dir = v;
            continue;
        }
        unsigned long long n = strtoull(v, &end, 10);
        if (!end || *end || end == v)
            goto bad;
        if (strcmp(a, "--seed") == 0)
            o->seed = n;
        else if (strcmp(a, "--states") == 0 && n > 0 && n < 100000000)
            o->states = (long)n;
        else if (strcmp(a, "--workload") == 0 && n < 1000000)
            o->workload = (long)n;
        else if (strcmp(a, "--point") == 0 && n < 100000000)
            o->point = (long)n;
        else if (strcmp(a, "--ops") == 0 && n > 0 && n < 1000000)
            o->ops = (int)n;
        else
            goto bad;
    }
    if (o->point >= 0 && o->workload < 0) {
        fprintf(stderr, "crash-states: --point needs --workload\n");
        return -1;
    }
    return 0;
bad:
    usage(stderr);
    return -1;
}

static void summary(const struct run *r, const char *what, double secs)
{
    printf("crash-states%s: seed %" PRIu64 ": %ld workloads, %ld crash points, %ld states checked "
           "(%zu items handed out, %zu in transfer, %ld dropped as damaged, %ld with no journal yet) in %.1f s: "
           "%ld violations in %ld states\n",
           what, r->o->seed, r->workloads, r->points, r->states, r->drained, r->in_xfer, r->damaged, r->no_journal,
           secs, r->violations, r->bad_states);
    for (int i = 0; i < r->nkinds; i++)
        printf("  %6ld x %s\n", r->kinds[i].n, r->kinds[i].text);
}

/* --self-test: each lie must be caught. The same seed and budget run
 * honestly first; a lie counts as caught when it adds violating states (all
 * of them, for a journal without faults). */
static int self_test(const struct opts *base)
{
    static const struct {
        unsigned lie;
        const char *name;
    } lies[] = {{0, "honest fsyncs (the baseline)"},
                {CF_LIE_ACK_FSYNC, "ack-file fsyncs are no-ops"},
                {CF_LIE_DIR_FSYNC, "folder fsyncs are no-ops"},
                {CF_LIE_XFER_REC, "XFER records are never written"}};
    int ok = 1;
    long baseline = 0;
    for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
        struct opts o = *base;
        o.lie = lies[i].lie;
        o.verbose = 0;
        o.quiet = 1;
        struct run r = {.o = &o};
        double t0 = now_s();
        long v = run_all(&r);
        if (v < 0)
            return 2;
        int caught = r.bad_states > baseline;
        printf("self-test: %s: %ld states, %ld violations in %ld states (%.1f s)%s\n", lies[i].name, r.states,
               r.violations, r.bad_states, now_s() - t0,
               i == 0   ? ""
               : caught ? ": caught"
                        : ": NOT CAUGHT");
        for (int k = 0; k < r.nkinds; k++)
            printf("  %6ld x %s\n", r.kinds[k].n, r.kinds[k].text);
        if (i == 0)
            baseline = r.bad_states;
        else
            ok &= caught;
    }
    printf("self-test: seed %" PRIu64 ": %s\n", base->seed, ok ? "every lie caught" : "FAILED");
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct opts o = {.states = -1, .workload = -1, .point = -1, .ops = 300};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    o.seed = cu_mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid()) % 1000000000;
    if (parse(argc, argv, &o) < 0)
        return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("crash-states: seed %" PRIu64 " (replay with --seed %" PRIu64 ")\n", o.seed, o.seed);
    if (o.states < 0) /* states per lie for --self-test, in all otherwise */
        o.states = o.self_test ? SELF_TEST_STATES : DEFAULT_STATES;
    if (o.self_test)
        return self_test(&o);
    struct run r = {.o = &o};
    double t0 = now_s();
    long v = run_all(&r);
    summary(&r, "", now_s() - t0);
    if (v < 0)
        return 2;
    return v > 0 ? 1 : 0;
}
