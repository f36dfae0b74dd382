"""Options shared by the commands: the connection to a switch, the statistics' (wallboard,
serve), and a few more (--contacts, --ext, --header, --speed, --ext-header).

    from eslkit.commands.options import HostOpt, PortOpt, PasswordOpt, ProfileOpt, TimeoutOpt
    from eslkit.commands.options import connection_settings

    def popup(host: HostOpt = None, port: PortOpt = None, password: PasswordOpt = None,
              profile: ProfileOpt = None, timeout: TimeoutOpt = 5.0, ...):
        settings = connection_settings(host, port, password, profile, timeout)

Host, port and password default to ``None`` so that a profile can fill them;
`connection_settings` applies the precedence (option, ``ESL_PASSWORD``,
profile, built-in default) and prints the warnings to stderr.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, List, Optional, Sequence

import typer
from rich.console import Console

from eslkit.config import ConnectionSettings, resolve

if TYPE_CHECKING:
    from eslkit.stats import CallCentreStats

_PANEL = "Connection"
_STATS = "Statistics"

HostOpt = Annotated[
    Optional[str],
    typer.Option("--host", help="Switch address (default 127.0.0.1, or the profile's).",
                 rich_help_panel=_PANEL, show_default=False),
]
PortOpt = Annotated[
    Optional[int],
    typer.Option("--port", min=1, max=65535, help="mod_event_socket port (default 8021, or the profile's).",
                 rich_help_panel=_PANEL, show_default=False),
]
PasswordOpt = Annotated[
    Optional[str],
    # Not typer's envvar=: eslkit reads ESL_PASSWORD itself, so that only a
    # password typed on the command line earns the process-list warning.
    typer.Option("--password", show_default=False,
                 help="Event-socket password (default: ESL_PASSWORD, then the profile, then ClueCon). "
                      "Prefer ESL_PASSWORD: options are visible in the process list.",
                 rich_help_panel=_PANEL),
]
ProfileOpt = Annotated[
    Optional[str],
    typer.Option("--profile", help="A \\[profiles.NAME] of ~/.config/eslkit/config.toml, or an fs_cli "
                 "profile from ~/.fs_cli_conf or /etc/fs_cli.conf.", rich_help_panel=_PANEL,
                 show_default=False),
]
TimeoutOpt = Annotated[
    float,
    typer.Option("--timeout", min=0.1, help="Seconds to wait for the connection and for replies.",
                 rich_help_panel=_PANEL),
]
EventsFromOpt = Annotated[
    Optional[str],
    typer.Option("--from", metavar="URL",
                 help="Read the events `eslkit relay` publishes to a broker (mqtt://HOST:PORT\\[/PREFIX], "
                      "amqp://USER@HOST:PORT/VHOST) instead of a switch."),
]


def one_source(replay, from_url, speed=None) -> None:
    """--replay and --from each replace the switch: one at a time; --speed is a replay's."""
    if replay is not None and from_url is not None:
        raise typer.BadParameter("give either --replay FILE or --from URL, not both.", param_hint="--from")
    if speed is not None and replay is None:
        raise typer.BadParameter("--speed only applies to --replay.", param_hint="--speed")


PopupFromOpt = Annotated[
    Optional[str],
    typer.Option("--from", metavar="URL",
                 help="Show the popup states `eslkit relay` publishes, from a broker (mqtt://HOST:PORT\\[/PREFIX] "
                      "or amqp://…) instead of a switch; broker password in ESLKIT_BROKER_PASSWORD."),
]
_CONTROL = "Phone control"
AllowDestOpt = Annotated[
    Optional[List[str]],
    typer.Option("--allow-dest", metavar="REGEX", show_default=False, rich_help_panel=_CONTROL,
                 help="With --control: also allow destinations matching this regular expression (repeatable)."),
]
ContextOpt = Annotated[
    Optional[str],
    typer.Option("--context", metavar="CONTEXT", show_default=False, rich_help_panel=_CONTROL,
                 help="With --control: dialplan context of dial and transfer (default: the profile's, else default)."),
]
AuditOpt = Annotated[
    Optional[Path],
    typer.Option("--audit", metavar="FILE", dir_okay=False, rich_help_panel=_CONTROL,
                 help="With --control: append every action to this audit log (JSON lines)."),
]
ContactsOpt = Annotated[
    Optional[Path],
    typer.Option("--contacts", metavar="FILE", dir_okay=False,
                 help="Look callers up in a CSV file or an SQLite database (see docs/popup.md)."),
]

