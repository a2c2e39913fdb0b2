"""The config file (-c FILE / --config FILE): [server] settings under the
command line's flags, [queue] sections and their inheritance, and mistakes
refused with file:line (docs/configuration.md)."""

import signal
import threading

import pytest

from harness import drain_queue, run_darner, wait_until


def write(tmp_path, text, name="darner.conf"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_server_section_applies(make_server, tmp_path):
    conf = write(tmp_path, "[server]\ncompat = kestrel\nmax_item_size = 1KiB\n")
    s = make_server("-c", conf)
    with s.client() as c:
        assert c.cmd("flush_all") == "Flushed all queues."
        c.send(b"set q 0 0 2000\r\n" + b"x" * 2000 + b"\r\n")
        assert c.readline() == "SERVER_ERROR object too large for cache"


def test_a_flag_wins_over_the_file(make_server, tmp_path):
    conf = write(tmp_path, "[server]\ncompat = kestrel\n")
    s = make_server("--config", conf, "--compat", "memcache")
    with s.client() as c:
        assert c.cmd("flush_all") == "OK"


def test_flags_before_the_config_flag_win_too(make_server, tmp_path):
    conf = write(tmp_path, "[server]\ncompat = kestrel\n")
    s = make_server("--compat", "memcache", "-c", conf)
    with s.client() as c:
        assert c.cmd("flush_all") == "OK"


@pytest.mark.parametrize("text,line,words", [
    ("[server]\nport = 0\nprot = 1\n", 3, "unknown key 'prot' in [server]"),
    ("[queue]\nmax_items = lots\n", 2, "max_items wants a whole number or unlimited, not 'lots'"),
    ("[qeueu]\n", 1, "unknown section [qeueu]"),
    ("[server]\nnot a key\n", 2, "not a `key = value` line"),
], ids=["unknown-key", "bad-value", "bad-section", "syntax"])
def test_a_mistake_stops_the_start_naming_file_and_line(tmp_path, text, line, words):
    conf = write(tmp_path, text)
    rc, out, err = run_darner(["-c", str(conf), "--port", "0", "--data", str(tmp_path / "data")], cwd=tmp_path)
    assert rc == 2, (rc, err)
    assert f"{conf}:{line}: " in err and words in err, err
    assert not (tmp_path / "data").exists(), "a refused start created the data folder"


def test_a_missing_file_stops_the_start(tmp_path):
    rc, out, err = run_darner(["-c", str(tmp_path / "none.conf"), "--port", "0",
                               "--data", str(tmp_path / "data")], cwd=tmp_path)
    assert rc == 2 and "none.conf" in err and "No such file" in err, err


def test_kestrel_keys_that_mean_nothing_are_accepted_with_a_warning(make_server, tmp_path):
    conf = write(tmp_path, "[queue]\nmax_memory_size = 128MiB\nmax_journal_size = 1GiB\n")
    s = make_server("-c", conf)
    with s.client() as c:
        assert c.set("q", "x") == "STORED"
    log = s.log()
    assert log.count("warning") >= 2 and "max_memory_size" in log and "max_journal_size" in log, log


# --------------------------------------------------------------------------
# Queue limits
# --------------------------------------------------------------------------

def test_max_items_refuses_sets_with_not_stored_and_keeps_nothing(make_server, tmp_path):
    conf = write(tmp_path, "[queue]\nmax_items = 3\n[queue \"big\"]\nmax_items = unlimited\n")
    s = make_server("-c", conf)
    with s.client() as c:
        for i in range(3):
            assert c.set("q", b"i%d" % i) == "STORED"
        assert c.set("q", b"i3") == "NOT_STORED"
        c.send(b"set q 0 0 2 noreply\r\ni4\r\n")
        assert c.get_data("q") == b"i0"        # nothing answered the noreply set
        assert c.set("q", b"i5") == "STORED"   # room again
        assert [c.get_data("q") for _ in range(4)] == [b"i1", b"i2", b"i5", None]
        for i in range(10):
            assert c.set("big", b"x") == "STORED"
        assert c.stats()["queue_q_discarded"] == "0"


def test_open_items_count_against_max_items(make_server, tmp_path):
    conf = write(tmp_path, "[queue]\nmax_items = 2\n")
    s = make_server("-c", conf)
    with s.client() as c:
        assert c.set("q", b"a") == "STORED" and c.set("q", b"b") == "STORED"
        assert c.get_data("q/open") == b"a"
        assert c.set("q", b"c") == "NOT_STORED"
        assert c.cmd("get q/close") == "END"
        assert c.set("q", b"c") == "STORED"


def test_max_size_counts_bytes(make_server, tmp_path):
    conf = write(tmp_path, "[queue \"q\"]\nmax_size = 10\n")
    s = make_server("-c", conf)
    with s.client() as c:
        assert c.set("q", b"12345") == "STORED"
        assert c.set("q", b"123456") == "NOT_STORED"
        assert c.set("q", b"12345") == "STORED"
        assert c.set("q", b"1") == "NOT_STORED"
        assert c.set("other", b"x" * 100) == "STORED"


def test_max_item_size_refuses_small_and_streamed_items(make_server, tmp_path):
    conf = write(tmp_path, "[queue]\nmax_item_size = 100KiB\n")
    s = make_server("-c", conf)
    with s.client() as c:
        assert c.set("q", b"x" * 1024) == "STORED"
        assert c.set("q", b"x" * (100 * 1024 + 1)) == "NOT_STORED"
        big = 1 << 20    # over 256 KiB: streamed, refused before any byte is written
        c.send(b"set q 0 0 %d\r\n" % big + b"y" * big + b"\r\n")
        assert c.readline() == "NOT_STORED"
        assert c.cmd("version").startswith("VERSION")   # its data was skipped
        assert c.stats()["queue_q_items"] == "1"


def test_discard_old_when_full_keeps_the_newest(make_server, tmp_path):
    conf = write(tmp_path, "[queue \"recent\"]\nmax_items = 3\ndiscard_old_when_full = true\n")
    s = make_server("-c", conf)
    with s.client() as c:
        for i in range(6):
            assert c.set("recent", b"i%d" % i) == "STORED"
        assert c.stats()["queue_recent_discarded"] == "3"
        assert [c.get_data("recent") for _ in range(4)] == [b"i3", b"i4", b"i5", None]


def test_discard_never_drops_an_open_item(make_server, tmp_path):
    conf = write(tmp_path, "[queue]\nmax_items = 2\ndiscard_old_when_full = true\n")
    s = make_server("-c", conf)
    with s.client() as h1, s.client() as h2, s.client() as c:
        assert c.set("q", b"a") == "STORED" and c.set("q", b"b") == "STORED"
        assert h1.get_data("q/open") == b"a"
        assert c.set("q", b"c") == "STORED"          # b goes: a is open
        assert h2.get_data("q/open") == b"c"
        assert c.set("q", b"d") == "NOT_STORED"      # both items are open: neither can go
        assert c.stats()["queue_q_discarded"] == "1"
        assert h1.cmd("get q/abort") == "END" and h2.cmd("get q/abort") == "END"
        assert [c.get_data("q") for _ in range(3)] == [b"a", b"c", None]


def test_max_age_caps_every_expiry(make_server, tmp_path):
    conf = write(tmp_path, "[queue \"short\"]\nmax_age = 300ms\n")
    s = make_server("-c", conf)
    with s.client() as c:
        assert c.set("short", b"forever") == "STORED"           # exptime 0
        c.send(b"set short 0 3600 4\r\nhour\r\n")
        assert c.readline() == "STORED"
        assert c.set("long", b"kept") == "STORED"
        # wait until the cap has passed, by the server's own answers
        assert c.get_data("long/t=600") == b"kept"
        assert c.get_data("long/t=600") is None              # 600 ms waited: past 300 ms
        assert c.get_data("short") is None


# --------------------------------------------------------------------------
# Aliases
# --------------------------------------------------------------------------

def test_a_set_to_an_alias_goes_to_every_destination(make_server, tmp_path):
    conf = write(tmp_path, "[alias \"all\"]\ndestination_queues = a, b\n[queue \"b\"]\nmax_items = 1\n")
    s = make_server("-c", conf)
    with s.client() as c:
        c.send(b"set all 5 0 3\r\none\r\n")
        assert c.readline() == "STORED"
        assert c.set("all", b"two") == "NOT_STORED"       # b is full; a took its copy
        c.send(b"get a\r\n")
        assert c.readline() == "VALUE a 5 3" and c.readline() == "one" and c.readline() == "END"
        assert c.get_data("a") == b"two"
        assert c.get_data("b") == b"one" and c.get_data("b") is None
        # an alias is set-only and no queue: get finds nothing, delete and flush do nothing
        assert c.set("all", b"three") == "STORED"
        assert c.get_data("all") is None
        assert c.cmd("delete all") == "DELETED" and c.cmd("flush all") == "END"
        assert c.get_data("a") == b"three"
        assert "queue_all_items" not in c.stats()


def test_a_large_item_to_an_alias_reaches_every_destination(make_server, tmp_path):
    conf = write(tmp_path, "[alias \"all\"]\ndestination_queues = a, b\n")
    s = make_server("-c", conf)
    big = 300 * 1024          # streamed: the copies are links to one file
    with s.client() as c:
        c.send(b"set all 0 0 %d\r\n" % big + b"z" * big + b"\r\n")
        assert c.readline() == "STORED"
        assert c.get_data("a") == b"z" * big
        assert c.get_data("b") == b"z" * big
    s.stop()
    assert not list((s.data / "tmp").iterdir()), "a streamed copy was left in tmp/"


# --------------------------------------------------------------------------
# reload, SIGHUP and dump_config
# --------------------------------------------------------------------------

def dump_config(c, *names):
    """dump_config's answer as {name: {key: (value, where)}}."""
    c.send(("dump_config " + " ".join(names)).strip().encode() + b"\r\n")
    out, cur = {}, None
    while True:
        line = c.readline()
        if line == "END":
            return out
        if line.endswith("{"):
            cur = out.setdefault(line.split("'")[1], {})
        elif line == "}":
            cur = None
        else:
            key, rest = line.strip().split("=", 1)
            value, _, where = rest.partition(" (")
            cur[key] = (value, where.rstrip(")"))


def test_reload_applies_new_limits_to_live_queues(make_server, tmp_path):
    conf = write(tmp_path, "[queue]\nmax_items = 100\n")
    s = make_server("-c", conf)
    with s.client() as c:
        for i in range(3):
            assert c.set("q", b"%d" % i) == "STORED"
        write(tmp_path, "[queue]\nmax_items = 100\n[queue \"q\"]\nmax_items = 3\n")
        assert c.cmd("reload") == "Reloaded config."
        assert c.set("q", b"3") == "NOT_STORED"
        assert dump_config(c, "q")["q"]["max_items"] == ("3", f"{conf}:4")
        assert c.set("other", b"x") == "STORED"


def test_a_bad_file_is_refused_whole_and_the_old_settings_stay(make_server, tmp_path):
    conf = write(tmp_path, "[queue]\nmax_items = 1\n")
    s = make_server("-c", conf)
    with s.client() as c:
        write(tmp_path, "[queue]\nmax_items = 5\nmax_size = huge\n")
        answer = c.cmd("reload")
        assert answer.startswith(f"SERVER_ERROR {conf}:3: max_size"), answer
        assert c.set("q", b"a") == "STORED"
        assert c.set("q", b"b") == "NOT_STORED"      # still max_items = 1
        assert c.cmd("version").startswith("VERSION")


def test_reload_keeps_connections_waiters_and_open_items(make_server, tmp_path):
    conf = write(tmp_path, "[queue]\nmax_items = 10\n")
    s = make_server("-c", conf)
    with s.client() as holder, s.client() as waiter, s.client() as c:
        assert c.set("q", b"held") == "STORED"
        assert holder.get_data("q/open") == b"held"
        waiter.send(b"get w/t=10000\r\n")
        assert c.cmd("version").startswith("VERSION")  # the waiter's request is in
        write(tmp_path, "[queue]\nmax_items = 20\n")
        assert c.cmd("reload") == "Reloaded config."
        assert c.set("w", b"woken") == "STORED"
        assert waiter.readline() == "VALUE w/t=10000 0 5"
        assert waiter.readline() == "woken" and waiter.readline() == "END"
        assert holder.cmd("get q/close") == "END"
        assert c.get_data("q") is None


def test_sighup_reloads(make_server, tmp_path):
    conf = write(tmp_path, "[queue]\nmax_items = 1\n")
    s = make_server("-c", conf)
    with s.client() as c:
        write(tmp_path, "[queue]\nmax_items = 2\n")
        s.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "reloaded" in s.log()), s.log()
        assert c.set("q", b"a") == "STORED" and c.set("q", b"b") == "STORED"
        assert c.set("q", b"c") == "NOT_STORED"


