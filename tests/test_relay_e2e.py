"""End to end: eslkit sim → eslkit relay → Mosquitto → popup/watch from the broker.

The popup that reads the broker must print the same JSON state changes as a
popup connected to the switch itself.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from eslkit.event import Event
from eslkit.sources.broker import open_broker_source
from tests.support.brokers import MqttCollector
from tests.support.cli import Running
from tests.support.sim import ESLKIT, sim_in_thread

pytestmark = pytest.mark.slow


def wait_until(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


class LineReader:
    def __init__(self, proc):
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc):
        for line in proc.stdout:
            self.lines.append(line)


def popup_from_broker_json(url: str, exts, want: int, started: threading.Event, timeout: float = 30):
    """`popup --ext EXTS --from URL --format json`, in process: the engine and the front the
    command uses, until ``want`` states were written."""
    from eslkit.app.popup import PopupEngine, PopupFormat, show
    from eslkit.calls import LegView

    out = io.StringIO()

    async def main():
        source = open_broker_source(url, popup_exts=exts, client_id="e2e-in-process-desktop")
        engine = PopupEngine(source, exts)
        enough = asyncio.Event()
        written = []
        engine.listen(lambda change: isinstance(change, LegView) and (
            written.append(change) or (len(written) >= want and enough.set())))
        await source.open()
        started.set()
        task = asyncio.ensure_future(show(engine, fmt=PopupFormat.json, out=out))
        await asyncio.wait([task, asyncio.ensure_future(enough.wait())], return_when=asyncio.FIRST_COMPLETED)
        engine.stop()
        await asyncio.wait_for(task, 10)
        await source.close()

    asyncio.run(asyncio.wait_for(main(), timeout))
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_sim_relay_mosquitto_popup_from_mqtt_equals_popup_on_the_switch(mosquitto):
    env = {**os.environ, "ESL_PASSWORD": "ClueCon"}
    with sim_in_thread(scenario="queue", speed=None, autostart=False) as sim:
        where = ["--host", sim.host, "--port", str(sim.port)]
        status = MqttCollector(mosquitto, "freeswitch/relay/e2e/status")
        relay = subprocess.Popen([str(ESLKIT), "relay", "--to", mosquitto.url, "--client-id", "e2e", *where],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        direct = subprocess.Popen([str(ESLKIT), "popup", "--ext", "1001,1002", "--format", "json", *where],
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            reader = LineReader(direct)
            sim.wait_subscribed(2)  # the relay and the popup: only then are the calls played
            assert status.wait_for(lambda m: any(json.loads(p)["switch"] == "connected" for _, p, _ in m))

            # Five state changes in the queue scenario: two ringing, one answered, two ended.
            want = 5
            started = threading.Event()
            result: dict = {}
            broker_popup = threading.Thread(target=lambda: result.update(
                got=popup_from_broker_json(f"{mosquitto.url}/freeswitch/+", ["1001", "1002"], want, started)))
            broker_popup.start()
            assert started.wait(10)
            sim.call(sim.server.play("queue"))
            assert wait_until(lambda: len(reader.lines) >= want), reader.lines
            broker_popup.join(30)
            direct_states = [json.loads(line) for line in reader.lines]
            assert len(direct_states) == want
            assert result["got"] == direct_states
            assert {(s["ext"], s["state"]) for s in direct_states} >= {("1001", "answered"), ("1002", "ended")}
        finally:
            for proc in (relay, direct):
                proc.terminate()
            out, err = relay.communicate(timeout=20)
            direct.communicate(timeout=20)
            status.close()
        assert relay.returncode == 0, err
        assert "dropped 0" in err and "ClueCon" not in err


def test_watch_from_mqtt_gets_the_events_the_relay_read(mosquitto, captures):
    cap = captures / "scenario_noanswer_plain.raw"
    from tests.test_relay_mqtt import capture_events

    events = capture_events(captures, "scenario_noanswer_plain")

    async def main():
        source = open_broker_source(f"{mosquitto.url}/freeswitch/vm")
        await source.open()
        got = []

        async def read():
            async for item in source:
                if isinstance(item, Event):
                    got.append(item)
                    if len(got) == len(events):
                        return

        reader = asyncio.ensure_future(read())
        done = await asyncio.to_thread(subprocess.run, [str(ESLKIT), "relay", "--to", mosquitto.url, "--replay",
                                                        str(cap), "--client-id", "e2e-watch"],
                                       capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        await asyncio.wait_for(reader, 15)
        await source.close()
        return got, source

    got, source = asyncio.run(asyncio.wait_for(main(), 60))
    assert [ev.to_dict() for ev in got] == [ev.to_dict() for ev in events]
    assert source.received == len(events) and source.dropped == 0


def test_switch_restart_is_shown_on_the_status_topic_and_the_relay_carries_on(mosquitto):
    from tests.support.net import free_port, wait_for_port

    port = free_port()
    env = {**os.environ, "ESL_PASSWORD": "ClueCon"}

    def switch():
        # Paced, not --speed max: this test is about a restart, and a flood the relay cannot keep up
        # with on a loaded machine ends (rightly) with exit 16 for the events it had to drop.
        proc = subprocess.Popen([str(ESLKIT), "sim", "--port", str(port), "--scenario", "queue", "--loop",
                                 "--speed", "20"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for_port("127.0.0.1", port, 15, proc, greeting=True), "eslkit sim did not listen"
        return proc

    def states(m):
        return [json.loads(p)["switch"] for _, p, _ in m if json.loads(p)["state"] == "online"]

    first = switch()
    status = MqttCollector(mosquitto, "freeswitch/relay/e2e-restart/status")
    relay = subprocess.Popen([str(ESLKIT), "relay", "--to", mosquitto.url, "--client-id", "e2e-restart",
                              "--host", "127.0.0.1", "--port", str(port)],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = None
    try:
        assert status.wait_for(lambda m: "connected" in states(m))
        first.send_signal(signal.SIGINT)
        first.wait(10)
        assert status.wait_for(lambda m: "disconnected" in states(m), timeout=15)
        before = len(status.messages)
        second = switch()
        assert status.wait_for(lambda m: "connected" in states(m[before:]), timeout=30)
        # Events flow again after the gap: the relay re-subscribed.
        received = json.loads(status.messages[-1][1])["received"]
        relay_events = MqttCollector(mosquitto, "freeswitch/+/events/#")
        try:
            assert relay_events.wait_for(lambda m: len(m) >= 5, timeout=15)
        finally:
            relay_events.close()
        relay.terminate()
        out, err = relay.communicate(timeout=20)
        assert relay.returncode == 0, err
        assert "switch disconnected" in err and "reconnecting" in err and "switch connected again" in err
        final = json.loads(status.messages[-1][1])
        assert final["state"] == "offline" and final["received"] > received and final["dropped"] == 0
    finally:
        relay.kill()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(5)
        status.close()


def test_filtered_relay_still_publishes_every_popup_state(mosquitto):
    env = {**os.environ, "ESL_PASSWORD": "ClueCon"}
    sub = MqttCollector(mosquitto, "freeswitch/+/#")
    with sim_in_thread(scenario="queue", speed=None) as sim:
        relay = subprocess.Popen([str(ESLKIT), "relay", "--to", mosquitto.url, "--client-id", "e2e-filter",
                                  "--filter", "CHANNEL_ANSWER", "--host", sim.host, "--port", str(sim.port)],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert sub.wait_for(lambda m: len([t for t, _, _ in m if "/agents/" in t]) >= 5, timeout=20)
        finally:
            relay.terminate()
            out, err = relay.communicate(timeout=20)
    try:
        # The relay's last word is its offline status: everything it published came before it.
        assert sub.wait_for(lambda m: any(t.endswith("/status") and json.loads(p)["state"] == "offline"
                                          for t, p, _ in m))
    finally:
        sub.close()
    assert relay.returncode == 0, err
    events = {t.split("/")[3] for t, _, _ in sub.messages if "/events/" in t}
    assert events == {"CHANNEL_ANSWER"}
    states = [json.loads(p)["state"] for t, p, _ in sub.messages if "/agents/" in t]
    assert sorted(states) == ["answered", "ended", "ended", "ringing", "ringing"]


def test_the_popup_command_from_mqtt_prints_what_popup_on_the_switch_prints(mosquitto):
    """All four as a user runs them: eslkit sim, relay, popup on the switch, popup --from mqtt."""
    with sim_in_thread(scenario="queue", speed=None, autostart=False) as sim:
        where = ["--host", sim.host, "--port", str(sim.port)]
        procs = {
            "relay": ["relay", "--to", mosquitto.url, "--client-id", "e2e-cli", *where],
            "direct": ["popup", "--ext", "1001,1002", "--format", "json", *where],
            "broker": ["popup", "--ext", "1001,1002", "--format", "json", "--from", f"{mosquitto.url}/freeswitch/+"],
        }
        topic = "freeswitch/+/agents/1002/popup"  # the last of the popup's subscriptions
        listening = mosquitto.subscriptions(topic)
        # The desktop gets no ESL password at all.
        started = {name: Running(*cmd, env={"ESL_PASSWORD": "ClueCon"} if name != "broker" else None)
                   for name, cmd in procs.items()}
        try:
            sim.wait_subscribed(2)  # the relay and the popup: only then are the calls played
            mosquitto.wait_subscribed(topic, listening + 1)  # and the popup on the broker's side
            sim.call(sim.server.play("queue"))
            for name in ("direct", "broker"):
                assert started[name].wait_for(lambda n=name: len(started[n].out) >= 5, 20), started[name].out
        finally:
            codes = {name: p.stop(signal.SIGTERM, timeout=20) for name, p in started.items()}
        # Stopped and read to the end: exactly the five states, the same from the broker.
        direct = started["direct"].records()
        assert len(direct) == 5
        assert started["broker"].records() == direct
        errs = {name: "\n".join(p.err) for name, p in started.items()}
        assert codes["relay"] == 0, errs["relay"]
        assert "dropped 0" in errs["relay"]
