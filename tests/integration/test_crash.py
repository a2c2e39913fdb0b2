"""Crash under load (SPEC section 3): kill -9 at random moments loses nothing.

Producers set items whose payload carries a unique id; consumers take them with
plain gets and with `/open` + `/close`.  The server is killed with SIGKILL at a
random moment of each round and started again on the same data folder.  After
the last round everything left is drained, and the bookkeeping must show:

- every id answered STORED was handed out (in some round) or is still there;
- an id whose removal was answered (a plain get read in full, or the END of its
  `/close`) is never handed out again;
- an id that was open (and not yet being closed) when the server died comes
  back: at-least-once for reliable reads;
- no item appears that no producer sent, none arrives altered, and no id is
  handed out twice within one life of the server.

The one thing a client cannot tell apart: a plain get whose answer was cut by
the kill may have removed its item (at-most-once for plain gets: the removal
is journaled before the answer is sent).  Each such get may account for one
item never seen again: an id answered STORED in or before its round, or an id
that was open at an earlier kill and was given back after the restart (a
plain get then takes it: it is at the head of its queue, or in the scheduling
variant it waits in a low-priority lane until a later round).  A cut get
covers at most one such item, and only one that was there in its round
(check_unexplained).

DARNER_CRASH_SEED=<n> repeats a run's kill and hold times (the load's timing
still varies); DARNER_CRASH_SNAP=1 copies the data folder after each kill to
snapNN/ under the test's tmp_path, for `darner-journal dump --json --payload
--all snapNN` to show what each life left of an item.

The "scheduling" variant sets every item with a random priority and, for most,
a delay of up to 150 ms, on a queue with max_deliveries = 2: items cross
every scheduling transition (set into a delay bucket, fired into a lane,
handed out open, back after a kill, moved to the dead-letter queue) while the
server is killed, and the same proofs hold over the queue and its
`_errors` queue together (items of one producer need not come out in order).
"""

import os
import random
import shutil
import threading
import time

import pytest

from harness import SOCKET_TIMEOUT, Client, listing, wait_until

ROUNDS = 20
KILL_DELAY = (0.050, 0.300)   # seconds after the load starts
MAX_SETS_PER_PRODUCER = 4000  # per round: bounds the queue and the drain
PRODUCERS = 3
PAD = 200                     # payload bytes: ~270-byte records, many segments of 64 KiB
QUEUE = "crashq"
JOIN_TIMEOUT = 10.0
IO_TIMEOUT = 5.0


def make_payload(item_id):
    head = item_id.encode() + b"|"
    return head + bytes((len(head) + k) % 26 + 97 for k in range(PAD - len(head)))


def parse_payload(data):
    """The id of a payload, or raises if the payload is not one we sent intact."""
    item_id = data.split(b"|", 1)[0].decode("ascii", "replace")
    if make_payload(item_id) != data:
        raise AssertionError(f"payload of {item_id!r} arrived altered: {data[:60]!r}...")
    return item_id


# -- the load -------------------------------------------------------------------------

class Producer(threading.Thread):
    def __init__(self, port, rnd, idx, stop, scheduling=False):
        super().__init__(daemon=True)
        self.port, self.rnd, self.idx, self.stop = port, rnd, idx, stop
        self.rng = random.Random(f"{rnd}/{idx}") if scheduling else None
        self.sent = []
        self.acked = []
        self.error = None

    def run(self):
        try:
            c = Client(self.port, timeout=IO_TIMEOUT)
        except OSError:
            return
        try:
            for seq in range(MAX_SETS_PER_PRODUCER):
                if self.stop.is_set():
                    return
                item_id = f"r{self.rnd:02d}p{self.idx}s{seq:05d}"
                self.sent.append(item_id)
                key = QUEUE
                if self.rng:   # a priority, and mostly a short delay
                    key += f"/pri={self.rng.randrange(10)}"
                    if self.rng.random() < 0.7:
                        key += f"/delay={self.rng.randrange(1, 150)}"
                r = c.set(key, make_payload(item_id))
                if r != "STORED":
                    self.error = f"set {item_id} answered {r!r}"
                    return
                self.acked.append(item_id)
        except (OSError, ConnectionError):
            return   # the kill
        finally:
            c.close()


