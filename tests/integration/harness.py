"""Integration-test harness: start the real darner binary and talk to it.

The server under test is the binary named by $DARNER_BIN (CTest sets it),
or <repo>/build/darner.  Every server gets its own temporary folder, listens
on 127.0.0.1 on a port it picks itself (--port 0) and tells us that port
through --port-file, so there is no sleeping and no port race.
"""

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DARNER_BIN = os.environ.get("DARNER_BIN") or str(REPO / "build" / "darner")

# Under Wine (tests/windows/run sets DARNER_WINE=1) a clean stop is SIGINT,
# which Wine hands to the program as Ctrl-C; SIGTERM would end the process
# at once, as TerminateProcess does. Starting takes longer there too.
UNDER_WINE = os.environ.get("DARNER_WINE") == "1"
STOP_SIGNAL = signal.SIGINT if UNDER_WINE else signal.SIGTERM

START_DEADLINE = 30.0 if UNDER_WINE else 10.0   # seconds for the port file to appear
STOP_DEADLINE = 10.0    # seconds for a clean exit after STOP_SIGNAL
SOCKET_TIMEOUT = 10.0   # seconds any single read may block
POLL = 0.01             # seconds between polls of a file or a stat


class _SilentExit(Exception):
    """Under Wine: the process ended with status 1 before printing anything."""


class ProtocolError(AssertionError):
    """The server answered something the helper did not expect."""


def wait_until(predicate, timeout=5.0, interval=POLL):
    """Poll predicate() until it is true or timeout passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def listing(root, exclude=()):
    """Every path under root (relative, sorted), skipping the subtrees in exclude."""
    root = Path(root)
    exclude = [Path(e) for e in exclude]
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        d = Path(dirpath)
        dirnames[:] = [n for n in dirnames if d / n not in exclude]
        for n in dirnames + filenames:
            if d / n in exclude:
                continue
            out.append(str((d / n).relative_to(root)))
    return sorted(out)


def run_darner(args, timeout=10.0, cwd=None):
    """Run darner to completion (for --help, --version, bad flags).

    Returns (returncode, stdout, stderr).  A server that starts serving instead
    of exiting is killed after timeout and reported as returncode None.
    """
    p = subprocess.Popen([DARNER_BIN, *args], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        rc = None
    return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")



def rss_anon_kib(pid):
    """The process's own memory (RssAnon), in KiB: not the page cache."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError("no RssAnon line")


