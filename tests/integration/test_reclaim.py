"""Disk comes back (SPEC section 3): consumed segments are deleted, and one
item open for a long time does not pin the journal."""
from harness import Client, wait_until

MiB = 1 << 20


def queue_dir_bytes(srv):
    total = 0
    for qdir in srv.data.glob("q-*"):
        for f in qdir.iterdir():
            total += f.stat().st_size
    return total


def push_through(c, q, total, item):
    """Sets and gets `total` bytes in items of `item` bytes, pipelined in
    batches; yields after each batch."""
    payload = b"p" * item
    batch = 64
    sent = 0
    while sent < total:
        n = min(batch, (total - sent) // item) or 1
        c.send(b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (q.encode(), item, payload) for _ in range(n)))
        for _ in range(n):
            assert c.readline() == "STORED"
        c.send(f"get {q}\r\n" * n)
        for _ in range(n):
            head = c.readline()
            assert head.startswith("VALUE"), head
            assert len(c.read_exact(item + 2)) == item + 2
            assert c.readline() == "END"
        sent += n * item
        yield sent


def test_one_gib_through_a_queue_with_one_item_open_keeps_disk_small(make_server):
    seg = 4 * MiB
    srv = make_server("--segment-size", seg, "--fsync", "never")
    holder = Client(srv.port, timeout=30)
    assert holder.set("q", "held for the whole run") == "STORED"
    assert holder.get_data("q/open") == b"held for the whole run"
    worker = Client(srv.port, timeout=30)
    peak = 0
    for _ in push_through(worker, "q", 1 << 30, 64 * 1024):
        peak = max(peak, queue_dir_bytes(srv))
    print(f"1 GiB pushed with one item open: peak queue folder {peak / MiB:.1f} MiB, segments of {seg // MiB} MiB")
    assert peak <= 6 * seg, f"queue folder peaked at {peak} bytes"
    # The held item is intact, and still the holder's to confirm.
    assert worker.get("q") is None
    assert holder.cmd("get q/close") == "END"
    holder.close()
    assert worker.get("q") is None


def test_item_open_across_reclaim_comes_back_after_a_crash(make_server):
    seg = 256 * 1024
    srv = make_server("--segment-size", seg, "--fsync", "never")
    holder = Client(srv.port, timeout=30)
    assert holder.set("q", "old") == "STORED"
    assert holder.get_data("q/open") == b"old"
    worker = Client(srv.port, timeout=30)
    for _ in push_through(worker, "q", 16 * MiB, 16 * 1024):
        pass
    assert queue_dir_bytes(srv) <= 6 * seg
    srv.kill()
    srv.start()
    c = Client(srv.port, timeout=30)
    assert c.get_data("q") == b"old"
    assert c.get("q") is None


def test_consumed_segments_are_deleted(make_server):
    seg = 64 * 1024
    srv = make_server("--segment-size", seg)
    c = Client(srv.port, timeout=30)
    for _ in push_through(c, "q", 4 * MiB, 4096):
        pass
    qdir = next(srv.data.glob("q-*"))
    # Deleted once the removals that freed them are durable: after the next
    # periodic sync (--fsync 1000 by default).
    assert wait_until(lambda: len(list(qdir.glob("seg-*.dat"))) <= 2, timeout=10), \
        sorted(p.name for p in qdir.glob("seg-*.dat"))
