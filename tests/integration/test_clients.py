"""Real, unmodified memcache clients against darner: pymemcache,
python-memcache and the libmemcached command-line tools."""

import shutil
import subprocess

import memcache
import pytest
from pymemcache import serde
from pymemcache.client.base import Client as PymemcacheClient

from harness import Client

TOOL_TIMEOUT = 60


# --------------------------------------------------------------------------
# pymemcache
# --------------------------------------------------------------------------

@pytest.fixture
def pymc(server):
    c = PymemcacheClient(("127.0.0.1", server.port), connect_timeout=10, timeout=10)
    yield c
    c.close()


def test_pymemcache_set_with_default_noreply_then_get(pymc):
    assert pymc.default_noreply is True
    assert pymc.set("q", b"hello") is True
    assert pymc.get("q") == b"hello"
    assert pymc.get("q") is None


def test_pymemcache_set_without_noreply_then_get(pymc):
    assert pymc.set("q", b"hello", noreply=False) is True
    assert pymc.get("q") == b"hello"


def test_pymemcache_client_with_noreply_false(server):
    c = PymemcacheClient(("127.0.0.1", server.port), default_noreply=False, timeout=10)
    try:
        assert c.set("q", b"one") is True
        assert c.set("q", b"two") is True
        assert c.get("q") == b"one"
        assert c.get("q") == b"two"
        assert c.delete("q") is True
    finally:
        c.close()


def test_pymemcache_sets_keep_fifo_order(pymc):
    for i in range(20):
        pymc.set("q", b"%d" % i)
    assert [pymc.get("q") for _ in range(20)] == [b"%d" % i for i in range(20)]


def test_pymemcache_get_many_of_several_queues(pymc):
    pymc.set("a", b"1")
    pymc.set("c", b"3", noreply=False)
    assert pymc.get_many(["a", "b", "c"]) == {"a": b"1", "c": b"3"}
    assert pymc.get_many(["a", "b", "c"]) == {}


def test_pymemcache_keys_with_open_and_close(pymc, server):
    pymc.set("q", b"first")
    pymc.set("q", b"second")
    assert pymc.get("q/open") == b"first"
    with Client(server.port) as raw:
        assert raw.get("q/peek") == (0, b"second")
    assert pymc.get("q/close") is None
    assert pymc.get("q/close/open") == b"second"
    assert pymc.get("q/close") is None
    assert pymc.get("q") is None


def test_pymemcache_get_many_with_options(pymc):
    pymc.set("a", b"1")
    pymc.set("b", b"2")
    assert pymc.get_many(["a/open", "b/peek"]) == {"a/open": b"1", "b/peek": b"2"}
    assert pymc.get("a/abort") is None
    assert pymc.get_many(["a", "b"]) == {"a": b"1", "b": b"2"}


def test_pymemcache_get_with_timeout_option(pymc):
    pymc.set("q", b"x", noreply=False)
    assert pymc.get("q/t=1000") == b"x"
    assert pymc.get("q/t=100") is None


def test_pymemcache_gets_returns_the_item_and_a_cas(pymc):
    pymc.set("q", b"one", noreply=False)
    pymc.set("q", b"two", noreply=False)
    v1, cas1 = pymc.gets("q")
    v2, cas2 = pymc.gets("q")
    assert (v1, v2) == (b"one", b"two")
    assert int(cas2) == int(cas1) + 1
    assert pymc.gets("q") == (None, None)


def test_pymemcache_lease_and_touch(pymc):
    pymc.set("jobs", b"work", noreply=False)
    assert pymc.get("jobs/open/ttr=1000") == b"work"
    assert pymc.touch("jobs", 5, noreply=False) is True      # TOUCHED
    assert pymc.touch("other", 5, noreply=False) is False    # NOT_FOUND
    assert pymc.get("jobs/close") is None


def test_pymemcache_delete(pymc):
    pymc.set("q", b"x")
    assert pymc.delete("q") is True
    assert pymc.get("q") is None
    pymc.set("q", b"y")
    assert pymc.delete("q", noreply=False) is True
    assert pymc.get("q") is None


