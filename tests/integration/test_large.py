"""Large items (SPEC section 4): streamed both ways, never held in memory,
and never in the way of other clients."""
import threading
import time
import zlib

from harness import Client, DARNER_BIN, rss_anon_kib, sanitized

MiB = 1 << 20
CHUNK = MiB


class RssSampler:
    """Samples the server's own memory (RssAnon) until stopped."""

    def __init__(self, pid, every=0.02):
        self.pid, self.every, self.peak = pid, every, 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, rss_anon_kib(self.pid))
            self.done.wait(self.every)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(5)


def chunk(i):
    return bytes([i % 251]) * CHUNK


def send_item(c, key, size, flags=0):
    """Sends a set of `size` patterned bytes; returns the crc32 of the data."""
    c.send(f"set {key} {flags} 0 {size}\r\n")
    crc, left, i = 0, size, 0
    while left:
        block = chunk(i)[:min(left, CHUNK)]
        c.sock.sendall(block)
        crc = zlib.crc32(block, crc)
        left -= len(block)
        i += 1
    c.send("\r\n")
    return crc


def recv_item(c, key):
    """Gets one item; returns (flags, size, crc32) or None."""
    c.send(f"get {key}\r\n")
    line = c.readline()
    if line == "END":
        return None
    _, _, flags, size = line.split()
    size = int(size)
    crc, left = 0, size
    if c.buf:
        part = c.buf[:left]
        c.buf = c.buf[len(part):]
        crc = zlib.crc32(part, crc)
        left -= len(part)
    view = bytearray(4 * MiB)
    while left:
        n = c.sock.recv_into(view, min(left, len(view)))
        assert n, "server closed mid-item"
        crc = zlib.crc32(view[:n], crc)
        left -= n
    assert c.read_exact(2) == b"\r\n"
    assert c.readline() == "END"
    return int(flags), size, crc


def test_one_gib_item_round_trips_with_small_own_memory(make_server):
    srv = make_server("--max-item-size", "2G")
    c = Client(srv.port, timeout=120)
    size = 1 << 30
    with RssSampler(srv.proc.pid) as during_set:
        crc = send_item(c, "big", size, flags=9)
        assert c.readline() == "STORED"
    with RssSampler(srv.proc.pid) as during_get:
        assert recv_item(c, "big") == (9, size, crc)
    print(f"1 GiB item: RssAnon peak {during_set.peak} KiB receiving, {during_get.peak} KiB sending")
    if not sanitized(DARNER_BIN):
        assert during_set.peak < 64 * 1024, f"RssAnon peaked at {during_set.peak} KiB while receiving"
        assert during_get.peak < 64 * 1024, f"RssAnon peaked at {during_get.peak} KiB while sending"
    c.close()


def test_large_item_file_is_removed_once_consumed(make_server):
    srv = make_server()
    c = Client(srv.port, timeout=30)
    crc = send_item(c, "q", 3 * MiB)
    assert c.readline() == "STORED"
    qdir = next(srv.data.glob("q-*"))
    assert len(list(qdir.glob("blob-*.dat"))) == 1
    assert recv_item(c, "q") == (0, 3 * MiB, crc)
    # Deleted once the removal is durable: at the next fsync (default every second).
    assert wait_gone(qdir, "blob-*.dat")
    assert list((srv.data / "tmp").iterdir()) == []


def test_large_item_survives_sigkill_and_keeps_its_place(make_server):
    srv = make_server()
    c = Client(srv.port, timeout=30)
    assert c.set("q", "first") == "STORED"
    crc = send_item(c, "q", 5 * MiB + 3, flags=4)
    assert c.readline() == "STORED"
    assert c.set("q", "last") == "STORED"
    c.close()
    srv.kill()
    srv.start()
    c = Client(srv.port, timeout=30)
    assert c.get_data("q") == b"first"
    assert recv_item(c, "q") == (4, 5 * MiB + 3, crc)
    assert c.get_data("q") == b"last"
    assert c.get("q") is None


