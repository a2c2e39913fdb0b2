"""The memcache text protocol as SPEC section 2 describes it: every request of
its table, every GET option and combination, flags, exptime, noreply,
multi-key get, key echo, errors, pipelining and queue names."""

import socket
import time

import pytest

from harness import Client, drain_queue, listing, wait_until


# --------------------------------------------------------------------------
# The table of SPEC section 2, row by row
# --------------------------------------------------------------------------

def test_set_answers_stored(client):
    client.send(b"set q 0 0 5\r\nhello\r\n")
    assert client.readline() == "STORED"


def test_set_sync_answers_stored_and_item_is_in_the_bare_queue(client):
    client.send(b"set q/sync 0 0 5\r\nhello\r\n")
    assert client.readline() == "STORED"
    assert client.get("q") == (0, b"hello")


def test_get_answers_value_block_then_end_byte_for_byte(client):
    assert client.set("q", b"hello") == "STORED"
    client.send(b"get q\r\n")
    expected = b"VALUE q 0 5\r\nhello\r\nEND\r\n"
    assert client.read_exact(len(expected)) == expected


def test_get_empty_queue_answers_end(client):
    assert client.set("q", b"x") == "STORED"
    assert client.get("q") == (0, b"x")
    assert client.cmd("get q") == "END"


def test_get_nonexistent_queue_answers_end(client):
    assert client.cmd("get nosuchqueue") == "END"


def test_get_removes_the_item(client):
    assert client.set("q", b"one") == "STORED"
    assert client.get_data("q") == b"one"
    assert client.get("q") is None


def test_items_come_out_in_fifo_order(client):
    items = [b"item-%d" % i for i in range(20)]
    for it in items:
        assert client.set("q", it) == "STORED"
    assert drain_queue(client, "q") == items


def gets_value(client, key):
    """A gets answer with one item: (flags, data, cas)."""
    client.send(b"gets %s\r\n" % key.encode())
    parts = client.readline().split(" ")
    assert parts[:2] == ["VALUE", key] and len(parts) == 5, parts
    data = client.read_exact(int(parts[3]))
    assert client.read_exact(2) == b"\r\n"
    assert client.readline() == "END"
    return int(parts[2]), data, int(parts[4])


def test_gets_answers_like_get_with_a_cas_value(client):
    assert client.set("q", b"hello", flags=3) == "STORED"
    assert client.set("q", b"world") == "STORED"
    f1, d1, cas1 = gets_value(client, "q")
    f2, d2, cas2 = gets_value(client, "q")
    assert (f1, d1, f2, d2) == (3, b"hello", 0, b"world")
    # the item id in the low 48 bits, the delivery count (1) in the high 16
    assert cas1 >> 48 == 1 and cas2 >> 48 == 1
    assert (cas2 & (2**48 - 1)) == (cas1 & (2**48 - 1)) + 1
    assert client.cmd("gets q") == "END"


def test_gets_cas_counts_deliveries_of_an_item_given_back(client, clients, server):
    assert client.set("q", b"x") == "STORED"
    _, _, first = gets_value(client, "q/open")
    assert client.cmd("get q/abort") == "END"
    _, _, second = gets_value(client, "q/open")
    other = clients(server)
    client.close()  # the connection goes: the item is given back again
    _, data, third = gets_value(other, "q/open/t=5000")  # waits for the close
    assert data == b"x"
    assert [first >> 48, second >> 48, third >> 48] == [1, 2, 3]
    assert len({c & (2**48 - 1) for c in (first, second, third)}) == 1


def test_a_first_byte_of_0x80_speaks_the_binary_protocol(client):
    # a binary-protocol GET of key "q", opaque 0xdeadbeef: a miss, the connection stays (test_binary.py)
    header = bytes([0x80, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 1]) + bytes.fromhex("deadbeef") + bytes(8)
    client.send(header + b"q")
    reply = client.read_exact(24)
    assert reply[0] == 0x81 and reply[1] == 0x00          # response magic, the request's opcode
    assert reply[6:8] == b"\x00\x01"                       # status: not found
    assert reply[12:16] == bytes.fromhex("deadbeef")      # opaque echoed
    client.read_exact(int.from_bytes(reply[8:12], "big"))
    client.send(b"version\r\n")                           # not a binary request: answered, then closed
    reply = client.read_exact(24)
    assert reply[6:8] == b"\x00\x04"                       # invalid arguments
    client.read_exact(int.from_bytes(reply[8:12], "big"))
    client.expect_closed()


