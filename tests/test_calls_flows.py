"""Every real call flow in the captures, every extension, every wire format: exactly the
popups the captures' READMEs describe (tests/data/fs-captures/README.md and
1.10.12-b/README.md), through `eslkit popup --ext N --format json --replay CAPTURE`.

The expectations below were written by hand from the READMEs' table and the events
themselves (hangup causes, the party on each agent leg), not from the tracker's output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from eslkit import cli
from eslkit.calls import CallTracker, popup_record
from eslkit.protocol import EventFrame, Parser

DATA = Path(__file__).parent / "data" / "fs-captures"
EXTS = ("1001", "1002")
CALLER = ("6208", "Caller 6208")
CALLER_B = ("6209", "Caller 6209")
# What is compared: what the agent sees and how the call ended.
KEYS = ("state", "outcome", "hangup_cause", "caller_number", "caller_name", "direction", "other_number",
        "other_name", "on_hold", "transferred_from")


def rec(state, outcome=None, cause=None, *, caller=CALLER, direction="incoming", other=None, on_hold=False,
        transferred_from=None):
    """One expected record; for an incoming call the party the agent talks to is the caller."""
    other = caller if other is None and direction == "incoming" else (other or (None, None))
    return {"state": state, "outcome": outcome, "hangup_cause": cause, "caller_number": caller[0],
            "caller_name": caller[1], "direction": direction, "other_number": other[0], "other_name": other[1],
            "on_hold": on_hold, "transferred_from": transferred_from}


def answered_call(cause="NORMAL_CLEARING", **kw):
    return [rec("ringing", **kw), rec("answered", **kw), rec("ended", "answered", cause, **kw)]


def lost_race(cause="LOSE_RACE", **kw):
    return [rec("ringing", **kw), rec("ended", "answered_elsewhere", cause, **kw)]


# The agent's own phone rings for a click-to-dial with the agent's own caller ID; the far
# party (6208) is known once the switch dials it, right after the agent picks up.
AGENT_1001 = ("1001", "Agent 1001")
TO_6208 = ("6208", None)

EXPECTED = {
    # ../1.10.12: ring-all dialplan bridge, a direct call, the popup-style filtered connection
    "1.10.12/scenario_queue_plain.raw": {"1001": answered_call(), "1002": lost_race()},
    "1.10.12/scenario_queue_json.raw": {"1001": answered_call(), "1002": lost_race()},
    "1.10.12/scenario_queue_xml.raw": {"1001": answered_call(), "1002": lost_race()},
    "1.10.12/scenario_noanswer_plain.raw": {
        "1001": [], "1002": [rec("ringing"), rec("ended", "missed", "ORIGINATOR_CANCEL")]},
    # only Caller-Destination-Number 1001 passed the filter: 1002 sees nothing of it
    "1.10.12/scenario_queue_plain_filtered_1001_with_api.raw": {"1001": answered_call(), "1002": []},
    # ../1.10.12-b
    "1.10.12-b/scenario_fifo_1002_plain.raw": {"1001": lost_race(), "1002": answered_call()},
    "1.10.12-b/scenario_fifo_1002_json.raw": {"1001": lost_race(), "1002": answered_call()},
    # the losing agent's phone leg ends ORIGINATOR_CANCEL (its loopback legs LOSE_RACE)
    "1.10.12-b/scenario_callcenter_loopback_1002_plain.raw": {
        "1001": lost_race("ORIGINATOR_CANCEL"), "1002": answered_call()},
    "1.10.12-b/scenario_two_callers_plain.raw": {
        "1001": answered_call(),
        "1002": lost_race() + answered_call(caller=CALLER_B)},
    # 1001 answers, then its leg is transferred to 1002 (uuid_transfer -bleg): a new 1002 leg
    "1.10.12-b/scenario_blind_transfer_plain.raw": {
        "1001": answered_call(),
        "1002": lost_race() + answered_call(transferred_from="1001")},
    "1.10.12-b/scenario_hold_plain.raw": {
        "1001": [rec("ringing"), rec("answered"), rec("answered", on_hold=True), rec("answered"),
                 rec("ended", "answered", "NORMAL_CLEARING")],
        "1002": lost_race()},
    "1.10.12-b/scenario_agent_outbound_plain.raw": {
        "1001": [rec("ringing", caller=AGENT_1001, direction="outgoing"),
                 rec("answered", caller=AGENT_1001, direction="outgoing"),
                 rec("answered", caller=AGENT_1001, direction="outgoing", other=TO_6208),
                 rec("ended", "answered", "NORMAL_CLEARING", caller=AGENT_1001, direction="outgoing",
                     other=TO_6208)],
        "1002": []},
}

CASES = [(capture, ext) for capture in EXPECTED for ext in EXTS]


def events(capture: str) -> list:
    parser = Parser()
    frames = parser.feed((DATA / capture).read_bytes()) + parser.feed(b"")
    return [f.event for f in frames if isinstance(f, EventFrame)]


def shown(records) -> list[dict]:
    return [{k: r[k] for k in KEYS} for r in records]


@pytest.fixture
def popup_json(capsys, monkeypatch):
    """`eslkit popup --ext EXT --format json --replay CAPTURE` through the real entry point."""

    def run(capture: str, ext: str) -> list[dict]:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["eslkit", "popup", "--ext", ext, "--format", "json",
                                          "--replay", str(DATA / capture)])
        try:
            cli.main()
        except SystemExit as exc:
            assert not exc.code, capsys.readouterr().err
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return [json.loads(line) for line in out.splitlines()]

    return run


def test_every_capture_with_calls_is_covered():
    have = {f"{p.parent.name}/{p.name}" for p in DATA.glob("*/scenario_*.raw")}
    assert have == set(EXPECTED)
    for capture in EXPECTED:  # and each of the captures this table claims is there (bytes as recorded)
        assert events(capture)


@pytest.mark.parametrize("capture,ext", CASES)
def test_popup_for_every_capture_and_extension(popup_json, capture, ext):
    records = popup_json(capture, ext)
    assert {r["ext"] for r in records} <= {ext}
    assert shown(records) == EXPECTED[capture][ext]


@pytest.mark.parametrize("capture", list(EXPECTED))
def test_following_every_agent_gives_the_same_popups(capture):
    """`relay` follows every agent at once (no --ext): the same records per extension,
    and none for anyone else (the far party of a click-to-dial is not an agent)."""
    tracker = CallTracker(None)
    got: dict[str, list] = {}
    owners = set()
    for event in events(capture):
        for leg in tracker.feed(event):
            got.setdefault(leg.ext, []).append(popup_record(leg))
        owners.add(tracker.ext_for(event))  # where relay publishes the event itself
    assert set(got) <= set(EXTS)
    assert owners <= {None, *EXTS}
    for ext in EXTS:
        assert shown(got.get(ext, [])) == EXPECTED[capture][ext], ext


@pytest.mark.parametrize("capture", list(EXPECTED))
def test_records_always_carry_the_new_fields_and_one_kind_of_number(capture):
    tracker = CallTracker(None)
    for event in events(capture):
        for leg in tracker.feed(event):
            record = popup_record(leg)
            assert record["direction"] in ("incoming", "outgoing")
            assert isinstance(record["on_hold"], bool)
            for key in ("ring_seconds", "talk_seconds"):
                assert record[key] is None or type(record[key]) is float, (key, record[key])


# --- when, what was dialled, which queue, how long, which legs: by hand from the events -----

# Per record: (state, time of day the state began, dialed, queue, ring_seconds, talk_seconds,
# the caller whose leg is the call, which of the extension's phone legs it is).  The times are
# the Event-Date-Timestamp / Caller-Channel-*-Time values quoted; `call_uuid` is the Unique-ID
# of that caller's sofia/external leg (the agent's own leg for click-to-dial), `leg_uuid` the
# Unique-ID of the extension's Nth sofia/internal leg.  A ring group has no queue module: the
# number dialled (2000) is in `dialed`, `queue` stays null (docs/popup.md).
DETAILS = {
    # created 883.527556, 1001 answered 886.527550, 1002 LOSE_RACE 886.547551, 1001 hangup 891.567568
    "1.10.12/scenario_queue_plain.raw": {
        "1001": [("ringing", "04:38:03.527", "2000", None, None, None, "6208", 0),
                 ("answered", "04:38:06.527", "2000", None, 3.0, None, "6208", 0),
                 ("ended", "04:38:11.567", "2000", None, 3.0, 5.0, "6208", 0)],
        "1002": [("ringing", "04:38:03.527", "2000", None, None, None, "6208", 0),
                 ("ended", "04:38:06.547", "2000", None, 3.0, None, "6208", 0)]},
    # created 909.667588, answered 912.687550, hangup 917.727554 (1002: 912.687550)
    "1.10.12/scenario_queue_json.raw": {
        "1001": [("ringing", "04:38:29.667", "2000", None, None, None, "6208", 0),
                 ("answered", "04:38:32.687", "2000", None, 3.0, None, "6208", 0),
                 ("ended", "04:38:37.727", "2000", None, 3.0, 5.0, "6208", 0)],
        "1002": [("ringing", "04:38:29.667", "2000", None, None, None, "6208", 0),
                 ("ended", "04:38:32.687", "2000", None, 3.0, None, "6208", 0)]},
    # created 935.827555, answered 938.827569, hangup 943.867557 (1002: 938.847557)
    "1.10.12/scenario_queue_xml.raw": {
        "1001": [("ringing", "04:38:55.827", "2000", None, None, None, "6208", 0),
                 ("answered", "04:38:58.827", "2000", None, 3.0, None, "6208", 0),
                 ("ended", "04:39:03.867", "2000", None, 3.0, 5.0, "6208", 0)],
        "1002": [("ringing", "04:38:55.827", "2000", None, None, None, "6208", 0),
                 ("ended", "04:38:58.847", "2000", None, 3.0, None, "6208", 0)]},
    # 6208 dials 1002: created 895.587553, ORIGINATOR_CANCEL 901.647576
    "1.10.12/scenario_noanswer_plain.raw": {
        "1002": [("ringing", "04:38:15.587", "1002", None, None, None, "6208", 0),
                 ("ended", "04:38:21.647", "1002", None, 6.1, None, "6208", 0)]},
    # 437.174328 → 440.194315 → 446.234334 (only 1001's leg passed the filter: no caller leg seen,
    # its Channel-Call-UUID / Other-Leg-Unique-ID name the caller)
    "1.10.12/scenario_queue_plain_filtered_1001_with_api.raw": {
        "1001": [("ringing", "04:47:17.174", "2000", None, None, None, "other", 0),
                 ("answered", "04:47:20.194", "2000", None, 3.0, None, "other", 0),
                 ("ended", "04:47:26.234", "2000", None, 3.0, 6.0, "other", 0)]},
    # mod_fifo 2000: agent legs created 528.722126; 1002 answered 531.722127, hung up 537.342139;
    # 1001 LOSE_RACE 531.762124
    "1.10.12-b/scenario_fifo_1002_plain.raw": {
        "1001": [("ringing", "11:28:48.722", "2000", "2000", None, None, "6208", 0),
                 ("ended", "11:28:51.762", "2000", "2000", 3.0, None, "6208", 0)],
        "1002": [("ringing", "11:28:48.722", "2000", "2000", None, None, "6208", 0),
                 ("answered", "11:28:51.722", "2000", "2000", 3.0, None, "6208", 0),
                 ("ended", "11:28:57.342", "2000", "2000", 3.0, 5.6, "6208", 0)]},
    # created 559.722126; 1002 answered 562.722124, hung up 568.022127; 1001 LOSE_RACE 562.762125
    "1.10.12-b/scenario_fifo_1002_json.raw": {
        "1001": [("ringing", "11:29:19.722", "2000", "2000", None, None, "6208", 0),
                 ("ended", "11:29:22.762", "2000", "2000", 3.0, None, "6208", 0)],
        "1002": [("ringing", "11:29:19.722", "2000", "2000", None, None, "6208", 0),
                 ("answered", "11:29:22.722", "2000", "2000", 3.0, None, "6208", 0),
                 ("ended", "11:29:28.022", "2000", "2000", 3.0, 5.3, "6208", 0)]},
    # mod_callcenter 2000@default, loopback contacts: the phones' legs carry Caller-Channel-
    # Created-Time 614.862131 (1002's CHANNEL_CREATE comes at 614.882117); 1002 answered
    # 617.882142, hung up 623.862134; 1001's phone ORIGINATOR_CANCEL 617.922131
    "1.10.12-b/scenario_callcenter_loopback_1002_plain.raw": {
        "1001": [("ringing", "11:30:14.862", "2000", "2000@default", None, None, "6208", 0),
                 ("ended", "11:30:17.922", "2000", "2000@default", 3.1, None, "6208", 0)],
        "1002": [("ringing", "11:30:14.882", "2000", "2000@default", None, None, "6208", 0),
                 ("answered", "11:30:17.882", "2000", "2000@default", 3.0, None, "6208", 0),
                 ("ended", "11:30:23.862", "2000", "2000@default", 3.0, 6.0, "6208", 0)]},
    # 6208's offers 347.942120: 1001 answered 350.942128, hung up 356.922127; 1002 LOSE_RACE
    # 350.962126; 6209 offered to 1002 351.062125, answered 355.562115, hung up 362.922125
    "1.10.12-b/scenario_two_callers_plain.raw": {
        "1001": [("ringing", "11:25:47.942", "2000", "2000@default", None, None, "6208", 0),
                 ("answered", "11:25:50.942", "2000", "2000@default", 3.0, None, "6208", 0),
                 ("ended", "11:25:56.922", "2000", "2000@default", 3.0, 6.0, "6208", 0)],
        "1002": [("ringing", "11:25:47.942", "2000", "2000@default", None, None, "6208", 0),
                 ("ended", "11:25:50.962", "2000", "2000@default", 3.0, None, "6208", 0),
                 ("ringing", "11:25:51.062", "2000", "2000@default", None, None, "6209", 1),
                 ("answered", "11:25:55.562", "2000", "2000@default", 4.5, None, "6209", 1),
                 ("ended", "11:26:02.922", "2000", "2000@default", 4.5, 7.4, "6209", 1)]},
    # created 315.862130; 1001 answered 318.882127, transferred away (hung up) 321.922126;
    # 1002's first leg LOSE_RACE 318.882127; its second leg created 321.922126 (the caller's leg,
    # same call, destination now 1002: dialled is still what the caller dialled, 2000),
    # answered 323.922244, hung up 326.402125
    "1.10.12-b/scenario_blind_transfer_plain.raw": {
        "1001": [("ringing", "11:25:15.862", "2000", None, None, None, "6208", 0),
                 ("answered", "11:25:18.882", "2000", None, 3.0, None, "6208", 0),
                 ("ended", "11:25:21.922", "2000", None, 3.0, 3.0, "6208", 0)],
        "1002": [("ringing", "11:25:15.862", "2000", None, None, None, "6208", 0),
                 ("ended", "11:25:18.882", "2000", None, 3.0, None, "6208", 0),
                 ("ringing", "11:25:21.922", "2000", None, None, None, "6208", 1),
                 ("answered", "11:25:23.922", "2000", None, 2.0, None, "6208", 1),
                 ("ended", "11:25:26.402", "2000", None, 2.0, 2.5, "6208", 1)]},
    # created 392.062130, 1001 answered 395.062125, held 396.642126, unheld 398.642126, hung up
    # 401.602146; 1002 LOSE_RACE 395.082125
    "1.10.12-b/scenario_hold_plain.raw": {
        "1001": [("ringing", "11:26:32.062", "2000", None, None, None, "6208", 0),
                 ("answered", "11:26:35.062", "2000", None, 3.0, None, "6208", 0),
                 ("answered", "11:26:36.642", "2000", None, 3.0, None, "6208", 0),
                 ("answered", "11:26:38.642", "2000", None, 3.0, None, "6208", 0),
                 ("ended", "11:26:41.602", "2000", None, 3.0, 6.5, "6208", 0)],
        "1002": [("ringing", "11:26:32.062", "2000", None, None, None, "6208", 0),
                 ("ended", "11:26:35.082", "2000", None, 3.0, None, "6208", 0)]},
    # click-to-dial: 1001's leg created 405.762131, answered 408.762145; the far leg (6208)
    # created 408.782119; 1001's CHANNEL_HANGUP 414.782127 (its Hangup-Time 414.802129)
    "1.10.12-b/scenario_agent_outbound_plain.raw": {
        "1001": [("ringing", "11:26:45.762", None, None, None, None, "own", 0),
                 ("answered", "11:26:48.762", None, None, 3.0, None, "own", 0),
                 ("answered", "11:26:48.782", "6208", None, 3.0, None, "own", 0),
                 ("ended", "11:26:54.782", "6208", None, 3.0, 6.0, "own", 0)]},
}


def legs_of(capture: str) -> tuple[dict, dict]:
    """Read straight from the events: each caller's sofia/external leg (by its number), and each
    extension's sofia/internal legs in the order they were created."""
    callers: dict[str, str] = {}
    phones: dict[str, list] = {}
    for e in events(capture):
        if e.event_name != "CHANNEL_CREATE":
            continue
        name = e.get("Channel-Name") or ""
        if name.startswith("sofia/external/") and e.direction == "inbound":
            callers[name.split("/")[2].split("@")[0]] = e.unique_id
        elif name.startswith("sofia/internal/"):
            phones.setdefault(name.split("/")[2].split("@")[0], []).append(e.unique_id)
            callers.setdefault("other", e.get("Channel-Call-UUID"))
    return callers, phones


