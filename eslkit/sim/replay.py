"""``eslkit sim --replay FILE``: play a recorded session to every connection.

Two kinds of file:

* a raw transcript (``NAME.raw``, every byte a switch sent).  Its timing comes
  from ``NAME.timeline.txt`` beside it when present (when each byte range
  arrived), else from each event's ``Event-Date-Timestamp``;
* an eslkit recording: JSON lines, one object each —
  ``{"time": <epoch seconds>, "event": {<event json>}}`` or
  ``{"time": ..., "status": {...}}`` (status lines are skipped).

Each connection gets its own playback from the start, beginning when it first
subscribes, in its own format and through its own filters, with the gaps
scaled by the server's speed; then the disconnect notice.  The events are
parsed and serialised once and shared by all connections.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from eslkit.errors import EslkitError, InputFileError
from eslkit.event import Event
from eslkit.protocol import EventFrame, Parser
from eslkit.sim.events import SimEvent

if TYPE_CHECKING:  # pragma: no cover
    from eslkit.sim.server import SimServer, _Connection

RECV_RE = re.compile(r"t=\s*([0-9.]+)\s+RECV bytes (\d+)\.\.(\d+)")


class Replay:
    """(seconds from the first event, event) pairs, ready to send."""

    def __init__(self, items: list[tuple[float, SimEvent]], source: str):
        self.items = items
        self.source = source

    def __len__(self) -> int:
        return len(self.items)


def load_replay(path_text: str) -> Replay:
    path = Path(path_text)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputFileError(f"Cannot read the replay file {path_text}: {exc.strerror or exc}.") from None
    if data.lstrip()[:1] == b"{":
        items = _from_recording(data, path_text)
    else:
        items = _from_transcript(data, path)
    if not items:
        raise InputFileError(f"The replay file {path_text} holds no events.")
    t0 = items[0][0]
    return Replay([(max(0.0, t - t0), ev if isinstance(ev, SimEvent) else SimEvent.from_event(ev))
                   for t, ev in items], path_text)


def _from_recording(data: bytes, where: str) -> list[tuple[float, Event]]:
    items = []
    for n, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if "event" not in obj:
                continue  # a status line (connection lost / back)
            items.append((float(obj["time"]), Event.from_dict(obj["event"])))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise InputFileError(
                f"Line {n} of {where} is not an eslkit recording line ({exc.__class__.__name__}).",
                'Each line must be {"time": <epoch seconds>, "event": {...}} or {"time": ..., "status": {...}}.',
            ) from None
    return items


def _from_transcript(data: bytes, path: Path) -> list[tuple[float, SimEvent]]:
    try:
        frames = Parser().feed(data)
    except EslkitError as exc:
        raise InputFileError(f"{path} is not a raw event-socket transcript: {exc}") from None
    timeline = _timeline(path.with_name(path.name[: -len(".raw")] + ".timeline.txt")) if path.name.endswith(".raw") else None
    items = []
    offset = 0
    for frame in frames:
        size = sum(len(f"{k}: {v}\n".encode("utf-8")) for k, v in frame.headers) + 1 + len(frame.body)
        if isinstance(frame, EventFrame):
            ev = frame.event
            when = _arrival(timeline, offset) if timeline else None
            if when is None:
                when = ev.timestamp or 0.0
            # FreeSWITCH's own bytes serve clients that asked for the same format
            fmt = frame.content_type.rsplit("-", 1)[-1]
            items.append((when, SimEvent.from_event(ev, {fmt: frame.body})))
        offset += size
    return items


def _timeline(path: Path) -> Optional[list[tuple[int, int, float]]]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    spans = [(int(m.group(2)), int(m.group(3)), float(m.group(1))) for m in RECV_RE.finditer(text)]
    return spans or None


def _arrival(spans: list[tuple[int, int, float]], offset: int) -> Optional[float]:
    for start, end, t in spans:
        if start <= offset < end:
            return t
    return None


async def play_to(server: "SimServer", conn: "_Connection", replay: Replay, delay: float = 0.0) -> None:
    """One connection's own playback, from the start; then the disconnect notice."""
    await asyncio.sleep(delay)
    loop = asyncio.get_running_loop()
    conn.replaying = True
    start = loop.time()
    speed = server.speed
    session = conn.session
    try:
        for at, ev in replay.items:
            if conn._closing:
                return
            if speed is not None:
                delay = start + at / speed - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if session.events_on and session.wants(ev):
                conn.send(ev.frame(session.format))
                if conn.backlog > server.max_buffer // 4:
                    await conn.drain()  # only this connection's playback waits
        await conn.drain()
    finally:
        conn.replaying = False
    conn.hang_up()
