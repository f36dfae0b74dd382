"""Phone control through the broker: `eslkit relay --control` on a real Mosquitto with the
documented ACL (docs/relay.md), a simulated switch, and desktops that only have their own
broker credentials — `eslkit phone --via` and raw MQTT clients trying what they must not."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time

import pytest

from tests.support.brokers import Mosquitto, MqttCollector
from tests.support.sim import ESLKIT, sim_in_thread
from tests.test_phone import ApiLog, Popup
from tests.test_relay_cli import documented_acl

pytestmark = pytest.mark.slow

USERS = {"relay": "relay-pw", "1001": "pw-1001", "1002": "pw-1002"}


@pytest.fixture
def broker(tmp_path):
    started = Mosquitto(tmp_path / "acl", users=USERS, acl=documented_acl()).start()
    yield started
    started.stop()


@pytest.fixture
def sim():
    with sim_in_thread(speed=5.0) as running:
        yield running


@contextlib.contextmanager
def control_relay(url: str, password: str, sim, audit):
    """`eslkit relay --to URL --control --audit FILE` against the simulator, until SIGTERM."""
    proc = subprocess.Popen(
        [str(ESLKIT), "relay", "--to", url, "--password-env", "RELAY_PW", "--control", "--audit", str(audit),
         "--host", sim.host, "--port", str(sim.port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "RELAY_PW": password, "ESL_PASSWORD": "ClueCon"})
    # Its start-up line comes once the broker confirmed its subscription to the requests.
    assert any("relaying" in line for line in proc.stderr), "the relay ended before it was relaying"
    proc.audit = audit
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
        proc.stdout.close()
        proc.stderr.close()


@pytest.fixture
def relay(broker, sim, tmp_path):
    with control_relay(f"mqtt://relay@127.0.0.1:{broker.port}", USERS["relay"], sim,
                       tmp_path / "audit.jsonl") as proc:
        yield proc


def via(broker, ext: str, *args: str, user: str | None = None) -> subprocess.CompletedProcess:
    user = user or ext
    return subprocess.run([str(ESLKIT), "phone", *args, "--ext", ext, "--via", f"mqtt://{user}@127.0.0.1:{broker.port}"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "ESLKIT_BROKER_PASSWORD": USERS[user]})


class Desktop:
    """A raw MQTT client with an agent's credentials: publishes what it likes."""

    def __init__(self, broker, user: str):
        self.user = user
        self.replies = MqttCollector(broker, f"freeswitch/+/agents/{user}/control/reply", username=user,
                                     password=USERS[user])

    def send(self, request: dict, ext: str | None = None) -> None:
        topic = f"freeswitch/-/agents/{ext or self.user}/control"
        self.replies.client.publish(topic, json.dumps(request), qos=1).wait_for_publish(5)

    def reply(self, request_id: str, timeout: float = 10.0) -> dict | None:
        found = []
        self.replies.wait_for(lambda m: any(json.loads(p).get("id") == request_id for _, p, _ in m), timeout)
        for _, payload, _ in self.replies.messages:
            data = json.loads(payload)
            if data.get("id") == request_id:
                found.append(data)
        return found[0] if found else None

    def close(self) -> None:
        self.replies.close()