def test_every_capture_has_its_details_checked():
    assert set(DETAILS) == set(EXPECTED)
    for capture, by_ext in DETAILS.items():
        for ext in EXTS:
            assert len(by_ext.get(ext, [])) == len(EXPECTED[capture][ext]), (capture, ext)


@pytest.mark.parametrize("capture,ext", [(c, e) for c in DETAILS for e in DETAILS[c]])
def test_times_number_dialled_queue_and_legs_of_every_record(popup_json, capture, ext):
    callers, phones = legs_of(capture)
    callers["own"] = phones.get(ext, [None])[0]
    day = "2026-11-26T" if capture.startswith("1.10.12/") else "2026-12-01T"  # the captures' dates (UTC)
    got = [(r["state"], r["time"], r["dialed"], r["queue"], r["ring_seconds"], r["talk_seconds"],
            r["call_uuid"], r["leg_uuid"]) for r in popup_json(capture, ext)]
    want = [(state, f"{day}{at}Z", dialed, queue, ring, talk, callers[caller], phones[ext][nth])
            for state, at, dialed, queue, ring, talk, caller, nth in DETAILS[capture][ext]]
    assert got == want


# --- calls already up when the tracker starts ------------------------------------------------


def frames(capture: str) -> list:
    parser = Parser()
    return parser.feed((DATA / capture).read_bytes()) + parser.feed(b"")


