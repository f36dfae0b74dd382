"""Events already in memory as a `Source`: for a program (or a test, a benchmark) that
holds the events and wants a run engine (relay, popup, statistics) to take them."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Iterable, Optional

from eslkit.sources.base import Item
from eslkit.status import ConnectionStatus


class EventsSource:
    """Yields the items it is given, in order, then ends like a file."""

    live = False
    reconnects = False
    switch = None

    def __init__(self, items: Iterable[Item], *, description: str = "events in memory", pause_every: int = 256):
        self._items = items
        self.description = description
        self.pause_every = pause_every  # let the loop run every so many items
        self.received = 0
        self.dropped = 0
        self.subscriptions: list[str] = []
        self.filters: list[tuple[str, str]] = []
        self._closed: Optional[bool] = None

    async def open(self) -> None:
        self._closed = False

    async def close(self) -> None:
        self._closed = True

    async def __aiter__(self) -> AsyncIterator[Item]:
        for i, item in enumerate(self._items):
            if self._closed:
                return
            if not isinstance(item, ConnectionStatus):
                self.received += 1
            yield item
            if i % self.pause_every == self.pause_every - 1:
                await asyncio.sleep(0)
