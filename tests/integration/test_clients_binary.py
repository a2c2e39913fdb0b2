"""Real, unmodified clients that speak memcache's binary protocol: Ruby's
Dalli (Debian's ruby-dalli, 3.x: binary only), with and without SASL,
PHP's memcached extension with its binary option, and Java's spymemcached
(Debian's libspymemcached-java) with its BinaryConnectionFactory. The libmemcached tools
in binary mode are in test_clients.py."""

import shutil
import subprocess

import pytest

from harness import Client

TIMEOUT = 60


def run(argv, *, input_text=None):
    p = subprocess.run(argv, input=input_text, capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, f"{argv[0]} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p.stdout.splitlines()


def have_dalli():
    if shutil.which("ruby") is None:
        return False
    return subprocess.run(["ruby", "-e", "require 'dalli'"], capture_output=True, timeout=TIMEOUT).returncode == 0


dalli = pytest.mark.skipif(not have_dalli(), reason="ruby-dalli (and ruby) not installed: scripts/install-deps test")


def ruby(server, script, *args):
    return run(["ruby", "-e", "require 'dalli'; Dalli.logger.level = Logger::WARN\n" + script,
                f"127.0.0.1:{server.port}", *args])


@dalli
def test_dalli_sets_and_gets_raw_bytes_in_order(server):
    out = ruby(server, r'''
        dc = Dalli::Client.new(ARGV[0], socket_timeout: 10)
        dc.set("dq", "one", 0, raw: true)
        dc.set("dq", "two\r\n\0x", 0, raw: true)
        p dc.get("dq", raw: true)
        p dc.get("dq", raw: true)
        p dc.get("dq", raw: true)
    ''')
    assert out == ['"one"', '"two\\r\\n\\u0000x"', "nil"]


@dalli
def test_dalli_marshals_ruby_objects_through_flags(server):
    out = ruby(server, r'''
        dc = Dalli::Client.new(ARGV[0], socket_timeout: 10)
        dc.set("objs", {"a" => [1, 2]})
        p dc.get("objs")
    ''')
    assert out == ['{"a"=>[1, 2]}']


@dalli
def test_dalli_reliable_read_and_multi_get(server):
    with Client(server.port) as c:
        for d in (b"a", b"b", b"c"):
            assert c.set("rq", d) == "STORED"
    out = ruby(server, r'''
        dc = Dalli::Client.new(ARGV[0], socket_timeout: 10)
        p dc.get("rq/open", raw: true)
        p dc.get("rq/close/open", raw: true)
        p dc.get_multi("rq/peek", "none")
        dc.get("rq/abort")
        p dc.get("rq", raw: true)
    ''')
    assert out == ['"a"', '"b"', '{"rq/peek"=>"c"}', '"b"']   # b is open: the peek sees c


@dalli
def test_dalli_version_stats_delete_flush(server):
    out = ruby(server, r'''
        dc = Dalli::Client.new(ARGV[0], socket_timeout: 10)
        dc.set("s", "x", 0, raw: true)
        p dc.version.values.first
        p dc.stats.values.first["queue_s_items"]
        p dc.delete("s")
        dc.set("t", "x", 0, raw: true)
        p dc.flush.all?
        p dc.get("t")
    ''')
    assert out[0].startswith('"') and out[1:] == ['"1"', "true", "true", "nil"]


@dalli
def test_dalli_authenticates_with_sasl_plain(make_server, tmp_path):
    users = tmp_path / "users"
    users.write_text("worker:workpw:jobs.*:rw\n")
    srv = make_server("--auth-file", users)
    script = r'''
        dc = Dalli::Client.new(ARGV[0], username: "worker", password: ARGV[1], socket_timeout: 10)
        begin
          dc.set("jobs.a", "x", 0, raw: true)
          p dc.get("jobs.a", raw: true)
        rescue Dalli::DalliError => e
          puts "refused: #{e.message}"
        end
    '''
    assert ruby(srv, script, "workpw") == ['"x"']
    out = ruby(srv, script, "wrong")
    assert len(out) == 1 and out[0].startswith("refused:") and "0x20" in out[0], out


def have_php_memcached():
    if shutil.which("php") is None:
        return False
    return subprocess.run(["php", "-r", "exit(class_exists('Memcached') ? 0 : 1);"], capture_output=True,
                          timeout=TIMEOUT).returncode == 0


@pytest.mark.skipif(not have_php_memcached(), reason="php-cli and php-memcached not installed: scripts/install-deps test")
def test_php_memcached_in_binary_mode(server):
    out = run(["php", "-r", r'''
        $m = new Memcached();
        $m->setOption(Memcached::OPT_BINARY_PROTOCOL, true);
        $m->addServer("127.0.0.1", (int)$argv[1]);
        var_export($m->set("pq", "hello")); echo "\n";
        var_export($m->set("pq", [1, 2])); echo "\n";
        var_export($m->get("pq/open")); echo "\n";
        var_export($m->get("pq/close")); echo "\n";
        var_export($m->getResultCode() == Memcached::RES_NOTFOUND); echo "\n";
        var_export($m->get("pq")); echo "\n";
        var_export($m->delete("pq")); echo "\n";
        var_export($m->flush()); echo "\n";
    ''', str(server.port)])
    assert out[:4] == ["true", "true", "'hello'", "false"] and out[4] == "true"
    assert "".join(out[5:-2]).replace(" ", "") == "array(0=>1,1=>2,)"
    assert out[-2:] == ["true", "true"]


SPY_JAR = "/usr/share/java/spymemcached.jar"
SPY = r"""
import java.net.InetSocketAddress;
import java.util.Collections;
import java.util.concurrent.TimeUnit;
import net.spy.memcached.BinaryConnectionFactory;
import net.spy.memcached.MemcachedClient;

public class Spy {
    public static void main(String[] a) throws Exception {
        MemcachedClient c = new MemcachedClient(new BinaryConnectionFactory(),
            Collections.singletonList(new InetSocketAddress("127.0.0.1", Integer.parseInt(a[0]))));
        System.out.println(c.set("sq", 0, "one").get(10, TimeUnit.SECONDS));
        System.out.println(c.set("sq", 0, "two").get(10, TimeUnit.SECONDS));
        System.out.println(c.get("sq"));
        System.out.println(c.get("sq/open"));
        System.out.println(c.get("sq/close"));
        System.out.println(c.get("sq"));
        System.out.println(c.delete("sq").get(10, TimeUnit.SECONDS));
        System.out.println(c.getVersions().size());
        c.shutdown(10, TimeUnit.SECONDS);
    }
}
"""


@pytest.mark.skipif(not (shutil.which("javac") and __import__("os").path.exists(SPY_JAR)),
                    reason="javac or libspymemcached-java not installed: scripts/install-deps test")
def test_spymemcached_in_binary_mode(server, tmp_path):
    (tmp_path / "Spy.java").write_text(SPY)
    run(["javac", "-cp", SPY_JAR, "-d", str(tmp_path), str(tmp_path / "Spy.java")])
    out = run(["java", "-cp", f"{SPY_JAR}:{tmp_path}", "Spy", str(server.port)])
    out = [line for line in out if "INFO" not in line]      # spymemcached logs its connections to stdout
    assert out == ["true", "true", "one", "two", "null", "null", "true", "1"], out
