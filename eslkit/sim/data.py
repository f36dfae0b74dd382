"""The simulator's built-in data files: ``scenarios/NAME.json.gz``, made from the captures
by `eslkit.sim.derive` (call flows, static api answers) and `eslkit.sim.derive_moves`
(what the switch does for each command).  Gzipped: the JSON is ~8 MB, the package ~0.5 MB."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

DATA = Path(__file__).parent / "scenarios"


def data_path(name: str) -> Path:
    return DATA / f"{name}.json.gz"


def data_text(name: str) -> str:
    """The JSON text of the built-in file `name` (no extension)."""
    return gzip.decompress(data_path(name).read_bytes()).decode("utf-8")


def read_data(name: str) -> dict:
    return json.loads(data_text(name))


def write_data(name: str, text: str) -> None:
    """Write it as the derive modules make it: the same text always gives the same bytes."""
    data_path(name).write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
