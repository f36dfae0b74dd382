"""Sizes in bytes as an operator writes and reads them: ``256MB``, ``1GB``, ``512kB``, ``4096``.

kB, MB and GB are powers of 1000 (as written on the box); KiB, MiB and GiB powers of 1024
(as a container's memory limit is often given).  Case does not matter: ``256mb`` is 256 MB.
"""

from __future__ import annotations

import re

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)
_DECIMAL = (("GB", 1000**3), ("MB", 1000**2), ("kB", 1000))
_BINARY = (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024))


def parse_size(text: str) -> int:
    """``"256MB"`` → 256000000.  Raises ValueError with one sentence for anything else."""
    match = _SIZE.fullmatch(text)
    unit = match and _UNITS.get(match.group(2).lower())
    if not unit:
        raise ValueError(f"{text!r} is not a size: give bytes or a number with kB, MB or GB (e.g. 256MB).")
    size = int(float(match.group(1)) * unit)
    if size < 1:
        raise ValueError(f"{text!r} is not a size above 0 bytes (e.g. 256MB).")
    return size


def size_text(size: int) -> str:
    """256000000 → ``"256 MB"``, 1500000 → ``"1.5 MB"``, 268435456 (given as 256MiB) → ``"256 MiB"``,
    999 → ``"999 bytes"``; at most three decimals."""
    if size % 1000:  # not a decimal size: perhaps a binary one, as given
        binary = next(((name, unit) for name, unit in _BINARY if size >= unit and size % unit == 0), None)
        if binary:
            return f"{size // binary[1]} {binary[0]}"
    for name, unit in _DECIMAL:
        if size >= unit:
            return f"{size / unit:.3f}".rstrip("0").rstrip(".") + f" {name}"
    return f"{size} bytes"