def test_multi_key_get_returns_at_most_one_item_per_queue(client):
    for q, d in [("a", b"a1"), ("a", b"a2"), ("c", b"c1"), ("c", b"c2")]:
        assert client.set(q, d) == "STORED"
    assert client.get_multi(["a", "b", "c"]) == [("a", 0, b"a1"), ("c", 0, b"c1")]
    assert client.get_multi(["a", "b", "c"]) == [("a", 0, b"a2"), ("c", 0, b"c2")]
    assert client.get_multi(["a", "b", "c"]) == []


def test_multi_key_get_answers_in_key_order(client):
    for q in ["x", "y", "z"]:
        assert client.set(q, q.encode()) == "STORED"
    assert [k for k, _, _ in client.get_multi(["z", "x", "y"])] == ["z", "x", "y"]


def test_multi_key_get_with_options_echoes_each_key(client):
    assert client.set("a", b"1") == "STORED"
    assert client.set("b", b"2") == "STORED"
    assert client.get_multi(["a/open", "b/peek"]) == [("a/open", 0, b"1"), ("b/peek", 0, b"2")]
    assert client.cmd("get a/close") == "END"
    assert client.get("a") is None
    assert client.get("b") == (0, b"2")


def test_delete_answers_deleted_and_queue_is_gone(client):
    assert client.set("q", b"1") == "STORED"
    assert client.set("q", b"2") == "STORED"
    assert client.cmd("delete q") == "DELETED"
    assert client.get("q") is None
    assert not any(k.startswith("queue_q_") for k in client.stats())


def test_delete_nonexistent_queue_answers_deleted(client):
    assert client.cmd("delete nosuchqueue") == "DELETED"


def test_queue_can_be_used_again_after_delete(client):
    assert client.set("q", b"old") == "STORED"
    assert client.cmd("delete q") == "DELETED"
    assert client.set("q", b"new") == "STORED"
    assert client.get("q") == (0, b"new")
    assert client.get("q") is None


def test_delete_with_noreply_sends_no_answer(client):
    assert client.set("q", b"x") == "STORED"
    client.send(b"delete q noreply\r\n")
    assert client.cmd("get q") == "END"


def test_flush_answers_end_and_empties_the_queue(client):
    for i in range(3):
        assert client.set("q", b"%d" % i) == "STORED"
    assert client.set("other", b"keep") == "STORED"
    assert client.cmd("flush q") == "END"
    assert client.get("q") is None
    assert client.get("other") == (0, b"keep")


def test_flushed_queue_still_exists(client):
    assert client.set("q", b"1") == "STORED"
    assert client.cmd("flush q") == "END"
    assert client.stat("queue_q_items") == "0"
    assert client.set("q", b"2") == "STORED"
    assert client.get("q") == (0, b"2")


def test_flush_all_answers_ok_and_empties_every_queue(client):
    for q in ["a", "b", "c"]:
        assert client.set(q, b"x") == "STORED"
    assert client.cmd("flush_all") == "OK"
    assert client.get_multi(["a", "b", "c"]) == []


def test_flush_all_with_delay_zero_answers_ok(client):
    # pymemcache sends "flush_all 0".
    assert client.set("a", b"x") == "STORED"
    assert client.cmd("flush_all 0") == "OK"
    assert client.get("a") is None


def test_flush_all_with_noreply_sends_no_answer(client):
    assert client.set("a", b"x") == "STORED"
    client.send(b"flush_all 0 noreply\r\n")
    assert client.cmd("get a") == "END"


def test_stats_answers_stat_lines_then_end(client):
    client.send(b"stats\r\n")
    lines = []
    for _ in range(10000):
        line = client.readline()
        if line == "END":
            break
        lines.append(line)
    else:
        pytest.fail("stats never ended")
    assert lines
    for line in lines:
        parts = line.split(" ", 2)
        assert parts[0] == "STAT" and len(parts) == 3, line
    assert client.cmd("version").startswith("VERSION ")


