"""Clients of `eslkit sim` as a load generator: one fast reader, or many at once.

    python sim_load.py PORT --clients 1 --events 200000
    python sim_load.py PORT --clients 500 --seconds 5

Each client authenticates, sends ``event plain ALL`` and counts event frames
(the ``Content-Type: text/event-plain`` line that ends each frame's header
block) in the raw bytes, so the reader is never the bottleneck: one client
reads with a blocking ``recv_into`` and counts in place, many share an asyncio
loop.  With ``--check`` every byte also goes through eslkit's parser, and each
event must have an Event-Name.  Prints one JSON line.
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

    def check(self, data: bytes) -> None:
        for frame in self.parser.feed(data):
            if isinstance(frame, self.frame_type) and not frame.event.get("Event-Name"):
                self.bad += 1

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
                self.check(data)
            if want and self.events >= want:
                stop.set()
        writer.close()


def one_fast_reader(args) -> None:
    """One client, no event loop: recv_into a buffer kept for the whole run and
    count the frame ends in place, so the reader costs ~1 µs an event and the
    figure is the simulator's, not this script's (a copy per read, as asyncio's
    stream reader makes, costs several µs of a 4.5 kB event)."""
    import socket

    sock = socket.create_connection(("127.0.0.1", args.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    greeting = sock.recv(4096)
    if b"auth/request" not in greeting:
        sys.exit("not an event socket")
    sock.sendall(b"auth ClueCon\n\nevent plain ALL\n\n")
    keep = len(MARK) - 1  # a mark cut by a read boundary is found in the next round
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    events = nbytes = 0
    first = last = None
    deadline = time.monotonic() + args.seconds if args.seconds else None
    have = 0
    check = Reader(True) if args.check else None
    while True:
        n = sock.recv_into(view[have:])
        if not n:
            break
        now = time.monotonic()
        end = have + n
        if check is not None:
            check.check(bytes(buf[have:end]))
        found = buf.count(MARK, 0, end)
        if found:
            first = first or now
            last = now
            events += found
        nbytes += n
        view[:keep] = view[end - keep:end] if end >= keep else view[:keep]
        have = keep if end >= keep else end
        if (args.events and events >= args.events) or (deadline and now >= deadline):
            break
    sock.close()
    print(json.dumps({
        "clients": 1, "receiving": int(events > 0), "events_total": events, "min_events": events,
        "max_events": events, "rate_one": events / (last - first) if first and last and last > first else None,
        "rate_total": None, "span": (last - first) if first and last else None,
        "bad": check.bad if check is not None else 0,
        "errors": [], "connect_failures": 0, "bytes": nbytes,
    }))


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
    if args.clients == 1:
        one_fast_reader(args)
    else:
        asyncio.run(main(args))
