"""`eslkit doctor`: can `eslkit build` work here?  A table of checks with fixes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from eslkit.build.plan import Mode

_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def doctor(
    src: Annotated[Optional[Path], typer.Option("--src", help="FreeSWITCH source tree to check.")] = None,
    python: Annotated[Optional[str], typer.Option("--python", help="Interpreter to build for (default: the active virtualenv's, else python3).")] = None,
    swig: Annotated[Optional[str], typer.Option("--swig", metavar="PATH", help="swig to check (default: swig on PATH).")] = None,
    mode: Annotated[Mode, typer.Option("--mode", help="The --mode the build will be given (auto picks as the build does).")] = Mode.auto,
    wheel: Annotated[Optional[Path], typer.Option("--wheel", metavar="DIR", help="Check for `build --wheel DIR` (default: --install).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", metavar="DIR", help="Check for `build --out DIR` (default: --install).")] = None,
) -> None:
    """Will `eslkit build` work with these options? Checks, with the fix for each failure.

    Checks swig, the compilers, the Python headers and the tree, and rehearses swig and a test extension; exit 1 if any check fails.

    Example: [bold]eslkit doctor --src /usr/local/src/freeswitch --python .venv/bin/python[/]
    """
    from eslkit.build.doctor import FAIL, run_checks

    rows = run_checks(str(src) if src else None, python, swig, mode=mode.value,
                      wheel=str(wheel) if wheel else None, out=str(out) if out else None)
    table = Table(title="eslkit doctor", show_lines=False)
    table.add_column("check", style="bold")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    table.add_column("fix", overflow="fold")
    for row in rows:
        table.add_row(Text(row.name), Text(row.status, style=_STYLE[row.status]), Text(row.detail), Text(row.fix))
    console = Console(highlight=False)
    if not console.is_terminal:
        # Piped or in a file: as wide as the widest row, so that paths and commands stay whole
        # (80 columns split them mid-path); a terminal keeps its own width.
        console = Console(highlight=False, width=max(console.width, Measurement.get(
            console, console.options.update_width(10_000), table).maximum))
    console.print(table)
    failed = [r.name for r in rows if r.status == FAIL]
    if failed:
        Console(stderr=True, highlight=False, soft_wrap=True).print(Text(f"{len(failed)} check(s) failed: {', '.join(failed)}", style="bold red"))
        raise typer.Exit(1)