def test_version_answers_version_line(client):
    line = client.cmd("version")
    assert line.startswith("VERSION ")
    major, minor = line.split(" ", 1)[1].split(".")[:2]
    assert (int(major), int(minor)) >= (1, 0)


def test_quit_closes_the_connection(client):
    client.send(b"quit\r\n")
    client.expect_closed()


def test_verbosity_answers_ok(client):
    assert client.cmd("verbosity 1") == "OK"
    assert client.cmd("version").startswith("VERSION ")


def test_command_words_are_case_insensitive(client):
    client.send(b"SET q 0 0 2\r\nhi\r\n")
    assert client.readline() == "STORED"
    assert client.get("q", command="GET") == (0, b"hi")
    assert client.cmd("Version").startswith("VERSION ")


# --------------------------------------------------------------------------
# Data and flags
# --------------------------------------------------------------------------

def test_binary_data_with_crlf_and_nul_round_trips(client):
    data = b"\r\n\x00END\r\nVALUE x 0 1\r\n" + bytes(range(256))
    assert client.set("q", data) == "STORED"
    assert client.get("q") == (0, data)


def test_empty_item_round_trips(client):
    assert client.set("q", b"") == "STORED"
    client.send(b"get q\r\n")
    assert client.read_exact(len(b"VALUE q 0 0\r\n\r\nEND\r\n")) == b"VALUE q 0 0\r\n\r\nEND\r\n"


@pytest.mark.parametrize("flags", [0, 1, 42, 65535, 4294967295])
def test_flags_are_kept_and_returned(client, flags):
    assert client.set("q", b"data", flags=flags) == "STORED"
    assert client.get("q") == (flags, b"data")


def test_flags_are_kept_per_item(client):
    for i in range(5):
        assert client.set("q", b"d%d" % i, flags=100 + i) == "STORED"
    for i in range(5):
        assert client.get("q") == (100 + i, b"d%d" % i)


# --------------------------------------------------------------------------
# exptime
# --------------------------------------------------------------------------

def test_item_with_zero_exptime_does_not_expire(client):
    assert client.set("q", b"x", exptime=0) == "STORED"
    assert client.get("q") == (0, b"x")


def test_item_with_past_absolute_exptime_is_never_handed_out(client):
    assert client.set("q", b"expired", exptime=int(time.time()) - 100) == "STORED"
    assert client.get("q/peek") is None
    assert client.get("q") is None


def test_item_with_negative_exptime_is_never_handed_out(client):
    assert client.set("q", b"expired", exptime=-1) == "STORED"
    assert client.get("q") is None


def test_expired_item_is_skipped_for_the_next_live_one(client):
    assert client.set("q", b"expired", exptime=int(time.time()) - 100) == "STORED"
    assert client.set("q", b"live") == "STORED"
    assert client.get("q") == (0, b"live")
    assert client.get("q") is None


def test_exptime_just_above_one_million_is_an_absolute_past_time(client):
    assert client.set("q", b"expired", exptime=1000001) == "STORED"
    assert client.get("q") is None


def test_exptime_just_below_one_million_is_relative(client):
    assert client.set("q", b"live", exptime=999999) == "STORED"
    assert client.get("q") == (0, b"live")


def test_future_absolute_exptime_is_handed_out(client):
    assert client.set("q", b"live", exptime=int(time.time()) + 3600) == "STORED"
    assert client.get("q") == (0, b"live")


def test_relative_exptime_expires_the_item(client):
    assert client.set("q", b"short", exptime=1) == "STORED"
    stored_at = time.monotonic()
    assert client.set("q", b"forever") == "STORED"
    assert client.get("q/peek") == (0, b"short")
    # The one unavoidable real wait of the suite: a 1 s lifetime must pass.
    time.sleep(max(0.0, stored_at + 1.2 - time.monotonic()))
    assert client.get("q") == (0, b"forever")
    assert client.get("q") is None


def test_expired_item_is_not_opened(client):
    assert client.set("q", b"expired", exptime=-1) == "STORED"
    assert client.get("q/open") is None
    assert client.cmd("get q/close") == "END"


# --------------------------------------------------------------------------
# noreply
# --------------------------------------------------------------------------

def test_noreply_set_sends_no_answer_and_stores(client):
    client.set("q", b"quiet", noreply=True)
    # The first line after a noreply set must belong to the next request.
    assert client.get("q") == (0, b"quiet")


