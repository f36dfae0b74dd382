"""What the MQTT and AMQP publishers share: the window of messages in flight.

A publisher takes messages from the relay's bounded `Buffer`, publishes up to
``window`` of them ahead of the broker's acknowledgements, and counts each as
published only when it is acknowledged.  When the link breaks, everything
unacknowledged goes back to the front of the buffer, in order; the publisher
reconnects with capped back-off and sends it first.  Everything runs on the
relay's event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from typing import Callable, Optional

from eslkit.backoff import Backoff
from eslkit.brokers.buffer import Buffer, Message
from eslkit.errors import BrokerError


class WindowedPublisher:
    """The base of `MqttPublisher` and `AmqpPublisher`: subclasses open the link
    (`_open`, raising BrokerError) and publish what `_pump` takes."""

    address_name = "address"  # "topic", "routing key": how a refusal names it

    def __init__(self, buffer: Buffer[Message], *, window: int, reconnect_delay: tuple[float, float],
                 connect_timeout: float):
        self.buffer = buffer
        self.window = max(1, window)
        self.reconnect_delay = reconnect_delay
        self.connect_timeout = connect_timeout
        self.published: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()  # messages no broker would take: counted, never re-sent
        self.on_reject: Optional[Callable[[str], None]] = None
        self.on_change: Optional[Callable[[str], None]] = None  # "connected" / "disconnected"
        self.connects = 0
        self.disconnects = 0
        self.last_error: Optional[str] = None
        self._inflight: deque = deque()  # (packet id or delivery tag, Message or None for a status), oldest first
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._pumping = False
        self._closing = False

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    @property
    def unconfirmed(self) -> int:
        """Messages accepted and neither acknowledged nor dropped nor refused: waiting in
        the buffer or in flight."""
        return (self.buffer.added - self.buffer.dropped - sum(self.published.values())
                - sum(self.rejected.values()))

    def send(self, message: Message) -> Optional[Message]:
        """Queue one message; returns the one dropped to make room, if any."""
        dropped = self.buffer.put(message)
        self._wake()
        return dropped

    async def drain(self, timeout: float) -> bool:
        """Wait until everything queued is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.unconfirmed:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def _wake(self) -> None:
        if not self._pumping and self._loop is not None:
            self._pumping = True
            self._loop.call_soon(self._pump)  # once per turn of the loop, however many were sent

    def _pump(self) -> None:
        raise NotImplementedError

    async def _open(self) -> None:
        raise NotImplementedError

    def _sent(self, tag: int, message: Optional[Message]) -> None:
        self._inflight.append((tag, message))

    def _acknowledged(self, tag: int, multiple: bool = False) -> list:
        """The messages the broker acknowledged with `tag` (and, with `multiple`, every one
        before it), taken out of the window; the pump is woken when half of it is free."""
        inflight = self._inflight
        done = []
        if multiple:
            while inflight and inflight[0][0] <= tag:
                done.append(inflight.popleft()[1])
        elif inflight and inflight[0][0] == tag:
            done.append(inflight.popleft()[1])
        else:  # acknowledged out of order: rare, so a scan is fine
            found = next((entry for entry in inflight if entry[0] == tag), None)
            if found is not None:
                inflight.remove(found)
                done.append(found[1])
        if len(inflight) < self.window // 2 and len(self.buffer):
            self._wake()
        return [m for m in done if m is not None]  # None: a status message, best effort

    def _link_lost(self, why: object) -> None:
        """The link broke: what was in flight goes back to the front, in order; reconnect."""
        self.buffer.put_back([m for _, m in self._inflight if m is not None])
        self._inflight.clear()
        if self._closing:
            return
        self.disconnects += 1
        self.last_error = f"broker connection lost: {why}"
        if self.on_change:
            self.on_change("disconnected")
        self._retry = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        low, high = self.reconnect_delay
        for delay in Backoff(initial=low, cap=high).delays():
            await asyncio.sleep(delay)
            try:
                await self._open()
            except BrokerError as exc:
                self.last_error = str(exc)
                continue
            if self.on_change:
                self.on_change("connected")
            return

    def _reject(self, message: Message, why: str) -> None:
        """Count a message that cannot be published, and say so (on_reject)."""
        self.rejected[message.kind] += 1
        self.last_error = f"a message to {message.address[:80]!r} was not published: {why}"
        if self.on_reject:
            self.on_reject(f"{message.kind} not published ({why}); {self.address_name} {message.address[:80]!r}")
