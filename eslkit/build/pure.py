"""`eslkit build --pure`: `import ESL` gives eslkit's pure-Python ESL module — no swig, no
compiler, no FreeSWITCH tree.

What it delivers is one small ``ESL.py`` that hands over `eslkit.ESL` (docs/esl.md), put
where the compiled pair would go — the target's site-packages (``--install``, the
default) or ``--out DIR`` — and checked as the compiled build is (install.verify: it is
imported in the target interpreter, the file imported is the one written, ``--check``
runs ``api status``).  ``--restore`` takes it away again.

It never shadows a compiled module silently: when the destination holds another
``ESL.py``, or (for ``--install``) the target already imports an ESL module from
elsewhere on its path, it stops and names it (EslModuleInTheWay).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from eslkit import __version__
from eslkit.build import check_options, choose_output
from eslkit.build.install import atomic_write, check_writable_dir, target_env, verify
from eslkit.build.interpreter import Target, probe
from eslkit.build.plan import Output
from eslkit.errors import BuildError, EslkitNotInTarget, EslModuleInTheWay

MARK = "Written by `eslkit build --pure`"


def shim() -> str:
    """The ESL.py that makes `import ESL` eslkit's module."""
    return (
        '"""FreeSWITCH\'s ESL module, pure Python: `import ESL` gives eslkit.ESL (see eslkit\'s docs/esl.md).\n'
        "\n"
        f"{MARK} (eslkit {__version__}); `eslkit build --pure --restore` removes it.\n"
        '"""\n'
        "from eslkit.ESL import *  # noqa: F401,F403\n"
        "from eslkit.ESL import __all__  # noqa: F401\n"
    )


@dataclass(frozen=True)
class FoundEsl:
    """What `import ESL` loads in an interpreter."""

    file: Optional[str]
    kind: str  # "none" | "pure" | "compiled" | "other"
    companion: Optional[str] = None  # the _ESL module beside a compiled ESL.py

    def describe(self) -> str:
        if self.kind == "none":
            return "nothing (`import ESL` fails)"
        if self.kind == "pure":
            return f"eslkit's pure-Python module (eslkit.ESL), through {self.file}"
        if self.kind == "compiled":
            return f"the compiled module (SWIG): {self.file} with {self.companion}"
        return f"a module named ESL that is neither eslkit's nor a compiled one: {self.file}"


_FIND = r"""
import importlib.util, json, os, sys
where = os.environ.get("ESLKIT_VERIFY_PATH")
if where:
    sys.path.insert(0, where)
spec = importlib.util.find_spec("ESL")  # finds, does not run
out = {"file": spec.origin if spec is not None else None}
if out["file"] and os.path.exists(out["file"]):
    folder = os.path.dirname(out["file"])
    out["companions"] = sorted(n for n in os.listdir(folder)
                               if n.startswith("_ESL.") and n.endswith((".so", ".pyd")))
    with open(out["file"], "rb") as fh:
        out["head"] = fh.read(4096).decode("utf-8", "replace")
try:
    import eslkit.ESL
    out["eslkit"] = True
except Exception:
    out["eslkit"] = False
print("ESLKIT-FIND " + json.dumps(out))
"""


def find_esl(target: Target, where: Optional[Path] = None) -> tuple[FoundEsl, bool]:
    """(what `import ESL` loads in ``target`` — from ``where`` first if given —, whether it can
    import eslkit).  Nothing is imported but eslkit: ESL.py is only found and read."""
    proc = subprocess.run([target.executable, "-c", _FIND], capture_output=True, text=True, timeout=60,
                          env=target_env(where), cwd=tempfile.gettempdir())
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("ESLKIT-FIND ")), None)
    if proc.returncode != 0 or line is None:
        raise BuildError(f"Cannot ask {target.executable} what `import ESL` gives: "
                         f"{(proc.stderr or proc.stdout).strip()[-300:]}")
    out = json.loads(line[len("ESLKIT-FIND "):])
    file, companions = out["file"], out.get("companions") or []
    if file is None:
        found = FoundEsl(None, "none")
    elif MARK in out.get("head", ""):
        found = FoundEsl(file, "pure")
    elif companions and "_ESL" in out.get("head", ""):
        found = FoundEsl(file, "compiled", companions[0])
    else:
        found = FoundEsl(file, "other")
    return found, out["eslkit"]


