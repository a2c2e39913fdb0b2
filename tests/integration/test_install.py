"""`make install` (cmake --install of the build folder) installs every
program the README names, with its man page, and they run from there."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import DARNER_BIN

BUILD = Path(DARNER_BIN).resolve().parent


def test_install_puts_every_program_and_man_page_in_place(tmp_path):
    cmake = shutil.which("cmake")
    if cmake is None or not (BUILD / "CMakeCache.txt").exists():
        pytest.fail(f"cmake or the build folder {BUILD} is missing")
    p = subprocess.run([cmake, "--install", str(BUILD), "--prefix", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    for prog in ("darner", "darner-cli", "darner-journal"):
        exe = tmp_path / "bin" / prog
        assert os.access(exe, os.X_OK), f"{prog} not installed"
        assert (tmp_path / "share" / "man" / "man1" / f"{prog}.1").is_file(), f"no man page for {prog}"
    r = subprocess.run([str(tmp_path / "bin" / "darner-journal"), "--help"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and "usage: darner-journal" in r.stdout
