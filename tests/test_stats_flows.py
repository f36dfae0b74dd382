"""The statistics engine on every real call flow in the captures (both folders).

The figures below were worked out by hand from the events of each capture (the times
are quoted next to them), not from the engine's output: a caller's wait runs from
mod_callcenter's member-queue-start / mod_fifo's push / a ring group's first ring to
bridge-agent-start / bridge-caller-start / the agent's answer; talk runs to
bridge-agent-end / bridge-caller-stop / the agent leg's hangup (docs/stats.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eslkit.protocol import EventFrame, Parser
from eslkit.stats import CallCentreStats

DATA = Path(__file__).parent / "data" / "fs-captures"


def capture_events(name: str) -> list:
    parser = Parser(max_frame_size=1 << 24)
    return [f.event for f in parser.feed((DATA / name).read_bytes()) if isinstance(f, EventFrame)]


def run(name: str) -> CallCentreStats:
    stats = CallCentreStats()
    for event in capture_events(name):
        stats.feed(event)
    stats.tick(stats.now + 60)  # a minute later: nothing left undecided
    return stats


def Q(offered, answered, abandoned=0, missed=0, *, kind, wait=None, talk=None, waiting=0):
    out = {"kind": kind, "offered": offered, "answered": answered, "abandoned": abandoned, "missed": missed,
           "waiting": waiting}
    if wait is not None:
        out["wait_avg"] = wait
    if talk is not None:
        out["talk_avg"] = talk
    return out


def A(answered=0, missed=0, outgoing=0, ext=None, talk=None):
    out = {"answered": answered, "missed": missed, "outgoing": outgoing, "state": "available"}
    if ext is not None:
        out["ext"] = ext
    if talk is not None:
        out["talk_seconds"] = talk
    return out


EXPECTED = {
    # ring-all dialplan bridge 2000 (no queue module): first ring 883.527556, 1001 answers
    # 886.527550 (wait 3.0), its leg hangs up 891.567568 (talk 5.04)
    "1.10.12/scenario_queue_plain.raw": (
        {"2000": Q(1, 1, kind="group", wait=3.0, talk=5.0)},
        {"1001": A(answered=1, talk=5.0), "1002": A()},  # 1002: LOSE_RACE, not a miss
        {"answered": 1, "missed": 0, "busy": 0}),
    # 909.667588 → 912.687550
    "1.10.12/scenario_queue_json.raw": (
        {"2000": Q(1, 1, kind="group", wait=3.0)}, {"1001": A(answered=1), "1002": A()},
        {"answered": 1, "missed": 0, "busy": 0}),
    # 935.827555 → 938.827569
    "1.10.12/scenario_queue_xml.raw": (
        {"2000": Q(1, 1, kind="group", wait=3.0)}, {"1001": A(answered=1), "1002": A()},
        {"answered": 1, "missed": 0, "busy": 0}),
    # 6208 calls 1002 directly (not a queue) and cancels: 1002 missed it
    "1.10.12/scenario_noanswer_plain.raw": (
        {}, {"1002": A(missed=1)}, {"answered": 0, "missed": 1, "busy": 0}),
    # only Caller-Destination-Number=1001 passed: 1001's leg still names the group
    # (Other-Leg-Destination-Number 2000); 437.174328 → 440.194315
    "1.10.12/scenario_queue_plain_filtered_1001_with_api.raw": (
        {"2000": Q(1, 1, kind="group", wait=3.0)}, {"1001": A(answered=1)},
        {"answered": 1, "missed": 0, "busy": 0}),
    # mod_fifo 2000: push 528.702123, bridge-caller-start 531.782128 (wait 3.08),
    # FIFO-Caller-Talk-Time-us 5560011; answered by 1002, 1001 LOSE_RACE
    "1.10.12-b/scenario_fifo_1002_plain.raw": (
        {"2000": Q(1, 1, kind="fifo", wait=3.1, talk=5.6)},
        {"1001": A(), "1002": A(answered=1)}, {"answered": 1, "missed": 0, "busy": 0}),
    # push 559.402127, bridge-caller-start 562.782130 (3.38), talk 5239997 µs
    "1.10.12-b/scenario_fifo_1002_json.raw": (
        {"2000": Q(1, 1, kind="fifo", wait=3.4, talk=5.2)},
        {"1001": A(), "1002": A(answered=1)}, {"answered": 1, "missed": 0, "busy": 0}),
    # mod_callcenter 2000@default, loopback contacts: member-queue-start 614.842126,
    # bridge-agent-start 617.922131 (3.08), bridge-agent-end 623.922127 (6.0);
    # 1002's phone answered 617.882142, hung up 623.862134
    "1.10.12-b/scenario_callcenter_loopback_1002_plain.raw": (
        {"2000@default": Q(1, 1, kind="callcenter", wait=3.1, talk=6.0)},
        {"1001@default": A(ext="1001"), "1002@default": A(answered=1, ext="1002", talk=6.0)},
        {"answered": 1, "missed": 0, "busy": 0}),
    # two callers: 6208 joins 347.882128, bridged to 1001 350.962126 (3.08);
    # 6209 joins 348.882121, bridged to 1002 355.582130 (6.70): mean 4.89, p90 6.70
    "1.10.12-b/scenario_two_callers_plain.raw": (
        {"2000@default": Q(2, 2, kind="callcenter", wait=4.9)},
        {"1001@default": A(answered=1, ext="1001"), "1002@default": A(answered=1, ext="1002")},
        {"answered": 2, "missed": 0, "busy": 0}),
    # ring group 2000: first ring 315.862130, 1001 answers 318.882127 (3.02); the blind
    # transfer to 1002 is not a new call of the queue, but 1002 answered it
    "1.10.12-b/scenario_blind_transfer_plain.raw": (
        {"2000": Q(1, 1, kind="group", wait=3.0)}, {"1001": A(answered=1), "1002": A(answered=1)},
        {"answered": 1, "missed": 0, "busy": 0}),
    # ring group 2000: 392.062130 → 395.062125
    "1.10.12-b/scenario_hold_plain.raw": (
        {"2000": Q(1, 1, kind="group", wait=3.0)}, {"1001": A(answered=1), "1002": A()},
        {"answered": 1, "missed": 0, "busy": 0}),
    # click-to-dial: 1001 calls out; no queue, no incoming call
    "1.10.12-b/scenario_agent_outbound_plain.raw": (
        {}, {"1001": A(outgoing=1)}, {"answered": 0, "missed": 0, "busy": 0}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_figures(name):
    queues, agents, calls = EXPECTED[name]
    snap = run(name).snapshot()
    assert {q.name for q in snap.queues} == set(queues)
    for qname, want in queues.items():
        got = snap.queue(qname)
        assert {k: getattr(got, k) for k in want} == want, qname
        # every caller that came is answered, gone, or still waiting
        assert got.offered == got.answered + got.abandoned + got.missed + got.waiting
    assert {a.name for a in snap.agents} == set(agents)
    for aname, want in agents.items():
        got = snap.agent(aname)
        assert {k: getattr(got, k) for k in want} == want, aname
    assert {k: getattr(snap.calls, k) for k in calls} == calls


def test_two_callers_each_wait_from_its_own_events():
    q = run("1.10.12-b/scenario_two_callers_plain.raw").snapshot().queue("2000@default")
    assert q.wait_p90 == 6.7  # 6209: 355.582130 - 348.882121
    assert q.answered_within == 2 and q.service_level == 1.0
    # talks: 6208 350.962126 → 357.022125 (6.06), 6209 355.582130 → 362.942128 (7.36)
    assert (q.talk_avg, q.talk_p90) == (6.7, 7.4)


def test_while_the_calls_are_up():
    """Mid-flow: who waits, who talks, who is on hold, read at the moment it is so."""
    stats = CallCentreStats()
    seen = {}
    for event in capture_events("1.10.12-b/scenario_two_callers_plain.raw"):
        stats.feed(event)
        ts = event.get("Event-Date-Timestamp")
        if ts == "1796124348882121" and event.get("CC-Action") == "members-count":
            seen["both waiting"] = stats.snapshot()
        if event.get("CC-Action") == "bridge-agent-start" and event.get("CC-Agent") == "1001@default":
            seen["6208 answered"] = stats.snapshot()
    both = seen["both waiting"].queue("2000@default")
    assert (both.waiting, both.offered, both.answered) == (2, 2, 0)
    assert [c.number for c in both.callers] == ["6208", "6209"]  # longest first
    assert both.longest_wait == 1.0  # 347.882128 → 348.882121
    first = seen["6208 answered"]
    assert (first.queue("2000@default").waiting, first.queue("2000@default").answered) == (1, 1)
    assert first.agent("1001@default").state == "talking"
    assert first.calls.waiting == 1

    stats = CallCentreStats()
    for event in capture_events("1.10.12-b/scenario_hold_plain.raw"):
        stats.feed(event)
        if event.event_name == "CHANNEL_HOLD":
            snap = stats.snapshot()
            assert snap.agent("1001").state == "on_hold"
            assert snap.agent("1001").current_call == 1.6  # answered 395.062125, held 396.642126
        if event.event_name == "CHANNEL_UNHOLD":
            assert stats.snapshot().agent("1001").state == "talking"
    assert stats.snapshot().agent("1001").state == "available"
