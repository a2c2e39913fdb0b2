"""Durability across restarts and crashes (SPEC section 3): stop or kill -9 the
server, start it again on the same data folder, read the items back."""

import time

from harness import drain_queue, listing


def test_restart_keeps_every_item_of_several_queues_in_order(server, client):
    queues = {q: [b"%s-%d" % (q.encode(), i) for i in range(10)] for q in ["alpha", "beta", "gamma"]}
    for i in range(10):
        for q, items in queues.items():
            assert client.set(q, items[i], flags=i) == "STORED"
    server.stop()
    server.start()
    with server.client() as c:
        for q, items in queues.items():
            for i, d in enumerate(items):
                assert c.get(q) == (i, d), q
            assert c.get(q) is None


def test_restart_twice_keeps_items(server, client):
    assert client.set("q", b"a") == "STORED"
    server.restart()
    with server.client() as c:
        assert c.set("q", b"b") == "STORED"
    server.restart()
    with server.client() as c:
        assert drain_queue(c, "q") == [b"a", b"b"]


def test_sigkill_right_after_stored_keeps_the_item(server, client):
    assert client.set("q", b"acknowledged", flags=9) == "STORED"
    server.kill()
    server.start()
    with server.client() as c:
        assert c.get("q") == (9, b"acknowledged")
        assert c.get("q") is None


def test_sigkill_after_many_pipelined_sets_keeps_all_in_order(server, client):
    items = [b"item-%05d" % i for i in range(1000)]
    client.send(b"".join(b"set q 0 0 %d\r\n%s\r\n" % (len(d), d) for d in items))
    for _ in items:
        assert client.readline() == "STORED"
    server.kill()
    server.start()
    with server.client() as c:
        assert drain_queue(c, "q") == items


def test_sigkill_keeps_sync_set(server, client):
    client.send(b"set q/sync 0 0 4\r\nsafe\r\n")
    assert client.readline() == "STORED"
    server.kill()
    server.start()
    with server.client() as c:
        assert c.get("q") == (0, b"safe")


def test_sigkill_keeps_item_with_fsync_always(make_server):
    s = make_server("--fsync", "always")
    with s.client() as c:
        assert c.set("q", b"always") == "STORED"
    s.kill()
    s.start()
    with s.client() as c:
        assert c.get("q") == (0, b"always")


def test_sigkill_keeps_item_with_fsync_never(make_server):
    s = make_server("--fsync", "never")
    with s.client() as c:
        assert c.set("q", b"never") == "STORED"
    s.kill()
    s.start()
    with s.client() as c:
        assert c.get("q") == (0, b"never")


def test_sigkill_keeps_item_with_fsync_interval(make_server):
    s = make_server("--fsync", "50")
    with s.client() as c:
        assert c.set("q", b"interval") == "STORED"
    s.kill()
    s.start()
    with s.client() as c:
        assert c.get("q") == (0, b"interval")


def test_open_item_at_kill_time_comes_back_after_restart(server, client):
    for d in [b"a", b"b"]:
        assert client.set("q", d) == "STORED"
    assert client.get("q/open") == (0, b"a")
    server.kill()
    server.start()
    with server.client() as c:
        assert c.get("q") == (0, b"a")
        assert c.get("q") == (0, b"b")
        assert c.get("q") is None


def test_open_item_at_clean_stop_comes_back_after_restart(server, client):
    for d in [b"a", b"b"]:
        assert client.set("q", d) == "STORED"
    assert client.get("q/open") == (0, b"a")
    server.stop()
    server.start()
    with server.client() as c:
        assert drain_queue(c, "q") == [b"a", b"b"]


def test_open_item_comes_back_ahead_of_later_items_after_kill(server, client):
    for d in [b"a", b"b", b"c"]:
        assert client.set("q", d) == "STORED"
    assert client.get("q") == (0, b"a")
    assert client.get("q/open") == (0, b"b")
    assert client.set("q", b"d") == "STORED"
    server.kill()
    server.start()
    with server.client() as c:
        assert drain_queue(c, "q") == [b"b", b"c", b"d"]


def test_removed_item_is_never_handed_out_again_after_kill(server, client):
    for d in [b"a", b"b", b"c"]:
        assert client.set("q", d) == "STORED"
    assert client.get("q") == (0, b"a")
    server.kill()
    server.start()
    with server.client() as c:
        assert c.get("q") == (0, b"b")
    server.kill()
    server.start()
    with server.client() as c:
        assert c.get("q") == (0, b"c")
        assert c.get("q") is None


def test_removed_item_is_never_handed_out_again_after_clean_restart(server, client):
    for d in [b"a", b"b"]:
        assert client.set("q", d) == "STORED"
    assert client.get("q") == (0, b"a")
    server.restart()
    with server.client() as c:
        assert drain_queue(c, "q") == [b"b"]


