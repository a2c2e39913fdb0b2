"""Disk faults: the server's own failures answer SERVER_ERROR and lose nothing.

Runs build/darner-faulty ($DARNER_FAULTY_BIN): the real server whose journal
system calls fail on demand (a file <fault dir>/<call> holding an errno name;
see tests/fault/faulty_main.c).  SPEC section 2 (errors) and 3 (durability):

- a failure of the server itself answers `SERVER_ERROR <reason>`, never
  `STORED`, and the connection stays usable (the next request gets its own
  answer, nothing left over from the failed one);
- nothing acknowledged before is lost: every item set before the fault is
  still there, in order, after the fault is cleared and after a restart;
- an item whose set answered SERVER_ERROR never appears, not even after a
  restart;
- reads keep working: `get q/peek` is served during every fault; a plain get
  or `/open` (which record a removal) may answer SERVER_ERROR, but then the
  item is still there;
- once the fault is gone, sets answer STORED again.
"""

import os
import re

import pytest

from harness import DARNER_FAULTY_BIN, SOCKET_TIMEOUT, Client, FaultyServer, ProtocolError, listing

SERVER_ERROR = re.compile(r"SERVER_ERROR \S.*")


@pytest.fixture
def faulty_bin():
    if not os.access(DARNER_FAULTY_BIN, os.X_OK):
        pytest.fail(f"fault-injecting server not found or not executable: {DARNER_FAULTY_BIN} "
                    f"(set DARNER_FAULTY_BIN or build the project)")
    return DARNER_FAULTY_BIN


@pytest.fixture
def make_faulty(tmp_path, faulty_bin):
    servers = []

    def factory(*extra_args, start=True):
        workdir = tmp_path / f"server{len(servers) + 1}"
        workdir.mkdir(parents=True, exist_ok=True)
        s = FaultyServer(workdir, extra_args)
        servers.append(s)
        if start:
            s.start()
        return s

    yield factory
    complaints = [c for c in (s.cleanup() for s in servers) if c]
    if complaints:
        pytest.fail("\n".join(complaints), pytrace=False)


# -- raw answers ---------------------------------------------------------------

def read_get_answer(c):
    """One answer to a single-key get: ("value", key, flags, data), ("end",)
    or ("error", line).  A SERVER_ERROR line is a complete answer."""
    line = c.readline()
    if line == "END":
        return ("end",)
    if line.startswith("SERVER_ERROR") or line.startswith("CLIENT_ERROR") or line == "ERROR":
        return ("error", line)
    parts = line.split(" ")
    if parts[0] != "VALUE" or len(parts) != 4:
        raise ProtocolError(f"expected VALUE, END or an error, got {line!r}")
    data = c.read_exact(int(parts[3]))
    if c.read_exact(2) != b"\r\n":
        raise ProtocolError("data not followed by CRLF")
    end = c.readline()
    if end != "END":
        raise ProtocolError(f"expected END after the value, got {end!r}")
    return ("value", parts[1], int(parts[2]), data)


def in_sync(c):
    """True if the connection's next answer belongs to the next request: a
    `version` must answer VERSION (a leftover line from an earlier answer,
    such as an END after a SERVER_ERROR, shows up here)."""
    line = c.cmd("version")
    return line.startswith("VERSION "), line


class Checker:
    """Collects every broken promise of one scenario, so one run shows them all."""

    def __init__(self, srv):
        self.srv = srv
        self.problems = []
        self.c = srv.client()

    def problem(self, text):
        self.problems.append(text)

    def fresh(self):
        self.c.close()
        self.c = self.srv.client()

    def check_sync(self, after):
        ok, line = in_sync(self.c)
        if not ok:
            self.problem(f"after {after}: `version` answered {line!r}: the earlier answer left "
                         f"extra lines behind (a SERVER_ERROR must be the whole answer)")
            self.fresh()

    def done(self):
        self.c.close()
        if self.problems:
            logs = [p.read_text(errors="replace") for p in sorted(self.srv.workdir.glob("stderr.*.log"))]
            raise AssertionError("\n".join(["broken promises:"] + [f"- {p}" for p in self.problems]
                                            + ["server logs:", *logs]))


def payload(tag, i, pad):
    head = f"{tag}-{i:04d}-".encode()
    return head + b"p" * max(0, pad - len(head))


