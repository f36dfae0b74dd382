"""``eslkit popup``: options → `eslkit.app.popup`."""

# No `from __future__ import annotations` here: typer reads these signatures at run time,
# and on Python 3.9 it cannot see the Annotated options inside string annotations.

import difflib
import shlex
import shutil
from pathlib import Path
from typing import Annotated, List, Optional, Sequence

import typer

from eslkit.actions import ExecAction, UrlAction, forget_secrets
from eslkit.app.popup import OnState, PopupEngine, PopupFormat, default_format, run
from eslkit.app.popup_control import phone_keys
from eslkit.calls import POPUP_EVENTS
from eslkit.commands.options import (AllowDestOpt, AuditOpt, ContactsOpt, ContextOpt, ExtHeaderOpt, HostOpt,
                                    OldMatchOpt, PasswordOpt, PopupFromOpt, PortOpt, ProfileOpt, ReplaySpeedOpt,
                                    TimeoutOpt, check_control_options, connection_settings, ext_header, parse_exts,
                                    one_source, parse_speed)
from eslkit.contacts import load_contacts
from eslkit.errors import TemplateError
from eslkit.sources import EslSource, open_source


# Options click does not know are kept as arguments: after --exec they are the program's
# (`--exec sh -c 'echo {caller_name}'`); without --exec, `exec_argv` says what went wrong.
CONTEXT_SETTINGS = {"ignore_unknown_options": True}


def _known_options(ctx: Optional[typer.Context]) -> list[str]:
    """The command's long options (for "did you mean")."""
    return [o for p in (ctx.command.params if ctx else ()) for o in p.opts if o.startswith("--")]


def exec_argv(program: Optional[str], args: Sequence[str], ctx: Optional[typer.Context] = None) -> Optional[list[str]]:
    """``--exec notify-send "Call from {caller_name}"``: the program, then its arguments
    (or one quoted string, split like a shell would split it — but never run by one)."""
    if not program:
        for arg in args:
            if arg.startswith("-") and len(arg) > 1:
                close = difflib.get_close_matches(arg.split("=", 1)[0], _known_options(ctx), n=1, cutoff=0.6)
                raise typer.BadParameter(f"there is no option {arg}" + (f"; did you mean {close[0]}?" if close else
                                         " (a program's options follow --exec CMD)"))
        if args:
            raise typer.BadParameter(f"unexpected argument {args[0]!r} (arguments follow --exec CMD)")
        return None
    argv = [program, *args] if args or " " not in program.strip() else shlex.split(program)
    if shutil.which(argv[0]) is None:
        raise TemplateError(f"--exec: there is no program {argv[0]!r} on the PATH.",
                            "Give the program's full path, or install it.")
    return argv


def popup(
    ctx: typer.Context,
    ext: Annotated[Optional[List[str]], typer.Option(
        "--ext", "-e", metavar="EXT", show_default=False,
        help="The agent's extension (required; repeat, or 1001,1002 for several).")] = None,
    exec_args: Annotated[Optional[List[str]], typer.Argument(
        metavar="[ARG]...", show_default=False,
        help="Arguments for --exec CMD, each one argument whatever the values hold.")] = None,
    contacts: ContactsOpt = None,
    open_url: Annotated[Optional[str], typer.Option(
        "--open-url", metavar="TEMPLATE",
        help="Open this URL in the default browser, e.g. 'https://crm.example/search?phone={caller_number}' "
             "(values URL-encoded).")] = None,
    exec_cmd: Annotated[Optional[str], typer.Option(
        "--exec", metavar="CMD",
        help="Run CMD [ARG]... (no shell), e.g. --exec notify-send 'Call from {caller_name}'.")] = None,
    on: Annotated[OnState, typer.Option(
        "--on", case_sensitive=False, help="When --open-url/--exec fire: when the phone rings, or when answered.")
    ] = OnState.ring,
    format: Annotated[Optional[PopupFormat], typer.Option(
        "--format", case_sensitive=False,
        help="panel (default on a terminal) or json (one object per state change; default when piped).",
        show_default=False)] = None,
    replay: Annotated[Optional[Path], typer.Option(
        "--replay", metavar="FILE",
        help="Read a recording (watch --record) or a raw ESL transcript instead of a switch; "
             "ends when the file does.")] = None,
    speed: ReplaySpeedOpt = None,
    from_url: PopupFromOpt = None,
    bell: Annotated[bool, typer.Option("--bell", help="Ring the terminal bell when a call rings.")] = False,
    control: Annotated[bool, typer.Option(
        "--control", rich_help_panel="Phone control",
        help="Keys in the panel: a answer, h hold/unhold, x hang up, t transfer, d dial, Tab next call "
             "(on this switch connection, or with --from through eslkit relay --control).")] = False,
    allow_dest: AllowDestOpt = None,
    context: ContextOpt = None,
    audit: AuditOpt = None,
    header: ExtHeaderOpt = None,
    match: OldMatchOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    password: PasswordOpt = None,
    profile: ProfileOpt = None,
    timeout: TimeoutOpt = 5.0,
) -> None:
    """Screen popups for an agent: who is calling, from which queue, and what happened.

    [bold]eslkit popup --ext 1001[/]
    [bold]eslkit popup --ext 1001,1002 --contacts contacts.csv[/]
    [bold]eslkit popup --ext 1001 --open-url 'https://crm.example/?q={caller_number}'[/]
    [bold]eslkit popup --ext 1001 --exec notify-send 'Call from {caller_name}'[/]
    [bold]eslkit popup --ext 1001 --format json --replay calls.jsonl[/]
    [bold]eslkit popup --ext 1001 --from mqtt://broker:1883[/]   (what relay publishes)
    [bold]eslkit popup --ext 1001 --control[/]   (phone keys: hold, transfer, hang up…)
    """
    exts = parse_exts(ext, [] if exec_cmd else exec_args or [])
    one_source(replay, from_url, speed)
    fmt = format or default_format()
    if control and (replay is not None or fmt is not PopupFormat.panel):
        raise typer.BadParameter("the keys need the panel on a terminal and a live switch or broker "
                                 "(not --replay, not --format json); eslkit phone does the same from a script.",
                                 param_hint="--control")
    check_control_options(control, from_url, allow_dest, context, audit)
    book = load_contacts(contacts) if contacts else None
    columns = book.columns if book is not None else ()  # what {contact_<column>} may name
    actions: list = []
    if open_url:
        actions.append(UrlAction(open_url, contact_columns=columns))
    argv = exec_argv(exec_cmd, exec_args or [], ctx)
    if argv:
        actions.append(ExecAction(argv, contact_columns=columns))
    lookup = book.lookup if book is not None else None
    settings = connection_settings(host, port, password, profile, timeout) if replay is None and from_url is None \
        else None
    source = open_source(replay=replay, speed=parse_speed(speed), from_url=from_url, popup_exts=exts,
                         live=lambda: EslSource(settings, names=POPUP_EVENTS))
    if actions:
        forget_secrets()  # read by now; a browser or program started for a popup gets none
    keys = phone_keys(exts, from_url=from_url, allow=allow_dest, context=context, audit=audit,
                      settings=settings) if control else None
    run(PopupEngine(source, exts, match=ext_header(header, match, "popup"), lookup=lookup), fmt=fmt,
        actions=actions, on=on, bell=bell, keys=keys)
