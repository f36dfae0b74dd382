"""``watch --record FILE``: every event and connection change as JSON lines.

    {"time": 1795667883.52, "event": {"Event-Name": "CHANNEL_CREATE", ...}}
    {"time": 1795667890.01, "status": {"state": "disconnected", "reason": "...", "gap": null}}

``time`` is when eslkit received it (epoch seconds); ``event`` is
`Event.to_dict()`, FreeSWITCH's own ``event json`` shape.  `ReplaySource`
(``watch --replay``) and the simulator's replay read the same lines.
Lines are buffered and written in batches; `flush()` and `close()` write
what is pending.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Optional, Union

from eslkit.client import ConnectionStatus
from eslkit.errors import InputFileError, OutputError
from eslkit.event import Event

_dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


class Recorder:
    def __init__(self, path: Union[str, Path], batch: int = 256):
        self.path = Path(path)
        try:
            self._fh = self.path.open("w", encoding="utf-8")
        except OSError as exc:
            raise InputFileError(f"Cannot write the recording {self.path}: {exc.strerror}.",
                                 "Choose a --record path in a writable directory.") from None
        self._pending: list[str] = []
        self._batch = batch
        self.written = 0

    def event(self, event: Event, received_at: float) -> None:
        self._pending.append('{"time":%r,"event":%s}\n' % (received_at, _dumps(event.to_dict())))
        if len(self._pending) >= self._batch:
            self.flush()

    def status(self, status: ConnectionStatus, received_at: float) -> None:
        data = {"state": status.state, "reason": status.reason, "gap": status.gap}
        self._pending.append('{"time":%r,"status":%s}\n' % (received_at, _dumps(data)))
        self.flush()

    def flush(self) -> None:
        if self._pending:
            try:
                self._fh.write("".join(self._pending))
                self._fh.flush()
            except OSError as exc:  # a full disk, an I/O error: nothing more can be recorded
                self._pending.clear()
                with contextlib.suppress(OSError):
                    self._fh.close()
                raise OutputError(f"Cannot write the recording {self.path}: {exc.strerror or exc}.",
                                  "Free some disk space, or give --record a path on another disk.") from None
            self.written += len(self._pending)
            self._pending.clear()

    def close(self) -> None:
        if not self._fh.closed:
            self.flush()
            with contextlib.suppress(OSError):
                self._fh.close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def record_line(event: Optional[Event] = None, *, time: float,
                status: Optional[ConnectionStatus] = None) -> str:
    """One recording line (without the newline) — for tools that write recordings."""
    if event is not None:
        return '{"time":%r,"event":%s}' % (time, _dumps(event.to_dict()))
    assert status is not None
    return '{"time":%r,"status":%s}' % (
        time, _dumps({"state": status.state, "reason": status.reason, "gap": status.gap}))
