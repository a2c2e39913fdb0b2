"""darner-cli and libdarner against one real server.

The CLI is $DARNER_CLI, else darner-cli next to the server binary
($DARNER_BIN's folder, which is the build folder).  Fleet behaviour (several
servers) is in test_client_fleet.py.
"""

import json
import os
import resource
import select
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness import DARNER_BIN, Client, wait_until

CLI = os.environ.get("DARNER_CLI") or str(Path(DARNER_BIN).resolve().parent / "darner-cli")
CLI_TIMEOUT = 60


@pytest.fixture(autouse=True)
def _cli_built():
    if not os.access(CLI, os.X_OK):
        pytest.fail(f"darner-cli not found: {CLI} (build the project or set DARNER_CLI)")


def addr(*servers):
    return ",".join(f"127.0.0.1:{s.port}" for s in servers)


def cli(servers, *args, input=None, env=None, check=None, timeout=CLI_TIMEOUT):
    """Runs darner-cli -s SERVERS ARGS; returns CompletedProcess (bytes)."""
    if not isinstance(servers, str):
        servers = addr(*servers) if isinstance(servers, (list, tuple)) else addr(servers)
    if isinstance(input, str):
        input = input.encode()
    p = subprocess.run([CLI, "-s", servers, *map(str, args)], input=input, capture_output=True,
                       env=env, timeout=timeout)
    if check is not None:
        assert p.returncode == check, (
            f"darner-cli {' '.join(map(str, args))}: exit {p.returncode}, want {check}\n"
            f"stdout: {p.stdout[:2000]!r}\nstderr: {p.stderr[:2000]!r}")
    return p


def cli_json(servers, *args, check=0, **kw):
    p = cli(servers, "--json", *args, check=check, **kw)
    return json.loads(p.stdout)


