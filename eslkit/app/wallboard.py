"""The wallboard run engine: a source's events through the statistics engine to a
supervisor's live screen, or to one JSON snapshot per interval.

    engine = WallboardEngine(source, CallCentreStats(), fmt=BoardFormat.json, interval=5)
    run(engine)           # opens the source, runs until it ends or Ctrl-C

One task takes events in; a ticker lets time pass for the statistics (a ring group's
unanswered call, a new day) and redraws the screen or writes the snapshots that are
due.  On connect and after every reconnect to a live switch the engine asks it what is
going on (`eslkit.app.runtime.resync_stats`, the popup's resync with the queue modules'
lists), so the figures are right at once.  Snapshot times are the switch's: a replay
writes one snapshot per interval of the recording.

``eslkit serve`` runs a popup engine on its source: it makes a wallboard engine with
``fmt=None``, hands it every item the popup engine takes (``popup.tap(board.take)``) and
reads `snapshot()` and `metrics()` when a page or Prometheus asks.
"""

from __future__ import annotations

import asyncio
import enum
import os
import sys
import time
from collections import OrderedDict
from typing import Optional, Sequence

from rich.console import Console
from rich.live import Live

from eslkit.app.runtime import ScreenConsole, SwitchClock, link_text, resync_stats, run_on, until_stopped
from eslkit.calls import LegView
from eslkit.errors import OutputError
from eslkit.event import Event
from eslkit.sources.base import Item, Source
from eslkit.stats import CallCentreStats, StatsSnapshot
from eslkit.status import ConnectionStatus
from eslkit.views.ndjson import NdjsonWriter, OutputStream
from eslkit.views.theme import THEME
from eslkit.views.wallboard import Wallboard, WallboardView

__all__ = ["WallboardEngine", "BoardFormat", "default_format", "run"]

REFRESH_PER_SECOND = 2


class BoardFormat(str, enum.Enum):
    rich = "rich"
    json = "json"


def default_format() -> BoardFormat:
    return BoardFormat.rich if sys.stdout.isatty() else BoardFormat.json


_RANK = {"ringing": 0, "answered": 1, "ended": 2}  # a leg's states in the order they come
_RELAYED_KEPT = 4096  # legs whose newest relayed state is remembered (a re-delivery comes soon)


