"""Format versions of the data folder (docs/journal-format.md).

The data folder's FORMAT file names its layout version.  A folder of a version
this build does not know is refused at start, with a message that names the
version, and nothing in it changes; a folder from before the file existed
opens as version 1, is upgraded, and gets the file.  (Journal files of another version
inside a queue folder: tests/unit/test_versions.c.)
"""

import hashlib

from harness import listing, run_darner


def snapshot(root):
    """Every path under root with the SHA-256 of each file's bytes."""
    out = {}
    for rel in listing(root):
        p = root / rel
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


def fill(make_server, items):
    s = make_server()
    with s.client() as c:
        for i in range(items):
            assert c.set("jobs", f"item-{i}".encode()) == "STORED"
        assert c.get_data("jobs/open") == b"item-0"
    s.stop()
    return s


def start_args(s):
    return ["--port", "0", "--listen", "127.0.0.1", "--data", str(s.data)]


def test_new_data_folder_gets_a_format_file(make_server):
    s = fill(make_server, 1)
    assert (s.data / "FORMAT").read_bytes() == b"3\n"


def test_folder_of_a_newer_format_is_refused_untouched(make_server):
    s = fill(make_server, 5)
    (s.data / "FORMAT").write_bytes(b"4\n")
    before = snapshot(s.data)
    rc, out, err = run_darner(start_args(s), cwd=s.data.parent)
    assert rc is not None, "darner started on a data folder of an unknown format"
    assert rc != 0
    assert "version 4" in err, err
    assert "nothing" in err and "changed" in err, err
    assert snapshot(s.data) == before

    # Put back by a build that knows it, every item is there, the open one first.
    (s.data / "FORMAT").write_bytes(b"3\n")
    s.start()
    with s.client() as c:
        assert [c.get_data("jobs") for _ in range(6)] == [f"item-{i}".encode() for i in range(5)] + [None]


def test_format_file_without_a_version_is_refused_untouched(make_server):
    s = fill(make_server, 2)
    (s.data / "FORMAT").write_bytes(b"darner\n")
    before = snapshot(s.data)
    rc, out, err = run_darner(start_args(s), cwd=s.data.parent)
    assert rc not in (0, None)
    assert "FORMAT" in err and "no format version" in err, err
    assert snapshot(s.data) == before


def test_folder_without_a_format_file_opens_and_gets_one(make_server):
    s = fill(make_server, 3)
    (s.data / "FORMAT").unlink()
    s.start()
    with s.client() as c:
        assert [c.get_data("jobs") for _ in range(4)] == [b"item-0", b"item-1", b"item-2", None]
    assert (s.data / "FORMAT").read_bytes() == b"3\n"
