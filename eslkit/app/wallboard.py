"""The wallboard run engine: a source's events through the statistics engine to a
supervisor's live screen, or to one JSON snapshot per interval.

    engine = WallboardEngine(source, CallCentreStats(), fmt=BoardFormat.json, interval=5)
    run(engine)           # opens the source, runs until it ends or Ctrl-C

One task takes events in; a ticker redraws the screen (or writes the snapshots that are
due) and lets time pass for the engine (a ring group's unanswered call, a new day).  On
connect and after every reconnect to a live switch, the engine asks the switch what is
going on (`eslkit.queue_lists.ask_switch`), so the figures are right at once.  Snapshot
times are the switch's: a replay writes one snapshot per interval of the recording.
"""

from __future__ import annotations

import asyncio
import enum
import os
import sys
import time
from typing import Optional, Sequence

from rich.console import Console
from rich.live import Live

from eslkit.client import ConnectionStatus
from eslkit.commands.running import run_until_stopped
from eslkit.errors import OutputError
from eslkit.event import Event
from eslkit.queue_lists import ask_switch
from eslkit.stats import CallCentreStats, StatsSnapshot
from eslkit.views.ndjson import NdjsonWriter, OutputStream
from eslkit.views.safe_text import visible
from eslkit.views.theme import THEME
from eslkit.views.wallboard import Wallboard, WallboardView

__all__ = ["WallboardEngine", "BoardFormat", "default_format", "run"]

REFRESH_PER_SECOND = 2


class BoardFormat(str, enum.Enum):
    rich = "rich"
    json = "json"


def default_format() -> BoardFormat:
    return BoardFormat.rich if sys.stdout.isatty() else BoardFormat.json


