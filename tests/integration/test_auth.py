"""Authentication (--auth-file / -Y, memcached's ASCII way): the handshake set
and its answers, queue patterns with r/w access, reload on SIGHUP, bad auth
files, and the refusal to serve a non-loopback address without
authentication (docs/operations.md, "Authentication")."""

import re
import signal
import time
import urllib.request

import pytest
from pymemcache.client.base import Client as PymemcacheClient
from pymemcache.exceptions import MemcacheClientError

from harness import run_darner, wait_until

USERS = """\
# admin: no queue pattern, so every queue and the server-wide commands
admin:adminpw
worker:workpw:jobs.*:r
worker:workpw:results:w
worker:workpw:both.*:rw
"""

DENIED_R = "CLIENT_ERROR permission denied: no read access to queue"
DENIED_W = "CLIENT_ERROR permission denied: no write access to queue"
DENIED_SERVER = "CLIENT_ERROR permission denied: a server-wide command, for users without a queue pattern"


def users_file(tmp_path, text=USERS, name="users"):
    p = tmp_path / name
    p.write_text(text)
    return p


def auth_server(make_server, tmp_path, text=USERS, *extra):
    return make_server("--auth-file", users_file(tmp_path, text), *extra)


def login(c, user, password):
    token = f"{user} {password}".encode()
    c.send(b"set auth 0 0 %d\r\n%s\r\n" % (len(token), token))
    return c.readline()


def reload_by_signal(s, count=1):
    """SIGHUP, then wait for the count-th reload of the auth file in the log."""
    s.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: s.log().count("reloaded the auth file") >= count), s.log()


# ---- the handshake ------------------------------------------------------

def test_everything_but_set_and_quit_is_unauthenticated(make_server, tmp_path):
    s = auth_server(make_server, tmp_path)
    with s.client() as c:
        for line in ["get q", "gets q", "version", "stats", "delete q", "flush_all", "reload", "status",
                     "shutdown", "dump_stats", "monitor q 1", "frobnicate", "get q/nonsense", ""]:
            assert c.cmd(line) == "CLIENT_ERROR unauthenticated", line
        # storage commands we do not serve: refused, their data skipped
        c.send(b"add q 0 0 5\r\nget q\r\n")
        assert c.readline() == "CLIENT_ERROR unauthenticated"
        # a set whose key has a bad option: refused too, its data skipped
        c.send(b"set q/nonsense 0 0 5\r\nget q\r\n")
        assert c.readline() == "CLIENT_ERROR unauthenticated"
        assert login(c, "admin", "adminpw") == "STORED"
        assert c.cmd("version").startswith("VERSION ")
        assert c.get_data("q") is None  # nothing was stored by any of it
    with s.client() as c:
        c.send(b"quit\r\n")
        c.expect_closed()


def test_handshake_answers(make_server, tmp_path):
    s = auth_server(make_server, tmp_path)
    with s.client() as c:
        assert login(c, "admin", "wrong") == "CLIENT_ERROR authentication failure"
        assert login(c, "nobody", "adminpw") == "CLIENT_ERROR authentication failure"
        assert login(c, "admin", "adminpw ") == "CLIENT_ERROR authentication failure"
        assert login(c, "admin", "adminp") == "CLIENT_ERROR authentication failure"
        for token in [b"adminpw", b"admin ", b" adminpw", b"admin\tadminpw", b""]:
            c.send(b"set auth 0 0 %d\r\n%s\r\n" % (len(token), token))
            assert c.readline() == "CLIENT_ERROR bad authentication token format", token
        # memcached's limit: 16384 bytes; the data is skipped, the connection stays
        big = b"admin " + b"x" * 16379
        c.send(b"set auth 0 0 %d\r\n%s\r\nget q\r\n" % (len(big), big))
        assert c.readline() == "CLIENT_ERROR auth token too long"
        assert c.readline() == "CLIENT_ERROR unauthenticated"
        # data not followed by CRLF: the request boundary is lost, closed
    with s.client() as c:
        c.send(b"set auth 0 0 3\r\nadminpw\r\n")
        assert c.readline() == "CLIENT_ERROR bad data chunk"
        c.expect_closed()
    with s.client() as c:
        # the key, flags and exptime are anything; after it, set is a set
        c.send(b"set any.key/sync 12 345 13\r\nadmin adminpw\r\n")
        assert c.readline() == "STORED"
        assert c.set("q", b"item") == "STORED"
        assert c.get("q") == (0, b"item")
        assert login(c, "worker", "workpw") == "STORED"  # a set into queue "auth": no second login
        assert c.get_data("auth") == b"worker workpw"
        assert c.cmd("stats").startswith("STAT ")  # still admin


