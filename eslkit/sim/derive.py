"""Derive the simulator's scenario files from real FreeSWITCH transcripts.

    python -m eslkit.sim.derive tests/data/fs-captures/1.10.12

writes ``eslkit/sim/scenarios/*.json.gz``: one scenario per call flow of the
captures there and in ``../1.10.12-b`` (queue, noanswer, fifo, ...), the flows
built from them (busy, busy-queue, abandon, call-waiting, contact-alias,
callcenter: see `eslkit.sim.construct`), and ``api.json.gz``.  Each scenario
keeps the captured call's events exactly (names, header names, order, count,
values), with the parts that must be fresh on every run replaced by tokens the
runtime fills in:

    ~~U3~~          the 4th distinct UUID of the call (a new uuid4 per run)
    ~~CORE~~        the simulator's Core-UUID
    ~~SEQ~~         Event-Sequence (one counter for the whole switch)
    ~~US<off>~~     a microsecond epoch, <off> µs after the call's start
    ~~S<off>~~      the same in whole seconds (``*_epoch``)
    ~~LOCAL<off>~~ / ~~GMT<off>~~ / ~~RFC<off>~~   the dates FreeSWITCH writes
    ~~CALLER~~ ~~CALLERB~~ ~~AGENT1~~ ~~AGENT2~~   6208, 6209, 1001, 1002 (the load generator varies them)

``~`` and the letters and digits are left alone by FreeSWITCH's URL encoding
and by JSON, so a token survives serialisation and is filled in on the bytes.
"""

from __future__ import annotations

import calendar
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from eslkit.protocol import ApiResponse, EventFrame, Parser
from eslkit.sim import construct
from eslkit.sim.data import write_data


UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
LOCAL_RE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
GMT_RE = re.compile(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT")
RFC_RE = re.compile(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000")
NUMBERS = {"6208": "~~CALLER~~", "6209": "~~CALLERB~~", "1001": "~~AGENT1~~", "1002": "~~AGENT2~~"}
NUMBER_RE = re.compile(r"(?<![0-9])(6208|6209|1001|1002)(?![0-9])")
# Periodic switch events that happened to fall inside the recorded call.
NOT_THE_CALL = {"HEARTBEAT", "RE_SCHEDULE"}
DAY_US = 86_400 * 1_000_000


class _Tokenizer:
    def __init__(self, base_us: int, core: str | None):
        self.base = base_us
        self.core = core
        self.uuids: dict[str, str] = {}

    def _uuid(self, m: re.Match) -> str:
        u = m.group(0)
        if u == self.core:
            return "~~CORE~~"
        if u not in self.uuids:
            self.uuids[u] = f"~~U{len(self.uuids)}~~"
        return self.uuids[u]

    def value(self, name: str, v: str) -> str:
        if name == "Event-Sequence":
            return "~~SEQ~~"
        if v.isdigit() and len(v) == 16 and abs(int(v) - self.base) < DAY_US:
            return f"~~US{int(v) - self.base}~~"
        if v.isdigit() and len(v) == 10 and abs(int(v) * 1_000_000 - self.base) < DAY_US:
            return f"~~S{int(v) * 1_000_000 - self.base}~~"
        v = UUID_RE.sub(self._uuid, v)
        v = LOCAL_RE.sub(lambda m: f"~~LOCAL{self._off(m.group(0), '%Y-%m-%d %H:%M:%S')}~~", v)
        v = GMT_RE.sub(lambda m: f"~~GMT{self._off(m.group(0), '%a, %d %b %Y %H:%M:%S GMT')}~~", v)
        v = RFC_RE.sub(lambda m: f"~~RFC{self._off(m.group(0), '%a, %d %b %Y %H:%M:%S +0000')}~~", v)
        return NUMBER_RE.sub(lambda m: NUMBERS[m.group(1)], v)

    def _off(self, text: str, fmt: str) -> int:
        # The capture machine runs on UTC, so its local dates are UTC too.
        return calendar.timegm(time.strptime(text, fmt)) * 1_000_000 - self.base


def call_events(raw: bytes) -> list[Any]:
    """The call's events from a transcript, without periodic switch events."""
    frames = Parser().feed(raw)
    return [f.event for f in frames if isinstance(f, EventFrame) and f.event.name not in NOT_THE_CALL]


def derive(raw: bytes, name: str, description: str, source: str) -> dict:
    return derive_with_tokens(raw, name, description, source)[0]


def derive_with_tokens(raw: bytes, name: str, description: str, source: str) -> tuple[dict, "_Tokenizer"]:
    """The scenario, and the tokenizer that knows which captured uuid became which token."""
    events = call_events(raw)
    base = min(int(e.get("Event-Date-Timestamp")) for e in events)
    tok = _Tokenizer(base, events[0].get("Core-UUID"))
    out = []
    for e in events:
        pairs = []
        for k, v in e.pairs():
            if isinstance(v, list):
                pairs.append([k, [tok.value(k, x) for x in v]])
            else:
                pairs.append([k, tok.value(k, v)])
        at = (int(e.get("Event-Date-Timestamp")) - base) / 1e6
        out.append({"at": round(at, 6), "headers": pairs, "body": e.body})
    data = {
        "name": name,
        "description": description,
        "source": source,
        "uuids": len(tok.uuids),
        # second-resolution dates were cut from times with this fraction of a second
        "start_fraction_us": base % 1_000_000,
        "events": out,
    }
    return data, tok


# --- busy: the no-answer call, refused with 486 Busy Here instead of cancelled ---------

BUSY_VALUES = {
    "ORIGINATOR_CANCEL": "USER_BUSY",
    "CANCEL": "BUSY",  # variable_DIALSTATUS
    "sip:487": "sip:486",
    "487": "486",
    "recv_cancel": "recv_refuse",
    "send_cancel": "send_refuse",
}
BUSY_RINGING_FOR = 1.0  # seconds the agent's phone rings before it answers 486


def busy_from_noanswer(noanswer: dict) -> dict:
    events = noanswer["events"]
    hangup_at = min(ev["at"] for ev in events if _name(ev) == "CHANNEL_HANGUP")
    shift = hangup_at - BUSY_RINGING_FOR
    agent = _header(next(ev for ev in events if _name(ev) == "CHANNEL_ORIGINATE"), "Unique-ID")
    before = [ev for ev in events if ev["at"] < hangup_at]
    after = [ev for ev in events if ev["at"] >= hangup_at]
    # A busy agent refuses first; the caller's leg follows with the same cause.
    after = [ev for ev in after if _header(ev, "Unique-ID") == agent] + [
        ev for ev in after if _header(ev, "Unique-ID") != agent
    ]
    out = []
    for ev in before + after:
        ev = json.loads(json.dumps(ev))
        if ev["at"] >= hangup_at:
            ev["at"] = round(ev["at"] - shift, 6)
        for pair in ev["headers"]:
            pair[1] = _shift_times(_busy_value(pair[1]), hangup_at, shift)
        out.append(ev)
    return {
        **noanswer,
        "name": "busy",
        "description": "6208 calls 1002 directly; 1002 is busy (486): USER_BUSY on both legs.",
        "source": noanswer["source"] + ", refused as busy",
        "events": out,
    }


def _busy_value(v):
    if isinstance(v, list):
        return [_busy_value(x) for x in v]
    if v in BUSY_VALUES:
        return BUSY_VALUES[v]
    v = v.replace("ORIGINATOR_CANCEL", "USER_BUSY").replace("sip:487", "sip:486")
    return v


TIME_TOKEN_RE = re.compile(r"~~(US|S|LOCAL|GMT|RFC)(-?\d+)~~")


def _shift_times(v, hangup_at: float, shift: float):
    """Move the times of the hang-up forward with it (second-resolution ones too)."""
    if isinstance(v, list):
        return [_shift_times(x, hangup_at, shift) for x in v]

    def move(m: re.Match) -> str:
        off = int(m.group(2))
        if off >= (hangup_at - 1.0) * 1e6:
            off -= int(shift * 1e6)
        return f"~~{m.group(1)}{off}~~"

    return TIME_TOKEN_RE.sub(move, v)


def _name(ev: dict) -> str:
    return _header(ev, "Event-Name") or ""


def _header(ev: dict, name: str):
    for k, v in ev["headers"]:
        if k == name:
            return v
    return None


# --- api bodies the simulator answers verbatim -------------------------------------------

STATIC_API = {"show modules": 0, "show api as json": 1, "help": 2}


def static_api(raw: bytes) -> dict:
    bodies = [f.text for f in Parser().feed(raw) if isinstance(f, ApiResponse)]
    return {cmd: bodies[i] for cmd, i in STATIC_API.items()}


DESCRIPTIONS = {
    "queue": ("scenario_queue_plain.raw",
              "Screen popup: 6208 calls queue 2000, which rings 1001 and 1002 at once; 1001 answers "
              "after 3 s, 1002's leg ends LOSE_RACE; the caller hangs up after 5 s of talk."),
    "noanswer": ("scenario_noanswer_plain.raw",
                 "6208 calls 1002 directly; it rings; the caller gives up after 6 s (ORIGINATOR_CANCEL)."),
}
# ../1.10.12-b: call-centre flows recorded on the same switch (its README says what each shows).
SECOND_SET = {
    "fifo": ("scenario_fifo_1002_plain.raw",
             "mod_fifo: 6208 calls 2000; the fifo answers at once and rings 1001 and 1002; 1002 answers "
             "after 3 s (1001's leg LOSE_RACE) and both legs' caller ID flips to 1002 / Outbound Call; "
             "the caller hangs up 5.6 s later."),
    "callcenter-loopback": ("scenario_callcenter_loopback_1002_plain.raw",
                            "mod_callcenter queue 2000 with loopback agent contacts (loopback/100X/public): "
                            "1001 and 1002 ring through loopback legs, 1002 answers after 3 s, the loopback "
                            "legs bow out (1001's phone leg ends ORIGINATOR_CANCEL); 6 s of talk."),
    "two-callers": ("scenario_two_callers_plain.raw",
                    "mod_callcenter queue 2000: 6208 and, a second later, 6209 call; both agents are "
                    "offered 6208, 1001 answers (1002's offer ends LOSE_RACE), then 1002 alone is offered "
                    "6209 and answers."),
    "blind-transfer": ("scenario_blind_transfer_plain.raw",
                       "6208 calls queue 2000 (ring-all 1001, 1002); 1001 answers, and 3 s later its leg is "
                       "transferred to 1002 (uuid_transfer -bleg 1002), which rings again and answers."),
    "hold": ("scenario_hold_plain.raw",
             "6208 calls queue 2000 (ring-all); 1001 answers, is put on hold 1.5 s later (uuid_hold) "
             "and taken off hold 2 s after that; the caller hangs up at 9.5 s."),
    "click-to-dial": ("scenario_agent_outbound_plain.raw",
                      "Click-to-dial: originate user/1001 &bridge(6208); 1001's phone rings with its own "
                      "caller ID, 1001 answers after 3 s, 6208 is dialled and answers 3 s later; 3 s of talk."),
}


def _leg(events: list, number: str) -> str:
    """The token of the agent leg placed to `number` (a number token)."""
    return next(_header(ev, "Unique-ID") for ev in events if _name(ev) == "CHANNEL_CREATE"
                and _header(ev, "Call-Direction") == "outbound" and _header(ev, "Caller-Destination-Number") == number)


AGENT_MOVES = {"~~AGENT2~~": "~~AGENT1~~", "127.0.0.1:5072": "127.0.0.1:5071"}
CALLER_MOVES = {"~~CALLER~~": "~~CALLERB~~", "127.0.0.1:5090": "127.0.0.1:5091"}
CONSTRUCTED = "constructed from "


def constructed(out: dict[str, dict]) -> dict[str, dict]:
    """The flows no capture holds, built from the ones derived (eslkit.sim.construct)."""
    queue, noanswer, two = out["queue.json"], out["noanswer.json"], out["two-callers.json"]
    built = {}
    caller = _header(two["events"][0], "Unique-ID")
    built["callcenter"] = construct.scenario(
        two, "callcenter", "mod_callcenter queue 2000: 6208 calls, 1001 and 1002 are offered the call, "
        "1001 answers after 3 s (1002's offer ends LOSE_RACE); 6 s of talk.",
        two["source"] + ", the 6208 call alone", construct.keep_call(two, caller), two["uuids"])
    built["busy-queue"] = construct.scenario(
        queue, "busy-queue", "6208 calls queue 2000 (ring-all): 1002's phone answers 486 Busy Here after "
        "1 s (USER_BUSY), 1001 answers after 3 s; 5 s of talk.",
        CONSTRUCTED + queue["source"] + ", 1002 refusing busy",
        construct.refuse_busy(queue["events"], _leg(queue["events"], "~~AGENT2~~"), 1.0), queue["uuids"])
    events, uuids = construct.ring_also(noanswer, _leg(noanswer["events"], "~~AGENT2~~"), "~~AGENT2~~", "2000",
                                        AGENT_MOVES)
    built["abandon"] = construct.scenario(
        noanswer, "abandon", "6208 calls queue 2000 (ring-all 1001 and 1002); nobody answers and the "
        "caller gives up after 6 s (ORIGINATOR_CANCEL): missed on both phones.",
        CONSTRUCTED + noanswer["source"] + ", ringing 1001 too", events, uuids)
    events, uuids = construct.overlay(queue, noanswer, 3.5, {**AGENT_MOVES, **CALLER_MOVES})
    built["call-waiting"] = construct.scenario(
        queue, "call-waiting", "Call waiting: 1001 answers 6208 (queue 2000); 0.5 s later 6209 calls 1001 "
        "directly, a second leg with the same Channel-Name, and gives up after 6 s.",
        CONSTRUCTED + queue["source"] + " and " + noanswer["source"], events, uuids)
    built["contact-alias"] = construct.scenario(
        queue, "contact-alias", "The queue call, with 1002's phone registered as Contact sip:97825064@…: "
        "its leg is sofia/internal/97825064@… and dials 97825064; only variable_dialed_user and "
        "Channel-Presence-ID say 1002.",
        CONSTRUCTED + queue["source"] + ", 1002 registered as 97825064",
        construct.contact_alias(queue["events"], _leg(queue["events"], "~~AGENT2~~"), "~~AGENT2~~",
                                "127.0.0.1:5072", "97825064"), queue["uuids"])
    return {f"{name}.json": data for name, data in built.items()}


def build_all(captures: Path) -> dict[str, dict]:
    """Every data file, by file name, from a directory of captures (and ../1.10.12-b)."""
    out = {}
    for folder, table in ((captures, DESCRIPTIONS), (captures.parent / "1.10.12-b", SECOND_SET)):
        for name, (capture, description) in table.items():
            out[f"{name}.json"] = derive((folder / capture).read_bytes(), name, description,
                                         f"FreeSWITCH 1.10.12 {capture}")
    out["busy.json"] = busy_from_noanswer(out["noanswer.json"])
    out.update(constructed(out))
    out["api.json"] = static_api((captures / "api_large_responses.raw").read_bytes())
    return out


def dump(data: dict) -> str:
    return json.dumps(data, indent=0, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    captures = Path(argv[1] if len(argv) > 1 else "tests/data/fs-captures/1.10.12")
    for filename, data in build_all(captures).items():
        write_data(Path(filename).stem, dump(data))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
