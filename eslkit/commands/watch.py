"""``eslkit watch``: options → `eslkit.app.watch`."""

# No `from __future__ import annotations` here: typer on Python 3.9 would
# then ignore the Annotated options (their aliases such as -f vanish).

import re
from pathlib import Path
from typing import Annotated, List, Optional, Sequence

import typer
from rich.console import Console

from eslkit.app import watch as app
from eslkit.app.watch import OutputFormat, WireFormat
from eslkit.commands.options import (
    EventsFromOpt,
    HostOpt,
    PasswordOpt,
    PortOpt,
    ProfileOpt,
    ReconnectOpt,
    ReplaySpeedOpt,
    TimeoutOpt,
    connection_settings,
    parse_header_filters,
    one_source,
    parse_speed,
)
from eslkit.sources import EslSource, open_source
from eslkit.stats import blind_spots
from eslkit.subscription import checked_event_words
from eslkit.views.theme import THEME
from eslkit.views.watch_table import parse_columns


def parse_matches(values: Optional[Sequence[str]]) -> list[tuple[str, re.Pattern, str]]:
    out = []
    for value in values or ():
        name, sep, pattern = value.partition("~")
        name = name.strip()
        if not sep or not name:
            raise typer.BadParameter(f"{value!r} is not NAME~REGEX (e.g. Caller-Caller-ID-Name~^Acme).",
                                     param_hint="--match")
        try:
            out.append((name, re.compile(pattern), value))
        except re.error as exc:
            raise typer.BadParameter(f"{pattern!r} is not a valid regular expression ({exc}).",
                                     param_hint="--match") from None
    return out


def watch(
    filter: Annotated[Optional[List[str]], typer.Option(
        "--filter", "-f", metavar="NAMES",
        help="Subscribe to just these events (repeat, or separate with commas/spaces; "
             "'CUSTOM sofia::register' for subclasses). Default ALL.")] = None,
    header: Annotated[Optional[List[str]], typer.Option(
        "--header", metavar="NAME=VALUE",
        help="Install a server-side filter: only events whose header NAME equals VALUE (repeatable).")] = None,
    match: Annotated[Optional[List[str]], typer.Option(
        "--match", metavar="NAME~REGEX",
        help="Show only events whose header NAME matches REGEX, checked here (repeatable; all must match).")] = None,
    format: Annotated[Optional[OutputFormat], typer.Option(
        "--format", case_sensitive=False,
        help="table (default on a terminal), json (one event per line; default when piped) or plain "
             "(header blocks, as fs_cli shows them).", show_default=False)] = None,
    columns: Annotated[Optional[str], typer.Option(
        "--columns", metavar="LIST",
        help="Table columns: time,event,direction,channel,caller,name,destination,state,uuid "
             "or any header name.")] = None,
    count: Annotated[Optional[int], typer.Option("--count", "-n", min=1, help="Exit after N events.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q",
        help="Print no events, only the summary line at exit.")] = False,
    record: Annotated[Optional[Path], typer.Option("--record", metavar="FILE", dir_okay=False,
        help="Write every event and connection change to FILE as JSON lines (a new file: "
             "an existing recording is never overwritten).")] = None,
    append: Annotated[bool, typer.Option("--append",
        help="With --record: add to an existing recording.")] = False,
    replay: Annotated[Optional[Path], typer.Option("--replay", metavar="FILE",
        help="Read a recording (--record) or a raw ESL transcript instead of a switch.")] = None,
    from_url: EventsFromOpt = None,
    speed: ReplaySpeedOpt = None,
    stats: Annotated[bool, typer.Option("--stats",
        help="Show call statistics; with --format json, print a final stats object.")] = False,
    wire_format: Annotated[Optional[WireFormat], typer.Option("--wire-format", case_sensitive=False,
        help="Event encoding to ask the switch for (event plain|json|xml); default json with "
             "--format json (the switch's JSON is written as it came), else plain.",
        show_default=False)] = None,
    reconnect: ReconnectOpt = True,
    host: HostOpt = None,
    port: PortOpt = None,
    password: PasswordOpt = None,
    profile: ProfileOpt = None,
    timeout: TimeoutOpt = 5.0,
) -> None:
    """Watch a switch's events live: a table, JSON lines or fs_cli-style blocks.

    [bold]eslkit watch[/]                                   table of every event
    [bold]eslkit watch -f CHANNEL_ANSWER,CHANNEL_HANGUP_COMPLETE --format json | jq .[/]
    [bold]eslkit watch --header Caller-Destination-Number=1001 --stats[/]
    [bold]eslkit watch --replay calls.jsonl --speed 1[/]
    """
    if count is not None and count < 1:  # older typers skip min= on Optional options
        raise typer.BadParameter("must be at least 1.", param_hint="--count")
    one_source(replay, from_url, speed)
    if append and record is None:
        raise typer.BadParameter("--append only applies to --record FILE.", param_hint="--append")
    names = checked_event_words(filter or ()) or ["ALL"]
    header_filters = parse_header_filters(header)
    matches = parse_matches(match)
    fmt = format or app.default_format()
    err = Console(stderr=True, highlight=False, soft_wrap=True, theme=THEME)
    wire = (wire_format or app.default_wire(fmt, quiet)).value
    source = open_source(
        replay=replay, speed=parse_speed(speed), from_url=from_url, names=names, filters=header_filters,
        live=lambda: EslSource(connection_settings(host, port, password, profile, timeout, console=err),
                               names=names, filters=header_filters, format=wire, reconnect=reconnect))
    # What the subscription, a header filter or --match hides from the statistics, said with them.
    notes = blind_spots(names, header_filters, [m for _, _, m in matches]) if stats else ()
    app.run(app.WatchEngine(source, fmt=fmt, columns=parse_columns(columns), matches=matches, count=count,
                            quiet=quiet, record=record, append=append, stats=stats, stats_notes=notes,
                            err=err))
