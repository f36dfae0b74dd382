"""`eslkit serve --from mqtt://…`: the agent pages fed by what `eslkit relay` publishes, with no
ESL password on serve's machine — as a user runs them: eslkit sim, relay, Mosquitto, serve."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess

import aiohttp
import pytest

from tests.support.brokers import wait_connected
from tests.support.serve import write_users
from tests.support.sim import ESLKIT, free_port, sim_in_thread
from tests.test_relay_e2e import counting_subscribers, wait_until
from tests.test_serve_api import BEARER, events, legs

pytestmark = pytest.mark.slow


def test_serve_from_mqtt_shows_the_states_the_relay_published(mosquitto, tmp_path):
    users = write_users(tmp_path / "users.txt")
    port = free_port()
    without_password = {k: v for k, v in os.environ.items() if k != "ESL_PASSWORD"}
    with sim_in_thread(scenario="queue", speed=None, autostart=False) as sim:
        subscribed = counting_subscribers(sim.server)
        relay = subprocess.Popen([str(ESLKIT), "relay", "--to", mosquitto.url, "--client-id", "serve-e2e",
                                  "--host", sim.host, "--port", str(sim.port)],
                                 env={**os.environ, "ESL_PASSWORD": "ClueCon"}, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
        serve = subprocess.Popen([str(ESLKIT), "serve", "--users", str(users), "--listen", f"127.0.0.1:{port}",
                                  "--from", f"{mosquitto.url}/freeswitch/+"], env=without_password,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            assert wait_until(lambda: len(subscribed) >= 1), "the relay did not subscribe"
            assert wait_connected(serve.pid, mosquitto.port)

            async def main():
                async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
                    got = await events(http, "/api/agent/1001/events", lambda r: ("ended", "answered") in legs(r),
                                       headers=BEARER, then=lambda: sim.call_soon(
                                           lambda: sim.server.spawn(sim.server.play("queue"))))
                    async with http.get("/api/agent/1001/day", headers=BEARER) as response:
                        day = (await response.json())["day"]
                return got, day

            got, day = asyncio.run(asyncio.wait_for(main(), 60))
            assert legs(got) == [("ringing", None), ("answered", None), ("ended", "answered")]
            assert [r["caller_number"] for r in day] == ["6208"]
        finally:
            for proc in (serve, relay):
                proc.send_signal(signal.SIGINT)
            errors = {name: proc.communicate(timeout=20)[1] for name, proc in (("serve", serve), ("relay", relay))}
    assert serve.returncode == 0 and "Traceback" not in errors["serve"], errors["serve"]
    assert "events from" in errors["serve"]
