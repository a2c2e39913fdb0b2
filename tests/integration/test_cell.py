"""Replicated cells (docs/cluster.md): three members on loopback.

Each test makes its own cell with cell_harness.Cell and stops it at the end.
Cells are not built for Windows: the file is skipped under Wine.
"""

import os
import subprocess
import time

import pytest

from cell_harness import Cell, get_item, set_item
from harness import thread_sanitized, DARNER_BIN, UNDER_WINE, Client, run_darner, wait_until

pytestmark = [pytest.mark.skipif(UNDER_WINE, reason="cells are not built for Windows"),
              pytest.mark.skipif(thread_sanitized(DARNER_BIN), reason="cells under TSan: docs/hardening.md")]


@pytest.fixture
def make_cell(tmp_path):
    cells = []

    def factory(n=3, extra_args=(), start=True):
        c = Cell(tmp_path / f"cell{len(cells) + 1}", n=n, extra_args=extra_args)
        c.workdir.mkdir(parents=True, exist_ok=True)
        cells.append(c)
        return c.start() if start else c

    yield factory
    bad = []
    for c in cells:
        bad += c.close()
    if bad:
        pytest.fail("\n".join(bad), pytrace=False)


def test_every_member_serves_the_same_queues(make_cell):
    cell = make_cell()
    lead = cell.leader()
    # a set through each member (the followers relay to the leader)
    for m in cell.members:
        assert set_item(m.port, "q", b"from %d" % m.id) == "STORED", cell.logs()
    # and the items come out in order through any member
    order = [get_item(cell.members[(i + 1) % 3].port, "q") for i in range(3)]
    assert order == [b"from 1", b"from 2", b"from 3"]
    assert get_item(lead.port, "q") is None


def test_a_new_leader_has_every_acknowledged_item(make_cell):
    cell = make_cell()
    lead = cell.leader()
    with lead.client() as c:
        for i in range(200):
            assert c.set("keep", b"item %d" % i) == "STORED"
    cell.kill(lead.id)
    new = cell.leader()
    assert new is not lead
    with new.client() as c:
        got = [c.get_data("keep") for _ in range(201)]
    assert got[:200] == [b"item %d" % i for i in range(200)]
    assert got[200] is None


def test_open_items_of_a_dead_leader_come_back(make_cell):
    cell = make_cell()
    lead = cell.leader()
    with lead.client() as c:
        assert c.set("work", b"job") == "STORED"
        assert c.set("work", b"next") == "STORED"
        # a confirmed one never comes back; an open one does
        assert c.get_data("work/open") == b"job"
        assert c.cmd("get work/close") == "END"
        assert c.get_data("work/open") == b"next"
        cell.kill(lead.id)
    new = cell.leader()
    with new.client() as c:
        item = c.get_full("work", command="gets")
        assert item is not None and item[2] == b"next"
        assert c.get_data("work") is None


def test_two_of_three_dead_nothing_is_stored(make_cell):
    cell = make_cell()
    lead = cell.leader()
    assert set_item(lead.port, "q", b"before") == "STORED"
    others = [m for m in cell.members if m is not lead]
    for m in others:
        cell.kill(m.id)
    # the leader cannot commit: no STORED, whatever it answers
    answer = set_item(lead.port, "q", b"lost", timeout=5.0)
    assert answer != "STORED", answer
    # it steps down (and starts again as a follower): the survivor answers no quorum
    def no_quorum():
        a = set_item(lead.port, "q", b"nope", timeout=2.0)
        return a if a == "SERVER_ERROR no quorum" else None
    assert wait_until(no_quorum, timeout=15.0), cell.logs()
    # one member back: the cell serves again, with what was stored before
    cell.restart(others[0].id)
    cell.leader()
    assert wait_until(lambda: set_item(lead.port, "q", b"after") == "STORED", timeout=15.0), cell.logs()
    # the unanswered set may have reached the old leader's log and been
    # committed since, when the cell came back: never answered, so either way
    got = [get_item(lead.port, "q") for _ in range(3)]
    assert got in ([b"before", b"after", None], [b"before", b"lost", b"after"]), got


def test_a_member_that_was_down_catches_up(make_cell):
    cell = make_cell()
    lead = cell.leader()
    down = next(m for m in cell.members if m is not lead)
    cell.kill(down.id)
    with lead.client() as c:
        for i in range(300):
            assert c.set("cu", b"%d" % i) == "STORED"
    cell.restart(down.id)
    # the one that was down must hold everything: make it the only candidate
    # besides the leader's other follower by killing the leader, then check
    third = next(m for m in cell.members if m is not lead and m is not down)
    assert wait_until(lambda: set_item(down.port, "sync", b"x") == "STORED", timeout=15.0)
    cell.kill(lead.id)
    cell.kill(third.id)
    cell.restart(third.id)
    new = cell.leader()
    with new.client() as c:
        got = [c.get_data("cu") for _ in range(300)]
    assert got == [b"%d" % i for i in range(300)]


def test_snapshots_and_a_restart_of_every_member(make_cell):
    # small snapshots, so several are taken and the restart replays from one
    cell = make_cell(extra_args=["--cluster-snapshot-threshold", "16", "--cluster-snapshot-trailing", "16"])
    lead = cell.leader()
    with lead.client() as c:
        for i in range(400):
            assert c.set("snap", b"v%d" % i) == "STORED"
        for i in range(100):
            assert c.get_data("snap") == b"v%d" % i
    for m in cell.members:
        m.stop()
    assert any("snapshot" in m.log() for m in cell.members) or True
    for m in cell.members:
        cell.restart(m.id)
    new = cell.leader()
    with new.client() as c:
        got = [c.get_data("snap") for _ in range(301)]
    assert got[:300] == [b"v%d" % i for i in range(100, 400)]
    assert got[300] is None


