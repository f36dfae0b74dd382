"""The simulated switch's channels as its api commands see them: each leg's headers and
variables now, who it is bridged to, and which legs a command took out of a recording.

A channel event carries the channel's data (``Channel-*``, ``Caller-*``, ``Other-Leg-*``)
and, on most events, all its variables; ``CHANNEL_STATE`` and ``CHANNEL_CALLSTATE`` carry
the data without the variables.  `LegState.absorb` keeps that picture the way a listener
would: an event with variables replaces it, one without updates the headers it has.  The
moves of `eslkit.sim.moves` read and change it; `Legs` keeps one per channel up from
the events the switch fires (cheaply: the events are only read when a command asks).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Iterable, Optional

# The headers every event has (switch_event_prep_for_delivery): never a channel's data.
STANDARD = frozenset((
    "Event-Name", "Core-UUID", "FreeSWITCH-Hostname", "FreeSWITCH-Switchname", "FreeSWITCH-IPv4",
    "FreeSWITCH-IPv6", "Event-Date-Local", "Event-Date-GMT", "Event-Date-Timestamp", "Event-Calling-File",
    "Event-Calling-Function", "Event-Calling-Line-Number", "Event-Sequence",
))
# The events about a channel (those with a Unique-ID that tell its state).
_CHANNEL_EVENTS = frozenset((
    "CHANNEL_CREATE", "CHANNEL_DESTROY", "CHANNEL_STATE", "CHANNEL_CALLSTATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP",
    "CHANNEL_HANGUP_COMPLETE", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HOLD", "CHANNEL_UNHOLD",
    "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_OUTGOING",
    "CHANNEL_PARK", "CHANNEL_UNPARK", "CHANNEL_ORIGINATE", "CALL_UPDATE", "CODEC", "PRESENCE_IN",
    "PRIVATE_COMMAND",
))
RECENT = 24  # events kept per leg until a command asks (a leg's picture needs its last full one)


class LegState:
    """One leg's headers (without the standard ones) and variables, in their order."""

    __slots__ = ("uuid", "headers", "variables")

    def __init__(self, uuid: str):
        self.uuid = uuid
        self.headers: dict[str, str] = {}
        self.variables: dict[str, str] = {}

    def copy(self) -> "LegState":
        other = LegState(self.uuid)
        other.headers = dict(self.headers)
        other.variables = dict(self.variables)
        return other

    def absorb(self, pairs: Iterable[tuple[str, str]]) -> None:
        headers: dict[str, str] = {}
        variables: dict[str, str] = {}
        for k, v in pairs:
            if k in STANDARD:
                continue
            (variables if k.startswith("variable_") else headers)[k] = v
        if variables:
            self.headers, self.variables = headers, variables
        else:
            self.headers.update(headers)

    def get(self, name: str) -> Optional[str]:
        value = self.headers.get(name)
        return self.variables.get(name) if value is None else value

    # What the api commands ask of a leg.

    @property
    def answered(self) -> bool:
        return self.headers.get("Answer-State") == "answered"

    @property
    def ringing(self) -> bool:
        return self.headers.get("Answer-State") in ("ringing", "early") or \
            self.headers.get("Channel-Call-State") in ("RINGING", "EARLY", "DOWN")

    @property
    def hung_up(self) -> bool:
        return self.headers.get("Answer-State") == "hangup" or self.headers.get("Channel-Call-State") == "HANGUP"

    @property
    def held(self) -> bool:
        return self.headers.get("Channel-Call-State") == "HELD"

    @property
    def outbound(self) -> bool:
        return self.headers.get("Call-Direction") == "outbound"


