"""Sources for engine tests: the real captures' events in memory.

    events = capture_events(captures, "scenario_queue_plain")   # the real switch's events, in order
    events = events_in(path)                                    # the same, from any transcript
    source = from_list(events, gate, every=30)                  # an EventsSource that awaits gate(i) at i = 30, 60…
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Awaitable, Callable, Optional

from eslkit.event import Event
from eslkit.protocol import EventFrame, Parser
from eslkit.sources import EventsSource


def events_in(path: Path) -> list[Event]:
    """The events of a transcript (a real capture's ``NAME.raw``), as the parser gives them."""
    parser = Parser()
    frames = parser.feed(path.read_bytes()) + parser.feed(b"")
    return [f.event for f in frames if isinstance(f, EventFrame)]


def capture_events(captures: Path, name: str) -> list[Event]:
    """The events of the capture ``NAME`` in the ``captures`` folder."""
    return events_in(captures / f"{name}.raw")


class GatedSource(EventsSource):
    """Events in memory; with a gate, waits for ``gate(i)`` at each multiple of ``every``."""

    def __init__(self, events: list, gate: Optional[Callable[[int], Awaitable[None]]] = None, every: int = 0,
                 dropped: int = 0):
        super().__init__(events)
        self.events, self.gate, self.every = events, gate, every
        self.dropped = dropped  # as if the switch connection's queue had dropped these

    async def __aiter__(self):
        for i, ev in enumerate(self.events):
            if self.gate is not None and self.every and i and i % self.every == 0:
                await self.gate(i)
            self.received += 1
            yield ev
            await asyncio.sleep(0)


def from_list(events: list, gate=None, every: int = 0, dropped: int = 0) -> GatedSource:
    return GatedSource(events, gate, every, dropped)
