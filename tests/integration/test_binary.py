"""The memcache binary protocol (docs/protocol.md, "Binary protocol"), spoken
by a small raw client built here with struct: every opcode served, quiet
commands and Noop pipelined, opaque echoed, reliable reads, errors, a large
streamed item and SASL PLAIN against an auth file."""

import random
import struct
import time

import pytest

from harness import Client

HDR = struct.Struct(">BBHBBHIIQ")

GET, SET, ADD, DELETE, QUIT, FLUSH, GETQ, NOOP, VERSION, GETK, GETKQ = 0, 1, 2, 4, 7, 8, 9, 0x0A, 0x0B, 0x0C, 0x0D
STAT, SETQ, DELETEQ, QUITQ, FLUSHQ = 0x10, 0x11, 0x14, 0x17, 0x18
SASL_LIST, SASL_AUTH, SASL_STEP = 0x20, 0x21, 0x22
OK, ENOENT, E2BIG, EINVAL, AUTH_ERROR, UNKNOWN = 0, 1, 3, 4, 0x20, 0x81


def packet(op, key=b"", extras=b"", value=b"", opaque=0, cas=0, magic=0x80):
    if isinstance(key, str):
        key = key.encode()
    body = extras + key + value
    return HDR.pack(magic, op, len(key), len(extras), 0, 0, len(body), opaque, cas) + body


def set_packet(key, value, flags=0, exptime=0, op=SET, opaque=0):
    return packet(op, key, struct.pack(">II", flags, exptime), value, opaque)


class Res:
    def __init__(self, head, body):
        (self.magic, self.op, keylen, extlen, _, self.status, _, self.opaque, self.cas) = head
        self.extras = body[:extlen]
        self.key = body[extlen:extlen + keylen]
        self.value = body[extlen + keylen:]

    @property
    def flags(self):
        return struct.unpack(">I", self.extras)[0]

    def __repr__(self):
        return f"Res(op={self.op:#x}, status={self.status:#x}, opaque={self.opaque}, key={self.key!r}, value={self.value[:40]!r})"


class Bin:
    """A raw binary-protocol connection."""

    def __init__(self, port):
        self.c = Client(port)

    def send(self, *packets):
        self.c.send(b"".join(packets))

    def read(self):
        head = HDR.unpack(self.c.read_exact(24))
        assert head[0] == 0x81, head
        return Res(head, self.c.read_exact(head[6]))

    def call(self, *packets):
        self.send(*packets)
        return self.read()

    def quiet_now(self, timeout=0.3):
        return not self.c.pending(timeout)

    def close(self):
        self.c.close()


@pytest.fixture
def bc(server):
    b = Bin(server.port)
    yield b
    b.close()


def test_set_then_get_with_flags_opaque_and_a_cas(bc):
    r = bc.call(set_packet("q", b"hello", flags=0xCAFE, opaque=7))
    assert (r.op, r.status, r.opaque) == (SET, OK, 7)
    r = bc.call(packet(GET, "q", opaque=8))
    assert (r.op, r.status, r.opaque, r.value, r.flags, r.key) == (GET, OK, 8, b"hello", 0xCAFE, b"")
    assert r.cas >> 48 == 1 and r.cas & (2**48 - 1) != 0    # as gets: id, and delivered once
    r = bc.call(packet(GET, "q", opaque=9))
    assert (r.status, r.opaque, r.value) == (ENOENT, 9, b"Not found")


def test_getk_and_getkq_echo_the_key(bc):
    bc.send(set_packet("k", b"1"), set_packet("k", b"2"))
    assert [bc.read().status for _ in range(2)] == [OK, OK]
    r = bc.call(packet(GETK, "k", opaque=1))
    assert (r.op, r.key, r.value) == (GETK, b"k", b"1")
    r = bc.call(packet(GETKQ, "k", opaque=2))
    assert (r.op, r.key, r.value) == (GETKQ, b"k", b"2")
    r = bc.call(packet(GETK, "k", opaque=3))                 # a miss carries the key too
    assert (r.status, r.key) == (ENOENT, b"k")


