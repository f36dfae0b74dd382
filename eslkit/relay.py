"""The relay loop: events from one source → broker messages through one sink.

For each event: the call tracker names the agent extension it belongs to
(``ext``) and any popup state changes it causes; the event goes to its topic
or routing key, each popup state change to its agent's address.  Messages wait
in the sink's bounded buffer while the broker is away.  A status message says
``online``/``offline``, whether the switch is connected, and the counters.

Nothing is lost silently: every message dropped from a full buffer is counted,
and at the end the summary says what was received, published, dropped and
left unconfirmed.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, AsyncIterable, Callable, Iterable, Protocol

from eslkit.event import Event
from eslkit.brokers import Publisher
from eslkit.brokers.buffer import Message
from eslkit.subscription import Subscription, event_words


class Attribution(Protocol):
    """The call tracker, seen from the relay."""

    def feed(self, event: Event) -> tuple[str | None, list[tuple[str, dict]]]:
        """The event's agent extension (or None) and the popup state changes
        it causes, as (ext, the JSON object `popup --format json` prints)."""


class TrackerAttribution:
    """`Attribution` from eslkit.calls.CallTracker, following every agent.

    An agent leg's events belong to its extension; the caller's leg belongs to
    the agent it is bridged to (before that, to nobody: ``-``)."""

    def __init__(self, tracker: Any = None):
        if tracker is None:
            from eslkit.calls import CallTracker

            tracker = CallTracker(None)
        self.tracker = tracker

    def feed(self, event: Event) -> tuple[str | None, list[tuple[str, dict]]]:
        from eslkit.calls import popup_record

        changes = self.tracker.feed(event)
        return self.ext_for(event), [(leg.ext, popup_record(leg)) for leg in changes]

    def ext_for(self, event: Event) -> str | None:
        return self.tracker.ext_for(event)

    def resync(self, live: Iterable[Any], now: float | None = None, *,
               known: Iterable[str] | None = None) -> list[tuple[str, dict]]:
        """What the switch has up (`CallTracker.resync`): calls already up start, the
        legs it no longer has end."""
        from eslkit.calls import popup_record

        return [(leg.ext, popup_record(leg)) for leg in self.tracker.resync(live, now, known=known)]

    def expire(self, now: float | None = None) -> list[tuple[str, dict]]:
        from eslkit.calls import popup_record

        return [(leg.ext, popup_record(leg)) for leg in self.tracker.expire(now)]

    @property
    def now(self) -> float:
        return getattr(self.tracker, "now", 0.0)


def switch_subscription(names: list[str]) -> list[str]:
    """What the relay asks a live switch for: the names it publishes plus what the call
    tracker needs (popup states are published whatever --filter says)."""
    from eslkit.calls import POPUP_EVENTS

    return ["ALL"] if "ALL" in names else event_words([*names, *POPUP_EVENTS])


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


@dataclass
class Relay:
    source: AsyncIterable
    sink: Publisher
    attribution: Attribution | None = None
    # Which events are published (`--filter`, `--header`, as a switch would choose them);
    # the tracker sees every event, and every popup state is published.
    select: Subscription = field(default_factory=lambda: Subscription(["ALL"]))
    status_interval: float = 10.0
    drain_timeout: float = 10.0
    notice: Callable[[str], None] | None = None  # one line for the operator (stderr)

    def __post_init__(self) -> None:
        self.received = 0
        self.switch = "unknown"
        self.switch_disconnects = 0
        self.hostname: str | None = None
        self.started = _now()
        self._last_event_clock = time.monotonic()
        self._broker_down = False
        self.summary: Summary | None = None
        self._stopping: asyncio.Event | None = None
        self._resync_task: asyncio.Future | None = None
        self._rejects_said = 0

    # --- status -----------------------------------------------------------------

    def counters(self) -> dict[str, int]:
        published = self.sink.published
        return {
            "received": self.received,
            "published": published["event"] + published["popup"],
            "buffered": self.sink.unconfirmed,
            "dropped": self.sink.buffer.dropped,
            # Events the switch connection dropped because the relay fell behind.
            "source_dropped": getattr(self.source, "dropped", 0) or 0,
        }

    def status(self, state: str = "online") -> dict:
        return {"state": state, "switch": self.switch, "hostname": self.hostname,
                "since": self.started, "time": _now(), **self.counters()}

    def _say(self, line: str) -> None:
        if self.notice:
            self.notice(line)

    def _broker_changed(self, state: str) -> None:
        if state == "connected":
            self.sink.status(self.status())
            if self._broker_down:
                self._broker_down = False
                self._say(f"broker connected again; sending {self.sink.unconfirmed} buffered messages")
        else:
            self._broker_down = True
            self._say(f"broker connection lost; buffering up to {self.sink.buffer.limit} messages")

    def stop(self) -> None:
        """Finish: stop reading, deliver what is buffered, say what happened."""
        if self._stopping is not None:
            self._stopping.set()

    # --- the loop -----------------------------------------------------------------

    def handle(self, item: Any) -> None:
        if not isinstance(item, Event):
            self._switch_status(item)
            return
        self.received += 1
        self._last_event_clock = time.monotonic()
        if item.hostname:
            self.hostname = item.hostname
        ext, changes = self.attribution.feed(item) if self.attribution else (None, [])
        if self.select.wants(item):
            headers = {"ext": ext} if ext else {}
            self.sink.send(Message(self.sink.event_address(item, ext), item.to_json().encode(), "event", headers))
        self._send_popups(item.hostname, changes)

    def _send_popups(self, hostname: str | None, changes: list[tuple[str, dict]]) -> None:
        for agent, state in changes:
            # ensure_ascii like `popup --format json`: no raw control or bidi characters.
            payload = json.dumps(state, ensure_ascii=True).encode()
            self.sink.send(Message(self.sink.popup_address(hostname, agent), payload, "popup", {"ext": agent}))

    def expire(self) -> None:
        """End the legs whose end was lost, on the switch's clock (as the popup does)."""
        expire = getattr(self.attribution, "expire", None)
        if expire is None:
            return
        now = getattr(self.attribution, "now", 0.0)
        if now:
            now += time.monotonic() - self._last_event_clock
        self._send_popups(self.hostname, expire(now or None))

    def _switch_status(self, item: Any) -> None:
        state = getattr(item, "state", None)
        state_name = getattr(state, "value", state)
        if state_name not in ("connected", "disconnected"):
            return
        if state_name == "disconnected":
            self.switch_disconnects += 1
            again = "; reconnecting" if getattr(self.source, "reconnects", False) else ""
            self._say(f"switch disconnected ({getattr(item, 'reason', '')}){again}")
        else:
            if self.switch == "disconnected":
                gap = getattr(item, "gap", None)
                self._say("switch connected again" + (f" after {gap:.1f} s" if gap else ""))
            if self.switch != "connected":  # on connect and after each reconnect
                self._resync_task = asyncio.ensure_future(self._resync())
        self.switch = state_name
        self.sink.status(self.status())

    async def _resync(self) -> None:
        """On connect and after a reconnect, ask the switch which channels are up: calls
        already up reach the agents' desktops at once, and calls that ended while the link
        was down must not stay 'ringing' there."""
        from eslkit.calls import live_channels
        from eslkit.errors import EslkitError

        conn = getattr(self.source, "conn", None)
        resync = getattr(self.attribution, "resync", None)
        if not hasattr(conn, "api") or resync is None:
            return  # a recording or a broker: nothing to ask
        tracker = getattr(self.attribution, "tracker", None)
        known = tracker.known() if tracker is not None else None  # what was up before asking
        try:
            live = live_channels(await conn.api("show channels as json", timeout=10))
        except (EslkitError, ValueError, asyncio.TimeoutError):
            return  # the next events and the ring timeout will sort it out
        now = getattr(self.attribution, "now", 0.0)
        if now:
            now += time.monotonic() - self._last_event_clock
        # Before any event, the switch's name comes from its channel rows.
        if self.hostname is None:
            self.hostname = next((r["hostname"] for r in live if isinstance(r.get("hostname"), str)), None)
        self._send_popups(self.hostname, resync(live, now or None, known=known))

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
                self.sink.status(self.status())

    async def run(self) -> Summary:
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self.sink.on_change = lambda state: loop.call_soon_threadsafe(self._broker_changed, state)
        if hasattr(self.sink, "on_reject"):
            self.sink.on_reject = lambda line: loop.call_soon_threadsafe(self._rejected, line)
        await self.sink.start()
        self.sink.status(self.status())
        beat = asyncio.ensure_future(self._heartbeat())
        ingest = asyncio.ensure_future(self._ingest())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({ingest, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            tasks = [t for t in (ingest, stopping, beat, self._resync_task) if t is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if ingest.done() and not ingest.cancelled() and ingest.exception() is not None:
                error = ingest.exception()
            else:
                error = None
            summary = await self._finish()
        if error is not None:
            raise error
        return summary

    async def _finish(self) -> Summary:
        if self.sink.unconfirmed:
            self._say(f"delivering {self.sink.unconfirmed} buffered messages (up to {self.drain_timeout:g} s)")
        await self.sink.drain(self.drain_timeout)
        final = self.status("offline")
        await self.sink.close(final)
        published = self.sink.published
        summary = Summary(
            received=self.received,
            published_events=published["event"],
            published_popups=published["popup"],
            dropped=self.sink.buffer.dropped,
            unconfirmed=self.sink.unconfirmed,
            broker_disconnects=getattr(self.sink, "disconnects", 0),
            switch_disconnects=self.switch_disconnects,
            source_dropped=getattr(self.source, "dropped", 0) or 0,
            rejected=sum(getattr(self.sink, "rejected", {}).values()),
        )
        self.summary = summary
        return summary
