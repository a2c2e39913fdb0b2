"""Durability promises (SPEC section 3) and the --fsync policies (section 5).

- group commit: many concurrent `/sync` sets (or plain sets under
  `--fsync always`) all answer STORED and share fsyncs: the `fsyncs` counter
  grows by fewer than the number of sets;
- `--fsync never|always|<ms>` each serve; a bad value exits non-zero;
- an answered removal survives SIGKILL (a plain get's item and a `/close`d
  item never come back), and an item open at SIGKILL comes back first;
- the loop keeps serving other connections while an fsync runs
  (build/darner-faulty with a slow fsync).
"""

import os
import threading
import time

import pytest

from harness import (DARNER_FAULTY_BIN, SOCKET_TIMEOUT, Client, FaultyServer, drain_queue,
                     run_darner)

N = 50


# -- group commit -------------------------------------------------------------------------

def concurrent_sets(port, key, n=N):
    """n connections, each sends one `set <key> 0 0 1` at about the same moment
    (threads behind a barrier); returns the n answers and the payloads sent."""
    clients = [Client(port, timeout=SOCKET_TIMEOUT) for _ in range(n)]
    barrier = threading.Barrier(n, timeout=SOCKET_TIMEOUT)
    answers = [None] * n
    payloads = [bytes([65 + i % 26]) for i in range(n)]

    def one(i):
        try:
            barrier.wait()
            clients[i].send(b"set %s 0 0 1\r\n%s\r\n" % (key.encode(), payloads[i]))
            answers[i] = clients[i].readline()
        except Exception as e:  # noqa: BLE001 - reported through answers
            answers[i] = f"exception: {e!r}"

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SOCKET_TIMEOUT + 5)
        assert not t.is_alive(), "a set did not finish"
    for c in clients:
        c.close()
    return answers, payloads


def fsyncs(c):
    v = c.stat("fsyncs")
    assert v is not None, "stats has no fsyncs counter"
    return int(v)


@pytest.mark.parametrize("mode", ["sync-sets", "fsync-always"])
def test_group_commit_shares_fsyncs(make_server, mode):
    # A long period keeps the timer's own fsyncs out of the count.
    srv = make_server(*(["--fsync", "always"] if mode == "fsync-always" else ["--fsync", "60000"]))
    key = "gc/sync" if mode == "sync-sets" else "gc"
    with srv.client() as c:
        assert c.set(key, "0") == "STORED"     # the queue exists before the burst
        before = fsyncs(c)
    answers, payloads = concurrent_sets(srv.port, key)
    assert answers == ["STORED"] * N, f"answers: {sorted(set(map(str, answers)))}"
    with srv.client() as c:
        after = fsyncs(c)
        got = drain_queue(c, "gc")
    grew = after - before
    print(f"\ngroup commit ({mode}): {N} sets, fsyncs grew by {grew}")
    assert 1 <= grew < N, f"{N} concurrent sets took {grew} fsyncs: none shared"
    assert got[0] == b"0" and sorted(got[1:]) == sorted(payloads)


@pytest.fixture
def faulty(tmp_path):
    if not os.access(DARNER_FAULTY_BIN, os.X_OK):
        pytest.fail(f"fault-injecting server not found or not executable: {DARNER_FAULTY_BIN} "
                    f"(set DARNER_FAULTY_BIN or build the project)")
    servers = []

    def factory(*extra_args):
        workdir = tmp_path / f"faulty{len(servers) + 1}"
        workdir.mkdir(parents=True, exist_ok=True)
        s = FaultyServer(workdir, extra_args)
        servers.append(s)
        return s.start()

    yield factory
    complaints = [c for c in (s.cleanup() for s in servers) if c]
    if complaints:
        pytest.fail("\n".join(complaints), pytrace=False)


def test_group_commit_with_slow_fsync_takes_few_fsyncs(faulty):
    """With each fsync taking 300 ms, 50 `/sync` sets sent together cannot each
    have their own: they wait for at most the running job and the next one."""
    srv = faulty("--fsync", "60000")
    with srv.client() as c:
        # /sync: the new queue's name and folders are synced now, so each job
        # below syncs only the segment and the ack log (300 ms a file)
        assert c.set("gc/sync", "0") == "STORED"
        before = fsyncs(c)
    srv.fault("slow_fsync", "300")
    t0 = time.monotonic()
    answers, _ = concurrent_sets(srv.port, "gc/sync")
    took = time.monotonic() - t0
    srv.clear()
    assert answers == ["STORED"] * N
    with srv.client() as c:
        grew = fsyncs(c) - before
    assert 1 <= grew <= 3, f"{N} concurrent /sync sets took {grew} fsyncs of 300 ms ({took:.2f}s)"
    assert took < 2.0, f"{N} /sync sets took {took:.2f}s: they did not share the slow fsyncs"


# -- the policies ----------------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["never", "always", "250"])
def test_fsync_policy_serves(make_server, policy):
    srv = make_server("--fsync", policy)
    items = [f"{policy}-{i}".encode() for i in range(20)]
    with srv.client() as c:
        for i, d in enumerate(items):
            assert c.set("q" if i % 2 else "q/sync", d) == "STORED"
        assert c.get_data("q") == items[0]
    srv.stop()
    srv.start()
    with srv.client() as c:
        assert drain_queue(c, "q") == items[1:]


