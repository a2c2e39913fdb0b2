"""Server status (Kestrel's): `status`, `status <new>`, what READONLY and
QUIESCENT refuse, the grace period, and the status kept across a restart;
and `shutdown` (docs/protocol.md)."""

from harness import run_darner


def test_status_starts_up_and_changes(make_server):
    s = make_server()
    with s.client() as c:
        assert c.cmd("status") == "UP"
        assert c.cmd("status readonly") == "END"
        assert c.cmd("status") == "READONLY"
        assert c.cmd("status Up") == "END"
        assert c.cmd("status") == "UP"
        assert c.cmd("status sleepy").startswith("CLIENT_ERROR")
        assert c.cmd("status") == "UP"


def test_readonly_refuses_changes_and_serves_reads(make_server):
    s = make_server()
    with s.client() as c:
        assert c.set("q", b"a") == "STORED" and c.set("q", b"b") == "STORED"
        assert c.cmd("status readonly") == "END"
        assert c.set("q", b"c") == "SERVER_ERROR READONLY"   # its data skipped, the connection stays
        assert c.cmd("delete q") == "SERVER_ERROR READONLY"
        assert c.cmd("flush q") == "SERVER_ERROR READONLY"
        assert c.cmd("flush_all") == "SERVER_ERROR READONLY"
        assert c.get_data("q") == b"a"                        # reads go on
        assert c.get_data("q/open") == b"b"
        assert c.cmd("get q/close") == "END"
        assert "uptime" in c.stats()
        c.cmd("status up")
        assert c.set("q", b"d") == "STORED"


def test_quiescent_refuses_reads_but_lets_open_items_finish(make_server):
    s = make_server()
    with s.client() as holder, s.client() as other, s.client() as c:
        for d in (b"a", b"b", b"c"):
            assert c.set("q", d) == "STORED"
        assert holder.get_data("q/open") == b"a"
        assert other.get_data("q/open") == b"b"
        assert c.cmd("status quiescent") == "END"
        assert c.cmd("get q") == "SERVER_ERROR QUIESCENT"
        assert c.cmd("get q/peek") == "SERVER_ERROR QUIESCENT"
        assert c.cmd("get q/open") == "SERVER_ERROR QUIESCENT"
        assert c.set("q", b"x") == "SERVER_ERROR QUIESCENT"
        assert holder.cmd("get q/close") == "END"             # confirmed
        assert other.cmd("get q/abort") == "END"              # given back
        assert holder.cmd("get q/close/open") == "SERVER_ERROR QUIESCENT"
        c.cmd("status up")
        assert c.get_data("q") == b"b" and c.get_data("q") == b"c" and c.get_data("q") is None


def test_a_stricter_status_waits_for_the_grace_period(make_server):
    s = make_server("--status-grace", "400ms")
    with s.client() as c:
        assert c.cmd("status readonly") == "END"
        assert c.set("q", b"in grace") == "STORED"      # still served
        # the server's own timer: a 1 s wait for an item that never comes
        assert c.get_data("none/t=1000") is None
        assert c.set("q", b"late") == "SERVER_ERROR READONLY"
        assert c.cmd("status up") == "END"                # less strict: at once
        assert c.set("q", b"now") == "STORED"


def test_status_is_kept_across_a_restart(make_server):
    s = make_server()
    with s.client() as c:
        assert c.set("q", b"kept") == "STORED"
        assert c.cmd("status readonly") == "END"
    s.stop()
    s.start()
    with s.client() as c:
        assert c.cmd("status") == "READONLY"
        assert c.set("q", b"x") == "SERVER_ERROR READONLY"
        assert c.get_data("q") == b"kept"
    assert "READONLY" in (s.data / "STATUS").read_text()


def test_an_unknown_status_file_stops_the_start_untouched(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "STATUS").write_text("WRITEAVOID\n")
    rc, out, err = run_darner(["--port", "0", "--data", str(data)], cwd=tmp_path)
    assert rc not in (0, None), err
    assert "STATUS" in err and "UP, READONLY or QUIESCENT" in err, err
    assert (data / "STATUS").read_text() == "WRITEAVOID\n"


def test_shutdown_needs_its_flag(make_server):
    s = make_server()
    with s.client() as c:
        assert c.cmd("shutdown") == "ERROR"
        assert c.cmd("version").startswith("VERSION")


def test_shutdown_stops_the_server_cleanly(make_server):
    s = make_server("--enable-shutdown")
    with s.client() as c:
        assert c.set("q", b"kept") == "STORED"
        c.send(b"shutdown\r\n")
        c.expect_closed()
    assert s.proc.wait(timeout=10) == 0
    s.start()
    with s.client() as c:
        assert c.get_data("q") == b"kept"
