"""Phone control through RabbitMQ: `eslkit relay --control` on a real RabbitMQ node, the
agents' users limited by the topic permissions of docs/phone.md, and `eslkit phone --via
amqp://…` with only an agent's own credentials."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.brokers import rabbitmq  # noqa: F401 (fixture)
from tests.support.sim import ESLKIT, sim_in_thread
from tests.test_phone import ApiLog, Popup
from tests.test_relay_control import control_relay

pytestmark = pytest.mark.slow

AGENTS = {"1001": "pw-1001", "1002": "pw-1002"}
DOC = Path(__file__).resolve().parents[1] / "docs" / "phone.md"


def documented_permissions() -> list[list[str]]:
    """The rabbitmqctl lines of docs/phone.md's RabbitMQ example, for user {ext}."""
    text = DOC.read_text(encoding="utf-8").split("<!-- rabbitmq-example", 1)[1]
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    lines = []
    for line in block.splitlines():
        if line.startswith("rabbitmqctl "):
            lines.append([w.strip("'") for w in re.findall(r"'[^']*'|\S+", line)][1:])
    return lines


@pytest.fixture(scope="module")
def agents(rabbitmq):  # noqa: F811
    for ext, password in AGENTS.items():
        for args in documented_permissions():
            args = [a.replace("EXT", ext).replace("PASSWORD", password) for a in args]
            try:
                rabbitmq.ctl(*args)
            except RuntimeError as exc:
                if "already exists" not in str(exc):
                    raise
    return rabbitmq


@pytest.fixture
def sim():
    with sim_in_thread(speed=5.0) as running:
        yield running


@pytest.fixture
def relay(agents, sim, tmp_path):
    with control_relay(agents.url(), agents.password, sim, tmp_path / "audit.jsonl") as proc:
        yield proc


def via(broker, ext: str, *args: str, user: str | None = None) -> subprocess.CompletedProcess:
    user = user or ext
    return subprocess.run([str(ESLKIT), "phone", *args, "--ext", ext, "--via",
                           f"amqp://{user}@{broker.host}:{broker.port}/"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "ESLKIT_BROKER_PASSWORD": AGENTS[user]})


def test_agents_control_their_calls_through_rabbitmq(agents, sim, relay) -> None:
    api = ApiLog(sim)
    popups = Popup(sim, "1001")
    try:
        done = via(agents, "1001", "dial", "6208")
        assert done.returncode == 0, done.stderr
        popups.wait(ext="1001", state="answered", other_number="6208")
        api.wait_bridged()
        done = via(agents, "1001", "hold")
        assert (done.returncode, done.stdout) == (0, "1001: call to 6208 on hold\n"), done.stderr
        # 1001's user may not read 1002's replies, nor send on 1002's routing key
        done = via(agents, "1002", "hangup", user="1001")
        assert done.returncode == 13 and "RabbitMQ" in done.stderr and "Traceback" not in done.stderr, done.stderr
        done = via(agents, "1001", "hangup")
        assert (done.returncode, done.stdout) == (0, "1001: call to 6208 hung up\n"), done.stderr
    finally:
        popups.stop()
    assert [c.split()[0] for c in api.acting()] == ["originate", "uuid_hold", "uuid_kill"]
    lines = [json.loads(line) for line in relay.audit.read_text().splitlines()]
    assert [(e["ext"], e["action"], e["result"], e["via"], e["client_id"]) for e in lines] == [
        ("1001", "dial", "ok", "amqp", "1001"), ("1001", "hold", "ok", "amqp", "1001"),
        ("1001", "hangup", "ok", "amqp", "1001")]  # the broker user, as RabbitMQ checked it
