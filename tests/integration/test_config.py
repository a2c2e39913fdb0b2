"""The config file (-c FILE / --config FILE): [server] settings under the
command line's flags, [queue] sections and their inheritance, and mistakes
refused with file:line (docs/configuration.md)."""

import pytest

from harness import run_darner


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