@dataclass(frozen=True)
class PurePlan:
    target: Target
    output: Output
    found: FoundEsl  # what `import ESL` gives the target before anything is written
    check: Optional[str] = None

    @property
    def path(self) -> Path:
        return self.output.dest / "ESL.py"

    @property
    def up_to_date(self) -> bool:
        try:
            return self.path.read_text(encoding="utf-8") == shim()
        except OSError:
            return False

    def describe(self) -> str:
        where = {"install": "site-packages, ", "out": ""}[self.output.kind]
        return f"ESL.py in {where}{self.output.dest} (`import ESL` gives eslkit.ESL)"


def prepare(python: Optional[str] = None, *, install: bool = False, out: Optional[str] = None,
            wheel: Optional[str] = None, check: Optional[str] = None) -> PurePlan:
    """Inspect everything and return what --pure would do; raises for bad input, and where
    another ESL module is in the way."""
    check_options(install=install, wheel=wheel, out=out, check=check)
    if wheel:
        raise BuildError("--pure writes one small ESL.py, not a wheel.",
                         fix="Use --pure --install (site-packages) or --pure --out DIR.")
    target = probe(python or sys.executable)
    output = choose_output(target, out=out)
    check_writable_dir(output.dest, "ESL.py into" if output.kind == "out" else "into site-packages")
    found, has_eslkit = find_esl(target)
    if not has_eslkit:
        raise EslkitNotInTarget(f"Python {target.version} ({target.executable}) cannot import eslkit, "
                                "which the pure ESL module is part of.",
                                fix=f"{target.executable} -m pip install eslkit, or leave out --python "
                                    "(the default is the interpreter eslkit runs in).")
    plan = PurePlan(target, output, found, check)
    _in_the_way(plan)
    return plan


def _in_the_way(plan: PurePlan) -> None:
    path, found = plan.path, plan.found
    if path.exists() and not plan.up_to_date:
        text = path.read_text(encoding="utf-8", errors="replace")
        if MARK not in text:
            companions = sorted(p.name for p in path.parent.glob("_ESL.*") if p.suffix in (".so", ".pyd"))
            what = f"the compiled module's ESL.py (with {companions[0]})" if companions and "_ESL" in text \
                else "an ESL.py eslkit did not write"
            raise EslModuleInTheWay(
                f"{path} is {what}: eslkit build --pure will not replace it.",
                fix=f"Remove {path}{' and ' + ', '.join(companions) if companions else ''} (pip uninstall "
                    "freeswitch-esl if a wheel installed it) and run again; or use --out DIR elsewhere; "
                    "new code can use `from eslkit import ESL` with no ESL.py at all.")
    if plan.output.kind == "install" and found.kind != "none" and Path(found.file).resolve() != path.resolve():
        raise EslModuleInTheWay(
            f"Python {plan.target.version} already imports ESL from {found.file} ({found.describe()}); "
            f"an ESL.py in {plan.output.dest} would hide it or be hidden by it.",
            fix=f"Keep it and use `from eslkit import ESL` in new code; or remove {found.file} "
                "(and the _ESL module beside it) and run again; or use --pure --out DIR.")


def write(plan: PurePlan) -> None:
    """Write ESL.py (write-to-temp + rename), unless it is already there."""
    if not plan.up_to_date:
        atomic_write(plan.path, shim().encode("utf-8"), 0o644)


def check(plan: PurePlan) -> dict:
    """`import ESL` in the target gives the ESL.py written (and --check's `api status`)."""
    return verify(plan.target, plan.output.dest if plan.output.kind == "out" else None, plan.check,
                  expect=plan.path)


def restore(python: Optional[str] = None, *, out: Optional[str] = None) -> list:
    """Remove the ESL.py --pure wrote (and only that); what was done, for the user."""
    target = probe(python or sys.executable)
    path = choose_output(target, out=out).dest / "ESL.py"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    if MARK not in text:
        raise EslModuleInTheWay(f"{path} was not written by eslkit build --pure: left as it is.",
                                fix="Nothing to undo there; remove it yourself if you no longer need it.")
    path.unlink()
    cache = path.parent / "__pycache__"
    for compiled in cache.glob("ESL.*.pyc") if cache.exists() else ():
        compiled.unlink()
    return [f"removed {path}"]
