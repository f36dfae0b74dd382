"""Compute a BuildPlan: pure data saying what `eslkit build` will do.

Nothing here writes.  ``--dry-run`` prints the plan, the tests assert its
argv, and ``run.py`` executes it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Optional

from eslkit.build import templates
from eslkit.build.interpreter import Target
from eslkit.build.tools import ABI3_SWIG, SWIG_ARGS, Swig
from eslkit.build.tree import Tree
from eslkit.errors import BuildError, TreeMoved, TreeNotConfigured

STATE_DIR = ".eslkit"  # inside libs/esl: backups, journal, standalone objects
MODES = ("auto", "py3mod", "standalone")


class Mode(str, Enum):
    """--mode of `eslkit build` and `eslkit doctor`."""

    auto = "auto"
    py3mod = "py3mod"
    standalone = "standalone"

CFLAGS = ("-fPIC", "-O2")


@dataclass(frozen=True)
class FileChange:
    """A file in the tree to write (rendered or patched); the original is backed up."""

    path: Path
    content: str
    reason: str
    mode: Optional[int] = None

    def current(self) -> Optional[str]:
        try:
            return self.path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None

    def diff(self, esl: Path) -> str:
        import difflib  # only --dry-run shows diffs

        rel = self.path.relative_to(esl).as_posix()
        old = self.current()
        lines = difflib.unified_diff(
            (old or "").splitlines(keepends=True), self.content.splitlines(keepends=True),
            fromfile=f"a/{rel}" if old is not None else "/dev/null", tofile=f"b/{rel}",
        )
        return "".join(lines)


@dataclass(frozen=True)
class Step:
    name: str
    argv: tuple
    cwd: Path
    why: str = ""
    env: tuple = ()  # extra (NAME, value) pairs; never secrets
    group: str = ""  # consecutive steps of one group may run at the same time
    unknown_writes: bool = False  # may change files of the tree nobody can name in advance (make)


@dataclass(frozen=True)
class Output:
    kind: str       # "install" | "wheel" | "out"
    dest: Path

    def describe(self) -> str:
        return {
            "install": f"install ESL.py and the module into {self.dest}",
            "wheel": f"write a wheel into {self.dest}",
            "out": f"copy ESL.py and the module into {self.dest}",
        }[self.kind]


@dataclass(frozen=True)
class BuildPlan:
    tree: Tree
    target: Target
    swig: Swig
    mode: str
    reason: str
    files: tuple
    steps: tuple
    overwrites: tuple          # files the steps overwrite (backed up first)
    products: tuple            # (ESL.py, _ESL<EXT_SUFFIX>) after the steps
    output: Output
    check: Optional[str] = None
    notes: tuple = field(default=())

    @property
    def abi3(self) -> bool:
        return self.products[1].name == ABI3_MODULE

    @property
    def state_dir(self) -> Path:
        return self.tree.esl / STATE_DIR

    def fingerprint(self) -> str:
        """Everything that decides the result; cheap (stat calls, no hashing of sources)."""
        esl = self.tree.esl
        inputs = sorted(
            (p.relative_to(esl).as_posix(), p.stat().st_mtime_ns, p.stat().st_size)
            for pattern in ("ESL.i", "src/*.c", "src/*.cpp", "src/include/*.h")
            for p in esl.glob(pattern)
        )
        blob = json.dumps([
            inputs, self.target.as_dict(), self.swig.path, self.swig.version, self.mode,
            [str(f.path) + f.content for f in self.files], [list(s.argv) for s in self.steps],
            self.output.kind, str(self.output.dest), templates.fingerprint(),
        ])
        return hashlib.sha256(blob.encode()).hexdigest()


def choose_mode(tree: Tree, requested: str) -> tuple:
    """(mode, reason).  py3mod needs a configured tree that has not moved."""
    if requested not in MODES:
        raise BuildError(f"Unknown --mode {requested!r}.", fix="Use --mode auto, py3mod or standalone.")
    if requested == "standalone":
        return "standalone", "--mode standalone: libesl is compiled directly with gcc/g++, make is not used"
    if requested == "py3mod":
        if not tree.configured:
            raise TreeNotConfigured(
                f"--mode py3mod needs a configured tree, and {tree.root} is not "
                f"(no libs/esl/Makefile{'' if (tree.root / 'libtool').exists() else ' or libtool'}).",
                fix="Run ./bootstrap.sh && ./configure in the tree, or use --mode standalone (needs no configure).",
            )
        if tree.moved:
            raise TreeMoved(
                f"The tree was configured in {tree.switch_srcdir} and has moved to {tree.root}; "
                "the configured Makefile's absolute paths point at the old place.",
            )
        return "py3mod", "--mode py3mod: make py3mod in the configured tree"
    if tree.configured and not tree.moved:
        return "py3mod", "the tree is configured (libs/esl/Makefile and libtool exist), so `make py3mod` is used"
    if tree.configured and tree.moved:
        return "standalone", (f"the tree was configured in {tree.switch_srcdir} and then moved, so its "
                              "Makefile is unusable; libesl is compiled directly instead")
    return "standalone", "the tree is not configured (no libs/esl/Makefile), so libesl is compiled directly"


ABI3_MODULE = "_ESL.abi3.so"
LIMITED_API = "0x03070000"  # abi3 modules load in CPython 3.7 and every later version


def abi3_possible(target: Target, swig: Swig) -> bool:
    """swig >= 4.2 wraps against the limited API; free-threaded builds have none."""
    return (swig.version_tuple >= ABI3_SWIG and target.implementation == "cpython"
            and tuple(int(p) for p in target.version.split(".")) >= (3, 7)
            and not re.match(r"cpython-\d+t", target.soabi))


def build_dir(tree: Tree, target: Target, abi3: bool = False) -> Path:
    tag = "abi3" if abi3 else re.sub(r"[^A-Za-z0-9_.-]", "_", target.soabi or target.version)
    return tree.esl / STATE_DIR / "build" / tag


def swig_step(tree: Tree, swig: Swig, out: Path) -> Step:
    """swig on the tree's ESL.i, writing esl_wrap.cpp and ESL.py into ``out``."""
    return Step("swig", (swig.path, *SWIG_ARGS, f"-I{tree.include_dir}", "-outdir", str(out),
                         "-o", str(out / "esl_wrap.cpp"), str(tree.esl / "ESL.i")),
                out, "regenerate the wrapper and ESL.py with swig >= 4 (the shipped ones need `imp`)")


