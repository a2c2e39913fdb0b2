"""libdarner and darner-cli against a fleet of servers that never talk to
each other: sets spread over the fleet, gets rotate, an open item stays tied
to the server that handed it out, and a server that goes away is routed
around and used again when it is back.
"""

import json
import os
import select
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from harness import DARNER_BIN, Client, wait_until

CLI = os.environ.get("DARNER_CLI") or str(Path(DARNER_BIN).resolve().parent / "darner-cli")
EXAMPLE = os.environ.get("DARNER_CLIENT_EXAMPLE") or str(
    Path(DARNER_BIN).resolve().parent / "client_example")
CLI_TIMEOUT = 60


@pytest.fixture(autouse=True)
def _cli_built():
    if not os.access(CLI, os.X_OK):
        pytest.fail(f"darner-cli not found: {CLI} (build the project or set DARNER_CLI)")


@pytest.fixture
def fleet(make_server):
    return [make_server() for _ in range(3)]


def addr(servers):
    return ",".join(f"127.0.0.1:{s.port}" for s in servers)


def cli(servers, *args, input=None, check=None):
    if isinstance(input, str):
        input = input.encode()
    p = subprocess.run([CLI, "-s", addr(servers), *map(str, args)], input=input,
                       capture_output=True, timeout=CLI_TIMEOUT)
    if check is not None:
        assert p.returncode == check, (f"exit {p.returncode}\nstdout: {p.stdout[:2000]!r}\n"
                                       f"stderr: {p.stderr[:2000]!r}")
    return p


def items_on(server, q, key="items"):
    with Client(server.port) as c:
        return int(c.stats().get(f"queue_{q}_{key}", 0))


