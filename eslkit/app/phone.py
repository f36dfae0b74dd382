"""The run engine of ``eslkit phone``: one action on one extension's call, against a switch.

    result = asyncio.run(act_on_switch(settings, Request("1001", Action.hold)))

It connects, subscribes to what the call tracker reads, learns the calls already up
(``show channels as json``), and hands the request to `eslkit.control.Controller`,
which checks it, sends the api command and waits for the events that prove it.  Through
a broker (``--via``) the relay does all that: see `eslkit.control.requests`.
"""

from __future__ import annotations

import asyncio
from typing import Optional

from eslkit.calls import POPUP_EVENTS, CallTracker, live_channels
from eslkit.client import Connection
from eslkit.config import ConnectionSettings
from eslkit.control import AuditLog, Controller, Policy, Request, Result
from eslkit.errors import ProtocolError
from eslkit.event import Event

__all__ = ["act_on_switch"]


async def act_on_switch(settings: ConnectionSettings, request: Request, *, policy: Optional[Policy] = None,
                        audit: Optional[AuditLog] = None, wait: float = 5.0) -> Result:
    """Carry out ``request`` on the switch; raises ControlError (or the connection's errors)."""
    conn = Connection(settings.host, settings.port, settings.password, timeout=settings.timeout)
    await conn.connect()
    tracker = CallTracker([request.ext])
    control = Controller(conn, tracker.active, policy=policy, audit=audit, wait=wait)
    ingest = None
    try:
        await conn.subscribe(POPUP_EVENTS)

        async def feed() -> None:
            async for item in conn.events():
                if isinstance(item, Event):
                    for leg in tracker.feed(item):
                        control.observe(leg)

        ingest = asyncio.ensure_future(feed())
        known = tracker.known()
        try:
            rows = live_channels(await conn.api("show channels as json"))
        except ValueError:
            raise ProtocolError(f"The switch at {settings.address} did not answer 'show channels as json' with "
                                f"JSON, so eslkit cannot tell which calls are {request.ext}'s.",
                                "Check that --port points at FreeSWITCH 1.6 or newer.") from None
        for leg in tracker.resync(rows, known=known):
            control.observe(leg)
        return await control.act(request)
    finally:
        await control.close()
        if ingest is not None:
            ingest.cancel()
            await asyncio.gather(ingest, return_exceptions=True)
        await conn.close()
