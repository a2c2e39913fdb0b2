"""The admin port's dashboard (`/`, docs/operations.md "The dashboard"), loaded in
Debian's headless Chromium (driven by python3-selenium through chromedriver)
against a running server with traffic on three queues: the table and the
charts show the server's real numbers, the rates add up to the items moved,
the table sorts on a click, nothing is loaded from anywhere but the server,
and a screenshot is kept in the build folder (dashboard.png, next to the
binary under test).

`python3 tests/integration/test_dashboard.py OUT.png` makes the picture in
docs/ (more queues and a minute of traffic).
"""

import json
import os
import shutil
import struct
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import DARNER_BIN, Server, wait_until  # noqa: E402

PERIOD_MS = 250          # the page's poll period in this test (?period=)
WAIT = 30.0              # seconds any one thing the page should show may take
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


# -- the browser --------------------------------------------------------------

def open_browser(profile, width=1400, height=1500):
    """Headless Chromium that can reach loopback only: every other host name
    fails to resolve, so a page that loaded anything from outside would show it."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("python3-selenium is missing: scripts/install-deps installs it")
    for path, pkg in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} not found: scripts/install-deps installs Debian's {pkg}")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--force-device-scale-factor=1", "--hide-scrollbars",
                f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--lang=en-US",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    return driver


@pytest.fixture
def browser(tmp_path):
    driver = open_browser(tmp_path / "chromium-profile")
    yield driver
    driver.quit()


# What the page shows, read in one script so that no poll comes in between:
# the table's rows, the server box, each chart's datasets, and the sample the
# page last received.
SNAPSHOT_JS = """
const d = window.dashboard;
if (!d || !d.last) return null;
const rows = [...document.querySelectorAll('#queues-table tbody tr')].map(tr => {
  const cells = {};
  for (const td of tr.querySelectorAll('td'))
    cells[td.dataset.key] = {text: td.textContent, value: td.dataset.value};
  return {queue: tr.dataset.queue, cells: cells};
});
const charts = {};
for (const [k, c] of Object.entries(d.charts))
  charts[k] = c.data.datasets.map(ds => ({label: ds.label, queue: ds.queue, dashed: ds.borderDash.length > 0,
                                          points: ds.data.map(p => [p.x, p.y])}));
const text = id => document.getElementById(id).textContent;
return {rows: rows, charts: charts, last: d.last, samples: d.samples,
        server: {status: text('status'), version: text('version'), uptime: text('uptime'),
                 connections: text('connections'), items: text('items'),
                 total_items: text('total-items'), queues: text('queues')},
        error: document.getElementById('error').hidden ? null : text('error'),
        sort: [...document.querySelectorAll('#queues-table th[aria-sort]')].map(
          th => [th.dataset.key, th.getAttribute('aria-sort')])};
