"""``eslkit demo``: options → `eslkit.app.demo`."""

# No `from __future__ import annotations` here: typer reads these signatures at run time,
# and on Python 3.9 it cannot see the Annotated options inside string annotations.

from typing import Annotated, Optional

import typer

from eslkit.app.demo import DEFAULT_SCENARIO, run
from eslkit.app.popup import PopupFormat, default_format
from eslkit.commands.options import SpeedOpt, parse_speed


def demo(
    format: Annotated[Optional[PopupFormat], typer.Option(
        "--format", case_sensitive=False, show_default=False,
        help="panel (the screen popup; default on a terminal) or json (one object per state change; "
             "default when piped).")] = None,
    speed: SpeedOpt = "1",
    scenario: Annotated[str, typer.Option(
        "--scenario", help="Which simulated call to play (see eslkit sim --help).")] = DEFAULT_SCENARIO,
    web: Annotated[bool, typer.Option(
        "--web", help="Show agent 1001's popup page in your browser instead (what eslkit serve gives agents).")] = False,
    control: Annotated[bool, typer.Option(
        "--control", help="Phone keys in the panel (with --web: buttons on the page): answer, hold, hang up, "
                          "transfer, dial (docs/phone.md); --scenario idle to place every call yourself.")] = False,
) -> None:
    """See screen popups right now: a simulated switch plays a morning in a call centre for 1001 and 1002.

    Queue calls, a busy agent, an abandoned call, mod_fifo, hold, click-to-dial,
    a transfer, call waiting...: every outcome within the first minute, over and
    over. No FreeSWITCH needed; Ctrl-C to stop.

    [bold]eslkit demo[/]
    [bold]eslkit demo --format json --speed 4[/]
    [bold]eslkit demo --scenario hold[/]      (one flow again and again: eslkit sim --help)
    [bold]eslkit demo --control[/]            (phone keys: hold, transfer, hang up, dial)
    [bold]eslkit demo --web[/]                (1001's page in the browser, as in serve)
    [bold]eslkit demo --web --control[/]      (with the page's buttons)
    """
    fmt = format or default_format()
    if control and not web and fmt is not PopupFormat.panel:
        raise typer.BadParameter("the phone keys need the panel on a terminal.", param_hint="--control")
    run(fmt, parse_speed(speed), scenario, control=control, web=web)
