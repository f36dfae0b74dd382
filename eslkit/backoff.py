"""Reconnect back-off: exponential, capped, with jitter.  Shared by the ESL client and
the broker connections that reconnect by themselves (paho has its own)."""

from __future__ import annotations

import random
from typing import Iterator

__all__ = ["Backoff"]


class Backoff:
    """Exponential back-off with a cap and full jitter on the top fraction."""

    def __init__(self, initial: float = 0.5, factor: float = 2.0, cap: float = 30.0,
                 jitter: float = 0.25, rng=random.random, reset_after: float = 10.0):
        self.initial, self.factor, self.cap, self.jitter, self.rng = initial, factor, cap, jitter, rng
        self.reset_after = reset_after  # a session this long (s) starts the back-off over

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay * (1 - self.jitter * self.rng())
            delay = min(self.cap, delay * self.factor)
