"""``eslkit popup``: screen popups for an agent's extension.

The typer function `popup` only parses options; `PopupRun` wires a source
(a live switch, or a replayed file) through the call tracker to the panel or
to JSON lines, and fires the actions.  One task takes events in; the panel
pulls a fresh snapshot at its own refresh rate, so drawing never holds up
ingest.
"""

# No `from __future__ import annotations` here: typer reads these signatures at run time,
# and on Python 3.9 it cannot see the Annotated options inside string annotations.

import asyncio
import contextlib
import enum
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Annotated, Callable, List, Optional, Sequence

import typer
from rich.console import Console
from rich.live import Live

from eslkit.actions import ExecAction, UrlAction, forget_secrets
from eslkit.calls import POPUP_EVENTS, CallTracker, LegView, live_channels
from eslkit.status import ConnectionStatus
from eslkit.commands.running import run_until_stopped
from eslkit.commands.options import HostOpt, PasswordOpt, PortOpt, ProfileOpt, TimeoutOpt, connection_settings
from eslkit.contacts import load_contacts
from eslkit.errors import EslkitError, OutputError, TemplateError
from eslkit.event import Event
from eslkit.views.ndjson import OutputStream
from eslkit.views.popup import SHOW_ENDED_FOR, JsonWriter, PopupSnapshot, PopupView
from eslkit.views.safe_text import visible
from eslkit.views.theme import THEME

REFRESH_PER_SECOND = 4


class PopupFormat(str, enum.Enum):
    panel = "panel"
    json = "json"


class OnState(str, enum.Enum):
    ring = "ring"
    answer = "answer"


def parse_exts(values: Optional[Sequence[str]]) -> list[str]:
    """``--ext 1001 --ext 1002`` or ``--ext 1001,1002`` → ["1001", "1002"]."""
    exts: list[str] = []
    for value in values or ():
        for ext in value.replace(" ", ",").split(","):
            if ext and ext not in exts:
                exts.append(ext)
    if not exts:
        raise typer.BadParameter("give at least one extension, e.g. --ext 1001", param_hint="--ext")
    return exts


def exec_argv(program: Optional[str], args: Sequence[str]) -> Optional[list[str]]:
    """``--exec notify-send "Call from {caller_name}"``: the program, then its arguments
    (or one quoted string, split like a shell would split it — but never run by one)."""
    if not program:
        if args:
            raise typer.BadParameter(f"unexpected argument {args[0]!r} (arguments follow --exec CMD)")
        return None
    argv = [program, *args] if args or " " not in program.strip() else shlex.split(program)
    if shutil.which(argv[0]) is None:
        raise TemplateError(f"--exec: there is no program {argv[0]!r} on the PATH.",
                            "Give the program's full path, or install it.")
    return argv


