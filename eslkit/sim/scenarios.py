"""Scenarios: the simulated calls, and how they are played on a `Switch`.

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
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Optional, Union

from eslkit.errors import InputFileError
from eslkit.sim.data import read_data
from eslkit.sim.fastpath import Burst, CallEvent, CallValues, Template
from eslkit.sim.switch import Switch

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
            _cache[text] = Scenario.from_data(read_data(text), text)
        return _cache[text]
    path = Path(text)
    if not path.is_file():
        raise InputFileError(
            f"There is no scenario called {text!r} and no such file.",
            f"Use one of {', '.join((*CALL_SCENARIOS, *MIXES))}, load[:calls=N,cps=X,concurrent=N,agents=N], "
            "idle (no calls but those clients place), or a scenario file.",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputFileError(f"Cannot read the scenario file {text}: {exc}.",
                             "A scenario file is JSON as written by `python -m eslkit.sim.derive`.") from exc
    if isinstance(data, dict) and data.get("kind") == "load":
        settings = ",".join(f"{k}={v}" for k, v in data.items() if k not in ("kind", "name", "description"))
        return LoadSpec.parse(settings)
    if not isinstance(data, dict):
        raise InputFileError(f"{text} is not a scenario file (not a JSON object).")
    return Scenario.from_data(data, text)


# --- playing -------------------------------------------------------------------------------


async def play(server: Switch, scenario) -> None:
    if isinstance(scenario, LoadSpec):
        await run_load(server, scenario)
    else:
        await play_call(server, scenario)


async def play_call(server: Switch, scenario: Scenario, numbers: Optional[dict] = None) -> None:
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
    legs = server.legs
    legs.recordings[values] = (scenario, start)
    try:
        for template in templates:
            delay = start + template.at / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if legs.taken and values.resolve(template.unique_id, 0) in legs.taken:
                continue  # a call-control command took this leg out of the recording
            server.fire(CallEvent(template, values, server.next_seq()))
    finally:
        del legs.recordings[values]
        if legs.taken:
            legs.taken.difference_update(values.simple.values())


def recorded_clock(server: Switch, uuid: str) -> Optional[tuple[int, float, float]]:
    """The clock of the recording this leg is playing in, as (its start in µs, the loop time
    it started, its speed): at --speed 2 a recording's times run twice as fast as the wall
    clock.  None for a leg not in a recording that plays now."""
    values = server.legs.calls.get(uuid)
    playing = server.legs.recordings.get(values) if values is not None else None
    if playing is None or server.speed is None:
        return None
    return values.base_us, playing[1], server.speed


def recorded_hangup(server: Switch, uuid: str) -> Optional[tuple[float, str]]:
    """Seconds until the recording this leg came from hangs it up, and the cause it gives."""
    values = server.legs.calls.get(uuid)
    playing = server.legs.recordings.get(values) if values is not None else None
    if playing is None or server.speed is None:
        return None
    scenario, start = playing
    for template in scenario.templates:
        if template.event_name == "CHANNEL_HANGUP" and values.resolve(template.unique_id, 0) == uuid:
            now = asyncio.get_running_loop().time()
            return max(start + template.at / server.speed - now, 0.0) * server.speed, \
                values.resolve(template.raw("Hangup-Cause"), 0) or "NORMAL_CLEARING"
    return None


def fresh_uuids(n: int) -> list[str]:
    """n random (version 4) UUIDs as text; uuid.uuid4() builds an object per UUID, a few µs each."""
    rand = os.urandom(16 * n).hex()  # one system call for all of them
    out = []
    for i in range(0, 32 * n, 32):
        h = rand[i:i + 32]
        # version 4 in the 13th digit, the RFC 4122 variant (8, 9, a or b) in the 17th
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}")
    return out


async def _pace(server: Switch) -> None:
    """At full speed, yield to the network; wait while every subscriber is full."""
    await asyncio.sleep(0)
    while server.subscribers_behind():
        await asyncio.sleep(0.001)


async def run_load(server: Switch, spec: LoadSpec) -> None:
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
