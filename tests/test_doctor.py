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
    # moved after configure: auto builds standalone, so that is a warning, not a failure
    assert rows["configured"].status == WARN and "now at" in rows["configured"].detail
    assert rows["swig >= 4"].status == FAIL and "3.0.2" in rows["swig >= 4"].detail
    assert "pip install swig" in rows["swig >= 4"].fix and rows["swig >= 4"].exit_code == 23


def test_missing_headers_row(tmp_path):
    fake = tmp_path / "python3.99"
    facts = probe(SYSTEM_PY).as_dict()
    facts.update(include=str(tmp_path), version="3.99")
    fake.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(facts)}\nEOF\n")
    fake.chmod(0o755)
    rows = by_name(run_checks(python=str(fake)))
    row = rows["Python.h"]  # the build's own sentence and fix (exit 24)
    assert row.status == FAIL and "apt-get install python3.99-dev" in row.fix and row.exit_code == 24


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
        # `eslkit build` (--install, the default) would stop with exit 27: doctor fails that row
        row = by_name(run_checks(python=str(venv / "bin" / "python")))["install location"]
        assert row.status == FAIL and "not writable" in row.detail and row.exit_code == 27
        assert "virtualenv" in row.fix
        # ...and is fine for `eslkit build --out DIR`
        rows = by_name(run_checks(python=str(venv / "bin" / "python"), out=str(tmp_path / "out")))
        assert rows["output"].status == OK and not any(r.status == FAIL for r in rows.values())
    finally:
        os.chmod(site, 0o755)


# --- doctor predicts build: same options, same verdict, same message and fix ---------------


def _doctor_and_build(tmp_path, root, *options, env=None):
    doctor = run_eslkit("doctor", "--src", root, *options, env=env)
    build = run_eslkit("build", "--src", root, *options, "--out", tmp_path / "out", env=env, timeout=600)
    return doctor, build


def _one_line(text: str) -> str:
    return " ".join(text.split())


def test_doctor_ok_where_build_ok_and_fails_with_builds_message(tmp_path, trees):
    """Each case: doctor's verdict is the build's; a failing doctor shows the build's message and fix."""
    # 1. a FreeSWITCH tree whose ESL.i has no %module: both fine
    root = stand_in(tmp_path / "fs", "1.10.12")
    doctor, build = _doctor_and_build(tmp_path, root, "--python", SYSTEM_PY)
    assert doctor.returncode == 0 and build.returncode == 0, doctor.stdout + build.stdout + build.stderr
    assert "swig on ESL.i" in doctor.stdout and "extension for Python" in doctor.stdout
    assert run_eslkit("build", "--src", root, "--restore").returncode == 0

    # 2. a swig that drops -module (as a Makefile without it would): both stop at swig, same words
    dropper = tmp_path / "swig-without-module"
    dropper.write_text('#!/bin/sh\nskip=\nfor a do shift; if [ -n "$skip" ]; then skip=; continue; fi\n'
                       '  if [ "$a" = -module ]; then skip=1; continue; fi; set -- "$@" "$a"; done\n'
                       f'exec {shutil.which("swig")} "$@"\n')
    dropper.chmod(0o755)
    doctor, build = _doctor_and_build(tmp_path, root, "--python", SYSTEM_PY, "--swig", dropper)
    assert doctor.returncode == 1 and build.returncode == 28, doctor.stdout + build.stderr
    assert "1 check(s) failed: swig on ESL.i" in doctor.stderr
    row = by_name(run_checks(str(root), python=SYSTEM_PY, swig=str(dropper), out=str(tmp_path / "o")))["swig on ESL.i"]
    assert row.detail.startswith("Step 'swig' failed (exit 1): swig was run without -module ESL")
    assert f"eslkit: {row.detail}" in build.stderr and _one_line(f"fix: {row.fix}") in _one_line(build.stderr)
    assert run_eslkit("build", "--src", root, "--restore").returncode == 0

    # 3. a configured tree copied elsewhere (cp -a): auto builds standalone, doctor agrees
    copied = tmp_path / "copied"
    shutil.copytree(trees["1.10.12c"], copied, symlinks=True)
    doctor, build = _doctor_and_build(tmp_path, copied, "--python", SYSTEM_PY)
    assert doctor.returncode == 0 and build.returncode == 0, doctor.stdout + build.stdout + build.stderr
    row = by_name(run_checks(str(copied), python=SYSTEM_PY, out=str(tmp_path / "o")))["build mode"]
    assert row.status == OK and row.detail.startswith("standalone: the tree was configured in")
    # ...and --mode py3mod there stops both with exit 26's sentence
    doctor, build = _doctor_and_build(tmp_path, copied, "--python", SYSTEM_PY, "--mode", "py3mod")
    assert doctor.returncode == 1 and build.returncode == 26 and "1 check(s) failed: build mode" in doctor.stderr
    row = by_name(run_checks(str(copied), python=SYSTEM_PY, mode="py3mod", out=str(tmp_path / "o")))["build mode"]
    assert row.exit_code == 26 and _one_line(f"eslkit: {row.detail} fix: {row.fix}") == _one_line(build.stderr)


def test_doctor_rehearses_the_compile_against_the_targets_headers(tmp_path, trees):
    """Python.h is there, pyconfig.h is not: looking at files says ok, compiling does not."""
    real = probe(SYSTEM_PY)
    include = tmp_path / "include"
    shutil.copytree(real.include, include)
    (include / "pyconfig.h").unlink()
    fake = tmp_path / "python3"
    facts = dict(real.as_dict(), include=str(include), platinclude=str(include))
    fake.write_text(f"#!/bin/sh\n[ \"$1\" = -I ] && [ \"$2\" = -c ] && case \"$3\" in *sysconfig*) cat <<'EOF'\n"
                    f"{json.dumps(facts)}\nEOF\nexit 0;; esac\nexec {real.executable} \"$@\"\n")
    fake.chmod(0o755)
    root = stand_in(tmp_path / "fs", "master")
    doctor, build = _doctor_and_build(tmp_path, root, "--python", fake)
    assert build.returncode == 28, build.stdout + build.stderr
    assert doctor.returncode == 1, doctor.stdout
    row = by_name(run_checks(str(root), python=str(fake), out=str(tmp_path / "o")))[f"extension for Python {real.version}"]
    assert row.status == FAIL and row.exit_code == 28
    assert "g++ esl_wrap.cpp, rehearsed" in row.detail and "pyconfig.h" not in row.fix
    assert "Step 'g++ esl_wrap.cpp' failed" in _one_line(build.stderr)
    # the same diagnosis and fix as the build's
    assert row.detail.split(": ", 1)[1] in _one_line(build.stderr)
    assert _one_line(row.fix) in _one_line(build.stderr)


def test_piped_doctor_keeps_every_path_and_fix_on_one_line(trees):
    """Into a pipe or a file the table was 80 columns wide: paths, commands and fixes split
    mid-word.  Now each cell is whole on its row's line, to be read or copied."""
    rows = run_checks(str(trees["1.6"]), python=SYSTEM_PY)
    proc = run_eslkit("doctor", "--src", trees["1.6"], "--python", SYSTEM_PY)
    lines = proc.stdout.splitlines()
    for row in rows:
        line = next(x for x in lines if x.startswith(f"│ {row.name} "))
        assert row.detail in line and row.fix in line, (row, line)
    assert any("./bootstrap.sh && ./configure" in x for x in lines)
