"""What every run engine needs at run time: Ctrl-C as a request to finish, the switch's
clock, and the resync after a reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from typing import Callable, Iterator, Optional

from eslkit.calls import CallTracker, LegView, live_channels
from eslkit.errors import EslkitError
from eslkit.sources.base import Source

__all__ = ["stop_on_signals", "SwitchClock", "channels_up", "resync", "drop_stdout"]


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """Ctrl-C and SIGTERM call ``stop()`` instead of raising KeyboardInterrupt, so a run
    can leave the terminal in order and say what it did (outside the main thread, or on
    a loop that cannot take signal handlers, nothing changes)."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


class SwitchClock:
    """The switch's clock now: the latest event time seen plus what has passed here since.

    Ring and talk timers, the expiry of legs whose end was lost and the end of legs
    after a resync all run on it, so a replay at any speed and a switch whose clock is
    off by minutes both stay consistent."""

    def __init__(self, latest: Callable[[], float]):
        self._latest = latest  # the newest switch time the events carried (0: none yet)
        self._seen = 0.0
        self._at = time.monotonic()

    def tick(self) -> None:
        """Call after each event: the local count restarts when the switch's time moved."""
        latest = self._latest()
        if latest != self._seen:
            self._seen = latest
            self._at = time.monotonic()

    def now(self) -> Optional[float]:
        """The switch's time now, or None before any event carried one."""
        latest = self._latest()
        if not latest:
            return None
        if latest != self._seen:
            self.tick()
        return latest + (time.monotonic() - self._at)


async def channels_up(source: Source) -> Optional[list[dict]]:
    """The rows of ``show channels as json`` on the switch behind ``source``; None when there
    is no switch to ask (a file, a broker) or it did not answer usefully."""
    switch = source.switch
    if switch is None:
        return None
    try:
        return live_channels(await switch.api("show channels as json", timeout=10))
    except (EslkitError, ValueError, asyncio.TimeoutError):
        return None  # the next events (and the expiry) will sort it out


async def resync(source: Source, tracker: CallTracker, now: Callable[[], Optional[float]]) -> list[LegView]:
    """On connect and after a reconnect, ask the switch what it has up: a call already up
    shows at once, and a call that ended while the link was down does not stay ringing.
    Nothing to ask for a file or a broker (a relay's tracker resyncs and publishes)."""
    known = tracker.known()  # what was up before asking: a leg that begins meanwhile is kept
    rows = await channels_up(source)
    return [] if rows is None else tracker.resync(rows, now(), known=known)


def drop_stdout() -> None:
    """Point stdout at /dev/null, so Python's flush at exit does not fail again on what it
    still holds (the reader went away, or the disk is full)."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
