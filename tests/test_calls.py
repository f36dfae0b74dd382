"""The call tracker, driven by the real FreeSWITCH 1.10.12 captures (parsed with
eslkit.protocol.Parser, as the client does) and by events built to the shape
those captures show, for cases the captures do not hold."""

from __future__ import annotations

import pytest

from eslkit.calls import RECORD_KEYS, CallTracker, LegView, outcome_for, popup_record
from eslkit.event import Event
from tests.support.sources import events_in as capture_events


def track(events, exts=None, **kw) -> tuple[CallTracker, list[LegView]]:
    tracker = CallTracker(exts, **kw)
    changes = []
    for event in events:
        changes += tracker.feed(event)
    return tracker, changes


def summary(changes):
    """What must hold across wire formats: everything but the uuids and clock."""
    return [
        (c.ext, c.state, c.outcome, c.hangup_cause, c.caller_number, c.caller_name, c.dialed, c.queue,
         c.ring_seconds, c.talk_seconds, c.answered_by)
        for c in changes
    ]


QUEUE_EXPECTED = [
    ("1001", "ringing", None, None, "6208", "Caller 6208", "2000", None, None, None, None),
    ("1002", "ringing", None, None, "6208", "Caller 6208", "2000", None, None, None, None),
    ("1001", "answered", None, None, "6208", "Caller 6208", "2000", None, 3.0, None, None),
    ("1002", "ended", "answered_elsewhere", "LOSE_RACE", "6208", "Caller 6208", "2000", None, 3.0, None, "1001"),
    ("1001", "ended", "answered", "NORMAL_CLEARING", "6208", "Caller 6208", "2000", None, 3.0, 5.0, None),
]


@pytest.mark.parametrize("fmt", ["plain", "json", "xml"])
def test_scenario_queue_every_wire_format(captures, fmt):
    events = capture_events(captures / f"scenario_queue_{fmt}.raw")
    assert {e.format for e in events} == {fmt}
    tracker, changes = track(events)
    assert summary(changes) == QUEUE_EXPECTED
    # Both agent legs belong to the caller's call, named by the caller's uuid.
    caller_leg = next(e for e in events if e.direction == "inbound" and e.event_name == "CHANNEL_CREATE")
    assert {c.call_uuid for c in changes} == {caller_leg.unique_id}
    assert {c.leg_uuid for c in changes if c.ext == "1001"} != {c.leg_uuid for c in changes if c.ext == "1002"}
    assert tracker.active() == []
    assert [leg.outcome for leg in tracker.recent("1001")] == ["answered"]


def test_wire_formats_give_identical_records(captures):
    def records(fmt):
        _, changes = track(capture_events(captures / f"scenario_queue_{fmt}.raw"))
        return [{k: v for k, v in popup_record(c).items() if k not in ("time", "call_uuid", "leg_uuid")}
                for c in changes]

    assert records("plain") == records("json") == records("xml")


def test_watching_one_extension_reports_only_it(captures):
    _, changes = track(capture_events(captures / "scenario_queue_plain.raw"), exts={"1001"})
    assert [(c.ext, c.state, c.outcome) for c in changes] == [
        ("1001", "ringing", None), ("1001", "answered", None), ("1001", "ended", "answered"),
    ]


def test_watching_1002_still_knows_who_answered(captures):
    _, changes = track(capture_events(captures / "scenario_queue_plain.raw"), exts={"1002"})
    assert [(c.state, c.outcome, c.answered_by) for c in changes] == [
        ("ringing", None, None), ("ended", "answered_elsewhere", "1001"),
    ]


def test_scenario_noanswer_is_missed(captures):
    _, changes = track(capture_events(captures / "scenario_noanswer_plain.raw"))
    assert summary(changes) == [
        ("1002", "ringing", None, None, "6208", "Caller 6208", "1002", None, None, None, None),
        ("1002", "ended", "missed", "ORIGINATOR_CANCEL", "6208", "Caller 6208", "1002", None, 6.1, None, None),
    ]


