"""darner-journal: check, dump and repair real queue folders written by the
server, clean and damaged (a truncated record, a flipped payload byte, a
zero-filled tail, damage in an older segment, a damaged ack log tail).

The tool is $DARNER_JOURNAL_BIN, or darner-journal next to $DARNER_BIN."""

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from harness import DARNER_BIN, drain_queue

TOOL = os.environ.get("DARNER_JOURNAL_BIN") or str(Path(DARNER_BIN).parent / "darner-journal")


@pytest.fixture(autouse=True)
def tool_built():
    if not os.access(TOOL, os.X_OK):
        pytest.fail(f"darner-journal not found or not executable: {TOOL}")


def tool(*args):
    return subprocess.run([TOOL, *map(str, args)], capture_output=True, text=True, timeout=60)


def jlines(*args):
    """Runs the tool with --json; returns (exit code, [objects])."""
    p = tool(*args, "--json")
    return p.returncode, [json.loads(line) for line in p.stdout.splitlines()]


def queue_folder(data, name):
    for d in sorted(Path(data).glob("q-*")):
        if (d / "NAME").read_bytes() == name.encode():
            return d
    raise AssertionError(f"no folder for queue {name} in {data}")


def snapshot(folder):
    """Every file of the folder: content hash, mtime and size."""
    out = {}
    for p in sorted(Path(folder).iterdir()):
        st = p.stat()
        out[p.name] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_size)
    return out


def fill(make_server, n=10, gets=0, queue="jobs", extra=(), payload=lambda i: b"item-%02d" % i):
    """A stopped server whose queue holds n items of which `gets` were taken.
    Returns (server, queue folder, the items left in order)."""
    s = make_server(*extra)
    items = [payload(i) for i in range(n)]
    with s.client() as c:
        for i, d in enumerate(items):
            assert c.set(queue, d, flags=i) == "STORED"
        for i in range(gets):
            assert c.get_data(queue) == items[i]
    s.stop()
    return s, queue_folder(s.data, queue), items[gets:]


def last_segment(folder):
    return sorted(folder.glob("seg-*.dat"))[-1]


def records(folder):
    rc, objs = jlines("dump", folder)
    return [o for o in objs if o["type"] == "record"]


def damages(objs):
    return [o for o in objs if o["type"] == "damage"]


def check_reports(folder, what):
    """check: exit 1, the damage named, not a byte changed. Returns the damages."""
    before = snapshot(folder)
    p = tool("check", folder)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "DAMAGE" in p.stdout and what in p.stdout, p.stdout
    assert "DAMAGED" in p.stdout.splitlines()[-1]
    rc, objs = jlines("check", folder)
    assert rc == 1
    assert snapshot(folder) == before, "check changed a file"
    return damages(objs)


def repair_cleans(folder):
    p = tool("repair", folder)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "== before repair ==" in p.stdout and "== after repair ==" in p.stdout
    assert "DAMAGED" in p.stdout and p.stdout.rstrip().endswith("clean")
    assert "cut off" in p.stderr  # the journal's own log line
    after = tool("check", folder)
    assert after.returncode == 0, after.stdout
    return p


# ---- clean folders ----

def test_check_and_dump_a_clean_queue(make_server):
    s, q, left = fill(make_server, n=10, gets=3)
    before = snapshot(q)
    p = tool("check", q)
    assert p.returncode == 0, p.stdout + p.stderr
    assert 'queue "jobs"' in p.stdout
    assert "segment 1 (seg-0000000000000001.dat)" in p.stdout and "10 records" in p.stdout
    assert "acks.0: generation" in p.stdout and "cursor id 4" in p.stdout
    assert "summary: 7 items live" in p.stdout and p.stdout.rstrip().endswith("clean")
    d = tool("dump", q)
    assert d.returncode == 0
    assert d.stdout.count("  record seg 1") == 10
    assert '"item-09"' in d.stdout and "flags 9" in d.stdout
    assert "ack acks.0 off 64 ok CKPT" in d.stdout and d.stdout.count(" ok TAKE ") == 3
    recs = records(q)
    assert [r["id"] for r in recs] == list(range(1, 11))
    assert all(r["checksum"] == "ok" and r["complete"] for r in recs)
    assert [r["payload"].encode() for r in recs[3:]] == left
    rc, objs = jlines("check", q)
    summary = objs[-1]
    assert rc == 0 and summary["type"] == "summary"
    assert summary["items"] == 7 and summary["bytes"] == sum(map(len, left)) and summary["damages"] == 0
    assert snapshot(q) == before


