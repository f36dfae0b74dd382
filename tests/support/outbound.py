"""FreeSWITCH's side of an outbound socket (the ``socket`` dialplan application), for tests of
``ESLconnection(fd)``: it dials the program's listening port and plays one call's channel.

What it says follows mod_event_socket.c (1.10.12): ``connect`` is answered with the
channel's data as a command/reply — a CHANNEL_DATA event serialised whole (URL-encoded
values, no Content-Length), ending with Content-Type, Reply-Text ("+OK\\n"),
Socket-Mode and Control; ``myevents`` starts the channel's events; ``exit`` says
"+OK bye" and hangs up with a disconnect notice.  The channel and its events are the
agent leg of the real queue call in tests/data/fs-captures (scenario_queue_plain).
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from eslkit.event import Event
from eslkit.protocol import CommandParser, EventFrame, Parser, api_response, command_reply, disconnect_notice

CAPTURE = Path(__file__).resolve().parents[1] / "data" / "fs-captures" / "1.10.12" / "scenario_queue_plain.raw"


def channel_events() -> list[bytes]:
    """The frames of the first channel of the capture (its CHANNEL_CREATE's Unique-ID), as sent."""
    frames = [f for f in Parser().feed(CAPTURE.read_bytes()) if isinstance(f, EventFrame)]
    uuid = next(f.event.unique_id for f in frames if f.event.name == "CHANNEL_CREATE")
    out = []
    for f in frames:
        if f.event.unique_id == uuid:
            head = "".join(f"{k}: {v}\n" for k, v in f.headers)
            out.append((head + "\n").encode() + f.body)
    return out


def channel_data(first_event: bytes) -> bytes:
    """The reply to ``connect``: the channel's headers as a CHANNEL_DATA command/reply."""
    event = Parser().feed(first_event)[0].event
    headers = [("Event-Name", "CHANNEL_DATA")] + [(k, v) for k, v in event.pairs()
                                                   if k not in ("Event-Name", "Content-Length")]
    headers += [("Content-Type", "command/reply"), ("Reply-Text", "+OK\n"), ("Socket-Mode", "async"),
                ("Control", "full")]
    return Event(headers).serialize("plain").encode()


class OutboundCall:
    """Dial ``port`` from a thread and answer as FreeSWITCH's outbound socket does."""

    def __init__(self, port: int, answer_connect: bool = True):
        self.port = port
        self.answer_connect = answer_connect
        self.events = channel_events()
        self.received = bytearray()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            commands = CommandParser()
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                self.received += data
                for command, _headers, _body in commands.feed(data):
                    reply = self._answer(command.strip())
                    if reply is None:
                        return
                    sock.sendall(reply)
                    if command.startswith("exit"):
                        return

    def _answer(self, command: str):
        word = command.split(" ", 1)[0].lower()
        if word == "connect":
            create = next(e for e in self.events if b"\nEvent-Name: CHANNEL_CREATE\n" in e)
            return channel_data(create) if self.answer_connect else None
        if word == "myevents":
            return command_reply("+OK Events Enabled") + b"".join(self.events)
        if word == "linger":
            return command_reply("+OK will linger")
        if word == "api":
            return api_response("+OK\n")
        if word == "exit":
            return command_reply("+OK bye") + disconnect_notice()
        return command_reply("+OK")
