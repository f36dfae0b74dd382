"""The one place where text from the network is made safe to show.

Caller names, numbers and every other header value come from outside: a
caller name may hold Rich markup (``[bold red]``), ANSI/OSC/DCS escape
sequences that move the cursor, retitle or clear the terminal, C1 controls
that some terminals obey as escapes, or bidirectional overrides that reorder
what is shown.  Everything shown on a terminal goes through here:

- `visible(s)` -> ``str``: every control character replaced by a visible stand-in
  (C0 -> its Unicode "control picture" such as ␛, DEL -> ␡, C1 and bidi
  controls -> ``<U+202E>``), lone surrogates (undecodable bytes) -> U+FFFD;
  optionally truncated with "…".
- `safe_text(s)` -> ``rich.text.Text``: the same, as a Text so Rich never reads
  markup in it.

Printable text (the common case) is returned unchanged after one
``str.isprintable()`` check.
"""

from __future__ import annotations

import re
from typing import Optional, Union

from rich.text import Text

__all__ = ["visible", "safe_text", "ELLIPSIS"]

ELLIPSIS = "…"

_TABLE: dict[int, str] = {c: chr(0x2400 + c) for c in range(0x20)}  # ␀ … ␟
_TABLE[0x7F] = "␡"
for _c in range(0x80, 0xA0):  # C1: CSI (0x9B), OSC (0x9D), DCS (0x90) … on some terminals
    _TABLE[_c] = f"<U+{_c:04X}>"
for _c in (
    0x061C, 0x200E, 0x200F,  # arabic letter mark, LRM, RLM
    0x202A, 0x202B, 0x202C, 0x202D, 0x202E,  # LRE RLE PDF LRO RLO
    0x2066, 0x2067, 0x2068, 0x2069,  # LRI RLI FSI PDI
    0x2028, 0x2029,  # line and paragraph separators break lines
    0xFEFF,
):
    _TABLE[_c] = f"<U+{_c:04X}>"

_SURROGATES = re.compile("[\ud800-\udfff]")


def visible(value: Union[str, bytes, None], max_len: Optional[int] = None) -> str:
    """`value` with every control character made visible; at most `max_len` characters."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    elif not isinstance(value, str):
        value = str(value)
    if not value.isprintable():
        value = value.translate(_TABLE)
        if not value.isascii():
            value = _SURROGATES.sub("\ufffd", value)
    if max_len is not None and len(value) > max_len:
        value = value[: max(0, max_len - 1)] + ELLIPSIS if max_len > 0 else ""
    return value


def safe_text(
    value: Union[str, bytes, None],
    style: Union[str, None] = None,
    *,
    max_len: Optional[int] = None,
) -> Text:
    """A rich `Text` of `value`, shown literally: no markup, no escapes, no bidi tricks."""
    return Text(visible(value, max_len), style=style or "", no_wrap=True, overflow="ellipsis", end="")
