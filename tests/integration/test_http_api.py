"""The HTTP/JSON queue API (--http-listen, docs/api.md, docs/openapi.yaml):
enqueue (one raw item, a JSON batch, NDJSON), take (max, wait), queue
figures, delete, flush, the options as query parameters, JSON errors for
bad input that store nothing and make no queue, HTTP Basic with the auth
file's users and their queue patterns, TLS, and curl as a real client."""

import base64
import json
import pathlib
import re
import shutil
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

import yaml

from harness import DARNER_BIN, UNDER_WINE, sanitized, wait_until
from pki import openssl, pki  # noqa: F401 - the fixture

SEEN = set()  # (path template, method, status) of every answer: all must be in docs/openapi.yaml


def template(path):
    path = path.split("?")[0]
    if path == "/v1/queues":
        return path
    m = re.fullmatch(r"/v1/queues/[^/]+(/items|/flush|/leases)?", path)
    if m:
        return "/v1/queues/{q}" + (m.group(1) or "")
    m = re.fullmatch(r"/v1/leases/[^/]+(/abort|/touch)?", path)
    return m and "/v1/leases/{handle}" + (m.group(1) or "")


RAN = []  # the tests of this file that ran (for the last one)


@pytest.fixture(autouse=True)
def counted(request):
    yield
    RAN.append(request.node.name)


@pytest.fixture(scope="module", autouse=True)
def every_answer_is_in_the_openapi_file():
    yield
    spec = yaml.safe_load((pathlib.Path(__file__).parents[2] / "docs" / "openapi.yaml").read_text())
    for path, method, status in sorted(SEEN):
        op = spec["paths"][path].get(method.lower()) or spec["paths"][path]["get" if method == "HEAD" else ""]
        assert str(status) in op["responses"], (path, method, status)



def start(make_server, tmp_path, *extra):
    hpf = tmp_path / "http.port"
    s = make_server("--http-listen", "0", "--http-port-file", str(hpf), *extra)
    # the memcache port file is written only once the API accepts too
    return s, int(hpf.read_text())


