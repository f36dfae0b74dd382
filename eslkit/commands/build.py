"""`eslkit build`: the Python 3 ESL module from a FreeSWITCH source tree."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.text import Text

from eslkit.build.plan import Mode
from eslkit.errors import BuildStepFailed

_OUT = "Output (pick one; default --install)"


def build(
    # Optional + checked below, not a bare required option: with postponed annotations,
    # typer on Python 3.9 turns a required Annotated option into an argument.
    src: Annotated[Optional[Path], typer.Option("--src", help="FreeSWITCH source tree (holds libs/esl). Required.")] = None,
    python: Annotated[Optional[str], typer.Option("--python", help="Interpreter to build for (default: the active virtualenv's, else python3).")] = None,
    mode: Annotated[Mode, typer.Option("--mode", help="py3mod (configured trees, make), standalone (any tree, gcc/g++), or auto.")] = Mode.auto,
    install: Annotated[bool, typer.Option("--install", help="Install ESL.py and _ESL into the interpreter's site-packages.", rich_help_panel=_OUT)] = False,
    wheel: Annotated[Optional[Path], typer.Option("--wheel", metavar="DIR", help="Write an installable wheel into DIR.", rich_help_panel=_OUT)] = None,
    out: Annotated[Optional[Path], typer.Option("--out", metavar="DIR", help="Just copy ESL.py and _ESL into DIR.", rich_help_panel=_OUT)] = None,
    swig: Annotated[Optional[str], typer.Option("--swig", metavar="PATH", help="swig >= 4 to use (default: swig on PATH).")] = None,
    check: Annotated[Optional[str], typer.Option("--check", metavar="HOST:PORT", help="After building, connect and run `api status` (password: ESL_PASSWORD, default ClueCon).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan with diffs; change nothing.")] = False,
    restore: Annotated[bool, typer.Option("--restore", help="Put back everything earlier builds changed in the tree.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when nothing changed (and ask the interpreter and swig again).")] = False,
    log: Annotated[Optional[Path], typer.Option("--log", metavar="FILE", help="Append every command and its full output to FILE.")] = None,
) -> None:
    """Build FreeSWITCH's Python 3 ESL binding (ESL.py + _ESL) with today's swig and compilers.

    Example: [bold]eslkit build --src /usr/local/src/freeswitch --python .venv/bin/python --install[/]
    """
    from eslkit.build import prepare
    from eslkit.build.report import Progress, failure_renderable, plan_renderable
    from eslkit.build.run import Log, execute
    from eslkit.build.run import restore as restore_tree
    from eslkit.build.tree import inspect_tree

    if src is None:
        raise typer.BadParameter("is required: the FreeSWITCH source tree, e.g. --src /usr/local/src/freeswitch",
                                 param_hint="'--src'")
    console = Console(highlight=False)
    if restore:
        done = restore_tree(inspect_tree(src).esl)
        for line in done:
            console.print(Text(line))
        console.print(Text("restored: the tree is as it was before eslkit build" if done
                           else "nothing to restore: eslkit has not changed this tree", style="green"))
        return
    plan = prepare(src, python=python, mode=mode.value, install=install,
                   wheel=str(wheel) if wheel else None, out=str(out) if out else None, swig=swig, check=check,
                   fresh=force)
    if dry_run:
        console.print(plan_renderable(plan))
        console.print(Text("dry run: nothing was changed", style="bold"))
        return
    console.print(Text(f"building with {plan.mode}: {plan.reason}", style="bold"))
    progress = Progress(console)
    logfile = Log(log)
    try:
        result = execute(plan, progress, logfile, force=force)
    except BuildStepFailed as err:
        if getattr(err, "tail", None):
            Console(stderr=True, highlight=False).print(failure_renderable(err))
        raise
    except KeyboardInterrupt:
        console.print(Text("interrupted: the tree is consistent; rerun the same command to finish, "
                           "or eslkit build --restore to undo", style="yellow"))
        raise typer.Exit(130) from None
    finally:
        logfile.close()
    progress.finished(result)
