"""Third-party ESL clients against `eslkit sim`: greenswitch (gevent) and the C ESL
module built from the python-ESL sdist. Each connects, authenticates, subscribes,
receives the queue scenario's events with the real headers, and gets `api status`.

The clients run in their own interpreter (gevent and a C extension stay out of
the test process); the simulator runs as a real `eslkit sim` process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from eslkit.sim import derive
from tests.support.sim import sim_subprocess

WANTED = ("CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE")

GREENSWITCH = r"""
import json, sys, gevent, greenswitch
host, port = sys.argv[1], int(sys.argv[2])
esl = greenswitch.InboundESL(host=host, port=port, password="ClueCon")
esl.connect()
events = []
esl.register_handle("*", lambda ev: events.append(dict(ev.headers)))
reply = esl.send("event plain CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE").data
status = esl.send("api status").data
for _ in range(200):
    if len(events) >= 8:
        break
    gevent.sleep(0.05)
esl.stop()
print(json.dumps({"reply": reply, "status": status.decode() if isinstance(status, bytes) else status,
                  "events": events}))
"""

C_ESL = r"""
import json, sys
sys.path.insert(0, sys.argv[3])
import ESL
con = ESL.ESLconnection(sys.argv[1], sys.argv[2], "ClueCon")
assert con.connected(), "not connected"
reply = con.sendRecv("event plain CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE").getHeader("Reply-Text")
status = con.api("status").getBody()
events = []
while len(events) < 8:
    e = con.recvEventTimed(5000)
    if e is None:
        break
    events.append(json.loads(e.serialize("json")))
print(json.dumps({"reply": reply, "status": status, "events": events}))
"""


def run_client(script: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check(result: dict, captures: Path) -> None:
    assert result["reply"] == "+OK event listener enabled plain"
    assert result["status"].startswith("UP 0 years") and "FreeSWITCH (Version 1.10.12-release  64bit) is ready" \
        in result["status"]
    real = [e for e in derive.call_events((captures / "scenario_queue_plain.raw").read_bytes()) if e.name in WANTED]
    got = [e for e in result["events"] if e.get("Event-Name") in WANTED]
    assert [(e["Event-Name"], e["Caller-Destination-Number"]) for e in got] == [
        (e.name, e.destination) for e in real]
    for ours, theirs in zip(got, real):
        assert set(ours) - {"Content-Type", "Content-Length", "_body"} == {k for k, _ in theirs.pairs()}
        assert ours["Caller-Caller-ID-Name"] == "Caller 6208" and ours["Unique-ID"] != theirs.unique_id


def test_greenswitch(captures: Path) -> None:
    pytest.importorskip("greenswitch", reason="greenswitch is in the test extras: pip install -e '.[test]'")
    with sim_subprocess("--speed", "max") as (host, port):
        result = run_client(GREENSWITCH, host, str(port))
    check(result, captures)


def test_c_esl_module_from_the_python_esl_sdist(captures: Path) -> None:
    from tests.support.esl_sdist import EslSdistUnavailable, build_esl_module

    try:
        module_dir = build_esl_module()
    except EslSdistUnavailable as exc:
        pytest.skip(f"cannot build the C ESL module here: {exc}")
    with sim_subprocess("--speed", "max") as (host, port):
        result = run_client(C_ESL, host, str(port), str(module_dir))
    check(result, captures)


def test_eslkit_client(captures: Path) -> None:
    """eslkit's own asyncio client against the simulator in a thread."""
    import asyncio

    from eslkit.client import Connection
    from tests.support.sim import sim_in_thread

    async def session(host: str, port: int) -> dict:
        async with Connection(host, port, "ClueCon") as conn:
            reply = await conn.subscribe(list(WANTED), format="json")
            status = await conn.api("status")
            version = await conn.bgapi("version")
            events = []
            async for item in conn.events():
                events.append(item.to_dict())
                if len(events) == 8:
                    break
        return {"reply": reply.replace("json", "plain"), "status": status, "version": version, "events": events}

    with sim_in_thread(scenario="queue", speed=None) as sim:
        result = asyncio.run(asyncio.wait_for(session(sim.host, sim.port), 20))
    assert result["version"] == "FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n"
    check(result, captures)