class Shell:
    """`darner-cli --json shell`: one client, commands sent one at a time,
    one JSON answer line read back for each."""

    def __init__(self, servers, *extra, workdir):
        self.err_path = Path(workdir) / f"shell-stderr.{time.monotonic_ns()}"
        self.err = open(self.err_path, "wb")
        self.p = subprocess.Popen([CLI, "-s", servers, "--json", *extra, "shell"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err)
        self.buf = b""

    def send(self, line):
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()

    def read(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            r, _, _ = select.select([self.p.stdout], [], [], max(0.0, left))
            if not r:
                raise AssertionError(f"no answer within {timeout}s; stderr: {self.stderr()}")
            chunk = os.read(self.p.stdout.fileno(), 65536)
            if not chunk:
                raise AssertionError(f"shell ended; stderr: {self.stderr()}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def cmd(self, line, timeout=20.0):
        self.send(line)
        return self.read(timeout)

    def stderr(self):
        self.err.flush()
        return self.err_path.read_bytes().decode("utf-8", "replace")

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.err.close()


@pytest.fixture
def shells(tmp_path):
    made = []

    def start(servers, *extra):
        if not isinstance(servers, str):
            servers = addr(*servers) if isinstance(servers, (list, tuple)) else addr(servers)
        s = Shell(servers, *extra, workdir=tmp_path)
        made.append(s)
        return s

    yield start
    for s in made:
        if s.p.poll() is None:
            s.p.kill()
        s.close()


def queue_stat(server, q, key):
    with Client(server.port) as c:
        return int(c.stats().get(f"queue_{q}_{key}", 0))


# ---- put, get, peek ----------------------------------------------------------


def test_put_then_get_returns_the_exact_bytes(server):
    cli(server, "put", "jobs", "hello world", check=0)
    assert cli(server, "get", "jobs", check=0).stdout == b"hello world"


def test_get_on_an_empty_queue_exits_1_and_prints_nothing(server):
    p = cli(server, "get", "nothing-here", check=1)
    assert p.stdout == b""


def test_peek_leaves_the_item(server):
    cli(server, "put", "q", "first", check=0)
    assert cli(server, "peek", "q", check=0).stdout == b"first"
    assert cli(server, "peek", "q", check=0).stdout == b"first"
    assert cli(server, "get", "q", check=0).stdout == b"first"
    cli(server, "peek", "q", check=1)


def test_fifo_order_and_flags(server):
    for i in range(5):
        cli(server, "put", "--flags", str(i * 1000), "q", f"item{i}", check=0)
    for i in range(5):
        d = cli_json(server, "get", "q")
        assert d["data"] == f"item{i}" and d["flags"] == i * 1000


def test_put_from_a_pipe_and_from_a_file(server, tmp_path):
    data = bytes(range(256)) * 1000 + b"\r\nEND\r\n"
    cli(server, "put", "bin", "-", input=data, check=0)       # a pipe: read whole
    f = tmp_path / "item"
    f.write_bytes(data[::-1])
    with open(f, "rb") as stdin:                                # a file: streamed
        p = subprocess.run([CLI, "-s", addr(server), "put", "bin"], stdin=stdin,
                           capture_output=True, timeout=CLI_TIMEOUT)
    assert p.returncode == 0, p.stderr
    assert cli(server, "get", "bin", check=0).stdout == data
    assert cli(server, "get", "bin", check=0).stdout == data[::-1]


def test_put_with_sync_and_exptime(server):
    cli(server, "put", "--sync", "--exptime", "1000", "q", "durable", check=0)
    cli(server, "put", "--exptime", "-1", "q", "expired", check=0)
    assert cli(server, "get", "q", check=0).stdout == b"durable"
    cli(server, "get", "q", check=1)


def test_get_wait_returns_an_item_set_meanwhile(server):
    def later():
        time.sleep(0.3)
        with Client(server.port) as c:
            c.set("w", "late")
    t = threading.Thread(target=later)
    t.start()
    start = time.monotonic()
    p = cli(server, "get", "--wait", "5000", "w", check=0)
    t.join()
    assert p.stdout == b"late"
    assert time.monotonic() - start < 4


def test_get_wait_times_out_empty(server):
    start = time.monotonic()
    cli(server, "get", "--wait", "300", "w", check=1)
    assert 0.25 < time.monotonic() - start < 5


def test_bad_queue_name_is_refused_locally(server):
    p = cli(server, "put", "a/b", "x", check=2)
    assert b"queue name" in p.stderr


def test_item_too_large_is_an_error_and_the_connection_stays_usable(make_server, shells):
    srv = make_server("--max-item-size", "1K")
    sh = shells(srv)
    d = sh.cmd("put q " + "x" * 2000)
    assert d["ok"] is False and "too large" in d["error"]
    assert sh.cmd("put q small")["ok"] is True
    assert sh.cmd("get q")["data"] == "small"


# ---- --json --------------------------------------------------------------------


def test_json_output_of_every_command_parses(server):
    assert cli_json(server, "put", "j", "one") == {"ok": True, "queue": "j", "bytes": 3}
    cli(server, "put", "--flags", "7", "j", b"\xff\xfe".decode("latin-1"), check=0)
    d = cli_json(server, "peek", "j")
    assert d["found"] and d["data"] == "one" and d["server"] == addr(server)
    q = cli_json(server, "queues")
    row = [r for r in q["queues"] if r["name"] == "j"][0]
    assert row["items"] == 2 and row["open"] == 0 and row["waiters"] == 0
    assert q["errors"] == []
    st = cli_json(server, "stats")
    stats = st["servers"][0]["stats"]
    assert stats["version"] == "1.0.0" and stats["queue_j_items"] == 2
    assert isinstance(stats["uptime"], int)
    v = cli_json(server, "version")
    assert v["servers"][0]["version"] == "1.0.0"
    assert cli_json(server, "get", "j")["data"] == "one"
    assert cli_json(server, "get", "j", check=0)["bytes"] == 4   # UTF-8 of "\xff\xfe" as latin-1
    assert cli_json(server, "get", "j", check=1) == {"ok": True, "queue": "j", "found": False}
    assert cli_json(server, "flush", "j") == {"ok": True, "queue": "j"}
    assert cli_json(server, "delete", "j") == {"ok": True, "queue": "j"}


def test_json_binary_items_come_as_base64(server):
    import base64
    data = b"\x00\x01\xff\n"
    cli(server, "put", "b", "-", input=data, check=0)
    d = cli_json(server, "get", "b")
    assert "data" not in d and base64.b64decode(d["data_base64"]) == data


def test_json_errors_are_json_too(server):
    d = cli_json("127.0.0.1:1", "get", "q", check=2)
    assert d["ok"] is False and "refused" in d["error"]
    d = cli_json(server, "bogus-command", check=2)
    assert d["ok"] is False


def test_stats_watch_repeats(server):
    p = cli(server, "--json", "stats", "--watch", "0.1", "--count", "3", check=0)
    lines = p.stdout.decode().splitlines()
    assert len(lines) == 3
    for line in lines:
        d = json.loads(line)
        assert "time" in d and d["servers"][0]["ok"]
    p = cli(server, "stats", "--watch", "0.1", "--count", "2", check=0)
    assert p.stdout.decode().count("curr_connections") == 2


def test_queues_table(server):
    for i in range(3):
        cli(server, "put", "tbl", f"x{i}", check=0)
    out = cli(server, "queues", check=0).stdout.decode().splitlines()
    assert out[0].split() == ["QUEUE", "ITEMS", "BYTES", "OPEN", "WAITERS"]
    row = [l for l in out if l.startswith("tbl ")][0].split()
    assert row == ["tbl", "3", "6", "B", "0", "0"]


# ---- reliable reads -------------------------------------------------------------


def test_open_item_returns_to_its_queue_when_the_client_process_dies(server, shells):
    cli(server, "put", "rel", "precious", check=0)
    sh = shells(server)
    d = sh.cmd("get --open rel")
    assert d["found"] and d["open"] and d["data"] == "precious"
    assert queue_stat(server, "rel", "open_transactions") == 1
    sh.p.send_signal(signal.SIGKILL)
    sh.p.wait()
    assert wait_until(lambda: queue_stat(server, "rel", "open_transactions") == 0)
    assert cli(server, "get", "rel", check=0).stdout == b"precious"


def test_shell_open_then_close_removes_and_abort_returns(server, shells):
    cli(server, "put", "s", "a", check=0)
    cli(server, "put", "s", "b", check=0)
    sh = shells(server)
    assert sh.cmd("get --open s")["data"] == "a"
    busy = sh.cmd("get --open s")
    assert busy["ok"] is False and "already open" in busy["error"]
    assert sh.cmd("close s") == {"ok": True, "queue": "s", "closed": True}
    assert sh.cmd("get --open s")["data"] == "b"
    assert sh.cmd("abort s") == {"ok": True, "queue": "s", "aborted": True}
    assert sh.cmd("close s")["closed"] is False          # nothing open any more
    assert sh.cmd("get s")["data"] == "b"
    assert sh.cmd("get s")["found"] is False


def test_close_and_abort_in_a_new_process_explain_themselves(server):
    for verb in ("close", "abort"):
        p = cli(server, verb, "q", check=1)
        assert b"--exec" in p.stderr and b"shell" in p.stderr


def test_exec_closes_on_exit_0(server, tmp_path):
    cli(server, "put", "--flags", "9", "work", "payload bytes", check=0)
    out = tmp_path / "seen"
    d = cli_json(server, "get", "--exec",
                 f'cat > {out}; echo "$DARNER_QUEUE $DARNER_BYTES $DARNER_FLAGS" >> {out}', "work")
    assert d["result"] == "closed" and d["exit"] == 0
    assert out.read_bytes() == b"payload bytes" + b"work 13 9\n"
    cli(server, "get", "work", check=1)
    assert queue_stat(server, "work", "open_transactions") == 0


def test_exec_aborts_on_failure_and_the_item_stays_first(server):
    cli(server, "put", "work", "one", check=0)
    cli(server, "put", "work", "two", check=0)
    p = cli(server, "get", "--exec", "cat >/dev/null; exit 3", "work", check=2)
    assert b"exited with 3" in p.stderr
    assert cli(server, "get", "work", check=0).stdout == b"one"


def test_exec_on_an_empty_queue_runs_nothing(server, tmp_path):
    marker = tmp_path / "ran"
    cli(server, "get", "--exec", f"touch {marker}", "none", check=1)
    assert not marker.exists()


def test_exec_killed_cli_gives_the_item_back(server, tmp_path):
    cli(server, "put", "k", "survivor", check=0)
    started = tmp_path / "started"
    p = subprocess.Popen([CLI, "-s", addr(server), "get", "--exec", f"touch {started}; sleep 30", "k"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        assert wait_until(started.exists, timeout=10)
        assert queue_stat(server, "k", "open_transactions") == 1
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert wait_until(lambda: queue_stat(server, "k", "open_transactions") == 0)
    assert cli(server, "get", "k", check=0).stdout == b"survivor"


# ---- drain and load --------------------------------------------------------------


def test_drain_load_round_trip_lines(server):
    lines = [f"line {i} \u00e9\u00e8 \t tab".encode() for i in range(1000)] + [b"", b"last"]
    cli(server, "load", "src", input=b"\n".join(lines) + b"\n", check=0)
    assert queue_stat(server, "src", "items") == len(lines)
    p = cli(server, "drain", "src", check=0)
    assert p.stdout == b"\n".join(lines) + b"\n"
    assert queue_stat(server, "src", "items") == 0
    cli(server, "load", "dst", input=p.stdout, check=0)
    assert cli(server, "drain", "dst", check=0).stdout == p.stdout


def test_load_final_line_without_newline_is_an_item(server):
    cli(server, "load", "q", input=b"a\nb", check=0)
    assert cli(server, "drain", "q", check=0).stdout == b"a\nb\n"


def test_drain_lines_stops_at_an_item_holding_a_newline(server):
    cli(server, "put", "nl", "ok", check=0)
    cli(server, "put", "nl", "-", input=b"two\nlines", check=0)
    cli(server, "put", "nl", "after", check=0)
    p = cli(server, "drain", "nl", check=2)
    assert p.stdout == b"ok\n"
    assert b"--length-prefixed" in p.stderr
    assert queue_stat(server, "nl", "items") == 2              # it stays, first
    assert queue_stat(server, "nl", "open_transactions") == 0
    assert cli(server, "get", "nl", check=0).stdout == b"two\nlines"


def lp_encode(items):
    return b"".join(struct.pack(">I", len(i)) + i for i in items)


def lp_decode(data):
    out, at = [], 0
    while at < len(data):
        (n,) = struct.unpack(">I", data[at:at + 4])
        out.append(data[at + 4:at + 4 + n])
        at += 4 + n
    assert at == len(data)
    return out


def test_drain_load_round_trip_length_prefixed(server):
    items = [b"", b"\n", b"\r\nEND\r\n", bytes(range(256)), b"\x00" * 1000,
             os.urandom(3 * 1024 * 1024), b"VALUE x 0 1\r\n"]
    cli(server, "load", "--length-prefixed", "bin", input=lp_encode(items), check=0)
    assert queue_stat(server, "bin", "items") == len(items)
    p = cli(server, "drain", "--length-prefixed", "bin", check=0)
    assert lp_decode(p.stdout) == items
    assert p.stdout == lp_encode(items)                        # the documented format, exactly


def test_load_length_prefixed_truncated_input_is_an_error(server):
    good = lp_encode([b"one", b"two"])
    p = cli(server, "load", "--length-prefixed", "t", input=good + struct.pack(">I", 10) + b"abc",
            check=2)
    assert b"ends inside item 3" in p.stderr
    p = cli(server, "load", "--length-prefixed", "t", input=good + b"\x00\x00", check=2)
    assert b"length prefix" in p.stderr
    assert queue_stat(server, "t", "items") == 4               # the whole items before it
    assert queue_stat(server, "t", "open_transactions") == 0


def test_drain_max_and_wait(server):
    cli(server, "load", "m", input=b"1\n2\n3\n", check=0)
    assert cli(server, "drain", "--max", "2", "m", check=0).stdout == b"1\n2\n"
    start = time.monotonic()
    assert cli(server, "drain", "--wait", "300", "m", check=0).stdout == b"3\n"
    assert time.monotonic() - start >= 0.25


def test_progress_line_on_request(server):
    p = cli(server, "--progress", "load", "pg", input=b"a\nb\nc\n", check=0)
    assert b"load pg: 3 items" in p.stderr
    p = cli(server, "--progress", "drain", "pg", check=0)
    assert b"drain pg: 3 items" in p.stderr
    p = cli(server, "load", "pg", input=b"a\n", check=0)      # not a tty: quiet
    assert p.stderr == b""


def run_measured(argv, stdin=None, stdout=None):
    """Runs argv to completion; returns (exit code, peak RSS in bytes)."""
    p = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read()
    p.stderr.close()
    assert p.returncode == 0, err
    return p.returncode, usage.ru_maxrss * 1024


def test_large_item_streams_through_the_cli_without_being_held(server, tmp_path):
    size = 96 * 1024 * 1024
    src = tmp_path / "big.lp"
    chunk = os.urandom(1024 * 1024)
    with open(src, "wb") as f:
        f.write(struct.pack(">I", size))
        for _ in range(size // len(chunk)):
            f.write(chunk)
    with open(src, "rb") as stdin:
        _, rss_load = run_measured([CLI, "-s", addr(server), "load", "--length-prefixed", "big"],
                                   stdin=stdin)
    out = tmp_path / "out.lp"
    with open(out, "wb") as stdout:
        _, rss_drain = run_measured([CLI, "-s", addr(server), "drain", "--length-prefixed", "big"],
                                    stdout=stdout)
    assert out.stat().st_size == size + 4
    with open(out, "rb") as a, open(src, "rb") as b:
        while True:
            x, y = a.read(1 << 20), b.read(1 << 20)
            assert x == y
            if not x:
                break
    # Neither direction holds the item: far below its 96 MiB.
    assert rss_load < 48 * 1024 * 1024, rss_load
    assert rss_drain < 48 * 1024 * 1024, rss_drain


# ---- failures and timeouts ----------------------------------------------------------


def test_server_killed_mid_request_then_back(make_server, shells):
    srv = make_server()
    cli(srv, "put", "mid", "x", check=0)
    cli(srv, "get", "mid", check=0)                          # the queue exists, empty
    sh = shells(srv)
    assert sh.cmd("put warm up")["ok"] is True               # connected
    sh.send("get --wait 20000 mid")
    assert wait_until(lambda: queue_stat(srv, "mid", "waiters") == 1, timeout=10)
    srv.kill()                                               # mid-request
    d = sh.read()
    assert d["ok"] is False and "connection lost" in d["error"], d
    d = sh.cmd("put mid y")                                  # no server: an error, quickly
    assert d["ok"] is False
    srv.requested_port = srv.port                            # back on the same port
    srv.start()
    deadline = time.monotonic() + 10
    while True:                                              # reconnects, after its backoff
        d = sh.cmd("put mid back")
        if d["ok"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert d["ok"] is True, d
    assert sh.cmd("get mid")["data"] == "back"


def test_idle_connection_to_a_restarted_server_is_replaced(make_server, shells):
    srv = make_server()
    sh = shells(srv)
    assert sh.cmd("put q one")["ok"]
    srv.stop()
    srv.requested_port = srv.port
    srv.start()
    # The pooled connection is dead; the client notices before sending.
    assert sh.cmd("put q two")["ok"] is True
    assert sh.cmd("get q")["data"] == "one"


def test_unreachable_server_fails_fast(tmp_path):
    start = time.monotonic()
    p = cli("127.0.0.1:1", "get", "q", check=2)
    assert b"connection refused" in p.stderr
    assert time.monotonic() - start < 5


def test_per_call_timeout_against_a_silent_server():
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    port = lsock.getsockname()[1]
    try:
        start = time.monotonic()
        p = cli(f"127.0.0.1:{port}", "--timeout", "300", "get", "q", check=2)
        took = time.monotonic() - start
        assert b"timed out" in p.stderr
        assert took < 3
    finally:
        lsock.close()


def test_bad_server_list_is_a_usage_error():
    for bad in ("host:0", "a:1,,b:2", "[::1", "a b:1"):
        p = cli(bad, "get", "q", check=2)
        assert b"server list" in p.stderr


def test_servers_from_the_environment(server):
    env = dict(os.environ, DARNER_SERVERS=addr(server))
    p = subprocess.run([CLI, "put", "envq", "via env"], env=env, capture_output=True,
                       timeout=CLI_TIMEOUT)
    assert p.returncode == 0, p.stderr
    p = subprocess.run([CLI, "get", "envq"], env=env, capture_output=True, timeout=CLI_TIMEOUT)
    assert p.stdout == b"via env"


def test_help_lists_every_command():
    p = subprocess.run([CLI, "--help"], capture_output=True, timeout=CLI_TIMEOUT)
    assert p.returncode == 0
    for word in ("put", "get", "peek", "close", "abort", "stats", "queues", "flush", "delete",
                 "drain", "load", "shell", "DARNER_SERVERS"):
        assert word.encode() in p.stdout


def test_flush_and_delete(server):
    cli(server, "load", "fd", input=b"1\n2\n", check=0)
    cli(server, "flush", "fd", check=0)
    assert queue_stat(server, "fd", "items") == 0
    with Client(server.port) as c:
        assert "queue_fd_items" in c.stats()
    cli(server, "delete", "fd", check=0)
    with Client(server.port) as c:
        assert "queue_fd_items" not in c.stats()