def test_popup_style_filtered_capture_gives_the_same_for_1001(captures):
    # Only the agent leg's events arrive (filter Caller-Destination-Number 1001), api replies
    # interleaved: the call, the dialled queue number and the outcome still come out right.
    events = capture_events(captures / "scenario_queue_plain_filtered_1001_with_api.raw")
    _, changes = track(events, exts={"1001"})
    assert [(c.ext, c.state, c.outcome, c.hangup_cause, c.caller_number, c.caller_name, c.dialed)
            for c in changes] == [
        ("1001", "ringing", None, None, "6208", "Caller 6208", "2000"),
        ("1001", "answered", None, None, "6208", "Caller 6208", "2000"),
        ("1001", "ended", "answered", "NORMAL_CLEARING", "6208", "Caller 6208", "2000"),
    ]
    # The leg's Channel-Call-UUID changes to its own uuid by HANGUP_COMPLETE; the call does not.
    assert len({c.call_uuid for c in changes}) == 1
    assert changes[0].call_uuid != changes[0].leg_uuid


def test_record_has_exactly_the_documented_keys(captures):
    _, changes = track(capture_events(captures / "scenario_queue_plain.raw"))
    for change in changes:
        record = popup_record(change)
        assert tuple(record) == RECORD_KEYS
    assert popup_record(changes[0])["time"] == "2026-11-26T04:38:03.527Z"


def test_caller_leg_is_never_an_agent_leg(captures):
    # The caller's CHANNEL_ANSWER names the losing agent in variable_dialed_user (1002);
    # the inbound leg must not become a popup for 1002.
    events = capture_events(captures / "scenario_queue_plain.raw")
    answer = next(e for e in events if e.event_name == "CHANNEL_ANSWER" and e.direction == "inbound")
    assert answer.get("variable_dialed_user") == "1002"
    _, changes = track(events, exts={"1002"})
    assert all(c.leg_uuid != answer.unique_id for c in changes)


def test_match_header_overrides(captures):
    _, changes = track(capture_events(captures / "scenario_queue_plain.raw"),
                       exts={"1001"}, match="Channel-Presence-ID")
    assert [c.state for c in changes] == ["ringing", "answered", "ended"]
    _, none = track(capture_events(captures / "scenario_queue_plain.raw"),
                    exts={"1001"}, match="Caller-Caller-ID-Number")
    assert none == []


def test_contact_lookup_called_once_per_leg(captures):
    asked = []

    def lookup(number):
        asked.append(number)
        return {"number": number, "name": "Ada"}

    _, changes = track(capture_events(captures / "scenario_queue_plain.raw"), exts={"1001"}, lookup=lookup)
    assert asked == ["6208"]
    assert all(c.contact == {"number": "6208", "name": "Ada"} for c in changes)


# --- cases the captures do not hold: events shaped like the captured ones ------------------

T0 = 1_795_667_883_000_000  # µs


def ev(name, uuid, t, **headers):
    h = {"Event-Name": name, "Unique-ID": uuid, "Event-Date-Timestamp": str(T0 + int(t * 1e6))}
    h.update({k.replace("__", "-").replace("_", "-") if not k.startswith("variable_") else k: v
              for k, v in headers.items()})
    return Event(h)


def agent_leg(uuid, ext, caller="A", t=0.0, name="CHANNEL_CREATE", **extra):
    return ev(name, uuid, t, Call_Direction="outbound", Channel_Name=f"sofia/internal/{ext}@10.0.0.1",
              Caller_Destination_Number=ext, Caller_Caller_ID_Number="5551234",
              Caller_Caller_ID_Name="Jane", Other_Type="originator", Other_Leg_Unique_ID=caller,
              Caller_Channel_Created_Time=str(T0), **extra)


def hangup(uuid, cause, t, answered=None, **extra):
    h = dict(Call_Direction="outbound", Hangup_Cause=cause,
             Caller_Channel_Hangup_Time=str(T0 + int(t * 1e6)))
    if answered is not None:
        h["Caller_Channel_Answered_Time"] = str(T0 + int(answered * 1e6))
    h.update(extra)
    return ev("CHANNEL_HANGUP_COMPLETE", uuid, t, **h)


