"""``eslkit watch``: a live, filterable view of a switch's events.

The typer function `watch` only parses options; `Watch` wires a source
(a live switch or a replayed file) to one output (table, JSON lines, plain
header blocks, or nothing with --quiet) plus the optional recorder and
statistics.  One task takes events in; a ticker flushes output and redraws
the table at a bounded rate, so drawing never holds up ingest.
"""

# No `from __future__ import annotations` here: typer on Python 3.9 would
# then ignore the Annotated options (their aliases such as -f vanish).

import asyncio
import contextlib
import enum
import os
import re
import sys
import time
from collections import deque
from pathlib import Path
from typing import Annotated, List, Optional, Sequence

import typer
from rich.console import Console
from rich.live import Live

from eslkit.calls import live_channels
from eslkit.status import ConnectionStatus
from eslkit.commands.options import (
    HostOpt,
    PasswordOpt,
    PortOpt,
    ProfileOpt,
    TimeoutOpt,
    connection_settings,
)
from eslkit.commands.running import run_until_stopped
from eslkit.errors import EslkitError, OutputError
from eslkit.event import Event
from eslkit.recording import Recorder
from eslkit.sources.esl import EslSource
from eslkit.sources.replay import ReplaySource
from eslkit.subscription import Subscription, event_words
from eslkit.views.ndjson import NdjsonWriter, OutputStream
from eslkit.views.plain import PlainWriter
from eslkit.views.safe_text import visible
from eslkit.views.stats import CallStats, stats_panel
from eslkit.views.theme import THEME
from eslkit.views.watch_table import WatchScreen, WatchSnapshot, parse_columns

REFRESH_PER_SECOND = 4
TABLE_ROWS_KEPT = 500
_RATE_WINDOW = 2.0


class OutputFormat(str, enum.Enum):
    table = "table"
    json = "json"
    plain = "plain"


class WireFormat(str, enum.Enum):
    plain = "plain"
    json = "json"
    xml = "xml"


# --- option parsing (pure, tested directly) -------------------------------------------


def parse_names(values: Optional[Sequence[str]]) -> list[str]:
    """``--filter`` values → the words of ``event <format> …`` (see `event_words`); ALL by default."""
    return event_words(values or ()) or ["ALL"]


def parse_header_filters(values: Optional[Sequence[str]]) -> list[tuple[str, str]]:
    out = []
    for value in values or ():
        name, sep, wanted = value.partition("=")
        name = name.strip()
        if not sep or not name or " " in name:
            raise typer.BadParameter(f"{value!r} is not NAME=VALUE (e.g. Caller-Destination-Number=1001).",
                                     param_hint="--header")
        out.append((name, wanted))
    return out


def parse_matches(values: Optional[Sequence[str]]) -> list[tuple[str, re.Pattern, str]]:
    out = []
    for value in values or ():
        name, sep, pattern = value.partition("~")
        name = name.strip()
        if not sep or not name:
            raise typer.BadParameter(f"{value!r} is not NAME~REGEX (e.g. Caller-Caller-ID-Name~^Acme).",
                                     param_hint="--match")
        try:
            out.append((name, re.compile(pattern), value))
        except re.error as exc:
            raise typer.BadParameter(f"{pattern!r} is not a valid regular expression ({exc}).",
                                     param_hint="--match") from None
    return out


# --- the run ------------------------------------------------------------------------------