def test_agents_control_their_calls_through_the_relay(broker, sim, relay) -> None:
    api = ApiLog(sim)
    popups = Popup(sim, "1001,1002")
    try:
        done = via(broker, "1001", "dial", "6208")
        assert (done.returncode, done.stdout) == (
            0, "1001: dialling 6208 — 1001's phone is ringing; answer it to place the call\n"), done.stderr
        popups.wait(ext="1001", state="answered", other_number="6208")
        api.wait_bridged()
        for action, said in (("hold", "on hold"), ("unhold", "taken off hold")):
            done = via(broker, "1001", action)
            assert (done.returncode, done.stdout) == (0, f"1001: call to 6208 {said}\n"), done.stderr
        popups.wait(ext="1001", on_hold=True)
        done = via(broker, "1001", "transfer", "1002", "--format", "json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["text"] == "1001: call to 6208 transferred to 1002"
        popups.wait(ext="1002", state="answered", caller_number="6208", transferred_from="1001")
        api.wait_bridged(2)
        # 1001's credentials cannot reach 1002's call: the broker drops what they publish on
        # 1002's topic (MQTT 3.1.1 cannot say so), and nothing comes back.
        done = via(broker, "1002", "hangup", "--wait", "1", user="1001")
        assert done.returncode == 46 and "No reply to 1002's hangup request" in done.stderr, done.stderr
        assert popups.records[-1]["state"] == "answered"
        done = via(broker, "1002", "hangup")
        assert (done.returncode, done.stdout) == (0, "1002: call from 6208 hung up\n"), done.stderr
        assert [c.split()[0] for c in api.acting()] == ["originate", "uuid_hold", "uuid_hold", "uuid_transfer",
                                                        "uuid_kill"]
    finally:
        popups.stop()
    lines = [json.loads(line) for line in relay.audit.read_text().splitlines()]
    assert [(e["ext"], e["action"], e["result"], e["via"]) for e in lines] == [
        ("1001", "dial", "ok", "mqtt"), ("1001", "hold", "ok", "mqtt"), ("1001", "unhold", "ok", "mqtt"),
        ("1001", "transfer", "ok", "mqtt"), ("1002", "hangup", "ok", "mqtt")]
    assert all(e["request_id"] and e["client_id"].startswith("eslkit-control-") for e in lines)
    assert "relay-pw" not in relay.audit.read_text() and "ClueCon" not in relay.audit.read_text()


def test_the_relay_checks_again(broker, sim, relay) -> None:
    """What the ACL lets an agent publish is still checked: the extension comes from the
    topic, the call must be the agent's, ids are answered once, old requests expire, and
    an agent may not flood the switch."""
    api = ApiLog(sim)
    popups = Popup(sim, "1001,1002")
    agent = Desktop(broker, "1001")
    other = MqttCollector(broker, "freeswitch/#", username="1002", password=USERS["1002"])
    try:
        assert via(broker, "1002", "dial", "6209").returncode == 0
        theirs = popups.wait(ext="1002", state="answered", other_number="6209")
        api.wait_bridged()
        before = api.acting()
        now = time.time()
        agent.send({"id": "a1", "action": "hangup", "ext": "1002", "time": now})
        assert agent.reply("a1")["error"] == "not_allowed"
        agent.send({"id": "a2", "action": "hangup", "uuid": theirs["leg_uuid"], "time": now})
        reply = agent.reply("a2")
        assert (reply["ok"], reply["error"]) == (False, "not_allowed")
        assert reply["text"].startswith("1001 has no call '")
        agent.send({"id": "a3", "action": "hangup", "time": now - 120})
        assert agent.reply("a3")["error"] == "expired"
        agent.send({"id": "a4", "action": "transfer", "target": "1002 XML default &park", "time": now})
        assert agent.reply("a4")["error"] == "bad_number"
        agent.send({"id": "a5", "action": "hangup", "ext": "1001"}, ext="1002")  # the broker drops it (ACL)
        assert agent.reply("a5", timeout=1.5) is None
        agent.send({"id": "a6", "action": "hold", "time": now})
        agent.send({"id": "a6", "action": "hold", "time": now})
        time.sleep(1.0)
        assert [json.loads(p)["id"] for _, p, _ in agent.replies.messages].count("a6") == 1
        # "on behalf of" is recorded, never trusted: claiming 1002 does not reach 1002's call
        agent.send({"id": "b1", "action": "hangup", "on_behalf_of": "1002", "time": now})
        assert agent.reply("b1")["error"] == "no_call"
        agent.send({"id": "b2", "action": "hold", "on_behalf_of": "\x1b[2Jalice", "time": now})
        assert agent.reply("b2")["error"] == "no_call"
        for i in range(5):
            agent.send({"id": f"r{i}", "action": "hold", "time": time.time()})
        errors = [agent.reply(f"r{i}")["error"] for i in range(5)]
        assert "rate_limited" in errors
        agent.send({"id": "x" * 65, "action": "hold", "time": now})
        agent.send(["not", "a", "request"])
        time.sleep(0.5)
        assert api.acting() == before  # nothing of this reached the switch
        assert popups.records[-1]["state"] == "answered"  # 1002's call is untouched
        assert not any("/agents/1001/" in t for t, _, _ in other.messages)  # 1002 saw none of 1001's replies
    finally:
        agent.close()
        other.close()
        popups.stop()
    lines = {e.get("request_id"): e for e in map(json.loads, relay.audit.read_text().splitlines())}
    assert (lines["b1"]["ext"], lines["b1"]["on_behalf_of"], lines["b1"]["result"]) == ("1001", "1002", "no_call")
    assert "on_behalf_of" not in lines["b2"]  # not a printable name: not recorded
    limited = [e for e in map(json.loads, relay.audit.read_text().splitlines()) if e["result"] == "rate_limited"]
    assert len(limited) == errors.count("rate_limited")  # each refusal audited once


def test_popup_keys_through_the_broker(broker, sim, relay) -> None:
    """`popup --from mqtt://… --control` on a desktop with only 1001's broker password: the
    keys go to the relay, the panel shows what the relay's tracker says."""
    pytest.importorskip("pexpect", reason="pexpect is in the test extras: pip install -e '.[test]'")
    from tests.test_popup_pty import Screen, spawn, stop

    api = ApiLog(sim)
    child = spawn("popup", "--ext", "1001", "--control", "--from", f"mqtt://1001@127.0.0.1:{broker.port}",
                  env_extra={"ESLKIT_BROKER_PASSWORD": USERS["1001"]})
    screen = Screen(child)
    try:
        screen.wait_for("a answer  h hold/unhold")
        child.send("d6208\r")
        screen.wait_for("✓ 1001: dialling 6208")
        screen.wait_for("1001 · Connected")
        api.wait_bridged()
        child.send("h")
        screen.wait_for("✓ 1001: call to 6208 on hold")
        screen.wait_for("1001 · On hold")
        child.send("t1002park\r")  # letters may be typed (a site may allow names), the relay refuses them
        screen.wait_for("✗ '1002park' is not a destination eslkit will send to the switch")
        child.send("t1002 &\r")  # a space or & never even gets into the prompt
        screen.wait_for("✓ 1001: call to 6208 transferred to 1002")
        screen.wait_for("1001 · Ended")
    finally:
        rest = stop(child)
    assert child.exitstatus == 0, rest
    assert [c.split()[0] for c in api.acting()] == ["originate", "uuid_hold", "uuid_transfer"]
    transfer = [c for c in api.acting() if c.startswith("uuid_transfer")][0]
    assert transfer.split()[2:] == ["-bleg", "1002", "XML", "default"]
