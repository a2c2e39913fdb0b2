"""TLS on the memcache port, memcached's way (-Z, --ssl-chain-cert, --ssl-key,
--ssl-ca-cert, --ssl-verify-mode, --ssl-min-version, notls: listeners, SIGHUP
reloads the certificate): with pymemcache's tls_context and with openssl
s_client (docs/operations.md, "TLS")."""

import signal
import socket
import ssl
import subprocess
import time

import pytest
from pymemcache.client.base import Client

from pki import openssl, pki  # noqa: F401 - the fixture

DEADLINE = 10.0


def tls_args(pki, *more):
    return ("-Z", "--ssl-chain-cert", str(pki / "server.pem"), "--ssl-key", str(pki / "server.key"), *more)


def ports(server):
    return [int(x) for x in server.port_file.read_text().split()]


def context(pki, cert=None, version=None):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    if version:
        ctx.maximum_version = version
    return ctx


def client(port, ctx):
    return Client(("127.0.0.1", port), tls_context=ctx, connect_timeout=5, timeout=5, default_noreply=False)


def test_pymemcache_over_tls_sets_gets_and_streams_large_items(make_server, pki):
    s = make_server(*tls_args(pki))
    c = client(s.port, context(pki))
    assert c.set("jobs", b"first") is True
    big = bytes(range(256)) * (5 << 12)  # 5 MiB: streamed through a file both ways
    assert c.set("jobs", big) is True
    assert c.get("jobs") == b"first"
    assert c.get("jobs") == big
    # the reliable read, over TLS too
    assert c.set("work", b"w1") is True
    assert c.get("work/open") == b"w1"
    assert c.get("work/close") is None
    assert c.get("work") is None
    c.close()


def test_openssl_s_client_talks_to_it(make_server, pki):
    s = make_server(*tls_args(pki))
    r = subprocess.run(["openssl", "s_client", "-quiet", "-verify_return_error", "-CAfile", str(pki / "ca.pem"),
                        "-connect", f"127.0.0.1:{s.port}"],
                       input=b"set q 0 0 5\r\nhello\r\nget q\r\nquit\r\n", capture_output=True, timeout=30)
    assert r.stdout == b"STORED\r\nVALUE q 0 5\r\nhello\r\nEND\r\n", (r.stdout, r.stderr)


def test_plain_text_on_a_tls_port_gets_nothing_and_notls_listener_is_plain(make_server, pki):
    s = make_server(*tls_args(pki, "--listen", "127.0.0.1,notls:127.0.0.1:0"))
    tls_port, plain_port = ports(s)
    assert tls_port == s.port
    with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as sock:
        sock.sendall(b"set q 0 0 1\r\nx\r\nget q\r\n")
        got = b""
        try:
            while True:
                b = sock.recv(4096)
                if not b:
                    break
                got += b
        except (ConnectionResetError, socket.timeout):
            pass
        assert b"STORED" not in got and b"VALUE" not in got   # an alert at most, then closed
    with socket.create_connection(("127.0.0.1", plain_port), timeout=5) as sock:
        sock.sendall(b"set q 0 0 1\r\nx\r\nget q\r\n")
        got = b""
        while not got.endswith(b"END\r\n"):
            got += sock.recv(4096)
        assert got == b"STORED\r\nVALUE q 0 1\r\nx\r\nEND\r\n"
    # and the TLS port still serves
    assert client(tls_port, context(pki)).get("nothing") is None


def test_client_certificates_when_required(make_server, pki):
    s = make_server(*tls_args(pki, "--ssl-ca-cert", str(pki / "ca.pem"), "--ssl-verify-mode", "2"))
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        c = client(s.port, context(pki))
        c.set("q", b"x")
    c = client(s.port, context(pki, cert="client"))
    assert c.set("q", b"x") is True and c.get("q") == b"x"


