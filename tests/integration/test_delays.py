"""Delayed items: set q/delay=MS, set q/at=EPOCH_MS, default_delay, max_delay,
get q/peek/delayed, kick, restarts (docs/scheduling.md)."""

import time

from harness import drain_queue


def write(tmp_path, text):
    p = tmp_path / "darner.conf"
    p.write_text(text)
    return p


def test_a_delayed_item_becomes_visible_at_its_time(client, clients, server):
    t0 = time.monotonic()
    assert client.set("q/delay=400", b"later") == "STORED"
    assert client.set("q", b"now") == "STORED"
    assert client.get_data("q") == b"now"
    assert client.get_data("q") is None                      # not yet
    assert client.stat("queue_q_delayed_items") == "1"
    other = clients(server)
    assert other.get_data("q/t=5000") == b"later"            # a waiting get is served when it is due
    waited = time.monotonic() - t0
    assert 0.39 < waited < 3, waited
    assert other.stat("queue_q_delayed_items") == "0"


def test_at_takes_a_unix_time_in_ms_and_a_past_time_is_at_once(client):
    due = int(time.time() * 1000) + 300
    assert client.set(f"q/at={due}", b"a") == "STORED"
    assert client.set("q/at=1000", b"past") == "STORED"       # 1970: visible at once
    assert client.get_data("q") == b"past"
    assert client.get_data("q/t=5000") == b"a"
    assert int(time.time() * 1000) >= due


def test_items_fire_in_due_order_fifo_among_equal_times(client):
    due = int(time.time() * 1000) + 400
    for i, d in enumerate([300, 100, 200, 100, 0]):
        assert client.set(f"q/at={due + d}", f"i{i}".encode()) == "STORED"
    got = [client.get_data("q/t=5000") for _ in range(5)]
    assert got == [b"i4", b"i1", b"i3", b"i2", b"i0"]


def test_a_delayed_item_joins_its_level(client):
    assert client.set("q/pri=0/delay=200", b"urgent-later") == "STORED"
    assert client.set("q/pri=9", b"bulk") == "STORED"
    time.sleep(0.3)                                           # both visible now (no readiness signal to await)
    assert drain_queue(client, "q") == [b"urgent-later", b"bulk"]


def test_bad_delays_are_refused_and_store_nothing(make_server, tmp_path):
    s = make_server("-c", write(tmp_path, '[queue "q"]\nmax_delay = 1h\n'))
    with s.client() as c:
        for key, why in [("q/delay=x", "delay is a number"), ("q/delay=5/at=5", "combination"),
                         ("q/at=-1", "at is a Unix time"), ("q/delay=7200000", "max_delay"),
                         ("q/dealy=5", "bad option: unknown")]:
            c.send(f"set {key} 0 0 1\r\nx\r\n".encode())
            line = c.readline()
            assert line.startswith("CLIENT_ERROR") and why in line, (key, line)
        c.send(b"set q/delay=5000 0 2 1\r\nx\r\n")             # expires in 2 s, due in 5 s
        assert c.readline() == "CLIENT_ERROR bad option: delay past the item's expiry"
        st = c.stats()
        assert st.get("queue_q_items", "0") == "0" and st.get("queue_q_delayed_items", "0") == "0"


def test_default_delay(make_server, tmp_path):
    s = make_server("-c", write(tmp_path, '[queue "q"]\ndefault_delay = 300ms\n'))
    with s.client() as c:
        assert c.set("q", b"a") == "STORED"
        assert c.get_data("q") is None
        assert c.get_data("q/t=5000") == b"a"


def test_peek_delayed_and_kick(client):
    assert client.set("q/delay=600000", b"ten-min") == "STORED"
    assert client.set("q/delay=300000", b"five-min") == "STORED"
    assert client.get_full("q/peek/delayed") == ("q/peek/delayed", 0, b"five-min")
    assert client.get_data("q") is None
    assert client.cmd("kick q 1") == "KICKED 1"
    assert client.get_data("q") == b"five-min"
    assert client.cmd("kick q 10") == "KICKED 1"
    assert client.get_data("q") == b"ten-min"
    assert client.cmd("kick q 10") == "KICKED 0"
    assert client.get_data("q/peek/delayed") is None
    assert client.cmd("get q/delayed").startswith("CLIENT_ERROR")


