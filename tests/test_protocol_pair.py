"""The client's encoder and parser wired to the simulated switch's session, with no socket
(as h11's tests wire two connections): every command a client encodes, the switch's
command parser reads, the session answers, and the client's parser reads the answer.
Fast, so it runs every capture's commands and every event of a call, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from eslkit.protocol import CommandParser, CommandReply, EventFrame, Frame, Parser, encode_command
from eslkit.sim.events import SimEvent
from eslkit.sim.server import SimServer
from eslkit.sim.session import Session
from tests.support.sources import events_in
from tests.test_sim_protocol import commands

CAPTURES = Path(__file__).parent / "data" / "fs-captures" / "1.10.12"


class Pair:
    """A client's side (`encode_command`, `Parser`) and a switch's side (`CommandParser`,
    `Session`) joined back to back."""

    def __init__(self) -> None:
        self.switch = SimServer(password="ClueCon")  # never started: no socket, no loop
        self.session = Session(self.switch)
        self.to_switch = CommandParser()
        self.to_client = Parser()
        self.hung_up = False

    def send(self, command: str, headers=(), body=None) -> list[Frame]:
        return self.send_bytes(encode_command(command, headers, body))

    def send_bytes(self, data: bytes) -> list[Frame]:
        out = b""
        for cmd, headers, body in self.to_switch.feed(data):
            reply, hang_up = self.session.handle(cmd, headers, body)
            out += reply
            self.hung_up = self.hung_up or hang_up
        return self.to_client.feed(out)

    def fire(self, events: list) -> list[Frame]:
        """What the switch sends this client of ``events``, as the client reads it."""
        wanted = [SimEvent.from_event(e) for e in events]
        data = b"".join(ev.frame(self.session.format) for ev in wanted if self.session.wants(ev))
        return self.to_client.feed(data)


# The captures whose commands need no live channel, job or log line.
CASES = ["auth_ok_then_exit", "command_before_auth", "event_formats_replies", "filter_add_delete",
         "nixevent_noevents", "unknown_command", "linger_divert", "exit_disconnect_notice"]


@pytest.mark.parametrize("name", CASES)
def test_every_reply_of_a_capture_without_a_socket(name):
    real = [f.reply_text for f in Parser().feed((CAPTURES / f"{name}.raw").read_bytes())
            if isinstance(f, CommandReply)]
    pair = Pair()
    got = []
    for command in commands((CAPTURES / f"{name}.sent").read_bytes()):
        frames = pair.send_bytes(command)  # the capture's own bytes, as the real client sent them
        got += [f.reply_text for f in frames if isinstance(f, CommandReply)]
    assert got == real[:len(got)] and len(got) == len(real), (got, real)


@pytest.mark.parametrize("fmt", ["plain", "json", "xml"])
def test_a_call_through_subscription_and_filter_without_a_socket(fmt):
    events = events_in(CAPTURES / "scenario_queue_plain.raw")
    pair = Pair()
    assert [f.reply_text for f in pair.send("auth ClueCon")] == ["+OK accepted"]
    assert pair.send("filter Caller-Destination-Number 1001")[0].reply_text.startswith("+OK filter added.")
    assert pair.send(f"event {fmt} CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE")[0].reply_text == \
        f"+OK event listener enabled {fmt}"
    frames = pair.fire(events)
    assert {f.content_type for f in frames} == {f"text/event-{fmt}"}
    got = [f.event for f in frames if isinstance(f, EventFrame)]
    want = [e for e in events if e.event_name in ("CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE")
            and e.destination == "1001"]
    assert len(want) == 2 and [e.to_dict() for e in got] == [e.to_dict() for e in want]


def test_a_command_with_headers_and_a_body_reaches_the_session():
    pair = Pair()
    pair.send("auth ClueCon")
    pair.send("event plain CUSTOM eslkit::test")
    reply = pair.send("sendevent CUSTOM", [("Event-Subclass", "eslkit::test"), ("X-Note", "a b")], "the body\n")
    assert reply[0].reply_text.startswith("+OK ")
    assert pair.send("exit")[0].reply_text == "+OK bye" and pair.hung_up
