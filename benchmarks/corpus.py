"""The events the firehose replays: real FreeSWITCH 1.10.12 captures, bytes unchanged.

The plain frames are cut out of the ``.raw`` transcripts with eslkit's parser
and kept byte for byte.  JSON and XML frames are the same events written by
eslkit's server-side encoder (``protocol.event_frame``), as the simulated
switch would send them.

The expected ``(Event-Name, Unique-ID)`` of every event is worked out here
*without* eslkit (split lines, ``urllib.parse.unquote``), so a client check
against it is not eslkit checking itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

CAPTURES = Path(__file__).resolve().parent.parent / "tests" / "data" / "fs-captures" / "1.10.12"
# The call scenarios subscribed with `event plain ALL`: two calls and the agents registering.
SCENARIOS = ("scenario_queue_plain", "scenario_noanswer_plain", "agents_register_plain")


def plain_frames(names=SCENARIOS) -> list[bytes]:
    """Every text/event-plain frame of the scenarios, in capture order, bytes unchanged."""
    from eslkit.protocol import EventFrame, Parser

    frames: list[bytes] = []
    for name in names:
        raw = (CAPTURES / f"{name}.raw").read_bytes()
        parser = Parser()
        pos = 0
        for frame in parser.feed(raw):
            if not isinstance(frame, EventFrame) or frame.content_type != "text/event-plain":
                continue
            head = f"Content-Length: {len(frame.body)}\nContent-Type: text/event-plain\n\n".encode()
            start = raw.index(head, pos)  # the exact bytes the switch sent
            pos = start + len(head) + len(frame.body)
            frames.append(raw[start:pos])
    return frames


def frames_in(fmt: str, names=SCENARIOS) -> list[bytes]:
    """The same events as whole frames in ``fmt`` (plain, json or xml)."""
    plain = plain_frames(names)
    if fmt == "plain":
        return plain
    from eslkit.event import Event
    from eslkit.protocol import event_frame

    out = []
    for frame in plain:
        body = frame.split(b"\n\n", 1)[1].decode("utf-8")
        out.append(event_frame(Event.from_plain(body), fmt))
    return out


def expected(frames: list[bytes]) -> list[list]:
    """[Event-Name, Unique-ID or None] of each plain frame, decoded independently of eslkit."""
    out = []
    for frame in frames:
        body = frame.split(b"\n\n", 1)[1].decode("utf-8")
        block = body.split("\n\n", 1)[0]
        headers: dict[str, str] = {}
        for line in block.split("\n"):
            name, sep, value = line.partition(": ")
            if sep and name not in headers:
                headers[name] = unquote(value)
        out.append([headers.get("Event-Name"), headers.get("Unique-ID")])
    return out


def write_expected(path: Path) -> int:
    """Write the expected cycle as JSON for the client scripts; return its length."""
    exp = expected(plain_frames())
    path.write_text(json.dumps(exp))
    return len(exp)


if __name__ == "__main__":
    fr = plain_frames()
    sizes = [len(f) for f in fr]
    print(f"{len(fr)} events, {sum(sizes)} bytes, mean {sum(sizes) / len(fr):.0f} bytes/event")