def test_flush_drops_delayed_items(client):
    assert client.set("q/delay=100000", b"a") == "STORED"
    assert client.cmd("flush q") == "END"
    assert client.stat("queue_q_delayed_items") == "0"
    assert client.cmd("kick q 5") == "KICKED 0"


def test_delayed_items_survive_kill_9_and_fire_after_the_restart(make_server):
    s = make_server()
    with s.client() as c:
        for i in range(20):
            assert c.set(f"q/delay={1000 + 50 * i}", f"d{i}".encode()) == "STORED"
        assert c.set("q/delay=400", b"soon") == "STORED"
        assert c.get_data("q/t=5000") == b"soon"                # one fired before the crash
    s.kill()
    s.start()
    with s.client() as c:
        assert c.stat("queue_q_delayed_items") == "20"
        got = [c.get_data("q/t=5000") for _ in range(20)]
        assert got == [f"d{i}".encode() for i in range(20)]
        assert c.get_data("q") is None
    s.kill()
    s.start()
    with s.client() as c:                                       # nothing fires twice after another crash
        assert c.get_data("q") is None and c.stat("queue_q_delayed_items") == "0"


def test_a_large_delayed_item(client):
    big = bytes(range(256)) * 2000                                # 512,000 bytes: streamed to its own file
    assert client.set("q/delay=200", big) == "STORED"
    assert client.get_data("q") is None
    assert client.get_data("q/t=5000") == big


def test_pymemcache_sets_a_delayed_item(server):
    from pymemcache.client.base import Client
    c = Client(("127.0.0.1", server.port), timeout=5)
    try:
        assert c.set("q/delay=300", b"x") is True
        assert c.get("q") is None
        assert c.get("q/t=5000") == b"x"
    finally:
        c.close()



def count_of(client, key):
    """The delivery count a gets answer carries in its cas (high 16 bits), or None."""
    client.send(f"gets {key}\r\n".encode())
    line = client.readline()
    if line == "END":
        return None
    parts = line.split()
    client.read_exact(int(parts[3]) + 2)
    assert client.readline() == "END"
    return int(parts[4]) >> 48


def test_abort_with_a_delay_gives_the_item_back_later(client, clients, server):
    assert client.set("q", b"job") == "STORED"
    assert client.get_data("q/open") == b"job"
    t0 = time.monotonic()
    assert client.cmd("get q/abort/delay=400") == "END"
    assert client.get_data("q") is None                       # not visible yet
    assert client.stat("queue_q_delayed_items") == "1"
    assert client.cmd("get q/close") == "END"                 # nothing open any more
    other = clients(server)
    assert count_of(other, "q/open/t=5000") == 2              # back, its count kept
    assert time.monotonic() - t0 > 0.39
    assert client.cmd("get q/delay=5").startswith("CLIENT_ERROR")   # a get's delay is an abort's


def test_retry_delay_doubles_with_each_delivery_up_to_its_max(make_server, tmp_path):
    s = make_server("-c", write(tmp_path, '[queue "q"]\nretry_delay = 200ms,300ms\n'))
    with s.client() as c:
        assert c.set("q", b"job") == "STORED"
        waits = []
        for n in (1, 3):                                       # each round hands it out twice
            assert count_of(c, "q/open") == n
            t0 = time.monotonic()
            assert c.cmd("get q/abort") == "END"               # waits 200 ms, then 300 (not 800)
            assert c.get_data("q") is None
            assert count_of(c, "q/open/t=5000") == n + 1
            waits.append(time.monotonic() - t0)
            assert c.cmd("get q/abort/delay=0") == "END"        # an explicit 0: back at once
        assert 0.19 < waits[0] < 0.29 + 1 and 0.29 < waits[1] < 0.39 + 1, waits
        c.send(b"dump_config q\r\n")
        lines = []
        while (line := c.readline()) != "END":
            lines.append(line)
        assert any("retry_delay=200ms,300ms" in ln for ln in lines), lines


