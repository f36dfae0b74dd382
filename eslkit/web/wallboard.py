"""The supervisors' wallboard in the browser, and ``/metrics`` for Prometheus.

    mount(site, board)        # site: the `WebApp`; board: a `Figures` (the serve's wallboard engine)

Routes, behind the login of every page, for supervisors only (an agent gets 403):

    GET /wallboard            the page: queues on top, agents below, all calls at the foot;
                              it reads its JSON twin every 2 s (``?queue=NAME``, repeatable, narrows)
    GET /wallboard.json       the figures of ``eslkit wallboard --format json``, with the link,
                              the thresholds and what the figures cannot see
    GET /metrics              the same engine in Prometheus' text format (docs/stats.md): a
                              scraper sends a supervisor's API token (``Authorization: Bearer``)
"""

from __future__ import annotations

from typing import Iterable, Optional, Protocol

from aiohttp import web

from eslkit.metrics import CONTENT_TYPE
from eslkit.stats import StatsSnapshot
from eslkit.web.app import WebApp
from eslkit.web.board import encode
from eslkit.web.users import User

__all__ = ["Figures", "figures", "mount", "REFRESH_SECONDS"]

REFRESH_SECONDS = 2  # how often the page reads its JSON twin


class Figures(Protocol):
    """What the wallboard pages read (`eslkit.app.wallboard.WallboardEngine` is one)."""

    connected: bool
    status: str  # "connected to 10.0.0.5:8021", "reconnecting — …"
    warn_wait: float
    target: float

    def snapshot(self, now: Optional[float] = None) -> StatsSnapshot: ...
    def metrics(self) -> bytes: ...
    def notes(self) -> list[str]: ...


def figures(board: Figures, queues: Iterable[str] = ()) -> dict:
    """The JSON twin: the snapshot's fields (as ``wallboard --format json`` writes them),
    then ``link``, ``warn_wait``, ``target`` (0–1) and ``notes``."""
    data = board.snapshot().narrowed(queues).to_dict()
    data.update(link={"connected": board.connected, "text": board.status}, warn_wait=board.warn_wait,
                target=board.target, notes=board.notes())
    return data


def mount(site: WebApp, board: Figures) -> None:
    """Add the wallboard page, its JSON twin and /metrics to ``site`` (before it starts)."""

    async def page(request: web.Request, user: User) -> web.StreamResponse:
        return site.render(request, "wallboard.html", user=user, refresh=REFRESH_SECONDS)

    async def twin(request: web.Request, user: User) -> web.StreamResponse:
        return web.json_response(figures(board, request.query.getall("queue", [])), dumps=encode)  # as the API's

    async def metrics(request: web.Request, user: User) -> web.StreamResponse:
        return web.Response(body=board.metrics(), headers={"Content-Type": CONTENT_TYPE})

    site.page("/wallboard", page, supervisor=True)
    site.api("/wallboard.json", twin, supervisor=True)
    site.api("/metrics", metrics, supervisor=True)
