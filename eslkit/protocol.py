"""The event-socket protocol, sans-IO: bytes in, frames out; commands in, bytes out.

No sockets, no asyncio, no threads.  The client and the simulated switch both
sit on this module.

Every frame on the wire is header lines (``Name: value``), a blank line, then
exactly ``Content-Length`` *bytes* of body.  Nothing separates frames.

    parser = Parser()
    for frame in parser.feed(data):      # any chunking; b"" means EOF
        if isinstance(frame, EventFrame):
            print(frame.event.name)

    sock.sendall(encode_command("event plain ALL"))
"""

from __future__ import annotations

from typing import Iterable, Sequence, Union
from xml.etree import ElementTree

from eslkit.errors import FrameTooLarge, LocalProtocolError, ProtocolError
from eslkit.event import Event

__all__ = [
    "Frame", "AuthRequest", "CommandReply", "ApiResponse", "EventFrame", "LogData",
    "DisconnectNotice", "RudeRejection", "Parser", "CommandParser", "Event", "encode_command",
    "encode_frame", "auth_request", "command_reply", "api_response", "event_head", "event_frame",
    "log_data", "disconnect_notice", "rude_rejection", "DEFAULT_MAX_FRAME_SIZE",
    "GOODBYE", "ACCESS_DENIED",
]

DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024
# No real header block comes near this; it bounds a peer that never sends "\n\n".
MAX_HEADER_BLOCK = 64 * 1024

GOODBYE = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"
ACCESS_DENIED = "Access Denied, go away.\n"

Headers = Sequence[tuple[str, str]]


# --- frames -------------------------------------------------------------------------


class Frame:
    """Any frame: its ordered headers and raw body.  Subclasses add meaning."""

    __slots__ = ("headers", "body")

    def __init__(self, headers: Headers, body: bytes = b""):
        self.headers = tuple(headers)
        self.body = body

    def header(self, name: str, default: str | None = None) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return default

    @property
    def content_type(self) -> str:
        return self.header("Content-Type", "") or ""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def __eq__(self, other: object) -> bool:
        return (
            type(self) is type(other)
            and self.headers == other.headers  # type: ignore[attr-defined]
            and self.body == other.body  # type: ignore[attr-defined]
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.content_type} {len(self.body)} bytes>"


class AuthRequest(Frame):
    """``auth/request``: the greeting of an inbound connection."""

    __slots__ = ()


class CommandReply(Frame):
    """``command/reply``: the answer to every command but ``api``."""

    __slots__ = ()

    @property
    def reply_text(self) -> str:
        return self.header("Reply-Text", "") or ""

    @property
    def ok(self) -> bool:
        return self.reply_text.startswith("+OK")

    @property
    def job_uuid(self) -> str | None:
        return self.header("Job-UUID")


class ApiResponse(Frame):
    """``api/response``: the body is the command's output."""

    __slots__ = ()


class EventFrame(Frame):
    """``text/event-plain``, ``text/event-json`` or ``text/event-xml``."""

    __slots__ = ("event",)

    def __init__(self, headers: Headers, body: bytes = b"", event: Event | None = None):
        super().__init__(headers, body)
        self.event = event if event is not None else _decode_event(self.content_type, body)


class LogData(Frame):
    """``log/data``: one log line, after ``log <level>``."""

    __slots__ = ()

    @property
    def level(self) -> int | None:
        value = self.header("Log-Level")
        return int(value) if value and value.isdigit() else None


class DisconnectNotice(Frame):
    """``text/disconnect-notice``: the switch is closing (or lingering)."""

    __slots__ = ()

    @property
    def linger(self) -> bool:
        return self.header("Content-Disposition") == "linger"


class RudeRejection(Frame):
    """``text/rude-rejection``: refused by the inbound ACL, before any greeting."""

    __slots__ = ()


_FRAME_TYPES: dict[str, type[Frame]] = {
    "auth/request": AuthRequest,
    "command/reply": CommandReply,
    "api/response": ApiResponse,
    "text/event-plain": EventFrame,
    "text/event-json": EventFrame,
    "text/event-xml": EventFrame,
    "log/data": LogData,
    "text/disconnect-notice": DisconnectNotice,
    "text/rude-rejection": RudeRejection,
}


def _decode_event(content_type: str, body: bytes) -> Event:
    text = body.decode("utf-8", "replace")
    try:
        if content_type == "text/event-json":
            return Event.from_json(text)
        if content_type == "text/event-xml":
            return Event.from_xml(text)
    except (ValueError, ElementTree.ParseError) as exc:  # JSONDecodeError is a ValueError
        raise ProtocolError(f"The switch sent a malformed {content_type} event ({exc}).") from None
    return Event.from_plain(text)


# --- the parser ---------------------------------------------------------------------