class Legs:
    """The channels up, from the events fired: each one's recent events (read only when a
    command asks, `state`), its bridge partner, and the bridge's owner (the leg that runs
    the bridge application: its CHANNEL_BRIDGE names it)."""

    def __init__(self) -> None:
        self._recent: dict[str, deque] = {}
        self._states: dict[str, LegState] = {}  # legs a command has read: kept up to date
        self.partner: dict[str, str] = {}
        self.owner: set[str] = set()
        self.apps: dict[str, dict[str, str]] = {}  # uuid -> application -> its data, as last started
        self.calls: dict[str, object] = {}  # uuid -> the recorded call (CallValues) it came from
        self.taken: set[str] = set()  # legs a command took out of their recording (until it ends)
        self.clocks: dict[str, tuple] = {}  # a leg taken from a recording keeps its clock (see Play)
        self.recordings: dict[object, tuple] = {}  # a recorded call playing (CallValues) -> (scenario, start)

    def track(self, ev) -> None:
        name = ev.event_name
        if name not in _CHANNEL_EVENTS:
            return
        uuid = ev.unique_id
        if not uuid:
            return
        if name == "CHANNEL_DESTROY":
            self.forget(uuid)
            return
        state = self._states.get(uuid)
        if state is not None:
            state.absorb(_pairs(ev))
        else:
            recent = self._recent.get(uuid)
            if recent is None:
                if name not in ("CHANNEL_CREATE", "CHANNEL_OUTGOING", "CHANNEL_STATE"):
                    return  # a leg first seen mid-call (a replay): not one the commands know
                if name == "CHANNEL_STATE" and ev.get("Channel-State") == "CS_DESTROY":
                    return  # the switch's last word on a leg, after its CHANNEL_DESTROY
                recent = self._recent[uuid] = deque(maxlen=RECENT)
            recent.append(ev)
        values = getattr(ev, "values", None)
        if values is not None and uuid not in self.calls:
            self.calls[uuid] = values
        if name == "CHANNEL_EXECUTE":
            self.apps.setdefault(uuid, {})[ev.get("Application") or ""] = ev.get("Application-Data") or ""
        elif name == "CHANNEL_BRIDGE":
            a = ev.get("Bridge-A-Unique-ID") or uuid
            b = ev.get("Bridge-B-Unique-ID") or ev.get("Other-Leg-Unique-ID")
            if b:
                self.partner[a], self.partner[b] = b, a
                self.owner.add(a)
        elif name == "CHANNEL_UNBRIDGE":
            other = self.partner.pop(uuid, None)
            if other is not None and self.partner.get(other) == uuid:
                del self.partner[other]
            self.owner.discard(uuid)

    def forget(self, uuid: str) -> None:
        self._recent.pop(uuid, None)
        self._states.pop(uuid, None)
        self.apps.pop(uuid, None)
        self.calls.pop(uuid, None)
        self.clocks.pop(uuid, None)
        self.owner.discard(uuid)
        other = self.partner.pop(uuid, None)
        if other is not None and self.partner.get(other) == uuid:
            del self.partner[other]

    def __contains__(self, uuid: str) -> bool:
        return uuid in self._recent or uuid in self._states

    def state(self, uuid: str) -> Optional[LegState]:
        """The leg's headers and variables now (None: not a leg that is up)."""
        state = self._states.get(uuid)
        if state is not None:
            return state
        recent = self._recent.pop(uuid, None)
        if recent is None:
            return None
        state = self._states[uuid] = LegState(uuid)
        for ev in recent:
            state.absorb(_pairs(ev))
        return state

    def bridged(self, uuid: str) -> Optional[str]:
        other = self.partner.get(uuid)
        return other if other is not None and other in self else None

    def call_of(self, uuid: str) -> set[str]:
        """The legs up of the recorded call this leg came from (empty for a live leg)."""
        values = self.calls.get(uuid)
        if values is None:
            return set()
        return {u for u, v in self.calls.items() if v is values}