def test_quiet_commands_pipeline_and_noop_flushes(bc):
    bc.send(*[set_packet("p", b"item%d" % i, op=SETQ, opaque=i) for i in range(3)])
    bc.send(*[packet(GETQ, "p", opaque=10 + i) for i in range(4)], packet(NOOP, opaque=99))
    got = [bc.read() for _ in range(4)]
    assert [(r.op, r.opaque, r.value) for r in got] == [
        (GETQ, 10, b"item0"), (GETQ, 11, b"item1"), (GETQ, 12, b"item2"), (NOOP, 99, b"")]
    assert bc.quiet_now()
    # quiet deletes and flushes answer nothing on success either
    bc.send(set_packet("d", b"x", op=SETQ), packet(DELETEQ, "d"), packet(FLUSHQ), packet(NOOP, opaque=5))
    r = bc.read()
    assert (r.op, r.opaque) == (NOOP, 5)
    assert bc.quiet_now()


def test_a_quiet_set_answers_its_error(bc):
    bc.send(packet(SETQ, "bad name", struct.pack(">II", 0, 0), b"x", opaque=4), packet(NOOP))
    r = bc.read()
    assert (r.op, r.status, r.opaque) == (SETQ, EINVAL, 4)
    assert bc.read().op == NOOP


def test_delete_and_flush(bc, server):
    bc.send(set_packet("a", b"1"), set_packet("b", b"2"))
    assert [bc.read().status for _ in range(2)] == [OK, OK]
    assert bc.call(packet(DELETE, "a", opaque=3)).status == OK
    assert bc.call(packet(GET, "a")).status == ENOENT
    r = bc.call(packet(FLUSH, opaque=4))
    assert (r.op, r.status, r.opaque) == (FLUSH, OK, 4)
    assert bc.call(packet(GET, "b")).status == ENOENT
    assert bc.call(packet(FLUSH, extras=struct.pack(">I", 0))).status == OK


def test_version_and_stat(bc):
    r = bc.call(packet(VERSION, opaque=1))
    assert r.status == OK and r.value and r.value[0:1].isdigit()
    bc.call(set_packet("s", b"x"))
    bc.send(packet(STAT, opaque=2))
    stats = {}
    while True:
        r = bc.read()
        assert (r.op, r.status, r.opaque) == (STAT, OK, 2)
        if not r.key:
            break
        stats[r.key.decode()] = r.value.decode()
    assert stats["queue_s_items"] == "1" and "curr_items" in stats and "pid" in stats
    bc.send(packet(STAT, "items"))                          # a group: the same stats (as the text's stats <arg>)
    n = 0
    while bc.read().key:
        n += 1
    assert n == len(stats)


def test_quit_answers_then_closes_and_quitq_closes_silently(server):
    b = Bin(server.port)
    r = b.call(packet(QUIT, opaque=6))
    assert (r.op, r.status, r.opaque) == (QUIT, OK, 6)
    b.c.expect_closed()
    b = Bin(server.port)
    b.send(packet(QUITQ))
    b.c.expect_closed()
    assert b.c.buf == b""


def test_an_unknown_opcode_answers_and_the_connection_stays(bc):
    # add (not served), with extras, key and value that are skipped
    r = bc.call(packet(ADD, "q", struct.pack(">II", 0, 0), b"value", opaque=11), )
    assert (r.op, r.status, r.opaque) == (ADD, UNKNOWN, 11)
    r = bc.call(packet(0x55, opaque=12))
    assert (r.op, r.status, r.opaque) == (0x55, UNKNOWN, 12)
    assert bc.call(set_packet("q", b"ok")).status == OK
    assert bc.call(packet(GET, "q")).value == b"ok"


def test_malformed_requests_with_a_known_end_keep_the_connection(bc):
    r = bc.call(packet(GET, "q", extras=b"1234", opaque=1))          # a get takes no extras
    assert (r.status, r.opaque) == (EINVAL, 1) and r.value
    r = bc.call(packet(GET, opaque=2))                                  # key required
    assert r.status == EINVAL
    r = bc.call(packet(GET, "q/open/close/peek", opaque=3))            # bad options
    assert r.status == EINVAL
    r = bc.call(packet(SET, "q", struct.pack(">II", 0, 0), b"x", cas=5))  # no cas on a set
    assert r.status == EINVAL
    assert bc.call(packet(NOOP, opaque=4)).opaque == 4


