"""Resource limits: --max-connections, --idle-timeout, slow and idle clients.

Loopback only, bounded in count and time.  Memory figures are the server's
RssAnon (/proc/PID/status), printed with -s; the bounds are skipped for a
sanitizer build, whose allocator keeps freed memory on purpose.
"""

import resource
import select
import socket
import time

import pytest

from harness import Client, DARNER_BIN, rss_anon_kib, sanitized, wait_until

MiB = 1 << 20


def raise_nofile(n):
    """Raises this process's RLIMIT_NOFILE to at least n (up to the hard
    limit); skips the test if that is not enough."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        want = n if hard == resource.RLIM_INFINITY else min(n, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        pytest.skip(f"RLIMIT_NOFILE is {soft} (hard {hard}); this test needs {n}")


def still_serves(srv):
    assert srv.running(), f"darner died:\n{srv.log()}"
    with Client(srv.port, timeout=5) as c:
        assert c.cmd("version").startswith("VERSION ")


def connect_many(port, n):
    """n connections; connects in batches so the listen backlog never overflows."""
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(s)
    return socks


def ask_all(socks, request, answer, timeout=60.0):
    """Sends request on every socket, then reads until each has sent answer
    (bytes, whole).  Returns the number that answered exactly that."""
    for s in socks:
        s.setblocking(False)
    pending = {}
    for s in socks:
        _send_nb(s, request)
        pending[s.fileno()] = (s, b"")
    ok = 0
    deadline = time.monotonic() + timeout
    poller = select.poll()
    for fd in pending:
        poller.register(fd, select.POLLIN)
    while pending and time.monotonic() < deadline:
        for fd, _ev in poller.poll(500):
            s, got = pending[fd]
            try:
                chunk = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            got += chunk
            if not chunk or len(got) >= len(answer):
                ok += got == answer
                poller.unregister(fd)
                del pending[fd]
            else:
                pending[fd] = (s, got)
    for s in socks:
        s.setblocking(True)
        s.settimeout(10)
    return ok


def _send_nb(s, data):
    while data:
        try:
            n = s.send(data)
        except BlockingIOError:
            select.select([], [s], [], 5)
            continue
        data = data[n:]


# -- --max-connections ---------------------------------------------------------------

def test_max_connections_refuses_the_excess_and_keeps_the_rest(make_server):
    srv = make_server("--max-connections", "5")
    allowed = [srv.client() for _ in range(5)]
    try:
        for c in allowed:
            assert c.cmd("version").startswith("VERSION ")
        for _ in range(3):
            with srv.client() as extra:
                assert extra.readline() == "SERVER_ERROR too many connections"
                extra.expect_closed()
        # the allowed ones keep working
        for i, c in enumerate(allowed):
            assert c.set("q", b"item %d" % i) == "STORED"
        for i, c in enumerate(allowed):
            assert c.get("q") == (0, b"item %d" % i)
        # one leaves: its place is free again
        allowed.pop().close()

        def one_more():
            c = srv.client()
            if c.pending(0.2):
                c.close()
                return None
            return c
        c = wait_until(one_more, 5)
        assert c is not None, "a freed place was not given to a new connection"
        allowed.append(c)
        assert c.cmd("version").startswith("VERSION ")
        st = allowed[0].stats()
        assert st["curr_connections"] == "5", st["curr_connections"]
        if "rejected_connections" in st:
            assert int(st["rejected_connections"]) >= 3
    finally:
        for c in allowed:
            c.close()
    still_serves(srv)


# -- --idle-timeout -------------------------------------------------------------------

def test_idle_timeout_closes_an_idle_connection(make_server):
    srv = make_server("--idle-timeout", "1")
    with srv.client() as c:
        assert c.cmd("version").startswith("VERSION ")
        t0 = time.monotonic()
        c.expect_closed(timeout=5)
        waited = time.monotonic() - t0
    assert 0.9 <= waited <= 3.0, f"closed after {waited:.2f}s with --idle-timeout 1"
    still_serves(srv)


def test_idle_timeout_gives_open_items_back(make_server):
    srv = make_server("--idle-timeout", "1")
    with srv.client() as c:
        assert c.set("q", b"first") == "STORED"
        assert c.set("q", b"second") == "STORED"
    holder = srv.client()
    assert holder.get("q/open") == (0, b"first")
    holder.expect_closed(timeout=5)
    holder.close()
    with srv.client() as c:
        assert c.get("q") == (0, b"first"), "the idle connection's open item did not come back"
        assert c.get("q") == (0, b"second")
    still_serves(srv)


def test_idle_timeout_spares_a_connection_that_keeps_sending(make_server):
    srv = make_server("--idle-timeout", "1")
    with srv.client() as c:
        assert c.set("q", b"held") == "STORED"
        assert c.get("q/open") == (0, b"held")
        end = time.monotonic() + 3.5
        while time.monotonic() < end:
            assert c.cmd("version").startswith("VERSION ")
            time.sleep(0.4)
        assert c.cmd("get q/close") == "END"
    still_serves(srv)


def test_idle_timeout_spares_a_connection_waiting_for_an_item(make_server):
    """A get with /t= waits for the server, not the client: not idle."""
    srv = make_server("--idle-timeout", "1")
    with srv.client() as c:
        t0 = time.monotonic()
        assert c.cmd("get q/t=2500") == "END"
        assert time.monotonic() - t0 >= 2.4
        assert c.cmd("version").startswith("VERSION ")
    still_serves(srv)


@pytest.mark.parametrize("partial", [
    b"get q",                                   # half a request line
    b"set q 0 0 100\r\n0123456789",             # a set whose data stops coming
    b"set q 0 0 1000000\r\n" + b"d" * 100000,   # a large (streamed) set that stalls
], ids=["half-line", "half-set", "half-streamed-set"])
def test_idle_timeout_closes_a_connection_that_stops_mid_request(make_server, partial):
    """Idle means no byte from the client: one that sent part of a request and
    then nothing for --idle-timeout seconds holds a buffer (or a file) for
    nothing and is closed like any other idle connection."""
    srv = make_server("--idle-timeout", "1")
    with srv.client() as c:
        c.send(partial)
        c.expect_closed(timeout=5)
    with srv.client() as c:
        assert c.get("q") is None
    still_serves(srv)


def test_no_idle_timeout_by_default(make_server):
    srv = make_server()
    with srv.client() as c:
        time.sleep(2.5)
        assert not c.pending(0), "closed (or answered) while idle without --idle-timeout"
        assert c.cmd("version").startswith("VERSION ")


# -- slow and idle clients ------------------------------------------------------------

def test_1000_connections_trickling_one_byte_a_second(make_server):
    """1,000 connections each send one byte a second of a request for ~5 s:
    the server's memory stays bounded, and each request is answered once it
    is complete."""
    n, seconds = 1000, 5
    raise_nofile(n + 100)
    srv = make_server("--max-connections", "2000")
    pid = srv.proc.pid
    base = rss_anon_kib(pid)
    request = b"get trickle/t=1\r\n"
    socks = connect_many(srv.port, n)
    peak = base
    try:
        for sec in range(seconds):
            t0 = time.monotonic()
            for s in socks:
                s.send(request[sec:sec + 1])
            peak = max(peak, rss_anon_kib(pid))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
            peak = max(peak, rss_anon_kib(pid))
        answered = ask_all(socks, request[seconds:], b"END\r\n")
    finally:
        for s in socks:
            s.close()
    print(f"\n{n} trickling connections for {seconds}s: RssAnon {base} KiB at start, "
          f"peak {peak} KiB (+{peak - base} KiB, {(peak - base) * 1024 // n} bytes per connection)")
    assert answered == n, f"only {answered} of {n} trickled requests were answered"
    if not sanitized(DARNER_BIN):
        assert peak < 64 * 1024, f"RssAnon peaked at {peak} KiB"
    still_serves(srv)


def test_10000_idle_connections(make_server):
    """10,000 connections held open at once, then each asks `version`."""
    n = 10000
    raise_nofile(n + 200)
    srv = make_server("--max-connections", "20000")
    pid = srv.proc.pid
    base = rss_anon_kib(pid)
    t0 = time.monotonic()
    socks = connect_many(srv.port, n)
    try:
        connected = time.monotonic() - t0

        def all_accepted():
            with Client(srv.port) as c:
                return int(c.stat("curr_connections")) >= n + 1
        assert wait_until(all_accepted, 30), "the server did not accept all connections"
        held = rss_anon_kib(pid)
        with Client(srv.port) as c:
            version = c.cmd("version").encode() + b"\r\n"
        answered = ask_all(socks, b"version\r\n", version, timeout=60)
        after = rss_anon_kib(pid)
    finally:
        for s in socks:
            s.close()
    print(f"\n{n} idle connections (connected in {connected:.1f}s): RssAnon {base} KiB before, "
          f"{held} KiB held (+{(held - base) * 1024 // n} bytes per connection), {after} KiB after "
          f"each asked version")
    assert answered == n, f"only {answered} of {n} connections answered version"
    if not sanitized(DARNER_BIN):
        assert held < 64 * 1024, f"RssAnon {held} KiB with {n} idle connections"
    still_serves(srv)