def test_open_large_item_comes_back_when_its_client_vanishes(make_server):
    srv = make_server()
    c = Client(srv.port, timeout=30)
    crc = send_item(c, "q", 2 * MiB)
    assert c.readline() == "STORED"
    assert recv_item(c, "q/open")[2] == crc
    c.close()
    c2 = Client(srv.port, timeout=30)
    assert recv_item(c2, "q") == (0, 2 * MiB, crc)


def test_small_clients_are_served_while_large_items_are_in_flight(make_server):
    srv = make_server("--max-item-size", "2G")
    big = Client(srv.port, timeout=120)
    small = Client(srv.port, timeout=10)
    size = 512 * MiB
    done = threading.Event()
    result = {}

    def push_then_pull():
        result["crc"] = send_item(big, "big", size)
        result["stored"] = big.readline()
        result["got"] = recv_item(big, "big")
        done.set()

    t = threading.Thread(target=push_then_pull, daemon=True)
    t.start()
    latencies = []
    while not done.is_set() and len(latencies) < 5000:
        start = time.monotonic()
        assert small.set("small", "x") == "STORED"
        assert small.get_data("small") == b"x"
        latencies.append(time.monotonic() - start)
    t.join(120)
    assert result["stored"] == "STORED"
    assert result["got"] == (0, size, result["crc"])
    assert len(latencies) >= 20, "the large transfer ended before small requests could be timed"
    latencies.sort()
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[int(len(latencies) * 0.99)]
    print(f"small set+get while 512 MiB moved: n={len(latencies)} p50={p50 * 1e3:.2f} ms p99={p99 * 1e3:.2f} ms")
    assert p50 < 0.02, f"median small round trip {p50 * 1e3:.1f} ms"


def test_two_large_sets_into_one_queue_neither_interleave_nor_block_small_sets(make_server):
    srv = make_server()
    a, b, small = (Client(srv.port, timeout=30) for _ in range(3))
    size = 8 * MiB
    half = size // 2
    a.send(f"set q 1 0 {size}\r\n")
    b.send(f"set q 2 0 {size}\r\n")
    a.sock.sendall(b"a" * half)
    b.sock.sendall(b"b" * half)
    # A small set into the same queue completes while both are half way.
    assert small.set("q", "small") == "STORED"
    b.sock.sendall(b"b" * half + b"\r\n")
    assert b.readline() == "STORED"
    a.sock.sendall(b"a" * half + b"\r\n")
    assert a.readline() == "STORED"
    assert small.get_data("q") == b"small"
    crc_b = zlib.crc32(b"b" * size)
    crc_a = zlib.crc32(b"a" * size)
    assert recv_item(small, "q") == (2, size, crc_b)
    assert recv_item(small, "q") == (1, size, crc_a)
    assert small.get("q") is None


def test_item_over_max_size_is_refused_and_swallowed(make_server):
    srv = make_server("--max-item-size", "1M")
    c = Client(srv.port, timeout=30)
    send_item(c, "q", 3 * MiB)
    assert c.readline() == "SERVER_ERROR object too large for cache"
    assert c.set("q", "fits") == "STORED"
    assert c.get_data("q") == b"fits"
    assert c.get("q") is None
    assert list((srv.data / "tmp").iterdir()) == []


def test_large_set_cut_short_by_a_vanishing_client_leaves_nothing(make_server):
    srv = make_server()
    c = Client(srv.port, timeout=30)
    assert c.set("q", "keep") == "STORED"
    c.send(f"set q 0 0 {4 * MiB}\r\n")
    c.sock.sendall(b"z" * MiB)
    c.close()
    c2 = Client(srv.port, timeout=30)
    assert c2.cmd("version").startswith("VERSION")  # the server is still there
    assert c2.get_data("q") == b"keep"
    assert c2.get("q") is None
    assert wait_empty(srv.data / "tmp")


def wait_gone(folder, pattern, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not list(folder.glob(pattern)):
            return True
        time.sleep(0.01)
    return False


def wait_empty(folder, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(folder.iterdir()):
            return True
        time.sleep(0.01)
    return False
