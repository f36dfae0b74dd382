"""Recordings and raw transcripts: one writer, one reader, one set of errors.

Two kinds of file, told apart by their first bytes:

- an eslkit **recording** (``watch --record``), JSON lines::

      {"time": 1795667883.52, "event": {"Event-Name": "CHANNEL_CREATE", ...}}
      {"time": 1795667890.01, "status": {"state": "disconnected", "reason": "...", "gap": null}}

  ``time`` is when eslkit received it (epoch seconds); ``event`` is
  `Event.to_dict()`, FreeSWITCH's own ``event json`` shape;
- a raw **transcript**: the bytes a switch sent (FreeSWITCH captures, ``NAME.raw``).
  Event frames are events; a disconnect notice or a rude rejection is a
  "disconnected" status; replies, logs and the greeting are skipped.  A
  transcript cut off in the middle of a frame keeps what came before.

`read()` yields `Entry` items for ``watch --replay``, ``popup --replay``,
``relay --replay`` and ``sim --replay`` alike; `Recorder` writes recordings.
"""

from __future__ import annotations

import contextlib
import json
import re
import stat
from pathlib import Path
from typing import Iterator, NamedTuple, Optional, Union

from eslkit.errors import EslkitError, InputFileError, OutputError
from eslkit.event import Event, ascii_json
from eslkit.protocol import CommandReply, DisconnectNotice, EventFrame, Parser, RudeRejection
from eslkit.status import ConnectionStatus

__all__ = ["Entry", "RECORDING", "TRANSCRIPT", "Damage", "file_kind", "read", "Recorder"]

RECORDING = "recording"
TRANSCRIPT = "transcript"
_CHUNK = 1 << 20
_RECV = re.compile(r"t=\s*([0-9.]+)\s+RECV bytes (\d+)\.\.(\d+)")
_LINE_FIX = 'Each line must be {"time": <epoch>, "event": {...}} or {"time": ..., "status": {...}}.'


class Entry(NamedTuple):
    """One event or link change of a file.

    ``time``: a recording's receive time; for a transcript, when the bytes arrived
    (from ``NAME.timeline.txt`` beside it) or else the event's Event-Date-Timestamp;
    None when unknown.  ``wire``: a transcript event's own bytes, as (format, payload).
    """

    time: Optional[float]
    item: Union[Event, ConnectionStatus]
    wire: Optional[tuple[str, bytes]] = None


