"""`eslkit phone` end to end: the command as a user runs it, a simulated switch over real
sockets, a popup watching, and the switch's own record of every api command it got (its
API events) to prove that what was refused never reached it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
import time

import pytest

from eslkit.protocol import EventFrame
from tests.support.sim import ESLKIT, sim_in_thread
from tests.test_sim_protocol import Client

EXE = [str(ESLKIT)] if ESLKIT.exists() else [sys.executable, "-m", "eslkit"]
ENV = {**os.environ, "ESL_PASSWORD": "ClueCon"}
CONTROL = {"originate", "uuid_kill", "uuid_hold", "uuid_transfer", "uuid_phone_event"}


class ApiLog:
    """A connection subscribed to API events: what the switch was asked to do (and to
    CHANNEL_BRIDGE, to know when a far party answered: the popup has no record for it)."""

    def __init__(self, sim, password: str = "ClueCon"):
        self.client = Client(*sim)
        self.client.read_until(lambda: self.client.frames)
        self.client.sock.sendall(f"auth {password}\n\nevent plain API CHANNEL_BRIDGE\n\n".encode())
        self.client.read_until(lambda: len(self.client.frames) >= 3)

    def events(self, name: str) -> list:
        return [f.event for f in self.client.frames if isinstance(f, EventFrame) and f.event.name == name]

    def asked(self, command: str) -> int:
        """How many times the switch was asked ``command`` (e.g. "show channels as json") so far."""
        return sum(f"{e.get('API-Command')} {e.get('API-Command-Argument') or ''}".strip() == command
                   for e in self.events("API"))

    def wait_asked(self, command: str, count: int = 1, timeout: float = 30.0) -> None:
        """Until the switch has answered ``command`` ``count`` times (a client's question on
        connect: what it shows next is what it learnt from the answer, or later events)."""
        self.client.read_until(lambda: self.asked(command) >= count, timeout=timeout)
        assert self.asked(command) >= count, f"the switch was asked {command!r} {self.asked(command)} times"

    def wait_bridged(self, count: int = 1) -> None:
        self.client.read_until(lambda: len(self.events("CHANNEL_BRIDGE")) >= count, timeout=10)
        assert len(self.events("CHANNEL_BRIDGE")) >= count

    def commands(self, settle: float = 0.3) -> list[str]:
        self.client.read_until(lambda: False, timeout=settle)
        return [f"{e.get('API-Command')} {e.get('API-Command-Argument') or ''}".strip() for e in self.events("API")]

    def acting(self) -> list[str]:
        """The call-control commands (not show channels, nor those the switch's own
        dialplan runs: sofia_contact, strftime…)."""
        return [c for c in self.commands() if c.split()[0] in CONTROL]


class Popup:
    """`eslkit popup --format json` as a process, its records as they come."""

    def __init__(self, sim, exts: str):
        listening = sim.subscribed()
        self.proc = subprocess.Popen([*EXE, "popup", "--ext", exts, "--format", "json", "--host", sim.host,
                                      "--port", str(sim.port)], env=ENV, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.records: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()
        sim.wait_subscribed(listening + 1)  # it takes the events from now on (and asks what is up)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.records.append(json.loads(line))

    def wait(self, **want) -> dict:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            for record in self.records:
                if all(record.get(k) == v for k, v in want.items()):
                    return record
            time.sleep(0.05)
        raise AssertionError(f"no popup record with {want}; got {self.records}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def phone(sim, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*EXE, "phone", *args, "--host", sim.host, "--port", str(sim.port)], env=ENV,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def sim():
    with sim_in_thread(speed=5.0) as running:  # phones answer after 0.6 s instead of the captured 3 s
        yield running


@pytest.fixture
def popup(sim):
    watching = Popup(sim, "1001,1002")
    yield watching
    watching.stop()


def test_dial_hold_unhold_transfer_hangup(sim, popup) -> None:
    """The issue's own sequence: each action changes the call as the real switch's
    captures show, and the popups say so; 1002 gets the caller 1001 talked to."""
    api = ApiLog(sim)
    done = phone(sim, "dial", "--ext", "1001", "6208")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1001: dialling 6208 — 1001's phone is ringing; answer it to place the call\n"
    popup.wait(ext="1001", state="answered", direction="outgoing", other_number="6208")
    api.wait_bridged()  # 6208 answered

    done = phone(sim, "hold", "--ext", "1001")
    assert (done.returncode, done.stdout) == (0, "1001: call to 6208 on hold\n"), done.stderr
    popup.wait(ext="1001", on_hold=True)
    done = phone(sim, "unhold", "--ext", "1001", "--format", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] and result["text"] == "1001: call to 6208 taken off hold"
    assert result["command"] == f"uuid_hold off {result['uuid']}"
    assert popup.records[-1]["on_hold"] is False

    done = phone(sim, "transfer", "--ext", "1001", "1002")
    assert (done.returncode, done.stdout) == (0, "1001: call to 6208 transferred to 1002\n"), done.stderr
    popup.wait(ext="1001", state="ended", outcome="answered")
    ringing = popup.wait(ext="1002", state="ringing")
    assert (ringing["caller_number"], ringing["transferred_from"]) == ("6208", "1001")
    popup.wait(ext="1002", state="answered", caller_number="6208")
    api.wait_bridged(2)

    done = phone(sim, "hangup", "--ext", "1002")
    assert (done.returncode, done.stdout) == (0, "1002: call from 6208 hung up\n"), done.stderr
    popup.wait(ext="1002", state="ended", outcome="answered", hangup_cause="NORMAL_CLEARING")
    assert [c.split()[0] for c in api.acting()] == ["originate", "uuid_hold", "uuid_hold", "uuid_transfer",
                                                    "uuid_kill"]
    assert sim.call(_channels(sim.server)) == 0


async def _channels(server) -> int:
    return len(server.channels)


def test_refused_requests_never_reach_the_switch(sim, popup) -> None:
    api = ApiLog(sim)
    assert phone(sim, "dial", "--ext", "1001", "6208").returncode == 0
    mine = popup.wait(ext="1001", state="answered", other_number="6208")
    api.wait_bridged()
    before = api.acting()

    refused = [
        (["hangup", "--ext", "1002"], 42, "1002 has no call right now."),
        (["hangup", "--ext", "1002", "--uuid", mine["leg_uuid"]], 41, f"1002 has no call '{mine['leg_uuid']}'"),
        (["hold", "--ext", "1001", "--uuid", "6c0d2b8e-0000-4000-8000-000000000000"], 41, "1001 has no call"),
        (["transfer", "--ext", "1001", "1002 XML default &park"], 43, "'1002 XML default &park' is not a destination"),
        (["transfer", "--ext", "1001", "1002,user/1003"], 43, "'1002,user/1003' is not a destination"),
        (["dial", "--ext", "1001", "6208|user/1003"], 43, "is not a number"),
        (["dial", "--ext", "1001}user/1002", "6208"], 43, "is not an extension"),
        (["unhold", "--ext", "1001"], 42, "is not on hold"),
        (["answer", "--ext", "1001"], 42, "is not ringing"),
        # A mistyped cause: the switch would hang up with NORMAL_UNSPECIFIED and eslkit say "hung up".
        (["hangup", "--ext", "1001", "--cause", "NORMAL_CLEARNG"], 43,
         "'NORMAL_CLEARNG' is not a FreeSWITCH hangup cause (did you mean NORMAL_CLEARING?)."),
        (["hangup", "--ext", "1002", "--cause", "normal clearing"], 43, "is not a FreeSWITCH hangup cause"),
    ]
    for args, code, sentence in refused:
        done = phone(sim, *args)
        assert done.returncode == code, (args, done.stderr)
        assert sentence in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) <= 2 and "Traceback" not in done.stderr  # sentence, fix
        assert code != 42 or "fix: " in done.stderr, (args, done.stderr)  # no call to act on: say what to do
        assert done.stdout == ""
    assert api.acting() == before  # not one of them reached the switch
    assert popup.records[-1]["state"] == "answered"  # the call is untouched
    done = phone(sim, "hangup", "--ext", "1001", "--cause", "CALL_REJECTED")
    assert done.returncode == 0, done.stderr
    popup.wait(ext="1001", state="ended", hangup_cause="CALL_REJECTED")
    assert api.acting()[-1] == f"uuid_kill {mine['leg_uuid']} CALL_REJECTED"


def test_json_result_of_a_refusal(sim) -> None:
    done = phone(sim, "hangup", "--ext", "1001", "--format", "json")
    assert done.returncode == 42
    assert json.loads(done.stdout) == {"ok": False, "ext": "1001", "action": "hangup",
                                       "text": "1001 has no call right now.", "uuid": None, "target": None,
                                       "command": None, "error": "no_call", "request_id": None}
    assert "1001 has no call right now." in done.stderr


def test_answer_from_the_computer(popup) -> None:
    """The simulator's phones honour the talk event: the agent's phone, ringing for a
    dial, answers at once instead of after the ring."""
    with sim_in_thread(speed=0.2) as slow:  # the phone would ring 15 s
        watching = Popup(slow, "1001")
        try:
            dialled = time.monotonic()  # the phone rings from after this: its own answer comes 15 s later
            assert phone(slow, "dial", "--ext", "1001", "6208").returncode == 0
            watching.wait(ext="1001", state="ringing")
            done = phone(slow, "answer", "--ext", "1001")
            assert (done.returncode, done.stdout) == (0, "1001: outgoing call answered\n"), done.stderr
            assert time.monotonic() - dialled < 15  # the answer proven before the ring's end: the talk event's
            watching.wait(ext="1001", state="answered")
        finally:
            watching.stop()


def test_audit_log(sim, popup, tmp_path) -> None:
    audit = tmp_path / "audit.jsonl"
    api = ApiLog(sim)
    assert phone(sim, "dial", "--ext", "1001", "6208", "--audit", str(audit)).returncode == 0
    popup.wait(ext="1001", state="answered", other_number="6208")
    api.wait_bridged()
    assert phone(sim, "hold", "--ext", "1001", "--audit", str(audit)).returncode == 0
    assert phone(sim, "transfer", "--ext", "1001", "1002 &park", "--audit", str(audit)).returncode == 43
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(e["ext"], e["action"], e["target"], e["result"], e["via"]) for e in lines] == [
        ("1001", "dial", "6208", "ok", "cli"),
        ("1001", "hold", None, "ok", "cli"),
        ("1001", "transfer", "1002 &park", "bad_number", "cli"),
    ]
    assert lines[1]["uuid"] == popup.records[-1]["leg_uuid"] and lines[1]["command"].startswith("uuid_hold ")
    assert all(e["time"].endswith("Z") for e in lines)
    assert "ClueCon" not in audit.read_text()
    assert stat.S_IMODE(audit.stat().st_mode) == 0o600


def test_through_a_broker_the_relay_keeps_the_rules(sim, tmp_path) -> None:
    """--via sends the request to `relay --control`: its rules, context and audit log apply;
    asking for local ones is a usage error, not silently ignored."""
    audit = tmp_path / "audit.jsonl"
    for extra in (["--audit", str(audit)], ["--context", "agents"], ["--allow-dest", "sales"]):
        done = phone(sim, "transfer", "--ext", "1001", "1002", "--via", "mqtt://127.0.0.1:1", *extra)
        assert done.returncode == 2 and "Invalid value for --via" in done.stderr, done.stderr
    assert not audit.exists()