def test_noreply_handshake(make_server, tmp_path):
    s = auth_server(make_server, tmp_path)
    with s.client() as c:
        c.send(b"set auth 0 0 9 noreply\r\nadmin bad\r\n")  # failures are answered all the same
        assert c.readline() == "CLIENT_ERROR authentication failure"
        c.send(b"set auth 0 0 13 noreply\r\nadmin adminpw\r\n")  # success: no answer
        assert c.cmd("version").startswith("VERSION ")


def test_handshake_split_at_every_byte(make_server, tmp_path):
    s = auth_server(make_server, tmp_path)
    msg = b"set k 0 0 13\r\nadmin adminpw\r\nversion\r\n"
    for cut in range(1, len(msg)):
        with s.client() as c:
            c.send(msg[:cut])
            time.sleep(0.002)
            c.send(msg[cut:])
            assert c.readline() == "STORED", cut
            assert c.readline().startswith("VERSION "), cut


def test_pymemcache_set_handshake_then_normal_use(make_server, tmp_path):
    s = auth_server(make_server, tmp_path)
    c = PymemcacheClient(("127.0.0.1", s.port), timeout=10)
    try:
        with pytest.raises(MemcacheClientError, match="unauthenticated"):
            c.get("jobs.a")
        assert c.set("auth", b"worker workpw", noreply=False) is True
        c.set("results", b"42")  # pymemcache's default noreply
        assert c.set("both.x", b"y", noreply=False) is True
        assert c.get("both.x") == b"y"
        assert c.get("jobs.a") is None
        assert c.version().startswith(b"1.")
        with pytest.raises(MemcacheClientError, match="no read access"):
            c.get("results")
        # pymemcache closes its connection after an error answer: the next
        # request goes out on a new one, which must authenticate again
        with pytest.raises(MemcacheClientError, match="unauthenticated"):
            c.get("both.x")
        assert c.set("auth", b"worker workpw", noreply=False) is True
        with pytest.raises(MemcacheClientError, match="no write access"):
            c.set("jobs.a", b"z", noreply=False)
    finally:
        c.close()
    a = PymemcacheClient(("127.0.0.1", s.port), timeout=10)
    try:
        with pytest.raises(MemcacheClientError, match="authentication failure"):
            a.set("auth", b"admin nope", noreply=False)
        assert a.set("auth", b"admin adminpw", noreply=False) is True
        assert a.get("results") == b"42"
        assert a.stats()[b"curr_connections"] >= 1
    finally:
        a.close()


# ---- queue patterns -----------------------------------------------------

def test_patterns_limit_reads_and_writes(make_server, tmp_path):
    s = auth_server(make_server, tmp_path)
    with s.client() as admin, s.client() as w:
        assert login(admin, "admin", "adminpw") == "STORED"
        assert login(w, "worker", "workpw") == "STORED"
        assert admin.set("jobs.a", b"job") == "STORED"
        # r on jobs.*: every kind of get, monitor, touch, confirm
        assert w.set("jobs.a", b"mine") == DENIED_W + " jobs.a"
        assert w.cmd("get jobs.a/peek") == "VALUE jobs.a/peek 0 3"
        assert w.readline() == "job" and w.readline() == "END"
        assert w.get("jobs.a/open") == (0, b"job")
        assert w.cmd("touch jobs.a 30") == "TOUCHED"
        assert w.cmd("get jobs.a/abort") == "END"
        assert w.cmd("monitor jobs.a 1") == "VALUE jobs.a 0 3"
        assert w.readline() == "job" and w.readline() == "END"
        assert w.cmd("confirm jobs.a 1") == "END"
        assert w.cmd("delete jobs.a") == DENIED_W + " jobs.a"
        assert w.cmd("flush jobs.a") == DENIED_W + " jobs.a"
        assert w.cmd("flush_expired jobs.a") == DENIED_W + " jobs.a"
        assert w.cmd("kick jobs.a_errors 1") == DENIED_W + " jobs.a_errors"
        # w on results: set, delete, flush; no get of any kind
        assert w.set("results", b"r1") == "STORED"
        assert w.cmd("get results") == DENIED_R + " results"
        assert w.cmd("get results/peek") == DENIED_R + " results"
        assert w.cmd("monitor results 0") == DENIED_R + " results"
        assert w.cmd("flush results") == "END"
        assert w.cmd("delete results") == "DELETED"
        # rw on both.*
        assert w.set("both.1", b"x") == "STORED" and w.get_data("both.1") == b"x"
        # nothing elsewhere; a denied set's data is skipped
        w.send(b"set other 0 0 5\r\nget q\r\n")
        assert w.readline() == DENIED_W + " other"
        assert w.cmd("get other") == DENIED_R + " other"
        # a get of several keys is refused whole when one key is denied
        assert admin.set("jobs.b", b"b") == "STORED"
        assert w.cmd("get jobs.b other") == DENIED_R + " other"
        assert admin.get_data("jobs.b") == b"b"
        # named dump_stats and dump_config need read access to each queue
        assert w.cmd("dump_stats jobs.b") == "queue 'jobs.b' {"
        while w.readline() != "END":
            pass
        assert w.cmd("dump_config jobs.b results") == DENIED_R + " results"


