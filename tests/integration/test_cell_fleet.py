"""A fleet of cells (docs/cluster.md, Fleets; docs/client.md, Fleets of
cells): three cells of three members on loopback, each member started with
--cluster-cells naming one member of each other cell. darner-cli (libdarner)
is given ONE member's address and finds the rest with `cluster`.

Cells are not built for Windows: the file is skipped under Wine.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from cell_harness import Cell
from harness import thread_sanitized, DARNER_BIN, UNDER_WINE, Client, wait_until

pytestmark = [pytest.mark.skipif(UNDER_WINE, reason="cells are not built for Windows"),
              pytest.mark.skipif(thread_sanitized(DARNER_BIN), reason="cells under TSan: docs/hardening.md")]

CLI = os.environ.get("DARNER_CLI") or str(Path(DARNER_BIN).resolve().parent / "darner-cli")


def cluster(port):
    """The lines of `cluster` asked of the member on port."""
    with Client(port, timeout=5.0) as c:
        c.send(b"cluster\r\n")
        lines = []
        while True:
            line = c.readline()
            if line == "END":
                return lines
            lines.append(line)


def cli(server, *args, input=None, check=0, timeout=60):
    p = subprocess.run([CLI, "-s", server, *map(str, args)], input=input, capture_output=True,
                       timeout=timeout)
    if check is not None:
        assert p.returncode == check, (
            f"darner-cli {' '.join(map(str, args))}: exit {p.returncode}, want {check}\n"
            f"stdout: {p.stdout[:2000]!r}\nstderr: {p.stderr[:2000]!r}")
    return p


def items_on(cell, q):
    """Items of q on a cell, asked of its leader."""
    with cell.leader().client() as c:
        return int(c.stat(f"queue_{q}_items", 0))


@pytest.fixture
def fleet(tmp_path):
    cells = [Cell(tmp_path / f"cell{k + 1}") for k in range(3)]
    for k, cell in enumerate(cells):
        cell.workdir.mkdir(parents=True, exist_ok=True)
        # each member names one member of each other cell (not always the first)
        others = [f"127.0.0.1:{o.members[k % 3].port}" for j, o in enumerate(cells) if j != k]
        cell.extra_args += ["--cluster-cells", ",".join(others)]
    for cell in cells:
        cell.start()
    yield cells
    bad = []
    for cell in cells:
        bad += cell.close()
    if bad:
        pytest.fail("\n".join(bad), pytrace=False)


def test_cluster_answers_members_leader_and_cells(fleet):
    cell = fleet[0]
    lead = cell.leader()
    want_members = {f"127.0.0.1:{m.port}" for m in cell.members}
    for m in cell.members:  # the leader's server and the followers' relays alike
        lines = cluster(m.port)
        members = [l.split() for l in lines if l.startswith("MEMBER ")]
        cells = [l.split()[1] for l in lines if l.startswith("CELL ")]
        assert {f[2] for f in members} == want_members, lines
        assert {int(f[1]) for f in members} == {1, 2, 3}, lines
        leaders = [f[2] for f in members if f[3] == "leader"]
        assert leaders == [f"127.0.0.1:{lead.port}"], (m.id, lines)
        assert len(cells) == 2 and all(not c.endswith(f":{x.port}") for c in cells for x in cell.members)
        assert len(lines) == 5

    # the leader dies: the answer names the new one
    cell.kill(lead.id)
    new = cell.leader()
    assert new is not lead

    def updated():
        lines = cluster(new.port)
        return [l for l in lines if l.endswith(" leader")] == [f"MEMBER {new.id} 127.0.0.1:{new.port} leader"]
    assert wait_until(updated, timeout=10.0), cluster(new.port)
    follower = next(m for m in cell.members if m.running() and m is not new)
    assert f"MEMBER {new.id} 127.0.0.1:{new.port} leader" in cluster(follower.port)
    cell.restart(lead.id)


def test_a_single_server_answers_its_cells_only(tmp_path):
    from harness import Server
    s = Server(tmp_path / "single", extra_args=["--cluster-cells", "127.0.0.1:1, [::1]:2"]).start()
    try:
        assert cluster(s.port) == ["CELL 127.0.0.1:1", "CELL [::1]:2"]
    finally:
        s.stop()


def test_the_client_finds_every_cell_and_spreads_sets(fleet):
    for cell in fleet:
        cell.leader()
    one = f"127.0.0.1:{fleet[1].members[2].port}"  # a follower or a leader: either works
    listed = json.loads(cli(one, "--json", "version").stdout)
    assert len(listed["servers"]) == 3, listed

    n = 1500
    data = b"".join(b"item %d\n" % i for i in range(n))
    cli(one, "--no-progress", "load", "--batch", "1", "spread", input=data)
    counts = [items_on(cell, "spread") for cell in fleet]
    assert sum(counts) == n, counts
    for c in counts:  # within 10% of even
        assert abs(c - n / 3) <= 0.1 * n / 3, counts

    # every item delivered: drained through one member address
    out = cli(one, "--no-progress", "drain", "spread").stdout
    got = out.splitlines()
    assert sorted(got) == sorted(b"item %d" % i for i in range(n))
    assert [items_on(cell, "spread") for cell in fleet] == [0, 0, 0]


def test_consumers_drain_the_cell_a_producer_favours(fleet):
    for cell in fleet:
        cell.leader()
    favoured = fleet[2]
    with favoured.leader().client() as c:
        for i in range(300):
            assert c.set("hot", b"hot %d" % i) == "STORED"
    # a consumer given a member of another cell finds the items
    one = f"127.0.0.1:{fleet[0].members[0].port}"

    def misses():
        total = 0
        for cell in fleet[:2]:
            with cell.leader().client() as c:
                total += int(c.stat("get_misses", 0))
        return total
    before = misses()
    got = []
    for _ in range(30):  # one-shot consumers: each a new client
        p = cli(one, "get", "hot")
        got.append(p.stdout)
    assert all(g.startswith(b"hot ") for g in got), got
    # gets go where the items are: the deeper of two random cells first (a
    # get asking the cells in turn would ask about one empty cell a get; by
    # depth, a third as many)
    assert misses() - before < 24
    # and a long-lived one drains the rest
    out = cli(one, "--no-progress", "drain", "hot").stdout.splitlines()
    assert sorted(got + out) == sorted(b"hot %d" % i for i in range(300))
    assert items_on(favoured, "hot") == 0


def test_sets_follow_a_new_leader(fleet):
    for cell in fleet:
        cell.leader()
    cell = fleet[0]
    lead = cell.leader()
    one = f"127.0.0.1:{lead.port}"
    lines = [b"shell-%d" % i for i in range(60)]
    # one client (a shell) that keeps going while a leader dies in the middle
    proc = subprocess.Popen([CLI, "-s", one, "--json", "shell"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    answers = []
    try:
        for i, item in enumerate(lines):
            if i == 30:
                cell.kill(lead.id)
            proc.stdin.write(b"put fail " + item + b"\n")
            proc.stdin.flush()
            answers.append(json.loads(proc.stdout.readline()))
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    ok = sum(1 for a in answers if a.get("ok"))
    # a set in flight when the leader died may fail; the others go through
    assert ok >= len(lines) - 2, answers
    cell.leader()
    total = sum(items_on(c, "fail") for c in fleet)
    assert total >= ok
    cell.restart(lead.id)