def file_kind(path: Union[str, Path]) -> str:
    """RECORDING or TRANSCRIPT; an `InputFileError` that says why for anything else (an
    empty file included: a replay of nothing is a mistake, not a run that saw no calls)."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(64)
    except FileNotFoundError as exc:
        raise InputFileError(f"There is no file {path}.") from exc
    except IsADirectoryError as exc:
        raise InputFileError(f"{path} is a directory, not a recording.") from exc
    except OSError as exc:
        raise InputFileError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    head = head.lstrip()
    if not head:
        raise InputFileError(f"{path} is empty: there is nothing to replay.",
                             "Record one with eslkit watch --record FILE, or give another file.")
    if head.startswith(b"{"):
        return RECORDING
    if head[:13] in (b"Content-Type:", b"Content-Lengt"):
        return TRANSCRIPT
    raise InputFileError(f"{path} is neither an eslkit recording nor a raw ESL transcript.")


class Damage:
    """The damaged lines of a recording, skipped and counted while the rest is read: a
    line cut off when recording stopped mid-write (kill -9, a full disk), or one that is
    not a recording line.  `error()` says it in one sentence, for the end of the run."""

    SHOWN = 3  # the first few are named; the count says the rest

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        self.count = 0
        self.first: list[tuple[int, str]] = []  # (line number, why)

    def __bool__(self) -> bool:
        return self.count > 0

    def add(self, lineno: int, why: str) -> None:
        self.count += 1
        if len(self.first) < self.SHOWN:
            self.first.append((lineno, why))

    def error(self) -> InputFileError:
        named = "; ".join(f"line {n}: {why}" for n, why in self.first)
        more = "; …" if self.count > len(self.first) else ""
        if self.count == 1:
            message = f"{self.path}: 1 damaged line was skipped ({named})."
        else:
            message = f"{self.path}: {self.count} damaged lines were skipped ({named}{more})."
        if all(why == "cut off" for _, why in self.first):
            return InputFileError(message, "Every other line was replayed; a line is cut off when recording "
                                           "stops mid-write (kill -9, a full disk).")
        return InputFileError(message, "Every other line was replayed. " + _LINE_FIX)


def read(path: Union[str, Path], damage: Optional[Damage] = None) -> Iterator[Entry]:
    """Every entry of a recording or a transcript, read lazily; errors are `InputFileError`.

    A damaged recording line raises, or, given ``damage``, is skipped and counted there
    (the replays say so once they have played the rest)."""
    path = Path(path)
    if file_kind(path) == RECORDING:
        return _recording(path, damage)
    return _transcript(path)


def _recording(path: Path, damage: Optional[Damage]) -> Iterator[Entry]:
    with _opened(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                stamp, item = _line(line)
            except ValueError as exc:
                why = str(exc)
                if why == "not JSON" and not line.endswith(b"\n"):
                    why = "cut off"  # recording stopped mid-write: kill -9, a full disk
                if damage is None:
                    raise InputFileError(f"{path}, line {lineno}: not an eslkit recording line ({why}).",
                                         _LINE_FIX) from None
                damage.add(lineno, why)
                continue
            yield Entry(stamp, item)


def _line(line: bytes) -> tuple[Optional[float], Union[Event, ConnectionStatus]]:
    """One recording line; ValueError saying what is wrong with it."""
    try:
        rec = json.loads(line)
    except (ValueError, RecursionError):
        raise ValueError("not JSON") from None
    if not isinstance(rec, dict):
        raise ValueError("not a JSON object")
    stamp = rec.get("time")
    if stamp is not None and (not isinstance(stamp, (int, float)) or isinstance(stamp, bool)):
        raise ValueError("'time' is not a number")
    if "event" in rec:
        event = rec["event"]
        if not isinstance(event, dict):
            raise ValueError("'event' is not an object")
        return stamp, Event.from_dict(event)
    if "status" in rec:
        st = rec["status"]
        if not isinstance(st, dict) or not isinstance(st.get("state"), str):
            raise ValueError("'status' is not an object with a 'state'")
        gap = st.get("gap")
        return stamp, ConnectionStatus(st["state"], str(st.get("reason") or ""),
                                       gap if isinstance(gap, (int, float)) else None, st.get("attempt") or 0)
    raise ValueError("neither 'event' nor 'status'")


def _transcript(path: Path) -> Iterator[Entry]:
    arrivals = _timeline(path)
    parser = Parser()
    offset = 0  # where the next frame starts in the file (the timeline counts bytes)
    last: Optional[float] = None
    bye = False  # the switch has answered the recorder's own `exit`
    with _opened(path) as fh:
        while True:
            data = fh.read(_CHUNK)
            try:
                frames = parser.feed(data)
            except EslkitError as exc:
                if not data:
                    return  # cut off in the middle of a frame: keep what came before
                raise InputFileError(f"{path} is not a valid ESL transcript: {exc}") from None
            for frame in frames:
                at = offset
                offset += _size(frame)
                if isinstance(frame, EventFrame):
                    event = frame.event
                    if arrivals is not None:
                        last = _arrival(arrivals, at, last)
                    else:
                        last = event.timestamp
                    yield Entry(last, event, (frame.content_type.rsplit("-", 1)[-1], frame.body))
                elif isinstance(frame, CommandReply):
                    bye = frame.reply_text == "+OK bye"
                elif isinstance(frame, (DisconnectNotice, RudeRejection)):
                    if bye:
                        continue  # the goodbye after the recorder's `exit`: the recording ends, nothing was lost
                    reason = frame.text.strip().splitlines()
                    yield Entry(None, ConnectionStatus("disconnected", reason[0] if reason else "disconnected"))
            if not data:
                return


@contextlib.contextmanager
def _opened(path: Path):
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise InputFileError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    with fh:
        yield fh


def _size(frame) -> int:
    """A frame's length on the wire (the parser keeps the headers as they came)."""
    return sum(len(f"{k}: {v}\n".encode("utf-8")) for k, v in frame.headers) + 1 + len(frame.body)


