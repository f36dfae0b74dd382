"""The simulated switch obeys originate, uuid_hold, uuid_transfer, uuid_kill and
uuid_phone_event the way the real FreeSWITCH 1.10.12 did in the captures.

The strongest check: give the simulator the real call as it was up to the moment the
real switch got the command (its captured events, fired as they were), send the same
command over a real socket, and compare what comes out with what the real switch sent:
the same events, per leg in the same order, with the same headers and variables and the
same values — but for uuids (matched leg by leg), times, sequence numbers and the few
values the command itself decides (the hang-up disposition of a uuid_kill).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from eslkit.protocol import ApiResponse, CommandReply, EventFrame
from eslkit.sim import derive_moves
from eslkit.sim.derive import call_events
from eslkit.sim.fastpath import CallEvent, CallValues
from eslkit.sim.legs import Legs
from eslkit.sim.data import data_text
from eslkit.sim.scenarios import CALL_SCENARIOS, fresh_uuids, load_scenario
from tests.support.sim import sim_in_thread
from tests.test_sim_protocol import Client

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NUMBER_RE = re.compile(r"\d{9,}|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d|[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} [\d:]{8} (GMT|\+0000)")
# Whatever the command or the clock decides: not what the switch did with the call.
DECIDED = {"Event-Sequence", "Core-UUID", "variable_sip_hangup_disposition", "Caller-Channel-Hold-Accum"}
DURATIONS = re.compile(r"variable_(.*sec|.*msec|.*usec|mduration|uduration|duration|hold_accum_.*)$")


def test_moves_file_is_derived_from_the_captures(captures: Path) -> None:
    assert data_text("moves") == derive_moves.dump(derive_moves.build(captures.parent))


class Switch:
    """The simulator with a client subscribed to everything, and one to send commands."""

    def __init__(self, sim):
        self.sim = sim
        self.events = Client(*sim)
        self.events.read_until(lambda: self.events.frames)
        self.events.sock.sendall(b"auth ClueCon\n\nevent plain ALL\n\n")
        self.events.read_until(lambda: len(self.replies(self.events)) >= 2)
        self.control = Client(*sim)
        self.control.read_until(lambda: self.control.frames)
        self.control.sock.sendall(b"auth ClueCon\n\n")
        self.control.read_until(lambda: self.replies(self.control))

    @staticmethod
    def replies(client: Client) -> list:
        return [f for f in client.frames if isinstance(f, (CommandReply, ApiResponse))]

    def replay(self, events) -> None:
        """The captured call up to here, fired by the simulator as the switch fired it."""
        done = []
        for ev in events:
            self.sim.call_soon(self.sim.server.fire, ev)
        self.sim.call_soon(done.append, True)
        deadline = time.monotonic() + 10
        while not done and time.monotonic() < deadline:
            time.sleep(0.01)
        self.events.read_until(lambda: len(self.received()) >= len(events), timeout=10)

    def api(self, command: str) -> str:
        before = len(self.replies(self.control))
        self.control.sock.sendall(f"api {command}\n\n".encode())
        self.control.read_until(lambda: len(self.replies(self.control)) > before)
        return self.replies(self.control)[-1].text

    def received(self) -> list:
        return [f.event for f in self.events.frames if isinstance(f, EventFrame)]


@pytest.fixture
def switch():
    with sim_in_thread(speed=20.0) as sim:
        yield Switch(sim)


def normalised(event, names: dict[str, str]) -> list[tuple[str, str]]:
    out = []
    for k, v in event.pairs():
        v = v if isinstance(v, str) else "|".join(v)
        if k in DECIDED or k.startswith("Event-Date") or DURATIONS.match(k):
            v = "*"
        v = UUID_RE.sub(lambda m: names.get(m.group(0), "uuid"), v)
        out.append((k, NUMBER_RE.sub("T", v)))
    return out


def per_leg(events, names: dict[str, str]) -> dict[str, list]:
    legs: dict[str, list] = {}
    for ev in events:
        legs.setdefault(names.get(ev.get("Unique-ID") or "", "switch"), []).append(normalised(ev, names))
    return legs


def assert_same_as_captured(ours, real, names_ours: dict, names_real: dict) -> None:
    mine, theirs = per_leg(ours, names_ours), per_leg(real, names_real)
    assert sorted(mine) == sorted(theirs)
    for leg in theirs:
        assert [dict(e)["Event-Name"] for e in mine[leg]] == [dict(e)["Event-Name"] for e in theirs[leg]], leg
        for a, b in zip(mine[leg], theirs[leg]):
            assert a == b, (leg, dict(b)["Event-Name"], [x for x in a if x not in b], [x for x in b if x not in a])


def capture(captures: Path, name: str) -> list:
    return call_events((captures.parent / "1.10.12-b" / name).read_bytes())


def window(events, start: int, stop: int, legs: set[str], api: str) -> list:
    """The real switch's events of the command: its legs' and the switch's own, not the
    command's API event (the simulator fires its own) nor periodic ones."""
    return [ev for ev in events[start:stop] if (ev.get("Unique-ID") in legs) or
            (not ev.get("Unique-ID") and ev.get("API-Command") != api)]


