"""`eslkit sim` answers like FreeSWITCH 1.10.12: each capture's .sent bytes, sent to the
simulator over a real socket, get the same reply frames as the real switch gave
(Content-Type, Reply-Text, body), apart from UUIDs and times."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest

from eslkit.protocol import (ApiResponse, AuthRequest, CommandReply, DisconnectNotice, EventFrame, LogData,
                             Parser, RudeRejection)
from tests.support.sim import sim_in_thread

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
REPLIES = (AuthRequest, CommandReply, ApiResponse, DisconnectNotice, RudeRejection)

PROTOCOL_CASES = [
    "greeting", "auth_wrong_password", "auth_ok_then_exit", "command_before_auth",
    "event_json_originate_answer", "event_formats_replies", "filter_add_delete", "nixevent_noevents",
    "myevents", "unknown_command", "linger_divert", "api_status", "api_show_channels_json_idle",
    "api_large_responses", "api_errors", "bgapi_status_plain", "bgapi_status_json", "bgapi_status_xml",
    "bgapi_unsubscribed", "log_7", "exit_disconnect_notice", "acl_allowed_from_127.0.0.1",
]


class Client:
    """A bare socket client: send bytes, collect frames with a deadline."""

    def __init__(self, host: str, port: int, source: str | None = None):
        self.sock = socket.create_connection((host, port), timeout=5,
                                             source_address=(source, 0) if source else None)
        self.parser = Parser()
        self.frames: list = []
        self.eof = False

    def read_until(self, predicate, timeout: float = 3.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate() and not self.eof and time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(1 << 16)
            except socket.timeout:
                break
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof = True
                break
            self.frames += self.parser.feed(data)

    def replies(self) -> list:
        return [f for f in self.frames if isinstance(f, REPLIES)]

    def close(self) -> None:
        self.sock.close()


def commands(sent: bytes) -> list[bytes]:
    """Each command of a .sent file, with its blank line."""
    return [c + b"\n\n" for c in sent.split(b"\n\n") if c]


def normalise(frame) -> tuple:
    reply = frame.header("Reply-Text")
    body = frame.text
    if isinstance(frame, ApiResponse) and body.startswith("UP "):
        body = re.sub(r"\d+(\.\d+)?", "N", body)  # status: compared by shape
    return (frame.content_type, UUID.sub("<uuid>", reply) if reply else reply,
            frame.header("Job-UUID") is not None, UUID.sub("<uuid>", body))


def talk(host: str, port: int, sent: bytes, source: str | None = None) -> Client:
    client = Client(host, port, source)
    client.read_until(lambda: client.replies())
    for command in commands(sent):
        before = len(client.replies())
        client.sock.sendall(command)
        client.read_until(lambda: len(client.replies()) > before)
        if command.startswith(b"bgapi"):
            client.read_until(lambda: any(isinstance(f, EventFrame) and f.event.job_uuid ==
                                          client.replies()[-1].header("Job-UUID") for f in client.frames),
                              timeout=0.5)
    client.read_until(lambda: False, timeout=0.3)  # anything after the last reply (notice, EOF)
    return client


@pytest.fixture(scope="module")
def bare_sim():
    with sim_in_thread(scenario=None) as sim:
        yield sim


@pytest.mark.parametrize("case", PROTOCOL_CASES)
def test_same_replies_as_freeswitch(case: str, captures: Path, bare_sim) -> None:
    raw = (captures / f"{case}.raw").read_bytes()
    sent = (captures / f"{case}.sent").read_bytes()
    expected = [f for f in Parser().feed(raw) if isinstance(f, REPLIES)]
    client = talk(bare_sim.host, bare_sim.port, sent)
    try:
        assert [normalise(f) for f in client.replies()] == [normalise(f) for f in expected]
        # the switch hangs up exactly when FreeSWITCH did
        assert client.eof == isinstance(expected[-1], DisconnectNotice)
    finally:
        client.close()


@pytest.mark.parametrize("fmt", ["plain", "json", "xml"])
def test_background_job_event_like_freeswitch(fmt: str, captures: Path, bare_sim) -> None:
    raw = (captures / f"bgapi_status_{fmt}.raw").read_bytes()
    sent = (captures / f"bgapi_status_{fmt}.sent").read_bytes()
    real = [f for f in Parser().feed(raw) if isinstance(f, EventFrame)]
    client = talk(bare_sim.host, bare_sim.port, sent)
    ours = [f for f in client.frames if isinstance(f, EventFrame) and f.event.name == "BACKGROUND_JOB"]
    client.close()
    assert len(ours) == len(real) == 2
    for mine, theirs in zip(ours, real):
        assert mine.content_type == theirs.content_type == f"text/event-{fmt}"
        assert [k for k, _ in mine.event.pairs()] == [k for k, _ in theirs.event.pairs()]
        assert mine.event.get("Job-Command") == theirs.event.get("Job-Command")
    # the client-chosen Job-UUID of the second bgapi is kept
    assert ours[1].event.job_uuid == real[1].event.job_uuid
    assert ours[1].event.body == real[1].event.body  # `version`, verbatim


def test_log_lines_like_freeswitch(captures: Path, bare_sim) -> None:
    real = [f for f in Parser().feed((captures / "log_7.raw").read_bytes()) if isinstance(f, LogData)]
    client = talk(bare_sim.host, bare_sim.port, b"auth ClueCon\n\nlog 7\n\n")
    client.sock.sendall(b"api log NOTICE eslkit capture log line\n\n")
    client.read_until(lambda: any(isinstance(f, LogData) for f in client.frames))
    ours = [f for f in client.frames if isinstance(f, LogData)]
    client.close()
    assert ours, "no log/data after `log 7` and `api log`"
    assert [k for k, _ in ours[0].headers] == [k for k, _ in real[0].headers]
    assert ours[0].level == real[0].level == 5
    assert re.sub(r"[\d.:%-]+", "N", ours[0].text).replace("N N N [NOTICE]", "N") == re.sub(
        r"[\d.:%-]+", "N", real[0].text).replace("N N N [NOTICE]", "N")


def test_nolog_stops_log_lines(bare_sim) -> None:
    client = talk(bare_sim.host, bare_sim.port, b"auth ClueCon\n\nlog 5\n\nnolog\n\napi log NOTICE quiet\n\n")
    client.close()
    assert not any(isinstance(f, LogData) for f in client.frames)


def test_acl_rejection_like_freeswitch(captures: Path) -> None:
    expected = Parser().feed((captures / "acl_rejected_from_127.0.0.2.raw").read_bytes())
    with sim_in_thread(scenario=None, allow=["127.0.0.1/32"]) as sim:
        rejected = talk(sim.host, sim.port, b"", source="127.0.0.2")
        allowed = talk(sim.host, sim.port, (captures / "acl_allowed_from_127.0.0.1.sent").read_bytes(),
                       source="127.0.0.1")
    assert [normalise(f) for f in rejected.frames] == [normalise(f) for f in expected]
    assert rejected.eof
    assert [f.content_type for f in allowed.frames][0] == "auth/request"


def test_shutdown_like_freeswitch(captures: Path) -> None:
    real = Parser().feed((captures / "fs_stopped_while_connected.raw").read_bytes())
    with sim_in_thread(scenario=None) as sim:
        client = talk(sim.host, sim.port, b"auth ClueCon\n\nevent plain ALL\n\n")
        sim.call(sim.server.close())
        client.read_until(lambda: False, timeout=1.0)
    events = [f.event for f in client.frames if isinstance(f, EventFrame)]
    assert events and events[-1].name == "SHUTDOWN"
    real_shutdown = next(f.event for f in real if isinstance(f, EventFrame))
    assert [k for k, _ in events[-1].pairs()] == [k for k, _ in real_shutdown.pairs()]
    assert normalise(client.frames[-1]) == normalise(real[-1])  # "The system is being shut down."
    assert client.eof


def test_sendevent_reaches_subscribers(bare_sim) -> None:
    listener = talk(bare_sim.host, bare_sim.port, b"auth ClueCon\n\nevent json CUSTOM callcenter::info\n\n")
    sender = talk(bare_sim.host, bare_sim.port, b"auth ClueCon\n\n")
    sender.sock.sendall(b"sendevent CUSTOM\nEvent-Subclass: callcenter::info\n"
                        b"CC-Queue: support@default\nContent-Length: 5\n\nhello")
    sender.read_until(lambda: len(sender.replies()) == 3)
    listener.read_until(lambda: any(isinstance(f, EventFrame) for f in listener.frames))
    listener.close()
    sender.close()
    assert re.fullmatch(r"\+OK " + UUID.pattern, sender.replies()[-1].reply_text)
    event = next(f.event for f in listener.frames if isinstance(f, EventFrame))
    assert (event.name, event.get("CC-Queue"), event.body) == ("callcenter::info", "support@default", "hello")


def test_log_lines_follow_the_calls() -> None:
    with sim_in_thread(scenario="queue", speed=None, autostart=False) as sim:
        client = talk(sim.host, sim.port, b"auth ClueCon\n\nlog notice\n\n")
        quiet = talk(sim.host, sim.port, b"auth ClueCon\n\nlog 4\n\n")
        sim.call(sim.server.play("queue"))
        client.read_until(lambda: sum(isinstance(f, LogData) for f in client.frames) >= 8, timeout=5)
        quiet.read_until(lambda: False, timeout=0.2)
    assert client.replies()[-1].reply_text == "+OK log level notice [5]"
    lines = [f.text for f in client.frames if isinstance(f, LogData)]
    assert sum("New Channel sofia/" in t for t in lines) == 3
    assert sum("has been answered" in t for t in lines) == 2
    assert any("Hangup sofia/internal/1002@127.0.0.1:5072 [CS_CONSUME_MEDIA] [LOSE_RACE]" in t for t in lines)
    assert all(t.endswith("\n") and " [NOTICE] switch_channel.c:" in t for t in lines)
    assert not any(isinstance(f, LogData) for f in quiet.frames)  # NOTICE is above level 4
