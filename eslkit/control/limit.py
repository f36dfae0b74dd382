"""How often one extension may ask for phone control: the one limit every way in passes
(`eslkit.control.Controller.act`, which the CLI, the popup's keys, the relay's desk and
serve's buttons all call).  A sliding window per extension::

    limiter = Limiter(RateLimit(burst=5, per=10.0))
    limiter.admit("1001")        # the sixth time within 10 s: RequestRefused("rate_limited", …)
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from eslkit.errors import BadNumber, RequestRefused

__all__ = ["RateLimit", "Limiter"]

REMEMBER = 10_000  # extensions a limiter keeps windows for (a relay runs for months)


@dataclass(frozen=True)
class RateLimit:
    """At most ``burst`` requests per extension in any ``per`` seconds: enough for an agent's
    clicks, too few for a script gone wrong to hammer the switch."""

    burst: int = 5
    per: float = 10.0

    def __post_init__(self) -> None:
        if self.burst < 1 or not self.per > 0:
            raise BadNumber(f"A rate limit of {self.burst} requests in {self.per:g} s lets nothing through.",
                            "Give at least 1 request in more than 0 s.")


class Limiter:
    """The windows of one controller's extensions; ``clock`` is monotonic seconds."""

    def __init__(self, limit: RateLimit, *, clock=time.monotonic, remember: int = REMEMBER):
        self.limit = limit
        self.clock = clock
        self._remember = remember
        self._recent: OrderedDict[str, deque] = OrderedDict()

    def admit(self, ext: str) -> None:
        """Count one request of ``ext``, or refuse it (``rate_limited``) when it is one too
        many; a refused request is not counted, so a flood does not extend its own wait."""
        now, limit = self.clock(), self.limit
        recent = self._recent.setdefault(ext, deque())
        self._recent.move_to_end(ext)  # the most recently used last: the oldest are forgotten first
        while recent and now - recent[0] >= limit.per:
            recent.popleft()
        if len(recent) >= limit.burst:
            raise RequestRefused("rate_limited", f"{ext} sent more than {limit.burst} control requests in "
                                 f"{limit.per:g} s; wait a moment.", retry_after=limit.per - (now - recent[0]))
        recent.append(now)
        if len(self._recent) > self._remember:
            self._recent.popitem(last=False)
