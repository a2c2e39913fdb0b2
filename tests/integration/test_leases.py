"""Leases of open items: get q/open/ttr=MS, the queue's open_timeout, touch,
and items given back on time (docs/protocol.md)."""

import time


def write(tmp_path, text):
    p = tmp_path / "darner.conf"
    p.write_text(text)
    return p


def test_an_item_whose_lease_runs_out_goes_back_on_time(client, clients, server):
    assert client.set("q", b"job") == "STORED"
    t0 = time.monotonic()
    assert client.get_data("q/open/ttr=300") == b"job"
    other = clients(server)
    assert other.get_data("q/t=5000") == b"job"          # woken by the lease running out
    waited = time.monotonic() - t0
    assert 0.25 < waited < 3, waited
    st = other.stats()
    assert st["queue_q_lease_expired"] == "1" and st["queue_q_open_transactions"] == "0"
    assert client.cmd("get q/close") == "END"             # nothing open any more: nothing confirmed
    assert other.get_data("q") is None


def test_touch_extends_a_lease(client, clients, server):
    assert client.set("q", b"job") == "STORED"
    assert client.get_data("q/open/ttr=200") == b"job"
    assert client.cmd("touch q 60") == "TOUCHED"          # 60 s now
    other = clients(server)
    assert other.get_data("q/t=600") is None              # still held past the first 200 ms
    assert client.cmd("touch q/ttr=100 0") == "TOUCHED"   # 100 ms from now
    assert other.get_data("q/t=5000") == b"job"


def test_touch_without_an_open_item_is_not_found(client):
    assert client.cmd("touch q 10") == "NOT_FOUND"
    client.send(b"touch q 10 noreply\r\n")
    assert client.cmd("version").startswith("VERSION")
    assert client.cmd("touch q/open 10").startswith("CLIENT_ERROR")


def test_touch_0_makes_a_lease_last_until_the_connection_ends(client, clients, server):
    assert client.set("q", b"job") == "STORED"
    assert client.get_data("q/open/ttr=100") == b"job"
    assert client.cmd("touch q 0") == "TOUCHED"
    other = clients(server)
    assert other.get_data("q/t=400") is None
    assert client.cmd("get q/close") == "END"
    assert other.get_data("q") is None


def test_open_timeout_is_the_default_lease(make_server, tmp_path):
    s = make_server("-c", write(tmp_path, "[queue \"jobs\"]\nopen_timeout = 200ms\n"))
    with s.client() as c, s.client() as other:
        assert c.set("jobs", b"a") == "STORED" and c.set("plain", b"b") == "STORED"
        assert c.get_data("jobs/open") == b"a"
        assert c.get_data("plain/open") == b"b"
        assert other.get_data("jobs/t=5000") == b"a"       # given back after 200 ms
        assert other.get_data("plain/t=400") is None       # no lease: held
        assert c.cmd("get plain/close") == "END"


def test_ttr_needs_open_and_a_number(client):
    for bad in ("get q/ttr=100", "get q/open/ttr=0", "get q/open/ttr=x", "get q/open/ttr=1/ttr=2"):
        assert client.cmd(bad).startswith("CLIENT_ERROR"), bad
