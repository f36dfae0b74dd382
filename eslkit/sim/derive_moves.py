"""Derive the simulator's moves from real FreeSWITCH transcripts: what the switch does when
an api command acts on a call (uuid_hold, uuid_transfer, uuid_kill, originate).

    python -m eslkit.sim.derive_moves tests/data/fs-captures

writes ``eslkit/sim/scenarios/moves.json.gz``.  A move is the captured events of a stretch of a
call, each tied to a role (``A``: the leg the command names, ``B``: the leg bridged to it,
``N``: a leg the move makes, ...) and cut into phases (``ring``, ``answer``, ...) that
`eslkit.sim.obey` starts when the command, a phone or a timer says so.  A step keeps the
captured event whole (tokens as in `eslkit.sim.derive`), and says which of its channel
headers and variables the event *changed* on its leg; the rest come, when the simulator
plays it, from the live leg it acts on (`eslkit.sim.legs`).  A changed value that was a
copy of another leg's value (the caller's number on the new leg's Other-Leg-* block) is
kept as that reference, so it is copied again from the live call.

The captures (../1.10.12-b README):

- ``hold``, ``unhold``: scenario_hold (``uuid_hold`` / ``uuid_hold off`` on 1001's leg);
- ``transfer``: scenario_blind_transfer (``uuid_transfer <1001's leg> -bleg 1002 XML public``);
- ``originate``: scenario_agent_outbound (``bgapi originate {…}user/1001 &bridge(…)``);
- ``hangup_owner``: scenario_hold's end (the leg that runs the bridge hangs up first);
  ``hangup_owner_out``: scenario_agent_outbound's end (the agent's leg, running the bridge);
- ``hangup_ringing``: scenario_blind_transfer, 1002's first leg, hung up while ringing;
- ``hangup_bleg``: built from two: the bridged leg that does not run the bridge hangs up as
  1001's leg does in scenario_blind_transfer, then the other as in scenario_hold's end.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Callable, Optional

from eslkit.sim.data import write_data
from eslkit.sim.derive import _Tokenizer, call_events
from eslkit.sim.legs import STANDARD, LegState, hangup_variables

SECOND_SET = "1.10.12-b"
NUMBER_TOKEN_RE = re.compile(r"~~(CALLER|CALLERB|AGENT1|AGENT2)~~")
PAST_TIME_RE = re.compile(r"~~(US|S|LOCAL|GMT|RFC)-\d+~~")
NUMBER_RE = re.compile(r"\d{3,9}")  # a number someone dialled (not a time, not a count)
# Worked out from the leg's own times when the simulator plays a hangup, never copied.
COMPUTED = {"variable_" + k for k in hangup_variables(LegState(""))} | {"Caller-Channel-Hold-Accum"}


class Capture:
    """One transcript's events, with each leg's headers as the switch had them before each event."""

    def __init__(self, folder: Path, name: str):
        self.name = name
        self.source = f"FreeSWITCH 1.10.12 {name}"
        self.events = call_events((folder / name).read_bytes())
        self.before: list[dict[str, LegState]] = []  # per event: every leg's state just before it
        states: dict[str, LegState] = {}
        for ev in self.events:
            self.before.append({u: s.copy() for u, s in states.items()})
            uuid = ev.get("Unique-ID")
            if uuid:
                states.setdefault(uuid, LegState(uuid)).absorb(_pairs(ev))

    def index(self, pick: Callable, start: int = 0) -> int:
        """The first event from `start` on for which pick(event) is true."""
        return next(i for i in range(start, len(self.events)) if pick(self.events[i]))

    def ts(self, i: int) -> int:
        return int(self.events[i].get("Event-Date-Timestamp"))


def _pairs(ev) -> list[tuple[str, str]]:
    return [(k, v if isinstance(v, str) else "|".join(v)) for k, v in ev.pairs()]


def named(name: str, **headers: str) -> Callable:
    def pick(ev) -> bool:
        return ev.name == name and all(ev.get(k.replace("_", "-")) == v for k, v in headers.items())
    return pick


Literal = Callable[[Optional[str], str, str], str]  # (role, header, tokenised value) -> value


def _as_is(role: Optional[str], name: str, value: str) -> str:
    return value


def steps(cap: Capture, start: int, stop: int, roles: dict[str, str], phase: str, *,
          keep: Callable = lambda i, ev: True, literal: Literal = _as_is,
          api: Optional[int] = None, marks: Optional[dict[int, str]] = None) -> list:
    """The events [start, stop) of the capture as steps of one phase.  ``roles`` maps
    capture uuids to role names; events of other legs are left out, switch events (API, …)
    kept; ``keep(i, event)`` drops more; ``literal`` turns captured values into the
    command's tokens; the events before ``api`` (the command's own API event, fired when the
    command returns) are sync; ``marks`` puts a marker step (``{"mark": …}``) before an event."""
    base = cap.ts(start)
    tok = _Tokenizer(base, cap.events[0].get("Core-UUID"))
    for uuid, role in roles.items():
        tok.uuids[uuid] = f"~~{role}~~"

    def tokenised(role: Optional[str], state: Optional[LegState]) -> dict[str, str]:
        if state is None:
            return {}
        return {k: literal(role, k, tok.value(k, v)) for k, v in
                list(state.headers.items()) + list(state.variables.items())}

    out = []
    for i in range(start, stop):
        at = round((cap.ts(i) - base) / 1e6, 6)
        if marks and i in marks:
            out.append({"phase": phase, "at": at, "mark": marks[i]})
        ev = cap.events[i]
        uuid = ev.get("Unique-ID")
        role = roles.get(uuid) if uuid else None
        if (uuid and role is None) or not keep(i, ev):
            continue
        pairs = [[k, literal(role, k, tok.value(k, v))] for k, v in _pairs(ev)]
        step = {"phase": phase, "role": role, "at": at, "sync": api is not None and i < api,
                "headers": pairs, "body": ev.body}
        if role is not None:
            states = {r: tokenised(r, cap.before[i].get(u)) for u, r in roles.items()}
            _diff(step, states.get(role, {}), states)
        out.append(step)
    return out


def _diff(step: dict, prev: dict[str, str], states: dict[str, dict]) -> None:
    """Which headers and variables the event changed on its leg (``prev``: the leg just
    before it, tokenised), and which changed values copy another leg's value."""
    role = step["role"]
    changed, vchanged, refs = [], [], {}
    variables = set()
    for k, v in step["headers"]:
        if k in STANDARD:
            continue
        if k.startswith("variable_"):
            variables.add(k)
        if prev.get(k) == v:
            continue
        (vchanged if k.startswith("variable_") else changed).append(k)
        ref = _reference(k, v, role, states)
        if ref:
            refs[k] = ref
    step["changed"] = changed
    step["vchanged"] = vchanged
    step["vdropped"] = [k for k in prev if k.startswith("variable_") and k not in variables] if variables else []
    step["vorder"] = _set_again([k for k, _ in step["headers"] if k.startswith("variable_")],
                                [k for k in prev if k.startswith("variable_")], set(vchanged))
    step["refs"] = refs


