"""A member whose data folder was wiped rejoins its cell (issue 15).

A follower is killed and its folder wiped; the leader removes it
(`cluster remove`), and it comes back under a new id with --cluster-join,
added by `cluster add`. It catches up a backlog (1 GiB; 64 MiB under a
sanitizer) from the leader's files, through fixed buffers: its own memory
(RssAnon) is sampled all along and stays flat. Then it is made the leader
(`cluster transfer`) and serves every item.

CELL_BACKLOG_MB sets the backlog.
"""

import os
import shutil
import threading
import time

import pytest

from cell_harness import Cell, Member, free_ports, set_item
from harness import thread_sanitized, DARNER_BIN, UNDER_WINE, Client, rss_anon_kib, sanitized, wait_until

pytestmark = [pytest.mark.skipif(UNDER_WINE, reason="cells are not built for Windows"),
              pytest.mark.skipif(thread_sanitized(DARNER_BIN), reason="cells under TSan: docs/hardening.md")]

SLOW = sanitized(DARNER_BIN)
BACKLOG_MB = int(os.environ.get("CELL_BACKLOG_MB", "64" if SLOW else "1024"))
ITEM = 64 * 1024
RSS_MAX_KIB = 64 * 1024


def cmd(port, line, timeout=10.0):
    with Client(port, timeout=timeout) as c:
        return c.cmd(line)


def load(port, n, q="backlog"):
    """n items of ITEM bytes, pipelined 64 at a time; each answer STORED."""
    payload = b"x" * (ITEM - 16)
    with Client(port, timeout=60.0) as c:
        i = 0
        while i < n:
            k = min(64, n - i)
            c.send(b"".join(b"set %s 0 0 %d\r\n%016d%s\r\n" % (q.encode(), ITEM, i + j, payload) for j in range(k)))
            for _ in range(k):
                assert c.readline() == "STORED"
            i += k


class Sampler(threading.Thread):
    def __init__(self, member):
        super().__init__(daemon=True)
        self.member = member
        self.peak = 0
        self.samples = 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.wait(0.05):
            p = self.member.proc
            if p is None or p.poll() is not None:
                continue
            try:
                self.peak = max(self.peak, rss_anon_kib(p.pid))
                self.samples += 1
            except (OSError, AssertionError):
                pass


def spec(m):
    return f"{m.id}@127.0.0.1:{m.raft_port}:{m.port}"


def add(lead, new):
    """cluster add, once the change before it (a remove) is over."""
    answers = []
    assert wait_until(lambda: answers.append(cmd(lead.port, f"cluster add {spec(new)}")) or
                      not answers[-1].endswith("under way; wait for it"), timeout=30.0), answers
    assert answers[-1] == "OK", answers


def rebuild(cell, lead):
    """A follower killed, its folder wiped and its id removed; the member
    made again on that folder under id 4, started (not yet added)."""
    gone = next(m for m in cell.members if m is not lead)
    cell.kill(gone.id)
    shutil.rmtree(gone.data)
    answer = cmd(lead.port, f"cluster remove {gone.id}")
    assert answer == "OK", answer
    raft, port = free_ports(2)
    new = Member(cell, 4, raft, port)
    new.data = gone.data
    others = [m for m in cell.members if m is not gone]
    new_members = ",".join(spec(m) for m in others + [new])
    new.argv = lambda: [DARNER_BIN, "--data", str(new.data), "--cluster-id", "4",
                        "--cluster-members", new_members, "--cluster-join"]
    new.start()
    cell.members.append(new)
    return new


def serves_everything(cell, lead, new, n):
    """Made the leader, the rebuilt member serves the whole backlog."""
    assert cmd(lead.port, "cluster transfer 4") == "OK"
    assert wait_until(lambda: cell.leader_pid(4) == new.proc.pid, timeout=30.0), new.log()
    with Client(new.port, timeout=60.0) as c:
        assert c.stat("queue_backlog_items") == str(n)
        first = c.get_data("backlog")
        assert first[:16] == b"%016d" % 0 and len(first) == ITEM
    assert set_item(new.port, "after", b"x") == "STORED"


def test_a_wiped_member_rejoins_under_a_new_id(tmp_path):
    cell = Cell(tmp_path, n=3).start()
    sampler = None
    try:
        lead = cell.leader()
        n = BACKLOG_MB * 1024 * 1024 // ITEM
        t0 = time.monotonic()
        load(lead.port, n)
        load_s = time.monotonic() - t0
        new = rebuild(cell, lead)
        sampler = Sampler(new)
        sampler.start()
        t1 = time.monotonic()
        add(lead, new)
        assert wait_until(lambda: "caught up and votes" in lead.log(), timeout=600.0), lead.log() + new.log()
        catchup_s = time.monotonic() - t1
        sampler.halt.set()
        sampler.join()
        print(f"backlog {BACKLOG_MB} MiB ({n} items of {ITEM} B) loaded in {load_s:.1f} s; the rebuilt member "
              f"caught up in {catchup_s:.1f} s; its RssAnon peaked at {sampler.peak} KiB over {sampler.samples} "
              f"samples")
        assert sampler.samples > 0
        if not SLOW:
            assert sampler.peak < RSS_MAX_KIB, sampler.peak
        serves_everything(cell, lead, new, n)
    finally:
        if sampler:
            sampler.halt.set()
        bad = cell.close()
    assert not bad, "\n".join(bad)


def test_a_member_killed_while_it_catches_up_finishes_at_its_next_start(tmp_path):
    """kill -9 during the catch-up from files (libraft #373's window): at its
    next start the member does the catch-up again before anything else, and
    the leader, asked again, makes it a voter."""
    cell = Cell(tmp_path, n=3).start()
    try:
        lead = cell.leader()
        n = 256 * 1024 * 1024 // ITEM if not SLOW else 64 * 1024 * 1024 // ITEM
        load(lead.port, n)
        new = rebuild(cell, lead)
        add(lead, new)
        assert wait_until(lambda: "catching up from the files" in new.log(), timeout=60.0), new.log()
        cell.kill(4)
        killed_in_catch_up = "caught up:" not in new.log()
        cell.restart(4)
        assert wait_until(lambda: "caught up:" in new.log(), timeout=120.0), new.log()
        if killed_in_catch_up:
            assert "did not finish: done again first" in new.log(), new.log()
        # the promotion may have failed while it was down: asked again
        if not wait_until(lambda: "caught up and votes" in lead.log(), timeout=10.0):
            add(lead, new)
            assert wait_until(lambda: lead.log().count("caught up and votes") >= 1, timeout=120.0), lead.log()
        serves_everything(cell, lead, new, n)
    finally:
        bad = cell.close()
    assert not bad, "\n".join(bad)
