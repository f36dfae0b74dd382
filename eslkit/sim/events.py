"""Events as the simulated switch fires them: serialised once per format, shared by every
connection.

A `SimEvent` answers what the fan-out asks of every event — its name (for
subscriptions), a header value (for filters, ``myevents``, the channel rows),
and its frame bytes in a format (cached, so a thousand connections in plain
format cost one serialisation).  `SimEvent.from_event` wraps any `Event`: the
switch's own events (SHUTDOWN, API, BACKGROUND_JOB…) and replayed ones.

The calls of a scenario are made faster (`eslkit.sim.fastpath`): the same
questions, answered from templates filled per call.  To change what an event
holds, change the scenario data (`eslkit.sim.derive`), not the fast path.
"""

from __future__ import annotations

from typing import Callable, Optional

from eslkit._headers import join_array
from eslkit.event import Event
from eslkit.protocol import event_head

FORMATS = ("plain", "json", "xml")


class SimEvent:
    """One fired event: name, header lookup, and per-format frame bytes (cached)."""

    __slots__ = ("event_name", "subclass", "_get", "_render", "_frames")

    def __init__(self, event_name: str, subclass: Optional[str], get: Callable[[str], Optional[str]],
                 render: Callable[[str], bytes]):
        self.event_name = event_name
        self.subclass = subclass
        self._get = get
        self._render = render
        self._frames: dict[str, bytes] = {}

    @classmethod
    def from_event(cls, event: Event, payloads: Optional[dict[str, bytes]] = None) -> "SimEvent":
        """Wrap an `Event`; ``payloads`` are serialisations already at hand (a replayed frame's body)."""
        lower: dict[str, str] = {}

        def get(name: str) -> Optional[str]:
            if not lower:  # decoded on first use: a replay file may hold many events never filtered
                for k, v in event.pairs():
                    lower.setdefault(k.lower(), v if isinstance(v, str) else join_array(v))
            return lower.get(name.lower())

        ev = cls(event.get("Event-Name") or "", event.get("Event-Subclass"), get,
                 lambda fmt: event.serialize(fmt).encode("utf-8"))
        for fmt, payload in (payloads or {}).items():
            ev._frames[fmt] = event_head(fmt, len(payload)) + payload
        return ev

    def get(self, name: str) -> Optional[str]:
        """A decoded header value, looked up case-insensitively like switch_event_get_header()."""
        return self._get(name)

    def get_all(self, names: tuple) -> list:
        """`get` of several headers at once (the call tracker asks a dozen of each event)."""
        return [self.get(name) for name in names]

    def lookup(self, name: str) -> Optional[str]:
        """A header as filters see it (`eslkit.subscription`): `get`, and ``_body`` the body."""
        value = self.get(name)
        if value is None and name == "_body":
            return self.to_event().body  # a filter on the body: rare enough to render for
        return value

    @property
    def name(self) -> str:
        return self.subclass if self.event_name == "CUSTOM" and self.subclass else self.event_name

    @property
    def unique_id(self) -> Optional[str]:
        """The channel's Unique-ID (the call tracker and ``myevents`` ask it of every event)."""
        return self.get("Unique-ID")

    def render(self, fmt: str) -> bytes:
        """The event's payload in a wire format (uncached; `frame` caches)."""
        return self._render(fmt)

    def frame_parts(self, fmt: str) -> tuple[bytes, ...]:
        """The frame in pieces the connection writes one after another (one piece here)."""
        return (self.frame(fmt),)

    def frame(self, fmt: str) -> bytes:
        data = self._frames.get(fmt)
        if data is None:
            payload = self.render(fmt)
            data = self._frames[fmt] = event_head(fmt, len(payload)) + payload
        return data

    def to_event(self) -> Event:
        return Event.from_plain(self.render("plain").decode("utf-8"))
