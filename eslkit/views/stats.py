"""``watch --stats``: call-related statistics from the event stream.

`CallStats` is pure bookkeeping (events in, numbers out); `stats_panel`
renders a snapshot of it; `CallStats.to_dict()` is the final object printed
with ``--format json``.

- channels are alive from CHANNEL_CREATE to CHANNEL_DESTROY (by ``Unique-ID``);
- a call is the set of channels sharing the ``Channel-Call-UUID`` they were
  created with (an agent leg's can change later, so the first one counts);
- a call's outcome is decided on its inbound leg (``Call-Direction: inbound``):
  answered on its CHANNEL_ANSWER, or at its hangup when that carries a
  ``Caller-Channel-Answered-Time`` (a call already up when watch started);
  when it hangs up unanswered, busy if it or any leg of the call ended with
  USER_BUSY, otherwise missed;
- ring time is the inbound leg's ``Caller-Channel-Answered-Time`` minus its
  ``Caller-Channel-Created-Time`` (the switch's clock, so replays at any speed
  give the same figure).
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Optional

from rich.console import Group
from rich.table import Table
from rich.text import Text

from eslkit.event import Event
from eslkit.safe_text import safe_text

_HANGUPS = ("CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE")


class CallStats:
    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.events = 0
        self.channels: dict[str, str] = {}  # Unique-ID -> call id
        self.call_legs: dict[str, int] = {}  # call id -> live channels
        self.answered = 0
        self.missed = 0
        self.busy = 0
        self._answered: set[str] = set()  # inbound legs answered
        self._ended: set[str] = set()  # inbound legs already counted at hangup
        self._busy_calls: set[str] = set()
        self.ring_times: list[float] = []
        self._gone: deque = deque(maxlen=1000)  # destroyed lately: a late `show channels` row is stale

    def add(self, event: Event) -> None:
        name = event.get("Event-Name") or ""
        if name == "CUSTOM":
            name = event.get("Event-Subclass") or name
        self.counts[name] += 1
        self.events += 1
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
        elif name == "CHANNEL_DESTROY":
            self._gone.append(uuid)
            call = self.channels.pop(uuid, None)
            if call is not None:
                left = self.call_legs.get(call, 1) - 1
                if left > 0:
                    self.call_legs[call] = left
                else:
                    self.call_legs.pop(call, None)
                    self._busy_calls.discard(call)
        elif name == "CHANNEL_ANSWER":
            if event.get("Call-Direction") == "inbound" and uuid not in self._answered:
                self._answer(uuid, event)
        elif name in _HANGUPS:
            cause = event.get("Hangup-Cause")
            call = self.channels.get(uuid) or event.get("Channel-Call-UUID") or uuid
            if cause == "USER_BUSY":
                self._busy_calls.add(call)
            if event.get("Call-Direction") == "inbound" and uuid not in self._ended:
                self._ended.add(uuid)
                if uuid not in self._answered and _ring_time(event) is not None:
                    self._answer(uuid, event)  # answered before watch started: the hangup says when
                if uuid in self._answered:
                    self._answered.discard(uuid)
                elif cause == "USER_BUSY" or call in self._busy_calls:
                    self.busy += 1
                else:
                    self.missed += 1

    def channels_up(self, rows: list) -> None:
        """The rows of `show channels as json` when watch connects: channels already up are
        active (a call: the channels sharing its caller's uuid); their outcome comes at hangup."""
        for row in rows:
            uuid = row.get("uuid")
            if isinstance(uuid, str) and uuid not in self.channels and uuid not in self._gone:
                call = row.get("call_uuid") or uuid
                self.channels[uuid] = call
                self.call_legs[call] = self.call_legs.get(call, 0) + 1

    def _answer(self, uuid: str, event: Event) -> None:
        self._answered.add(uuid)
        self.answered += 1
        ring = _ring_time(event)
        if ring is not None:
            self.ring_times.append(ring)

    @property
    def active_channels(self) -> int:
        return len(self.channels)

    @property
    def active_calls(self) -> int:
        return len(self.call_legs)

    @property
    def mean_ring_time(self) -> Optional[float]:
        return sum(self.ring_times) / len(self.ring_times) if self.ring_times else None

    def to_dict(self, elapsed: Optional[float] = None, rate: Optional[float] = None) -> dict:
        mean = self.mean_ring_time
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
        }


def _ring_time(event: Event) -> Optional[float]:
    try:
        created = int(event.get("Caller-Channel-Created-Time") or 0)
        answered = int(event.get("Caller-Channel-Answered-Time") or 0)
    except ValueError:
        return None
    if created > 0 and answered >= created:
        return (answered - created) / 1_000_000
    return None


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
    return Group(calls, table)
