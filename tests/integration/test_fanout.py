"""Fanout queues (Kestrel's parent+child) and fanout_only parents
(docs/protocol.md, docs/configuration.md)."""


def write(tmp_path, text):
    p = tmp_path / "darner.conf"
    p.write_text(text)
    return p


def test_a_child_gets_every_item_set_after_it_was_first_named(client):
    assert client.set("orders", b"before") == "STORED"
    assert client.get_data("orders+audit") is None            # a get makes the child
    assert client.set("orders", b"one") == "STORED"
    assert client.set("orders", b"two") == "STORED"
    assert [client.get_data("orders+audit") for _ in range(3)] == [b"one", b"two", None]
    assert [client.get_data("orders") for _ in range(4)] == [b"before", b"one", b"two", None]


def test_every_child_gets_its_copy_and_consumes_on_its_own(client):
    client.get_data("q+a")
    client.get_data("q+b")
    assert client.set("q", b"x", flags=9) == "STORED"
    client.send(b"get q+a\r\n")
    assert client.readline() == "VALUE q+a 9 1" and client.readline() == "x" and client.readline() == "END"
    assert client.get_data("q+a/open") is None
    assert client.get_data("q+b/open") == b"x"
    assert client.cmd("get q+b/close") == "END"
    assert client.get_data("q") == b"x"


def test_a_deleted_child_stops_receiving(client):
    client.get_data("q+gone")
    assert client.cmd("delete q+gone") == "DELETED"
    assert client.set("q", b"x") == "STORED"
    assert "queue_q+gone_items" not in client.stats()


def test_children_stay_children_after_a_restart(make_server):
    s = make_server()
    with s.client() as c:
        assert c.get_data("p+c") is None
    s.stop()
    s.start()
    with s.client() as c:
        assert c.set("p", b"after") == "STORED"
        assert c.get_data("p+c") == b"after"


def test_fanout_only_parent_stores_nothing(make_server, tmp_path):
    conf = write(tmp_path, "[queue \"events\"]\nfanout_only = true\n")
    s = make_server("-c", conf)
    with s.client() as c:
        assert c.set("events", b"lost") == "STORED"              # no child yet: a black hole, as in Kestrel
        c.get_data("events+mail")
        c.get_data("events+log")
        assert c.set("events", b"e1") == "STORED"
        assert c.get_data("events") is None
        assert c.get_data("events+mail") == b"e1" and c.get_data("events+log") == b"e1"


def test_a_child_takes_its_parents_settings_and_its_own_section_over_them(make_server, tmp_path):
    conf = write(tmp_path,
                 "[queue \"p\"]\nmax_items = 2\nmax_size = 1KiB\n"
                 "[queue \"p+big\"]\nmax_items = 10\n")
    s = make_server("-c", conf)
    with s.client() as c:
        c.get_data("p+small")
        c.get_data("p+big")
        for i in range(2):
            assert c.set("p", b"%d" % i) == "STORED"
        # p is full now, and so is p+small (max_items 2 from p); p+big is not:
        # the set answers NOT_STORED, its copy kept where there was room
        assert c.set("p", b"2") == "NOT_STORED"
        assert [c.get_data("p+big") for _ in range(4)] == [b"0", b"1", b"2", None]
        assert [c.get_data("p+small") for _ in range(3)] == [b"0", b"1", None]


def test_a_large_item_fans_out_without_copies(make_server):
    s = make_server()
    big = 512 * 1024
    with s.client() as c:
        c.get_data("f+x")
        c.send(b"set f 0 0 %d\r\n" % big + b"y" * big + b"\r\n")
        assert c.readline() == "STORED"
        assert c.get_data("f") == b"y" * big
        assert c.get_data("f+x") == b"y" * big
