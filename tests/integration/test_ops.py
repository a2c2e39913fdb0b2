"""Operations (SPEC section 5): flags, help, version, errors at start, signals,
port file, stats, connection limit, Kestrel compatibility."""

import os
import re
import signal
import socket
import time

import pytest

from harness import Client, listing, run_darner, wait_until

REQUIRED_STATS = ["uptime", "time", "version", "pid", "curr_items", "total_items", "bytes",
                  "curr_connections", "total_connections", "cmd_get", "cmd_set", "cmd_peek",
                  "get_hits", "get_misses", "bytes_read", "bytes_written", "queue_creates",
                  "queue_deletes"]
QUEUE_STATS = ["items", "bytes", "total_items", "logsize", "age", "waiters", "open_transactions"]


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def test_help_lists_every_flag(darner_bin, tmp_path):
    rc, out, err = run_darner(["--help"], cwd=tmp_path)
    assert rc == 0, err
    text = out + err
    for flag in ["--listen", "--port", "--port-file", "--data", "--fsync", "--max-item-size",
                 "--max-connections", "--compat", "--max-line-length", "--log-level",
                 "--help", "--version"]:
        assert re.search(re.escape(flag) + r"(?![-\w])", text), f"--help does not mention {flag}"
    assert re.search(r"(?<![-\w])-p(?![-\w])", text), "--help does not mention -p"
    assert re.search(r"(?<![-\w])-d(?![-\w])", text), "--help does not mention -d"
    assert listing(tmp_path) == [], "--help created files"


def test_version_flag_prints_version_of_at_least_1_0(darner_bin, tmp_path):
    rc, out, err = run_darner(["--version"], cwd=tmp_path)
    assert rc == 0, err
    m = re.search(r"(\d+)\.(\d+)", out + err)
    assert m, out + err
    assert (int(m.group(1)), int(m.group(2))) >= (1, 0)


@pytest.mark.parametrize("args", [
    ["--no-such-flag"],
    ["--port", "notaport"],
    ["--port", "70000"],
    ["--fsync", "sometimes"],
    ["--compat", "redis"],
    ["--max-item-size", "lots"],
    ["--max-connections", "-3"],
    ["--log-level", "chatty"],
    ["--port"],
    ["stray-argument"],
], ids=lambda a: "_".join(a))
def test_bad_flag_exits_nonzero_with_message(darner_bin, tmp_path, args):
    argv = ["--data", str(tmp_path / "data"), "--listen", "127.0.0.1"]
    if "--port" not in args:
        argv += ["--port", "0"]
    rc, out, err = run_darner(argv + args, cwd=tmp_path)
    assert rc is not None, f"darner {' '.join(args)} kept running instead of refusing"
    assert rc != 0
    assert err.strip(), "no message on stderr"


def test_bad_flag_message_names_the_flag(darner_bin, tmp_path):
    rc, out, err = run_darner(["--port", "0", "--data", str(tmp_path / "d"), "--frobnicate"],
                              cwd=tmp_path)
    assert rc not in (0, None)
    assert "frobnicate" in err


