"""Blocking reads: /t=<ms> waits for an item, first come first served."""

import time

from harness import Client, wait_until


def waiters(srv, q):
    with Client(srv.port) as c:
        return c.stat(f"queue_{q}_waiters")


def wait_for_waiters(srv, q, n, timeout=5.0):
    """Wait (bounded) until the server shows n waiters on q."""
    return wait_until(lambda: waiters(srv, q) == str(n), timeout)


def make_existing_empty_queue(c, q):
    assert c.set(q, b"seed") == "STORED"
    assert c.get(q) == (0, b"seed")


def test_waiter_is_answered_by_a_set_from_another_connection(server, clients):
    waiter, writer = clients(server), clients(server)
    make_existing_empty_queue(writer, "q")
    t0 = time.monotonic()
    waiter.send(b"get q/t=5000\r\n")
    wait_for_waiters(server, "q", 1)
    assert not waiter.pending(), "answered before any item was set"
    assert writer.set("q", b"wake") == "STORED"
    assert waiter.read_values() == [("q/t=5000", 0, b"wake")]
    assert time.monotonic() - t0 < 2.5
    assert writer.get("q") is None


def test_waiter_on_a_queue_not_yet_created_is_answered_by_the_first_set(server, clients):
    waiter, writer = clients(server), clients(server)
    t0 = time.monotonic()
    waiter.send(b"get fresh/t=5000\r\n")
    # A queue that does not exist yet may not show waiters in stats; whether
    # the set lands before or after the get is read, the get gets the item.
    assert writer.set("fresh", b"born") == "STORED"
    assert waiter.read_values() == [("fresh/t=5000", 0, b"born")]
    assert time.monotonic() - t0 < 2.5
    assert writer.get("fresh") is None


def test_stats_count_waiters(server, clients):
    w1, w2, writer = clients(server), clients(server), clients(server)
    make_existing_empty_queue(writer, "q")
    w1.send(b"get q/t=5000\r\n")
    w2.send(b"get q/t=5000\r\n")
    assert wait_for_waiters(server, "q", 2), f"waiters stat: {waiters(server, 'q')}"
    assert writer.set("q", b"1") == "STORED"
    assert writer.set("q", b"2") == "STORED"
    got = sorted(w1.read_values() + w2.read_values())
    assert got == [("q/t=5000", 0, b"1"), ("q/t=5000", 0, b"2")]
    assert wait_for_waiters(server, "q", 0)


def test_waiters_are_served_first_come_first_served(server, clients):
    writer = clients(server)
    make_existing_empty_queue(writer, "q")
    ws = [clients(server) for _ in range(3)]
    for i, w in enumerate(ws):
        w.send(b"get q/t=5000\r\n")
        assert wait_for_waiters(server, "q", i + 1), "waiter not registered"
    for i, w in enumerate(ws):
        assert writer.set("q", b"item-%d" % i) == "STORED"
        assert w.read_values() == [("q/t=5000", 0, b"item-%d" % i)]
        for later in ws[i + 1:]:
            assert not later.pending(), "a later waiter was answered first"


def test_timeout_answers_end_in_about_the_asked_time(server, client):
    make_existing_empty_queue(client, "q")
    t0 = time.monotonic()
    assert client.cmd("get q/t=300") == "END"
    elapsed = time.monotonic() - t0
    assert 0.25 <= elapsed <= 2.0, elapsed


def test_timeout_on_nonexistent_queue_answers_end_in_about_the_asked_time(server, client):
    t0 = time.monotonic()
    assert client.cmd("get nothere/t=300") == "END"
    elapsed = time.monotonic() - t0
    assert 0.25 <= elapsed <= 2.0, elapsed


def test_timed_out_waiter_takes_no_later_item(server, clients):
    waiter, writer = clients(server), clients(server)
    make_existing_empty_queue(writer, "q")
    assert waiter.cmd("get q/t=300") == "END"
    assert writer.set("q", b"later") == "STORED"
    assert writer.get("q") == (0, b"later")
    assert not waiter.pending()


def test_wait_with_peek_answers_without_removing(server, clients):
    waiter, writer = clients(server), clients(server)
    make_existing_empty_queue(writer, "q")
    t0 = time.monotonic()
    waiter.send(b"get q/peek/t=5000\r\n")
    wait_for_waiters(server, "q", 1)
    assert writer.set("q", b"seen") == "STORED"
    assert waiter.read_values() == [("q/peek/t=5000", 0, b"seen")]
    assert time.monotonic() - t0 < 2.5
    assert writer.get("q") == (0, b"seen")


