"""The serve run engine: a popup engine's changes → the web app's board, and the web server,
in ONE asyncio loop.

    engine = PopupEngine(source, users.exts)
    await source.open()
    actor = await open_actor(engine, users.exts)     # --control only: the page's buttons
    run = ServeRun(engine, users, listen=("127.0.0.1", 8080), open_url=None, control=actor)
    await run.run()          # until the source ends or Ctrl-C; `run.url` says where it listens

The popup engine does the tracking (resync after a reconnect, the switch's clock, expiry
of legs whose end was lost); `ServeRun` listens to it and hands every change to the
`CallBoard`, which the pages and streams read.  With ``control`` (an
`eslkit.control.Controller`, or a requester through ``relay --control``) the agents'
buttons act on their calls through it, with all its checks.
A `WallboardEngine` takes every item the popup engine takes (`PopupEngine.tap`): the
supervisors' ``/wallboard`` and ``/metrics``.
"""

from __future__ import annotations

from typing import Callable, Optional, Union

from rich.console import Console

from eslkit.app.popup import PopupEngine
from eslkit.app.runtime import stop_on_signals
from eslkit.app.wallboard import WallboardEngine
from eslkit.calls import LegView
from eslkit.errors import ListenError
from eslkit.safe_text import visible
from eslkit.stats import CallCentreStats
from eslkit.status import ConnectionStatus
from eslkit.views.theme import THEME

__all__ = ["ServeRun", "DEFAULT_LISTEN", "parse_listen"]

DEFAULT_LISTEN = ("127.0.0.1", 8080)


def parse_listen(value: Optional[str]) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT``, ``PORT`` or ``[::1]:PORT`` → (host, port)."""
    if not value:
        return DEFAULT_LISTEN
    text = value.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or DEFAULT_LISTEN[0]
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ListenError(f"--listen {value!r} is not HOST:PORT.", "e.g. --listen 127.0.0.1:8080 (port 0: any free one).")
    return host, int(port)


class ServeRun:
    """A popup engine whose front is the web app (no panel, no JSON lines)."""

    def __init__(self, engine: PopupEngine, users, *, listen: tuple[str, int] = DEFAULT_LISTEN,
                 open_url: Optional[str] = None, control=None, err: Optional[Console] = None,
                 signer=None, announce: Optional[Callable[["ServeRun"], None]] = None,
                 stats: Optional[CallCentreStats] = None, warn_wait: float = 60.0, target: float = 0.8):
        from eslkit.actions import UrlAction
        from eslkit.web import wallboard
        from eslkit.web.app import WebApp
        from eslkit.web.board import CallBoard
        from eslkit.web.security import Signer, session_key

        self.engine = engine
        self.source = engine.source
        self.users = users
        self.listen = listen
        self.err = err or Console(stderr=True, highlight=False, soft_wrap=True, theme=THEME)
        crm = UrlAction(open_url).url if open_url else None
        self.board = CallBoard(users.exts, now=engine.now, crm_url=crm)
        self.web = WebApp(self.board, users, signer=signer or Signer(session_key()), control=control)
        self.control = control
        self.url: Optional[str] = None
        self._announce = announce or ServeRun._started
        self._runner = None
        engine.listen(self._changed)
        # The supervisors' wallboard and /metrics: the statistics follow the same stream.
        self.wallboard = WallboardEngine(engine.source, stats or CallCentreStats(), warn_wait=warn_wait, target=target)
        engine.tap(self.wallboard.take)
        wallboard.mount(self.web, self.wallboard)

    def _changed(self, change: Union[LegView, ConnectionStatus]) -> None:
        if isinstance(change, ConnectionStatus):
            self._link(change)
        else:
            self.board.publish(change)

    def _link(self, status: ConnectionStatus) -> None:
        self.board.link(self.engine.connected, self.engine.connection)
        if not self.source.live:
            return
        if status.state != "connected":
            self.err.print("[esl.warning]eslkit: link lost:[/] ", end="")
            self.err.out(visible(status.reason, 200) + " — reconnecting", highlight=False)
        elif status.gap is not None:
            self.err.out(f"eslkit: reconnected after a {status.gap:.1f}s gap", highlight=False)

    async def run(self) -> None:
        try:
            await self._serve()
        finally:
            if self.control is not None:
                await self.control.close()  # the audit log, the broker link

    async def _serve(self) -> None:
        host, port = self.listen
        try:
            self._runner = await self.web.start(host, port)
        except OSError as exc:
            raise ListenError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.",
                              "Choose a free port with --listen HOST:PORT (another serve may hold it).") from None
        try:
            bound = self._runner.addresses[0]
            shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
            self.url = f"http://{shown}:{bound[1]}/"
            self._announce(self)
            with stop_on_signals(self.engine.stop):
                await self.engine.run()
        finally:
            self.wallboard.close()
            await self.web.stop(self._runner)

    def stop(self) -> None:
        self.engine.stop()

    def _started(self) -> None:
        roles = [user.role for user in self.users.by_name.values()]
        who = f"{roles.count('agent')} agent(s), {roles.count('supervisor')} supervisor(s)"
        self.err.print(f"[esl.heading]eslkit serve[/]: agent pages on [bold]{self.url}[/] for {who}; "
                       "events from ", end="")
        self.err.out(visible(self.source.description, 200) + ".", highlight=False, end=" ")
        self.err.print("[esl.label]Ctrl-C stops.[/]")
        if self.control is not None:
            self.err.print("[esl.label]With --control: agents' buttons hang up, hold, transfer and dial.[/]")
        if roles.count("supervisor"):
            self.err.print(f"  supervisors: the wallboard on [bold]{self.url}wallboard[/], Prometheus metrics on "
                           f"[bold]{self.url}metrics[/] (a supervisor's API token).")
        if self.listen[0] not in ("127.0.0.1", "::1", "localhost"):
            self.err.print("[esl.warning]eslkit serve: listening beyond this machine: put it behind a TLS "
                           "reverse proxy (docs/serve.md), or passwords cross the network in clear.[/]")
