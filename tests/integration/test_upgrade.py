"""Data folders written by the version-1 code open with every item, in order.

build/darner-fixture writes a version-1 data folder (tests/fixture/
darner_fixture.c: the layout of docs/journal-format.md, written from the
description, no stored blobs) and prints what must come back.  The server
upgrades it in place: FORMAT says 3, each queue moves to the current files as it
is used, and every step survives a kill -9.  A folder whose queue holds a
journal file of a future version is refused untouched.
"""

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from harness import DARNER_BIN, drain_queue, listing, run_darner

FIXTURE = os.environ.get("DARNER_FIXTURE_BIN") or str(Path(DARNER_BIN).parent / "darner-fixture")
TOOL = os.environ.get("DARNER_JOURNAL_BIN") or str(Path(DARNER_BIN).parent / "darner-journal")


@pytest.fixture
def v1_folder(tmp_path):
    if not os.access(FIXTURE, os.X_OK):
        pytest.fail(f"darner-fixture not found: {FIXTURE}")
    data = tmp_path / "data"
    p = subprocess.run([FIXTURE, "v1", str(data)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    want = {}
    for line in p.stdout.splitlines():
        q, item = line.split("\t")
        if item.startswith("blob:"):
            _, n, ch = item.split(":")
            item = ch.encode() * int(n)
        else:
            item = item.encode()
        want.setdefault(q, []).append(item)
    return data, want


def version_of(path):
    with open(path, "rb") as f:
        return int.from_bytes(f.read(12)[8:12], "little")


def qfolder(data, name):
    for d in data.glob("q-*"):
        if (d / "NAME").read_bytes() == name.encode():
            return d
    raise AssertionError(name)


def test_v1_folder_serves_every_item_in_order_and_is_upgraded(make_server, v1_folder):
    data, want = v1_folder
    assert subprocess.run([TOOL, "check", str(qfolder(data, "jobs"))]).returncode == 0
    s = make_server(data=data)
    assert (data / "FORMAT").read_bytes() == b"3\n"
    with s.client() as c:
        assert drain_queue(c, "jobs") == want["jobs"]
        assert drain_queue(c, "plain") == want["plain"]
        assert drain_queue(c, "empty") == []
        assert c.set("jobs", "new-1") == "STORED"
        assert c.set("empty", "new-e") == "STORED"
    s.stop()
    jobs = qfolder(data, "jobs")
    segs = sorted(jobs.glob("seg-*.dat"))
    assert version_of(segs[-1]) == 2, "new items did not go to a version-2 segment"
    acks = [p for p in jobs.glob("acks.*") if p.stat().st_size >= 64]
    assert max(acks, key=lambda p: p.stat().st_mtime_ns) and any(version_of(p) == 3 for p in acks)
    for q in ("jobs", "plain", "empty"):
        r = subprocess.run([TOOL, "check", str(qfolder(data, q))], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout
    s.start()
    with s.client() as c:
        assert drain_queue(c, "jobs") == [b"new-1"]
        assert drain_queue(c, "empty") == [b"new-e"]


def test_upgrade_survives_kill_at_every_step(make_server, v1_folder):
    """kill -9 right after the upgrade began (FORMAT written, nothing used),
    after a set rolled a queue to a version-2 segment, and after an open item
    was handed out: each time every item is there, in order."""
    data, want = v1_folder
    s = make_server(data=data)
    s.kill()
    s.start()
    with s.client() as c:
        assert c.set("jobs", "after-kill") == "STORED"
    s.kill()
    s.start()
    with s.client() as c:
        assert c.get_data("jobs/open") == want["jobs"][0]
    s.kill()
    s.start()
    with s.client() as c:
        assert drain_queue(c, "jobs") == want["jobs"] + [b"after-kill"]
        assert drain_queue(c, "plain") == want["plain"]


def test_queue_with_a_future_journal_file_is_refused_untouched(make_server, v1_folder):
    data, want = v1_folder
    s = make_server(data=data)
    with s.client() as c:
        assert c.set("jobs", "x") == "STORED"
    s.stop()
    seg = sorted(qfolder(data, "jobs").glob("seg-*.dat"))[-1]
    subprocess.run([FIXTURE, "restamp", str(seg), "9"], check=True)
    before = {p: hashlib.sha256((data / p).read_bytes()).hexdigest()
              for p in listing(data) if (data / p).is_file()}
    s.start()
    with s.client() as c:
        r = c.set("jobs", "y")
        assert r.startswith("SERVER_ERROR ") and "format" in r, r
        assert c.cmd("get jobs").startswith("SERVER_ERROR ")
        assert drain_queue(c, "plain") == want["plain"]   # the other queues are served
    s.stop()
    assert "version 9" in s.log()
    after = {p: hashlib.sha256((data / p).read_bytes()).hexdigest()
             for p in listing(data) if (data / p).is_file()}
    jobs = qfolder(data, "jobs").name
    assert {p: h for p, h in after.items() if p.startswith(jobs)} == \
           {p: h for p, h in before.items() if p.startswith(jobs)}


def test_v2_folder_opens_and_its_ack_logs_move_to_version_3(make_server):
    """A folder as the version-2 builds left it (FORMAT 2, ack logs of version
    2 without delivery counts): every item comes back in order, the one open
    at the stop first, and the queue's ack log is rewritten in version 3."""
    s = make_server()
    with s.client() as c, s.client() as holder:
        for i in range(6):
            assert c.set("jobs", f"j{i}".encode()) == "STORED"
        assert c.get_data("jobs") == b"j0"
        assert holder.get_data("jobs/open") == b"j1"
        assert c.get_data("jobs/open") == b"j2"
        assert c.cmd("get jobs/close") == "END"
        s.kill()                                      # j1 open at the crash
    jobs = qfolder(s.data, "jobs")
    for p in jobs.glob("acks.*"):
        if p.stat().st_size >= 64:
            subprocess.run([FIXTURE, "v2acks", str(p)], check=True)
    (s.data / "FORMAT").write_bytes(b"2\n")
    assert subprocess.run([TOOL, "check", str(jobs)], capture_output=True).returncode == 0
    s.start()
    with s.client() as c:
        assert drain_queue(c, "jobs") == [b"j1", b"j3", b"j4", b"j5"]
    s.stop()
    assert (s.data / "FORMAT").read_bytes() == b"3\n"
    acks = [p for p in jobs.glob("acks.*") if p.stat().st_size >= 64]
    assert any(version_of(p) == 3 for p in acks)
    assert all(version_of(p) in (2, 3) for p in acks)
