"""Several open items per queue (max_open), monitor and confirm
(docs/protocol.md)."""

import time


def write(tmp_path, text):
    p = tmp_path / "darner.conf"
    p.write_text(text)
    return p


def multi(make_server, tmp_path, n=3):
    return make_server("-c", write(tmp_path, "[queue]\nmax_open = %d\n" % n))


def read_values(c):
    """VALUE blocks up to END: [(key, data)]."""
    out = []
    while True:
        line = c.readline()
        if line == "END":
            return out
        parts = line.split(" ")
        assert parts[0] == "VALUE", line
        data = c.read_exact(int(parts[3]))
        assert c.read_exact(2) == b"\r\n"
        out.append((parts[1], data))


def test_several_opens_and_close_abort_act_on_the_oldest(make_server, tmp_path):
    s = multi(make_server, tmp_path)
    with s.client() as c:
        for d in (b"a", b"b", b"c", b"d"):
            assert c.set("q", d) == "STORED"
        assert [c.get_data("q/open") for _ in range(3)] == [b"a", b"b", b"c"]
        assert c.cmd("get q/open").startswith("CLIENT_ERROR 3 items are open")
        assert c.cmd("get q/close") == "END"          # a confirmed
        assert c.cmd("get q/abort") == "END"          # b given back
        assert c.get_data("q/close/open") == b"b"     # c confirmed, b open again
        assert c.stats()["queue_q_open_transactions"] == "1"
    with s.client() as c:                              # the connection went: b came back
        assert [c.get_data("q") for _ in range(3)] == [b"b", b"d", None]


def test_the_default_is_one_open_item(client):
    assert client.set("q", b"a") == "STORED" and client.set("q", b"b") == "STORED"
    assert client.get_data("q/open") == b"a"
    assert client.cmd("get q/open").startswith("CLIENT_ERROR an item is already open")


def test_monitor_hands_out_items_open_then_end(make_server, tmp_path):
    s = multi(make_server, tmp_path, 10)
    with s.client() as c:
        for i in range(4):
            assert c.set("q", b"%d" % i) == "STORED"
        c.send(b"monitor q 1 3\r\n")
        assert read_values(c) == [("q", b"0"), ("q", b"1"), ("q", b"2")]
        assert c.stats()["queue_q_open_transactions"] == "3"
        assert c.cmd("confirm q 2") == "END"
        assert c.stats()["queue_q_open_transactions"] == "1"
        assert c.cmd("confirm q 5") == "END"            # the one left
        assert c.cmd("confirm q 1") == "ERROR"          # nothing open
        assert c.get_data("q") == b"3"
        assert c.stats()["cmd_monitor"] == "1"


def test_monitor_waits_for_items_until_its_time_is_over(make_server, tmp_path):
    s = multi(make_server, tmp_path, 10)
    with s.client() as m, s.client() as c:
        t0 = time.monotonic()
        m.send(b"monitor w 1\r\n")
        assert c.cmd("version").startswith("VERSION")   # the monitor is in
        assert c.set("w", b"late") == "STORED"
        assert read_values(m) == [("w", b"late")]       # after the second is over
        assert time.monotonic() - t0 >= 0.9
        assert m.cmd("confirm w 1") == "END"


def test_monitor_stops_at_max_open(make_server, tmp_path):
    s = multi(make_server, tmp_path, 2)
    with s.client() as c:
        for i in range(5):
            assert c.set("q", b"%d" % i) == "STORED"
        c.send(b"monitor q 5\r\n")                       # no max: the queue's max_open, 2
        assert read_values(c) == [("q", b"0"), ("q", b"1")]
        c.send(b"monitor q 5\r\n")                       # already 2 open: nothing more
        assert read_values(c) == []
        assert c.cmd("confirm q 2") == "END"


def test_monitor_and_confirm_check_their_arguments(client):
    for bad in ("monitor", "monitor q", "monitor q x", "monitor q 1 0", "monitor q/open 1",
                "confirm q", "confirm q many"):
        assert client.cmd(bad).startswith("CLIENT_ERROR"), bad


def test_monitor_counts_an_item_its_wait_got(make_server, tmp_path):
    s = multi(make_server, tmp_path, 10)
    with s.client() as m, s.client() as c:
        m.send(b"monitor w 1 1\r\n")
        assert c.cmd("version").startswith("VERSION")
        assert c.set("w", b"one") == "STORED"
        assert c.set("w", b"two") == "STORED"
        assert read_values(m) == [("w", b"one")]          # max_items 1
        assert c.get_data("w") == b"two"


def test_a_waiting_monitor_ends_normally_when_the_status_turns_quiescent(make_server, tmp_path):
    s = multi(make_server, tmp_path, 10)
    with s.client() as m, s.client() as c:
        m.send(b"monitor w 1\r\n")
        assert c.cmd("version").startswith("VERSION")
        assert c.cmd("status quiescent") == "END"
        assert read_values(m) == []                       # its time runs out: END, no hang
        assert m.cmd("get w") == "SERVER_ERROR QUIESCENT"
        assert c.cmd("status up") == "END"
        assert c.set("w", b"x") == "STORED" and m.get_data("w") == b"x"


def test_max_open_counts_out_items_whose_lease_ran_out_or_that_went(make_server, tmp_path):
    # A connection keeps its count of open items on the queue it asked last;
    # each item that goes (lease, abort, close, on another queue too) must
    # count itself out of it exactly once.
    s = multi(make_server, tmp_path, 3)
    with s.client() as c, s.client() as w:
        for d in (b"a", b"b", b"c"):
            assert c.set("q", d) == "STORED"
        assert c.set("r", b"x") == "STORED"
        assert c.get_data("q/open/ttr=2000") == b"a"
        assert c.get_data("q/open") == b"b"
        assert c.get_data("r/open/ttr=100") == b"x"   # another queue: not in q's count
        assert c.get_data("q/open") == b"c"
        assert c.cmd("get q/open").startswith("CLIENT_ERROR 3 items are open")
        assert w.get_data("r/t=5000") == b"x"         # r's lease ran out: q still holds 3
        assert c.cmd("get q/open").startswith("CLIENT_ERROR 3 items are open")
        assert w.get_data("q/open/t=5000") == b"a"    # a's lease ran out: 2 left
        assert c.set("q", b"d") == "STORED" and c.set("q", b"e") == "STORED"
        assert c.get_data("q/open") == b"d"
        assert c.cmd("get q/open").startswith("CLIENT_ERROR 3 items are open")
        assert c.cmd("get q/abort") == "END"          # b given back: 2 left
        assert c.get_data("q/open") == b"b"
        assert c.cmd("get q/open").startswith("CLIENT_ERROR 3 items are open")
        assert c.cmd("get q/close") == "END"          # c confirmed: 2 left
        assert c.get_data("q/open") == b"e"
        assert c.cmd("get q/open").startswith("CLIENT_ERROR 3 items are open")
        assert c.stats()["queue_q_open_transactions"] == "4"  # d, b, e here; a with w