def test_peek_timeout_answers_end_in_about_the_asked_time(server, client):
    make_existing_empty_queue(client, "q")
    t0 = time.monotonic()
    assert client.cmd("get q/t=300/peek") == "END"
    elapsed = time.monotonic() - t0
    assert 0.25 <= elapsed <= 2.0, elapsed


def test_wait_with_open_answers_and_opens(server, clients):
    waiter, writer = clients(server), clients(server)
    make_existing_empty_queue(writer, "q")
    waiter.send(b"get q/open/t=5000\r\n")
    wait_for_waiters(server, "q", 1)
    assert writer.set("q", b"reliable") == "STORED"
    assert waiter.read_values() == [("q/open/t=5000", 0, b"reliable")]
    assert writer.get("q/peek") is None
    assert waiter.cmd("get q/abort") == "END"
    assert writer.get("q") == (0, b"reliable")


def test_item_present_is_answered_at_once_despite_timeout(server, client):
    assert client.set("q", b"now") == "STORED"
    t0 = time.monotonic()
    assert client.get("q/t=5000") == (0, b"now")
    assert time.monotonic() - t0 < 1.0


def test_waiter_that_disconnects_does_not_swallow_an_item(server, clients):
    writer = clients(server)
    make_existing_empty_queue(writer, "q")
    gone = clients(server)
    gone.send(b"get q/t=5000\r\n")
    wait_for_waiters(server, "q", 1)
    gone.close()
    assert wait_for_waiters(server, "q", 0), "waiter of a closed connection still counted"
    assert writer.set("q", b"kept") == "STORED"
    assert writer.get("q") == (0, b"kept")


def test_set_on_another_queue_does_not_wake_a_waiter(server, clients):
    waiter, writer = clients(server), clients(server)
    make_existing_empty_queue(writer, "q")
    waiter.send(b"get q/t=400\r\n")
    wait_for_waiters(server, "q", 1)
    assert writer.set("other", b"x") == "STORED"
    assert waiter.readline() == "END"
    assert writer.get("other") == (0, b"x")


def test_multi_key_get_waits_on_a_key_before_serving_the_next(server, clients):
    waiter, writer = clients(server), clients(server)
    make_existing_empty_queue(writer, "a")
    assert writer.set("b", b"bee") == "STORED"
    waiter.send(b"get a/t=5000 b\r\n")
    wait_for_waiters(server, "a", 1)
    assert not waiter.pending(), "answered before the waiting key got an item"
    assert writer.get("b/peek") == (0, b"bee")
    assert writer.set("a", b"ay") == "STORED"
    assert waiter.read_values() == [("a/t=5000", 0, b"ay"), ("b", 0, b"bee")]


def test_multi_key_get_serves_next_key_after_a_timeout(server, client):
    make_existing_empty_queue(client, "a")
    assert client.set("b", b"bee") == "STORED"
    t0 = time.monotonic()
    client.send(b"get a/t=300 b\r\n")
    assert client.read_values() == [("b", 0, b"bee")]
    elapsed = time.monotonic() - t0
    assert 0.25 <= elapsed <= 2.0, elapsed


def test_requests_after_a_waiting_get_are_answered_after_it(server, clients):
    waiter, writer = clients(server), clients(server)
    make_existing_empty_queue(writer, "q")
    waiter.send(b"get q/t=5000\r\nversion\r\n")
    wait_for_waiters(server, "q", 1)
    assert not waiter.pending()
    assert writer.set("q", b"x") == "STORED"
    assert waiter.read_values() == [("q/t=5000", 0, b"x")]
    assert waiter.readline().startswith("VERSION ")


def test_many_waiters_each_get_one_item(server, clients):
    writer = clients(server)
    make_existing_empty_queue(writer, "q")
    ws = [clients(server) for _ in range(20)]
    for w in ws:
        w.send(b"get q/t=5000\r\n")
    assert wait_for_waiters(server, "q", 20)
    for i in range(20):
        assert writer.set("q", b"%02d" % i) == "STORED"
    got = sorted(w.read_values()[0][2] for w in ws)
    assert got == [b"%02d" % i for i in range(20)]
    assert writer.get("q") is None
