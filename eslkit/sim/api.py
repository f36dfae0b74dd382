"""The API commands the simulated switch answers (``api`` and ``bgapi``), with FreeSWITCH 1.10's output shapes.

status, version, uptime, hostname, echo, show channels [as json], show calls
[as json], show channels count, log <level> <text>, sofia_contact, the call-control commands
(originate, uuid_kill, uuid_hold, uuid_transfer, uuid_phone_event: `eslkit.sim.obey`), mod_callcenter's
``callcenter_config … list`` and mod_fifo's ``fifo list|count`` (eslkit.sim.queues), and — verbatim
from the capture of a real switch — show modules, show api as json, help.
Anything else gets FreeSWITCH's own error text.
"""

from __future__ import annotations

import json
import time
from typing import Optional

from eslkit.sim import obey
from eslkit.sim.data import read_data
from eslkit.sim.switch import Switch

VERSION = "1.10.12-release"
# switch_log_str2level(): names, or a number.
LOG_LEVELS = {"CONSOLE": 0, "ALERT": 1, "CRIT": 2, "ERR": 3, "WARNING": 4, "NOTICE": 5, "INFO": 6, "DEBUG": 7}
SHOW_USAGE = (
    "-USAGE: codec|endpoint|application|api|dialplan|file|timer|calls [count]|channels [count|like "
    "<match string>]|calls|detailed_calls|bridged_calls|detailed_bridged_calls|aliases|complete|chat|"
    "management|modules|nat_map|say|interfaces|interface_types|tasks|limits|status\n"
)
_static: Optional[dict] = None


def _static_api() -> dict:
    global _static
    if _static is None:
        _static = read_data("api")
    return _static


def str2level(text: str) -> Optional[int]:
    if text.isdigit():
        return min(int(text), 63)
    return LOG_LEVELS.get(text.upper())


def run_api(server: Switch, name: str, arg: Optional[str]) -> str:
    """The body of the api/response (or BACKGROUND_JOB) for ``api <name> <arg>``."""
    cmd = name.lower()
    handler = COMMANDS.get(cmd)
    if handler is None:
        return f"-ERR {name} Command not found!\n"
    out = handler(server, (arg or "").strip())
    return out if out else "-ERR no reply\n"


def status(server: Switch, arg: str) -> str:
    up = time.time() - server.started_at
    us = int(up * 1_000_000)
    years, rest = divmod(us, 365 * 86_400 * 1_000_000)
    days, rest = divmod(rest, 86_400 * 1_000_000)
    hours, rest = divmod(rest, 3_600 * 1_000_000)
    minutes, rest = divmod(rest, 60 * 1_000_000)
    seconds, rest = divmod(rest, 1_000_000)
    ms, micro = divmod(rest, 1000)
    ch = server.channels
    return (
        f"UP {years} years, {days} days, {hours} hours, {minutes} minutes, {seconds} seconds, "
        f"{ms} milliseconds, {micro} microseconds\n"
        f"FreeSWITCH (Version {VERSION}  64bit) is ready\n"
        f"{ch.created_total} session(s) since startup\n"
        f"{len(ch)} session(s) - peak {ch.peak}, last 5min {ch.peak} \n"
        f"{ch.sessions_per_second} session(s) per Sec out of max 30, peak {ch.peak_sps}, last 5min {ch.peak_sps} \n"
        "1000 session(s) max\n"
        "min idle cpu 0.00/99.00\n"
        "Current Stack Size/Max 240K/8192K\n"
    )


def version(server: Switch, arg: str) -> str:
    if arg == "short":
        return VERSION.split("-")[0] + "\n"
    return f"FreeSWITCH Version {VERSION}~64bit ( 64bit)\n"


UPTIME_SCALE = {"us": 1, "microseconds": 1, "ms": 1000, "milliseconds": 1000, "s": 1_000_000,
                "seconds": 1_000_000, "m": 60_000_000, "minutes": 60_000_000, "h": 3_600_000_000,
                "hours": 3_600_000_000, "d": 86_400_000_000, "days": 86_400_000_000}


def uptime(server: Switch, arg: str) -> str:
    scale = UPTIME_SCALE.get(arg.lower(), 1_000_000)
    return f"{int((time.time() - server.started_at) * 1_000_000) // scale}\n"


def show(server: Switch, arg: str) -> str:
    words = arg.split()
    as_json = len(words) >= 3 and words[-2].lower() == "as" and words[-1].lower() == "json"
    if as_json:
        words = words[:-2]
    what = " ".join(w.lower() for w in words)
    static = _static_api()
    if what == "modules" and not as_json:
        return static["show modules"]
    if what == "api" and as_json:
        return static["show api as json"]
    if what == "channels":
        return _table(server.channels.channel_rows(), as_json)
    if what == "calls":
        return _table(server.channels.call_rows(), as_json)
    if what in ("channels count", "calls count"):
        n = len(server.channels) if what.startswith("channels") else len(server.channels.call_rows())
        return json.dumps({"row_count": n}) + "\n" if as_json else f"\n{n} total.\n"
    return SHOW_USAGE


def _table(rows: list, as_json: bool) -> str:
    """The two shapes of FreeSWITCH's `show`: CSV with a total, or row_count + rows."""
    if as_json:
        if not rows:
            return '{"row_count": 0}\n'
        return json.dumps({"row_count": len(rows), "rows": rows}, ensure_ascii=False, separators=(",", ":"))
    if not rows:
        return "\n0 total.\n"
    lines = [",".join(rows[0].keys())] + [",".join(r.values()) for r in rows]
    return "\n".join(lines) + f"\n\n{len(rows)} total.\n"


def log(server: Switch, arg: str) -> str:
    level_s, _, text = arg.partition(" ")
    level = str2level(level_s)
    if level is None or not text:
        level, text = 7, arg
    server.log(level, text, "mod_commands.c", "log_function", 7200)
    return "+OK\n"


def sofia_contact(server: Switch, arg: str) -> str:
    """mod_sofia's ``sofia_contact [PROFILE/]USER[@DOMAIN]``: the registered phone's dial
    string, or ``error/user_not_registered`` (mod_sofia.c, sofia_contact_function).  The
    phones are the agents of the captured switch (agents_register_plain: 1001 at
    127.0.0.1:5071, 1002 at :5072) and a load's agents; a replay's are unknown: all."""
    rest = arg.split("/", 1)[1] if "/" in arg else arg
    user = rest.partition("@")[0].partition("/")[0]
    registered = server.registered
    if not user or (registered is not None and user not in registered):
        return "error/user_not_registered"
    port = 5070 + int(user) % 1000 if user.isdigit() else 5060
    return f"sofia/internal/sip:{user}@127.0.0.1:{port};transport=UDP"


COMMANDS = {
    "callcenter_config": lambda server, arg: server.queues.callcenter_config(arg),
    "fifo": lambda server, arg: server.queues.fifo(arg),
    "status": status,
    "version": version,
    "uptime": uptime,
    "show": show,
    # call control (eslkit.sim.obey)
    "originate": obey.originate,
    "uuid_kill": obey.uuid_kill,
    "uuid_hold": obey.uuid_hold,
    "uuid_transfer": obey.uuid_transfer,
    "uuid_phone_event": obey.uuid_phone_event,
    "log": log,
    "sofia_contact": sofia_contact,
    "hostname": lambda server, arg: "vm",
    "echo": lambda server, arg: arg,
    "help": lambda server, arg: _static_api()["help"],
}