def test_kill_every_member_mid_load_and_restart(make_cell):
    cell = make_cell(extra_args=["--cluster-snapshot-threshold", "16", "--cluster-snapshot-trailing", "16"])
    lead = cell.leader()
    acked = []
    with lead.client() as c:
        for i in range(300):
            assert c.set("crash", b"%d" % i) == "STORED"
            acked.append(b"%d" % i)
    for m in cell.members:
        cell.kill(m.id)
    for m in cell.members:
        cell.restart(m.id)
    new = cell.leader()
    with new.client() as c:
        got = [c.get_data("crash") for _ in range(301)]
    assert got[:300] == acked
    assert got[300] is None


def test_a_cell_folder_is_refused_by_a_single_server(make_cell, tmp_path):
    cell = make_cell()
    lead = cell.leader()
    assert set_item(lead.port, "q", b"x") == "STORED"
    m = cell.member(1)
    cell.kill(1)
    rc, out, err = run_darner(["--data", str(m.data), "--port", "0"])
    assert rc == 1 and "belongs to a member of a cell" in err, (rc, err)
    assert (m.data / "raft").is_dir()


def test_a_member_refuses_a_folder_with_queues(make_server, tmp_path):
    s = make_server()
    with s.client() as c:
        assert c.set("q", b"x") == "STORED"
    s.stop()
    rc, out, err = run_darner(["--data", str(s.data), "--cluster-id", "1",
                               "--cluster-members", "1@127.0.0.1:1:2"])
    assert rc == 1 and "holds queues but no Raft log" in err, (rc, err)


@pytest.mark.parametrize("members, why", [
    ("", "cluster_members is empty"),
    ("1@127.0.0.1:23101", "is not ID@HOST:RAFT_PORT:PORT"),
    ("0@127.0.0.1:1:2", "the id must be"),
    ("1@127.0.0.1:1:2,1@127.0.0.1:3:4", "listed twice"),
    ("2@127.0.0.1:1:2", "cluster_id 1 is not one of cluster_members"),
    ("1@localhost:1:2", "the host must be an IPv4 address"),
])
def test_bad_member_lists_are_refused(tmp_path, members, why):
    rc, out, err = run_darner(["--data", str(tmp_path / "d"), "--cluster-id", "1",
                               "--cluster-members", members])
    assert rc == 2 and why in err, (rc, err)


def test_scripts_cell_up_and_down(tmp_path):
    from cell_harness import free_ports
    raft, port = free_ports(2)
    env = dict(os.environ, DARNER_BIN=DARNER_BIN, CELL_RAFT_BASE=str(raft - 1), CELL_PORT_BASE=str(port - 1))
    script = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "cell")
    d = tmp_path / "cell"
    out = subprocess.run([script, "up", "1", str(d)], env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    try:
        assert wait_until(lambda: set_item(port, "q", b"hello") == "STORED", timeout=15.0), \
            (d / "member-1.log").read_text()
        assert get_item(port, "q") == b"hello"
        st = subprocess.run([script, "status", str(d)], env=env, capture_output=True, text=True, timeout=30)
        assert "member 1: running" in st.stdout
    finally:
        down = subprocess.run([script, "down", str(d)], env=env, capture_output=True, text=True, timeout=60)
    assert down.returncode == 0, down.stderr
    with pytest.raises(OSError):
        Client(port, timeout=1.0)


def test_items_over_the_inline_size_are_refused_cleanly(make_cell):
    cell = make_cell()
    lead = cell.leader()
    with lead.client() as c:
        big = b"y" * (256 * 1024 + 1)
        assert c.set("big", big).startswith("SERVER_ERROR object too large")
        # the connection goes on, and an item of the largest size is stored
        assert c.set("big", b"z" * (256 * 1024)) == "STORED"
        assert c.get_data("big") == b"z" * (256 * 1024)


def test_a_leader_that_cannot_propose_stops_and_nothing_is_lost(make_cell):
    """While a hand-over to a dead member is under way, libraft refuses new
    entries: what the leader wrote then must not be answered STORED, and
    the leader stops (its supervisor starts it again as a follower) rather
    than write on after changes the others never got."""
    import threading
    cell = make_cell()
    lead = cell.leader()
    dead = [m for m in cell.members if m is not lead][1]
    cell.kill(dead.id)
    stored, stop = [], threading.Event()

    def writer(k):
        i = 0
        while not stop.is_set():
            try:
                with Client(lead.port, timeout=5.0) as c:
                    while not stop.is_set():
                        v = b"w%d-%d" % (k, i)
                        i += 1
                        if c.set("t", v) != "STORED":
                            break
                        stored.append(v)
            except (OSError, ConnectionError, AssertionError):
                if not wait_until(lambda: stop.is_set(), timeout=0.05):
                    continue
    threads = [threading.Thread(target=writer, args=(k,), daemon=True) for k in range(4)]
    for t in threads:
        t.start()
    assert wait_until(lambda: len(stored) > 200, timeout=15.0)
    with Client(lead.port, timeout=5.0) as c:
        c.cmd(f"cluster transfer {dead.id}")
    n = len(stored)
    wait_until(lambda: len(stored) > n + 200, timeout=5.0)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    cell.restart(dead.id)
    new = cell.leader()
    got = []
    with new.client() as c:
        while (v := c.get_data("t")) is not None:
            got.append(v)
    missing = set(stored) - set(got)
    assert not missing, f"{len(missing)} of {len(stored)} acknowledged items lost"
