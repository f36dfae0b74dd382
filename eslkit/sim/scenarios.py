"""Scenarios: the simulated calls, and the calls the switch has up right now.

A scenario is a data file in ``eslkit/sim/scenarios/`` (made by
`eslkit.sim.derive` from real transcripts) or any file of the same shape.  The
built-in ones (`SCENARIOS`) are one per call-centre flow; ``queue`` is the
default.  ``load`` is the call-centre load generator: calls of one scenario, or
a mix (``template=queue+fifo+hold``, in turn), from different callers over a pool
of agents.  Parameters after a colon, e.g.
``load:calls=1000,cps=20,concurrent=100,agents=50`` (``calls=0`` runs until
stopped), or a JSON file ``{"kind": "load", "calls": ..., ...}``.  ``morning``
is a built-in mix: a morning in a call centre, one call after another.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import os
import time
from collections import deque
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

from eslkit.errors import InputFileError
from eslkit.sim.events import Burst, CallEvent, CallValues, SimEvent, Template, date_text

if TYPE_CHECKING:  # pragma: no cover
    from eslkit.sim.server import SimServer

DATA = Path(__file__).parent / "scenarios"
# The built-in calls, one per call-centre flow: derived from a real capture, or (*) built
# from one with the facts the captures' READMEs give (eslkit.sim.construct).
SCENARIOS = {
    "queue": "ring-all queue 2000: 1001 answers, 1002 LOSE_RACE",
    "noanswer": "6208 calls 1002, gives up after 6 s",
    "busy": "6208 calls 1002, which is busy (*)",
    "fifo": "mod_fifo: 1002 answers, caller ID flips",
    "callcenter": "mod_callcenter: 1001 answers, 1002 LOSE_RACE",
    "callcenter-loopback": "mod_callcenter, loopback contacts, bow-out",
    "two-callers": "mod_callcenter: 6208 to 1001, 6209 to 1002",
    "blind-transfer": "1001 answers, transfers the caller to 1002",
    "hold": "1001 answers, holds the caller, resumes",
    "click-to-dial": "1001's phone rings, then 6208 is dialled",
    "call-waiting": "6209 calls 1001 while it talks to 6208 (*)",
    "busy-queue": "ring-all queue: 1002 busy, 1001 answers (*)",
    "abandon": "ring-all queue: caller gives up (*)",
    "contact-alias": "queue call, 1002 registered as 97825064 (*)",
}
CALL_SCENARIOS = tuple(SCENARIOS)
# Built-in mixes of the load generator.  A morning: one call after another (at most one
# every 12 s), every outcome within the first minute.
MIXES = {
    "morning": "calls=0,cps=0.08333,concurrent=1,agents=2,first_caller=6208,template=" + "+".join((
        "queue", "busy-queue", "abandon", "fifo", "hold", "click-to-dial", "blind-transfer", "callcenter",
        "call-waiting", "callcenter-loopback", "two-callers", "noanswer", "busy", "contact-alias")),
}
BURST = 16  # events of a call made and sent together at full speed; the network runs in between


@dataclass
class Scenario:
    """One recorded call as templates, played with fresh uuids and times."""

    name: str
    description: str
    templates: list
    uuids: int
    start_fraction_us: int = 0

    @property
    def duration(self) -> float:
        return self.templates[-1].at if self.templates else 0.0

    @cached_property
    def bursts(self) -> list:
        """The templates in bursts of BURST, as played at full speed (see `Burst`)."""
        return [Burst(self.templates[i:i + BURST]) for i in range(0, len(self.templates), BURST)]

    @classmethod
    def from_data(cls, data: dict, where: str) -> "Scenario":
        try:
            templates = [Template(ev["at"], ev["headers"], ev.get("body")) for ev in data["events"]]
            return cls(data.get("name", where), data.get("description", ""), templates, int(data["uuids"]),
                       int(data.get("start_fraction_us", 0)))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputFileError(f"{where} is not a scenario file ({exc.__class__.__name__}: {exc}).") from None


@dataclass
class LoadSpec:
    """The load generator: queue calls at ``cps`` per second, at most ``concurrent`` at once."""

    calls: int = 100
    cps: float = 5.0
    concurrent: int = 50
    agents: int = 20
    first_agent: int = 1001
    first_caller: int = 6200
    template: str = "queue"  # a scenario, or a mix played in turn: queue+fifo+hold
    name: str = "load"
    description: str = field(default="call-centre load generator")

    @property
    def templates(self) -> list[str]:
        return self.template.split("+")

    @classmethod
    def parse(cls, text: str) -> "LoadSpec":
        spec = cls()
        for item in filter(None, text.split(",")):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in ("calls", "cps", "concurrent", "agents", "first_agent", "first_caller",
                                       "template"):
                raise InputFileError(
                    f"Unknown load generator setting {item!r}.",
                    "Use e.g. load:calls=1000,cps=20,concurrent=100,agents=50 "
                    "(settings: calls, cps, concurrent, agents, first_agent, first_caller, template).",
                )
            try:
                setattr(spec, key, value.strip() if key == "template" else (float(value) if key == "cps" else int(value)))
            except ValueError:
                raise InputFileError(f"The load generator setting {key} needs a number, not {value!r}.",
                                     "Use e.g. load:calls=1000,cps=20") from None
        if spec.cps <= 0 or spec.concurrent < 1 or spec.agents < 2 or spec.calls < 0:
            raise InputFileError("The load generator needs cps > 0, concurrent >= 1, agents >= 2 and calls >= 0.",
                                 "Use e.g. load:calls=1000,cps=20,concurrent=100,agents=50")
        unknown = [t for t in spec.templates if t not in SCENARIOS]
        if unknown:
            raise InputFileError(f"The load generator has no call scenario {unknown[0]!r}.",
                                 f"Use template=NAME or a mix NAME+NAME..., NAME one of {', '.join(SCENARIOS)}.")
        return spec


_cache: dict[str, Scenario] = {}


def load_scenario(name: Union[str, Path]) -> Union[Scenario, LoadSpec]:
    """A built-in scenario by name, ``load[:settings]``, or a scenario/load file."""
    text = str(name)
    if text == "load" or text.startswith("load:"):
        return LoadSpec.parse(text[5:])
    if text in MIXES:
        spec = LoadSpec.parse(MIXES[text])
        spec.name = spec.description = text
        return spec
    if text in CALL_SCENARIOS:
        if text not in _cache:
            _cache[text] = Scenario.from_data(json.loads((DATA / f"{text}.json").read_text()), text)
        return _cache[text]
    path = Path(text)
    if not path.is_file():
        raise InputFileError(
            f"There is no scenario called {text!r} and no such file.",
            f"Use one of {', '.join((*CALL_SCENARIOS, *MIXES))}, load[:calls=N,cps=X,concurrent=N,agents=N], "
            "or a scenario file.",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputFileError(f"Cannot read the scenario file {text}: {exc}.",
                             "A scenario file is JSON as written by `python -m eslkit.sim.derive`.") from None
    if isinstance(data, dict) and data.get("kind") == "load":
        settings = ",".join(f"{k}={v}" for k, v in data.items() if k not in ("kind", "name", "description"))
        return LoadSpec.parse(settings)
    if not isinstance(data, dict):
        raise InputFileError(f"{text} is not a scenario file (not a JSON object).")
    return Scenario.from_data(data, text)


# --- playing -------------------------------------------------------------------------------


async def play(server: "SimServer", scenario) -> None:
    if isinstance(scenario, LoadSpec):
        await run_load(server, scenario)
    else:
        await play_call(server, scenario)


async def play_call(server: "SimServer", scenario: Scenario, numbers: Optional[dict] = None) -> None:
    """One call: every template in order, at its time (scaled by the server's speed)."""
    loop = asyncio.get_running_loop()
    # Start on the capture's fraction of a second, so that its dates (whole seconds)
    # and its microsecond times still agree.
    base_us = int(time.time()) * 1_000_000 + scenario.start_fraction_us
    values = CallValues(base_us, fresh_uuids(scenario.uuids), server.core_uuid, numbers)
    start = loop.time()
    speed = server.speed
    templates = scenario.templates
    if speed is None:  # full speed: bursts of 16 events, letting the network run in between
        for burst in scenario.bursts:
            await _pace(server)
            server.fire_burst(burst, values)
        return
    for template in templates:
        delay = start + template.at / speed - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        server.fire(CallEvent(template, values, server.next_seq()))


def fresh_uuids(n: int) -> list[str]:
    """n random (version 4) UUIDs as text; uuid.uuid4() builds an object per UUID, a few µs each."""
    rand = os.urandom(16 * n).hex()  # one system call for all of them
    out = []
    for i in range(0, 32 * n, 32):
        h = rand[i:i + 32]
        # version 4 in the 13th digit, the RFC 4122 variant (8, 9, a or b) in the 17th
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}")
    return out


