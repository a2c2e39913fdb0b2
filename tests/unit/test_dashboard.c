/* Unit tests for dashboard_asset: the embedded dashboard files are found by
 * path with their content type, any other path is -ENOENT, and the page
 * loads nothing from another host. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dashboard.h"

struct asset {
    int rc;
    const char *type;
    const unsigned char *body;
    size_t len;
};

static struct asset get_n(const char *path, size_t n)
{
    struct asset a = {0};
    a.rc = dashboard_asset(path, n, &a.type, &a.body, &a.len);
    return a;
}

static struct asset get(const char *path) { return get_n(path, strlen(path)); }

static const char *text(const struct asset *a) { return (const char *)a->body; }

/* The file in the source tree, whole, for comparing with what is served. */
static char *slurp(const char *rel, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", DARNER_SOURCE_DIR, rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void the_page_is_served_at_root_and_index(void **state)
{
    (void)state;
    struct asset root = get("/"), index = get("/index.html");
    assert_int_equal(root.rc, 0);
    assert_int_equal(index.rc, 0);
    assert_string_equal(root.type, "text/html; charset=utf-8");
    assert_ptr_equal(root.body, index.body);
    assert_int_equal(root.len, index.len);
    assert_memory_equal(root.body, "<!DOCTYPE html>", 15);
    assert_int_equal(root.body[root.len], '\0'); /* NUL after the bytes, not counted */
    assert_int_equal(strlen(text(&root)), root.len);
}

static void what_the_page_loads_is_served(void **state)
{
    (void)state;
    struct asset js = get("/dashboard.js"), css = get("/dashboard.css"), chart = get("/chart.js");
    assert_int_equal(js.rc, 0);
    assert_string_equal(js.type, "text/javascript; charset=utf-8");
    assert_int_equal(css.rc, 0);
    assert_string_equal(css.type, "text/css; charset=utf-8");
    assert_int_equal(chart.rc, 0);
    assert_string_equal(chart.type, "text/javascript; charset=utf-8");
    /* Debian's Chart.js, whole: its banner and the global it defines */
    assert_non_null(strstr(text(&chart), "Chart.js v"));
    assert_true(chart.len > 100000);
    /* and the page names each of them */
    struct asset root = get("/");
    assert_non_null(strstr(text(&root), "src=\"chart.js\""));
    assert_non_null(strstr(text(&root), "src=\"dashboard.js\""));
    assert_non_null(strstr(text(&root), "href=\"dashboard.css\""));
}

static void the_served_files_are_the_source_files(void **state)
{
    (void)state;
    static const char *const files[] = {"index.html", "dashboard.js", "dashboard.css"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char rel[64], path[64];
        snprintf(rel, sizeof(rel), "src/dashboard/%s", files[i]);
        snprintf(path, sizeof(path), "/%s", files[i]);
        size_t n;
        char *src = slurp(rel, &n);
        struct asset a = get(path);
        assert_int_equal(a.rc, 0);
        assert_int_equal(a.len, n);
        assert_memory_equal(a.body, src, n);
        free(src);
    }
}

static void nothing_is_loaded_from_elsewhere(void **state)
{
    (void)state;
    /* our own files name no other host: no http(s) URL, no protocol-relative one */
    static const char *const own[] = {"/", "/dashboard.js", "/dashboard.css"};
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
        struct asset a = get(own[i]);
        assert_int_equal(a.rc, 0);
        assert_null(strstr(text(&a), "http://"));
        assert_null(strstr(text(&a), "https://"));
        assert_null(strstr(text(&a), "src=\"//"));
        assert_null(strstr(text(&a), "href=\"//"));
    }
    /* and the page forbids it to the browser */
    struct asset root = get("/");
    assert_non_null(strstr(text(&root), "default-src 'none'"));
}

static void other_paths_are_not_found(void **state)
{
    (void)state;
    static const char *const bad[] = {"",         "/x",         "/index.htm",  "/index.html/", "/chart.jsx",
                                      "chart.js", "//chart.js", "/CHART.JS",   "/../chart.js", "/stats.json",
                                      "/healthz", "/dashboard", "/chart.js/x", "/.js"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct asset a = get(bad[i]);
        assert_int_equal(a.rc, -ENOENT);
    }
}

static void only_path_len_bytes_count(void **state)
{
    (void)state;
    /* the path need not end with a NUL: the admin port hands a slice of the request target */
    assert_int_equal(get_n("/chart.js?x=1", 9).rc, 0);
    assert_int_equal(get_n("/index.html", 1).rc, 0);     /* "/" */
    assert_int_equal(get_n("/chart.js", 8).rc, -ENOENT); /* "/chart.j" */
    assert_int_equal(get_n("/chart.js", 0).rc, -ENOENT);
    struct asset a = get_n("/dashboard.cssXYZ", 14);
    assert_int_equal(a.rc, 0);
    assert_string_equal(a.type, "text/css; charset=utf-8");
}

static void every_embedded_file_is_reachable(void **state)
{
    (void)state;
    assert_int_equal(dashboard_nfiles, 4);
    for (size_t i = 0; i < dashboard_nfiles; i++) {
        char path[256];
        snprintf(path, sizeof(path), "/%s", dashboard_files[i].name);
        struct asset a = get(path);
        assert_int_equal(a.rc, 0);
        assert_ptr_equal(a.body, dashboard_files[i].body);
        assert_int_equal(a.len, dashboard_files[i].len);
        assert_true(a.len > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_page_is_served_at_root_and_index),
        cmocka_unit_test(what_the_page_loads_is_served),
        cmocka_unit_test(the_served_files_are_the_source_files),
        cmocka_unit_test(nothing_is_loaded_from_elsewhere),
        cmocka_unit_test(other_paths_are_not_found),
        cmocka_unit_test(only_path_len_bytes_count),
        cmocka_unit_test(every_embedded_file_is_reachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
