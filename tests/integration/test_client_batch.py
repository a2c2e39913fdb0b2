"""Batch enqueue and batch take in libdarner (darner_set_batch,
darner_get_batch), through darner-cli's `load --batch N` and
`drain --batch N`: pipelined sets on one connection, multi-key gets.
"""

import os
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from harness import DARNER_BIN, Client

from test_client_cli import CLI, cli, cli_json, lp_decode, lp_encode, queue_stat


@pytest.fixture(autouse=True)
def _cli_built():
    if not os.access(CLI, os.X_OK):
        pytest.fail(f"darner-cli not found: {CLI} (build the project or set DARNER_CLI)")


def conf(tmp_path, text):
    p = tmp_path / "darner.conf"
    p.write_text(text)
    return p


def raw_items(server, q):
    """Every item of q, taken one plain get at a time."""
    out = []
    with Client(server.port) as c:
        while (d := c.get_data(q)) is not None:
            out.append(d)
    return out


# ---- batch enqueue -----------------------------------------------------------


def test_a_batch_of_many_items_is_stored_in_order(server):
    # 5,000 items in batches of 3,000: over one send window (1,024 items)
    items = [b"item %05d" % i for i in range(5000)]
    out = cli_json(server, "load", "--batch", "3000", "--flags", "7", "q", input=b"\n".join(items) + b"\n")
    assert out == {"ok": True, "queue": "q", "items": 5000, "bytes": sum(map(len, items))}
    with Client(server.port) as c:
        assert c.get("q") == (7, items[0])      # the flags of every set
    assert raw_items(server, "q") == items[1:]


def test_a_batch_where_the_queue_limit_refuses_some_items(make_server, tmp_path):
    s = make_server("-c", conf(tmp_path, "[queue]\nmax_items = 5\n"))
    p = cli(s, "load", "--batch", "10", "q", input=b"".join(b"%d\n" % i for i in range(1, 9)), check=2)
    assert b"item 6" in p.stderr and b"NOT_STORED" in p.stderr, p.stderr
    assert b"5 items were loaded before the error" in p.stderr
    assert raw_items(s, "q") == [b"1", b"2", b"3", b"4", b"5"]
    # the connection stays usable after NOT_STORED: a single put says why
    p = cli(s, "shell", input=b"\n".join([b"put q a"] * 6 + [b"put q b", b"get q"]) + b"\n", check=0)
    assert p.stdout.count(b"OK") == 5 and b"\na\n" in p.stdout, p.stdout
    assert b"no room: the queue is full" in p.stderr or b"NOT_STORED" in p.stderr, p.stderr


def test_a_refused_item_in_the_middle_is_named_and_the_rest_are_stored(make_server, tmp_path):
    s = make_server("-c", conf(tmp_path, "[queue]\nmax_item_size = 10\n"))
    p = cli(s, "load", "--batch", "10", "q", input=b"a\n" + b"x" * 20 + b"\nb\n", check=2)
    assert b"item 2 was the first not loaded" in p.stderr, p.stderr
    assert raw_items(s, "q") == [b"a", b"b"]   # exactly the one refused is missing
    out = cli_json(s, "load", "--batch", "10", "q", input=b"x" * 20 + b"\n", check=2)
    assert out["ok"] is False and "item 1" in out["error"], out


def test_load_with_sync_in_batches(server):
    items = [b"s%d" % i for i in range(250)]
    cli(server, "load", "--sync", "--batch", "100", "sq", input=b"\n".join(items) + b"\n", check=0)
    assert raw_items(server, "sq") == items


def test_load_batch_option_is_checked(server):
    for bad in ("0", "-1", "x", "100001"):
        p = cli(server, "load", "--batch", bad, "q", input=b"a\n", check=2)
        assert b"--batch" in p.stderr
    assert queue_stat(server, "q", "items") == 0


# ---- batch take --------------------------------------------------------------


def test_a_batch_take_of_fewer_items_than_asked(server):
    cli(server, "load", "q", input=b"1\n2\n3\n", check=0)
    start = time.monotonic()
    assert cli(server, "drain", "--batch", "10", "q", check=0).stdout == b"1\n2\n3\n"
    assert time.monotonic() - start < 5
    assert queue_stat(server, "q", "items") == 0
    assert queue_stat(server, "q", "open_transactions") == 0


def test_a_batch_take_that_waits(server):
    def later():
        time.sleep(0.5)
        with Client(server.port) as c:
            for d in (b"w1", b"w2"):
                assert c.set("wq", d) == "STORED"
    t = threading.Thread(target=later)
    start = time.monotonic()
    t.start()
    p = cli(server, "drain", "--batch", "10", "--wait", "3000", "--max", "1", "wq", check=0)
    t.join()
    assert time.monotonic() - start >= 0.4
    assert p.stdout == b"w1\n"
    assert raw_items(server, "wq") == [b"w2"]
    start = time.monotonic()
    assert cli(server, "drain", "--batch", "10", "--wait", "300", "wq", check=0).stdout == b""
    assert time.monotonic() - start >= 0.25


def test_batch_take_max_counts_items(server):
    cli(server, "load", "m", input=b"".join(b"%d\n" % i for i in range(25)), check=0)
    p = cli(server, "drain", "--batch", "10", "--max", "13", "m", check=0)
    assert p.stdout == b"".join(b"%d\n" % i for i in range(13))
    assert queue_stat(server, "m", "items") == 12


def test_batch_take_over_many_request_windows(server):
    # a 200-byte name: 2 keys a request line, many lines and windows a batch
    q = "n" * 200
    items = [b"%d" % i for i in range(700)]
    cli(server, "load", "--batch", "100", q, input=b"\n".join(items) + b"\n", check=0)
    assert cli(server, "drain", "--batch", "500", q, check=0).stdout == b"\n".join(items) + b"\n"


