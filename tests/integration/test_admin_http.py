"""The admin HTTP port (--admin-listen): /healthz, /readyz, /stats.json, and
bad requests (docs/operations.md)."""

import json
import os
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
        assert c.set("mail_out", b"m") == "STORED"
        assert c.get_data("jobs") == b"j0"
        st = c.stats()
    code, ctype, body = get(port, "/stats.json")
    assert code == 200 and ctype == "application/json"
    j = json.loads(body)
    srv, queues = j["server"], j["queues"]
    assert set(queues) == {"jobs", "mail_out"}
    assert queues["jobs"]["items"] == 2 and queues["jobs"]["total_items"] == 3
    assert queues["jobs"]["removed_items"] == 1 and queues["mail_out"]["items"] == 1
    assert srv["version"] == st["version"] and isinstance(srv["version"], str)
    assert srv["status"] == "UP"
    for k in ("curr_items", "total_items", "cmd_set", "cmd_get", "queues"):
        assert srv[k] == int(st[k]), k
    # the same keys as stats: one registry renders both
    flat = set(srv) - {"status"}
    for q, v in queues.items():
        flat |= {f"queue_{q}_{k}" for k in v}
    assert flat == set(st)


def parse_metrics(text):
    """Prometheus text -> {(name, frozenset(labels)): value}, and the TYPE of each family."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        name, labels = head, {}
        if "{" in head:
            name, rest = head.split("{", 1)
            rest = rest[:-1]
            i = 0
            while i < len(rest):
                eq = rest.index("=", i)
                key = rest[i:eq]
                j, val = eq + 2, ""
                while rest[j] != '"':
                    if rest[j] == "\\":
                        j += 1
                        val += {"n": "\n"}.get(rest[j], rest[j])
                    else:
                        val += rest[j]
                    j += 1
                labels[key] = val
                i = j + 2 if j + 1 < len(rest) and rest[j + 1] == "," else j + 1
        samples[(name, frozenset(labels.items()))] = float(value)
    return samples, types


def metric(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def test_metrics_aggregate_by_default_and_per_queue_on_request(make_server, tmp_path):
    s, port = start(make_server, tmp_path)
    with s.client() as c:
        for i in range(4):
            assert c.set("jobs", f"j{i}".encode()) == "STORED"
        assert c.set("jobs/pri=1", b"urgent") == "STORED"
        assert c.set("mail", b"m") == "STORED"
        assert c.set('odd"name\\', b"o") == "STORED"
        assert c.get_data("jobs") == b"urgent"
        assert c.get_data("nothing") is None
        assert c.cmd("bogus") == "ERROR"
        assert c.get_data("jobs/open") == b"j0"
        st = c.stats()
        code, ctype, body = get(port, "/metrics")
        assert code == 200 and ctype.startswith("text/plain; version=0.0.4")
        m, types = parse_metrics(body.decode())
        # no per-queue series without ?queue=, sums instead
        assert not any(name.startswith("darner_queue_") for name, _ in m)
        assert metric(m, "darner_items") == int(st["curr_items"]) == 6
        assert metric(m, "darner_open_items") == 1
        assert metric(m, "darner_queues") == 3
        assert metric(m, "darner_items_removed_total") == 1
        assert metric(m, "darner_connections") == int(st["curr_connections"])
        assert metric(m, "darner_commands_total", command="get", status="hit") == 2
        assert metric(m, "darner_commands_total", command="get", status="miss") == 1
        assert metric(m, "darner_commands_total", command="set", status="ok") == 7
        assert metric(m, "darner_commands_total", command="unknown", status="error") == 1
        assert metric(m, "darner_priority_items", priority="5") == 6    # every item but "urgent"
        assert types["darner_journal_fsync_duration_seconds"] == "histogram"
        assert types["darner_items_added_total"] == "counter" and types["darner_items"] == "gauge"
        assert metric(m, "darner_journal_bytes_written_total") > 0
        assert metric(m, "process_resident_memory_bytes") > 0
        assert metric(m, "darner_server_status", status="UP") == 1

        code, _, body = get(port, "/metrics?queue=j*")
        m, _ = parse_metrics(body.decode())
        assert metric(m, "darner_queue_items", queue="jobs") == 4
        assert metric(m, "darner_queue_open_items", queue="jobs") == 1
        assert metric(m, "darner_queue_items_added_total", queue="jobs") == 5
        assert metric(m, "darner_queue_priority_items", queue="jobs", priority="5") == 4
        assert metric(m, "darner_queue_oldest_item_age_seconds", queue="jobs") >= 0
        assert not any(dict(l).get("queue") == "mail" for _, l in m)

        # a shell pattern, %-encoded; a name that needs escaping
        m, _ = parse_metrics(get(port, "/metrics?queue=%2A")[2].decode())
        assert metric(m, "darner_queue_items", queue='odd"name\\') == 1
        assert metric(m, "darner_queue_items", queue="mail") == 1
        assert get(port, "/metrics?queue=%zz")[0] == 400


def test_metrics_oldest_item_age_follows_the_head(make_server, tmp_path):
    s, port = start(make_server, tmp_path)
    with s.client() as c:
        assert c.set("q", b"first") == "STORED"
        m, _ = parse_metrics(get(port, "/metrics?queue=q")[2].decode())
        first = metric(m, "darner_queue_oldest_item_age_seconds", queue="q")
        assert 0 <= first < 60
        assert c.get_data("q") == b"first"
        m, _ = parse_metrics(get(port, "/metrics?queue=q")[2].decode())
        assert metric(m, "darner_queue_oldest_item_age_seconds", queue="q") == 0   # empty


def test_metrics_pass_promtool(make_server, tmp_path):
    import shutil
    import subprocess
    here = os.path.dirname(os.path.abspath(__file__))
    promtool = os.path.join(here, "..", "..", "build-tools", "promtool")
    if not os.path.exists(promtool):
        promtool = shutil.which("promtool")
    assert promtool, "promtool not found: scripts/get-promtool puts it in build-tools/"
    s, port = start(make_server, tmp_path)
    with s.client() as c:
        assert c.set("jobs/pri=0", b"x") == "STORED"
        assert c.set("mail", b"m") == "STORED"
        assert c.get_data("jobs/open") == b"x"
        body = get(port, "/metrics?queue=*")[2]
    r = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=60)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), (r.stdout, r.stderr)


def test_head_gets_headers_only(make_server, tmp_path):
    s, port = start(make_server, tmp_path)
    code, ctype, body = get(port, "/metrics", method="HEAD")
    assert code == 200 and body == b""


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


def test_metrics_families_appear_once_whatever_the_step_boundaries(make_server, tmp_path):
    """/metrics is written in steps of 2,000 lines: a step that ends right
    at a family's end must not repeat the next family's HELP and TYPE."""
    s, port = start(make_server, tmp_path)
    with s.client() as c:
        for n in range(1, 131):
            assert c.set(f"q{n:03d}", b"x") == "STORED"
            if n >= 118:
                body = get(port, "/metrics?queue=*")[2].decode()
                types = [l for l in body.splitlines() if l.startswith("# TYPE ")]
                assert len(types) == len(set(types)), n
        assert c.set("a%41", b"x") == "STORED" and c.set("aA", b"x") == "STORED"
    m, _ = parse_metrics(get(port, "/metrics?queue=a*")[2].decode())
    assert metric(m, "darner_queue_items", queue="a%2541") == 1    # % itself escaped: no clash
    assert metric(m, "darner_queue_items", queue="aA") == 1
