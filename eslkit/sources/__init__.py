"""Where events come from.  Every source is an async iterable of
`eslkit.event.Event` and `eslkit.status.ConnectionStatus`:

- `EslSource` — a live switch, through `eslkit.client.Connection`;
- `ReplaySource` — an eslkit recording (JSON lines) or a raw ESL transcript.
"""

from __future__ import annotations

from eslkit.sources.esl import EslSource
from eslkit.sources.replay import ReplaySource

__all__ = ["EslSource", "ReplaySource"]
