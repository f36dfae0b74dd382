"""`eslkit build --install` writes nothing outside the tree's libs/esl and the
target's site-packages.

tests/test_build_run.py already checks the standalone build with --out (nothing
beside the tree, the output and the log; nothing left in TMPDIR), Ctrl-C then
rerun/--restore, and tests/test_build_plan.py the read-only tree and the tree of
another user.  Here: the make py3mod route on a configured tree (make and
libtool run inside the tree), installed into a fresh virtualenv, with HOME,
TMPDIR, XDG dirs and the working directory all inside one watched directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.sim import ESLKIT


def snapshot(root: Path) -> dict[str, tuple]:
    """path → (mode, size, mtime_ns) of everything under `root` (directories too)."""
    out = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(top) / name
            st = path.lstat()
            out[path.relative_to(root).as_posix()] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


@pytest.mark.slow
def test_install_writes_only_into_libs_esl_and_site_packages(tmp_path):
    from tests.support.fstree import stand_in

    root = stand_in(tmp_path / "fs", "master", configured=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('platlib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    for name in ("home", "tmp", "cwd", "cache", "config"):
        (tmp_path / name).mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "XDG_"))}
    env.update(VIRTUAL_ENV=str(venv), HOME=str(tmp_path / "home"), TMPDIR=str(tmp_path / "tmp"),
               XDG_CACHE_HOME=str(tmp_path / "cache"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    before = snapshot(tmp_path)
    proc = subprocess.run([str(ESLKIT), "build", "--src", str(root), "--install"], capture_output=True, text=True,
                          timeout=300, env=env, cwd=tmp_path / "cwd")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = snapshot(tmp_path)
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    allowed = ("fs/libs/esl", Path(site).relative_to(tmp_path).as_posix())
    outside = sorted(p for p in changed if not any(p == a or p.startswith(a + "/") for a in allowed))
    # A directory's mtime changes when an entry is added inside it: the parents of
    # libs/esl and site-packages themselves are not writes outside.
    outside = [p for p in outside if not any(a.startswith(p + "/") for a in allowed)]
    # TMPDIR may be used on the way, if nothing is left in it.
    assert list((tmp_path / "tmp").iterdir()) == []
    outside = [p for p in outside if p != "tmp"]
    assert outside == [], outside
    assert any(p.startswith(allowed[1] + "/_ESL") for p in changed)  # it did install
    check = subprocess.run([str(venv / "bin" / "python"), "-I", "-c", "import ESL; print(ESL.__file__)"],
                           capture_output=True, text=True, timeout=60, cwd="/")
    assert check.returncode == 0 and check.stdout.startswith(site), check.stderr
