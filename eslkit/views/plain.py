"""``--format plain``: each event's decoded header block, as fs_cli shows it.

fs_cli prints ``RECV EVENT``, then ``Name: value`` lines with decoded values
(``esl_event_serialize`` without URL-encoding), then, for an event with a
body, ``Content-Length`` and the body, then a blank line.  Here every value
also goes through `safe_text.visible`, so a hostile header cannot drive the
terminal; a body keeps its line breaks.
"""

from __future__ import annotations

from typing import BinaryIO

from eslkit._headers import join_array
from eslkit.event import Event
from eslkit.safe_text import visible


def format_plain(event: Event) -> str:
    lines = ["RECV EVENT\n"]
    for name, value in event.pairs():
        if name == "Content-Length" and event.body is not None:
            continue  # written with the body, as fs_cli does
        if isinstance(value, list):
            value = join_array(value)
        if not (name.isprintable() and value.isprintable()):
            name, value = visible(name), visible(value)
        lines.append(f"{name}: {value}\n")
    body = event.body
    if body is not None:
        shown = "\n".join(visible(line) for line in body.split("\n"))
        lines.append(f"Content-Length: {len(body.encode('utf-8'))}\n\n{shown}")
    else:
        lines.append("\n")
    lines.append("\n")
    return "".join(lines)


class PlainWriter:
    def __init__(self, stream: BinaryIO, batch: int = 128):
        self.stream = stream
        self.batch = batch
        self._pending: list[str] = []

    def event(self, event: Event) -> None:
        self._pending.append(format_plain(event))
        if len(self._pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            data = "".join(self._pending).encode("utf-8", "replace")
            self._pending.clear()
            self.stream.write(data)
            self.stream.flush()