def test_open_items_count_as_live_behind_the_cursor(make_server):
    s = make_server()
    with s.client() as c:
        for i in range(5):
            c.set("jobs", b"x%d" % i)
        assert c.get("jobs/open") == (0, b"x0")
        s.stop()
    q = queue_folder(s.data, "jobs")
    rc, objs = jlines("check", q)
    assert rc == 0
    assert objs[-1]["items"] == 5 and objs[-1]["behind_cursor"] == 1
    assert " OPEN id 1 " in tool("dump", q).stdout


def test_dump_shows_a_preview_or_with_payload_the_whole_payload(make_server):
    big = bytes(range(256)) * 2
    s, q, _ = fill(make_server, n=1, payload=lambda i: big)
    [r] = records(q)
    assert not r["complete"] and len(r["payload"]) == 32
    p = tool("dump", q)
    assert '"\\x00\\x01\\x02' in p.stdout and '\\x1f"...' in p.stdout
    rc, objs = jlines("dump", q, "--payload")
    [r] = [o for o in objs if o["type"] == "record"]
    assert r["complete"] and r["payload"].encode("latin-1") == big


def test_all_runs_over_every_queue_folder(make_server):
    s = make_server()
    with s.client() as c:
        for qn in ("a", "b", "c"):
            c.set(qn, b"data-" + qn.encode())
    s.stop()
    p = tool("check", "--all", s.data)
    assert p.returncode == 0
    assert [l for l in p.stdout.splitlines() if l.startswith("queue ")] == [
        f'queue "{n}" in {queue_folder(s.data, n)}' for n in ("a", "b", "c")]
    with open(last_segment(queue_folder(s.data, "b")), "ab") as f:
        f.write(b"\0" * 100)
    p = tool("check", "--all", s.data)
    assert p.returncode == 1 and p.stdout.count("DAMAGE ") == 1


def test_moved_copies_are_listed_and_take_no_new_id(make_server):
    s = make_server("--segment-size", "4K")
    with s.client() as c, s.client() as c2:
        for i in range(60):
            assert c.set("jobs", b"%02d" % i * 150) == "STORED"
        assert c.get("jobs/open") == (0, b"00" * 150)  # held open while ...
        for i in range(40):  # ... the cursor leaves its segment far behind
            assert c2.get_data("jobs") is not None
        assert c2.set("jobs", b"last") == "STORED"
        s.stop()
    q = queue_folder(s.data, "jobs")
    recs = records(q)
    moved = [r for r in recs if r["moved"]]
    assert [r["id"] for r in moved] == [1] and moved[0]["checksum"] == "ok"
    assert " MOVE id 1 " in tool("dump", q).stdout
    rc, objs = jlines("check", q)
    assert rc == 0 and objs[-1]["next_id"] == 62
    assert (objs[-1]["items"], objs[-1]["behind_cursor"]) == (21, 1)


def test_blob_items_are_checked_in_their_own_files(make_server):
    big = b"B" * (300 * 1024)
    s, q, _ = fill(make_server, n=2, gets=1, payload=lambda i: big + b"%d" % i)
    recs = records(q)
    if not any(r["kind"] == "blob" for r in recs):
        pytest.skip("this server keeps large items inline")
    assert [(r["kind"], r["checksum"]) for r in recs] == [("blob", "no blob file"), ("blob", "ok")]
    assert tool("check", q).returncode == 0
    blob = q / "blob-0000000000000002.dat"
    with open(blob, "r+b") as f:
        f.write(b"X")
    [d] = check_reports(q, "payload checksum mismatch")
    assert d["file"] == blob.name
    blob.unlink()
    [d] = check_reports(q, "missing")
    assert d["file"] == blob.name and "item 2 is live" in d["what"]


# ---- damage in the last segment: check finds it, repair cuts it ----

def test_truncated_record_is_reported_then_cut(make_server):
    s, q, left = fill(make_server, n=10, gets=2)
    seg = last_segment(q)
    recs = records(q)
    cut_at = recs[-1]["offset"]  # the last record loses its last 5 bytes
    os.truncate(seg, seg.stat().st_size - 5)
    [d] = check_reports(q, "truncated batch")
    assert d["file"] == seg.name and d["offset"] == cut_at and d["bytes"] == recs[-1]["batch_size"] - 5
    assert "start-up cuts" in d["what"]
    assert [r["id"] for r in records(q)] == list(range(1, 10))  # dump lists what is good
    repair_cleans(q)
    assert seg.stat().st_size == cut_at
    s.start()
    with s.client() as c:
        assert drain_queue(c, "jobs") == left[:-1]