async def _pace(server: "SimServer") -> None:
    """At full speed, yield to the network; wait while every subscriber is full."""
    await asyncio.sleep(0)
    while server.subscribers_behind():
        await asyncio.sleep(0.001)


async def run_load(server: "SimServer", spec: LoadSpec) -> None:
    """Start calls at spec.cps over the agent pool, never more than spec.concurrent at once."""
    templates = [load_scenario(t) for t in spec.templates]
    if not all(isinstance(t, Scenario) for t in templates):
        raise InputFileError("The load generator's template must be a call scenario such as queue.")
    agents = AgentPool([str(spec.first_agent + i) for i in range(spec.agents)])
    active: set[asyncio.Task] = set()
    started = 0
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    while spec.calls == 0 or started < spec.calls:
        while len(active) >= spec.concurrent:
            await asyncio.wait(active, return_when=asyncio.FIRST_COMPLETED)
        # the two least busy agents ring together, as in the queue scenario
        first, second = agents.take_two()
        numbers = {"CALLER": str(spec.first_caller + started % 3800),
                   "CALLERB": str(spec.first_caller + (started + 1) % 3800), "AGENT1": first, "AGENT2": second}
        template = templates[started % len(templates)]

        async def call(first=first, second=second, numbers=numbers, template=template) -> None:
            try:
                await play_call(server, template, numbers)
            finally:
                agents.give_back(first)
                agents.give_back(second)

        task = loop.create_task(call())
        active.add(task)
        task.add_done_callback(active.discard)
        started += 1
        if server.speed is not None:
            delay = t0 + started / (spec.cps * server.speed) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        else:
            await asyncio.sleep(0)
    if active:
        await asyncio.wait(active)