def test_many_noreply_sets_are_all_stored_in_order(client):
    items = [b"n%d" % i for i in range(50)]
    client.send(b"".join(b"set q 7 0 %d noreply\r\n%s\r\n" % (len(d), d) for d in items))
    assert client.cmd("version").startswith("VERSION ")
    for d in items:
        assert client.get("q") == (7, d)
    assert client.get("q") is None


def test_noreply_sync_set_is_stored(client):
    client.send(b"set q/sync 0 0 3 noreply\r\nabc\r\n")
    assert client.get("q") == (0, b"abc")


# --------------------------------------------------------------------------
# GET options
# --------------------------------------------------------------------------

def test_open_echoes_key_with_option(client):
    assert client.set("q", b"hello") == "STORED"
    client.send(b"get q/open\r\n")
    expected = b"VALUE q/open 0 5\r\nhello\r\nEND\r\n"
    assert client.read_exact(len(expected)) == expected


def test_open_sets_item_aside_until_close(client, server, clients):
    assert client.set("q", b"first") == "STORED"
    assert client.set("q", b"second") == "STORED"
    assert client.get_full("q/open") == ("q/open", 0, b"first")
    other = clients(server)
    assert other.get("q/peek") == (0, b"second")
    assert client.cmd("get q/close") == "END"
    assert other.get("q") == (0, b"second")
    assert other.get("q") is None


def test_close_alone_answers_end(client):
    assert client.set("q", b"x") == "STORED"
    assert client.get("q/open") == (0, b"x")
    assert client.cmd("get q/close") == "END"
    assert client.get("q") is None


def test_close_then_open_confirms_and_opens_next(client):
    for d in [b"1", b"2", b"3"]:
        assert client.set("q", d) == "STORED"
    assert client.get_full("q/open") == ("q/open", 0, b"1")
    assert client.get_full("q/close/open") == ("q/close/open", 0, b"2")
    assert client.get_full("q/close/open") == ("q/close/open", 0, b"3")
    assert client.get("q/close/open") is None
    assert client.get("q") is None


def test_open_then_close_in_reverse_order_is_the_same_combination(client):
    for d in [b"1", b"2"]:
        assert client.set("q", d) == "STORED"
    assert client.get("q/open") == (0, b"1")
    assert client.get_full("q/open/close") == ("q/open/close", 0, b"2")
    assert client.cmd("get q/close") == "END"
    assert client.get("q") is None


def test_abort_answers_end_and_puts_item_back_at_head(client):
    for d in [b"1", b"2"]:
        assert client.set("q", d) == "STORED"
    assert client.get("q/open") == (0, b"1")
    assert client.cmd("get q/abort") == "END"
    assert client.get("q") == (0, b"1")
    assert client.get("q") == (0, b"2")


def test_abort_with_nothing_open_answers_end(client):
    assert client.set("q", b"x") == "STORED"
    assert client.cmd("get q/abort") == "END"
    assert client.get("q") == (0, b"x")


def test_peek_returns_head_without_removing(client):
    assert client.set("q", b"head") == "STORED"
    assert client.set("q", b"tail") == "STORED"
    assert client.get_full("q/peek") == ("q/peek", 0, b"head")
    assert client.get_full("q/peek") == ("q/peek", 0, b"head")
    assert client.get("q") == (0, b"head")
    assert client.get("q/peek") == (0, b"tail")


def test_peek_on_empty_queue_answers_end(client):
    assert client.set("q", b"x") == "STORED"
    assert client.get("q") == (0, b"x")
    assert client.cmd("get q/peek") == "END"


def test_timeout_option_with_item_present_answers_at_once(client):
    assert client.set("q", b"x") == "STORED"
    t0 = time.monotonic()
    assert client.get_full("q/t=5000") == ("q/t=5000", 0, b"x")
    assert time.monotonic() - t0 < 2.0


@pytest.mark.parametrize("key", ["q/open/t=1000", "q/t=1000/open"])
def test_open_with_timeout_in_any_order(client, key):
    assert client.set("q", b"x") == "STORED"
    assert client.get_full(key) == (key, 0, b"x")
    assert client.cmd("get q/close") == "END"
    assert client.get("q") is None


