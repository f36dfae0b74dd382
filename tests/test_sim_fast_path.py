"""The contract of the simulator's fast path (`eslkit.sim.fastpath`): it makes the same
events as the plain way of making them (`Event.serialize`), byte for byte.

`CallEvent` renders a template from pre-split pieces and a call's encoded
values; here every template of every call scenario, filled with load-generator
numbers, is compared with the template's own `Event` with the values put into
its headers first and then serialised by `Event.serialize` — in all three
formats.  The agent pool must choose exactly as "sort the agents by (calls,
position), take two" did; the date cache must follow the time zone; and a
load run over real sockets must give every client well-formed frames in
sequence order, the same events in every format.
"""

from __future__ import annotations

import random
import time
import uuid

import pytest

from eslkit.event import Event
from eslkit.protocol import EventFrame
from eslkit.sim.events import SimEvent
from eslkit.sim.fastpath import CallEvent, CallValues, Template
from eslkit.sim.channels import CallRegistry
from eslkit.sim.scenarios import CALL_SCENARIOS, AgentPool, fresh_uuids, load_scenario
from tests.support.sim import sim_in_thread
from tests.test_sim_protocol import talk

FORMATS = ("plain", "json", "xml")


def reference(template: Template, values: CallValues, seq: int) -> Event:
    """The template's event with every token filled into the decoded values."""
    def fill(v):
        return [values.resolve(x, seq) for x in v] if isinstance(v, list) else values.resolve(v, seq)

    body = template.event.body
    return Event([(k, fill(v)) for k, v in template.event.pairs()], fill(body) if body else body)


def load_values(caller: str, agents: tuple[str, str], n: int) -> CallValues:
    base = int(time.time()) * 1_000_000 + 123_456
    return CallValues(base, [str(uuid.uuid4()) for _ in range(n)], str(uuid.uuid4()),
                      {"CALLER": caller, "AGENT1": agents[0], "AGENT2": agents[1]})


@pytest.mark.parametrize("name", CALL_SCENARIOS)
def test_contract_call_events_equal_event_serialize(name: str) -> None:
    scenario = load_scenario(name)
    for caller, agents in (("6201", ("1001", "1002")), ("9999", ("1187", "1200"))):
        values = load_values(caller, agents, scenario.uuids)
        for seq, template in enumerate(scenario.templates, start=999_990):  # digits grow mid-call
            event = CallEvent(template, values, seq)
            want = reference(template, values, seq)
            assert event.get("Event-Sequence") == str(seq)
            # case-insensitive, as switch_event_get_header (mod_fifo's PRESENCE_IN has "unique-id: 2000")
            assert event.get("unique-id") == next((v for k, v in want.pairs() if k.lower() == "unique-id"), None)
            for fmt in FORMATS:
                payload = want.serialize(fmt).encode("utf-8")
                frame = event.frame(fmt)
                assert frame == b"Content-Length: %d\nContent-Type: text/event-%s\n\n%s" % (
                    len(payload), fmt.encode(), payload), (name, template.event_name, fmt)
                assert event.frame(fmt) == frame  # the shared slot for the sequence number is refilled


@pytest.mark.parametrize("name", CALL_SCENARIOS)
def test_contract_bursts_equal_their_call_events(name: str) -> None:
    """A burst's chunks are its events' frames, whole and in order, whatever the lengths of the
    call's values (the frame heads are worked out from them), the sequence numbers' digits or
    the format; each chunk stays under Burst.CHUNK unless it is one frame."""
    from eslkit.protocol import Parser

    scenario = load_scenario(name)
    calls = [("6201", ("1001", "1002")), ("+44 20 7946 0958", ("10010", "7")), ("9999", ("1187", "1200"))]
    seq = 999_950  # the digits grow in the middle of a burst
    for caller, agents in calls:  # the same bursts serve calls of different lengths in turn
        values = load_values(caller, agents, scenario.uuids)
        for burst in scenario.bursts:
            for fmt in FORMATS:
                chunks, counts = burst.frames(fmt, values, seq)
                want = [CallEvent(t, values, seq + j).frame(fmt) for j, t in enumerate(burst.templates)]
                assert b"".join(c for (c,) in chunks) == b"".join(want), (name, caller, fmt)
                assert sum(counts) == len(burst.templates) and len(counts) == len(chunks)
                for (chunk,), count in zip(chunks, counts):
                    frames = Parser().feed(chunk)
                    assert len(frames) == count and all(isinstance(f, EventFrame) for f in frames)
                    assert len(chunk) <= burst.CHUNK or count == 1
            seq += len(burst.templates)
    assert sum(len(b.templates) for b in scenario.bursts) == len(scenario.templates)


