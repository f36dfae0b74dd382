"""The live table's keys, as htop and less have them: ``q`` quit, space pause, ``/``
search, arrows and Page Up/Down to scroll back, End (or ``G``) back to the newest rows.

`KeyReader` turns the bytes a terminal sends into key names; `TableView` is what the
keys change and `WatchScreen` reads (which rows, paused or not, what is searched).
Nothing here reads the terminal: the engine feeds the bytes in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

# The escape sequences xterm, tmux, screen and the Linux console send for these keys.
_SEQUENCES = {
    "\x1b[A": "up", "\x1bOA": "up", "\x1b[B": "down", "\x1bOB": "down",
    "\x1b[5~": "pageup", "\x1b[6~": "pagedown",
    "\x1b[H": "home", "\x1bOH": "home", "\x1b[1~": "home", "\x1b[7~": "home",
    "\x1b[F": "end", "\x1bOF": "end", "\x1b[4~": "end", "\x1b[8~": "end",
}


class KeyReader:
    """Bytes → key names: "up", "pageup", "esc", "enter", "backspace", or the character."""

    def __init__(self) -> None:
        self._pending = ""

    def feed(self, data: bytes) -> list[str]:
        text = self._pending + data.decode("utf-8", "replace")
        self._pending = ""
        keys: list[str] = []
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "\x1b":
                for seq, name in _SEQUENCES.items():
                    if text.startswith(seq, i):
                        keys.append(name)
                        i += len(seq)
                        break
                else:
                    rest = text[i:]
                    if any(seq.startswith(rest) for seq in _SEQUENCES) and len(rest) > 1:
                        self._pending = rest  # the rest of the sequence is on its way
                        break
                    # Esc alone, or a sequence we do not use: skip it whole (ESC [ … final).
                    end = i + 1
                    if end < len(text) and text[end] in "[O":
                        end += 1
                        while end < len(text) and not ("@" <= text[end] <= "~"):
                            end += 1
                        keys.append("other")
                        i = end + 1
                    else:
                        keys.append("esc")
                        i = end
                continue
            keys.append({"\r": "enter", "\n": "enter", "\x7f": "backspace", "\x08": "backspace"}.get(ch, ch))
            i += 1
        return keys


@dataclass
class TableView:
    """What the keys chose: frozen rows (paused or scrolled back), the scroll offset from
    the newest row, the search, and a search being typed."""

    frozen: Optional[tuple] = None  # the rows as they were when paused; None: live
    offset: int = 0  # rows scrolled back from the newest
    search: str = ""
    typing: Optional[str] = None  # the search being typed after "/"
    page: int = 10  # rows a Page Up/Down moves (set from the screen's height)

    @property
    def paused(self) -> bool:
        return self.frozen is not None

    def key(self, key: str, rows: Sequence) -> bool:
        """Apply one key; ``rows`` are the live rows now.  True: quit."""
        if self.typing is not None:
            if key == "enter":
                self.search, self.typing, self.offset = self.typing, None, 0
            elif key == "esc":
                self.typing = None
            elif key == "backspace":
                self.typing = self.typing[:-1]
            elif len(key) == 1 and key.isprintable():
                self.typing += key
            return False
        if key in ("q", "Q"):
            return True
        if key == " ":
            self.frozen = None if self.paused else tuple(rows)
            self.offset = 0
        elif key == "/":
            self.typing = ""
        elif key == "esc":
            self.search, self.frozen, self.offset = "", None, 0
        elif key in ("up", "k", "pageup", "b", "home", "g"):
            if not self.paused:
                self.frozen = tuple(rows)  # scrolling back holds the rows still, as less does
            step = {"up": 1, "k": 1, "pageup": self.page, "b": self.page}.get(key, len(self.frozen))
            self.offset += step
        elif key in ("down", "j", "pagedown"):
            self.offset = max(0, self.offset - (self.page if key == "pagedown" else 1))
        elif key in ("end", "G"):
            self.frozen, self.offset = None, 0
        return False
