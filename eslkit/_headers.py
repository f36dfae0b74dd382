"""Header-value encoding as FreeSWITCH does it (private to protocol/event).

Plain and XML events carry URL-encoded header values; JSON events do not.
Decoding happens after a header block is split into lines, so an encoded
newline (``%0A``) can never forge a header.  Invalid UTF-8 is replaced, never
raised.
"""

from __future__ import annotations

import codecs
import re
from urllib.parse import unquote

# switch_url_encode() in FreeSWITCH's switch_utils.c escapes these, plus every
# byte below ' ' or above '~'.
_UNSAFE = set(b'\r\n "#%&+:;<=>?@[\\]^`{|}')
_ENCODE = [
    (f"%{b:02X}" if (b < 0x20 or b > 0x7E or b in _UNSAFE) else chr(b)) for b in range(256)
]
# A character that needs encoding: one search at C speed decides the common case.
_NEEDS_ENCODING = re.compile("[^%s]" % re.escape("".join(c for c in _ENCODE if len(c) == 1)))

ARRAY_PREFIX = "ARRAY::"


def url_decode(value: str) -> str:
    """Decode %XX escapes; bad UTF-8 inside them becomes U+FFFD."""
    if "%" not in value:
        return value
    return unquote(value, errors="replace")


def url_decode_block(text: str) -> str:
    """`url_decode` for a long text at once (many values joined), at C speed:
    ``%XX`` becomes ``\\xXX`` for the bytes-escape decoder.  Same result as
    ``unquote``; a stray ``%`` (not followed by two hex digits) takes unquote's path."""
    if "%" not in text:
        return text
    try:
        raw = percent_decode_bytes(text.encode("utf-8"))  # a lone surrogate cannot: unquote keeps it
    except ValueError:  # UnicodeEncodeError, or a "%" without two hex digits
        return unquote(text, errors="replace")
    return raw.decode("utf-8", "replace")


def percent_decode_bytes(data: bytes) -> bytes:
    """Every ``%XX`` of ``data`` decoded at C speed (``%XX`` becomes ``\\xXX`` for the
    bytes-escape decoder).  ValueError if a ``%`` is not followed by two hex digits."""
    if b"\\" in data:
        data = data.replace(b"\\", b"\\\\")
    return codecs.escape_decode(data.replace(b"%", b"\\x"))[0]


def url_encode(value: str) -> str:
    """Encode a header value byte for byte like switch_url_encode()."""
    if _NEEDS_ENCODING.search(value) is None:
        return value
    return "".join([_ENCODE[b] for b in value.encode("utf-8", "surrogateescape")])


def split_array(value: str) -> list[str] | str:
    """FreeSWITCH's plain form of a multi-value header: ``ARRAY::a|:b|:c``."""
    if value.startswith(ARRAY_PREFIX):
        return value[len(ARRAY_PREFIX):].split("|:")
    return value


def join_array(values: list[str]) -> str:
    return ARRAY_PREFIX + "|:".join(values)