# -- the scenarios ---------------------------------------------------------------

# id -> (server flags, control file, errno, how sets are sent, payload size,
#        queue the faulty set goes to)
SCENARIOS = {
    "pwrite-ENOSPC": (("--fsync", "1000"), "pwrite", "ENOSPC", "plain", 100, "q"),
    "pwrite-EIO": ((), "pwrite", "EIO", "plain", 100, "q"),
    "fsync-ENOSPC-always": (("--fsync", "always"), "fsync", "ENOSPC", "plain", 100, "q"),
    "fsync-ENOSPC-sync-set": ((), "fsync", "ENOSPC", "sync", 100, "q"),
    # Each record (80 + 3000 bytes) fills most of a 4096-byte segment: every
    # set needs a new segment file.
    "create-ENOSPC-new-segment": (("--segment-size", "4096"), "open", "ENOSPC", "plain", 3000, "q"),
    "create-ENOSPC-new-queue": ((), "open", "ENOSPC", "plain", 100, "fresh"),
}


def do_set(c, q, data, mode):
    key = f"{q}/sync" if mode == "sync" else q
    return c.set(key, data)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_fault(make_faulty, name):
    flags, call, err, mode, pad, fault_q = SCENARIOS[name]
    srv = make_faulty(*flags)
    ck = Checker(srv)
    c = ck.c

    # Before the fault: everything answers STORED.
    pre = [payload("pre", i, pad) for i in range(6)]
    for d in pre:
        assert do_set(c, "q", d, mode) == "STORED"
    queue_dirs = sorted(p for p in listing(srv.data) if "/" not in p)

    srv.fault(call, err)
    consumed = []        # items handed out for good during the fault
    errored = []         # items whose set answered SERVER_ERROR
    extra_stored = []    # sets during the fault that may succeed (another queue)

    # 1. A set during the fault: SERVER_ERROR <reason>, never STORED.
    for i in range(2):
        d = payload("fail", i, pad)
        r = do_set(ck.c, fault_q, d, mode)
        if not SERVER_ERROR.fullmatch(r or ""):
            ck.problem(f"set {fault_q} during {call}={err} answered {r!r}, expected SERVER_ERROR <reason>")
            if r == "STORED":
                extra_stored.append(d)   # it was acknowledged: it must then not be lost
        else:
            errored.append(d)
        ck.check_sync(f"a set during {call}={err}")
    if fault_q != "q":
        # The failed creation leaves no queue behind, and the queues that exist
        # keep taking items (no file needs creating for them).
        if ck.c.get_multi([fault_q]) != []:
            ck.problem(f"get {fault_q} after its failed creation did not answer END")
        if f"queue_{fault_q}_items" in ck.c.stats():
            ck.problem(f"stats lists queue {fault_q} whose creation failed")
        d = payload("other", 0, pad)
        r = do_set(ck.c, "q", d, mode)
        if r == "STORED":
            extra_stored.append(d)
        else:
            ck.problem(f"set q (an existing queue) during {call}={err} answered {r!r}, expected STORED")

    # 2. Reads during the fault.
    #   peek: always served, the head item, nothing removed.
    ck.c.send(b"get q/peek\r\n")
    a = read_get_answer(ck.c)
    if a[0] != "value" or a[3] != pre[0]:
        ck.problem(f"get q/peek during {call}={err} answered {a!r:.200}, expected the head item")
    ck.check_sync(f"get q/peek during {call}={err}")

    #   plain get: the head item (removed for good), or SERVER_ERROR and the item stays.
    ck.c.send(b"get q\r\n")
    a = read_get_answer(ck.c)
    if a[0] == "value":
        if a[3] != pre[0]:
            ck.problem(f"plain get during {call}={err} handed out {a[3][:20]!r}, expected {pre[0][:20]!r}")
        consumed.append(a[3])
    elif a[0] == "error":
        if not SERVER_ERROR.fullmatch(a[1]):
            ck.problem(f"plain get during {call}={err} answered {a[1]!r}")
    else:
        ck.problem(f"plain get during {call}={err} answered END with items queued")
    ck.check_sync(f"a plain get during {call}={err}")

    #   /open then /abort: the item goes back to the head.
    ck.c.send(b"get q/open\r\n")
    a = read_get_answer(ck.c)
    opened = a[0] == "value"
    if a[0] == "error" and not SERVER_ERROR.fullmatch(a[1]):
        ck.problem(f"get q/open during {call}={err} answered {a[1]!r}")
    ck.check_sync(f"get q/open during {call}={err}")
    if opened:
        r = ck.c.cmd("get q/abort")
        if r != "END":
            ck.problem(f"get q/abort during {call}={err} answered {r!r}")
    else:
        # The client holds nothing open (its /open failed); a `/close` now, as
        # in a `get q/close/open` loop, must not remove an item it never got.
        r = ck.c.cmd("get q/close")
        if r != "END" and not SERVER_ERROR.fullmatch(r):
            ck.problem(f"get q/close (nothing open) during {call}={err} answered {r!r}")
        ck.check_sync(f"get q/close during {call}={err}")

    #   /open then /close: END means removed for good; SERVER_ERROR means it stays.
    ck.c.send(b"get q/open\r\n")
    a = read_get_answer(ck.c)
    ck.check_sync(f"get q/open during {call}={err}")
    if a[0] == "value":
        ck.c.send(b"get q/close\r\n")
        r = ck.c.readline()
        if r == "END":
            consumed.append(a[3])
        elif not SERVER_ERROR.fullmatch(r):
            ck.problem(f"get q/close during {call}={err} answered {r!r}")
        ck.check_sync(f"get q/close during {call}={err}")
    ck.c.cmd("get q/abort")  # whatever is still open goes back to the head

    # 3. The fault is gone: sets answer STORED again.
    srv.clear()
    post = [payload("post", i, pad) for i in range(3)]
    for d in post:
        r = do_set(ck.c, "q", d, mode)
        if r != "STORED":
            ck.problem(f"set after clearing {call}={err} answered {r!r}, expected STORED")
    if fault_q != "q":
        r = do_set(ck.c, fault_q, b"created", mode)
        if r != "STORED":
            ck.problem(f"set {fault_q} (new queue) after clearing the fault answered {r!r}")
        elif ck.c.get_data(fault_q) != b"created":
            ck.problem(f"the queue {fault_q} created after the fault does not hand out its item")

    # Nothing acknowledged is lost, nothing refused appears: the head is the
    # first pre-fault item not handed out, and the count is exact. One
    # exception (docs/protocol.md): a set refused because its fsync failed has
    # an unknown outcome (the record was written; whether it reached the disk
    # is unknown), so its item may also appear, once, in its place.
    remaining = [d for d in pre if d not in consumed] + extra_stored + post
    allowed = [remaining]
    if call == "fsync":
        allowed.append([d for d in pre if d not in consumed] + errored + extra_stored + post)
    ck.c.send(b"get q/peek\r\n")
    a = read_get_answer(ck.c)
    if a[0] != "value" or a[3] != remaining[0]:
        got = a[3][:24] if a[0] == "value" else a
        ck.problem(f"after clearing {call}={err}: head is {got!r}, expected {remaining[0][:24]!r} "
                   f"(an item whose get/open/close answered SERVER_ERROR must still be there)")
    items = ck.c.stats().get("queue_q_items")
    if items not in [str(len(a)) for a in allowed]:
        ck.problem(f"after clearing {call}={err}: queue_q_items is {items}, expected {len(remaining)}")
    if fault_q != "q":
        now_dirs = sorted(p for p in listing(srv.data) if "/" not in p)
        if len(now_dirs) != len(queue_dirs) + 1:
            ck.problem(f"folders in the data folder: {now_dirs}, before the fault {queue_dirs} "
                       f"(+1 queue expected): a failed creation left something behind")
    ck.c.close()

    # 4. After a restart: exactly the acknowledged items, in order.
    srv.stop()
    srv.start()
    ck.c = srv.client()
    drained = []
    for _ in range(len(pre) + len(post) + 20):
        ck.c.send(b"get q\r\n")
        a = read_get_answer(ck.c)
        if a[0] != "value":
            if a[0] == "error":
                ck.problem(f"drain after restart: {a[1]!r}")
            break
        drained.append(a[3])
    if drained not in allowed:
        short = lambda xs: [x[:9].decode() for x in xs]  # noqa: E731
        lost = [x for x in remaining if x not in drained]
        appeared = [x for x in drained if x in errored]
        ck.problem(f"after restart the queue holds {short(drained)}, expected {short(remaining)}; "
                   f"lost: {short(lost)}; answered SERVER_ERROR yet present: {short(appeared)}")
    if fault_q != "q":
        rest = ck.c.get_multi([fault_q])
        if rest:
            ck.problem(f"after restart {fault_q} still holds {rest!r:.100} (it was drained)")
    ck.done()


