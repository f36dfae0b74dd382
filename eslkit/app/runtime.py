"""What every run engine needs at run time: Ctrl-C as a request to finish, the switch's
clock, and the resync after a reconnect."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from typing import Callable, Iterator, Optional, Sequence

from eslkit.calls import CallTracker, LegView, live_channels
from eslkit.errors import EslkitError
from eslkit.sources.base import Source

__all__ = ["stop_on_signals", "open_unless_stopped", "SwitchClock", "channels_up", "resync", "link_lost", "drop_stdout"]


# After a Ctrl-C, a run that has not finished within this many seconds says how to quit at once.
STILL_FINISHING_AFTER = 1.0


@contextlib.contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[asyncio.Event]:
    """Ctrl-C and SIGTERM call ``stop()`` instead of raising KeyboardInterrupt, so a run
    can leave the terminal in order, write out what it holds and say what it did.  The
    event it gives is set then too: `open_unless_stopped` waits on it while connecting.

    Finishing can hang on what is outside eslkit — a reader that stopped reading a full
    pipe, a broker that does not confirm — so a run still finishing after a second says
    so on stderr, and a second Ctrl-C quits at once: KeyboardInterrupt, with what was
    still to be written to a pipe or file thrown away (outside the main thread, where
    there are no signal handlers, nothing changes)."""
    interrupted = asyncio.Event()
    if threading.current_thread() is not threading.main_thread():
        yield interrupted
        return
    loop = asyncio.get_running_loop()
    timer: list[threading.Timer] = []

    def stopping() -> None:
        interrupted.set()
        stop()

    def handler(signum: int, frame) -> None:
        # A Python-level handler, not loop.add_signal_handler: it runs even while the loop
        # is stuck in a blocked write, which is when a second Ctrl-C matters most.
        if timer and signum == signal.SIGINT:
            if not os.isatty(1):
                drop_stdout()  # nothing more may block on the reader that stopped reading
            raise KeyboardInterrupt
        if not timer:
            timer.append(threading.Timer(STILL_FINISHING_AFTER, _say_still_finishing))
            timer[0].daemon = True
            timer[0].start()
        loop.call_soon_threadsafe(stopping)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield interrupted
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        if timer:
            timer[0].cancel()


async def open_unless_stopped(source: Source, interrupted: asyncio.Event) -> bool:
    """Open ``source`` unless Ctrl-C comes first (a switch that does not answer, a
    connect that waits for --timeout): False then.  The caller closes the source."""
    opening = asyncio.ensure_future(source.open())
    waiting = asyncio.ensure_future(interrupted.wait())
    try:
        await asyncio.wait([opening, waiting], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
    if opening.done():
        opening.result()  # the user's errors (AuthError, ConnectionRefused, …) raise here
        return True
    while not opening.done():
        opening.cancel()  # again if need be: Python < 3.12's wait_for can lose a cancel
        await asyncio.wait({opening}, timeout=0.5)
    if not opening.cancelled():
        opening.exception()  # an error or a late success after Ctrl-C: not the user's concern now
    return False


def _say_still_finishing() -> None:
    with contextlib.suppress(OSError):
        os.write(2, b"eslkit: still finishing; press Ctrl-C again to quit at once.\n")


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


async def unregistered(source: Source, exts: Sequence[str]) -> list[str]:
    """The extensions no phone is registered as, by mod_sofia's ``sofia_contact */EXT``
    (the default domain, every profile); none when there is no switch to ask, it has no
    mod_sofia, or it does not answer."""
    switch = source.switch
    if switch is None:
        return []
    missing = []
    for ext in exts:
        try:
            reply = await switch.api(f"sofia_contact */{ext}", timeout=10)
        except (EslkitError, asyncio.TimeoutError):
            return []
        if reply.strip() == "error/user_not_registered":
            missing.append(ext)
    return missing


async def resync(source: Source, tracker: CallTracker, now: Callable[[], Optional[float]]) -> list[LegView]:
    """On connect and after a reconnect, ask the switch what it has up: a call already up
    shows at once, and a call that ended while the link was down does not stay ringing.
    Nothing to ask for a file or a broker (a relay's tracker resyncs and publishes)."""
    known = tracker.known()  # what was up before asking: a leg that begins meanwhile is kept
    rows = await channels_up(source)
    return [] if rows is None else tracker.resync(rows, now(), known=known)


def link_lost(source: Source, reason: str, heading: str) -> tuple[str, str]:
    """(heading, rest) of the stderr line for a link that went down: a live source says
    whether it reconnects; a file only tells what the recorded switch did (a transcript's
    disconnect notice): nothing reconnects there."""
    reason = reason.strip() or "the link went down"
    if not source.live:
        return "eslkit: in the recording, the link was lost:", reason
    return heading, reason + (" — reconnecting" if source.reconnects else "")


def drop_stdout() -> None:
    """Point stdout at /dev/null, so Python's flush at exit does not fail again on what it
    still holds (the reader went away, or the disk is full)."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