def test_min_version_tls13_refuses_tls12_clients(make_server, pki):
    s = make_server(*tls_args(pki, "--ssl-min-version", "tlsv1.3"))
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        client(s.port, context(pki, version=ssl.TLSVersion.TLSv1_2)).set("q", b"x")
    assert client(s.port, context(pki)).set("q", b"x") is True


def serial_seen(port, pki):
    ctx = context(pki)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
            return t.getpeercert()["serialNumber"]


def test_sighup_reloads_the_certificate_and_old_connections_go_on(make_server, pki):
    s = make_server(*tls_args(pki))
    old = client(s.port, context(pki))
    assert old.set("q", b"before") is True
    first = serial_seen(s.port, pki)
    # a new certificate for the same key, in the same files
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "3", "-extfile", "server.ext", cwd=pki)
    s.proc.send_signal(signal.SIGHUP)
    end = time.monotonic() + DEADLINE
    while serial_seen(s.port, pki) == first:
        assert time.monotonic() < end, "the new certificate was not served after SIGHUP"
        time.sleep(0.05)
    assert old.get("q") == b"before"      # made under the old context: still served
    # a broken file keeps the certificate that works
    (pki / "server.pem").write_text("not a certificate\n")
    s.proc.send_signal(signal.SIGHUP)
    with s.client() as c:                 # the plain admin commands still answer
        pass
    assert client(s.port, context(pki)).set("q", b"after") is True


def test_bad_tls_settings_refuse_to_start(make_server, pki, tmp_path):
    from harness import run_darner
    s = make_server(*tls_args(pki), start=False)
    argv = s.argv()[1:]
    missing = [a if a != str(pki / "server.pem") else str(tmp_path / "nope.pem") for a in argv]
    rc, out, err = run_darner(missing, cwd=tmp_path)
    assert rc not in (0, None) and "nope.pem" in err, err
    rc, out, err = run_darner([*argv, "--ssl-verify-mode", "2"], cwd=tmp_path)
    assert rc not in (0, None) and "ssl-ca-cert" in err, err
    no_cert = [a for a in argv if a not in ("--ssl-chain-cert", str(pki / "server.pem"))]
    rc, out, err = run_darner(no_cert, cwd=tmp_path)
    assert rc not in (0, None) and "ssl-chain-cert" in err, err


def test_shutdown_over_tls_stops_cleanly(make_server, pki):
    s = make_server(*tls_args(pki, "--enable-shutdown"))
    ctx = context(pki)
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
            t.sendall(b"shutdown\r\n")
            try:
                while t.recv(4096):
                    pass
            except (ssl.SSLError, ConnectionError, OSError):
                pass
    assert s.proc.wait(timeout=DEADLINE) == 0
    s.stopped_by_test = True


def test_sessions_resume_with_client_certificates(make_server, pki):
    s = make_server(*tls_args(pki, "--ssl-ca-cert", str(pki / "ca.pem"), "--ssl-verify-mode", "2"))
    ctx = context(pki, cert="client", version=ssl.TLSVersion.TLSv1_2)
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
            t.sendall(b"version\r\n")
            assert t.recv(100).startswith(b"VERSION")
            session = t.session
    with socket.create_connection(("127.0.0.1", s.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as t:
            t.sendall(b"version\r\n")
            assert t.recv(100).startswith(b"VERSION")
            assert t.session_reused


def test_clients_leaving_mid_answer(make_server, pki):
    """A TLS client that goes away while a large answer is being written
    (ASan runs this too: nothing of it may leak)."""
    s = make_server(*tls_args(pki))
    c = client(s.port, context(pki))
    assert c.set("big", b"y" * (6 << 20)) is True
    for _ in range(3):
        raw = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        t = context(pki).wrap_socket(raw, server_hostname="127.0.0.1")
        t.sendall(b"get big/peek\r\n")
        t.recv(1000)          # the answer has begun
        t.close()
    assert c.get("big/peek") == b"y" * (6 << 20)