def test_server_wide_commands_are_for_users_without_patterns(make_server, tmp_path):
    s = auth_server(make_server, tmp_path, USERS, "--enable-shutdown")
    with s.client() as w:
        assert login(w, "worker", "workpw") == "STORED"
        for line in ["stats", "flush_all", "flush_all_expired", "reload", "status", "status readonly",
                     "dump_stats", "dump_config", "shutdown"]:
            assert w.cmd(line) == DENIED_SERVER, line
        assert w.cmd("version").startswith("VERSION ")
        assert w.cmd("verbosity 1") == "OK"
        assert w.cmd("frobnicate") == "ERROR"
        assert w.cmd("get bad\x01name").startswith("CLIENT_ERROR bad key")
    with s.client() as a:
        assert login(a, "admin", "adminpw") == "STORED"
        assert a.cmd("status") == "UP"
        assert a.cmd("flush_all") == "OK"
        assert a.cmd("reload") == "Reloaded config."  # the auth file, read again


@pytest.mark.parametrize("pattern,allowed,refused", [
    ("*", ["a", "jobs.mail", "a+b", "x" * 250], []),
    ("q?", ["q1", "qa"], ["q", "q12", "Q1"]),
    ("[abc]-*", ["a-", "c-x.y"], ["d-x", "ab-x", "-a"]),
    ("[!a]*", ["b", "zz"], ["a", "abc"]),
    ("tenant1.*", ["tenant1.jobs", "tenant1.jobs.urgent", "tenant1."], ["tenant1", "tenant2.jobs", "xtenant1.a"]),
    ("orders+*", ["orders+audit"], ["orders", "orders-audit"]),
    ("exact", ["exact"], ["exact2", "exac"]),
], ids=["star", "question", "class", "negated", "prefix", "fanout-children", "exact"])
def test_fnmatch_patterns(make_server, tmp_path, pattern, allowed, refused):
    s = auth_server(make_server, tmp_path, f"u:pw:{pattern}:rw\n")
    with s.client() as c:
        assert login(c, "u", "pw") == "STORED"
        for q in allowed:
            assert c.set(q, b"v") == "STORED", q
            assert c.get_data(q) == b"v", q
        for q in refused:
            assert c.set(q, b"v") == DENIED_W + " " + q, q
            assert c.cmd(f"get {q}") == DENIED_R + " " + q, q


def test_a_user_on_several_lines_gets_every_pattern(make_server, tmp_path):
    s = auth_server(make_server, tmp_path, "u:pw:a.*:r\nu:pw:a.x:w\nu:pw:b:w\n")
    with s.client() as c:
        assert login(c, "u", "pw") == "STORED"
        assert c.set("a.x", b"1") == "STORED" and c.get_data("a.x") == b"1"  # r and w together
        assert c.set("a.y", b"1") == DENIED_W + " a.y"
        assert c.set("b", b"1") == "STORED"


# ---- reload ---------------------------------------------------------------

