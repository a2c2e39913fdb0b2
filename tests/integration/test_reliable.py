"""Reliable reads: /open, /close, /abort, and what a disconnect does to an open item."""

from harness import Client, wait_until


def open_transactions(srv, q):
    with Client(srv.port) as c:
        return c.stat(f"queue_{q}_open_transactions")


def wait_no_open_items(srv, q, timeout=5.0):
    """The server handles a disconnect asynchronously: wait (bounded) until it
    shows no open item on q.  Returns False if that never happened."""
    return wait_until(lambda: open_transactions(srv, q) == "0", timeout)


def fill(c, q, items):
    for d in items:
        assert c.set(q, d) == "STORED"


def test_open_close_cycle_removes_each_item(client):
    fill(client, "q", [b"1", b"2", b"3"])
    got = []
    for _ in range(3):
        item = client.get("q/open")
        assert item is not None
        got.append(item[1])
        assert client.cmd("get q/close") == "END"
    assert got == [b"1", b"2", b"3"]
    assert client.get("q/open") is None
    assert client.get("q") is None


def test_open_item_is_not_handed_to_another_client(server, client, clients):
    fill(client, "q", [b"a", b"b"])
    assert client.get("q/open") == (0, b"a")
    other = clients(server)
    assert other.get("q") == (0, b"b")
    assert other.get("q") is None
    assert other.get("q/peek") is None


def test_open_on_empty_queue_opens_nothing(client):
    assert client.set("q", b"x") == "STORED"
    assert client.get("q") == (0, b"x")
    assert client.get("q/open") is None
    assert client.get("q/open") is None   # nothing was open, so no CLIENT_ERROR
    assert client.set("q", b"y") == "STORED"
    assert client.get("q/open") == (0, b"y")


def test_open_twice_without_close_is_client_error(client):
    fill(client, "q", [b"a", b"b"])
    assert client.get("q/open") == (0, b"a")
    reply = client.cmd("get q/open")
    assert reply.startswith("CLIENT_ERROR"), reply


def test_open_twice_leaves_first_item_open_and_connection_usable(server, client, clients):
    fill(client, "q", [b"a", b"b"])
    assert client.get("q/open") == (0, b"a")
    assert client.cmd("get q/open").startswith("CLIENT_ERROR")
    other = clients(server)
    assert other.get("q/peek") == (0, b"b")
    assert client.cmd("get q/close") == "END"
    assert other.get("q") == (0, b"b")
    assert other.get("q") is None


def test_close_with_nothing_open_answers_end(client):
    assert client.cmd("get q/close") == "END"
    assert client.set("q", b"x") == "STORED"
    assert client.cmd("get q/close") == "END"
    assert client.get("q") == (0, b"x")


def test_close_open_confirms_current_and_opens_next(server, client, clients):
    fill(client, "q", [b"a", b"b", b"c"])
    assert client.get("q/open") == (0, b"a")
    assert client.get_full("q/close/open") == ("q/close/open", 0, b"b")
    other = clients(server)
    assert other.get("q/peek") == (0, b"c")
    client.close()
    assert wait_no_open_items(server, "q")
    # a was confirmed, b went back at the head when the connection ended.
    assert other.get("q") == (0, b"b")
    assert other.get("q") == (0, b"c")
    assert other.get("q") is None


def test_close_open_with_nothing_open_just_opens(client):
    fill(client, "q", [b"a", b"b"])
    assert client.get("q/close/open") == (0, b"a")
    assert client.get("q/close/open") == (0, b"b")
    assert client.cmd("get q/close") == "END"
    assert client.get("q") is None


def test_close_open_on_last_item_confirms_it_and_answers_end(client):
    assert client.set("q", b"only") == "STORED"
    assert client.get("q/open") == (0, b"only")
    assert client.cmd("get q/close/open") == "END"
    assert client.cmd("get q/close") == "END"
    assert client.get("q") is None


def test_abort_returns_item_to_head(client):
    fill(client, "q", [b"a", b"b", b"c"])
    assert client.get("q/open") == (0, b"a")
    assert client.cmd("get q/abort") == "END"
    assert client.get("q") == (0, b"a")
    assert client.get("q") == (0, b"b")


def test_abort_returns_item_ahead_of_items_read_meanwhile(server, client, clients):
    fill(client, "q", [b"a", b"b", b"c"])
    assert client.get("q/open") == (0, b"a")
    other = clients(server)
    assert other.get("q") == (0, b"b")
    assert client.cmd("get q/abort") == "END"
    assert other.get("q") == (0, b"a")
    assert other.get("q") == (0, b"c")


def test_abort_keeps_flags(client):
    assert client.set("q", b"x", flags=77) == "STORED"
    assert client.get("q/open") == (77, b"x")
    assert client.cmd("get q/abort") == "END"
    assert client.get("q") == (77, b"x")