def test_a_call_already_up_appears_from_show_channels_and_ends_with_its_true_times():
    """A popup connecting while 1001 rings: the answer of `show channels as json` (the
    real one, asked at that moment in the capture) shows the call at once; the events
    that follow finish it with the times they carry."""
    from eslkit.calls import live_channels
    from eslkit.protocol import ApiResponse

    captured = frames("1.10.12/scenario_queue_plain_filtered_1001_with_api.raw")
    first_api = next(i for i, f in enumerate(captured) if isinstance(f, ApiResponse))
    rows = live_channels(captured[first_api].text)
    tracker = CallTracker({"1001"})
    got = [popup_record(leg) for leg in tracker.resync(rows, now=1795668438.75, known=tracker.known())]
    for frame in captured[first_api + 1:]:
        if isinstance(frame, EventFrame):
            got += [popup_record(leg) for leg in tracker.feed(frame.event)]
    caller, agent = rows[0]["uuid"], rows[1]["uuid"]
    assert [(r["state"], r["outcome"], r["caller_number"], r["caller_name"], r["dialed"], r["call_uuid"],
             r["leg_uuid"], r["direction"], r["other_number"]) for r in got] == [
        ("ringing", None, "6208", "Caller 6208", "2000", caller, agent, "incoming", "6208"),
        ("answered", None, "6208", "Caller 6208", "2000", caller, agent, "incoming", "6208"),
        ("ended", "answered", "6208", "Caller 6208", "2000", caller, agent, "incoming", "6208"),
    ]
    # Caller-Channel-Created/Answered/Hangup-Time: 437.174328, 440.194315, 446.234334
    assert [(r["ring_seconds"], r["talk_seconds"]) for r in got] == [(None, None), (3.0, None), (3.0, 6.0)]