class AgentPool:
    """The agents and their calls: take_two() gives the least busy (the first of them on a tie).

    A heap of (calls, position, version) entries; an agent's entry is current only while its
    version matches, so a busier or freer agent is simply pushed again (O(log n) per call,
    where sorting every agent for every call was most of the load generator's time).
    """

    def __init__(self, agents: list[str]):
        self.agents = agents
        self.calls = [0] * len(agents)
        self._version = [0] * len(agents)
        self._heap = [(0, i, 0) for i in range(len(agents))]
        self._index = {a: i for i, a in enumerate(agents)}

    def take_two(self) -> tuple[str, str]:
        """The two least busy agents (both chosen before either gets the call)."""
        first, second = self._pop(), self._pop()
        self._set(first, self.calls[first] + 1)
        self._set(second, self.calls[second] + 1)
        return self.agents[first], self.agents[second]

    def _pop(self) -> int:
        heap = self._heap
        while True:
            _, i, version = heapq.heappop(heap)
            if version == self._version[i]:
                self._version[i] += 1  # taken out: its other entries are stale too
                return i

    def give_back(self, agent: str) -> None:
        i = self._index[agent]
        self._set(i, self.calls[i] - 1)

    def _set(self, i: int, calls: int) -> None:
        self.calls[i] = calls
        self._version[i] += 1
        heapq.heappush(self._heap, (calls, i, self._version[i]))
        if len(self._heap) > 4 * len(self.agents) + 64:  # drop the stale entries now and then
            self._heap = [(c, j, self._version[j]) for j, c in enumerate(self.calls)]
            heapq.heapify(self._heap)


# --- the channels the switch has up: `show channels`, `show calls`, myevents, uuid_kill ------


CHANNEL_COLUMNS = (
    "uuid,direction,created,created_epoch,name,state,cid_name,cid_num,ip_addr,dest,application,"
    "application_data,dialplan,context,read_codec,read_rate,read_bit_rate,write_codec,write_rate,"
    "write_bit_rate,secure,hostname,presence_id,presence_data,accountcode,callstate,callee_name,"
    "callee_num,callee_direction,call_uuid,sent_callee_name,sent_callee_num,initial_cid_name,"
    "initial_cid_num,initial_ip_addr,initial_dest,initial_dialplan,initial_context"
).split(",")

# switch_core_sqldb.c: the basic_calls view behind `show calls` (a = the caller, b = its bridged callee).
CALL_COLUMNS = (
    "uuid,direction,created,created_epoch,name,state,cid_name,cid_num,ip_addr,dest,presence_id,"
    "presence_data,callstate,callee_name,callee_num,callee_direction,call_uuid,hostname,"
    "sent_callee_name,sent_callee_num"
).split(",")
CALLEE_COLUMNS = [c for c in CALL_COLUMNS if c != "hostname"]


