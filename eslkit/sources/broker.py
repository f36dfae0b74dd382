"""`--from mqtt://…` / `--from amqp://…`: what `eslkit relay` published, from a broker.

What the relay published comes back as what the switch (or its tracker) gave:

- for `watch`: `Event` objects (``Event.from_dict`` of each message), from the
  events topics (``PREFIX/events/#``) or, on AMQP, every mod_amqp-style key; the
  source's ``names`` and ``filters`` are applied here, with the switch's rules;
- for `popup`: `LegView` items, one per popup state change of the agents' own
  topics (``PREFIX/agents/EXT/popup``), the states the relay's call tracker made.

Messages are untrusted: anything that is not a JSON object of the right shape is
counted in ``dropped`` (and ``invalid``) and skipped.

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
from typing import Any, AsyncIterator, Callable, Iterable, Optional, Sequence

from eslkit.brokers import Subscriber, subscriber
from eslkit.brokers.urls import PASSWORD_ENV, split_query
from eslkit.calls import LegView, leg_from_record
from eslkit.event import Event
from eslkit.status import ConnectionStatus
from eslkit.subscription import Subscription

QUEUE_SIZE = 10_000


# --- the source ----------------------------------------------------------------------


class BrokerSource:
    """Subscribe to a broker and yield what `eslkit relay` put there (a
    `eslkit.sources.base.Source`); ``wants``: which decoded events to keep."""

    live = True
    reconnects = True
    switch = None  # a broker cannot answer api commands

    def __init__(self, client: Subscriber, *, decode: Callable[[str, bytes], Any],
                 description: str, subscriptions: Sequence[str], queue_size: int = QUEUE_SIZE,
                 subscription: Optional[Subscription] = None):
        self.client = client
        self.decode = decode
        self.description = description
        self.subscriptions = list(subscriptions)
        self.subscription = subscription
        self.filters: list[tuple[str, str]] = list(subscription.filters.items) if subscription else []
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
        sub = self.subscription
        wants = None if sub is None or sub.everything else sub.wants
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
            if wants is not None and not wants(item):
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


def decode_popup(address: str, payload: bytes) -> Optional[LegView]:
    return leg_from_record(json.loads(payload))


# --- choosing the broker -----------------------------------------------------------------


def open_broker_source(
    url: str,
    *,
    popup_exts: Optional[Sequence[str]] = None,
    names: Iterable[str] = ("ALL",),
    filters: Iterable[tuple[str, str]] = (),
    client_id: Optional[str] = None,
    password_env: Optional[str] = None,
    tls_ca: Optional[str] = None,
) -> BrokerSource:
    """A source for `--from URL`: events for watch (those ``names`` and ``filters`` want),
    or (with ``popup_exts``) the popup states of those extensions.  Call ``await
    source.open()`` next."""
    bare, query = split_query(url)
    env = password_env or query.get("password_env") or (PASSWORD_ENV if PASSWORD_ENV in os.environ else None)
    client, where, topics = subscriber(bare, popup_exts=popup_exts, client_id=client_id or query.get("client_id"),
                                       password_env=env, tls_ca=tls_ca)
    if popup_exts:
        return BrokerSource(client, decode=decode_popup, description=where, subscriptions=topics)
    return BrokerSource(client, decode=decode_event, description=where, subscriptions=topics,
                        subscription=Subscription(names, filters))
