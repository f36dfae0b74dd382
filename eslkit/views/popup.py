"""The screen popup: a rich renderable built from an immutable snapshot, and
the ``--format json`` writer (one object per agent-leg state change).

Nothing here prints: `PopupView(snapshot)` renders to whatever console it is
given, at the width the render options allow.  Every caller-supplied value
(name, number, contact fields) goes through `safe_text` — shown literally,
controls made visible, cut to fit — and every colour is a named style from
`eslkit.views.theme`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import IO, Optional

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from eslkit.calls import LegView, popup_record
from eslkit.safe_text import safe_text

__all__ = ["PopupSnapshot", "PopupView", "JsonWriter", "state_label", "format_seconds", "party"]

# An ended call stays in the panel this long before the idle line returns.
SHOW_ENDED_FOR = 30.0

_OUTCOME_STYLE = {
    "answered": "esl.ended",
    "answered_elsewhere": "esl.elsewhere",
    "missed": "esl.missed",
    "busy": "esl.busy",
    "failed": "esl.failed",
}


@dataclass(frozen=True)
class PopupSnapshot:
    """Everything the popup shows at one moment.  Built by the command, read by the view."""

    exts: tuple = ()
    legs: tuple = ()  # LegView: current legs (ringing/answered) and the latest ended one per ext
    recent: tuple = ()  # LegView: ended legs, newest first
    connection: str = ""  # "connected to 127.0.0.1:8021", "replaying calls.jsonl", ...
    connected: bool = True
    now: Optional[float] = None  # switch clock, for the ringing / talk timers
    notes: tuple = field(default=())  # extra status lines (dropped events, ...)
    selected: Optional[str] = None  # popup --control: the leg the keys act on (marked ▸)
    footer: Optional[object] = None  # popup --control: a renderable below the status line (the keys)


def format_seconds(seconds: Optional[float]) -> str:
    if seconds is None:
        return "–"
    s = int(max(seconds, 0) + 0.5)
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


def state_label(leg: LegView) -> tuple[str, str]:
    """(label, style) of a leg: Ringing, Connected, On hold, Answered by 1002, Missed, Busy, Ended."""
    if leg.state == "ringing":
        return "Ringing", "esl.ringing"
    if leg.state == "answered":
        return ("On hold", "esl.hold") if leg.on_hold else ("Connected", "esl.answered")
    outcome = leg.outcome or "failed"
    if outcome == "answered_elsewhere":
        return (f"Answered by {leg.answered_by}" if leg.answered_by else "Answered elsewhere"), "esl.elsewhere"
    if outcome == "missed":
        return "Missed", "esl.missed"
    if outcome == "busy":
        return "Busy", "esl.busy"
    if outcome == "failed":
        return "Failed", "esl.failed"
    return "Ended", "esl.ended"


class PopupView:
    """The popup panel(s), the recent calls below, and the connection line."""

    # As wide as the terminal, up to a width still read at a glance.
    def __init__(self, snapshot: PopupSnapshot, *, max_panel_width: int = 120):
        self.snapshot = snapshot
        self.max_panel_width = max_panel_width

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        snap = self.snapshot
        width = max(min(options.max_width, self.max_panel_width), 20)
        now = snap.now if snap.now is not None else time.time()
        shown = set()
        parts = []
        for leg in snap.legs:
            if leg.state == "ended" and leg.ended_at is not None and now - leg.ended_at > SHOW_ENDED_FOR:
                continue
            parts.append(self._panel(leg, now, width, selected=snap.selected == leg.leg_uuid))
            shown.add(leg.ext)
        idle = [ext for ext in snap.exts if ext not in shown]
        if idle:
            line = Text("waiting for calls on ", style="esl.idle")
            line.append_text(safe_text(", ".join(idle), "esl.idle", max_len=width))
            parts.append(line)
        if snap.recent:
            parts.append(self._recent(snap, width))
        parts.append(self._status(snap, max(options.max_width, 20)))
        if snap.footer is not None:
            parts.append(snap.footer)
        yield Group(*parts)

    # --- pieces ----------------------------------------------------------------------

    def _panel(self, leg: LegView, now: float, width: int, selected: bool = False) -> Panel:
        inner = width - 4  # borders and padding
        label, style = state_label(leg)
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="esl.label", no_wrap=True)
        value_len = max(inner - 8, 8)  # the labels take 7 columns and a space
        grid.add_column(no_wrap=True, overflow="ellipsis", max_width=value_len)

        number, name = party(leg)
        # A contact's name is who calls: it takes the caller-ID name's place, which follows it.
        who = _who(leg.contact, name, value_len)
        if leg.direction == "outgoing":  # the agent's own call: who it goes to
            grid.add_row(Text("To"), safe_text(number or "…", "esl.number", max_len=value_len))
            if who is not None:
                grid.add_row(Text("Name"), who)
        else:
            grid.add_row(Text("Caller"), who if who is not None else Text("(no name)", style="esl.caller"))
            grid.add_row(Text("Number"), safe_text(number or "unknown", "esl.number", max_len=value_len))
            if leg.dialed:
                grid.add_row(Text("Dialled"), safe_text(leg.dialed, "esl.value", max_len=value_len))
        if leg.transferred_from:
            sender = safe_text(leg.transferred_from, "esl.value", max_len=value_len)
            sender.append(" (transferred)", style="esl.label")
            grid.add_row(Text("From"), sender)
        if leg.queue:
            queue = safe_text(leg.queue, "esl.value", max_len=value_len)
            if leg.wait_seconds is not None:
                queue.append(f"  waited {format_seconds(leg.wait_seconds)}", style="esl.label")
            grid.add_row(Text("Queue"), queue)
        details = _contact_details(leg.contact, value_len) if leg.contact else None
        if details is not None:
            grid.add_row(Text("Contact"), details)
        grid.add_row(Text("Status"), self._status_value(leg, label, style, now))
        grid.add_row(Text("Call"), safe_text(leg.call_uuid[:8], "esl.uuid", max_len=8))

        title = Text("▸ ", style="esl.title") if selected else Text()
        title.append_text(safe_text(leg.ext, "esl.title", max_len=16))
        title.append(" · ")
        title.append(label, style=style)
        return Panel(grid, title=title, title_align="left", border_style=style, width=width)

    def _status_value(self, leg: LegView, label: str, style: str, now: float) -> Text:
        text = Text(label, style=style)
        if leg.state == "ringing":
            text.append("  ")
            text.append(format_seconds(now - leg.created if leg.created else None), style="esl.timer")
        elif leg.state == "answered":
            text.append("  ")
            text.append(format_seconds(now - leg.answered_at if leg.answered_at else None), style="esl.timer")
        else:
            details = []
            if leg.outcome == "answered":
                details.append(f"talked {format_seconds(leg.talk_seconds)}")
            else:
                details.append(f"rang {format_seconds(leg.ring_seconds)}")
            if leg.hangup_cause:
                details.append(leg.hangup_cause)
            text.append("  ")
            text.append_text(safe_text(" · ".join(details), "esl.label", max_len=60))
        return text

    def _recent(self, snap: PopupSnapshot, width: int) -> Table:
        table = Table(
            title=Text("Recent calls", style="esl.heading"), title_justify="left", box=None,
            header_style="esl.label", padding=(0, 1), width=width, pad_edge=False,
        )
        table.add_column("Ended", no_wrap=True)
        many = len(snap.exts) != 1
        if many:
            table.add_column("Ext", no_wrap=True)
        table.add_column("Caller", no_wrap=True, overflow="ellipsis", ratio=1)
        table.add_column("Outcome", no_wrap=True)
        # Two columns, so that a duration always means the same: ringing, then talking.
        table.add_column("Rang", no_wrap=True, justify="right")
        table.add_column("Talked", no_wrap=True, justify="right")
        for leg in snap.recent:
            label, style = state_label(leg)
            if leg.outcome == "answered":
                label = "Answered"
            row_style = "esl.missed" if leg.outcome == "missed" else None
            when = time.strftime("%H:%M:%S", time.localtime(leg.ended_at or leg.time or 0))
            number, name = party(leg)
            caller = Text("→ ", style="esl.label") if leg.direction == "outgoing" else Text()
            caller.append_text(safe_text(number or "unknown", "esl.number", max_len=24))
            known = str(leg.contact.get("name") or "") if leg.contact else ""
            if known or name:
                caller.append(" ")
                caller.append_text(safe_text(known or name, "esl.contact" if known else "", max_len=max(width - 40, 8)))
            talked = format_seconds(leg.talk_seconds) if leg.outcome == "answered" else ""
            cells = [Text(when, style="esl.label")]
            if many:
                cells.append(safe_text(leg.ext, "esl.label", max_len=12))
            cells += [caller, Text(label, style=_OUTCOME_STYLE.get(leg.outcome or "", style)),
                      Text(format_seconds(leg.ring_seconds), style="esl.label"), Text(talked, style="esl.label")]
            table.add_row(*cells, style=row_style)
        return table

    def _status(self, snap: PopupSnapshot, width: int) -> Text:
        mark, style = ("●", "esl.connected") if snap.connected else ("○", "esl.disconnected")
        text = Text(f"{mark} ", style=style)
        text.append_text(safe_text(snap.connection, style, max_len=max(width - 2, 10)))
        for note in snap.notes:
            text.append("  ")
            text.append_text(safe_text(note, "esl.warning", max_len=width))
        return text


def party(leg: LegView) -> tuple:
    """(number, name) of the party the agent talks to: the caller of an incoming call (a
    record of an older relay has only caller_*), the far party of an outgoing one."""
    if leg.direction == "outgoing":
        return leg.other_number, leg.other_name
    return leg.other_number or leg.caller_number, leg.other_name or leg.caller_name


def _who(contact: Optional[dict], caller_id_name: Optional[str], max_len: int) -> Optional[Text]:
    """The contact's name, then the caller-ID name when it says something else; or the
    caller-ID name alone; None when there is no name at all."""
    known = str(contact.get("name") or "") if contact else ""
    if not known:
        return safe_text(caller_id_name, "esl.caller", max_len=max_len) if caller_id_name else None
    text = safe_text(known, "esl.contact", max_len=max_len)
    if caller_id_name and caller_id_name != known and len(text) + 14 < max_len:
        text.append("  caller ID ", style="esl.label")
        text.append_text(safe_text(caller_id_name, "esl.label", max_len=max_len - len(text)))
    return text


def _contact_details(contact: dict, max_len: int) -> Optional[Text]:
    """What the contacts file says besides the name and number (company, notes …)."""
    rest = [str(v) for k, v in contact.items() if k not in ("name", "number") and v]
    return safe_text(" · ".join(rest), "esl.contact", max_len=max_len) if rest else None


class JsonWriter:
    """``--format json``: one object per state change, one line each, flushed at once.

    JSON is written with ``ensure_ascii`` so no raw control or bidi character
    from the network reaches a terminal; any JSON reader decodes the escapes.
    """

    def __init__(self, stream: IO[str]):
        self.stream = stream
        self.written = 0

    def write(self, leg: LegView) -> None:
        self.stream.write(json.dumps(popup_record(leg), ensure_ascii=True) + "\n")
        self.stream.flush()
        self.written += 1