class PopupRun:
    """One popup session: source → tracker → panel or JSON, plus actions."""

    def __init__(
        self,
        source,
        tracker: CallTracker,
        exts: Sequence[str],
        *,
        fmt: PopupFormat = PopupFormat.panel,
        actions: Sequence[Callable[[LegView], object]] = (),
        on: OnState = OnState.ring,
        bell: bool = False,
        out=None,
        console: Optional[Console] = None,
        err: Optional[Console] = None,
    ):
        self.source = source
        self.tracker = tracker
        self.exts = tuple(exts)
        self.fmt = fmt
        self.actions = list(actions)
        self.on = on
        self.bell = bell
        # Failed writes (a full disk) become OutputError; a closed pipe stays BrokenPipeError.
        self.out = OutputStream(out if out is not None else sys.stdout)
        self.console = console
        self.err = err or Console(stderr=True, highlight=False, soft_wrap=True, theme=THEME)
        self.writer = JsonWriter(self.out) if fmt is PopupFormat.json else None
        self.connection = f"connecting to {getattr(source, 'description', '')}"
        self.connected = False
        self.changes = 0
        self._last_event_clock = time.monotonic()
        self._last: dict[str, LegView] = {}  # the latest ended leg per extension
        self._states: dict[str, str] = {}  # the state of each leg up, by leg uuid
        # Made in run(): on Python 3.9 an asyncio.Event belongs to the loop current
        # when it is created, and there is none before asyncio.run().
        self._stop: Optional[asyncio.Event] = None
        self._ring = False
        self._resync_task: Optional[asyncio.Future] = None
        self._failure: Optional[BaseException] = None  # the output failed outside ingest

    # --- ingest -----------------------------------------------------------------------

    async def ingest(self) -> None:
        tracker = self.tracker
        async for item in self.source:
            if isinstance(item, Event):
                before = tracker.now
                changes = tracker.feed(item)
                if tracker.now != before:  # the switch's clock moved: restart the local count
                    self._last_event_clock = time.monotonic()
                for leg in changes:
                    self._changed(leg)
            elif isinstance(item, ConnectionStatus):
                self._status(item)
                if item.state == "connected":
                    self._resync_task = asyncio.ensure_future(self._resync())

    async def _resync(self) -> None:
        """On connect and after a reconnect, ask the switch which channels are up: a
        call already up shows at once, and calls that ended while the link was down
        do not stay 'Ringing' or 'Connected'."""
        conn = getattr(self.source, "conn", None)
        if not hasattr(conn, "api"):
            return  # a broker: the relay's tracker resyncs and publishes the outcome
        known = self.tracker.known()
        try:
            live = live_channels(await conn.api("show channels as json", timeout=10))
        except (EslkitError, ValueError):
            return  # the next events and the expiry will sort it out
        try:
            for leg in self.tracker.resync(live, self.switch_now(), known=known):
                self._changed(leg)
        except (OutputError, BrokenPipeError) as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        """The output failed outside ingest: end the run, and raise it there."""
        self._failure = self._failure or exc
        if self._stop is not None:
            self._stop.set()

    def _changed(self, leg: LegView) -> None:
        self.changes += 1
        # A record in the state the leg already had (hold, the far party known) is news
        # for the panel and the JSON, not a new ring or answer for the bell and actions.
        entered = self._states.pop(leg.leg_uuid, None) != leg.state
        if leg.state == "ended":
            self._last[leg.ext] = leg
        else:
            self._states[leg.leg_uuid] = leg.state
        if self.writer is not None:
            self.writer.write(leg)
        if not entered:
            return
        if leg.state == "ringing" and self.bell:
            self._ring = True
        wanted = "ringing" if self.on is OnState.ring else "answered"
        if leg.state == wanted:
            for action in self.actions:
                try:
                    action(leg)
                except TemplateError as err:  # one failed action must not end the popup
                    self.err.print("[esl.warning]eslkit: action failed:[/] ", end="")
                    self.err.out(visible(str(err), 300), highlight=False)

    def _status(self, status: ConnectionStatus) -> None:
        self.connected = status.state == "connected"
        where = getattr(self.source, "description", "")
        replaying = not hasattr(self.source, "conn")  # a file: nothing to reconnect to
        if replaying:
            self.connection = where if self.connected else f"end of {where}"
            return
        if self.connected:
            self.connection = f"connected to {where}"
        else:
            reason = status.reason.strip() or f"disconnected from {where}"
            self.connection = f"reconnecting — {reason}"
        if self.fmt is PopupFormat.json and not self.connected:
            self.err.print("[esl.warning]eslkit: link lost:[/] ", end="")
            self.err.out(visible(status.reason, 200) + " — reconnecting", highlight=False)
        if self.fmt is PopupFormat.json and self.connected and status.gap is not None:
            self.err.out(f"eslkit: reconnected after a {status.gap:.1f}s gap", highlight=False)

    # --- snapshots --------------------------------------------------------------------

    def switch_now(self) -> float:
        """The switch's clock now, from the last event's time plus what passed since."""
        if not self.tracker.now:
            return time.time()
        return self.tracker.now + (time.monotonic() - self._last_event_clock)

    def snapshot(self) -> PopupSnapshot:
        tracker = self.tracker
        now = self.switch_now()
        legs: list[LegView] = []
        recent: list[LegView] = []
        for ext in self.exts:
            active = tracker.active(ext)
            legs += active
            last = self._last.get(ext)
            if not active and last is not None and last.ended_at is not None and now - last.ended_at <= SHOW_ENDED_FOR:
                legs.append(last)
            recent += tracker.recent(ext)
        recent.sort(key=lambda leg: leg.ended_at or 0.0, reverse=True)
        notes = ()
        dropped = getattr(self.source, "dropped", 0)
        if dropped:
            notes = (f"{dropped} events dropped",)
        return PopupSnapshot(
            exts=self.exts, legs=tuple(legs), recent=tuple(recent[:10]), connection=self.connection,
            connected=self.connected, now=now, notes=notes,
        )

    def view(self) -> PopupView:
        return PopupView(self.snapshot())

    # --- the whole run ---------------------------------------------------------------

    async def run(self) -> None:
        self._stop = asyncio.Event()
        live = None
        if self.fmt is PopupFormat.panel:
            console = self.console or Console(theme=THEME, highlight=False)
            live = Live(get_renderable=self.view, console=console, auto_refresh=False,
                        redirect_stdout=False, redirect_stderr=False, transient=False)
        ingest = asyncio.ensure_future(self.ingest())
        ticker = asyncio.ensure_future(self._tick(live))
        failure: Optional[BaseException] = None
        try:
            # AuthError, InputFileError … come back here, raised below once the
            # panel and the actions are done.
            failure = await run_until_stopped(
                ingest, self._stop, start=(lambda: live.start(refresh=True)) if live else (lambda: None),
                helpers=[ticker])
        finally:
            if self._resync_task is not None:
                self._resync_task.cancel()
            if live is not None:
                live.refresh()
                live.stop()
                if not live.console.is_terminal:
                    live.console.line()
            for action in self.actions:
                if isinstance(action, ExecAction):
                    action.reap()
                elif isinstance(action, UrlAction):
                    action.wait()
        failure = failure or self._failure
        if failure is not None:
            raise failure

    async def _tick(self, live: Optional[Live]) -> None:
        while True:
            await asyncio.sleep(1 / REFRESH_PER_SECOND)
            try:
                for leg in self.tracker.expire(self.switch_now()):
                    self._changed(leg)
            except (OutputError, BrokenPipeError) as exc:
                self._fail(exc)
                return
            if live is not None:
                if self._ring:
                    self._ring = False
                    live.console.bell()
                live.refresh()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()


