"""Disk full, end to end: the server on a small file system of the test's own.

Two file systems: a 16 MiB tmpfs, and a 32 MiB ext4 image on a loop device.
Either is skipped with its reason when this machine does not allow it (not
root, no mount permission, no loop devices, no mkfs.ext4).  Each is unmounted
in the fixture's finalizer, after the server has stopped.

The promises (SPEC section 2: "A failure of the server itself (disk full, I/O
error) answers SERVER_ERROR <reason> and loses nothing that was already
acknowledged"; issue 5: "filled, sets answer SERVER_ERROR, gets still
served, writing resumes once space is freed, nothing acknowledged lost"),
one test each:
- filled with sets, the server answers SERVER_ERROR and keeps running;
- gets are still served on a full disk;
- a get that fails answers one SERVER_ERROR line, nothing after it;
- once space is freed (another queue deleted, items consumed, or a file of
  ours removed) sets are STORED again;
- every item answered STORED and not consumed comes back, in order, after a
  restart; nothing that failed appears.
"""

import os
import shutil
import subprocess
import time
import uuid

import pytest

from harness import wait_until

ITEM = 4096
SEGMENT = 1 << 20
BALLAST = 64 * 1024      # items of the queue deleted to free space
BALLAST_ITEMS = 48       # 3 MiB


