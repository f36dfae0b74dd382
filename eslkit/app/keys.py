"""Keys from the terminal, one at a time, without waiting for Enter.

    with keyboard() as keys:                # the terminal in cbreak mode, no echo; restored after
        async for key in keys:              # "a", "enter", "esc", "tab", "up", "down", "backspace"
            ...

Ctrl-C still interrupts (cbreak keeps the terminal's signals).  Escape sequences the
terminal sends for special keys become one name each; bytes that are not a key eslkit
knows are dropped, so nothing typed can turn into terminal control output.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from typing import AsyncIterator, Iterator, Optional

__all__ = ["keyboard", "Keys", "decode"]

_SEQUENCES = {"\x1b[A": "up", "\x1b[B": "down", "\x1b[C": "right", "\x1b[D": "left", "\x1bOA": "up",
              "\x1bOB": "down", "\x1b[Z": "backtab",
              # paging, for watch's table (xterm, tmux, screen and the Linux console)
              "\x1b[5~": "pageup", "\x1b[6~": "pagedown", "\x1b[H": "home", "\x1bOH": "home", "\x1b[1~": "home",
              "\x1b[7~": "home", "\x1b[F": "end", "\x1bOF": "end", "\x1b[4~": "end", "\x1b[8~": "end"}
_SINGLE = {"\r": "enter", "\n": "enter", "\t": "tab", "\x7f": "backspace", "\x08": "backspace", "\x1b": "esc"}


def decode(data: str) -> list[str]:
    """Key names from what the terminal sent (several keys may come in one read)."""
    keys = []
    i = 0
    while i < len(data):
        if data[i] == "\x1b" and i + 1 < len(data):
            for seq, name in _SEQUENCES.items():
                if data.startswith(seq, i):
                    keys.append(name)
                    i += len(seq)
                    break
            else:
                # an unknown sequence: skip ESC and what belongs to it (CSI … final byte)
                j = i + 1
                if j < len(data) and data[j] in "[O":
                    j += 1
                    while j < len(data) and not ("@" <= data[j] <= "~"):
                        j += 1
                    j += 1
                    i = j
                else:
                    keys.append("esc")
                    i += 1
            continue
        char = data[i]
        if char in _SINGLE:
            keys.append(_SINGLE[char])
        elif char.isprintable():
            keys.append(char)
        i += 1
    return keys


class Keys:
    """An async stream of key names from a file descriptor (a terminal in cbreak mode)."""

    def __init__(self, fd: int):
        self.fd = fd
        self._queue: asyncio.Queue = asyncio.Queue()
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.fd, self._read)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.fd)

    def _read(self) -> None:
        try:
            data = os.read(self.fd, 1024)
        except OSError:
            data = b""
        if not data:
            self.stop()  # the terminal went away: no more keys
            return
        for key in decode(data.decode("utf-8", "replace")):
            self._queue.put_nowait(key)

    def __aiter__(self) -> AsyncIterator[str]:
        return self._keys()

    async def _keys(self) -> AsyncIterator[str]:
        while True:
            yield await self._queue.get()


@contextlib.contextmanager
def keyboard(stream=None) -> Iterator[Keys]:
    """The terminal on ``stream`` (stdin) in cbreak mode without echo while inside."""
    import termios
    import tty

    stream = stream or sys.stdin
    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    keys = Keys(fd)
    try:
        tty.setcbreak(fd, termios.TCSANOW)
        mode = termios.tcgetattr(fd)
        mode[3] &= ~termios.ECHO
        termios.tcsetattr(fd, termios.TCSANOW, mode)
        keys.start()
        yield keys
    finally:
        keys.stop()
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
