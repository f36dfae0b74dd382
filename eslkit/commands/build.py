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
    pure: Annotated[bool, typer.Option("--pure", help="No compiler, no tree: make `import ESL` give eslkit's pure-Python ESL module (eslkit.ESL); with --install (default) or --out DIR, --check, --dry-run, --restore. --python defaults to the interpreter eslkit runs in.")] = False,
) -> None:
    """Build FreeSWITCH's Python 3 ESL binding (ESL.py + _ESL) with today's swig and compilers.

    Example: [bold]eslkit build --src /usr/local/src/freeswitch --python .venv/bin/python --install[/]

    Without compiling: [bold]eslkit build --pure[/]  (then `import ESL` is eslkit's pure-Python module)
    """
    if pure:
        if src or swig or wheel or log or mode != Mode.auto:
            given = [name for name, value in (("--src", src), ("--swig", swig), ("--wheel", wheel), ("--log", log),
                                              ("--mode", mode != Mode.auto)) if value]
            raise typer.BadParameter(f"{', '.join(given)} has no use there: --pure compiles nothing "
                                     "(it writes ESL.py with --install or --out DIR)", param_hint="'--pure'")
        _pure(python, install=install, out=out, check=check, dry_run=dry_run, restore=restore)
        return
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
        console.print(plan_renderable(plan), crop=False)
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


def _pure(python: Optional[str], *, install: bool, out: Optional[Path], check: Optional[str], dry_run: bool,
          restore: bool) -> None:
    """`eslkit build --pure`: see eslkit/build/pure.py."""
    import time

    from eslkit.build import pure
    from eslkit.build.report import Progress

    console = Console(highlight=False)
    if restore:
        done = pure.restore(python, out=str(out) if out else None)
        for line in done:
            console.print(Text(line))
        console.print(Text("restored: `import ESL` no longer gives eslkit's module there" if done
                           else "nothing to restore: eslkit build --pure has not written ESL.py there", style="green"))
        return
    plan = pure.prepare(python, install=install, out=str(out) if out else None, check=check)
    console.print(Text(f"before: `import ESL` in Python {plan.target.version} ({plan.target.executable}) gives "
                       f"{plan.found.describe()}"))
    if dry_run:
        console.print(Text(("up to date: " if plan.up_to_date else "would write ") + plan.describe()))
        console.print(Text("dry run: nothing was changed", style="bold"))
        return
    progress = Progress(console)
    started, up_to_date = time.monotonic(), plan.up_to_date
    pure.write(plan)
    progress.step_done(("up to date: " if up_to_date else "wrote ") + plan.describe(), time.monotonic() - started)
    started = time.monotonic()
    verified = pure.check(plan)
    progress.step_done(f"import ESL in Python {plan.target.version}: {verified['file']}, no _ESL"
                       + (f"; api status via {check}" if check else ""), time.monotonic() - started)
    if verified.get("status"):
        from eslkit.safe_text import visible

        for line in verified["status"].strip().splitlines():  # from the switch: shown literally
            console.print(Text(visible(line, max_len=200)))
