"""sd_notify (docs/operations.md, "Running as a service"): under a Type=notify
systemd unit ($NOTIFY_SOCKET set) darner says READY=1 once every listener
accepts (its port file is written by then), RELOADING=1 and then READY=1
around a SIGHUP reload, refused or not, and STOPPING=1 when it stops, each
with a STATUS= line. Here the test plays systemd: it binds the datagram
socket and reads what comes."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import DARNER_BIN, START_DEADLINE, STOP_DEADLINE, Client, wait_until


class Darner:
    """darner on a private folder with NOTIFY_SOCKET pointing at our socket."""

    def __init__(self, tmp_path, *args):
        # a short folder: a unix socket path has at most 107 bytes
        self.sockdir = Path(tempfile.mkdtemp(prefix="dn-notify-"))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.sockdir / "notify"))
        self.sock.settimeout(START_DEADLINE)
        self.port_file = tmp_path / "port"
        self.log = tmp_path / "stderr.log"
        env = dict(os.environ, NOTIFY_SOCKET=str(self.sockdir / "notify"))
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(
                [DARNER_BIN, "--port", "0", "--port-file", str(self.port_file), "--data", str(tmp_path / "data"),
                 "--listen", "127.0.0.1", *args],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=tmp_path)

    def message(self):
        """The next message, as {field: value}."""
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            raise AssertionError(f"no sd_notify message within {START_DEADLINE}s\n{self.log.read_text()}")
        return dict(line.split("=", 1) for line in data.decode().splitlines() if line)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.sock.close()
        shutil.rmtree(self.sockdir, ignore_errors=True)


@pytest.fixture
def darner(tmp_path):
    made = []

    def start(*args):
        d = Darner(tmp_path, *args)
        made.append(d)
        return d

    yield start
    for d in made:
        d.close()


def test_ready_comes_once_every_listener_accepts(darner):
    d = darner("--admin-listen", "0")
    m = d.message()
    assert m["READY"] == "1", m
    # by then the port file is written and the port answers
    port = int(d.port_file.read_text())
    assert m["STATUS"].startswith(f"serving on 127.0.0.1:{port}, data in "), m
    with Client(port) as c:
        assert c.cmd("version").startswith("VERSION")


def test_sighup_says_reloading_then_ready_and_a_refused_reload_too(darner, tmp_path):
    conf = tmp_path / "darner.conf"
    conf.write_text("[queue]\nmax_items = 1\n")
    d = darner("-c", conf)
    assert d.message()["READY"] == "1"

    conf.write_text("[queue]\nmax_items = 2\n")
    d.proc.send_signal(signal.SIGHUP)
    m = d.message()
    assert m["RELOADING"] == "1" and int(m["MONOTONIC_USEC"]) > 0, m
    m = d.message()
    assert m["READY"] == "1" and m["STATUS"].endswith("; reloaded"), m

    conf.write_text("[queue]\nmax_items = lots\n")
    d.proc.send_signal(signal.SIGHUP)
    assert d.message()["RELOADING"] == "1"
    m = d.message()
    assert m["READY"] == "1" and "a reload was refused: " in m["STATUS"] and "max_items" in m["STATUS"], m


def test_sigterm_says_stopping_and_exits_cleanly(darner):
    d = darner()
    assert d.message()["READY"] == "1"
    d.proc.send_signal(signal.SIGTERM)
    m = d.message()
    assert m["STOPPING"] == "1" and m["STATUS"].startswith("stopping"), m
    assert d.proc.wait(timeout=STOP_DEADLINE) == 0, d.log.read_text()


def test_a_notify_socket_nobody_reads_changes_nothing(tmp_path):
    """NOTIFY_SOCKET naming nothing (systemd gone, a stale environment): the
    messages are dropped and the server serves as usual."""
    port_file = tmp_path / "port"
    env = dict(os.environ, NOTIFY_SOCKET=str(tmp_path / "nobody-here"))
    p = subprocess.Popen([DARNER_BIN, "--port", "0", "--port-file", str(port_file), "--data", str(tmp_path / "data"),
                          "--listen", "127.0.0.1"], stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        assert wait_until(port_file.exists, timeout=START_DEADLINE)
        assert wait_until(lambda: port_file.read_text().strip(), timeout=START_DEADLINE)
        with Client(int(port_file.read_text())) as c:
            assert c.cmd("version").startswith("VERSION")
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=STOP_DEADLINE) == 0
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
