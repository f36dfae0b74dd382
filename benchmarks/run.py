"""Run the eslkit benchmark suite and print one table.

    .venv/bin/python benchmarks/run.py            # the full suite (several minutes)
    .venv/bin/python benchmarks/run.py --smoke    # tiny N, 1 repetition: checks it all still works
    .venv/bin/python benchmarks/run.py --only throughput --json results.json

Everything is set up here: the firehose (a separate process replaying the real
1.10.12 captures), the C ESL module built from the python-ESL sdist,
greenswitch and genesis in their own virtualenv under ~/.cache/eslkit-bench.
Targets are ratios to anchors measured in the same run (median of the
repetitions), never absolute timings.
"""

from __future__ import annotations

import argparse
import compileall
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import ROOT, Figure, table  # noqa: E402

SECTIONS = ("throughput", "latency", "serve", "relay", "memory", "sim", "build")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny N, one repetition, no verdicts that matter")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 5; 1 with --smoke)")
    ap.add_argument("--count", type=int, default=None, help="events per throughput run (default 100,000)")
    ap.add_argument("--calls", type=int, default=None, help="T10: simulated calls per command (default 100,000)")
    ap.add_argument("--only", action="append", choices=SECTIONS, help="run only these sections")
    ap.add_argument("--client", action="append", metavar="KEY",
                    help="throughput: only this client (and the C anchor), e.g. watch_json")
    ap.add_argument("--json", type=Path, help="also write every figure, with its checks, to this file")
    args = ap.parse_args(argv)
    smoke = args.smoke
    reps = args.reps or (1 if smoke else 5)
    count = args.count or (2_000 if smoke else 100_000)
    timeout = 120 if smoke else 600
    sections = args.only or list(SECTIONS)
    figures: list[Figure] = []
    started = time.monotonic()
    # Byte-compile eslkit first, as pip does when it installs a package: no figure should
    # pay for compiling a module whose cached bytecode is missing or stale (this matters
    # where PYTHONDONTWRITEBYTECODE is set, as on the CI machines).
    compileall.compile_dir(str(ROOT / "eslkit"), quiet=1)
    if "throughput" in sections:
        from benchmarks import throughput

        figures += throughput.measure(count, reps, timeout, only=args.client)
    if "latency" in sections:
        from benchmarks import latency

        figures += latency.measure(calls=3 if smoke else 100, rate=2000, timeout=timeout)
    if "serve" in sections:
        from benchmarks import serve_latency

        figures += serve_latency.measure(calls=3 if smoke else 100, rate=2000, timeout=timeout)
        from benchmarks import serve_fanout

        figures += serve_fanout.measure(agents=50 if smoke else 1000, seconds=3 if smoke else 20, cps=30,
                                        timeout=timeout, reps=reps)
    if "relay" in sections:
        from benchmarks import relay

        figures += relay.measure(count=2_000 if smoke else (args.count or 50_000), reps=reps if not smoke else 1,
                                 timeout=timeout)
    if "memory" in sections:
        from benchmarks import memory

        figures += memory.measure(count=20_000 if smoke else 1_000_000, calls=300 if smoke else 100_000,
                                  timeout=timeout if smoke else 1800)
        from benchmarks import day_memory

        figures += day_memory.measure(calls=300 if smoke else (args.calls or 100_000),
                                      timeout=timeout if smoke else 3600, interval=0.02 if smoke else 0.2)
    if "sim" in sections:
        from benchmarks import simload

        figures += simload.measure(seconds=2 if smoke else 5, clients=50 if smoke else 500, check=smoke,
                                   timeout=timeout, reps=reps)
    if "build" in sections:
        from benchmarks import buildbench

        figures += buildbench.measure(reps=1 if smoke else 3, timeout=timeout)
    print(table(figures))
    notes = [f"- {f.label}: {f.note}" for f in figures if f.value is not None and f.note]
    if notes:
        print("\n" + "\n".join(notes))
    print(f"\n{'smoke run: ratios are not meaningful. ' if smoke else ''}"
          f"{reps} repetition(s), N={count:,} events per throughput run, {time.monotonic() - started:.0f} s.")
    if args.json:
        args.json.write_text(json.dumps({"smoke": smoke, "reps": reps, "count": count,
                                         "figures": [f.to_dict() for f in figures]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
