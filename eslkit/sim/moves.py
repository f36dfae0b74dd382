"""Moves: what the simulated switch does when an api command acts on a call, played from
what a real FreeSWITCH did (``scenarios/moves.json.gz``, made by `eslkit.sim.derive_moves`).

A move's steps are captured events, each tied to a role (``A``: the leg the command
names, ``B``: the leg bridged to it, ``N``/``F``: a leg the move makes, ``K``/``P``: the
leg hung up and its partner).  `Play` binds the roles to the simulator's live legs and
turns each step into an event: the step's own headers (its name, where FreeSWITCH fired
it, what it says), the headers and variables the captured event changed on its leg, and
everything else as the live leg has it now, so a hold on any call looks like that call
put on hold.  A leg the move makes is the captured leg, its party's numbers and names
copied from the live legs it is tied to.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Iterable, Optional

from eslkit.event import Event
from eslkit.sim.data import read_data
from eslkit.sim.fastpath import CallValues
from eslkit.sim.legs import STANDARD, LegState, hangup_variables
from eslkit.sim.scenarios import recorded_clock
from eslkit.sim.switch import Switch

UUID_TOKEN_RE = re.compile(r"~~(U\d+)~~")


@dataclass(frozen=True)
class Step:
    phase: str
    at: float  # seconds after its phase began, as captured
    role: Optional[str] = None  # None: a switch event (API, …)
    sync: bool = False  # fired before the command's reply (inside the api call)
    headers: tuple = ()
    body: Optional[str] = None
    changed: frozenset = frozenset()
    vchanged: tuple = ()
    vdropped: tuple = ()
    vorder: tuple = ()  # the variables set again, in order: they move to the end
    refs: dict = field(default_factory=dict)
    mark: Optional[str] = None  # not an event: a point the command waits for (originate's "job")

    @property
    def name(self) -> str:
        return next((v for k, v in self.headers if k == "Event-Name"), "")


@dataclass(frozen=True)
class Move:
    name: str
    description: str
    source: str
    steps: tuple
    phases: dict

    def phase(self, name: str) -> list[Step]:
        return [s for s in self.steps if s.phase == name]


_moves: Optional[dict[str, Move]] = None


def moves() -> dict[str, Move]:
    global _moves
    if _moves is None:
        data = read_data("moves")["moves"]
        _moves = {name: _move(name, m) for name, m in data.items()}
    return _moves


def _move(name: str, data: dict) -> Move:
    steps = []
    for s in data["steps"]:
        if "mark" in s:
            steps.append(Step(s["phase"], s["at"], mark=s["mark"]))
            continue
        steps.append(Step(s["phase"], s["at"], s["role"], s["sync"], tuple((k, v) for k, v in s["headers"]),
                          s.get("body"), frozenset(s.get("changed", ())), tuple(s.get("vchanged", ())),
                          tuple(s.get("vdropped", ())), tuple(s.get("vorder", ())),
                          {k: tuple(r) for k, r in s.get("refs", {}).items()}))
    return Move(name, data["description"], data["source"], tuple(steps), data.get("phases", {}))


# Values a step computes from its leg rather than copies (switch_channel_set_timestamps,
# switch_ivr_unhold's hold accumulator).
_HANGUP_VARIABLES = {"variable_" + k for k in hangup_variables(LegState(""))}


class Play:
    """One move on the simulator's live legs.

    ``roles`` binds role names to leg uuids (a role without a leg, such as a hold's
    partner when the leg is not bridged, is skipped); the move's new legs get fresh
    uuids.  ``tokens`` fills the command's values (``DEST``, ``CAUSE``, ``ENDPOINT``…).
    """

    def __init__(self, server: Switch, move: Move, roles: dict[str, str], tokens: Optional[dict] = None,
                 *, make: Iterable[str] = ()):
        self.server = server
        self.move = move
        self.roles = dict(roles)
        for role in make:  # the legs the move makes
            self.roles.setdefault(role, server.new_uuid())
        self.tokens = dict(tokens or {})
        self.fresh: dict[str, str] = {}  # uuids the capture had that are no leg's (an application's)
        for step in move.steps:
            for _, v in step.headers:
                for m in UUID_TOKEN_RE.finditer(v):
                    if m.group(1) not in self.fresh:
                        self.fresh[m.group(1)] = server.new_uuid()
        self.fired: list[Event] = []
        self.stopped = False  # a later command ended what this move was doing (uuid_kill of a dial)
        self._seen: set[str] = set()  # legs this move has seen up: gone by another's hand, nothing more on them
        self._ended: set[str] = set()  # legs this move itself destroyed (their last CHANNEL_STATE still comes)
        self.clock = self._clock()

    def _clock(self) -> Optional[tuple]:
        """Events of legs from a recording keep to the recording's clock, (start µs, loop time,
        speed): at --speed 2 it runs ahead of this machine's, and a transferred caller's
        recorded hang-up must come as long after its answer as it did.  The first bound leg's
        clock, shared with the legs the move makes; None: this machine's clock."""
        legs = self.server.legs
        clock = None
        for uuid in self.roles.values():
            clock = recorded_clock(self.server, uuid) or legs.clocks.get(uuid)
            if clock is not None:
                break
        if clock is not None:
            for uuid in self.roles.values():
                legs.clocks[uuid] = clock
        return clock

    def now_us(self) -> int:
        if self.clock is None:
            return int(time.time() * 1_000_000)
        base_us, start, speed = self.clock
        return base_us + int((asyncio.get_running_loop().time() - start) * speed * 1_000_000)

    # --- playing -------------------------------------------------------------------------

    def fire_sync(self, phase: str) -> None:
        """The steps FreeSWITCH fires inside the api call, before its reply."""
        for step in self.move.phase(phase):
            if step.sync:
                self.fire(step)

    async def play(self, phase: str, *, sync_done: bool = False) -> None:
        """A phase's steps at their captured pace (scaled by the simulator's speed)."""
        await self.play_steps([s for s in self.move.phase(phase) if not (sync_done and s.sync)])

    async def play_steps(self, steps: Iterable[Step], on_mark=None) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        speed = self.server.speed
        for step in steps:
            if self.stopped:
                return
            if speed is not None:
                delay = start + step.at / speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if step.mark is not None:
                if on_mark is not None:
                    await on_mark(step.mark)
                continue
            self.fire(step)

    def fire(self, step: Step) -> Optional[Event]:
        if step.role is not None:
            uuid = self.roles.get(step.role)
            if uuid is None:
                return None  # a role this call does not have
            if uuid in self.server.legs:
                self._seen.add(uuid)
            elif uuid in self._seen and uuid not in self._ended:
                return None  # the leg went meanwhile (another command hung it up): its events stop
            if step.name == "PRESENCE_IN" and uuid in self.server.legs:
                state = self.server.legs.state(uuid)
                if not (state.get("variable_presence_id") or state.get("Channel-Presence-ID")):
                    return None  # switch_channel_perform_presence: no presence id, no PRESENCE_IN
            if step.name == "CHANNEL_DESTROY":
                self._ended.add(uuid)
        event = Event(self.render(step), step.body)
        self.fired.append(event)
        self.server.fire(event)
        return event

    # --- one step as an event for the live leg ----------------------------------------------

    def render(self, step: Step) -> list[tuple[str, str]]:
        now_us = self.now_us()
        values = CallValues(now_us - int(step.at * 1_000_000), [], self.server.core_uuid,
                            {**self.fresh, **self.roles, **self.tokens})
        seq = self.server.next_seq()
        uuid = self.roles.get(step.role) if step.role else None
        legs = self.server.legs
        state = legs.state(uuid) if uuid and uuid in legs else None

        computed = hangup_variables(state) if state is not None and _HANGUP_VARIABLES.intersection(
            step.vchanged) else {}

        def value(k: str, v: str) -> str:
            if k in _HANGUP_VARIABLES and k[len("variable_"):] in computed:
                return computed[k[len("variable_"):]]
            if k == "Caller-Channel-Hold-Accum" and state is not None:
                return _hold_accum(state, now_us)
            if k == "Application-Data" and uuid and step.name == "CHANNEL_EXECUTE_COMPLETE":
                running = legs.apps.get(uuid, {}).get(dict(step.headers).get("Application", ""))
                if running is not None:
                    return running  # the application the live leg runs, as it was started
            ref = step.refs.get(k)
            if ref is not None:
                other = self._leg(ref[0])
                if other is not None and other.get(ref[1]) is not None:
                    return other.get(ref[1])
            return values.resolve(v, seq)

        out: list[tuple[str, str]] = []
        variables_done = False
        for k, v in step.headers:
            if k in STANDARD or step.role is None:
                out.append((k, values.resolve(v, seq)))
            elif k.startswith("variable_"):
                if not variables_done:
                    variables_done = True
                    out += self._variables(step, state, value)
            elif state is None or k in step.changed:
                out.append((k, value(k, v)))
            elif k in state.headers:
                out.append((k, state.headers[k]))
        return out

    def _variables(self, step: Step, state: Optional[LegState], value) -> list[tuple[str, str]]:
        if state is None:  # a new leg: the captured leg's variables, its parties' own
            return [(k, value(k, v)) for k, v in step.headers if k.startswith("variable_")]
        variables = dict(state.variables)
        for k in step.vdropped:
            variables.pop(k, None)
        template = dict(step.headers)
        changed = set(step.vchanged)
        for k in step.vorder:  # switch_channel_set_variable puts what it sets at the end
            old = variables.pop(k, None)
            variables[k] = value(k, template[k]) if k in changed or old is None else old
        return list(variables.items())

    def _leg(self, role: str) -> Optional[LegState]:
        uuid = self.roles.get(role)
        if uuid is None or uuid not in self.server.legs:
            return None
        return self.server.legs.state(uuid)


def _hold_accum(state: LegState, now_us: int) -> str:
    """switch_ivr_unhold: the time on hold so far plus this hold."""
    def num(name: str) -> int:
        value = state.headers.get(name, "0")
        return int(value) if value.isdigit() else 0
    last = num("Caller-Channel-Last-Hold")
    return str(num("Caller-Channel-Hold-Accum") + (now_us - last if last else 0))