def test_fault_during_queue_creation_leaves_no_queue_after_restart(make_faulty):
    """A set into a new queue that cannot create its files: SERVER_ERROR, and
    after a restart the queue does not exist (a get answers END, stats does not
    list it) and the data folder holds nothing of it.  (Creating a queue
    syncs nothing itself: its files are synced with the first sync that
    covers its items, so an fsync fault does not fail it.)"""
    srv = make_faulty()
    with srv.client() as c:
        assert c.set("keep", "k") == "STORED"
    before = listing(srv.data)
    for call in ("open", "mkdir", "rename", "pwrite"):
        srv.fault(call, "ENOSPC")
        with srv.client() as c:
            r = c.set(f"new-{call}", "x")
            assert SERVER_ERROR.fullmatch(r), f"{call}=ENOSPC: creating a queue answered {r!r}"
            assert c.cmd("version").startswith("VERSION ")
        srv.clear()
    srv.stop()
    srv.start()
    with srv.client() as c:
        stats = c.stats()
        for call in ("open", "mkdir", "rename", "pwrite"):
            assert c.get_multi([f"new-{call}"]) == []
            assert f"queue_new-{call}_items" not in stats, f"{call}: the failed queue is listed"
        assert c.get_data("keep") == b"k"
    assert [p for p in listing(srv.data) if p not in before] == [], \
        "a failed queue creation left files behind"