class WallboardEngine:
    def __init__(
        self,
        source,
        stats: CallCentreStats,
        *,
        fmt: BoardFormat,
        interval: float = 5.0,
        queues: Sequence[str] = (),
        warn_wait: float = 60.0,
        target: float = 0.8,
        out=None,
        console: Optional[Console] = None,
        err: Optional[Console] = None,
    ):
        self.source = source
        self.stats = stats
        self.fmt = fmt
        self.interval = interval
        self.queues = tuple(queues)
        self.warn_wait = warn_wait
        self.target = target
        self.out = OutputStream(out if out is not None else sys.stdout.buffer)
        self.writer = NdjsonWriter(self.out) if fmt is BoardFormat.json else None
        self.console = console
        self.err = err or Console(stderr=True, highlight=False, soft_wrap=True, theme=THEME)
        self.connected = False
        self.status = f"connecting to {getattr(source, 'description', '')}"
        self.snapshots = 0
        self.opened = False
        self._next: Optional[float] = None  # when the next JSON snapshot is due (switch time)
        self._latest: Optional[float] = None  # the newest time an event carried, and when it came
        self._latest_at = time.monotonic()
        self._stop: Optional[asyncio.Event] = None
        self._resync_task: Optional[asyncio.Future] = None
        self._failure: Optional[BaseException] = None

    # --- the switch's clock ------------------------------------------------------------

    def now(self) -> Optional[float]:
        """The switch's time now: its latest event's, plus what has passed here since."""
        latest = self._latest
        if latest is None or not getattr(self.source, "reconnects", False):
            return latest  # a file: its own time only, however fast it is read
        return latest + (time.monotonic() - self._latest_at)

    # --- ingest ----------------------------------------------------------------------

    async def ingest(self) -> None:
        stats = self.stats
        json_out = self.writer is not None
        async for item in self.source:
            if isinstance(item, Event):
                stats.feed(item)
                ts = item.timestamp
                if ts is not None and (self._latest is None or ts > self._latest):
                    self._latest, self._latest_at = ts, time.monotonic()
                    if json_out:
                        self._due(ts)
            elif isinstance(item, ConnectionStatus):
                self._status(item)

    def _status(self, status: ConnectionStatus) -> None:
        self.connected = status.state == "connected"
        where = getattr(self.source, "description", "")
        if self.connected:
            self.status = f"connected to {where}" if getattr(self.source, "reconnects", False) else where
            if status.gap is not None:
                self.status += f" (back after {status.gap:.0f}s)"
            conn = getattr(self.source, "conn", None)
            if hasattr(conn, "api"):  # a live switch (a file or a broker has nothing to ask)
                if self._resync_task is not None:
                    self._resync_task.cancel()
                self._resync_task = asyncio.ensure_future(self._resync(conn))
        elif not getattr(self.source, "reconnects", False):
            self.status = f"end of {where}"
        else:
            self.status = "disconnected: " + visible(status.reason or "the link went down", 120)
            if self.fmt is BoardFormat.json:
                self.err.out(f"eslkit: {self.status} — reconnecting", highlight=False)

    async def _resync(self, conn) -> None:
        known = self.stats.tracker.known()
        state = await ask_switch(conn)
        self.stats.resync(state, self.now() or time.time(), known=known)

    # --- output ------------------------------------------------------------------------

    def board(self, now: Optional[float] = None) -> Wallboard:
        notes = []
        dropped = getattr(self.source, "dropped", 0)
        if dropped:
            notes.append(f"{dropped} events dropped (eslkit could not keep up): figures may miss calls")
        return Wallboard(self.stats.snapshot(now if now is not None else self.now()),
                         source=getattr(self.source, "description", ""), connected=self.connected,
                         status=self.status, warn_wait=self.warn_wait, target=self.target, queues=self.queues,
                         notes=tuple(notes))

    def view(self) -> WallboardView:
        return WallboardView(self.board())

    def _due(self, now: float) -> None:
        """Write the JSON snapshots due by the switch time `now` (one per interval)."""
        if self._next is None:
            self._next = now + self.interval
            return
        while now >= self._next:
            self.stats.tick(self._next)
            self._write(self.stats.snapshot(self._next))
            self._next += self.interval

    def _write(self, snap: StatsSnapshot) -> None:
        data = snap.to_dict()
        if self.queues:
            data["queues"] = [q for q in data["queues"] if q["name"] in self.queues]
            data["agents"] = [a for a in data["agents"] if set(a["queues"]) & set(self.queues)]
        self.writer.object(data)
        self.snapshots += 1

    # --- the whole run -------------------------------------------------------------------

    async def run(self) -> None:
        self._stop = asyncio.Event()
        live = None
        final_console = None
        if self.fmt is BoardFormat.rich:
            environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
            console = self.console or Console(theme=THEME, highlight=False, _environ=environ)
            if console.is_terminal:
                live = Live(get_renderable=self.view, console=console, auto_refresh=False, screen=True,
                            redirect_stdout=False, redirect_stderr=False, transient=False)
            else:
                final_console = console  # into a file: the last screen only
        ingest = asyncio.ensure_future(self.ingest())
        ticker = asyncio.ensure_future(self._tick(live))
        try:
            failure = await run_until_stopped(
                ingest, self._stop, start=(lambda: live.start(refresh=True)) if live else (lambda: None),
                helpers=[ticker])
        finally:
            if self._resync_task is not None:
                self._resync_task.cancel()
            if live is not None:
                live.stop()
                final_console = live.console
            if final_console is not None:
                final_console.print(self.view())
        if self.writer is not None and self._failure is None:
            now = self.now()
            self.stats.tick(now)
            self._write(self.stats.snapshot(now))  # the last word: the figures at the end
        failure = failure or self._failure
        if failure is not None:
            raise failure

    async def _tick(self, live: Optional[Live]) -> None:
        period = 1 / REFRESH_PER_SECOND
        while True:
            await asyncio.sleep(period)
            now = self.now()
            self.stats.tick(now)
            try:
                if self.writer is not None and now is not None and getattr(self.source, "reconnects", False):
                    self._due(now)
            except (BrokenPipeError, OutputError) as exc:
                self._failure = exc
                self._stop.set()
                return
            if live is not None:
                live.refresh()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()


def run(engine: WallboardEngine) -> None:
    """`eslkit wallboard`: open the source and run until it ends or Ctrl-C."""
    async def main() -> None:
        try:
            await engine.source.open()
            engine.opened = True
            await engine.run()
        finally:
            await engine.source.close()

    try:
        asyncio.run(main())
    except BrokenPipeError:
        _drop_stdout()  # the reader went away (`| head`): stop quietly
    except OutputError:
        _drop_stdout()
        raise


def _drop_stdout() -> None:
    import contextlib

    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
