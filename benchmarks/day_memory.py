"""Target 10 (issue 19): a long day — `serve`, `relay` and `popup` each take N simulated calls
(`eslkit sim --scenario load:calls=N,...,agents=1000 --speed max`, each call with new UUIDs,
over a thousand agents 1001–2000) as a user runs them, their RSS read from /proc every
0.2 s.  Growth is the highest RSS in the last tenth of the run minus the RSS at the end of
the warm-up, the first fifth of the run (20,000 calls of 100,000): what is bounded by design
fills within it — serve's day lists (10 MB, ~10,000 calls), the popup panel's ten recent
legs per extension (~5,000 calls), the trackers' 60 s of ended channels — so what grows
after it grows with the day.  The checks also give the RSS a tenth of the way in and at
the middle, to show the filling.  The run ends when the simulator has started every call's
channels (its `status`: three a call, the caller and two agents) and the command has then
had nothing to do for 2 s (its CPU time stands still): a loaded machine can starve the
simulator for seconds, which alone must not end the run.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.harness import PASSWORD_ENV, PYTHON, ROOT, Figure, cpu_seconds, stop
from benchmarks.memory import _rss
from benchmarks.simload import _free_port, _wait_listening

AGENTS = 1000
CHANNELS_PER_CALL = 3  # the load scenario's queue call: the caller's channel and two agents' legs
WARM_UP = 0.2  # the first fifth of the run: the bounded windows fill (see above)
EXTS = [str(1001 + i) for i in range(AGENTS)]


def _command(name: str, sim_port: int, tmp: Path, broker) -> list[str]:
    esl = ["--host", "127.0.0.1", "--port", str(sim_port)]
    if name == "serve":
        from eslkit.web.users import hash_token

        users = tmp / "users.txt"
        users.write_text("".join(f"a{ext}:agent:{ext}:{hash_token('t' + ext)}\n" for ext in EXTS))
        return ["serve", "--users", str(users), "--listen", f"127.0.0.1:{_free_port()}", *esl]
    if name == "popup":
        return ["popup", "--ext", ",".join(EXTS), "--format", "json", *esl]
    return ["relay", "--to", f"mqtt://127.0.0.1:{broker.port}", *esl]


IDLE = 2.0  # seconds the command's CPU time must stand still, once every call has started
MIN_SAMPLES = 10  # of the run itself (the idle tail left out): a tenth, a fifth and the last tenth apart


def run(name: str, calls: int, timeout: float, broker=None, interval: float = 0.2) -> Figure:
    fig = Figure(f"day_{name}", f"T10 RSS growth of {name} over {calls:,} calls ({AGENTS:,} agents)", unit="MB",
                 target="≤ 10 MB")
    env = dict(os.environ, **PASSWORD_ENV)
    with tempfile.TemporaryDirectory(prefix="eslkit-bench-day-") as tmp:
        sim_port = _free_port()
        sim = subprocess.Popen([PYTHON, "-m", "eslkit", "sim", "--port", str(sim_port), "--speed", "max", "--scenario",
                                f"load:calls={calls},cps=1000,concurrent=200,agents={AGENTS}"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        proc = None
        try:
            _wait_listening(sim_port, sim)
            proc = subprocess.Popen([PYTHON, "-m", "eslkit", *_command(name, sim_port, Path(tmp), broker)],
                                    cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            ended_legs = [0]  # popup's JSON lines: every agent leg must end (two a call)
            counter = threading.Thread(target=_count_ended, args=(proc.stdout, ended_legs), daemon=True)
            counter.start()
            samples, still, made = [], 0, 0
            deadline = time.monotonic() + timeout
            cpu = 0.0
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(interval)
                rss, now_cpu = _rss(proc.pid), cpu_seconds(proc.pid)
                if rss:
                    samples.append((time.monotonic(), rss))
                if made < CHANNELS_PER_CALL * calls and len(samples) % max(1, round(1 / interval)) == 0:
                    made = _sessions(sim_port)
                done = made >= CHANNELS_PER_CALL * calls
                still = still + 1 if done and now_cpu - cpu < 0.01 else 0
                cpu = now_cpu
                if still * interval >= IDLE:
                    break
            ended = proc.poll()
        finally:
            if proc is not None:
                stop(proc)
            stop(sim)
        err = proc.stderr.read().decode("utf-8", "replace") if proc is not None else ""
    samples = samples[:len(samples) - still]  # the idle tail
    fig.checks = {"calls": calls, "agents": AGENTS, "sim_channels": made, "ended_legs": ended_legs[0] if name == "popup" else None,
                  "samples": len(samples), "interval": interval, "cpu_s": cpu, "ended_early": ended,
                  "loadavg": Path("/proc/loadavg").read_text().split()[:3], "stderr": err[-300:]}
    if len(samples) < MIN_SAMPLES or ended is not None or made < CHANNELS_PER_CALL * calls:
        fig.note = (f"{name} ended too soon or never settled ({len(samples)} samples, the simulator made "
                    f"{made:,} of {CHANNELS_PER_CALL * calls:,} channels): {err[-200:]}")
        return fig
    t0, t1 = samples[0][0], samples[-1][0]

    def at(fraction: float) -> int:
        return min(samples, key=lambda s: abs(s[0] - (t0 + fraction * (t1 - t0))))[1]

    early = at(WARM_UP)
    late = max(rss for t, rss in samples if t >= t0 + 0.9 * (t1 - t0))
    fig.value = (late - early) / 1e6
    fig.checks.update(rss_start_mb=samples[0][1] / 1e6, rss_tenth_mb=at(0.1) / 1e6, rss_early_mb=early / 1e6,
                      rss_half_mb=at(0.5) / 1e6, rss_late_mb=late / 1e6,
                      rss_peak_mb=max(r for _, r in samples) / 1e6, seconds=t1 - t0)
    fig.note = (f"{early / 1e6:.1f} → {late / 1e6:.1f} MB after the warm-up (start {samples[0][1] / 1e6:.1f}, "
                f"a tenth in {at(0.1) / 1e6:.1f}, half-way {at(0.5) / 1e6:.1f}, peak {fig.checks['rss_peak_mb']:.1f}) "
                f"in {t1 - t0:.0f} s, {cpu:.0f} s CPU")
    fig.passed = fig.value <= 10 and (name != "popup" or ended_legs[0] == 2 * calls)
    return fig


def _sessions(port: int) -> int:
    """The simulator's channels since it started (`api status`, as FreeSWITCH says it)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.settimeout(5)
            reply = b""
            sock.recv(4096)  # auth/request
            sock.sendall(f"auth {PASSWORD_ENV['ESL_PASSWORD']}\n\napi status\n\n".encode())
            while b"since startup" not in reply:
                data = sock.recv(65536)
                if not data:
                    break
                reply += data
    except OSError:
        return 0
    found = re.search(rb"(\d+) session\(s\) since startup", reply)
    return int(found.group(1)) if found else 0


def _count_ended(stream, count: list) -> None:
    for line in stream:
        if b'"state": "ended"' in line:  # popup's JSON lines (json.dumps' separators)
            count[0] += 1


def measure(calls: int, timeout: float, only=("serve", "popup", "relay"), interval: float = 0.2) -> list[Figure]:
    """`interval`: seconds between RSS samples (the smoke form's few calls are over in a
    second on a quick machine: it samples more often)."""
    figures = [run(name, calls, timeout, interval=interval) for name in only if name != "relay"]
    if "relay" in only:
        from tests.support.brokers import Mosquitto

        with tempfile.TemporaryDirectory(prefix="eslkit-bench-day-mqtt-") as d:
            mosquitto = Mosquitto(Path(d) / "mqtt")
            mosquitto.start()
            try:
                figures.append(run("relay", calls, timeout, broker=mosquitto, interval=interval))
            finally:
                mosquitto.stop()
    return figures
