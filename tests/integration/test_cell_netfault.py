"""Network faults between the members of a cell (issue 15, docs/cluster.md):
no acknowledged item lost, no split brain.

Each member's Raft port sits behind a small proxy the test controls
(cell_harness.Cell(proxied=True), net_proxy.RaftProxy): proxy i carries
every Raft message *to* member i (libraft dials the member it sends to) and
knows who sent it (libraft's handshake names the sender), so a test can cut
what member i hears, cut single links (from j to i), or delay everything.
Relayed client connections (a follower's memcache port to the leader's) do
not go through the proxies: only the members' Raft traffic is faulted.

Under every scenario writers set ids through any member and log an id only
once it was answered STORED (with the time the set was sent). At the end the
queue is drained through the leader, and:
- every acknowledged id is there (none lost), and none is there twice;
- every running member names the same leader (one leader, by its pid).
When the leader is cut off, "pinned" writers keep a connection to the old
leader itself (checked by its pid) and must get no STORED for a set sent
after the cut began: the old leader cannot commit without its majority, and
a STORED from it then would be a second leader serving (split brain). The
old leader must exit 75 (it stops leading) and come back as a follower.

Scenarios: 1. the leader hears nothing (its inbound links blackholed);
2. a follower cut off, healed, then made necessary for every commit;
3. every link delayed 50..150 ms; 4. the leader isolated both ways; and
that the answers to a member behind its proxy go through that proxy.
"""

import random
import threading
import time

import pytest

from cell_harness import DEMOTED, Cell, set_item
from harness import thread_sanitized, DARNER_BIN, UNDER_WINE, Client, ProtocolError, sanitized, wait_until

pytestmark = [pytest.mark.skipif(UNDER_WINE, reason="cells are not built for Windows"),
              pytest.mark.skipif(thread_sanitized(DARNER_BIN), reason="cells under TSan: docs/hardening.md")]

SLOW = sanitized(DARNER_BIN)
T = 3.0 if SLOW else 1.0  # sanitizer builds run several times slower: longer deadlines
Q = "nf"


@pytest.fixture
def cell(tmp_path):
    c = Cell(tmp_path, n=3, proxied=True)
    try:
        c.start()
        yield c
    finally:
        bad = c.close()
    if bad:
        pytest.fail("\n".join(bad), pytrace=False)


# -- load ------------------------------------------------------------------

class Load:
    """Writers through any member's memcache port; an id is logged once STORED."""

    def __init__(self, cell, writers=3, pace=0.002):
        self.cell = cell
        self.pace = pace
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked = {}  # id -> time the set was sent
        self.threads = [threading.Thread(target=self.writer, args=(w,), daemon=True) for w in range(writers)]

    def writer(self, w):
        seq = 0
        while not self.stop.is_set():
            port = random.choice(self.cell.members).port
            try:
                with Client(port, timeout=5.0 * T) as c:
                    while not self.stop.is_set():
                        seq += 1
                        ident = b"w%d-%d" % (w, seq)
                        sent = time.monotonic()
                        if c.set(Q, ident) != "STORED":
                            break  # SERVER_ERROR: a new connection (maybe to a new leader)
                        with self.lock:
                            self.acked[ident] = sent
                        self.stop.wait(self.pace)
            except (OSError, ProtocolError, ConnectionError):
                pass
            self.stop.wait(0.02)

    def acked_since(self, t):
        with self.lock:
            return sum(1 for s in self.acked.values() if s >= t)

    def wait_acked_since(self, t, n, timeout, cell):
        ok = wait_until(lambda: self.acked_since(t) >= n, timeout=timeout * T, interval=0.02)
        assert ok, (f"fewer than {n} sets answered STORED within {timeout}s "
                    f"({self.acked_since(t)})\n{cell.logs()}\n{cell.proxies()}")

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


