"""`eslkit build --pure`: `import ESL` gives eslkit's pure-Python module, with no swig and no
compiler — in a fresh virtualenv whose PATH has neither — and never over or beside a
compiled module it would hide; `eslkit doctor` says which module `import ESL` gives.

Everything runs for real: the `eslkit` command, the target interpreter, and a
connection from the imported module to `eslkit sim`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from eslkit.build.pure import MARK, shim
from tests.support.fstree import run_eslkit
from tests.support.sim import sim_in_thread

ROOT = Path(__file__).resolve().parents[1]

USE = r"""
import json, sys
import ESL
con = ESL.ESLconnection("127.0.0.1", sys.argv[1], "ClueCon")
reply = con.api("version")
print(json.dumps({"file": ESL.__file__, "module": ESL.ESLconnection.__module__,
                  "compiled": hasattr(ESL, "_ESL"), "connected": con.connected(),
                  "version": reply.getBody() if reply else None}))
"""


@pytest.fixture
def venv(tmp_path):
    """A fresh virtualenv with eslkit in it (as `pip install -e` would: a .pth to the checkout,
    and one to the packages eslkit needs) and nothing else; its PATH holds no swig, no gcc."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "eslkit-checkout.pth").write_text(f"{ROOT}\n{sysconfig.get_paths()['purelib']}\n")
    bin_only = venv / "bin"
    assert shutil.which("swig", path=str(bin_only)) is None and shutil.which("gcc", path=str(bin_only)) is None
    return {"python": python, "site": site, "env": {"PATH": str(bin_only), "HOME": str(tmp_path)}}


