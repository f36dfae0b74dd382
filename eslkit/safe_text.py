"""The one place where text from the network is made safe to show.

Caller names, numbers and every other header value come from outside: a
caller name may hold Rich markup (``[bold red]``), ANSI/OSC/DCS escape
sequences that move the cursor, retitle or clear the terminal, C1 controls
that some terminals obey as escapes, or bidirectional overrides that reorder
what is shown.  Everything shown on a terminal goes through here:

- C0 controls and DEL become their Unicode "control pictures": ESC → ``␛``,
  LF → ``␊``, NUL → ``␀``, DEL → ``␡``;
- C1 controls, line/paragraph separators and every invisible format
  character (bidi overrides and isolates, zero-width characters) become
  ``<U+XXXX>``;
- lone surrogates (what undecodable bytes become) and unassigned code points
  are shown as ``<U+XXXX>`` too; bytes are decoded as UTF-8 with U+FFFD for
  invalid sequences.

`clean(s)` / `visible(s)` return a ``str``; `safe_text(s)` returns a
``rich.text.Text``, which Rich never parses as markup.  Printable text (the
common case) passes after a single ``str.isprintable()`` check.
"""

from __future__ import annotations

import unicodedata
from typing import Optional, Union

from rich.text import Text

__all__ = ["clean", "visible", "safe_text", "ELLIPSIS"]

ELLIPSIS = "…"

_SEPARATORS = {"\u2028", "\u2029", "\x85"}
_cache: dict[str, str] = {}


def _visible(ch: str) -> str:
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)  # ␀..␟
    if code == 0x7F:
        return "\u2421"  # ␡
    if 0x80 <= code < 0xA0 or ch in _SEPARATORS:
        return f"<U+{code:04X}>"
    if unicodedata.category(ch) in ("Cf", "Cs", "Cn", "Zl", "Zp"):
        return f"<U+{code:04X}>"
    return ch  # printable, private use (Nerd-font glyphs) or other harmless space


def _show(ch: str) -> str:
    shown = _cache.get(ch)
    if shown is None:
        shown = _visible(ch)
        if len(_cache) < 4096:
            _cache[ch] = shown
    return shown


def visible(value: Union[str, bytes, None], max_len: Optional[int] = None) -> str:
    """`value` with every control/format character made visible; at most
    `max_len` characters (an ellipsis marks a cut); ``None`` → ``""``."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    elif not isinstance(value, str):
        value = str(value)
    if max_len is not None and len(value) > max_len:
        # Cut before cleaning so a 10 kB value costs no more than a short one.
        value = value[: max_len + 1]
    if not value.isprintable():
        value = "".join([ch if " " <= ch < "\x7f" else _show(ch) for ch in value])
    if max_len is not None and len(value) > max_len:
        value = value[: max(max_len - 1, 0)] + ELLIPSIS if max_len > 0 else ""
    return value


def clean(value: Union[str, bytes, None], max_len: Optional[int] = 120) -> str:
    """`visible` with a default cut at 120 characters."""
    return visible(value, max_len)


def safe_text(
    value: Union[str, bytes, None],
    style: str = "",
    max_len: Optional[int] = 120,
) -> Text:
    """A `rich.text.Text` showing `value` literally (never parsed as markup)."""
    return Text(visible(value, max_len), style=style or "", no_wrap=True, overflow="ellipsis")