@pytest.mark.parametrize("key", ["q/peek/t=1000", "q/t=1000/peek"])
def test_peek_with_timeout_in_any_order(client, key):
    assert client.set("q", b"x") == "STORED"
    assert client.get_full(key) == (key, 0, b"x")
    assert client.get("q") == (0, b"x")


@pytest.mark.parametrize("key", ["q/close/open/t=1000", "q/t=1000/open/close", "q/open/t=1000/close"])
def test_close_open_with_timeout_in_any_order(client, key):
    for d in [b"1", b"2"]:
        assert client.set("q", d) == "STORED"
    assert client.get("q/open") == (0, b"1")
    assert client.get_full(key) == (key, 0, b"2")
    assert client.cmd("get q/close") == "END"
    assert client.get("q") is None


def test_close_with_timeout_answers_end(client):
    assert client.set("q", b"x") == "STORED"
    assert client.get("q/open") == (0, b"x")
    t0 = time.monotonic()
    reply = client.cmd("get q/close/t=1000")
    # /t= with a lone /close is either refused or harmless; it must never hang
    # past its timeout nor hand out an item.
    assert reply == "END" or reply.startswith("CLIENT_ERROR"), reply
    assert time.monotonic() - t0 < 3.0


# --------------------------------------------------------------------------
# Invalid options: CLIENT_ERROR, connection stays usable
# --------------------------------------------------------------------------

INVALID_KEYS = [
    "q/peek/open",      # peek not with open
    "q/open/peek",
    "q/peek/close",     # peek not with close
    "q/peek/abort",     # peek not with abort
    "q/abort/open",     # abort alone only
    "q/open/abort",
    "q/abort/close",
    "q/close/abort",
    "q/abort/t=100",
    "q/bogus",          # unknown option
    "q/OPEN_NOW",
    "q/open/open",      # repeated option
    "q/close/close",
    "q/peek/peek",
    "q/t=100/t=200",
    "q/t=abc",          # bad timeout
    "q/t=",
    "q/t",
]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_option_is_client_error_and_connection_stays_usable(client, key):
    assert client.set("q", b"keep") == "STORED"
    reply = client.cmd("get " + key)
    assert reply.startswith("CLIENT_ERROR"), f"get {key} -> {reply!r}"
    # Nothing was taken or opened, and the connection still works.
    assert client.get("q") == (0, b"keep")
    assert client.cmd("get q/close") == "END"


def test_invalid_option_on_set_is_client_error(client):
    reply = client.cmd("set q/open 0 0 1\r\nx")
    assert reply.startswith("CLIENT_ERROR"), reply
    with Client(client.port) as other:
        assert other.get("q") is None
        assert other.get("q/open") is None


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------

def test_unknown_command_answers_error_and_connection_stays_usable(client):
    assert client.cmd("frobnicate q") == "ERROR"
    assert client.cmd("version").startswith("VERSION ")
    assert client.set("q", b"x") == "STORED"


def test_get_without_key_is_refused_and_connection_stays_usable(client):
    reply = client.cmd("get")
    assert reply in ("ERROR",) or reply.startswith("CLIENT_ERROR"), reply
    assert client.cmd("version").startswith("VERSION ")


@pytest.mark.parametrize("header", [b"set q 0 0", b"set q 0 0 abc", b"set q 0 0 -1", b"set"])
def test_set_with_unreadable_byte_count_is_client_error_then_close(client, header):
    reply = client.cmd(header)
    assert reply.startswith("CLIENT_ERROR") or (header == b"set" and reply == "ERROR"), reply
    if reply.startswith("CLIENT_ERROR"):
        client.expect_closed()
    with Client(client.port) as other:
        assert other.get("q") is None


def test_set_with_bad_flags_is_client_error(client):
    reply = client.cmd("set q abc 0 5\r\nhello")
    assert reply.startswith("CLIENT_ERROR"), reply
    with Client(client.port) as other:
        assert other.get("q") is None


def test_set_data_not_followed_by_crlf_is_bad_data_chunk_then_close(client):
    client.send(b"set q 0 0 5\r\nhelloXX\r\n")
    assert client.readline() == "CLIENT_ERROR bad data chunk"
    client.expect_closed()
    with Client(client.port) as other:
        assert other.get("q") is None


