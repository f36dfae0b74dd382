"""The simulator's call-centre flows against the real calls they come from: over a real
socket, `eslkit sim --scenario X` sends the same events per leg, in the same order,
as the capture, and the call tracker gives the same popups for both.  The flows no
capture holds (built by eslkit.sim.construct) give the popups their facts imply,
written here by hand.  And the flows play looped, mixed by the load generator, and in
the demo's morning, where every outcome shows within the first minute."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from eslkit.protocol import EventFrame
from eslkit.sim import derive
from eslkit.sim.scenarios import CALL_SCENARIOS, MIXES, SCENARIOS, load_scenario
from tests.support.sim import ESLKIT, scenario_in_parts, sim_in_thread
from tests.test_calls_flows import (
    CALLER_B, answered_call, lost_race, rec, shown,
    by_ext as popups,  # the records per extension, following every agent (as relay does)
)
from tests.test_sim_protocol import talk

DATA = Path(__file__).parent / "data" / "fs-captures"

DERIVED = {
    "queue": "1.10.12/scenario_queue_plain.raw",
    "noanswer": "1.10.12/scenario_noanswer_plain.raw",
    "fifo": "1.10.12-b/scenario_fifo_1002_plain.raw",
    "callcenter-loopback": "1.10.12-b/scenario_callcenter_loopback_1002_plain.raw",
    "two-callers": "1.10.12-b/scenario_two_callers_plain.raw",
    "blind-transfer": "1.10.12-b/scenario_blind_transfer_plain.raw",
    "hold": "1.10.12-b/scenario_hold_plain.raw",
    "click-to-dial": "1.10.12-b/scenario_agent_outbound_plain.raw",
}
# What the flows built from the captures must show, by hand from their facts.
BUILT = {
    "busy": {"1001": [], "1002": [rec("ringing"), rec("ended", "busy", "USER_BUSY")]},
    "callcenter": {"1001": answered_call(), "1002": lost_race()},
    "busy-queue": {"1001": answered_call(), "1002": [rec("ringing"), rec("ended", "busy", "USER_BUSY")]},
    "abandon": {"1001": [rec("ringing"), rec("ended", "missed", "ORIGINATOR_CANCEL")],
                "1002": [rec("ringing"), rec("ended", "missed", "ORIGINATOR_CANCEL")]},
    # 6209 rings 1001 while 1001 talks to 6208: a second leg, the same Channel-Name
    "call-waiting": {"1001": [rec("ringing"), rec("answered"), rec("ringing", caller=CALLER_B),
                              rec("ended", "answered", "NORMAL_CLEARING"),
                              rec("ended", "missed", "ORIGINATOR_CANCEL", caller=CALLER_B)],
                     "1002": lost_race()},
    # 1002's phone registered as sip:97825064@…: still 1002's popup, never one for 97825064
    "contact-alias": {"1001": answered_call(), "1002": lost_race()},
}


def test_every_flow_class_has_a_scenario_tested_here():
    assert set(DERIVED) | set(BUILT) == set(CALL_SCENARIOS) == set(SCENARIOS)


def play(name: str, fmt: str = "plain") -> list:
    """Every event of one run of a scenario, as a client subscribed to ALL receives it."""
    count = len(load_scenario(name).templates)
    with sim_in_thread(scenario=None, speed=None) as sim:
        client = talk(sim.host, sim.port, f"auth ClueCon\n\nevent {fmt} ALL\n\n".encode())
        sim.call(sim.server.play(name))
        client.read_until(lambda: sum(isinstance(f, EventFrame) for f in client.frames) >= count, timeout=10)
        client.close()
    return [f.event for f in client.frames if isinstance(f, EventFrame)]


def per_leg(events) -> list[list[str]]:
    """Event names per channel (uuid-less events: the switch's own), legs in order of appearance."""
    legs: dict = {}
    for e in events:
        legs.setdefault(e.unique_id, []).append(e.name)
    return list(legs.values())


def comparable(records) -> list[dict]:
    """A record without what is fresh in every run (uuids, clock)."""
    return [{k: v for k, v in r.items() if k not in ("time", "call_uuid", "leg_uuid")} for r in records]


@pytest.mark.parametrize("name", sorted(DERIVED))
def test_a_derived_flow_plays_its_capture(name):
    real = derive.call_events((DATA / DERIVED[name]).read_bytes())
    ours = play(name)
    assert per_leg(ours) == per_leg(real)
    assert [e.name for e in ours] == [e.name for e in real]
    theirs = popups(real)
    assert set(theirs) <= {"1001", "1002"} and theirs
    assert {ext: comparable(r) for ext, r in popups(ours).items()} == {
        ext: comparable(r) for ext, r in theirs.items()}


@pytest.mark.parametrize("name", sorted(DERIVED))
def test_a_derived_flow_gives_its_captures_wallboard(name):
    """The statistics engine (wallboard, watch --stats, /metrics) on the simulated flow and on
    the real call: the same queues, agents and all-calls figures at the end."""
    from eslkit.stats import CallCentreStats

    def figures(events) -> dict:
        stats = CallCentreStats()
        for event in events:
            stats.feed(event)
        stats.tick(stats.now + 60)  # a minute later: nothing left undecided
        snap = stats.snapshot().to_dict()
        return {k: v for k, v in snap.items() if k not in ("time", "day_start", "since")}

    real = figures(derive.call_events((DATA / DERIVED[name]).read_bytes()))
    assert real["agents"]  # every flow rings someone
    assert figures(play(name)) == real


@pytest.mark.parametrize("name", sorted(BUILT))
def test_a_built_flow_gives_the_popups_its_facts_imply(name):
    got = popups(play(name))
    assert set(got) <= {"1001", "1002"}
    for ext in ("1001", "1002"):
        assert shown(got.get(ext, [])) == BUILT[name][ext], ext


def test_built_flows_keep_the_shape_of_what_they_come_from():
    """Same headers as their source events; the busy agent leg refuses after 1 s; the
    abandoned call rings both agents for 6 s; the alias is only in the name and number."""
    queue = load_scenario("queue")
    busy = load_scenario("busy-queue")
    assert sorted(t.event_name for t in busy.templates) == sorted(t.event_name for t in queue.templates)
    created = {t.unique_id: t.at for t in busy.templates if t.event_name == "CHANNEL_CREATE"}
    refused = next(t for t in busy.templates if t.event.get("Hangup-Cause") == "USER_BUSY")
    assert refused.at - created[refused.unique_id] == pytest.approx(1.0, abs=0.01)
    events = play("abandon")
    legs = [e for e in events if e.name == "CHANNEL_CREATE" and e.direction == "outbound"]
    assert sorted(e.destination for e in legs) == ["1001", "1002"]
    assert {e.get("Channel-Name") for e in legs} == {"sofia/internal/1001@127.0.0.1:5071",
                                                      "sofia/internal/1002@127.0.0.1:5072"}
    caller = next(e for e in events if e.name == "CHANNEL_CREATE" and e.direction == "inbound")
    assert caller.destination == "2000"
    alias = [e for e in play("contact-alias") if e.get("Channel-Name", "").startswith("sofia/internal/97825064@")]
    assert alias and {e.get("variable_dialed_user") for e in alias if e.name == "CHANNEL_CREATE"} == {"1002"}
    waiting = [e for e in play("call-waiting") if e.name == "CHANNEL_CREATE" and e.direction == "outbound"
               and e.get("Channel-Name") == "sofia/internal/1001@127.0.0.1:5071"]
    assert len(waiting) == 2 and len({e.unique_id for e in waiting}) == 2


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_flows_in_every_wire_format(fmt):
    """The fifo call in JSON (a real capture of it exists) and XML: the same popups."""
    assert {ext: comparable(r) for ext, r in popups(play("fifo", fmt)).items()} == {
        ext: comparable(r) for ext, r in popups(play("fifo")).items()}
    real = derive.call_events((DATA / "1.10.12-b/scenario_fifo_1002_json.raw").read_bytes())
    assert {ext: shown(r) for ext, r in popups(real).items()} == {
        ext: shown(r) for ext, r in popups(play("fifo", fmt)).items()}


def test_every_flow_loops_with_fresh_calls():
    for name in CALL_SCENARIOS:
        count = len(load_scenario(name).templates)
        with sim_in_thread(scenario=name, speed=None, loop=True) as sim:
            client = talk(sim.host, sim.port, b"auth ClueCon\n\nevent plain ALL\n\n")
            client.read_until(lambda: sum(isinstance(f, EventFrame) for f in client.frames) >= 2 * count,
                              timeout=10)
            client.close()
        events = [f.event for f in client.frames if isinstance(f, EventFrame)][:2 * count]
        first, second = events[:count], events[count:]
        assert [e.name for e in first] == [e.name for e in second], name
        assert not {e.unique_id for e in first if e.unique_id} & {e.unique_id for e in second}, name


def test_a_load_mix_of_every_flow():
    mix = "+".join(CALL_SCENARIOS)
    spec = load_scenario(f"load:calls={2 * len(CALL_SCENARIOS)},cps=1000,concurrent=6,agents=6,template={mix}")
    per_call = sum(len(load_scenario(n).templates) for n in CALL_SCENARIOS)
    with sim_in_thread(scenario=spec, speed=None, autostart=False) as sim:
        client = talk(sim.host, sim.port, b"auth ClueCon\n\nevent plain ALL\n\n")
        sim.call_soon(sim.server.spawn, sim.server.play(spec))  # read while it plays: it waits for readers
        client.read_until(lambda: sum(isinstance(f, EventFrame) for f in client.frames) >= 2 * per_call, timeout=30)
        client.close()
    events = [f.event for f in client.frames if isinstance(f, EventFrame)]
    assert len(events) == 2 * per_call
    records = [r for rs in popups(events).values() for r in rs]
    assert {r["ext"] for r in records} <= {str(1001 + i) for i in range(6)}
    outcomes = {r["outcome"] for r in records if r["state"] == "ended"}
    assert outcomes == {"answered", "answered_elsewhere", "missed", "busy"}
    assert {r["direction"] for r in records} == {"incoming", "outgoing"}
    assert any(r["on_hold"] for r in records) and any(r["transferred_from"] for r in records)
    assert not [r for r in records if r["state"] == "ended" and r["outcome"] == "failed"]


def test_bad_mix_is_a_clear_error():
    from eslkit.errors import InputFileError

    with pytest.raises(InputFileError) as err:
        load_scenario("load:template=queue+nosuchflow")
    assert "nosuchflow" in str(err.value) and err.value.fix


def test_the_morning_shows_every_outcome_within_a_minute():
    """The demo's mix, on the load generator's schedule (a call at most every 1/cps
    seconds, one at a time): when each outcome is first seen, from each flow's own times."""
    spec = load_scenario("morning")
    assert spec.concurrent == 1 and spec.templates[0] == "queue"
    start = 0.0
    first_seen: dict[str, float] = {}
    for i, name in enumerate(spec.templates):
        start = max(start, i / spec.cps)
        scenario = load_scenario(name)
        records = [r for rs in popups(play(name)).values() for r in rs]
        begin = min(r["time"] for r in records)
        for r in records:
            if r["state"] == "ended":
                from datetime import datetime

                at = (datetime.fromisoformat(r["time"].replace("Z", "+00:00"))
                      - datetime.fromisoformat(begin.replace("Z", "+00:00"))).total_seconds()
                first_seen.setdefault(r["outcome"], start + at)
        start += scenario.duration
        if len(first_seen) == 4:
            break
    assert set(first_seen) == {"answered", "answered_elsewhere", "missed", "busy"}
    assert max(first_seen.values()) < 60, first_seen


def test_demo_plays_the_morning(tmp_path):
    """`eslkit demo --format json`: the mix reaches the popup, every outcome comes."""
    exe = [str(ESLKIT)] if ESLKIT.exists() else ["python", "-m", "eslkit"]
    proc = subprocess.Popen([*exe, "demo", "--format", "json", "--speed", "20"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ})
    records = []
    try:
        for line in proc.stdout:
            records.append(json.loads(line))
            if {r["outcome"] for r in records} >= {"answered", "answered_elsewhere", "missed", "busy"}:
                break
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert {r["outcome"] for r in records} >= {"answered", "answered_elsewhere", "missed", "busy"}
    assert records[0]["caller_number"] == "6208"
    assert "morning" in err and "Traceback" not in err
    assert MIXES["morning"]


# --- a popup, a relay, a watch started in the middle of a call -----------------------------------


@contextlib.contextmanager
def mid_call(name: str, at: float):
    """The simulator (password PASSWORD) with one call of `name` played up to `at` seconds,
    and the function that plays the rest of it at once: the test runs it once the client it
    starts has shown the call (a client that takes seconds to start on a loaded machine must
    not find the call over, or past the moment the test is about)."""
    from tests.test_hardening_restart import PASSWORD

    with sim_in_thread(password=PASSWORD, speed=None) as sim:  # no scenario of its own
        before, rest = scenario_in_parts(sim.server, name, at)
        sim.run(before)
        yield sim, lambda: sim.run(rest)


def test_popup_started_mid_call_shows_it_at_once_and_ends_it_right():
    """The fifo call, already answered by 1002 (its caller ID flipped to 1002 / Outbound
    Call) when `eslkit popup --ext 1002` connects: `show channels as json` shows it at once,
    with the caller; the hangup ends it answered, with the times the events carry."""
    from tests.test_hardening_restart import child  # ESL_PASSWORD in its environment

    with mid_call("fifo", 3.1) as (sim, rest):  # 1002 answered at 3.08 s; 1001's leg is gone
        popup = child("popup", "--port", str(sim.port), "--ext", "1002,1001", "--format", "json")
        try:
            assert popup.wait_for(lambda: popup.records(), 30), popup.err  # from show channels
            rest()
            assert popup.wait_for(lambda: any(r["state"] == "ended" for r in popup.records()), 15), popup.err
        finally:
            popup.stop()
    got = [(r["ext"], r["state"], r["outcome"], r["other_number"], r["other_name"], r["direction"], r["queue"],
            r["ring_seconds"], r["talk_seconds"]) for r in popup.records()]
    assert got[0] == ("1002", "answered", None, "6208", "Caller 6208", "incoming", None, None, None)
    assert got[-1][:6] == ("1002", "ended", "answered", "6208", "Caller 6208", "incoming")
    assert got[-1][7:] == (3.0, 5.6)  # the capture's own times: 3.0 s ring, 5.6 s talk
    assert len(got) == 2  # 1001's leg was gone already: nothing to show for it
    # the caller's call (the rows tie the fifo agent to it only by call_uuid), and its queue by the end
    records = popup.records()
    assert len({r["call_uuid"] for r in records}) == 1 and records[0]["call_uuid"] != records[0]["leg_uuid"]
    assert [r["dialed"] for r in records] == ["2000", "2000"] and got[-1][6] == "2000"


def test_relay_started_mid_call_publishes_it_at_once_to_the_agent(mosquitto):
    """The relay connects while 1001 is on hold (scenario hold): the agent's desktop gets
    the call at once — answered, on hold, the caller — and then its true end."""
    from tests.support.brokers import MqttCollector
    from tests.test_hardening_restart import child

    popups = MqttCollector(mosquitto, "freeswitch/+/agents/1001/popup")
    with mid_call("hold", 5.0) as (sim, rest):  # on hold from 4.58 s, taken off at 6.58 s
        relay = child("relay", "--port", str(sim.port), "--to", mosquitto.url, "--client-id", "mid-call")
        try:
            assert popups.wait_for(lambda m: m, 30), relay.err  # from show channels
            rest()
            assert popups.wait_for(lambda m: any(b'"ended"' in p for _, p, _ in m), 20), relay.err
        finally:
            assert relay.stop(signal.SIGTERM) == 0, relay.err
            popups.close()
    topics = {t for t, _, _ in popups.messages}
    assert topics == {"freeswitch/vm/agents/1001/popup"}  # the switch's name, from its channel rows
    got = [json.loads(p) for _, p, _ in popups.messages]
    assert [(r["state"], r["on_hold"], r["other_number"], r["outcome"]) for r in got] == [
        ("answered", True, "6208", None), ("answered", False, "6208", None), ("ended", False, "6208", "answered")]
    assert got[-1]["ring_seconds"] == 3.0 and got[-1]["talk_seconds"] == 6.5


@pytest.mark.parametrize("name", ["hold", "click-to-dial", "contact-alias"])
def test_eslkit_sim_and_eslkit_popup_as_a_user_runs_them(name):
    """`eslkit sim --scenario NAME --speed max` and `eslkit popup --ext 1001,1002`, both real
    processes: the popups of the flow (what its capture, or its facts, give)."""
    from tests.support.sim import sim_subprocess
    from tests.test_hardening_restart import PASSWORD, child

    expected = {ext: shown(r) for ext, r in popups(play(name)).items()}
    with sim_subprocess("--scenario", name, "--speed", "max", password=PASSWORD) as (host, port):
        popup = child("popup", "--host", host, "--port", str(port), "--ext", "1001,1002", "--format", "json")
        want = sum(len(r) for r in expected.values())
        try:
            assert popup.wait_for(lambda: len(popup.records()) >= want, 20), popup.err
        finally:
            assert popup.stop() == 0, popup.err
    got: dict[str, list] = {}
    for record in popup.records():
        got.setdefault(record["ext"], []).append(record)
    assert {ext: shown(r) for ext, r in got.items()} == expected
    if name == "click-to-dial":
        assert DERIVED[name] and expected["1001"][0]["direction"] == "outgoing"


def test_sim_help_lists_every_flow():
    exe = [str(ESLKIT)] if ESLKIT.exists() else ["python", "-m", "eslkit"]
    out = subprocess.run([*exe, "sim", "--help"], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "COLUMNS": "100"}).stdout
    for name in (*CALL_SCENARIOS, *MIXES):
        assert f" {name} " in out, name


def test_watch_stats_started_mid_call_counts_the_call_already_up():
    """`eslkit watch --stats` connecting during the hold call: the call is active at once
    (from `show channels as json`) and counted answered when it ends, not missed."""
    from tests.test_hardening_restart import PASSWORD, child
    from tests.test_phone import ApiLog

    with mid_call("hold", 3.1) as (sim, rest):  # 1001 talks to 6208 (bridged at 3.02 s)
        switch = ApiLog(sim, PASSWORD)
        watch = child("watch", "--port", str(sim.port), "--stats", "--format", "json")
        try:
            switch.wait_asked("show channels as json")  # watch asked what is up
            rest()
            # watch has read the call's end itself (the test's own connection could be ahead of it)
            assert watch.wait_for(lambda: [r.get("Event-Name") for r in watch.records()].count("CHANNEL_DESTROY") >= 2,
                                  30), watch.err
        finally:
            switch.client.close()
            assert watch.stop() == 0, watch.err
    stats = json.loads(watch.out[-1])["stats"]
    assert (stats["calls_answered"], stats["calls_missed"], stats["calls_busy"]) == (1, 0, 0)
    assert stats["active_calls"] == 0 and stats["active_channels"] == 0
