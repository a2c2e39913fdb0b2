"""The admin HTTP port (--admin-listen): /healthz, /readyz, /stats.json, and
bad requests (docs/operations.md)."""

import json
import socket
import urllib.error
import urllib.request


def start(make_server, tmp_path, *extra):
    apf = tmp_path / "admin.port"
    s = make_server("--admin-listen", "0", "--admin-port-file", str(apf), *extra)
    # the memcache port file is written only once the admin port accepts too
    return s, int(apf.read_text())


def get(port, path, method="GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def test_healthz_and_readyz(make_server, tmp_path):
    s, port = start(make_server, tmp_path, "--status-grace", "0")
    assert get(port, "/healthz")[:2] == (200, "text/plain; charset=utf-8")
    assert get(port, "/readyz")[0] == 200
    with s.client() as c:
        assert c.cmd("status quiescent") == "END"
        assert get(port, "/readyz")[0] == 503           # serves no get: not ready
        assert get(port, "/healthz")[0] == 200          # still alive
        assert c.cmd("status up") == "END"
    assert get(port, "/readyz")[0] == 200


def test_stats_json_says_what_stats_says(make_server, tmp_path):
    s, port = start(make_server, tmp_path)
    with s.client() as c:
        for i in range(3):
            assert c.set("jobs", f"j{i}".encode()) == "STORED"
        assert c.get_data("jobs") == b"j0"
        st = c.stats()
    code, ctype, body = get(port, "/stats.json")
    assert code == 200 and ctype == "application/json"
    j = json.loads(body)
    assert j["queue_jobs_items"] == 2 and j["queue_jobs_total_items"] == 3
    assert j["version"] == st["version"] and isinstance(j["version"], str)
    for k in ("curr_items", "total_items", "cmd_set", "cmd_get", "queues"):
        assert j[k] == int(st[k]), k
    assert set(j) == set(st)                            # the same keys: one source for both


def test_bad_requests_are_answered_and_closed(make_server, tmp_path):
    s, port = start(make_server, tmp_path)
    assert get(port, "/nope")[0] == 404
    assert get(port, "/healthz", method="POST")[0] == 405
    assert get(port, "/" + "x" * 10000)[0] == 414
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"garbage\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 400")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n" + b"X-Pad: " + b"y" * 70000 + b"\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 431")
    assert get(port, "/healthz")[0] == 200               # and it keeps serving
    with s.client() as c:
        assert c.cmd("version").startswith("VERSION")


def test_a_bad_admin_listen_stops_the_start(make_server, tmp_path):
    s = make_server("--admin-listen", "nonsense:port", start=False)
    from harness import run_darner
    rc, out, err = run_darner(s.argv()[1:], cwd=tmp_path)
    assert rc not in (0, None) and "admin-listen" in err, err
