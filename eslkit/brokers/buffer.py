"""The relay's outbox: bounded, ordered, drops the oldest and counts it.

The relay keeps reading the switch while the broker is away, so something
has to hold the messages meanwhile.  Memory must stay bounded, and when the
bound is hit the *oldest* message goes (a desktop wants the newest state of a
call) — never silently: every drop is counted and reported.

Filled from the asyncio side, drained by a sink's publishing thread, so it is
thread-safe.  A publisher ``take()``s one message, and if the broker goes away
before confirming it, ``put_back()`` returns it to the front, keeping order.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Generic, Iterable, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Message:
    """One broker message: an MQTT topic or an AMQP routing key, and a JSON body.

    ``kind`` is "event" or "popup" (for the counters); ``headers`` become AMQP
    message headers (MQTT 3.1.1 has none)."""

    address: str
    payload: bytes
    kind: str = "event"
    headers: dict = field(default_factory=dict)


class Buffer(Generic[T]):
    """A FIFO of at most ``limit`` items; adding to a full one drops the oldest."""

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError("the buffer limit must be at least 1")
        self.limit = limit
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.added = 0
        self.dropped = 0
        self.high_water = 0

    def put(self, item: T) -> T | None:
        """Append; return the item dropped to make room, if any."""
        with self._cond:
            dropped = None
            if len(self._items) >= self.limit:
                dropped = self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self.added += 1
            self.high_water = max(self.high_water, len(self._items))
            self._cond.notify()
            return dropped

    def put_back(self, items: Iterable[T]) -> None:
        """Return unconfirmed items to the front, in their original order.

        If that overflows the bound, the oldest still go first (counted)."""
        items = list(items)
        with self._cond:
            self._items.extendleft(reversed(items))
            while len(self._items) > self.limit:
                self._items.popleft()
                self.dropped += 1
            self._cond.notify()

    def take(self, timeout: float | None = None) -> T | None:
        """The oldest item, waiting up to ``timeout`` seconds; None if none came
        (or the buffer was closed and is empty)."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if self._items:
                return self._items.popleft()
            return None

    def take_many(self, most: int, timeout: float | None = None) -> list[T]:
        """Up to ``most`` of the oldest items (waiting like ``take`` for the first)."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            items = self._items
            return [items.popleft() for _ in range(min(most, len(items)))]

    def peek_all(self) -> list[T]:
        with self._cond:
            return list(self._items)

    def close(self) -> None:
        """Wake every waiting ``take()``; items already in stay takeable."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def stats(self) -> dict[str, Any]:
        return {"buffered": len(self._items), "dropped": self.dropped, "high_water": self.high_water}

    def __repr__(self) -> str:
        return f"<Buffer {len(self._items)}/{self.limit} dropped={self.dropped}>"