def rows_after(capture: str, cut: int) -> list[dict]:
    """What `show channels as json` lists right after event `cut` of a capture: a row per
    channel up, its columns from that channel's latest event (`initial_*` from its
    CHANNEL_CREATE), its `call_uuid` as FreeSWITCH's core db keeps it (src/switch_core_sqldb.c,
    v1.10.12): the Channel-Call-UUID of its CHANNEL_ORIGINATE; on a CHANNEL_BRIDGE, both legs
    get the bridge event's; a CHANNEL_UNBRIDGE gives each its own uuid back."""
    created: dict[str, object] = {}
    last: dict[str, object] = {}
    call: dict[str, str] = {}
    gone: set = set()
    for e in events(capture)[:cut + 1]:
        uuid, name = e.unique_id, e.event_name
        if not uuid or not name.startswith("CHANNEL_") or uuid in gone:
            continue
        if name == "CHANNEL_CREATE":
            created.setdefault(uuid, e)
            call.setdefault(uuid, "")
        elif name == "CHANNEL_ORIGINATE":
            call[uuid] = e.call_uuid
        elif name == "CHANNEL_BRIDGE":
            for leg in (e.get("Bridge-A-Unique-ID"), e.get("Bridge-B-Unique-ID")):
                call[leg] = e.call_uuid
        elif name == "CHANNEL_UNBRIDGE":
            for leg, value in list(call.items()):
                if value == e.call_uuid:
                    call[leg] = leg
        last[uuid] = e
        if name == "CHANNEL_DESTROY":  # its row is deleted (the CS_DESTROY state event after it changes nothing)
            del last[uuid]
            gone.add(uuid)
    rows = []
    for uuid, e in last.items():
        f = created[uuid]
        rows.append({
            "uuid": uuid, "direction": e.direction, "name": e.get("Channel-Name"),
            "created_epoch": str(int(e.get("Caller-Channel-Created-Time")) // 1_000_000),
            "cid_name": e.get("Caller-Caller-ID-Name"), "cid_num": e.get("Caller-Caller-ID-Number"),
            "initial_cid_name": f.get("Caller-Caller-ID-Name"), "initial_cid_num": f.get("Caller-Caller-ID-Number"),
            "dest": e.get("Caller-Destination-Number"), "initial_dest": f.get("Caller-Destination-Number"),
            "presence_id": e.get("Channel-Presence-ID") or "", "callee_name": e.get("Caller-Callee-ID-Name") or "",
            "callee_num": e.get("Caller-Callee-ID-Number") or "", "callstate": e.get("Channel-Call-State"),
            "call_uuid": call.get(uuid, "")})
    return rows


@pytest.mark.parametrize("capture,ext,bridged_on", [
    ("1.10.12-b/scenario_two_callers_plain.raw", "1001", "caller"),  # mod_callcenter: BRIDGE on the caller's leg
    ("1.10.12-b/scenario_fifo_1002_plain.raw", "1002", "agent"),  # mod_fifo: BRIDGE on the agent's leg
])
def test_a_queue_call_already_up_shows_its_call_number_dialled_and_queue(capture, ext, bridged_on):
    """A popup connecting just after the queue bridged the caller to the agent: the rows of
    `show channels` have no variables, but the records must name the same call, number dialled
    and queue as when the whole call was seen (DETAILS), at the latest when it ends."""
    evs = events(capture)
    cut = next(i for i, e in enumerate(evs) if e.event_name == "CHANNEL_BRIDGE")
    bridge = evs[cut]
    rows = rows_after(capture, cut)
    caller = next(r["uuid"] for r in rows if r["direction"] == "inbound")
    assert (bridge.call_uuid == caller) == (bridged_on == "caller")
    tracker = CallTracker({ext})
    got = [popup_record(leg) for leg in tracker.resync(rows, now=bridge.timestamp, known=tracker.known())]
    for e in evs[cut + 1:]:
        got += [popup_record(leg) for leg in tracker.feed(e)]
    whole = [r for r in DETAILS[capture][ext] if r[0] != "ringing"]
    assert [r["state"] for r in got] == [r[0] for r in whole]
    assert {r["call_uuid"] for r in got} == {caller}  # one call, the caller's, on every record
    assert [r["dialed"] for r in got] == ["2000"] * len(got)
    assert got[-1]["queue"] == whole[-1][3]
    assert (got[-1]["outcome"], got[-1]["ring_seconds"], got[-1]["talk_seconds"]) == ("answered",) + whole[-1][4:6]


def test_a_call_already_up_ends_with_the_answer_time_its_own_leg_carries():
    """A popup connecting just after 1001 answered 6208 (two_callers: 350.942128), before
    mod_callcenter bridged them (351.002128): the rows have no answer time, and the bridge is
    not when 1001 answered.  1001's own hangup carries Caller-Channel-Answered-Time
    (created 347.942120, hung up 356.922127): 3.0 s ring, 6.0 s talk — not 3.1 and 5.9."""
    capture = "1.10.12-b/scenario_two_callers_plain.raw"
    evs = events(capture)
    cut = next(i for i, e in enumerate(evs) if e.event_name == "CHANNEL_BRIDGE") - 1
    assert evs[cut].timestamp > 1796124350.942128  # 1001 is answered, not yet bridged
    tracker = CallTracker({"1001"})
    got = [popup_record(leg) for leg in tracker.resync(rows_after(capture, cut), now=evs[cut].timestamp)]
    for e in evs[cut + 1:]:
        got += [popup_record(leg) for leg in tracker.feed(e)]
    assert [(r["state"], r["ring_seconds"], r["talk_seconds"]) for r in got] == [
        ("answered", None, None), ("ended", 3.0, 6.0)]


def test_a_mod_callcenter_offer_already_ringing_is_the_callers_call_from_its_next_event():
    """A popup connecting while mod_callcenter offers 6209 to 1002 (two_callers): the row of
    1002's leg names no caller (its call_uuid is its own: mod_callcenter originates agents on
    their own), so the ringing record cannot; the leg's next event carries
    variable_cc_member_session_uuid: from then on it is 6209's call, dialled 2000, queue 2000@default."""
    capture = "1.10.12-b/scenario_two_callers_plain.raw"
    evs = events(capture)
    callers, phones = legs_of(capture)
    offer = phones["1002"][1]
    cut = next(i for i, e in enumerate(evs) if e.unique_id == offer and e.event_name == "CHANNEL_ORIGINATE")
    rows = rows_after(capture, cut)
    assert next(r["call_uuid"] for r in rows if r["uuid"] == offer) == offer
    tracker = CallTracker({"1002"})
    got = [popup_record(leg) for leg in tracker.resync(rows, now=evs[cut].timestamp, known=tracker.known())]
    for e in evs[cut + 1:]:
        got += [popup_record(leg) for leg in tracker.feed(e)]
    assert [(r["state"], r["leg_uuid"], r["caller_number"]) for r in got] == [
        ("ringing", offer, "6209"), ("answered", offer, "6209"), ("ended", offer, "6209")]
    assert [(r["call_uuid"], r["dialed"], r["queue"]) for r in got[1:]] == [(callers["6209"], "2000", "2000@default")] * 2
    assert (got[-1]["ring_seconds"], got[-1]["talk_seconds"]) == (4.5, 7.4)


def test_loopback_contacts_already_ringing_show_the_phones_not_the_loopback_legs():
    """A popup for every agent connecting while mod_callcenter's loopback contacts ring both
    phones (callcenter_loopback_1002): the rows list loopback/100X-a and -b and the phones' legs,
    but not which -a pairs with which -b (their next events say).  Only the phones' legs are
    popups, with the outcomes of the whole call; once the call is known (the legs' next events)
    it is the caller's, dialled 2000, in queue 2000@default — never the loopback leg's
    destination (the agent's own number)."""
    capture = "1.10.12-b/scenario_callcenter_loopback_1002_plain.raw"
    evs = events(capture)
    callers, phones = legs_of(capture)
    cut = next(i for i, e in enumerate(evs) if e.unique_id == phones["1002"][0] and e.event_name == "CHANNEL_ORIGINATE")
    rows = rows_after(capture, cut)
    assert sum(r["name"].startswith("loopback/") for r in rows) == 4
    tracker = CallTracker(None)
    got = [popup_record(leg) for leg in tracker.resync(rows, now=evs[cut].timestamp, known=tracker.known())]
    for e in evs[cut + 1:]:
        got += [popup_record(leg) for leg in tracker.feed(e)]
    for ext in EXTS:
        mine = [r for r in got if r["ext"] == ext]
        assert [(r["state"], r["outcome"]) for r in mine] == [(r["state"], r["outcome"]) for r in EXPECTED[capture][ext]]
        assert {r["leg_uuid"] for r in mine} == set(phones[ext])
        assert mine[0]["dialed"] is None  # not known yet: not the loopback leg's 1001 or 1002
        assert [(r["call_uuid"], r["dialed"], r["queue"]) for r in mine[1:]] == [
            (callers["6208"], "2000", "2000@default")] * (len(mine) - 1)
    assert [(r["ring_seconds"], r["talk_seconds"]) for r in got if r["state"] == "ended"] == [(3.1, None), (3.0, 6.0)]


def test_rows_of_a_call_in_progress_answered_and_on_hold():
    """`show channels` rows of calls up: an answered leg shows answered at once (its answer
    time is not in the rows), a HELD one on hold; a fifo leg flipped to the agent's own
    caller ID still shows the caller (initial_cid_*); a click-to-dial leg is outgoing."""
    base = {"direction": "outbound", "created_epoch": "1796124528", "dest": "1002", "hostname": "vm"}
    rows = [
        {"uuid": "caller", "direction": "inbound", "created_epoch": "1796124528", "name":
            "sofia/external/6208@127.0.0.1:5090", "cid_num": "1002", "cid_name": "Outbound Call",
         "dest": "2000", "initial_dest": "2000", "callstate": "ACTIVE", "initial_cid_num": "6208",
         "initial_cid_name": "Caller 6208"},
        {**base, "uuid": "fifo-agent", "name": "sofia/internal/1002@127.0.0.1:5072", "presence_id": "1002@127.0.0.1",
         "cid_num": "1002", "cid_name": "Outbound Call", "initial_cid_num": "6208", "initial_cid_name": "Caller 6208",
         "callee_num": "6208", "callee_name": "Caller 6208", "callstate": "HELD", "call_uuid": "caller"},
        {**base, "uuid": "c2d", "dest": "1001", "name": "sofia/internal/1001@127.0.0.1:5071",
         "presence_id": "1001@127.0.0.1", "cid_num": "1001", "cid_name": "Outbound Call", "initial_cid_num": "1001",
         "initial_cid_name": "Agent 1001", "callee_num": "6208", "callee_name": "Outbound Call",
         "callstate": "ACTIVE"},
        {**base, "uuid": "far", "dest": "6208", "name": "sofia/external/6208@127.0.0.1:5090", "cid_num": "1001",
         "cid_name": "Extension 1001", "initial_cid_num": "1001", "callstate": "ACTIVE", "call_uuid": "c2d"},
    ]
    got = {leg.ext: leg for leg in CallTracker(None).resync(rows, now=1796124540.0)}
    assert set(got) == {"1001", "1002"}  # the far party of the click-to-dial is nobody's popup
    fifo, c2d = got["1002"], got["1001"]
    assert (fifo.state, fifo.on_hold, fifo.direction, fifo.other_number, fifo.other_name, fifo.dialed,
            fifo.call_uuid) == ("answered", True, "incoming", "6208", "Caller 6208", "2000", "caller")
    assert (c2d.state, c2d.on_hold, c2d.direction, c2d.other_number, c2d.other_name) == (
        "answered", False, "outgoing", "6208", None)
    assert fifo.ring_seconds is None and fifo.created == 1796124528.0  # when it rang is in the row


def test_resync_ends_only_what_was_known_before_asking():
    """A leg that began between asking `show channels` and reading its answer is not in
    the answer, and must not be ended as lost."""
    tracker = CallTracker({"1001"})
    tracker.feed(ev_leg("old", "1001", 0.0))
    known = tracker.known()
    tracker.feed(ev_leg("new", "1001", 1.0))
    ended = tracker.resync([{"uuid": "caller"}], now=tracker.now + 1, known=known)
    assert [(leg.leg_uuid, leg.state, leg.outcome) for leg in ended] == [("old", "ended", "failed")]
    assert [leg.leg_uuid for leg in tracker.active()] == ["new"]


def test_a_recording_that_begins_mid_call_ends_with_the_times_the_hangup_carries():
    """The issue's case: the recording begins after 1001 answered.  Its next event (a
    CALL_UPDATE) shows the call answered at once; the hangup carries Caller-Channel-
    Answered-Time 3 s after creation: answered, 3 s ring, 5 s talk (not failed, 8 s)."""
    all_events = events("1.10.12/scenario_queue_plain.raw")
    answered = next(i for i, e in enumerate(all_events) if e.event_name == "CHANNEL_BRIDGE")
    tracker = CallTracker({"1001"})
    got = [leg for e in all_events[answered + 1:] for leg in tracker.feed(e)]
    assert [(g.state, g.outcome, g.ring_seconds, g.talk_seconds, g.other_number) for g in got] == [
        ("answered", None, 3.0, None, "6208"), ("ended", "answered", 3.0, 5.0, "6208")]
    # and one that begins between the hangup and its HANGUP_COMPLETE still ends answered
    hangup = next(i for i, e in enumerate(all_events)
                  if e.event_name == "CHANNEL_HANGUP" and e.hangup_cause == "NORMAL_CLEARING")
    tracker = CallTracker({"1001"})
    got = [leg for e in all_events[hangup:] for leg in tracker.feed(e)]
    assert [(g.state, g.outcome, g.ring_seconds, g.talk_seconds) for g in got] == [("ended", "answered", 3.0, 5.0)]


def ev_leg(uuid, ext, t, **extra):
    """An agent leg's CHANNEL_CREATE as the captures show it (placed to user/EXT)."""
    from eslkit.event import Event

    headers = {"Event-Name": "CHANNEL_CREATE", "Unique-ID": uuid, "Call-Direction": "outbound",
               "Event-Date-Timestamp": str(int((1796124528 + t) * 1e6)), "Channel-Name": f"sofia/internal/{ext}@h",
               "variable_dialed_user": ext, "Caller-Caller-ID-Number": "6208", "Caller-Caller-ID-Name": "Caller 6208",
               "Other-Type": "originator", "Other-Leg-Unique-ID": "caller"}
    headers.update({k.replace("_", "-") if not k.startswith("variable_") else k: v for k, v in extra.items()})
    return Event(headers)


# --- flows no capture holds, built from the facts the READMEs give --------------------------


def chan(name, uuid, t, **headers):
    """An event with the headers the captures show, times in µs as the switch writes them."""
    from eslkit.event import Event

    us = str(int((1796124528 + t) * 1e6))
    h = {"Event-Name": name, "Unique-ID": uuid, "Event-Date-Timestamp": us}
    if name == "CHANNEL_ANSWER":
        h["Caller-Channel-Answered-Time"] = us
    if name == "CHANNEL_HANGUP_COMPLETE":
        h["Caller-Channel-Hangup-Time"] = us
    h.update({k.replace("_", "-") if not k.startswith("variable_") else k: v for k, v in headers.items()})
    return Event(h)


def by_ext(evts, exts=None) -> dict[str, list]:
    """The records of every extension watched (all agents: None), by extension."""
    tracker = CallTracker(exts)
    got: dict[str, list] = {}
    for e in evts:
        for leg in tracker.feed(e):
            got.setdefault(leg.ext, []).append(popup_record(leg))
    return got


def test_loopback_agents_with_no_phone_behind_them():
    """mod_callcenter contacts `loopback/100X/agents`, answered in that context: only loopback
    legs, no phone's leg behind them.  The -a leg is the agent's (shown once it is answered or
    ends: until then a phone leg could still appear behind it)."""
    caller = dict(Caller_Caller_ID_Number="6208", Caller_Caller_ID_Name="Caller 6208")
    cc = dict(variable_cc_member_session_uuid="A", variable_cc_queue="2000@default", **caller)

    def pair(ext, a, b):
        return [chan("CHANNEL_CREATE", a, 0.02, Call_Direction="outbound", Channel_Name=f"loopback/{ext}-a",
                     Caller_Destination_Number=ext, variable_other_loopback_leg_uuid=b,
                     variable_cc_agent=f"{ext}@default", Caller_Channel_Created_Time=str(int(1796124528.02e6)), **cc),
                chan("CHANNEL_CREATE", b, 0.02, Call_Direction="inbound", Channel_Name=f"loopback/{ext}-b",
                     Caller_Destination_Number=ext, variable_other_loopback_leg_uuid=a, **cc)]

    flow = [
        chan("CHANNEL_CREATE", "A", 0, Call_Direction="inbound", Channel_Name="sofia/external/6208@127.0.0.1:5090",
             Caller_Destination_Number="2000", **caller),
        chan("CHANNEL_ANSWER", "A", 0, Call_Direction="inbound"),
        *pair("1001", "C", "E"), *pair("1002", "D", "F"),
        chan("CHANNEL_ANSWER", "F", 3.0, Call_Direction="inbound", Channel_Name="loopback/1002-b"),
        chan("CHANNEL_ANSWER", "D", 3.0, Call_Direction="outbound", Channel_Name="loopback/1002-a"),
        chan("CHANNEL_HANGUP_COMPLETE", "E", 3.02, Call_Direction="inbound", Hangup_Cause="LOSE_RACE"),
        chan("CHANNEL_HANGUP_COMPLETE", "C", 3.02, Call_Direction="outbound", Channel_Name="loopback/1001-a",
             Hangup_Cause="LOSE_RACE"),
        chan("CHANNEL_BRIDGE", "A", 3.04, Call_Direction="inbound", Bridge_A_Unique_ID="A", Bridge_B_Unique_ID="D"),
        chan("CHANNEL_HANGUP_COMPLETE", "A", 9.0, Call_Direction="inbound", Hangup_Cause="NORMAL_CLEARING"),
        chan("CHANNEL_HANGUP_COMPLETE", "D", 9.02, Call_Direction="outbound", Channel_Name="loopback/1002-a",
             Hangup_Cause="NORMAL_CLEARING", Caller_Channel_Answered_Time=str(int(1796124531e6))),
    ]
    got = by_ext(flow)
    assert shown(got["1001"]) == lost_race()
    assert shown(got["1002"]) == answered_call()
    assert [(r["ring_seconds"], r["talk_seconds"], r["queue"], r["dialed"]) for r in got["1002"]] == [
        (None, None, "2000@default", "2000"), (3.0, None, "2000@default", "2000"),
        (3.0, 6.0, "2000@default", "2000")]
    assert by_ext(flow, {"1001"}) == {"1001": got["1001"]}


def phone_dials_out(far_cause="NORMAL_CLEARING", answered=True):
    """1001 dials 6208 from its own phone: an authenticated inbound leg (variable_user_name),
    and the far leg the dialplan bridges to (no user behind it)."""
    me = dict(Call_Direction="inbound", Channel_Name="sofia/internal/1001@127.0.0.1:5071")
    flow = [
        chan("CHANNEL_CREATE", "P", 0, **me, variable_user_name="1001", variable_domain_name="127.0.0.1",
             Channel_Presence_ID="1001@127.0.0.1", Caller_Caller_ID_Number="1001",
             Caller_Caller_ID_Name="Agent 1001", Caller_Destination_Number="6208"),
        chan("CHANNEL_CREATE", "Q", 0.02, Call_Direction="outbound", Channel_Name="sofia/external/6208@gw",
             Caller_Destination_Number="6208", Caller_Caller_ID_Number="1001", Other_Type="originator",
             Other_Leg_Unique_ID="P"),
        chan("CHANNEL_PROGRESS", "P", 0.04, **me),
    ]
    if answered:
        flow += [chan("CHANNEL_ANSWER", "Q", 4.0, Call_Direction="outbound"),
                 chan("CHANNEL_ANSWER", "P", 4.0, **me),
                 chan("CHANNEL_BRIDGE", "P", 4.02, **me, Bridge_A_Unique_ID="P", Bridge_B_Unique_ID="Q",
                      Caller_Callee_ID_Number="6208", Caller_Callee_ID_Name="Acme Ltd")]
    flow += [chan("CHANNEL_HANGUP_COMPLETE", "Q", 10.0, Call_Direction="outbound", Hangup_Cause=far_cause),
             chan("CHANNEL_HANGUP_COMPLETE", "P", 10.0, **me, Hangup_Cause=far_cause)]
    return flow


def test_an_agent_dialling_out_from_the_phone_is_an_outgoing_call():
    mine = dict(caller=AGENT_1001, direction="outgoing", other=TO_6208)
    got = by_ext(phone_dials_out())
    assert set(got) == {"1001"}  # the far leg (a gateway, no user) is nobody's popup
    assert shown(got["1001"]) == answered_call(**mine)
    assert [r["dialed"] for r in got["1001"]] == ["6208"] * 3
    busy = by_ext(phone_dials_out("USER_BUSY", answered=False), {"1001"})
    assert shown(busy["1001"]) == [rec("ringing", **mine), rec("ended", "busy", "USER_BUSY", **mine)]


def test_popup_actions_fire_once_per_state_not_on_hold_changes():
    """A hold makes a new `answered` record (for the panel, the JSON, the relay); it is not
    an answer: `--on answer` actions and the bell do not fire again."""
    import asyncio
    import io

    from eslkit.app.popup import OnState, PopupEngine, PopupFormat, show
    from eslkit.sources import EventsSource

    fired = []
    out = io.StringIO()
    engine = PopupEngine(EventsSource(events("1.10.12-b/scenario_hold_plain.raw")), ["1001"])
    asyncio.run(show(engine, fmt=PopupFormat.json, actions=[fired.append], on=OnState.answer, out=out))
    written = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["state"], r["on_hold"]) for r in written] == [
        ("ringing", False), ("answered", False), ("answered", True), ("answered", False), ("ended", False)]
    assert [(leg.state, leg.on_hold) for leg in fired] == [("answered", False)]


