"""Named styles for every eslkit view.

Views only name styles (``esl.ringing``); the colours live here, in one rich
``Theme`` the command installs on its Console.  Add a style here rather than
spelling a colour inside a view.
"""

from __future__ import annotations

from rich.theme import Theme

STYLES = {
    # call and leg states
    "esl.ringing": "bold yellow",
    "esl.answered": "bold green",
    "esl.hold": "bold blue",
    "esl.elsewhere": "cyan",
    "esl.missed": "bold red",
    "esl.busy": "magenta",
    "esl.failed": "red",
    "esl.ended": "bright_black",
    "esl.hangup": "red",
    # panel parts
    "esl.caller": "bold",
    "esl.number": "bold cyan",
    "esl.label": "bright_black",
    "esl.value": "default",
    "esl.uuid": "bright_black",
    "esl.contact": "green",
    "esl.timer": "bold",
    "esl.border": "blue",
    "esl.title": "bold",
    "esl.idle": "bright_black",
    # watch: event kinds
    "esl.answer": "bold green",
    "esl.bridge": "bold cyan",
    "esl.event": "default",
    "esl.quiet": "bright_black",
    "esl.heading": "bold",
    "esl.count": "bold",
    # wallboard: agent states and thresholds
    "esl.available": "green",
    "esl.wrapup": "magenta",
    "esl.break": "yellow",
    "esl.alert": "bold white on red",
    "esl.good": "green",
    # connection status
    "esl.connected": "green",
    "esl.disconnected": "bold red",
    "esl.warning": "yellow",
}

THEME = Theme(STYLES)
