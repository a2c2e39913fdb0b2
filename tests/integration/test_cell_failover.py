"""Failover under load (issue 15): kill -9 of the leader, again and again.

Writers log an id only once it was answered STORED; consumers take items with
/open and log an id only once its /close was answered. After every kill the
old leader is started again (it comes back as a follower). At the end the
queue is drained, and:
- no acknowledged item is lost (each is confirmed or still in the queue);
- no confirmed item is handed out again (never confirmed twice, never left);
- the first set answered STORED after each kill came within 2 s, with a
  median under 1 s (sanitizer builds: 6 s and 3 s, they run several times
  slower).
KILLS (default 20) sets the number of kills.
"""

import os
import random
import statistics
import threading
import time

import pytest

from cell_harness import Cell, set_item
from harness import thread_sanitized, DARNER_BIN, UNDER_WINE, Client, ProtocolError, sanitized, wait_until

pytestmark = [pytest.mark.skipif(UNDER_WINE, reason="cells are not built for Windows"),
              pytest.mark.skipif(thread_sanitized(DARNER_BIN), reason="cells under TSan: docs/hardening.md")]

KILLS = int(os.environ.get("CELL_KILLS", "20"))
SLOW = sanitized(DARNER_BIN)
FIRST_ANSWER_MAX = 6.0 if SLOW else 2.0
FIRST_ANSWER_MEDIAN = 3.0 if SLOW else 1.0


class Load:
    def __init__(self, cell, writers=3, consumers=2):
        self.cell = cell
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked = set()
        self.confirmed = []
        self.opened = []
        self.unsure = set()  # a /close sent and not answered
        self.errors = []
        self.threads = [threading.Thread(target=self.writer, args=(w,), daemon=True) for w in range(writers)]
        self.threads += [threading.Thread(target=self.consumer, daemon=True) for _ in range(consumers)]

    def port(self):
        return random.choice(self.cell.members).port

    def writer(self, w):
        seq = 0
        while not self.stop.is_set():
            try:
                with Client(self.port(), timeout=5.0) as c:
                    while not self.stop.is_set():
                        seq += 1
                        ident = b"w%d-%d" % (w, seq)
                        if c.set("fo", ident) == "STORED":
                            with self.lock:
                                self.acked.add(ident)
                        else:
                            break  # SERVER_ERROR: a new connection (maybe to a new leader)
            except (OSError, ProtocolError, ConnectionError):
                time.sleep(0.02)

    def consumer(self):
        closing = None  # the item whose /close is on its way
        while not self.stop.is_set():
            try:
                with Client(self.port(), timeout=5.0) as c:
                    while not self.stop.is_set():
                        item = c.get_data("fo/open/t=200")
                        if item is None:
                            continue
                        with self.lock:
                            self.opened.append(item)
                        closing = item
                        answer = c.cmd("get fo/close")
                        closing = None
                        with self.lock:
                            if answer == "END":
                                self.confirmed.append(item)
                            else:
                                self.unsure.add(item)
                        if answer != "END":
                            break
            except (OSError, ProtocolError, ConnectionError):
                if closing is not None:
                    # its /close was sent and not answered: it may have been
                    # committed (the item gone) or not (it comes back)
                    with self.lock:
                        self.unsure.add(closing)
                    closing = None
                time.sleep(0.02)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def first_stored_after(cell, t0, limit):
    """Seconds from t0 to the first set answered STORED through any member."""
    def probe():
        for m in cell.members:
            if m.running() and set_item(m.port, "probe", b"p", timeout=1.0) == "STORED":
                return True
        return False
    assert wait_until(probe, timeout=limit, interval=0.01), cell.logs()
    return time.monotonic() - t0


def test_kill_the_leader_under_load(tmp_path):
    cell = Cell(tmp_path, n=3).start()
    try:
        cell.leader()
        waits = []
        with Load(cell) as load:
            wait_until(lambda: len(load.acked) > 100, timeout=15.0)
            for _ in range(KILLS):
                lead = cell.leader(timeout=20.0)
                t0 = time.monotonic()
                cell.kill(lead.id)
                waits.append(first_stored_after(cell, t0, 20.0))
                cell.restart(lead.id)
                # some load on the new leader before the next kill
                n = len(load.acked)
                wait_until(lambda: len(load.acked) > n + 50, timeout=15.0)
        lead = cell.leader()
        drained = []
        with lead.client() as c:
            # the consumers' connections are closed, but the leader may not
            # have given their open items back yet: drain until none is open
            def drained_all():
                while True:
                    d = c.get_data("fo")
                    if d is None:
                        break
                    drained.append(d)
                return c.stat("open_transactions") == "0"
            assert wait_until(drained_all, timeout=10.0)
        confirmed = load.confirmed
        lost = load.acked - set(confirmed) - set(drained) - load.unsure
        twice = {x for x in confirmed if confirmed.count(x) > 1}
        again = set(confirmed) & set(drained)
        reopened = len(load.opened) - len(set(load.opened))
        print(f"acked {len(load.acked)}, confirmed {len(confirmed)}, drained {len(drained)}, "
              f"handed out open again {reopened}, closes unanswered {len(load.unsure)}, first STORED after a kill (s): "
              f"median {statistics.median(waits):.3f}, max {max(waits):.3f}, all {[round(w, 3) for w in waits]}")
        assert not lost, (f"{len(lost)} acknowledged items lost, e.g. {sorted(lost)[:5]}; "
                          f"of them handed out open: {sorted(set(load.opened) & lost)[:5]}")
        assert not twice, f"confirmed twice: {sorted(twice)[:5]}"
        assert not again, f"confirmed, then still in the queue: {sorted(again)[:5]}"
        assert max(waits) < FIRST_ANSWER_MAX, waits
        assert statistics.median(waits) < FIRST_ANSWER_MEDIAN, waits
    finally:
        bad = cell.close()
    assert not bad, "\n".join(bad)
