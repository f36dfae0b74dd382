"""The AMQP 0-9-1 frames the relay's publisher writes and reads (the AMQP 0-9-1 specification,
sections 2.3 and 4.2, with RabbitMQ's field-table types).

Only what a publisher with confirms needs: the connection handshake (Start/StartOk with
PLAIN, Tune/TuneOk, Open/OpenOk), one channel, Exchange.Declare, Confirm.Select,
Basic.Publish with its content header and body frames, the Basic.Ack/Nack that come back,
heartbeats, and Close/CloseOk both ways.  Consuming stays with pika (`AmqpSubscriber`).
"""

from __future__ import annotations

import struct
import time

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
METHOD, HEADER, BODY, HEARTBEAT = 1, 2, 3, 8
FRAME_END = b"\xce"
FRAME_MIN_SIZE = 4096  # the spec's smallest frame_max: the handshake fits in it

# (class id, method id)
CONNECTION_START, CONNECTION_START_OK = (10, 10), (10, 11)
CONNECTION_TUNE, CONNECTION_TUNE_OK = (10, 30), (10, 31)
CONNECTION_OPEN, CONNECTION_OPEN_OK = (10, 40), (10, 41)
CONNECTION_CLOSE, CONNECTION_CLOSE_OK = (10, 50), (10, 51)
CONNECTION_BLOCKED, CONNECTION_UNBLOCKED = (10, 60), (10, 61)
CHANNEL_OPEN, CHANNEL_OPEN_OK = (20, 10), (20, 11)
CHANNEL_CLOSE, CHANNEL_CLOSE_OK = (20, 40), (20, 41)
EXCHANGE_DECLARE, EXCHANGE_DECLARE_OK = (40, 10), (40, 11)
BASIC_PUBLISH, BASIC_ACK, BASIC_NACK = (60, 40), (60, 80), (60, 120)
CONFIRM_SELECT, CONFIRM_SELECT_OK = (85, 10), (85, 11)

ACCESS_REFUSED, NOT_ALLOWED = 403, 530  # reply codes: a bad login, a virtual host not allowed

_FRAME = struct.Struct("!BHI")
_METHOD = struct.Struct("!HH")
_SHORT = struct.Struct("!H")
_LONG = struct.Struct("!I")
_LONGLONG = struct.Struct("!Q")
_CONTENT_HEADER = struct.Struct("!HHQH")  # class, weight, body size, property flags
_ACK = struct.Struct("!QB")

# Basic's property flags (the first property is bit 15).
_CONTENT_TYPE, _HEADERS, _DELIVERY_MODE, _TIMESTAMP = 0x8000, 0x2000, 0x1000, 0x0040

HEARTBEAT_FRAME = _FRAME.pack(HEARTBEAT, 0, 0) + FRAME_END


def frame(kind: int, channel: int, payload: bytes) -> bytes:
    return _FRAME.pack(kind, channel, len(payload)) + payload + FRAME_END


def method_frame(channel: int, method: tuple[int, int], args: bytes = b"") -> bytes:
    return frame(METHOD, channel, _METHOD.pack(*method) + args)


