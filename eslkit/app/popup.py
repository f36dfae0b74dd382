"""The popup run engine: a source's events through the call tracker to agent-leg changes.

    engine = PopupEngine(source, ["1001"])
    engine.listen(print)              # each LegView change, and each ConnectionStatus
    await source.open()
    await engine.run()                # until the source ends or engine.stop()
    engine.snapshot()                 # what the popup shows now (PopupSnapshot)

The engine knows nothing of terminals: `show()` is the terminal front of
``eslkit popup`` (the panel or JSON lines, ``--open-url``/``--exec``, the bell),
and a web server can run the same engine in its loop and listen to it.

From a live switch or a file it feeds events to a `CallTracker`; from a broker
(``--from``) it takes the popup states a relay's tracker published (LegViews)
and keeps them in `RelayedLegs`.  Either way the switch's clock drives the ring
and talk timers, legs whose end was lost expire, and on connect the switch is asked
what it has up: calls already up show at once, legs it no longer has end
(`eslkit.app.runtime`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import sys
import time
from collections import deque
from dataclasses import replace
from typing import Awaitable, Callable, Iterable, Optional, Sequence, Union

from rich.console import Console
from rich.live import Live
from rich.text import Text

from eslkit.actions import ExecAction, UrlAction
from eslkit.app.keys import keyboard
from eslkit.app.runtime import (ScreenConsole, SwitchClock, link_lost, link_text, resync, run_on, stop_on_signals,
                                unregistered)
from eslkit.calls import CallTracker, LegView
from eslkit.errors import OutputError, TemplateError
from eslkit.event import Event
from eslkit.safe_text import safe_text, visible
from eslkit.sources.base import Item, Source
from eslkit.status import ConnectionStatus
from eslkit.views.ndjson import OutputStream
from eslkit.views.popup import SHOW_ENDED_FOR, JsonWriter, PopupSnapshot, PopupView
from eslkit.views.theme import THEME

__all__ = ["PopupEngine", "RelayedLegs", "PopupFormat", "OnState", "show", "run", "default_format"]

REFRESH_PER_SECOND = 4
Change = Union[LegView, ConnectionStatus]


class PopupFormat(str, enum.Enum):
    panel = "panel"
    json = "json"


class OnState(str, enum.Enum):
    ring = "ring"
    answer = "answer"


def default_format() -> PopupFormat:
    return PopupFormat.panel if sys.stdout.isatty() else PopupFormat.json


class RelayedLegs:
    """The popup states a relay published, kept for the panel as the call tracker keeps
    its own legs: the current ones, and the ended ones per extension, newest first."""

    ENDED_KEPT = 10_000  # far more legs than end within a broker's redelivery window

    def __init__(self, exts: Iterable[str], *, lookup: Optional[Callable[[str], Optional[dict]]] = None,
                 history: int = 10):
        self.exts = set(exts)
        self.lookup = lookup
        self.now = 0.0  # the newest state's time (switch clock)
        self._legs: dict[str, LegView] = {}
        self._history: dict[str, deque] = {}
        self._history_len = history
        self._ended: dict[str, None] = {}  # uuids of ended legs, oldest first (bounded)

    def take(self, leg: LegView) -> Optional[LegView]:
        """Keep one published state; None when it is not for one of our extensions."""
        if leg.ext not in self.exts or leg.leg_uuid in self._ended:
            # At-least-once delivery: a state delivered again after its leg ended must not
            # bring the card back (nor list the call twice).
            return None
        party = leg.other_number or (leg.caller_number if leg.direction == "incoming" else None)
        if leg.contact is None and self.lookup is not None and party:
            known = self._legs.get(leg.leg_uuid)
            leg = replace(leg, contact=known.contact if known is not None and known.contact else self.lookup(party))
        if leg.time and leg.time > self.now:
            self.now = leg.time
        if leg.state == "ended":
            self._legs.pop(leg.leg_uuid, None)
            self._ended[leg.leg_uuid] = None
            if len(self._ended) > self.ENDED_KEPT:
                del self._ended[next(iter(self._ended))]
            if self._history_len:
                self._history.setdefault(leg.ext, deque(maxlen=self._history_len)).append(leg)
        else:
            self._legs[leg.leg_uuid] = leg
        return leg

    def active(self, ext: str) -> list[LegView]:
        return [leg for leg in self._legs.values() if leg.ext == ext]

    def recent(self, ext: str) -> list[LegView]:
        return list(reversed(self._history.get(ext, ())))


class PopupEngine:
    """One popup session: source → call tracker (or a relay's states) → leg changes."""

    def __init__(self, source: Source, exts: Sequence[str], *, match: Optional[str] = None,
                 lookup: Optional[Callable[[str], Optional[dict]]] = None, history: int = 10):
        # history: ended legs kept per extension for the panel's "recent" (serve has its day lists: 0)
        self.source = source
        self.exts = tuple(exts)
        self.tracker = CallTracker(exts, match=match, lookup=lookup, history=history)
        self.relayed = RelayedLegs(exts, lookup=lookup, history=history)
        self.clock = SwitchClock(lambda: max(self.tracker.now, self.relayed.now))
        self.connection = f"connecting to {source.description}"
        self.connected = False
        self.changes = 0
        self._last: dict[str, LegView] = {}  # the latest ended leg per extension
        self._listeners: list[Callable[[Change], None]] = []
        self._taps: list[Callable[[Item], None]] = []
        self._stop: Optional[asyncio.Event] = None  # made in run(): on 3.9 it binds to a loop
        self._failure: Optional[BaseException] = None
        self._resyncing: Optional[asyncio.Future] = None
        self.unregistered: tuple[str, ...] = ()  # extensions no phone is registered as
        self._asked = False  # the switch is asked that once, at the first connect
        self.on_notice: Optional[Callable[[str], None]] = None  # one line for the operator

    def listen(self, listener: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``listener`` with every leg change and link change; returns the way to stop."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def tap(self, taker: Callable[[Item], None]) -> Callable[[], None]:
        """Hand ``taker`` every item the source yields (an Event, a relayed LegView, a
        ConnectionStatus) before the engine takes it, so another engine can follow the same
        stream (serve's wallboard); returns the way to stop."""
        self._taps.append(taker)
        return lambda: self._taps.remove(taker)

    # --- the run -------------------------------------------------------------------------

    async def run(self) -> None:
        """Until the source ends or `stop()`; raises what the source raised (AuthError,
        Disconnected, …) and what a listener raised (a full disk, a closed pipe)."""
        self._stop = asyncio.Event()
        if self._failure is not None:
            return
        ingest = asyncio.ensure_future(self._ingest())
        ticker = asyncio.ensure_future(self._expire_every(1 / REFRESH_PER_SECOND))
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait([ingest, stopped], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (ingest, ticker, stopped, self._resyncing):
                if task is not None:
                    task.cancel()
            await asyncio.gather(ingest, ticker, stopped, return_exceptions=True)
        if self._failure is not None:
            raise self._failure
        if not ingest.cancelled() and ingest.exception() is not None:
            raise ingest.exception()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def _ingest(self) -> None:
        tracker, relayed, clock, taps = self.tracker, self.relayed, self.clock, self._taps
        async for item in self.source:
            for taker in taps:
                taker(item)
            if isinstance(item, Event):
                changes = tracker.feed(item)
                clock.tick()
                for leg in changes:
                    self._changed(leg)
            elif isinstance(item, LegView):
                leg = relayed.take(item)
                if leg is not None:
                    clock.tick()
                    self._changed(leg)
            elif isinstance(item, ConnectionStatus):
                self._link(item)
        if not self.source.live:  # a file played to its end (a recording need not say so)
            self.connected, self.connection = False, link_text(self.source, ConnectionStatus("disconnected"))

    def _changed(self, leg: LegView) -> None:
        self.changes += 1
        if leg.state == "ended":
            self._last[leg.ext] = leg
        for listener in list(self._listeners):
            listener(leg)

    def _link(self, status: ConnectionStatus) -> None:
        self.connected = status.state == "connected"
        self.connection = link_text(self.source, status)
        for listener in list(self._listeners):
            listener(status)
        if self.connected:  # on connect and after each reconnect
            self._resyncing = asyncio.ensure_future(self._resync())

    async def _resync(self) -> None:
        try:
            for leg in await resync(self.source, self.tracker, self.now):
                self._changed(leg)
        except (OutputError, BrokenPipeError) as exc:
            self._fail(exc)
        if not self._asked:
            self._asked = True
            await self._ask_registered()

    async def _ask_registered(self) -> None:
        """A mistyped --ext waits for ever in silence: say once that no phone is registered
        as it (it may still register; the popup keeps waiting)."""
        self.unregistered = tuple(await unregistered(self.source, self.exts))
        if self.unregistered and self.on_notice is not None:
            self.on_notice(f"the switch has no phone registered as {', '.join(self.unregistered)} "
                           "(sofia_contact: user_not_registered); waiting for its calls anyway")

    async def _expire_every(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                for leg in self.tracker.expire(self.now()):
                    self._changed(leg)
            except (OutputError, BrokenPipeError) as exc:
                self._fail(exc)
                return

    def _fail(self, exc: BaseException) -> None:
        """A listener failed outside ingest: end the run, and raise it from run()."""
        self._failure = self._failure or exc
        self.stop()

    # --- what it shows ---------------------------------------------------------------------

    def now(self) -> float:
        """The switch's clock now (this machine's before any event carried a time)."""
        return self.clock.now() or time.time()

    def snapshot(self) -> PopupSnapshot:
        now = self.now()
        legs: list[LegView] = []
        recent: list[LegView] = []
        for ext in self.exts:
            active = self.tracker.active(ext) + self.relayed.active(ext)
            legs += active
            last = self._last.get(ext)
            if not active and last is not None and last.ended_at is not None and now - last.ended_at <= SHOW_ENDED_FOR:
                legs.append(last)
            recent += self.tracker.recent(ext) + self.relayed.recent(ext)
        recent.sort(key=lambda leg: leg.ended_at or 0.0, reverse=True)
        dropped = self.source.dropped
        notes = (f"{dropped} events dropped",) if dropped else ()
        if self.unregistered:
            notes += (f"no phone registered as {', '.join(self.unregistered)}",)
        return PopupSnapshot(
            exts=self.exts, legs=tuple(legs), recent=tuple(recent[:10]), connection=self.connection,
            connected=self.connected, now=now, notes=notes,
        )


# --- the terminal front of `eslkit popup` ------------------------------------------------------


class _Front:
    """What `eslkit popup` does with each change: JSON lines, the actions, the bell."""

    def __init__(self, fmt: PopupFormat, actions, on: OnState, bell: bool, out, err: Console, source: Source):
        self.source = source
        self.say: Callable[[Text], None] = err.print  # show() prints above the panel instead
        loop = asyncio.get_running_loop()
        for action in actions:
            if isinstance(action, ExecAction) and action.on_output is None:
                # What --exec's program prints is shown, never mixed into the JSON on stdout.
                action.on_output = lambda line: _on_loop(loop, self._program_said, line)
        self.writer = JsonWriter(out) if fmt is PopupFormat.json else None
        self._states: dict[str, str] = {}  # the state of each leg up, by leg uuid
        self.fmt = fmt
        self.actions = list(actions)
        self.wanted = "ringing" if on is OnState.ring else "answered"
        self.bell = bell
        self.ring = False
        self.err = err

    def __call__(self, change: Change) -> None:
        if isinstance(change, ConnectionStatus):
            self._link(change)
            return
        leg = change
        # A record in the state the leg already had (hold, the far party known) is news
        # for the panel and the JSON, not a new ring or answer for the bell and actions.
        entered = self._states.pop(leg.leg_uuid, None) != leg.state
        if leg.state != "ended":
            self._states[leg.leg_uuid] = leg.state
        if self.writer is not None:
            self.writer.write(leg)
        if not entered:
            return
        if leg.state == "ringing" and self.bell:
            self.ring = True
        if leg.state == self.wanted:
            for action in self.actions:
                try:
                    action(leg)
                except TemplateError as err:  # one failed action must not end the popup
                    self.err.print("[esl.warning]eslkit: action failed:[/] ", end="")
                    self.err.out(visible(str(err), 300), highlight=False)

    def _link(self, status: ConnectionStatus) -> None:
        if self.fmt is not PopupFormat.json:
            return  # the panel shows it in its status line
        if status.state != "connected":
            heading, rest = link_lost(self.source, status.reason, "eslkit: link lost:")
            self.err.print(f"[esl.warning]{heading}[/] ", end="")
            self.err.out(visible(rest, 200), highlight=False)
        elif status.gap is not None:
            self.err.out(f"eslkit: reconnected after a {status.gap:.1f}s gap", highlight=False)

    def _program_said(self, line: str) -> None:
        text = Text("eslkit: --exec ", style="esl.label")
        text.append_text(safe_text(line, max_len=300))
        self.say(text)

    def finish(self) -> None:
        for action in self.actions:
            if isinstance(action, ExecAction):
                action.wait()
            elif isinstance(action, UrlAction):
                action.wait()


def _on_loop(loop: asyncio.AbstractEventLoop, fn: Callable, *args) -> None:
    """From another thread: run ``fn`` on the loop, unless the run has ended."""
    with contextlib.suppress(RuntimeError):  # the loop is closed: the run is over
        loop.call_soon_threadsafe(fn, *args)


async def show(engine: PopupEngine, *, fmt: PopupFormat = PopupFormat.panel, actions: Sequence = (),
               on: OnState = OnState.ring, bell: bool = False, out=None, console: Optional[Console] = None,
               err: Optional[Console] = None, keys: Optional[Callable[[PopupEngine], Awaitable]] = None) -> None:
    """Run ``engine`` on this terminal: the panel (refreshed at a bounded rate from the
    latest snapshot, never holding up ingest) or one JSON object per change, plus the
    actions; Ctrl-C ends it cleanly.  ``keys`` (``popup --control``, see
    `eslkit.app.popup_control.phone_keys`) gives the panel its phone keys.  The source
    must be open."""
    err = err or Console(stderr=True, highlight=False, soft_wrap=True, theme=THEME)
    # Failed writes (a full disk) become OutputError; a closed pipe stays BrokenPipeError.
    front = _Front(fmt, actions, on, bell, OutputStream(out if out is not None else sys.stdout.buffer), err,
                   engine.source)
    engine.listen(front)
    if fmt is PopupFormat.json:  # the panel shows notices in its status line
        engine.on_notice = lambda line: err.out("eslkit: " + visible(line, 300), highlight=False)
    panel = await keys(engine) if keys is not None and fmt is PopupFormat.panel else None

    def view() -> PopupView:
        snapshot = engine.snapshot()
        if panel is not None:
            bar = panel.bar()
            snapshot = replace(snapshot, selected=panel.selected, footer=bar)
        return PopupView(snapshot)

    live = None
    if fmt is PopupFormat.panel:
        # Whole frames: Ctrl-C during a write blocked on a slow terminal must not leave half
        # a colour code behind (OutputStream writes the rest, as for JSON lines).
        live = Live(get_renderable=view, console=console or ScreenConsole(
            file=OutputStream(sys.stdout.buffer), force_terminal=sys.stdout.isatty(), theme=THEME,
            highlight=False), auto_refresh=False, redirect_stdout=False, redirect_stderr=False, transient=False)

    async def refresh() -> None:
        while True:
            await asyncio.sleep(1 / REFRESH_PER_SECOND)
            if front.ring:
                front.ring = False
                live.console.bell()
            live.refresh()

    async def typing(pressed) -> None:
        async for key in pressed:
            panel.key(key)
            live.refresh()

    ticker = typist = None
    terminal = contextlib.ExitStack()
    try:
        with stop_on_signals(engine.stop):
            if live is not None:
                front.say = live.console.print  # above the panel, which Rich then redraws
                live.start(refresh=True)
                ticker = asyncio.ensure_future(refresh())
                if panel is not None:
                    typist = asyncio.ensure_future(typing(terminal.enter_context(keyboard())))
            await engine.run()
    finally:
        for task in (ticker, typist):
            if task is not None:
                task.cancel()
        terminal.close()  # the terminal as it was
        if panel is not None:
            await panel.close()
        if live is not None:
            live.refresh()
            live.stop()
            if not live.console.is_terminal:
                live.console.line()
        front.finish()
        await asyncio.sleep(0)  # what the programs said while finishing


def run(engine: PopupEngine, **front) -> None:
    """`eslkit popup`: open the source and `show()` the engine until the source ends or Ctrl-C."""
    run_on(engine.source, lambda: show(engine, **front))
