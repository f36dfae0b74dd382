"""``eslkit relay``: one switch connection, events and popup states to a broker.

The typer function only parses options; `eslkit.relay.Relay` does the work.
"""

# No `from __future__ import annotations` here: typer reads these signatures at
# run time, and on Python 3.9 it cannot see through string annotations.
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Annotated, List, Optional

import typer
from rich.console import Console

from eslkit.commands.options import HostOpt, PasswordOpt, PortOpt, ProfileOpt, TimeoutOpt, connection_settings
from eslkit.brokers import publisher
from eslkit.errors import DeliveryIncomplete
from eslkit.relay import Relay, TrackerAttribution, switch_subscription
from eslkit.subscription import Subscription
from eslkit.views.safe_text import visible

_BROKER = "Broker"


async def _run(relay: Relay) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, relay.stop)
    source = relay.source
    await source.open()
    try:
        return await relay.run()
    finally:
        await source.close()


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
    drain_timeout: Annotated[float, typer.Option("--drain-timeout", min=0, metavar="SECONDS",
        help="At exit, how long to wait for the broker to confirm what is buffered.")] = 10.0,
    status_interval: Annotated[float, typer.Option("--status-interval", min=0.5, metavar="SECONDS",
        help="How often the status message is refreshed.")] = 10.0,
    replay: Annotated[Optional[Path], typer.Option("--replay", metavar="FILE",
        help="Relay a recording (watch --record) or a raw ESL transcript instead of a switch.")] = None,
    speed: Annotated[Optional[float], typer.Option("--speed", min=0.001,
        help="With --replay: keep the original timing, SPEED times faster.")] = None,
    host: HostOpt = None,
    port: PortOpt = None,
    password: PasswordOpt = None,
    profile: ProfileOpt = None,
    timeout: TimeoutOpt = 5.0,
) -> None:
    """Hand the switch's events and every agent's popup states to MQTT or RabbitMQ.

    [bold]eslkit relay --to mqtt://broker:1883[/]
    [bold]eslkit relay --to mqtts://broker:8883 --username relay --password-env MQTT_PASSWORD --tls-ca ca.pem[/]
    [bold]eslkit relay --to amqp://relay@rabbit:5672/ --password-env AMQP_PASSWORD[/]
    [bold]eslkit relay --to mqtt://127.0.0.1:1883 --replay calls.jsonl[/]

    Desktops then run [bold]eslkit popup --ext 1001 --from mqtt://broker:1883[/].
    """
    from eslkit.commands.watch import parse_header_filters, parse_names

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    names = parse_names(filter)
    select = Subscription(names, parse_header_filters(header))
    sink = publisher(to, topic=topic, popup_topic=popup_topic, status_topic=status_topic, qos=qos,
                     client_id=client_id, username=username, password_env=password_env,
                     tls_ca=str(tls_ca) if tls_ca else None, exchange=exchange, buffer=buffer)
    if replay is not None:
        from eslkit.sources.replay import ReplaySource

        source = ReplaySource(replay, speed=speed)
    else:
        if speed is not None:
            raise typer.BadParameter("--speed only applies to --replay.", param_hint="--speed")
        from eslkit.sources.esl import EslSource

        settings = connection_settings(host, port, password, profile, timeout, console=err)
        source = EslSource(settings, names=switch_subscription(names), reconnect=True)

    def notice(line: str) -> None:
        err.out("eslkit relay: " + visible(line, 300), highlight=False)

    runner = Relay(source, sink, attribution=TrackerAttribution(), select=select,
                   status_interval=status_interval, drain_timeout=drain_timeout, notice=notice)
    try:
        asyncio.run(_run(runner))
    except KeyboardInterrupt:
        pass
    finally:
        # Said even when the switch or the broker ended the run with an error.
        if runner.summary is not None:
            err.out(f"eslkit relay: {runner.summary.line()}", highlight=False)
    summary = runner.summary
    if summary is None:
        return
    if not summary.complete:
        if summary.dropped or summary.unconfirmed or summary.rejected:
            lost = summary.dropped + summary.unconfirmed + summary.rejected
            raise DeliveryIncomplete(
                f"{lost} messages did not reach the broker ({summary.dropped} dropped from a full buffer, "
                f"{summary.unconfirmed} not confirmed, {summary.rejected} refused as not publishable)."
            )
        raise DeliveryIncomplete(
            f"{summary.source_dropped} events were dropped before the relay could read them.",
            "The relay fell behind the switch: relay fewer events (--filter) or give it more CPU.",
        )
    sys.stderr.flush()