class Shell:
    """`darner-cli --json shell` on the fleet: one client for many commands."""

    def __init__(self, servers, tmp_path):
        self.errf = open(tmp_path / f"shell.{time.monotonic_ns()}.err", "wb")
        self.p = subprocess.Popen([CLI, "-s", addr(servers), "--json", "shell"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errf)
        self.buf = b""

    def cmd(self, line, timeout=20.0):
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            r, _, _ = select.select([self.p.stdout], [], [], max(0.0, deadline - time.monotonic()))
            assert r, f"no answer to {line!r} within {timeout}s"
            chunk = os.read(self.p.stdout.fileno(), 65536)
            assert chunk, f"shell ended at {line!r}"
            self.buf += chunk
        out, self.buf = self.buf.split(b"\n", 1)
        return json.loads(out)

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.errf.close()


@pytest.fixture
def shell(tmp_path):
    made = []

    def start(servers):
        s = Shell(servers, tmp_path)
        made.append(s)
        return s

    yield start
    for s in made:
        s.close()


def test_ten_thousand_sets_spread_evenly_over_three_servers(fleet):
    n = 10_000
    data = "".join(f"item-{i}\n" for i in range(n))
    # --batch 1: each set picks its server (a batch goes to one server whole)
    cli(fleet, "load", "--batch", "1", "spread", input=data, check=0)
    counts = [items_on(s, "spread") for s in fleet]
    assert sum(counts) == n
    share = n / 3
    for c in counts:
        assert abs(c - share) <= 0.10 * share, counts
    # Gets rotate over every server until all are empty: all 10,000 come back.
    out = cli(fleet, "drain", "spread", check=0).stdout.decode().splitlines()
    assert sorted(out) == sorted(f"item-{i}" for i in range(n))
    assert [items_on(s, "spread") for s in fleet] == [0, 0, 0]


def test_gets_rotate_across_the_servers(fleet, shell):
    for i, s in enumerate(fleet):
        with Client(s.port) as c:
            for k in range(2):
                assert c.set("rot", f"s{i}-{k}") == "STORED"
    sh = shell(fleet)
    got = [sh.cmd("get rot") for _ in range(3)]
    # One call per server in turn: three gets, three different servers.
    assert len({g["server"] for g in got}) == 3
    assert all(g["data"].endswith("-0") for g in got)
    rest = [sh.cmd("get rot") for _ in range(3)]
    assert {g["data"] for g in rest} == {"s0-1", "s1-1", "s2-1"}
    assert sh.cmd("get rot")["found"] is False


def test_get_finds_the_one_server_that_has_an_item(fleet):
    with Client(fleet[2].port) as c:
        c.set("lonely", "here")
    for _ in range(3):                      # whatever server the rotation starts at
        p = cli(fleet, "--json", "peek", "lonely", check=0)
        assert json.loads(p.stdout)["server"] == f"127.0.0.1:{fleet[2].port}"
    assert cli(fleet, "get", "lonely", check=0).stdout == b"here"
    cli(fleet, "get", "lonely", check=1)


def test_open_item_stays_tied_to_its_server(fleet, shell):
    for i, s in enumerate(fleet):
        with Client(s.port) as c:
            c.set("tied", f"from-{i}")
    sh = shell(fleet)
    d = sh.cmd("get --open tied")
    owner = next(s for s in fleet if f"127.0.0.1:{s.port}" == d["server"])
    assert d["data"] == f"from-{fleet.index(owner)}"
    assert [items_on(s, "tied", "open_transactions") for s in fleet] == \
        [1 if s is owner else 0 for s in fleet]
    busy = sh.cmd("get --open tied")         # one open item per queue per client
    assert busy["ok"] is False
    # Other gets still rotate over the fleet meanwhile.
    other = sh.cmd("get tied")
    assert other["found"]
    # close goes to the owner, whatever server the rotation points at now.
    assert sh.cmd("close tied")["closed"] is True
    assert items_on(owner, "tied") == 0
    assert items_on(owner, "tied", "open_transactions") == 0
    assert sum(items_on(s, "tied") for s in fleet) == 1
    # abort, too: the item goes back to its own server.
    d = sh.cmd("get --open tied")
    owner = next(s for s in fleet if f"127.0.0.1:{s.port}" == d["server"])
    assert sh.cmd("abort tied")["aborted"] is True
    assert items_on(owner, "tied") == 1 and items_on(owner, "tied", "open_transactions") == 0


def test_open_item_on_a_lost_connection_is_reported_not_closed(fleet, shell):
    with Client(fleet[1].port) as c:
        c.set("lost", "job")
    sh = shell(fleet)
    d = sh.cmd("get --open lost")
    assert d["server"] == f"127.0.0.1:{fleet[1].port}"
    fleet[1].stop()                           # the connection that holds it goes away
    fleet[1].requested_port = fleet[1].port
    fleet[1].start()
    d = sh.cmd("close lost")
    assert d["ok"] is False and "put it back" in d["error"]
    # The server kept the item: it is handed out again.
    assert cli(fleet, "get", "lost", check=0).stdout == b"job"


def test_a_dead_server_is_routed_around_and_used_again(fleet, shell):
    sh = shell(fleet)
    assert sh.cmd("put warm x")["ok"]
    down = fleet[1]
    down.kill()
    for i in range(300):
        d = sh.cmd(f"put route r{i}")
        assert d["ok"] is True, d
    assert items_on(fleet[0], "route") + items_on(fleet[2], "route") == 300
    assert items_on(fleet[0], "route") > 100 and items_on(fleet[2], "route") > 100
    # Gets keep working with one server down.
    assert sh.cmd("get route")["found"] is True
    down.requested_port = down.port
    down.start()
    # After its backoff (at most a few seconds) the server gets sets again.
    deadline = time.monotonic() + 15
    i = 0
    while items_on(down, "route") == 0:
        assert time.monotonic() < deadline, "the restarted server got no sets"
        assert sh.cmd(f"put route again{i}")["ok"] is True
        i += 1
        time.sleep(0.01)


def test_whole_fleet_down_is_an_error_not_a_hang(fleet):
    for s in fleet:
        s.kill()
    start = time.monotonic()
    p = cli(fleet, "put", "q", "x", check=2)
    assert b"connection refused" in p.stderr
    cli(fleet, "get", "q", check=2)
    assert time.monotonic() - start < 10


def test_queues_adds_up_the_fleet_and_per_server_splits_it(fleet):
    for i, s in enumerate(fleet):
        with Client(s.port) as c:
            for k in range(i + 1):
                c.set("sum", "abcd")
    d = json.loads(cli(fleet, "--json", "queues", check=0).stdout)
    row = [r for r in d["queues"] if r["name"] == "sum"][0]
    assert row["items"] == 6 and row["bytes"] == 24
    assert sorted(x["items"] for x in row["servers"]) == [1, 2, 3]
    table = cli(fleet, "queues", "--per-server", check=0).stdout.decode().splitlines()
    assert table[0].split() == ["QUEUE", "SERVER", "ITEMS", "BYTES", "OPEN", "WAITERS"]
    assert len([l for l in table if l.startswith("sum ")]) == 3
    stats = cli(fleet, "stats", check=0).stdout.decode().splitlines()
    assert all(f"127.0.0.1:{s.port}" in stats[0] for s in fleet)


def test_queues_reports_a_dead_server_and_shows_the_rest(fleet):
    with Client(fleet[0].port) as c:
        c.set("part", "x")
    fleet[2].kill()
    p = cli(fleet, "--json", "queues", check=2)
    d = json.loads(p.stdout)
    assert [e["server"] for e in d["errors"]] == [f"127.0.0.1:{fleet[2].port}"]
    assert [r["items"] for r in d["queues"] if r["name"] == "part"] == [1]


def test_flush_and_delete_reach_every_server(fleet):
    cli(fleet, "load", "fl", input="".join(f"{i}\n" for i in range(60)), check=0)
    cli(fleet, "flush", "fl", check=0)
    assert [items_on(s, "fl") for s in fleet] == [0, 0, 0]
    cli(fleet, "delete", "fl", check=0)
    for s in fleet:
        with Client(s.port) as c:
            assert "queue_fl_items" not in c.stats()


def test_drain_length_prefixed_across_the_fleet(fleet):
    import struct
    items = [os.urandom(n) for n in (0, 1, 100, 70_000, 300_000)] * 4
    data = b"".join(struct.pack(">I", len(i)) + i for i in items)
    cli(fleet, "load", "--length-prefixed", "lpf", input=data, check=0)
    assert sum(items_on(s, "lpf") for s in fleet) == len(items)
    out = cli(fleet, "drain", "--length-prefixed", "lpf", check=0).stdout
    got, at = [], 0
    while at < len(out):
        (n,) = struct.unpack(">I", out[at:at + 4])
        got.append(out[at + 4:at + 4 + n])
        at += 4 + n
    assert Counter(got) == Counter(items)


def test_c_example_moves_items_through_the_fleet(fleet):
    if not os.access(EXAMPLE, os.X_OK):
        pytest.skip("client_example not built")
    p = subprocess.run([EXAMPLE, addr(fleet), "jobs"], capture_output=True, timeout=CLI_TIMEOUT)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().splitlines()
    assert lines[0].startswith("opened resize ")
    assert len(lines) == 3
    assert sorted(l.split()[-1] if l.startswith("got") else l.split()[2] for l in lines) == \
        ["1", "2", "3"]
    assert sum(items_on(s, "jobs") for s in fleet) == 0
