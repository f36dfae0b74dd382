"""`ConnectionStatus`: a source's link to the switch (or broker) went down or came back.

Sources yield it between events; the asyncio client makes it, recordings keep it,
replays and brokers yield it again — so it lives below all of them.
"""

from __future__ import annotations

__all__ = ["ConnectionStatus"]


class ConnectionStatus:
    """``state`` is "connected" or "disconnected"; ``gap`` is how long the link
    was down (on "connected" after a reconnect); ``attempt`` counts retries."""

    __slots__ = ("state", "reason", "gap", "attempt")

    def __init__(self, state: str, reason: str = "", gap: float | None = None, attempt: int = 0):
        self.state = state
        self.reason = reason
        self.gap = gap
        self.attempt = attempt

    def to_dict(self) -> dict:
        return {"state": self.state, "reason": self.reason, "gap": self.gap, "attempt": self.attempt}

    def __repr__(self) -> str:
        gap = f" gap={self.gap:.1f}s" if self.gap is not None else ""
        return f"<ConnectionStatus {self.state}{gap} {self.reason!r}>"
