"""``--format json``: one event per line, `Event.to_dict()` as JSON, nothing else.

Lines are gathered and written in batches (one ``write`` per batch).  JSON is
written with ``ensure_ascii`` so that no raw control or bidi character from
the network can reach a terminal, even through ``less`` or ``cat``; ``jq``
decodes the ``\\uXXXX`` escapes back.
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO

from eslkit.errors import OutputError
from eslkit.event import Event, ascii_json


class NdjsonWriter:
    def __init__(self, stream: BinaryIO, batch: int = 512):
        self.stream = stream
        self.batch = batch
        self._pending: list[str] = []
        self.written = 0

    def event(self, event: Event) -> None:
        pending = self._pending
        pending.append(event.json_line())
        if len(pending) >= self.batch:
            self.flush()

    def object(self, obj: Any) -> None:
        self._pending.append(ascii_json(obj))
        self.flush()

    def flush(self) -> None:
        if self._pending:
            self._pending.append("")
            data = "\n".join(self._pending).encode("ascii")
            self.written += len(self._pending) - 1
            self._pending.clear()
            self.stream.write(data)
            self.stream.flush()


class OutputStream:
    """A stream that writes all it is given, whose failed writes raise `OutputError`.

    All: a blocked write to a full pipe that a signal interrupts (Ctrl-C while the
    reader is slow) can take only part of the data — Python's buffered writer then
    returns the count and forgets the rest, which left half a JSON line for the reader.
    Here the rest follows, so the reader only ever gets whole lines.

    A reader that goes away stays `BrokenPipeError`: the commands end quietly on
    it (``| head``).  ``failed`` tells the command to throw away what Python
    still holds for the stream, so the exit does not fail on it a second time.
    Text given to a binary stream is written as UTF-8.
    """

    def __init__(self, stream, what: str = "standard output"):
        self.stream = stream
        self.what = what
        self.failed = False
        self._binary = not isinstance(stream, io.TextIOBase)

    def write(self, data) -> int:
        if self._binary and isinstance(data, str):
            data = data.encode("utf-8")
        try:
            done = self.stream.write(data)
            if self._binary and done is not None and done < len(data):
                rest = memoryview(data)[done:]
                while rest:
                    rest = rest[self.stream.write(rest):]
            return len(data)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._error(exc) from exc

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise self._error(exc) from exc

    def _error(self, exc: OSError) -> OutputError:
        self.failed = True
        return OutputError(f"Cannot write to {self.what}: {exc.strerror or exc}.",
                           "Free some disk space where the output goes, or send it elsewhere.")
