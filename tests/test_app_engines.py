"""The run engines without a terminal: what a web server or a statistics engine would do
with them — run one in its own loop, listen to it, read its snapshot."""

from __future__ import annotations

import asyncio

from eslkit.app.popup import PopupEngine, RelayedLegs
from eslkit.app.runtime import SwitchClock
from eslkit.calls import LegView, leg_from_record, popup_record
from eslkit.client import Connection
from eslkit.event import Event
from eslkit.sources import EventsSource, ReplaySource
from eslkit.status import ConnectionStatus
from tests.support.sim import sim_in_thread
from tests.support.sources import capture_events


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def listened(engine: PopupEngine) -> list:
    changes: list = []
    stop = engine.listen(changes.append)
    await engine.source.open()
    try:
        await engine.run()
    finally:
        await engine.source.close()
        stop()
    return changes


def test_popup_engine_tells_its_listeners_what_the_readme_says(captures):
    """scenario_queue_plain (1.10.12 README): 1001 rings, answers, ends answered; 1002 rings
    and ends answered_elsewhere."""
    engine = PopupEngine(ReplaySource(captures / "scenario_queue_plain.raw"), ["1001", "1002"])
    changes = run(listened(engine))
    legs = [c for c in changes if isinstance(c, LegView)]
    assert [(leg.ext, leg.state, leg.outcome) for leg in legs] == [
        ("1001", "ringing", None), ("1002", "ringing", None), ("1001", "answered", None),
        ("1002", "ended", "answered_elsewhere"), ("1001", "ended", "answered")]
    links = [c.state for c in changes if isinstance(c, ConnectionStatus)]
    assert links == ["connected"]  # its goodbye answers the recorder's exit: no lost link
    snap = engine.snapshot()
    assert snap.exts == ("1001", "1002") and snap.connection == "end of replay of scenario_queue_plain.raw"
    assert {(leg.ext, leg.outcome) for leg in snap.recent} == {("1001", "answered"), ("1002", "answered_elsewhere")}
    assert engine.changes == 5


def test_a_relays_popup_states_show_without_a_tracker(captures):
    """`popup --from`: the LegViews a relay's tracker made come in instead of events."""
    events = capture_events(captures, "scenario_queue_plain")
    from eslkit.calls import CallTracker

    tracker = CallTracker()
    published = [popup_record(leg) for ev in events for leg in tracker.feed(ev)]
    relayed = [leg_from_record(record) for record in published]
    engine = PopupEngine(EventsSource(relayed), ["1002"])
    changes = run(listened(engine))
    assert [(c.ext, c.state) for c in changes] == [("1002", "ringing"), ("1002", "ended")]
    assert len(engine.tracker) == 0  # nothing was fed to a tracker here
    assert engine.snapshot().recent[0].outcome == "answered_elsewhere"
    legs = RelayedLegs(["1001"], lookup=lambda number: {"name": f"contact {number}"})
    kept = [legs.take(leg) for leg in relayed]
    assert [leg.state for leg in kept if leg is not None] == ["ringing", "answered", "ended"]
    assert kept[0].contact == {"name": "contact 6208"}


def test_a_reconnect_ends_the_legs_the_switch_no_longer_has(captures):
    """After a reconnect the engine asks the switch (`source.switch`, a real client connection to
    the simulated switch, which has no channel up) and ends the legs still ringing."""
    ringing = [ev for ev in capture_events(captures, "scenario_queue_plain")[:40]]

    async def main():
        with sim_in_thread(scenario=None) as sim:
            conn = Connection(sim.host, sim.port, "ClueCon")
            await conn.connect()

            class AfterOutage(EventsSource):
                """A live switch's events, a reconnect, and then quiet (it never ends by itself)."""

                switch = conn
                live = True

                async def __aiter__(self):
                    async for item in super().__aiter__():
                        yield item
                    await asyncio.Event().wait()

            items = [*ringing, ConnectionStatus("disconnected", "lost"), ConnectionStatus("connected", "back", 2.0)]
            engine = PopupEngine(AfterOutage(items), ["1001", "1002"])
            ended = asyncio.Event()
            changes: list = []
            engine.listen(lambda c: (changes.append(c), isinstance(c, LegView) and c.state == "ended"
                                     and sum(isinstance(x, LegView) and x.state == "ended" for x in changes) == 2
                                     and ended.set()))
            task = asyncio.ensure_future(engine.run())
            await asyncio.wait_for(ended.wait(), 10)
            engine.stop()
            await task
            await conn.close()
            return changes

    changes = run(main())
    legs = [c for c in changes if isinstance(c, LegView)]
    assert [(leg.ext, leg.state) for leg in legs[:2]] == [("1001", "ringing"), ("1002", "ringing")]
    assert [(leg.state, leg.outcome, leg.hangup_cause) for leg in legs[2:]] == [("ended", "failed", None)] * 2


