"""Scenarios for the call flows no capture holds, built from captured ones.

Each takes scenario data made by `eslkit.sim.derive` (events with ``~~TOKEN~~``
slots) and changes only what the flow changes, using the facts the capture
READMEs give; everything else stays as the real switch sent it:

- `keep_call`: one caller's call out of a capture of two (mod_callcenter);
- `refuse_busy`: one ringing agent leg answers 486 Busy Here (USER_BUSY) early;
- `ring_also`: a direct call turned into a ring-all queue call (a second agent leg);
- `overlay`: a second call during the first (call waiting: same Channel-Name, two legs);
- `contact_alias`: an agent's phone registered with another Contact user.

All work on the tokens, so the results play with fresh uuids and times like
any scenario.
"""

from __future__ import annotations

import copy
import re
from typing import Callable

TOKEN_UUID_RE = re.compile(r"~~U(\d+)~~")
TIME_TOKEN_RE = re.compile(r"~~(US|S|LOCAL|GMT|RFC)(-?\d+)~~")


def header(ev: dict, name: str):
    for k, v in ev["headers"]:
        if k == name:
            return v
    return None


def _map_values(ev: dict, fn: Callable[[str, str], str]) -> dict:
    """A copy of the event with fn(name, value) applied to every value (lists too)."""
    ev = copy.deepcopy(ev)
    for pair in ev["headers"]:
        name, value = pair
        pair[1] = [fn(name, x) for x in value] if isinstance(value, list) else fn(name, value)
    if isinstance(ev.get("body"), str):
        ev["body"] = fn("_body", ev["body"])
    return ev


def _replace(mapping: dict[str, str]) -> Callable[[str, str], str]:
    pattern = re.compile("|".join(re.escape(k) for k in sorted(mapping, key=len, reverse=True)))
    return lambda name, value: pattern.sub(lambda m: mapping[m.group(0)], value)


def _tokens(events: list, pick: Callable[[dict], bool]) -> set[str]:
    found = set()
    for ev in events:
        if pick(ev):
            for _, v in ev["headers"]:
                for x in v if isinstance(v, list) else [v]:
                    found.update(m.group(0) for m in TOKEN_UUID_RE.finditer(x))
    return found


def _sorted(events: list) -> list:
    return sorted(events, key=lambda ev: ev["at"])  # stable: the captured order within one instant


def _shift(ev: dict, seconds: float, from_us: int = -(10 ** 12)) -> dict:
    """The event `seconds` later, with every time in it (µs, s and dates) from `from_us` on."""
    delta = int(round(seconds * 1e6))

    def move(name: str, value: str) -> str:
        def one(m: re.Match) -> str:
            off = int(m.group(2))
            return f"~~{m.group(1)}{off + delta if off >= from_us else off}~~"
        return TIME_TOKEN_RE.sub(one, value)

    ev = _map_values(ev, move)
    ev["at"] = round(ev["at"] + seconds, 6)
    return ev


def scenario(base: dict, name: str, description: str, source: str, events: list, uuids: int) -> dict:
    return {**base, "name": name, "description": description, "source": source, "uuids": uuids,
            "events": events}


# --- one call out of two ------------------------------------------------------------------


def keep_call(data: dict, caller: str) -> list:
    """The events of `caller`'s call (its channel, the agent legs tied to it) and the queue's
    own events about it; what belongs to the other caller's call goes, as do the agents'
    state changes once an agent is offered the other call."""
    events = data["events"]
    mine = {caller}
    for ev in events:
        links = (header(ev, "variable_cc_member_session_uuid"), header(ev, "Other-Leg-Unique-ID"))
        if header(ev, "Call-Direction") == "outbound" and caller in links:
            mine.add(header(ev, "Unique-ID"))
    others = {header(ev, "CC-Member-Session-UUID") for ev in events} - {None, caller}
    others |= {header(ev, "Unique-ID") for ev in events if header(ev, "Channel-Call-UUID") in others}
    joined = min((ev["at"] for ev in events if header(ev, "Unique-ID") in others), default=None)
    last = max(ev["at"] for ev in events if header(ev, "Unique-ID") in mine)
    taken: dict[str, float] = {}  # agent -> when it was offered the other call
    for ev in events:
        agent = header(ev, "CC-Agent")
        if agent and header(ev, "CC-Member-Session-UUID") in others:
            taken.setdefault(agent.split("@")[0], ev["at"])
    theirs = {ev["at"] for ev in events if header(ev, "Unique-ID") in others}
    out = []
    for ev in events:
        uuid = header(ev, "Unique-ID")
        if ev["at"] > last or uuid in others or header(ev, "CC-Member-Session-UUID") in others:
            continue
        if uuid is None and ev["at"] in theirs and caller not in repr(ev["headers"]):
            continue  # made by the other call's step at that instant (its dialplan, the queue's presence)
        if uuid is None:
            if header(ev, "CC-Action") == "members-count" and joined is not None and ev["at"] >= joined:
                continue  # it counts the other caller too
            text = repr(ev["headers"])
            if any(ev["at"] >= t and agent in text for agent, t in taken.items()):
                continue  # about an agent now busy with the other call
        out.append(ev)
    return out


# --- an agent's phone says busy -------------------------------------------------------------

