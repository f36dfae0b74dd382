"""Coverage-guided fuzz target for the event-socket parser (atheris).

    .venv/bin/pip install atheris
    mkdir -p .cache/fuzz-corpus && cp tests/data/fs-captures/1.10.12/*.raw .cache/fuzz-corpus/
    .venv/bin/python tests/fuzz/fuzz_parser.py -max_total_time=300 .cache/fuzz-corpus

The corpus (a scratch copy: libFuzzer writes new inputs into it) is seeded with
the real captures.  The only acceptable
failure is ProtocolError; anything else is a bug, and atheris saves the input
that caused it (crash-*) for a regression test.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from eslkit.errors import ProtocolError
    from eslkit.protocol import EventFrame, Parser


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    cut = fdp.ConsumeIntInRange(0, 64)
    stream = fdp.ConsumeBytes(fdp.remaining_bytes())
    parser = Parser(max_frame_size=1 << 16)
    try:
        step = cut or len(stream) or 1
        for i in range(0, len(stream), step):
            for frame in parser.feed(stream[i: i + step]):
                if isinstance(frame, EventFrame):
                    ev = frame.event
                    ev.to_dict(), ev.name, ev.get_all("Hangup-Cause"), ev.serialize("plain")
        parser.feed(b"")
    except ProtocolError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
