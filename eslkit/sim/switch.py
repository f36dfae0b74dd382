"""What the simulator's parts need from the switch they run in (`SimServer` is it).

The session, the scenarios, the API commands and the replay each see the switch
only through these small interfaces, so none of them imports the server, and the
server imports them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Optional, Protocol

if TYPE_CHECKING:  # the types only: none of these modules imports this one
    import asyncio

    from eslkit.sim.channels import CallRegistry
    from eslkit.sim.events import SimEvent
    from eslkit.sim.fastpath import Burst, CallValues
    from eslkit.sim.legs import Dialing, Legs
    from eslkit.sim.queues import QueueRegistry

__all__ = ["Switch", "Listener", "Client"]


class Switch(Protocol):
    password: str
    core_uuid: str
    started_at: float  # epoch seconds, for `status` and `uptime`
    speed: Optional[float]  # time scale of scenarios and replays; None: as fast as possible
    max_buffer: int  # bytes a client may have waiting before it loses events
    channels: "CallRegistry"  # the channels up now
    legs: "Legs"  # each leg's headers and variables, for the call-control commands
    dialing: "Dialing"  # the calls originate places, still ringing or answering
    registered: Optional[frozenset]  # the users a phone is registered as; None: any (a replay)
    queues: "QueueRegistry"  # mod_callcenter's and mod_fifo's tables (callcenter_config, fifo)

    def next_seq(self) -> int: ...
    def new_uuid(self) -> str: ...
    def fire(self, event: "SimEvent") -> object: ...
    def fire_burst(self, burst: "Burst", values: "CallValues") -> None: ...
    def subscribers_behind(self) -> bool: ...
    def log(self, level: int, text: str, file: str = ..., func: str = ..., line: int = ...,
            uuid: Optional[str] = None) -> None: ...
    def api(self, name: str, arg: Optional[str]) -> str: ...
    def bgapi(self, job_uuid: str, name: str, arg: Optional[str]) -> None: ...
    def sendevent(self, name: str, headers: Iterable[tuple[str, str]], body: Optional[bytes] = None) -> str: ...
    def spawn(self, coro) -> "asyncio.Task": ...
    def recorded_hangup(self, uuid: str) -> Optional[tuple[float, str]]: ...


class Listener(Protocol):
    """What a connection has asked for (a `eslkit.sim.session.Session` is one)."""

    format: str

    @property
    def events_on(self) -> bool: ...
    def wants(self, ev: "SimEvent") -> bool: ...


class Client(Protocol):
    """One client connection, as a replay plays to it."""

    session: Listener
    replaying: bool

    @property
    def closing(self) -> bool: ...
    @property
    def backlog(self) -> int: ...
    def send(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    def hang_up(self, text: Optional[str] = None) -> None: ...
