"""Fixtures shared by the integration tests.

- make_server(*extra_args, data=None, port=0, short=False, start=True): a
  darner on a private folder under the test's tmp_path; any number per test.
- server: one started darner with default flags.
- client: a raw connection to `server`.

Every process is stopped in the finalizer, also when the test fails; a server
that died on its own during the test fails the test with its stderr.
"""

import os

import pytest

from harness import DARNER_BIN, Client, Server


def pytest_report_header(config):
    return f"darner binary: {DARNER_BIN}"


@pytest.fixture
def darner_bin():
    if not os.access(DARNER_BIN, os.X_OK):
        pytest.fail(f"server binary not found or not executable: {DARNER_BIN} "
                    f"(set DARNER_BIN or build the project)")
    return DARNER_BIN


@pytest.fixture
def make_server(tmp_path, darner_bin):
    servers = []
    counter = [0]

    def factory(*extra_args, data=None, port=0, short=False, start=True):
        counter[0] += 1
        workdir = tmp_path if counter[0] == 1 else tmp_path / f"server{counter[0]}"
        workdir.mkdir(parents=True, exist_ok=True)
        s = Server(workdir, extra_args, data=data, port=port, short=short)
        servers.append(s)
        if start:
            s.start()
        return s

    yield factory
    complaints = [c for c in (s.cleanup() for s in servers) if c]
    if complaints:
        pytest.fail("\n".join(complaints), pytrace=False)


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture
def clients():
    """Factory for extra connections, all closed at the end."""
    made = []

    def connect(srv):
        c = Client(srv.port)
        made.append(c)
        return c

    yield connect
    for c in made:
        c.close()


@pytest.fixture
def client(server, clients):
    return clients(server)
