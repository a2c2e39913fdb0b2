/* Unit tests for client/addr.c: the server list "host:port,host:port". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

static struct dn_addr *parse_ok(const char *list, size_t want)
{
    struct dn_addr *a = NULL;
    size_t n = 99;
    assert_int_equal(dn_servers_parse(list, 22133, &a, &n), 0);
    assert_int_equal(n, want);
    return a;
}

static void parse_bad(const char *list)
{
    struct dn_addr *a = (struct dn_addr *)1;
    size_t n = 99;
    assert_int_equal(dn_servers_parse(list, 22133, &a, &n), -EINVAL);
    assert_null(a);
    assert_int_equal(n, 0);
}

static void one_server_with_port(void **state)
{
    (void)state;
    struct dn_addr *a = parse_ok("127.0.0.1:4000", 1);
    assert_string_equal(a[0].host, "127.0.0.1");
    assert_int_equal(a[0].port, 4000);
    assert_string_equal(a[0].name, "127.0.0.1:4000");
    free(a);
}

static void port_defaults_to_22133(void **state)
{
    (void)state;
    struct dn_addr *a = parse_ok("queue.example.com", 1);
    assert_string_equal(a[0].host, "queue.example.com");
    assert_int_equal(a[0].port, 22133);
    assert_string_equal(a[0].name, "queue.example.com:22133");
    free(a);
}

static void list_keeps_its_order(void **state)
{
    (void)state;
    struct dn_addr *a = parse_ok("a:1,b:2,c", 3);
    assert_string_equal(a[0].name, "a:1");
    assert_string_equal(a[1].name, "b:2");
    assert_string_equal(a[2].name, "c:22133");
    free(a);
}

static void blanks_around_entries_are_ignored(void **state)
{
    (void)state;
    struct dn_addr *a = parse_ok(" a:1 ,\tb:2\t", 2);
    assert_string_equal(a[0].host, "a");
    assert_string_equal(a[1].host, "b");
    assert_int_equal(a[1].port, 2);
    free(a);
}

static void ipv6_in_brackets(void **state)
{
    (void)state;
    struct dn_addr *a = parse_ok("[::1]:5000,[fe80::1%eth0],::1", 3);
    assert_string_equal(a[0].host, "::1");
    assert_int_equal(a[0].port, 5000);
    assert_string_equal(a[0].name, "[::1]:5000");
    assert_string_equal(a[1].host, "fe80::1%eth0");
    assert_int_equal(a[1].port, 22133);
    /* A bare IPv6 literal has no port (use brackets for one). */
    assert_string_equal(a[2].host, "::1");
    assert_string_equal(a[2].name, "[::1]:22133");
    free(a);
}

static void port_range(void **state)
{
    (void)state;
    struct dn_addr *a = parse_ok("h:1,h:65535", 2);
    assert_int_equal(a[0].port, 1);
    assert_int_equal(a[1].port, 65535);
    free(a);
    parse_bad("h:0");
    parse_bad("h:65536");
    parse_bad("h:123456");
    parse_bad("h:-1");
    parse_bad("h:+1");
    parse_bad("h:12a");
    parse_bad("h:");
}

static void malformed_lists_are_refused(void **state)
{
    (void)state;
    parse_bad("");
    parse_bad(" ");
    parse_bad(",");
    parse_bad("a:1,");
    parse_bad(",a:1");
    parse_bad("a:1,,b:2");
    parse_bad(":22133");
    parse_bad("a b:1");
    parse_bad("[::1");
    parse_bad("[::1]x");
    parse_bad("[::1]:");
    parse_bad("[]:1");
    parse_bad("[host]:1"); /* brackets are for IPv6 literals */
    parse_bad("bad:host:x");
    parse_bad("h/x:1");
    parse_bad("h;rm:1");
}

static void host_length_limit(void **state)
{
    (void)state;
    char list[600];
    memset(list, 'a', DN_HOST_MAX);
    strcpy(list + DN_HOST_MAX, ":1");
    struct dn_addr *a = parse_ok(list, 1);
    assert_int_equal(strlen(a[0].host), DN_HOST_MAX);
    free(a);
    memset(list, 'a', DN_HOST_MAX + 1);
    strcpy(list + DN_HOST_MAX + 1, ":1");
    parse_bad(list);
}

static void too_many_servers(void **state)
{
    (void)state;
    size_t n = DN_SERVERS_MAX + 1;
    char *list = malloc(n * 2);
    assert_non_null(list);
    for (size_t i = 0; i < n; i++) {
        list[2 * i] = 'h';
        list[2 * i + 1] = ',';
    }
    list[2 * n - 1] = '\0';
    parse_bad(list);
    list[2 * (n - 1) - 1] = '\0'; /* exactly the maximum */
    struct dn_addr *a = parse_ok(list, DN_SERVERS_MAX);
    free(a);
    free(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_server_with_port),
        cmocka_unit_test(port_defaults_to_22133),
        cmocka_unit_test(list_keeps_its_order),
        cmocka_unit_test(blanks_around_entries_are_ignored),
        cmocka_unit_test(ipv6_in_brackets),
        cmocka_unit_test(port_range),
        cmocka_unit_test(malformed_lists_are_refused),
        cmocka_unit_test(host_length_limit),
        cmocka_unit_test(too_many_servers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
