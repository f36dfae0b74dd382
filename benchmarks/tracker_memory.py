"""Target 4b: the call tracker's memory stays flat over many finished calls.

    python -m benchmarks.tracker_memory --calls 100000

Feeds `eslkit.calls.CallTracker` (watching 1001, as ``eslkit popup --ext
1001`` does) the events popup subscribes to, for ``--calls`` replays of the
real queue call, each with new UUIDs and a clock 1,000 s later.  Prints one
JSON line: traced Python memory (tracemalloc) and channels remembered after
10% of the calls and at the end, and the state changes seen.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.scenario import CallTemplate, body  # noqa: E402
from eslkit.calls import POPUP_EVENTS, CallTracker  # noqa: E402
from eslkit.event import Event  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=100_000)
    args = ap.parse_args(argv)
    template = CallTemplate(names=set(POPUP_EVENTS))
    tracker = CallTracker(exts={"1001"})
    changes = {"ringing": 0, "answered": 0, "ended": 0}
    mark = max(1, args.calls // 10)
    t0 = time.perf_counter()
    early = None
    for k in range(1, args.calls + 1):
        for frame in template.call(k):
            for leg in tracker.feed(Event.from_plain(body(frame))):
                changes[leg.state] = changes.get(leg.state, 0) + 1
        for leg in tracker.expire():
            changes["expired"] = changes.get("expired", 0) + 1
        if k == mark:
            early = _memory(tracker)
    end = _memory(tracker)
    print(json.dumps({
        "calls": args.calls, "events_per_call": len(template.frames), "changes": changes,
        "calls_early": mark, "early": early, "end": end, "seconds": time.perf_counter() - t0,
    }))


def _memory(tracker: CallTracker) -> dict:
    gc.collect()
    with open("/proc/self/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return {"blocks": sys.getallocatedblocks(), "rss": rss, "channels": len(tracker)}


if __name__ == "__main__":
    main()