def in_venv(venv, *args, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**venv["env"], "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run([str(venv["python"]), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=venv["site"].parent)


def use_esl(venv, port: int) -> dict:
    proc = in_venv(venv, "-I", "-c", USE, port)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_install_into_a_fresh_virtualenv_without_a_compiler(venv):
    assert in_venv(venv, "-c", "import ESL").returncode != 0  # nothing there yet
    with sim_in_thread(scenario=None) as sim:
        proc = in_venv(venv, "-m", "eslkit", "build", "--pure", "--check", f"127.0.0.1:{sim.port}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "gives nothing (`import ESL` fails)" in proc.stdout
        assert f"✓ wrote ESL.py in site-packages, {venv['site']}" in proc.stdout
        assert "UP 0 years" in proc.stdout  # --check: api status through the new `import ESL`
        assert (venv["site"] / "ESL.py").read_text() == shim()
        used = use_esl(venv, sim.port)
    assert used == {"file": str(venv["site"] / "ESL.py"), "module": "eslkit.ESL", "compiled": False,
                    "connected": 1, "version": "FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n"}
    doctor = in_venv(venv, "-m", "eslkit", "doctor", "--python", venv["python"])
    assert "eslkit's pure-Python module (eslkit.ESL)" in doctor.stdout
    again = in_venv(venv, "-m", "eslkit", "build", "--pure")  # nothing to do the second time
    assert again.returncode == 0 and "✓ up to date: ESL.py" in again.stdout, again.stdout + again.stderr
    undone = in_venv(venv, "-m", "eslkit", "build", "--pure", "--restore")
    assert undone.returncode == 0 and f"removed {venv['site'] / 'ESL.py'}" in undone.stdout
    assert in_venv(venv, "-c", "import ESL").returncode != 0
    assert "nothing to restore" in in_venv(venv, "-m", "eslkit", "build", "--pure", "--restore").stdout


def compiled_pair(esl_modules, into: Path) -> list:
    """The compiled module's two files, as `eslkit build --install` would leave them."""
    c_dir = Path(esl_modules[0].__file__).parent
    into.mkdir(parents=True, exist_ok=True)
    names = []
    for f in c_dir.iterdir():
        if f.name == "ESL.py" or f.name.startswith("_ESL."):
            shutil.copy2(f, into / f.name)
            names.append(f.name)
    return sorted(names)


def test_never_over_or_beside_a_compiled_module(venv, esl_modules, tmp_path):
    site = venv["site"]
    compiled_pair(esl_modules, site)
    before = (site / "ESL.py").read_bytes()
    doctor = in_venv(venv, "-m", "eslkit", "doctor", "--python", venv["python"])
    assert "the compiled module (SWIG)" in doctor.stdout
    refused = in_venv(venv, "-m", "eslkit", "build", "--pure", "--install")
    assert refused.returncode == 30, refused.stdout + refused.stderr
    assert f"{site / 'ESL.py'} is the compiled module's ESL.py" in refused.stderr
    assert "from eslkit import ESL" in refused.stderr
    assert (site / "ESL.py").read_bytes() == before
    # The compiled module elsewhere on the path (a .pth here): --install would hide it or be hidden.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for f in list(site.iterdir()):
        if f.name == "ESL.py" or f.name.startswith("_ESL."):
            shutil.move(str(f), str(elsewhere / f.name))
    (site / "zz-compiled.pth").write_text(f"{elsewhere}\n")
    hidden = in_venv(venv, "-m", "eslkit", "build", "--pure")
    assert hidden.returncode == 30, hidden.stdout + hidden.stderr
    assert f"already imports ESL from {elsewhere / 'ESL.py'}" in hidden.stderr
    assert not (site / "ESL.py").exists()
    # --out DIR elsewhere is still possible: the program decides by its own PYTHONPATH.
    out = tmp_path / "pure"
    ok = in_venv(venv, "-m", "eslkit", "build", "--pure", "--out", out)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "gives the compiled module (SWIG)" in ok.stdout  # said before writing
    # An ESL.py of someone else's in DIR is left alone too.
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "ESL.py").write_text("# my own module called ESL\n")
    mine = in_venv(venv, "-m", "eslkit", "build", "--pure", "--out", theirs)
    assert mine.returncode == 30 and "an ESL.py eslkit did not write" in mine.stderr
    restore = in_venv(venv, "-m", "eslkit", "build", "--pure", "--restore", "--out", theirs)
    assert restore.returncode == 30 and (theirs / "ESL.py").read_text() == "# my own module called ESL\n"


def test_out_dir(tmp_path):
    out = tmp_path / "esl"
    proc = run_eslkit("build", "--pure", "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["ESL.py"] and MARK in (out / "ESL.py").read_text()
    stat = (out / "ESL.py").stat()
    dry = run_eslkit("build", "--pure", "--out", out, "--dry-run")
    assert dry.returncode == 0 and "up to date: ESL.py in " in dry.stdout and "nothing was changed" in dry.stdout
    assert (out / "ESL.py").stat().st_mtime_ns == stat.st_mtime_ns
    env = {**os.environ, "PYTHONPATH": str(out)}
    code = "import ESL, eslkit.ESL; print(ESL.ESLevent is eslkit.ESL.ESLevent, ESL.ESLevent('CUSTOM').getType())"
    used = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert used.stdout == "True CUSTOM\n", used.stderr
    assert run_eslkit("build", "--pure", "--restore", "--out", out).returncode == 0
    assert list(out.iterdir()) == []


def test_an_interpreter_without_eslkit(tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120)
    proc = run_eslkit("build", "--pure", "--python", bare / "bin" / "python", "--out", tmp_path / "out")
    assert proc.returncode == 31, proc.stdout + proc.stderr
    assert "cannot import eslkit" in proc.stderr and "-m pip install eslkit" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("extra", [["--src", "/tmp"], ["--wheel", "/tmp/w"], ["--mode", "standalone"],
                                   ["--install", "--out", "/tmp/o"]])
def test_options_that_make_no_sense_with_pure(extra):
    proc = run_eslkit("build", "--pure", *extra)
    assert proc.returncode in (2, 20), proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