def test_flipped_payload_byte_is_reported_then_cut(make_server):
    s, q, left = fill(make_server, n=10, gets=2)
    seg = last_segment(q)
    r6 = records(q)[5]  # id 6
    with open(seg, "r+b") as f:
        f.seek(r6["payload_at"] + 3)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x40]))
    [d] = check_reports(q, "batch checksum mismatch")
    assert d["offset"] == r6["offset"] and d["bytes"] == seg.stat().st_size - r6["offset"]
    recs = records(q)
    assert [r["checksum"] for r in recs] == ["ok"] * 5 + ["bad"]
    repair_cleans(q)
    assert seg.stat().st_size == r6["offset"]
    s.start()
    with s.client() as c:
        assert drain_queue(c, "jobs") == left[:3]  # ids 3, 4, 5


def test_zero_filled_tail_is_reported_then_cut(make_server):
    s, q, left = fill(make_server, n=6)
    seg = last_segment(q)
    size = seg.stat().st_size
    with open(seg, "ab") as f:
        f.write(b"\0" * 4096)
    [d] = check_reports(q, "damaged batch header")
    assert (d["offset"], d["bytes"]) == (size, 4096)
    assert len(records(q)) == 6
    repair_cleans(q)
    assert seg.stat().st_size == size
    s.start()
    with s.client() as c:
        assert drain_queue(c, "jobs") == left


def test_damaged_ack_log_tail_is_reported_then_cut(make_server):
    s, q, left = fill(make_server, n=5, gets=1)
    acks = q / "acks.0"
    size = acks.stat().st_size
    with open(acks, "ab") as f:
        f.write(b"\x03" + b"\xff" * 70)
    [d] = check_reports(q, "damaged tail")
    assert (d["file"], d["offset"], d["bytes"]) == ("acks.0", size, 71)
    repair_cleans(q)
    assert acks.stat().st_size == size
    s.start()
    with s.client() as c:
        assert drain_queue(c, "jobs") == left


def test_every_damage_of_a_folder_is_reported(make_server):
    s, q, _ = fill(make_server, n=4)
    seg = last_segment(q)
    with open(seg, "ab") as f:
        f.write(b"\0" * 10)
    with open(q / "acks.0", "ab") as f:
        f.write(b"\0" * 64)
    ds = check_reports(q, "damaged batch header")
    assert sorted(d["file"] for d in ds) == ["acks.0", seg.name]


def test_cursor_past_a_cut_tail_is_moved_to_the_end(make_server):
    s, q, left = fill(make_server, n=6, gets=6)
    seg = last_segment(q)
    cut_at = records(q)[3]["offset"]
    os.truncate(seg, cut_at + 10)  # ids 4..6 were taken, and are now cut off
    ds = check_reports(q, "past the end of the segments")
    assert sorted(d["file"] for d in ds) == ["acks.0", seg.name]
    repair_cleans(q)
    assert seg.stat().st_size == cut_at
    s.start()
    with s.client() as c:
        assert drain_queue(c, "jobs") == []
        assert c.set("jobs", b"new") == "STORED" and drain_queue(c, "jobs") == [b"new"]


@pytest.mark.parametrize("how", ["removed", "header damaged"])
def test_no_usable_ack_log_means_every_item_again(make_server, how):
    s, q, left = fill(make_server, n=4, gets=2)
    if how == "removed":
        (q / "acks.0").unlink()
    else:
        with open(q / "acks.0", "r+b") as f:
            f.write(b"JUNK")
    [d] = check_reports(q, "no usable ack log")
    p = tool("repair", q)
    assert p.returncode == 0 and "no usable ack log" in p.stdout
    assert (q / "acks.0").exists() and tool("check", q).returncode == 0
    s.start()
    with s.client() as c:
        assert drain_queue(c, "jobs") == [b"item-%02d" % i for i in range(4)]


# ---- damage that start-up does not repair ----