class WallboardEngine:
    def __init__(
        self,
        source: Source,
        stats: CallCentreStats,
        *,
        fmt: Optional[BoardFormat] = None,
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
        self.fmt = fmt  # None: no output of its own (a web server reads snapshot())
        self.interval = interval
        self.queues = tuple(queues)
        self.warn_wait = warn_wait
        self.target = target
        self.out = OutputStream(out if out is not None else sys.stdout.buffer)
        self.writer = NdjsonWriter(self.out) if fmt is BoardFormat.json else None
        self.console = console
        self.err = err or Console(stderr=True, highlight=False, soft_wrap=True, theme=THEME)
        self.connected = False
        self.status = f"connecting to {source.description}"
        self.snapshots = 0
        self.popup_states = False  # the source gives a relay's popup states, not events
        self._relayed: OrderedDict[str, tuple] = OrderedDict()  # leg uuid → ((time, rank), its newest state)
        self._latest = 0.0  # the newest time an event carried
        self.clock = SwitchClock(lambda: self._latest)
        self._next: Optional[float] = None  # when the next JSON snapshot is due (switch time)
        self._stop: Optional[asyncio.Event] = None  # made in run(): on 3.9 it binds to a loop
        self._resyncing: Optional[asyncio.Future] = None
        self._failure: Optional[BaseException] = None

    def now(self) -> Optional[float]:
        """The switch's time now.  From a live source it runs on between events
        (`SwitchClock`; this machine's before any event, so a quiet switch still gets its
        snapshots); a file has only the times its events carry, however fast it is read,
        so a replay gives the same figures at any speed."""
        if not self.source.live:
            return self._latest or None
        return self.clock.now() or time.time()

    # --- ingest ----------------------------------------------------------------------

    async def _ingest(self) -> None:
        async for item in self.source:
            self.take(item)
        if not self.source.live:  # a file played to its end (a recording need not say so)
            self.connected, self.status = False, link_text(self.source, ConnectionStatus("disconnected"))

    def take(self, item: Item) -> None:
        """One item of the source: `run()` hands it its own; a server that runs another
        engine on the source hands it theirs (`PopupEngine.tap`)."""
        if isinstance(item, Event):
            self.stats.feed(item)
            self._saw(item.timestamp)
        elif isinstance(item, LegView):  # the popup states a relay published (serve --from)
            self.popup_states = True
            if self._newer(item):
                self.stats.legs([item])
                self._saw(item.time)
        elif isinstance(item, ConnectionStatus):
            self._link(item)

    def _newer(self, leg: LegView) -> bool:
        """False for a state already taken: a broker delivers at least once, and after a
        reconnect it may hand over a leg's answered and ended states a second time."""
        key = (leg.time or 0.0, _RANK.get(leg.state, 0))
        last = self._relayed.get(leg.leg_uuid)
        if last is not None and (key < last[0] or leg == last[1]):
            return False
        self._relayed[leg.leg_uuid] = (key, leg)
        self._relayed.move_to_end(leg.leg_uuid)
        if len(self._relayed) > _RELAYED_KEPT:
            self._relayed.popitem(last=False)
        return True

    def _saw(self, when: Optional[float]) -> None:
        if when is not None and when > self._latest:
            self._latest = when
            self.clock.tick()
            if self.writer is not None:
                self._due(when)

    def _link(self, status: ConnectionStatus) -> None:
        self.connected = status.state == "connected"
        self.status = link_text(self.source, status)
        if not self.connected and self.source.live and self.fmt is BoardFormat.json:
            self.err.out(f"eslkit: {self.status}", highlight=False)
        if self.connected:  # on connect and after each reconnect, as the popup does
            if self._resyncing is not None:
                self._resyncing.cancel()
            self._resyncing = asyncio.ensure_future(resync_stats(self.source, self.stats, self.now))

    # --- output ------------------------------------------------------------------------

    def snapshot(self, now: Optional[float] = None) -> StatsSnapshot:
        """The figures at the switch's time `now` (default: now), only the queues asked for
        and their agents.  Time passes for the statistics first: a ring group's unanswered
        call is decided, a new day begins."""
        now = self.now() if now is None else now
        self.stats.tick(now)
        return self.stats.snapshot(now).narrowed(self.queues)

    def metrics(self) -> bytes:
        """Every figure in Prometheus' text format (`eslkit.metrics`), as of now."""
        from eslkit.metrics import render_metrics  # prometheus_client only where /metrics is served

        now = self.now()
        self.stats.tick(now)
        return render_metrics(self.stats, now)

    def notes(self) -> list[str]:
        """What the figures cannot see, in a sentence each."""
        notes = []
        dropped = self.source.dropped
        if dropped:
            notes.append(f"{dropped} events dropped (eslkit could not keep up): figures may miss calls")
        if self.popup_states:
            notes.append("from the popup states a relay publishes: the agents' calls only; mod_callcenter and "
                         "mod_fifo queues need the switch's own events")
        return notes

    def board(self) -> Wallboard:
        return Wallboard(self.snapshot(), source=self.source.description, connected=self.connected,
                         status=self.status, warn_wait=self.warn_wait, target=self.target, notes=tuple(self.notes()))

    def view(self) -> WallboardView:
        return WallboardView(self.board())

    def _due(self, now: float) -> None:
        """Write the JSON snapshots due by the switch time `now` (one per interval)."""
        if self._next is None:
            self._next = now + self.interval
            return
        while now >= self._next:
            self._write(self.snapshot(self._next))
            self._next += self.interval

    def _write(self, snap: StatsSnapshot) -> None:
        self.writer.object(snap.to_dict())
        self.snapshots += 1

    # --- the whole run -------------------------------------------------------------------

    async def run(self) -> None:
        """Until the source ends or `stop()`; raises what the source raised (AuthError,
        Disconnected, …) and a failed output, once the terminal is in order."""
        self._stop = asyncio.Event()
        live = None
        final_console = None
        if self.fmt is BoardFormat.rich:
            # Follow the real terminal size (and its resizes) even if COLUMNS/LINES are exported.
            environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
            console = self.console or ScreenConsole(theme=THEME, highlight=False, _environ=environ)
            if console.is_terminal:
                live = Live(get_renderable=self.view, console=console, auto_refresh=False, screen=True,
                            redirect_stdout=False, redirect_stderr=False, transient=False)
            else:
                final_console = console  # into a file: the last screen only
        try:
            # q quits, as in watch's table, when someone can type it (stdin a terminal).
            failed = await until_stopped(self._ingest(), self._tick(live), self._stop, self.stop, live=live,
                                         read_keys=self._read_keys, also=lambda: [self._resyncing])
        finally:
            if live is not None:
                live.stop()
                final_console = live.console
            if final_console is not None:
                final_console.print(self.view())
        failure = self._failure or failed
        if self.writer is not None and not isinstance(failure, (BrokenPipeError, OutputError)):
            self._write(self.snapshot())  # the last word: the figures at the end
        if failure is not None:
            raise failure

    async def _read_keys(self, keys) -> None:
        async for key in keys:
            if key in ("q", "Q"):
                self.stop()
                return

    async def _tick(self, live: Optional[Live]) -> None:
        period = 1 / REFRESH_PER_SECOND
        while True:
            await asyncio.sleep(period)
            now = self.now()
            try:
                if self.writer is not None and now is not None and self.source.live:
                    self._due(now)  # a file's snapshots come with its events
            except (BrokenPipeError, OutputError) as exc:
                self._failure = exc
                self.stop()
                return
            if live is not None:
                live.refresh()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    def close(self) -> None:
        """For a server that hands it items (`take`) and never called `run()`: the question
        to the switch still under way is dropped."""
        if self._resyncing is not None:
            self._resyncing.cancel()


def run(engine: WallboardEngine) -> None:
    """`eslkit wallboard`: open the source and run until it ends or Ctrl-C."""
    run_on(engine.source, engine.run)