def _timeline(path: Path) -> Optional[list[tuple[int, int, float]]]:
    """``NAME.timeline.txt`` beside ``NAME.raw``: (first byte, end, seconds) of each read."""
    if not path.name.endswith(".raw"):
        return None
    try:
        text = path.with_name(path.name[: -len(".raw")] + ".timeline.txt").read_text(
            encoding="utf-8", errors="replace")
    except OSError:
        return None
    spans = [(int(m.group(2)), int(m.group(3)), float(m.group(1))) for m in _RECV.finditer(text)]
    return spans or None


def _arrival(spans: list[tuple[int, int, float]], offset: int, last: Optional[float]) -> Optional[float]:
    for start, end, t in spans:
        if start <= offset < end:
            return t
    return last  # a byte the timeline does not cover arrived with the one before


# --- writing --------------------------------------------------------------------------------


class Recorder:
    """``watch --record FILE``: every event and link change as recording lines.

    A recording is never overwritten: a file that already holds something is refused
    (`InputFileError`, naming a free name) unless ``append``, which adds to it — after a
    newline if its last line was cut off (kill -9, a full disk), so the new lines stay
    whole.  Lines are written in batches; `flush()` and `close()` write what is pending.
    A failed write (a full disk) is `OutputError`.
    """

    def __init__(self, path: Union[str, Path], batch: int = 256, *, append: bool = False):
        self.path = Path(path)
        try:
            self._fh = _open_for_recording(self.path, append)
        except FileExistsError:
            if not _is_recording(self.path):  # contacts.csv for calls.csv: --append is no way out
                raise InputFileError(
                    f"{self.path} already exists and is not an eslkit recording; eslkit never overwrites a file.",
                    f"Record to a new file (e.g. --record {_free_name(self.path)}).",
                ) from None
            raise InputFileError(
                f"{self.path} already holds a recording; eslkit never overwrites one.",
                f"Add --append to add to it, or record to a new file (e.g. --record {_free_name(self.path)}).",
            ) from None
        except OSError as exc:
            raise InputFileError(f"Cannot write the recording {self.path}: {exc.strerror}.",
                                 "Choose a --record path in a writable directory.") from exc
        self._pending: list[str] = []
        self._batch = batch
        self.written = 0

    def event(self, event: Event, received_at: float) -> None:
        self._pending.append('{"time":%r,"event":%s}\n' % (received_at, ascii_json(event.to_dict())))
        if len(self._pending) >= self._batch:
            self.flush()

    def status(self, status: ConnectionStatus, received_at: float) -> None:
        data = {"state": status.state, "reason": status.reason, "gap": status.gap}
        self._pending.append('{"time":%r,"status":%s}\n' % (received_at, ascii_json(data)))
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
                                  "Free some disk space, or give --record a path on another disk.") from exc
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


def _is_recording(path: Path) -> bool:
    try:
        return file_kind(path) == RECORDING
    except InputFileError:
        return False


def _open_for_recording(path: Path, append: bool):
    """The file to record into: a new one ('x'), an empty one, a pipe or device ('w'), or,
    with ``append``, the end of an eslkit recording.  FileExistsError for a file with
    something in it (without ``append``)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return path.open("x", encoding="utf-8")
    if not stat.S_ISREG(info.st_mode) or info.st_size == 0:
        return path.open("a" if append else "w", encoding="utf-8")
    if not append:
        raise FileExistsError(path)
    if file_kind(path) != RECORDING:
        raise InputFileError(f"{path} is not an eslkit recording: --append adds only to one.",
                             "Record to a new file instead.")
    fh = path.open("a+b")
    try:
        fh.seek(-1, 2)
        cut = fh.read(1) != b"\n"  # a last line cut off: start the next one on its own line
    finally:
        fh.close()
    out = path.open("a", encoding="utf-8")
    if cut:
        out.write("\n")
    return out


def _free_name(path: Path) -> str:
    """``calls.jsonl`` → ``calls-2.jsonl`` (or the first number not taken)."""
    for n in range(2, 1000):
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        if not candidate.exists():
            return str(candidate)
    return str(path.with_name(f"{path.stem}-new{path.suffix}"))
