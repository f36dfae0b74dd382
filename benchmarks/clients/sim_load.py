"""Clients of `eslkit sim` as a load generator: one fast reader, or many at once.

    python sim_load.py PORT --clients 1 --events 200000
    python sim_load.py PORT --clients 500 --seconds 5

Each client authenticates, sends ``event plain ALL`` and counts event frames
(the ``Content-Type: text/event-plain`` line that ends each frame's header
block) in the raw bytes, so the reader is never the bottleneck.  With
``--check`` every byte also goes through eslkit's parser, and each event must
have an Event-Name.  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

MARK = b"Content-Type: text/event-plain\n\n"


class Reader:
    def __init__(self, check: bool):
        self.events = 0
        self.bytes = 0
        self.first = self.last = None
        self.bad = 0
        self.parser = None
        if check:
            from eslkit.protocol import EventFrame, Parser

            self.parser, self.frame_type = Parser(), EventFrame

    async def run(self, port: int, stop: asyncio.Event, want: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        await reader.readuntil(b"\n\n")  # auth/request
        writer.write(b"auth ClueCon\n\n")
        await reader.readuntil(b"\n\n")
        writer.write(b"event plain ALL\n\n")
        tail = b""
        subscribed = False
        while not stop.is_set():
            data = await reader.read(262144)
            if not data:
                break
            now = time.monotonic()
            if not subscribed:  # the +OK reply (and maybe first events) arrive here
                subscribed = True
            chunk = tail + data
            n = chunk.count(MARK)
            tail = chunk[-(len(MARK) - 1):]
            if n:
                self.first = self.first or now
                self.last = now
                self.events += n
                self.bytes += len(data)
            if self.parser is not None:
                for frame in self.parser.feed(data):
                    if isinstance(frame, self.frame_type) and not frame.event.get("Event-Name"):
                        self.bad += 1
            if want and self.events >= want:
                stop.set()
        writer.close()


async def main(args) -> None:
    stop = asyncio.Event()
    readers = [Reader(args.check) for _ in range(args.clients)]
    tasks = [asyncio.ensure_future(r.run(args.port, stop, args.events)) for r in readers]
    t0 = time.monotonic()
    if args.seconds:
        await asyncio.sleep(args.seconds)
        stop.set()
    done, pending = await asyncio.wait(tasks, timeout=(args.seconds or 60) + 30)
    errors = [str(t.exception()) for t in done if t.exception()]
    for t in pending:
        t.cancel()
    counts = [r.events for r in readers]
    spans = [(r.last - r.first) for r in readers if r.first and r.last and r.last > r.first]
    total = sum(counts)
    one = readers[0]
    print(json.dumps({
        "clients": args.clients, "receiving": sum(1 for c in counts if c > 0),
        "events_total": total, "min_events": min(counts), "max_events": max(counts),
        "rate_one": (one.events / (one.last - one.first)) if one.first and one.last and one.last > one.first else None,
        "rate_total": total / (time.monotonic() - t0),
        "span": max(spans) if spans else None, "bad": sum(r.bad for r in readers),
        "errors": errors[:3], "connect_failures": len(errors),
    }))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--events", type=int, default=0, help="stop once the first client has this many")
    ap.add_argument("--seconds", type=float, default=0, help="stop after this long")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if not args.events and not args.seconds:
        sys.exit("give --events or --seconds")
    asyncio.run(main(args))