def index(events, pick, start: int = 0) -> int:
    return next(i for i in range(start, len(events)) if pick(events[i]))


def test_hold_and_unhold_as_captured(switch: Switch, captures: Path) -> None:
    real = capture(captures, "scenario_hold_plain.raw")
    held = index(real, lambda e: e.name == "CHANNEL_CALLSTATE" and e.get("Channel-Call-State") == "HELD")
    a = real[held].get("Unique-ID")
    b = real[held].get("Other-Leg-Unique-ID")
    unheld = index(real, lambda e: e.name == "CHANNEL_CALLSTATE" and e.get("Channel-Call-State") == "UNHELD")
    end = index(real, lambda e: e.get("Hangup-Cause") == "NORMAL_CLEARING")
    names = {a: "A", b: "B"}

    switch.replay(real[:held])
    seen = len(switch.received())
    assert switch.api(f"uuid_hold {a}") == "+OK Success\n"
    switch.events.read_until(lambda: len(switch.received()) >= seen + 6)
    ours = switch.received()[seen:]
    # the command's own API event: after the events it fired at once, as on the real switch
    assert [e.name for e in ours[:3]] == ["CHANNEL_CALLSTATE", "CHANNEL_HOLD", "API"]
    assert_same_as_captured([e for e in ours if e.name != "API"], window(real, held, unheld, {a, b}, "uuid_hold"),
                            names, names)
    # switch_ivr_hold refuses a leg already HELD (and switch_ivr_unhold one that is not): -ERR, no event
    seen = len(switch.received())
    assert switch.api(f"uuid_hold {a}") == "-ERR Operation failed\n"
    switch.events.read_until(lambda: any(e.name == "API" for e in switch.received()[seen:]))
    assert not [e for e in switch.received()[seen:] if e.name in ("CHANNEL_HOLD", "CHANNEL_CALLSTATE")]

    seen = len(switch.received())
    assert switch.api(f"uuid_hold off {a}") == "+OK Success\n"
    switch.events.read_until(lambda: len(switch.received()) >= seen + 4)
    ours = [e for e in switch.received()[seen:] if e.name != "API"]
    assert_same_as_captured(ours, window(real, unheld, end, {a, b}, "uuid_hold"), names, names)
    assert switch.api(f"uuid_hold off {a}") == "-ERR Operation failed\n"


def test_blind_transfer_as_captured(switch: Switch, captures: Path) -> None:
    real = capture(captures, "scenario_blind_transfer_plain.raw")
    api = index(real, lambda e: e.get("API-Command") == "uuid_transfer")
    a = real[api].get("API-Command-Argument").split()[0]
    b = next(e.get("Other-Leg-Unique-ID") for e in reversed(real[:api])
             if e.get("Unique-ID") == a and e.get("Other-Leg-Unique-ID"))
    end = index(real, lambda e: e.name == "CHANNEL_HANGUP" and e.get("Unique-ID") == b, api)
    n = next(e.get("Unique-ID") for e in real[api:end] if e.get("Unique-ID") not in (a, b, None))

    switch.replay(real[:api])
    seen = len(switch.received())
    assert switch.api(f"uuid_transfer {a} -bleg 1002 XML public") == "+OK\n"
    want = window(real, api, end, {a, b, n}, "uuid_transfer")
    switch.events.read_until(lambda: len([e for e in switch.received()[seen:] if e.name != "API"]) >= len(want) + 1,
                             timeout=10)
    ours = [e for e in switch.received()[seen:] if not (e.name == "API" and e.get("API-Command") == "uuid_transfer")]
    new = next(e.get("Unique-ID") for e in ours if e.get("Unique-ID") not in (a, b, None))
    assert_same_as_captured(ours, want, {a: "A", b: "B", new: "N"}, {a: "A", b: "B", n: "N"})