def test_damage_in_an_older_segment_is_found_but_not_repaired(make_server):
    s, q, left = fill(make_server, n=40, extra=("--segment-size", "4K"),
                      payload=lambda i: b"older-segment-item-%02d" % i + b"." * 300)
    segs = sorted(q.glob("seg-*.dat"))
    assert len(segs) >= 3
    first = [r for r in records(q) if r["seg"] == 1]
    with open(segs[0], "r+b") as f:
        f.seek(first[1]["payload_at"])
        f.write(b"X")
    [d] = check_reports(q, "batch checksum mismatch")
    assert d["file"] == segs[0].name and d["offset"] == first[1]["offset"]
    assert d["bytes"] == first[1]["batch_size"] and "cannot hand these items out" in d["what"]
    # the other records of every segment are still listed, the bad one marked
    recs = records(q)
    assert len(recs) == 40 and [r["id"] for r in recs if r["checksum"] == "bad"] == [2]
    p = tool("repair", q)
    assert p.returncode == 1 and "== after repair ==" in p.stdout
    assert tool("check", q).returncode == 1


def test_damaged_header_of_the_last_segment(make_server):
    s, q, left = fill(make_server, n=30, extra=("--segment-size", "4K"),
                      payload=lambda i: b"%02d" % i * 150)
    segs = sorted(q.glob("seg-*.dat"))
    n_last = len([r for r in records(q) if r["seg"] == len(segs)])
    with open(segs[-1], "r+b") as f:
        f.write(b"JUNK")
    [d] = check_reports(q, "damaged segment header")
    assert d["file"] == segs[-1].name and "removes this segment" in d["what"]
    p = tool("repair", q)
    assert p.returncode == 0, p.stdout + p.stderr
    assert not segs[-1].exists()
    assert tool("check", q).returncode == 0
    s.start()
    with s.client() as c:
        assert drain_queue(c, "jobs") == left[:-n_last]


def test_damaged_oldest_header_without_ack_log_is_reported(make_server):
    """Start-up has to read the oldest segment's header to place the cursor:
    with it damaged, the journal cannot be opened (the server does not start)."""
    s, q, _ = fill(make_server, n=30, extra=("--segment-size", "4K"), payload=lambda i: b"%02d" % i * 150)
    segs = sorted(q.glob("seg-*.dat"))
    assert len(segs) >= 2
    with open(segs[0], "r+b") as f:
        f.write(b"JUNK")
    (q / "acks.0").unlink()
    ds = check_reports(q, "cannot open this journal")
    assert any("damaged segment header" in d["what"] for d in ds)


# ---- usage ----

def test_usage_and_io_errors_exit_2(tmp_path):
    assert tool().returncode == 2
    assert tool("frobnicate", tmp_path).returncode == 2
    assert tool("check").returncode == 2
    assert tool("check", "--bogus", tmp_path).returncode == 2
    assert tool("check", tmp_path / "nope").returncode == 2
    p = tool("--help")
    assert p.returncode == 0 and "usage: darner-journal" in p.stdout


def test_repair_of_a_clean_folder_changes_nothing(make_server):
    s, q, left = fill(make_server, n=3, gets=1)
    before = snapshot(q)
    p = tool("repair", q)
    assert p.returncode == 0 and p.stderr == ""
    assert {k: v[0] for k, v in snapshot(q).items()} == {k: v[0] for k, v in before.items()}


def test_restore_records_are_read_as_start_up_reads_them(tmp_path):
    """A removal whose fsync failed is given back with a RESTORE ack record
    (type 8). The tool lists it by name and counts the item live, as start-up
    does: its totals equal what a restarted server hands out."""
    from harness import DARNER_FAULTY_BIN, FaultyServer
    if not os.access(DARNER_FAULTY_BIN, os.X_OK):
        pytest.fail(f"fault-injecting server not found: {DARNER_FAULTY_BIN}")
    s = FaultyServer(tmp_path, ["--fsync", "always"])
    try:
        s.start()
        with s.client() as c:
            for i in range(4):
                assert c.set("jobs", b"item-%d" % i) == "STORED"
            assert c.get_data("jobs") == b"item-0"
            s.fault("fsync", "EIO")
            assert c.cmd("get jobs").startswith("SERVER_ERROR")   # item-1 given back
            s.clear()
        s.stop()
        folder = queue_folder(s.data, "jobs")
        rc, objs = jlines("dump", folder)
        acks = [o["record"] for o in objs if o["type"] == "ack" and o["ok"]]
        assert "RESTORE" in acks, acks
        assert "?" not in acks
        summary = [o for o in objs if o["type"] == "summary"][0]
        assert rc == 0 and summary["clean"], objs
        assert summary["items"] == 3, summary
        s.start()
        with s.client() as c:
            assert drain_queue(c, "jobs") == [b"item-1", b"item-2", b"item-3"]
    finally:
        s.cleanup()