class Pinned:
    """Writers on connections to one member while it leads (never relayed:
    checked by the pid its `stats` answers), until the first answer that is
    not STORED or the connection's end. Every answer is logged with the
    time its set was sent."""

    def __init__(self, member, load, n=2):
        self.member = member
        self.pid = member.proc.pid
        self.load = load
        self.lock = threading.Lock()
        self.answers = []  # (sent, ident, answer)
        self.conns = []
        for _ in range(n):
            c = Client(member.port, timeout=30.0 * T)
            assert int(c.stat("pid")) == self.pid, "not connected to the leader itself"
            self.conns.append(c)
        self.threads = [threading.Thread(target=self.writer, args=(i, c), daemon=True)
                        for i, c in enumerate(self.conns)]
        for t in self.threads:
            t.start()

    def writer(self, i, c):
        seq = 0
        try:
            while not self.load.stop.is_set():
                seq += 1
                ident = b"p%d-%d" % (i, seq)
                sent = time.monotonic()
                answer = c.set(Q, ident)
                with self.lock:
                    self.answers.append((sent, ident, answer))
                if answer != "STORED":
                    return
                with self.load.lock:
                    self.load.acked[ident] = sent
                self.load.stop.wait(self.load.pace)
        except (OSError, ProtocolError, ConnectionError) as e:
            with self.lock:
                self.answers.append((time.monotonic(), None, f"error: {e}"))

    def stored_after(self, t):
        with self.lock:
            return [(round(s - t, 3), i) for s, i, a in self.answers if a == "STORED" and s >= t]

    def close(self):
        for c in self.conns:
            c.close()
        for t in self.threads:
            t.join(timeout=10)


# -- asking the cell -------------------------------------------------------

def view(cell, m):
    """The pid of the leader as member m sees it (who answers `stats` through it), or None."""
    if not m.running():
        return None
    return cell.leader_pid(m.id, timeout=1.0 * T)


def agreed_leader(cell, members=None, timeout=10.0, other_than=None):
    """The member every one of `members` (default: all running) names as
    leader (and that is not `other_than`)."""
    def find():
        ms = [m for m in (members or cell.members) if m.running()]
        pids = {view(cell, m) for m in ms}
        if len(pids) != 1 or None in pids:
            return None
        pid = pids.pop()
        return next((l for l in cell.members if l.running() and l.proc.pid == pid and l is not other_than), None)
    found = wait_until(find, timeout=timeout * T, interval=0.05)
    assert found, f"no agreed leader within {timeout}s\n{cell.logs()}\n{cell.proxies()}"
    return found


class CrashedOnStepDown(AssertionError):
    """The cut-off leader did not exit 75 (it crashed: a leader stepping down
    under load once re-entered libraft from its leadership-lost callback)."""


def demoted(cell, proc, member, timeout=10.0):
    """The old leader's process exits (75: it stopped leading). Returns a
    complaint when it exited otherwise; it is then started again by hand
    (the watcher only restarts a 75), so that the other checks still run."""
    assert wait_until(lambda: proc.poll() is not None, timeout=timeout * T, interval=0.02), \
        f"the cut-off leader (member {member.id}) is still running\n{cell.logs()}"
    if proc.returncode == DEMOTED:
        return None
    text = member.log()
    cell.restart(member.id)
    return f"the cut-off leader (member {member.id}) exited with {proc.returncode}, not {DEMOTED}:\n{text}"


def drain(cell, leader, threads=8):
    """Every item of Q, by plain gets on several connections to the leader."""
    out, lock, errors = [], threading.Lock(), []

    def take():
        try:
            with Client(leader.port, timeout=10.0 * T) as c:
                while True:
                    d = c.get_data(Q)
                    if d is None:
                        return
                    with lock:
                        out.append(d)
        except Exception as e:  # reported below
            errors.append(repr(e))
    ts = [threading.Thread(target=take, daemon=True) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=60)
    assert not errors, f"drain failed: {errors}\n{cell.logs()}"
    return out


