#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_journal: small real journals made by the server.

Usage: tests/fuzz/make_journal_seeds.py [DARNER_BIN] [OUT_DIR]
(defaults: build/darner, tests/fuzz/corpus/journal).

Each scenario runs the real server on a fresh folder, talks to it, stops it
(cleanly or with SIGKILL), and packs the queue's segment and current ack file
into fuzz_journal's input layout:

    byte 0      mode: 1 = fix checksums, 2 = write the ack file
    bytes 1..4  segment length, little-endian
    then        segment bytes, then ack bytes

Every journal is written twice: with its ack file (mode 2) and without
(mode 0, where the target checks that exactly the valid prefix comes back).
"""

import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def pack(mode, seg, ack):
    return bytes([mode]) + struct.pack("<I", len(seg)) + seg + ack


def current_acks(qdir):
    """Bytes of the ack file with the higher generation (b"" if none)."""
    best, best_gen = b"", -1
    for name in ("acks.0", "acks.1"):
        p = qdir / name
        if not p.exists():
            continue
        data = p.read_bytes()
        gen = struct.unpack_from("<Q", data, 16)[0] if len(data) >= 64 else 0
        if gen > best_gen:
            best, best_gen = data, gen
    return best


class Srv:
    def __init__(self, binary, data, *args):
        self.binary, self.data, self.args = binary, data, args
        self.proc = None

    def start(self):
        port_file = Path(self.data).parent / "port"
        if port_file.exists():
            port_file.unlink()
        self.proc = subprocess.Popen([self.binary, "--port", "0", "--port-file", str(port_file),
                                      "--data", str(self.data), "--log-level", "warn", *self.args],
                                     stdin=subprocess.DEVNULL)
        for _ in range(1000):
            if port_file.exists() and re.fullmatch(r"\d+\s*", port_file.read_text()):
                self.port = int(port_file.read_text())
                break
            time.sleep(0.01)
        else:
            raise SystemExit("server did not start")
        self.sock = socket.create_connection(("127.0.0.1", self.port))
        self.buf = b""
        return self

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def cmd(self, text, data=None):
        """Sends a request; returns every answer line up to its last one."""
        payload = text.encode() + b"\r\n"
        if data is not None:
            payload += data + b"\r\n"
        self.sock.sendall(payload)
        out = [self.line()]
        while out[-1].startswith(b"VALUE"):
            n = int(out[-1].split()[3])
            while len(self.buf) < n + 2:
                self.buf += self.sock.recv(65536)
            self.buf = self.buf[n + 2:]
            out.append(self.line())
        return out

    def set(self, q, data, flags=0, exptime=0):
        assert self.cmd(f"set {q} {flags} {exptime} {len(data)}", data) == [b"STORED"]

    def stop(self, kill=False):
        self.sock.close()
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.proc.wait()


def scenario_files(binary, name, actions, *args, kill=False, tail_seg=False):
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        s = Srv(binary, data, *args).start()
        actions(s)
        s.stop(kill=kill)
        qdirs = [d for d in data.iterdir() if d.name.startswith("q-")]
        assert len(qdirs) == 1, f"{name}: expected one queue folder, got {qdirs}"
        segs = sorted(qdirs[0].glob("seg-*.dat"))
        seg = (segs[-1] if tail_seg else segs[0]).read_bytes()
        return seg, current_acks(qdirs[0])


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else str(REPO / "build" / "darner")
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else REPO / "tests" / "fuzz" / "corpus" / "journal"
    out.mkdir(parents=True, exist_ok=True)

    def empty_after_get(s):
        s.set("q", b"hello")
        assert s.cmd("get q")[-1] == b"END"

    def five_items(s):
        for i in range(5):
            s.set("q", b"item %d" % i, flags=i)

    def mixed_kill(s):
        for i in range(10):
            s.set("q", b"x" * (i * 7), flags=1000 + i)
        for _ in range(3):
            s.cmd("get q")
        s.cmd("get q/open")          # left open: an OPEN record, live after the kill

    def open_close_abort(s):
        for i in range(6):
            s.set("q", b"job %d" % i)
        s.cmd("get q/open")
        s.cmd("get q/close/open")    # CONFIRM, then OPEN
        s.cmd("get q/abort")         # given back (in memory only)
        s.cmd("get q/open")
        s.cmd("get q/close")

    def flushed(s):
        for i in range(4):
            s.set("q", b"gone %d" % i)
        s.cmd("flush q")
        s.set("q", b"after the flush")

    def expiring(s):
        s.set("q", b"expired", exptime=-1)
        s.set("q", b"later", exptime=3600)
        s.set("q", b"absolute", exptime=4000000000)
        s.set("q", b"never")

    def blob(s):
        s.set("q", b"small before")
        s.set("q", bytes(range(256)) * 1200)   # 300 KiB: a blob record
        s.set("q", b"small after")

    def moved(s):
        # An old open item pins segment 1 while the cursor runs ahead: it is
        # moved forward, and the tail segment holds the moved copy.
        s.set("q", b"pinned")
        s.cmd("get q/open")
        for i in range(60):
            s.set("q", b"m" * 200)
        for i in range(50):
            s.cmd("get q")

    scenarios = [
        ("empty_after_get", empty_after_get, (), False, False),
        ("five_items", five_items, (), False, False),
        ("mixed_kill", mixed_kill, (), True, False),
        ("open_close_abort", open_close_abort, (), True, False),
        ("flushed", flushed, (), False, False),
        ("expiring", expiring, (), False, False),
        ("blob", blob, (), False, False),
        ("moved_tail", moved, ("--segment-size", "4096"), True, True),
    ]
    for name, actions, args, kill, tail in scenarios:
        seg, ack = scenario_files(binary, name, actions, *args, kill=kill, tail_seg=tail)
        (out / f"{name}.acks").write_bytes(pack(2, seg, ack))
        (out / f"{name}.noacks").write_bytes(pack(0, seg, b""))
        print(f"{name}: segment {len(seg)} bytes, acks {len(ack)} bytes")


if __name__ == "__main__":
    main()