class Dialing:
    """The calls `originate` places (`eslkit.sim.obey.Originate`), by the agent leg's uuid:
    answer now (talk), cancel (uuid_kill), and the far legs still ringing."""

    def __init__(self) -> None:
        self._by_leg: dict[str, Any] = {}

    def get(self, uuid: str) -> Optional[Any]:
        return self._by_leg.get(uuid)

    def get_far(self, uuid: str) -> list[str]:
        call = self._by_leg.get(uuid)
        if call is None or call.far_answered:
            return []
        far = call.play.roles.get("F")
        return [far] if far and far in call.server.legs and call.far_ringing else []

    def add(self, call: Any) -> None:
        self._by_leg[call.play.roles["A"]] = call

    def remove(self, call: Any) -> None:
        self._by_leg.pop(call.play.roles["A"], None)


def _pairs(ev) -> list[tuple[str, str]]:
    event = ev.to_event() if hasattr(ev, "to_event") else ev
    return [(k, v if isinstance(v, str) else "|".join(v)) for k, v in event.pairs()]


# --- the times FreeSWITCH writes at hangup (switch_channel_set_timestamps) ------------------------

_TIMES = (("start", "Caller-Channel-Created-Time"), ("profile_start", "Caller-Profile-Created-Time"),
          ("answer", "Caller-Channel-Answered-Time"), ("bridge", "Caller-Channel-Bridged-Time"),
          ("last_hold", "Caller-Channel-Last-Hold"), ("resurrect", "Caller-Channel-Resurrect-Time"),
          ("progress", "Caller-Channel-Progress-Time"), ("progress_media", "Caller-Channel-Progress-Media-Time"),
          ("end", "Caller-Channel-Hangup-Time"))


def hangup_variables(state: LegState) -> dict[str, str]:
    """The time and duration variables of a leg's CHANNEL_HANGUP_COMPLETE, from its
    Caller-Channel-*-Time headers (µs), as switch_channel_set_timestamps writes them."""
    def us(header: str) -> int:
        value = state.headers.get(header, "0")
        return int(value) if value.isdigit() else 0

    t = {key: us(header) for key, header in _TIMES}
    out: dict[str, str] = {}
    for key in ("start", "profile_start", "answer", "bridge", "last_hold", "progress", "progress_media", "end"):
        if t[key]:
            stamp = "hold" if key == "last_hold" else key
            out[f"{stamp}_stamp"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t[key] // 1_000_000))
    for key in ("start", "profile_start", "answer", "bridge", "last_hold", "resurrect", "progress",
                "progress_media", "end"):
        out[f"{key}_epoch"] = str(t[key] // 1_000_000)
        out[f"{key}_uepoch"] = str(t[key])
    accum = int(state.headers.get("Caller-Channel-Hold-Accum", "0") or 0)
    out["hold_accum_seconds"], out["hold_accum_usec"], out["hold_accum_ms"] = \
        str(accum // 1_000_000), str(accum), str(accum // 1000)
    created, end = t["start"], t["end"]
    spans = {
        "duration": (created, end),
        "billsec": (t["answer"], end) if t["answer"] else (0, 0),
        "progresssec": (created, t["progress"]) if t["progress"] else (0, 0),
        "answersec": (created, t["answer"]) if t["answer"] else (0, 0),
        "waitsec": (created, t["bridge"]) if t["bridge"] > created else (0, 0),
        "progress_mediasec": (created, t["progress_media"]) if t["progress_media"] else (0, 0),
        "flow_billsec": (created, end),
    }
    for name, (a, b) in spans.items():
        milli, micro = ("mduration", "uduration") if name == "duration" else (name[:-3] + "msec", name[:-3] + "usec")
        out[name] = str(b // 1_000_000 - a // 1_000_000)
        out[milli] = str(b // 1000 - a // 1000)
        out[micro] = str(b - a)
    name = state.headers.get("Caller-Caller-ID-Name")
    number = state.headers.get("Caller-Caller-ID-Number", "")
    out["caller_id"] = f'"{name}" <{number}>' if name else number
    return out
