"""`eslkit doctor`: will `eslkit build` work here, with these options?  Each check with its fix.

Doctor runs the build's own pieces (prepare's inspections, the mode choice,
the write and tool checks) and rehearses the steps that can fail (swig on the
tree's ESL.i, a one-line extension for the target Python: trial.py), so a
failing row carries the very message and fix the build would stop with, and
"doctor ok" means "build ok".  Checks never raise for a user problem: they
come back as rows (ok / warn / fail), so one run shows everything to do.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from eslkit.build import check_options, choose_output
from eslkit.build.install import check_writable_dir
from eslkit.build.interpreter import probe, require_headers
from eslkit.build.plan import choose_mode, make_plan
from eslkit.build.run import check_writable, tools_needed
from eslkit.build.tools import MIN_SWIG, SWIG_ARGS, find_swig, find_tool
from eslkit.build.tree import inspect_tree
from eslkit.build.trial import rehearse_extension, rehearse_swig
from eslkit.errors import EslkitError

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""
    exit_code: int = 0  # what `eslkit build` would exit with (a fail row)


class _Rows(list):
    def attempt(self, name: str, action: Callable, describe: Callable[..., str]):
        """Run ``action``; a row saying what it found, or the build's own error as a fail row."""
        try:
            value = action()
        except EslkitError as err:
            self.append(Check(name, FAIL, str(err), err.fix, err.exit_code))
            return None
        self.append(Check(name, OK, describe(value)))
        return value

    @property
    def failed(self) -> bool:
        return any(row.status == FAIL for row in self)


def _tree_rows(rows: _Rows, src: str, target):
    tree = rows.attempt("FreeSWITCH tree", lambda: inspect_tree(src),
                        lambda t: f"{t.root} (FreeSWITCH {t.version or 'version unknown'})")
    if tree is None:
        return None
    layout = ", ".join(f"{b}/" for b in tree.bindings) or "no python bindings folder"
    rows.append(Check("ESL bindings", OK if "python3" in tree.bindings else WARN, layout,
                      "" if "python3" in tree.bindings else
                      "This version predates python3/; eslkit build creates it (py3mod) or builds standalone."))
    if not tree.configured:
        rows.append(Check("configured", WARN, "no libs/esl/Makefile or libtool: not configured",
                          "Fine for --mode standalone (the auto default here); for py3mod run ./bootstrap.sh && ./configure."))
    elif tree.moved:
        rows.append(Check("configured", WARN, f"configured in {tree.switch_srcdir}, now at {tree.root}: the "
                          "Makefile's paths point there, so --mode auto builds standalone",
                          "For --mode py3mod re-run ./configure here; standalone needs nothing."))
    else:
        rows.append(Check("configured", OK, f"yes (switch_srcdir = {tree.switch_srcdir})"
                          + ("" if tree.has_py3mod_target else "; no py3mod target (eslkit build adds one)")))
        recorded = tree.recorded_python3
        if recorded:
            same = target is not None and (recorded == target.executable or
                                           (Path(recorded).exists() and Path(recorded).resolve() == Path(target.executable).resolve()))
            rows.append(Check("PYTHON3 in Makefile", OK if same else WARN, f"configure recorded {recorded}"
                              + ("" if same else f"; the target is {target.executable if target else 'unknown'}"),
                              "" if same else "eslkit build passes PYTHON3=<target> to make, so this is harmless; "
                              "plain `make py3mod` would build for the recorded one."))
    return tree


def _import_esl_row(target) -> Check:
    """Which ESL module `import ESL` gives the target now: the compiled one, eslkit's pure one, none."""
    from eslkit.build.pure import find_esl

    try:
        found, _ = find_esl(target)
    except EslkitError as err:
        return Check("import ESL", WARN, str(err), err.fix)
    if found.kind in ("compiled", "pure"):
        return Check("import ESL", OK, found.describe())
    if found.kind == "none":
        return Check("import ESL", WARN, found.describe(),
                     "eslkit build (with --src) makes the compiled module; eslkit build --pure gives eslkit's "
                     "pure-Python one, no compiler needed.")
    return Check("import ESL", WARN, found.describe(), "It is what `import ESL` loads: rename it if it is "
                 "not meant to be FreeSWITCH's module.")


def run_checks(src: Optional[str] = None, python: Optional[str] = None, swig: Optional[str] = None,
               mode: str = "auto", wheel: Optional[str] = None, out: Optional[str] = None) -> list:
    """The rows for `eslkit build` with the same --src, --python, --swig, --mode and output."""
    rows = _Rows()
    try:
        check_options(wheel=wheel, out=out)
    except EslkitError as err:
        rows.append(Check("options", FAIL, str(err), err.fix, err.exit_code))
    swig_tool = rows.attempt("swig >= %d" % MIN_SWIG[0], lambda: find_swig(swig), lambda s: f"{s.path} ({s.version})")
    target = rows.attempt("target Python", lambda: probe(python),
                          lambda t: f"{t.executable} ({t.version_full}, {t.module_name})")
    headers = target and rows.attempt("Python.h", lambda: require_headers(target) or True,
                                      lambda _: f"{target.include}/Python.h")
    tree = _tree_rows(rows, src, target) if src else None
    if not src:
        rows.append(Check("FreeSWITCH tree", WARN, "not checked (no --src)", "Add --src PATH to check a tree."))
    chosen = rows.attempt("build mode", lambda: choose_mode(tree, mode), lambda m: f"{m[0]}: {m[1]}") if tree else None
    needed = tools_needed(chosen[0]) if chosen else ("gcc", "g++")
    for tool, purpose in (("gcc", "compiles libesl"), ("g++", "compiles esl_oop and the wrapper"),
                          ("make", "py3mod mode only")):
        if tool in needed:
            rows.attempt(tool, lambda tool=tool: find_tool(tool), lambda path, p=purpose: f"{path} ({p})")
        else:
            path = shutil.which(tool)
            rows.append(Check(tool, OK if path else WARN, f"{path or 'not found'} ({purpose}; not needed here)",
                              "" if path else f"apt-get install {tool} (only needed for --mode py3mod)"))
    if not target:
        return list(rows)
    rows.append(_import_esl_row(target))
    output = choose_output(target, wheel=wheel, out=out)
    if tree and chosen and swig_tool and headers:
        plan = make_plan(tree, target, swig_tool, mode=chosen[0], output=output)
        rows.attempt("write permission", lambda: check_writable(plan),
                     lambda _: f"{tree.esl} and {output.dest} are writable")
    else:
        plan = None
        rows.attempt("install location" if output.kind == "install" else "output",
                     lambda: check_writable_dir(output.dest, "the module into"),
                     lambda _: f"{output.dest}" + (" (virtualenv)" if target.in_venv else ""))
    # Rehearsals: only where everything they need is there (else their failure says nothing new).
    if plan is not None and not rows.failed:
        rows.attempt("swig on ESL.i", lambda: rehearse_swig(tree, swig_tool),
                     lambda made: f"swig {' '.join(SWIG_ARGS)} made {made}")
    if headers and shutil.which("g++"):
        rows.attempt(f"extension for Python {target.version}",
                     lambda: rehearse_extension(target, abi3=bool(plan and plan.abi3),
                                                stands_for="make py3mod" if plan and plan.mode == "py3mod"
                                                else "g++ esl_wrap.cpp"),
                     lambda name: f"compiled, linked and imported {name}")
    return list(rows)
