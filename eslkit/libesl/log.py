"""esl_log: silent until eslSetLogLevel(), then libesl's default logger on stderr.

The lines are the C library's, with the C source file, line and function of the
real 1.10.12 library, e.g. ``[ERROR] esl_oop.cpp:424 getHeader() Trying to ...``.
"""

from __future__ import annotations

import sys

EMERG, ALERT, CRIT, ERROR, WARNING, NOTICE, INFO, DEBUG = range(8)
_NAMES = ("EMERG", "ALERT", "CRIT", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG")

# esl_global_set_default_logger() swaps the null logger for the default one and sets its level.
_enabled = False
_level = DEBUG


def set_default_logger(level: int) -> None:
    global _enabled, _level
    _enabled = True
    _level = level if 0 <= level <= 7 else DEBUG


def enabled(level: int) -> bool:
    """Would a line at ``level`` be written? (Callers skip building costly messages.)"""
    return _enabled and level <= _level


def log(level: int, where: str, func: str, message: str) -> None:
    """``where`` is "file:line" of the C library's esl_log() call."""
    if enabled(level):
        sys.stderr.write(f"[{_NAMES[level]}] {where} {func}() {message}")
        sys.stderr.flush()
