"""``eslkit demo``: the popup against a simulated switch, no FreeSWITCH needed.

The simulated switch runs in this process on a free port of 127.0.0.1, playing a
morning in a call centre (the ``morning`` mix: a queue call, a busy agent, an abandoned
call, mod_fifo, hold, click-to-dial, a transfer, ... one after another, so that every
outcome shows within the first minute) over and over; the popup connects to it exactly
as it connects to a real switch.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Optional

from rich.console import Console
from rich.markup import escape

from eslkit.app.popup import PopupEngine, PopupFormat, show
from eslkit.calls import POPUP_EVENTS
from eslkit.config import ConnectionSettings
from eslkit.sim import SimServer
from eslkit.sources.esl import EslSource
from eslkit.views.theme import THEME

DEMO_EXTS = ("1001", "1002")
DEFAULT_SCENARIO = "morning"


async def run_demo(fmt: PopupFormat, speed: Optional[float], scenario: str = DEFAULT_SCENARIO) -> None:
    # A fresh password per run: the demo's switch listens on localhost only,
    # and nothing else should find it open.
    password = secrets.token_urlsafe(12)
    server = SimServer("127.0.0.1", 0, password, scenario=scenario, loop=True, speed=speed)
    await server.start()
    try:
        Console(stderr=True, highlight=False, theme=THEME).print(
            f"[esl.heading]eslkit demo[/]: a simulated switch on 127.0.0.1:{server.port} plays "
            f"'{escape(scenario)}' calls for 1001 and 1002, again and again. [esl.label]Ctrl-C stops.[/]"
        )
        settings = ConnectionSettings(host="127.0.0.1", port=server.port, password=password, timeout=5.0)
        source = EslSource(settings, names=POPUP_EVENTS, reconnect=False)
        await source.open()
        try:
            await show(PopupEngine(source, DEMO_EXTS), fmt=fmt)
        finally:
            await source.close()
    finally:
        await server.close()


def run(fmt: PopupFormat, speed: Optional[float], scenario: str = DEFAULT_SCENARIO) -> None:
    try:
        asyncio.run(run_demo(fmt, speed, scenario))
    except KeyboardInterrupt:
        pass
