"""Untrusted text (caller names, numbers, any header) made safe for a terminal.

Text from the network must never style, move, retitle or clear the terminal.
Rich markup is harmless once the value is a ``rich.text.Text`` (never parsed as
markup); what remains dangerous is the characters themselves: C0/C1 controls
(ESC starts ANSI and OSC sequences, CR/BS overwrite), DEL, and the invisible
Unicode format characters that reorder or hide text (bidi overrides and
isolates, zero-width joiners, line/paragraph separators).  Each is replaced by
a visible stand-in, so an operator sees that something odd was sent:

- C0 controls and DEL become their Control Pictures: ESC → ``␛``, LF → ``␊``;
- C1 controls and format characters become ``<U+XXXX>``.

Long values are cut to a length the caller chooses, with an ellipsis.
"""

from __future__ import annotations

import unicodedata
from typing import Optional

from rich.text import Text

__all__ = ["clean", "safe_text", "ELLIPSIS"]

ELLIPSIS = "…"

# Unicode format characters (category Cf) also include harmless ones such as
# the soft hyphen; all of them are invisible, so all of them are shown.
_SEPARATORS = {"\u2028", "\u2029", "\x85"}


def _visible(ch: str) -> str:
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)  # ␀..␟
    if code == 0x7F:
        return "\u2421"  # ␡
    if 0x80 <= code < 0xA0 or ch in _SEPARATORS:
        return f"<U+{code:04X}>"
    if unicodedata.category(ch) in ("Cf", "Cs", "Co", "Cn") and not _is_plain_private(code):
        return f"<U+{code:04X}>"
    return ch


def _is_plain_private(code: int) -> bool:
    # Private-use glyphs (Powerline/Nerd fonts) and unassigned-but-printable
    # code points do nothing to a terminal; only Cf/Cs really need showing.
    return 0xE000 <= code <= 0xF8FF


def clean(value: Optional[str], max_len: int = 120) -> str:
    """`value` with every control/format character made visible, at most
    `max_len` characters long (an ellipsis marks a cut)."""
    if not value:
        return ""
    # Cut first so a 10 kB value costs no more than a short one.
    head = value[: max_len + 1]
    out = []
    length = 0
    for ch in head:
        shown = ch if (" " <= ch < "\x7f") else _visible(ch)
        out.append(shown)
        length += len(shown)
        if length > max_len:
            break
    text = "".join(out)
    if len(text) > max_len or len(value) > max_len:
        return text[: max(max_len - 1, 0)] + ELLIPSIS
    return text


def safe_text(value: Optional[str], style: str = "", max_len: int = 120) -> Text:
    """A `rich.text.Text` showing `value` literally (never parsed as markup)."""
    return Text(clean(value, max_len), style=style, no_wrap=True, overflow="ellipsis")
