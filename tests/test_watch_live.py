"""`eslkit watch` against the simulated switch (eslkit.sim) over real sockets,
in all three wire formats; errors, server-side filters and reconnects."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from eslkit.sim.server import SimServer

ESLKIT = [sys.executable, "-m", "eslkit"]


class SimThread:
    """A SimServer running on its own event loop in a background thread."""

    def __init__(self, **kwargs):
        self.kwargs = {"port": 0, **kwargs}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = None

    def __enter__(self) -> "SimThread":
        self.thread.start()
        self.server = self._call(SimServer(**self.kwargs).start())
        return self

    @property
    def port(self) -> int:
        return self.server.port

    def _call(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def wait_connected(self, timeout: float = 30.0) -> None:
        """Until a client is connected (a loaded machine can take seconds to start Python)."""
        deadline = time.monotonic() + timeout
        while not self.server.connections:
            if time.monotonic() > deadline:
                raise AssertionError("no client connected")
            time.sleep(0.05)
        time.sleep(0.5)  # let it authenticate and subscribe

    def stop(self) -> None:
        if self.server is not None:
            self._call(self.server.close())
            self.server = None

    def __exit__(self, *exc) -> None:
        self.stop()

        async def cancel_rest():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self._call(cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def watch_cli(port, *args, timeout=30, **env):
    full = {**os.environ, "HOME": "/nonexistent", **env}
    full.pop("ESL_PASSWORD", None) if "ESL_PASSWORD" not in env else None
    return subprocess.run(ESLKIT + ["watch", "--port", str(port), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=full)


CALL_EVENTS = "CHANNEL_CREATE,CHANNEL_ANSWER,CHANNEL_BRIDGE,CHANNEL_HANGUP_COMPLETE"


@pytest.mark.parametrize("wire", ["plain", "json", "xml"])
def test_queue_call_in_each_wire_format(wire):
    with SimThread(scenario="queue", speed=20) as sim:
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
    with SimThread(scenario="queue", speed=20) as sim:
        r = watch_cli(sim.port, "--wire-format", wire, "--format", "plain", "--filter", CALL_EVENTS,
                      "--count", 9, "--stats")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("RECV EVENT\n") == 9
    assert "Caller-Caller-ID-Name: Caller 6208\n" in r.stdout
    assert "answered 1" in r.stderr


def test_busy_call_counts_as_busy():
    with SimThread(scenario="busy", speed=20) as sim:
        r = watch_cli(sim.port, "--filter", "CHANNEL_CREATE CHANNEL_HANGUP_COMPLETE CHANNEL_DESTROY",
                      "--count", 6, "--format", "json", "--stats", "--quiet")
    stats = json.loads(r.stdout)["stats"]
    assert (stats["calls_busy"], stats["calls_answered"], stats["calls_missed"]) == (1, 0, 0)
    assert stats["active_calls"] == 0


def test_header_filter_is_installed_on_the_switch():
    with SimThread(scenario="queue", speed=10) as sim:
        r = watch_cli(sim.port, "--header", "Caller-Destination-Number=1001", "--filter", CALL_EVENTS,
                      "--count", 3, "--format", "json")
    events = [json.loads(x) for x in r.stdout.splitlines()]
    assert [e["Event-Name"] for e in events] == ["CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE"]
    assert {e["Caller-Destination-Number"] for e in events} == {"1001"}


def test_wrong_password_is_exit_5_without_retry():
    with SimThread(password="Secret1") as sim:
        t0 = time.monotonic()
        r = watch_cli(sim.port, "--format", "json", ESL_PASSWORD="wrong")
    assert r.returncode == 5
    assert "rejected the password" in r.stderr and "fix:" in r.stderr
    assert "wrong" not in r.stderr.replace("wrong password", "")
    assert time.monotonic() - t0 < 10  # no back-off loop


def test_acl_rejection_is_exit_6():
    with SimThread(allow=["192.0.2.0/24"]) as sim:
        r = watch_cli(sim.port, "--format", "json")
    assert r.returncode == 6
    assert "ACL" in r.stderr and "Traceback" not in r.stderr


def test_nothing_listening_is_exit_3():
    r = watch_cli(1, "--format", "json")
    assert r.returncode == 3 and "refused" in r.stderr


def test_reconnects_after_switch_restart_and_ctrl_c_prints_summary(tmp_path):
    rec = tmp_path / "rec.jsonl"
    with SimThread(scenario=None) as first:
        port = first.port
        proc = subprocess.Popen(ESLKIT + ["watch", "--port", str(port), "--format", "json", "--record", str(rec)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "HOME": "/nonexistent"})
        first.wait_connected()
        first.stop()  # SHUTDOWN event + disconnect notice, as FreeSWITCH does
        time.sleep(0.5)
    with SimThread(port=port, scenario="noanswer", speed=20) as second:
        second.wait_connected()  # the back-off starts at 0.5 s
        time.sleep(2.0)  # the scenario plays once watch has re-subscribed
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
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
    with SimThread(scenario=None) as sim:
        proc = subprocess.Popen(ESLKIT + ["watch", "--port", str(sim.port), "--format", "json", "--no-reconnect"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "HOME": "/nonexistent"})
        sim.wait_connected()
        sim.stop()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 7, err
    assert "shut down" in err


def test_custom_subclass_and_plain_names_together_subscribe_on_the_switch(captures):
    """`CUSTOM sofia::register,MESSAGE_QUERY` must reach the switch as
    `event plain MESSAGE_QUERY CUSTOM sofia::register` (every word after CUSTOM is a subclass)."""
    with SimThread(replay=str(captures / "agents_register_plain.raw"), speed=None) as sim:
        r = watch_cli(sim.port, "--filter", "CUSTOM sofia::register,MESSAGE_QUERY", "--count", 4, "--format", "json")
    assert r.returncode == 0, r.stderr
    got = [(e["Event-Name"], e.get("Event-Subclass")) for e in map(json.loads, r.stdout.splitlines())]
    assert sorted(got, key=str) == sorted([("CUSTOM", "sofia::register")] * 2 + [("MESSAGE_QUERY", None)] * 2, key=str)


def test_a_watch_recording_served_by_the_simulator_comes_back_the_same(captures, tmp_path):
    """watch --record → eslkit sim --replay → watch: the same events, field for field."""
    rec = tmp_path / "rec.jsonl"
    first = subprocess.run(ESLKIT + ["watch", "--replay", str(captures / "scenario_queue_plain.raw"),
                                     "--record", str(rec), "--format", "json"],
                           capture_output=True, text=True, timeout=30)
    assert first.returncode == 0, first.stderr
    with SimThread(replay=str(rec), speed=None) as sim:
        again = watch_cli(sim.port, "--count", 88, "--format", "json")
    assert again.returncode == 0, again.stderr
    assert [json.loads(x) for x in again.stdout.splitlines()] == [json.loads(x) for x in first.stdout.splitlines()]