def test_switch_clock_runs_on_from_the_last_event_time():
    latest = [0.0]
    clock = SwitchClock(lambda: latest[0])
    assert clock.now() is None
    latest[0] = 1_000.0
    clock.tick()
    first = clock.now()
    assert 1_000.0 <= first < 1_001.0
    latest[0] = 5_000.0  # the switch's time moved: the local count starts again from it
    assert 5_000.0 <= clock.now() < 5_001.0


def test_events_source_counts_what_it_yields():
    source = EventsSource([Event({"Event-Name": "HEARTBEAT"}), ConnectionStatus("connected")])

    async def main():
        await source.open()
        return [item async for item in source]

    assert len(run(main())) == 2 and source.received == 1


def test_the_wallboard_from_a_relays_popup_states_matches_the_switchs_events(captures):
    """`serve --from` / `wallboard --from`: the popup states a relay published give the same
    ring-group and agent figures as the switch's own events, and the board says what they
    cannot carry (mod_callcenter and mod_fifo queues)."""
    from eslkit.app.wallboard import WallboardEngine
    from eslkit.calls import CallTracker
    from eslkit.stats import CallCentreStats

    events = capture_events(captures, "scenario_queue_plain")
    tracker = CallTracker()
    relayed = [leg_from_record(popup_record(leg)) for ev in events for leg in tracker.feed(ev)]
    later = events[-1].timestamp + 60  # a minute on: nothing left undecided
    direct, from_relay = WallboardEngine(EventsSource(events), CallCentreStats()), \
        WallboardEngine(EventsSource(relayed), CallCentreStats())
    for event in events:
        direct.take(event)
    for leg in relayed:
        from_relay.take(leg)
    mine, theirs = from_relay.snapshot(later).to_dict(), direct.snapshot(later).to_dict()
    assert mine["queues"] == theirs["queues"] and mine["agents"] == theirs["agents"]
    assert [(q["name"], q["kind"], q["offered"], q["answered"]) for q in mine["queues"]] == [("2000", "group", 1, 1)]
    assert {a["name"]: a["answered"] for a in mine["agents"]} == {"1001": 1, "1002": 0}
    assert direct.notes() == [] and from_relay.notes() == [
        "from the popup states a relay publishes: the agents' calls only; mod_callcenter and mod_fifo queues "
        "need the switch's own events"]


def test_a_popup_state_delivered_twice_counts_once(captures):
    """A broker delivers at least once: after a reconnect the same states come again (here
    every one of them, after the call's end, and each twice in a row). The figures stay
    those of one delivery."""
    from eslkit.app.wallboard import WallboardEngine
    from eslkit.calls import CallTracker
    from eslkit.stats import CallCentreStats

    events = capture_events(captures, "scenario_queue_plain")
    tracker = CallTracker()
    relayed = [leg_from_record(popup_record(leg)) for ev in events for leg in tracker.feed(ev)]
    later = events[-1].timestamp + 60
    once, again = WallboardEngine(EventsSource([]), CallCentreStats()), WallboardEngine(EventsSource([]), CallCentreStats())
    for leg in relayed:
        once.take(leg)
    for leg in [leg for leg in relayed for _ in (1, 2)] + [leg_from_record(popup_record(leg)) for leg in relayed]:
        again.take(leg)
    mine, theirs = again.snapshot(later).to_dict(), once.snapshot(later).to_dict()
    assert mine["queues"] == theirs["queues"] and mine["agents"] == theirs["agents"]
    assert [(q["offered"], q["answered"]) for q in mine["queues"]] == [(1, 1)]
    assert {a["name"]: (a["answered"], a["state"]) for a in mine["agents"]} == {
        "1001": (1, "available"), "1002": (0, "available")}


def test_a_relayed_state_delivered_again_after_its_leg_ended_is_ignored(captures):
    """MQTT QoS 1 and AMQP deliver at least once: a redelivered ringing state after the
    hangup must not bring a ghost card back, and a second 'ended' must not list the call twice."""
    from eslkit.calls import CallTracker

    tracker = CallTracker()
    events = capture_events(captures, "scenario_queue_plain")
    relayed = [leg_from_record(popup_record(leg)) for ev in events for leg in tracker.feed(ev)]
    mine = [leg for leg in relayed if leg.ext == "1001"]
    legs = RelayedLegs(["1001"])
    assert [legs.take(leg).state for leg in mine] == ["ringing", "answered", "ended"]
    assert [legs.take(leg) for leg in mine] == [None, None, None]  # the broker hands them over again
    assert legs.active("1001") == [] and len(legs.recent("1001")) == 1