def test_watch_stats_counts_a_call_already_up_as_answered():
    """`watch --stats` started mid-call: the caller's hangup carries its answer time."""
    from eslkit.views.stats import CallStats

    all_events = events("1.10.12/scenario_queue_plain.raw")
    bridged = next(i for i, e in enumerate(all_events) if e.event_name == "CHANNEL_BRIDGE")
    stats = CallStats()
    for event in all_events[bridged + 1:]:
        stats.add(event)
    assert (stats.answered, stats.missed, stats.busy) == (1, 0, 0)
    # the ring time of the agent's phone that answered (issue 18: the statistics engine's
    # figure): 1001's leg created 883.527556, answered 886.527550
    assert stats.mean_ring_time == pytest.approx(3.0, abs=0.01)


def test_attended_transfer_hands_the_caller_to_the_target():
    """1001 talks to 6208, puts it on hold, calls 1002 from its phone, then completes the
    transfer: the switch bridges 6208 to 1002's leg (uuid_bridge) and 1001's legs go.
    1002 first sees 1001 calling, then 6208, sent by 1001.  (Built from FreeSWITCH's
    uuid_bridge: no capture holds an attended transfer.)"""
    phone = dict(Call_Direction="inbound", Channel_Name="sofia/internal/1001@127.0.0.1:5071")
    flow = [
        chan("CHANNEL_CREATE", "A", 0, Call_Direction="inbound", Channel_Name="sofia/external/6208@127.0.0.1:5090",
             Caller_Destination_Number="2000", Caller_Caller_ID_Number="6208", Caller_Caller_ID_Name="Caller 6208"),
        ev_leg("B", "1001", 0.02, Other_Leg_Unique_ID="A"),
        chan("CHANNEL_ANSWER", "B", 3.0, Call_Direction="outbound"),
        chan("CHANNEL_BRIDGE", "A", 3.02, Call_Direction="inbound", Bridge_A_Unique_ID="A", Bridge_B_Unique_ID="B"),
        chan("CHANNEL_HOLD", "B", 5.0, Call_Direction="outbound"),
        chan("CHANNEL_CREATE", "P", 6.0, **phone, variable_user_name="1001", Caller_Caller_ID_Number="1001",
             Caller_Caller_ID_Name="Agent 1001", Caller_Destination_Number="1002"),
        ev_leg("D", "1002", 6.02, Other_Leg_Unique_ID="P", Caller_Caller_ID_Number="1001",
               Caller_Caller_ID_Name="Agent 1001"),
        chan("CHANNEL_ANSWER", "D", 8.0, Call_Direction="outbound"),
        chan("CHANNEL_ANSWER", "P", 8.0, **phone),
        chan("CHANNEL_BRIDGE", "P", 8.02, **phone, Bridge_A_Unique_ID="P", Bridge_B_Unique_ID="D"),
        chan("CHANNEL_HANGUP_COMPLETE", "B", 12.0, Call_Direction="outbound", Hangup_Cause="NORMAL_CLEARING"),
        chan("CHANNEL_BRIDGE", "A", 12.02, Call_Direction="inbound", Bridge_A_Unique_ID="A", Bridge_B_Unique_ID="D"),
        chan("CHANNEL_HANGUP_COMPLETE", "P", 12.04, **phone, Hangup_Cause="NORMAL_CLEARING"),
        chan("CHANNEL_HANGUP_COMPLETE", "D", 20.0, Call_Direction="outbound", Hangup_Cause="NORMAL_CLEARING"),
    ]
    got = by_ext(flow)
    consult = dict(caller=AGENT_1001)
    handed = dict(transferred_from="1001")
    assert shown(got["1002"]) == [rec("ringing", **consult), rec("answered", **consult), rec("answered", **handed),
                                  rec("ended", "answered", "NORMAL_CLEARING", **handed)]
    to_1002 = dict(caller=AGENT_1001, direction="outgoing", other=("1002", None))
    assert shown(got["1001"]) == [
        rec("ringing"), rec("answered"), rec("answered", on_hold=True),
        rec("ringing", **to_1002), rec("answered", **to_1002),
        rec("ended", "answered", "NORMAL_CLEARING", on_hold=False), rec("ended", "answered", "NORMAL_CLEARING", **to_1002)]


