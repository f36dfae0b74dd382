"""An up-to-date `eslkit build` reuses what it learnt from the interpreter and swig,
and still rebuilds when either changes: real pyenv, swig, gcc/g++.

A private pyenv root (its own shim, `version` file and versions, linked to the
machine's pyenv versions) lets `pyenv global` change without touching the
machine's; a pyenv exec hook in that root counts every start through the shim.
The last tests cover the step runner's own timeout and empty stdin, which
replaced sh's 0.1 s polling threads (they cost every command ~0.1 s).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from eslkit.build.identity import pyenv_shim_key
from eslkit.build.plan import Step
from eslkit.build.run import Log, run_step
from eslkit.build.tools import find_swig
from eslkit.errors import BuildStepFailed
from tests.support.fstree import run_eslkit, stand_in
from tests.support.prerequisites import missing

pytestmark = pytest.mark.slow

SYSTEM_SWIG = shutil.which("swig")


def _tree(base: Path) -> Path:
    return stand_in(base, "master")


def _real_pyenv() -> tuple:
    """(the machine's python3 shim, its PYENV_ROOT, two installed CPythons with headers)."""
    shim = shutil.which("python3")
    if not shim or pyenv_shim_key(shim) is None:
        missing("python3 on PATH is not a pyenv shim (pyenv is not installed)")
    text = Path(shim).read_text()
    root = Path(re.search(r'^export PYENV_ROOT="([^"]+)"', text, re.M).group(1))
    versions = {}
    for prefix in sorted((root / "versions").iterdir()):
        if re.fullmatch(r"3\.\d+\.\d+", prefix.name) and list(prefix.glob("include/python3*/Python.h")):
            versions[prefix.name.rsplit(".", 1)[0]] = prefix.name  # newest of each minor
    if len(versions) < 2:
        missing("pyenv needs two CPython 3 versions with headers for this test")
    newest = sorted(versions, key=lambda v: tuple(map(int, v.split("."))))[-2:]
    return shim, text, root, [versions[v] for v in newest]


@pytest.fixture
def pyenv(tmp_path, monkeypatch):
    """A private pyenv root whose shim runs the machine's pyenv, with a probe counter."""
    shim, text, real_root, (old, new) = _real_pyenv()
    root = tmp_path / "pyenv"
    (root / "shims").mkdir(parents=True)
    (root / "versions").mkdir()
    for version in (old, new):
        (root / "versions" / version).symlink_to(real_root / "versions" / version)
    (root / "version").write_text(old + "\n")
    starts = tmp_path / "starts.log"
    hook = root / "pyenv.d" / "exec" / "count.bash"  # pyenv sources it on every shim start
    hook.parent.mkdir(parents=True)
    hook.write_text(f'echo "$PYENV_VERSION" >> "{starts}"\n')
    private = root / "shims" / "python3"
    private.write_text(text.replace(f'export PYENV_ROOT="{real_root}"', f'export PYENV_ROOT="{root}"'))
    private.chmod(0o755)
    monkeypatch.delenv("PYENV_VERSION", raising=False)
    monkeypatch.delenv("PYENV_DIR", raising=False)
    work = tmp_path / "work"  # the build's working directory: where `pyenv local` writes
    work.mkdir()
    return {
        "root": root, "old": old, "new": new, "work": work, "real_root": real_root,
        "env": {"PATH": f"{root / 'shims'}:{os.environ['PATH']}"},
        "starts": lambda: len(starts.read_text().splitlines()) if starts.exists() else 0,
    }


def _pyenv_cmd(pyenv, *args) -> None:
    env = dict(os.environ, PYENV_ROOT=str(pyenv["root"]))
    subprocess.run([str(pyenv["real_root"] / "libexec" / "pyenv"), *args], check=True, cwd=pyenv["work"],
                   env=env, capture_output=True, timeout=60)


def _build(root, out, pyenv, *args, **env):
    proc = run_eslkit("build", "--src", root, "--out", out, "--mode", "standalone", *args,
                      env={**pyenv["env"], **env}, cwd=pyenv["work"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _built_for(stdout: str) -> str:
    """The Python version the build verified its module with ("" for an up-to-date run)."""
    match = re.search(r"✓ import ESL in Python (\d+\.\d+)", stdout)
    return match.group(1) if match else ""


def _minor(version: str) -> str:
    return version.rsplit(".", 1)[0]


def test_pyenv_shim_is_not_started_when_up_to_date_but_a_new_version_rebuilds(tmp_path, pyenv):
    root, out = _tree(tmp_path / "fs"), tmp_path / "out"
    old, new = _minor(pyenv["old"]), _minor(pyenv["new"])
    assert _built_for(_build(root, out, pyenv)) == old  # pyenv global
    started = pyenv["starts"]()
    assert started >= 1
    again = _build(root, out, pyenv)
    assert "up to date" in again and "✓ gcc" not in again
    assert pyenv["starts"]() == started  # the shim was not started: its answer was reused

    _pyenv_cmd(pyenv, "global", pyenv["new"])
    assert _built_for(_build(root, out, pyenv)) == new
    assert next(out.glob(f"_ESL.cpython-{new.replace('.', '')}*.so"))

    _pyenv_cmd(pyenv, "local", pyenv["old"])  # .python-version in the working directory
    assert _built_for(_build(root, out, pyenv)) == old

    assert _built_for(_build(root, out, pyenv, PYENV_VERSION=pyenv["new"])) == new  # pyenv shell
    started = pyenv["starts"]()
    assert "up to date" in _build(root, out, pyenv, PYENV_VERSION=pyenv["new"])
    assert pyenv["starts"]() == started
    (pyenv["root"] / "versions" / "3.99.0").mkdir()  # another version installed: pyenv is asked again,
    assert "up to date" in _build(root, out, pyenv, PYENV_VERSION=pyenv["new"])  # same answer,
    assert pyenv["starts"]() == started + 1
    assert "up to date" in _build(root, out, pyenv, PYENV_VERSION=pyenv["new"])
    assert pyenv["starts"]() == started + 1  # and that answer is remembered again
    forced = _build(root, out, pyenv, "--force", PYENV_VERSION=pyenv["new"])
    assert _built_for(forced) == new and pyenv["starts"]() == started + 2  # --force asks again
    info = subprocess.run([str(pyenv["real_root"] / "versions" / pyenv["new"] / "bin" / "python3"), "-I", "-c",
                           f"import sys; sys.path.insert(0, {str(out)!r}); import ESL, json; "
                           "print(json.dumps([ESL.__file__, hasattr(ESL, 'ESLconnection')]))"],
                          capture_output=True, text=True, timeout=60)
    assert json.loads(info.stdout) == [str(out / "ESL.py"), True], info.stderr


def _pip_swig() -> tuple:
    """(the ELF swig inside the `swig` package of the test extras, its SWIG_LIB); not imported:
    importing it sets SWIG_LIB for this whole process."""
    spec = importlib.util.find_spec("swig")
    if spec is None or not spec.submodule_search_locations:
        missing("the swig package of the test extras is not installed in this venv")
    data = Path(list(spec.submodule_search_locations)[0]) / "data"
    libs = sorted((data / "share" / "swig").glob("*"))
    if not (data / "bin" / "swig").is_file() or not libs:
        missing("the swig package has no swig binary inside")
    return data / "bin" / "swig", libs[0]


def test_replaced_interpreter_or_swig_at_the_same_path_rebuilds(tmp_path, pyenv):
    if SYSTEM_SWIG is None:
        missing("no swig on PATH (scripts/setup --test installs it)")
    pip_swig, swig_lib = _pip_swig()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python = bin_dir / "python3"  # an update-alternatives style link, then another target
    versions = pyenv["real_root"] / "versions"
    python.symlink_to(versions / pyenv["old"] / "bin" / "python3")
    swig = bin_dir / "swig"
    shutil.copy2(os.path.realpath(SYSTEM_SWIG), swig)
    root, out = _tree(tmp_path / "fs"), tmp_path / "out"
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def build(**extra):
        proc = run_eslkit("build", "--src", root, "--out", out, "--python", python, env={**env, **extra})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc.stdout

    assert _built_for(build()) == _minor(pyenv["old"])
    assert "up to date" in build()
    python.unlink()
    python.symlink_to(versions / pyenv["new"] / "bin" / "python3")
    assert _built_for(build()) == _minor(pyenv["new"])
    assert "up to date" in build()

    banner = re.compile(r"Version (\d+\.\d+\.\d+)")
    first = banner.search((out / "ESL.py").read_text()).group(1)
    shutil.copy2(pip_swig, swig.with_name("swig.new"))
    os.replace(swig.with_name("swig.new"), swig)  # same path, another swig
    if find_swig(str(swig)).version == first:
        pytest.skip(f"the swig package is the same version as the system's ({first})")
    rebuilt = build(SWIG_LIB=str(swig_lib))
    assert "✓ swig" in rebuilt and _built_for(rebuilt) == _minor(pyenv["new"])
    assert banner.search((out / "ESL.py").read_text()).group(1) == find_swig(str(swig)).version
    assert "up to date" in build(SWIG_LIB=str(swig_lib))


def test_remembered_swig_version_is_reused_only_for_the_same_binary(tmp_path):
    if SYSTEM_SWIG is None:
        missing("no swig on PATH (scripts/setup --test installs it)")
    swig = tmp_path / "swig"
    shutil.copy2(os.path.realpath(SYSTEM_SWIG), swig)
    found = find_swig(str(swig))
    remembered = {"path": found.path, "version": "9.9.9", "identity": found.identity}
    assert find_swig(str(swig), known=remembered).version == "9.9.9"  # reused, not run
    os.utime(swig, ns=(swig.stat().st_atime_ns, swig.stat().st_mtime_ns + 10**9))
    assert find_swig(str(swig), known=remembered).version == found.version  # changed: run again
    script = tmp_path / "swig-script"  # a wrapper script may run another swig at every call
    script.write_text(f'#!/bin/sh\nexec {swig} "$@"\n')
    script.chmod(0o755)
    assert find_swig(str(script)).identity is None
    assert find_swig(str(script), known=dict(remembered, path=str(script), identity=None)).version == found.version


def test_pyenv_key_follows_what_pyenv_reads(pyenv, monkeypatch):
    """Every way pyenv picks a version changes the shim's key; unrelated settings do not."""
    shim = str(pyenv["root"] / "shims" / "python3")
    monkeypatch.chdir(pyenv["work"])
    monkeypatch.setenv("PATH", pyenv["env"]["PATH"])
    key = pyenv_shim_key(shim)
    assert key is not None and pyenv_shim_key(shim) == key
    monkeypatch.setenv("ESL_PASSWORD", "unrelated")
    assert pyenv_shim_key(shim) == key
    monkeypatch.setenv("PYENV_VERSION", pyenv["new"])
    assert pyenv_shim_key(shim) != key
    monkeypatch.delenv("PYENV_VERSION")
    (pyenv["work"] / ".python-version").write_text(pyenv["new"] + "\n")
    assert pyenv_shim_key(shim) not in (key, None)
    (pyenv["work"] / ".python-version").unlink()
    assert pyenv_shim_key(shim) == key
    version = pyenv["root"] / "version"
    version.write_text(pyenv["new"] + "\n")
    changed = pyenv_shim_key(shim)
    assert changed != key
    (pyenv["root"] / "versions" / "3.99.0").mkdir()  # a newly installed version
    assert pyenv_shim_key(shim) != changed
    plain = pyenv["work"] / "python3"
    plain.write_text("#!/bin/sh\nexec python3 \"$@\"\n")
    assert pyenv_shim_key(str(plain)) is None


def _gone(pid: int) -> bool:
    """Dead (or dead and waiting to be reaped: a zombie has no process left to run)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_step_that_hangs_is_killed_with_its_children(tmp_path):
    pids = tmp_path / "pids"
    step = Step("hang", ("sh", "-c", f"sleep 60 & echo $! > {pids}; exec sleep 61"), tmp_path)
    with pytest.raises(BuildStepFailed, match="took longer than 0.5 s"):
        run_step(step, Log(None), timeout=0.5)
    child = int(pids.read_text())
    for _ in range(50):  # SIGKILL is delivered at once; the kernel may take a moment to show it
        if _gone(child):
            break
        subprocess.run(["sleep", "0.1"], check=True)
    assert _gone(child)


def test_a_step_reading_stdin_gets_end_of_file(tmp_path):
    log = tmp_path / "log"
    logfile = Log(log)
    run_step(Step("reads stdin", ("sh", "-c", "cat; echo after-eof"), tmp_path), logfile, timeout=20)
    logfile.close()
    assert "after-eof" in log.read_text()