def test_data_folder_under_a_regular_file_exits_nonzero_with_message(darner_bin, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    bad = blocker / "data"
    rc, out, err = run_darner(["--port", "0", "--data", str(bad), "--listen", "127.0.0.1"],
                              cwd=tmp_path)
    assert rc is not None, "darner started on an unusable data folder"
    assert rc != 0
    assert str(blocker) in err or "data" in err.lower(), err
    assert blocker.read_text() == "not a folder"


def test_data_folder_that_is_a_regular_file_exits_nonzero_with_message(darner_bin, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rc, out, err = run_darner(["--port", "0", "--data", str(blocker), "--listen", "127.0.0.1"],
                              cwd=tmp_path)
    assert rc is not None, "darner started on an unusable data folder"
    assert rc != 0
    assert err.strip()
    assert blocker.read_text() == "not a folder"


def test_data_folder_is_created_if_missing(make_server, tmp_path):
    data = tmp_path / "deep" / "er" / "data"
    s = make_server(data=data)
    assert data.is_dir()
    with s.client() as c:
        assert c.set("q", b"x") == "STORED"
    assert listing(data)


def test_short_flags_p_and_d(make_server, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = tmp_path / "short-data"
    s = make_server(data=data, port=port, short=True)
    assert s.port == port
    with s.client() as c:
        assert c.set("q", b"x") == "STORED"
    assert data.is_dir() and listing(data)


def test_fixed_port_flag(make_server):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    s = make_server(port=port)
    assert s.port == port
    with Client(port) as c:
        assert c.cmd("version").startswith("VERSION ")


def test_port_file_holds_the_listening_port(server):
    text = server.port_file.read_text()
    assert re.fullmatch(r"\d+\n?", text), repr(text)
    with Client(int(text)) as c:
        assert c.cmd("version").startswith("VERSION ")


def test_port_in_use_exits_nonzero_with_message(server, tmp_path):
    rc, out, err = run_darner(["--port", str(server.port), "--data", str(tmp_path / "other"),
                               "--listen", "127.0.0.1"], cwd=tmp_path)
    assert rc not in (0, None)
    assert err.strip()


def test_startup_log_names_the_data_folder(server):
    assert str(server.data) in server.log() or server.data.name in server.log()


@pytest.mark.parametrize("policy", ["always", "never", "100"])
def test_fsync_policies_are_accepted(make_server, policy):
    s = make_server("--fsync", policy)
    with s.client() as c:
        assert c.set("q", b"x") == "STORED"
        assert c.set("q/sync", b"y") == "STORED"
        assert c.get_multi(["q"]) == [("q", 0, b"x")]
        assert c.get("q") == (0, b"y")


@pytest.mark.parametrize("level", ["error", "warn", "info", "debug"])
def test_log_levels_are_accepted(make_server, level):
    s = make_server("--log-level", level)
    with s.client() as c:
        assert c.set("q", b"x") == "STORED"
        assert c.get("q") == (0, b"x")


def test_max_item_size_flag_allows_items_up_to_the_limit(make_server):
    s = make_server("--max-item-size", "100")
    with s.client() as c:
        assert c.set("q", b"x" * 100) == "STORED"
        assert c.set("q", b"x" * 101) == "SERVER_ERROR object too large for cache"
        assert c.get("q") == (0, b"x" * 100)
        assert c.get("q") is None


# --------------------------------------------------------------------------
# Signals
# --------------------------------------------------------------------------

def test_sigterm_exits_zero(server, client):
    assert client.set("q", b"x") == "STORED"
    assert server.stop(signal.SIGTERM) == 0


def test_sigint_exits_zero(server, client):
    assert client.set("q", b"x") == "STORED"
    assert server.stop(signal.SIGINT) == 0


def test_sigterm_with_idle_and_waiting_clients_exits_zero_promptly(server, clients):
    idle, waiter, opener = clients(server), clients(server), clients(server)
    assert idle.cmd("version").startswith("VERSION ")
    assert opener.set("q", b"x") == "STORED"
    assert opener.get("q/open") == (0, b"x")
    waiter.send(b"get empty/t=60000\r\n")
    assert idle.cmd("version").startswith("VERSION ")
    t0 = time.monotonic()
    server.stop(signal.SIGTERM)
    assert time.monotonic() - t0 < 5.0
    server.start()
    with server.client() as c:
        assert c.get("q") == (0, b"x")


def test_port_is_closed_after_sigterm(server):
    port = server.port
    server.stop()
    with pytest.raises(OSError):
        Client(port, timeout=2.0)


# --------------------------------------------------------------------------
# stats
# --------------------------------------------------------------------------

def test_stats_has_every_required_key(client):
    assert client.set("q", b"x") == "STORED"
    stats = client.stats()
    missing = [k for k in REQUIRED_STATS if k not in stats]
    missing += [f"queue_q_{k}" for k in QUEUE_STATS if f"queue_q_{k}" not in stats]
    assert not missing, f"missing stats: {missing}"


def test_stats_values_are_sane(server, client):
    stats = client.stats()
    assert int(stats["pid"]) == server.proc.pid
    assert abs(int(stats["time"]) - time.time()) < 10
    assert int(stats["uptime"]) >= 0
    assert stats["version"] == client.cmd("version").split(" ", 1)[1]
    for k in REQUIRED_STATS:
        if k != "version":
            assert re.fullmatch(r"\d+(\.\d+)?", stats[k]), (k, stats[k])


def test_stats_counters_move_with_sets_and_gets(client):
    before = client.stats()
    assert client.set("q", b"hello") == "STORED"
    assert client.set("q", b"world!!") == "STORED"
    mid = client.stats()
    assert int(mid["cmd_set"]) - int(before["cmd_set"]) == 2
    assert int(mid["curr_items"]) == 2
    assert int(mid["total_items"]) - int(before["total_items"]) == 2
    assert mid["queue_q_items"] == "2"
    assert mid["queue_q_total_items"] == "2"
    assert mid["queue_q_bytes"] == "12"
    assert int(mid["bytes"]) == 12
    assert int(mid["queue_creates"]) - int(before["queue_creates"]) == 1
    assert client.get("q") == (0, b"hello")
    assert client.get("q") == (0, b"world!!")
    assert client.get("q") is None
    after = client.stats()
    assert int(after["cmd_get"]) - int(mid["cmd_get"]) == 3
    assert int(after["get_hits"]) - int(mid["get_hits"]) == 2
    assert int(after["get_misses"]) - int(mid["get_misses"]) == 1
    assert int(after["curr_items"]) == 0
    assert after["queue_q_items"] == "0"
    assert after["queue_q_total_items"] == "2"
    assert after["queue_q_bytes"] == "0"
    assert int(after["bytes"]) == 0
    assert int(after["bytes_read"]) > int(before["bytes_read"])
    assert int(after["bytes_written"]) > int(before["bytes_written"])


def test_stats_count_peeks(client):
    assert client.set("q", b"x") == "STORED"
    before = client.stats()
    assert client.get("q/peek") == (0, b"x")
    after = client.stats()
    assert int(after["cmd_peek"]) - int(before["cmd_peek"]) == 1
    assert after["queue_q_items"] == "1"


def test_stats_count_connections(server, client, clients):
    before = client.stats()
    extra = [clients(server) for _ in range(3)]
    for c in extra:
        assert c.cmd("version").startswith("VERSION ")
    mid = client.stats()
    assert int(mid["curr_connections"]) - int(before["curr_connections"]) == 3
    assert int(mid["total_connections"]) - int(before["total_connections"]) == 3
    for c in extra:
        c.close()
    assert wait_until(lambda: client.stat("curr_connections") == before["curr_connections"])


def test_stats_count_queue_creates_and_deletes(client):
    before = client.stats()
    assert client.set("a", b"x") == "STORED"
    assert client.set("a", b"y") == "STORED"
    assert client.set("b", b"z") == "STORED"
    assert client.cmd("delete a") == "DELETED"
    after = client.stats()
    assert int(after["queue_creates"]) - int(before["queue_creates"]) == 2
    assert int(after["queue_deletes"]) - int(before["queue_deletes"]) == 1
    assert "queue_a_items" not in after
    assert after["queue_b_items"] == "1"


def test_stats_queue_age_and_logsize_are_numbers(client):
    assert client.set("q", b"x" * 1000) == "STORED"
    stats = client.stats()
    assert int(stats["queue_q_age"]) >= 0
    assert int(stats["queue_q_logsize"]) >= 1000


# --------------------------------------------------------------------------
# Connection limit
# --------------------------------------------------------------------------

def test_max_connections_refuses_the_connection_beyond_the_limit(make_server):
    s = make_server("--max-connections", "2")
    c1, c2 = s.client(), s.client()
    try:
        assert c1.cmd("version").startswith("VERSION ")
        assert c2.cmd("version").startswith("VERSION ")
        with s.client() as c3:
            assert c3.readline() == "SERVER_ERROR too many connections"
            c3.expect_closed()
        assert c1.cmd("version").startswith("VERSION ")
        c1.close()

        def fourth_works():
            try:
                with s.client() as c4:
                    c4.send(b"version\r\n")
                    return c4.readline().startswith("VERSION ")
            except (ConnectionError, OSError):
                return False
        assert wait_until(fourth_works), "no connection accepted after one was closed"
    finally:
        c1.close()
        c2.close()


# --------------------------------------------------------------------------
# Compatibility modes
# --------------------------------------------------------------------------

def test_compat_kestrel_answers_with_bare_queue_name(make_server):
    s = make_server("--compat", "kestrel")
    with s.client() as c:
        assert c.set("q", b"a", flags=0) == "STORED"
        assert c.set("q", b"b") == "STORED"
        assert c.get_full("q/open") == ("q", 0, b"a")
        assert c.get_full("q/close/open") == ("q", 0, b"b")
        assert c.cmd("get q/close") == "END"
        assert c.set("q", b"c") == "STORED"
        assert c.get_full("q/peek") == ("q", 0, b"c")
        assert c.get_full("q/t=100") == ("q", 0, b"c")


def test_compat_kestrel_flush_all_answer(make_server):
    s = make_server("--compat", "kestrel")
    with s.client() as c:
        assert c.set("q", b"a") == "STORED"
        assert c.cmd("flush_all") == "Flushed all queues."
        assert c.get("q") is None


def test_compat_memcache_is_the_default_behaviour(make_server):
    s = make_server("--compat", "memcache")
    with s.client() as c:
        assert c.set("q", b"a") == "STORED"
        assert c.get_full("q/open") == ("q/open", 0, b"a")
        assert c.cmd("flush_all") == "OK"
