"""A small TCP proxy in front of a cell member's Raft port (network faults).

libraft's TCP transport is one-way per connection: a member that has
something to send to member i dials i's Raft address and writes; i only
reads. So proxy i, listening on the address the others dial for i and
forwarding to the port i really listens on (--cluster-bind), carries every
message *to* i, and the first bytes of each connection are libraft's
handshake (protocol 1, the sender's id, its address: little-endian
uint64s), which names the sender. The test controls the proxy:

- cut(sources=None, mode="close"): the links from those senders (every
  sender by default) are cut. "close": existing connections are closed and
  new ones closed as soon as their handshake names a cut sender (the
  sender sees errors and reconnects). "blackhole": connections stay open and
  everything they carry is dropped (the sender sees nothing, as with a
  partition that loses packets); they are closed at the heal, since a TCP
  stream cannot go on after bytes were lost from its middle.
- heal(): every link carries again.
- set_delay(low, high=None): every chunk is handed on `low`..`high`
  seconds after it arrived (a latency: chunks keep their order, the proxy
  reads on while they wait).

Everything is bounded (links, bytes waiting) and close() stops every thread.

A member behind its proxy listens on 127.0.0.2 at its own Raft port
(--cluster-bind 127.0.0.2:PORT) while the others dial 127.0.0.1:PORT, the
proxy: libraft 0.15 wants the same port, and it announces the configured
address in its handshakes, so the answers to a member (append results,
votes) go through that member's proxy too.
"""

import collections
import random
import socket
import struct
import threading
import time

HANDSHAKE_LEN = 24  # protocol, id, address length; the address follows
MAX_ADDRESS = 1024
CHUNK = 65536


class _Link:
    """One connection through the proxy: down (from the sender) to up (the member)."""

    def __init__(self, proxy, down, up, src):
        self.proxy = proxy
        self.down = down
        self.up = up
        self.src = src
        self.blackholed = False
        self.closed = False
        self.cond = threading.Condition()
        self.queue = collections.deque()  # (due, bytes)
        self.queued = 0
        self.last_due = 0.0
        self.threads = [threading.Thread(target=self._read_down, daemon=True)]
        if up is not None:  # None: a link made while its sender is blackholed
            self.threads += [threading.Thread(target=self._write_up, daemon=True),
                             threading.Thread(target=self._read_up, daemon=True)]

    def start(self, first=b""):
        if first:
            self._enqueue(first)
        for t in self.threads:
            t.start()

    def _enqueue(self, data):
        p = self.proxy
        with self.cond:
            while not self.closed and self.queued + len(data) > p.max_buffered and self.queue:
                self.cond.wait(0.1)
            if self.closed or self.blackholed:
                return
            due = time.monotonic() + p.pick_delay()
            due = max(due, self.last_due)  # keep the order
            self.last_due = due
            self.queue.append((due, data))
            self.queued += len(data)
            self.cond.notify_all()

    def _read_down(self):
        try:
            while not self.closed:
                data = self.down.recv(CHUNK)
                if not data:
                    break
                self.proxy.count(len(data))
                if self.blackholed:
                    continue  # dropped
                self._enqueue(data)
        except OSError:
            pass
        self.close()

    def _write_up(self):
        try:
            while True:
                with self.cond:
                    while not self.closed and not self.queue:
                        self.cond.wait(0.1)
                    if self.closed:
                        return
                    due, data = self.queue[0]
                    wait = due - time.monotonic()
                    if wait > 0:
                        self.cond.wait(min(wait, 0.05))
                        continue
                    self.queue.popleft()
                    self.queued -= len(data)
                    self.cond.notify_all()
                self.up.sendall(data)
        except OSError:
            pass
        self.close()

    def _read_up(self):
        # libraft's receiver never writes; anything it sends is passed back
        try:
            while not self.closed:
                data = self.up.recv(CHUNK)
                if not data:
                    break
                if not self.blackholed:
                    self.down.sendall(data)
        except OSError:
            pass
        self.close()

    def blackhole(self):
        with self.cond:
            self.blackholed = True
            self.queue.clear()
            self.queued = 0
            self.cond.notify_all()

    def close(self):
        with self.cond:
            if self.closed:
                return
            self.closed = True
            self.queue.clear()
            self.queued = 0
            self.cond.notify_all()
        for s in (self.down, self.up):
            if s is None:
                continue
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        self.proxy.forget(self)

    def join(self, timeout):
        me = threading.current_thread()
        for t in self.threads:
            if t is not me and t.is_alive():
                t.join(timeout)