def test_pymemcache_stats(pymc):
    pymc.set("q", b"x", noreply=False)
    stats = pymc.stats()
    assert stats[b"curr_items"] == 1
    assert stats[b"queue_q_items"] == 1
    assert stats[b"cmd_set"] >= 1


def test_pymemcache_version(pymc):
    v = pymc.version()
    major, minor = v.split(b".")[:2]
    assert (int(major), int(minor)) >= (1, 0)


def test_pymemcache_flush_all(pymc):
    pymc.set("a", b"1")
    pymc.set("b", b"2")
    assert pymc.flush_all(noreply=False) is True
    assert pymc.get_many(["a", "b"]) == {}


def test_pymemcache_serializer_flags_round_trip(server):
    c = PymemcacheClient(("127.0.0.1", server.port), serde=serde.pickle_serde, timeout=10)
    try:
        c.set("q", {"a": [1, 2, 3]})
        c.set("q", 42)
        c.set("q", "text")
        assert c.get("q") == {"a": [1, 2, 3]}
        assert c.get("q") == 42
        assert c.get("q") == "text"
    finally:
        c.close()


# --------------------------------------------------------------------------
# python-memcache
# --------------------------------------------------------------------------

@pytest.fixture
def pmc(server):
    c = memcache.Client([f"127.0.0.1:{server.port}"], socket_timeout=10)
    yield c
    c.disconnect_all()


def test_python_memcache_set_then_get(pmc):
    assert pmc.set("q", "hello") is True
    assert pmc.get("q") == "hello"
    assert pmc.get("q") is None


def test_python_memcache_keeps_types_through_flags(pmc):
    assert pmc.set("q", 12345)
    assert pmc.set("q", {"k": "v"})
    assert pmc.set("q", b"raw")
    assert pmc.get("q") == 12345
    assert pmc.get("q") == {"k": "v"}
    assert pmc.get("q") == b"raw"


def test_python_memcache_get_multi(pmc):
    assert pmc.set("a", "1")
    assert pmc.set("c", "3")
    assert pmc.get_multi(["a", "b", "c"]) == {"a": "1", "c": "3"}


def test_python_memcache_keys_with_options(pmc):
    assert pmc.set("q", "x")
    assert pmc.get("q/open") == "x"
    assert pmc.get("q/close") is None
    assert pmc.get("q") is None


def test_python_memcache_delete(pmc):
    assert pmc.set("q", "x")
    assert pmc.delete("q")
    assert pmc.get("q") is None


# --------------------------------------------------------------------------
# libmemcached tools
# --------------------------------------------------------------------------

def tool(name, server, *args, check=True):
    exe = shutil.which(name)
    if exe is None:
        pytest.fail(f"{name} is not installed (libmemcached-tools)")
    p = subprocess.run([exe, f"--servers=127.0.0.1:{server.port}", *args],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=TOOL_TIMEOUT)
    if check:
        assert p.returncode == 0, (f"{name} {' '.join(args)} exited {p.returncode}\n"
                                   f"stdout: {p.stdout!r}\nstderr: {p.stderr!r}")
    return p


def assert_server_answers(server):
    with Client(server.port) as c:
        assert c.cmd("version").startswith("VERSION ")


def test_memccp_copies_a_file_as_an_item_keyed_by_basename(server, tmp_path):
    f = tmp_path / "payload.txt"
    content = b"line one\r\nline two\n\x00binary\xff" * 100
    f.write_bytes(content)
    tool("memccp", server, str(f))
    with Client(server.port) as c:
        assert c.get("payload.txt") == (0, content)


def test_memccat_gets_the_copied_file_back(server, tmp_path):
    f = tmp_path / "doc.bin"
    content = bytes(range(256)) * 40
    f.write_bytes(content)
    tool("memccp", server, str(f))
    out = tmp_path / "doc.out"
    tool("memccat", server, f"--file={out}", "doc.bin")
    assert out.read_bytes() == content


def test_memccat_of_a_raw_set_item(server, client):
    assert client.set("greeting", b"hello from darner") == "STORED"
    p = tool("memccat", server, "greeting")
    assert p.stdout == b"hello from darner\n"     # memccat ends its output with a newline


