"""`eslkit watch` against the simulated switch (eslkit.sim) over real sockets,
in all three wire formats; errors, server-side filters and reconnects."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.cli import Running, eslkit
from tests.support.sim import sim_in_thread


def watch_cli(port, *args, timeout=30, **env):
    env = {"HOME": "/nonexistent", "ESL_PASSWORD": "ClueCon", **env}  # the simulator's password
    return eslkit("watch", "--port", port, *args, timeout=timeout, env=env)


CALL_EVENTS = "CHANNEL_CREATE,CHANNEL_ANSWER,CHANNEL_BRIDGE,CHANNEL_HANGUP_COMPLETE"


@pytest.mark.parametrize("wire", ["plain", "json", "xml"])
def test_queue_call_in_each_wire_format(wire):
    with sim_in_thread(scenario="queue", speed=20) as sim:
        r = watch_cli(sim.port, "--wire-format", wire, "--filter", CALL_EVENTS, "--count", 9, "--format", "json")
    assert r.returncode == 0, r.stderr
    events = [json.loads(x) for x in r.stdout.splitlines()]
    names = [e["Event-Name"] for e in events]
    assert sorted(names) == sorted(["CHANNEL_CREATE"] * 3 + ["CHANNEL_ANSWER"] * 2 + ["CHANNEL_BRIDGE"]
                                   + ["CHANNEL_HANGUP_COMPLETE"] * 3)
    answer = next(e for e in events if e["Event-Name"] == "CHANNEL_ANSWER")
    assert answer["Caller-Caller-ID-Name"] == "Caller 6208"  # decoded in every wire format
    assert "9 events received" in r.stderr or "events received" in r.stderr


@pytest.mark.parametrize("wire", ["plain", "json", "xml"])
def test_plain_output_and_stats_in_each_wire_format(wire):
    with sim_in_thread(scenario="queue", speed=20) as sim:
        r = watch_cli(sim.port, "--wire-format", wire, "--format", "plain", "--filter", CALL_EVENTS,
                      "--count", 9, "--stats")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("RECV EVENT\n") == 9
    assert "Caller-Caller-ID-Name: Caller 6208\n" in r.stdout
    assert "answered 1" in r.stderr


def test_busy_call_counts_as_busy():
    with sim_in_thread(scenario="busy", speed=20) as sim:
        r = watch_cli(sim.port, "--filter", "CHANNEL_CREATE CHANNEL_HANGUP_COMPLETE CHANNEL_DESTROY",
                      "--count", 6, "--format", "json", "--stats", "--quiet")
    stats = json.loads(r.stdout)["stats"]
    assert (stats["calls_busy"], stats["calls_answered"], stats["calls_missed"]) == (1, 0, 0)
    assert stats["active_calls"] == 0


def test_header_filter_is_installed_on_the_switch():
    with sim_in_thread(scenario="queue", speed=10) as sim:
        r = watch_cli(sim.port, "--header", "Caller-Destination-Number=1001", "--filter", CALL_EVENTS,
                      "--count", 3, "--format", "json")
    events = [json.loads(x) for x in r.stdout.splitlines()]
    assert [e["Event-Name"] for e in events] == ["CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE"]
    assert {e["Caller-Destination-Number"] for e in events} == {"1001"}


def test_wrong_password_is_exit_5_without_retry():
    with sim_in_thread(password="Secret1", scenario=None) as sim:
        t0 = time.monotonic()
        r = watch_cli(sim.port, "--format", "json", ESL_PASSWORD="wrong")
    assert r.returncode == 5
    assert "rejected the password" in r.stderr and "fix:" in r.stderr
    assert "wrong" not in r.stderr.replace("wrong password", "")
    assert time.monotonic() - t0 < 10  # no back-off loop


def test_acl_rejection_is_exit_6():
    with sim_in_thread(allow=["192.0.2.0/24"]) as sim:
        r = watch_cli(sim.port, "--format", "json")
    assert r.returncode == 6
    assert "ACL" in r.stderr and "Traceback" not in r.stderr


def test_nothing_listening_is_exit_3():
    r = watch_cli(1, "--format", "json")
    assert r.returncode == 3 and "refused" in r.stderr


def test_reconnects_after_switch_restart_and_ctrl_c_prints_summary(tmp_path):
    rec = tmp_path / "rec.jsonl"
    with sim_in_thread(scenario=None) as first:
        port = first.port
        watch = Running("watch", "--port", port, "--format", "json", "--record", rec,
                        env={"HOME": "/nonexistent", "ESL_PASSWORD": "ClueCon"})
        first.wait_subscribed()
        first.stop()  # SHUTDOWN event + disconnect notice, as FreeSWITCH does
        assert watch.wait_for(lambda: any("disconnected" in line for line in watch.err), 10), watch.err
    with sim_in_thread(port=port, scenario="noanswer", speed=20) as second:
        second.wait_subscribed()  # the back-off starts at 0.5 s
        # The scenario plays once watch has re-subscribed; its last event ends the call.
        assert watch.wait_for(lambda: any('"CHANNEL_DESTROY"' in line for line in watch.out), 20), watch.err
        code = watch.stop()
    out, err = "\n".join(watch.out), "\n".join(watch.err)
    assert code == 0, err
    assert "disconnected" in err and "reconnecting" in err
    assert "reconnected after a" in err
    lines = out.splitlines()
    for i, line in enumerate(lines):
        try:
            json.loads(line)
        except ValueError:
            raise AssertionError(f"line {i} of {len(lines)} is not JSON: {line[:200]!r} … {line[-200:]!r}")
    names = [json.loads(x)["Event-Name"] for x in lines]
    assert names[0] == "SHUTDOWN"  # from the first switch
    assert "CHANNEL_CREATE" in names  # from the second, after re-subscribing
    assert "events received" in err.splitlines()[-1]
    # the recording has the link changes, with the gap, between the events
    records = [json.loads(x) for x in rec.read_text().splitlines()]
    statuses = [r["status"] for r in records if "status" in r]
    assert [s["state"] for s in statuses] == ["connected", "disconnected", "connected"]
    assert "shut down" in statuses[1]["reason"] and statuses[2]["gap"] > 0


def test_no_reconnect_ends_with_disconnected_exit_code():
    with sim_in_thread(scenario=None) as sim:
        watch = Running("watch", "--port", sim.port, "--format", "json", "--no-reconnect",
                        env={"HOME": "/nonexistent", "ESL_PASSWORD": "ClueCon"})
        sim.wait_subscribed()
        sim.stop()
        assert watch.proc.wait(20) == 7, watch.err
    assert watch.stop() == 7 and "shut down" in "\n".join(watch.err)


def test_custom_subclass_and_plain_names_together_subscribe_on_the_switch(captures):
    """`CUSTOM sofia::register,MESSAGE_QUERY` must reach the switch as
    `event plain MESSAGE_QUERY CUSTOM sofia::register` (every word after CUSTOM is a subclass)."""
    with sim_in_thread(replay=str(captures / "agents_register_plain.raw"), speed=None) as sim:
        r = watch_cli(sim.port, "--filter", "CUSTOM sofia::register,MESSAGE_QUERY", "--count", 4, "--format", "json")
    assert r.returncode == 0, r.stderr
    got = [(e["Event-Name"], e.get("Event-Subclass")) for e in map(json.loads, r.stdout.splitlines())]
    assert sorted(got, key=str) == sorted([("CUSTOM", "sofia::register")] * 2 + [("MESSAGE_QUERY", None)] * 2, key=str)


def test_a_watch_recording_served_by_the_simulator_comes_back_the_same(captures, tmp_path):
    """watch --record → eslkit sim --replay → watch: the same events, field for field."""
    rec = tmp_path / "rec.jsonl"
    first = eslkit("watch", "--replay", captures / "scenario_queue_plain.raw", "--record", rec, "--format", "json")
    assert first.returncode == 0, first.stderr
    with sim_in_thread(replay=str(rec), speed=None) as sim:
        again = watch_cli(sim.port, "--count", 88, "--format", "json")
    assert again.returncode == 0, again.stderr
    assert [json.loads(x) for x in again.stdout.splitlines()] == [json.loads(x) for x in first.stdout.splitlines()]
