"""``eslkit sim --replay FILE``: play a recorded session to every connection.

Two kinds of file:

* a raw transcript (``NAME.raw``, every byte a switch sent), timed by
  ``NAME.timeline.txt`` beside it when present, else by each event's
  ``Event-Date-Timestamp``;
* an eslkit recording (``watch --record``; its link changes are skipped).

Both are read by `eslkit.recording`.

Each connection gets its own playback from the start, beginning when it first
subscribes, in its own format and through its own filters, with the gaps
scaled by the server's speed; then the disconnect notice.  The events are
parsed and serialised once and shared by all connections.
"""

from __future__ import annotations

import asyncio
from typing import Optional

from eslkit import recording
from eslkit.errors import InputFileError
from eslkit.event import Event
from eslkit.sim.events import SimEvent
from eslkit.sim.switch import Client, Switch


class Replay:
    """(seconds from the first event, event) pairs, ready to send; ``damage``: the damaged
    lines of a recording that were skipped (the simulator says so when it starts)."""

    def __init__(self, items: list[tuple[float, SimEvent]], source: str,
                 damage: Optional[recording.Damage] = None):
        self.items = items
        self.source = source
        self.damage = damage

    def __len__(self) -> int:
        return len(self.items)


def load_replay(path: str) -> Replay:
    """The events of a recording or a transcript (`eslkit.recording`), parsed once: a
    transcript's events keep the switch's own bytes for clients of the same format."""
    items: list[tuple[float, SimEvent]] = []
    t0 = last = None
    damage = recording.Damage(path)
    for when, item, wire in recording.read(path, damage):
        if not isinstance(item, Event):
            continue  # a link change of the recording: nothing a client of ours gets
        when = last if when is None else when
        if t0 is None and when is not None:
            t0 = when
        last = when
        at = 0.0 if when is None or t0 is None else max(0.0, when - t0)
        items.append((at, SimEvent.from_event(item, dict([wire]) if wire else None)))
    if not items:
        if damage:
            raise damage.error()
        raise InputFileError(f"The replay file {path} holds no events.")
    return Replay(items, path, damage or None)


async def play_to(server: Switch, conn: Client, replay: Replay, delay: float = 0.0) -> None:
    """One connection's own playback, from the start; then the disconnect notice."""
    await asyncio.sleep(delay)
    loop = asyncio.get_running_loop()
    conn.replaying = True
    start = loop.time()
    speed = server.speed
    session = conn.session
    try:
        for at, ev in replay.items:
            if conn.closing:
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
