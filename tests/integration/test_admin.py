"""Kestrel's admin answers: every stats key of Kestrel's list, and
dump_stats [q ...] in Kestrel's layout (docs/protocol.md)."""

GLOBAL = ["uptime", "time", "version", "curr_items", "total_items", "bytes", "curr_connections",
          "total_connections", "cmd_get", "cmd_set", "cmd_peek", "get_hits", "get_misses", "bytes_read",
          "bytes_written", "queue_creates", "queue_deletes", "queue_expires"]
PER_QUEUE = ["items", "bytes", "total_items", "logsize", "expired_items", "age", "discarded", "waiters",
             "open_transactions", "transactions", "canceled_transactions", "lease_expired", "dead_lettered",
             "redeliveries", "total_flushes", "delayed_items", "removed_items", "oldest_item_age_msec", "age_msec",
             "create_time"]


def dump_stats(c, *names):
    c.send(("dump_stats " + " ".join(names)).strip().encode() + b"\r\n")
    out, cur = {}, None
    while True:
        line = c.readline()
        if line == "END":
            return out
        if line.startswith("queue '") and line.endswith("' {"):
            cur = out.setdefault(line[len("queue '"):-3], {})
        elif line == "}":
            cur = None
        else:
            assert line.startswith("  ") and cur is not None, line
            k, v = line[2:].split("=", 1)
            cur[k] = int(v)


def test_stats_has_every_kestrel_key(client):
    assert client.set("q", b"x") == "STORED"
    st = client.stats()
    missing = [k for k in GLOBAL if k not in st] + [f"queue_q_{k}" for k in PER_QUEUE if f"queue_q_{k}" not in st]
    assert not missing, missing


def test_queue_counters_count(client, clients, server):
    for i in range(4):
        assert client.set("q", b"%d" % i) == "STORED"
    client.send(b"set q 0 -1 1\r\nx\r\n")            # already expired
    assert client.readline() == "STORED"
    assert client.get_data("q/open") == b"0"
    assert client.cmd("get q/abort") == "END"         # canceled
    assert client.get_data("q/open") == b"0"
    assert client.cmd("get q/close") == "END"
    for want in (b"1", b"2", b"3"):
        assert client.get_data("q") == want
    assert client.get_data("q") is None               # the expired one is dropped on the way
    assert client.cmd("flush q") == "END"
    d = dump_stats(client, "q")["q"]
    assert d["transactions"] == 2 and d["canceled_transactions"] == 1
    assert d["expired_items"] == 1 and d["total_flushes"] == 1
    assert d["total_items"] == 5 and d["items"] == 0
    st = client.stats()
    assert all(st[f"queue_q_{k}"] == str(v) for k, v in d.items()), (st, d)   # one source for both


def test_dump_stats_lists_every_queue_or_the_ones_named(client):
    for q in ("a", "b", "c"):
        assert client.set(q, b"x") == "STORED"
    assert set(dump_stats(client)) == {"a", "b", "c"}
    assert set(dump_stats(client, "c", "a", "none")) == {"a", "c"}
    assert list(dump_stats(client, "b")["b"]) == PER_QUEUE