BUSY_VALUES = {
    "LOSE_RACE": "USER_BUSY",
    "ORIGINATOR_CANCEL": "USER_BUSY",
    "send_cancel": "recv_refuse",
    "CANCEL": "Busy Here",
    "487": "486",
    "sip:487": "sip:486",
    "16": "17",  # hangup_cause_q850
    "loser": "failure",  # group_dial_status
}
_BUSY_HEADERS = {"Hangup-Cause", "variable_hangup_cause", "variable_sip_hangup_disposition",
                 "variable_sip_invite_failure_status", "variable_sip_invite_failure_phrase",
                 "variable_hangup_cause_q850", "variable_group_dial_status",
                 "variable_last_bridge_proto_specific_hangup_cause", "variable_last_bridge_hangup_cause"}


def refuse_busy(events: list, leg: str, after: float) -> list:
    """The agent leg `leg` hangs up USER_BUSY `after` seconds after it was created (its
    captured hangup moved earlier, with its times), instead of the way it ended."""
    created = min(ev["at"] for ev in events if header(ev, "Unique-ID") == leg)
    hangup = min(ev["at"] for ev in events if header(ev, "Unique-ID") == leg and
                 header(ev, "Event-Name") == "CHANNEL_HANGUP")
    shift = created + after - hangup

    def busy(name: str, value: str) -> str:
        return BUSY_VALUES.get(value, value) if name in _BUSY_HEADERS else value

    out = []
    for ev in events:
        if header(ev, "Unique-ID") == leg and ev["at"] >= hangup:
            ev = _map_values(_shift(ev, shift, from_us=int((hangup - 1.0) * 1e6)), busy)
        out.append(ev)
    return _sorted(out)


# --- a direct call becomes a ring-all queue call ------------------------------------------------


def ring_also(data: dict, leg: str, number: str, queue: str, moves: dict[str, str]) -> tuple[list, int]:
    """Every event of the agent leg `leg` again, for a second agent (`moves`: its number
    and address for the first one's), at the same instants; the caller dialled `queue`
    instead of the first agent's `number`.  Returns the events and the uuids now used."""
    events = data["events"]
    caller = header(events[0], "Unique-ID")
    own = _tokens(events, lambda ev: header(ev, "Unique-ID") == leg)
    shared = _tokens(events, lambda ev: header(ev, "Unique-ID") != leg) - {leg}
    fresh = sorted(own - shared, key=lambda t: int(TOKEN_UUID_RE.match(t).group(1)))
    n = data["uuids"]
    renames = {t: f"~~U{n + i}~~" for i, t in enumerate(fresh)}
    dialled = {"Caller-Destination-Number", "variable_sip_to_user", "variable_sip_req_user",
               "variable_destination_number", "Caller-RDNIS", "Other-Leg-Destination-Number"}
    ring_all = f"user/{number}@127.0.0.1"

    def as_queue(name: str, value: str) -> str:
        if name in dialled and value == number:
            return queue
        if name in ("variable_sip_to_uri", "variable_sip_req_uri") and value.startswith(number + "@"):
            return queue + value[len(number):]
        return value.replace(ring_all, f"user/{moves[number]}@127.0.0.1,{ring_all}")

    second = _replace({**renames, **moves})
    out = []
    for ev in events:
        uuid = header(ev, "Unique-ID")
        if uuid == caller:
            ev = _map_values(ev, as_queue)
        elif uuid == leg:
            ev = _map_values(ev, lambda name, v: queue if name == "Other-Leg-Destination-Number" and v == number else v)
        out.append(ev)
        if uuid == leg:
            out.append(_map_values(ev, second))
    return out, n + len(fresh)


# --- a second call during the first -----------------------------------------------------------


def overlay(first: dict, second: dict, at: float, moves: dict[str, str]) -> tuple[list, int]:
    """`second`'s events `at` seconds into `first`, with its own uuids and `moves` applied
    (its numbers and addresses made another caller's and agent's)."""
    n = first["uuids"]
    renames = {f"~~U{i}~~": f"~~U{n + i}~~" for i in range(second["uuids"])}
    change = _replace({**renames, **moves})
    later = [_shift(_map_values(ev, change), at) for ev in second["events"]]
    return _sorted(first["events"] + later), n + second["uuids"]


# --- a phone registered with another Contact user ------------------------------------------------


def contact_alias(events: list, leg: str, number: str, address: str, alias: str) -> list:
    """The agent leg `leg` rings a phone registered as `alias` (Contact: <sip:alias@address>)
    for user `number`: its Channel-Name and dialled number say the alias, its
    variable_dialed_user and Channel-Presence-ID still say the user (1.10.12-b README)."""
    contact = {f"{number}@{address}": f"{alias}@{address}"}
    dialled = {"Caller-Destination-Number", "Caller-Callee-ID-Number"}

    def on_leg(name: str, value: str) -> str:
        if name in dialled and value == number:
            return alias
        return _replace(contact)(name, value)

    def towards_leg(name: str, value: str) -> str:
        if name in ("Other-Leg-Destination-Number", "Other-Leg-Callee-ID-Number") and value == number:
            return alias
        return _replace(contact)(name, value)

    out = []
    for ev in events:
        if header(ev, "Unique-ID") == leg:
            ev = _map_values(ev, on_leg)
        elif header(ev, "Other-Leg-Unique-ID") == leg:
            ev = _map_values(ev, towards_leg)
        out.append(ev)
    return out