def python_includes(target: Target) -> list:
    return [f"-I{target.include}"] + ([f"-I{target.platinclude}"] if target.platinclude != target.include else [])


def wrapper_flags(abi3: bool) -> tuple:
    """How the wrapper (and doctor's test extension) is compiled, besides the include dirs."""
    return (*CFLAGS, *((f"-DPy_LIMITED_API={LIMITED_API}",) if abi3 else ()))


def link_argv(module: Path, objects: list) -> tuple:
    return ("g++", "-shared", "-o", str(module), *objects, "-lpthread", "-lm")


def standalone_steps(tree: Tree, target: Target, swig: Swig, abi3: bool = False) -> tuple:
    esl, inc, out = tree.esl, tree.include_dir, build_dir(tree, target, abi3)
    module = ABI3_MODULE if abi3 else target.module_name
    steps = [swig_step(tree, swig, out)]
    objects = []
    for rel in tree.c_sources:
        obj = out / (Path(rel).stem + ".o")
        steps.append(Step(f"gcc {Path(rel).name}", ("gcc", *CFLAGS, f"-I{inc}", "-c", str(esl / rel), "-o", str(obj)),
                          out, "compile libesl", group="compile"))
        objects.append(str(obj))
    oop = out / "esl_oop.o"
    steps.append(Step("g++ esl_oop.cpp", ("g++", *CFLAGS, f"-I{inc}", "-c", str(esl / "src" / "esl_oop.cpp"),
                                          "-o", str(oop)), out, "compile the ESLconnection classes", group="compile"))
    objects.append(str(oop))
    wrap = out / "esl_wrap.o"
    steps.append(Step("g++ esl_wrap.cpp", ("g++", *wrapper_flags(abi3), f"-I{inc}", *python_includes(target), "-c",
                                           str(out / "esl_wrap.cpp"), "-o", str(wrap)), out,
                      "compile the wrapper for the stable ABI (CPython >= 3.7)" if abi3
                      else f"compile the wrapper for Python {target.version}", group="compile"))
    objects.append(str(wrap))
    steps.append(Step(f"link {module}", link_argv(out / module, objects),
                      out, "link without libpython: the interpreter provides its symbols"))
    return tuple(steps)