def _run(*cmd):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(params=["tmpfs", "ext4-loop"])
def small_fs(request, tmp_path):
    """A mounted small file system; yields its mount point."""
    if os.geteuid() != 0:
        pytest.skip("mounting a file system of our own needs root")
    mnt = tmp_path / "fs"
    mnt.mkdir()
    image = None
    if request.param == "tmpfs":
        r = _run("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt))
        if r.returncode != 0:
            pytest.skip(f"mount -t tmpfs not permitted here: {r.stderr.strip()}")
    else:
        if not shutil.which("mkfs.ext4"):
            pytest.skip("no mkfs.ext4 for the loop-mounted variant")
        image = tmp_path / "fs.img"
        with open(image, "wb") as f:
            f.truncate(32 << 20)
        r = _run("mkfs.ext4", "-q", "-F", str(image))
        if r.returncode != 0:
            pytest.skip(f"mkfs.ext4 failed: {r.stderr.strip()}")
        r = _run("mount", "-o", "loop", str(image), str(mnt))
        if r.returncode != 0:
            pytest.skip(f"loop mount not permitted here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        # The server (make_server's finalizer) is gone by now: this fixture
        # was set up first, so it is torn down last.
        for _ in range(50):
            if _run("umount", str(mnt)).returncode == 0:
                break
            time.sleep(0.1)
        else:
            _run("umount", "-l", str(mnt))
        if image is not None:
            image.unlink(missing_ok=True)


# -- helpers --------------------------------------------------------------------------

def payload(i, size=ITEM):
    head = b"%08d|" % i
    return head + bytes((i + k) % 251 for k in range(size - len(head)))


def fill(c, q, start, limit=20000, batch=64, size=ITEM):
    """Pipelined sets of numbered items, until one answers SERVER_ERROR or
    `limit` were sent.  Returns (ids answered STORED, first error line)."""
    stored, error = [], None
    i = start
    while i < start + limit and error is None:
        ids = list(range(i, min(i + batch, start + limit)))
        c.send(b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (q.encode(), size, payload(k, size)) for k in ids))
        for k in ids:
            r = c.readline()
            if r == "STORED":
                stored.append(k)
            elif r.startswith("SERVER_ERROR "):
                error = error or r
            else:
                raise AssertionError(f"set {k} answered {r!r}")
        i += len(ids)
    return stored, error


class Getter:
    """Plain gets on one connection, answers classified.  A SERVER_ERROR must
    be the whole answer: after one, a `version` is sent, and any line before
    its VERSION is recorded in `stray` (the caller decides whether that fails
    its test)."""

    def __init__(self, c):
        self.c = c
        self.stray = []

    def get(self, q):
        """("value", id) | ("end", None) | ("error", line)"""
        self.c.send(b"get %s\r\n" % q.encode())
        line = self.c.readline_bytes()
        if line == b"END":
            return "end", None
        if line.startswith(b"SERVER_ERROR "):
            self.c.send(b"version\r\n")
            while True:
                nxt = self.c.readline()
                if nxt.startswith("VERSION "):
                    break
                self.stray.append(nxt)
            return "error", line.decode()
        parts = line.split(b" ")
        assert parts[0] == b"VALUE", f"get {q} answered {line!r}"
        data = self.c.read_exact(int(parts[3]))
        assert self.c.read_exact(2) == b"\r\n"
        assert self.c.readline() == "END"
        i = int(data[:8])
        assert data == payload(i, len(data)), f"item {i} came back altered"
        return "value", i

    def take(self, q, n):
        """Up to n gets; returns (ids served, the answer that stopped it or None)."""
        out = []
        for _ in range(n):
            kind, v = self.get(q)
            if kind != "value":
                return out, (kind, v)
            out.append(v)
        return out, None


def full_server(small_fs, make_server):
    """A server whose file system is full: a ballast queue (deleted by tests
    to free space), then the queue "full" filled until a set fails."""
    srv = make_server("--segment-size", str(SEGMENT), data=small_fs / "data")
    with srv.client() as c:
        ballast, err = fill(c, "ballast", 0, limit=BALLAST_ITEMS, batch=8, size=BALLAST)
        assert err is None, f"the ballast did not fit: {err}"
        stored, err = fill(c, "full", 0)
    assert err is not None, "the file system never filled"
    assert len(stored) > 100, f"only {len(stored)} items stored before {err!r}"
    print(f"\n{small_fs}: {len(stored)} items of {ITEM} bytes stored, then {err!r}")
    return srv, stored


def drain_after_restart(srv, q, limit):
    srv.stop()
    srv.start()
    with srv.client() as c:
        g = Getter(c)
        left, stop = g.take(q, limit)
    assert stop == ("end", None), f"the drain after the restart stopped with {stop}"
    return left


# -- tests -------------------------------------------------------------------------------

def test_sets_on_a_full_disk_answer_server_error(small_fs, make_server):
    srv, _stored = full_server(small_fs, make_server)
    with srv.client() as c:
        # one set at a time: a failed batch of pipelined sets gives back the
        # space its partial write took, which a single set then finds
        more, err = fill(c, "full", 100000, limit=64, batch=1)
        assert err is not None, "sets were stored on a full disk with nothing freed"
        assert c.cmd("version").startswith("VERSION ")
        # a new queue cannot be made either
        r = c.cmd(b"set newq 0 0 %d\r\n%s" % (ITEM, payload(1)))
        assert r.startswith("SERVER_ERROR "), f"a set into a new queue answered {r!r}"
        # a large (streamed) item fails too, and leaves no temporary file
        big = 600 * 1024
        c.send(b"set full 0 0 %d\r\n" % big + b"B" * big + b"\r\n")
        r = c.readline()
        assert r.startswith("SERVER_ERROR "), f"a streamed set on a full disk answered {r!r}"
        assert c.cmd("version").startswith("VERSION ")
    assert srv.running()
    tmp = srv.data / "tmp"
    assert not tmp.exists() or not any(tmp.iterdir()), list(tmp.iterdir())


def test_gets_are_served_on_a_full_disk(small_fs, make_server):
    """Consuming is how a full queue gets its space back, so a full disk must
    not stop it: each get removes its item, in order."""
    srv, stored = full_server(small_fs, make_server)
    with srv.client() as c:
        g = Getter(c)
        got, stop = g.take("full", 300)
    assert got == stored[:len(got)], "items out of order"
    assert len(got) == 300, f"on the full disk only {len(got)} gets were served, then {stop}"


def test_a_failed_get_answers_one_server_error_line(small_fs, make_server):
    """If a get cannot record its removal, its answer is SERVER_ERROR <reason>
    and nothing else (an END after it would be read by a memcache client as
    the answer to its next request), and the item stays."""
    srv, stored = full_server(small_fs, make_server)
    with srv.client() as c:
        g = Getter(c)
        got, stop = g.take("full", 2000)
        if stop is None or stop[0] != "error":
            pytest.skip(f"no get failed on the full disk ({len(got)} served): nothing to check here")
        assert not g.stray, f"the answer {stop[1]!r} was followed by {g.stray!r}"
        assert c.cmd("delete ballast") == "DELETED"
        kind, v = g.get("full")
        assert (kind, v) == ("value", stored[len(got)]), \
            f"the item whose get failed is not the next one served: {kind} {v}"


def test_writing_resumes_after_another_queue_is_deleted(small_fs, make_server):
    srv, stored = full_server(small_fs, make_server)
    with srv.client() as c:
        assert c.cmd("delete ballast") == "DELETED"
        after, err = fill(c, "full", 200000, limit=64)
        assert err is None and len(after) == 64, f"sets still fail after space was freed: {err!r}"
    left = drain_after_restart(srv, "full", len(stored) + 100)
    assert left == stored + after, "acknowledged items lost or reordered across the restart"


def test_writing_resumes_after_consuming(small_fs, make_server):
    """Items taken free their segments: sets are STORED again."""
    srv, stored = full_server(small_fs, make_server)
    with srv.client() as c:
        g = Getter(c)
        got, stop = g.take("full", 600)     # more than two segments of items
        assert len(got) == 600, f"only {len(got)} gets served on the full disk, then {stop}"
        # The segments go once the removals are durable: after the next
        # periodic sync (default every second), one step each.
        last = []

        def refill():
            after, err = fill(c, "full", 200000, limit=64)
            last[:] = [err]
            return err is None and len(after) == 64
        assert wait_until(refill, timeout=15, interval=0.5), (
            f"after consuming {len(got)} items sets still fail: {last[0]!r}")


def test_nothing_acknowledged_is_lost(small_fs, make_server):
    """Sets that failed never appear; every STORED item not handed out comes
    back after a restart, in order; failed gets took nothing."""
    srv, stored = full_server(small_fs, make_server)
    with srv.client() as c:
        failed, err = fill(c, "full", 100000, limit=64)
        assert err is not None
        stored += failed                     # any that were STORED after all
        g = Getter(c)
        got, _stop = g.take("full", 100)     # failures allowed here: they take nothing
        assert got == stored[:len(got)]
        assert c.cmd("delete ballast") == "DELETED"
    left = drain_after_restart(srv, "full", len(stored) + 100)
    expected = stored[len(got):]
    assert left == expected, (f"after the restart {len(left)} items, expected {len(expected)}; "
                              f"missing {sorted(set(expected) - set(left))[:10]}, "
                              f"unexpected {sorted(set(left) - set(expected))[:10]}")


def test_disk_filled_by_another_file_and_freed(small_fs, make_server):
    """Space taken by someone else (a file of ours on the same file system):
    sets fail, gets are served, removing the file lets sets in again, and
    everything acknowledged is there after a restart."""
    srv = make_server("--segment-size", str(SEGMENT), data=small_fs / "data")
    q = "other"
    with srv.client() as c:
        before, err = fill(c, q, 0, limit=200)
        assert err is None and len(before) == 200
    filler = small_fs / f"filler-{uuid.uuid4().hex}"
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 20, 4096, 512):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass
    try:
        with srv.client() as c:
            failed, err = fill(c, q, 1000, limit=64)
            assert err is not None, "sets were stored with the file system full"
            assert c.cmd("version").startswith("VERSION ")
            g = Getter(c)
            got, stop = g.take(q, 50)
            assert got == before[:len(got)]
            assert len(got) == 50, f"on the full disk only {len(got)} gets were served, then {stop}"
    finally:
        filler.unlink()
    with srv.client() as c:
        after, err = fill(c, q, 5000, limit=64)
        assert err is None and len(after) == 64, f"sets still fail after space was freed: {err!r}"
    left = drain_after_restart(srv, q, 1000)
    assert left == before[len(got):] + failed + after, \
        "acknowledged items lost or reordered across the restart"
