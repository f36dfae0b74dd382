"""Where events come from: every source is a `Source` (`eslkit.sources.base`).

- `EslSource` — a live switch, through `eslkit.client.Connection`;
- `ReplaySource` — an eslkit recording or a raw ESL transcript (`eslkit.recording`);
- `BrokerSource` — what `eslkit relay` published (`eslkit.sources.broker`);
- `EventsSource` — events a program already holds.

`open_source` picks the one a command's ``--replay``/``--from`` options name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

from eslkit.sources.base import Item, Source, SwitchApi
from eslkit.sources.esl import EslSource
from eslkit.sources.memory import EventsSource
from eslkit.sources.replay import ReplaySource

__all__ = ["Source", "SwitchApi", "Item", "EslSource", "ReplaySource", "EventsSource", "open_source"]


def open_source(*, live: Callable[[], Source], replay: Optional[Path] = None, speed: Optional[float] = None,
                from_url: Optional[str] = None, popup_exts: Optional[Sequence[str]] = None,
                names: Sequence[str] = ("ALL",), filters: Iterable[tuple[str, str]] = ()) -> Source:
    """A file (``replay``), a broker (``from_url``; with ``popup_exts`` those agents' popup
    states) or else ``live()``.  Without a switch, ``names`` and ``filters`` are applied
    here with the switch's rules."""
    if replay is not None:
        return ReplaySource(replay, speed=speed, names=names, filters=filters)
    if from_url is not None:
        from eslkit.sources.broker import open_broker_source  # paho or pika only when asked for

        return open_broker_source(from_url, popup_exts=popup_exts, names=names, filters=filters)
    return live()
