"""What every benchmark client shares: arguments, the expected events, the result line.

Kept free of eslkit imports: the greenswitch and genesis clients run in their
own virtualenv, where eslkit is not installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


class Checker:
    """Compares each event's (Event-Name, Unique-ID) with the firehose's cycle."""

    def __init__(self, path: str, count: int):
        with open(path) as f:
            self.expected = [tuple(x) for x in json.load(f)]
        self.cycle = len(self.expected)
        self.count = count
        self.seen = 0
        self.errors = 0
        self.first_error = None
        self.t0 = None

    def check(self, name, uid) -> bool:
        """Record one event; True once ``count`` events have been seen."""
        if self.t0 is None:
            self.t0 = time.perf_counter()
        want = self.expected[self.seen % self.cycle]
        if want[0] != name or want[1] != uid:
            self.errors += 1
            if self.first_error is None:
                self.first_error = f"event {self.seen}: got {(name, uid)!r}, want {want!r}"
        self.seen += 1
        return self.seen >= self.count

    def result(self, **extra) -> None:
        seconds = time.perf_counter() - self.t0 if self.t0 else None
        out = {"events": self.seen, "errors": self.errors, "first_error": self.first_error,
               "client_seconds": seconds, **extra}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


def parse_args(doc: str):
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("port", type=int)
    ap.add_argument("count", type=int)
    ap.add_argument("expected", help="JSON file of [Event-Name, Unique-ID] per event of the cycle")
    ap.add_argument("--host", default="127.0.0.1")
    return ap.parse_args()
