"""`eslkit serve --from mqtt://…`: the agent pages fed by what `eslkit relay` publishes, with no
ESL password on serve's machine — as a user runs them: eslkit sim, relay, Mosquitto, serve."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.support.brokers import wait_connected
from tests.support.cli import Running
from tests.support.net import free_port
from tests.support.serve import write_users
from tests.support.sim import sim_in_thread
from tests.test_serve_api import BEARER, legs, queue_call

pytestmark = pytest.mark.slow


def test_serve_from_mqtt_shows_the_states_the_relay_published(mosquitto, tmp_path, monkeypatch):
    monkeypatch.delenv("ESL_PASSWORD", raising=False)  # serve's machine has no ESL password
    users = write_users(tmp_path / "users.txt")
    port = free_port()
    with sim_in_thread(scenario="queue", speed=None, autostart=False) as sim, \
            Running("relay", "--to", mosquitto.url, "--client-id", "serve-e2e", "--host", sim.host, "--port",
                    sim.port, env={"ESL_PASSWORD": "ClueCon"}) as relay, \
            Running("serve", "--users", users, "--listen", f"127.0.0.1:{port}", "--from",
                    f"{mosquitto.url}/freeswitch/+") as serve:
        try:
            sim.wait_subscribed(1)  # the relay listens: only then are the calls played
            assert wait_connected(serve.proc.pid, mosquitto.port)

            async def main():
                async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
                    got = await queue_call(http, lambda: sim.call_soon(
                        lambda: sim.server.spawn(sim.server.play("queue"))), BEARER)
                    async with http.get("/api/agent/1001/day", headers=BEARER) as response:
                        day = (await response.json())["day"]
                return got, day

            got, day = asyncio.run(asyncio.wait_for(main(), 60))
            assert legs(got) == [("ringing", None), ("answered", None), ("ended", "answered")]
            assert [r["caller_number"] for r in day] == ["6208"]
        finally:
            codes = {"serve": serve.stop(), "relay": relay.stop()}
    errors = "\n".join(serve.err)
    assert codes["serve"] == 0 and "Traceback" not in errors, errors
    assert "events from" in errors
