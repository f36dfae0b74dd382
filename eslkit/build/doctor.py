"""`eslkit doctor`: every precondition of `eslkit build`, each with its fix.

Checks never raise for a user problem: they come back as rows (ok / warn /
fail) so one run shows everything that needs doing.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from eslkit.build.interpreter import probe
from eslkit.build.tools import MIN_SWIG, find_swig
from eslkit.build.tree import inspect_tree
from eslkit.errors import EslkitError

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def _swig(swig: Optional[str]) -> Check:
    try:
        found = find_swig(swig)
    except EslkitError as err:
        return Check("swig >= %d" % MIN_SWIG[0], FAIL, str(err), err.fix)
    return Check("swig >= %d" % MIN_SWIG[0], OK, f"{found.path} ({found.version})")


def _compiler(name: str, purpose: str) -> Check:
    path = shutil.which(name)
    if path:
        return Check(name, OK, f"{path} ({purpose})")
    return Check(name, FAIL, f"{name} not found ({purpose})", "apt-get install build-essential (or dnf install gcc gcc-c++)")


def _tree_checks(src: str, target) -> list:
    from eslkit.build.run import why_not_writable  # the same test the build applies

    try:
        tree = inspect_tree(src)
    except EslkitError as err:
        return [Check("FreeSWITCH tree", FAIL, str(err), err.fix)]
    rows = [Check("FreeSWITCH tree", OK, f"{tree.root} (FreeSWITCH {tree.version or 'version unknown'})")]
    layout = ", ".join(f"{b}/" for b in tree.bindings) or "no python bindings folder"
    rows.append(Check("ESL bindings", OK if "python3" in tree.bindings else WARN, layout,
                      "" if "python3" in tree.bindings else
                      "This version predates python3/; eslkit build creates it (py3mod) or builds standalone."))
    if not tree.configured:
        rows.append(Check("configured", WARN, "no libs/esl/Makefile or libtool: not configured",
                          "Fine for --mode standalone (the auto default here); for py3mod run ./bootstrap.sh && ./configure."))
    elif tree.moved:
        rows.append(Check("configured", FAIL, f"configured in {tree.switch_srcdir}, now at {tree.root}",
                          "Re-run ./configure here, or use --mode standalone (auto does)."))
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
    why = why_not_writable(tree.esl)
    rows.append(Check("write permission", FAIL if why else OK, why or f"{tree.esl} is writable",
                      "Run as the tree's owner, chmod u+w, or copy the tree somewhere writable." if why else ""))
    return rows


def run_checks(src: Optional[str] = None, python: Optional[str] = None, swig: Optional[str] = None) -> list:
    rows = [_swig(swig), _compiler("gcc", "compiles libesl"), _compiler("g++", "compiles esl_oop and the wrapper"),
            _compiler("make", "py3mod mode only")]
    if rows[-1].status == FAIL:
        rows[-1] = Check("make", WARN, rows[-1].detail, "apt-get install make (only needed for --mode py3mod)")
    target = None
    try:
        target = probe(python)
        rows.append(Check("target Python", OK, f"{target.executable} ({target.version_full}, {target.module_name})"))
        if target.has_headers:
            rows.append(Check("Python.h", OK, f"{target.include}/Python.h"))
        else:
            rows.append(Check("Python.h", FAIL, f"missing in {target.include}",
                              f"apt-get install {target.dev_package} (or dnf install python3-devel)"))
        from eslkit.build.run import why_not_writable

        why = why_not_writable(Path(target.platlib)) if Path(target.platlib).exists() else None
        rows.append(Check("install location", WARN if why else OK,
                          why or f"{target.platlib}" + (" (virtualenv)" if target.in_venv else ""),
                          "--install would fail: use a virtualenv, or --wheel DIR / --out DIR." if why else ""))
    except EslkitError as err:
        rows.append(Check("target Python", FAIL, str(err), err.fix))
    if src:
        rows.extend(_tree_checks(src, target))
    else:
        rows.append(Check("FreeSWITCH tree", WARN, "not checked (no --src)", "Add --src PATH to check a tree."))
    return rows
