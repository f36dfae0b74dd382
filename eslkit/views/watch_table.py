"""``--format table``: the newest events as a table, with a status line.

`WatchScreen` is a renderable that reads a `WatchSnapshot` when it is drawn:
the ingest task swaps in a new snapshot, the refresh task draws whichever is
current, and the number of rows follows the height Rich gives it — so a
terminal resize simply changes how many of the newest rows are shown.
Every value from the network goes through `safe_text`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from eslkit.event import Event
from eslkit.safe_text import safe_text, visible
from eslkit.views.table_keys import TableView

# name: (heading, ratio); a name not listed here is taken as a header name.
COLUMNS: dict[str, tuple[str, int]] = {
    "time": ("Time", 0),
    "event": ("Event", 4),
    "direction": ("Dir", 0),
    "channel": ("Channel", 5),
    "caller": ("Caller", 2),
    "name": ("Name", 2),
    "destination": ("Destination", 2),
    "state": ("State", 2),
    "uuid": ("UUID", 0),
}
DEFAULT_COLUMNS = list(COLUMNS)

_RINGING = {"CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
            "CHANNEL_OUTGOING"}
_HANGUP = {"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"}
_BRIDGE = {"CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE"}
_QUIET = {"HEARTBEAT", "RE_SCHEDULE", "API", "MODULE_LOAD", "CHANNEL_STATE", "CODEC", "PRESENCE_IN",
          "MESSAGE_WAITING", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE"}


def parse_columns(spec: Optional[str]) -> list[str]:
    """``"time,event,Caller-Caller-ID-Number"`` → column keys; known names are case-insensitive."""
    words = (spec or "").replace(",", " ").split()
    if not words:  # "" or ",,": no column named, the default ones (not a table of none)
        return list(DEFAULT_COLUMNS)
    return [word.lower() if word.lower() in COLUMNS else word for word in words]


def event_style(event: Event) -> str:
    name = event.get("Event-Name") or ""
    if name == "CHANNEL_ANSWER":
        return "esl.answered"
    if name in _HANGUP:
        return "esl.hangup"
    if name in _BRIDGE:
        return "esl.bridge"
    if name in _RINGING or (name == "CHANNEL_CALLSTATE" and event.get("Channel-Call-State") == "RINGING"):
        return "esl.ringing"
    if name in _QUIET:
        return "esl.quiet"
    return "esl.event"


def _clock(event: Event, received_at: float) -> str:
    stamp = event.get("Event-Date-Timestamp")
    t = received_at
    if stamp and stamp.isdigit():
        t = int(stamp) / 1_000_000
    lt = time.localtime(t)
    return time.strftime("%H:%M:%S", lt) + f".{int((t % 1) * 1000):03d}"


def _cell(event: Event, key: str, received_at: float) -> str:
    if key == "time":
        return _clock(event, received_at)
    if key == "event":
        name = event.get("Event-Name") or ""
        if name == "CUSTOM":
            name = f"CUSTOM {event.get('Event-Subclass') or ''}"
        if name in ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE"):
            cause = event.get("Hangup-Cause")
            if cause:
                name = f"{name} {cause}"
        return name
    if key == "direction":
        d = event.get("Call-Direction") or ""
        return {"inbound": "in", "outbound": "out"}.get(d, d)
    if key == "channel":
        return event.get("Channel-Name") or ""
    if key == "caller":
        return event.get("Caller-Caller-ID-Number") or ""
    if key == "name":
        return event.get("Caller-Caller-ID-Name") or ""
    if key == "destination":
        return event.get("Caller-Destination-Number") or ""
    if key == "state":
        return event.get("Channel-Call-State") or event.get("Answer-State") or ""
    if key == "uuid":
        return (event.get("Unique-ID") or "")[:8]
    return event.get(key) or ""


def event_table(rows: Sequence[tuple[float, Event]], columns: Sequence[str], *,
                seconds_only: bool = False, width: int = 200) -> Table:
    """``seconds_only``: a very narrow terminal gives the time's milliseconds to the event name."""
    # The event name is what people read: its column takes what the others leave at their
    # usual widths, and never less than CHANNEL_HANGUP_COMPLETE; the others are cut first.
    others = sum(_WANT.get(key, 10) + 3 for key in columns if key != "event")
    event_max = min(_EVENT_MAX, max(_EVENT_NAME, width - others)) + 2  # + its padding
    table = Table(box=box.SIMPLE_HEAD, expand=True, pad_edge=False, show_edge=False,
                  header_style="esl.heading", padding=(0, 1))
    for key in columns:
        heading, ratio = COLUMNS.get(key, (key, 2))
        # The event column is as wide as its names (up to a cause): the other columns share
        # the rest, and are cut first.
        event = key == "event"
        table.add_column(visible(heading), no_wrap=True, overflow="ellipsis", ratio=None if event else ratio or None,
                         max_width=event_max if event else None, min_width=3)
    for received_at, event in rows:
        style = event_style(event)
        cells = [_cell(event, key, received_at) for key in columns]
        if seconds_only and "time" in columns:
            at = columns.index("time")
            cells[at] = cells[at][:8]
        table.add_row(*[safe_text(cell, max_len=200) for cell in cells], style=style)
    return table


_EVENT_NAME = len("CHANNEL_HANGUP_COMPLETE")
_EVENT_MAX = len("CHANNEL_HANGUP_COMPLETE NORMAL_TEMPORARY_FAILURE")
# What the other columns usually need (a header column: 10).
_WANT = {"time": 12, "direction": 3, "channel": 24, "caller": 6, "name": 12, "destination": 6, "state": 6,
         "uuid": 8}