def check_nothing_lost(cell, load, what):
    leader = agreed_leader(cell)
    got = drain(cell, leader)
    seen = set(got)
    lost = sorted(set(load.acked) - seen)
    twice = sorted({x for x in seen if got.count(x) > 1}) if len(seen) != len(got) else []
    print(f"{what}: acked {len(load.acked)}, drained {len(got)} ({len(seen)} distinct), "
          f"leader member {leader.id}, restarts after 75: {cell.restarts}")
    assert not lost, f"{what}: {len(lost)} acknowledged items lost, e.g. {lost[:10]}\n{cell.logs()}"
    assert not twice, f"{what}: items handed out twice: {twice[:10]}"
    assert agreed_leader(cell) is leader


def hold(seconds, check=None, interval=0.1):
    """Keep a fault on for `seconds`, running check() meanwhile."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check:
            check()
        time.sleep(interval)


def cut_off_leader(cell, isolate):
    """The leader cut off under load; the others elect; the old one exits 75,
    never serves while cut off, and comes back as a follower after the heal."""
    old = agreed_leader(cell)
    others = [m for m in cell.members if m is not old]
    with Load(cell) as load:
        load.wait_acked_since(0, 100, 15.0, cell)
        pinned = Pinned(old, load)
        try:
            load.wait_acked_since(0, len(load.acked) + 20, 5.0, cell)
            old_proc = old.proc
            t_cut = time.monotonic()
            if isolate:
                # nothing reaches it, nothing from it reaches the others
                old.proxy.cut(mode="close")
                for m in others:
                    m.proxy.cut([old.id], mode="close")
            else:
                # only what is sent to it is lost, silently: its own messages
                # still reach the others (its heartbeats, as long as it leads)
                old.proxy.cut(mode="blackhole")
            new = agreed_leader(cell, others, timeout=10.0, other_than=old)
            crash = demoted(cell, old_proc, old)
            t_new = time.monotonic()
            load.wait_acked_since(t_cut, 50, 10.0, cell)

            def never_itself():
                pid = view(cell, old)
                assert pid is None or pid == new.proc.pid, \
                    f"cut off, member {old.id} names {pid} as leader (its own pid: {old.proc.pid})"
            hold(1.5, never_itself)
            t_heal = time.monotonic()
            for m in cell.members:
                m.proxy.heal()
            # the old leader, started again, follows the new one
            assert agreed_leader(cell, timeout=15.0) is new
            assert wait_until(lambda: set_item(old.port, "probe", b"x", timeout=5.0 * T) == "STORED",
                              timeout=10.0 * T), cell.logs()
            load.wait_acked_since(time.monotonic(), 50, 10.0, cell)
        finally:
            pinned.close()
    late = pinned.stored_after(t_cut)
    print(f"cut at 0, new leader (member {new.id}) agreed after {t_new - t_cut:.3f}s, healed at "
          f"{t_heal - t_cut:.3f}s; old leader's exits {old.exits}; pinned answers after the cut: "
          f"{[(round(s - t_cut, 3), a) for s, _, a in pinned.answers if s >= t_cut - 0.2]}")
    assert not late, f"the cut-off leader answered STORED for sets sent after the cut: {late}\n{old.log()}"
    return load, crash


# -- the scenarios ---------------------------------------------------------


def test_answers_to_a_member_go_through_its_proxy(tmp_path):
    """A member behind a proxy (--cluster-bind) must be reached only through
    the address the others are configured with: the leader's proxy then
    carries the followers' answers to it."""
    c = Cell(tmp_path, n=3, proxied=True)
    try:
        c.start()
        lead = agreed_leader(c)
        before = lead.proxy.bytes
        for i in range(20):
            assert set_item(lead.port, Q, b"%d" % i) == "STORED"
        # 20 commits: 20 rounds of append results from the followers, at least
        assert lead.proxy.bytes > before, f"no answer reached the leader through its proxy: {c.proxies()}"
    finally:
        bad = c.close()
    assert not bad, "\n".join(bad)


