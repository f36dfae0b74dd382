"""Build FreeSWITCH's Python 3 ESL binding: tree → plan → run.

    from eslkit.build import prepare
    plan = prepare("/usr/local/src/freeswitch", python="/usr/bin/python3", out="dist/")
    print(plan.steps)            # pure data; eslkit.build.run.execute(plan, ...) does it
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from eslkit.build.interpreter import probe, require_headers
from eslkit.build.journal import Journal
from eslkit.build.plan import BuildPlan, Output, make_plan
from eslkit.build.tools import find_swig
from eslkit.build.tree import inspect_tree
from eslkit.errors import BuildError

__all__ = ["prepare", "BuildPlan"]


def check_options(*, install: bool = False, wheel: Optional[str] = None, out: Optional[str] = None,
                  check: Optional[str] = None) -> None:
    chosen = [name for name, value in (("--install", install), ("--wheel", wheel), ("--out", out)) if value]
    if len(chosen) > 1:
        raise BuildError(f"Give only one of --install, --wheel and --out (got {' and '.join(chosen)}).",
                         fix="Pick where the module should go: --install, --wheel DIR or --out DIR.")
    if check and (":" not in check or not check.rpartition(":")[2].isdigit()):
        raise BuildError(f"--check wants HOST:PORT, got {check!r}.", fix="For example --check 127.0.0.1:8021.")


def choose_output(target, *, wheel: Optional[str] = None, out: Optional[str] = None) -> Output:
    if wheel:
        return Output("wheel", Path(wheel).absolute())
    if out:
        return Output("out", Path(out).absolute())
    return Output("install", Path(target.platlib))  # --install, and the default: `import ESL` should just work


def prepare(src, *, python: Optional[str] = None, mode: str = "auto", install: bool = False,
            wheel: Optional[str] = None, out: Optional[str] = None, swig: Optional[str] = None,
            check: Optional[str] = None, fresh: bool = False) -> BuildPlan:
    """Inspect everything and return the plan; raises a BuildError for bad input.

    ``fresh`` (``--force``): ask the interpreter and swig again instead of
    reusing the journal's answers.  `eslkit doctor` runs the same pieces one by one.
    """
    check_options(install=install, wheel=wheel, out=out, check=check)
    tree = inspect_tree(src)
    # earlier answers, reused while their programs are unchanged
    remembered = {} if fresh else Journal(tree.esl).data
    target = probe(python, known=remembered.get("probe"))
    require_headers(target)
    tools = find_swig(swig, known=remembered.get("swig"))
    output = choose_output(target, wheel=wheel, out=out)
    return make_plan(tree, target, tools, mode=mode, output=output, check=check)
