"""A live switch as an event source: connect, subscribe, install filters, stream.

    source = EslSource(settings, names=["CHANNEL_ANSWER"], filters=[("Caller-Destination-Number", "1001")])
    await source.open()          # AuthError / AclRejected / ConnectionRefused … raise here
    async for item in source:    # Event, or ConnectionStatus when the link drops or returns
        ...
    await source.close()

Reconnecting (with back-off, re-subscribing and re-filtering) is the client's
job; a wrong password or an ACL rejection is never retried.
"""

from __future__ import annotations

from typing import AsyncIterator, Iterable, Sequence, Union

from eslkit.client import Connection
from eslkit.status import ConnectionStatus
from eslkit.config import ConnectionSettings
from eslkit.event import Event

Item = Union[Event, ConnectionStatus]

WIRE_FORMATS = ("plain", "json", "xml")


class EslSource:
    """Events from a switch's mod_event_socket (a `eslkit.sources.base.Source`)."""

    live = True

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        names: Sequence[str] = ("ALL",),
        filters: Iterable[tuple[str, str]] = (),
        format: str = "plain",
        reconnect: bool = True,
        queue_size: int = 10_000,
    ):
        if format not in WIRE_FORMATS:
            raise ValueError(f"format must be one of {WIRE_FORMATS}")
        self.settings = settings
        self.names = list(names) or ["ALL"]
        self.wanted_filters = list(filters)
        self.format = format
        self.conn = Connection(
            settings.host, settings.port, settings.password,
            timeout=settings.timeout, reconnect=reconnect, queue_size=queue_size,
        )

    @property
    def reconnects(self) -> bool:
        return self.conn.reconnect

    @property
    def switch(self) -> Connection:
        """The connection itself answers ``api`` (resync, later phone control)."""
        return self.conn

    @property
    def description(self) -> str:
        return self.settings.address

    @property
    def received(self) -> int:
        return self.conn.received

    @property
    def dropped(self) -> int:
        return self.conn.dropped

    @property
    def subscriptions(self) -> list[str]:
        return list(self.conn.subscriptions)

    @property
    def filters(self) -> list[tuple[str, str]]:
        return list(self.conn.filters)

    async def open(self) -> None:
        await self.conn.connect()
        try:
            # Filters first: between `event` and `filter` the switch would
            # otherwise send everything, unfiltered.
            for header, value in self.wanted_filters:
                await self.conn.filter(header, value)
            await self.conn.subscribe(self.names, format=self.format)
        except BaseException:
            await self.conn.close()
            raise

    async def __aiter__(self) -> AsyncIterator[Item]:
        yield ConnectionStatus("connected", f"connected to {self.settings.address}")
        async for item in self.conn.events():
            if isinstance(item, (Event, ConnectionStatus)):
                yield item  # log/data frames are no engine's business

    async def close(self) -> None:
        await self.conn.close()