class PlainConsumer(threading.Thread):
    """Plain gets: an id counts as confirmed once its whole answer is read."""

    def __init__(self, port, stop):
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.confirmed = []
        self.inflight = 0      # a get sent whose answer was not read in full
        self.partial = b""     # what of that answer had arrived (it may name the item)
        self.error = None

    def run(self):
        try:
            c = Client(self.port, timeout=IO_TIMEOUT)
        except OSError:
            return
        try:
            while not self.stop.is_set():
                self.inflight = 1
                c.send(f"get {QUEUE}/t=10\r\n")
                items = c.read_values()
                self.inflight = 0
                if len(items) > 1:
                    self.error = f"one key asked, {len(items)} items answered"
                    return
                for _key, _flags, data in items:
                    self.confirmed.append(parse_payload(data))
        except (OSError, ConnectionError):
            if self.inflight:
                self.partial = c.buf[:40]
            return
        except AssertionError as e:
            self.error = str(e)
        finally:
            c.close()


class OpenConsumer(threading.Thread):
    """`/open` then `/close`: confirmed once the END of the close is read."""

    def __init__(self, port, stop, hold_ms=0.0, seed=0):
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.hold_ms = hold_ms    # up to this long an item stays open (work on it)
        self.rng = random.Random(seed)
        self.opened = []          # every id handed out by /open
        self.confirmed = []       # ids whose /close answered END
        self.open_at_kill = None  # id open, no /close sent yet, when the connection died
        self.closing_at_kill = None  # id whose /close was sent but not answered
        self.error = None

    def run(self):
        try:
            c = Client(self.port, timeout=IO_TIMEOUT)
        except OSError:
            return
        current = None
        closing = False
        try:
            while not self.stop.is_set():
                c.send(f"get {QUEUE}/open/t=10\r\n")
                items = c.read_values()
                if not items:
                    continue
                if len(items) > 1:
                    self.error = f"one key asked, {len(items)} items answered"
                    return
                current = parse_payload(items[0][2])
                self.opened.append(current)
                if self.hold_ms:
                    time.sleep(self.rng.uniform(0, self.hold_ms) / 1000.0)
                if self.stop.is_set():
                    break   # killed while the item was open: no /close reached the server
                closing = True
                c.send(f"get {QUEUE}/close\r\n")
                r = c.readline()
                if r != "END":
                    self.error = f"get {QUEUE}/close answered {r!r}"
                    return
                self.confirmed.append(current)
                current, closing = None, False
        except (OSError, ConnectionError):
            return
        except AssertionError as e:
            self.error = str(e)
        finally:
            if current is not None:
                if closing:
                    self.closing_at_kill = current
                else:
                    self.open_at_kill = current
            c.close()


def drain(port, limit=200000, batch=200, queue=QUEUE):
    """Plain-get everything left (pipelined, bounded); returns the ids in order."""
    out = []
    with Client(port, timeout=SOCKET_TIMEOUT) as c:
        while len(out) < limit:
            c.send(f"get {queue}\r\n".encode() * batch)
            empty = False
            for _ in range(batch):
                items = c.read_values()
                if not items:
                    empty = True
                for _k, _f, data in items:
                    out.append(parse_payload(data))
            if empty:
                return out
    raise AssertionError(f"queue did not empty after {limit} gets")


def round_of(item_id):
    """The round whose producer sent item_id ("r07p0s00248" -> 7)."""
    return int(item_id[1:3])


def check_unexplained(unexplained, cut_gets):
    """Whether cut plain gets can account for every item never seen again.

    unexplained: {id: first round in which a plain get could have taken it};
    cut_gets: the round of each plain get whose answer a kill cut.  A get takes
    at most one item, and only one that was there in its round: a get of round
    r can stand for an item whose first round is r or before.  Such a matching
    exists iff for every round t the items first takeable in t or later are no
    more than the cut gets of round t or later (Hall's condition: the sets are
    nested).  Returns None, or a complaint."""
    for t in sorted(set(unexplained.values())):
        items = sorted(i for i, first in unexplained.items() if first >= t)
        gets = [r for r in cut_gets if r >= t]
        if len(items) > len(gets):
            return (f"{len(items)} ids could be taken from round {t} on and were never seen again, but only "
                    f"{len(gets)} plain gets were cut by a kill from round {t} on: {items[:10]}")
    return None