class Parser:
    """Feed bytes in any chunking, get whole frames back.

    ``feed(b"")`` means the peer closed: it raises `ProtocolError` if a frame
    was cut off.  A `ProtocolError` carries the whole frames parsed before the
    bad bytes in ``err.frames``.  A frame bigger than ``max_frame_size`` raises `FrameTooLarge`
    as soon as its ``Content-Length`` is read, so memory stays bounded.

    ``raw=True`` hands back every frame as a plain `Frame` (headers and body, no
    event decoded): for a caller that reads event bodies its own way, as the
    libesl port (`eslkit.libesl`) does with libesl's rules.
    """

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, raw: bool = False):
        self.max_frame_size = max_frame_size
        self._types = {} if raw else _FRAME_TYPES
        self._buf = bytearray()
        self._scan = 0  # where the search for "\n\n" resumes (keeps 1-byte feeding linear)
        self._pending: tuple[list[tuple[str, str]], int] | None = None
        self.closed = False

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        if not data:
            self.closed = True
            if self._buf or self._pending is not None:
                raise ProtocolError(
                    f"The connection closed in the middle of a frame ({len(self._buf)} bytes left unparsed)."
                )
            return []
        frames: list[Frame] = []
        try:
            self._parse_into(frames, data)
        except ProtocolError as exc:
            exc.frames = frames  # the good frames before the bad bytes still count
            raise
        return frames

    def _parse_into(self, frames: list[Frame], data: bytes) -> None:
        buf = self._buf
        buf += data
        pos = 0
        size = len(buf)
        while True:
            if self._pending is None:
                end = buf.find(b"\n\n", max(pos, self._scan))
                if end < 0 and self._scan <= pos:
                    # Say "not the event socket" at the first bad line, not after 64 KiB.
                    nl = buf.find(b"\n", pos)
                    if nl > pos:
                        _parse_head(bytes(buf[pos:nl]), self.max_frame_size)
                if end < 0:
                    if size - pos > MAX_HEADER_BLOCK + 1:  # +1: the first "\n" of "\n\n" may be here
                        raise FrameTooLarge(
                            f"The peer sent {size - pos} bytes without finishing a header block "
                            f"(limit {MAX_HEADER_BLOCK})."
                        )
                    self._scan = max(pos, size - 1)
                    break
                if end == pos:  # stray blank line between frames: tolerate it
                    pos += 1
                    continue
                if end - pos > MAX_HEADER_BLOCK:  # same verdict however the bytes were chunked
                    raise FrameTooLarge(
                        f"The peer sent a {end - pos}-byte header block (limit {MAX_HEADER_BLOCK})."
                    )
                self._pending = _parse_head(bytes(buf[pos:end]), self.max_frame_size)
                pos = end + 2
            headers, length = self._pending
            if size - pos < length:
                break
            body = bytes(buf[pos: pos + length])
            pos += length
            self._pending = None
            self._scan = pos
            ctype = _content_type(headers)
            frames.append(self._types.get(ctype, Frame)(headers, body))
        if pos:
            del buf[:pos]
            self._scan = max(0, self._scan - pos)

    def __iter__(self):
        raise TypeError("use parser.feed(data), which returns a list of frames")


def _content_type(headers: list[tuple[str, str]]) -> str:
    for k, v in headers:
        if k == "Content-Type":
            return v
    return ""


def _parse_head(block: bytes, max_frame_size: int) -> tuple[list[tuple[str, str]], int]:
    text = block.decode("utf-8", "replace")
    headers: list[tuple[str, str]] = []
    length = 0
    for line in text.split("\n"):
        name, sep, value = line.partition(":")
        if not sep or not name or " " in name:
            raise ProtocolError(
                f"The peer sent a line that is not an event-socket header: {line[:60]!r}."
            )
        value = value[1:] if value.startswith(" ") else value
        headers.append((name, value))
        if name == "Content-Length":
            if not value.isdigit():
                raise ProtocolError(f"The peer sent an invalid Content-Length: {value[:40]!r}.")
            length = int(value)
            if length > max_frame_size:
                raise FrameTooLarge(
                    f"The peer announced a {length}-byte frame, over the {max_frame_size}-byte limit."
                )
    return headers, length


# --- encoding: what a client sends ---------------------------------------------------


def _check_line(what: str, value: str) -> None:
    if "\n" in value or "\r" in value:
        raise LocalProtocolError(
            f"Refusing to send a {what} containing a newline or carriage return: {value[:60]!r}."
        )


def encode_command(
    command: str,
    headers: Iterable[tuple[str, str]] | dict[str, str] = (),
    body: Union[str, bytes, None] = None,
) -> bytes:
    """One command, e.g. ``encode_command("api status")``, ending in a blank line.

    Newlines inside the command or a header could smuggle a second command
    onto the socket, so they are refused with `LocalProtocolError`.
    """
    _check_line("command", command)
    if not command.strip():
        raise LocalProtocolError("Refusing to send an empty command.")
    lines = [command]
    pairs = headers.items() if isinstance(headers, dict) else headers
    for name, value in pairs:
        _check_line("header name", name)
        _check_line("header value", value)
        lines.append(f"{name}: {value}")
    if body is not None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        lines.append(f"Content-Length: {len(data)}")
        return ("\n".join(lines) + "\n\n").encode("utf-8") + data
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def parse_command(data: bytes) -> tuple[str, list[tuple[str, str]]]:
    """Split one received command block (without its blank line) for the server side."""
    text = data.decode("utf-8", "replace")
    lines = text.split("\n")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return lines[0].rstrip("\r"), headers