class CallRegistry:
    """Channel rows kept from the events the switch fires, in creation order."""

    def __init__(self) -> None:
        self.rows: dict[str, Optional[dict[str, str]]] = {}  # None: not made yet
        self.bridges: dict[str, tuple[str, str]] = {}  # caller uuid -> (callee uuid, epoch)
        self._callers: dict[str, set] = {}  # callee uuid -> the callers bridged to it
        self.created_total = 0
        self.peak = 0
        self._recent: deque[float] = deque()  # creation times within the last second
        self.peak_sps = 0
        # Rows are read rarely (show channels, show calls) and at full speed most channels are
        # gone before anyone asks: keep each channel's events and apply them to its row then.
        self._unapplied: dict[str, list[SimEvent]] = {}
        # The call_uuid column, as switch_core_sqldb.c keeps it: set by CHANNEL_ORIGINATE and
        # on both legs by CHANNEL_BRIDGE (the event's Channel-Call-UUID), back to the channel's
        # own uuid by CHANNEL_UNBRIDGE.
        self._call_uuid: dict[str, str] = {}
        self._in_call: dict[str, set] = {}  # call uuid -> channels whose call_uuid it is

    def __contains__(self, uuid: str) -> bool:
        return uuid in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def track(self, ev: SimEvent) -> None:
        name = ev.event_name
        if not name.startswith("CHANNEL_") and name not in ("CALL_UPDATE", "CODEC"):
            return
        uuid = ev.unique_id
        if not uuid:
            return
        if name == "CHANNEL_DESTROY":
            self.rows.pop(uuid, None)
            self._unapplied.pop(uuid, None)
            self._set_call(uuid, None)
            self._unbridge(uuid)
            for caller in self._callers.pop(uuid, ()):
                if self.bridges.get(caller, ("",))[0] == uuid:
                    del self.bridges[caller]
            return
        if uuid not in self.rows:
            if name != "CHANNEL_CREATE":
                return
            self.rows[uuid] = None  # made from its events when rows are asked for (_apply)
            self._count_new()
        if name in self._COLUMNS_BY_EVENT:
            unapplied = self._unapplied.get(uuid)
            if unapplied is None:
                self._unapplied[uuid] = [ev]
            else:
                unapplied.append(ev)
                if len(unapplied) >= 64:  # a long call: do not hold on to all its events
                    self._apply(uuid)
        if name == "CHANNEL_ORIGINATE":
            self._set_call(uuid, ev.get("Channel-Call-UUID") or "")
        elif name == "CHANNEL_UNBRIDGE":
            call = ev.get("Channel-Call-UUID") or ""
            for channel in list(self._in_call.get(call, ())):
                self._set_call(channel, channel)
        if name == "CHANNEL_BRIDGE":
            call = ev.get("Channel-Call-UUID") or ""
            a, b = ev.get("Bridge-A-Unique-ID"), ev.get("Bridge-B-Unique-ID")
            if not a or not b:
                a, b = ev.get("Caller-Unique-ID"), ev.get("Other-Leg-Unique-ID")
            for channel in (a, b):
                if channel in self.rows:
                    self._set_call(channel, call)
            other = ev.get("Other-Leg-Unique-ID") or ev.get("Bridge-B-Unique-ID")
            if other:
                self._unbridge(uuid)
                self.bridges[uuid] = (other, str(int(time.time())))
                self._callers.setdefault(other, set()).add(uuid)

    def _set_call(self, uuid: str, call: Optional[str]) -> None:
        old = self._call_uuid.pop(uuid, None)
        if old is not None:
            members = self._in_call.get(old)
            if members is not None:
                members.discard(uuid)
                if not members:
                    del self._in_call[old]
        if call is not None:
            self._call_uuid[uuid] = call
            self._in_call.setdefault(call, set()).add(uuid)

    def _unbridge(self, caller: str) -> None:
        """Forget the caller's bridge, if any (an index, not a scan: thousands may be up)."""
        old = self.bridges.pop(caller, None)
        if old is not None:
            callers = self._callers.get(old[0])
            if callers is not None:
                callers.discard(caller)
                if not callers:
                    del self._callers[old[0]]

    def _count_new(self) -> None:
        self.created_total += 1
        self.peak = max(self.peak, len(self.rows))
        now = time.monotonic()
        recent = self._recent
        while recent and now - recent[0] >= 1.0:
            recent.popleft()
        recent.append(now)
        self.peak_sps = max(self.peak_sps, len(recent))

    @property
    def sessions_per_second(self) -> int:
        now = time.monotonic()
        return sum(1 for t in self._recent if now - t < 1.0)

    _NEW_ROW = ("Unique-ID", "Call-Direction", "Channel-Name", "Caller-Network-Addr", "Caller-Dialplan",
                "Caller-Context", "FreeSWITCH-Hostname", "Channel-Presence-ID", "Caller-Caller-ID-Name",
                "Caller-Caller-ID-Number", "Caller-Destination-Number", "Caller-Channel-Created-Time",
                "Event-Date-Timestamp")

    def _new_row(self, ev: SimEvent) -> dict[str, str]:
        (uuid, direction, name, addr, dialplan, context, hostname, presence, cid_name, cid_num, dest,
         created_us, stamp) = [v or "" for v in ev.get_all(self._NEW_ROW)]
        ts = created_us or stamp
        epoch = str(int(ts) // 1_000_000) if ts.isdigit() else ""
        created = date_text("LOCAL", int(epoch)) if epoch else ""
        row = dict.fromkeys(CHANNEL_COLUMNS, "")
        row.update(
            uuid=uuid, direction=direction, created=created, created_epoch=epoch,
            name=name, ip_addr=addr, dialplan=dialplan, context=context, hostname=hostname,
            presence_id=presence, initial_cid_name=cid_name, initial_cid_num=cid_num,
            initial_ip_addr=addr, initial_dest=dest, initial_dialplan=dialplan, initial_context=context,
        )
        return row

    # Which columns an event can change (looking up every header on every event is slow).
    _STATE = (("state", "Channel-State"),)
    _CALLSTATE = (("state", "Channel-State"), ("callstate", "Channel-Call-State"))
    _FULL = (
        ("state", "Channel-State"), ("callstate", "Channel-Call-State"),
        ("cid_name", "Caller-Caller-ID-Name"), ("cid_num", "Caller-Caller-ID-Number"),
        ("dest", "Caller-Destination-Number"), ("callee_name", "Caller-Callee-ID-Name"),
        ("callee_num", "Caller-Callee-ID-Number"),
        ("read_codec", "Channel-Read-Codec-Name"), ("read_rate", "Channel-Read-Codec-Rate"),
        ("read_bit_rate", "Channel-Read-Codec-Bit-Rate"), ("write_codec", "Channel-Write-Codec-Name"),
        ("write_rate", "Channel-Write-Codec-Rate"), ("write_bit_rate", "Channel-Write-Codec-Bit-Rate"),
    )
    _COLUMNS_BY_EVENT = {
        "CHANNEL_STATE": _STATE, "CHANNEL_CALLSTATE": _CALLSTATE, "CHANNEL_EXECUTE": _STATE,
        "CHANNEL_CREATE": _FULL, "CHANNEL_ANSWER": _FULL, "CHANNEL_BRIDGE": _FULL, "CALL_UPDATE": _FULL,
        "CHANNEL_PROGRESS": _FULL, "CHANNEL_PROGRESS_MEDIA": _FULL, "CODEC": _FULL, "CHANNEL_HANGUP": _CALLSTATE,
    }

    _HEADERS_BY_EVENT = {name: tuple(h for _, h in cols) for name, cols in _COLUMNS_BY_EVENT.items()}

    def _update(self, row: dict[str, str], ev: SimEvent) -> None:
        g = ev.get
        columns = self._COLUMNS_BY_EVENT.get(ev.event_name)
        if columns:
            for (column, _), value in zip(columns, ev.get_all(self._HEADERS_BY_EVENT[ev.event_name])):
                if value is not None:
                    row[column] = value
        if ev.event_name == "CHANNEL_EXECUTE":
            row["application"] = g("Application") or ""
            row["application_data"] = g("Application-Data") or ""

    def _apply(self, uuid: str) -> None:
        events = self._unapplied.pop(uuid)
        row = self.rows[uuid]
        if row is None:  # events[0] is its CHANNEL_CREATE
            row = self.rows[uuid] = self._new_row(events[0])
        for ev in events:
            self._update(row, ev)

    def _apply_all(self) -> None:
        for uuid in list(self._unapplied):
            self._apply(uuid)
        for uuid, row in self.rows.items():
            if row is not None:
                row["call_uuid"] = self._call_uuid.get(uuid, "")

    def channel_rows(self) -> list[dict[str, str]]:
        self._apply_all()
        return list(self.rows.values())

    def call_rows(self) -> list[dict[str, str]]:
        """basic_calls: every channel that is not the callee of a bridge, with its callee as b_*."""
        self._apply_all()
        callees = {b for b, _ in self.bridges.values()}
        out = []
        for uuid, row in self.rows.items():
            if uuid in callees:
                continue
            call = {c: row.get(c, "") for c in CALL_COLUMNS}
            bridge = self.bridges.get(uuid)
            b = self.rows.get(bridge[0], {}) if bridge else {}
            for c in CALLEE_COLUMNS:
                call["b_" + c] = b.get(c, "")
            call["call_created_epoch"] = bridge[1] if bridge else ""
            out.append(call)
        return out
