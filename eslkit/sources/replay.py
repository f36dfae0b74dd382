"""Events from a file instead of a switch: a recording or a raw transcript
(`eslkit.recording` reads both).

The file plays the switch: it yields only the events a switch would have sent
for its ``names`` and ``filters`` (``--filter``, ``--header``; `eslkit.subscription`).  As fast
as possible by default; with ``speed`` the original spacing is kept (``speed=2``
is twice as fast), from the times the file gives.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import AsyncIterator, Iterable, Optional, Sequence, Union

from eslkit import recording
from eslkit.errors import InputFileError
from eslkit.event import Event
from eslkit.status import ConnectionStatus
from eslkit.subscription import Subscription, event_words

Item = Union[Event, ConnectionStatus]


class ReplaySource:
    """A recording or a raw transcript as a `eslkit.sources.base.Source`."""

    live = False
    reconnects = False
    switch = None

    def __init__(self, path: Union[str, Path], *, speed: Optional[float] = None,
                 names: Sequence[str] = ("ALL",), filters: Iterable[tuple[str, str]] = ()):
        self.path = Path(path)
        if speed is not None and speed <= 0:
            raise InputFileError("--speed must be greater than 0.", "Give e.g. --speed 1 for real time.")
        self.speed = speed
        self.subscriptions = event_words(names) or ["ALL"]
        self.filters = list(filters)
        self.subscription = Subscription(self.subscriptions, self.filters)
        self.received = 0
        self.dropped = 0
        self.kind = ""
        self.damage: Optional[recording.Damage] = None  # the damaged lines skipped so far

    @property
    def description(self) -> str:
        return f"replay of {self.path.name}"

    async def open(self) -> None:
        self.kind = recording.file_kind(self.path)  # a missing or unknown file says so now

    async def close(self) -> None:
        pass

    async def __aiter__(self) -> AsyncIterator[Item]:
        yield ConnectionStatus("connected", self.description)
        wants = None if self.subscription.everything else self.subscription.wants
        start_wall: Optional[float] = None
        start_file: Optional[float] = None
        n = 0
        damage = self.damage = recording.Damage(self.path)
        for stamp, item, _ in recording.read(self.path, damage):
            if isinstance(item, Event):
                if wants is not None and not wants(item):
                    continue
                self.received += 1
            if self.speed is not None and stamp is not None:
                if start_file is None:
                    start_file, start_wall = stamp, time.monotonic()
                delay = (stamp - start_file) / self.speed - (time.monotonic() - start_wall)
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                n += 1
                if n % 512 == 0:
                    await asyncio.sleep(0)  # let the screen refresh and Ctrl-C through
            yield item
        if damage:
            raise damage.error()  # after the rest was played: the run's summary comes first
