"""The admin port beyond loopback: HTTP Basic with the auth file's users and
TLS with the memcache port's certificate (admin_auth, admin_tls; auto turns
both on for a non-loopback address). Tested on loopback with the modes
forced on, and the refusal for a non-loopback address without users
(docs/operations.md, "The admin HTTP port")."""

import base64
import ssl
import urllib.error
import urllib.request

from pki import pki  # noqa: F401 - the fixture


def users(tmp_path):
    f = tmp_path / "users"
    f.write_text("ops:s3cret\nwriter:pw:jobs*:w\n")
    return f


def get(url, creds=None, ctx=None, method="GET"):
    req = urllib.request.Request(url, method=method)
    if creds:
        req.add_header("Authorization", "Basic " + base64.b64encode(creds.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def start(make_server, tmp_path, *extra):
    apf = tmp_path / "admin.port"
    s = make_server("--admin-listen", "0", "--admin-port-file", str(apf), *extra)
    return s, int(apf.read_text())


def test_basic_auth_with_the_auth_file_users(make_server, tmp_path):
    s, port = start(make_server, tmp_path, "--auth-file", str(users(tmp_path)), "--admin-auth", "on")
    base = f"http://127.0.0.1:{port}"
    code, headers, _ = get(base + "/metrics")
    assert code == 401 and headers["WWW-Authenticate"].startswith('Basic realm="darner"')
    assert get(base + "/metrics", "ops:wrong")[0] == 401
    assert get(base + "/metrics", "nobody:s3cret")[0] == 401
    code, _, body = get(base + "/metrics", "ops:s3cret")
    assert code == 200 and b"darner_queues " in body
    assert get(base + "/stats.json", "ops:s3cret")[0] == 200
    assert get(base + "/", "ops:s3cret")[0] == 200                  # the dashboard too
    assert get(base + "/metrics", "writer:pw")[0] == 403            # limited to some queues
    # health checks stay open: a load balancer has no password
    assert get(base + "/healthz")[0] == 200 and get(base + "/readyz")[0] == 200
    # malformed credentials
    for bad in ("Basic", "Basic !!!!", "Bearer abc", "Basic " + base64.b64encode(b"nocolon").decode(),
                "Basic ====", "Basic A===", "Basic AA==AA==", "Basic =" * 3):
        req = urllib.request.Request(base + "/metrics", headers={"Authorization": bad})
        try:
            urllib.request.urlopen(req, timeout=10)
            assert False, bad
        except urllib.error.HTTPError as e:
            assert e.code == 401, bad


def test_admin_port_over_tls(make_server, tmp_path, pki):
    s, port = start(make_server, tmp_path, "-Z", "--ssl-chain-cert", str(pki / "server.pem"), "--ssl-key",
                    str(pki / "server.key"), "--admin-tls", "on", "--auth-file", str(users(tmp_path)),
                    "--admin-auth", "on", "--listen", "notls:127.0.0.1")
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    base = f"https://127.0.0.1:{port}"
    code, _, body = get(base + "/metrics?queue=*", "ops:s3cret", ctx)
    assert code == 200 and b"darner_queues " in body
    assert get(base + "/metrics", None, ctx)[0] == 401
    code, _, body = get(base + "/stats.json", "ops:s3cret", ctx, method="HEAD")
    assert code == 200 and body == b""
    # a large answer crosses TLS whole
    with s.client() as c:
        assert c.set("login", b"ops s3cret") == "STORED"     # memcached's handshake (--auth-file)
        for i in range(300):
            assert c.set(f"queue{i:04d}", b"x") == "STORED"
    code, _, body = get(base + "/metrics?queue=*", "ops:s3cret", ctx)
    assert code == 200 and body.count(b'darner_queue_items{queue="queue') == 300
    # plain HTTP to it gets no answer
    try:
        code = get(f"http://127.0.0.1:{port}/healthz")[0]
    except (urllib.error.URLError, ConnectionError, OSError):
        code = None
    assert code != 200


def test_non_loopback_admin_port_needs_users_or_the_flag(make_server, tmp_path):
    """Refused before anything binds the address (no socket leaves loopback)."""
    from harness import run_darner
    s = make_server("--admin-listen", "0.0.0.0:0", start=False)
    rc, out, err = run_darner(s.argv()[1:], cwd=tmp_path)
    assert rc not in (0, None) and "--auth-file" in err and "--allow-unauthenticated" in err, err


def test_modes_that_cannot_work_refuse_to_start(make_server, tmp_path):
    from harness import run_darner
    s = make_server("--admin-listen", "0", "--admin-auth", "on", start=False)
    rc, out, err = run_darner(s.argv()[1:], cwd=tmp_path)
    assert rc not in (0, None) and "auth-file" in err, err
    s = make_server("--admin-listen", "0", "--admin-tls", "on", start=False)
    rc, out, err = run_darner(s.argv()[1:], cwd=tmp_path)
    assert rc not in (0, None) and "enable-ssl" in err, err


def test_idle_and_surplus_admin_connections_are_closed(make_server, tmp_path):
    import socket
    s, port = start(make_server, tmp_path, "--admin-timeout", "2s", "--admin-max-connections", "2",
                    "--log-level", "debug")
    a = socket.create_connection(("127.0.0.1", port), timeout=10)
    b = socket.create_connection(("127.0.0.1", port), timeout=10)
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert c.recv(100) == b""                    # the third: closed at once
    assert a.recv(100) == b"" and b.recv(100) == b""   # the idle ones: closed after admin_timeout
    for x in (a, b, c):
        x.close()
    try:
        code = get(f"http://127.0.0.1:{port}/healthz")[0]
    except OSError as e:
        code = e
    assert code == 200, s.log()