@pytest.mark.parametrize("case", ["scenario_hold_plain.raw", "scenario_agent_outbound_plain.raw"])
def test_kill_the_leg_that_runs_the_bridge_as_captured(switch: Switch, captures: Path, case: str) -> None:
    """The captured calls ended with a BYE from the phone of the leg that ran the bridge;
    uuid_kill of that leg ends both legs the same way (the switch sends the BYE)."""
    real = capture(captures, case)
    end = index(real, lambda e: e.name == "CHANNEL_HANGUP" and e.get("Hangup-Cause") == "NORMAL_CLEARING")
    k = real[end].get("Unique-ID")
    p = real[end].get("Other-Leg-Unique-ID")
    names = {k: "K", p: "P"}

    switch.replay(real[:end])
    seen = len(switch.received())
    assert switch.api(f"uuid_kill {k}") == "+OK\n"
    want = window(real, end, len(real), {k, p}, "uuid_kill")
    switch.events.read_until(lambda: len(switch.received()) >= seen + len(want) + 1)
    ours = [e for e in switch.received()[seen:] if e.name != "API"]
    assert_same_as_captured(ours, want, names, names)
    assert switch.sim.call(_channels(switch.sim.server)) == 0


async def _channels(server) -> int:
    return len(server.channels)


def _kept(legs) -> dict[str, int]:
    """How many legs `Legs` still holds something about: none once every call has ended."""
    names = ("_recent", "_states", "partner", "owner", "apps", "calls", "clocks", "taken", "recordings")
    return {name: len(getattr(legs, name)) for name in names if getattr(legs, name)}


async def _kept_by(server) -> dict[str, int]:
    return _kept(server.legs)


@pytest.mark.parametrize("name", CALL_SCENARIOS)
def test_legs_forget_a_recorded_call_once_it_ends(name: str) -> None:
    """FreeSWITCH says CHANNEL_STATE (CS_DESTROY) after CHANNEL_DESTROY: that last word
    must not bring the leg back (it did: a paced simulator grew by every leg it played)."""
    scenario = load_scenario(name)
    legs = Legs()
    for _ in range(3):
        values = CallValues(int(time.time() * 1e6), fresh_uuids(scenario.uuids), "core", None)
        for i, template in enumerate(scenario.templates):
            legs.track(CallEvent(template, values, i))
    assert _kept(legs) == {}


def test_the_simulator_keeps_nothing_of_the_calls_it_played() -> None:
    with sim_in_thread(scenario="blind-transfer", speed=20.0) as sim:
        switch = Switch(sim)

        def over() -> bool:
            events = switch.received()
            legs = {e.get("Unique-ID") for e in events if e.name == "CHANNEL_CREATE"}
            gone = {e.get("Unique-ID") for e in events if e.name == "CHANNEL_STATE"
                    and e.get("Channel-State") == "CS_DESTROY"}
            return bool(legs) and legs <= gone

        switch.events.read_until(over, timeout=10)
        assert over()
        assert switch.sim.call(_kept_by(switch.sim.server)) == {}


def test_originate_as_captured(switch: Switch, captures: Path) -> None:
    """bgapi originate of the click-to-dial capture, on an idle simulator: the agent's
    phone rings, answers, the far party rings and answers, as the real switch had it; the
    job finishes when the agent answered."""
    real = capture(captures, "scenario_agent_outbound_plain.raw")
    end = index(real, lambda e: e.name == "CHANNEL_HANGUP")
    command = real[index(real, lambda e: e.get("API-Command") == "originate")]
    line = f"{command.get('API-Command')} {command.get('API-Command-Argument')}"
    job_uuid = "0b5a1a8e-6c4f-4d2e-9d7b-1f2e3d4c5b6a"
    switch.control.sock.sendall(f"bgapi {line}\nJob-UUID: {job_uuid}\n\n".encode())
    switch.events.read_until(lambda: len(switch.received()) >= end, timeout=10)
    ours = switch.received()[:end]
    legs = [e.get("Unique-ID") for e in real if e.name == "CHANNEL_OUTGOING"]
    mine = [e.get("Unique-ID") for e in ours if e.name == "CHANNEL_OUTGOING"]
    names_real = {legs[0]: "A", next(u for u in legs if u != legs[0]): "F", "job": "job"}
    names_ours = {mine[0]: "A", next(u for u in mine if u != mine[0]): "F", job_uuid: "job"}
    for name in ("Job-UUID",):
        for e in real:
            if e.get(name):
                names_real[e.get(name)] = "job"
    assert_same_as_captured(ours, real[:end], names_ours, names_real)
    job = next(e for e in ours if e.name == "BACKGROUND_JOB")
    assert job.body == f"+OK {mine[0]}\n"