def test_reload_names_server_settings_that_wait_for_a_restart(make_server, tmp_path):
    conf = write(tmp_path, "[server]\nmax_connections = 100\n")
    s = make_server("-c", conf)
    with s.client() as c:
        write(tmp_path, "[server]\nmax_connections = 200\n")
        assert c.cmd("reload") == "Reloaded config."
    assert "max_connections changed" in s.log() and "next start" in s.log(), s.log()


def test_reload_without_a_config_file_is_an_error(make_server):
    s = make_server()
    with s.client() as c:
        assert c.cmd("reload").startswith("SERVER_ERROR no config file")


def test_reload_under_load_loses_nothing_and_drops_no_connection(make_server, tmp_path):
    conf = write(tmp_path, "[queue]\nmax_items = 100000\n")
    s = make_server("-c", conf)
    n = 2000
    errors = []

    def producer():
        try:
            with s.client() as p:
                for i in range(n):
                    if p.set("load", b"%05d" % i) != "STORED":
                        errors.append(i)
        except Exception as e:   # noqa: BLE001 (reported below)
            errors.append(repr(e))

    t = threading.Thread(target=producer)
    t.start()
    with s.client() as c:
        reloads = 0
        while t.is_alive() and reloads < 200:
            write(tmp_path, "[queue]\nmax_items = %d\n" % (100000 + reloads))
            assert c.cmd("reload") == "Reloaded config."
            reloads += 1
        t.join(60)
        assert not errors, errors[:5]
        assert reloads > 0
        assert drain_queue(c, "load", limit=n + 10) == [b"%05d" % i for i in range(n)]