def test_sighup_adds_and_removes_users(make_server, tmp_path):
    s = auth_server(make_server, tmp_path, "alice:pw1\ncarol:pw3:q*:r\n")
    with s.client() as alice, s.client() as carol, s.client() as dave:
        assert login(alice, "alice", "pw1") == "STORED"
        assert login(carol, "carol", "pw3") == "STORED"
        assert login(dave, "bob", "pw2") == "CLIENT_ERROR authentication failure"
        assert alice.set("q1", b"x") == "STORED"
        users_file(tmp_path, "bob:pw2\ncarol:pw3:q*:rw\n")
        reload_by_signal(s)
        assert re.search(r"reloaded the auth file \S+: 2 users", s.log()), s.log()
        # alice is gone: her connection must authenticate again
        assert alice.cmd("get q1") == "CLIENT_ERROR unauthenticated"
        assert login(alice, "alice", "pw1") == "CLIENT_ERROR authentication failure"
        # carol stays, with her new rights
        assert carol.set("q2", b"y") == "STORED"
        # bob is new
        assert login(dave, "bob", "pw2") == "STORED"
        assert dave.get_data("q1") == b"x"
    assert "must authenticate again" in s.log()


def test_a_changed_password_ends_the_login(make_server, tmp_path):
    s = auth_server(make_server, tmp_path, "u:old\n")
    with s.client() as c:
        assert login(c, "u", "old") == "STORED"
        users_file(tmp_path, "u:new\n")
        reload_by_signal(s)
        assert c.cmd("version") == "CLIENT_ERROR unauthenticated"
        assert login(c, "u", "old") == "CLIENT_ERROR authentication failure"
        assert login(c, "u", "new") == "STORED"


def test_a_bad_file_on_reload_keeps_the_users(make_server, tmp_path):
    s = auth_server(make_server, tmp_path, "u:pw\n")
    with s.client() as c:
        assert login(c, "u", "pw") == "STORED"
        path = users_file(tmp_path, "u:pw\nbroken line\n")
        s.proc.send_signal(signal.SIGHUP)
        assert wait_until(lambda: "auth file reload refused" in s.log()), s.log()
        assert f"{path}:2: " in s.log()
        assert c.cmd("version").startswith("VERSION ")
        assert c.cmd("reload") == f"SERVER_ERROR {path}:2: wants user:password, user:password:queue-pattern " \
                                  "or user:password:queue-pattern:r|w|rw"
        with s.client() as d:
            assert login(d, "u", "pw") == "STORED"
        path.unlink()
        assert c.cmd("reload").startswith(f"SERVER_ERROR cannot read the auth file {path}")
        with s.client() as d:
            assert login(d, "u", "pw") == "STORED"


def test_a_waiting_get_finishes_after_its_user_is_removed(make_server, tmp_path):
    s = auth_server(make_server, tmp_path, "admin:a\nw:pw:q:r\n")
    with s.client() as admin, s.client() as w:
        assert login(admin, "admin", "a") == "STORED"
        assert login(w, "w", "pw") == "STORED"
        w.send(b"get q/t=10000\r\n")
        time.sleep(0.1)
        users_file(tmp_path, "admin:a\n")
        assert admin.cmd("reload") == "Reloaded config."
        assert admin.set("q", b"late") == "STORED"
        assert w.readline() == "VALUE q/t=10000 0 4"
        assert w.readline() == "late" and w.readline() == "END"
        assert w.cmd("get q") == "CLIENT_ERROR unauthenticated"


def test_auth_file_in_the_config_file(make_server, tmp_path):
    users = users_file(tmp_path)
    conf = tmp_path / "darner.conf"
    conf.write_text(f"[server]\nauth_file = {users}\n")
    s = make_server("-c", conf)
    with s.client() as c:
        assert c.cmd("version") == "CLIENT_ERROR unauthenticated"
        assert login(c, "admin", "adminpw") == "STORED"
        users_file(tmp_path, USERS + "new:pw\n")
        assert c.cmd("reload") == "Reloaded config."  # both files
    with s.client() as c:
        assert login(c, "new", "pw") == "STORED"


# ---- starting -------------------------------------------------------------