def test_a_bad_magic_answers_and_closes(bc, server):
    bc.call(set_packet("q", b"kept"))
    bc.send(packet(GET, "q", opaque=5, magic=0x81))
    r = bc.read()
    assert (r.status, r.opaque) == (EINVAL, 5)
    bc.c.expect_closed()
    b = Bin(server.port)
    assert b.call(packet(GET, "q")).value == b"kept"
    b.close()


def test_a_set_over_the_item_limit_is_refused_and_skipped(make_server):
    srv = make_server("--max-item-size", "1KiB")
    b = Bin(srv.port)
    r = b.call(set_packet("q", b"x" * 2000, opaque=3))
    assert (r.status, r.opaque) == (E2BIG, 3)
    assert b.call(set_packet("q", b"small")).status == OK
    assert b.call(packet(GET, "q")).value == b"small"
    b.close()


def test_a_set_refused_by_the_server_status_answers_a_temporary_failure(server, bc):
    with Client(server.port) as t:
        assert t.cmd("status readonly") == "END"
        r = bc.call(set_packet("q", b"x" * 100, opaque=2))
        assert (r.status, r.opaque) == (0x86, 2) and b"READONLY" in r.value
        assert t.cmd("status up") == "END"
    assert bc.call(set_packet("q", b"y")).status == OK


def test_binary_junk_is_answered_in_binary_or_closed(server):
    """Random bytes after a request magic, on many connections: every answer
    is a binary response (or the connection closes); the server survives."""
    rng = random.Random(4321)
    for n in range(30):
        junk = bytes([0x80]) + bytes(rng.randrange(256) for _ in range(rng.choice([23, 100, 4096, 20000])))
        if junk[1] in (SET, SETQ):                      # no stray valid set
            junk = junk[:1] + bytes([ADD]) + junk[2:]
        b = Bin(server.port)
        try:
            b.send(junk)
            while b.c.pending(0.2):
                r = b.read()                             # asserts the response magic
                assert r.status in (ENOENT, EINVAL, E2BIG, UNKNOWN, OK), r
        except (ConnectionError, OSError):
            pass
        b.close()
    b = Bin(server.port)
    assert b.call(packet(NOOP)).status == OK
    b.close()


def test_a_large_item_streams_in_and_out(bc):
    big = bytes(range(256)) * (5 * 4096)      # 5 MiB: over the inline limit, to its own file
    r = bc.call(set_packet("big", big, flags=3, opaque=1))
    assert (r.status, r.opaque) == (OK, 1)
    r = bc.call(packet(GET, "big", opaque=2))
    assert (r.status, r.flags, len(r.value)) == (OK, 3, len(big))
    assert r.value == big


@pytest.mark.parametrize("size", [256 * 1024, 256 * 1024 + 1])
def test_items_at_the_inline_limit_pipelined(bc, size):
    a, b = b"a" * size, b"b" * size
    bc.send(set_packet("lim", a, opaque=1), set_packet("lim", b, opaque=2), packet(GET, "lim", opaque=3),
            packet(GET, "lim", opaque=4))
    got = [bc.read() for _ in range(4)]
    assert [(r.status, r.opaque) for r in got] == [(OK, 1), (OK, 2), (OK, 3), (OK, 4)]
    assert got[2].value == a and got[3].value == b


def test_requests_split_across_reads(bc):
    data = set_packet("split", b"x" * 300000, opaque=1) + set_packet("split", b"y", opaque=2) + packet(GET, "split")
    for cut in (1, 10, 30, 1000, 299000, 300100, 300150):   # pieces cut inside a header, a key, a value
        bc.send(data[:cut])
        time.sleep(0.02)
        data = data[cut:]
    bc.send(data)
    assert [bc.read().opaque for _ in range(2)] == [1, 2]
    assert bc.read().value == b"x" * 300000


def test_reliable_read_open_close_abort(bc, server):
    bc.send(set_packet("r", b"one"), set_packet("r", b"two"))
    assert [bc.read().status for _ in range(2)] == [OK, OK]
    r = bc.call(packet(GET, "r/open", opaque=1))
    assert (r.status, r.value) == (OK, b"one")
    r = bc.call(packet(GET, "r/open", opaque=2))        # one open item per queue
    assert r.status == EINVAL and b"open" in r.value
    r = bc.call(packet(GET, "r/close/open", opaque=3))  # confirms "one", opens "two"
    assert (r.status, r.value) == (OK, b"two")
    bc.close()                                         # "two" goes back
    b = Bin(server.port)
    assert b.call(packet(GET, "r/open")).value == b"two"
    r = b.call(packet(GET, "r/close"))                 # closes: no item in the answer
    assert r.status == ENOENT
    assert b.call(packet(GET, "r")).status == ENOENT
    b.close()