def test_dump_config_shows_each_queue_and_where_its_values_came_from(make_server, tmp_path):
    conf = write(tmp_path,
                 "[queue]\nmax_size = 1MiB\n"
                 "[queue \"jobs.*\"]\nmax_items = 7\n"
                 "[alias \"all\"]\ndestination_queues = a, jobs.x\n")
    s = make_server("-c", conf)
    with s.client() as c:
        assert c.set("jobs.x", b"1") == "STORED" and c.set("plain", b"1") == "STORED"
        d = dump_config(c)
        assert set(d) == {"jobs.x", "plain"}
        assert d["jobs.x"]["section"] == ('[queue "jobs.*"]', "")
        assert d["jobs.x"]["max_items"] == ("7", f"{conf}:4")
        assert d["jobs.x"]["max_size"] == ("1MiB", f"{conf}:2")
        assert d["plain"]["max_items"] == ("unlimited", "default")
        assert d["plain"]["discard_old_when_full"] == ("false", "default")
        named = dump_config(c, "all", "never.made")
        assert named["all"] == {"destination_queues": ("a,jobs.x", "")}
        assert named["never.made"]["max_size"] == ("1MiB", f"{conf}:2")
        assert "queue_never.made_items" not in c.stats()   # dump_config creates nothing


# --------------------------------------------------------------------------
# fsync per queue
# --------------------------------------------------------------------------