@pytest.mark.parametrize("text,line,words", [
    ("a:pw\nnocolon\n", 2, "wants user:password"),
    ("a:pw\na:other:q\n", 2, "is on line 1 already"),
    ("a:pw:q:x\n", 1, "access must be r, w or rw"),
    ("a:pw:q:r\na:pw2:p:w\n", 2, "has another password on line 1"),
])
def test_a_bad_auth_file_stops_the_start_naming_the_line(tmp_path, text, line, words):
    users = users_file(tmp_path, text)
    rc, out, err = run_darner(["-Y", str(users), "--port", "0", "--data", str(tmp_path / "data")], cwd=tmp_path)
    assert rc == 2, (rc, err)
    assert f"{users}:{line}: " in err and words in err, err
    assert not (tmp_path / "data").exists(), "a refused start created the data folder"


def test_a_missing_auth_file_stops_the_start(tmp_path):
    rc, out, err = run_darner(["--auth-file", str(tmp_path / "none"), "--port", "0",
                               "--data", str(tmp_path / "data")], cwd=tmp_path)
    assert rc == 2 and "cannot read the auth file" in err and "No such file" in err, err


@pytest.mark.parametrize("addr", ["0.0.0.0", "::"])
def test_a_non_loopback_address_needs_auth_or_consent(make_server, tmp_path, addr):
    rc, out, err = run_darner(["--listen", addr, "--port", "0", "--data", str(tmp_path / "data")], cwd=tmp_path)
    assert rc == 2, (rc, err)
    assert f"refusing to listen on {addr} without authentication" in err, err
    assert "--auth-file" in err and "--allow-unauthenticated" in err, err
    assert not (tmp_path / "data").exists()
    conf = tmp_path / "darner.conf"
    conf.write_text(f"[server]\nlisten = {addr}\n")
    rc, out, err = run_darner(["-c", str(conf), "--port", "0", "--data", str(tmp_path / "data")], cwd=tmp_path)
    assert rc == 2 and "refusing to listen" in err, err


def test_allow_unauthenticated_serves_any_address_with_a_warning(make_server):
    s = make_server("--listen", "0.0.0.0", "--allow-unauthenticated")
    with s.client() as c:
        assert c.set("q", b"open") == "STORED"
        assert c.get_data("q") == b"open"
    assert "not loopback, without authentication" in s.log(), s.log()


def test_an_auth_file_serves_any_address(make_server, tmp_path):
    s = auth_server(make_server, tmp_path, USERS, "--listen", "0.0.0.0")
    with s.client() as c:
        assert c.cmd("get q") == "CLIENT_ERROR unauthenticated"
        assert login(c, "admin", "adminpw") == "STORED"
    assert "without authentication" not in s.log()
    assert "authentication: 2 users from" in s.log(), s.log()


def test_an_empty_auth_file_lets_nobody_in(make_server, tmp_path):
    s = auth_server(make_server, tmp_path, "")
    with s.client() as c:
        assert login(c, "admin", "adminpw") == "CLIENT_ERROR authentication failure"
    assert "no client can authenticate" in s.log()


def test_without_an_auth_file_nothing_changes(make_server):
    s = make_server()
    with s.client() as c:
        assert c.cmd("version").startswith("VERSION ")
        assert c.set("auth", b"admin adminpw") == "STORED"  # just an item
        assert c.get_data("auth") == b"admin adminpw"


def test_stats_count_handshakes(make_server, tmp_path):
    apf = tmp_path / "admin.port"
    s = auth_server(make_server, tmp_path, USERS, "--admin-listen", "0", "--admin-port-file", apf)
    with s.client() as c:
        assert login(c, "admin", "nope") == "CLIENT_ERROR authentication failure"
        c.send(b"set auth 0 0 5\r\nadmin\r\n")
        assert c.readline() == "CLIENT_ERROR bad authentication token format"
        assert c.cmd("stats") == "CLIENT_ERROR unauthenticated"  # not a handshake
        assert login(c, "admin", "adminpw") == "STORED"
        st = c.stats()
        assert (st["auth_enabled_ascii"], st["auth_cmds"], st["auth_errors"]) == ("1", "3", "2")
    port = int(apf.read_text())
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    assert "\ndarner_auth_enabled 1\n" in text, text
    assert "\ndarner_auth_handshakes_total 3\n" in text and "\ndarner_auth_failures_total 2\n" in text, text
    plain = make_server()
    with plain.client() as c:
        st = c.stats()
        assert (st["auth_enabled_ascii"], st["auth_cmds"], st["auth_errors"]) == ("0", "0", "0")
