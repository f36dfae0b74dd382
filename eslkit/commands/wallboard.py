"""``eslkit wallboard``: options → `eslkit.app.wallboard`."""

# No `from __future__ import annotations` here: typer on Python 3.9 would
# then ignore the Annotated options.

from pathlib import Path
from typing import Annotated, List, Optional

import typer

from eslkit.commands.options import HostOpt, PasswordOpt, PortOpt, ProfileOpt, TimeoutOpt, connection_settings


def parse_service_levels(values: Optional[List[str]]) -> tuple:
    """``--service-level 20 --service-level support@default=30`` → (20.0, {"support@default": 30.0})."""
    default, per_queue = None, {}
    for value in values or ():
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
    return default, per_queue


def wallboard(
    queue: Annotated[Optional[List[str]], typer.Option(
        "--queue", metavar="NAME", help="Show only this queue and its agents (repeatable).")] = None,
    format: Annotated[Optional[str], typer.Option(
        "--format", metavar="rich|json", show_default=False,
        help="rich: the live screen (default on a terminal); json: one snapshot per interval "
             "(default when piped).")] = None,
    interval: Annotated[float, typer.Option(
        "--interval", min=0.1, help="With --format json: seconds between snapshots (switch time).")] = 5.0,
    service_level: Annotated[Optional[List[str]], typer.Option(
        "--service-level", metavar="[QUEUE=]SECONDS",
        help="Service level threshold: answered within SECONDS (default 20), for every queue or one "
             "(repeatable).")] = None,
    target: Annotated[float, typer.Option(
        "--target", min=0, max=100, help="Service level goal in percent: below it is shown as an alert.")] = 80.0,
    warn_wait: Annotated[float, typer.Option(
        "--warn-wait", min=0, metavar="SECONDS", help="A caller waiting longer is shown as an alert.")] = 60.0,
    day_start: Annotated[str, typer.Option(
        "--day-start", metavar="HH:MM", help="When a day begins (local time): today's figures start again.")]
        = "00:00",
    replay: Annotated[Optional[Path], typer.Option("--replay", metavar="FILE",
        help="Read a recording (watch --record) or a raw ESL transcript instead of a switch.")] = None,
    speed: Annotated[Optional[float], typer.Option("--speed", min=0.001,
        help="With --replay: keep the original timing, SPEED times faster (default: as fast as possible).")] = None,
    from_url: Annotated[Optional[str], typer.Option("--from", metavar="URL",
        help="Read the events `eslkit relay` publishes to a broker (mqtt://HOST:PORT\\[/PREFIX], "
             "amqp://USER@HOST:PORT/VHOST).")] = None,
    reconnect: Annotated[bool, typer.Option("--reconnect/--no-reconnect",
        help="Reconnect by itself when the link drops.")] = True,
    host: HostOpt = None,
    port: PortOpt = None,
    password: PasswordOpt = None,
    profile: ProfileOpt = None,
    timeout: TimeoutOpt = 5.0,
) -> None:
    """A live wallboard for supervisors: queues (waiting, longest wait, answered, abandoned,
    service level) and agents (state, calls, talk time). Definitions: docs/stats.md.

    [bold]eslkit wallboard[/]                     the switch of your profile or ESL_PASSWORD
    [bold]eslkit wallboard --queue support@default --warn-wait 45[/]
    [bold]eslkit wallboard --format json --interval 10 | jq .queues[/]
    [bold]eslkit wallboard --replay today.jsonl --format json[/]
    """
    from eslkit.app import wallboard as app
    from eslkit.calls import POPUP_EVENTS
    from eslkit.sources import EslSource, open_source
    from eslkit.stats import SERVICE_LEVEL_SECONDS, CallCentreStats, parse_day_start

    if format is not None and format not in ("rich", "json"):
        raise typer.BadParameter(f"{format!r} is not rich or json.", param_hint="--format")
    fmt = app.BoardFormat(format) if format else app.default_format()
    default_level, per_queue = parse_service_levels(service_level)
    try:
        starts = parse_day_start(day_start)
    except ValueError:
        raise typer.BadParameter(f"{day_start!r} is not a time of day HH:MM (e.g. 06:00).",
                                 param_hint="--day-start") from None
    if replay is not None and from_url is not None:
        raise typer.BadParameter("give either --replay or --from, not both.", param_hint="--from")
    if speed is not None and replay is None:
        raise typer.BadParameter("--speed only applies to --replay.", param_hint="--speed")
    source = open_source(
        replay=replay, speed=speed, from_url=from_url,
        # What the call tracker and the queue modules say: nothing else is needed.
        live=lambda: EslSource(connection_settings(host, port, password, profile, timeout), names=POPUP_EVENTS,
                               reconnect=reconnect))
    stats = CallCentreStats(service_level=default_level or SERVICE_LEVEL_SECONDS, service_levels=per_queue,
                            day_start=starts)
    app.run(app.WallboardEngine(source, stats, fmt=fmt, interval=interval, queues=queue or (),
                                warn_wait=warn_wait, target=target / 100))