def test_what_changed_while_the_link_was_down_comes_from_the_rows():
    """A leg ringing when the link dropped is answered and on hold in `show channels`."""
    tracker = CallTracker({"1001"})
    [ringing] = tracker.feed(ev_leg("B", "1001", 0.0))
    known = tracker.known()
    rows = [{"uuid": "B", "direction": "outbound", "callstate": "HELD", "dest": "1001"}]
    [held] = tracker.resync(rows, now=tracker.now + 10, known=known)
    assert (ringing.state, held.state, held.on_hold, held.leg_uuid) == ("ringing", "answered", True, "B")
    assert tracker.resync(rows, now=tracker.now + 11, known=known) == []  # nothing new: nothing said


def test_watching_the_far_party_of_a_click_to_dial_by_name_shows_nothing():
    """Even asked for by --ext, the far leg of an agent's own call is not an agent's leg;
    and the agent's call is not 'answered elsewhere' by it."""
    evts = events("1.10.12-b/scenario_agent_outbound_plain.raw")
    assert by_ext(evts, {"6208"}) == {}
    ended = by_ext(evts, {"1001", "6208"})["1001"][-1]
    assert (ended["outcome"], ended["other_number"]) == ("answered", "6208")
    tracker = CallTracker({"1001"})
    views = [leg for e in evts for leg in tracker.feed(e)]
    assert views[-1].answered_by is None