def test_agent_pool_chooses_like_sorting_every_agent() -> None:
    agents = [str(1001 + i) for i in range(9)]
    pool = AgentPool(list(agents))
    calls = {a: 0 for a in agents}
    live: list[tuple[str, str]] = []
    rng = random.Random(7)
    for _ in range(5000):
        if live and rng.random() < 0.45:
            for agent in live.pop(rng.randrange(len(live))):
                pool.give_back(agent)
                calls[agent] -= 1
        else:
            want = sorted(agents, key=lambda a: (calls[a], agents.index(a)))[:2]
            got = pool.take_two()
            assert list(got) == want
            for agent in got:
                calls[agent] += 1
            live.append(got)
    assert pool.calls == [calls[a] for a in agents]
    assert len(pool._heap) <= 4 * len(agents) + 64 + 2  # stale entries do not pile up


def test_dates_follow_the_time_zone(monkeypatch) -> None:
    secs = 1_700_000_000
    seen = []
    for zone in ("UTC", "Asia/Tokyo", "UTC"):
        monkeypatch.setenv("TZ", zone)
        time.tzset()
        values = CallValues(secs * 1_000_000, [], "core")
        assert values.value("LOCAL", 0) == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(secs))
        assert values.value("GMT", 1_500_000) == time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(secs + 1))
        seen.append(values.value("LOCAL", 0))
    monkeypatch.delenv("TZ")
    time.tzset()
    assert seen[0] == seen[2] != seen[1]


def test_registry_rows_are_the_same_for_call_events_and_plain_events() -> None:
    """The tracker keeps a channel's events and applies them when rows are asked for: asked
    after every event or only at the end, the rows are those of plain `Event`s."""
    scenario = load_scenario("queue")
    values = load_values("6203", ("1005", "1006"), scenario.uuids)
    fast, slow, late = CallRegistry(), CallRegistry(), CallRegistry()
    snapshots = []
    for seq, template in enumerate(scenario.templates, start=1):
        event = CallEvent(template, values, seq)
        fast.track(event)
        late.track(event)
        slow.track(SimEvent.from_event(event.to_event()))
        assert fast.channel_rows() == slow.channel_rows(), template.event_name
        assert fast.call_rows() == slow.call_rows(), template.event_name
        snapshots.append(len(fast))
    assert fast.created_total == slow.created_total == late.created_total == 3
    assert max(snapshots) == 3 and snapshots[-1] == 0  # every channel ended, as in the capture
    # the same events without looking in between: applied at the 64th event of a channel, or never
    assert late.rows == fast.rows == {} and not late._unapplied
    # and no bridge outlives its channels (they are indexed by callee, not scanned)
    assert fast.bridges == late.bridges == {} and fast._callers == late._callers == {}


def test_rows_of_live_channels_are_up_to_date_when_shown() -> None:
    scenario = load_scenario("queue")
    values = load_values("6204", ("1007", "1008"), scenario.uuids)
    fast, slow = CallRegistry(), CallRegistry()
    bridged = next(i for i, t in enumerate(scenario.templates) if t.event_name == "CHANNEL_BRIDGE")
    for seq, template in enumerate(scenario.templates[:bridged + 1], start=1):
        event = CallEvent(template, values, seq)
        fast.track(event)
        slow.track(SimEvent.from_event(event.to_event()))
    rows = fast.channel_rows()
    assert rows == slow.channel_rows() and len(rows) == 3
    assert {r["callstate"] for r in rows} >= {"ACTIVE"} and not fast._unapplied


def test_load_run_gives_every_format_the_same_events_in_sequence() -> None:
    calls = 12
    with sim_in_thread(scenario="load:calls=%d,cps=1000,concurrent=6,agents=4" % calls, speed=None,
                       autostart=False) as sim:
        clients = {fmt: talk(sim.host, sim.port, f"auth ClueCon\n\nevent {fmt} ALL\n\n".encode())
                   for fmt in FORMATS}
        sim.call(sim.server.play())
        per_call = len(load_scenario("queue").templates)
        events = {}
        for fmt, client in clients.items():
            client.read_until(lambda c=client: sum(isinstance(f, EventFrame) for f in c.frames) >= calls * per_call,
                              timeout=20)
            client.close()
            frames = [f for f in client.frames if isinstance(f, EventFrame)]
            assert {f.content_type for f in frames} == {f"text/event-{fmt}"}
            for f in frames:  # complete, well-formed frames: each one re-serialises to its own bytes
                assert f.event.serialize(fmt).encode("utf-8") == f.body
            events[fmt] = [f.event for f in frames]
    assert len(events["plain"]) == calls * per_call
    seqs = [e.sequence for e in events["plain"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for fmt in ("json", "xml"):
        assert [e.to_dict() for e in events[fmt]] == [e.to_dict() for e in events["plain"]]
    callers = {e.get("Caller-Caller-ID-Number") for e in events["plain"] if e.name == "CHANNEL_CREATE"}
    assert {str(6200 + i) for i in range(calls)} <= callers


def test_fresh_uuids_are_random_version_4_uuids() -> None:
    got = fresh_uuids(500)
    assert len(set(got)) == 500
    for text in got:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122
