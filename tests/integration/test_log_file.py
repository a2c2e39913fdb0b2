"""--log-file (docs/configuration.md, `log_file`): the log lines are appended
to the file instead of stderr (a Windows service's stderr goes nowhere); a
file that cannot be opened stops the start, naming it, before the data
folder is touched; SIGHUP opens it again, so a rotated log goes on in a new
file."""

import signal

from harness import run_darner, wait_until


def read(path):
    return path.read_text() if path.exists() else ""


def test_log_lines_go_to_the_file_not_stderr(make_server, tmp_path):
    log = tmp_path / "darner.log"
    s = make_server("--log-file", log)
    with s.client() as c:
        assert c.set("q", "a") == "STORED"
    assert f"serving on 127.0.0.1:{s.port}" in read(log)
    s.stop()
    lines = read(log).splitlines()
    assert lines[-1].endswith(" info stopped"), lines[-3:]
    assert any(line.endswith(" info every journal synced") for line in lines)
    assert "serving on" not in s.log(), "log lines still went to stderr"


def test_a_restart_appends_to_the_file(make_server, tmp_path):
    log = tmp_path / "darner.log"
    log.write_text("kept from before\n")
    s = make_server("--log-file", log)
    s.restart()
    text = read(log)
    assert text.startswith("kept from before\n")
    assert text.count("serving on") == 2


def test_a_log_file_that_cannot_be_opened_refuses_to_start(tmp_path):
    bad = tmp_path / "no-such-folder" / "darner.log"
    rc, out, err = run_darner(["--port", "0", "--data", str(tmp_path / "data"), "--log-file", str(bad)])
    assert rc == 2, (rc, out, err)
    assert str(bad) in err and "log" in err, err
    assert not (tmp_path / "data").exists(), "the data folder was made although the start was refused"


def test_the_log_file_setting_in_a_config_file(make_server, tmp_path):
    log = tmp_path / "from-config.log"
    conf = tmp_path / "darner.conf"
    conf.write_text(f"[server]\nlog_file = {log}\n")
    s = make_server("-c", conf)
    assert f"serving on 127.0.0.1:{s.port}" in read(log)


def test_sighup_opens_the_file_again_after_a_rotation(make_server, tmp_path):
    log = tmp_path / "darner.log"
    rotated = tmp_path / "darner.log.1"
    s = make_server("--log-file", log)
    log.rename(rotated)  # as logrotate does, then it signals
    s.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: "opened again" in read(log)), read(rotated)
    assert "serving on" in read(rotated) and "serving on" not in read(log)
    s.stop()
    assert read(log).splitlines()[-1].endswith(" info stopped")


def test_the_reload_command_opens_the_file_again_too(make_server, tmp_path):
    """Where there is no SIGHUP (Windows), log rotation sends `reload`."""
    log = tmp_path / "darner.log"
    rotated = tmp_path / "darner.log.1"
    s = make_server("--log-file", log)
    log.rename(rotated)
    with s.client() as c:
        c.cmd("reload")  # no config file: the answer says so; the log is opened again all the same
    assert wait_until(lambda: "opened again" in read(log)), read(rotated)
    s.stop()
    assert read(log).splitlines()[-1].endswith(" info stopped")