async def _run(run: PopupRun) -> None:
    try:
        await run.source.open()
        await run.run()
    finally:
        await run.source.close()


def default_format() -> PopupFormat:
    return PopupFormat.panel if sys.stdout.isatty() else PopupFormat.json


def popup(
    ext: Annotated[List[str], typer.Option(
        "--ext", "-e", metavar="EXT",
        help="The agent's extension (repeat, or 1001,1002 for several).")],
    exec_args: Annotated[Optional[List[str]], typer.Argument(
        metavar="[ARG]...", show_default=False,
        help="Arguments for --exec CMD, each one argument whatever the values hold.")] = None,
    contacts: Annotated[Optional[Path], typer.Option(
        "--contacts", metavar="FILE", dir_okay=False,
        help="Look callers up in a CSV file or an SQLite database (see docs/popup.md).")] = None,
    open_url: Annotated[Optional[str], typer.Option(
        "--open-url", metavar="TEMPLATE",
        help="Open this URL in the default browser, e.g. 'https://crm.example/search?phone={caller_number}' "
             "(values URL-encoded).")] = None,
    exec_cmd: Annotated[Optional[str], typer.Option(
        "--exec", metavar="CMD",
        help="Run CMD [ARG]... (no shell), e.g. --exec notify-send 'Call from {caller_name}'.")] = None,
    on: Annotated[OnState, typer.Option(
        "--on", case_sensitive=False, help="When --open-url/--exec fire: when the phone rings, or when answered.")
    ] = OnState.ring,
    format: Annotated[Optional[PopupFormat], typer.Option(
        "--format", case_sensitive=False,
        help="panel (default on a terminal) or json (one object per state change; default when piped).",
        show_default=False)] = None,
    replay: Annotated[Optional[Path], typer.Option(
        "--replay", metavar="FILE",
        help="Read a recording (watch --record) or a raw ESL transcript instead of a switch; "
             "ends when the file does.")] = None,
    speed: Annotated[Optional[float], typer.Option(
        "--speed", min=0.001,
        help="With --replay: keep the original timing, SPEED times faster (default: as fast as possible).")] = None,
    from_url: Annotated[Optional[str], typer.Option(
        "--from", metavar="URL",
        help="Show the popup states `eslkit relay` publishes, from a broker (mqtt://HOST:PORT\\[/PREFIX] "
             "or amqp://…) instead of a switch; broker password in ESLKIT_BROKER_PASSWORD.")] = None,
    bell: Annotated[bool, typer.Option("--bell", help="Ring the terminal bell when a call rings.")] = False,
    match: Annotated[Optional[str], typer.Option(
        "--match", metavar="HEADER",
        help="The header that holds the agent's extension (default: variable_dialed_user, "
             "Channel-Presence-ID, Caller-Destination-Number, Caller-Callee-ID-Number, Channel-Name).")] = None,
    host: HostOpt = None,
    port: PortOpt = None,
    password: PasswordOpt = None,
    profile: ProfileOpt = None,
    timeout: TimeoutOpt = 5.0,
) -> None:
    """Screen popups for an agent: who is calling, from which queue, and what happened.

    [bold]eslkit popup --ext 1001[/]
    [bold]eslkit popup --ext 1001,1002 --contacts contacts.csv[/]
    [bold]eslkit popup --ext 1001 --open-url 'https://crm.example/search?phone={caller_number}'[/]
    [bold]eslkit popup --ext 1001 --exec notify-send 'Call from {caller_name}'[/]
    [bold]eslkit popup --ext 1001 --format json --replay calls.jsonl[/]
    [bold]eslkit popup --ext 1001 --from mqtt://broker:1883[/]      (what eslkit relay publishes)
    """
    exts = parse_exts(ext)
    fmt = format or default_format()
    actions: list = []
    if open_url:
        actions.append(UrlAction(open_url))
    argv = exec_argv(exec_cmd, exec_args or [])
    if argv:
        actions.append(ExecAction(argv))
    lookup = load_contacts(contacts).lookup if contacts else None
    tracker = CallTracker(exts, match=match, lookup=lookup)
    if replay is not None and from_url is not None:
        raise typer.BadParameter("give --replay FILE or --from URL, not both", param_hint="--from")
    if from_url is not None:
        from eslkit.sources.broker import popup_from_broker

        # The relay's tracker already decided the states: a stand-in keeps them for the view.
        source, tracker = popup_from_broker(from_url, exts, lookup=lookup)
    elif replay is not None:
        from eslkit.sources.replay import ReplaySource

        source = ReplaySource(replay, speed=speed)
    else:
        from eslkit.sources.esl import EslSource

        settings = connection_settings(host, port, password, profile, timeout)
        source = EslSource(settings, names=POPUP_EVENTS, reconnect=True)
    if actions:
        forget_secrets()  # read by now; a browser or program started for a popup gets none
    run = PopupRun(source, tracker, exts, fmt=fmt, actions=actions, on=on, bell=bell)
    try:
        asyncio.run(_run(run))
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python's final
        # flush of stdout from complaining about the closed pipe.
        _drop_stdout()
    except OutputError:
        _drop_stdout()  # a full disk: one clear error, not a second one at exit
        raise


def _drop_stdout() -> None:
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