def test_an_item_that_expires_while_delayed_moves_to_expire_to_queue(make_server, tmp_path):
    # given back with a delay past its expiry: when it comes due it has
    # expired, and goes to expire_to_queue (not dropped) by the sweep, as
    # any expired item does, counted as expired
    conf = write(tmp_path, "[queue \"q\"]\nexpire_to_queue = q_late\n")
    s = make_server("-c", conf, "--expiry-sweep", "50ms")
    with s.client() as c:
        c.send(b"set q 5 1 3\r\njob\r\n")                       # expires in 1 s
        assert c.readline() == "STORED"
        assert c.get_data("q/open") == b"job"
        assert c.cmd("get q/abort/delay=1300") == "END"
        c.send(b"get q_late/t=5000\r\n")                        # woken by the move
        assert c.readline() == "VALUE q_late/t=5000 5 3"
        assert c.readline() == "job" and c.readline() == "END"
        st = c.stats()
        assert st["queue_q_delayed_items"] == "0" and st["queue_q_expired_items"] == "1"
        assert st["queue_q_items"] == "0"


def test_an_alias_delays_each_copy_by_its_destinations_settings(make_server, tmp_path):
    conf = write(tmp_path, '[queue "later"]\ndefault_delay = 60s\n'
                           '[queue "strict"]\nmax_delay = 1s\n'
                           '[alias "both"]\ndestination_queues = later, now\n'
                           '[alias "checked"]\ndestination_queues = fresh, strict\n')
    s = make_server("-c", conf)
    with s.client() as c:
        assert c.set("both", b"x") == "STORED"
        big = 300 * 1024                                          # streamed: the same rule
        c.send(b"set both 0 0 %d\r\n" % big + b"b" * big + b"\r\n")
        assert c.readline() == "STORED"
        st = c.stats()
        assert st["queue_later_delayed_items"] == "2" and st["queue_later_items"] == "0"
        assert st["queue_now_items"] == "2" and st.get("queue_now_delayed_items", "0") == "0"
        assert c.get_data("now") == b"x"
        # a delay one destination refuses stores nothing and makes no queue
        assert c.cmd("set checked/delay=5000 0 0 1\r\ny").startswith("CLIENT_ERROR bad option: delay over")
        c.send(b"set checked/delay=5000 0 0 %d\r\n" % big + b"b" * big + b"\r\n")
        assert c.readline().startswith("CLIENT_ERROR bad option: delay over")
        st = c.stats()
        assert "queue_fresh_items" not in st and "queue_strict_items" not in st
        assert c.set("checked/delay=500", b"z") == "STORED"
        assert c.get_data("fresh/t=5000") == b"z" and c.get_data("strict/t=5000") == b"z"


# ---- the count of delayed items, and the limits that count them (issue 11)

def test_the_delayed_count_follows_set_fire_kick_flush_and_kill_9(make_server):
    s = make_server()
    with s.client() as c:
        for i in range(5):
            assert c.set(f"q/delay={600000 + i}", b"later%d" % i) == "STORED"
        assert c.set("q/delay=300", b"soon") == "STORED"
        assert c.stat("queue_q_delayed_items") == "6"
        assert c.get_data("q/t=5000") == b"soon"                   # fired
        assert c.stat("queue_q_delayed_items") == "5"
        assert c.cmd("kick q 1") == "KICKED 1"
        assert c.stat("queue_q_delayed_items") == "4"
        assert c.stat("queue_q_items") == "1"                       # the kicked one: visible
    s.kill()
    s.start()
    with s.client() as c:                                          # counted again after the crash
        assert c.stat("queue_q_delayed_items") == "4"
        assert c.set("q/delay=600000", b"more") == "STORED"
        assert c.stat("queue_q_delayed_items") == "5"
        assert c.cmd("flush q") == "END"
        assert c.stat("queue_q_delayed_items") == "0"
    s.kill()
    s.start()
    with s.client() as c:
        assert c.stat("queue_q_delayed_items") == "0"