def test_watch_stats_learns_the_channels_already_up():
    """The real `show channels as json` answer of the filtered capture (the caller and both
    agents ringing): one call, three channels, active until their CHANNEL_DESTROY."""
    from eslkit.calls import live_channels
    from eslkit.protocol import ApiResponse
    from eslkit.views.stats import CallStats

    captured = frames("1.10.12/scenario_queue_plain_filtered_1001_with_api.raw")
    rows = live_channels(next(f for f in captured if isinstance(f, ApiResponse)).text)
    stats = CallStats()
    stats.channels_up(rows)
    assert (stats.active_calls, stats.active_channels) == (1, 3)
    for t, row in enumerate(rows):
        stats.add(chan("CHANNEL_DESTROY", row["uuid"], 9 + t, Call_Direction=row["direction"]))
    assert (stats.active_calls, stats.active_channels) == (0, 0)
    stats.channels_up(rows)  # a stale answer, read after the channels went: nothing comes back
    assert stats.active_channels == 0


def test_a_hold_fed_after_the_question_is_not_undone_by_the_answer():
    """`show channels` answered before 1001 put the caller on hold, and the answer taken after
    the hold was seen (a loaded machine: the popup engine reads events while the answer
    waits its turn): the stale ACTIVE row must not take the hold back, nor tell it."""
    import asyncio

    from eslkit.calls import POPUP_EVENTS, live_channels
    from eslkit.client import Connection
    from eslkit.event import Event
    from tests.support.sim import scenario_in_parts, sim_in_thread

    tracker = CallTracker({"1001"})

    def legs() -> list:
        return [(leg.state, leg.on_hold) for leg in tracker.active("1001")]

    async def feed_until(events, done) -> None:
        while not done():
            item = await events.__anext__()
            if isinstance(item, Event):
                tracker.feed(item)

    async def follow(sim, talk, hold) -> list:
        async with Connection("127.0.0.1", sim.port, "ClueCon") as conn:
            await conn.subscribe(POPUP_EVENTS)
            events = conn.events().__aiter__()
            sim.call_soon(talk)
            await asyncio.wait_for(feed_until(events, lambda: legs() == [("answered", False)]), 30)
            known = tracker.known()
            rows = live_channels(await conn.api("show channels as json"))  # 1001 talking
            sim.call_soon(hold)
            await asyncio.wait_for(feed_until(events, lambda: legs() == [("answered", True)]), 30)
            return tracker.resync(rows, known=known)  # the answer, taken late

    with sim_in_thread(speed=None) as sim:
        talk, hold, _ = scenario_in_parts(sim.server, "hold", 4.0, 4.6)  # answered at 3 s, held at 4.58 s
        late = asyncio.run(follow(sim, talk, hold))
    assert late == [] and legs() == [("answered", True)]
