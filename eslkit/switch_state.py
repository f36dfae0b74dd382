"""What a switch says is going on right now: the answers of its list commands, parsed.

On connect and after a reconnect the run engines ask (`eslkit.app.runtime`): the popup
and the relay only ``show channels as json`` (which calls are up), the statistics also
mod_callcenter's ``callcenter_config agent list``, ``… tier list``, ``… queue list
members`` (pipe tables with a header line, then ``+OK``) and mod_fifo's ``fifo list``
(XML): who waits in which queue and what every agent does.  `ask_switch` asks over a
live connection; `CallTracker.resync` and `CallCentreStats.resync` take the answers.
A module that is not loaded answers ``-ERR … Command not found!``: its part is then
None (unknown), not empty.
"""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Iterable, Optional

from eslkit._headers import url_decode
from eslkit.calls import live_channels
from eslkit.errors import EslkitError

__all__ = ["SwitchState", "parse_pipe_table", "parse_fifo_list", "ask_switch", "COMMANDS", "CHANNELS", "EVERYTHING"]

COMMANDS = {
    "channels": "show channels as json",
    "agents": "callcenter_config agent list",
    "tiers": "callcenter_config tier list",
    "members": "callcenter_config queue list members",
    "fifos": "fifo list",
}
CHANNELS = ("channels",)  # what the call tracker needs
EVERYTHING = tuple(COMMANDS)  # what the statistics need


@dataclass
class SwitchState:
    """The answers, parsed; None where the switch could not say (module not loaded, timeout)."""

    channels: Optional[list] = None
    agents: Optional[list] = None
    tiers: Optional[list] = None
    members: Optional[list] = None
    fifos: Optional[list] = None


def parse_pipe_table(body: Optional[str]) -> list[dict]:
    """mod_callcenter's ``name|status|…`` table → one dict per row.  ValueError if the
    answer is an error (``-ERR …``) or not such a table."""
    text = (body or "").replace("\r\n", "\n")
    lines = [line for line in text.split("\n") if line != ""]
    if not lines or lines[-1] != "+OK" or any(line.startswith("-") for line in lines):
        raise ValueError("not a callcenter_config table")
    lines = lines[:-1]
    if not lines:
        return []
    columns = lines[0].split("|")
    n = len(columns)
    # A value may hold "|" (mod_callcenter does not escape): it is the caller's name, or the
    # agent's contact; the columns on either side of it are still where they should be.
    loose = next((columns.index(c) for c in ("cid_name", "contact") if c in columns), n - 1)
    rows = []
    for line in lines[1:]:
        cells = line.split("|")
        if len(cells) > n:
            after = n - loose - 1
            cells = cells[:loose] + ["|".join(cells[loose:len(cells) - after])] + cells[len(cells) - after:]
        elif len(cells) < n:
            raise ValueError("not a callcenter_config table")
        rows.append({c: ("" if v == "(null)" else v) for c, v in zip(columns, cells)})
    return rows


def parse_fifo_list(body: Optional[str]) -> list[dict]:
    """mod_fifo's ``<fifo_report>`` → ``[{"name", "callers": [...], "consumers": [...]}]``,
    each caller ``{"uuid", "status", "number", "name", "since"}`` (since: epoch, from
    mod_fifo's local ``timestamp``).  ValueError if it is not that XML."""
    text = (body or "").strip()
    if not text.startswith("<fifo_report"):
        raise ValueError("not a fifo list")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"not a fifo list ({exc})") from None
    out = []
    for fifo in root.findall("fifo"):
        out.append({
            "name": fifo.get("name") or "",
            "callers": [_fifo_party(c) for c in fifo.findall("callers/caller")],
            "consumers": [_fifo_party(c) for c in fifo.findall("consumers/consumer")],
        })
    return out


def _fifo_party(el: ET.Element) -> dict:
    since = None
    stamp = el.get("timestamp")
    if stamp:
        try:
            since = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            pass
    return {"uuid": el.get("uuid") or "", "status": el.get("status") or "",
            "number": url_decode(el.get("caller_id_number") or "") or None,
            "name": url_decode(el.get("caller_id_name") or "") or None, "since": since}


_PARSERS = {
    "channels": live_channels,
    "agents": parse_pipe_table,
    "tiers": parse_pipe_table,
    "members": parse_pipe_table,
    "fifos": parse_fifo_list,
}


async def ask_switch(switch, parts: Iterable[str] = EVERYTHING, timeout: float = 10.0) -> SwitchState:
    """Ask a live switch (anything with ``await api(command, timeout=…)``) what is up now;
    `parts` names the answers wanted (keys of `COMMANDS`), the others stay None."""
    state = SwitchState()
    for part in parts:
        try:
            setattr(state, part, _PARSERS[part](await switch.api(COMMANDS[part], timeout=timeout)))
        except (EslkitError, ValueError, asyncio.TimeoutError):
            pass  # that part stays unknown: the events will tell
    return state
