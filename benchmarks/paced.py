"""A fake switch for the popup latency figure: background traffic at a fixed rate,
plus calls to extension 1001, one event at a time, each timestamped as sent.

    python -m benchmarks.paced --rate 2000 --calls 60 --gap-ms 4 [--start-when FILE]

After the client's ``event ...`` command it sends, every 5 ms, the share of
``--rate`` events/s of other traffic (the no-answer call to 1002 and the
agents registering, with fresh UUIDs each round) and, every ``--gap-ms``, the
next event of the current 1001 call (scenario_queue_plain, a new call number
each time).  Each call event goes out in its own ``sendall``; the moment it
returns — the last byte is on the socket — is recorded with
``time.monotonic()``, which all processes on this machine share.

Prints ``{"port": N}``, then one JSON line when the calls are done:
``{"sent": [[call, index, t], ...], "background": n, "seconds": s}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.fakeswitch import CommandHandler, Server  # noqa: E402
from benchmarks.scenario import CallTemplate  # noqa: E402
from eslkit.protocol import api_response, command_reply  # noqa: E402

TICK = 0.005


class Handler(CommandHandler):
    def setup(self) -> None:
        super().setup()
        self.started = False

    def command(self, sock, cmd: str) -> bool:
        word = cmd.split()[0].lower() if cmd else ""
        if word == "auth":
            self.send(sock, command_reply("+OK accepted"))
        elif word == "api":
            self.send(sock, api_response("[]\n" if "json" in cmd else "+OK\n"))
        elif word == "event" and not self.started:
            self.send(sock, command_reply("+OK event listener enabled plain"))
            self.started = True
            threading.Thread(target=self.play, args=(sock,), daemon=True).start()
        elif word:
            self.send(sock, command_reply("+OK"))
        return False

    def play(self, sock) -> None:
        srv = self.server
        per_tick = srv.rate * TICK
        owed = 0.0
        background = 0
        bg_round = 0
        bg_frames: list[bytes] = []
        sent = []
        calls = [(k, srv.call.call(k)) for k in range(1, srv.calls + 1)]
        if srv.start_when is not None:  # the client is ready when this file appears (at most 2 minutes)
            deadline = time.monotonic() + 120
            while not srv.start_when.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        time.sleep(0.3)  # let the client settle after subscribing
        t0 = time.monotonic()
        next_tick = next_call = t0
        ci = fi = 0
        try:
            while ci < len(calls):
                now = time.monotonic()
                if now >= next_tick:
                    owed += per_tick
                    n = int(owed)
                    owed -= n
                    chunk = []
                    for _ in range(n):
                        if not bg_frames:
                            bg_round += 1
                            bg_frames = [f for t in srv.background for f in t.call(0x80000000 + bg_round)]
                            bg_frames.reverse()
                        chunk.append(bg_frames.pop())
                    if chunk:
                        self.send(sock, b"".join(chunk))
                        background += len(chunk)
                    next_tick += TICK
                if now >= next_call:
                    k, frames = calls[ci]
                    self.send(sock, frames[fi])
                    sent.append([k, fi, time.monotonic()])
                    fi += 1
                    if fi == len(frames):
                        ci, fi = ci + 1, 0
                    next_call += srv.gap
                time.sleep(max(0.0, min(next_tick, next_call) - time.monotonic()))
        except OSError:
            pass
        seconds = time.monotonic() - t0
        time.sleep(0.5)  # the last state changes
        print(json.dumps({"sent": sent, "background": background, "seconds": seconds}),
              flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=2000)
    ap.add_argument("--calls", type=int, default=60)
    ap.add_argument("--gap-ms", type=float, default=4.0)
    ap.add_argument("--start-when", type=Path, default=None, help="play the calls once this file exists")
    args = ap.parse_args(argv)
    server = Server(("127.0.0.1", 0), Handler)
    server.rate, server.calls, server.gap = args.rate, args.calls, args.gap_ms / 1000
    server.start_when = args.start_when
    server.call = CallTemplate("scenario_queue_plain")
    server.background = [CallTemplate("scenario_noanswer_plain", spacing=0), CallTemplate("agents_register_plain", spacing=0)]
    print(json.dumps({"port": server.server_address[1], "events_per_call": len(server.call.frames)}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
