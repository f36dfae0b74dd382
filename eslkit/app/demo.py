"""``eslkit demo``: the popup against a simulated switch, no FreeSWITCH needed.

The simulated switch runs in this process on a free port of 127.0.0.1, playing a
morning in a call centre (the ``morning`` mix: a queue call, a busy agent, an abandoned
call, mod_fifo, hold, click-to-dial, a transfer, ... one after another, so that every
outcome shows within the first minute) over and over; the popup connects to it exactly
as it connects to a real switch.  ``--web`` shows agent 1001's page in the browser, served
by the same `eslkit.app.serve` as ``eslkit serve``.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import webbrowser
from typing import AsyncIterator, Callable, Optional

from rich.console import Console
from rich.markup import escape

from eslkit.app.runtime import run_main
from eslkit.app.popup import PopupEngine, PopupFormat, show
from eslkit.app.popup_control import open_actor, phone_keys
from eslkit.calls import POPUP_EVENTS
from eslkit.config import ConnectionSettings
from eslkit.sim import SimServer
from eslkit.sources.esl import EslSource
from eslkit.views.theme import THEME

DEMO_EXTS = ("1001", "1002")
DEFAULT_SCENARIO = "morning"


@contextlib.asynccontextmanager
async def simulated_switch(scenario: str, speed: Optional[float]) -> AsyncIterator[tuple[SimServer, EslSource]]:
    """(server, source): a `SimServer` on a free port of 127.0.0.1 playing ``scenario`` again
    and again, and an `EslSource` for the popup's events on it, open.  Both are closed at
    the end."""
    # A fresh password per run: the demo's switch listens on localhost only,
    # and nothing else should find it open.
    password = secrets.token_urlsafe(12)
    server = SimServer("127.0.0.1", 0, password, scenario=None if scenario == "idle" else scenario, loop=True,
                       speed=speed)
    await server.start()
    try:
        settings = ConnectionSettings(host="127.0.0.1", port=server.port, password=password, timeout=5.0)
        source = EslSource(settings, names=POPUP_EVENTS, reconnect=False)
        await source.open()
        try:
            yield server, source
        finally:
            await source.close()
    finally:
        await server.close()


async def run_demo(fmt: PopupFormat, speed: Optional[float], scenario: str = DEFAULT_SCENARIO,
                   control: bool = False) -> None:
    async with simulated_switch(scenario, speed) as (server, source):
        Console(stderr=True, highlight=False, soft_wrap=True, theme=THEME).print(
            f"[esl.heading]eslkit demo[/]: a simulated switch on 127.0.0.1:{server.port} plays "
            f"'{escape(scenario)}' calls for 1001 and 1002, again and again. [esl.label]Ctrl-C stops.[/]"
        )
        # with control, the simulated switch obeys the keys as a real one would (eslkit.sim.obey)
        await show(PopupEngine(source, DEMO_EXTS), fmt=fmt, keys=phone_keys(DEMO_EXTS) if control else None)


async def run_demo_web(scenario: str = DEFAULT_SCENARIO, speed: Optional[float] = None, control: bool = False,
                       opener: Callable[[str], object] = webbrowser.open) -> None:
    """The simulated switch and serve in this process; the browser opens agent 1001's page,
    logged in with a token made for this run only (it travels in the URL's fragment, which
    the browser never sends anywhere); with ``control``, its buttons act on the calls."""
    from eslkit.app.serve import DEFAULT_LISTEN, ServeRun
    from eslkit.web.users import User, Users, hash_token, new_token

    token = new_token()
    users = Users([User("demo", "agent", DEMO_EXTS, hash_token(token))])
    listen = DEFAULT_LISTEN if _free(*DEFAULT_LISTEN) else (DEFAULT_LISTEN[0], 0)
    ext = DEMO_EXTS[0]

    def announce(run: ServeRun) -> None:
        page = f"{run.url}agent/{ext}"
        link = f"{run.url}login?next=/agent/{ext}#token={token}"
        run.err.print(f"[esl.heading]eslkit demo --web[/]: a simulated switch plays '{escape(scenario)}' calls for "
                      f"{', '.join(DEMO_EXTS)}; agent {ext}'s page is [bold]{page}[/]. [esl.label]Ctrl-C stops.[/]")
        run.err.print("  opening it in your browser; elsewhere, open this link (it logs you in for this run only):")
        run.err.out(f"  {link}", highlight=False)
        threading.Thread(target=opener, args=(link,), daemon=True).start()

    async with simulated_switch(scenario, speed) as (_, source):
        engine = PopupEngine(source, DEMO_EXTS)
        actor = await open_actor(engine, DEMO_EXTS) if control else None
        await ServeRun(engine, users, listen=listen, announce=announce, control=actor).run()


def _free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def run(fmt: PopupFormat, speed: Optional[float], scenario: str = DEFAULT_SCENARIO, *, control: bool = False,
        web: bool = False) -> None:
    # Ends as `eslkit popup` does: Ctrl-C is no error, `| head` ends quietly.
    run_main(lambda: run_demo_web(scenario, speed, control) if web else run_demo(fmt, speed, scenario, control))
