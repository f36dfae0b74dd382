"""`--from mqtt://…` / `--from amqp://…`: events (or popup states) from a broker.

What `eslkit relay` published comes back as what the switch would have given:

- for `watch`: `Event` objects (``Event.from_dict`` of each message), from the
  events topics (``PREFIX/events/#``) or, on AMQP, every mod_amqp-style key;
- for `popup`: `PopupState` items, one per popup state change of the agent's
  own topic (``PREFIX/agents/EXT/popup``), and a `RemoteLegs` that stands in for
  the call tracker, so the popup's panel and JSON work unchanged.

Like `EslSource` it is an async iterable of items and `ConnectionStatus`, with
``open()``, ``close()``, ``received`` and ``dropped``.  Messages are untrusted:
anything that is not a JSON object of the right shape is counted in
``dropped`` (and ``invalid``) and skipped.

No ESL password is needed; the broker password comes from an environment
variable (``ESLKIT_BROKER_PASSWORD``, or the one named by ``?password_env=VAR``
in the URL), never from the URL itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from datetime import datetime
from typing import Any, AsyncIterator, Callable, Iterable, Optional, Sequence

from eslkit.brokers import subscriber
from eslkit.brokers.urls import PASSWORD_ENV, split_query
from eslkit.event import Event
from eslkit.status import ConnectionStatus

QUEUE_SIZE = 10_000


# --- popup states ------------------------------------------------------------------


class PopupState(Event):
    """A popup state change that came through a broker, as an Event so that the
    popup's ingest loop hands it to the tracker (a `RemoteLegs`) like any other."""

    __slots__ = ("leg",)

    def __init__(self, record: dict, leg: Any):
        super().__init__({"Event-Name": "EslkitPopupState"}, format="json")
        self.leg = leg
        self.body = json.dumps(record)