def sanitized(binary):
    """ASan keeps freed memory in a quarantine and TSan has shadow memory: a
    sanitizer build's RssAnon says nothing about the server's own use, so
    memory bounds are not asserted on one."""
    with open(binary, "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data


def thread_sanitized(binary):
    """A TSan build: the cell tests skip on one (docs/hardening.md: libraft's
    files, opened on libuv's pool and closed by libuv unseen, make TSan report
    every later use of their descriptor numbers as a race)."""
    with open(binary, "rb") as f:
        return b"__tsan_init" in f.read()


class Server:
    """One darner process on a private folder.

    workdir: a fresh folder (pytest tmp_path); data lives in workdir/data
    unless data= is given.  extra_args go after the standard flags.
    port: the --port value (0 = free port).  short: use -p/-d instead of
    --port/--data.
    """

    def __init__(self, workdir, extra_args=(), data=None, port=0, short=False):
        self.workdir = Path(workdir)
        self.data = Path(data) if data is not None else self.workdir / "data"
        self.extra_args = [str(a) for a in extra_args]
        self.requested_port = port
        self.short = short
        self.cwd = self.workdir / "cwd"
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.proc = None
        self.port = None
        self.starts = 0
        self.stopped_by_test = False
        self.port_file = None
        self.log_path = None
        self.out_path = None

    # -- lifecycle -------------------------------------------------------
    def argv(self):
        port_flag, data_flag = ("-p", "-d") if self.short else ("--port", "--data")
        return [DARNER_BIN, port_flag, str(self.requested_port),
                "--port-file", str(self.port_file),
                data_flag, str(self.data),
                "--listen", "127.0.0.1", *self.extra_args]

    def start(self):
        # Under Wine, a program now and then never runs: the process exits
        # at once with status 1 and prints nothing (seen in 2 of about 1,200
        # starts in CI, never in 60 starts alone). darner itself never exits
        # without saying why, so only that case is tried again, at most twice.
        tries = 3 if UNDER_WINE else 1
        for attempt in range(1, tries + 1):
            try:
                return self._start_once()
            except _SilentExit:
                print(f"harness: wine started nothing (attempt {attempt} of {tries})", file=sys.stderr)
        raise AssertionError(f"darner exited with 1, printing nothing, {tries} times\nargv: {self.argv()}")

    def _start_once(self):
        assert self.proc is None or self.proc.poll() is not None, "server already running"
        self.starts += 1
        n = self.starts
        self.port_file = self.workdir / f"port.{n}"
        self.log_path = self.workdir / f"stderr.{n}.log"
        self.out_path = self.workdir / f"stdout.{n}.log"
        self.stopped_by_test = False
        self.port = None
        with open(self.log_path, "wb") as err, open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, cwd=self.cwd)
        deadline = time.monotonic() + START_DEADLINE
        while True:
            port = self._read_port_file()
            if port is not None:
                self.port = port
                return self
            rc = self.proc.poll()
            if rc is not None and UNDER_WINE and rc == 1 and not self.log():
                raise _SilentExit()
            if rc is not None:
                raise AssertionError(
                    f"darner exited with {rc} before writing its port file\n"
                    f"argv: {self.argv()}\nstderr:\n{self.log()}")
            if time.monotonic() >= deadline:
                self.kill()
                raise AssertionError(
                    f"darner wrote no port file within {START_DEADLINE}s\n"
                    f"argv: {self.argv()}\nstderr:\n{self.log()}")
            time.sleep(POLL)

    def _read_port_file(self):
        try:
            text = self.port_file.read_text()
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        # one port a line, one line a listener (--listen A,B): the first is the main one
        m = re.fullmatch(r"\s*(\d+)\s*(?:\n\d+\s*)*", text)
        if not m:
            return None
        port = int(m.group(1))
        return port if 0 < port < 65536 else None

    def stop(self, sig=STOP_SIGNAL, timeout=STOP_DEADLINE):
        """Signal the server, wait for it, assert a clean exit 0; returns the code."""
        assert self.proc is not None
        self.stopped_by_test = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"darner did not exit within {timeout}s of {sig!r}\n"
                                 f"stderr:\n{self.log()}")
        assert rc == 0, f"darner exited with {rc} after {sig!r}\nstderr:\n{self.log()}"
        return rc

    def kill(self):
        """SIGKILL: the crash the durability promises are about."""
        if self.proc is None:
            return
        self.stopped_by_test = True
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def restart(self):
        """Start again on the same data folder (stopping cleanly first if still running)."""
        if self.proc is not None and self.proc.poll() is None:
            self.stop()
        return self.start()

    def cleanup(self):
        """Fixture finalizer: never leave a process behind.  Returns a complaint
        (str) if the server had died on its own, else None."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(STOP_SIGNAL)
            try:
                self.proc.wait(timeout=STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            return None
        if not self.stopped_by_test:
            return f"darner died on its own with exit code {rc}\nstderr:\n{self.log()}"
        return None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    # -- helpers ---------------------------------------------------------
    def log(self):
        """Everything the current (or last) process wrote to stderr and stdout."""
        text = ""
        for p in (self.log_path, self.out_path):
            if p is not None and p.exists():
                text += p.read_bytes().decode("utf-8", "replace")
        return text

    def client(self, timeout=SOCKET_TIMEOUT):
        return Client(self.port, timeout=timeout)


def _b(x):
    if isinstance(x, bytes):
        return x
    return str(x).encode("utf-8")


class Client:
    """A raw memcache-text-protocol client on one TCP connection."""

    def __init__(self, port, timeout=SOCKET_TIMEOUT, host="127.0.0.1"):
        self.port = port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    # -- raw I/O ---------------------------------------------------------
    def send(self, data):
        self.sock.sendall(_b(data))

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def readline_bytes(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def readline(self):
        """One reply line without its CRLF, as str (latin-1, so every byte survives)."""
        return self.readline_bytes().decode("latin-1")

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def pending(self, timeout=0.0):
        """True if the server has sent something not yet read (or closed)."""
        if self.buf:
            return True
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)

    def expect_closed(self, timeout=SOCKET_TIMEOUT):
        """Assert the server closes this connection (EOF or reset), discarding data."""
        deadline = time.monotonic() + timeout
        self.buf = b""
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.sock], [], [], max(0.0, deadline - time.monotonic()))
            if not r:
                break
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                return
            if not chunk:
                return
        raise AssertionError("server did not close the connection")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- commands --------------------------------------------------------
    def cmd(self, line):
        """Send one request line, return the first reply line."""
        self.send(_b(line) + b"\r\n")
        return self.readline()

    def set(self, q, data, flags=0, exptime=0, noreply=False):
        data = _b(data)
        header = b"set %s %d %d %d" % (_b(q), flags, exptime, len(data))
        if noreply:
            self.send(header + b" noreply\r\n" + data + b"\r\n")
            return None
        self.send(header + b"\r\n" + data + b"\r\n")
        return self.readline()

    def read_values(self):
        """Read VALUE blocks up to END; returns [(key, flags, data)]."""
        items = []
        while True:
            line = self.readline_bytes()
            if line == b"END":
                return items
            parts = line.split(b" ")
            if parts[0] != b"VALUE" or len(parts) not in (4, 5):
                raise ProtocolError(f"expected VALUE or END, got {line!r}")
            n = int(parts[3])
            data = self.read_exact(n)
            trailer = self.read_exact(2)
            if trailer != b"\r\n":
                raise ProtocolError(f"data of {n} bytes not followed by CRLF: {trailer!r}")
            items.append((parts[1].decode("latin-1"), int(parts[2]), data))

    def get_multi(self, keys, command="get"):
        """`get k1 k2 ...`; returns [(key as echoed, flags, data)]."""
        if isinstance(keys, (str, bytes)):
            keys = [keys]
        self.send(_b(command) + b" " + b" ".join(_b(k) for k in keys) + b"\r\n")
        return self.read_values()

    def get_full(self, key, command="get"):
        """(echoed key, flags, data) or None."""
        items = self.get_multi([key], command)
        if len(items) > 1:
            raise ProtocolError(f"one key asked, {len(items)} items answered")
        return items[0] if items else None

    def get(self, key, command="get"):
        """(flags, data) or None."""
        item = self.get_full(key, command)
        return None if item is None else (item[1], item[2])

    def get_data(self, key):
        """Just the data, or None."""
        item = self.get(key)
        return None if item is None else item[1]

    def stats(self):
        self.send(b"stats\r\n")
        out = {}
        while True:
            line = self.readline()
            if line == "END":
                return out
            parts = line.split(" ", 2)
            if parts[0] != "STAT" or len(parts) < 3:
                raise ProtocolError(f"expected STAT or END, got {line!r}")
            out[parts[1]] = parts[2]

    def stat(self, name, default=None):
        return self.stats().get(name, default)


def drain_queue(client, q, limit=10000):
    """Plain-get every item of q (bounded); returns the list of data."""
    out = []
    for _ in range(limit):
        d = client.get_data(q)
        if d is None:
            return out
        out.append(d)
    raise AssertionError(f"queue {q} did not empty after {limit} gets")


# -- fault injection (build/darner-faulty) ---------------------------------

DARNER_FAULTY_BIN = os.environ.get("DARNER_FAULTY_BIN") or str(REPO / "build" / "darner-faulty")


class FaultyServer(Server):
    """A Server running build/darner-faulty ($DARNER_FAULTY_BIN).

    fault_dir is the control folder ($DARNER_FAULT_DIR of the process): a file
    <fault_dir>/<call> (pwrite, fsync, open, ...) holding an errno name makes
    that journal call fail; see tests/fault/faulty_main.c.  Use fault(call,
    name) and clear(call) to switch faults while the server runs.
    """

    def __init__(self, workdir, extra_args=(), data=None, fault_dir=None, **kw):
        super().__init__(workdir, extra_args, data=data, **kw)
        self.fault_dir = Path(fault_dir) if fault_dir is not None else self.workdir / "faults"
        self.fault_dir.mkdir(parents=True, exist_ok=True)

    def argv(self):
        return [DARNER_FAULTY_BIN, *super().argv()[1:]]

    def start(self):
        old = os.environ.get("DARNER_FAULT_DIR")
        os.environ["DARNER_FAULT_DIR"] = str(self.fault_dir)
        try:
            return super().start()
        finally:
            if old is None:
                os.environ.pop("DARNER_FAULT_DIR", None)
            else:
                os.environ["DARNER_FAULT_DIR"] = old

    def fault(self, call, value="EIO"):
        """Make `call` fail with errno `value` (or, for short/slow_fsync, switch it on)."""
        p = self.fault_dir / call
        tmp = self.fault_dir / f".{call}.tmp"
        tmp.write_text(str(value))
        os.replace(tmp, p)   # atomic: the server never reads a half-written name

    def clear(self, call=None):
        """Remove one control file, or all of them."""
        names = [call] if call is not None else [p.name for p in self.fault_dir.iterdir()]
        for n in names:
            try:
                (self.fault_dir / n).unlink()
            except FileNotFoundError:
                pass
