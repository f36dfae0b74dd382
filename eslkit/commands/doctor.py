"""`eslkit doctor`: can `eslkit build` work here?  A table of checks with fixes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def doctor(
    src: Annotated[Optional[Path], typer.Option("--src", help="FreeSWITCH source tree to check.")] = None,
    python: Annotated[Optional[str], typer.Option("--python", help="Interpreter to build for (default: the active virtualenv's, else python3).")] = None,
    swig: Annotated[Optional[str], typer.Option("--swig", metavar="PATH", help="swig to check (default: swig on PATH).")] = None,
) -> None:
    """Check swig, compilers, Python headers and a FreeSWITCH tree for `eslkit build`; exit 1 if any check fails.

    Example: [bold]eslkit doctor --src /usr/local/src/freeswitch --python .venv/bin/python[/]
    """
    from eslkit.build.doctor import FAIL, run_checks

    rows = run_checks(str(src) if src else None, python, swig)
    table = Table(title="eslkit doctor", show_lines=False)
    table.add_column("check", style="bold")
    table.add_column("status")
    table.add_column("detail", overflow="fold")
    table.add_column("fix", overflow="fold")
    for row in rows:
        table.add_row(Text(row.name), Text(row.status, style=_STYLE[row.status]), Text(row.detail), Text(row.fix))
    Console(highlight=False).print(table)
    failed = [r.name for r in rows if r.status == FAIL]
    if failed:
        Console(stderr=True, highlight=False).print(Text(f"{len(failed)} check(s) failed: {', '.join(failed)}", style="bold red"))
        raise typer.Exit(1)
