"""Many queues on one server (docs/architecture.md, "Many queues").

Queue journals are a bounded cache of open files sized from the open-file
limit: idle ones are closed and opened again on use, start-up reads only the
queues' names, and an idle queue holds a few KiB of disk.  Each test runs the
server under a small open-file limit (prlimit) and more queues than it could
ever hold open at once.
"""

import os
import shutil
import subprocess
import time

import pytest

from harness import DARNER_BIN, Server, rss_anon_kib, sanitized

QUEUES = 2000
NOFILE = 256


class LimitedServer(Server):
    """A Server started under an open-file limit of `nofile` (soft and hard)."""

    def __init__(self, workdir, extra_args=(), nofile=NOFILE, **kw):
        super().__init__(workdir, extra_args, **kw)
        self.nofile = nofile

    def argv(self):
        return ["prlimit", f"--nofile={self.nofile}:{self.nofile}", "--", *super().argv()]


@pytest.fixture
def limited(tmp_path):
    if shutil.which("prlimit") is None:
        pytest.fail("prlimit (util-linux) is needed for these tests")
    made = []

    def factory(*args, **kw):
        s = LimitedServer(tmp_path / f"s{len(made)}", args, **kw)
        made.append(s)
        return s.start()

    yield factory
    complaints = [c for c in (s.cleanup() for s in made) if c]
    if complaints:
        pytest.fail("\n".join(complaints), pytrace=False)


def pipelined(c, lines, expect):
    """Sends every request at once and reads one answer line per request."""
    c.send(b"".join(lines))
    return [c.readline() for _ in range(expect)]


def server_pid(s):
    # prlimit execs the server, so the child is the server itself
    return s.proc.pid


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def disk_kib(path):
    return int(subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True).stdout.split()[0])


def test_more_queues_than_open_files_all_stored_and_all_back_after_restart(limited):
    s = limited()
    pid = server_pid(s)
    with s.client() as c:
        answers = pipelined(c, [b"set q%d 0 0 6\r\nitem%02d\r\n" % (i, i % 100) for i in range(QUEUES)], QUEUES)
        assert answers == ["STORED"] * QUEUES, [a for a in answers if a != "STORED"][:3]
        assert int(c.stats()["queues"]) == QUEUES
        fds = open_fds(pid)
        assert fds < NOFILE, f"{fds} fds open under a limit of {NOFILE}"
    log = s.log()
    assert f"soft {NOFILE}" in log and f"hard {NOFILE}" in log, log
    per_queue = disk_kib(s.data) / QUEUES
    assert per_queue <= 16.5, f"{per_queue:.1f} KiB of disk per queue holding one small item"
    s.stop()
    s.start()
    with s.client() as c:
        assert c.cmd("version").startswith("VERSION")
        got = pipelined(c, [b"get q%d\r\n" % i for i in range(QUEUES)], 3 * QUEUES)
        values = [got[3 * i + 1] for i in range(QUEUES)]
        assert values == ["item%02d" % (i % 100) for i in range(QUEUES)]
        assert c.get_multi(["q0", "q1999"]) == []
        assert open_fds(server_pid(s)) < NOFILE


def test_open_items_keep_their_queue_open_and_come_back(limited):
    """An open item pins its journal in the cache; given back when the client
    goes, it is handed out again, even after many other queues were used."""
    s = limited("--max-open-queues", "16")
    with s.client() as holder, s.client() as c:
        assert c.set("held", "x") == "STORED"
        assert holder.get_data("held/open") == b"x"
        assert pipelined(c, [b"set other%d 0 0 1\r\ny\r\n" % i for i in range(200)], 200) == ["STORED"] * 200
        assert holder.get_data("held/close") is None
        assert c.get_data("held") is None
        assert c.set("held", "z") == "STORED"
        assert holder.get_data("held/open") == b"z"
    with s.client() as c:
        assert c.get_data("held") == b"z"
        assert c.get_data("other0") == b"y" and c.get_data("other199") == b"y"


def test_failed_queue_creation_leaves_nothing_behind(limited):
    """With the cache allowed to hold more journals than there are fds, queue
    creation runs out of fds: it answers SERVER_ERROR <reason>, leaves no
    folder behind, and the server goes on serving the queues it has."""
    s = limited("--max-open-queues", "100000", nofile=128)
    with s.client() as c:
        answers = pipelined(c, [b"set q%d 0 0 1\r\nx\r\n" % i for i in range(200)], 200)
        stored = answers.count("STORED")
        failed = [a for a in answers if a != "STORED"]
        assert failed and stored, answers[:3]
        assert all(a.startswith("SERVER_ERROR ") and len(a) > len("SERVER_ERROR ") for a in failed), failed[:3]
        folders = [p for p in os.listdir(s.data) if p not in ("tmp", "FORMAT")]
        assert len(folders) == stored and all(p.startswith("q-") for p in folders), sorted(folders)[:5]
        assert c.cmd("version").startswith("VERSION")
        assert c.get_data("q0") == b"x"


@pytest.mark.skipif(sanitized(DARNER_BIN), reason="sanitizer builds hold memory in their own pools")
def test_own_memory_per_idle_queue_is_small(limited):
    s = limited()
    pid = server_pid(s)
    with s.client() as c:
        assert pipelined(c, [b"set warm%d 0 0 1\r\nx\r\n" % i for i in range(100)], 100) == ["STORED"] * 100
        before = rss_anon_kib(pid)
        assert pipelined(c, [b"set q%d 0 0 6\r\nitem%02d\r\n" % (i, i % 100) for i in range(QUEUES)],
                         QUEUES) == ["STORED"] * QUEUES
        after = rss_anon_kib(pid)
    per_queue = (after - before) * 1024 / QUEUES
    print(f"own memory per idle queue: {per_queue:.0f} bytes")
    assert per_queue <= 2048, f"{per_queue:.0f} bytes of own memory per queue"


def test_queues_closed_before_their_folders_are_synced_sync_cleanly(make_server):
    """A queue's journal closed (one open queue at a time) while its new
    folder still owes a sync: the sync covers the folder as the platform
    allows (Windows has no folder sync) and never fails, so later syncs do
    not fail either."""
    s = make_server("--max-open-queues", "1", "--fsync", "50ms")
    with s.client() as c:
        answers = pipelined(c, [b"set q%d 0 0 1\r\na\r\n" % i for i in range(20)], 20)
        assert answers == ["STORED"] * 20
        # each waits for a sync covering all that is owed, the folders too
        for i in range(20, 25):
            assert c.set(f"q{i}/sync", b"b") == "STORED", s.log()
        assert int(c.stats()["fsyncs"]) > 0
    assert "fsync failed" not in s.log(), s.log()
