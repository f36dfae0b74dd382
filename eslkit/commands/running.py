"""How a long-running command (watch, popup) runs its ingest task.

Ctrl-C and SIGTERM set a stop event instead of raising KeyboardInterrupt, so
the command can leave the terminal in order and print its summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Callable, Iterable, Optional


async def run_until_stopped(
    ingest: asyncio.Future,
    stop: asyncio.Event,
    start: Callable[[], None] = lambda: None,
    helpers: Iterable[Optional[asyncio.Future]] = (),
) -> Optional[Exception]:
    """Call ``start()``, then wait until ``ingest`` ends or ``stop`` is set (also
    by SIGINT/SIGTERM); cancel ``helpers`` and an unfinished ``ingest``.

    Returns the exception ``ingest`` raised (AuthError, Disconnected, …) rather
    than raising it, so the caller can tidy up its screen and output first.
    """
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        start()
        await asyncio.wait([ingest, stopped], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (stopped, *helpers):
            if task is not None:
                task.cancel()
        if not ingest.done():
            ingest.cancel()
        failure: Optional[Exception] = None
        try:
            await ingest
        except asyncio.CancelledError:
            pass
        except Exception as exc:
            failure = exc
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
    return failure

