"""One real call, replayed as many new calls.

Each replay of a capture (default scenario_queue_plain: 6208 → queue 2000,
1001 answers, 1002 loses the race) gets its own UUIDs (the first 8 hex digits
of every UUID become the call number) and its own clock (every microsecond
timestamp moves on by ``k * spacing`` seconds), so a call tracker sees a
fresh call each time, as on a busy switch.  Both keep their length, so every
Content-Length stays right.
"""

from __future__ import annotations

import re

from benchmarks.corpus import plain_frames

_UUID = re.compile(r"[0-9a-f]{8}(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
_USEC = re.compile(r"(?<=: )(17\d{14})(?=\n)")  # epoch microseconds (2023-2033)


class CallTemplate:
    """The frames of one call, ready to be stamped with a call number."""

    def __init__(self, name: str = "scenario_queue_plain", *, names=None, spacing: float = 1.0):
        self.spacing_us = int(spacing * 1_000_000)
        self.frames: list[str] = []
        self.times: list[int] = []
        index: dict[str, int] = {}

        def stamp(m: re.Match) -> str:
            value = m.group(1)
            if value not in index:
                index[value] = len(self.times)
                self.times.append(int(value))
            return "{t%d}" % index[value]

        for frame in plain_frames((name,)):
            text = frame.decode("utf-8")
            if names is not None and _event_name(text) not in names:
                continue
            text = text.replace("{", "{{").replace("}", "}}")
            text = _UUID.sub(r"{k}\1", text)
            text = _USEC.sub(stamp, text)
            self.frames.append(text)

    def call(self, k: int) -> list[bytes]:
        """The frames of call number ``k`` (whole frames, bytes)."""
        shift = k * self.spacing_us
        values = {"t%d" % i: str(t + shift) for i, t in enumerate(self.times)}
        kk = f"{k:08x}"
        return [t.format(k=kk, **values).encode("utf-8") for t in self.frames]


def _event_name(frame_text: str) -> str:
    i = frame_text.find("\nEvent-Name: ")
    return frame_text[i + 13: frame_text.find("\n", i + 13)] if i >= 0 else ""


def body(frame: bytes) -> str:
    return frame.split(b"\n\n", 1)[1].decode("utf-8")
