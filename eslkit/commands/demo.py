"""``eslkit demo``: the popup against a simulated switch, no FreeSWITCH needed.

It starts the simulated switch in this process on a free port of 127.0.0.1,
playing a morning in a call centre (the ``morning`` mix: a queue call, a busy
agent, an abandoned call, mod_fifo, hold, click-to-dial, a transfer, ... one
after another, so that every outcome shows within the first minute) over and
over, connects to it exactly as `eslkit popup` connects to a real switch, and
shows the popup for 1001 and 1002 until Ctrl-C.
"""

# No `from __future__ import annotations` here: typer reads these signatures at run time,
# and on Python 3.9 it cannot see the Annotated options inside string annotations.

import asyncio
import secrets
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from eslkit.calls import POPUP_EVENTS, CallTracker
from eslkit.commands.popup import PopupFormat, PopupRun, default_format
from eslkit.config import ConnectionSettings
from eslkit.views.theme import THEME

DEMO_EXTS = ("1001", "1002")
DEFAULT_SCENARIO = "morning"


async def run_demo(fmt: PopupFormat, speed: Optional[float], scenario: str) -> None:
    from eslkit.sim import SimServer
    from eslkit.sources.esl import EslSource

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
        run = PopupRun(source, CallTracker(DEMO_EXTS), DEMO_EXTS, fmt=fmt)
        await source.open()
        try:
            await run.run()
        finally:
            await source.close()
    finally:
        await server.close()


def demo(
    format: Annotated[Optional[PopupFormat], typer.Option(
        "--format", case_sensitive=False, show_default=False,
        help="panel (the screen popup; default on a terminal) or json (one object per state change; "
             "default when piped).")] = None,
    speed: Annotated[float, typer.Option(
        "--speed", min=0.01, help="Play the calls this many times faster than real time.")] = 1.0,
    scenario: Annotated[str, typer.Option(
        "--scenario", help="Which simulated call to play (see eslkit sim --help).")] = DEFAULT_SCENARIO,
) -> None:
    """See screen popups right now: a simulated switch plays a morning in a call centre for 1001 and 1002.

    Queue calls, a busy agent, an abandoned call, mod_fifo, hold, click-to-dial, a transfer,
    call waiting...: every outcome within the first minute, over and over. No FreeSWITCH
    needed; Ctrl-C to stop.

    [bold]eslkit demo[/]
    [bold]eslkit demo --format json --speed 4[/]
    [bold]eslkit demo --scenario hold[/]      (one flow, again and again; see eslkit sim --help)
    """
    try:
        asyncio.run(run_demo(format or default_format(), speed, scenario))
    except KeyboardInterrupt:
        pass
