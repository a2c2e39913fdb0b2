"""Bad input, row by row (docs/protocol.md, "Bad input, row by row").

One test per row of the table: what a broken, hostile or unlucky client can
send.  Each checks the answer the protocol gives, whether the connection stays
or is closed, that nothing was stored that should not be, and, at the end,
that the server still answers `version` on a new connection.
"""

import random
import re
import socket
import struct
import threading
import time

import pytest

from harness import Client, DARNER_BIN, listing, rss_anon_kib, sanitized, wait_until

MiB = 1 << 20


# -- helpers ----------------------------------------------------------------------


def still_serves(srv):
    """The server is alive and answers `version` on a new connection."""
    assert srv.running(), f"darner died:\n{srv.log()}"
    with Client(srv.port, timeout=5) as c:
        reply = c.cmd("version")
    assert reply.startswith("VERSION "), reply


def send_ignoring_reset(c, data):
    try:
        c.send(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def queue_stats(srv, q):
    with Client(srv.port) as c:
        st = c.stats()
    return {k[len(f"queue_{q}_"):]: v for k, v in st.items() if k.startswith(f"queue_{q}_")}


@pytest.fixture
def srv(make_server):
    s = make_server()
    yield s
    if s.running():
        still_serves(s)


# -- rows ---------------------------------------------------------------------------

def test_unknown_command(srv):
    with srv.client() as c:
        for line in [b"frobnicate q", b"GETX q", b"incr q 1", b"gat 0 q", b"\xff\xfe"]:
            assert c.cmd(line) == "ERROR", line
        # the connection stays usable
        assert c.set("q", b"x") == "STORED"
        assert c.get("q") == (0, b"x")
    still_serves(srv)


def test_empty_line(srv):
    with srv.client() as c:
        assert c.cmd(b"") == "ERROR"
        assert c.cmd(b"   ") == "ERROR"
        c.send(b"\n")                      # a bare LF is a line too
        assert c.readline() == "ERROR"
        assert c.cmd("version").startswith("VERSION ")
    still_serves(srv)


def test_line_over_the_limit_without_newline_is_refused_unbuffered(make_server):
    """10x --max-line-length without a newline, on several connections at
    once: CLIENT_ERROR line too long, the connection is closed, and the server
    never buffers past the limit (its RssAnon does not grow by what was sent)."""
    limit = 1 * MiB
    conns = 8
    srv = make_server("--max-line-length", str(limit))
    pid = srv.proc.pid
    base = rss_anon_kib(pid)
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_anon_kib(pid))
            done.wait(0.005)

    answers = [None] * conns
    sent = [0] * conns

    def flood(i):
        c = Client(srv.port, timeout=10)
        block = b"g" * (64 * 1024)
        try:
            while sent[i] < 10 * limit:
                sent[i] += c.sock.send(block)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            pass
        try:
            answers[i] = c.readline()
            c.expect_closed()
        except (ConnectionError, OSError) as e:
            answers[i] = f"<{e!r}>"
        finally:
            c.close()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    threads = [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
        assert not t.is_alive(), "a flooding client hung"
    done.set()
    sampler.join(5)

    growth = peak[0] - base
    print(f"\nline over the limit: {conns} connections x up to {10 * limit // MiB} MiB "
          f"(sent {sum(sent) // MiB} MiB in all): RssAnon {base} KiB -> peak {peak[0]} KiB "
          f"(+{growth} KiB)")
    for a in answers:
        assert a == "CLIENT_ERROR line too long", answers
    if not sanitized(DARNER_BIN):
        # Each connection may hold up to one limit's worth of buffer; what was
        # sent beyond it must not be kept (that would be +80 MiB here).
        assert growth < conns * 2 * limit // 1024 + 8 * 1024, f"RssAnon grew by {growth} KiB"
    still_serves(srv)


# set headers: (header, what follows, fatal).  A header whose byte count can be
# read gets CLIENT_ERROR, its data is skipped and the connection stays; one
# whose byte count cannot be read gets CLIENT_ERROR and the connection closes.
BAD_SET_HEADERS = [
    # negative numbers
    (b"set q -1 0 1", b"x\r\n", False),                      # flags
    (b"set q 0 0 -1", b"", True),                             # bytes
    (b"set q 0 0 -0", b"", True),
    # non-numeric
    (b"set q abc 0 1", b"x\r\n", False),
    (b"set q 0 abc 1", b"x\r\n", False),
    (b"set q 0 0 abc", b"", True),
    (b"set q 0x1 0 1", b"x\r\n", False),
    (b"set q 0 0 1e3", b"", True),
    (b"set q +1 0 1", b"x\r\n", False),
    (b"set q 0 0 +1", b"", True),
    # overflowing: flags are 32 bits, exptime 64 signed, bytes 64 unsigned
    (b"set q 4294967296 0 1", b"x\r\n", False),
    (b"set q 0 9223372036854775808 1", b"x\r\n", False),
    (b"set q 0 -9223372036854775809 1", b"x\r\n", False),
    (b"set q 0 18446744073709551616 1", b"x\r\n", False),
    (b"set q 0 0 18446744073709551616", b"", True),
    (b"set q 0 0 99999999999999999999999999", b"", True),
    (b"set q 18446744073709551616 0 1", b"x\r\n", False),
    # missing fields
    (b"set", b"", True),
    (b"set q", b"", True),
    (b"set q 0", b"", True),
    (b"set q 0 0", b"", True),
    # extra fields
    (b"set q 0 0 1 noreply extra", b"x\r\n", False),
    (b"set q 0 0 1 bogus", b"x\r\n", False),
]


@pytest.mark.parametrize("header,data,fatal", BAD_SET_HEADERS,
                         ids=[h.decode() for h, _, _ in BAD_SET_HEADERS])
def test_bad_set_header(srv, header, data, fatal):
    with srv.client() as c:
        # The data of a refused set must be skipped, never run as a request:
        # a set header as data would store something.
        c.send(header + b"\r\n" + data + b"version\r\n")
        reply = c.readline()
        assert reply.startswith("CLIENT_ERROR "), f"{header!r} -> {reply!r}"
        if fatal:
            c.expect_closed()
        else:
            assert c.readline().startswith("VERSION "), "connection not usable after a skipped set"
            assert c.cmd("get q") == "END"
    with srv.client() as c:
        assert c.get("q") is None, "a refused set stored an item"
    still_serves(srv)


def test_huge_readable_byte_count_is_too_large_and_swallowed(srv):
    """2^64-3 is a number: over --max-item-size, so SERVER_ERROR and the
    connection reads and drops what follows (it cannot end; the client closes)."""
    with srv.client() as c:
        c.send(b"set q 0 0 18446744073709551613\r\n" + b"set q 0 0 1\r\nx\r\n" * 100)
        assert c.readline() == "SERVER_ERROR object too large for cache"
        assert not c.pending(0.3), "the swallowed bytes were run as requests"
    with srv.client() as c:
        assert c.get("q") is None
    still_serves(srv)


def test_data_shorter_than_declared(srv):
    """The server cannot know data is short: it waits for the rest.  What
    arrives next is data; if it is not followed by CRLF at the declared end,
    bad data chunk, close, nothing stored."""
    with srv.client() as c:
        c.send(b"set q 0 0 10\r\nabc\r\n")
        assert not c.pending(0.3), "answered before the declared data arrived"
        c.send(b"get qq\r\nversion\r\n")    # "get q" ends the 10 bytes; "q\r" is no CRLF
        reply = c.readline()
        assert reply == "CLIENT_ERROR bad data chunk", reply
        c.expect_closed()
    with srv.client() as c:
        assert c.get("q") is None
        # the same short set, completed by the client, is stored as sent
        c.send(b"set q 0 0 10\r\nabc\r\n")
        c.send(b"get q\r\n")
        assert c.readline() == "STORED"
        assert c.get("q") == (0, b"abc\r\nget q")
    still_serves(srv)


def test_data_longer_than_declared(srv):
    for big in (False, True):
        with srv.client() as c:
            n = 300 * 1024 if big else 3          # big: streamed to a file
            c.send(b"set q 0 0 %d\r\n" % n + b"a" * n + b"TOO MUCH\r\n")
            assert c.readline() == "CLIENT_ERROR bad data chunk"
            c.expect_closed()
        with srv.client() as c:
            assert c.get("q") is None, "an item with bad framing was stored"
    tmp = srv.data / "tmp"
    assert wait_until(lambda: not tmp.exists() or not any(tmp.iterdir()), 5), list(tmp.iterdir())
    still_serves(srv)


def test_binary_junk(srv):
    """Random bytes on many connections: answers are only ERROR, CLIENT_ERROR
    or SERVER_ERROR lines (or the connection is closed); the server survives
    and stores nothing."""
    rng = random.Random(1234)
    before = listing(srv.data)
    for n in range(20):
        junk = bytes(rng.randrange(256) for _ in range(rng.choice([1, 100, 4096, 20000])))
        junk = re.sub(rb"(?i)set", b"s_t", junk)   # stay junk: no stray valid set
        if junk[0] == 0x80:   # a binary request magic first: binary junk is test_binary.py's
            junk = b"\x7f" + junk[1:]
        with Client(srv.port, timeout=5) as c:
            send_ignoring_reset(c, junk + b"\r\n")
            deadline = time.monotonic() + 2
            try:
                while time.monotonic() < deadline and c.pending(0.2):
                    line = c.readline()
                    assert (line == "ERROR" or line.startswith("CLIENT_ERROR ")
                            or line.startswith("SERVER_ERROR ") or line == "END"
                            or line.startswith("VERSION ") or line == "OK"
                            or line.startswith("STAT ") or line == "DELETED"), repr(line)
            except (ConnectionError, OSError):
                pass
    with srv.client() as c:
        st = c.stats()
        assert st["queue_creates"] == "0" and st["queues"] == "0", "junk created a queue"
    assert listing(srv.data) == before
    still_serves(srv)


CONTROL_NAMES = [b"a\x00b", b"\x00", b"a\x01b", b"a\tb", b"a\x7fb", b"a\rb", b"\x1b[31m", b"a\x0bb"]


@pytest.mark.parametrize("name", CONTROL_NAMES, ids=[repr(n) for n in CONTROL_NAMES])
def test_nul_and_control_bytes_in_names(srv, name):
    before = listing(srv.data)
    with srv.client() as c:
        assert c.cmd(b"get " + name) == "CLIENT_ERROR bad key", name
        c.send(b"set " + name + b" 0 0 1\r\nx\r\nversion\r\n")
        assert c.readline() == "CLIENT_ERROR bad key", name
        assert c.readline().startswith("VERSION ")      # the data was skipped
        assert c.cmd(b"delete " + name).startswith("CLIENT_ERROR")
        assert c.cmd(b"flush " + name).startswith("CLIENT_ERROR")
        assert c.cmd("version").startswith("VERSION ")
    assert listing(srv.data) == before
    still_serves(srv)


def test_251_byte_names(srv):
    before = listing(srv.data)
    long = b"n" * 251
    with srv.client() as c:
        assert c.cmd(b"get " + long) == "CLIENT_ERROR key too long"
        assert c.cmd(b"get " + long + b"/open") == "CLIENT_ERROR key too long"
        assert c.cmd(b"get q " + long) == "CLIENT_ERROR key too long"   # one bad key refuses all
        c.send(b"set " + long + b" 0 0 1\r\nx\r\nversion\r\n")
        assert c.readline() == "CLIENT_ERROR key too long"
        assert c.readline().startswith("VERSION ")
        assert c.cmd(b"delete " + long).startswith("CLIENT_ERROR")
        assert c.cmd(b"flush " + long).startswith("CLIENT_ERROR")
        assert listing(srv.data) == before
        # 250 is the longest name, and works
        assert c.set(b"n" * 250, b"ok") == "STORED"
        assert c.get(b"n" * 250) == (0, b"ok")
    still_serves(srv)


def test_names_dot_dotdot_slash_con(srv, tmp_path):
    outside = sorted(p.name for p in tmp_path.parent.iterdir())
    beside = listing(tmp_path, exclude=[srv.data])
    with srv.client() as c:
        for name in [".", "..", "CON", "con", "NUL", "a\\b", "..\\.."]:
            assert c.set(name, name.encode()) == "STORED", name
        # a '/' starts the options: "../x" is ".." with the unknown option "x"
        assert c.cmd("get ../x") == "CLIENT_ERROR bad option: unknown"
        c.send(b"set ../x 0 0 1\r\nx\r\nversion\r\n")
        assert c.readline() == "CLIENT_ERROR bad option: unknown"
        assert c.readline().startswith("VERSION ")
        assert c.cmd("delete ../x").startswith("CLIENT_ERROR")
        for name in [".", "..", "CON", "con", "NUL", "a\\b", "..\\.."]:
            assert c.get(name) == (0, name.encode()), name
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == outside
    assert listing(tmp_path, exclude=[srv.data]) == beside
    still_serves(srv)


def test_names_differing_only_in_case(srv):
    names = ["queue", "Queue", "QUEUE", "qUEUE", "con", "CON"]
    with srv.client() as c:
        for n in names:
            assert c.set(n, n.encode()) == "STORED"
    srv.restart()
    with srv.client() as c:
        for n in names:
            assert c.get(n) == (0, n.encode()), n
        for n in names:
            assert c.get(n) is None, n
    still_serves(srv)


def test_get_of_1000_keys(make_server):
    srv = make_server("--max-line-length", "65536")
    keys = [f"queue-{i:04d}" for i in range(1000)]
    with srv.client() as c:
        # items in every other queue; the rest do not exist
        for k in keys[::2]:
            c.set(k, k.encode(), flags=int(k[-4:]), noreply=True)
        assert c.cmd("version").startswith("VERSION ")
        line = ("get " + " ".join(keys)).encode()
        assert len(line) > 8192
        items = c.get_multi(keys)            # reads VALUE blocks up to the one END
        assert [k for k, _, _ in items] == keys[::2]
        assert all(d == k.encode() and f == int(k[-4:]) for k, f, d in items)
        assert not c.pending(0.2), "more than one END"
        # each item was removed
        assert c.get_multi(keys) == []
        # with options on every key
        for k in keys[:10]:
            c.set(k, b"o", noreply=True)
        items = c.get_multi([k + "/open" for k in keys])
        assert [k for k, _, _ in items] == [k + "/open" for k in keys[:10]]
        assert c.get_multi([k + "/close" for k in keys]) == []
    still_serves(srv)


def test_timeout_option_with_huge_values(srv):
    with srv.client() as c:
        for t in ["4294967296", "18446744073709551616", "99999999999999999999999", "-1", "1e9", "0x10", ""]:
            reply = c.cmd(f"get q/t={t}")
            assert reply == "CLIENT_ERROR bad option: t= is 0 to 4294967295 ms", (t, reply)
        assert c.cmd("version").startswith("VERSION ")
        assert c.set("q", b"make the queue") == "STORED"
        assert c.get("q") == (0, b"make the queue")
    # 4294967295 (the largest) is accepted: the connection waits ...
    waiter = srv.client()
    waiter.send("get q/t=4294967295\r\n")
    assert not waiter.pending(0.3), "a get with /t=4294967295 answered at once"
    assert wait_until(lambda: queue_stats(srv, "q").get("waiters") == "1", 5), queue_stats(srv, "q")
    # ... and closing it cancels the wait: the next item goes to someone else.
    waiter.close()
    assert wait_until(lambda: queue_stats(srv, "q").get("waiters") == "0", 10), queue_stats(srv, "q")
    with srv.client() as c:
        assert c.set("q", b"for the living") == "STORED"
        assert c.get("q") == (0, b"for the living")
        st = queue_stats(srv, "q")
        assert st.get("waiters", "0") == "0", st
    still_serves(srv)


def test_timeout_option_padded_with_zeros(srv):
    """/t= with thousands of leading zeros is a small, valid timeout: the key
    token is then far longer than a name.  The get waits that long and
    answers END (a server that copies the key into a name-sized buffer to
    wait on it overflows that buffer here)."""
    for pad in (100, 1000, 4000, 8000):
        key = "q/t=" + "0" * pad + "150"
        for k in (key, "q/open" + key[1:], key + "/open"):
            with Client(srv.port, timeout=5) as c:
                t0 = time.monotonic()
                assert c.cmd("get " + k) == "END", (pad, k[:20])
                assert time.monotonic() - t0 >= 0.14
                assert c.cmd("version").startswith("VERSION ")
        # the same key, waiting, when an item arrives: VALUE echoes the key whole
        with Client(srv.port, timeout=5) as c, Client(srv.port, timeout=5) as p:
            long_wait = "q/t=" + "0" * pad + "5000"
            c.send("get " + long_wait + "\r\n")
            time.sleep(0.1)
            assert p.set("q", b"late") == "STORED"
            assert c.read_values() == [(long_wait, 0, b"late")]
    still_serves(srv)


BAD_OPTIONS = [
    b"get q/foo", b"get q/open/open", b"get q/close/close", b"get q/t=1/t=2",
    b"get q/peek/peek", b"get q/", b"get q//open", b"get q/OPEN", b"get q/sync",
    b"delete q/open", b"flush q/peek", b"delete q/sync",
]


@pytest.mark.parametrize("line", BAD_OPTIONS, ids=[b.decode() for b in BAD_OPTIONS])
def test_unknown_and_repeated_options(srv, line):
    with srv.client() as c:
        assert c.set("q", b"keep") == "STORED"
        reply = c.cmd(line)
        assert reply.startswith("CLIENT_ERROR"), (line, reply)
        # set takes only /sync, once
        for hdr in [b"set q/open 0 0 1", b"set q/sync/sync 0 0 1", b"set q/t=5 0 0 1"]:
            c.send(hdr + b"\r\nx\r\nversion\r\n")
            assert c.readline().startswith("CLIENT_ERROR"), hdr
            assert c.readline().startswith("VERSION ")
        # nothing taken, opened or added
        assert c.get("q") == (0, b"keep")
        assert c.get("q") is None
    still_serves(srv)


PIPELINE = (
    b"set QQQQ 5 0 5\r\nhello\r\n"
    b"set QQQQ 0 0 0\r\n\r\n"
    b"set QQQQ/sync 7 0 3 noreply\r\nabc\r\n"
    b"get QQQQ/peek\r\n"
    b"get QQQQ/open\r\n"
    b"frobnicate\r\n"
    b"get QQQQ/close/open\r\n"
    b"get QQQQ/abort\r\n"
    b"\r\n"
    b"get QQQQ/foo\r\n"
    b"set QQQQ 0 0 1 bogus\r\nz\r\n"
    b"GET QQQQ QQQQ/t=1\n"
    b"set QQQQ 1 0 2\r\nxy\r\n"
    b"add QQQQ 0 0 2\r\nab\r\n"
    b"gets QQQQ\r\n"
    b"flush QQQQ\r\n"
    b"get QQQQ\r\n"
    b"delete QQQQ\r\n"
    b"verbosity 1\r\n"
    b"version\r\n"
)


LAST_ANSWER = re.compile(rb"(^|\r\n)VERSION [^\r\n]*\r\n$")


def read_until_version(c):
    """Every byte answered up to and including the VERSION line that ends
    the pipeline."""
    out = c.buf
    c.buf = b""
    while not LAST_ANSWER.search(out):
        chunk = c.sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed; got so far: {out!r}")
        out += chunk
    return out


def test_pipelined_requests_split_at_every_byte_boundary(srv):
    """The same pipeline of mixed requests sent whole and split in two at
    every byte (the two parts arrive separately); the answers are always the
    same bytes.  Each split uses its own queue, named with the same length."""
    with srv.client() as c:
        c.send(PIPELINE.replace(b"QQQQ", b"ref0"))
        reference = read_until_version(c).replace(b"ref0", b"QQQQ")
    assert reference.count(b"\r\n") > 15
    assert b"VALUE QQQQ/peek 5 5\r\nhello\r\n" in reference
    with srv.client() as c:
        for k in range(1, len(PIPELINE)):
            name = b"s%03d" % (k % 1000)
            data = PIPELINE.replace(b"QQQQ", name)
            c.send(data[:k])
            time.sleep(0.002)
            c.send(data[k:])
            got = read_until_version(c).replace(name, b"QQQQ")
            assert got == reference, f"split at byte {k} ({data[:k][-20:]!r} | {data[k:][:20]!r})"
    still_serves(srv)


def test_client_closing_mid_set(srv):
    """The connection ends inside a set's data: no item appears (inline and
    streamed sizes), and a streamed item leaves no temporary file."""
    for n, cut in [(100, 50), (100, 0), (600 * 1024, 300 * 1024), (2 * MiB, 1)]:
        with srv.client() as c:
            c.send(b"set q 0 0 %d\r\n" % n + b"d" * cut)
            time.sleep(0.05)
        time.sleep(0.05)
        with srv.client() as c:
            assert c.get("q") is None, (n, cut)
            assert c.set("other", b"ok") == "STORED"
            assert c.get("other") == (0, b"ok")
    tmp = srv.data / "tmp"
    assert wait_until(lambda: not tmp.exists() or not any(tmp.iterdir()), 5), list(tmp.iterdir())
    st = queue_stats(srv, "q")
    assert st == {} or st.get("items") == "0", st
    still_serves(srv)


def test_client_closing_mid_get_of_a_large_item(srv):
    """The connection ends while a large item is being sent.  A plain get
    removed the item when it answered (at most once: it is gone); an /open
    get gives it back (it is handed out again, whole)."""
    big = bytes(range(256)) * (96 * 1024)       # 24 MiB: more than the socket buffers hold
    with srv.client() as c:
        assert c.set("q", big) == "STORED"
        assert c.set("q", b"second") == "STORED"
        assert c.set("r", big) == "STORED"
        assert c.set("r", b"second") == "STORED"
    # plain get, cut after a few KiB
    c = Client(srv.port)
    c.send(b"get q\r\n")
    c.sock.recv(4096)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()                                  # RST: the server's write fails mid-item
    # /open get, cut the same way
    c = Client(srv.port)
    c.send(b"get r/open\r\n")
    c.sock.recv(4096)
    c.close()
    # the server notices the closed connection when its next write fails
    assert wait_until(lambda: queue_stats(srv, "r").get("open_transactions") == "0", 10), \
        queue_stats(srv, "r")
    with srv.client() as c:
        assert c.get("q") == (0, b"second"), "a plain get's item came back after a cut answer"
        got = c.get("r/open")
        assert got == (0, big), "the open item cut mid-send did not come back whole"
        assert c.cmd("get r/close") == "END"
        assert c.get("r") == (0, b"second")
    still_serves(srv)