def _set_again(now: list[str], before: list[str], changed: set[str]) -> list[str]:
    """The variables the switch set again, in the order it set them: switch_channel_set_variable
    puts a variable it sets (even to the same value) at the end, so they are the tail of the
    event's variables from the first one out of the leg's earlier order, or changed."""
    position = {k: i for i, k in enumerate(before)}
    last = -1
    for i, k in enumerate(now):
        if k in changed or k not in position or position[k] < last:
            return now[i:]
        last = position[k]
    return []


def _suffix(name: str) -> str:
    for prefix in ("Caller-", "Other-Leg-", "variable_"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def _reference(k: str, v: str, role: str, states: dict[str, dict]) -> Optional[list]:
    """[role, header] of a leg whose value this changed value copies: only for values that
    name a party (a number, a name with one) or a past time, which the live call has its own of.  Another
    leg's same header first, then a header of the same kind (Other-Leg-X for Caller-X)."""
    if k in COMPUTED or not (NUMBER_TOKEN_RE.search(v) or PAST_TIME_RE.search(v) or NUMBER_RE.fullmatch(v)):
        return None
    ranked = []
    for r, headers in states.items():
        for name, value in headers.items():
            if value != v or (r == role and name == k):
                continue
            ranked.append(((r == role, name != k, _suffix(name) != _suffix(k)), r, name))
    if not ranked:
        return None
    _, r, name = min(ranked)
    return [r, name]


# --- the moves ------------------------------------------------------------------------------------


def _cause(cap: Capture, uuid: str, start: int, role: str, cause: str) -> Literal:
    """On the hung-up leg, its captured cause (and Q.850 code) become the command's; the
    switch, not the phone, says BYE."""
    code = next((ev.get("variable_hangup_cause_q850") for ev in cap.events[start:]
                 if ev.get("Unique-ID") == uuid and ev.get("variable_hangup_cause_q850")), None)

    def literal(r: Optional[str], name: str, value: str) -> str:
        if r != role:
            return value
        if value == cause and name in ("Hangup-Cause", "variable_hangup_cause"):
            return "~~CAUSE~~"
        if name == "variable_hangup_cause_q850" and value == code:
            return "~~QCODE~~"
        return "send_bye" if value == "recv_bye" else value

    return literal


def hold_moves(cap: Capture) -> dict:
    held = cap.index(named("CHANNEL_CALLSTATE", Channel_Call_State="HELD"))
    a = cap.events[held].get("Unique-ID")
    b = cap.events[cap.index(named("CHANNEL_HOLD"))].get("Other-Leg-Unique-ID")
    unheld = cap.index(named("CHANNEL_CALLSTATE", Channel_Call_State="UNHELD"))
    hangup = cap.index(named("CHANNEL_HANGUP", Hangup_Cause="NORMAL_CLEARING"))
    api_on = cap.index(lambda ev: ev.get("API-Command") == "uuid_hold")
    api_off = cap.index(lambda ev: ev.get("API-Command") == "uuid_hold", api_on + 1)
    not_api = lambda i, ev: ev.name != "API"  # noqa: E731  (the simulator fires the command's own)
    roles = {a: "A", b: "B"}
    return {
        "hold": _move(cap, "uuid_hold <A>: A on hold, B hears the hold music",
                      steps(cap, held, unheld, roles, "hold", keep=not_api, api=api_on)),
        "unhold": _move(cap, "uuid_hold off <A>", steps(cap, unheld, hangup, roles, "unhold", keep=not_api,
                                                        api=api_off)),
    }


def hangup_owner(cap: Capture, description: str) -> dict:
    """From the call's end to the end: K (the leg running the bridge) hangs up, then P."""
    first = cap.index(named("CHANNEL_HANGUP", Hangup_Cause="NORMAL_CLEARING"))
    k = cap.events[first].get("Unique-ID")
    p = cap.events[first].get("Other-Leg-Unique-ID")
    return _move(cap, description, steps(cap, first, len(cap.events), {k: "K", p: "P"}, "hangup",
                                         literal=_cause(cap, k, first, "K", "NORMAL_CLEARING")))


def transfer_moves(cap: Capture) -> dict:
    api = cap.index(lambda ev: ev.get("API-Command") == "uuid_transfer")
    a = cap.events[api].get("API-Command-Argument").split()[0]
    b = next(ev.get("Other-Leg-Unique-ID") for ev in reversed(cap.events[:api]) if ev.get("Unique-ID") == a
             and ev.get("Other-Leg-Unique-ID"))
    created = cap.index(lambda ev: ev.name == "CHANNEL_OUTGOING" and ev.get("Unique-ID") not in (a, b), api)
    n = cap.events[created].get("Unique-ID")
    answer = cap.index(lambda ev: ev.name == "CODEC" and ev.get("Unique-ID") == n, created)
    end = cap.index(named("CHANNEL_HANGUP"), answer)
    roles = {a: "A", b: "B", n: "N"}

    def dest(role: Optional[str], name: str, value: str) -> str:
        value = value.replace("~~AGENT2~~", "~~DEST~~")
        if value == "public" and name in ("Caller-Context", "Other-Leg-Context") and role in ("B", "N"):
            return "~~CONTEXT~~"
        return value.replace("/public/XML", "/~~CONTEXT~~/XML")

    not_api = lambda i, ev: i != api  # noqa: E731
    moves = {"transfer": _move(cap, "uuid_transfer <A> -bleg DEST XML CONTEXT: A hangs up, B goes to DEST "
                                    "through the dialplan, which rings N; N answers",
                               steps(cap, api, answer, roles, "transfer", keep=not_api, literal=dest, api=api)
                               + steps(cap, answer, end, roles, "answer", literal=dest),
                               phases={"transfer": api, "answer": answer})}
    # The bridged leg that does not run the bridge hangs up as A does here, and the one that
    # does ends its bridge (its first UNBRIDGE and EXECUTE_COMPLETE): `hangup_bleg` begins so.
    b_first = [i for i in range(api, answer) if cap.events[i].get("Unique-ID") == b
               and cap.events[i].name in ("CHANNEL_UNBRIDGE", "CHANNEL_EXECUTE_COMPLETE")][:2]
    moves["_bleg"] = steps(cap, api, answer, {a: "K", b: "P"}, "hangup",
                           keep=lambda i, ev: i != api and (ev.get("Unique-ID") == a or i in b_first),
                           literal=_cause(cap, a, api, "K", "NORMAL_CLEARING"))
    # 1002's first leg, hung up while it rang (LOSE_RACE when 1001 answered).
    lost = cap.index(named("CHANNEL_HANGUP", Hangup_Cause="LOSE_RACE"))
    r = cap.events[lost].get("Unique-ID")
    moves["hangup_ringing"] = _move(cap, "uuid_kill <K> while it rings", steps(
        cap, lost, api, {r: "K"}, "hangup", literal=_cause(cap, r, lost, "K", "LOSE_RACE")))
    return moves


# The agent's own caller ID on its leg comes from the command's origination_caller_id_*.
_CID_NUMBER = ("Caller-Caller-ID-Number", "Caller-Orig-Caller-ID-Number", "Caller-ANI")


def originate_move(cap: Capture) -> dict:
    api = cap.index(lambda ev: ev.get("API-Command") == "originate")
    a = cap.events[cap.index(named("CHANNEL_OUTGOING"))].get("Unique-ID")
    f = cap.events[cap.index(lambda ev: ev.name == "CHANNEL_OUTGOING" and ev.get("Unique-ID") != a)].get("Unique-ID")
    answer = cap.index(lambda ev: ev.name == "CODEC" and ev.get("Unique-ID") == a)
    far_answer = cap.index(lambda ev: ev.name == "CODEC" and ev.get("Unique-ID") == f)
    end = cap.index(named("CHANNEL_HANGUP", Hangup_Cause="NORMAL_CLEARING"))
    job = cap.index(named("BACKGROUND_JOB"))
    roles = {a: "A", f: "F"}

    def cid(role: Optional[str], name: str, value: str) -> str:
        if role == "A" and name in _CID_NUMBER and value == "~~AGENT1~~":
            return "~~CIDNUM~~"
        # the name the command gave, and the far party as its &bridge() named it
        value = value.replace("Agent ~~AGENT1~~", "~~CIDNAME~~")
        return value.replace("sofia/external/~~CALLER~~@127.0.0.1:5090", "~~ENDPOINT~~")

    not_command = lambda i, ev: i not in (api, job)  # noqa: E731  (the simulator's bgapi fires those)
    return _move(cap, "originate {…}user/EXT &bridge(ENDPOINT): A (the agent's phone) rings and answers, "
                      "then F (the far party) rings and answers",
                 steps(cap, 0, answer, roles, "ring", keep=not_command, literal=cid)
                 + steps(cap, answer, far_answer, roles, "answer", keep=not_command, literal=cid, marks={api: "job"})
                 + steps(cap, far_answer, end, roles, "far_answer", keep=not_command, literal=cid),
                 phases={"ring": 0, "answer": answer, "far_answer": far_answer})


def _move(cap: Capture, description: str, steps_: list, source: Optional[str] = None,
          phases: Optional[dict[str, int]] = None) -> dict:
    """``phases``: the index of each phase's first event, for the seconds between them."""
    out = {"description": description, "source": source or cap.source}
    if phases:
        first = min(phases.values())
        out["phases"] = {name: round((cap.ts(i) - cap.ts(first)) / 1e6, 6) for name, i in phases.items()}
    out["steps"] = steps_
    return out


# What P's UNBRIDGE and EXECUTE_COMPLETE change when its bridge ends (in the capture they
# also carry the transfer that ended it: those changes are not a hangup's).
_BRIDGE_ENDS = {"Bridge-A-Unique-ID", "Bridge-B-Unique-ID", "Application", "Application-Data",
                "Application-Response", "Application-UUID", "variable_bridge_hangup_cause"}


def _bleg(first: list, owner: list) -> list:
    """K (bridged, not running the bridge) hangs up, then P (running it) as the owner K of
    `hangup_owner` does, but for its UNBRIDGE and EXECUTE_COMPLETE, already in `first`;
    P's cause is the bridge's end, NORMAL_CLEARING."""
    for s in first:
        if s["role"] == "P":
            s["changed"] = [k for k in s["changed"] if k in _BRIDGE_ENDS]
            s["vchanged"] = [k for k in s["vchanged"] if k in _BRIDGE_ENDS]
            s["refs"] = {k: v for k, v in s["refs"].items() if k in _BRIDGE_ENDS}
    after = max(s["at"] for s in first) + 0.02
    swap = {"K": "P", "P": "K"}
    tail = []
    for s in owner:
        if s["role"] != "K" or _name(s) in ("CHANNEL_UNBRIDGE", "CHANNEL_EXECUTE_COMPLETE"):
            continue
        s = json.loads(json.dumps(s))
        s["role"] = "P"
        s["at"] = round(after + s["at"], 6)
        s["headers"] = [[k, v.replace("~~CAUSE~~", "NORMAL_CLEARING").replace("~~QCODE~~", "16")]
                        for k, v in s["headers"]]
        s["headers"] = [[k, v.replace("~~K~~", "~~_~~").replace("~~P~~", "~~K~~").replace("~~_~~", "~~P~~")]
                        for k, v in s["headers"]]
        s["refs"] = {k: [swap.get(r, r), h] for k, (r, h) in s["refs"].items()}
        tail.append(s)
    return first + tail


def build(captures: Path) -> dict:
    folder = captures / SECOND_SET if (captures / SECOND_SET).is_dir() else captures
    hold = Capture(folder, "scenario_hold_plain.raw")
    transfer = Capture(folder, "scenario_blind_transfer_plain.raw")
    outbound = Capture(folder, "scenario_agent_outbound_plain.raw")
    moves = {}
    moves.update(hold_moves(hold))
    moves.update(transfer_moves(transfer))
    moves["originate"] = originate_move(outbound)
    moves["hangup_owner"] = hangup_owner(hold, "uuid_kill <K>, K runs the bridge (a caller's leg): K, then P")
    moves["hangup_owner_out"] = hangup_owner(outbound, "uuid_kill <K>, K runs the bridge (an agent's "
                                                       "click-to-dial leg): K, then P")
    moves["hangup_bleg"] = _move(transfer, "uuid_kill <K>, K bridged to P, P runs the bridge: K hangs up, "
                                           "P's bridge ends and P hangs up (hangup_after_bridge)",
                                 _bleg(moves.pop("_bleg"), moves["hangup_owner"]["steps"]),
                                 source=f"{transfer.source} and {hold.source}")
    return {"moves": dict(sorted(moves.items()))}


def _name(step: dict) -> str:
    return next(v for k, v in step["headers"] if k == "Event-Name")


def dump(data: dict) -> str:
    return json.dumps(data, indent=0, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    captures = Path(argv[1] if len(argv) > 1 else "tests/data/fs-captures")
    write_data("moves", dump(build(captures)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