def test_busy():
    _, changes = track([agent_leg("b1", "1001"), hangup("b1", "USER_BUSY", 1.0)], exts={"1001"})
    assert [(c.state, c.outcome, c.hangup_cause, c.ring_seconds) for c in changes] == [
        ("ringing", None, None, None), ("ended", "busy", "USER_BUSY", 1.0)]


@pytest.mark.parametrize("cause", ["NO_ANSWER", "ALLOTTED_TIMEOUT", "NO_USER_RESPONSE"])
def test_timeouts_are_missed(cause):
    _, changes = track([agent_leg("b1", "1001"), hangup("b1", cause, 30.0)], exts={"1001"})
    assert changes[-1].outcome == "missed"
    assert changes[-1].ring_seconds == 30.0


def test_other_causes_fail():
    _, changes = track([agent_leg("b1", "1001"), hangup("b1", "CALL_REJECTED", 2.0)], exts={"1001"})
    assert changes[-1].outcome == "failed"


def test_caller_bridged_to_another_leg_is_answered_elsewhere_even_without_lose_race():
    events = [
        ev("CHANNEL_CREATE", "A", 0, Call_Direction="inbound", Caller_Destination_Number="2000",
           Channel_Name="sofia/external/5551234@x"),
        agent_leg("b1", "1001", t=0.1), agent_leg("b2", "1002", t=0.1),
        ev("CHANNEL_ANSWER", "b2", 2.0, Call_Direction="outbound"),
        ev("CHANNEL_BRIDGE", "A", 2.1, Call_Direction="inbound", Bridge_A_Unique_ID="A",
           Bridge_B_Unique_ID="b2", Other_Leg_Unique_ID="b2"),
        hangup("b1", "ORIGINATOR_CANCEL", 2.2),
    ]
    _, changes = track(events, exts={"1001"})
    assert (changes[-1].outcome, changes[-1].answered_by, changes[-1].dialed) == ("answered_elsewhere", "1002", "2000")