def test_closed_item_is_never_handed_out_again_after_kill(server, client):
    for d in [b"a", b"b"]:
        assert client.set("q", d) == "STORED"
    assert client.get("q/open") == (0, b"a")
    assert client.cmd("get q/close") == "END"
    server.kill()
    server.start()
    with server.client() as c:
        assert drain_queue(c, "q") == [b"b"]


def test_items_confirmed_out_of_order_stay_removed_after_kill(server, clients):
    c0 = clients(server)
    for d in [b"a", b"b", b"c", b"d"]:
        assert c0.set("q", d) == "STORED"
    c1, c2 = clients(server), clients(server)
    assert c1.get("q/open") == (0, b"a")
    assert c2.get("q/open") == (0, b"b")
    assert c2.cmd("get q/close") == "END"     # b removed while a is still open
    assert c0.get("q") == (0, b"c")           # c removed by a plain get
    server.kill()
    server.start()
    with server.client() as c:
        assert drain_queue(c, "q") == [b"a", b"d"]


def test_thousand_queues_each_with_an_item_survive_a_restart(server, client):
    n = 1000
    client.send(b"".join(b"set q%04d %d 0 6\r\nv%05d\r\n" % (i, i, i) for i in range(n)))
    for _ in range(n):
        assert client.readline() == "STORED"
    server.restart()
    with server.client() as c:
        stats = c.stats()
        missing = [i for i in range(n) if stats.get("queue_q%04d_items" % i) != "1"]
        assert not missing, f"{len(missing)} queues missing in stats, first q{missing[0]:04d}"
        assert int(stats["curr_items"]) == n
        c.send(b"".join(b"get q%04d\r\n" % i for i in range(n)))
        for i in range(n):
            assert c.read_values() == [("q%04d" % i, i, b"v%05d" % i)]


def test_delete_removes_the_queue_folder(server, client):
    before = listing(server.data)
    assert client.set("doomed", b"x") == "STORED"
    assert listing(server.data) != before, "set created nothing in the data folder"
    assert client.cmd("delete doomed") == "DELETED"
    assert listing(server.data) == before


def test_delete_survives_restart(server, client):
    assert client.set("doomed", b"x") == "STORED"
    assert client.set("kept", b"y") == "STORED"
    assert client.cmd("delete doomed") == "DELETED"
    server.kill()
    server.start()
    with server.client() as c:
        assert c.get("doomed") is None
        assert not any(k.startswith("queue_doomed_") for k in c.stats())
        assert c.get("kept") == (0, b"y")


def test_flush_empties_the_queue_and_survives_restart_as_empty(server, client):
    for d in [b"a", b"b", b"c"]:
        assert client.set("q", d) == "STORED"
    assert client.cmd("flush q") == "END"
    server.kill()
    server.start()
    with server.client() as c:
        assert c.get("q") is None
        assert c.stat("queue_q_items") == "0"
        assert c.set("q", b"fresh") == "STORED"
    server.restart()
    with server.client() as c:
        assert drain_queue(c, "q") == [b"fresh"]


def test_flush_all_survives_restart(server, client):
    for q in ["a", "b"]:
        assert client.set(q, b"x") == "STORED"
    assert client.cmd("flush_all") == "OK"
    server.kill()
    server.start()
    with server.client() as c:
        assert c.get_multi(["a", "b"]) == []


def test_expired_item_is_not_handed_out_after_restart(server, client):
    assert client.set("q", b"old", exptime=int(time.time()) - 10) == "STORED"
    assert client.set("q", b"new") == "STORED"
    server.restart()
    with server.client() as c:
        assert drain_queue(c, "q") == [b"new"]


def test_large_item_survives_kill(make_server):
    s = make_server("--max-item-size", str(16 * 1024 * 1024))
    big = bytes(range(256)) * (5 * 1024 * 1024 // 256)
    with s.client() as c:
        assert c.set("big", big, flags=5) == "STORED"
    s.kill()
    s.start()
    with s.client() as c:
        assert c.get("big") == (5, big)


def test_stats_after_restart_count_the_items(server, client):
    for i in range(5):
        assert client.set("q", b"%d" % i) == "STORED"
    assert client.get("q") == (0, b"0")
    server.restart()
    with server.client() as c:
        stats = c.stats()
        assert stats["queue_q_items"] == "4"
        assert stats["curr_items"] == "4"


def test_data_written_after_restart_appends_after_old_items(server, client):
    for d in [b"1", b"2"]:
        assert client.set("q", d) == "STORED"
    server.kill()
    server.start()
    with server.client() as c:
        assert c.set("q", b"3") == "STORED"
        assert c.get("q") == (0, b"1")
    server.kill()
    server.start()
    with server.client() as c:
        assert drain_queue(c, "q") == [b"2", b"3"]
