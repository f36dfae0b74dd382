"""The `Source` protocol: where a run engine's events come from.

    await source.open()           # the user's errors are raised here: AuthError, InputFileError, BrokerError…
    async for item in source:     # an Event, a LegView (a popup state a relay published)
        ...                       # or a ConnectionStatus (the link went down or came back)
    await source.close()

A source yields what its subscription wants, as a switch would send it: a live
switch filters for itself, a file and a broker apply `eslkit.subscription` here.
It says what it is (``description``, ``live``, ``reconnects``), what it asked for
(``subscriptions``, ``filters``), how it is doing (``received``, ``dropped``) and
what it can tell about the switch: ``switch`` is the live connection that answers
``api`` commands (the channels up after a reconnect, later phone control), or
None for a file or a broker.
"""

from __future__ import annotations

from typing import AsyncIterator, Optional, Protocol, Sequence, Union

from eslkit.calls import LegView
from eslkit.event import Event
from eslkit.status import ConnectionStatus

__all__ = ["Item", "Source", "SwitchApi"]

Item = Union[Event, LegView, ConnectionStatus]


class SwitchApi(Protocol):
    """A live switch's ``api`` (`eslkit.client.Connection` is one)."""

    async def api(self, command: str, timeout: Optional[float] = None) -> str: ...


class Source(Protocol):
    @property
    def description(self) -> str:
        """Where the events come from, for people: "127.0.0.1:8021", "replay of calls.jsonl"."""

    @property
    def live(self) -> bool:
        """Events happen now (a switch, a broker); False for a file, which ends."""

    @property
    def reconnects(self) -> bool:
        """The source comes back by itself when its link drops."""

    @property
    def received(self) -> int:
        """Items yielded so far (events or popup states)."""

    @property
    def dropped(self) -> int:
        """Items lost because the reader fell behind (or, from a broker, that were not valid)."""

    @property
    def subscriptions(self) -> Sequence[str]:
        """The event names (or broker topics) asked for."""

    @property
    def filters(self) -> Sequence[tuple[str, str]]:
        """The header filters applied, as (header, value)."""

    @property
    def switch(self) -> Optional[SwitchApi]:
        """The live switch behind this source, for ``api`` commands; None for a file or a broker."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def __aiter__(self) -> AsyncIterator[Item]: ...
