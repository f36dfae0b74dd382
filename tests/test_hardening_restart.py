"""The switch dies and comes back while `eslkit watch`, `eslkit popup` and
`eslkit relay` run, all as real processes.

`eslkit sim` runs as a process on a fixed free port; it is SIGKILLed (a crash:
no SHUTDOWN event, no disconnect notice) while a call rings for 1002, and a new
one is started on the same port with another scenario.  Each client must
notice, reconnect, subscribe and filter again (the new switch knows nothing of
the old session), say that there was a gap, and the popups (the terminal's and
the relay's) must not keep showing the call that rang on the dead switch.
"""

from __future__ import annotations

import json
import signal

import pytest

from tests.support.brokers import MqttCollector
from tests.support.net import free_port, wait_for_port
from tests.support.cli import Running

PASSWORD = "restart-Secret-77"
ENV = {"ESL_PASSWORD": PASSWORD, "HOME": "/nonexistent"}


def child(*args: str) -> Running:
    """An eslkit process of this test, with the switch's password, in its own session."""
    return Running(*args, env=ENV, new_session=True)


def start_sim(port: int, *args: str) -> Running:
    sim = child("sim", "--port", str(port), *args)
    assert wait_for_port("127.0.0.1", port, 15, sim.proc, greeting=True), "eslkit sim did not listen"
    return sim


def ringing_legs(records: list[dict]) -> set[str]:
    """Legs whose latest record says ringing."""
    latest: dict[str, str] = {}
    for rec in records:
        latest[rec["leg_uuid"]] = rec["state"]
    return {leg for leg, state in latest.items() if state == "ringing"}


@pytest.fixture
def restart():
    """A port, and the processes to clean up whatever happens."""
    children: list[Running] = []
    yield free_port(), children
    for child in children:
        child.kill()


def _crash_and_restart(port: int, children: list[Running], first: Running, noticed) -> Running:
    first.kill()  # SIGKILL: the TCP connections just drop
    assert noticed(), "the clients did not notice the switch going"
    second = start_sim(port, "--scenario", "busy", "--speed", "1")
    children.append(second)
    return second


def test_watch_and_popup_survive_a_switch_crash(restart):
    port, children = restart
    first = start_sim(port, "--scenario", "noanswer", "--loop", "--speed", "1")
    children.append(first)
    names = "CHANNEL_CREATE,CHANNEL_STATE,CHANNEL_HANGUP_COMPLETE"
    watch = child("watch", "--port", str(port), "--format", "json", "-f", names,
                  "--header", "Caller-Destination-Number=1002")
    popup = child("popup", "--port", str(port), "--ext", "1002", "--format", "json")
    children += [watch, popup]

    # A call rings for 1002 on the first switch, and both clients see it.
    assert watch.wait_for(lambda: watch.out, 20), watch.err
    assert popup.wait_for(lambda: ringing_legs(popup.records()), 20), popup.err
    stale = ringing_legs(popup.records())
    first.kill()  # at once: the call is still ringing.  SIGKILL: the TCP connections just drop
    seen_before = len(watch.out)
    assert stale
    # Both noticed (a gap for watch to report) before the new switch comes.
    assert watch.wait_for(lambda: any("disconnected" in e for e in watch.err), 15), watch.err
    assert popup.wait_for(lambda: any("link lost" in e for e in popup.err), 15), popup.err
    # --loop: the busy call starts when the first client subscribes again, and the two
    # clients' back-offs may put the other one a step (1-4 s) later: a call played once
    # could be over by then, and no switch replays past events.
    second = start_sim(port, "--scenario", "busy", "--loop", "--speed", "1")
    children.append(second)

    # watch: says the link went down and how long the gap was, then gets the new
    # switch's events, through the same subscription and the same filter.
    assert watch.wait_for(lambda: any("reconnected after a" in e for e in watch.err), 15), watch.err
    assert any("disconnected" in e for e in watch.err)
    assert watch.wait_for(
        lambda: any(r.get("Hangup-Cause") == "USER_BUSY" for r in watch.records()[seen_before:]), 15), watch.err
    after = watch.records()[seen_before:]
    assert {r["Event-Name"] for r in after} <= set(names.split(","))  # re-subscribed to just these
    assert all(r.get("Caller-Destination-Number") == "1002" for r in after)  # and re-filtered

    # popup: the call that rang on the dead switch ends (the new switch has no such
    # channel), and the new switch's call shows up.
    assert popup.wait_for(lambda: not (stale & ringing_legs(popup.records())), 15), popup.out[-5:]
    ended = [r for r in popup.records() if r["leg_uuid"] in stale and r["state"] == "ended"]
    assert ended and all(r["outcome"] in ("failed", "missed", "answered") for r in ended), (
        stale, [(r["leg_uuid"], r["state"], r["outcome"], r["time"]) for r in popup.records()])
    assert popup.wait_for(lambda: any(r["hangup_cause"] == "USER_BUSY" for r in popup.records()), 15)
    assert any("link lost" in e for e in popup.err)

    assert watch.stop() == 0 and popup.stop() == 0
    assert "events received" in watch.err[-1]
    assert not [e for e in watch.err + popup.err if "Traceback" in e]
    second.stop()


