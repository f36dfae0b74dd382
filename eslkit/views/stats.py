"""``watch --stats``: event counts, and call statistics from `eslkit.stats`.

`CallStats` counts events per name and the channels alive (CHANNEL_CREATE to
CHANNEL_HANGUP_COMPLETE or CHANNEL_DESTROY, by ``Unique-ID``; a call is the
channels sharing the ``Channel-Call-UUID`` they were created with), and feeds every event to the
call-centre statistics engine (`eslkit.stats.CallCentreStats`), the one the
wallboard and /metrics use: calls answered, missed and busy and the mean ring
time are its *all calls* figures, and it knows the queues and agents
(docs/stats.md).  `stats_panel` renders a snapshot of it; `CallStats.to_dict()`
is the final object printed with ``--format json``.  `notes` say what a filter
hides from the figures.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Optional, Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text

from eslkit.event import Event
from eslkit.switch_state import SwitchState
from eslkit.stats import CallCentreStats, Known
from eslkit.safe_text import safe_text


# A channel is up until its CHANNEL_HANGUP_COMPLETE or CHANNEL_DESTROY, whichever comes:
# a popup-style subscription (and the filtered capture) has no CHANNEL_DESTROY.
_GONE = {"CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"}


class CallStats:
    def __init__(self, notes: Sequence[str] = ()) -> None:
        self.counts: Counter = Counter()
        self.events = 0
        self.channels: dict[str, str] = {}  # Unique-ID -> call id
        self.call_legs: dict[str, int] = {}  # call id -> live channels
        self.engine = CallCentreStats()
        self.notes = tuple(notes)  # what the subscription or a filter hides from the figures
        self._gone: deque = deque(maxlen=1000)  # destroyed lately: a late `show channels` row is stale

    def add(self, event: Event) -> None:
        name = event.get("Event-Name") or ""
        if name == "CUSTOM":
            name = event.get("Event-Subclass") or name
        self.counts[name] += 1
        self.events += 1
        self.engine.feed(event)
        if not name.startswith("CHANNEL_"):
            return
        uuid = event.get("Unique-ID")
        if not uuid:
            return
        if name == "CHANNEL_CREATE":
            if uuid not in self.channels:
                call = event.get("Channel-Call-UUID") or uuid
                self.channels[uuid] = call
                self.call_legs[call] = self.call_legs.get(call, 0) + 1
        elif name in _GONE:
            call = self.channels.pop(uuid, None)
            if call is not None or uuid not in self._gone:  # once a channel: both events may come
                self._gone.append(uuid)
            if call is not None:
                left = self.call_legs.get(call, 1) - 1
                if left > 0:
                    self.call_legs[call] = left
                else:
                    self.call_legs.pop(call, None)

    def channels_up(self, rows: list) -> None:
        """The rows of `show channels as json` when watch connects: channels already up are
        active (a call: the channels sharing its caller's uuid); their outcome comes at hangup."""
        for row in rows:
            uuid = row.get("uuid")
            if isinstance(uuid, str) and uuid not in self.channels and uuid not in self._gone:
                call = row.get("call_uuid") or uuid
                self.channels[uuid] = call
                self.call_legs[call] = self.call_legs.get(call, 0) + 1

    def known(self) -> Known:
        return self.engine.known()

    def resync(self, state: SwitchState, now: float, known: Optional[Known] = None) -> None:
        """What the switch says is up when watch connects (`eslkit.app.runtime.resync_stats`)."""
        if state.channels is not None:
            self.channels_up(state.channels)
        self.engine.resync(state, now, known=known)

    @property
    def answered(self) -> int:
        return self.engine.calls_answered

    @property
    def missed(self) -> int:
        return self.engine.calls_missed

    @property
    def busy(self) -> int:
        return self.engine.calls_busy

    @property
    def active_channels(self) -> int:
        return len(self.channels)

    @property
    def active_calls(self) -> int:
        return len(self.call_legs)

    @property
    def mean_ring_time(self) -> Optional[float]:
        return self.engine.mean_ring_time

    def to_dict(self, elapsed: Optional[float] = None, rate: Optional[float] = None) -> dict:
        """The final object: nothing more will come, so a ring group's call whose phones all
        stopped ringing is decided now rather than GRACE seconds later."""
        if self.engine.now is not None:
            self.engine.tick(self.engine.now + self.engine.grace)
        mean = self.mean_ring_time
        snap = self.engine.snapshot().to_dict()
        return {
            "events": self.events,
            "events_per_second": None if rate is None else round(rate, 3),
            "elapsed": None if elapsed is None else round(elapsed, 3),
            "counts": dict(self.counts.most_common()),
            "active_channels": self.active_channels,
            "active_calls": self.active_calls,
            "calls_answered": self.answered,
            "calls_missed": self.missed,
            "calls_busy": self.busy,
            "mean_ring_time": None if mean is None else round(mean, 3),
            "queues": snap["queues"],
            "agents": snap["agents"],
            "notes": list(self.notes),
        }


def stats_panel(stats: CallStats, rate: float, max_names: int = 8) -> Group:
    """The live panel: calls on one line, the busiest event names below."""
    mean = stats.mean_ring_time
    calls = Text.assemble(
        ("calls ", "esl.label"),
        ("active ", "esl.label"), (str(stats.active_calls), "esl.count"),
        ("  channels ", "esl.label"), (str(stats.active_channels), "esl.count"),
        ("  answered ", "esl.label"), (str(stats.answered), "esl.answered"),
        ("  missed ", "esl.label"), (str(stats.missed), "esl.missed"),
        ("  busy ", "esl.label"), (str(stats.busy), "esl.busy"),
        ("  mean ring ", "esl.label"), ("-" if mean is None else f"{mean:.1f}s", "esl.count"),
        ("  ", ""), (f"{rate:.1f}", "esl.count"), (" events/s", "esl.label"),
    )
    table = Table.grid(padding=(0, 2), expand=False)
    top = stats.counts.most_common(max_names)
    per_row = 4
    for _ in range(per_row):
        table.add_column(no_wrap=True, overflow="ellipsis")
    cells = [
        Text.assemble(safe_text(name, "esl.event", max_len=28), " ", (str(n), "esl.count"))
        for name, n in top
    ]
    for i in range(0, len(cells), per_row):
        row = cells[i: i + per_row]
        table.add_row(*(row + [Text("")] * (per_row - len(row))))
    parts = [calls]
    snap = stats.engine.snapshot()
    for q in snap.queues[:max_names]:
        parts.append(Text.assemble(
            ("queue ", "esl.label"), safe_text(q.name, "esl.value", max_len=30), (f" ({q.kind})", "esl.label"),
            ("  waiting ", "esl.label"), (str(q.waiting), "esl.count"),
            ("  offered ", "esl.label"), (str(q.offered), "esl.count"),
            ("  answered ", "esl.label"), (str(q.answered), "esl.answered"),
            ("  abandoned ", "esl.label"), (str(q.abandoned), "esl.missed"),
            ("  missed ", "esl.label"), (str(q.missed), "esl.missed"),
            ("  service ", "esl.label"),
            ("-" if q.service_level is None else f"{q.service_level * 100:.0f}%", "esl.count")))
    if snap.agents:
        line = Text("agents ", "esl.label")
        for a in snap.agents[:max_names * 2]:
            line.append_text(safe_text(a.name, "esl.value", max_len=24))
            line.append(f" {a.state.replace('_', ' ')} {a.answered}/{a.missed}  ", "esl.label")
        parts.append(line)
    parts.append(table)
    for note in stats.notes:
        parts.append(safe_text(note, "esl.warning"))
    return Group(*parts)