def test_large_set_during_pwrite_fault(make_faulty):
    """A set of an item far larger than one write, during a pwrite fault:
    SERVER_ERROR, its data is consumed (the connection stays usable and in
    step), and it never appears."""
    srv = make_faulty()
    big = bytes(i % 251 for i in range(3 << 20))
    with srv.client() as c:
        assert c.set("q", "before") == "STORED"
        srv.fault("pwrite", "ENOSPC")
        r = c.set("q", big)
        assert SERVER_ERROR.fullmatch(r or ""), f"a 3 MiB set during pwrite=ENOSPC answered {r!r}"
        assert c.cmd("version").startswith("VERSION "), "the connection is out of step after the failed set"
        srv.clear()
        assert c.set("q", big) == "STORED"
        assert c.set("q", "after") == "STORED"
    srv.stop()
    srv.start()
    with srv.client() as c:
        assert c.get_data("q") == b"before"
        assert c.get_data("q") == big
        assert c.get_data("q") == b"after"
        assert c.get_data("q") is None


# -- short writes ---------------------------------------------------------------

SHORT_SIZES = [0, 1, 2, 79, 80, 81, 1000, 4096, 65536, 65537, 70000]


def test_short_writes_round_trip(make_faulty):
    """pwrite writing one byte per call: every set still answers STORED and
    every item comes back byte for byte, with its flags, also across segment
    rolls (--segment-size 65536) and a restart."""
    srv = make_faulty("--segment-size", "65536")
    srv.fault("short", "1")
    items = []
    with srv.client() as c:
        for i, n in enumerate(SHORT_SIZES):
            data = bytes((i * 7 + k * 13) % 256 for k in range(n))
            items.append((i + 1, data))
            assert c.set("q", data, flags=i + 1) == "STORED", f"set of {n} bytes under short writes"
        # Half of them back while the writes are still short (acks are writes too).
        half = len(items) // 2
        for flags, data in items[:half]:
            got = c.get("q")
            assert got is not None, "an item set under short writes is missing"
            assert got[0] == flags and got[1] == data, f"item of {len(data)} bytes changed"
        # /open + /close under short writes.
        it = c.get_full("q/open")
        assert it is not None and (it[1], it[2]) == items[half]
        assert c.cmd("get q/close") == "END"
        half += 1
        # A new queue under short writes.
        assert c.set("other", b"o" * 100) == "STORED"
    srv.clear()
    srv.stop()
    srv.start()
    with srv.client() as c:
        for flags, data in items[half:]:
            got = c.get("q")
            assert got is not None and got == (flags, data), \
                f"after restart: item of {len(data)} bytes missing or changed"
        assert c.get("q") is None
        assert c.get_data("other") == b"o" * 100


