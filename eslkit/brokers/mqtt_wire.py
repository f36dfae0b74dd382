"""The MQTT 3.1.1 packets the relay's publisher writes and reads (OASIS MQTT 3.1.1, section 3).

Only what a publisher needs: CONNECT (with a Last Will), PUBLISH at QoS 0/1/2, the
acknowledgements that come back (CONNACK, PUBACK, PUBREC, PUBCOMP, PINGRESP), PUBREL,
PINGREQ and DISCONNECT.  Subscribing stays with paho (`MqttSubscriber`).
"""

from __future__ import annotations

import struct

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70
PINGREQ, PINGRESP, DISCONNECT = 0xC0, 0xD0, 0xE0

MAX_PAYLOAD = 268_435_455 - 2 - 65535 - 2  # the largest remaining length, less the largest topic

# CONNACK return codes (3.2.2.3), as paho words them.
REFUSALS = {1: "Unsupported protocol version", 2: "Client identifier not valid", 3: "Server unavailable",
            4: "Bad user name or password", 5: "Not authorized"}

_MID = struct.Struct("!H")


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _string(value: bytes) -> bytes:
    return _MID.pack(len(value)) + value


def connect_packet(client_id: str, keepalive: int, *, username: str | None = None, password: str | None = None,
                   will: tuple[str, bytes, int, bool] | None = None) -> bytes:
    """CONNECT with a clean session; ``will`` is (topic, payload, qos, retain)."""
    flags = 0x02  # clean session
    payload = _string(client_id.encode())
    if will is not None:
        topic, message, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        payload += _string(topic.encode()) + _string(message)
    if username is not None or password is not None:
        flags |= 0x80
        payload += _string((username or "").encode())
        if password is not None:
            flags |= 0x40
            payload += _string(password.encode())
    body = _string(b"MQTT") + bytes((4, flags)) + _MID.pack(keepalive) + payload
    return bytes((CONNECT,)) + remaining_length(len(body)) + body


def publish_head(topic: bytes, payload_size: int, qos: int, mid: int, *, retain: bool = False) -> bytes:
    """Everything of a PUBLISH before its payload."""
    first = PUBLISH | (qos << 1) | (1 if retain else 0)
    size = 2 + len(topic) + payload_size + (2 if qos else 0)
    head = bytes((first,)) + remaining_length(size) + _MID.pack(len(topic)) + topic
    return head + _MID.pack(mid) if qos else head


def ack_packet(kind: int, mid: int) -> bytes:
    """PUBREL (which carries flags 0b0010) or another two-byte acknowledgement."""
    return bytes((kind | (0x02 if kind == PUBREL else 0), 2)) + _MID.pack(mid)


PINGREQ_PACKET = bytes((PINGREQ, 0))
DISCONNECT_PACKET = bytes((DISCONNECT, 0))


class PacketReader:
    """Splits the broker's bytes into packets: (type, flags, body)."""

    def __init__(self):
        self._data = b""

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        data = self._data + data if self._data else data
        packets = []
        pos, end = 0, len(data)
        while pos + 2 <= end:
            length, shift, i = 0, 0, pos + 1
            while True:  # the remaining length: 1 to 4 bytes, 7 bits each
                if i >= end:
                    self._data = data[pos:]
                    return packets
                byte = data[i]
                length |= (byte & 0x7F) << shift
                shift += 7
                i += 1
                if not byte & 0x80:
                    break
                if shift > 21:
                    raise ValueError("a packet length of more than 4 bytes")
            if i + length > end:
                break
            packets.append((data[pos] & 0xF0, data[pos] & 0x0F, data[i:i + length]))
            pos = i + length
        self._data = data[pos:]
        return packets


def mid_of(body: bytes) -> int:
    return _MID.unpack_from(body)[0]
