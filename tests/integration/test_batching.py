"""Sets of one loop turn go to disk together (docs/architecture.md).

Every item set into a queue in one loop turn is written with one write, as
one batch of the journal, before any answer of that turn is sent; a failed
write turns the answer of every set in it into SERVER_ERROR, one line per
set, and none of them is kept. The same for the ack records of the turn's
gets: a failed write turns each get's whole answer into one SERVER_ERROR
line, and its items stay in the queue, in order.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from harness import DARNER_BIN, DARNER_FAULTY_BIN, FaultyServer, drain_queue

TOOL = os.environ.get("DARNER_JOURNAL_BIN") or str(Path(DARNER_BIN).parent / "darner-journal")
SERVER_ERROR = re.compile(r"SERVER_ERROR \S.*")


def queue_folder(data, name):
    for d in sorted(Path(data).glob("q-*")):
        if (d / "NAME").read_bytes() == name.encode():
            return d
    raise AssertionError(name)


def batches_and_items(folder):
    p = subprocess.run([TOOL, "dump", "--json", str(folder)], capture_output=True, text=True, timeout=60)
    recs = [json.loads(line) for line in p.stdout.splitlines()]
    recs = [r for r in recs if r["type"] == "record"]
    return len({(r["seg"], r["offset"]) for r in recs}), len(recs)


def faulty(tmp_path):
    if not os.access(DARNER_FAULTY_BIN, os.X_OK):
        pytest.fail(f"fault-injecting server not found: {DARNER_FAULTY_BIN}")
    return FaultyServer(tmp_path, [])


def test_pipelined_sets_share_batches_and_keep_their_order(make_server):
    s = make_server()
    with s.client() as a, s.client() as b:
        for c, tag in ((a, b"a"), (b, b"b")):
            c.send(b"".join(b"set q 0 0 4\r\n%s%03d\r\n" % (tag, i) for i in range(200)))
        for c in (a, b):
            assert [c.readline() for _ in range(200)] == ["STORED"] * 200
        got = drain_queue(a, "q")
    assert len(got) == 400
    for tag in (b"a", b"b"):
        mine = [x for x in got if x.startswith(tag)]
        assert mine == [b"%s%03d" % (tag, i) for i in range(200)], "a connection's sets lost their order"
    s.stop()
    nbatches, nitems = batches_and_items(queue_folder(s.data, "q"))
    assert nitems == 400
    assert nbatches < nitems / 4, f"{nbatches} batches for {nitems} pipelined items"


def test_failed_batch_answers_every_set_with_server_error(tmp_path):
    s = faulty(tmp_path)
    try:
        s.start()
        with s.client() as c:
            assert c.set("q", "before") == "STORED"
            s.fault("pwrite", "ENOSPC")
            c.send(b"".join(b"set q 0 0 3\r\nx%02d\r\n" % i for i in range(10)) + b"version\r\n")
            answers = [c.readline() for _ in range(11)]
            assert all(SERVER_ERROR.fullmatch(a) for a in answers[:10]), answers
            assert answers[10].startswith("VERSION ")
            s.clear()
            assert c.set("q", "after") == "STORED"
            assert drain_queue(c, "q") == [b"before", b"after"]
        s.stop()
        s.start()
        with s.client() as c:
            assert drain_queue(c, "q") == []
    finally:
        s.cleanup()


def write_calls(pid):
    """Write-type system calls the process made (socket writes and file
    writes alike), from /proc/PID/io."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    raise AssertionError("no syscw in /proc/PID/io")


def test_pipelined_answers_leave_with_few_writes(make_server):
    """A pipeline of sets, then one of gets: the answers of a loop turn leave
    with one socket write, and the turn's records with one file write per
    queue, not one of each per request."""
    s = make_server()
    n = 300
    with s.client() as c:
        assert c.set("q", "warm") == "STORED" and c.get_data("q") == b"warm"
        before = write_calls(s.proc.pid)
        c.send(b"".join(b"set q 0 0 4\r\nx%03d\r\n" % i for i in range(n)))
        assert [c.readline() for _ in range(n)] == ["STORED"] * n
        c.send(b"get q\r\n" * n)
        for i in range(n):
            assert c.readline() == "VALUE q 0 4"
            assert c.readline() == "x%03d" % i
            assert c.readline() == "END"
        writes = write_calls(s.proc.pid) - before
    # one request per write would be 4 * n (2 n answers, 2 n records)
    assert writes < n / 2, f"{writes} write calls for {2 * n} pipelined requests"


def test_failed_ack_write_answers_every_get_with_one_server_error(tmp_path):
    s = faulty(tmp_path)
    try:
        s.start()
        with s.client() as c, s.client() as other:
            items = [b"i%02d" % i for i in range(8)]
            for d in items:
                assert c.set("q", d) == "STORED"
            assert c.set("r", b"r0") == "STORED"
            s.fault("pwrite", "EIO")
            # pipelined: plain gets, an /open, a two-key get and a /close
            c.send(b"get q\r\nget q\r\nget q/open\r\nget q r\r\nget q/close\r\nversion\r\n")
            answers = [c.readline() for _ in range(6)]
            assert all(SERVER_ERROR.fullmatch(a) for a in answers[:5]), answers
            assert answers[5].startswith("VERSION "), answers
            # another client's get in the same state: the same
            assert SERVER_ERROR.fullmatch(other.cmd("get q")), "a get answered while its removal is unwritten"
            s.clear()
            # every item is still there, in order; the other queue's too
            assert drain_queue(c, "q") == items
            assert drain_queue(c, "r") == [b"r0"]
        s.stop()
        s.start()
        with s.client() as c:
            assert drain_queue(c, "q") == []
            assert drain_queue(c, "r") == []
    finally:
        s.cleanup()


def test_ack_write_recovers_and_keeps_items_of_failed_gets_after_restart(tmp_path):
    """The ack records of failed gets are written later, with the records that
    gave their items back: after a restart the queue holds exactly the items
    no get was answered with."""
    s = faulty(tmp_path)
    try:
        s.start()
        with s.client() as c:
            for i in range(6):
                assert c.set("q", b"i%d" % i) == "STORED"
            assert c.get_data("q") == b"i0"
            s.fault("pwrite", "EIO")
            assert SERVER_ERROR.fullmatch(c.cmd("get q"))
            assert SERVER_ERROR.fullmatch(c.cmd("get q/open"))
            s.clear()
            assert c.get_data("q") == b"i1"
            assert c.get_data("q/open") == b"i2"
            assert c.cmd("get q/close") == "END"
        s.stop()
        s.start()
        with s.client() as c:
            assert drain_queue(c, "q") == [b"i3", b"i4", b"i5"]
    finally:
        s.cleanup()


def test_small_items_cost_at_most_1_3x_their_size_on_disk(make_server):
    """A 64-byte item set on its own (a batch of one, the worst case) takes at
    most 83 bytes of segment (version 1 took 144)."""
    s = make_server()
    n = 1000
    with s.client() as c:
        for i in range(n):
            assert c.set("small", b"%064d" % i) == "STORED"
    s.stop()
    segs = sorted(queue_folder(s.data, "small").glob("seg-*.dat"))
    body = sum(p.stat().st_size - 64 for p in segs)   # less the 64-byte segment headers
    assert body / n <= 83, f"{body / n:.1f} bytes on disk per 64-byte item"