def fsyncs(c):
    return int(c.stats()["fsyncs"])


def test_an_always_queue_waits_for_its_fsync_under_a_never_server(make_server, tmp_path):
    conf = write(tmp_path, "[queue \"safe\"]\nfsync = always\n")
    s = make_server("-c", conf, "--fsync", "never")
    with s.client() as c:
        assert c.set("loose", b"x") == "STORED"
        before = fsyncs(c)
        assert c.get_data("loose") == b"x"
        assert fsyncs(c) == before                      # the server's "never"
        assert c.set("safe", b"y") == "STORED"
        assert fsyncs(c) > before                       # answered after its fsync
        n = fsyncs(c)
        assert c.get_data("safe") == b"y"               # the removal too
        assert fsyncs(c) > n


def test_a_never_queue_is_left_out_of_the_periodic_fsync(make_server, tmp_path):
    conf = write(tmp_path, "[queue \"scratch\"]\nfsync = never\n")
    s = make_server("-c", conf, "--fsync", "50ms")
    with s.client() as c:
        assert c.set("scratch", b"x") == "STORED"
        assert c.get_data("none/t=150") is None          # three periods pass
        before = fsyncs(c)
        for i in range(20):
            assert c.set("scratch", b"%d" % i) == "STORED"
        assert c.get_data("none/t=300") is None
        assert fsyncs(c) == before, "the periodic fsync synced a queue whose fsync is never"
        assert c.set("kept", b"x") == "STORED"
        assert wait_until(lambda: fsyncs(c) > before)    # the others still are
        c.send(b"set scratch/sync 0 0 1\r\nz\r\n")       # /sync still means what it says
        assert c.readline() == "STORED"


