"""What every run engine needs at run time: Ctrl-C as a request to finish, the switch's
clock, and the resync after a reconnect (one question to the switch, `ask`, for the
call tracker and for the statistics)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from typing import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Optional, Protocol, Sequence

from rich.console import Console

from eslkit.app.keys import keyboard
from eslkit.calls import CallTracker, LegView
from eslkit.errors import EslkitError, OutputError
from eslkit.safe_text import visible
from eslkit.sources.base import Source
from eslkit.stats import Known
from eslkit.status import ConnectionStatus
from eslkit.switch_state import CHANNELS, EVERYTHING, SwitchState, ask_switch

__all__ = ["stop_on_signals", "open_unless_stopped", "until_stopped", "SwitchClock", "ask", "channels_up",
           "unregistered", "resync", "resync_stats", "link_text", "link_lost", "drop_stdout", "ScreenConsole", "run_on", "run_main"]


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


async def until_stopped(ingest: Awaitable[None], ticker: Awaitable[None], stop: asyncio.Event,
                        on_signal: Callable[[], None], *, live=None,
                        read_keys: Optional[Callable[[AsyncIterator[str]], Awaitable[None]]] = None,
                        also: Callable[[], Iterable[Optional[asyncio.Future]]] = tuple) -> Optional[BaseException]:
    """A screen engine's run: ``ingest`` (the source's items) and ``ticker`` (the screen's
    clock) until the source ends or ``stop`` is set (Ctrl-C and SIGTERM call ``on_signal``).
    ``live`` (a rich Live screen) starts once the signals are taken; while it shows and
    someone can type (stdin a terminal), ``read_keys(keys)`` reads the keyboard.  Then every
    task, and those of ``also()`` (a question to the switch still under way), is cancelled and
    awaited — the key reader before the terminal is given back.  Returns what the source
    raised, if anything."""
    typing = live is not None and read_keys is not None and sys.stdin is not None and sys.stdin.isatty()
    with keyboard() if typing else contextlib.nullcontext() as keys:
        ingesting = asyncio.ensure_future(ingest)
        tasks = [ingesting, asyncio.ensure_future(ticker), asyncio.ensure_future(stop.wait())]
        try:
            with stop_on_signals(on_signal):
                if keys is not None:
                    tasks.append(asyncio.ensure_future(read_keys(keys)))
                if live is not None:
                    live.start(refresh=True)
                await asyncio.wait([ingesting, tasks[2]], return_when=asyncio.FIRST_COMPLETED)
        finally:
            tasks += [task for task in also() if task is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return None if ingesting.cancelled() else ingesting.exception()


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


async def ask(source: Source, parts: Iterable[str] = CHANNELS) -> Optional[SwitchState]:
    """What the switch behind ``source`` says is up (`eslkit.switch_state`, the `parts`
    asked for); None when there is no switch to ask (a file, a broker).  A part it did
    not answer usefully stays None: the next events (and the expiry) will sort it out."""
    switch = source.switch
    return None if switch is None else await ask_switch(switch, parts)


async def channels_up(source: Source) -> Optional[list[dict]]:
    """The rows of ``show channels as json`` on the switch behind ``source``; None when there
    is no switch to ask (a file, a broker) or it did not answer usefully."""
    state = await ask(source)
    return None if state is None else state.channels


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


def link_text(source: Source, status: "ConnectionStatus") -> str:
    """The link in a screen's status line (popup panel, wallboard): "connected to …" (with
    the gap after a reconnect), "reconnecting — <why>", or for a file its name / its end."""
    where = source.description
    connected = status.state == "connected"
    if not source.live:  # a file: nothing to reconnect to
        return where if connected else f"end of {where}"
    if connected:
        return f"connected to {where}" + ("" if status.gap is None else f" (back after {status.gap:.0f}s)")
    said = visible(status.reason.strip() or f"disconnected from {where}", 120)
    return f"reconnecting — {said}" if source.reconnects else said


def link_lost(source: Source, reason: str, heading: str) -> tuple[str, str]:
    """(heading, rest) of the stderr line for a link that went down: a live source says
    whether it reconnects; a file only tells what the recorded switch did (a transcript's
    disconnect notice): nothing reconnects there."""
    reason = reason.strip() or "the link went down"
    if not source.live:
        return "eslkit: in the recording, the link was lost:", reason
    return heading, reason + (" — reconnecting" if source.reconnects else "")


class Resyncs(Protocol):
    """Statistics that take what the switch lists (`CallCentreStats`, watch's `CallStats`)."""

    def known(self) -> Known: ...
    def resync(self, state: SwitchState, now: float, known: Optional[Known] = None) -> None: ...


async def resync_stats(source: Source, stats: Resyncs, now: Callable[[], Optional[float]]) -> bool:
    """`resync` for the statistics (wallboard, watch --stats): the same question at the same
    moments, with the queue modules' lists too, so callers already waiting and every agent's
    status are right at once.  False when there was no switch to ask."""
    known = stats.known()  # as in resync: what was up before asking
    state = await ask(source, EVERYTHING)
    if state is None:
        return False
    stats.resync(state, now() or time.time(), known=known)
    return True


def drop_stdout() -> None:
    """Point stdout at /dev/null, so Python's flush at exit does not fail again on what it
    still holds (the reader went away, or the disk is full)."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class ScreenConsole(Console):
    """The console of a screen (popup's panel, watch's table, the wallboard) on stdout.
    Rich ends the process with exit 1 when the reader goes away (``| head``); eslkit's
    rule is exit 0 and no word, as for JSON lines: print nothing more, and finish."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        drop_stdout()


def run_on(source: Source, body: Callable[[], Awaitable[None]]) -> None:
    """A command's run: open ``source``, await ``body()`` until the source ends or Ctrl-C,
    close it (see `run_main`)."""
    async def main() -> None:
        try:
            await source.open()
            await body()
        finally:
            await source.close()

    run_main(main)


def run_main(main: Callable[[], Awaitable[None]]) -> None:
    """``asyncio.run(main())`` as a screen's run ends (popup, wallboard, demo): Ctrl-C is no
    error, a reader that went away (``| head``) ends it quietly with exit 0, a full disk is
    said once — neither with a second error when Python flushes stdout at exit."""
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        drop_stdout()  # `| head`: stop quietly
    except OutputError:
        drop_stdout()
        raise