"""


def snapshot(driver):
    return driver.execute_script(SNAPSHOT_JS)


def wait_for(driver, what, predicate):
    """Poll the page (bounded) until predicate(snapshot) holds; returns that snapshot."""
    seen = [None]

    def check():
        seen[0] = snapshot(driver)
        return seen[0] is not None and predicate(seen[0])

    if not wait_until(check, timeout=WAIT, interval=0.05):
        raise AssertionError(f"the page did not show {what} within {WAIT}s; it shows:\n"
                             f"{json.dumps(seen[0], indent=1)[:4000]}")
    return seen[0]


def last_y(snap, chart, label):
    for ds in snap["charts"][chart]:
        if ds["label"] == label:
            return ds["points"][-1][1] if ds["points"] else None
    raise AssertionError(f"no dataset {label!r} in chart {chart}: {[d['label'] for d in snap['charts'][chart]]}")


def moved(snap, label):
    """The items a rate line says moved: each rate times the time since the sample before."""
    ds = next(d for d in snap["charts"]["rate"] if d["label"] == label)
    pts = ds["points"]
    return sum(y * (x - px) / 1000.0 for (px, _), (x, y) in zip(pts, pts[1:]) if y is not None)


def order(snap):
    return [r["queue"] for r in snap["rows"]]


def click_header(driver, key):
    driver.find_element("css selector", f'#queues-table th[data-key="{key}"]').click()


def fetch(port, path, method="GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def check_png(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])   # the IHDR chunk
    assert width >= 800 and height >= 600 and len(data) > 20000, (width, height, len(data))


def start_server(make_server, tmp_path):
    apf = tmp_path / "admin.port"
    s = make_server("--admin-listen", "0", "--admin-port-file", str(apf))
    return s, int(apf.read_text())


# -- the tests ----------------------------------------------------------------

def test_the_page_and_what_it_loads_come_from_the_binary(make_server, tmp_path):
    s, port = start_server(make_server, tmp_path)
    for path, ctype, start in (("/", "text/html", b"<!DOCTYPE html>"),
                               ("/index.html", "text/html", b"<!DOCTYPE html>"),
                               ("/dashboard.js", "text/javascript", b"/*"),
                               ("/dashboard.css", "text/css", b"/*"),
                               ("/chart.js", "text/javascript", b"/*!")):
        code, headers, body = fetch(port, path)
        assert code == 200, (path, code, body[:200])
        assert headers["Content-Type"].startswith(ctype), (path, headers)
        assert body.startswith(start), (path, body[:40])
        assert int(headers["Content-Length"]) == len(body)
        code, headers, body = fetch(port, path, method="HEAD")
        assert code == 200 and body == b"" and int(headers["Content-Length"]) > 0
    assert b"Chart.js v" in fetch(port, "/chart.js")[2]
    assert fetch(port, "/chart.js?v=1")[0] == 200          # a query string is not part of the path
    assert fetch(port, "/nope.js")[0] == 404
    assert fetch(port, "/", method="POST")[0] == 405


def test_dashboard_shows_the_real_numbers(make_server, tmp_path, clients, browser):
    s, port = start_server(make_server, tmp_path)
    c = clients(s)
    # jobs: 30 in, 10 out; alerts: 5 in, one of them handed out and not yet
    # confirmed; thumbnails: 12 in, 12 out
    for i in range(30):
        assert c.set("jobs", f"job {i}") == "STORED"
    for i in range(10):
        assert c.get_data("jobs") == f"job {i}".encode()
    for i in range(5):
        assert c.set("alerts", f"alert {i}" * 20) == "STORED"
    reader = clients(s)
    assert reader.get_data("alerts/open") == b"alert 0" * 20  # stays open: this connection stays
    for i in range(12):
        assert c.set("thumbnails", f"t{i}") == "STORED"
    for i in range(12):
        assert c.get_data("thumbnails") == f"t{i}".encode()
    stats = json.loads(fetch(port, "/stats.json")[2])
    q = stats["queues"]
    assert (q["jobs"]["total_items"], q["jobs"]["removed_items"]) == (30, 10)
    assert (q["thumbnails"]["items"], q["thumbnails"]["removed_items"]) == (0, 12)
    assert q["alerts"]["open_transactions"] == 1
    items = {name: q[name]["items"] for name in ("jobs", "alerts", "thumbnails")}
    assert items == {"jobs": 20, "alerts": 5, "thumbnails": 0}  # an open item is still the queue's

    browser.get(f"http://127.0.0.1:{port}/?period={PERIOD_MS}")
    assert browser.title == "darner"
    assert browser.execute_script("return window.dashboard.period") == PERIOD_MS
    assert browser.execute_script("return Chart.version")[:2] in ("3.", "4.")  # Debian's Chart.js

    # -- the table: one row per queue, with the server's numbers
    def table_right(snap):
        rows = {r["queue"]: r["cells"] for r in snap["rows"]}
        return set(rows) == set(items) and all(
            rows[n]["items"]["value"] == str(items[n]) and rows[n]["items"]["text"] == str(items[n])
            for n in items) and rows["alerts"]["open"]["value"] == "1"
    snap = wait_for(browser, f"the items {items} in the table", table_right)
    rows = {r["queue"]: r["cells"] for r in snap["rows"]}
    last = snap["last"]["queues"]
    for name in items:
        for key, field in (("bytes", "bytes"), ("open", "open_transactions"), ("waiters", "waiters"),
                           ("age", "oldest_item_age_msec"), ("delayed", "delayed_items"),
                           ("dead", "dead_lettered")):
            assert rows[name][key]["value"] == str(last[name][field]), (name, key, rows[name], last[name])
    assert rows["thumbnails"]["items"]["text"] == "0"
    # deepest first, the default order
    assert order(snap) == ["jobs", "alerts", "thumbnails"]
    assert snap["sort"] == [["items", "descending"]]

    # -- the server box
    srv = snap["last"]["server"]
    assert snap["server"]["status"] == "up" and srv["status"].lower() == "up"
    assert snap["server"]["version"] == srv["version"] == stats["server"]["version"]
    assert snap["server"]["queues"] == "3" and srv["queues"] == 3
    assert snap["server"]["items"] == f"{srv['curr_items']:,}"
    assert srv["curr_items"] == sum(items.values())
    assert snap["server"]["total_items"] == f"{srv['total_items']:,}" and srv["total_items"] == 47
    assert snap["server"]["connections"] == f"{srv['curr_connections']:,}"
    assert snap["error"] is None

    # -- the charts: a line per queue, ending at the numbers in the table
    for chart in ("depth", "age", "open"):
        assert sorted(d["label"] for d in snap["charts"][chart]) == sorted(items), chart
    for name in items:
        assert last_y(snap, "depth", name) == last[name]["items"] == items[name]
        assert last_y(snap, "open", name) == last[name]["open_transactions"]
        assert last_y(snap, "age", name) == pytest.approx(last[name]["oldest_item_age_msec"] / 1000)
    assert last_y(snap, "open", "alerts") == 1
    assert sorted(d["label"] for d in snap["charts"]["rate"]) == sorted(
        [f"{n} in" for n in items] + [f"{n} out" for n in items])
    assert all(d["dashed"] == d["label"].endswith(" out") for d in snap["charts"]["rate"])

    # -- rates: 40 more in and out of jobs while the page watches; what the
    # rate lines say moved adds up to 40 each way (the first sample was
    # taken after the first traffic: every item set since is on the lines)
    for i in range(40):
        assert c.set("jobs", f"more {i}") == "STORED"
    for i in range(40):
        assert c.get_data("jobs") is not None
    snap = wait_for(browser, "jobs' 70 items in and 50 out", lambda sn: (
        sn["last"]["queues"]["jobs"]["total_items"] == 70 and sn["last"]["queues"]["jobs"]["removed_items"] == 50))
    assert moved(snap, "jobs in") == pytest.approx(40)
    assert moved(snap, "jobs out") == pytest.approx(40)
    assert moved(snap, "alerts in") == pytest.approx(0) and moved(snap, "thumbnails out") == pytest.approx(0)
    assert last_y(snap, "depth", "jobs") == 20
    rows = {r["queue"]: r["cells"] for r in snap["rows"]}
    assert float(rows["jobs"]["in"]["value"]) == pytest.approx(last_y(snap, "rate", "jobs in"), abs=1e-3)
    assert float(rows["jobs"]["out"]["value"]) == pytest.approx(last_y(snap, "rate", "jobs out"), abs=1e-3)

    # -- sorting: a click on a header sorts by it, a second click reverses
    by_items = sorted(items, key=lambda n: (-items[n], n))
    click_header(browser, "name")
    snap = snapshot(browser)
    assert order(snap) == ["alerts", "jobs", "thumbnails"] and snap["sort"] == [["name", "ascending"]]
    click_header(browser, "name")
    snap = snapshot(browser)
    assert order(snap) == ["thumbnails", "jobs", "alerts"] and snap["sort"] == [["name", "descending"]]
    click_header(browser, "open")
    snap = snapshot(browser)
    assert order(snap) == ["alerts", "jobs", "thumbnails"] and snap["sort"] == [["open", "descending"]]
    click_header(browser, "items")
    snap = snapshot(browser)
    assert order(snap) == by_items and snap["sort"] == [["items", "descending"]]
    click_header(browser, "items")
    snap = wait_for(browser, "the order kept across a poll", lambda sn: sn["samples"] > snap["samples"])
    assert order(snap) == by_items[::-1] and snap["sort"] == [["items", "ascending"]]

    # -- nothing from outside, and nothing went wrong in the page
    origin = f"http://127.0.0.1:{port}/"
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(u.startswith(origin) for u in loaded), loaded
    assert {u[len(origin):] for u in loaded} >= {"chart.js", "dashboard.js", "dashboard.css", "stats.json"}
    problems = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert not problems, problems

    # -- the screenshot, kept in the build folder
    click_header(browser, "items")  # back to deepest first
    shot = Path(os.environ.get("DARNER_SCREENSHOT_DIR") or Path(DARNER_BIN).resolve().parent) / "dashboard.png"
    assert browser.save_screenshot(str(shot)), "no screenshot"
    check_png(shot)

    # -- the server gone: the page says so and keeps the last numbers
    s.stop()
    snap = wait_for(browser, "that the server cannot be reached", lambda sn: (
        sn["server"]["status"] == "unreachable" and sn["error"] is not None))
    assert "Cannot read stats.json" in snap["error"]
    assert {r["queue"] for r in snap["rows"]} == set(items)


# -- the picture in docs/ -------------------------------------------------------

def demo(out, seconds=60):
    """A server with a few queues under a minute of uneven traffic, then a
    screenshot of its dashboard to out."""
    import tempfile

    from harness import Client

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        apf = tmp / "admin.port"
        s = Server(tmp, ["--admin-listen", "0", "--admin-port-file", str(apf)])
        s.start()
        driver = None
        try:
            port = int(apf.read_text())
            c, reader = Client(s.port), Client(s.port)
            driver = open_browser(tmp / "chromium-profile", height=1060)
            driver.get(f"http://127.0.0.1:{port}/?period=1000")
            queues = {"orders": (9, 8), "emails": (5, 5), "thumbnails": (14, 9), "webhooks": (3, 4),
                      "reports.daily": (1, 0), "audit": (6, 6)}
            start = time.monotonic()
            n = 0
            while time.monotonic() - start < seconds:
                n += 1
                phase = (time.monotonic() - start) / seconds
                for name, (rin, rout) in queues.items():
                    burst = 3 if name == "orders" and 0.4 < phase < 0.6 else 1
                    for i in range(rin * burst):
                        c.set(name, f"{name} {n} {i}" * 10)
                    for i in range(rout):
                        c.get_data(name)
                if n == 10:
                    reader.get_data("orders/open")
                time.sleep(0.1)  # the pace of the traffic
            driver.save_screenshot(str(out))  # while the traffic goes on
            check_png(out)
        finally:
            if driver:
                driver.quit()
            s.stop()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: DARNER_BIN=build/darner python3 tests/integration/test_dashboard.py OUT.png")
    demo(Path(sys.argv[1]).resolve())