def test_a_queue_interval_drives_the_periodic_fsync(make_server, tmp_path):
    conf = write(tmp_path, "[queue \"q\"]\nfsync = 100ms\n")
    s = make_server("-c", conf, "--fsync", "never")
    with s.client() as c:
        before = fsyncs(c)
        assert c.set("q", b"x") == "STORED"
        assert wait_until(lambda: fsyncs(c) > before)
        assert dump_config(c, "q")["q"]["fsync"] == ("100ms", f"{conf}:2")
        assert dump_config(c, "other")["other"]["fsync"] == ("server", "default")


def test_settings_and_limits_hold_after_a_restart(make_server, tmp_path):
    conf = write(tmp_path, "[queue \"q\"]\nmax_items = 2\n[alias \"both\"]\ndestination_queues = q, r\n")
    s = make_server("-c", conf)
    with s.client() as c:
        assert c.set("both", b"1") == "STORED"
    s.stop()
    s.start()
    with s.client() as c:
        assert c.set("q", b"2") == "STORED"
        assert c.set("q", b"3") == "NOT_STORED"
        assert c.set("both", b"4") == "NOT_STORED"     # q is full; r takes its copy
        assert [c.get_data("r") for _ in range(3)] == [b"1", b"4", None]


def test_discard_drops_nothing_for_a_set_that_cannot_fit_anyway(make_server, tmp_path):
    conf = write(tmp_path, "[queue]\nmax_size = 10\ndiscard_old_when_full = true\n")
    s = make_server("-c", conf)
    with s.client() as c:
        for i in range(5):
            assert c.set("q", b"%02d" % i) == "STORED"
        assert c.set("q", b"x" * 11) == "NOT_STORED"       # larger than max_size itself
        st = c.stats()
        assert st["queue_q_items"] == "5" and st["queue_q_discarded"] == "0"


def test_expire_to_queue_naming_an_alias_is_refused(tmp_path):
    conf = write(tmp_path, "[alias \"all\"]\ndestination_queues = a\n[queue \"q\"]\nexpire_to_queue = all\n")
    rc, out, err = run_darner(["-c", str(conf), "--port", "0", "--data", str(tmp_path / "data")], cwd=tmp_path)
    assert rc == 2 and f"{conf}:4: expire_to_queue names the alias 'all'" in err, err


def test_a_file_with_a_byte_order_mark_loads(make_server, tmp_path):
    conf = tmp_path / "bom.conf"
    conf.write_bytes(b"\xef\xbb\xbf[server]\ncompat = kestrel\n")
    s = make_server("-c", conf)
    with s.client() as c:
        assert c.cmd("flush_all") == "Flushed all queues."