@dataclass
class WatchSnapshot:
    """What the screen shows; replaced as a whole by the ingest side."""

    rows: Sequence[tuple[float, Event]] = ()
    state: str = "connecting"  # connecting | connected | disconnected | ended
    source: str = ""
    reason: str = ""
    gap: Optional[float] = None
    received: int = 0
    shown: int = 0
    dropped: int = 0
    rate: float = 0.0
    subscriptions: Sequence[str] = ()
    filters: Sequence[tuple[str, str]] = ()
    matches: Sequence[str] = ()
    extra: Optional[object] = None  # e.g. the stats panel
    retrying: bool = True  # a live switch reconnects; a replay just reports what happened
    since: float = field(default_factory=time.monotonic)
    view: Optional[TableView] = None  # the keys' choices (paused, scrolled, searched); None: no keys


def rate_text(rate: float) -> tuple[str, str]:
    """(number, unit): a quiet switch reads "12/min", not "0.2/s"."""
    if 0 < rate < 1:
        return f"{rate * 60:.0f}", "/min"
    return f"{rate:.1f}", "/s"


def status_line(s: WatchSnapshot) -> Text:
    state_style = {"connected": "esl.connected", "disconnected": "esl.disconnected"}.get(s.state, "esl.warning")
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append("● ", state_style)
    line.append(s.state, state_style)
    if s.source:
        line.append(" " + visible(s.source, 60), "esl.label")
    if s.state == "disconnected":
        if s.retrying:
            line.append(f" for {time.monotonic() - s.since:.0f}s, retrying", "esl.disconnected")
        if s.reason:
            line.append(" (" + visible(s.reason, 80) + ")", "esl.label")
    elif s.gap is not None:
        line.append(f" (back after a {s.gap:.1f}s gap)", "esl.warning")
    line.append("  │ ", "esl.label")
    line.append(f"{s.received}", "esl.count")
    line.append(" event " if s.received == 1 else " events ", "esl.label")
    if s.matches:
        line.append(f"({s.shown} matched) ", "esl.label")
    number, unit = rate_text(s.rate)
    line.append(number, "esl.count")
    line.append(f"{unit}  dropped ", "esl.label")
    line.append(str(s.dropped), "esl.missed" if s.dropped else "esl.count")
    if s.subscriptions:
        line.append("  │ event ", "esl.label")
        line.append(visible(" ".join(s.subscriptions), 80))
    for header, value in s.filters:
        line.append("  │ filter ", "esl.label")
        line.append(visible(f"{header} {value}", 60))
    for m in s.matches:
        line.append("  │ match ", "esl.label")
        line.append(visible(m, 60))
    return line


def keys_line(view: TableView, hidden: int) -> Text:
    """What the keys did and can do; ``hidden``: newer rows not shown (paused, scrolled)."""
    line = Text(no_wrap=True, overflow="ellipsis")
    if view.typing is not None:
        line.append("/", "esl.warning")
        line.append(visible(view.typing, 60))
        line.append("▏  Enter search · Esc cancel", "esl.label")
        return line
    if view.paused:
        line.append("PAUSED", "esl.warning")
        if hidden:
            line.append(f" · {hidden} newer", "esl.warning")
        line.append(" · space or End: live  ", "esl.label")
    if view.search:
        line.append("/" + visible(view.search, 60), "esl.warning")
        line.append(" · Esc clears  ", "esl.label")
    line.append("q quit · space pause · / search · ↑↓ PgUp PgDn scroll", "esl.label")
    return line


def _found(rows: Sequence[tuple[float, Event]], columns: Sequence[str], search: str) -> list:
    """The rows whose shown cells hold ``search`` (any case), as the table would show them."""
    wanted = search.casefold()
    return [(at, event) for at, event in rows
            if any(wanted in _cell(event, key, at).casefold() for key in columns)]


class WatchScreen:
    """Draws the current snapshot at whatever size the terminal has now."""

    def __init__(self, snapshot: Callable[[], WatchSnapshot], columns: Sequence[str]):
        self.snapshot = snapshot
        self.columns = list(columns)
        self.auto = self.columns == DEFAULT_COLUMNS  # the user did not choose: we may drop some

    def columns_for(self, width: int) -> list[str]:
        """Narrower, the columns go in this order: channel and name, direction and state,
        the uuid, the destination (and the time's milliseconds); the event name (what
        people read) is the last to be cut."""
        if not self.auto or width >= 110:
            return self.columns
        drop = {"channel", "name"}
        if width < 80:
            drop |= {"direction", "state"}
        if width < 64:
            drop |= {"uuid"}
        if width < 48:
            drop |= {"destination"}
        return [c for c in self.columns if c not in drop]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        s = self.snapshot()
        height = options.height or options.max_height or console.height
        width = options.max_width
        columns = self.columns_for(width)
        view = s.view
        rows: Sequence = s.rows
        top = [status_line(s)]
        if view is not None:
            rows = view.frozen if view.frozen is not None else rows
            if view.search:
                rows = _found(rows, columns, view.search)
            top.append(keys_line(view, len(s.rows) - len(view.frozen) if view.frozen is not None else 0))
        if s.extra is not None:
            top.append(s.extra)
        # Measure what sits above the table at this width, so the newest row
        # always lands on the last line whatever the terminal's size.
        used = len(console.render_lines(Group(*top), options.update(height=None), pad=False))
        room = max(0, height - used - 2)  # the table's heading and its rule
        end = len(rows)
        if view is not None:
            view.page = max(room - 1, 1)
            view.offset = min(view.offset, max(len(rows) - room, 0))  # not past the oldest row
            end -= view.offset
        rows = list(rows[max(end - room, 0):end]) if room else []
        yield Group(*top, event_table(rows, columns, seconds_only=width < 48, width=width))
