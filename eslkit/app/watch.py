"""The watch run engine: a source's events to one output (a live table, JSON lines,
fs_cli-style blocks, or nothing with quiet) plus the optional recorder and statistics.

    engine = WatchEngine(source, fmt=OutputFormat.json, columns=parse_columns(None))
    run(engine)                       # opens the source, runs until it ends or Ctrl-C, says the summary

One task takes events in; a ticker flushes output and redraws the table at a bounded
rate, so drawing never holds up ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import re
import sys
import time
from collections import deque
from pathlib import Path
from typing import Optional, Sequence

from rich.console import Console
from rich.live import Live

from eslkit.app.runtime import ScreenConsole, drop_stdout, link_lost, open_unless_stopped, resync_stats, stop_on_signals, until_stopped
from eslkit.errors import OutputError
from eslkit.event import Event
from eslkit.recording import Recorder
from eslkit.safe_text import visible
from eslkit.sources.base import Source
from eslkit.status import ConnectionStatus
from eslkit.views.ndjson import NdjsonWriter, OutputStream
from eslkit.views.plain import PlainWriter
from eslkit.views.stats import CallStats, stats_panel
from eslkit.views.theme import THEME
from eslkit.views.table_keys import TableView
from eslkit.views.watch_table import WatchScreen, WatchSnapshot

__all__ = ["WatchEngine", "OutputFormat", "WireFormat", "default_format", "default_wire", "run"]

REFRESH_PER_SECOND = 4
TABLE_ROWS_KEPT = 500
# A call's events come in bursts seconds apart: over 10 s the rate reads as the traffic,
# not as 0.0/s between two bursts.
_RATE_WINDOW = 10.0


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"
    plain = "plain"


class WireFormat(str, enum.Enum):
    plain = "plain"
    json = "json"
    xml = "xml"


def default_format() -> OutputFormat:
    return OutputFormat.table if sys.stdout.isatty() else OutputFormat.json


def default_wire(fmt: OutputFormat, quiet: bool) -> WireFormat:
    # For JSON lines the switch's own JSON is the cheapest input: an all-ASCII
    # event is written as it came (Event.json_line), with no decode/encode here.
    return WireFormat.json if fmt is OutputFormat.json and not quiet else WireFormat.plain


class WatchEngine:
    def __init__(
        self,
        source: Source,
        *,
        fmt: OutputFormat,
        columns: Sequence[str],
        matches: Sequence[tuple[str, re.Pattern, str]] = (),
        count: Optional[int] = None,
        quiet: bool = False,
        record: Optional[Path] = None,
        append: bool = False,
        stats: bool = False,
        stats_notes: Sequence[str] = (),
        out=None,
        err: Optional[Console] = None,
    ):
        self.source = source
        self.fmt = fmt
        self.columns = list(columns)
        self.matches = list(matches)
        self.count = count
        self.quiet = quiet
        self.record_path = record
        self.stats = CallStats(stats_notes) if stats else None
        # Failed writes (a full disk) become OutputError; a closed pipe stays BrokenPipeError.
        self.out = OutputStream(out if out is not None else sys.stdout.buffer)
        self.err = err or Console(stderr=True, highlight=False, soft_wrap=True, theme=THEME)
        self.shown = 0
        self.taken = 0  # events taken from the source: what was written, shown or recorded
        self.rows: deque = deque(maxlen=TABLE_ROWS_KEPT)
        self.snapshot = WatchSnapshot(source=source.description, retrying=source.reconnects)
        self.started = time.monotonic()
        self.broken_pipe = False
        self.opened = False
        self.stopped = False  # stop() was asked for (Ctrl-C, SIGTERM), maybe before run()
        self._final_console: Optional[Console] = None
        self._failure: Optional[OutputError] = None  # the output failed in the ticker
        self._samples: deque = deque()
        self._stop: Optional[asyncio.Event] = None  # made in run(): on 3.9 it binds to a loop
        self._channels_task: Optional[asyncio.Future] = None
        # Opened now, so an unwritable path is reported before connecting.
        self.recorder = Recorder(record, append=append) if record else None
        self.writer = None
        if not quiet and fmt is OutputFormat.json:
            self.writer = NdjsonWriter(self.out)
        elif not quiet and fmt is OutputFormat.plain:
            self.writer = PlainWriter(self.out)

    # -- ingest ----------------------------------------------------------------------

    async def ingest(self) -> None:
        """Take events in as fast as they come; per event do only what was asked for."""
        recorder = self.recorder
        writer = self.writer
        rows = self.rows if (self.fmt is OutputFormat.table and not self.quiet) else None
        stats = self.stats
        tests = [
            (lambda e, n=name, rx=rx: (lambda v: v is not None and rx.search(v) is not None)(e.get(n)))
            for name, rx, _ in self.matches
        ]
        count = self.count or 0
        shown = taken = 0
        now = time.time
        try:
            async for item in self.source:
                if not isinstance(item, Event):
                    self._status(item)
                    if recorder is not None:
                        recorder.status(item, now())
                    continue
                taken += 1
                if rows is not None:
                    self.taken = taken  # for the status line; only the table pays for it
                if recorder is not None:
                    recorder.event(item, now())
                if tests and not all(t(item) for t in tests):
                    continue
                shown += 1
                if stats is not None:
                    stats.add(item)
                if writer is not None:
                    writer.event(item)
                elif rows is not None:
                    rows.append((now(), item))
                    self.shown = shown  # for the status line; only the table pays for it
                if shown == count:
                    break
        except BrokenPipeError:
            self.broken_pipe = True
        finally:
            self.shown = shown
            self.taken = taken
            if recorder is not None:
                recorder.close()

    def _status(self, status: ConnectionStatus) -> None:
        s = self.snapshot
        s.state = status.state
        s.reason = status.reason
        s.since = time.monotonic()
        if status.state == "connected":
            s.gap = status.gap
            if self.stats is not None:
                self._channels_task = asyncio.ensure_future(self._calls_up())
        if self.quiet or self.fmt is OutputFormat.table:
            return  # the table shows it in its status line; --quiet shows only the summary
        if status.state == "disconnected":
            heading, rest = link_lost(self.source, status.reason, "eslkit: disconnected:")
            self.err.print(f"[esl.warning]{heading}[/] ", end="")
            self.err.out(visible(rest, 200), highlight=False)
        if status.state == "connected" and status.gap is not None:
            self.err.out(f"eslkit: reconnected after a {status.gap:.1f}s gap", highlight=False)

    async def _calls_up(self) -> None:
        """--stats: what is up when watch connects (or reconnects): the channels (active), the
        callers waiting in queues, the agents' status."""
        engine = self.stats.engine
        await resync_stats(self.source, self.stats, lambda: engine.now)  # the latest event's time

    # -- rates and snapshots -------------------------------------------------------------

    @property
    def received(self) -> int:
        """Events taken in so far (the status line's count; live only for the table)."""
        return self.taken

    def rate(self) -> float:
        t = time.monotonic()
        samples = self._samples
        samples.append((t, self.received))
        while len(samples) > 2 and t - samples[0][0] > _RATE_WINDOW:
            samples.popleft()
        t0, n0 = samples[0]
        return (self.received - n0) / (t - t0) if t > t0 else 0.0

    def make_snapshot(self) -> WatchSnapshot:
        s = self.snapshot
        s.rows = tuple(self.rows)
        s.received = self.received
        s.shown = self.shown_so_far()
        s.dropped = self.source.dropped
        s.rate = self.rate()
        s.subscriptions = self.source.subscriptions
        s.filters = self.source.filters
        s.matches = [m for _, _, m in self.matches]
        if self.stats is not None:
            s.extra = stats_panel(self.stats, s.rate)
        return s

    def shown_so_far(self) -> int:
        return self.stats.events if self.stats is not None else self.shown

    # -- the whole run ---------------------------------------------------------------------

    async def run(self) -> None:
        """Until the source ends, `stop()`, or the output fails; raises what the source raised
        (AuthError, Disconnected, …) once the terminal and the output are in order."""
        self._stop = asyncio.Event()
        if self.stopped:
            self._stop.set()
        live = None
        if self.fmt is OutputFormat.table and not self.quiet:
            # Follow the real terminal size (and its resizes) even if COLUMNS/LINES are exported.
            environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
            console = ScreenConsole(theme=THEME, highlight=False, _environ=environ)
            live = Live(WatchScreen(self.make_snapshot, self.columns), console=console,
                        auto_refresh=False, screen=True, transient=False,
                        redirect_stdout=False, redirect_stderr=False)
            if not console.is_terminal:  # --format table into a file: just the last screenful
                self._final_console, live = console, None
        try:
            # The table's keys, when someone can type them (stdin a terminal).
            failed = await until_stopped(self.ingest(), self._tick(live), self._stop, self.stop, live=live,
                                         read_keys=self._read_keys, also=lambda: [self._channels_task])
        finally:
            console = self._final_console
            if live is not None:
                live.stop()
                console = live.console
            if console is not None:
                # Leave the last screenful behind the summary, sized to the terminal.
                final = self.make_snapshot()
                final.state = "stopped" if final.state == "connected" else final.state
                final.view = None  # the newest rows, as the run ended
                console.print(WatchScreen(lambda: final, self.columns), height=max(5, console.height - 2))
            self._flush()  # the last batch, also when the switch went away
        failure = self._failure or failed
        if failure is not None:
            raise failure

    def stop(self) -> None:
        self.stopped = True
        if self._stop is not None:
            self._stop.set()

    async def _read_keys(self, keys) -> None:
        """The live table's keys: q quits like Ctrl-C; the others change the view."""
        view = self.snapshot.view = TableView()
        async for key in keys:
            if view.key(key, tuple(self.rows)):
                self.stop()
                return

    async def _tick(self, live: Optional[Live]) -> None:
        period = 1 / REFRESH_PER_SECOND
        while True:
            await asyncio.sleep(period if live is not None else 0.1)
            self._flush()
            if live is not None:
                live.refresh()

    def _flush(self) -> None:
        if self.writer is not None and not self.broken_pipe and self._failure is None:
            try:
                self.writer.flush()
            except BrokenPipeError:
                self.broken_pipe = True
                self._stop.set()
            except OutputError as exc:  # a full disk: end the run, say so once
                self._failure = exc
                self._stop.set()

    # -- the end -----------------------------------------------------------------------------

    def summary(self) -> str:
        """What watch took in (so with -n 3: 3 events), what --match let through, what the
        source dropped; also after Ctrl-C while connecting."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        taken = self.taken
        dropped = self.source.dropped
        extra = f", {self.shown} matched" if self.matches else ""
        text = (f"{taken} event{'' if taken == 1 else 's'} received{extra}, {dropped} dropped, {elapsed:.2f} s, "
                f"{taken / elapsed:.1f} events/s")
        if not self.opened:
            text = f"stopped while connecting to {visible(self.source.description, 100)}; " + text
        return text

    def final_stats(self) -> Optional[dict]:
        if self.stats is None:
            return None
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return self.stats.to_dict(elapsed=elapsed, rate=self.taken / elapsed)


def run(engine: WatchEngine) -> None:
    """`eslkit watch`: open the source, run, and say what happened (the summary line, the
    final statistics) also after Ctrl-C or a lost switch; a failed connect says only why."""
    async def main() -> None:
        # Ctrl-C stops the run from the first moment (also while connecting) to the
        # last line written.
        with stop_on_signals(engine.stop) as interrupted:
            try:
                engine.opened = await open_unless_stopped(engine.source, interrupted)
                if engine.opened:
                    await engine.run()
            finally:
                await engine.source.close()

    try:
        asyncio.run(main())
    finally:
        if engine.broken_pipe or engine.out.failed:
            # The reader (head, jq -e …) went away, or the disk is full: not a traceback.
            drop_stdout()
        if (engine.opened or engine.stopped) and not engine.broken_pipe:
            _finish(engine)


def _finish(engine: WatchEngine) -> None:
    try:
        final = engine.final_stats()
        if final is not None:
            if engine.fmt is OutputFormat.json:
                if not engine.out.failed:
                    with contextlib.suppress(BrokenPipeError):
                        NdjsonWriter(engine.out).object({"stats": final})
            elif engine.fmt is OutputFormat.plain or engine.quiet:
                engine.err.print(stats_panel(engine.stats, final["events_per_second"] or 0.0))
    except OutputError:
        drop_stdout()
        raise
    finally:
        engine.err.out(f"eslkit watch: {engine.summary()}", highlight=False)
