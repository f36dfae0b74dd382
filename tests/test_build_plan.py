"""eslkit build: tree inspection, the plan's exact argv, --dry-run, and every bad input.

Fast: nothing here compiles (the compiling tests are in test_build_run.py).
Trees are assembled from the real ESL sources (tests/support/fstree.py).
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import sys
from pathlib import Path

import pytest

from eslkit.build import prepare
from eslkit.build.interpreter import probe
from eslkit.build.tree import inspect_tree
from eslkit.errors import BuildError, EslSourcesMissing, NotAFreeSwitchTree, TreeMoved
from tests.support.fstree import LAYOUTS, checksums, other_python, run_eslkit, stand_in
from tests.support.prerequisites import missing

SYSTEM_PY = shutil.which("python3")


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    base = tmp_path_factory.mktemp("trees")
    return {
        **{name: stand_in(base / f"fs-{name}", name) for name in LAYOUTS},
        "1.10.12c": stand_in(base / "fs-1.10.12c", "1.10.12", configured=True),
        "1.6.20c": stand_in(base / "fs-1.6.20c", "1.6.20", configured=True),
    }


@pytest.fixture(scope="module")
def target():
    return probe(SYSTEM_PY)


# --- inspecting trees -----------------------------------------------------------


SIX = ("src/esl.c", "src/esl_buffer.c", "src/esl_config.c", "src/esl_event.c", "src/esl_json.c",
       "src/esl_threadmutex.c")
CJSON = ("src/cJSON.c", "src/cJSON_Utils.c")


@pytest.mark.parametrize("layout, version, bindings, configured, c_sources", [
    ("1.6.20", "1.6.20", ("python",), False, SIX),
    ("1.8.7", "1.8.7", ("python",), False, CJSON + SIX),
    ("1.10.3", "1.10.3", ("python",), False, CJSON + SIX),
    ("1.10.12", "1.10.12", ("python", "python3"), False, CJSON + SIX),
    ("master", "1.11.3", ("python3",), False, CJSON + SIX),
    ("1.10.12c", "1.10.12", ("python", "python3"), True, CJSON + SIX),
    ("1.6.20c", "1.6.20", ("python",), True, SIX),
])
def test_inspect_layouts(trees, layout, version, bindings, configured, c_sources):
    """What eslkit reads from the stand-ins; the same as from git archive trees of those tags."""
    tree = inspect_tree(trees[layout])
    assert tree.version == version
    assert tree.bindings == bindings
    assert tree.configured is configured
    assert tree.moved is False
    assert tree.c_sources == c_sources
    # FreeSWITCH's ESL.i names no module: swig must be given -module ESL
    assert "%module" not in (tree.esl / "ESL.i").read_text()
    if configured:
        assert tree.switch_srcdir == str(trees[layout])
        assert tree.recorded_python3 == "/usr/bin/python3"
        assert tree.has_py3mod_target is (layout == "1.10.12c")
        placeholders = sorted((tree.esl / "src" / ".deps").glob("libesl_la-*.Plo"))
        assert len(placeholders) == len(c_sources) + 1  # and esl_oop.cpp
        assert {p.read_bytes() for p in placeholders} == {b"# dummy\n"}


def test_inspect_moved_tree(tmp_path, trees):
    moved = tmp_path / "moved"
    shutil.copytree(trees["1.10.12c"], moved, symlinks=True)
    tree = inspect_tree(moved)
    assert tree.configured and tree.moved
    with pytest.raises(TreeMoved) as err:
        prepare(moved, python=SYSTEM_PY, mode="py3mod", out=str(tmp_path / "o"))
    assert err.value.exit_code == 26 and "configure" in err.value.fix
    plan = prepare(moved, python=SYSTEM_PY, out=str(tmp_path / "o"))
    assert plan.mode == "standalone" and "moved" in plan.reason


def test_not_a_tree_and_no_esl(tmp_path):
    with pytest.raises(NotAFreeSwitchTree):
        inspect_tree(tmp_path)
    (tmp_path / "configure.ac").write_text("AC_INIT([freeswitch], [1.10.12-release])\n")
    (tmp_path / "libs").mkdir()
    with pytest.raises(EslSourcesMissing):
        inspect_tree(tmp_path)


def test_src_pointing_at_libs_esl(trees):
    with pytest.raises(NotAFreeSwitchTree) as err:
        inspect_tree(trees["1.6.20"] / "libs" / "esl")
    assert err.value.fix == f"Use --src {trees['1.6.20']}."


# --- the plan: exact argv ---------------------------------------------------------


def test_standalone_plan_argv(trees, target, tmp_path):
    plan = prepare(trees["1.6.20"], python=SYSTEM_PY, out=str(tmp_path / "out"))
    esl = trees["1.6.20"] / "libs" / "esl"
    inc = esl / "src" / "include"
    bd = esl / ".eslkit" / "build" / target.soabi
    assert plan.mode == "standalone" and "not configured" in plan.reason
    assert plan.files == ()
    argv = [list(s.argv) for s in plan.steps]
    assert argv[0] == ["/usr/bin/swig" if plan.swig.path == "/usr/bin/swig" else plan.swig.path,
                       "-module", "ESL", "-python", "-c++", "-DMULTIPLICITY", "-threads", f"-I{inc}", "-outdir", str(bd),
                       "-o", str(bd / "esl_wrap.cpp"), str(esl / "ESL.i")]
    assert argv[1] == ["gcc", "-fPIC", "-O2", f"-I{inc}", "-c", str(esl / "src/esl.c"), "-o", str(bd / "esl.o")]
    assert [a[0] for a in argv[1:7]] == ["gcc"] * 6
    assert argv[7] == ["g++", "-fPIC", "-O2", f"-I{inc}", "-c", str(esl / "src/esl_oop.cpp"), "-o", str(bd / "esl_oop.o")]
    assert argv[8] == ["g++", "-fPIC", "-O2", f"-I{inc}", f"-I{target.include}", "-c", str(bd / "esl_wrap.cpp"),
                       "-o", str(bd / "esl_wrap.o")]
    link = argv[9]
    assert link[:4] == ["g++", "-shared", "-o", str(bd / target.module_name)]
    assert link[-2:] == ["-lpthread", "-lm"]
    assert not any(a.startswith("-lpython") for a in link), "an extension module must not link libpython"
    assert all("-classic" not in a for a in argv)
    assert plan.products == (bd / "ESL.py", bd / target.module_name)


def test_py3mod_plan_argv_and_files(trees, target, tmp_path):
    root = trees["1.6.20c"]  # configured, but 1.6 has no py3mod target: the plan adds one
    plan = prepare(root, python=SYSTEM_PY, out=str(tmp_path / "out"))
    esl = root / "libs" / "esl"
    assert plan.mode == "py3mod" and "configured" in plan.reason
    assert [list(s.argv) for s in plan.steps] == [
        [plan.swig.path, "-module", "ESL", "-python", "-c++", "-DMULTIPLICITY", "-threads", "-I../src/include",
         "-o", "esl_wrap.cpp", "../ESL.i"],
        ["make", "py3mod", f"PYTHON3={target.executable}", f"SWIG={plan.swig.path}"],
    ]
    assert [s.cwd for s in plan.steps] == [esl / "python3", esl]
    files = {f.path.relative_to(esl).as_posix(): f for f in plan.files}
    assert set(files) == {"python3/python-config", "python3/Makefile", "Makefile"}
    assert "from distutils" not in files["python3/python-config"].content
    assert "import sysconfig" in files["python3/python-config"].content
    rules = "\n".join(ln for ln in files["python3/Makefile"].content.splitlines() if not ln.startswith("#"))
    assert "-classic" not in rules and "-lpython" not in rules and "distutils" not in rules
    assert "\t$(SWIG) -module ESL -python -c++ -DMULTIPLICITY -threads -I../src/include -o esl_wrap.cpp ../ESL.i" in rules
    makefile = files["Makefile"].content
    original = (esl / "Makefile").read_text()
    assert makefile.startswith(original) and "\npy3mod: $(MYLIB)\n" in makefile[len(original):]
    assert all(f.path.name != "Makefile.am" for f in plan.files)
    # 1.10.12 already has the target: the plan must not add a second one.
    plan = prepare(trees["1.10.12c"], python=SYSTEM_PY, out=str(tmp_path / "out"))
    assert {f.path.name for f in plan.files} == {"python-config", "Makefile"}
    assert all(f.path.parent.name == "python3" for f in plan.files)
    # configure recorded /usr/bin/python3; make gets the target instead, and the plan says so
    assert plan.notes == (f"configure recorded PYTHON3=/usr/bin/python3; make is given PYTHON3={target.executable} instead",)


def test_rendered_python_config_runs_without_distutils(tmp_path):
    """The rendered python-config works on 3.12+, where FreeSWITCH's fails ('No module named distutils')."""
    import subprocess

    from eslkit.build import templates

    py312 = other_python("3.12.1", "3.13.0", "3.12", "3.13")
    shipped = tmp_path / "shipped-python-config"
    from tests.support.fstree import PY3_CONFIG
    shipped.write_text(PY3_CONFIG)
    broken = subprocess.run([py312, str(shipped), "--includes"], capture_output=True, text=True, timeout=30)
    assert broken.returncode != 0 and "distutils" in broken.stderr  # the failure the template fixes
    script = tmp_path / "python-config"
    script.write_text(templates.render("python-config.j2"))
    facts = probe(py312)
    answers = {}
    for opt in ("--includes", "--extension-suffix", "--ldflags", "--site-dir"):
        out = subprocess.run([py312, str(script), opt], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        answers[opt] = out.stdout.strip()
    assert answers["--includes"].split()[0] == f"-I{facts.include}"
    assert answers["--extension-suffix"] == facts.ext_suffix
    assert answers["--ldflags"] == ""  # never -lpython3.X
    assert answers["--site-dir"] == facts.platlib
    assert subprocess.run([py312, str(script), "--bogus"], capture_output=True, timeout=30).returncode == 1


def test_prepare_rejects_two_outputs(trees, tmp_path):
    with pytest.raises(BuildError) as err:
        prepare(trees["1.6.20"], python=SYSTEM_PY, out=str(tmp_path), wheel=str(tmp_path))
    assert err.value.exit_code == 20


# --- the CLI: --dry-run and bad input (exit code, one sentence + fix, no traceback, tree untouched) ---


def test_dry_run_changes_nothing(trees, tmp_path):
    shown = {}
    for name in ("1.6.20", "1.10.12c", "1.6.20c"):
        before = checksums(trees[name])
        proc = run_eslkit("build", "--src", trees[name], "--dry-run", "--out", tmp_path / "out",
                          "--python", SYSTEM_PY)
        assert proc.returncode == 0, proc.stderr
        assert "dry run: nothing was changed" in proc.stdout
        assert checksums(trees[name]) == before
        assert not (tmp_path / "out").exists()
        shown[name] = proc.stdout
    # The dry runs show the mode with its reason, the diffs and the commands.
    assert "mode        standalone: the tree is not configured" in shown["1.6.20"]
    assert "$ gcc -fPIC -O2 -I" in shown["1.6.20"]
    assert "+py3mod: $(MYLIB)" in shown["1.6.20c"]
    assert "--- /dev/null" in shown["1.6.20c"]  # python3/ is new in a 1.6 tree
    assert "-from distutils import sysconfig" in shown["1.10.12c"]
    assert "+py3mod" not in shown["1.10.12c"]
    assert f"$ make py3mod PYTHON3={probe(SYSTEM_PY).executable} SWIG=" in shown["1.10.12c"]
    assert "make py3mod may change other files of libs/esl" in shown["1.10.12c"]


def test_piped_dry_run_prints_each_command_whole(trees, tmp_path):
    """`eslkit build --dry-run | less` (or into a file) wrapped at 80 columns and split the
    swig and gcc commands mid-path: each is now one line, to be copied and run as shown."""
    plan = prepare(trees["1.6.20"], python=SYSTEM_PY, out=str(tmp_path / "out"))
    proc = run_eslkit("build", "--src", trees["1.6.20"], "--dry-run", "--out", tmp_path / "out",
                      "--python", SYSTEM_PY)
    lines = proc.stdout.splitlines()
    for step in plan.steps:
        assert "    $ " + shlex.join(step.argv) in lines, step.name
    assert max(len(x) for x in lines) > 200  # they are long: nothing cut them


def _fails(proc, code: int, words: str):
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    assert words in proc.stderr, proc.stderr
    assert "fix:" in proc.stderr


def test_bad_input_exit_codes(trees, tmp_path):
    out = tmp_path / "out"
    digests = {k: checksums(v) for k, v in trees.items()}
    missing = run_eslkit("build", "--out", out)
    assert missing.returncode == 2 and "'--src'" in missing.stderr and "required" in missing.stderr
    _fails(run_eslkit("build", "--src", tmp_path, "--out", out), 21, "not a FreeSWITCH source tree")
    bare = tmp_path / "fs-no-esl"
    (bare / "libs").mkdir(parents=True)
    (bare / "configure.ac").write_text("AC_INIT([freeswitch], [1.10.12-release])\n")
    _fails(run_eslkit("build", "--src", bare, "--out", out), 22, "has no libs/esl")
    _fails(run_eslkit("build", "--src", trees["master"], "--mode", "py3mod", "--out", out), 25,
           "needs a configured tree")
    _fails(run_eslkit("build", "--src", trees["master"], "--swig", tmp_path / "nope", "--out", out), 23,
           "swig was not found")
    old_swig = tmp_path / "swig3.0"
    old_swig.write_text("#!/bin/sh\necho\necho 'SWIG Version 3.0.12'\n")
    old_swig.chmod(0o755)
    _fails(run_eslkit("build", "--src", trees["master"], "--swig", old_swig, "--out", out), 23,
           "SWIG 4 or newer")
    # An interpreter whose include dir has no Python.h (a stand-in that answers the probe).
    fake = tmp_path / "python3.99"
    facts = probe(SYSTEM_PY).as_dict()
    facts.update(include=str(tmp_path / "no-headers"), platinclude=str(tmp_path / "no-headers"), version="3.99")
    import json
    fake.write_text(f"#!/bin/sh\ncat <<'EOF'\n{json.dumps(facts)}\nEOF\n")
    fake.chmod(0o755)
    _fails(run_eslkit("build", "--src", trees["master"], "--python", fake, "--out", out), 24, "Python.h")
    assert "python3.99-dev" in run_eslkit("build", "--src", trees["master"], "--python", fake, "--out", out).stderr
    _fails(run_eslkit("build", "--src", trees["master"], "--python", tmp_path / "nopython", "--out", out), 24,
           "does not exist")
    _fails(run_eslkit("build", "--src", trees["master"], "--check", "nohostport", "--out", out), 20, "HOST:PORT")
    assert {k: checksums(v) for k, v in trees.items()} == digests
    assert not out.exists()


def test_read_only_tree_fails_before_writing(trees, tmp_path):
    root = tmp_path / "ro"
    shutil.copytree(trees["1.10.12c"], root)
    esl = root / "libs" / "esl"
    # make the whole of libs/esl read-only (root ignores modes, so eslkit checks them itself)
    for top, dirs, files in os.walk(esl):
        for name in files:
            os.chmod(Path(top) / name, 0o444)
    for top, dirs, files in os.walk(esl, topdown=False):
        os.chmod(top, 0o555)
    before = checksums(root)
    try:
        proc = run_eslkit("build", "--src", root, "--out", tmp_path / "out", "--python", SYSTEM_PY)
        _fails(proc, 27, "read-only")
        assert checksums(root) == before
        assert not (tmp_path / "out").exists()
    finally:
        for top, dirs, files in os.walk(esl):
            os.chmod(top, 0o755)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the tree to another user")
def test_tree_of_another_user_fails_before_writing(trees, tmp_path):
    root = tmp_path / "theirs"
    shutil.copytree(trees["1.6.20"], root)
    for top, dirs, files in os.walk(root):
        os.chown(top, 65534, 65534)
        for name in files:
            os.chown(Path(top) / name, 65534, 65534)
    before = checksums(root)
    proc = run_eslkit("build", "--src", root, "--out", tmp_path / "out", "--python", SYSTEM_PY)
    _fails(proc, 27, "belongs to another user")
    assert checksums(root) == before
    assert stat.S_IMODE(os.stat(root / "libs" / "esl").st_mode)  # still there, untouched


def test_restore_without_build_is_a_no_op(trees):
    before = checksums(trees["master"])
    proc = run_eslkit("build", "--src", trees["master"], "--restore")
    assert proc.returncode == 0 and "nothing to restore" in proc.stdout
    assert checksums(trees["master"]) == before


def test_wheel_plan_is_abi3_only_with_swig_42(trees, target, tmp_path):
    new_swig = Path(sys.executable).parent / "swig"  # the swig>=4.2 package of the test extras
    if not new_swig.exists():
        missing("the swig>=4.2 package of the test extras is not installed in this venv")
    plan = prepare(trees["master"], python=SYSTEM_PY, wheel=str(tmp_path), swig=str(new_swig))
    assert plan.abi3 and plan.products[1].name == "_ESL.abi3.so"
    wrap = next(s for s in plan.steps if s.name == "g++ esl_wrap.cpp")
    assert wrap.argv[:4] == ("g++", "-fPIC", "-O2", "-DPy_LIMITED_API=0x03070000")
    assert plan.products[0].parent.name == "abi3"
    # --out stays version-specific (an installed abi3 module would lose to an older cpython-3XX one)
    assert not prepare(trees["master"], python=SYSTEM_PY, out=str(tmp_path), swig=str(new_swig)).abi3
    old = prepare(trees["master"], python=SYSTEM_PY, wheel=str(tmp_path), swig="/usr/bin/swig")
    if old.swig.version_tuple < (4, 2):
        assert not old.abi3 and any("abi3" in note for note in old.notes)


def test_diagnoses_of_real_upstream_failures(trees, tmp_path):
    """The failures people meet, produced for real, are recognised with the right fix."""
    import subprocess

    from eslkit.build.diagnose import diagnose

    def output(argv, cwd=None):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd,
                              env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})
        assert proc.returncode != 0
        return proc.stdout + proc.stderr

    esl = trees["1.10.12"] / "libs" / "esl"
    # FreeSWITCH's ESL.i without -module (what every eslkit build did before it passed -module ESL)
    cause, fix = diagnose(output(["swig", "-python", "-c++", f"-I{esl / 'src' / 'include'}", "-o",
                                  str(tmp_path / "w.cpp"), str(esl / "ESL.i")]))
    assert "-module ESL" in cause and "%module" in cause and "-module ESL" in fix
    # swig 4 and -classic
    cause, fix = diagnose(output(["swig", "-classic", "-python", "-c++", "-o", str(tmp_path / "w.cpp"),
                                  str(esl / "ESL.i")]))
    assert "-classic" in cause and "python3/Makefile" in fix
    # the shipped python3/Makefile asks for swig3.0
    work = tmp_path / "python3"
    shutil.copytree(esl / "python3", work)
    shutil.copy2(esl / "ESL.i", tmp_path / "ESL.i")
    (work / "esl_wrap.cpp").unlink()
    cause, fix = diagnose(output(["make", "esl_wrap.cpp"], cwd=work))
    assert "swig3.0" in cause
    # the shipped python-config on Python 3.12+
    py312 = other_python("3.12.1", "3.13.0", "3.12", "3.13")
    cause, fix = diagnose(output([py312, str(esl / "python3" / "python-config"), "--includes"]))
    assert "distutils" in cause and "python-config" in fix
    # a tree moved after configure: the include path is gone
    src = tmp_path / "t.c"
    src.write_text('#include "esl.h"\n')
    cause, fix = diagnose(output(["gcc", "-I/nonexistent/libs/esl/src/include", "-c", str(src), "-o",
                                  str(tmp_path / "t.o")]))
    assert "moved" in cause and "configure" in fix
    # Python.h missing
    src.write_text("#include <Python.h>\n")
    cause, fix = diagnose(output(["gcc", "-c", str(src), "-o", str(tmp_path / "t.o")]))
    assert "Python.h" in cause and "-dev" in fix
    # linking libpython of a Python that has none
    cause, fix = diagnose(output(["g++", "-shared", "-o", str(tmp_path / "x.so"), "-lpython3.6m"]))
    assert "libpython" in cause
    assert diagnose("all fine\n") == (None, None)