def test_drain_batch_lines_puts_an_item_holding_a_newline_back(server):
    with Client(server.port) as c:
        for d in (b"ok", b"two\nlines", b"after"):
            assert c.set("nl", d) == "STORED"
    p = cli(server, "drain", "--batch", "10", "nl", check=2)
    assert p.stdout == b"ok\n"
    assert b"--length-prefixed" in p.stderr and b"put back" in p.stderr, p.stderr
    assert raw_items(server, "nl") == [b"two\nlines", b"after"]    # at the end, in order


# ---- a connection that breaks mid-batch ---------------------------------------


def scripted_server(answer, expect):
    """A fake server on a free port: reads until `expect` bytes came (or the
    client stops sending), sends `answer` and closes. Returns (port, thread).
    A connection that asks `cluster` first (the client's discovery of
    cells, docs/client.md) is answered END, as a single server answers it,
    and the next connection is the scripted one."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)

    def run():
        while True:
            conn, _ = lsock.accept()
            conn.settimeout(5)
            got = b""
            while len(got) < 9 and b"\n" not in got:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                got += chunk
            if got != b"cluster\r\n":
                break
            conn.sendall(b"END\r\n")
            conn.close()
        try:
            while expect not in got:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                got += chunk
        except socket.timeout:
            pass
        conn.sendall(answer)
        conn.close()
        lsock.close()
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return lsock.getsockname()[1], t


def test_a_batch_take_cut_short_keeps_the_items_received():
    # two items answered, then the connection goes: both are written, the
    # rest of the batch (handed out or not) is reported lost
    port, t = scripted_server(b"VALUE q 0 1\r\na\r\nVALUE q 3 2\r\nbc\r\n", b"\r\n")
    p = cli(f"127.0.0.1:{port}", "drain", "--batch", "10", "q", check=2)
    t.join(10)
    assert p.stdout == b"a\nbc\n"
    assert b"connection lost" in p.stderr, p.stderr


def test_a_batch_enqueue_cut_short_names_the_first_item_not_known_stored():
    port, t = scripted_server(b"STORED\r\nSTORED\r\nNOT_STORED\r\nSTORED\r\n", b"i5\r\n")
    p = cli(f"127.0.0.1:{port}", "load", "--batch", "10", "q",
            input=b"".join(b"i%d\n" % i for i in range(10)), check=2)
    t.join(10)
    # items 1, 2 and 4 answered STORED; 3 refused; 5 on never answered
    assert b"item 3 was the first not loaded" in p.stderr and b"3 items were loaded" in p.stderr, p.stderr
    assert b"item 3 not stored (no room: the queue is full" in p.stderr, p.stderr


# ---- round trips -------------------------------------------------------------


def test_load_drain_round_trip_with_batches_lines(server):
    lines = [f"line {i} \u00e9 \t".encode() for i in range(3000)] + [b"", b"last"]
    data = b"\n".join(lines) + b"\n"
    out = cli_json(server, "load", "--batch", "100", "src", input=data)
    assert out["items"] == len(lines)
    p = cli(server, "drain", "--batch", "100", "src", check=0)
    assert p.stdout == data
    assert queue_stat(server, "src", "items") == 0


def test_load_drain_round_trip_with_batches_length_prefixed(server):
    # small items batched, one over 64 KiB streamed alone between them
    items = [b"", b"\n", b"\r\nEND\r\n", bytes(range(256)), os.urandom(200 * 1024), b"VALUE x 0 1\r\n"] + \
        [b"%d" % i for i in range(300)]
    cli(server, "load", "--length-prefixed", "--batch", "50", "bin", input=lp_encode(items), check=0)
    assert queue_stat(server, "bin", "items") == len(items)
    p = cli(server, "drain", "--length-prefixed", "--batch", "64", "bin", check=0)
    assert p.stdout == lp_encode(items)
    assert lp_decode(p.stdout) == items


def test_load_length_prefixed_truncated_input_in_a_batch(server):
    good = lp_encode([b"one", b"two"])
    p = cli(server, "load", "--length-prefixed", "--batch", "10", "t",
            input=good + struct.pack(">I", 10) + b"abc", check=2)
    assert b"ends inside item 3" in p.stderr
    assert raw_items(server, "t") == [b"one", b"two"]     # the whole items before it


# ---- fleet -------------------------------------------------------------------


def test_each_batch_goes_to_one_server_of_a_fleet(make_server):
    fleet = [make_server() for _ in range(3)]
    items = [b"%03d" % i for i in range(300)]
    cli(fleet, "load", "--batch", "50", "fq", input=b"\n".join(items) + b"\n", check=0)
    runs = []
    for s in fleet:
        got = raw_items(s, "fq")
        assert len(got) % 50 == 0
        runs += [got[k:k + 50] for k in range(0, len(got), 50)]
    # every batch whole and in order on its server
    assert sorted(runs) == [items[k:k + 50] for k in range(0, 300, 50)]


def test_batch_take_collects_from_every_server_of_a_fleet(make_server):
    fleet = [make_server() for _ in range(3)]
    for n, s in enumerate(fleet):
        with Client(s.port) as c:
            for i in range(4):
                assert c.set("fq", b"s%d-%d" % (n, i)) == "STORED"
    p = cli(fleet, "drain", "--batch", "10", "--max", "10", "fq", check=0)
    got = p.stdout.split()
    assert len(got) == 10 and len(set(got)) == 10
    assert sum(queue_stat(s, "fq", "items") for s in fleet) == 2
