/* Unit tests for client/cluster.c's reading of a `cluster` answer
 * (docs/protocol.md) and fleet.c's round-robin pick for sets across cells. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "fleet.h"

static int line(struct dn_cluster *a, const char *s) { return dn_cluster_line(a, s, strlen(s)); }

static void members_leader_and_cells(void **state)
{
    (void)state;
    struct dn_cluster a;
    dn_cluster_init(&a);
    assert_int_equal(line(&a, "MEMBER 1 127.0.0.1:22201 follower"), 0);
    assert_int_equal(line(&a, "MEMBER 2 127.0.0.1:22202 leader"), 0);
    assert_int_equal(line(&a, "MEMBER 3 [::1]:22203 follower"), 0);
    assert_int_equal(line(&a, "CELL 10.0.0.5:22133"), 0);
    assert_int_equal(line(&a, "CELL [fe80::1]:22134"), 0);
    assert_int_equal(line(&a, "END"), 1);
    assert_int_equal(a.nmembers, 3);
    assert_int_equal(a.leader, 1);
    assert_string_equal(a.members[0].name, "127.0.0.1:22201");
    assert_string_equal(a.members[2].host, "::1");
    assert_int_equal(a.members[2].port, 22203);
    assert_int_equal(a.ncells, 2);
    assert_string_equal(a.cells[0].name, "10.0.0.5:22133");
    assert_int_equal(dn_addr_find(a.members, a.nmembers, "127.0.0.1:22202"), 1);
    assert_int_equal(dn_addr_find(a.members, a.nmembers, "127.0.0.1:1"), SIZE_MAX);
    dn_cluster_free(&a);
    assert_int_equal(a.nmembers, 0);
    assert_int_equal(a.leader, SIZE_MAX);
}

static void no_leader_and_single_server(void **state)
{
    (void)state;
    struct dn_cluster a;
    dn_cluster_init(&a);
    assert_int_equal(line(&a, "MEMBER 1 127.0.0.1:22201 follower"), 0);
    assert_int_equal(line(&a, "END"), 1);
    assert_int_equal(a.leader, SIZE_MAX);
    dn_cluster_free(&a);
    /* a single server with no cells answers END alone */
    assert_int_equal(line(&a, "END"), 1);
    assert_int_equal(a.nmembers + a.ncells, 0);
}

static void other_answers_are_refused(void **state)
{
    (void)state;
    struct dn_cluster a;
    dn_cluster_init(&a);
    assert_int_equal(line(&a, "ERROR"), -EPROTO); /* a server without `cluster` */
    assert_int_equal(line(&a, "SERVER_ERROR no quorum"), -EPROTO);
    assert_int_equal(line(&a, "MEMBER 1 127.0.0.1:22201"), -EPROTO);
    assert_int_equal(line(&a, "MEMBER 1 127.0.0.1:99999 leader"), -EPROTO);
    assert_int_equal(line(&a, "CELL"), -EPROTO);
    assert_int_equal(line(&a, ""), -EPROTO);
    assert_int_equal(line(&a, "END x"), -EPROTO);
    dn_cluster_free(&a);
}

static void sets_go_round_robin_over_healthy_cells(void **state)
{
    (void)state;
    struct dn_fleet f;
    struct dn_addr *addrs = calloc(3, sizeof(*addrs));
    assert_non_null(addrs);
    assert_int_equal(dn_fleet_init(&f, addrs, 3, 7), 0);
    f.next_set = 1;
    assert_int_equal(dn_fleet_pick_next(&f, NULL, 0), 1);
    assert_int_equal(dn_fleet_pick_next(&f, NULL, 0), 2);
    assert_int_equal(dn_fleet_pick_next(&f, NULL, 0), 0);
    dn_fleet_failed(&f, 1, 0); /* backing off: skipped */
    assert_int_equal(dn_fleet_pick_next(&f, NULL, 1), 2);
    unsigned char skip[3] = {1, 0, 0};
    assert_int_equal(dn_fleet_pick_next(&f, skip, 1), 2);
    skip[2] = 1;
    assert_int_equal(dn_fleet_pick_next(&f, skip, 1), 3); /* none */
    dn_fleet_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(members_leader_and_cells),
        cmocka_unit_test(no_leader_and_single_server),
        cmocka_unit_test(other_answers_are_refused),
        cmocka_unit_test(sets_go_round_robin_over_healthy_cells),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