def test_item_can_be_opened_again_after_abort(client):
    assert client.set("q", b"x") == "STORED"
    assert client.get("q/open") == (0, b"x")
    assert client.cmd("get q/abort") == "END"
    assert client.get("q/open") == (0, b"x")
    assert client.cmd("get q/close") == "END"
    assert client.get("q") is None


def test_disconnect_with_open_item_hands_it_out_next_before_newer_items(server, client, clients):
    fill(client, "q", [b"a", b"b"])
    assert client.get("q/open") == (0, b"a")
    other = clients(server)
    assert other.set("q", b"c") == "STORED"
    client.close()
    assert wait_no_open_items(server, "q"), "open item never released after disconnect"
    assert other.get("q") == (0, b"a")
    assert other.get("q") == (0, b"b")
    assert other.get("q") == (0, b"c")


def test_quit_with_open_item_hands_it_out_next(server, client, clients):
    fill(client, "q", [b"a", b"b"])
    assert client.get("q/open") == (0, b"a")
    client.send(b"quit\r\n")
    client.expect_closed()
    assert wait_no_open_items(server, "q")
    other = clients(server)
    assert other.get("q/open") == (0, b"a")


def test_disconnect_after_close_does_not_bring_item_back(server, client, clients):
    fill(client, "q", [b"a", b"b"])
    assert client.get("q/open") == (0, b"a")
    assert client.cmd("get q/close") == "END"
    client.close()
    other = clients(server)
    assert wait_no_open_items(server, "q")
    assert other.get("q") == (0, b"b")
    assert other.get("q") is None


def test_disconnect_returns_open_items_of_every_queue(server, client, clients):
    fill(client, "q1", [b"x1", b"y1"])
    fill(client, "q2", [b"x2", b"y2"])
    assert client.get("q1/open") == (0, b"x1")
    assert client.get("q2/open") == (0, b"x2")
    client.close()
    assert wait_no_open_items(server, "q1") and wait_no_open_items(server, "q2")
    other = clients(server)
    assert other.get_multi(["q1", "q2"]) == [("q1", 0, b"x1"), ("q2", 0, b"x2")]


def test_each_connection_may_hold_one_open_item_on_the_same_queue(server, client, clients):
    fill(client, "q", [b"a", b"b", b"c"])
    other = clients(server)
    assert client.get("q/open") == (0, b"a")
    assert other.get("q/open") == (0, b"b")
    third = clients(server)
    assert third.get("q/peek") == (0, b"c")
    assert client.cmd("get q/close") == "END"
    assert other.cmd("get q/close") == "END"
    assert third.get("q") == (0, b"c")
    assert third.get("q") is None


def test_one_connection_may_hold_open_items_on_several_queues(client):
    fill(client, "q1", [b"1"])
    fill(client, "q2", [b"2"])
    assert client.get("q1/open") == (0, b"1")
    assert client.get("q2/open") == (0, b"2")
    assert client.cmd("get q1/close") == "END"
    assert client.cmd("get q2/abort") == "END"
    assert client.get("q1") is None
    assert client.get("q2") == (0, b"2")


def test_close_only_confirms_the_item_of_its_own_connection(server, client, clients):
    fill(client, "q", [b"a", b"b"])
    assert client.get("q/open") == (0, b"a")
    other = clients(server)
    assert other.cmd("get q/close") == "END"
    assert other.cmd("get q/abort") == "END"
    assert client.cmd("get q/abort") == "END"
    assert other.get("q") == (0, b"a")


def test_close_on_other_queue_does_not_confirm(client):
    fill(client, "q1", [b"a"])
    fill(client, "q2", [b"b"])
    assert client.get("q1/open") == (0, b"a")
    assert client.cmd("get q2/close") == "END"
    assert client.get("q2") == (0, b"b")
    assert client.cmd("get q1/abort") == "END"
    assert client.get("q1") == (0, b"a")


def test_open_item_counts_in_stats(server, client):
    fill(client, "q", [b"a", b"b"])
    assert client.get("q/open") == (0, b"a")
    stats = client.stats()
    assert stats["queue_q_open_transactions"] == "1"
    assert client.cmd("get q/close") == "END"
    assert client.stat("queue_q_open_transactions") == "0"


def test_delete_of_queue_with_open_item_then_close_is_harmless(server, client, clients):
    fill(client, "q", [b"a", b"b"])
    assert client.get("q/open") == (0, b"a")
    other = clients(server)
    assert other.cmd("delete q") == "DELETED"
    assert client.cmd("get q/close") == "END"
    assert other.set("q", b"new") == "STORED"
    assert other.get("q") == (0, b"new")
    assert other.get("q") is None
