"""The relay run engine: events from one source → broker messages through one publisher.

For each event: the call tracker names the agent extension it belongs to
(``ext``) and any popup state changes it causes; the event goes to its topic
or routing key (when ``select`` wants it), each popup state change to its
agent's address.  Messages wait in the publisher's bounded outbox while the
broker is away.  A status message says ``online``/``offline``, whether the
switch is connected, and the counters.

Nothing is lost silently: every message dropped from a full outbox is counted,
and at the end the summary says what was received, published, dropped and
left unconfirmed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Optional

from rich.console import Console
from rich.live import Live
from rich.text import Text

from eslkit.app.runtime import SwitchClock, channels_up, open_unless_stopped, stop_on_signals
from eslkit.brokers import Publisher
from eslkit.brokers.buffer import Message
from eslkit.calls import POPUP_EVENTS, CallTracker, LegView, popup_record
from eslkit.control import AuditLog, Controller, Policy
from eslkit.control.requests import Desk
from eslkit.errors import DeliveryIncomplete
from eslkit.event import Event
from eslkit.sizes import size_text
from eslkit.sources.base import Source
from eslkit.status import ConnectionStatus
from eslkit.subscription import Subscription, event_words

__all__ = ["RelayEngine", "Summary", "switch_subscription", "run"]


def switch_subscription(names: list[str]) -> list[str]:
    """What the relay asks a live switch for: the names it publishes plus what the call
    tracker needs (popup states are published whatever --filter says)."""
    return ["ALL"] if "ALL" in names else event_words([*names, *POPUP_EVENTS])


def _payload(event: Event) -> bytes:
    """The event's JSON: a compact JSON event from the switch as it came (`json_line`),
    anything else encoded (`to_json`)."""
    return (event.json_line() if event.format == "json" else event.to_json()).encode()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Summary:
    received: int = 0
    published_events: int = 0
    published_popups: int = 0
    dropped: int = 0
    unconfirmed: int = 0
    broker_disconnects: int = 0
    switch_disconnects: int = 0
    source_dropped: int = 0  # events the switch connection's own queue dropped (relay too slow)
    rejected: int = 0  # messages no broker would take (e.g. a topic it refuses): counted, not re-sent

    @property
    def complete(self) -> bool:
        return self.dropped == 0 and self.unconfirmed == 0 and self.source_dropped == 0 and self.rejected == 0

    def line(self) -> str:
        text = (
            f"received {self.received} events; published {self.published_events + self.published_popups} "
            f"messages ({self.published_events} events, {self.published_popups} popup states); "
            f"dropped {self.dropped}"
        )
        if self.rejected:
            text += f"; {self.rejected} refused (not publishable)"
        if self.unconfirmed:
            text += f"; {self.unconfirmed} not confirmed by the broker"
        if self.source_dropped:
            text += f"; {self.source_dropped} events dropped before the relay could read them"
        outages = [f"{what} {n} time{'s' if n > 1 else ''}" for what, n in
                   (("the broker went away", self.broker_disconnects),
                    ("the switch went away", self.switch_disconnects)) if n]
        if outages:
            text += "; " + ", ".join(outages)
        return text


class RelayEngine:
    """``tracker``: the call tracker that attributes events to agents and makes the popup
    states (None: events only).  ``select``: which events are published (``--filter``,
    ``--header``, as a switch would choose them); the tracker sees every event."""

    def __init__(self, source: Source, publisher: Publisher, *, tracker: Optional[CallTracker] = None,
                 select: Optional[Subscription] = None, status_interval: float = 10.0,
                 drain_timeout: float = 10.0, notice: Optional[Callable[[str], None]] = None,
                 events: str = "every event"):
        self.source = source
        self.publisher = publisher
        self.tracker = tracker
        self.select = select or Subscription(["ALL"])
        self._wants = None if self.select.everything else self.select.wants  # None: every event
        self.status_interval = status_interval
        self.drain_timeout = drain_timeout
        self.notice = notice  # one line for the operator (stderr)
        self.events = events  # what --filter/--header let through, for the start-up line
        self.clock = SwitchClock(lambda: tracker.now if tracker is not None else 0.0)
        self.received = 0
        self.switch = "unknown"
        self.switch_disconnects = 0
        self.hostname: Optional[str] = None
        self.started = _now()
        self.summary: Optional[Summary] = None
        self._broker_down = False
        self._stopping: Optional[asyncio.Event] = None
        self.stopped = False  # stop() was asked for, maybe before run()
        self._resyncing: Optional[asyncio.Future] = None
        self._rejects_said = 0
        self.control: Optional[RelayControl] = None  # --control: phone-control requests through the broker

    # --- status -----------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        published = self.publisher.published
        return {
            "received": self.received,
            "published": published["event"] + published["popup"],
            "buffered": self.publisher.unconfirmed,
            "dropped": self.publisher.buffer.dropped,
            # Events the switch connection dropped because the relay fell behind.
            "source_dropped": self.source.dropped,
        }

    def status_line(self, rate_in: float, rate_out: float) -> str:
        """The one-line live status a terminal shows while the relay runs."""
        counts = self.counters()
        broker = "connected" if self.publisher.connected else "away"
        received = counts["received"]
        line = (f"{received} event{'' if received == 1 else 's'} in, {rate_in:.1f}/s; "
                f"{counts['published']} out, {rate_out:.1f}/s; buffer {counts['buffered']}; "
                f"broker {broker}; switch {self.switch}")
        if counts["dropped"]:
            line += f"; {counts['dropped']} dropped"
        return line

    def status(self, state: str = "online") -> dict:
        return {"state": state, "switch": self.switch, "hostname": self.hostname,
                "since": self.started, "time": _now(), **self.counters()}

    def _say(self, line: str) -> None:
        if self.notice:
            self.notice(line)

    def _broker_changed(self, state: str) -> None:
        if state == "connected":
            self.publisher.status(self.status())
            if self._broker_down:
                self._broker_down = False
                self._say(f"broker connected again; sending {self.publisher.unconfirmed} buffered messages")
        else:
            self._broker_down = True
            self._say(f"broker connection lost; buffering up to {self._bounds()}, then dropping the oldest")

    def _bounds(self) -> str:
        """The outbox's bounds as the operator gave them: "100000 messages or 256 MB"."""
        buffer = self.publisher.buffer
        bounds = f"{buffer.limit} messages"
        return bounds if buffer.max_bytes is None else f"{bounds} or {size_text(buffer.max_bytes)}"

    def stop(self) -> None:
        """Finish: stop reading, deliver what is buffered, say what happened."""
        self.stopped = True
        if self._stopping is not None:
            self._stopping.set()

    # --- the loop -----------------------------------------------------------------

    def handle(self, item) -> None:
        if isinstance(item, ConnectionStatus):
            self._switch_status(item)
            return
        if not isinstance(item, Event):
            return  # a popup state from a broker: relaying a relay is not a thing
        self.received += 1
        if item.hostname:
            self.hostname = item.hostname
        tracker = self.tracker
        changes = tracker.feed(item) if tracker is not None else []
        self.clock.tick()
        if self._wants is None or self._wants(item):
            ext = tracker.ext_for(item) if tracker is not None else None
            headers = {"ext": ext} if ext else {}
            self.publisher.send(Message(self.publisher.event_address(item, ext), _payload(item), "event", headers))
        self._send_popups(item.hostname, changes)

    def _send_popups(self, hostname: Optional[str], changes: list[LegView]) -> None:
        for leg in changes:
            if self.control is not None:
                self.control.controller.observe(leg)  # what proves an agent's request
            # ensure_ascii like `popup --format json`: no raw control or bidi characters.
            payload = json.dumps(popup_record(leg), ensure_ascii=True).encode()
            self.publisher.send(Message(self.publisher.popup_address(hostname, leg.ext), payload, "popup",
                                        {"ext": leg.ext}))

    def expire(self) -> None:
        """End the legs whose end was lost, on the switch's clock (as the popup does)."""
        if self.tracker is not None:
            self._send_popups(self.hostname, self.tracker.expire(self.clock.now()))

    def _switch_status(self, status: ConnectionStatus) -> None:
        if status.state not in ("connected", "disconnected"):
            return
        if status.state == "disconnected":
            self.switch_disconnects += 1
            again = "; reconnecting" if self.source.reconnects else ""
            # A transcript's disconnect notice is what the recorded switch did, not this run.
            where = "" if self.source.live else "in the recording, the "
            self._say(f"{where}switch disconnected ({status.reason}){again}")
        else:
            if self.switch == "disconnected":
                self._say("switch connected again" + (f" after {status.gap:.1f} s" if status.gap else ""))
            if self.switch != "connected":  # on connect and after each reconnect
                self._resyncing = asyncio.ensure_future(self._resync())
        self.switch = status.state
        self.publisher.status(self.status())

    async def _resync(self) -> None:
        """On connect and after a reconnect: calls already up reach the agents' desktops at
        once, and calls that ended while the link was down must not stay 'ringing' there."""
        if self.tracker is None:
            return
        tracker = self.tracker
        known = tracker.known()  # what was up before asking
        rows = await channels_up(self.source)
        if rows is None:
            return
        if self.hostname is None:  # before any event, the switch's name comes from its channel rows
            self.hostname = next((r["hostname"] for r in rows if isinstance(r.get("hostname"), str)), None)
        self._send_popups(self.hostname, tracker.resync(rows, self.clock.now(), known=known))

    def _rejected(self, line: str) -> None:
        # A flood of refused messages must not flood the operator: the summary counts them all.
        self._rejects_said += 1
        if self._rejects_said <= 5:
            self._say(line + ("; further refusals are only counted" if self._rejects_said == 5 else ""))

    async def _ingest(self) -> None:
        async for item in self.source:
            self.handle(item)
            if self.switch == "unknown" and isinstance(item, Event):
                self.switch = "connected"

    async def _heartbeat(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            self.expire()
            if time.monotonic() - last >= self.status_interval:
                last = time.monotonic()
                self.publisher.status(self.status())

    async def run(self) -> Summary:
        """Until the source ends or `stop()`; then deliver what is buffered (up to
        ``drain_timeout``) and return the summary (also kept in ``summary``)."""
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if self.stopped:
            self._stopping.set()
        self.publisher.on_change = lambda state: loop.call_soon_threadsafe(self._broker_changed, state)
        self.publisher.on_reject = lambda line: loop.call_soon_threadsafe(self._rejected, line)
        await self.publisher.start()
        self.publisher.status(self.status())
        if self.control is not None:
            await self.control.start(self)
        self._say(f"relaying {self.events} from {self.source.description} to {self.publisher.describe()}")
        beat = asyncio.ensure_future(self._heartbeat())
        ingest = asyncio.ensure_future(self._ingest())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({ingest, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            tasks = [t for t in (ingest, stopping, beat, self._resyncing) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            error = ingest.exception() if ingest.done() and not ingest.cancelled() else None
            if self.control is not None:
                await self.control.close()
            summary = await self._finish()
        if error is not None:
            raise error
        return summary

    async def _finish(self) -> Summary:
        publisher = self.publisher
        if publisher.unconfirmed:
            self._say(f"delivering {publisher.unconfirmed} buffered messages (up to {self.drain_timeout:g} s)")
        await publisher.drain(self.drain_timeout)
        await publisher.close(self.status("offline"))
        published = publisher.published
        self.summary = Summary(
            received=self.received,
            published_events=published["event"],
            published_popups=published["popup"],
            dropped=publisher.buffer.dropped,
            unconfirmed=publisher.unconfirmed,
            broker_disconnects=publisher.disconnects,
            switch_disconnects=self.switch_disconnects,
            source_dropped=self.source.dropped,
            rejected=sum(publisher.rejected.values()),
        )
        return self.summary


class RelayControl:
    """``relay --control``: the agents' requests through the broker (`eslkit.control.mqtt`,
    `eslkit.control.amqp`), carried out on the relay's own switch connection and proved by
    its call tracker, which follows every agent."""

    def __init__(self, engine: RelayEngine, *, policy: Policy, audit: Optional[AuditLog] = None, wait: float = 5.0):
        self.controller = Controller(engine.source.switch, engine.tracker.active, policy=policy, audit=audit,
                                     wait=wait)
        self.desk = None
        engine.control = self

    async def start(self, engine: RelayEngine) -> None:
        publisher = engine.publisher
        if getattr(publisher, "protocol", None) == "mqtt":
            from eslkit.control.mqtt import MqttDesk as Broker
        else:
            from eslkit.control.amqp import AmqpDesk as Broker
        self.desk = Broker(publisher.settings, Desk(self.controller), lambda: engine.hostname)
        await self.desk.start()

    async def close(self) -> None:
        if self.desk is not None:
            await self.desk.close()
        await self.controller.close()  # and its audit log


async def _show_status(engine: RelayEngine, live: Live) -> None:
    """Refresh the live status line each second; rates over the last 5 s, so a pause
    between bursts reads as a slower rate, not as 0."""
    history: deque = deque(maxlen=6)
    while True:
        counts = engine.counters()
        now = time.monotonic()
        history.append((now, counts["received"], counts["published"]))
        then, received, published = history[0]
        span = now - then
        rate_in = (counts["received"] - received) / span if span else 0.0
        rate_out = (counts["published"] - published) / span if span else 0.0
        live.update(Text(engine.status_line(rate_in, rate_out), no_wrap=True, overflow="ellipsis"), refresh=True)
        await asyncio.sleep(1.0)


def run(engine: RelayEngine, console: Optional[Console] = None) -> Optional[Summary]:
    """`eslkit relay`: open the source, relay until it ends or Ctrl-C, deliver, and raise
    `DeliveryIncomplete` when anything did not reach the broker.  The summary (also after
    an error) is in ``engine.summary``; None when Ctrl-C came while connecting.  On a
    terminal ``console``, a one-line live status stays under the notices while it runs."""
    async def main() -> Optional[Summary]:
        with stop_on_signals(engine.stop) as interrupted:
            try:
                if not await open_unless_stopped(engine.source, interrupted):
                    return None  # Ctrl-C while connecting: nothing was relayed
                if console is None or not console.is_terminal:
                    return await engine.run()
                with Live(Text(""), console=console, transient=True, auto_refresh=False) as live:
                    shown = asyncio.ensure_future(_show_status(engine, live))
                    try:
                        return await engine.run()
                    finally:
                        shown.cancel()
            finally:
                await engine.source.close()

    try:
        summary = asyncio.run(main())
    except KeyboardInterrupt:
        if engine.summary is None:
            raise  # a second Ctrl-C during the drain: what was buffered is not confirmed
        summary = engine.summary
    if summary is not None and not summary.complete:
        if summary.dropped or summary.unconfirmed or summary.rejected:
            lost = summary.dropped + summary.unconfirmed + summary.rejected
            raise DeliveryIncomplete(
                f"{lost} messages did not reach the broker ({summary.dropped} dropped from a full buffer, "
                f"{summary.unconfirmed} not confirmed, {summary.rejected} refused as not publishable).",
                # A bigger buffer only helps when it overflowed.
                None if summary.dropped else "Keep the broker reachable, or give it longer with --drain-timeout.",
            )
        raise DeliveryIncomplete(
            f"{summary.source_dropped} events were dropped before the relay could read them.",
            "The relay fell behind the switch: relay fewer events (--filter) or give it more CPU.",
        )
    return summary