def test_request_line_longer_than_limit_is_refused_and_closed(client):
    try:
        client.send(b"g" * 9000)
    except (BrokenPipeError, ConnectionResetError):
        pass
    assert client.readline().startswith("CLIENT_ERROR")
    client.expect_closed()
    with Client(client.port) as other:
        assert other.cmd("version").startswith("VERSION ")


def test_max_line_length_flag_sets_the_limit(make_server):
    s = make_server("--max-line-length", "1024")
    with s.client() as c:
        # A 900-byte line is fine ...
        assert c.cmd("get " + "q" * 240 + " " + " ".join(["r" * 200] * 3)) == "END"
        # ... a 2,000-byte one without newline is not.
        try:
            c.send(b"g" * 2000)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert c.readline().startswith("CLIENT_ERROR")
        c.expect_closed()


def test_set_above_max_item_size_is_refused_data_swallowed_connection_usable(make_server):
    s = make_server("--max-item-size", "1024")
    with s.client() as c:
        big = b"B" * 2048
        c.send(b"set q 0 0 %d\r\n%s\r\n" % (len(big), big))
        assert c.readline() == "SERVER_ERROR object too large for cache"
        assert c.cmd("version").startswith("VERSION ")
        assert c.get("q") is None
        ok = b"o" * 1024
        assert c.set("q", ok) == "STORED"
        assert c.get("q") == (0, ok)


def test_oversize_set_split_across_sends_is_swallowed(make_server):
    s = make_server("--max-item-size", "1000")
    with s.client() as c:
        c.send(b"set q 0 0 100000\r\n")
        for _ in range(10):
            c.send(b"set q 0 0 5\r\nhello\r\n" * 500)   # 10,000 bytes of "data"
        c.send(b"\r\n")
        assert c.readline() == "SERVER_ERROR object too large for cache"
        assert c.cmd("get q") == "END"
        assert c.set("q", b"real") == "STORED"
        assert c.get("q") == (0, b"real")


# --------------------------------------------------------------------------
# Pipelining
# --------------------------------------------------------------------------

def test_pipelined_requests_in_one_send_are_answered_in_order(client):
    client.send(b"set a 0 0 5\r\nhello\r\n"
                b"set b 1 0 5\r\nworld\r\n"
                b"get a\r\n"
                b"frob\r\n"
                b"get b c\r\n"
                b"get a\r\n"
                b"version\r\n")
    assert client.readline() == "STORED"
    assert client.readline() == "STORED"
    assert client.read_values() == [("a", 0, b"hello")]
    assert client.readline() == "ERROR"
    assert client.read_values() == [("b", 1, b"world")]
    assert client.read_values() == []
    assert client.readline().startswith("VERSION ")


def test_request_split_into_single_bytes_is_understood(client):
    for b in b"set q 5 0 3\r\nabc\r\nget q\r\n":
        client.send(bytes([b]))
    assert client.readline() == "STORED"
    assert client.read_values() == [("q", 5, b"abc")]


def test_many_pipelined_sets_and_gets(client):
    n = 500
    client.send(b"".join(b"set q 0 0 4\r\n%04d\r\n" % i for i in range(n)))
    client.send(b"get q\r\n" * n)
    for _ in range(n):
        assert client.readline() == "STORED"
    for i in range(n):
        assert client.read_values() == [("q", 0, b"%04d" % i)]


# --------------------------------------------------------------------------
# Queue names
# --------------------------------------------------------------------------

EDGE_NAMES = ["..", ".", "...", "CON", "con", "Con", "NUL", "aux.txt", "COM1", "a\\b", "\\",
              "Q", "q", "A", "a", "%41", "%61", "_a", "_A", "^a", "!a", "a.", ".a", "a:b",
              "a*b", "a?b", "a|b", "a<b>", "a\"b", "~", "-rf", "caf\u00e9", "a%2Fb", "a%2fb"]


def test_edge_queue_names_are_distinct_queues(client):
    for i, name in enumerate(EDGE_NAMES):
        assert client.set(name, b"item-%d" % i) == "STORED", name
    for i, name in enumerate(EDGE_NAMES):
        assert client.get_full(name) == (name.encode().decode("latin-1"), 0, b"item-%d" % i), name
    for name in EDGE_NAMES:
        assert client.get(name) is None, name


