"""``eslkit wallboard``: options → `eslkit.app.wallboard`."""

# No `from __future__ import annotations` here: typer on Python 3.9 would
# then ignore the Annotated options.

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from eslkit.commands.options import (
    DayStartOpt,
    EventsFromOpt,
    HostOpt,
    PasswordOpt,
    PortOpt,
    ProfileOpt,
    ReconnectOpt,
    ReplaySpeedOpt,
    ServiceLevelOpt,
    TargetOpt,
    TimeoutOpt,
    WarnWaitOpt,
    call_centre_stats,
    connection_settings,
    one_source,
    parse_speed,
)


def wallboard(
    queue: Annotated[Optional[List[str]], typer.Option(
        "--queue", metavar="NAME", help="Show only this queue and its agents (repeatable).")] = None,
    format: Annotated[Optional[str], typer.Option(
        "--format", metavar="rich|json", show_default=False,
        help="rich: the live screen (default on a terminal); json: one snapshot per interval "
             "(default when piped).")] = None,
    interval: Annotated[float, typer.Option(
        "--interval", min=0.1, help="With --format json: seconds between snapshots (switch time).")] = 5.0,
    service_level: ServiceLevelOpt = None,
    target: TargetOpt = 80.0,
    warn_wait: WarnWaitOpt = 60.0,
    day_start: DayStartOpt = "00:00",
    replay: Annotated[Optional[Path], typer.Option("--replay", metavar="FILE",
        help="Read a recording (watch --record) or a raw ESL transcript instead of a switch.")] = None,
    speed: ReplaySpeedOpt = None,
    from_url: EventsFromOpt = None,
    reconnect: ReconnectOpt = True,
    host: HostOpt = None,
    port: PortOpt = None,
    password: PasswordOpt = None,
    profile: ProfileOpt = None,
    timeout: TimeoutOpt = 5.0,
) -> None:
    """A live wallboard for supervisors: what every queue and agent is doing, today.

    Queues: waiting, longest wait, answered, abandoned, service level. Agents: state, calls, talk time. q or Ctrl-C stops; definitions: docs/stats.md.

    [bold]eslkit wallboard[/]              (the switch of your profile, or ESL_PASSWORD)
    [bold]eslkit wallboard --queue support@default --warn-wait 45[/]
    [bold]eslkit wallboard --format json --interval 10 | jq .queues[/]
    [bold]eslkit wallboard --replay today.jsonl --format json[/]
    """
    from eslkit.app import wallboard as app
    from eslkit.calls import POPUP_EVENTS
    from eslkit.sources import EslSource, open_source

    if format is not None and format not in ("rich", "json"):
        raise typer.BadParameter(f"{format!r} is not rich or json.", param_hint="--format")
    fmt = app.BoardFormat(format) if format else app.default_format()
    stats = call_centre_stats(service_level, day_start)
    one_source(replay, from_url, speed)
    source = open_source(
        replay=replay, speed=parse_speed(speed), from_url=from_url,
        # What the call tracker and the queue modules say: nothing else is needed.
        live=lambda: EslSource(connection_settings(host, port, password, profile, timeout), names=POPUP_EVENTS,
                               reconnect=reconnect))
    app.run(app.WallboardEngine(source, stats, fmt=fmt, interval=interval, queues=queue or (),
                                warn_wait=warn_wait, target=target / 100))
