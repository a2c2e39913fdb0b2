/* Unit tests for the settings table (settings.c) and the config file
 * (conffile.c): value forms, sections, inheritance, patterns, errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include "conffile.h"
#include "config.h"
#include "settings.h"

/* ---- values ---- */

static void test_sizes_take_binary_units(void **state)
{
    (void)state;
    uint64_t v;
    const struct {
        const char *text;
        uint64_t want;
    } ok[] = {{"4096", 4096},           {"64K", 64 << 10},  {"64KiB", 64 << 10},  {"64kb", 64 << 10},
              {"128MiB", 128ull << 20}, {"1G", 1ull << 30}, {"2GiB", 2ull << 30}, {"0", 0}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(settings_parse_size(ok[i].text, &v), 0);
        assert_int_equal(v, ok[i].want);
    }
    const char *bad[] = {"", "-1", "12X", "MiB", "1.5M", "99999999999999999999", "18014398509481984TiB", " 5"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(settings_parse_size(bad[i], &v), -EINVAL);
}

static void test_times_take_units_and_a_bare_unit(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(settings_parse_time("250ms", 1, &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(settings_parse_time("30s", 1, &v), 0);
    assert_int_equal(v, 30000);
    assert_int_equal(settings_parse_time("5m", 1, &v), 0);
    assert_int_equal(v, 300000);
    assert_int_equal(settings_parse_time("2h", 1, &v), 0);
    assert_int_equal(v, 7200000);
    assert_int_equal(settings_parse_time("1d", 1, &v), 0);
    assert_int_equal(v, 86400000);
    assert_int_equal(settings_parse_time("1500", 1, &v), 0); /* bare: milliseconds */
    assert_int_equal(v, 1500);
    assert_int_equal(settings_parse_time("90", 1000, &v), 0); /* bare: seconds, where the setting says */
    assert_int_equal(v, 90000);
    assert_int_equal(settings_parse_time("5 s", 1, &v), -EINVAL);
    assert_int_equal(settings_parse_time("5sec", 1, &v), -EINVAL);
    assert_int_equal(settings_parse_time("s", 1, &v), -EINVAL);
}

static void test_every_setting_default_parses_and_formats_back(void **state)
{
    (void)state;
    struct config c;
    struct qsettings q;
    char text[300];
    const char *why;
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &SETTINGS[i];
        void *dst = s->scope == SCOPE_SERVER ? (void *)&c : (void *)&q;
        assert_non_null(s->help);
        assert_int_equal(setting_parse(s, s->def, dst, &why), 0);
        setting_format(s, dst, text, sizeof(text));
        /* formatting then parsing again gives the same value */
        char again[300];
        assert_int_equal(setting_parse(s, text, dst, &why), 0);
        setting_format(s, dst, again, sizeof(again));
        assert_string_equal(text, again);
    }
}

static void test_setting_values_are_checked(void **state)
{
    (void)state;
    struct config c;
    struct qsettings q;
    const char *why;
    config_defaults(&c);
    qsettings_defaults(&q);
    assert_int_equal(setting_parse(setting_find(SCOPE_SERVER, "port"), "70000", &c, &why), -EINVAL);
    assert_non_null(why);
    assert_int_equal(setting_parse(setting_find(SCOPE_SERVER, "port"), "8080", &c, &why), 0);
    assert_int_equal(c.port, 8080);
    assert_int_equal(setting_parse(setting_find(SCOPE_SERVER, "fsync"), "sometimes", &c, &why), -EINVAL);
    assert_int_equal(setting_parse(setting_find(SCOPE_SERVER, "fsync"), "250ms", &c, &why), 0);
    assert_int_equal(c.fsync.policy, FSYNC_PERIODIC);
    assert_int_equal(c.fsync.ms, 250);
    assert_int_equal(setting_parse(setting_find(SCOPE_SERVER, "fsync"), "always", &c, &why), 0);
    assert_int_equal(c.fsync.policy, FSYNC_ALWAYS);
    assert_int_equal(setting_parse(setting_find(SCOPE_SERVER, "compat"), "Kestrel", &c, &why), 0);
    assert_int_equal(c.compat, COMPAT_KESTREL);
    assert_int_equal(setting_parse(setting_find(SCOPE_SERVER, "compat"), "redis", &c, &why), -EINVAL);
    assert_int_equal(setting_parse(setting_find(SCOPE_QUEUE, "max_items"), "unlimited", &q, &why), 0);
    assert_int_equal(q.max_items, UINT64_MAX);
    assert_int_equal(setting_parse(setting_find(SCOPE_QUEUE, "max_items"), "12", &q, &why), 0);
    assert_int_equal(q.max_items, 12);
    assert_int_equal(setting_parse(setting_find(SCOPE_QUEUE, "max_items"), "many", &q, &why), -EINVAL);
    assert_int_equal(setting_parse(setting_find(SCOPE_QUEUE, "discard_old_when_full"), "yes", &q, &why), 0);
    assert_int_equal(q.discard_old_when_full, 1);
    assert_int_equal(setting_parse(setting_find(SCOPE_QUEUE, "discard_old_when_full"), "perhaps", &q, &why), -EINVAL);
    assert_int_equal(setting_parse(setting_find(SCOPE_QUEUE, "max_size"), "128MiB", &q, &why), 0);
    assert_int_equal(q.max_size, 128ull << 20);
    assert_int_equal(setting_parse(setting_find(SCOPE_QUEUE, "max_age"), "30s", &q, &why), 0);
    assert_int_equal(q.max_age_ms, 30000);
    assert_null(setting_find(SCOPE_QUEUE, "port"));
    assert_null(setting_find(SCOPE_SERVER, "max_items"));
}

/* ---- the config file ---- */

struct fx {
    char dir[PATH_MAX], path[PATH_MAX];
    struct conffile *f;
    struct config srv;
    char warnings[4096];
    int nwarn;
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    tu_mkdtemp(fx->dir);
    tu_join(fx->path, fx->dir, "darner.conf");
    config_defaults(&fx->srv);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    conffile_free(fx->f);
    tu_rmtree(fx->dir);
    free(fx);
    return 0;
}

static void on_warn(void *ctx, const char *line)
{
    struct fx *fx = ctx;
    size_t n = strlen(fx->warnings);
    snprintf(fx->warnings + n, sizeof(fx->warnings) - n, "%s\n", line);
    fx->nwarn++;
}

/* Loads text as the config file; returns conffile_load's result. */
static int load(struct fx *fx, const char *text, struct conf_error *e)
{
    FILE *f = fopen(fx->path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    conffile_free(fx->f);
    fx->f = NULL;
    return conffile_load(fx->path, &fx->srv, on_warn, fx, &fx->f, e);
}

static const struct qconf *qc(struct fx *fx, const char *name) { return conffile_queue(fx->f, name, strlen(name)); }

/* The message of a file that must be refused, which names its line. */
static void refused_at(struct fx *fx, const char *text, int line, const char *words)
{
    struct conf_error e;
    char where[PATH_MAX + 16];
    assert_int_equal(load(fx, text, &e), -EINVAL);
    assert_null(fx->f);
    tu_fmt(where, sizeof(where), "%s:%d: ", fx->path, line);
    if (strncmp(e.msg, where, strlen(where)) != 0 || !strstr(e.msg, words))
        fail_msg("for\n%s\nexpected \"%s...%s\", got \"%s\"", text, where, words, e.msg);
}

static void test_no_file_gives_the_builtin_defaults(void **state)
{
    struct fx *fx = *state;
    struct conf_error e;
    assert_int_equal(conffile_load(NULL, NULL, NULL, NULL, &fx->f, &e), 0);
    const struct qconf *q = qc(fx, "anything");
    assert_int_equal(q->v.max_items, UINT64_MAX);
    assert_int_equal(q->v.discard_old_when_full, 0);
    assert_int_equal(q->line[0], 0);
    assert_string_equal(conffile_path(fx->f), "");
}

static void test_server_section_sets_server_settings(void **state)
{
    struct fx *fx = *state;
    struct conf_error e;
    assert_int_equal(load(fx,
                          "; a comment\n"
                          "[server]\n"
                          "port = 4000\n"
                          "fsync = 250ms\n"
                          "max_item_size = 64MiB\n"
                          "idle_timeout = 90   ; seconds, for this key\n"
                          "compat = kestrel\n",
                          &e),
                     0);
    assert_int_equal(fx->srv.port, 4000);
    assert_int_equal(fx->srv.fsync.policy, FSYNC_PERIODIC);
    assert_int_equal(fx->srv.fsync.ms, 250);
    assert_int_equal(fx->srv.max_item_size, 64ull << 20);
    assert_int_equal(fx->srv.idle_timeout_ms, 90000);
    assert_int_equal(fx->srv.compat, COMPAT_KESTREL);
}

static void test_queue_settings_inherit_default_then_queue_then_own(void **state)
{
    struct fx *fx = *state;
    struct conf_error e;
    assert_int_equal(load(fx,
                          "[queue]\n"
                          "max_items = 100\n"
                          "max_size = 1MiB\n"
                          "\n"
                          "[queue \"orders\"]\n"
                          "max_items = 5\n",
                          &e),
                     0);
    const struct qconf *o = qc(fx, "orders"), *other = qc(fx, "other");
    assert_int_equal(o->v.max_items, 5);              /* its own section */
    assert_int_equal(o->v.max_size, 1 << 20);         /* from [queue] */
    assert_int_equal(o->v.max_item_size, UINT64_MAX); /* built in */
    assert_int_equal(other->v.max_items, 100);
    assert_string_equal(o->section, "[queue \"orders\"]");
    assert_string_equal(other->section, "[queue]");
    /* where each value came from */
    int mi = -1, ms = -1, mis = -1;
    for (size_t i = 0; i < conffile_nqset(); i++) {
        const char *k = conffile_qset(i)->key;
        if (strcmp(k, "max_items") == 0)
            mi = (int)i;
        if (strcmp(k, "max_size") == 0)
            ms = (int)i;
        if (strcmp(k, "max_item_size") == 0)
            mis = (int)i;
    }
    assert_int_equal(o->line[mi], 6);
    assert_int_equal(o->line[ms], 3);
    assert_int_equal(o->line[mis], 0);
}

static void test_most_specific_pattern_wins_and_a_tie_goes_to_the_later(void **state)
{
    struct fx *fx = *state;
    struct conf_error e;
    assert_int_equal(load(fx,
                          "[queue \"jobs.*\"]\n"
                          "max_items = 1\n"
                          "[queue \"jobs.mail.*\"]\n"
                          "max_items = 2\n"
                          "[queue \"*.mail.*\"]\n"
                          "max_items = 3\n"
                          "[queue \"jobs.mail.urgent\"]\n"
                          "max_items = 4\n"
                          "[queue \"*bs.pr*\"]\n"
                          "max_items = 5\n",
                          &e),
                     0);
    assert_int_equal(qc(fx, "jobs.mail.urgent")->v.max_items, 4); /* exact name first */
    assert_int_equal(qc(fx, "jobs.mail.slow")->v.max_items, 2);   /* 10 literal characters beat 6 */
    assert_int_equal(qc(fx, "x.mail.y")->v.max_items, 3);
    /* jobs.* and *bs.pr* both have 5 literal characters: the later one */
    assert_int_equal(qc(fx, "jobs.print")->v.max_items, 5);
    assert_int_equal(qc(fx, "other")->v.max_items, UINT64_MAX);
}

static void test_alias_lists_its_destinations(void **state)
{
    struct fx *fx = *state;
    struct conf_error e;
    assert_int_equal(load(fx,
                          "[alias \"everyone\"]\n"
                          "destination_queues = a, b ,c\n",
                          &e),
                     0);
    const struct conf_alias *a = conffile_alias(fx->f, "everyone", 8);
    assert_non_null(a);
    assert_int_equal(a->ndest, 3);
    assert_string_equal(a->dest[0], "a");
    assert_string_equal(a->dest[1], "b");
    assert_string_equal(a->dest[2], "c");
    assert_null(conffile_alias(fx->f, "a", 1));
}

static void test_kestrel_keys_that_mean_nothing_warn_once_each(void **state)
{
    struct fx *fx = *state;
    struct conf_error e;
    assert_int_equal(load(fx,
                          "[queue]\n"
                          "max_memory_size = 128MiB\n"
                          "max_journal_size = 1GiB\n"
                          "[queue \"q\"]\n"
                          "default_journal_size = 16MiB\n"
                          "min_journal_compact_delay = 1m\n",
                          &e),
                     0);
    assert_int_equal(fx->nwarn, 4);
    assert_non_null(strstr(fx->warnings, ":2: max_memory_size"));
    assert_non_null(strstr(fx->warnings, ":6: min_journal_compact_delay"));
}

static void test_mistakes_are_refused_with_file_and_line(void **state)
{
    struct fx *fx = *state;
    refused_at(fx, "[server]\nport = 4000\nprot = 5\n", 3, "unknown key 'prot' in [server]");
    refused_at(fx, "[queue]\nmax_items = lots\n", 2, "max_items wants a whole number or unlimited, not 'lots'");
    refused_at(fx, "[queue \"q\"]\nmax_itemz = 1\n", 2, "unknown key 'max_itemz' in [queue \"q\"]");
    refused_at(fx, "max_items = 1\n", 1, "outside any section");
    refused_at(fx, "[queues]\n", 1, "unknown section [queues]");
    refused_at(fx, "[queue q]\n", 1, "bad section header");
    refused_at(fx, "[queue \"a/b\"]\n", 1, "not a valid queue name");
    refused_at(fx, "[server]\nport = 1\n\n[server]\nport = 2\n", 4, "already defined at line 1");
    refused_at(fx, "[queue]\nmax_items = 1\nmax_items = 2\n", 3, "already set in this section, at line 2");
    refused_at(fx, "[server]\nthis line is wrong\n", 2, "not a `key = value` line");
    refused_at(fx, "[alias \"x\"]\nmax_items = 1\n", 2, "destination_queues only");
    refused_at(fx, "[alias \"x\"]\ndestination_queues = a, b/c\n", 2, "'b/c' is not a queue name");
    refused_at(fx, "[queue \"x\"]\n[alias \"x\"]\ndestination_queues = a\n", 2, "already defined at line 1");
    refused_at(fx, "[server]\nfsync = sometimes\n", 2, "fsync wants always, never or a time");
    char longer[600];
    tu_fmt(longer, sizeof(longer), "[queue]\nmax_items = 3 ; %0300d\n", 0);
    refused_at(fx, longer, 2, "line longer than");
}

static void test_a_refused_file_changes_no_server_setting_it_reached(void **state)
{
    struct fx *fx = *state;
    struct conf_error e;
    /* the file is checked whole; what the caller gets on failure is only the error */
    assert_int_equal(load(fx, "[server]\nport = 4000\nbogus = 1\n", &e), -EINVAL);
    assert_null(fx->f);
    assert_int_equal(fx->srv.port, 22133);
}

static void test_missing_file_is_an_error_naming_it(void **state)
{
    struct fx *fx = *state;
    struct conf_error e;
    char path[PATH_MAX + 16];
    tu_fmt(path, sizeof(path), "%s/none.conf", fx->dir);
    assert_int_equal(conffile_load(path, &fx->srv, NULL, NULL, &fx->f, &e), -ENOENT);
    assert_non_null(strstr(e.msg, "none.conf"));
}

/* ---- docs ---- */

static char *slurp(const char *rel)
{
    char path[PATH_MAX];
    tu_fmt(path, sizeof(path), "%s/%s", DARNER_SOURCE_DIR, rel);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void test_docs_and_example_name_every_setting(void **state)
{
    (void)state;
    char want[128];
    const char *doc = slurp("docs/configuration.md");
    for (size_t i = 0; i < NSETTINGS; i++) {
        tu_fmt(want, sizeof(want), "| `%s` |", SETTINGS[i].key);
        if (!strstr(doc, want))
            fail_msg("docs/configuration.md has no table row for %s", SETTINGS[i].key);
    }
    const char *example = slurp("darner.conf.example");
    for (size_t i = 0; i < NSETTINGS; i++) {
        tu_fmt(want, sizeof(want), "\n%s =", SETTINGS[i].key);
        if (!strstr(example, want))
            fail_msg("darner.conf.example does not set %s", SETTINGS[i].key);
    }
}

/* The example file loads, and sets every value to its default. */
static void test_example_file_loads_at_the_defaults(void **state)
{
    struct fx *fx = *state;
    struct conf_error e;
    char path[PATH_MAX];
    tu_fmt(path, sizeof(path), "%s/darner.conf.example", DARNER_SOURCE_DIR);
    struct config dflt;
    config_defaults(&dflt);
    if (conffile_load(path, &fx->srv, on_warn, fx, &fx->f, &e) < 0)
        fail_msg("%s", e.msg);
    assert_int_equal(fx->nwarn, 0);
    assert_memory_equal(&fx->srv, &dflt, sizeof(dflt));
    struct qsettings q;
    qsettings_defaults(&q);
    assert_memory_equal(&qc(fx, "any")->v, &q, sizeof(q));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_take_binary_units),
        cmocka_unit_test(test_times_take_units_and_a_bare_unit),
        cmocka_unit_test(test_every_setting_default_parses_and_formats_back),
        cmocka_unit_test(test_setting_values_are_checked),
        T(test_no_file_gives_the_builtin_defaults),
        T(test_server_section_sets_server_settings),
        T(test_queue_settings_inherit_default_then_queue_then_own),
        T(test_most_specific_pattern_wins_and_a_tie_goes_to_the_later),
        T(test_alias_lists_its_destinations),
        T(test_kestrel_keys_that_mean_nothing_warn_once_each),
        T(test_mistakes_are_refused_with_file_and_line),
        T(test_a_refused_file_changes_no_server_setting_it_reached),
        T(test_missing_file_is_an_error_naming_it),
        cmocka_unit_test(test_docs_and_example_name_every_setting),
        T(test_example_file_loads_at_the_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