# -- the faulty binary itself ---------------------------------------------------------

def test_faulty_binary_without_faults_is_the_server(make_faulty):
    """With an empty control folder darner-faulty behaves as darner."""
    srv = make_faulty()
    with srv.client() as c:
        assert c.set("q", "a") == "STORED"
        assert c.cmd("version").startswith("VERSION ")
        assert c.get_data("q") == b"a"
        assert c.get_data("q") is None


def test_fault_cleared_mid_connection_many_times(make_faulty):
    """Switching a pwrite fault on and off repeatedly: every set answers either
    STORED or SERVER_ERROR, and after a restart exactly the STORED ones are there,
    in order."""
    srv = make_faulty()
    stored = []
    with Client(srv.port, timeout=SOCKET_TIMEOUT) as c:
        for i in range(40):
            if i % 10 == 3:
                srv.fault("pwrite", "EIO")
            if i % 10 == 7:
                srv.clear("pwrite")
            d = f"item-{i}"
            r = c.set("q", d)
            if r == "STORED":
                stored.append(d.encode())
            else:
                assert SERVER_ERROR.fullmatch(r), f"set answered {r!r}"
        assert c.cmd("version").startswith("VERSION ")
    srv.clear()
    srv.stop()
    srv.start()
    with srv.client() as c:
        got = [c.get_data("q") for _ in range(len(stored) + 1)]
    assert got == stored + [None]


@pytest.mark.parametrize("call,err", [("dup", "EMFILE"), ("open_any", "EMFILE"), ("fsync", "EIO")])
def test_sync_set_is_never_stored_when_its_fsync_did_not_happen(make_faulty, call, err):
    """Any failure on the way to an fsync (duplicating the journal's fds, as
    with no fd left; opening a new queue's folder to sync it; the fsync
    itself) answers /sync sets SERVER_ERROR, not STORED; the journal stays
    owed a sync, so once the fault is gone a /sync set answers STORED and
    every item is there, also after a kill -9."""
    srv = make_faulty("--fsync", "60000")
    with srv.client() as c:
        assert c.set("q/sync", "before") == "STORED"
        assert c.set("fresh", "made") == "STORED"   # its folder is not synced yet
        srv.fault(call, err)
        # an existing queue's folder fd is open already: open_any cannot hit it
        for q in ("fresh/sync",) if call == "open_any" else ("q/sync", "fresh/sync"):
            r = c.set(q, "during")
            assert SERVER_ERROR.fullmatch(r), f"{call}={err}: /sync set into {q} answered {r!r}"
        srv.clear()
        assert c.set("q/sync", "after") == "STORED"
        assert c.set("fresh/sync", "after") == "STORED"
    srv.kill()
    srv.start()
    with srv.client() as c:
        q = [c.get_data("q") for _ in range(3)]
        assert q[0] == b"before" and b"after" in q, q
        fresh = [c.get_data("fresh") for _ in range(3)]
        assert fresh[0] == b"made" and b"after" in fresh, fresh


# -- the binary protocol ----------------------------------------------------------

def test_binary_sets_answer_server_failures_with_their_opaque(make_faulty):
    """A binary Set whose journal write or fsync fails answers the internal
    error status (0x84) with its opaque, a quiet SetQ too (errors are never
    quiet), in order before a Noop; once the fault is gone, sets succeed."""
    from test_binary import NOOP, SETQ, Bin, packet, set_packet
    srv = make_faulty("--fsync", "60000")
    b = Bin(srv.port)
    srv.fault("pwrite", "ENOSPC")
    b.send(set_packet("q", b"x", op=SETQ, opaque=1), set_packet("q", b"y", opaque=2), packet(NOOP, opaque=3))
    got = [b.read() for _ in range(3)]
    assert [(r.op, r.status, r.opaque) for r in got] == [(SETQ, 0x84, 1), (1, 0x84, 2), (NOOP, 0, 3)], got
    assert got[0].value and got[1].value                       # the reason
    srv.clear()
    srv.fault("fsync", "EIO")
    r = b.call(set_packet("q/sync", b"z", opaque=4))
    assert (r.status, r.opaque) == (0x84, 4)
    srv.clear()
    assert b.call(set_packet("q/sync", b"after", opaque=5)).status == 0
    b.close()