# --- on the simulator's own calls --------------------------------------------------------------

HANGUP_SEQUENCE = ["CHANNEL_HANGUP", "CHANNEL_STATE", "CHANNEL_CALLSTATE", "PRESENCE_IN", "CHANNEL_STATE",
                   "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY", "CHANNEL_STATE"]


def after(events: list, index: int, uuid: str) -> list[str]:
    return [e.name for e in events[index:] if e.get("Unique-ID") == uuid]


def test_kill_an_agent_leg_of_a_recorded_queue_call() -> None:
    """1001 hangs up a queue call: its leg goes as a bridged leg that does not run the
    bridge went in the captures, the caller's bridge ends and it hangs up too; the
    recording does not play the call's end again."""
    with sim_in_thread(scenario="queue", speed=2.0) as sim:
        switch = Switch(sim)
        switch.events.read_until(lambda: [e.name for e in switch.received()].count("CALL_UPDATE") >= 2, timeout=10)
        bridge = next(e for e in switch.received() if e.name == "CHANNEL_BRIDGE")
        caller, agent = bridge.get("Unique-ID"), bridge.get("Other-Leg-Unique-ID")
        seen = len(switch.received())
        assert switch.api(f"uuid_kill {agent}") == "+OK\n"
        switch.events.read_until(lambda: False, timeout=4.0)  # past the recorded call's end
        events = switch.received()
        assert after(events, seen, agent) == HANGUP_SEQUENCE
        assert after(events, seen, caller) == ["CHANNEL_UNBRIDGE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP",
                                               "CHANNEL_STATE", "CHANNEL_CALLSTATE", "CHANNEL_STATE",
                                               "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY", "CHANNEL_STATE"]
        ended = [e for e in events[seen:] if e.name == "CHANNEL_HANGUP_COMPLETE"]
        assert [e.get("Hangup-Cause") for e in ended] == ["NORMAL_CLEARING", "NORMAL_CLEARING"]
        assert switch.api("show channels") == "\n0 total.\n"
        assert switch.sim.call(_kept_by(switch.sim.server)) == {}


def test_a_transferred_caller_hangs_up_when_its_recording_did() -> None:
    with sim_in_thread(scenario="queue", speed=2.0) as sim:
        switch = Switch(sim)
        switch.events.read_until(lambda: any(e.name == "CHANNEL_BRIDGE" for e in switch.received()), timeout=10)
        bridge = next(e for e in switch.received() if e.name == "CHANNEL_BRIDGE")
        caller, agent = bridge.get("Unique-ID"), bridge.get("Other-Leg-Unique-ID")
        assert switch.api(f"uuid_transfer {agent} -bleg 1002 XML default") == "+OK\n"
        switch.events.read_until(lambda: any(e.name == "CHANNEL_HANGUP" and e.get("Unique-ID") == caller
                                             for e in switch.received()), timeout=10)
        events = switch.received()
        hangup = next(e for e in events if e.name == "CHANNEL_HANGUP" and e.get("Unique-ID") == caller)
        answered = int(bridge.get("Caller-Channel-Answered-Time"))
        # the captured caller hung up 5.02 s after it was answered; its recording still says so
        assert abs((int(hangup.get("Event-Date-Timestamp")) - answered) / 1e6 - 5.02) < 0.3
        new = next(e.get("Unique-ID") for e in events if e.name == "CHANNEL_CREATE"
                   and e.get("Unique-ID") not in (caller, agent) and e.get("Caller-Destination-Number") == "1002")
        switch.events.read_until(lambda: any(e.name == "CHANNEL_DESTROY" and e.get("Unique-ID") == new
                                             for e in switch.received()), timeout=5)
        assert switch.api("show channels") == "\n0 total.\n"
        assert switch.sim.call(_kept_by(switch.sim.server)) == {}


def test_replies_when_there_is_nothing_to_act_on(switch: Switch) -> None:
    unknown = "6c0d2b8e-0000-4000-8000-000000000000"
    assert switch.api(f"uuid_kill {unknown}") == "-ERR No such channel!\n"
    assert switch.api("uuid_kill") == "-USAGE: <uuid> [cause]\n"
    assert switch.api(f"uuid_hold {unknown}") == "-ERR Operation failed\n"
    assert switch.api("uuid_hold") == "-USAGE: [off|toggle] <uuid> [<display>]\n"
    assert switch.api(f"uuid_transfer {unknown} -bleg 1002") == "-ERR No such channel!\n"
    assert switch.api("uuid_transfer x") == "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
    assert switch.api(f"uuid_phone_event {unknown} talk") == "-ERR Operation failed\n"
    assert switch.api("originate sofia/external/6208 &park") == "-ERR CHAN_NOT_IMPLEMENTED\n"


