"""The live table's keys, as htop and less have them: ``q`` quit, space pause, ``/``
search, arrows and Page Up/Down to scroll back, End (or ``G``) back to the newest rows.

`TableView` is what the keys change and `WatchScreen` reads (which rows, paused or not,
what is searched).  Nothing here reads the terminal: the engine feeds it the key names
`eslkit.app.keys` makes of what is typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

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
