"""eslkit doctor: the checks on this machine's real toolchain and on assembled trees."""

from __future__ import annotations

import json
import shutil

import pytest

from eslkit.build.doctor import FAIL, OK, WARN, run_checks
from eslkit.build.interpreter import probe
from tests.support.fstree import pyenv_python, run_eslkit, stand_in

SYSTEM_PY = shutil.which("python3")


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    base = tmp_path_factory.mktemp("doctor")
    return {
        "1.6": stand_in(base / "fs-1.6", "1.6.20"),
        "1.10.12c": stand_in(base / "fs-1.10.12c", "1.10.12", configured=True, python3=probe(SYSTEM_PY).executable),
        "1.11c": stand_in(base / "fs-1.11c", "master", configured=True, python3="/usr/bin/python3.9"),
    }


def by_name(rows):
    return {row.name: row for row in rows}


def test_toolchain_rows_on_this_machine():
    rows = by_name(run_checks(python=SYSTEM_PY))
    assert rows["swig >= 4"].status == OK and "(4." in rows["swig >= 4"].detail
    assert rows["gcc"].status == OK and rows["g++"].status == OK
    assert rows["Python.h"].status == OK
    assert rows["target Python"].detail.startswith(probe(SYSTEM_PY).executable)
    assert rows["FreeSWITCH tree"].status == WARN and "--src" in rows["FreeSWITCH tree"].fix


def test_tree_rows(trees):
    rows = by_name(run_checks(str(trees["1.6"]), python=SYSTEM_PY))
    assert rows["FreeSWITCH tree"].status == OK and "1.6.20" in rows["FreeSWITCH tree"].detail
    assert rows["ESL bindings"].status == WARN and "python/" in rows["ESL bindings"].detail
    assert rows["configured"].status == WARN and "standalone" in rows["configured"].fix
    assert rows["write permission"].status == OK
    rows = by_name(run_checks(str(trees["1.10.12c"]), python=SYSTEM_PY))
    assert rows["configured"].status == OK and str(trees["1.10.12c"]) in rows["configured"].detail
    assert rows["PYTHON3 in Makefile"].status == OK


def test_recorded_python3_differs_from_target(trees):
    rows = by_name(run_checks(str(trees["1.11c"]), python=SYSTEM_PY))
    row = rows["PYTHON3 in Makefile"]
    assert row.status == WARN and "/usr/bin/python3.9" in row.detail and "PYTHON3=" in row.fix
    assert "py3mod target" not in rows["configured"].detail  # 1.11 has one


def test_moved_tree_and_old_swig(trees, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(trees["1.10.12c"], moved)
    old = tmp_path / "swig"
    old.write_text("#!/bin/sh\necho 'SWIG Version 3.0.2'\n")
    old.chmod(0o755)
    rows = by_name(run_checks(str(moved), python=SYSTEM_PY, swig=str(old)))
    assert rows["configured"].status == FAIL and "now at" in rows["configured"].detail
    assert rows["swig >= 4"].status == FAIL and "3.0.2" in rows["swig >= 4"].detail
    assert "pip install swig" in rows["swig >= 4"].fix


def test_missing_headers_row(tmp_path):
    fake = tmp_path / "python3.99"
    facts = probe(SYSTEM_PY).as_dict()
    facts.update(include=str(tmp_path), version="3.99")
    fake.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(facts)}\nEOF\n")
    fake.chmod(0o755)
    rows = by_name(run_checks(python=str(fake)))
    assert rows["Python.h"].status == FAIL and rows["Python.h"].fix.startswith("apt-get install python3.99-dev")


def test_cli_table_and_exit_codes(trees, tmp_path):
    py = pyenv_python("3.13.0", "3.12.1") or SYSTEM_PY
    proc = run_eslkit("doctor", "--src", trees["1.10.12c"], "--python", py)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("swig >= 4", "gcc", "g++", "Python.h", "FreeSWITCH tree", "configured", "write permission"):
        assert name in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    proc = run_eslkit("doctor", "--src", tmp_path, "--python", py)
    assert proc.returncode == 1
    assert "│ fail " in proc.stdout and "1 check(s) failed: FreeSWITCH tree" in proc.stderr


def test_read_only_site_packages_warns(tmp_path):
    import subprocess

    venv = tmp_path / "venv"
    subprocess.run([SYSTEM_PY, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = probe(str(venv / "bin" / "python")).platlib
    assert site.startswith(str(venv))
    import os
    os.chmod(site, 0o555)
    try:
        row = by_name(run_checks(python=str(venv / "bin" / "python")))["install location"]
        assert row.status == WARN and "read-only" in row.detail and "--out" in row.fix
    finally:
        os.chmod(site, 0o755)
