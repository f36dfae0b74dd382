"""The supervisor's wallboard: queues on top, agents below, from one `StatsSnapshot`.

`Wallboard(board)` is a renderable: it prints nothing itself and fits the width the
console gives it (fewer columns when narrow).  Thresholds colour what needs a
supervisor's eye — a caller waiting longer than `warn_wait`, a service level under
`target` — with named styles from `eslkit.views.theme`.  Queue names, agent names and
callers' numbers come from the switch: they go through `safe_text`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from eslkit.stats import AgentFigures, StatsSnapshot
from eslkit.views.popup import format_seconds
from eslkit.safe_text import safe_text

__all__ = ["Wallboard", "WallboardView", "STATE_LABELS"]

STATE_LABELS = {
    "available": ("Available", "esl.available"),
    "ringing": ("Ringing", "esl.ringing"),
    "talking": ("Talking", "esl.answered"),
    "on_hold": ("On hold", "esl.hold"),
    "after_call_work": ("After call", "esl.wrapup"),
    "on_break": ("On break", "esl.break"),
    "logged_out": ("Logged out", "esl.idle"),
}
_KIND = {"callcenter": "callcenter", "fifo": "fifo", "group": "ring group"}


@dataclass(frozen=True)
class Wallboard:
    """What the screen shows at one moment."""

    snapshot: StatsSnapshot
    source: str = ""  # "127.0.0.1:8021", "replay of today.jsonl"
    connected: bool = True
    status: str = ""  # "connected", "disconnected: …"
    warn_wait: float = 60.0  # seconds: a caller waiting longer is shown as an alert
    target: float = 0.8  # service level goal: below it is shown as an alert
    queues: tuple = ()  # only these (empty: all)
    notes: tuple = ()  # lines for the foot: what a filter hides, events dropped…


def _clock(epoch: Optional[float]) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch)) if epoch else "–"


def _percent(ratio: Optional[float]) -> str:
    return "–" if ratio is None else f"{ratio * 100:.0f}%"


class WallboardView:
    def __init__(self, board: Wallboard):
        self.board = board

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        b = self.board
        snap = b.snapshot.narrowed(b.queues)
        wide = options.max_width >= 150  # every column of both tables, names unclipped
        queues, agents = snap.queues, snap.agents
        head = Text.assemble(
            ("eslkit wallboard", "esl.title"), ("  ", ""), safe_text(b.source, "esl.label", max_len=60),
            ("  ", ""), (_clock(snap.time), "esl.timer"),
            ("  since ", "esl.label"), (_clock(snap.since), "esl.value"),
            ("  ", ""), (b.status or ("connected" if b.connected else "disconnected"),
                         "esl.connected" if b.connected else "esl.disconnected"),
            no_wrap=True, overflow="ellipsis",  # one line: the tables below keep their place
        )
        parts = [head, self._queues(queues, wide), self._agents(agents, wide)]
        calls = snap.calls
        parts.append(Text.assemble(
            ("all calls  ", "esl.label"), ("waiting ", "esl.label"), (str(calls.waiting), "esl.count"),
            ("  answered ", "esl.label"), (str(calls.answered), "esl.answered"),
            ("  missed ", "esl.label"), (str(calls.missed), "esl.missed"),
            ("  busy ", "esl.label"), (str(calls.busy), "esl.busy"),
            ("  mean ring ", "esl.label"), (format_seconds(calls.mean_ring), "esl.count")))
        for note in b.notes:
            parts.append(safe_text(note, "esl.warning"))
        yield Group(*parts)

    def _queues(self, queues: list, wide: bool) -> Table:
        b = self.board
        table = Table(box=box.SIMPLE_HEAD, expand=True, title="Queues", title_style="esl.heading",
                      header_style="esl.heading", pad_edge=False)
        table.add_column("Queue", ratio=3, min_width=12, no_wrap=True, overflow="ellipsis")
        if wide:
            table.add_column("Kind", no_wrap=True)
        names = ("Waiting", "Longest", "Offered", "Answered", "Abandoned", "Missed", "Service") if wide else \
            ("Wait", "Longest", "Offer", "Answ", "Aband", "Miss", "Service")
        for name in names:
            table.add_column(name, justify="right", no_wrap=True)
        if wide:
            for name in ("Wait avg", "Wait p90", "Talk avg", "Talk p90"):
                table.add_column(name, justify="right", no_wrap=True)
        if not queues:
            table.add_row(Text("no queue calls yet", "esl.idle"))
        for q in queues:
            row = [safe_text(q.name, "esl.value", max_len=40)]
            if wide:
                row.append(Text(_KIND.get(q.kind, q.kind), "esl.label"))
            long_wait = q.longest_wait is not None and q.longest_wait > b.warn_wait
            low = q.service_level is not None and q.service_level < b.target
            row += [
                Text(str(q.waiting), "esl.alert" if long_wait else ("esl.ringing" if q.waiting else "esl.count")),
                Text(format_seconds(q.longest_wait), "esl.alert" if long_wait else "esl.value"),
                Text(str(q.offered), "esl.count"), Text(str(q.answered), "esl.answered"),
                Text(str(q.abandoned), "esl.missed" if q.abandoned else "esl.count"),
                Text(str(q.missed), "esl.missed" if q.missed else "esl.count"),
                Text(f"{_percent(q.service_level)} <{q.service_level_seconds:g}s",
                     "esl.alert" if low else ("esl.good" if q.service_level is not None else "esl.label")),
            ]
            if wide:
                row += [Text(format_seconds(v), "esl.value") for v in (q.wait_avg, q.wait_p90, q.talk_avg, q.talk_p90)]
            table.add_row(*row)
        return table

    def _agents(self, agents: list, wide: bool) -> Table:
        table = Table(box=box.SIMPLE_HEAD, expand=True, title="Agents", title_style="esl.heading",
                      header_style="esl.heading", pad_edge=False)
        table.add_column("Agent", ratio=3, min_width=12, no_wrap=True, overflow="ellipsis")
        table.add_column("State", no_wrap=True)
        for name in ("Call", "Answered", "Missed", "Talk"):
            table.add_column(name, justify="right", no_wrap=True)
        if wide:
            table.add_column("Out", justify="right", no_wrap=True)
            table.add_column("Queues", ratio=3, no_wrap=True, overflow="ellipsis")
        if not agents:
            table.add_row(Text("no agent seen yet", "esl.idle"))
        for a in agents:
            table.add_row(*self._agent_row(a, wide))
        return table

    def _agent_row(self, a: AgentFigures, wide: bool) -> list:
        label, style = STATE_LABELS.get(a.state, (a.state, "esl.value"))
        name = safe_text(a.name, "esl.value", max_len=40)
        if a.ext and a.ext != a.name:
            name.append(" ")
            name.append_text(safe_text(a.ext, "esl.number", max_len=20))
        long_call = a.current_call is not None and a.current_call > 3600
        row = [name, Text(label, style),
               Text(format_seconds(a.current_call) if a.current_call is not None else "", "esl.alert" if long_call else "esl.timer"),
               Text(str(a.answered), "esl.answered"), Text(str(a.missed), "esl.missed" if a.missed else "esl.count"),
               Text(format_seconds(a.talk_seconds), "esl.value")]
        if wide:
            row.append(Text(str(a.outgoing), "esl.count"))
            row.append(safe_text(", ".join(a.queues), "esl.label", max_len=60))
        return row

