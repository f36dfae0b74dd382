"""The eslkit wheel carries the build templates, and `eslkit build` works from an installed copy.

Builds eslkit's own wheel (python -m build), installs it into a fresh venv,
and runs `eslkit build --dry-run` from there: the templates must be found
inside the installed package, not in this checkout.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest

from tests.support.prerequisites import missing
from tests.support.fstree import REPO, checksums, pyenv_python, run_eslkit, stand_in

pytestmark = pytest.mark.slow

TEMPLATES = ("python-config.j2", "python3-Makefile.j2", "py3mod-target.mk.j2")
# eslkit serve's pages and static files: in the wheel, no build step.
WEB = ("templates/base.html", "templates/login.html", "templates/agent.html", "templates/index.html",
       "templates/error.html", "templates/user.html", "static/agent.js", "static/login.js", "static/style.css")


@pytest.fixture(scope="module")
def eslkit_wheel(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(REPO)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (wheel,) = dist.glob("eslkit-*.whl")
    return wheel


def test_wheel_contains_templates(eslkit_wheel):
    names = zipfile.ZipFile(eslkit_wheel).namelist()
    for name in TEMPLATES:
        assert f"eslkit/templates/{name}" in names
    assert "eslkit/build/plan.py" in names
    for name in WEB:
        assert f"eslkit/web/{name}" in names


def test_installed_eslkit_dry_run(eslkit_wheel, tmp_path):
    # The oldest Python eslkit supports, when pyenv has it: the wheel must run there too.
    base = pyenv_python("3.9.18", "3.9") or sys.executable
    venv = tmp_path / "venv"
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    proc = subprocess.run([*pip, "install", str(eslkit_wheel)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and ("Could not find a version" in proc.stderr or "NewConnectionError" in proc.stderr):
        missing(f"cannot install eslkit's dependencies (no package index): {proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    root = stand_in(tmp_path / "fs", "1.10.12", configured=True)
    before = checksums(root)
    # Run from outside the checkout so nothing can fall back to ./templates.
    proc = run_eslkit("build", "--src", root, "--dry-run", "--python", shutil.which("python3"),
                      "--out", tmp_path / "out", exe=venv / "bin" / "eslkit", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "-from distutils import sysconfig" in proc.stdout  # the rendered python-config diff
    assert "+import sysconfig" in proc.stdout
    assert "dry run: nothing was changed" in proc.stdout
    assert checksums(root) == before
    located = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "from eslkit.build.templates import templates_dir; print(templates_dir())"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert located.stdout.strip().startswith(str(venv)), located.stdout + located.stderr
    web = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "from jinja2 import Environment, PackageLoader; import eslkit.web.app as app\n"
         "Environment(loader=PackageLoader('eslkit.web', 'templates')).get_template('agent.html')\n"
         "print(app._static_dir() / 'agent.js', (app._static_dir() / 'agent.js').is_file())"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert web.stdout.strip().startswith(str(venv)) and web.stdout.strip().endswith("True"), web.stdout + web.stderr
