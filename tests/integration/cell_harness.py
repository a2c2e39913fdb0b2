"""A local cell of darner members for the cell tests (docs/cluster.md).

Each member is the real binary with --cluster-id and --cluster-members, on
127.0.0.1 ports found free when the cell is made, with its own data folder.
A member that exits with 75 (it stopped leading) is started again, as the
systemd unit and scripts/cell do, by a watcher thread. Which member leads
is learnt from the leader itself: `stats` answered through any member is
the leader's, and its pid names the member.

Cell(..., proxied=True) puts a net_proxy.RaftProxy in front of each
member's Raft port: the member listens on 127.0.0.2 at its Raft port
(--cluster-bind) and the others dial 127.0.0.1 at that port, its proxy, so
every message to member i goes through cell.proxy(i), which the test can
cut, heal or slow down (the network-fault tests).
"""

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

from harness import DARNER_BIN, Client, ProtocolError, wait_until
from net_proxy import RaftProxy

DEMOTED = 75


def free_ports(n):
    """n distinct ports that were free on 127.0.0.1 a moment ago."""
    socks, ports = [], []
    try:
        while len(ports) < n:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


class Member:
    def __init__(self, cell, mid, raft_port, port, proxied=False):
        self.cell = cell
        self.id = mid
        self.raft_port = raft_port  # the one the others dial (its proxy's, when proxied)
        self.proxied = proxied  # it listens on 127.0.0.2 behind a proxy on 127.0.0.1 (net_proxy)
        self.port = port
        self.proxy = None
        self.data = cell.workdir / f"data-{mid}"
        self.proc = None
        self.starts = 0
        self.wanted = False  # the test wants it running (the watcher restarts it after a 75)
        self.exits = []      # exit codes seen
        self.log_path = None

    def argv(self):
        bind = ["--cluster-bind", f"127.0.0.2:{self.raft_port}"] if self.proxied else []
        return [DARNER_BIN, "--data", str(self.data), "--cluster-id", str(self.id),
                "--cluster-members", self.cell.members_arg(), *bind, *self.cell.extra_args]

    def start(self):
        self.starts += 1
        self.log_path = self.cell.workdir / f"member-{self.id}.{self.starts}.log"
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT)
        self.wanted = True
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        """SIGKILL, and not started again."""
        self.wanted = False
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.exits.append(self.proc.wait())

    def stop(self, timeout=20.0):
        """SIGTERM; returns the exit code."""
        self.wanted = False
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"member {self.id} did not stop within {timeout}s\n{self.log()}")
        self.exits.append(rc)
        return rc

    def log(self):
        text = ""
        for n in range(1, self.starts + 1):
            p = self.cell.workdir / f"member-{self.id}.{n}.log"
            if p.exists():
                text += f"--- member {self.id}, start {n} ---\n" + p.read_bytes().decode("utf-8", "replace")
        return text

    def client(self, timeout=10.0):
        return Client(self.port, timeout=timeout)


class Cell:
    def __init__(self, workdir, n=3, extra_args=(), proxied=False):
        self.workdir = Path(workdir)
        self.extra_args = [str(a) for a in extra_args]
        ports = free_ports(2 * n)
        self.members = [Member(self, i + 1, ports[2 * i], ports[2 * i + 1], proxied=proxied) for i in range(n)]
        if proxied:
            # the others dial 127.0.0.1:port, the proxy; the member listens
            # on 127.0.0.2:port behind it (net_proxy)
            for m in self.members:
                m.proxy = RaftProxy(m.raft_port, m.raft_port, name=f"proxy-{m.id}", target_host="127.0.0.2")
        self._watch_stop = threading.Event()
        self._lock = threading.Lock()
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self.restarts = 0

    def members_arg(self):
        return ",".join(f"{m.id}@127.0.0.1:{m.raft_port}:{m.port}" for m in self.members)

    def member(self, mid):
        return self.members[mid - 1]

    def proxy(self, mid):
        return self.member(mid).proxy

    def proxies(self):
        return [m.proxy for m in self.members if m.proxy is not None]

    def start(self):
        for p in self.proxies():
            p.start()
        for m in self.members:
            m.start()
        self._watcher.start()
        return self

    def _watch(self):
        while not self._watch_stop.wait(0.02):
            with self._lock:
                for m in self.members:
                    if m.wanted and m.proc is not None and m.proc.poll() is not None:
                        rc = m.proc.returncode
                        m.exits.append(rc)
                        if rc == DEMOTED:
                            self.restarts += 1
                            m.start()
                        else:
                            m.wanted = False

    def restart(self, mid):
        with self._lock:
            self.member(mid).start()

    def kill(self, mid):
        with self._lock:
            self.member(mid).kill()

    def close(self):
        """Stops every member; returns complaints (members that died on their own)."""
        self._watch_stop.set()
        if self._watcher.is_alive():
            self._watcher.join()
        bad = []
        try:
            for m in self.members:
                if m.proc is None:
                    continue
                died = m.wanted and m.proc.poll() is not None and m.proc.returncode not in (0, DEMOTED)
                if died:
                    bad.append(f"member {m.id} died with {m.proc.returncode}\n{m.log()}")
                if m.proc.poll() is None:
                    m.stop()
        finally:
            for p in self.proxies():
                p.close()
        return bad

    # -- asking the cell -----------------------------------------------
    def leader_pid(self, via, timeout=2.0):
        """The pid of the process that answers `stats` through member via, or None."""
        try:
            with Client(self.member(via).port, timeout=timeout) as c:
                c.send(b"stats\r\n")
                pid = None
                while True:
                    line = c.readline()
                    if line.startswith("SERVER_ERROR"):
                        return None
                    if line == "END":
                        return pid
                    parts = line.split()
                    if len(parts) == 3 and parts[1] == "pid":
                        pid = int(parts[2])
        except (OSError, ProtocolError, AssertionError):
            return None

    def leader(self, timeout=15.0):
        """The member that leads and serves, once every running member agrees."""
        def find():
            for m in self.members:
                if not m.running():
                    continue
                pid = self.leader_pid(m.id)
                if pid is None:
                    return None
                for l in self.members:
                    if l.proc is not None and l.proc.pid == pid and l.running():
                        return l
                return None
            return None
        found = wait_until(find, timeout=timeout, interval=0.05)
        assert found, "no leader within %ss\n%s" % (timeout, "\n".join(m.log() for m in self.members))
        return found

    def followers(self):
        lead = self.leader()
        return [m for m in self.members if m is not lead and m.running()]

    def logs(self):
        return "\n".join(m.log() for m in self.members)


def set_item(port, q, data, timeout=10.0):
    """One set on a fresh connection: the answer line (or the error's text)."""
    try:
        with Client(port, timeout=timeout) as c:
            c.send(b"set %s 0 0 %d\r\n%s\r\n" % (q.encode(), len(data), data))
            return c.readline()
    except (OSError, ProtocolError, AssertionError) as e:
        return f"error: {e}"


def get_item(port, q, timeout=10.0):
    """One plain get on a fresh connection: the value, None when empty."""
    with Client(port, timeout=timeout) as c:
        return c.get_data(q)
