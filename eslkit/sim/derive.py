"""Derive the simulator's scenario files from real FreeSWITCH transcripts.

    python -m eslkit.sim.derive tests/data/fs-captures/1.10.12

writes ``eslkit/sim/scenarios/{queue,noanswer,busy}.json`` and
``eslkit/sim/scenarios/api.json``.  Each scenario keeps the captured call's
events exactly (names, header names, order, count, values), with the parts
that must be fresh on every run replaced by tokens the runtime fills in:

    ~~U3~~          the 4th distinct UUID of the call (a new uuid4 per run)
    ~~CORE~~        the simulator's Core-UUID
    ~~SEQ~~         Event-Sequence (one counter for the whole switch)
    ~~US<off>~~     a microsecond epoch, <off> µs after the call's start
    ~~S<off>~~      the same in whole seconds (``*_epoch``)
    ~~LOCAL<off>~~ / ~~GMT<off>~~ / ~~RFC<off>~~   the dates FreeSWITCH writes
    ~~CALLER~~ ~~AGENT1~~ ~~AGENT2~~   6208, 1001, 1002 (the load generator varies them)

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

HERE = Path(__file__).parent / "scenarios"

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
LOCAL_RE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
GMT_RE = re.compile(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT")
RFC_RE = re.compile(r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000")
NUMBERS = {"6208": "~~CALLER~~", "1001": "~~AGENT1~~", "1002": "~~AGENT2~~"}
NUMBER_RE = re.compile(r"(?<![0-9])(6208|1001|1002)(?![0-9])")
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


def build_all(captures: Path) -> dict[str, dict]:
    """Every data file, by file name, from a directory of captures."""
    out = {}
    for name, (capture, description) in DESCRIPTIONS.items():
        out[f"{name}.json"] = derive((captures / capture).read_bytes(), name, description,
                                     f"FreeSWITCH 1.10.12 {capture}")
    out["busy.json"] = busy_from_noanswer(out["noanswer.json"])
    out["api.json"] = static_api((captures / "api_large_responses.raw").read_bytes())
    return out


def dump(data: dict) -> str:
    return json.dumps(data, indent=0, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    captures = Path(argv[1] if len(argv) > 1 else "tests/data/fs-captures/1.10.12")
    HERE.mkdir(exist_ok=True)
    for filename, data in build_all(captures).items():
        (HERE / filename).write_text(dump(data), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