@pytest.mark.parametrize("bad", ["sometimes", "-5", "1.5", "", "12abc", "alwaysx"])
def test_bad_fsync_value_exits_nonzero(tmp_path, darner_bin, bad):
    rc, out, err = run_darner(["--fsync", bad, "--port", "0", "--data", str(tmp_path / "d")])
    assert rc is not None, f"--fsync {bad!r}: the server started serving"
    assert rc != 0, f"--fsync {bad!r} exited 0"
    assert "fsync" in (out + err), f"--fsync {bad!r}: the message does not name the flag: {err!r}"


# -- removals and SIGKILL -----------------------------------------------------------------------

@pytest.mark.parametrize("policy", ["always", "default"])
def test_plain_get_removal_survives_sigkill(make_server, policy):
    srv = make_server(*(["--fsync", "always"] if policy == "always" else []))
    with srv.client() as c:
        for d in ("a", "b", "c"):
            assert c.set("q", d) == "STORED"
        assert c.get_data("q") == b"a"
    srv.kill()
    srv.start()
    with srv.client() as c:
        assert c.get_data("q") == b"b", "the removal answered before SIGKILL was undone"
        assert c.get_data("q") == b"c"
        assert c.get_data("q") is None


@pytest.mark.parametrize("policy", ["always", "default"])
def test_open_item_comes_back_first_after_sigkill(make_server, policy):
    srv = make_server(*(["--fsync", "always"] if policy == "always" else []))
    c = srv.client()
    for d in ("x", "y", "z"):
        assert c.set("q", d) == "STORED"
    assert c.get_full("q/open") == ("q/open", 0, b"x")
    with srv.client() as other:
        assert other.get_data("q") == b"y"     # removed for good
    srv.kill()
    c.close()
    srv.start()
    with srv.client() as c2:
        assert c2.get_data("q") == b"x", "the item open at SIGKILL is not the first handed out"
        assert c2.get_data("q") == b"z"
        assert c2.get_data("q") is None


@pytest.mark.parametrize("policy", ["always", "default"])
def test_closed_item_never_comes_back_after_sigkill(make_server, policy):
    srv = make_server(*(["--fsync", "always"] if policy == "always" else []))
    with srv.client() as c:
        for d in ("x", "y", "w"):
            assert c.set("q", d) == "STORED"
        assert c.get_full("q/open") == ("q/open", 0, b"x")
        # close + open in one request: confirms x, opens y.
        assert c.get_full("q/close/open") == ("q/close/open", 0, b"y")
        assert c.cmd("get q/close") == "END"
        # w is open at the kill: it comes back; x and y were confirmed: they never do.
        assert c.get_full("q/open") == ("q/open", 0, b"w")
        srv.kill()
    srv.start()
    with srv.client() as c:
        assert drain_queue(c, "q") == [b"w"], "a /close'd item came back, or the open one did not"


def test_sync_set_survives_sigkill_right_after_stored(make_server):
    """STORED of a `/sync` set, then SIGKILL at once: the item is there."""
    srv = make_server("--fsync", "60000")
    with srv.client() as c:
        for i in range(10):
            assert c.set("q/sync", f"s{i}") == "STORED"
        srv.kill()
    srv.start()
    with srv.client() as c:
        assert drain_queue(c, "q") == [f"s{i}".encode() for i in range(10)]


# -- the loop while an fsync runs ---------------------------------------------------------------

def test_loop_serves_while_fsync_runs(faulty):
    """A `/sync` set waits for a 1-second fsync (on libuv's thread pool); in
    the meantime other connections are answered at once."""
    srv = faulty()
    with srv.client() as c:
        assert c.set("q", "first") == "STORED"   # the queue exists: no fsync of its creation later
    srv.fault("slow_fsync", "1000")
    waiter = srv.client()
    other = srv.client()
    try:
        t0 = time.monotonic()
        waiter.send(b"set q/sync 0 0 4\r\nsync\r\n")
        time.sleep(0.05)    # let the fsync job start (nothing to await from outside)
        assert not waiter.pending(0), "the /sync set answered before its fsync finished"
        for req in ("version", "stats"):
            t1 = time.monotonic()
            if req == "version":
                assert other.cmd("version").startswith("VERSION ")
            else:
                assert "pid" in other.stats()
            took = time.monotonic() - t1
            assert took < 0.2, f"`{req}` took {took * 1000:.0f} ms while an fsync ran: the loop was held"
        t1 = time.monotonic()
        assert other.set("q", "plain") == "STORED"
        assert other.get_full("q/peek") is not None
        assert time.monotonic() - t1 < 0.2, "a plain set/peek waited for another connection's fsync"
        assert waiter.readline() == "STORED"
        waited = time.monotonic() - t0
        assert waited >= 0.8, f"the /sync set answered after {waited:.2f}s, before its 1 s fsync ended"
    finally:
        waiter.close()
        other.close()
        srv.clear()
    with srv.client() as c:
        assert drain_queue(c, "q") == [b"first", b"sync", b"plain"]
