"""Priorities: set q/pri=N, lanes, default_priority, priority_policy
(docs/scheduling.md)."""

import collections

from harness import drain_queue


def write(tmp_path, text):
    p = tmp_path / "darner.conf"
    p.write_text(text)
    return p


def test_strict_order_most_urgent_first_fifo_within_a_level(client):
    sets = [(5, "a"), (9, "b"), (0, "c"), (5, "d"), (0, "e"), (2, "f"), (9, "g")]
    for pri, data in sets:
        assert client.set(f"q/pri={pri}", data.encode()) == "STORED"
    assert client.set("q", b"h") == "STORED"              # the default level, 5
    want = [d for _, d in sorted(sets, key=lambda s: s[0])]  # sorted() is stable: FIFO within a level
    want.insert(want.index("d") + 1, "h")
    assert drain_queue(client, "q") == [w.encode() for w in want]


def test_a_bad_priority_is_refused_and_stores_nothing(client):
    for key in ("q/pri=10", "q/pri=-1", "q/pri=", "q/pri=1x", "q/pri=1/pri=2", "q/prio=1"):
        client.send(f"set {key} 0 0 1\r\nx\r\n".encode())
        assert client.readline().startswith("CLIENT_ERROR"), key
    assert client.get_data("q") is None
    client.send(b"set q/pri=10 0 0 1\r\nx\r\n")
    assert client.readline() == "CLIENT_ERROR bad option: pri is 0 (most urgent) to 9"
    assert client.set("q/pri=3/sync", b"x") == "STORED"
    assert client.get_data("q") == b"x"


def test_stats_count_items_per_level_and_hide_lanes(client):
    assert client.set("q/pri=0", b"a") == "STORED"
    assert client.set("q/pri=0", b"b") == "STORED"
    assert client.set("q", b"c") == "STORED"
    assert client.set("q/pri=7", b"d") == "STORED"
    st = client.stats()
    assert st["queue_q_items"] == "4"
    assert st["queue_q_items_pri0"] == "2" and st["queue_q_items_pri5"] == "1" and st["queue_q_items_pri7"] == "1"
    assert "queue_q_items_pri1" not in st
    assert st["queues"] == "1" and st["curr_items"] == "4"
    assert not any("\x1f" in k for k in st)
    client.send(b"dump_stats\r\n")
    lines = []
    while (line := client.readline()) != "END":
        lines.append(line)
    assert [ln for ln in lines if ln.startswith("queue ")] == ["queue 'q' {"]


def test_an_aborted_item_keeps_its_priority(client, clients, server):
    assert client.set("q/pri=1", b"urgent") == "STORED"
    assert client.get_data("q/open") == b"urgent"
    assert client.set("q/pri=1", b"urgent-2") == "STORED"
    assert client.set("q/pri=8", b"later") == "STORED"
    assert client.cmd("get q/abort") == "END"
    assert drain_queue(client, "q") == [b"urgent", b"urgent-2", b"later"]


def test_levels_survive_kill_9(make_server):
    s = make_server()
    with s.client() as c:
        for i in range(3):
            assert c.set(f"q/pri={9 - i}", f"i{i}".encode()) == "STORED"
        assert c.get_data("q/open") == b"i2"              # open at the crash: back first in its level
        s.kill()
    s.start()
    with s.client() as c:
        assert drain_queue(c, "q") == [b"i2", b"i1", b"i0"]


def test_default_priority_is_the_level_of_a_set_without_pri(make_server, tmp_path):
    s = make_server("-c", write(tmp_path, '[queue "q"]\ndefault_priority = 0\n'))
    with s.client() as c:
        assert c.set("q/pri=0", b"a") == "STORED"
        assert c.set("q/pri=5", b"b") == "STORED"
        assert c.set("q", b"c") == "STORED"                # level 0, after a
        assert drain_queue(c, "q") == [b"a", b"c", b"b"]
        assert c.cmd("dump_config q").startswith("queue 'q'")


def test_weighted_policy_gives_each_level_twice_the_share_of_the_next(make_server, tmp_path):
    s = make_server("-c", write(tmp_path, '[queue "q"]\npriority_policy = weighted\n'))
    with s.client() as c:
        for i in range(700):
            for pri in (0, 1, 2):
                c.send(f"set q/pri={pri} 0 0 1 noreply\r\n{pri}\r\n".encode())
        assert c.stat("queue_q_items") == "2100"
        got = collections.Counter(c.get_data("q") for _ in range(700))
    assert abs(got[b"0"] - 400) <= 4 and abs(got[b"1"] - 200) <= 4 and abs(got[b"2"] - 100) <= 4, got


def test_full_queue_discards_from_the_least_urgent_level(make_server, tmp_path):
    s = make_server("-c", write(tmp_path, '[queue "q"]\nmax_items = 3\ndiscard_old_when_full = true\n'))
    with s.client() as c:
        assert c.set("q/pri=0", b"u1") == "STORED"
        assert c.set("q/pri=9", b"bulk") == "STORED"
        assert c.set("q/pri=0", b"u2") == "STORED"
        assert c.set("q/pri=1", b"new") == "STORED"          # bulk goes, not u1
        assert c.stat("queue_q_discarded") == "1"
        assert drain_queue(c, "q") == [b"u1", b"u2", b"new"]


def test_flush_and_delete_take_every_level(client):
    assert client.set("q/pri=0", b"a") == "STORED" and client.set("q", b"b") == "STORED"
    assert client.cmd("flush q") == "END"
    assert client.get_data("q") is None and client.stat("queue_q_items") == "0"
    assert client.set("q/pri=0", b"a") == "STORED"
    assert client.cmd("delete q") == "DELETED"
    assert client.stat("queues") == "0"
    assert client.get_data("q") is None


def test_expiry_applies_at_every_level(client):
    client.send(b"set q/pri=0 0 -1 4\r\ngone\r\n")   # already expired
    assert client.readline() == "STORED"
    assert client.set("q/pri=3", b"live") == "STORED"
    assert client.get_data("q") == b"live"
    assert client.get_data("q") is None


def test_a_dead_letter_keeps_its_priority_and_kick_brings_it_back_there(client):
    assert client.set("q/pri=2", b"p2") == "STORED"
    assert client.get_data("q/open") == b"p2"
    assert client.cmd("get q/bury") == "END"
    st = client.stats()
    assert st["queue_q_errors_items_pri2"] == "1"
    assert client.set("q/pri=3", b"p3") == "STORED"
    assert client.cmd("kick q_errors 5") == "KICKED 1"
    assert drain_queue(client, "q") == [b"p2", b"p3"]


def test_a_waiting_get_is_served_by_a_set_at_any_level(client, clients, server):
    other = clients(server)
    other.send(b"get q/t=5000\r\n")
    assert client.set("q/pri=4", b"x") == "STORED"
    assert other.read_values() == [("q/t=5000", 0, b"x")]


def test_pymemcache_sets_with_priorities(server):
    from pymemcache.client.base import Client
    c = Client(("127.0.0.1", server.port), timeout=5)
    try:
        assert c.set("q/pri=9", b"low") is True
        assert c.set("q/pri=0", b"high") is True
        assert c.get("q") == b"high"
        assert c.get("q") == b"low"
    finally:
        c.close()