def test_mod_callcenter_queue_and_member_caller_id():
    # mod_callcenter originates agents without a caller session: the link is cc_member_session_uuid.
    events = [
        ev("CHANNEL_CREATE", "M", 0, Call_Direction="inbound", Caller_Destination_Number="3000",
           Caller_Caller_ID_Number="5550000", Channel_Name="sofia/external/5550000@x"),
        ev("CUSTOM", "M", 0.5, Event_Subclass="callcenter::info", CC_Action="member-queue-start",
           CC_Queue="support@default", CC_Member_Session_UUID="M", CC_Member_CID_Name="Acme Ltd",
           CC_Member_CID_Number="5550000", CC_Member_Joined_Time=str(T0 // 1_000_000)),
        ev("CHANNEL_CREATE", "ag", 10, Call_Direction="outbound", Channel_Name="sofia/internal/1001@x",
           variable_dialed_user="1001", variable_cc_member_session_uuid="M",
           variable_cc_queue="support@default"),
        ev("CUSTOM", "M", 12, Event_Subclass="callcenter::info", CC_Action="bridge-agent-start",
           CC_Queue="support@default", CC_Member_Session_UUID="M", CC_Agent_UUID="ag",
           CC_Agent_Answered_Time=str(T0 // 1_000_000 + 12)),
        ev("CHANNEL_ANSWER", "ag", 12, Call_Direction="outbound"),
    ]
    _, changes = track(events, exts={"1001"})
    last = changes[-1]
    assert (last.state, last.queue, last.caller_name, last.caller_number, last.dialed, last.call_uuid) == (
        "answered", "support@default", "Acme Ltd", "5550000", "3000", "M")
    assert last.wait_seconds == 12.0


def test_mod_fifo_names_the_queue():
    events = [
        ev("CHANNEL_CREATE", "C", 0, Call_Direction="inbound", Caller_Destination_Number="4000",
           Channel_Name="sofia/external/5551234@x"),
        ev("CUSTOM", "C", 0.2, Event_Subclass="fifo::info", FIFO_Name="sales", FIFO_Action="push"),
        # a fifo consumer leg, originated on its own, then bridged to the caller
        ev("CHANNEL_CREATE", "f1", 3, Call_Direction="outbound", Channel_Name="sofia/internal/1001@x",
           variable_dialed_user="1001", Caller_Caller_ID_Number="5551234"),
        ev("CHANNEL_BRIDGE", "C", 4, Call_Direction="inbound", Bridge_A_Unique_ID="C", Bridge_B_Unique_ID="f1"),
    ]
    _, changes = track(events, exts={"1001"})
    assert (changes[-1].state, changes[-1].queue, changes[-1].call_uuid, changes[-1].dialed) == (
        "answered", "sales", "C", "4000")


def test_loopback_legs_are_not_agent_legs_and_the_call_is_followed_through_them():
    events = [
        ev("CHANNEL_CREATE", "A", 0, Call_Direction="inbound", Caller_Destination_Number="2000",
           Channel_Name="sofia/external/5551234@x", Caller_Caller_ID_Number="5551234"),
        ev("CHANNEL_CREATE", "la", 0.1, Call_Direction="outbound", Channel_Name="loopback/1001-a",
           Caller_Destination_Number="1001", Other_Type="originator", Other_Leg_Unique_ID="A",
           variable_other_loopback_leg_uuid="lb"),
        ev("CHANNEL_CREATE", "lb", 0.1, Call_Direction="inbound", Channel_Name="loopback/1001-b",
           Caller_Destination_Number="1001", variable_other_loopback_leg_uuid="la"),
        ev("CHANNEL_CREATE", "s1", 0.2, Call_Direction="outbound", Channel_Name="sofia/internal/1001@x",
           variable_dialed_user="1001", Other_Type="originator", Other_Leg_Unique_ID="lb",
           Other_Leg_Destination_Number="1001", Caller_Caller_ID_Number="5551234"),
    ]
    _, changes = track(events, exts={"1001"})
    assert [(c.leg_uuid, c.call_uuid, c.dialed) for c in changes] == [("s1", "A", "2000")]


def test_hostile_values_are_kept_bounded():
    name = "\x1b]0;pwned\x07" + "A" * 10_000
    _, changes = track([ev("CHANNEL_CREATE", "b1", 0, Call_Direction="outbound",
                           Channel_Name="sofia/internal/1001@x", Caller_Caller_ID_Name=name)], exts={"1001"})
    assert len(changes[0].caller_name) == 1024
    assert changes[0].caller_name.startswith("\x1b]0;pwned")  # kept as data; views make it visible


# --- memory ---------------------------------------------------------------------------------


def test_ended_calls_are_forgotten_after_linger(captures):
    tracker, _ = track(capture_events(captures / "scenario_queue_plain.raw"), linger=60)
    assert len(tracker) == 3
    assert tracker.expire(tracker.now + 61) == []
    assert len(tracker) == 0
    assert tracker._calls == {}  # the per-call index of agent legs empties too
    assert [leg.outcome for leg in tracker.recent("1001")] == ["answered"]  # history stays, bounded


def test_a_leg_whose_end_was_lost_expires_as_failed():
    tracker, changes = track([agent_leg("b1", "1001")], exts={"1001"}, ring_timeout=120)
    assert tracker.expire(tracker.now + 60) == []
    expired = tracker.expire(tracker.now + 121)
    assert [(c.state, c.outcome, c.hangup_cause) for c in expired] == [("ended", "failed", None)]
    assert tracker.active() == [] and len(tracker) == 0


def test_late_events_of_a_forgotten_channel_do_not_bring_it_back(captures):
    events = capture_events(captures / "scenario_queue_plain.raw")
    tracker, _ = track(events, linger=0)
    tracker.expire(tracker.now + 1)
    late = [e for e in events if e.event_name in ("CHANNEL_DESTROY", "CHANNEL_STATE")]
    assert sum(len(tracker.feed(e)) for e in late) == 0
    assert len(tracker) == 0


def test_channel_table_is_capped():
    tracker = CallTracker({"1001"}, max_channels=100)
    for i in range(1000):
        tracker.feed(ev("CHANNEL_CREATE", f"in{i}", i, Call_Direction="inbound", Caller_Destination_Number="9"))
    assert len(tracker) == 100


def test_history_is_bounded():
    tracker = CallTracker({"1001"}, history=3)
    for i in range(10):
        tracker.feed(agent_leg(f"b{i}", "1001", t=i))
        tracker.feed(hangup(f"b{i}", "NO_ANSWER", i + 0.5))
    assert [leg.leg_uuid for leg in tracker.recent("1001")] == ["b9", "b8", "b7"]


def test_outcome_table():
    assert outcome_for("NORMAL_CLEARING", True, False) == "answered"
    assert outcome_for("LOSE_RACE", False, False) == "answered_elsewhere"
    assert outcome_for("ORIGINATOR_CANCEL", False, True) == "answered_elsewhere"
    assert outcome_for("ORIGINATOR_CANCEL", False, False) == "missed"
    assert outcome_for("USER_BUSY", False, False) == "busy"
    assert outcome_for(None, False, False) == "failed"


def test_resync_after_a_reconnect_ends_what_the_switch_no_longer_has():
    tracker = CallTracker({"1001", "1002"})
    tracker.feed(agent_leg("b1", "1001"))
    tracker.feed(agent_leg("b2", "1002"))
    tracker.feed(ev("CHANNEL_ANSWER", "b2", 2.0, Call_Direction="outbound"))
    tracker.feed(agent_leg("b3", "1001", caller="B", t=3.0))
    ended = tracker.resync(["b3", "A", "B"], now=tracker.now + 30)
    assert sorted((c.leg_uuid, c.state, c.outcome, c.hangup_cause) for c in ended) == [
        ("b1", "ended", "failed", None), ("b2", "ended", "answered", None)]
    assert [leg.leg_uuid for leg in tracker.active()] == ["b3"]


def test_an_answered_leg_whose_end_was_lost_expires_as_answered():
    tracker, _ = track([agent_leg("b1", "1001"), ev("CHANNEL_ANSWER", "b1", 1.0, Call_Direction="outbound")],
                       exts={"1001"}, idle_timeout=600)
    assert tracker.expire(tracker.now + 599) == []
    [ended] = tracker.expire(tracker.now + 601)
    assert (ended.state, ended.outcome, ended.hangup_cause) == ("ended", "answered", None)


def test_ext_for_names_the_agent_an_event_belongs_to(captures):
    tracker = CallTracker({"1001", "1002"})
    owners = []
    for event in capture_events(captures / "scenario_queue_plain.raw"):
        tracker.feed(event)
        owners.append((event.event_name, event.direction, tracker.ext_for(event)))
    assert ("CHANNEL_ORIGINATE", "outbound", "1001") in owners
    assert ("CHANNEL_ORIGINATE", "outbound", "1002") in owners
    # the caller's leg belongs to nobody until bridged, then to the agent who took it
    assert ("CHANNEL_CREATE", "inbound", None) in owners
    assert ("CHANNEL_BRIDGE", "inbound", "1001") in owners
    assert ("CHANNEL_HANGUP_COMPLETE", "inbound", "1001") in owners


def test_history_0_keeps_no_ended_leg_where_nothing_shows_them(captures):
    # The relay's and the wallboard's trackers follow every extension of the switch: ten
    # ended legs kept for each, never shown, were ~8 MB for a thousand agents.
    from eslkit.stats import CallCentreStats

    events = capture_events(captures / "scenario_queue_plain.raw")
    tracker, changes = track(events, history=0)
    assert summary(changes) == QUEUE_EXPECTED  # the same legs, the same states
    assert tracker.recent() == [] and tracker._history == {}
    stats = CallCentreStats()
    for event in events:
        stats.feed(event)
    assert stats.tracker.recent() == []