class RaftProxy:
    def __init__(self, listen_port, target_port, name="proxy", max_links=32, max_buffered=8 << 20,
                 target_host="127.0.0.2"):
        self.name = name
        self.target_host = target_host
        self.listen_port = listen_port
        self.target_port = target_port
        self.max_links = max_links
        self.max_buffered = max_buffered
        self.lock = threading.Lock()
        self.links = set()
        self.all_links = []  # for joining at close
        self.cut_all = None      # None, or the mode of a cut of every sender
        self.cut_sources = {}    # sender id -> mode
        self.delay = (0.0, 0.0)
        self.stopping = threading.Event()
        self.accepted = 0
        self.refused = 0
        self.bytes = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", listen_port))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.thread = threading.Thread(target=self._accept, name=f"{name}-accept", daemon=True)
        self.handlers = []

    def start(self):
        self.thread.start()
        return self

    # -- control ---------------------------------------------------------
    def cut(self, sources=None, mode="close"):
        """Cut the links from `sources` (ids; None: every sender)."""
        assert mode in ("close", "blackhole")
        with self.lock:
            if sources is None:
                self.cut_all = mode
            else:
                for s in sources:
                    self.cut_sources[s] = mode
            hit = [l for l in self.links if self._mode(l.src) is not None]
        for l in hit:
            if self._mode(l.src) == "blackhole":
                l.blackhole()
            else:
                l.close()

    def heal(self):
        with self.lock:
            self.cut_all = None
            self.cut_sources.clear()
            stale = [l for l in self.links if l.blackholed]
        for l in stale:
            l.close()

    def set_delay(self, low, high=None):
        with self.lock:
            self.delay = (low, low if high is None else high)

    def pick_delay(self):
        low, high = self.delay
        return low if high <= low else random.uniform(low, high)

    def _mode(self, src):
        if self.cut_all is not None:
            return self.cut_all
        return self.cut_sources.get(src)

    def count(self, n):
        with self.lock:
            self.bytes += n

    def forget(self, link):
        with self.lock:
            self.links.discard(link)

    # -- serving ---------------------------------------------------------
    def _accept(self):
        while not self.stopping.is_set():
            try:
                down, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                full = len(self.links) >= self.max_links
                self.handlers = [h for h in self.handlers if h.is_alive()]
            if full:
                self.refused += 1
                down.close()
                continue
            h = threading.Thread(target=self._handle, args=(down,), daemon=True)
            self.handlers.append(h)
            h.start()

    def _handle(self, down):
        down.settimeout(2.0)
        first = b""
        try:
            while len(first) < HANDSHAKE_LEN:
                chunk = down.recv(HANDSHAKE_LEN - len(first))
                if not chunk:
                    break
                first += chunk
        except OSError:
            pass
        src = None
        if len(first) == HANDSHAKE_LEN:
            proto, ident, alen = struct.unpack("<QQQ", first)
            if proto == 1 and alen <= MAX_ADDRESS:
                src = ident
                try:
                    while len(first) < HANDSHAKE_LEN + alen:
                        chunk = down.recv(HANDSHAKE_LEN + alen - len(first))
                        if not chunk:
                            break
                        first += chunk
                except OSError:
                    pass
                if len(first) < HANDSHAKE_LEN + alen:
                    down.close()
                    return
        if len(first) < HANDSHAKE_LEN or self.stopping.is_set():
            down.close()
            return
        down.settimeout(None)
        with self.lock:
            mode = self._mode(src)
        if mode == "close":
            self.refused += 1
            down.close()
            return
        up = None
        if mode is None:
            try:
                up = socket.create_connection((self.target_host, self.target_port), timeout=2.0)
                up.settimeout(None)
                up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                down.close()
                return
        down.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(self, down, up, src)
        with self.lock:
            if self.stopping.is_set():
                link.closed = True
            else:
                self.links.add(link)
                self.all_links = [l for l in self.all_links if not l.closed] + [link]
                self.accepted += 1
            mode = self._mode(src)  # a cut may have come meanwhile
        if link.closed:
            down.close()
            if up is not None:
                up.close()
            return
        if mode == "close" or (mode is None and up is None):
            link.close()  # cut meanwhile, or healed before it was connected on
        elif mode == "blackhole":
            link.blackhole()
            link.start()
        else:
            link.start(first)

    def close(self):
        self.stopping.set()
        try:
            self.sock.close()
        except OSError:
            pass
        if self.thread.is_alive():
            self.thread.join(5.0)
        for h in list(self.handlers):
            h.join(5.0)
        with self.lock:
            links = list(self.links)
        for l in links:
            l.close()
        for l in self.all_links:
            l.join(5.0)

    def __repr__(self):
        return (f"<{self.name} :{self.listen_port}->:{self.target_port} links={len(self.links)} "
                f"accepted={self.accepted} refused={self.refused} bytes={self.bytes}>")