def test_stats_after_a_restart_counts_every_delayed_item_without_holding_up_others(make_server):
    s = make_server()
    n, pad = 20000, b"p" * 150                                    # about 3.4 MiB: counted in several steps
    with s.client() as c:
        for start in range(0, n, 1000):
            c.send(b"".join(b"set q/delay=%d 0 0 %d\r\n%s\r\n" % (600000 + (i * 7919) % 86400000, len(pad), pad)
                            for i in range(start, start + 1000)))
            for _ in range(1000):
                assert c.readline() == "STORED"
        assert c.stat("queue_q_delayed_items") == str(n)
    s.kill()
    s.start()
    with s.client() as c1, s.client() as c2:
        c1.send(b"stats\r\n")                                       # may wait for the count
        assert c2.cmd("version").startswith("VERSION ")            # answered meanwhile
        st = {}
        while True:
            line = c1.readline()
            if line == "END":
                break
            p = line.split()
            st[p[1]] = p[2]
        assert st["queue_q_delayed_items"] == str(n)
        assert st["queue_q_items"] == "0"


def test_max_items_counts_delayed_items(make_server, tmp_path):
    s = make_server("-c", write(tmp_path, '[queue "q"]\nmax_items = 3\n'))
    with s.client() as c:
        assert c.set("q/delay=600000", b"d1") == "STORED"
        assert c.set("q/delay=600000", b"d2") == "STORED"
        assert c.set("q", b"v1") == "STORED"
        assert c.set("q/delay=600000", b"d3") == "NOT_STORED"    # full, as for a plain set
        assert c.set("q", b"v2") == "NOT_STORED"
        st = c.stats()
        assert st["queue_q_items"] == "1" and st["queue_q_delayed_items"] == "2"
    s.kill()
    s.start()
    with s.client() as c:                                          # the first set after a start counts them too
        assert c.set("q/delay=600000", b"d3") == "NOT_STORED"
        assert c.get_data("q") == b"v1"
        assert c.set("q/delay=600000", b"d3") == "STORED"
        assert c.stat("queue_q_delayed_items") == "3"


def test_max_size_counts_delayed_bytes(make_server, tmp_path):
    s = make_server("-c", write(tmp_path, '[queue "q"]\nmax_size = 10\n'))
    with s.client() as c:
        assert c.set("q/delay=600000", b"123456") == "STORED"
        assert c.set("q", b"12345") == "NOT_STORED"
        assert c.set("q/delay=600000", b"1234") == "STORED"
        assert c.set("q", b"1") == "NOT_STORED"
        assert c.cmd("kick q 1") == "KICKED 1"                    # still on disk: visible now
        assert c.set("q", b"1") == "NOT_STORED"
        assert c.get_data("q") == b"123456"
        assert c.set("q", b"12345") == "STORED"


def test_discard_old_when_full_drops_visible_items_never_delayed_ones(make_server, tmp_path):
    s = make_server("-c", write(tmp_path, '[queue "q"]\nmax_items = 2\ndiscard_old_when_full = true\n'))
    with s.client() as c:
        assert c.set("q/delay=600000", b"d1") == "STORED"
        assert c.set("q", b"v1") == "STORED"
        assert c.set("q", b"v2") == "STORED"                      # v1 goes
        assert c.stat("queue_q_discarded") == "1"
        assert c.set("q/delay=600000", b"d2") == "STORED"          # v2 goes
        assert c.set("q/delay=600000", b"d3") == "NOT_STORED"      # only delayed items: refused
        assert c.set("q", b"v3") == "NOT_STORED"
        st = c.stats()
        assert st["queue_q_discarded"] == "2" and st["queue_q_items"] == "0"
        assert st["queue_q_delayed_items"] == "2"
    s.kill()
    s.start()
    with s.client() as c:
        assert c.set("q", b"v4") == "NOT_STORED"
        assert c.stat("queue_q_delayed_items") == "2"
