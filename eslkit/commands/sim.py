"""`eslkit sim`: run the simulated switch."""

# No `from __future__ import annotations` here: typer on Python 3.9 would
# then ignore the Annotated options (their aliases such as -f vanish).

import asyncio
import errno
import ipaddress
import os
from typing import Annotated, List, Optional

import typer
from rich.console import Console

from eslkit.app.runtime import stop_on_signals
from eslkit.commands.options import SpeedOpt, parse_speed
from eslkit.errors import ListenError
from eslkit.sim.scenarios import MIXES, SCENARIOS


def _cidrs(values: List[str]) -> List[str]:
    out = []
    for value in values:
        for item in filter(None, (v.strip() for v in value.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise typer.BadParameter(f"{item!r} is not an address or CIDR such as 127.0.0.1/32.",
                                         param_hint="--allow") from None
            out.append(item)
    return out


def sim(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free port).")] = 8021,
    password: Annotated[
        Optional[str],
        typer.Option("--password", show_default=False,
                     help="Password clients must send (default: ESL_PASSWORD, else ClueCon). "
                          "Prefer ESL_PASSWORD: options are visible in the process list."),
    ] = None,
    scenario: Annotated[
        str,
        typer.Option("--scenario", metavar="NAME|FILE",
                     help="A call flow (below), a mix ("
                          + ", ".join(MIXES) + "), load[:calls=N,cps=X,concurrent=N,agents=N,template=A+B], "
                          "a scenario file, or idle (no calls but those clients place: eslkit phone dial)."),
    ] = "queue",
    loop: Annotated[bool, typer.Option("--loop", help="Play the scenario again and again.")] = False,
    replay: Annotated[
        Optional[str],
        typer.Option("--replay", metavar="FILE",
                     help="Play a raw transcript (.raw) or an eslkit recording (JSON lines) to each client instead."),
    ] = None,
    speed: SpeedOpt = "1",
    allow: Annotated[
        Optional[List[str]],
        typer.Option("--allow", metavar="CIDR", help="Only these addresses may connect (repeatable); "
                     "others get text/rude-rejection."),
    ] = None,
) -> None:
    """Run a simulated FreeSWITCH event socket that plays call scenarios.

    The scenario starts when the first client subscribes to events.

    Example: [bold]eslkit sim --scenario fifo --loop[/], then
    [bold]eslkit popup --ext 1001,1002[/] in another terminal.

    Scenarios (real FreeSWITCH 1.10.12 calls; * built from one):
    """
    from eslkit.sim import SimServer

    secret = password if password is not None else os.environ.get("ESL_PASSWORD") or "ClueCon"
    if not secret:
        raise typer.BadParameter("the simulator always requires a password; give a non-empty one.",
                                 param_hint="--password")
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    server = SimServer(
        host, port, secret,
        scenario=None if replay or scenario == "idle" else scenario,
        loop=loop,
        replay=replay,
        speed=parse_speed(speed),
        allow=_cidrs(allow or []),
    )

    async def run() -> None:
        try:
            await server.start()
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ListenError(f"Cannot listen on {host}:{port}: {reason}.", _listen_fix(exc.errno, port)) from exc
        what = f"replaying {replay}" if replay else f"scenario {scenario}" + (" (looping)" if loop else "")
        if scenario == "idle" and not replay:
            what = "no calls but those its clients place"
        console.out(f"eslkit sim: listening on {server.host}:{server.port}, {what}. Ctrl-C stops.",
                    highlight=False)
        if server.replay is not None and server.replay.damage:
            damage = server.replay.damage.error()
            console.out(f"eslkit sim: warning: {damage} {damage.fix}", highlight=False)
        # Ctrl-C and SIGTERM (systemd, docker stop, kill) alike shut down as FreeSWITCH
        # does: the SHUTDOWN event, then the disconnect notice to every client.
        with stop_on_signals(lambda: None) as stopped:
            serving = asyncio.ensure_future(server.serve_forever())
            waiting = asyncio.ensure_future(stopped.wait())
            try:
                await asyncio.wait([serving, waiting], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (serving, waiting):
                    task.cancel()
                await asyncio.gather(serving, waiting, return_exceptions=True)
                await server.close()
        console.out("eslkit sim: stopped.", highlight=False)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:  # a second Ctrl-C while shutting down
        console.out("eslkit sim: stopped.", highlight=False)


def _listen_fix(errno_: Optional[int], port: int) -> str:
    if errno_ == errno.EADDRINUSE:
        return (f"Another switch or simulator already listens on port {port}: stop it, or choose another "
                "--port (--port 0 takes any free one).")
    if errno_ == errno.EACCES:
        return "Ports below 1024 need root: choose --port 1024 or above (FreeSWITCH's is 8021)."
    return "Give --host an address of this machine (127.0.0.1, 0.0.0.0 for every one), or another --port."


# The scenarios, one per line, after the docstring's last line (typer shows it as help).
sim.__doc__ = (sim.__doc__ or "").rstrip() + "\n" + "\n".join(
    f"    [bold]{name:<20}[/] {summary}" for name, summary in
    (*SCENARIOS.items(), ("morning", "a mix: a morning in a call centre (eslkit demo)"),
     ("idle", "no calls: only what eslkit phone (originate, …) asks for"))) + "\n"