def test_a_get_with_a_timeout_waits_for_the_item(server, bc):
    bc.send(packet(GET, "w/t=3000", opaque=9))
    assert bc.quiet_now(0.2)
    with Client(server.port) as t:
        assert t.set("w", b"late") == "STORED"
    r = bc.read()
    assert (r.status, r.opaque, r.value) == (OK, 9, b"late")


def test_text_and_binary_clients_share_queues(server, bc):
    assert bc.call(set_packet("mix", b"from binary", flags=5)).status == OK
    with Client(server.port) as t:
        assert t.get("mix") == (5, b"from binary")
        assert t.set("mix", b"from text", flags=6) == "STORED"
    r = bc.call(packet(GET, "mix"))
    assert (r.value, r.flags) == (b"from text", 6)


def test_sasl_without_an_auth_file_is_an_unknown_command(bc):
    assert bc.call(packet(SASL_LIST)).status == UNKNOWN


USERS = """\
admin:adminpw
worker:workpw:jobs.*:rw
"""


def plain(user, password, authz=b""):
    return authz + b"\0" + user + b"\0" + password


@pytest.fixture
def auth_srv(make_server, tmp_path):
    users = tmp_path / "users"
    users.write_text(USERS)
    return make_server("--auth-file", users)


def test_sasl_plain_authenticates_against_the_auth_file(auth_srv):
    b = Bin(auth_srv.port)
    r = b.call(set_packet("jobs.a", b"x", opaque=1))      # before auth: refused, data skipped
    assert (r.status, r.opaque) == (AUTH_ERROR, 1)
    assert b.call(packet(GET, "jobs.a")).status == AUTH_ERROR
    r = b.call(packet(SASL_LIST, opaque=2))
    assert (r.status, r.opaque, r.value) == (OK, 2, b"PLAIN")
    assert b.call(packet(SASL_AUTH, "PLAIN", value=plain(b"worker", b"wrong"))).status == AUTH_ERROR
    assert b.call(packet(SASL_AUTH, "CRAM-MD5", value=b"x")).status == AUTH_ERROR
    assert b.call(packet(SASL_STEP, "PLAIN", value=b"x")).status == AUTH_ERROR
    r = b.call(packet(SASL_AUTH, "PLAIN", value=plain(b"worker", b"workpw"), opaque=3))
    assert (r.status, r.opaque) == (OK, 3)
    assert b.call(set_packet("jobs.a", b"x")).status == OK
    assert b.call(packet(GET, "jobs.a")).value == b"x"
    r = b.call(set_packet("other", b"x"))                  # the user's patterns apply
    assert r.status == AUTH_ERROR and b"permission denied" in r.value
    assert b.call(packet(STAT)).status == AUTH_ERROR        # server-wide: not for this user
    b.close()
    b = Bin(auth_srv.port)
    r = b.call(packet(SASL_AUTH, "PLAIN", value=plain(b"admin", b"adminpw", authz=b"admin")))
    assert r.status == OK
    b.send(packet(STAT))
    while b.read().key:
        pass
    b.close()


def test_sasl_data_of_the_largest_size_is_read_whole(auth_srv):
    b = Bin(auth_srv.port)
    r = b.call(packet(SASL_AUTH, "PLAIN", value=plain(b"worker", b"p" * 16000), opaque=8))
    assert (r.status, r.opaque) == (AUTH_ERROR, 8)
    r = b.call(packet(SASL_AUTH, "PLAIN", value=b"x" * 16385))       # over the limit: refused, skipped
    assert r.status == AUTH_ERROR      # unauthenticated, any request but SASL's and Quit is refused so
    assert b.call(packet(SASL_AUTH, "PLAIN", value=plain(b"worker", b"workpw"))).status == OK
    b.close()


def test_quit_needs_no_auth(auth_srv):
    b = Bin(auth_srv.port)
    assert b.call(packet(QUIT)).status == OK
    b.c.expect_closed()
