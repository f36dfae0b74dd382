"""Target 4: memory stays flat.

(a) RSS of `eslkit watch --format plain --quiet --count N` sampled from
/proc every 50 ms while N events (default 1,000,000) go through it: growth is
the highest RSS in the last tenth of the run minus the RSS a tenth of the way
in (after start-up and the first buffers).
(b) The call tracker over many finished calls (benchmarks/tracker_memory.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import time

from benchmarks.harness import PASSWORD_ENV, PYTHON, ROOT, Figure, Server


def _rss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def watch_rss(count: int, timeout: float) -> Figure:
    fig = Figure("watch_rss", f"T4 RSS growth of watch --quiet over {count:,} events", unit="MB",
                 target="≤ 10 MB")
    with Server("firehose", "--count", str(count)) as server:
        proc = subprocess.Popen(
            [PYTHON, "-m", "eslkit", "watch", "--host", "127.0.0.1", "--port", str(server.port),
             "--no-reconnect", "--count", str(count), "--format", "plain", "--quiet"],
            cwd=ROOT, env=dict(os.environ, **PASSWORD_ENV), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        samples = []
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            rss = _rss(proc.pid)
            if rss:
                samples.append((time.monotonic(), rss))
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        err = proc.stderr.read().decode("utf-8", "replace")
        report = server.reports.next(30)
    fig.checks = {"rc": proc.returncode, "events_sent": report.get("events"), "samples": len(samples),
                  "summary": err.strip().splitlines()[-1] if err.strip() else ""}
    if len(samples) < 3 or proc.returncode != 0:
        fig.note = f"watch failed or ended too soon ({len(samples)} samples): {err[-200:]}"
        return fig
    t0, t1 = samples[0][0], samples[-1][0]
    early = min(samples, key=lambda s: abs(s[0] - (t0 + 0.1 * (t1 - t0))))[1]
    late = max(rss for t, rss in samples if t >= t0 + 0.9 * (t1 - t0))
    fig.value = (late - early) / 1e6
    fig.checks.update(rss_early_mb=early / 1e6, rss_late_mb=late / 1e6,
                      rss_peak_mb=max(r for _, r in samples) / 1e6, seconds=t1 - t0)
    fig.note = f"{early / 1e6:.1f} → {late / 1e6:.1f} MB (peak {fig.checks['rss_peak_mb']:.1f}) in {t1 - t0:.0f} s"
    fig.passed = fig.value <= 10 and report.get("events") == count
    return fig


def tracker(calls: int, timeout: float) -> Figure:
    fig = Figure("tracker_memory", f"T4 call tracker memory over {calls:,} finished calls", unit="blocks",
                 target="flat: ≤ +1% blocks")
    proc = subprocess.run([PYTHON, "-m", "benchmarks.tracker_memory", "--calls", str(calls)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        fig.note = proc.stderr[-200:]
        return fig
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    early, end = r["early"], r["end"]
    fig.value = end["blocks"] - early["blocks"]
    fig.anchor_label, fig.anchor = f"after {r['calls_early']:,} calls", early["blocks"]
    fig.ratio = end["blocks"] / early["blocks"]
    fig.checks = r
    fig.note = (f"{early['channels']} → {end['channels']} channels, RSS {early['rss'] / 1e6:.1f} → "
                f"{end['rss'] / 1e6:.1f} MB, {r['changes'].get('ended', 0):,} calls ended")
    fig.passed = (fig.ratio <= 1.01 and end["channels"] <= max(early["channels"], 1) * 1.1
                  and r["changes"].get("ended") == calls)
    return fig


def measure(count: int, calls: int, timeout: float) -> list[Figure]:
    return [watch_rss(count, timeout), tracker(calls, timeout)]
