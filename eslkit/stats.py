"""Call-centre statistics: queues and agents, from the switch's events.  Pure.

    stats = CallCentreStats(service_level=20)
    for event in events:
        stats.feed(event)
    snap = stats.snapshot(now)          # StatsSnapshot: queues, agents, calls (frozen)

It sits beside the call tracker and is fed the same events: agent legs (who rings,
who talks, who is on hold) come from its own `CallTracker`; the queues come from the
queue modules' own events and, for ring groups, from the calls the tracker follows:

- mod_callcenter (``CUSTOM callcenter::info``): a caller joins a queue at
  ``member-queue-start``, is answered at ``bridge-agent-start``, talks until
  ``bridge-agent-end``, and leaves unanswered at ``member-queue-end`` with
  ``CC-Cause: Cancel`` (``CC-Cancel-Reason`` TIMEOUT or NO_AGENT_TIMEOUT: the queue gave
  up, *missed*; BREAK_OUT — the caller hung up — or EXIT_WITH_KEY: *abandoned*).
  ``agent-status-change`` and ``agent-state-change`` say what an agent is doing.
- mod_fifo (``CUSTOM fifo::info``): ``push`` joins, ``bridge-caller-start`` answers,
  ``bridge-caller-stop`` ends the talk, ``abort`` is *abandoned* and ``timeout`` (an
  orbit) *missed*.
- a ring group (a dialplan bridge to several phones, no queue module): a call to a
  number that is not the agent's own extension, ringing agent legs.  The caller waits
  from the first ring until an agent answers; unanswered when the caller's leg ends
  (*abandoned* if the caller hung up while phones rang, else *missed*) or, if that leg
  is not seen, `GRACE` seconds after the last phone stopped ringing.

docs/stats.md writes the definitions down (what a day is, how a transfer counts, the
service level).  Every time is the switch's (Event-Date-Timestamp), so a replay at any
speed gives the same figures.
"""

from __future__ import annotations

import math
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, replace
from datetime import datetime, time as day_time, timedelta
from typing import TYPE_CHECKING, Iterable, NamedTuple, Optional

from eslkit.calls import CallTracker, Known as TrackerKnown, LegView
from eslkit.calls import _num  # a positive number of a header, or None (mod_callcenter's times)
from eslkit.event import Event
from eslkit.subscription import Subscription

if TYPE_CHECKING:  # pragma: no cover
    from eslkit.switch_state import SwitchState

__all__ = [
    "CallCentreStats", "StatsSnapshot", "QueueFigures", "AgentFigures", "CallFigures", "WaitingCaller",
    "AGENT_STATES", "GRACE", "SERVICE_LEVEL_SECONDS", "WAIT_BUCKETS", "parse_day_start", "blind_spots",
]