# One --speed for demo, sim and the replays of watch, popup and relay: a time scale, or max.
SpeedOpt = Annotated[
    Optional[str],
    typer.Option("--speed", metavar="X|max",
                 help="How fast time runs: X times real time (0.5 slower, 4 faster), or max (also 0): "
                      "no delays."),
]
ReplaySpeedOpt = Annotated[
    Optional[str],
    typer.Option("--speed", metavar="X|max", show_default=False,
                 help="With --replay: keep the original timing, X times faster (0.5 slower), or max "
                      "(also 0; the default): as fast as possible."),
]


def parse_speed(value: Optional[str]) -> Optional[float]:
    """``--speed``: the time scale, or None for no delays (``max``, or ``0``: what else
    could a replay at speed 0 mean?)."""
    if value is None or value.strip().lower() == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a number or max (e.g. --speed 4, --speed max).",
                                 param_hint="--speed") from None
    if speed == 0:
        return None
    if not 0 < speed < float("inf"):
        raise typer.BadParameter(f"{value} is not a speed: give a number above 0 (e.g. --speed 4), or max.",
                                 param_hint="--speed")
    return speed


# popup and serve: the header that holds the agent's extension (watch's --match is a filter).
ExtHeaderOpt = Annotated[
    Optional[str],
    typer.Option("--ext-header", metavar="HEADER", show_default=False,
                 help="The header that holds the agent's extension (default: variable_dialed_user, "
                      "Channel-Presence-ID, Caller-Destination-Number, Caller-Callee-ID-Number, Channel-Name)."),
]
OldMatchOpt = Annotated[Optional[str], typer.Option("--match", metavar="HEADER", hidden=True)]


def ext_header(new: Optional[str], old: Optional[str], command: str) -> Optional[str]:
    """``--ext-header``, or its old spelling ``--match`` with a note (scripts may still use it)."""
    if old is None:
        return new
    if new is not None:
        raise typer.BadParameter("give --ext-header alone (--match is its old name)", param_hint="--ext-header")
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[yellow]eslkit: note:[/] {command} --match is now --ext-header (in watch, --match filters "
        "events by a regex); --match still works here for now.", markup=True)
    return old


ReconnectOpt = Annotated[
    bool,
    typer.Option("--reconnect/--no-reconnect", help="Reconnect by itself when the link drops."),
]

ServiceLevelOpt = Annotated[
    Optional[List[str]],
    typer.Option("--service-level", metavar="[QUEUE=]SECONDS", rich_help_panel=_STATS,
                 help="Service level threshold: answered within SECONDS (default 20), for every queue or one "
                      "(repeatable)."),
]
TargetOpt = Annotated[
    float,
    typer.Option("--target", min=0, max=100, rich_help_panel=_STATS,
                 help="Service level goal in percent: below it is shown as an alert."),
]
WarnWaitOpt = Annotated[
    float,
    typer.Option("--warn-wait", min=0, metavar="SECONDS", rich_help_panel=_STATS,
                 help="A caller waiting longer is shown as an alert."),
]
DayStartOpt = Annotated[
    str,
    typer.Option("--day-start", metavar="HH:MM", rich_help_panel=_STATS,
                 help="When a day begins (local time): today's figures start again."),
]