def _epoch(text: Any) -> Optional[float]:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _num(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _str(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def leg_from_record(record: Any):
    """The `LegView` behind one `popup --format json` object (None if it is not one)."""
    from eslkit.calls import LegView

    if not isinstance(record, dict):
        return None
    ext, state = _str(record.get("ext")), _str(record.get("state"))
    if not ext or state not in ("ringing", "answered", "ended"):
        return None
    when = _epoch(record.get("time"))
    ring, talk = _num(record.get("ring_seconds")), _num(record.get("talk_seconds"))
    answered_at = ended_at = created = None
    if state == "answered":
        answered_at = when
    elif state == "ended":
        ended_at = when
        if talk is not None and when is not None:
            answered_at = when - talk
    stop = answered_at or ended_at
    if ring is not None and stop is not None:
        created = stop - ring
    elif state == "ringing":
        created = when
    contact = record.get("contact")
    return LegView(
        ext=ext, state=state, leg_uuid=_str(record.get("leg_uuid")) or "",
        call_uuid=_str(record.get("call_uuid")) or "",
        time=when, outcome=_str(record.get("outcome")), caller_number=_str(record.get("caller_number")),
        caller_name=_str(record.get("caller_name")), dialed=_str(record.get("dialed")), queue=_str(record.get("queue")),
        hangup_cause=_str(record.get("hangup_cause")), created=created, answered_at=answered_at, ended_at=ended_at,
        contact=contact if isinstance(contact, dict) else None,
        direction="outgoing" if record.get("direction") == "outgoing" else "incoming",
        other_number=_str(record.get("other_number")), other_name=_str(record.get("other_name")),
        on_hold=record.get("on_hold") is True, transferred_from=_str(record.get("transferred_from")),
    )


class RemoteLegs:
    """What the popup asks of its call tracker, kept from the relay's state changes."""

    def __init__(self, exts: Iterable[str], *, lookup: Optional[Callable[[str], Optional[dict]]] = None,
                 history: int = 10, linger: float = 60.0):
        self.exts = set(exts)
        self.lookup = lookup
        self.now = 0.0
        self.linger = linger
        self._legs: dict[str, Any] = {}
        self._history: dict[str, deque] = {}
        self._history_len = history

    def feed(self, item: Event) -> list:
        leg = getattr(item, "leg", None)
        if leg is None or leg.ext not in self.exts:
            return []
        from dataclasses import replace

        party = leg.other_number or (leg.caller_number if leg.direction == "incoming" else None)
        if leg.contact is None and self.lookup is not None and party:
            known = self._legs.get(leg.leg_uuid)
            contact = known.contact if known is not None and known.contact else self.lookup(party)
            leg = replace(leg, contact=contact)
        if leg.time and leg.time > self.now:
            self.now = leg.time
        if leg.state == "ended":
            self._legs.pop(leg.leg_uuid, None)
            self._history.setdefault(leg.ext, deque(maxlen=self._history_len)).append(leg)
        else:
            self._legs[leg.leg_uuid] = leg
        return [leg]

    def active(self, ext: Optional[str] = None) -> list:
        return [leg for leg in self._legs.values() if ext is None or leg.ext == ext]

    def recent(self, ext: Optional[str] = None) -> list:
        if ext is not None:
            return list(reversed(self._history.get(ext, ())))
        return sorted((leg for h in self._history.values() for leg in h),
                      key=lambda leg: leg.ended_at or 0.0, reverse=True)

    def expire(self, now: Optional[float] = None) -> list:
        return []  # the relay's tracker expires legs and publishes the change


# --- the source ----------------------------------------------------------------------


class BrokerSource:
    """Subscribe to a broker and yield what `eslkit relay` put there."""

    reconnects = True

    def __init__(self, client, *, decode: Callable[[str, bytes], Optional[Event]],
                 description: str, subscriptions: Sequence[str], queue_size: int = QUEUE_SIZE):
        self.client = client  # an eslkit.brokers Subscriber
        self.conn = client  # views treat a source with a `conn` as live (it reconnects), not a file
        self.decode = decode
        self.description = description
        self.subscriptions = list(subscriptions)
        self.filters: list[tuple[str, str]] = []
        self.received = 0
        self.dropped = 0
        self.invalid = 0
        self._queue: deque = deque()
        self._queue_size = queue_size
        self._wake: Optional[asyncio.Event] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._down_since: Optional[float] = None
        self._closed = False

    # Called from the client library's thread.
    def _deliver(self, address: str, payload: bytes) -> None:
        self._loop.call_soon_threadsafe(self._put, ("message", address, payload))

    def _link(self, state: str, reason: str) -> None:
        self._loop.call_soon_threadsafe(self._put, ("link", state, reason))

    def _put(self, entry) -> None:
        if len(self._queue) >= self._queue_size:
            self._queue.popleft()  # the oldest goes; counted, like the client's queue
            self.dropped += 1
        self._queue.append(entry)
        self._wake.set()

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await asyncio.to_thread(self.client.start, self._deliver, self._link)

    async def __aiter__(self) -> AsyncIterator[Any]:
        yield ConnectionStatus("connected", f"subscribed at {self.description}")
        while not self._closed:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            kind, a, b = self._queue.popleft()
            if kind == "link":
                if a == "disconnected":
                    self._down_since = time.monotonic()
                    yield ConnectionStatus("disconnected", b)
                else:
                    gap = time.monotonic() - self._down_since if self._down_since else None
                    self._down_since = None
                    yield ConnectionStatus("connected", b, gap)
                continue
            item = None
            try:
                item = self.decode(a, b)
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
                item = None
            if item is SKIP:
                continue
            if item is None:
                self.invalid += 1
                self.dropped += 1
                continue
            self.received += 1
            yield item

    async def close(self) -> None:
        self._closed = True
        if self._wake is not None:
            self._wake.set()
        await asyncio.to_thread(self.client.stop)


SKIP = object()  # a message that is not for this source (not an error)


def decode_event(address: str, payload: bytes) -> Any:
    if ".agents." in address and address.endswith(".popup"):
        return SKIP  # AMQP: popup states share the exchange with the events
    data = json.loads(payload)
    if not isinstance(data, dict) or not isinstance(data.get("Event-Name"), str):
        return None
    return Event.from_dict(data)


def decode_popup(address: str, payload: bytes) -> Optional[Event]:
    record = json.loads(payload)
    leg = leg_from_record(record)
    return None if leg is None else PopupState(record, leg)


# --- choosing the broker -----------------------------------------------------------------


def open_broker_source(
    url: str,
    *,
    popup_exts: Optional[Sequence[str]] = None,
    client_id: Optional[str] = None,
    password_env: Optional[str] = None,
    tls_ca: Optional[str] = None,
) -> BrokerSource:
    """A source for `--from URL`: events for watch, or (with ``popup_exts``) the
    popup states of those extensions.  Call ``await source.open()`` next."""
    bare, query = split_query(url)
    env = password_env or query.get("password_env") or (PASSWORD_ENV if PASSWORD_ENV in os.environ else None)
    client, where, topics = subscriber(bare, popup_exts=popup_exts, client_id=client_id or query.get("client_id"),
                                       password_env=env, tls_ca=tls_ca)
    decode = decode_popup if popup_exts else decode_event
    return BrokerSource(client, decode=decode, description=where, subscriptions=topics)


def popup_from_broker(url: str, exts: Sequence[str], *, lookup=None, **kw) -> tuple[BrokerSource, RemoteLegs]:
    """`popup --from URL`: the source and the tracker stand-in, in one call."""
    return open_broker_source(url, popup_exts=exts, **kw), RemoteLegs(exts, lookup=lookup)