def shortstr(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    if len(raw) > 255:
        raise ValueError(f"{len(raw)} bytes is longer than an AMQP short string (255)")
    return bytes((len(raw),)) + raw


def longstr(raw: bytes) -> bytes:
    return _LONG.pack(len(raw)) + raw


def table(values: dict) -> bytes:
    """A field table with RabbitMQ's types: text as 'S', bytes 'x', bool 't', int 'l', dict 'F'."""
    out = bytearray()
    for name, value in values.items():
        out += shortstr(name)
        if isinstance(value, bool):
            out += b"t" + bytes((value,))
        elif isinstance(value, str):
            out += b"S" + longstr(value.encode())
        elif isinstance(value, bytes):
            out += b"x" + longstr(value)
        elif isinstance(value, int):
            out += b"l" + struct.pack("!q", value)
        elif isinstance(value, dict):
            out += b"F" + table(value)
        else:
            raise TypeError(f"a header value of type {type(value).__name__} cannot be sent")
    return longstr(bytes(out))


# --- the client's methods -------------------------------------------------------------

def start_ok(username: str, password: str, properties: dict) -> bytes:
    response = b"\0" + username.encode() + b"\0" + password.encode()
    return method_frame(0, CONNECTION_START_OK,
                        table(properties) + shortstr("PLAIN") + longstr(response) + shortstr("en_US"))


def tune_ok(channel_max: int, frame_max: int, heartbeat: int) -> bytes:
    return method_frame(0, CONNECTION_TUNE_OK, struct.pack("!HIH", channel_max, frame_max, heartbeat))


def connection_open(vhost: str) -> bytes:
    return method_frame(0, CONNECTION_OPEN, shortstr(vhost) + shortstr("") + b"\0")


def close(channel: int, code: int = 200, text: str = "Normal shutdown") -> bytes:
    method = CONNECTION_CLOSE if channel == 0 else CHANNEL_CLOSE
    return method_frame(channel, method, _SHORT.pack(code) + shortstr(text) + _METHOD.pack(0, 0))


def close_ok(channel: int) -> bytes:
    return method_frame(channel, CONNECTION_CLOSE_OK if channel == 0 else CHANNEL_CLOSE_OK)


def channel_open(channel: int) -> bytes:
    return method_frame(channel, CHANNEL_OPEN, shortstr(""))


def exchange_declare(channel: int, exchange: str, kind: str = "topic", durable: bool = True) -> bytes:
    return method_frame(channel, EXCHANGE_DECLARE, _SHORT.pack(0) + shortstr(exchange) + shortstr(kind)
                        + bytes((0x02 if durable else 0,)) + table({}))


def confirm_select(channel: int) -> bytes:
    return method_frame(channel, CONFIRM_SELECT, b"\0")


class Publish:
    """Basic.Publish frames for one channel and exchange: the method, the content header
    (content type, persistent, headers, timestamp as pika sent them) and the body, cut
    into frames of at most ``frame_max`` bytes."""

    def __init__(self, channel: int, exchange: str, frame_max: int, content_type: str = "text/json"):
        self.channel = channel
        self._method_head = _METHOD.pack(*BASIC_PUBLISH) + _SHORT.pack(0) + shortstr(exchange)
        self._content_type = shortstr(content_type)
        self._body_max = frame_max - 8  # a frame's header and end byte
        self._header_prefix = _FRAME.pack(HEADER, channel, 0)[:3]  # type and channel; the size follows

    def frames(self, routing_key: bytes, body: bytes, headers: dict | None) -> list[bytes]:
        """The frames of one message (a ValueError or TypeError if it can never be sent)."""
        channel = self.channel
        method = self._method_head + shortstr(routing_key) + b"\0"  # mandatory, immediate: off
        flags = _CONTENT_TYPE | _DELIVERY_MODE | _TIMESTAMP
        props = self._content_type
        if headers:
            flags |= _HEADERS
            props += table(headers)
        props += b"\x02" + _LONGLONG.pack(int(time.time()))  # delivery mode 2: persistent
        header = _CONTENT_HEADER.pack(60, 0, len(body), flags) + props
        out = [_FRAME.pack(METHOD, channel, len(method)) + method + FRAME_END,
               _FRAME.pack(HEADER, channel, len(header)) + header + FRAME_END]
        step = self._body_max
        if len(body) <= step:
            if body:
                out += (_FRAME.pack(BODY, channel, len(body)), body, FRAME_END)
            return out
        for i in range(0, len(body), step):
            part = body[i:i + step]
            out += (_FRAME.pack(BODY, channel, len(part)), part, FRAME_END)
        return out


# --- what the broker sends --------------------------------------------------------------

class FrameReader:
    """Splits the broker's bytes into frames: (type, channel, payload)."""

    def __init__(self):
        self._data = b""

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        data = self._data + data if self._data else data
        frames = []
        pos, end = 0, len(data)
        while pos + 7 <= end:
            kind, channel, size = _FRAME.unpack_from(data, pos)
            stop = pos + 7 + size
            if stop + 1 > end:
                break
            if data[stop] != 0xCE:
                raise ValueError("a frame without its frame-end byte")
            frames.append((kind, channel, data[pos + 7:stop]))
            pos = stop + 1
        self._data = data[pos:]
        return frames


def method_of(payload: bytes) -> tuple[int, int]:
    return _METHOD.unpack_from(payload)


def ack_of(payload: bytes) -> tuple[int, bool]:
    """Basic.Ack / Basic.Nack: (delivery tag, multiple)."""
    tag, bits = _ACK.unpack_from(payload, 4)
    return tag, bool(bits & 1)


def _shortstr_at(payload: bytes, pos: int) -> tuple[str, int]:
    n = payload[pos]
    return payload[pos + 1:pos + 1 + n].decode("utf-8", "replace"), pos + 1 + n


def tune_of(payload: bytes) -> tuple[int, int, int]:
    """Connection.Tune: (channel_max, frame_max, heartbeat)."""
    return struct.unpack_from("!HIH", payload, 4)


def close_of(payload: bytes) -> tuple[int, str]:
    """Connection.Close / Channel.Close: (reply code, reply text)."""
    code = _SHORT.unpack_from(payload, 4)[0]
    text, _ = _shortstr_at(payload, 6)
    return code, text


def blocked_reason(payload: bytes) -> str:
    return _shortstr_at(payload, 4)[0] if len(payload) > 4 else ""


def start_mechanisms(payload: bytes) -> list[str]:
    """Connection.Start: the SASL mechanisms the broker offers."""
    pos = 6  # class, method, version major and minor
    pos += 4 + _LONG.unpack_from(payload, pos)[0]  # server properties
    n = _LONG.unpack_from(payload, pos)[0]
    return payload[pos + 4:pos + 4 + n].decode("ascii", "replace").split()