def connection_settings(
    host: Optional[str],
    port: Optional[int],
    password: Optional[str],
    profile: Optional[str],
    timeout: Optional[float] = None,
    *,
    console: Optional[Console] = None,
) -> ConnectionSettings:
    """Resolve the shared options into `ConnectionSettings`; warnings go to stderr.

    Raises `eslkit.errors.ConfigError` for an unknown profile or a broken config file.
    """
    settings = resolve(
        host, port, password, profile, timeout,
        password_from_command_line=password is not None,
    )
    if settings.warnings:
        console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        for warning in settings.warnings:
            console.print("[yellow]eslkit: warning:[/] ", end="")
            console.out(warning, highlight=False)
    return settings


def parse_header_filters(values: Optional[Sequence[str]]) -> list[tuple[str, str]]:
    """``--header NAME=VALUE`` options (watch, relay) → filters as (header, value)."""
    out = []
    for value in values or ():
        name, sep, wanted = value.partition("=")
        name = name.strip()
        if not sep or not name or " " in name:
            raise typer.BadParameter(f"{value!r} is not NAME=VALUE (e.g. Caller-Destination-Number=1001).",
                                     param_hint="--header")
        out.append((name, wanted))
    return out


_EXTENSION = re.compile(r"[0-9*#+]{2,15}(,[0-9*#+]{2,15})*")


def parse_exts(values: Optional[Sequence[str]], stray: Sequence[str] = (), command: str = "popup") -> list[str]:
    """``--ext 1001 --ext 1002`` or ``--ext 1001,1002`` → ["1001", "1002"]; ``stray``: the
    arguments given without an option, the common slip being `eslkit popup 1001`."""
    exts: list[str] = []
    for value in values or ():
        for ext in value.replace(" ", ",").split(","):
            if ext and ext not in exts:
                exts.append(ext)
    if not exts:
        if stray and all(_EXTENSION.fullmatch(arg) for arg in stray):
            given = ",".join(stray)
            raise typer.BadParameter(f"{given} looks like an extension: give it with --ext, "
                                     f"e.g. eslkit {command} --ext {given}", param_hint="--ext")
        raise typer.BadParameter(f"give the agent's extension, e.g. eslkit {command} --ext 1001", param_hint="--ext")
    return exts


def check_control_options(control: bool, from_url: Optional[str], allow_dest, context, audit) -> None:
    """popup and serve: --allow-dest, --context and --audit belong to --control on a switch
    (through a broker, relay --control has them)."""
    if not control and (allow_dest or context or audit):
        raise typer.BadParameter("--allow-dest, --context and --audit go with --control.", param_hint="--control")
    if control and from_url is not None and (allow_dest or context or audit):
        raise typer.BadParameter("through a broker, eslkit relay --control has the destination rules, the "
                                 "context and the audit log.", param_hint="--control")


def call_centre_stats(service_level: Optional[Sequence[str]], day_start: str) -> "CallCentreStats":
    """``--service-level`` and ``--day-start`` → the statistics engine they ask for."""
    from eslkit.stats import SERVICE_LEVEL_SECONDS, CallCentreStats, parse_day_start

    default, per_queue = None, {}
    for value in service_level or ():
        queue, sep, seconds = value.rpartition("=")
        try:
            number = float(seconds)
        except ValueError:
            number = -1.0
        if number <= 0 or (sep and not queue):
            raise typer.BadParameter(f"{value!r} is not SECONDS or QUEUE=SECONDS (e.g. 20, support@default=30).",
                                     param_hint="--service-level")
        if sep:
            per_queue[queue] = number
        else:
            default = number
    try:
        starts = parse_day_start(day_start)
    except ValueError:
        raise typer.BadParameter(f"{day_start!r} is not a time of day HH:MM (e.g. 06:00).",
                                 param_hint="--day-start") from None
    return CallCentreStats(service_level=default or SERVICE_LEVEL_SECONDS, service_levels=per_queue,
                           day_start=starts)