def call(port, method, path, body=None, ctype=None, auth=None, ctx=None, scheme="http", timeout=10):
    """One request: (status, parsed JSON body or None, headers)."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(f"{scheme}://127.0.0.1:{port}{path}", data=data, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            raw, status, headers = r.read(), r.status, r.headers
    except urllib.error.HTTPError as e:
        raw, status, headers = e.read(), e.code, e.headers
    if template(path) and method in ("GET", "POST", "DELETE") and (status != 405):
        SEEN.add((template(path), method, status))
    return status, (json.loads(raw) if raw else None), headers


def b64(data):
    return base64.b64encode(data).decode()


def datas(answer):
    return [base64.b64decode(i["data"]) for i in answer["items"]]


def error_code(answer):
    return answer["error"]["code"]


def test_enqueue_one_raw_item_a_json_batch_and_ndjson_then_take_them_in_order(make_server, tmp_path):
    s, port = start(make_server, tmp_path)
    st, j, h = call(port, "POST", "/v1/queues/jobs/items?flags=7", b"\x00raw\xff", "application/octet-stream")
    assert st == 201 and h["Content-Type"] == "application/json" and len(j["ids"]) == 1
    st, j, _ = call(port, "POST", "/v1/queues/jobs/items", json.dumps([b64(b"a"), b64(b"bb"), ""]),
                    "application/json; charset=utf-8")
    assert st == 201 and len(j["ids"]) == 3
    st, j, _ = call(port, "POST", "/v1/queues/jobs/items", f"{b64(b'c')}\r\n\"{b64(b'd')}\"\n\n", "application/x-ndjson")
    assert st == 201 and len(j["ids"]) == 2
    # JSON may escape '/' (and anything): read by the JSON library then
    st, j, _ = call(port, "POST", "/v1/queues/esc/items", '[ "\\/\\/8=" , "\\u0059\\u0051==" ]', "application/json")
    assert st == 201 and len(j["ids"]) == 2
    assert datas(call(port, "GET", "/v1/queues/esc/items?max=2")[1]) == [b"\xff\xff", b"a"]
    st, j, _ = call(port, "GET", "/v1/queues/jobs/items?max=4")
    assert st == 200 and datas(j) == [b"\x00raw\xff", b"a", b"bb", b""]
    assert j["items"][0]["flags"] == 7 and j["items"][1]["flags"] == 0
    ids = [i["id"] for i in j["items"]]
    assert ids == sorted(ids) and len(set(ids)) == 4
    with s.client() as c:                                   # the same queue on the memcache port
        assert c.get_data("jobs") == b"c"
        assert c.set("jobs", b"from memcache") == "STORED"
    st, j, _ = call(port, "GET", "/v1/queues/jobs/items?max=10")
    assert datas(j) == [b"d", b"from memcache"]
    st, j, _ = call(port, "GET", "/v1/queues/jobs/items")
    assert st == 200 and j == {"items": []}


def test_a_queue_that_does_not_exist_answers_an_empty_take_and_is_not_made(make_server, tmp_path):
    s, port = start(make_server, tmp_path)
    assert call(port, "GET", "/v1/queues/nothing/items?max=5")[:2] == (200, {"items": []})
    st, j, _ = call(port, "GET", "/v1/queues/nothing")
    assert st == 404 and error_code(j) == "not_found"
    with s.client() as c:
        assert "queue_nothing_items" not in c.stats()


def test_a_take_waits_for_an_item_and_ends_empty_after_its_wait(make_server, tmp_path):
    s, port = start(make_server, tmp_path)
    t0 = time.monotonic()
    st, j, _ = call(port, "GET", "/v1/queues/w/items?wait=300")
    assert st == 200 and j == {"items": []} and time.monotonic() - t0 >= 0.29
    got = {}
    th = threading.Thread(target=lambda: got.update(a=call(port, "GET", "/v1/queues/w/items?wait=5000&max=3")))
    th.start()
    with s.client() as c:
        # the waiter is there (on a queue not made yet, the server counts it as a waiter of the absent)
        assert c.set("w", b"hello") == "STORED"
        th.join(10)
        st, j, _ = got["a"]
        assert st == 200 and datas(j) == [b"hello"]
        # on a queue that exists, its waiters figure shows the wait
        th = threading.Thread(target=lambda: got.update(b=call(port, "GET", "/v1/queues/w/items?wait=5000")))
        th.start()
        assert wait_until(lambda: c.stats().get("queue_w_waiters") == "1")
        assert c.set("w", b"second") == "STORED"
        th.join(10)
        assert datas(got["b"][1]) == [b"second"]


def test_a_waiting_take_whose_client_goes_away_takes_nothing(make_server, tmp_path):
    s, port = start(make_server, tmp_path)
    with s.client() as c:
        assert c.set("g", b"x") == "STORED" and c.get_data("g") == b"x"     # the queue exists
        sock = __import__("socket").create_connection(("127.0.0.1", port))
        sock.sendall(b"GET /v1/queues/g/items?wait=20000 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wait_until(lambda: c.stats().get("queue_g_waiters") == "1")
        sock.close()
        assert wait_until(lambda: c.stats().get("queue_g_waiters") == "0")
        assert c.set("g", b"kept") == "STORED"
        assert c.get_data("g") == b"kept"


def test_options_as_query_parameters(make_server, tmp_path):
    s, port = start(make_server, tmp_path)
    assert call(port, "POST", "/v1/queues/p/items?pri=9", b"late")[0] == 201
    assert call(port, "POST", "/v1/queues/p/items?pri=0", b"urgent")[0] == 201
    assert call(port, "POST", "/v1/queues/p/items?delay=300", b"delayed")[0] == 201
    assert call(port, "POST", "/v1/queues/p/items?ttl=1", b"expires")[0] == 201
    assert call(port, "POST", "/v1/queues/p/items?sync=1", b"synced")[0] == 201
    st, j, _ = call(port, "GET", "/v1/queues/p")
    assert st == 200 and j["name"] == "p" and j["delayed_items"] == 1
    time.sleep(0.01)                                        # the ttl=1 item's millisecond passes
    st, j, _ = call(port, "GET", "/v1/queues/p/items?max=10")
    assert datas(j) == [b"urgent", b"synced", b"late"]
    st, j, _ = call(port, "GET", "/v1/queues/p/items?wait=5000")
    assert datas(j) == [b"delayed"]
    with s.client() as c:
        assert c.stats()["queue_p_expired_items"] == "1"


@pytest.mark.parametrize("path,body,ctype,status,code", [
    ("/v1/queues/q/items", "[\"YQ==\", 5]", "application/json", 400, "bad_json"),
    ("/v1/queues/q/items", "{\"a\": 1}", "application/json", 400, "bad_json"),
    ("/v1/queues/q/items", "[\"YQ==\",", "application/json", 400, "bad_json"),
    ("/v1/queues/q/items", "[\"YQ==\", \"@@@@\"]", "application/json", 400, "bad_base64"),
    ("/v1/queues/q/items", "YQ==\nYQ=\n", "application/x-ndjson", 400, "bad_base64"),
    ("/v1/queues/q/items", "[]", "application/json", 400, "no_items"),
    ("/v1/queues/q/items?dealy=5", "x", None, 400, "unknown_parameter"),
    ("/v1/queues/q/items?pri=12", "x", None, 400, "bad_parameter"),
    ("/v1/queues/q/items?delay=-1", "x", None, 400, "bad_parameter"),
    ("/v1/queues/q/items?delay=5&at=6", "x", None, 400, "bad_parameter"),
    ("/v1/queues/q/items?delay=10000&ttl=5000", "x", None, 400, "bad_option"),
    ("/v1/queues/q%01/items", "x", None, 400, "bad_queue_name"),
    ("/v1/queues/q%2Fdelay=5/items", "x", None, 400, "bad_queue_name"),
    ("/v1/queues/" + "a" * 251 + "/items", "x", None, 400, "bad_queue_name"),
    ("/v1/queues/q/things", "x", None, 404, "not_found"),
    ("/v2/queues/q/items", "x", None, 404, "not_found"),
])
def test_bad_input_answers_a_json_error_stores_nothing_and_makes_no_queue(make_server, tmp_path, path, body, ctype,
                                                                           status, code):
    s, port = start(make_server, tmp_path)
    st, j, h = call(port, "POST", path, body, ctype)
    assert st == status and h["Content-Type"] == "application/json", (st, j)
    assert error_code(j) == code and j["error"]["message"]
    with s.client() as c:
        assert c.stats()["queues"] == "0"


def test_limits_bodies_items_and_full_queues(make_server, tmp_path):
    conf = tmp_path / "c.conf"
    conf.write_text("[queue \"small\"]\nmax_items = 3\n")
    s, port = start(make_server, tmp_path, "-c", conf, "--http-max-body", "1KiB", "--http-max-items", "4")
    st, j, _ = call(port, "POST", "/v1/queues/q/items", b"x" * 2000)
    assert st == 413 and error_code(j) == "body_too_large"
    st, j, _ = call(port, "POST", "/v1/queues/q/items", json.dumps([b64(b"x")] * 5), "application/json")
    assert st == 413 and error_code(j) == "too_many_items"
    st, j, _ = call(port, "POST", "/v1/queues/small/items", json.dumps([b64(b"%d" % i) for i in range(4)]),
                    "application/json")
    assert st == 507 and error_code(j) == "queue_full" and len(j["ids"]) == 3     # the first three are in
    with s.client() as c:
        assert c.set("big", b"y" * 900) == "STORED"
    st, j, _ = call(port, "GET", "/v1/queues/big/items")                # its base64 is over 1 KiB
    assert st == 413 and error_code(j) == "item_too_large"
    with s.client() as c:
        assert c.get_data("big") == b"y" * 900                          # still there
    st, j, _ = call(port, "GET", "/v1/queues/q/items?max=5")
    assert st == 400 and error_code(j) == "bad_parameter"
    st, j, _ = call(port, "GET", "/v1/queues/q/items?wait=3600001")
    assert st == 400 and error_code(j) == "bad_parameter"


def test_list_info_flush_delete_and_methods(make_server, tmp_path):
    s, port = start(make_server, tmp_path)
    for q in ("a", "b"):
        assert call(port, "POST", f"/v1/queues/{q}/items", b"1")[0] == 201
    assert call(port, "POST", "/v1/queues/b/items", b"2")[0] == 201
    st, j, _ = call(port, "GET", "/v1/queues")
    assert st == 200 and {q["name"]: q["items"] for q in j["queues"]} == {"a": 1, "b": 2}
    st, j, _ = call(port, "GET", "/v1/queues/b")
    assert j["items"] == 2 and j["open_transactions"] == 0 and "oldest_item_age_msec" in j
    assert call(port, "POST", "/v1/queues/b/flush") [:2] == (200, {"flushed": True})
    assert call(port, "GET", "/v1/queues/b")[1]["items"] == 0
    assert call(port, "DELETE", "/v1/queues/a")[:2] == (200, {"deleted": True})
    assert call(port, "GET", "/v1/queues/a")[0] == 404
    assert error_code(call(port, "DELETE", "/v1/queues/a")[1]) == "not_found"
    st, j, h = call(port, "PUT", "/v1/queues/b/items", b"x")
    assert st == 405 and error_code(j) == "method_not_allowed" and h["Allow"] == "GET, POST"
    assert call(port, "DELETE", "/v1/queues")[0] == 405
    with s.client() as c:
        assert c.cmd("status readonly") == "END"
    st, j, _ = call(port, "POST", "/v1/queues/b/items", b"x")
    assert st == 503 and error_code(j) == "read_only"


USERS = """\
admin:adminpw
worker:workpw:jobs.*:r
worker:workpw:results:w
"""


def test_basic_auth_with_the_auth_files_users_and_their_queue_patterns(make_server, tmp_path):
    users = tmp_path / "users"
    users.write_text(USERS)
    s, port = start(make_server, tmp_path, "--auth-file", users)
    st, j, h = call(port, "GET", "/v1/queues")
    assert st == 401 and error_code(j) == "unauthorized" and h["WWW-Authenticate"].startswith("Basic")
    assert call(port, "GET", "/v1/queues", auth="worker:wrong")[0] == 401
    assert call(port, "POST", "/v1/queues/jobs.a/items", b"j", auth="admin:adminpw")[0] == 201
    assert call(port, "POST", "/v1/queues/other/items", b"o", auth="admin:adminpw")[0] == 201
    assert call(port, "POST", "/v1/queues/results/items", b"r", auth="worker:workpw")[0] == 201
    st, j, _ = call(port, "POST", "/v1/queues/jobs.a/items", b"j", auth="worker:workpw")
    assert st == 403 and error_code(j) == "forbidden"
    assert call(port, "GET", "/v1/queues/results/items", auth="worker:workpw")[0] == 403
    st, j, _ = call(port, "GET", "/v1/queues/jobs.a/items", auth="worker:workpw")
    assert st == 200 and datas(j) == [b"j"]
    st, j, _ = call(port, "GET", "/v1/queues", auth="worker:workpw")
    assert [q["name"] for q in j["queues"]] == ["jobs.a"]               # only what it may read


def test_https_when_the_server_has_tls(make_server, tmp_path, pki):
    s, port = start(make_server, tmp_path, "-Z", "--ssl-chain-cert", str(pki / "server.pem"), "--ssl-key",
                    str(pki / "server.key"))
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    assert call(port, "POST", "/v1/queues/t/items", b"secret", ctx=ctx, scheme="https")[0] == 201
    st, j, _ = call(port, "GET", "/v1/queues/t/items", ctx=ctx, scheme="https")
    assert datas(j) == [b"secret"]


def test_curl_enqueues_and_takes(make_server, tmp_path):
    curl = shutil.which("curl")
    if not curl:
        pytest.skip("curl is not installed (scripts/install-deps test installs it)")
    s, port = start(make_server, tmp_path)
    f = tmp_path / "payload.bin"
    f.write_bytes(bytes(range(256)) * 10)
    out = subprocess.run([curl, "-sS", "--fail-with-body", "--data-binary", f"@{f}",
                          f"http://127.0.0.1:{port}/v1/queues/files/items?sync=1"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and len(json.loads(out.stdout)["ids"]) == 1, out
    out = subprocess.run([curl, "-sS", f"http://127.0.0.1:{port}/v1/queues/files/items"], capture_output=True,
                         text=True, timeout=30)
    assert datas(json.loads(out.stdout)) == [f.read_bytes()]


def lease(port, q, query="", auth=None):
    st, j, _ = call(port, "POST", f"/v1/queues/{q}/leases{query}", auth=auth)
    return st, j


def test_a_lease_holds_an_item_until_its_handle_confirms_it(make_server, tmp_path):
    s, port = start(make_server, tmp_path)
    assert call(port, "POST", "/v1/queues/L/items", b"job")[0] == 201
    st, j = lease(port, "L", "?ttr=60000")
    assert st == 200 and datas(j) == [b"job"]
    item = j["items"][0]
    assert item["deliveries"] == 1 and re.fullmatch(r"\d+\.[0-9a-f]{32}", item["handle"])
    with s.client() as c:                                   # held by the lease, not by a connection
        st = c.stats()
        assert st["queue_L_open_transactions"] == "1" and st["queue_L_items"] == "1"
        assert c.get_data("L") is None
    assert call(port, "DELETE", f"/v1/leases/{item['handle']}")[:2] == (200, {"confirmed": True})
    st, j, _ = call(port, "DELETE", f"/v1/leases/{item['handle']}")
    assert st == 404 and error_code(j) == "lease_not_found"
    with s.client() as c:
        assert c.stats()["queue_L_items"] == "0"


def test_abort_touch_and_a_lease_that_runs_out(make_server, tmp_path):
    s, port = start(make_server, tmp_path)
    assert call(port, "POST", "/v1/queues/L/items", b"job")[0] == 201
    h = lease(port, "L")[1]["items"][0]["handle"]
    assert call(port, "POST", f"/v1/leases/{h}/abort")[:2] == (200, {"aborted": True})
    j = lease(port, "L", "?ttr=200")[1]
    assert j["items"][0]["deliveries"] == 2                   # handed out twice
    h = j["items"][0]["handle"]
    assert call(port, "POST", f"/v1/leases/{h}/touch?ttr=60000")[:2] == (200, {"ttr": 60000})
    with s.client() as c:
        time.sleep(0.4)                                     # past the first ttr: the touch holds it
        assert c.stats()["queue_L_lease_expired"] == "0"
        assert call(port, "POST", f"/v1/leases/{h}/touch?ttr=100")[0] == 200
        assert wait_until(lambda: c.stats()["queue_L_lease_expired"] == "1")
    st, j, _ = call(port, "DELETE", f"/v1/leases/{h}")      # ran out: its item is back
    assert st == 404 and error_code(j) == "lease_not_found"
    j = lease(port, "L")[1]
    assert datas(j) == [b"job"] and j["items"][0]["deliveries"] == 3
    h = j["items"][0]["handle"]
    assert call(port, "POST", f"/v1/leases/{h}/abort?delay=60000")[0] == 200
    assert call(port, "GET", "/v1/queues/L")[1]["delayed_items"] == 1
    assert lease(port, "L")[1] == {"items": []}


def test_bad_handles_and_parameters(make_server, tmp_path):
    s, port = start(make_server, tmp_path)
    assert call(port, "POST", "/v1/queues/L/items", b"job")[0] == 201
    h = lease(port, "L")[1]["items"][0]["handle"]
    wrong = h[:-1] + ("0" if h[-1] != "0" else "1")
    for bad in (wrong, "1", "x.y", h + "0", "99." + h.split(".")[1], ""):
        st, j, _ = call(port, "DELETE", f"/v1/leases/{bad}")
        assert st == 404 and error_code(j) in ("lease_not_found", "not_found"), bad
    assert error_code(call(port, "POST", f"/v1/leases/{h}/abort?ttr=5")[1]) == "unknown_parameter"
    assert error_code(call(port, "POST", f"/v1/leases/{h}/touch?ttr=0")[1]) == "bad_parameter"
    assert error_code(lease(port, "L", "?ttr=0")[1]) == "bad_parameter"
    st, j, hd = call(port, "GET", f"/v1/leases/{h}")
    assert st == 405 and hd["Allow"] == "DELETE"
    assert call(port, "DELETE", f"/v1/leases/{h}")[0] == 200   # the wrong ones did not touch it


def test_leases_are_bounded_and_wait(make_server, tmp_path):
    s, port = start(make_server, tmp_path, "--http-max-leases", "2")
    for i in range(3):
        assert call(port, "POST", "/v1/queues/L/items", b"%d" % i)[0] == 201
    held = lease(port, "L", "?max=2")[1]
    assert datas(held) == [b"0", b"1"]
    st, j = lease(port, "L")
    assert st == 503 and error_code(j) == "too_many_leases"
    with s.client() as c:
        assert c.stats()["queue_L_open_transactions"] == "2"     # the third was given back at once
    assert call(port, "DELETE", f"/v1/leases/{held['items'][0]['handle']}")[0] == 200
    got = {}
    th = threading.Thread(target=lambda: got.update(a=lease(port, "W", "?wait=5000")))
    th.start()
    with s.client() as c:
        assert c.set("W", b"later") == "STORED"
    th.join(10)
    assert datas(got["a"][1]) == [b"later"] and got["a"][1]["items"][0]["handle"]


def test_leases_end_with_the_server_and_their_items_come_back(make_server, tmp_path):
    s, port = start(make_server, tmp_path)
    assert call(port, "POST", "/v1/queues/L/items", b"kept")[0] == 201
    h = lease(port, "L")[1]["items"][0]["handle"]
    s.kill()                                                # kill -9: the hold is in the journal
    s.restart()
    port = int((tmp_path / "http.port").read_text())
    assert call(port, "DELETE", f"/v1/leases/{h}")[0] == 404
    j = lease(port, "L")[1]
    assert datas(j) == [b"kept"] and j["items"][0]["deliveries"] == 2
    s.stop()                                                # a clean stop gives it back too
    s.start()
    port = int((tmp_path / "http.port").read_text())
    assert datas(call(port, "GET", "/v1/queues/L/items")[1]) == [b"kept"]


def test_lease_permissions(make_server, tmp_path):
    users = tmp_path / "users"
    users.write_text(USERS)
    s, port = start(make_server, tmp_path, "--auth-file", users)
    assert call(port, "POST", "/v1/queues/jobs.x/items", b"j", auth="admin:adminpw")[0] == 201
    assert lease(port, "results", auth="worker:workpw")[0] == 403
    h = lease(port, "jobs.x", auth="worker:workpw")[1]["items"][0]["handle"]
    assert call(port, "DELETE", f"/v1/leases/{h}")[0] == 401
    assert call(port, "DELETE", f"/v1/leases/{h}", auth="worker:workpw")[0] == 200


def test_a_head_request_takes_nothing(make_server, tmp_path):
    """HEAD is a safe method: it must not take (remove, or lease) the items
    whose answer it never sends."""
    s, port = start(make_server, tmp_path)
    assert call(port, "POST", "/v1/queues/hd/items", b"keep me")[0] == 201
    st, _, _ = call(port, "HEAD", "/v1/queues/hd/items?max=5")
    assert st in (200, 405)
    st, j, _ = call(port, "GET", "/v1/queues/hd/items")
    assert st == 200 and datas(j) == [b"keep me"]


def test_allow_names_the_methods_of_the_path(make_server, tmp_path):
    s, port = start(make_server, tmp_path)
    for path, allow in (("/v1/queues/a/flush", "POST"), ("/v1/queues/a/leases", "POST"),
                        ("/v1/queues/a/items", "GET, POST"), ("/v1/queues/a", "GET, DELETE")):
        st, j, h = call(port, "PUT", path, b"x")
        assert st == 405 and h["Allow"] == allow, path


def test_a_waiting_take_ends_503_when_the_server_turns_quiescent(make_server, tmp_path):
    s, port = start(make_server, tmp_path, "--status-grace", "0")
    got = {}
    with s.client() as c:
        assert c.set("qq", b"kept") == "STORED" and c.get_data("qq/open") == b"kept"
        th = threading.Thread(target=lambda: got.update(a=call(port, "GET", "/v1/queues/qq/items?wait=10000")))
        th.start()
        assert wait_until(lambda: c.stats().get("queue_qq_waiters") == "1")
        assert c.cmd("status quiescent") == "END"
        assert c.cmd("get qq/abort") == "END"                       # back: wakes the wait, handed to nobody
        th.join(15)
        st, j, _ = got["a"]
        assert st == 503 and error_code(j) == "quiescent"
        assert c.cmd("status up") == "END"
        assert c.get_data("qq") == b"kept"


# The two tests below hold several GB (the answer or body is built whole in
# memory): not under a sanitizer (its quarantine and shadow memory) or Wine.
huge = pytest.mark.skipif(sanitized(DARNER_BIN) or UNDER_WINE,
                          reason="a 2 GiB item in memory: not under a sanitizer build or Wine")


@huge
def test_a_take_of_an_item_over_2_gib_answers_all_its_bytes(make_server, tmp_path):
    """An item of over 2 GiB (INT_MAX) whose base64 fits in http_max_body is
    answered whole: it was removed, so an answer short of it loses it."""
    from harness import Client
    from test_large import send_item
    s, port = start(make_server, tmp_path, "--max-item-size", "3G", "--http-max-body", "4G", "--http-timeout", "10m")
    size = (1 << 31) + 3
    c = Client(s.port, timeout=300)
    send_item(c, "huge", size)
    assert c.readline() == "STORED"
    c.close()
    sock = __import__("socket").create_connection(("127.0.0.1", port))
    sock.sendall(b"GET /v1/queues/huge/items HTTP/1.1\r\nHost: x\r\n\r\n")
    body = bytearray()
    view = bytearray(16 << 20)
    while True:
        n = sock.recv_into(view)
        if not n:
            break
        body += view[:n]
    sock.close()
    assert b'"data":"' in body, bytes(body[:300])
    start_at = body.index(b'"data":"') + 8
    end_at = body.index(b'"', start_at)
    assert end_at - start_at == (size + 2) // 3 * 4
    assert base64.b64decode(bytes(body[start_at:start_at + (1 << 20) * 4 // 3 + 4])[:(1 << 20) // 3 * 4])[:16] == b"\x00" * 16


@huge
def test_an_enqueue_of_a_base64_item_over_2_gib_of_text_is_stored(make_server, tmp_path):
    """A JSON batch whose base64 string is over INT_MAX characters, within
    http_max_body and max_item_size, is stored (not a 500)."""
    s, port = start(make_server, tmp_path, "--max-item-size", "3G", "--http-max-body", "4G", "--http-timeout", "10m")
    size = 3 << 29                                          # 1.5 GiB: 2 GiB of base64
    body = b'["' + b"AAAA" * (size // 3) + b'"]'
    sock = __import__("socket").create_connection(("127.0.0.1", port))
    sock.sendall(b"POST /v1/queues/huge/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body))
    sock.sendall(body)
    del body
    answer = b""
    while True:
        n = sock.recv(65536)
        if not n:
            break
        answer += n
    sock.close()
    assert answer.startswith(b"HTTP/1.1 201 "), answer
    st, j, _ = call(port, "GET", "/v1/queues/huge")
    assert st == 200 and j["items"] == 1 and j["bytes"] == size


def test_every_operation_of_the_openapi_file_was_exercised(request):
    """Last in this file: each path and method of docs/openapi.yaml was
    answered with one of its success statuses by the tests above (their
    other answers are checked against the file as they come)."""
    mine = [i for i in request.session.items if i.module is request.node.module]
    if len(RAN) != len(mine) - 1:
        pytest.skip("only part of test_http_api.py ran")
    spec = yaml.safe_load((pathlib.Path(__file__).parents[2] / "docs" / "openapi.yaml").read_text())
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method == "parameters":
                continue
            ok = [c for c in op["responses"] if c.startswith("2")]
            assert any((path, method.upper(), int(c)) in SEEN for c in ok), (path, method)
