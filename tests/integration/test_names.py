"""Queue names that are special to a file system (Windows' reserved device
names, drive and stream colons, trailing dots, case variants, the longest
name) are queues like any other: stored, kept in order across a restart and
a kill, and never a file name. Runs on Linux and, through tests/windows/run,
against darner.exe under Wine."""

NAMES = [
    "CON", "con", "Con", "PRN", "AUX", "aux", "NUL", "nul.txt", "COM1", "com9", "LPT1", "lpt9.log",
    "CONIN$", "a:b", "c:", "x::$DATA", "a\\b", "trailing.", "trailing..", "CLOCK$", "q" * 250,
]


def fill(c, per_name):
    for n in NAMES:
        for i in range(per_name):
            assert c.set(n, f"{n}#{i}".encode()) == "STORED", n


def drain_in_order(c, per_name):
    for n in NAMES:
        for i in range(per_name):
            assert c.get(n) == (0, f"{n}#{i}".encode()), (n, i)
        assert c.get(n) is None, n


def test_reserved_and_odd_names_are_queues_across_a_restart(make_server):
    srv = make_server()
    with srv.client() as c:
        fill(c, 3)
        st = c.stats()
        assert st["queues"] == str(len(NAMES))
    srv.restart()
    with srv.client() as c:
        drain_in_order(c, 3)
    # the folder holds only darner's own names (q-<hex> folders and its files)
    for p in srv.data.iterdir():
        assert p.name.startswith("q-") or p.name in ("FORMAT", "tmp", "STATUS"), p.name


def test_reserved_names_survive_a_kill(make_server):
    """kill -9 (TerminateProcess under Wine): every acknowledged item is there."""
    srv = make_server()
    with srv.client() as c:
        fill(c, 20)
    srv.kill()
    srv.start()
    with srv.client() as c:
        drain_in_order(c, 20)


def test_reliable_read_on_a_reserved_name_goes_back_when_the_client_vanishes(make_server):
    srv = make_server()
    with srv.client() as c:
        assert c.set("aux", b"one") == "STORED"
    c = srv.client()
    assert c.get("aux/open") == (0, b"one")
    c.close()
    with srv.client() as c2:
        assert c2.get("aux/open/t=5000") == (0, b"one")
        assert c2.cmd("get aux/close") == "END"
        assert c2.get("aux") is None