def test_probe_answer_is_reused_only_for_the_same_interpreter(tmp_path):
    """An up-to-date run need not start the target Python: the journal's probe is reused
    while the binary and pyvenv.cfg are unchanged; scripts (pyenv shims) are always asked."""
    import subprocess

    from eslkit.build.interpreter import identity

    venv = tmp_path / "venv"
    subprocess.run([SYSTEM_PY, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    exe = str(venv / "bin" / "python")
    real = probe(exe)
    assert real.executable == exe and real.platlib.startswith(str(venv))
    remembered = {"identity": identity(exe), "facts": dict(real.as_dict(), version_full="9.9.9")}
    assert probe(exe, known=remembered).version_full == "9.9.9"  # reused, not asked
    cfg = venv / "pyvenv.cfg"
    os.utime(cfg, ns=(cfg.stat().st_atime_ns, cfg.stat().st_mtime_ns + 10**9))
    assert probe(exe, known=remembered).version_full == real.version_full  # changed: asked again
    shim = tmp_path / "python3"
    shim.write_text(f"#!/bin/sh\nexec {exe} \"$@\"\n")
    shim.chmod(0o755)
    assert identity(str(shim)) is None
    remembered = {"identity": None, "facts": dict(real.as_dict(), version_full="9.9.9")}
    assert probe(str(shim), known=remembered).version_full == real.version_full