def test_names_differing_only_in_case_are_distinct_queues(client):
    assert client.set("Queue", b"upper") == "STORED"
    assert client.set("queue", b"lower") == "STORED"
    assert client.set("QUEUE", b"caps") == "STORED"
    assert client.get("queue") == (0, b"lower")
    assert client.get("QUEUE") == (0, b"caps")
    assert client.get("Queue") == (0, b"upper")
    assert client.get_multi(["queue", "Queue", "QUEUE"]) == []


def test_edge_queue_names_create_nothing_outside_the_data_folder(server, client, tmp_path):
    parent = tmp_path.parent
    before_parent = sorted(p.name for p in parent.iterdir())
    before_tmp = listing(tmp_path, exclude=[server.data])
    for name in EDGE_NAMES + ["..\\escape", "..\\..\\escape"]:
        assert client.set(name, b"x") == "STORED", name
    with Client(server.port) as c:
        # A '/' can never be part of a name: "../escape" is ".." with an unknown option.
        assert c.cmd(b"set ../escape 0 0 1\r\nx").startswith("CLIENT_ERROR")
    with Client(server.port) as c:
        assert c.cmd("get ../escape").startswith("CLIENT_ERROR")
    with Client(server.port) as c:
        for name in EDGE_NAMES:
            assert c.get(name) == (0, b"x"), name
        assert c.cmd("delete ..") == "DELETED"
        assert c.cmd("delete .") == "DELETED"
    server.stop()
    assert sorted(p.name for p in parent.iterdir()) == before_parent
    assert listing(tmp_path, exclude=[server.data]) == before_tmp
    assert server.data.is_dir()


def test_dot_dot_queue_survives_delete_of_dot_queue(client):
    assert client.set("..", b"dotdot") == "STORED"
    assert client.set(".", b"dot") == "STORED"
    assert client.cmd("delete .") == "DELETED"
    assert client.get("..") == (0, b"dotdot")
    assert client.get(".") is None


def test_name_of_250_bytes_works(client):
    name = "n" * 250
    assert client.set(name, b"long") == "STORED"
    assert client.get_full(name) == (name, 0, b"long")


@pytest.mark.parametrize("ch", ["A", "%", "\\", ".", "_"])
def test_250_byte_names_of_characters_a_file_system_may_escape_work(server, client, ch):
    name = ch * 250
    other = ch * 249 + "z"
    assert client.set(name, b"one") == "STORED"
    assert client.set(other, b"two") == "STORED"
    assert client.get(name) == (0, b"one")
    assert client.set(name, b"three") == "STORED"
    server.restart()
    with server.client() as c:
        assert c.get(name) == (0, b"three")
        assert c.get(other) == (0, b"two")
        assert c.get_multi([name, other]) == []


def test_name_of_251_bytes_is_refused_by_get(client):
    reply = client.cmd("get " + "n" * 251)
    assert reply.startswith("CLIENT_ERROR"), reply
    assert client.cmd("version").startswith("VERSION ")


def test_name_of_251_bytes_is_refused_by_set(server, client):
    before = listing(server.data)
    reply = client.cmd("set " + "n" * 251 + " 0 0 1\r\nx")
    assert reply.startswith("CLIENT_ERROR"), reply
    with Client(server.port) as other:
        assert not any(k.startswith("queue_n") for k in other.stats())
    assert listing(server.data) == before


def test_get_of_nonexistent_queue_creates_nothing(server, client):
    before = listing(server.data)
    for key in ["ghost", "ghost/peek", "ghost/open", "ghost/close", "ghost/abort",
                "ghost/t=10", "ghost/close/open", "..", "CON"]:
        assert client.cmd("get " + key) == "END", key
    assert client.get_multi(["ghost1", "ghost2"]) == []
    assert not any(k.startswith("queue_ghost") for k in client.stats())
    assert listing(server.data) == before


def test_delete_of_nonexistent_queue_creates_nothing(server, client):
    before = listing(server.data)
    assert client.cmd("delete ghost") == "DELETED"
    assert listing(server.data) == before


def test_queue_names_are_case_sensitive_on_disk_after_restart(server, client):
    assert client.set("Mixed", b"M") == "STORED"
    assert client.set("mixed", b"m") == "STORED"
    server.restart()
    with server.client() as c:
        assert c.get("mixed") == (0, b"m")
        assert c.get("Mixed") == (0, b"M")