class Watch:
    def __init__(
        self,
        source,
        *,
        fmt: OutputFormat,
        columns: Sequence[str],
        matches: Sequence[tuple[str, re.Pattern, str]] = (),
        count: Optional[int] = None,
        quiet: bool = False,
        record: Optional[Path] = None,
        stats: bool = False,
        local_filters=(),
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
        self.stats = CallStats() if stats else None
        self.local_filters = list(local_filters)
        # Failed writes (a full disk) become OutputError; a closed pipe stays BrokenPipeError.
        self.out = OutputStream(out if out is not None else sys.stdout.buffer)
        self.err = err or Console(stderr=True, highlight=False, soft_wrap=True, theme=THEME)
        self.shown = 0
        self.rows: deque = deque(maxlen=TABLE_ROWS_KEPT)
        self.snapshot = WatchSnapshot(source=getattr(source, "description", ""),
                                      retrying=getattr(source, "reconnects", False))
        self.started = time.monotonic()
        self.broken_pipe = False
        self.opened = False
        self._final_console: Optional[Console] = None
        self._failure: Optional[OutputError] = None  # the output failed in the ticker
        self._samples: deque = deque()
        self._stop: Optional[asyncio.Event] = None  # made in run(): on 3.9 it binds to a loop
        self._channels_task: Optional[asyncio.Future] = None
        # Opened now, so an unwritable path is reported before connecting.
        self.recorder = Recorder(record) if record else None
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
        tests = self.local_filters + [
            (lambda e, n=name, rx=rx: (lambda v: v is not None and rx.search(v) is not None)(e.get(n)))
            for name, rx, _ in self.matches
        ]
        count = self.count or 0
        shown = 0
        now = time.time
        try:
            async for item in self.source:
                if not isinstance(item, Event):
                    self._status(item)
                    if recorder is not None:
                        recorder.status(item, now())
                    continue
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
            again = " — reconnecting" if getattr(self.source, "reconnects", False) else ""
            self.err.print("[esl.warning]eslkit: disconnected:[/] ", end="")
            self.err.out(visible(status.reason or "the link went down", 200) + again, highlight=False)
        if status.state == "connected" and status.gap is not None:
            self.err.out(f"eslkit: reconnected after a {status.gap:.1f}s gap", highlight=False)

    async def _calls_up(self) -> None:
        """--stats: the channels already up when watch connects (or reconnects) count as active."""
        conn = getattr(self.source, "conn", None)
        if not hasattr(conn, "api"):
            return  # a recording or a broker: nothing to ask
        try:
            self.stats.channels_up(live_channels(await conn.api("show channels as json", timeout=10)))
        except (EslkitError, ValueError, asyncio.TimeoutError):
            pass  # the counts still follow the events

    # -- rates and snapshots -------------------------------------------------------------

    @property
    def received(self) -> int:
        return self.source.received

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
        s.dropped = getattr(self.source, "dropped", 0)
        s.rate = self.rate()
        s.subscriptions = getattr(self.source, "subscriptions", ())
        s.filters = getattr(self.source, "filters", ())
        s.matches = [m for _, _, m in self.matches]
        if self.stats is not None:
            s.extra = stats_panel(self.stats, s.rate)
        return s

    def shown_so_far(self) -> int:
        return self.stats.events if self.stats is not None else self.shown

    # -- the whole run ---------------------------------------------------------------------

    async def run(self) -> None:
        self._stop = asyncio.Event()
        live = None
        if self.fmt is OutputFormat.table and not self.quiet:
            # Follow the real terminal size (and its resizes) even if COLUMNS/LINES are exported.
            environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
            console = Console(theme=THEME, highlight=False, _environ=environ)
            live = Live(WatchScreen(self.make_snapshot, self.columns), console=console,
                        auto_refresh=False, screen=True, transient=False,
                        redirect_stdout=False, redirect_stderr=False)
            if not console.is_terminal:  # --format table into a file: just the last screenful
                self._final_console, live = console, None
        ingest = asyncio.ensure_future(self.ingest())
        ticker = asyncio.ensure_future(self._tick(live))
        failure: Optional[BaseException] = None
        try:
            # AuthError, Disconnected … come back here, raised below once the
            # terminal and the output are in order.
            failure = await run_until_stopped(
                ingest, self._stop, start=(lambda: live.start(refresh=True)) if live else (lambda: None),
                helpers=[ticker])
        finally:
            if self._channels_task is not None:
                self._channels_task.cancel()
            console = self._final_console
            if live is not None:
                live.stop()
                console = live.console
            if console is not None:
                # Leave the last screenful behind the summary, sized to the terminal.
                final = self.make_snapshot()
                final.state = "stopped" if final.state == "connected" else final.state
                console.print(WatchScreen(lambda: final, self.columns), height=max(5, console.height - 2))
            self._flush()  # the last batch, also when the switch went away
        failure = failure or self._failure
        if failure is not None:
            raise failure

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
        elapsed = max(time.monotonic() - self.started, 1e-9)
        received = self.received
        dropped = getattr(self.source, "dropped", 0)
        extra = f", {self.shown} matched" if self.matches or self.local_filters else ""
        return (f"{received} events received{extra}, {dropped} dropped, {elapsed:.2f} s, "
                f"{received / elapsed:.1f} events/s")

    def final_stats(self) -> Optional[dict]:
        if self.stats is None:
            return None
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return self.stats.to_dict(elapsed=elapsed, rate=self.received / elapsed)


def _default_wire(fmt: OutputFormat, quiet: bool) -> WireFormat:
    # For JSON lines the switch's own JSON is the cheapest input: an all-ASCII
    # event is written as it came (Event.json_line), with no decode/encode here.
    return WireFormat.json if fmt is OutputFormat.json and not quiet else WireFormat.plain


def _default_format() -> OutputFormat:
    return OutputFormat.table if sys.stdout.isatty() else OutputFormat.json


async def _run(watch: Watch) -> None:
    try:
        await watch.source.open()
        watch.opened = True
        await watch.run()
    finally:
        await watch.source.close()


def watch(
    filter: Annotated[Optional[List[str]], typer.Option(
        "--filter", "-f", metavar="NAMES",
        help="Subscribe to just these events (repeat, or separate with commas/spaces; "
             "'CUSTOM sofia::register' for subclasses). Default ALL.")] = None,
    header: Annotated[Optional[List[str]], typer.Option(
        "--header", metavar="NAME=VALUE",
        help="Install a server-side filter: only events whose header NAME equals VALUE (repeatable).")] = None,
    match: Annotated[Optional[List[str]], typer.Option(
        "--match", metavar="NAME~REGEX",
        help="Show only events whose header NAME matches REGEX, checked here (repeatable; all must match).")] = None,
    format: Annotated[Optional[OutputFormat], typer.Option(
        "--format", case_sensitive=False,
        help="table (default on a terminal), json (one event per line; default when piped) or plain "
             "(header blocks, as fs_cli shows them).", show_default=False)] = None,
    columns: Annotated[Optional[str], typer.Option(
        "--columns", metavar="LIST",
        help="Table columns: time,event,direction,channel,caller,name,destination,state,uuid "
             "or any header name.")] = None,
    count: Annotated[Optional[int], typer.Option("--count", "-n", min=1, help="Exit after N events.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q",
        help="Print no events, only the summary line at exit.")] = False,
    record: Annotated[Optional[Path], typer.Option("--record", metavar="FILE", dir_okay=False,
        help="Write every event and connection change to FILE as JSON lines.")] = None,
    replay: Annotated[Optional[Path], typer.Option("--replay", metavar="FILE",
        help="Read a recording (--record) or a raw ESL transcript instead of a switch.")] = None,
    from_url: Annotated[Optional[str], typer.Option("--from", metavar="URL",
        help="Read the events `eslkit relay` publishes to a broker (mqtt://HOST:PORT\\[/PREFIX], "
             "amqp://USER@HOST:PORT/VHOST) instead of a switch.")] = None,
    speed: Annotated[Optional[float], typer.Option("--speed", min=0.001,
        help="With --replay: keep the original timing, SPEED times faster (default: as fast as possible).")] = None,
    stats: Annotated[bool, typer.Option("--stats",
        help="Show call statistics; with --format json, print a final stats object.")] = False,
    wire_format: Annotated[Optional[WireFormat], typer.Option("--wire-format", case_sensitive=False,
        help="Event encoding to ask the switch for (event plain|json|xml); default json with "
             "--format json (the switch's JSON is written as it came), else plain.",
        show_default=False)] = None,
    reconnect: Annotated[bool, typer.Option("--reconnect/--no-reconnect",
        help="Reconnect by itself when the link drops.")] = True,
    host: HostOpt = None,
    port: PortOpt = None,
    password: PasswordOpt = None,
    profile: ProfileOpt = None,
    timeout: TimeoutOpt = 5.0,
) -> None:
    """Watch a switch's events live: a table, JSON lines or fs_cli-style blocks.

    [bold]eslkit watch[/]                                   table of every event
    [bold]eslkit watch -f CHANNEL_ANSWER,CHANNEL_HANGUP_COMPLETE --format json | jq .[/]
    [bold]eslkit watch --header Caller-Destination-Number=1001 --stats[/]
    [bold]eslkit watch --replay calls.jsonl --speed 1[/]
    """
    if count is not None and count < 1:  # older typers skip min= on Optional options
        raise typer.BadParameter("must be at least 1.", param_hint="--count")
    names = parse_names(filter)
    header_filters = parse_header_filters(header)
    matches = parse_matches(match)
    fmt = format or _default_format()
    err = Console(stderr=True, highlight=False, soft_wrap=True, theme=THEME)
    local_filters = []
    if replay is not None and from_url is not None:
        raise typer.BadParameter("give either --replay or --from, not both.", param_hint="--from")
    if speed is not None and replay is None:
        raise typer.BadParameter("--speed only applies to --replay.", param_hint="--speed")
    if replay is not None or from_url is not None:
        if replay is not None:
            source = ReplaySource(replay, speed=speed)
            source.subscriptions = names
        else:
            from eslkit.sources.broker import open_broker_source

            source = open_broker_source(from_url)
        # No switch to filter for us: apply --filter and --header here, with the switch's meaning.
        if names != ["ALL"] or header_filters:
            local_filters.append(Subscription(names, header_filters).wants)
        source.filters = header_filters
    else:
        settings = connection_settings(host, port, password, profile, timeout, console=err)
        source = EslSource(settings, names=names, filters=header_filters,
                           format=(wire_format or _default_wire(fmt, quiet)).value, reconnect=reconnect)
    runner = Watch(source, fmt=fmt, columns=parse_columns(columns), matches=matches, count=count,
                   quiet=quiet, record=record, stats=stats, local_filters=local_filters, err=err)
    try:
        asyncio.run(_run(runner))
    finally:
        if runner.broken_pipe or runner.out.failed:
            # The reader (head, jq -e …) went away, or the disk is full: not a traceback.
            _drop_stdout()
        if runner.opened and not runner.broken_pipe:  # a failed connect says why, not "0 events received"
            _finish(runner, fmt)


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so Python's flush at exit does not fail on what it still holds."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _finish(runner: Watch, fmt: OutputFormat) -> None:
    try:
        final = runner.final_stats()
        if final is not None:
            if fmt is OutputFormat.json:
                if not runner.out.failed:
                    with contextlib.suppress(BrokenPipeError):
                        NdjsonWriter(runner.out).object({"stats": final})
            elif fmt is OutputFormat.plain or runner.quiet:
                runner.err.print(stats_panel(runner.stats, final["events_per_second"] or 0.0))
    except OutputError:
        _drop_stdout()
        raise
    finally:
        runner.err.out(f"eslkit watch: {runner.summary()}", highlight=False)
