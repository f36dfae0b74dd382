"""Events from a file instead of a switch.

Two kinds of file are understood, told apart by their first byte:

- an eslkit recording (``watch --record``): JSON lines, each
  ``{"time": <epoch>, "event": {...}}`` or ``{"time": ..., "status": {...}}``;
- a raw transcript: the bytes a switch sent, as in FreeSWITCH captures
  (``*.raw``).  Event frames become events; a disconnect notice becomes a
  "disconnected" status; replies, logs and the greeting are skipped.

As fast as possible by default; with ``speed`` the original spacing is kept
(``speed=2`` is twice as fast), taken from the recording's receive times or,
for a transcript, from each event's ``Event-Date-Timestamp``.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import AsyncIterator, Iterator, Optional, Tuple, Union

from eslkit.client import ConnectionStatus
from eslkit.errors import EslkitError, InputFileError
from eslkit.event import Event
from eslkit.protocol import DisconnectNotice, EventFrame, Parser, RudeRejection

Item = Union[Event, ConnectionStatus]
Timed = Tuple[Optional[float], Item]

_CHUNK = 1 << 20


def open_replay(path: Union[str, Path], speed: Optional[float] = None) -> "ReplaySource":
    return ReplaySource(path, speed=speed)


class ReplaySource:
    """An async iterable over a recording or a raw transcript."""

    def __init__(self, path: Union[str, Path], *, speed: Optional[float] = None):
        self.path = Path(path)
        if speed is not None and speed <= 0:
            raise InputFileError("--speed must be greater than 0.", "Give e.g. --speed 1 for real time.")
        self.speed = speed
        self.received = 0
        self.dropped = 0
        self.subscriptions: list[str] = []
        self.filters: list[tuple[str, str]] = []
        self.kind = ""

    @property
    def description(self) -> str:
        return f"replay of {self.path.name}"

    async def open(self) -> None:
        try:
            with self.path.open("rb") as fh:
                head = fh.read(64)
        except FileNotFoundError:
            raise InputFileError(f"There is no file {self.path}.") from None
        except IsADirectoryError:
            raise InputFileError(f"{self.path} is a directory, not a recording.") from None
        except OSError as exc:
            raise InputFileError(f"Cannot read {self.path}: {exc.strerror}.") from None
        stripped = head.lstrip()
        if stripped.startswith(b"{"):
            self.kind = "recording"
        elif stripped[:13] in (b"Content-Type:", b"Content-Lengt") or not stripped:
            self.kind = "transcript"
        else:
            raise InputFileError(f"{self.path} is neither an eslkit recording nor a raw ESL transcript.")

    async def close(self) -> None:
        pass

    def items(self) -> Iterator[Timed]:
        """(time or None, item) pairs, read lazily."""
        if not self.kind:
            raise RuntimeError("call open() first")
        return self._recording() if self.kind == "recording" else self._transcript()

    async def __aiter__(self) -> AsyncIterator[Item]:
        yield ConnectionStatus("connected", self.description)
        start_wall: Optional[float] = None
        start_file: Optional[float] = None
        n = 0
        for stamp, item in self.items():
            if isinstance(item, Event):
                self.received += 1
            if self.speed is not None and stamp is not None:
                if start_file is None:
                    start_file, start_wall = stamp, time.monotonic()
                delay = (stamp - start_file) / self.speed - (time.monotonic() - start_wall)
                if delay > 0:
                    await asyncio.sleep(delay)
            else:
                n += 1
                if n % 512 == 0:
                    await asyncio.sleep(0)  # let the screen refresh and Ctrl-C through
            yield item

    # --- readers ---------------------------------------------------------------

    def _recording(self) -> Iterator[Timed]:
        with self.path.open("rb") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    stamp = rec.get("time")
                    if "event" in rec:
                        item: Item = Event.from_dict(rec["event"])
                    elif "status" in rec:
                        st = rec["status"]
                        item = ConnectionStatus(st["state"], st.get("reason") or "", st.get("gap"),
                                                st.get("attempt") or 0)
                    else:
                        raise ValueError("neither 'event' nor 'status'")
                    if stamp is not None and not isinstance(stamp, (int, float)):
                        raise ValueError("'time' is not a number")
                except (ValueError, TypeError, KeyError, AttributeError) as exc:
                    raise InputFileError(
                        f"{self.path}, line {lineno}: not an eslkit recording line ({exc}).",
                        'Each line must be {"time": <epoch>, "event": {...}} or {"time": ..., "status": {...}}.',
                    ) from None
                yield stamp, item

    def _transcript(self) -> Iterator[Timed]:
        parser = Parser()
        with self.path.open("rb") as fh:
            while True:
                data = fh.read(_CHUNK)
                try:
                    frames = parser.feed(data)
                except EslkitError as exc:
                    if not data:
                        return  # a capture cut off mid-frame: keep what came before
                    raise InputFileError(f"{self.path} is not a valid ESL transcript: {exc}") from None
                for frame in frames:
                    if isinstance(frame, EventFrame):
                        event = frame.event
                        yield event.timestamp, event
                    elif isinstance(frame, (DisconnectNotice, RudeRejection)):
                        reason = frame.text.strip().splitlines()
                        yield None, ConnectionStatus("disconnected", reason[0] if reason else "disconnected")
                if not data:
                    return