def py3mod_parts(tree: Tree, target: Target, swig: Swig) -> tuple:
    """(files, steps, overwrites) of the make py3mod route."""
    esl, py3 = tree.esl, tree.esl / "python3"
    files = [
        FileChange(py3 / "python-config", templates.render("python-config.j2"),
                   "sysconfig instead of distutils (gone in Python 3.12); no -lpython", 0o755),
        FileChange(py3 / "Makefile", templates.render("python3-Makefile.j2"),
                   "swig >= 4 without -classic, module named by EXT_SUFFIX, no libpython"),
    ]
    current = (esl / "Makefile").read_text(encoding="utf-8", errors="replace")
    if templates.MARKER in current:  # added by an earlier run: keep it, so the plan stays the same
        files.append(FileChange(esl / "Makefile", current, "add the py3mod target this FreeSWITCH version lacks"))
    elif not tree.has_py3mod_target:
        original = current if current.endswith("\n") else current + "\n"
        files.append(FileChange(esl / "Makefile", original + templates.render("py3mod-target.mk.j2"),
                                "add the py3mod target this FreeSWITCH version lacks"))
    steps = (
        Step("swig", (swig.path, *SWIG_ARGS, "-I../src/include", "-o", "esl_wrap.cpp", "../ESL.i"), py3,
             "regenerate the wrapper and ESL.py with swig >= 4 (the shipped ones need `imp`)"),
        Step("make py3mod", ("make", "py3mod", f"PYTHON3={target.executable}", f"SWIG={swig.path}"), esl,
             f"build libesl and {target.module_name} with the tree's configured flags", unknown_writes=True),
    )
    overwrites = (py3 / "esl_wrap.cpp", py3 / "ESL.py")
    return tuple(files), steps, overwrites


def make_plan(tree: Tree, target: Target, swig: Swig, *, mode: str = "auto", output: Output,
              check: Optional[str] = None) -> BuildPlan:
    mode, reason = choose_mode(tree, mode)
    notes = []
    if tree.recorded_python3 and mode == "py3mod" and tree.recorded_python3 != target.executable:
        notes.append(f"configure recorded PYTHON3={tree.recorded_python3}; "
                     f"make is given PYTHON3={target.executable} instead")
    # abi3 only for wheels: an installed _ESL.abi3.so would lose to an older
    # _ESL.cpython-3XX.so beside it (the import system prefers EXT_SUFFIX).
    abi3 = output.kind == "wheel" and mode == "standalone" and abi3_possible(target, swig)
    if output.kind == "wheel" and not abi3:
        notes.append("the wheel is for Python " + target.version + " only; an abi3 wheel (any CPython >= 3.7) "
                     "needs swig >= 4.2 (pip install swig) and --mode standalone")
    if mode == "py3mod":
        files, steps, overwrites = py3mod_parts(tree, target, swig)
        where = tree.esl / "python3"
    else:
        files, steps, overwrites = (), standalone_steps(tree, target, swig, abi3), ()
        where = build_dir(tree, target, abi3)
    return BuildPlan(
        tree=tree, target=target, swig=swig, mode=mode, reason=reason, files=files, steps=steps,
        overwrites=overwrites, products=(where / "ESL.py", where / (ABI3_MODULE if abi3 else target.module_name)),
        output=output, check=check, notes=tuple(notes),
    )
