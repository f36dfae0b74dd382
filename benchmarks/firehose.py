"""A fake switch that replays real captured events as fast as the client reads.

    python -m benchmarks.firehose --count 100000 [--port 0]

It greets (``auth/request``), accepts any password, answers commands the way
mod_event_socket does, and on the first ``event <format> ...`` starts sending
exactly ``--count`` event frames (the captures, cycled) in that format, as fast
as the socket takes them.  Then it waits for the client to hang up.

One JSON line per connection goes to stdout: events and bytes sent and the
seconds from the first event byte to the client's hang-up (or ``exit``), which
is the figure the runner uses for every client alike.  The first line is
``{"port": N}``.  The server runs in its own process, so its work never
competes with the client's interpreter.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.corpus import frames_in  # noqa: E402
from benchmarks.fakeswitch import CommandHandler, Server  # noqa: E402
from eslkit.protocol import api_response, command_reply, disconnect_notice  # noqa: E402

CHUNK = 256 * 1024
_out_lock = threading.Lock()


def report(**fields) -> None:
    with _out_lock:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()


class Stream:
    """The bytes of ``count`` events in one format, cut into frame-aligned chunks."""

    def __init__(self, frames: list[bytes], count: int):
        self.frames, self.count = frames, count
        cycle = b"".join(frames)
        # A run of whole cycles, big enough that sendall sees large buffers.
        reps = max(1, CHUNK // len(cycle))
        self.block, self.block_events = cycle * reps, len(frames) * reps

    def chunks(self):
        left = self.count
        while left >= self.block_events:
            yield self.block, self.block_events
            left -= self.block_events
        if left:
            yield b"".join(self.frames[i % len(self.frames)] for i in range(left)), left


class Handler(CommandHandler):
    def setup(self) -> None:
        super().setup()  # replies go out between whole chunks of events
        self.t0 = self.t_end = None
        self.sent = self.nbytes = 0
        self.fmt = None
        self.streamer = None

    def ended(self) -> None:
        self.t_end = self.t_end or time.monotonic()
        if self.streamer is not None:
            self.streamer.join(timeout=5)
        if self.fmt is not None:
            report(events=self.sent, bytes=self.nbytes, format=self.fmt, complete=self.sent == self.server.count,
                   seconds=(self.t_end - self.t0) if self.t0 else None)

    def command(self, sock, cmd: str) -> bool:
        if not cmd:
            return False
        word = cmd.split()[0].lower()
        if word == "auth":
            self.send(sock, command_reply("+OK accepted"))
        elif word == "event" and self.fmt is None:
            words = cmd.split()
            fmt = words[1].lower() if len(words) > 1 and words[1].lower() in ("plain", "json", "xml") else "plain"
            self.send(sock, command_reply(f"+OK event listener enabled {fmt}"))
            self.fmt = fmt
            self.streamer = threading.Thread(target=self.stream, args=(sock, fmt), daemon=True)
            self.streamer.start()
        elif word == "api":
            self.send(sock, api_response("+OK\n"))
        elif word == "exit":
            self.t_end = time.monotonic()
            self.send(sock, command_reply("+OK bye"))
            self.send(sock, disconnect_notice())
            return True
        else:
            self.send(sock, command_reply("+OK"))
        return False

    def stream(self, sock, fmt: str) -> None:
        stream = self.server.streams[fmt]
        self.t0 = time.monotonic()
        try:
            for chunk, n in stream.chunks():
                self.send(sock, chunk)
                self.sent += n
                self.nbytes += len(chunk)
        except OSError:
            pass


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    server = Server((args.host, args.port), Handler)
    server.count = args.count
    server.streams = {fmt: Stream(frames_in(fmt), args.count) for fmt in ("plain", "json", "xml")}
    report(port=server.server_address[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
