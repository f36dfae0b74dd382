"""Target 3: popup latency, from the last byte of an event on the socket to the state change written.

`eslkit popup --ext 1001 --format json` reads from the paced server
(benchmarks/paced.py): 2,000 events/s of other traffic, and calls to 1001
whose events go out one by one, each timestamped when its last byte is on
the socket.  Each JSON line popup writes is timestamped when it can be read
from popup's stdout.  Which event caused which change is known beforehand:
the capture is fed to eslkit's call tracker here, and the leg UUID and state
of each change name its event.
"""

from __future__ import annotations

import statistics
import subprocess
import time

from benchmarks.harness import PASSWORD_ENV, PYTHON, ROOT, Figure, Reporter, Server, stop
from benchmarks.scenario import CallTemplate, body


def _triggers() -> dict:
    """(leg uuid without its call number, state) -> index of the event that causes it."""
    from eslkit.calls import CallTracker
    from eslkit.event import Event

    tracker = CallTracker(exts={"1001"})
    out = {}
    for i, frame in enumerate(CallTemplate("scenario_queue_plain").call(1)):
        for leg in tracker.feed(Event.from_plain(body(frame))):
            out[(leg.leg_uuid[8:], leg.state)] = i
    return out


def _sequence_index() -> dict:
    """Event-Sequence -> index of the event in the call."""
    import re

    out = {}
    for i, frame in enumerate(CallTemplate("scenario_queue_plain").call(1)):
        m = re.search(rb"\nEvent-Sequence: (\d+)\n", frame)
        if m:
            out[int(m.group(1))] = i
    return out


def _percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


def _run(argv: list[str], calls: int, rate: float, timeout: float):
    """Play the calls to one client; return the server's record, the client's lines and stderr."""
    import os

    with Server("paced", "--rate", str(rate), "--calls", str(calls)) as server:
        proc = subprocess.Popen(argv + ["--port", str(server.port)] if "eslkit" in argv else argv + [str(server.port)],
                                cwd=ROOT, env=dict(os.environ, **PASSWORD_ENV),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        lines = Reporter(proc)
        try:
            result = server.reports.next(timeout)
        finally:
            time.sleep(0.2)
            stop(proc)
        err = proc.stderr.read().decode("utf-8", "replace")
    items = []
    while True:
        try:
            t_read, item = lines.lines.get(timeout=2)
        except Exception:
            break
        if item is None:
            break
        items.append((t_read, item))
    return result, items, err


def measure(calls: int, rate: float, timeout: float) -> list[Figure]:
    triggers = _triggers()
    trigger_index = set(triggers.values())
    expected = calls * len(triggers)

    # The anchor: a bare socket reader, timed on the same trigger events.
    result, items, err = _run([PYTHON, str(ROOT / "benchmarks" / "clients" / "latency_anchor.py")],
                              calls, rate, timeout)
    sent = {(k, i): t for k, i, t in result["sent"]}
    index_of = _sequence_index()
    floor = []
    for t, it in items:
        i = index_of.get(it.get("seq"))
        if i in trigger_index and (it.get("call"), i) in sent:
            floor.append((t - sent[(it["call"], i)]) * 1000)
    anchor = Figure("latency_floor", "bare socket reader latency p99 (same events, same traffic)", unit="ms",
                    checks={"samples": len(floor), "expected": expected})
    if floor:
        anchor.value = _percentile(floor, 0.99)
        anchor.note = f"p50 {statistics.median(floor):.1f} ms, max {max(floor):.1f} ms"
        anchor.checks.update(p50=statistics.median(floor), max=max(floor))
    else:
        anchor.note = "no samples: " + err[-200:]

    fig = Figure("popup_p99", "T3 popup latency p99 (event on socket → state change written)", unit="ms",
                 target="≤ 20 ms")
    result, items, err = _run([PYTHON, "-m", "eslkit", "popup", "--ext", "1001", "--format", "json",
                               "--host", "127.0.0.1"], calls, rate, timeout)
    sent = {(k, i): t for k, i, t in result["sent"]}
    latencies, samples, unmatched, changes = [], [], 0, 0
    for t_read, item in items:
        if "state" not in item:
            continue
        changes += 1
        uuid = item.get("leg_uuid") or ""
        try:
            k = int(uuid[:8], 16)
        except ValueError:
            unmatched += 1
            continue
        t_sent = sent.get((k, triggers.get((uuid[8:], item["state"]))))
        if t_sent is None:
            unmatched += 1
            continue
        latencies.append((t_read - t_sent) * 1000)
        samples.append([k, item["state"], round((t_read - t_sent) * 1000, 2)])
    fig.checks = {"calls": calls, "state_changes": changes, "expected_changes": expected,
                  "unmatched": unmatched, "background_events": result.get("background"),
                  "background_rate": result.get("background", 0) / max(result.get("seconds", 1), 1e-9),
                  "stderr": err[-300:] if not latencies else ""}
    if latencies:
        fig.value = _percentile(latencies, 0.99)
        if anchor.value:
            fig.anchor_label, fig.anchor = "bare socket", anchor.value
            fig.ratio = fig.value / anchor.value
        fig.checks.update(p50=statistics.median(latencies), max=max(latencies), samples=len(latencies),
                          slowest=sorted(samples, key=lambda s: -s[2])[:5])
        fig.passed = fig.value <= 20 and changes == expected and unmatched == 0
        fig.note = f"p50 {fig.checks['p50']:.1f} ms, max {fig.checks['max']:.1f} ms, {len(latencies)} changes"
    else:
        fig.note = "popup wrote no state change: " + err[-200:]
    return [anchor, fig]
