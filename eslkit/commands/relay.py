"""``eslkit relay``: options → `eslkit.app.relay`."""

# No `from __future__ import annotations` here: typer reads these signatures at run time,
# and on Python 3.9 it cannot see through string annotations.
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer
from rich.console import Console

from eslkit.app.relay import RelayControl, RelayEngine, run, switch_subscription
from eslkit.brokers import publisher
from eslkit.calls import CallTracker
from eslkit.control import AuditLog, Policy
from eslkit.commands.options import (
    HostOpt,
    PasswordOpt,
    PortOpt,
    ProfileOpt,
    ReplaySpeedOpt,
    TimeoutOpt,
    connection_settings,
    one_source,
    parse_header_filters,
    parse_speed,
)
from eslkit.safe_text import visible
from eslkit.sizes import parse_size
from eslkit.sources import EslSource, open_source
from eslkit.subscription import Subscription, checked_event_words

_BROKER = "Broker"
_CONTROL = "Phone control"


def relay(
    to: Annotated[str, typer.Option(
        "--to", metavar="URL", rich_help_panel=_BROKER,
        help="mqtt://HOST:PORT, mqtts://HOST:PORT (TLS) or amqp://USER@HOST:PORT/VHOST. "
             "Never put a password here: use --password-env.")],
    topic: Annotated[Optional[str], typer.Option(
        "--topic", metavar="TEMPLATE", rich_help_panel=_BROKER,
        help="MQTT topic of each event (default freeswitch/{hostname}/events/{event}/{ext}); fields "
             "{hostname} {event} {subclass} {name} {uuid} {call_uuid} {ext}.")] = None,
    popup_topic: Annotated[Optional[str], typer.Option(
        "--popup-topic", metavar="TEMPLATE", rich_help_panel=_BROKER,
        help="MQTT topic of each agent's popup states (default freeswitch/{hostname}/agents/{ext}/popup).")] = None,
    status_topic: Annotated[Optional[str], typer.Option(
        "--status-topic", metavar="TEMPLATE", rich_help_panel=_BROKER,
        help="Retained status topic with the Last Will (default freeswitch/relay/{client_id}/status).")] = None,
    filter: Annotated[Optional[List[str]], typer.Option(
        "--filter", "-f", metavar="NAMES",
        help="Publish only these events (commas or spaces; 'CUSTOM sofia::register' for subclasses). "
             "Popup states are always published.")] = None,
    header: Annotated[Optional[List[str]], typer.Option(
        "--header", metavar="NAME=VALUE",
        help="Publish only events whose header NAME equals VALUE (repeatable; any may match).")] = None,
    qos: Annotated[int, typer.Option("--qos", min=0, max=2, rich_help_panel=_BROKER,
        help="MQTT QoS: 1 (default) is at-least-once; 0 may lose messages when the broker goes away.")] = 1,
    client_id: Annotated[Optional[str], typer.Option("--client-id", metavar="ID", rich_help_panel=_BROKER,
        help="MQTT client id (default eslkit-relay-<this host>); give each relay its own.")] = None,
    username: Annotated[Optional[str], typer.Option("--username", metavar="USER", rich_help_panel=_BROKER,
        help="Broker user name.")] = None,
    password_env: Annotated[Optional[str], typer.Option("--password-env", metavar="VAR", rich_help_panel=_BROKER,
        help="Name of the environment variable that holds the broker password.")] = None,
    tls_ca: Annotated[Optional[Path], typer.Option("--tls-ca", metavar="FILE", exists=True, dir_okay=False,
        rich_help_panel=_BROKER, help="CA certificate (PEM) for mqtts:// or amqps://.")] = None,
    exchange: Annotated[str, typer.Option("--exchange", metavar="NAME", rich_help_panel=_BROKER,
        help="AMQP topic exchange.")] = "freeswitch",
    buffer: Annotated[int, typer.Option("--buffer", min=1, metavar="N", rich_help_panel=_BROKER,
        help="Messages kept while the broker is away; beyond that the oldest are dropped (and counted).")] = 100_000,
    buffer_bytes: Annotated[str, typer.Option("--buffer-bytes", metavar="SIZE", rich_help_panel=_BROKER,
        help="Bytes kept while the broker is away (256MB, 1GB, 512kB, bytes; ~4 kB an event): whichever "
             "of --buffer and this is reached first drops the oldest (counted).")] = "256MB",
    drain_timeout: Annotated[float, typer.Option("--drain-timeout", min=0, metavar="SECONDS",
        help="At exit, how long to wait for the broker to confirm what is buffered.")] = 10.0,
    status_interval: Annotated[float, typer.Option("--status-interval", min=0.5, metavar="SECONDS",
        help="How often the status message is refreshed.")] = 10.0,
    control: Annotated[bool, typer.Option("--control", rich_help_panel=_CONTROL,
        help="Also take phone-control requests from the agents' desktops on "
             "freeswitch/{hostname}/agents/{ext}/control (MQTT; AMQP: {hostname}.agents.{ext}.control) "
             "and answer on …/control/reply.")] = False,
    allow_dest: Annotated[Optional[List[str]], typer.Option("--allow-dest", metavar="REGEX",
        rich_help_panel=_CONTROL, show_default=False,
        help="With --control: also allow destinations matching this regular expression (repeatable).")] = None,
    context: Annotated[Optional[str], typer.Option("--context", metavar="CONTEXT", rich_help_panel=_CONTROL,
        show_default=False, help="With --control: dialplan context of dial and transfer (default: the "
                                 "profile's, else default).")] = None,
    audit: Annotated[Optional[Path], typer.Option("--audit", metavar="FILE", dir_okay=False,
        rich_help_panel=_CONTROL, help="With --control: append every request and its result to this "
                                       "audit log (JSON lines).")] = None,
    replay: Annotated[Optional[Path], typer.Option("--replay", metavar="FILE",
        help="Relay a recording (watch --record) or a raw ESL transcript instead of a switch.")] = None,
    speed: ReplaySpeedOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    password: PasswordOpt = None,
    profile: ProfileOpt = None,
    timeout: TimeoutOpt = 5.0,
) -> None:
    """Hand the switch's events and every agent's popup states to MQTT or RabbitMQ.

    [bold]eslkit relay --to mqtt://broker:1883[/]
    [bold]eslkit relay --to mqtts://relay@broker:8883 --password-env MQTT_PASSWORD[/]
    [bold]eslkit relay --to amqp://relay@rabbit:5672/ --password-env AMQP_PASSWORD[/]
    [bold]eslkit relay --to mqtt://127.0.0.1:1883 --replay calls.jsonl[/]

    Desktops then run [bold]eslkit popup --ext 1001 --from mqtt://broker:1883[/];
    with [bold]--control[/] also [bold]eslkit phone hold --ext 1001 --via mqtt://broker:1883[/]
    (docs/phone.md).
    """
    one_source(replay, None, speed)
    if not control and (allow_dest or context or audit):
        raise typer.BadParameter("--allow-dest, --context and --audit go with --control.", param_hint="--control")
    if control and replay is not None:
        raise typer.BadParameter("--control needs a live switch, not --replay.", param_hint="--control")
    try:
        max_bytes = parse_size(buffer_bytes)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--buffer-bytes") from None
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    names = checked_event_words(filter or ()) or ["ALL"]
    sink = publisher(to, topic=topic, popup_topic=popup_topic, status_topic=status_topic, qos=qos,
                     client_id=client_id, username=username, password_env=password_env,
                     tls_ca=str(tls_ca) if tls_ca else None, exchange=exchange, buffer=buffer,
                     buffer_bytes=max_bytes)
    settings = connection_settings(host, port, password, profile, timeout, console=err) if replay is None else None
    # format json: each event is published as the switch wrote it, not decoded and encoded again.
    source = open_source(replay=replay, speed=parse_speed(speed),
                         live=lambda: EslSource(settings, names=switch_subscription(names), format="json"))

    def notice(line: str) -> None:
        err.out("eslkit relay: " + visible(line, 300), highlight=False)

    events = "every event" if names == ["ALL"] else ", ".join(names) + " events"
    if header:
        events += " where " + " or ".join(header)
    engine = RelayEngine(source, sink, tracker=CallTracker(history=0), select=Subscription(names, parse_header_filters(header)),
                         status_interval=status_interval, drain_timeout=drain_timeout, notice=notice,
                         events=events + " (and every agent's popup states)")
    if control:
        RelayControl(engine, policy=Policy(patterns=tuple(allow_dest or ()), context=context or settings.context
                                           or "default"), audit=AuditLog(audit) if audit is not None else None,
                     wait=timeout)
    try:
        run(engine, err)
    finally:
        # Said even when the switch or the broker ended the run with an error.
        if engine.summary is not None:
            err.out(f"eslkit relay: {engine.summary.line()}", highlight=False)
        elif engine.stopped:
            notice(f"stopped while connecting to {source.description}; nothing was relayed")
        sys.stderr.flush()
