"""Against a real FreeSWITCH, when you have one: ESLKIT_TEST_SWITCH=host:port.

    ESLKIT_TEST_SWITCH=10.0.0.5:8021 ESL_PASSWORD=... .venv/bin/python -m pytest tests/test_real_switch.py

Without ESLKIT_TEST_SWITCH each test skips with that reason: the one skip CI
allows (tests/support/prerequisites.py).  What they do on the switch:

* the client: ``api status``, ``bgapi status`` (and its BACKGROUND_JOB event);
* ``eslkit watch --count 1`` on BACKGROUND_JOB while ``bgapi status`` runs;
* ``eslkit popup``: fires, with ``sendevent``, the CHANNEL_CREATE and
  CHANNEL_HANGUP_COMPLETE events of one missed call (taken from a real 1.10.12
  capture) for a made-up extension 9xxxxxx and new UUIDs.  Other listeners on
  that switch see those two events: use a lab switch;
* ``eslkit build --check``: builds a stand-in tree and runs ``api status`` with
  the new module;
* ``eslkit.ESL`` and the C module side by side: ``api version``, and a
  ``bgapi version`` with its BACKGROUND_JOB event in plain and JSON, compared.

The same tests run against ``eslkit sim`` (ESLKIT_TEST_SWITCH=127.0.0.1:8021
with ``eslkit sim`` running): that is how they were checked, as no real switch
was at hand.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import queue
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from eslkit.client import Connection
from eslkit.event import Event
from eslkit.protocol import EventFrame, Parser
from tests.support.fstree import ESLKIT, run_eslkit, stand_in
from tests.support.prerequisites import needs_switch

CAPTURE = Path(__file__).parent / "data" / "fs-captures" / "1.10.12" / "scenario_noanswer_plain.raw"
# Set by the switch itself on every event it fires: not sent with sendevent.
OWN_HEADERS = ("Event-Name", "Core-UUID", "FreeSWITCH-", "Event-Date-", "Event-Calling-", "Event-Sequence",
               "Content-Length")


@pytest.fixture(scope="module")
def switch() -> tuple:
    host, port = needs_switch()
    return host, port, os.environ.get("ESL_PASSWORD", "ClueCon")


def _env(password: str) -> dict:
    return {**os.environ, "ESL_PASSWORD": password, "NO_COLOR": "1"}


async def _connection(switch) -> Connection:
    host, port, password = switch
    conn = Connection(host, port, password, timeout=10)
    await conn.connect()
    return conn


def test_client_api_and_bgapi(switch):
    async def main():
        conn = await _connection(switch)
        try:
            status = await conn.api("status")
            job = await conn.bgapi("status")
        finally:
            await conn.close()
        return status, job

    status, job = asyncio.run(main())
    assert "UP " in status and "ready" in status
    assert "UP " in job and "ready" in job  # the BACKGROUND_JOB event's body


def test_watch_count_one_background_job(switch):
    host, port, password = switch
    watch = subprocess.Popen([str(ESLKIT), "watch", "--host", host, "--port", str(port), "-f", "BACKGROUND_JOB",
                              "--count", "1", "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=_env(password))

    async def jobs_until_watch_exits():
        conn = await _connection(switch)
        try:
            for _ in range(200):  # each bgapi fires one BACKGROUND_JOB; watch takes the first it sees
                await conn.bgapi("status")
                if watch.poll() is not None:
                    return
                await asyncio.sleep(0.1)
        finally:
            await conn.close()

    try:
        asyncio.run(jobs_until_watch_exits())
        out, err = watch.communicate(timeout=30)
    finally:
        watch.kill()
    assert watch.returncode == 0, err
    (line,) = out.splitlines()
    assert json.loads(line)["Event-Name"] == "BACKGROUND_JOB"
    assert "1 event received" in err


def _missed_call(ext: str) -> list:
    """A real missed call's CHANNEL_CREATE and CHANNEL_HANGUP_COMPLETE events, for ``ext``, with new UUIDs."""
    frames = Parser().feed(CAPTURE.read_bytes())
    events = [f.event for f in frames if isinstance(f, EventFrame)
              and f.event.name in ("CHANNEL_CREATE", "CHANNEL_HANGUP_COMPLETE")]
    renamed = {}
    calls = []
    for event in events:
        pairs = []
        # single-line values only (not ARRAY:: lists, not the SDP): sendevent headers are lines
        texts = [(name, value) for name, value in event.pairs()
                 if isinstance(value, str) and "\n" not in value and "\r" not in value]
        uuids = {value for _, value in texts if len(value) == 36 and value.count("-") == 4}
        for name, value in texts:
            if any(name.startswith(own) for own in OWN_HEADERS):
                continue
            for old in uuids:
                value = value.replace(old, renamed.setdefault(old, str(uuid.uuid4())))
            pairs.append((name, value.replace("1002", ext)))
        calls.append(Event([("Event-Name", event.name), *pairs], event.body))
    return calls