SERVICE_LEVEL_SECONDS = 20.0
# A ring group's unanswered call is decided this long after its last phone stopped
# ringing, when the caller's own leg is not seen (a sequential group rings the next
# phone within a second).
GRACE = 5.0
# Histogram buckets for waits and talks (seconds): what /metrics exports.
WAIT_BUCKETS = (5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
TALK_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
AGENT_STATES = ("ringing", "talking", "on_hold", "after_call_work", "on_break", "logged_out", "available")

# mod_callcenter's CC-Cancel-Reason when the queue gave up on a caller (else the caller left).
_QUEUE_GAVE_UP = {"TIMEOUT", "NO_AGENT_TIMEOUT"}
# mod_callcenter statuses and states in our words.
_CC_STATUS = {"Logged Out": "logged_out", "On Break": "on_break"}
_CC_STATE = {"Receiving": "ringing", "Reserved": "ringing", "In a queue call": "talking", "Idle": "after_call_work"}
_CALLER_GAVE_UP = {"ORIGINATOR_CANCEL"}
_KEEP_DECIDED = 10_000  # calls remembered after their outcome, so late legs change nothing


def parse_day_start(text: str) -> day_time:
    """``HH:MM`` → a time of day; ValueError when it is not one."""
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit():
        raise ValueError(f"{text!r} is not HH:MM")
    return day_time(int(hours), int(minutes))


# --- what a snapshot holds (frozen: views and /metrics read it, nothing writes it) ----------


@dataclass(frozen=True)
class WaitingCaller:
    number: Optional[str]
    name: Optional[str]
    waited: float  # seconds so far


@dataclass(frozen=True)
class QueueFigures:
    name: str
    kind: str  # callcenter | fifo | group
    waiting: int
    longest_wait: Optional[float]
    offered: int
    answered: int
    abandoned: int
    missed: int
    answered_within: int  # answered within service_level_seconds
    service_level: Optional[float]  # 0..1 of the callers whose wait ended today; None before any
    service_level_seconds: float
    wait_avg: Optional[float]
    wait_p90: Optional[float]
    talk_avg: Optional[float]
    talk_p90: Optional[float]
    callers: tuple = ()  # WaitingCaller, longest first
    agents: tuple = ()  # the agents this queue rings (names)


@dataclass(frozen=True)
class AgentFigures:
    name: str  # mod_callcenter's agent name (1001@default), else the extension
    ext: Optional[str]
    state: str  # one of AGENT_STATES
    status: Optional[str]  # mod_callcenter's own status (Available, On Break, ...), None elsewhere
    answered: int
    missed: int
    outgoing: int
    talk_seconds: float  # calls ended today
    current_call: Optional[float]  # seconds of the longest call up now
    queues: tuple = ()


@dataclass(frozen=True)
class CallFigures:
    """Every call that rang an agent or joined a queue, whatever the queue."""

    waiting: int  # not answered yet
    answered: int
    missed: int  # ended unanswered (the caller gave up, or nobody answered)
    busy: int  # ended unanswered, an agent's phone said busy
    mean_ring: Optional[float]  # seconds the answering agent's phone rang


@dataclass(frozen=True)
class StatsSnapshot:
    time: Optional[float]  # the switch's clock
    day_start: Optional[float]  # epoch of today's start
    since: Optional[float]  # figures count from here: the day's start, or when eslkit began later
    queues: tuple
    agents: tuple
    calls: CallFigures

    def to_dict(self) -> dict:
        return asdict(self)

    def narrowed(self, names: Iterable[str]) -> "StatsSnapshot":
        """Only the queues called `names` and the agents who work in them (none: all)."""
        wanted = set(names)
        if not wanted:
            return self
        return replace(self, queues=tuple(q for q in self.queues if q.name in wanted),
                       agents=tuple(a for a in self.agents if wanted & set(a.queues)))

    def queue(self, name: str, kind: Optional[str] = None) -> Optional[QueueFigures]:
        return next((q for q in self.queues if q.name == name and kind in (None, q.kind)), None)

    def agent(self, name: str) -> Optional[AgentFigures]:
        return next((a for a in self.agents if a.name == name or a.ext == name), None)


# --- the bookkeeping -------------------------------------------------------------------------


class Known(NamedTuple):
    """What the engine knew when it asked the switch (`CallCentreStats.known`)."""
    tracker: TrackerKnown  # the call tracker's (`CallTracker.known`)
    fed: int  # events fed so far


class _Totals:
    """Counts since eslkit started (never reset: Prometheus counters read them)."""

    __slots__ = ("offered", "answered", "abandoned", "missed", "answered_within", "wait_buckets",
                 "wait_sum", "wait_count", "talk_buckets", "talk_sum", "talk_count")

    def __init__(self) -> None:
        self.offered = self.answered = self.abandoned = self.missed = self.answered_within = 0
        self.wait_buckets = [0] * len(WAIT_BUCKETS)
        self.talk_buckets = [0] * len(TALK_BUCKETS)
        self.wait_sum = self.talk_sum = 0.0
        self.wait_count = self.talk_count = 0


class _Queue:
    def __init__(self, name: str, kind: str, service_level: float):
        self.name = name
        self.kind = kind
        self.service_level = service_level
        # key -> (joined, number, name, the caller's call uuid)
        self.waiting: dict[str, tuple[float, Optional[str], Optional[str], Optional[str]]] = {}
        self.talking: dict[str, float] = {}  # key -> answered at
        # key -> "answered" / "gone", lately: the switch's list, asked before these events
        # and read after them, must not bring a caller back (see `listed`)
        self.past: OrderedDict[str, str] = OrderedDict()
        # key -> `CallCentreStats._fed` at its join or answer event: a caller who joined after
        # the switch's list was asked is not on it, and has not left (see `_unlisted`)
        self.told: dict[str, int] = {}
        self.agents: set[str] = set()
        self.totals = _Totals()
        self.new_day()

    def new_day(self) -> None:
        # A caller waiting at the day's start is one of its calls.
        self.offered = len(self.waiting)
        self.answered = self.abandoned = self.missed = self.answered_within = 0
        self.waits = _Durations()
        self.talks = _Durations()

    def join(self, key: str, when: float, number: Optional[str], name: Optional[str],
             call: Optional[str] = None, told: int = 0) -> bool:
        if key in self.waiting or key in self.talking:
            return False
        self.past.pop(key, None)  # back in the queue (mod_fifo: the same caller again)
        if told:
            self.told[key] = told
        self.waiting[key] = (when, number, name, call or key)
        self.offered += 1
        self.totals.offered += 1
        return True

    def answer(self, key: str, when: float, joined: Optional[float] = None, told: int = 0) -> Optional[float]:
        """The caller `key` is talking to an agent; returns the wait."""
        entry = self.waiting.pop(key, None)
        if entry is None and joined is None:
            return None
        if told:
            self.told[key] = told
        start = entry[0] if entry is not None else joined
        if entry is None:  # joined before we saw it (or on another day): count it now
            self.offered += 1
            self.totals.offered += 1
        wait = max(when - start, 0.0)
        self.answered += 1
        self.totals.answered += 1
        if wait <= self.service_level:
            self.answered_within += 1
            self.totals.answered_within += 1
        self.waits.add(wait)
        _observe(self.totals, "wait", wait, WAIT_BUCKETS)
        self.talking[key] = when
        self._went(key, "answered")
        return wait

    def leave(self, key: str, gave_up: bool) -> bool:
        """The caller left unanswered: abandoned (`gave_up`) or missed."""
        self._went(key, "gone")
        self.told.pop(key, None)
        if self.waiting.pop(key, None) is None:
            return False
        if gave_up:
            self.abandoned += 1
            self.totals.abandoned += 1
        else:
            self.missed += 1
            self.totals.missed += 1
        return True

    def hang_up(self, key: str, when: float, talk: Optional[float] = None) -> None:
        start = self.talking.pop(key, None)
        self._went(key, "gone")  # also when its answer came before eslkit looked
        self.told.pop(key, None)
        if start is None:
            return
        talk = max(when - start, 0.0) if talk is None else talk
        self.talks.add(talk)
        _observe(self.totals, "talk", talk, TALK_BUCKETS)

    def _went(self, key: str, where: str) -> None:
        self.past[key] = where
        self.past.move_to_end(key)
        while len(self.past) > _KEEP_DECIDED:
            self.past.popitem(last=False)

    def stale(self, key: str, state: Optional[str]) -> bool:
        """A row of the switch's list that the events since have overtaken: "Waiting" for a
        caller seen answered or gone, "Answered" for one seen hung up."""
        where = self.past.get(key)
        return where == "gone" or (where == "answered" and state in ("Waiting", "Trying"))

    def figures(self, now: Optional[float]) -> QueueFigures:
        waits = sorted(((now or j) - j, num or "", nam or "") for j, num, nam, _ in self.waiting.values())
        waits.reverse()
        decided = self.answered + self.abandoned + self.missed
        return QueueFigures(
            name=self.name, kind=self.kind, waiting=len(self.waiting),
            longest_wait=_round(waits[0][0]) if waits else None,
            offered=self.offered, answered=self.answered, abandoned=self.abandoned, missed=self.missed,
            answered_within=self.answered_within,
            service_level=round(self.answered_within / decided, 4) if decided else None,
            service_level_seconds=self.service_level,
            wait_avg=self.waits.mean(), wait_p90=self.waits.p90(),
            talk_avg=self.talks.mean(), talk_p90=self.talks.p90(),
            callers=tuple(WaitingCaller(num or None, nam or None, _round(w)) for w, num, nam in waits),
            agents=tuple(sorted(self.agents)),
        )


class _Agent:
    def __init__(self, name: str, ext: Optional[str] = None, cc: bool = False):
        self.name = name
        self.ext = ext
        self.cc = cc  # a mod_callcenter agent
        self.status: Optional[str] = None  # mod_callcenter's
        self.cc_state: Optional[str] = None
        self.wrap_up = 0.0  # mod_callcenter's wrap_up_time (agent list)
        self.told = 0  # `CallCentreStats._fed` at its last status or state event
        self.last_end: Optional[float] = None  # its last queue call ended
        self.legs: dict[str, LegView] = {}  # its calls up now
        self.queues: set[str] = set()
        self.new_day()

    def new_day(self) -> None:
        self.answered = self.missed = self.outgoing = 0
        self.talk = 0.0

    def absorb(self, other: "_Agent") -> None:
        """The extension's row becomes part of the mod_callcenter agent's."""
        self.legs.update(other.legs)
        self.answered += other.answered
        self.missed += other.missed
        self.outgoing += other.outgoing
        self.talk += other.talk
        self.queues |= other.queues

    def state(self, now: Optional[float]) -> str:
        legs = [leg for leg in self.legs.values() if leg.state != "ended"]
        if any(leg.state == "answered" and leg.on_hold for leg in legs):
            return "on_hold"
        if any(leg.state == "answered" for leg in legs):
            return "talking"
        if legs:
            return "ringing"
        if self.status in _CC_STATUS:
            return _CC_STATUS[self.status]
        mapped = _CC_STATE.get(self.cc_state or "")
        if mapped is not None:
            return mapped
        if self.wrap_up and self.last_end is not None and now is not None and now < self.last_end + self.wrap_up:
            return "after_call_work"
        return "available"

    def figures(self, now: Optional[float]) -> AgentFigures:
        current = [now - (leg.answered_at or leg.created or now) for leg in self.legs.values()
                   if leg.state == "answered" and now is not None]
        return AgentFigures(
            name=self.name, ext=self.ext, state=self.state(now), status=self.status,
            answered=self.answered, missed=self.missed, outgoing=self.outgoing,
            talk_seconds=round(self.talk, 1), current_call=_round(max(current)) if current else None,
            queues=tuple(sorted(self.queues)),
        )


class _Call:
    """A caller's call that rang an agent or joined a queue, until its outcome is known."""

    __slots__ = ("module", "queue", "legs", "busy", "idle_since", "gave_up")

    def __init__(self, module: bool, queue: Optional[_Queue] = None):
        self.module = module  # in a mod_callcenter or mod_fifo queue: decided by its events
        self.queue = queue  # the ring group it rings, if any
        self.legs: set[str] = set()  # agent legs ringing now
        self.busy = False
        self.idle_since: Optional[float] = None  # no phone rings since
        self.gave_up = False  # a phone stopped ringing because the caller hung up


class CallCentreStats:
    """Queues and agents, today.  `service_levels` maps a queue name to its own threshold
    (seconds); `day_start` is when a day begins (local time, or `tz`)."""

    def __init__(
        self,
        *,
        service_level: float = SERVICE_LEVEL_SECONDS,
        service_levels: Optional[dict[str, float]] = None,
        day_start: day_time = day_time(0, 0),
        tz=None,
        tracker: Optional[CallTracker] = None,
        grace: float = GRACE,
    ):
        self.service_level = service_level
        self.service_levels = dict(service_levels or {})
        self.day_start_time = day_start
        self.tz = tz
        self.grace = grace
        self.tracker = tracker if tracker is not None else CallTracker(history=0)  # no recent() here
        self.now: Optional[float] = None  # the latest switch time seen
        self.started: Optional[float] = None
        self._day_start: Optional[float] = None
        self._next_day: Optional[float] = None
        self.queues: dict[tuple[str, str], _Queue] = {}  # (name, kind): a number can be a fifo and a group
        self.agents: dict[str, _Agent] = {}
        self._claimed: dict[str, str] = {}  # extension -> the mod_callcenter agent it is
        self._leg_agent: dict[str, str] = {}  # agent leg uuid -> its mod_callcenter agent
        self._calls: dict[str, _Call] = {}  # caller uuid -> call not decided yet
        self._idle: set[str] = set()  # of `_calls`: ring groups' calls no phone rings for (idle_since set)
        self._decided: "OrderedDict[str, bool]" = OrderedDict()  # caller uuid -> answered
        self._group_talks: dict[str, _Queue] = {}  # answering leg -> its ring group
        self._counted: set[str] = set()  # agent legs already counted as answered
        self._rang_unseen: dict[str, bool] = {}  # agent legs first seen ringing in a resync -> a queue's
        self.calls_answered = self.calls_missed = self.calls_busy = 0
        self._ring_total, self._ring_count = 0.0, 0  # the answering phones' ring times today: their mean only
        self._fed = 0  # events fed: when an agent's state was last told, against when the switch was asked

    # --- feeding ---------------------------------------------------------------------------

    def feed(self, event: Event) -> None:
        self._fed += 1
        ts = event.timestamp
        if ts is not None:
            self._clock(ts)
        name = event.event_name
        if name == "CUSTOM":
            sub = event.subclass
            if sub == "callcenter::info":
                self._callcenter(event)
            elif sub == "fifo::info":
                self._fifo(event)
        elif name in ("CHANNEL_CREATE", "CHANNEL_ORIGINATE"):
            agent = event.get("variable_cc_agent")
            uuid = event.unique_id
            if agent and uuid and event.direction == "outbound":
                self._leg_agent[uuid] = agent
        if self._rang_unseen and event.unique_id in self._rang_unseen \
                and (event.get("variable_cc_queue") or event.get("variable_fifo_name")):
            self._rang_unseen[event.unique_id] = True  # a queue's offer (the tracker learnt the leg too late)
        if name == "CHANNEL_HANGUP_COMPLETE":
            call = self._calls.get(event.unique_id or "")
            if call is not None and not call.module:
                self._caller_gone(event.unique_id, call, event.hangup_cause)
        self.legs(self.tracker.feed(event))
        if name == "CHANNEL_HANGUP_COMPLETE":
            self._leg_agent.pop(event.unique_id or "", None)  # its agent is known by now, or never
        if self._idle and self.now is not None:
            self._decide_idle(self.now)

    def legs(self, views: Iterable[LegView]) -> None:
        """Agent-leg changes from the tracker (`feed` passes its own; a resync passes its)."""
        for leg in views:
            self._leg(leg)

    def tick(self, now: Optional[float]) -> None:
        """Time passes without events: ring groups decided after GRACE, a new day, lost legs."""
        if now is None:
            return
        self._clock(now)
        self.legs(self.tracker.expire(now))
        self._decide_idle(now)

    def _clock(self, now: float) -> None:
        if self.now is None or now > self.now:
            self.now = now
        if self.started is None:
            self.started = now
        if self._next_day is None or now >= self._next_day:
            first = self._next_day is None
            self._day_start, self._next_day = self._day_bounds(now)
            if not first:
                for q in self.queues.values():
                    q.new_day()
                for a in self.agents.values():
                    a.new_day()
                self.calls_answered = self.calls_missed = self.calls_busy = 0
                self._ring_total, self._ring_count = 0.0, 0

    def _day_bounds(self, now: float) -> tuple[float, float]:
        local = datetime.fromtimestamp(now, self.tz)
        start = local.replace(hour=self.day_start_time.hour, minute=self.day_start_time.minute,
                              second=0, microsecond=0)
        if start > local:
            start -= timedelta(days=1)
        end = start + timedelta(days=1)
        return start.timestamp(), end.timestamp()

    # --- mod_callcenter ------------------------------------------------------------------------

    def _callcenter(self, event: Event) -> None:
        action = event.get("CC-Action")
        when = event.timestamp or self.now or 0.0
        agent_name = event.get("CC-Agent")
        if action in ("agent-status-change", "agent-state-change", "agent-contact-change"):
            if not agent_name:
                return
            agent = self._cc_agent(agent_name)
            agent.told = self._fed
            if action == "agent-status-change":
                agent.status = event.get("CC-Agent-Status") or agent.status
            elif action == "agent-state-change":
                agent.cc_state = event.get("CC-Agent-State") or agent.cc_state
            else:
                self._claim(agent_name, contact_ext(event.get("CC-Agent-Contact")))
            return
        queue_name = event.get("CC-Queue")
        member = event.get("CC-Member-UUID")
        if not queue_name or not member:
            return
        queue = self._queue(queue_name, "callcenter")
        caller = event.get("CC-Member-Session-UUID")
        if action in ("member-queue-start", "member-queue-resume"):
            if queue.join(member, when, event.get("CC-Member-CID-Number"), event.get("CC-Member-CID-Name"), caller,
                          told=self._fed):
                self._open_call(caller, module=True)
        elif action == "agent-offering" and agent_name:
            queue.agents.add(agent_name)
            self._cc_agent(agent_name).queues.add(queue_name)
        elif action == "bridge-agent-start":
            joined = _num(event.get("CC-Member-Joined-Time"))
            if queue.answer(member, when, joined, told=self._fed) is not None:
                self._call_answered(caller)
            if agent_name:
                agent = self._cc_agent(agent_name)
                agent.queues.add(queue_name)
                queue.agents.add(agent_name)
                leg = event.get("CC-Agent-UUID")
                if leg:
                    self._leg_agent[leg] = agent_name
                    ext = self._ext_of_leg(leg)
                    if ext:
                        self._claim(agent_name, ext)
        elif action == "bridge-agent-end":
            queue.hang_up(member, when)
            if agent_name:
                self._cc_agent(agent_name).last_end = when
        elif action == "member-queue-end":
            if event.get("CC-Cause") == "Cancel":
                gave_up = event.get("CC-Cancel-Reason") not in _QUEUE_GAVE_UP
                if queue.leave(member, gave_up):
                    self._call_unanswered(caller)
            else:
                queue.hang_up(member, when)  # if its bridge-agent-end was not seen

    def _cc_agent(self, name: str) -> _Agent:
        agent = self.agents.get(name)
        if agent is None:
            agent = self.agents[name] = _Agent(name, cc=True)
            # mod_callcenter's usual naming: agent 1001@default is extension 1001 (its
            # contact, or the leg it is bridged to, says otherwise if need be).
            user, at, _ = name.partition("@")
            if at and user:
                self._claim(name, user)
        elif not agent.cc:
            agent.cc = True
        return agent

    def _claim(self, name: str, ext: Optional[str]) -> None:
        """The mod_callcenter agent `name` is the phone `ext`: one row for both."""
        if not ext or ext == name:
            return
        agent = self._cc_agent(name)
        if agent.ext == ext and self._claimed.get(ext) == name:
            return
        agent.ext = ext
        self._claimed[ext] = name
        other = self.agents.pop(ext, None)
        if other is not None and not other.cc:
            agent.absorb(other)

    def _ext_of_leg(self, leg_uuid: str) -> Optional[str]:
        for agent in self.agents.values():
            leg = agent.legs.get(leg_uuid)
            if leg is not None:
                return leg.ext
        return None

    # --- mod_fifo --------------------------------------------------------------------------------

    def _fifo(self, event: Event) -> None:
        action = event.get("FIFO-Action")
        name = event.get("FIFO-Name")
        caller = event.unique_id
        if not name or not caller:
            return
        when = event.timestamp or self.now or 0.0
        if action == "push":
            queue = self._queue(name, "fifo")
            if queue.join(caller, when, event.caller_number, event.caller_name, told=self._fed):
                self._open_call(caller, module=True)
            return
        queue = self.queues.get((name, "fifo"))
        if queue is None:
            return  # e.g. mod_fifo's own manual_calls: no caller ever joins it
        if action == "bridge-caller-start":
            if queue.answer(caller, when, told=self._fed) is not None:
                self._call_answered(caller)
        elif action == "bridge-caller-stop":
            talk = _num(event.get("FIFO-Caller-Talk-Time-us"))
            queue.hang_up(caller, when, None if talk is None else talk / 1_000_000)
        elif action in ("abort", "timeout"):
            if queue.leave(caller, gave_up=action == "abort"):
                self._call_unanswered(caller)

    # --- agent legs (the tracker's) and ring groups -------------------------------------------

    def _leg(self, leg: LegView) -> None:
        if not leg.ext:
            return
        agent = self._agent_for(leg)
        before = agent.legs.get(leg.leg_uuid)
        if leg.state == "ended":
            agent.legs.pop(leg.leg_uuid, None)
        else:
            agent.legs[leg.leg_uuid] = leg
        if before is None and leg.direction == "outgoing":
            agent.outgoing += 1
        if leg.queue:
            agent.queues.add(leg.queue)
            for kind in ("callcenter", "fifo"):
                if (leg.queue, kind) in self.queues:
                    self.queues[(leg.queue, kind)].agents.add(agent.name)
        answered = leg.answered_at is not None and (leg.state == "answered" or leg.outcome == "answered")
        if answered and leg.direction == "incoming" and leg.leg_uuid not in self._counted:
            self._counted.add(leg.leg_uuid)
            if self._day_start is None or leg.answered_at >= self._day_start:
                agent.answered += 1
        if leg.state == "ended":
            self._counted.discard(leg.leg_uuid)
            if leg.outcome == "missed":
                agent.missed += 1
            if leg.talk_seconds is not None and leg.outcome == "answered":
                agent.talk += leg.talk_seconds
                agent.last_end = leg.ended_at
            group = self._group_talks.pop(leg.leg_uuid, None)
            if group is not None and leg.ended_at is not None:
                group.hang_up(leg.call_uuid, leg.ended_at, leg.talk_seconds)
        if leg.direction == "incoming" and not leg.transferred_from:
            self._call_leg(leg)

    def _agent_for(self, leg: LegView) -> _Agent:
        cc_name = self._leg_agent.get(leg.leg_uuid)
        if cc_name:
            self._claim(cc_name, leg.ext)
        name = self._claimed.get(leg.ext, leg.ext)
        agent = self.agents.get(name)
        if agent is None:
            agent = self.agents[name] = _Agent(name, ext=leg.ext)
        return agent

    def _call_leg(self, leg: LegView) -> None:
        """What an agent leg tells about its caller's call (and, for a ring group, the queue)."""
        if leg.leg_uuid in self._rang_unseen:
            # Ringing before eslkit looked: a queue module counts its caller; only an answer
            # with no queue to count it is counted, as a call first seen answered is.
            queued = self._rang_unseen[leg.leg_uuid] or bool(leg.queue)
            if leg.state == "ended":
                del self._rang_unseen[leg.leg_uuid]
            if leg.state != "answered" or queued:
                return
        key = leg.call_uuid
        if key in self._decided:
            return
        call = self._calls.get(key)
        if call is None:
            if leg.state != "ringing":
                # Already answered when eslkit first saw it (a call up at start): answered,
                # in all calls and for its agent; not in a queue, which eslkit did not see offer it.
                if leg.answered_at is not None or leg.state == "answered":
                    if self._day_start is None or (leg.answered_at or self._day_start) >= self._day_start:
                        self.calls_answered += 1
                        if leg.ring_seconds is not None and leg.answered_at is not None:
                            self._rang(leg.ring_seconds)
                    self._decide(key, True)
                return
            if leg.queue:
                return  # in a queue eslkit did not see it join: its agent's count only
            group = None
            if leg.dialed and leg.dialed != leg.ext:
                group = self._queue(leg.dialed, "group")
                group.join(key, leg.created or self.now or 0.0, leg.caller_number, leg.caller_name)
            call = self._open_call(key, module=False, group=group)
        if call.queue is not None:
            agent = self._agent_for(leg)
            call.queue.agents.add(agent.name)
            agent.queues.add(call.queue.name)
        if leg.state == "ended":
            call.legs.discard(leg.leg_uuid)
            call.busy = call.busy or leg.outcome == "busy"
            call.gave_up = call.gave_up or (leg.outcome == "missed" and leg.hangup_cause in _CALLER_GAVE_UP)
            if not call.legs:
                call.idle_since = leg.ended_at or self.now
                if not call.module and self._calls.get(key or "") is call:  # a call still open
                    self._idle.add(key)
            return
        call.legs.add(leg.leg_uuid)
        call.idle_since = None
        self._idle.discard(key)
        if leg.state == "answered":
            if leg.ring_seconds is not None:
                self._rang(leg.ring_seconds)
            if call.queue is not None and leg.answered_at is not None:
                call.queue.answer(key, leg.answered_at)
                self._group_talks[leg.leg_uuid] = call.queue
            self._call_answered(key)

    def _open_call(self, key: Optional[str], module: bool, group: Optional[_Queue] = None) -> _Call:
        call = _Call(module, group)
        if key and key not in self._decided:
            call = self._calls.setdefault(key, call)
        return call

    def _call_answered(self, key: Optional[str]) -> None:
        call = self._forget_call(key)
        if call is None:
            return
        self.calls_answered += 1
        self._decide(key, True)

    def _call_unanswered(self, key: Optional[str]) -> None:
        call = self._forget_call(key)
        if call is None:
            return
        if call.busy:
            self.calls_busy += 1
        else:
            self.calls_missed += 1
        self._decide(key, False)

    def _caller_gone(self, key: str, call: _Call, cause: Optional[str]) -> None:
        """A caller (not in a queue module) hung up, or stopped ringing anyone, unanswered."""
        if call.queue is not None:
            call.queue.leave(key, call.gave_up or bool(call.legs) or cause in _CALLER_GAVE_UP)
        self._call_unanswered(key)

    def _forget_call(self, key: Optional[str]) -> Optional[_Call]:
        self._idle.discard(key or "")
        return self._calls.pop(key or "", None)

    def _decide_idle(self, now: float) -> None:
        # Only the idle calls, not every open one: this runs on every event.
        for key in list(self._idle):
            call = self._calls[key]
            if now - call.idle_since >= self.grace:
                self._caller_gone(key, call, None)

    def _decide(self, key: str, answered: bool) -> None:
        self._decided[key] = answered
        while len(self._decided) > _KEEP_DECIDED:
            self._decided.popitem(last=False)

    def _queue(self, name: str, kind: str) -> _Queue:
        queue = self.queues.get((name, kind))
        if queue is None:
            queue = self.queues[(name, kind)] = _Queue(name, kind, self.service_levels.get(name, self.service_level))
        return queue

    # --- what the switch says is up (on connect, after a reconnect) ----------------------------

    def known(self) -> Known:
        """What is known now: pass it to `resync` with the answers asked after this."""
        return Known(self.tracker.known(), self._fed)

    def resync(self, state: "SwitchState", now: float, known: Optional[Known] = None) -> None:
        """Take what the switch lists now (`eslkit.switch_state.ask_switch`): the calls up, the
        callers waiting in each queue, every mod_callcenter agent's status.  A caller eslkit
        had waiting that the switch no longer lists left while eslkit could not see: what
        became of it is unknown, so it is taken out of today's offered calls.  `known`:
        what the engine knew when the question was asked (`known`)."""
        self._clock(now)
        asked = self._fed if known is None else known.fed
        if state.channels is not None:
            before = self.tracker.known().channels
            changes = self.tracker.resync(state.channels, now, known=None if known is None else known.tracker)
            # A phone already ringing when eslkit looked: what rings it (a queue's offer, a
            # ring group) is not known yet; its later events say (see _call_leg).
            for leg in changes:
                if leg.state == "ringing" and leg.leg_uuid not in before:
                    self._rang_unseen[leg.leg_uuid] = False
            self.legs(changes)
        for row in state.agents or ():
            name = row.get("name")
            if not name:
                continue
            agent = self._cc_agent(name)
            if agent.told > asked:  # its events since the question are newer than this row
                continue
            agent.status = row.get("status") or agent.status
            agent.cc_state = row.get("state") or agent.cc_state
            agent.wrap_up = _num(row.get("wrap_up_time")) or 0.0
            ended = _num(row.get("last_bridge_end"))
            if ended and (agent.last_end is None or ended > agent.last_end):
                agent.last_end = ended
            self._claim(name, contact_ext(row.get("contact")))
        for row in state.tiers or ():
            if row.get("queue") and row.get("agent"):
                self._queue(row["queue"], "callcenter").agents.add(row["agent"])
                self._cc_agent(row["agent"]).queues.add(row["queue"])
        if state.members is not None:
            listed: set = set()
            for row in state.members:
                queue, key = row.get("queue"), row.get("uuid")
                if not queue or not key:
                    continue
                listed.add(key)
                self._listed(self._queue(queue, "callcenter"), key, row.get("state"), _num(row.get("joined_epoch")),
                             _num(row.get("bridge_epoch")), row.get("cid_number"), row.get("cid_name"),
                             row.get("session_uuid"), now)
            self._unlisted("callcenter", listed, asked)
        if state.fifos is not None:
            listed = set()
            for fifo in state.fifos:
                queue = self._queue(fifo["name"], "fifo") if fifo.get("callers") else None
                for caller in fifo.get("callers", ()):
                    listed.add(caller["uuid"])
                    self._listed(queue, caller["uuid"], "Waiting", caller.get("since"), None, caller.get("number"),
                                 caller.get("name"), caller["uuid"], now)
            self._unlisted("fifo", listed, asked)

    def _listed(self, queue: _Queue, key: str, state: Optional[str], joined: Optional[float],
                bridged: Optional[float], number: Optional[str], name: Optional[str], call: Optional[str],
                now: float) -> None:
        if queue.stale(key, state):
            return
        if state in ("Waiting", "Trying"):
            if queue.join(key, joined or now, number, name, call):
                self._open_call(call, module=True)
        elif state == "Answered":
            if key in queue.waiting:  # answered while eslkit could not see
                caller = queue.waiting[key][3]
                if queue.answer(key, bridged or now) is not None:
                    self._call_answered(caller)
            elif key not in queue.talking:
                queue.talking[key] = bridged or now  # answered before eslkit looked: its talk only

    def _unlisted(self, kind: str, listed: set, asked: int) -> None:
        """Callers the switch's list (asked when `asked` events were fed) leaves out left
        while eslkit could not see, unless their events since then are newer than the list."""
        for queue in self.queues.values():
            if queue.kind != kind:
                continue
            told = queue.told
            for key in [k for k in queue.waiting if k not in listed and told.get(k, 0) <= asked]:
                call = queue.waiting.pop(key)[3]
                told.pop(key, None)
                queue.offered = max(queue.offered - 1, 0)
                self._forget_call(call)
            for key in [k for k in queue.talking if k not in listed and told.get(k, 0) <= asked]:
                del queue.talking[key]
                told.pop(key, None)

    # --- reading ------------------------------------------------------------------------------

    def snapshot(self, now: Optional[float] = None) -> StatsSnapshot:
        now = now if now is not None else self.now
        since = None
        if self._day_start is not None and self.started is not None:
            since = max(self._day_start, self.started)
        answered, missed, busy = self.calls_answered, self.calls_missed, self.calls_busy
        return StatsSnapshot(
            time=now, day_start=self._day_start, since=since,
            queues=tuple(q.figures(now) for _, q in sorted(self.queues.items())),
            agents=tuple(a.figures(now) for _, a in sorted(self.agents.items(), key=_agent_order)),
            calls=CallFigures(waiting=len(self._calls), answered=answered, missed=missed, busy=busy,
                              mean_ring=_round(self.mean_ring_time)),
        )

    @property
    def mean_ring_time(self) -> Optional[float]:
        """Seconds the answering agents' phones rang, on average (unrounded)."""
        return self._ring_total / self._ring_count if self._ring_count else None

    def _rang(self, seconds: float) -> None:
        self._ring_total += seconds
        self._ring_count += 1

    def totals(self) -> dict[tuple[str, str], _Totals]:
        """Per (queue, kind), the counts since eslkit started (for Prometheus counters)."""
        return {key: q.totals for key, q in self.queues.items()}


# The events the figures are made of (the call tracker's, and the queue modules').
_NEEDED = ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE")
_MODULES = {"callcenter::info": "mod_callcenter queues", "fifo::info": "mod_fifo queues"}


def blind_spots(names: Iterable[str], header_filters: Iterable[tuple[str, str]] = (),
                matches: Iterable[str] = ()) -> list[str]:
    """What a subscription (``event`` names, as `watch --filter` takes them) and filters hide
    from the figures, in a sentence each; empty when nothing is hidden.  Whether a name is
    subscribed is `eslkit.subscription`'s answer, as the switch would give it."""
    wanted = Subscription(names).names
    notes = []
    missing = [n for n in _NEEDED if not wanted.wants(n, None)]
    if missing:
        notes.append(f"agents' calls need {', '.join(missing)}: not subscribed, so calls may be missing")
    for subclass, what in _MODULES.items():
        if not wanted.wants("CUSTOM", subclass):
            notes.append(f"{what} need CUSTOM {subclass}: not subscribed, so those queues are not counted")
    for header, value in header_filters:
        notes.append(f"--header {header}={value}: only the channels it lets through are counted; callers' "
                     "own legs and queue events usually are not (abandons, queue figures)")
    for match in matches:
        notes.append(f"--match {match}: only the events it matches are counted")
    return notes


def contact_ext(contact: Optional[str]) -> Optional[str]:
    """The extension in a mod_callcenter contact: ``[leg_timeout=20]loopback/1001/public``,
    ``user/1001@default``, ``{x=y}sofia/internal/1001@host`` → ``1001``."""
    if not contact:
        return None
    text = contact
    while text[:1] in "[{<" and text[:1]:
        close = {"[": "]", "{": "}", "<": ">"}[text[0]]
        end = text.find(close)
        if end < 0:
            return None
        text = text[end + 1:]
    parts = text.split("/")
    if len(parts) < 2:
        return None
    # sofia/<profile>/<user>@host; user/<user>@domain, loopback/<user>/<context>
    target = parts[2] if parts[0] == "sofia" and len(parts) > 2 else parts[1]
    return target.split("@", 1)[0] or None


def _agent_order(item: tuple[str, _Agent]) -> tuple:
    name, agent = item
    return (agent.ext or name, name)


def _observe(totals: _Totals, what: str, value: float, buckets: tuple) -> None:
    counts = getattr(totals, what + "_buckets")
    for i, bound in enumerate(buckets):
        if value <= bound:
            counts[i] += 1
    setattr(totals, what + "_sum", getattr(totals, what + "_sum") + value)
    setattr(totals, what + "_count", getattr(totals, what + "_count") + 1)


class _Durations:
    """A day's waits or talks, for their mean and 90th percentile to 0.1 s: a count per tenth
    of a second, not every value (a busy queue's day is 100,000 calls; its tenths a few thousand)."""

    def __init__(self):
        self.count = 0
        self.total = 0.0
        self._tenths: Counter[float] = Counter()  # round(value, 1) -> how many

    def add(self, seconds: float) -> None:
        self.count += 1
        self.total += seconds
        self._tenths[round(seconds, 1)] += 1

    def mean(self) -> Optional[float]:
        return round(self.total / self.count, 1) if self.count else None

    def p90(self) -> Optional[float]:
        """Nearest rank: the smallest value with 90% of them at or below it (rounding keeps
        the order, so this is the rounded 90th percentile of the values themselves)."""
        rank = max(math.ceil(0.9 * self.count), 1)
        for value in sorted(self._tenths):
            rank -= self._tenths[value]
            if rank <= 0:
                return value
        return None


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(max(value, 0.0), 1)


