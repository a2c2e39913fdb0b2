"""darner-cli cluster against a 3-member cell (docs/cluster.md, Members).

`darner-cli cluster` lists the members with their roles; `cluster transfer
ID` hands the leadership over (the old leader exits 75 and the harness
starts it again); `cluster remove` of a follower leaves 2 members in every
member's list (the members' file is replicated); `cluster add` of a bad
spec is the server's refusal, exit 1. Loopback only.

The CLI is $DARNER_CLI, else darner-cli next to the server binary.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from cell_harness import Cell
from harness import DARNER_BIN, UNDER_WINE, Client, wait_until

pytestmark = pytest.mark.skipif(UNDER_WINE, reason="cells are not built for Windows")

CLI = os.environ.get("DARNER_CLI") or str(Path(DARNER_BIN).resolve().parent / "darner-cli")


@pytest.fixture(autouse=True)
def _cli_built():
    if not os.access(CLI, os.X_OK):
        pytest.fail(f"darner-cli not found: {CLI} (build the project or set DARNER_CLI)")


def cli(servers, *args, timeout=10):
    return subprocess.run([CLI, "-s", servers, "--timeout", "3000", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def members(servers):
    """{id: (address, role)} from `darner-cli --json cluster`, or None."""
    p = cli(servers, "--json", "cluster")
    if p.returncode != 0:
        return None
    out = json.loads(p.stdout)
    assert out["ok"] and len(out["cells"]) == 1, out
    return {m["id"]: (m["address"], m["role"]) for m in out["cells"][0]["members"]}


def leaders(found):
    return [mid for mid, (_, role) in (found or {}).items() if role == "leader"]


@pytest.fixture
def cell(tmp_path):
    c = Cell(tmp_path, n=3).start()
    yield c
    bad = c.close()
    assert not bad, "\n".join(bad)


def test_cluster_lists_transfers_removes(cell):
    lead = cell.leader()
    one = f"127.0.0.1:{cell.members[0].port}"
    everyone = ",".join(f"127.0.0.1:{m.port}" for m in cell.members)

    # the table: 3 members, one leader, the one the cell says leads
    p = cli(one, "cluster")
    assert p.returncode == 0, p.stderr
    rows = [line.split() for line in p.stdout.splitlines()]
    assert rows[0] == ["CELL", "ID", "ADDRESS", "ROLE"], p.stdout
    assert len(rows) == 4, p.stdout
    assert sorted(r[1] for r in rows[1:]) == ["1", "2", "3"], p.stdout
    assert [r[1] for r in rows[1:] if r[3] == "leader"] == [str(lead.id)], p.stdout
    assert {r[2] for r in rows[1:]} == {f"127.0.0.1:{m.port}" for m in cell.members}, p.stdout

    # JSON, given every member: still one cell
    found = members(everyone)
    assert sorted(found) == [1, 2, 3] and leaders(found) == [lead.id], found

    # transfer to a follower, sent through another follower (which relays)
    target, other = [m for m in cell.members if m is not lead]
    p = cli(f"127.0.0.1:{other.port}", "cluster", "transfer", target.id)
    assert (p.returncode, p.stdout.strip()) == (0, "OK"), p.stderr
    assert wait_until(lambda: leaders(members(f"127.0.0.1:{target.port}")) == [target.id], timeout=10.0), (
        members(f"127.0.0.1:{target.port}"), cell.logs())
    assert wait_until(lambda: 75 in lead.exits and lead.running(), timeout=10.0), (lead.exits, lead.log())
    assert cell.leader().id == target.id
    assert wait_until(lambda: cell.leader_pid(lead.id) == target.proc.pid, timeout=10.0), lead.log()

    # a change sent to a follower is relayed to the leader (not answered
    # with the follower's list): the leader's refusal comes back
    with Client(lead.port, timeout=5.0) as c:
        answer = c.cmd("cluster add 7@nowhere")
    assert answer.startswith("SERVER_ERROR member '7@nowhere'"), answer

    # remove a follower (not the new leader): every member lists 2 once the
    # change is committed (the members' file is replicated); only then is it
    # stopped (a cell of 3 needs 2 for the change)
    gone = other
    p = cli(f"127.0.0.1:{target.port}", "cluster", "remove", gone.id)
    assert (p.returncode, p.stdout.strip()) == (0, "OK"), p.stderr
    left = [m for m in cell.members if m is not gone]
    for m in left:
        assert wait_until(lambda: sorted(members(f"127.0.0.1:{m.port}") or {}) == sorted(x.id for x in left),
                          timeout=10.0), (members(f"127.0.0.1:{m.port}"), cell.logs())
    cell.kill(gone.id)
    assert cell.leader().id == target.id

    # a bad spec: the leader's refusal, exit 1, its reason on stderr
    p = cli(f"127.0.0.1:{target.port}", "cluster", "add", "7@nowhere")
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == ""
    assert "cluster add" in p.stderr and "ID@HOST:RAFT_PORT:PORT" in p.stderr, p.stderr


def test_cluster_usage_errors(cell):
    cell.leader()
    one = f"127.0.0.1:{cell.members[0].port}"
    for args in (["nope"], ["remove"], ["add", "a", "b"], ["transfer", "1", "2"]):
        p = cli(one, "cluster", *args)
        assert p.returncode == 2 and ("usage" in p.stderr or "unknown" in p.stderr), (args, p.stderr)
    # a server that is not in the first one's cell: refused before sending
    p = cli(f"{one},127.0.0.1:1", "cluster", "transfer")
    assert p.returncode == 2 and "not a member of the cell" in p.stderr, p.stderr
    # --json refusal: one {"ok":false} line
    p = cli(one, "--json", "cluster", "add", "bad")
    assert p.returncode == 1, p.stderr
    assert json.loads(p.stdout)["ok"] is False