def test_popup_shows_a_missed_call(switch):
    host, port, password = switch
    ext = "9" + "".join(random.choice("0123456789") for _ in range(6))
    call = _missed_call(ext)
    creates = [e for e in call if e.name == "CHANNEL_CREATE"]
    hangups = [e for e in call if e.name == "CHANNEL_HANGUP_COMPLETE"]
    popup = subprocess.Popen([str(ESLKIT), "popup", "--ext", ext, "--format", "json", "--host", host,
                              "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=_env(password))

    async def fire(conn, event: Event) -> None:
        headers = [(k, v) for k, v in event.pairs() if k != "Event-Name"]
        reply = await conn.command(f"sendevent {event.name}", headers)
        assert reply.reply_text.startswith("+OK"), reply.reply_text

    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in popup.stdout], daemon=True).start()

    async def play() -> list:
        conn = await _connection(switch)
        try:
            # Fire the ringing until popup shows it: then it has subscribed.
            for _ in range(100):
                for event in creates:
                    await fire(conn, event)
                try:
                    first = await asyncio.to_thread(lines.get, timeout=0.3)
                    break
                except queue.Empty:
                    continue
            else:
                pytest.fail("popup showed nothing for 100 rings")
            for event in hangups:
                await fire(conn, event)
            return [first, await asyncio.to_thread(lines.get, timeout=30)]
        finally:
            await conn.close()

    try:
        got = asyncio.run(play())
    finally:
        popup.terminate()
        popup.communicate(timeout=10)
    records = [json.loads(line) for line in got]
    assert [(r["ext"], r["state"]) for r in records] == [(ext, "ringing"), (ext, "ended")]
    assert records[1]["outcome"] == "missed" and records[1]["caller_number"] == "6208"


def test_build_check_against_the_switch(switch, tmp_path):
    host, port, password = switch
    root = stand_in(tmp_path / "fs", "1.10.12")
    proc = run_eslkit("build", "--src", root, "--out", tmp_path / "out", "--check", f"{host}:{port}",
                      env={"ESL_PASSWORD": password}, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"api status via {host}:{port}" in proc.stdout and "ready" in proc.stdout
    assert password not in proc.stdout + proc.stderr or password == "ClueCon"


def test_pure_and_compiled_esl_module_read_the_switch_alike(switch, esl_modules):
    """The difference suite's comparison (snapshot: every serialisation, every header), on a
    real switch: the same api reply, and each module's own BACKGROUND_JOB event."""
    from tests.support.esl_pair import describe, snapshot

    host, port, password = switch
    results = []
    for module in esl_modules:
        con = module.ESLconnection(host, str(port), password)
        assert con.connected() == 1
        version = describe(con.api("version"))
        shapes = []
        for fmt in ("plain", "json"):
            con.events(fmt, "BACKGROUND_JOB")
            job = f"eslkit-test-{uuid.uuid4()}"
            con.bgapi("version", None, job)
            event = con.recvEventTimed(10000)
            while event is not None and event.getHeader("Job-UUID") != job:
                event = con.recvEventTimed(10000)
            assert event is not None, f"no BACKGROUND_JOB for {job}"
            got = snapshot(event)
            # what differs from one job to the next: its uuid, its time, its sequence number
            shapes.append((got["type"], got["body"], [n for n in got["names"]]))
        con.disconnect()
        results.append((version, shapes))
    assert results[1] == results[0]