def test_a_ringing_phone_answers_on_talk_and_a_killed_one_fails_the_job() -> None:
    with sim_in_thread(speed=0.2) as sim:  # the phone would ring 15 s
        switch = Switch(sim)
        dialled = time.monotonic()  # the phone rings from after this: its own answer comes 15 s later
        reply = switch.api("originate {origination_caller_id_number=1001}user/1001 &bridge(sofia/external/6208@x)")
        leg = reply.split()[1]
        switch.events.read_until(lambda: any(e.name == "CHANNEL_PROGRESS" for e in switch.received()))
        assert switch.api(f"uuid_phone_event {leg} talk") == "+OK Success\n"
        switch.events.read_until(lambda: any(e.name == "CHANNEL_ANSWER" for e in switch.received()), timeout=30)
        assert time.monotonic() - dialled < 15  # answered before the ring's end: by the talk event
        answer = next(e for e in switch.received() if e.name == "CHANNEL_ANSWER")
        assert answer.get("Unique-ID") == leg and answer.get("Caller-Caller-ID-Number") == "1001"

        job_uuid = "7d1f8f0e-1111-4222-8333-444455556666"
        replies = len(switch.replies(switch.control))
        switch.control.sock.sendall(f"bgapi originate {{origination_caller_id_number=1002}}user/1002 6209\n"
                                    f"Job-UUID: {job_uuid}\n\n".encode())
        switch.control.read_until(lambda: len(switch.replies(switch.control)) > replies)
        switch.events.read_until(lambda: any(e.name == "CHANNEL_PROGRESS" and e.get("Caller-Destination-Number")
                                             == "1002" for e in switch.received()))
        ringing = next(e.get("Unique-ID") for e in switch.received() if e.name == "CHANNEL_PROGRESS"
                       and e.get("Caller-Destination-Number") == "1002")
        assert switch.api(f"uuid_kill {ringing} USER_BUSY") == "+OK\n"
        switch.events.read_until(lambda: any(e.name == "BACKGROUND_JOB" for e in switch.received()))
        job = next(e for e in switch.received() if e.name == "BACKGROUND_JOB")
        assert (job.get("Job-UUID"), job.body) == (job_uuid, "-ERR USER_BUSY\n")
        switch.events.read_until(lambda: any(e.name == "CHANNEL_HANGUP_COMPLETE" and e.get("Unique-ID") == ringing
                                             for e in switch.received()))
        end = next(e for e in switch.received() if e.name == "CHANNEL_HANGUP_COMPLETE" and e.get("Unique-ID") == ringing)
        assert (end.get("Hangup-Cause"), end.get("variable_hangup_cause_q850")) == ("USER_BUSY", "17")


def test_hanging_up_a_dial_while_the_far_party_rings_cancels_it() -> None:
    with sim_in_thread(speed=0.5) as sim:  # the far party would ring 6 s
        switch = Switch(sim)
        leg = switch.api("originate {origination_caller_id_number=1001}user/1001 6208 XML default").split()[1]
        switch.events.read_until(lambda: any(e.name == "CHANNEL_PROGRESS" for e in switch.received()))
        assert switch.api(f"uuid_phone_event {leg} talk") == "+OK Success\n"
        switch.events.read_until(lambda: any(e.name == "CHANNEL_PROGRESS" and e.get("Unique-ID") != leg
                                             for e in switch.received()), timeout=5)
        far = next(e.get("Unique-ID") for e in switch.received() if e.name == "CHANNEL_PROGRESS"
                   and e.get("Unique-ID") != leg)
        assert switch.api(f"uuid_kill {leg}") == "+OK\n"
        switch.events.read_until(lambda: False, timeout=7.0)  # past when the far party would have answered
        events = switch.received()
        # as a ringing leg hangs up, but for PRESENCE_IN: no presence id on a far party's leg
        assert after(events, events.index(next(e for e in events if e.name == "CHANNEL_HANGUP")), far) == \
            [n for n in HANGUP_SEQUENCE if n != "PRESENCE_IN"]
        assert "CHANNEL_ANSWER" not in after(events, 0, far)
        end = next(e for e in events if e.name == "CHANNEL_HANGUP_COMPLETE" and e.get("Unique-ID") == far)
        assert end.get("Hangup-Cause") == "ORIGINATOR_CANCEL"
        assert switch.api("show channels") == "\n0 total.\n"
