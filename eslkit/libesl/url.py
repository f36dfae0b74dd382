"""esl_url_decode() and esl_url_encode() from libesl's esl.c, byte for byte.

FreeSWITCH writes ``%XX`` with two hex digits, which the fast path decodes at C
speed.  Anything else takes the slow path, which does what the C loop does with
``sscanf(s + 1, "%2x", &tmp)``: leading white space is skipped, a sign counts
towards the two characters, ``0x`` reads as 0, one digit is enough — and three
characters are consumed whatever was read.  A decoded NUL ends the C string.
"""

from __future__ import annotations

import re

from eslkit._headers import percent_decode_bytes, url_encode

_NOT_TWO_HEX = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_HEX = b"0123456789abcdefABCDEF"
_C_SPACE = b" \t\n\v\f\r"  # isspace() in the C locale, what %x skips


def to_bytes(value: str) -> bytes:
    return value.encode("utf-8", "surrogateescape")


def from_bytes(data: bytes) -> str:
    """A C string as SWIG gives it to Python: up to the first NUL, undecodable bytes escaped."""
    nul = data.find(b"\0")
    if nul >= 0:
        data = data[:nul]
    return data.decode("utf-8", "surrogateescape")


def decode(value: str) -> str:
    """esl_url_decode() of a C string."""
    if "%" not in value:
        return value
    return from_bytes(decode_bytes(to_bytes(value)))


def decode_bytes(data: bytes) -> bytes:
    """What esl_url_decode() writes over ``data`` in place, a decoded NUL included."""
    if b"%" not in data:
        return data
    if _NOT_TWO_HEX.search(data) is None:
        return percent_decode_bytes(data)
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        if data[i] == 0x25 and n - i > 2:  # '%' and strlen(s) > 2
            byte = _scan_hex2(data, i + 1)
            if byte is not None:
                out.append(byte)
                i += 3
                continue
        out.append(data[i])
        i += 1
    return bytes(out)


def _scan_hex2(data: bytes, i: int) -> int | None:
    """What ``sscanf(data + i, "%2x", &tmp)`` leaves in ``(char) tmp``; None if it reads nothing."""
    n = len(data)
    while i < n and data[i] in _C_SPACE:
        i += 1
    sign, width = 1, 2
    if i < n and data[i] in b"+-":
        sign, width, i = (-1 if data[i] == 0x2D else 1), 1, i + 1
    if i >= n or data[i] not in _HEX:
        return None
    if width == 2 and data[i] == 0x30 and i + 1 < n and data[i + 1] in b"xX":
        return 0  # "0x" fills the width: the number read is 0
    value = int(chr(data[i]), 16)
    if width == 2 and i + 1 < n and data[i + 1] in _HEX:
        value = value * 16 + int(chr(data[i + 1]), 16)
    return (sign * value) & 0xFF


def encode(value: str, size: int) -> str:
    """esl_url_encode() into a buffer of ``size`` bytes: what does not fit is cut off.

    Bytes above 0x7E become ``%XX``, as FreeSWITCH's own switch_url_encode() writes
    them.  (libesl reads them as a signed char and indexes its hex table with a
    negative number: undefined behaviour, garbage in practice; see docs/esl.md.)
    """
    encoded = url_encode(value)
    room = size - 1  # len-- in the C code: one byte for the NUL
    if len(encoded) < room:  # it fits: the loop below would not stop early
        return encoded
    out, x = [], 0
    for byte in to_bytes(value):
        if x >= room:
            break
        piece = url_encode(chr(byte)) if byte < 0x80 else "%%%02X" % byte
        if len(piece) == 3 and x + 3 >= room:
            break
        out.append(piece)
        x += len(piece)
    return "".join(out)