@pytest.mark.slow
def test_relay_survives_a_switch_crash_and_ends_the_stale_ringing(restart, mosquitto):  # noqa: F811
    port, children = restart
    first = start_sim(port, "--scenario", "noanswer", "--loop", "--speed", "1")
    children.append(first)
    sub = MqttCollector(mosquitto, ["freeswitch/+/agents/1002/popup", "freeswitch/+/events/#"])
    try:
        relay = child("relay", "--port", str(port), "--to", mosquitto.url, "--client-id", f"restart-{port}",
                      "--drain-timeout", "2")
        children.append(relay)

        def popups():
            return [json.loads(p) for t, p, _ in list(sub.messages) if t.endswith("/popup")]

        assert sub.wait_for(lambda m: ringing_legs(popups()), 20), relay.err
        stale = ringing_legs(popups())

        second = _crash_and_restart(
            port, children, first, lambda: relay.wait_for(lambda: any("switch disconnected" in e for e in relay.err), 15))

        assert relay.wait_for(lambda: any("switch connected again" in e for e in relay.err), 15), relay.err
        assert any("switch disconnected" in e for e in relay.err)
        # Re-subscribed: the new switch's busy call reaches the broker.
        assert sub.wait_for(lambda m: any(b"USER_BUSY" in p for t, p, _ in m if "/events/" in t), 15)
        assert relay.stop(signal.SIGTERM) == 0, relay.err
        second.stop()
        # The call that rang on the dead switch does not stay ringing on the agents' desktops.
        assert sub.wait_for(lambda m: not (stale & ringing_legs(popups())), 10), popups()[-3:]
    finally:
        sub.close()


def test_popup_after_a_network_blip_keeps_the_call_that_is_still_up():
    """The link drops but the switch (and the call) stay up: after the reconnect the
    resync must not end the ringing leg; its real end still comes, with its cause.  The
    call ends only once the popup has asked again (however long a loaded machine takes)."""
    from tests.support.sim import scenario_in_parts, sim_in_thread
    from tests.test_phone import ApiLog

    with sim_in_thread(password=PASSWORD, speed=None) as sim:  # no scenario of its own
        ringing, rest = scenario_in_parts(sim.server, "noanswer", 1.0)  # 1002 rings until 6 s
        sim.run(ringing)
        switch = ApiLog(sim, PASSWORD)
        ours = set(sim.server.connections)
        popup = child("popup", "--port", str(sim.port), "--ext", "1002", "--format", "json")
        try:
            assert popup.wait_for(lambda: ringing_legs(popup.records()), 30), popup.err
            (leg,) = ringing_legs(popup.records())

            def blip():
                for conn in list(sim.server.connections - ours):
                    conn.transport.abort()  # a reset, as when a NAT or a firewall drops the flow

            sim.call_soon(blip)
            assert popup.wait_for(lambda: any("link lost" in e for e in popup.err), 15), popup.err
            switch.wait_asked("show channels as json", 2)  # on connect, and again after the reconnect
            sim.run(rest)
            assert popup.wait_for(
                lambda: any(r["leg_uuid"] == leg and r["state"] == "ended" for r in popup.records()), 15)
        finally:
            switch.client.close()
            popup.stop()
    mine = [(r["state"], r["outcome"], r["hangup_cause"]) for r in popup.records() if r["leg_uuid"] == leg]
    assert mine == [("ringing", None, None), ("ended", "missed", "ORIGINATOR_CANCEL")], mine


def test_popup_json_says_when_it_is_back_and_how_long_the_gap_was():
    import re

    from tests.support.sim import sim_in_thread

    with sim_in_thread(password=PASSWORD, scenario="noanswer", speed=1) as sim:
        popup = child("popup", "--port", str(sim.port), "--ext", "1002", "--format", "json")
        try:
            assert popup.wait_for(lambda: popup.out, 15), popup.err

            def blip():
                for conn in list(sim.server.connections):
                    conn.transport.abort()

            sim.call_soon(blip)
            assert popup.wait_for(lambda: any("link lost" in e for e in popup.err), 5), popup.err
            back = re.compile(r"(reconnected|connected again|back).*\d+(\.\d+)? ?s")
            assert popup.wait_for(lambda: any(back.search(e) for e in popup.err), 10), popup.err
        finally:
            popup.stop()