MAX_COMMAND = 64 * 1024  # one command's header block
MAX_COMMAND_BODY = 1024 * 1024


class CommandParser:
    """The switch's side: feed a client's bytes, get whole commands back.

    Each command is ``(command, headers, body)``; like mod_event_socket it skips
    blank lines between commands, accepts ``\r\n``, and reads a body when the
    command has a Content-Length (sendevent, sendmsg).  A command block over
    ``MAX_COMMAND`` bytes or a body over ``MAX_COMMAND_BODY`` raises
    `FrameTooLarge`, so a client sending megabytes without a newline is bounded.
    """

    def __init__(self, max_command: int = MAX_COMMAND, max_body: int = MAX_COMMAND_BODY):
        self.max_command, self.max_body = max_command, max_body
        self._buf = bytearray()
        self._scan = 0  # where the search for the blank line resumes

    def feed(self, data: bytes) -> list[tuple[str, list[tuple[str, str]], bytes | None]]:
        buf = self._buf
        buf += data
        out = []
        while buf:
            start = 0
            while start < len(buf) and buf[start] in (10, 13):  # blank lines between commands
                start += 1
            if start:
                del buf[:start]
                self._scan = 0
                continue
            end, skip = self._block_end()
            if end < 0:
                if len(buf) > self.max_command:
                    raise FrameTooLarge(f"A client sent {len(buf)} bytes without ending a command.")
                break
            command, headers = parse_command(bytes(buf[:end]))
            length = next((int(v) for k, v in headers if k.lower() == "content-length" and v.isdigit()), 0)
            if length > self.max_body:
                raise FrameTooLarge(f"A client announced a {length}-byte command body.")
            if len(buf) < end + skip + length:
                break
            body = bytes(buf[end + skip: end + skip + length]) if length else None
            del buf[: end + skip + length]
            self._scan = 0
            out.append((command, headers, body))
        return out

    def _block_end(self) -> tuple[int, int]:
        """End of the header block: two newlines with only CRs between them."""
        buf = self._buf
        i = buf.find(b"\n", self._scan)
        while i >= 0:
            j = i + 1
            while j < len(buf) and buf[j] == 13:
                j += 1
            if j >= len(buf):
                self._scan = i
                return -1, 0
            if buf[j] == 10:
                return i, j + 1 - i
            i = buf.find(b"\n", j)
        self._scan = max(0, len(buf) - 1)
        return -1, 0


# --- encoding: what a switch sends (the simulator uses these) -------------------------


def encode_frame(headers: Headers, body: Union[str, bytes] = b"") -> bytes:
    """Headers in the given order; a Content-Length is added last when there is a body."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    head = "".join(f"{k}: {v}\n" for k, v in headers)
    if data:
        head += f"Content-Length: {len(data)}\n"
    return (head + "\n").encode("utf-8") + data


def auth_request() -> bytes:
    return b"Content-Type: auth/request\n\n"


def command_reply(reply_text: str, extra: Headers = ()) -> bytes:
    return encode_frame([("Content-Type", "command/reply"), ("Reply-Text", reply_text), *extra])


def api_response(body: str) -> bytes:
    return encode_frame([("Content-Type", "api/response")], body)


_EVENT_HEADS = {fmt: b"Content-Length: %%d\nContent-Type: text/event-%s\n\n" % fmt.encode()
                for fmt in ("plain", "json", "xml")}


def event_head(format: str, length: int) -> bytes:
    """The head of a ``text/event-<format>`` frame whose payload is ``length`` bytes: the
    switch puts Content-Length first."""
    return _EVENT_HEADS[format] % length


def event_frame(event: Event, format: str = "plain") -> bytes:
    payload = event.serialize(format).encode("utf-8")
    return event_head(format, len(payload)) + payload


def log_data(text: str, level: int, headers: Headers = ()) -> bytes:
    data = text.encode("utf-8")
    head = f"Content-Type: log/data\nContent-Length: {len(data)}\nLog-Level: {level}\n"
    head += "".join(f"{k}: {v}\n" for k, v in headers)
    return (head + "\n").encode("utf-8") + data


def disconnect_notice(text: str = GOODBYE, linger: bool = False) -> bytes:
    headers = [("Content-Type", "text/disconnect-notice")]
    if linger:
        headers.append(("Content-Disposition", "linger"))
    return encode_frame(headers, text)


def rude_rejection(text: str = ACCESS_DENIED) -> bytes:
    return encode_frame([("Content-Type", "text/rude-rejection")], text)
