"""The popup's phone-control footer (``popup --control``): the keys, what the agent is
typing, and the last action's result.  A renderable from a frozen snapshot, like the panel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from eslkit.safe_text import safe_text

__all__ = ["ControlBar"]

_STYLES = {"ok": "esl.answered", "failed": "esl.failed", "busy": "esl.ringing"}
_MARKS = {"ok": "✓ ", "failed": "✗ ", "busy": "… "}


@dataclass(frozen=True)
class ControlBar:
    keys: tuple = ()  # (key, what it does)
    prompt: Optional[str] = None  # "Transfer to", "Dial" while the agent types
    typed: str = ""
    message: Optional[tuple] = None  # (ok | failed | busy, text)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(options.max_width, 20)
        line = Text()
        for i, (key, what) in enumerate(self.keys):
            if i:
                line.append("  ")
            line.append(key, style="esl.title")
            line.append(f" {what}", style="esl.label")
        yield line
        if self.prompt is not None:
            ask = Text(f"{self.prompt}: ", style="esl.heading")
            ask.append_text(safe_text(self.typed, "esl.number", max_len=40))
            ask.append("▏  Enter sends, Esc cancels", style="esl.label")
            yield ask
        elif self.message is not None:
            kind, text = self.message
            said = Text(_MARKS.get(kind, ""), style=_STYLES.get(kind, ""))
            said.append_text(safe_text(text, _STYLES.get(kind, ""), max_len=width - 2))
            yield said
