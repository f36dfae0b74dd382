"""`eslkit serve --from mqtt://…`: the agent pages fed by what `eslkit relay` publishes, with no
ESL password on serve's machine — as a user runs them: eslkit sim, relay, Mosquitto, serve."""

from __future__ import annotations

import asyncio
import json
import uuid

import aiohttp
import pytest

from tests.support.cli import Running
from tests.support.net import free_port
from tests.support.serve import write_users
from tests.support.sim import sim_in_thread
from tests.test_serve_api import BEARER, legs, login, queue_call

pytestmark = pytest.mark.slow


def test_serve_from_mqtt_shows_the_states_the_relay_published(mosquitto, tmp_path, monkeypatch):
    monkeypatch.delenv("ESL_PASSWORD", raising=False)  # serve's machine has no ESL password
    users = write_users(tmp_path / "users.txt")
    port = free_port()
    with sim_in_thread(scenario="queue", speed=None, autostart=False) as sim, \
            Running("relay", "--to", mosquitto.url, "--client-id", "serve-e2e", "--host", sim.host, "--port",
                    sim.port, env={"ESL_PASSWORD": "ClueCon"}) as relay, \
            Running("serve", "--users", users, "--listen", f"127.0.0.1:{port}", "--from",
                    # its own broker session: the default one (per host and extensions) is kept by
                    # the broker across runs, and would hand over what earlier tests published
                    f"{mosquitto.url}/freeswitch/+?client_id=serve-e2e-{uuid.uuid4().hex[:8]}") as serve:
        try:
            sim.wait_subscribed(1)  # the relay listens: only then are the calls played
            # serve listens once the broker confirmed its subscription: its start-up line says so
            assert serve.wait_for(lambda: any("agent pages on" in line for line in serve.err), 20), serve.err

            async def main():
                async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
                    got = await queue_call(http, lambda: sim.call_soon(
                        lambda: sim.server.spawn(sim.server.play("queue"))), BEARER)
                    async with http.get("/api/agent/1001/day", headers=BEARER) as response:
                        day = (await response.json())["day"]
                async with aiohttp.ClientSession(f"http://127.0.0.1:{port}",
                                                 cookie_jar=aiohttp.CookieJar(unsafe=True)) as supervisor:
                    await login(supervisor, "sam")
                    async with supervisor.get("/wallboard.json") as response:
                        board = await response.json()
                return got, day, board

            got, day, board = asyncio.run(asyncio.wait_for(main(), 60))
            assert legs(got) == [("ringing", None), ("answered", None), ("ended", "answered")]
            assert [r["caller_number"] for r in day] == ["6208"]
            # The supervisors' wallboard counts the same states: the ring group 2000, 1001's answer;
            # and it says what popup states cannot carry.
            assert [(q["name"], q["kind"], q["offered"], q["answered"], q["waiting"]) for q in board["queues"]] \
                == [("2000", "group", 1, 1, 0)]
            assert {a["name"]: (a["answered"], a["state"]) for a in board["agents"]} == {
                "1001": (1, "available"), "1002": (0, "available")}
            assert board["link"]["connected"] and "mod_callcenter and mod_fifo queues" in board["notes"][0]
        finally:
            codes = {"serve": serve.stop(), "relay": relay.stop()}
    errors = "\n".join(serve.err)
    assert codes["serve"] == 0 and "Traceback" not in errors, errors
    assert "events from" in errors


def test_serve_from_mqtt_with_control_acts_through_relay_control(tmp_path, monkeypatch):
    """serve --from mqtt://… --control: the buttons' requests go through the broker to
    `relay --control`, which carries them out with its own checks and audit log; serve has
    no ESL password and its broker user only the rights docs/serve.md gives it."""
    from tests.support.brokers import Mosquitto
    from tests.test_relay_cli import documented_acl
    from tests.test_relay_control import control_relay

    monkeypatch.delenv("ESL_PASSWORD", raising=False)
    accounts = {"relay": "relay-pw", "serve": "serve-pw"}
    assert "user serve" in documented_serve_acl()
    broker = Mosquitto(tmp_path / "acl", users=accounts, acl=documented_acl() + documented_serve_acl()).start()
    users = write_users(tmp_path / "users.txt")
    port = free_port()
    try:
        with sim_in_thread(speed=5.0) as sim, \
                control_relay(f"mqtt://relay@127.0.0.1:{broker.port}", accounts["relay"], sim,
                              tmp_path / "audit.jsonl") as relay, \
                Running("serve", "--users", users, "--listen", f"127.0.0.1:{port}", "--control", "--from",
                        f"mqtt://serve@127.0.0.1:{broker.port}/freeswitch/+", env={"ESLKIT_BROKER_PASSWORD": "serve-pw"}) as serve:
            try:
                assert serve.wait_for(lambda: any("agent pages on" in line for line in serve.err), 20), serve.err

                async def main():
                    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", headers=BEARER) as http:
                        async with http.post("/api/agent/1001/calls/dial", json={"target": "6208"}) as r:
                            dialled = await r.json()
                            assert r.status == 200, dialled
                        for _ in range(300):  # the answered call, as the relay published it
                            async with http.get("/api/agent/1001/calls") as r:
                                calls = (await r.json())["calls"]
                            if any(c["state"] == "answered" and c["other_number"] == "6208" for c in calls):
                                break
                            await asyncio.sleep(0.05)
                        async with http.post("/api/agent/1001/calls/hangup", json={"uuid": dialled["uuid"]}) as r:
                            return dialled, r.status, await r.json()

                dialled, status, gone = asyncio.run(asyncio.wait_for(main(), 60))
                assert dialled["text"].startswith("1001: dialling 6208")
                assert (status, gone["text"]) == (200, "1001: call to 6208 hung up"), gone
            finally:
                code = serve.stop()
        assert code == 0 and "Traceback" not in "\n".join(serve.err), serve.err
        lines = [json.loads(line) for line in relay.audit.read_text().splitlines()]
        assert [(e["action"], e["result"], e["via"]) for e in lines] == [("dial", "ok", "mqtt"), ("hangup", "ok", "mqtt")]
        # serve's MQTT client id authenticated nothing per agent: the web user goes beside it, as a claim
        assert all(e["client_id"].startswith("eslkit-control-") and e["on_behalf_of"] == "crm" for e in lines), lines
    finally:
        broker.stop()


def documented_serve_acl() -> str:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "serve.md").read_text()
    after = text.split("<!-- serve-acl", 1)[1]
    return "\n" + after.split("```\n", 1)[1].split("```", 1)[0]
