"""Delivery counts, max_deliveries, dead-letter queues, get q/bury and kick
(docs/scheduling.md)."""


def write(tmp_path, text):
    p = tmp_path / "darner.conf"
    p.write_text(text)
    return p


def cas_of(client, key):
    """(delivery count, item id) from the cas field of a gets answer, or None."""
    client.send(f"gets {key}\r\n".encode())
    line = client.readline()
    if line == "END":
        return None
    parts = line.split()
    assert parts[0] == "VALUE" and len(parts) == 5, line
    client.read_exact(int(parts[3]) + 2)
    assert client.readline() == "END"
    cas = int(parts[4])
    return cas >> 48, cas & ((1 << 48) - 1)


def test_max_deliveries_sends_an_item_to_q_errors_after_exactly_that_many_hand_outs(make_server, tmp_path):
    s = make_server("-c", write(tmp_path, '[queue "jobs"]\nmax_deliveries = 3\n'))
    with s.client() as c:
        assert c.set("jobs", b"poison") == "STORED"
        for n in (1, 2, 3):
            assert cas_of(c, "jobs/open")[0] == n
            assert c.cmd("get jobs/abort") == "END"
        assert c.get_data("jobs/open") is None        # the third give-back made it a dead letter
        st = c.stats()
        assert st["queue_jobs_dead_lettered"] == "1"
        assert st["queue_jobs_redeliveries"] == "2"
        assert st["queue_jobs_items"] == "0" and st["queue_jobs_errors_items"] == "1"
        # the dead letter keeps its count: its next hand-out is the fourth
        assert cas_of(c, "jobs_errors/open")[0] == 4
        assert c.cmd("get jobs_errors/abort") == "END"   # a dead letter is not sent on
        assert c.stat("queue_jobs_errors_items") == "1"


def test_a_plain_reader_of_the_error_queue_gets_the_item_as_set(make_server, tmp_path):
    s = make_server("-c", write(tmp_path, "[queue]\nmax_deliveries = 1\n"))
    with s.client() as c:
        c.send(b"set jobs 77 0 6\r\npoison\r\n")
        assert c.readline() == "STORED"
        assert c.get_data("jobs/open") == b"poison"
        c.close()
    with s.client() as c:                              # the disconnect gave it back: dead letter
        assert c.get_full("jobs_errors/t=5000") == ("jobs_errors/t=5000", 77, b"poison")


def test_dead_letter_queue_setting_names_the_queue(make_server, tmp_path):
    s = make_server("-c", write(tmp_path, '[queue "jobs"]\nmax_deliveries = 1\ndead_letter_queue = failed\n'))
    with s.client() as c:
        assert c.set("jobs", b"x") == "STORED"
        assert c.get_data("jobs/open") == b"x"
        assert c.cmd("get jobs/abort") == "END"
        assert c.get_data("failed") == b"x"
        assert c.get_data("jobs_errors") is None


def test_bury_sends_the_open_item_to_the_dead_letter_queue_now(client):
    assert client.set("jobs", b"bad") == "STORED" and client.set("jobs", b"good") == "STORED"
    assert client.get_data("jobs/open") == b"bad"
    assert client.cmd("get jobs/bury") == "END"
    assert client.cmd("get jobs/bury") == "END"        # nothing open: nothing to do
    assert client.get_data("jobs") == b"good"
    assert client.get_data("jobs_errors") == b"bad"
    assert client.stat("queue_jobs_dead_lettered") == "1"
    assert client.cmd("get jobs/bury/open").startswith("CLIENT_ERROR")


def test_kick_sends_dead_letters_back_with_their_count_reset(client):
    for i in range(3):
        assert client.set("jobs", f"j{i}".encode()) == "STORED"
    for i in range(3):
        assert client.get_data("jobs/open") == f"j{i}".encode()
        assert client.cmd("get jobs/bury") == "END"
    assert client.stat("queue_jobs_errors_items") == "3"
    assert client.cmd("kick jobs_errors 2") == "KICKED 2"
    assert client.stat("queue_jobs_items") == "2"
    assert cas_of(client, "jobs/open")[0] == 1           # count reset
    assert client.cmd("get jobs/close") == "END"
    assert client.cmd("kick jobs_errors 100") == "KICKED 1"
    assert client.cmd("kick jobs_errors 100") == "KICKED 0"
    assert client.cmd("kick nosuchqueue 5") == "KICKED 0"
    assert client.cmd("kick jobs 5") == "KICKED 0"        # no dead letters there (and nothing delayed)
    assert [client.get_data("jobs") for _ in range(2)] == [b"j1", b"j2"]
    assert client.cmd("kick jobs_errors").startswith("CLIENT_ERROR")


def test_kick_stops_at_an_item_that_is_no_dead_letter(client):
    assert client.set("jobs", b"a") == "STORED"
    assert client.get_data("jobs/open") == b"a"
    assert client.cmd("get jobs/bury") == "END"
    assert client.set("jobs_errors", b"set by hand") == "STORED"
    assert client.set("jobs", b"b") == "STORED"
    assert client.get_data("jobs/open") == b"b"
    assert client.cmd("get jobs/bury") == "END"
    assert client.cmd("kick jobs_errors 10") == "KICKED 1"
    assert client.get_data("jobs_errors") == b"set by hand"
    assert client.cmd("kick jobs_errors 10") == "KICKED 1"


def test_delivery_counts_and_dead_letters_survive_kill_9(make_server, tmp_path):
    s = make_server("-c", write(tmp_path, '[queue "jobs"]\nmax_deliveries = 3\n'))
    for n in (1, 2, 3):
        with s.client() as c:
            if n == 1:
                assert c.set("jobs", b"poison") == "STORED"
            assert cas_of(c, "jobs/open")[0] == n      # counted across restarts
            s.kill()                                    # the item was open: it comes back
        s.start()
    with s.client() as c:
        assert c.get_data("jobs/open") is None          # three hand-outs: a dead letter
        assert c.stat("queue_jobs_errors_items") == "1"
        assert cas_of(c, "jobs_errors/open")[0] == 4
        assert c.cmd("get jobs_errors/close") == "END"
    s.kill()
    s.start()
    with s.client() as c:
        assert c.get_data("jobs_errors") is None and c.get_data("jobs") is None


def test_kick_after_kill_9_keeps_the_item_in_one_place(make_server, tmp_path):
    s = make_server()
    with s.client() as c:
        for i in range(5):
            assert c.set("jobs", f"j{i}".encode()) == "STORED"
            assert c.get_data("jobs/open") == f"j{i}".encode()
            assert c.cmd("get jobs/bury") == "END"
        assert c.cmd("kick jobs_errors 2") == "KICKED 2"
    s.kill()
    s.start()
    with s.client() as c:
        st = c.stats()
        assert st["queue_jobs_items"] == "2" and st["queue_jobs_errors_items"] == "3"
        assert [c.get_data("jobs") for _ in range(3)] == [b"j0", b"j1", None]
        assert [c.get_data("jobs_errors") for _ in range(4)] == [b"j2", b"j3", b"j4", None]