def test_check_unexplained():
    # open at the kill of round 14, given back, then taken in round 16 by a
    # plain get whose answer that round's kill cut (seed 768052174)
    assert check_unexplained({"r11p1s00056": 15}, [3, 16]) is None
    # no cut get after the kill: lost
    assert "r11p1s00056" in check_unexplained({"r11p1s00056": 15}, [3, 14])
    # one cut get cannot stand for two items, nor for an item set after it
    assert check_unexplained({"a": 15, "b": 2}, [16]) is not None
    assert check_unexplained({"a": 15, "b": 15}, [3, 16]) is not None
    assert check_unexplained({"r05p0s00001": 5}, [4]) is not None
    assert check_unexplained({"a": 15, "b": 2}, [3, 16]) is None
    assert check_unexplained({"a": 15, "b": 2}, [16, 17]) is None
    assert check_unexplained({}, []) is None


# -- the test -------------------------------------------------------------------------------

@pytest.mark.parametrize("fsync", ["default", "never", "scheduling"])
def test_crash_under_load(make_server, fsync, tmp_path):
    seed = int(os.environ.get("DARNER_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    flags = ["--segment-size", "65536"]
    scheduling = fsync == "scheduling"
    if scheduling:
        conf = tmp_path / "darner.conf"
        conf.write_text(f'[queue "{QUEUE}"]\nmax_deliveries = 2\n')
        flags += ["-c", str(conf)]
    elif fsync != "default":
        flags += ["--fsync", fsync]
    srv = make_server(*flags, start=False)
    deadline = time.monotonic() + 50.0

    acked, sent = set(), set()
    # deliveries[id] = [(round, kind, confirmed)], kind "get" | "open"
    deliveries = {}
    open_at_kill = []        # (round, id)
    cut_gets = []            # (round, partial answer) of each plain get cut by the kill
    errors = []
    rounds = 0

    for rnd in range(ROUNDS):
        if time.monotonic() > deadline:
            break
        srv.start()
        stop = threading.Event()
        producers = [Producer(srv.port, rnd, i, stop, scheduling) for i in range(PRODUCERS)]
        plain = PlainConsumer(srv.port, stop)
        openers = [OpenConsumer(srv.port, stop),
                   OpenConsumer(srv.port, stop, hold_ms=10, seed=rng.random())]
        workers = producers + [plain, *openers]
        for w in workers:
            w.start()
        time.sleep(rng.uniform(*KILL_DELAY))
        srv.kill()
        stop.set()
        if os.environ.get("DARNER_CRASH_SNAP"):
            shutil.copytree(srv.data, tmp_path / f"snap{rnd:02d}")
        for w in workers:
            w.join(JOIN_TIMEOUT)
            assert not w.is_alive(), f"round {rnd}: a client thread hung after the kill"
        rounds += 1

        for p in producers:
            sent.update(p.sent)
            acked.update(p.acked)
        seen_this_round = set()
        for item_id in plain.confirmed:
            deliveries.setdefault(item_id, []).append((rnd, "get", True))
            if item_id in seen_this_round:
                errors.append(f"round {rnd}: {item_id} handed out twice in one life of the server")
            seen_this_round.add(item_id)
        for opener in openers:
            closed = set(opener.confirmed)
            for item_id in opener.opened:
                deliveries.setdefault(item_id, []).append((rnd, "open", item_id in closed))
                if item_id in seen_this_round:
                    errors.append(f"round {rnd}: {item_id} handed out twice in one life of the server")
                seen_this_round.add(item_id)
            if opener.open_at_kill is not None:
                open_at_kill.append((rnd, opener.open_at_kill))
        if plain.inflight:
            cut_gets.append((rnd, plain.partial))
        for w in workers:
            if w.error:
                errors.append(f"round {rnd}: {type(w).__name__}: {w.error}")

    # The last life: drain everything, then stop cleanly.
    srv.start()
    if scheduling:   # the delayed items fire first (every delay is under 150 ms)
        with srv.client() as c:
            c.get_data(f"{QUEUE}/peek")  # opens the queue: items open at the kill are settled
            wait_until(lambda: c.stats().get(f"queue_{QUEUE}_delayed_items", "0") == "0", timeout=10)
    left = drain(srv.port)
    if scheduling:
        left += drain(srv.port, queue=QUEUE + "_errors")

        def buckets():   # delay buckets left: hidden queues whose NAME holds the byte 0x1e
            left = []
            for d in os.listdir(srv.data):
                try:
                    if d.startswith("q-") and b"\x1e" in (srv.data / d / "NAME").read_bytes():
                        left.append(d)
                except FileNotFoundError:
                    pass   # deleted while we looked
            return left
        # every bucket fired in some life: each goes once indexed, and a sync covers its copies
        wait_until(lambda: not buckets(), timeout=15)
    with srv.client() as c:
        logsize = c.stats().get(f"queue_{QUEUE}_logsize")
    srv.stop()
    final = rounds

    # -- the proofs ----------------------------------------------------------------
    unknown = [i for i in list(deliveries) + left if i not in sent]
    if unknown:
        errors.append(f"{len(unknown)} ids handed out that no producer sent: {unknown[:5]}")
    if len(left) != len(set(left)):
        dup = sorted({i for i in left if left.count(i) > 1})
        errors.append(f"the drain handed out {len(dup)} ids twice: {dup[:5]}")
    for item_id in left:
        deliveries.setdefault(item_id, []).append((final, "drain", True))

    # An answered removal is never undone.
    undone = []
    for item_id, ds in deliveries.items():
        for n, (rnd, kind, confirmed) in enumerate(ds):
            if confirmed and n + 1 < len(ds):
                undone.append(f"{item_id}: removed by {kind} in round {rnd}, handed out again "
                              f"({ds[n + 1][1]} in round {ds[n + 1][0]})")
    if undone:
        errors.append(f"{len(undone)} answered removals were undone by a crash:\n  " + "\n  ".join(undone[:10]))

    # Every STORED id was handed out or is still there, and every id open at
    # a kill came back (at-least-once for reliable reads), less what the plain
    # gets whose answer a kill cut may have taken: at most one item each, one
    # that was there in the get's round.
    # unexplained[id] = the first round in which a plain get could have taken it
    unexplained = {i: round_of(i) for i in acked if i not in deliveries}
    missing = sorted(unexplained)
    redelivered = 0
    for rnd, item_id in open_at_kill:
        if any(d[0] > rnd for d in deliveries.get(item_id, [])):
            redelivered += 1
        else:   # given back at the restart, so takeable from the next round on
            unexplained[item_id] = max(unexplained.get(item_id, 0), rnd + 1)
    complaint = check_unexplained(unexplained, [r for r, _ in cut_gets])
    if complaint:
        history = [f"{i}: answered STORED in round {round_of(i)}, "
                   + (f"open at the kill of round(s) {[r for r, j in open_at_kill if j == i]}, "
                      if any(j == i for _, j in open_at_kill) else "")
                   + f"handed out (round, how, confirmed): {deliveries.get(i) or 'never'}"
                   for i in sorted(unexplained)[:20]]
        errors.append(complaint + "\n  " + "\n  ".join(history)
                      + f"\n  plain gets cut by a kill (round, what of the answer arrived): {cut_gets}")

    # FIFO: ids of one producer that were never handed out before the drain
    # come out of the drain in the order they were set.
    fresh = [i for i in left if len(deliveries[i]) == 1]
    by_producer = {}
    for i in fresh:
        by_producer.setdefault(i.split("s")[0], []).append(i)
    for k, ids in by_producer.items():
        if ids != sorted(ids) and not scheduling:
            errors.append(f"drain: items of producer {k} out of order: {ids[:10]}")

    # Disk space came back: after the drain only a few segments are left, once
    # the removals are durable (the next periodic sync deletes them).
    def seg_files():
        return [p for p in listing(srv.data) if p.endswith(".dat")]
    wait_until(lambda: len(seg_files()) <= max(4, 2 * len([p for p in os.listdir(srv.data) if p.startswith("q-")])),
               timeout=10)
    segs = seg_files()

    confirmed = sum(1 for ds in deliveries.values() for d in ds if d[2] and d[1] != "drain")
    print(f"\ncrash test (fsync {fsync}, seed {seed}): rounds={rounds} stored={len(acked)} "
          f"sent={len(sent)} confirmed={confirmed} redelivered_opens={redelivered} "
          f"open_at_kill={len(open_at_kill)} cut_plain_gets={len(cut_gets)} "
          f"missing={len(missing)} open_never_back={sorted(set(unexplained) - set(missing))[:5]} "
          f"drained={len(left)} segments_left={len(segs)} logsize={logsize}")
    assert rounds >= ROUNDS, f"only {rounds} rounds ran within the time bound"
    assert not errors, f"seed {seed}:\n" + "\n".join(errors)
    # (with lanes, buckets and an _errors queue: one or two segments each)
    folders = len([p for p in os.listdir(srv.data) if p.startswith("q-")])
    assert len(segs) <= max(4, 2 * folders), f"after draining everything {len(segs)} segment files are left: {segs}"
