"""Expiry: the periodic sweep (--expiry-sweep), expire_to_queue,
max_expire_sweep, flush_expired and flush_all_expired
(docs/configuration.md, docs/protocol.md)."""

from harness import wait_until


def write(tmp_path, text):
    p = tmp_path / "darner.conf"
    p.write_text(text)
    return p


def set_exp(c, q, data, exptime):
    c.send(b"set %s 0 %d %d\r\n%s\r\n" % (q.encode(), exptime, len(data), data))
    return c.readline()


def items(c, q):
    return int(c.stats().get(f"queue_{q}_items", "0"))


def test_the_sweep_removes_expired_items_without_a_get(make_server):
    s = make_server("--expiry-sweep", "50ms")
    with s.client() as c:
        for i in range(5):
            assert set_exp(c, "q", b"gone%d" % i, -1) == "STORED"     # expired already
        assert set_exp(c, "q", b"kept", 0) == "STORED"
        assert wait_until(lambda: items(c, "q") == 1), c.stats()
        st = c.stats()
        assert st["queue_q_expired_items"] == "5"
        assert c.get_data("q") == b"kept"


def test_without_a_sweep_expired_items_go_only_when_a_get_reaches_them(make_server):
    s = make_server("--expiry-sweep", "0")
    with s.client() as c:
        assert set_exp(c, "q", b"gone", -1) == "STORED"
        assert c.get_data("none/t=200") is None                    # time passes, by the server's clock
        assert items(c, "q") == 1
        assert c.get_data("q") is None
        assert items(c, "q") == 0


def test_expired_items_move_to_expire_to_queue_without_an_expiry(make_server, tmp_path):
    conf = write(tmp_path, "[queue \"delayed\"]\nexpire_to_queue = work\n")
    s = make_server("-c", conf, "--expiry-sweep", "50ms")
    with s.client() as c:
        c.send(b"set delayed 7 -1 5\r\nfirst\r\n")
        assert c.readline() == "STORED"
        big = 300 * 1024                                            # streamed: a blob moves too
        c.send(b"set delayed 8 -1 %d\r\n" % big + b"b" * big + b"\r\n")
        assert c.readline() == "STORED"
        c.send(b"get work/t=5000\r\n")                              # woken by the move
        assert c.readline() == "VALUE work/t=5000 7 5"
        assert c.readline() == "first" and c.readline() == "END"
        c.send(b"get work/t=5000\r\n")
        assert c.readline() == "VALUE work/t=5000 8 %d" % big
        assert c.read_exact(big + 2) == b"b" * big + b"\r\n"
        assert c.readline() == "END"
        st = c.stats()
        assert st["queue_delayed_items"] == "0" and st["queue_delayed_expired_items"] == "2"


def test_a_get_reaching_an_expired_item_moves_it_too(make_server, tmp_path):
    conf = write(tmp_path, "[queue \"a\"]\nexpire_to_queue = b\n")
    s = make_server("-c", conf, "--expiry-sweep", "0")
    with s.client() as c:
        assert set_exp(c, "a", b"late", -1) == "STORED"
        assert set_exp(c, "a", b"fresh", 0) == "STORED"
        assert c.get_data("a") == b"fresh"
        assert c.get_data("b") == b"late"


def test_max_expire_sweep_bounds_each_pass(make_server, tmp_path):
    conf = write(tmp_path, "[queue]\nmax_expire_sweep = 2\n")
    s = make_server("-c", conf, "--expiry-sweep", "300ms")
    with s.client() as c:
        for i in range(6):
            assert set_exp(c, "q", b"%d" % i, -1) == "STORED"
        seen = set()

        def done():
            seen.add(int(c.stats()["queue_q_expired_items"]))
            return 6 in seen
        assert wait_until(done, timeout=10, interval=0.01)
        # a pass removes two, within one loop turn: stats, answered between
        # turns, only ever see whole passes
        assert seen <= {0, 2, 4, 6} and seen & {2, 4}, seen


def test_flush_expired_answers_how_many(make_server):
    s = make_server("--expiry-sweep", "0")
    with s.client() as c:
        for i in range(3):
            assert set_exp(c, "q", b"%d" % i, -1) == "STORED"
        assert set_exp(c, "q", b"live", 0) == "STORED"
        assert set_exp(c, "r", b"x", -1) == "STORED"
        assert c.cmd("flush_expired q") == "3"
        assert c.cmd("flush_expired q") == "0"
        assert c.cmd("flush_expired none") == "0"
        assert c.cmd("flush_all_expired") == "1"
        assert c.get_data("q") == b"live"


def test_an_empty_queue_past_its_max_queue_age_is_deleted(make_server, tmp_path):
    conf = write(tmp_path, "[queue \"tmp.*\"]\nmax_queue_age = 300ms\n")
    s = make_server("-c", conf, "--expiry-sweep", "50ms")
    with s.client() as c:
        assert c.set("tmp.empty", b"x") == "STORED" and c.get_data("tmp.empty") == b"x"
        assert c.set("tmp.full", b"kept") == "STORED"
        assert c.set("other", b"y") == "STORED" and c.get_data("other") == b"y"
        assert wait_until(lambda: "queue_tmp.empty_items" not in c.stats()), c.stats()
        st = c.stats()
        assert st["queue_expires"] == "1"
        assert "queue_tmp.full_items" in st and "queue_other_items" in st
        assert c.get_data("tmp.full") == b"kept"
        assert wait_until(lambda: "queue_tmp.full_items" not in c.stats())   # empty now: it goes too
        assert c.set("tmp.empty", b"again") == "STORED"      # a new queue of that name
        assert c.get_data("tmp.empty") == b"again"