def test_leader_cannot_hear_the_others(cell):
    """1. The leader's inbound links are blackholed: it goes on sending but
    hears no answer. It must step down and serve nothing meanwhile; the
    others elect; after the heal it follows; nothing acknowledged is lost."""
    load, crash = cut_off_leader(cell, isolate=False)
    check_nothing_lost(cell, load, "leader's inbound cut")
    if crash:
        raise CrashedOnStepDown(crash)


def test_a_cut_follower_catches_up(cell):
    """2. A follower's inbound links are cut: the cell serves on, with the
    same leader. Healed, the follower catches up: the other follower is then
    killed (the healed one is needed for every commit), then the leader,
    and the healed follower must lead with every acknowledged item."""
    lead = agreed_leader(cell)
    f, g = [m for m in cell.members if m is not lead]
    with Load(cell) as load:
        load.wait_acked_since(0, 100, 15.0, cell)
        t_cut = time.monotonic()
        f.proxy.cut(mode="close")
        load.wait_acked_since(t_cut, 100, 10.0, cell)
        hold(1.5)  # several election timeouts
        n = load.acked_since(t_cut)
        assert agreed_leader(cell, [lead, g]) is lead, "a cut follower disturbed the leader"
        f.proxy.heal()
        assert agreed_leader(cell, timeout=10.0) is lead
        # g gone: every commit needs f, which must have caught up first
        t_kill = time.monotonic()
        cell.kill(g.id)
        load.wait_acked_since(t_kill, 100, 10.0, cell)
        cell.kill(lead.id)
        cell.restart(g.id)
        # g misses what lead and f committed without it: only f can win
        new = agreed_leader(cell, timeout=15.0)
        assert new is f, f"member {new.id} leads, not the healed follower {f.id}"
        t_new = time.monotonic()
        load.wait_acked_since(t_new, 50, 10.0, cell)
        cell.restart(lead.id)
        assert agreed_leader(cell, timeout=15.0) is f
        load.wait_acked_since(time.monotonic(), 20, 10.0, cell)
    print(f"follower {f.id} cut: {n} sets STORED while it was cut off")
    check_nothing_lost(cell, load, "follower cut")


def test_every_link_slow(cell):
    """3. Every Raft message is delayed 50..150 ms (a third of the election
    timeout at most) for a few seconds under load: the cell serves on,
    slower; nothing acknowledged is lost."""
    before = agreed_leader(cell)
    with Load(cell, writers=12) as load:
        load.wait_acked_since(0, 100, 15.0, cell)
        t_slow = time.monotonic()
        for p in cell.proxies():
            p.set_delay(0.05, 0.15)
        hold(4.0)
        during = load.acked_since(t_slow)
        for p in cell.proxies():
            p.set_delay(0.0)
        t_fast = time.monotonic()
        load.wait_acked_since(t_fast, 100, 10.0, cell)
    after = agreed_leader(cell)
    print(f"delayed links: {during} sets STORED in 4 s (in the 1 s after: "
          f"{load.acked_since(t_fast)}); leader member {before.id} before, member {after.id} after")
    assert during >= 20, f"only {during} sets STORED while the links were slow\n{cell.logs()}"
    check_nothing_lost(cell, load, "slow links")


def test_leader_isolated(cell):
    """4. The leader isolated: nothing reaches it (its proxy cut) and nothing
    from it reaches the others (the others' proxies cut its links). Same
    checks as 1: it steps down, never serves while cut off, the others elect,
    it follows after the heal, nothing acknowledged is lost."""
    load, crash = cut_off_leader(cell, isolate=True)
    check_nothing_lost(cell, load, "leader isolated")
    if crash:
        raise CrashedOnStepDown(crash)
