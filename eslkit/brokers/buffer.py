"""The relay's outbox: bounded, ordered, drops the oldest and counts it.

The relay keeps reading the switch while the broker is away, so something
has to hold the messages meanwhile.  Memory must stay bounded — in messages and,
with ``max_bytes``, in bytes — and when either bound is hit the *oldest* message
goes (a desktop wants the newest state of a call) — never silently: every drop
is counted and reported.  The newest message always stays, even one larger than
the byte bound on its own: every message passes through here, also while the
broker is up, and a bound meant for outages must not refuse what it would take.

Filled and drained on the relay's event loop (both publishers run there); it stays
thread-safe, with a lock, for a caller that drains it from a thread.  A publisher ``take()``s one message, and if the broker goes away
before confirming it, ``put_back()`` returns it to the front, keeping order.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Generic, Iterable, Optional, TypeVar

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


def message_size(message: Message) -> int:
    """What the outbox counts for a message: its payload and its address, what the relay
    holds (an address is ASCII but for a rare hostname: a character is a byte)."""
    return len(message.payload) + len(message.address)


class Buffer(Generic[T]):
    """A FIFO of at most ``limit`` items and, with ``max_bytes``, at most that many bytes
    as ``size`` counts them; adding to a full one drops the oldest."""

    def __init__(self, limit: int, max_bytes: Optional[int] = None,
                 size: Callable[[T], int] = message_size):
        if limit < 1:
            raise ValueError("the buffer limit must be at least 1")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("the buffer's byte bound must be at least 1")
        self.limit = limit
        self.max_bytes = max_bytes
        self._size = size if max_bytes is not None else None  # no byte bound: nothing to count
        self._bound = max_bytes if max_bytes is not None else float("inf")
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.added = 0
        self.dropped = 0
        self.high_water = 0
        self.bytes = 0  # a running total of what is held (with max_bytes), so each put and take is O(1)

    def put(self, item: T) -> T | None:
        """Append; return the oldest item dropped to make room, if any (the byte bound may
        drop several: each is counted in ``dropped``)."""
        with self._cond:
            items = self._items
            items.append(item)
            if self._size is not None:
                self.bytes += self._size(item)
            self.added += 1
            dropped = self._trim() if len(items) > self.limit or self.bytes > self._bound else None
            self.high_water = max(self.high_water, len(items))
            self._cond.notify()
            return dropped

    def put_back(self, items: Iterable[T]) -> None:
        """Return unconfirmed items to the front, in their original order.

        If that overflows either bound, the oldest still go first (counted)."""
        items = list(items)
        with self._cond:
            self._items.extendleft(reversed(items))
            if self._size is not None:
                self.bytes += sum(map(self._size, items))
            self._trim()
            self._cond.notify()

    def _trim(self) -> T | None:
        """Drop the oldest (counted) until both bounds hold; the newest always stays.
        Returns the first dropped, if any."""
        items, first = self._items, None
        while len(items) > self.limit or (self.bytes > self._bound and len(items) > 1):
            oldest = items.popleft()
            self.dropped += 1
            if self._size is not None:
                self.bytes -= self._size(oldest)
            if first is None:
                first = oldest
        return first

    def take(self, timeout: float | None = None) -> T | None:
        """The oldest item, waiting up to ``timeout`` seconds; None if none came
        (or the buffer was closed and is empty)."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if self._items:
                item = self._items.popleft()
                if self._size is not None:
                    self.bytes -= self._size(item)
                return item
            return None

    def take_many(self, most: int, timeout: float | None = None) -> list[T]:
        """Up to ``most`` of the oldest items (waiting like ``take`` for the first)."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            items = self._items
            taken = [items.popleft() for _ in range(min(most, len(items)))]
            if self._size is not None:
                self.bytes -= sum(map(self._size, taken))
            return taken

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

    def __repr__(self) -> str:
        held = f" {self.bytes}/{self.max_bytes} bytes" if self.max_bytes is not None else ""
        return f"<Buffer {len(self._items)}/{self.limit}{held} dropped={self.dropped}>"