def test_memcrm_deletes_the_queue(server, tmp_path):
    f = tmp_path / "gone.txt"
    f.write_bytes(b"to be removed")
    tool("memccp", server, str(f))
    tool("memcrm", server, "gone.txt")
    with Client(server.port) as c:
        assert c.get("gone.txt") is None
        assert not any(k.startswith("queue_gone.txt_") for k in c.stats())


def test_memcstat_prints_the_stats(server, client):
    assert client.set("q", b"x") == "STORED"
    p = tool("memcstat", server)
    out = p.stdout.decode("utf-8", "replace")
    assert "curr_items" in out
    assert "queue_q_items" in out


def test_memcping_succeeds(server):
    tool("memcping", server)


def test_memcflush_empties_every_queue(server, client):
    assert client.set("a", b"1") == "STORED"
    assert client.set("b", b"2") == "STORED"
    tool("memcflush", server)
    assert client.get_multi(["a", "b"]) == []


def test_memcslap_set_test(server):
    tool("memcslap", server, "--test=set", "--execute-number=100", "--concurrency=1")
    assert_server_answers(server)


def test_memcslap_get_test(server):
    tool("memcslap", server, "--test=get", "--execute-number=100", "--concurrency=1")
    assert_server_answers(server)


# The same tools in binary mode (--binary: memcache's binary protocol).

def test_memccp_and_memccat_in_binary_mode(server, tmp_path):
    f = tmp_path / "bin.dat"
    content = bytes(range(256)) * 40 + b"\r\n\x00"
    f.write_bytes(content)
    tool("memccp", server, "--binary", str(f))
    tool("memccp", server, "--binary", str(f))
    out = tmp_path / "bin.out"
    tool("memccat", server, "--binary", f"--file={out}", "bin.dat")
    assert out.read_bytes() == content
    with Client(server.port) as c:                 # the second copy, for a text client
        assert c.get("bin.dat") == (0, content)
        assert c.get("bin.dat") is None


def test_memccat_in_binary_mode_of_an_empty_queue_fails(server):
    p = tool("memccat", server, "--binary", "nothing", check=False)
    assert p.returncode != 0
    assert_server_answers(server)


def test_memcstat_memcrm_and_memcflush_in_binary_mode(server, client, tmp_path):
    assert client.set("q", b"x") == "STORED"
    out = tool("memcstat", server, "--binary").stdout.decode("utf-8", "replace")
    assert "curr_items: 1" in out and "queue_q_items: 1" in out, out
    tool("memcrm", server, "--binary", "q")
    assert client.get("q") is None
    assert client.set("a", b"1") == "STORED"
    tool("memcflush", server, "--binary")
    assert client.get("a") is None


def test_memcslap_in_binary_mode(server):
    tool("memcslap", server, "--binary", "--test=set", "--execute-number=200", "--concurrency=2")
    tool("memcslap", server, "--binary", "--test=get", "--execute-number=200", "--concurrency=2")
    assert_server_answers(server)


# --------------------------------------------------------------------------
# Perl: Cache::Memcached::Fast (Debian's libcache-memcached-fast-perl)
# --------------------------------------------------------------------------

def perl(server, script):
    exe = shutil.which("perl")
    if exe is None:
        pytest.fail("perl is not installed")
    p = subprocess.run([exe, "-MCache::Memcached::Fast", "-e", script, f"127.0.0.1:{server.port}"],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    assert p.returncode == 0, f"perl exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p.stdout


def test_perl_cache_memcached_fast_gets_receives_the_item(server):
    out = perl(server, r'''
        my $m = Cache::Memcached::Fast->new({servers => [$ARGV[0]]});
        $m->set("q", "first") or die "set";
        $m->set("q", "second") or die "set";
        my $a = $m->gets("q") or die "gets returned nothing";
        my $b = $m->gets("q") or die "second gets returned nothing";
        print "$a->[1] $b->[1] ", ($b->[0] - $a->[0]), "\n";
        print defined($m->gets("q")) ? "more\n" : "empty\n";
    ''')
    assert out.splitlines() == ["first second 1", "empty"]
