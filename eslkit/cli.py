"""The `eslkit` command: a thin typer skin over the library.

Each command lives in ``eslkit/commands/<name>.py`` as a plain function with
typer annotations; this module registers them and owns the one place where a
library error becomes one line on stderr and an exit code.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Optional

import typer

from eslkit import __version__
from eslkit.errors import EslkitError

if TYPE_CHECKING:
    from rich.console import Console

app = typer.Typer(
    name="eslkit",
    help="FreeSWITCH event-socket toolkit for call centres.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    # Locals can hold the ESL password: never show them in a traceback.
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"eslkit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """FreeSWITCH event-socket toolkit for call centres.

    Start with [bold]eslkit demo[/] (no switch needed), or point
    [bold]eslkit watch[/] at a switch.
    """


def report_error(err: EslkitError, console: Optional[Console] = None) -> None:
    """Print a library error as one sentence plus its fix, never a traceback."""
    # Imported here: start-up is part of every command's time, and most runs end without an error.
    from rich.console import Console
    from rich.markup import escape

    from eslkit.safe_text import visible

    console = console or Console(stderr=True, highlight=False, soft_wrap=True)
    # Messages can quote the switch (an -ERR reply, a disconnect notice): show them literally.
    console.print(f"[bold red]eslkit:[/] {escape(visible(str(err)))}")
    if err.fix:
        console.print(f"  [dim]fix:[/] {escape(visible(err.fix))}")


COMMANDS = ("sim", "watch", "popup", "wallboard", "serve", "passwd", "demo", "build", "doctor", "relay", "phone")


def _register(only: Optional[str] = None) -> None:
    # Imported here, and only the command being run when we know it: `eslkit
    # build` on an up-to-date tree should not pay for importing the others.
    for name in COMMANDS:
        if only is not None and name != only:
            continue
        module = __import__(f"eslkit.commands.{name}", fromlist=[name])
        command = getattr(module, name)
        if isinstance(command, typer.Typer):  # a command with subcommands (eslkit phone hold …)
            app.add_typer(command, name=name)
        else:
            # A command may ask for its own parsing (popup: a program's options after --exec).
            app.command(name, context_settings=getattr(module, "CONTEXT_SETTINGS", None))(command)


def _command_in(argv: list) -> Optional[str]:
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def main() -> None:
    _register(_command_in(sys.argv[1:]))
    try:
        app()
    except EslkitError as err:
        report_error(err)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
