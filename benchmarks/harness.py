"""Pieces the runner shares: figures, the firehose process, running a client."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable  # the project's interpreter, with eslkit installed
PASSWORD_ENV = {"ESL_PASSWORD": "ClueCon"}


@dataclass
class Figure:
    """One row of the table."""

    key: str
    label: str
    value: Optional[float] = None
    unit: str = ""
    anchor_label: str = ""
    anchor: Optional[float] = None
    ratio: Optional[float] = None
    target: str = ""
    passed: Optional[bool] = None  # None: informative row, no target
    checks: dict = field(default_factory=dict)  # correctness facts (events, errors …)
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def fmt_num(value: Optional[float], unit: str = "") -> str:
    if value is None:
        return "—"
    if float(value).is_integer() and abs(value) < 1000:
        text = f"{value:.0f}"
    elif abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def table(figures: list[Figure]) -> str:
    """A GitHub-flavoured markdown table (readable in a terminal and in docs)."""
    rows = [("figure", "measured", "anchor", "ratio", "target", "result")]
    for f in figures:
        result = "—" if f.passed is None else ("PASS" if f.passed else "FAIL")
        if f.value is None and f.note:
            result = f"not measured: {f.note}"
        rows.append((
            f.label,
            fmt_num(f.value, f.unit),
            f"{f.anchor_label} {fmt_num(f.anchor)}".strip() if f.anchor_label else "",
            f"{f.ratio:.2f}×" if f.ratio is not None else "",
            f.target,
            result,
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


class Reporter:
    """Reads JSON lines from a child's stdout on a thread, with arrival times."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.lines: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            t = time.monotonic()
            try:
                self.lines.put((t, json.loads(line)))
            except ValueError:
                self.lines.put((t, {"text": line.decode("utf-8", "replace") if isinstance(line, bytes) else line}))
        self.lines.put((time.monotonic(), None))

    def next(self, timeout: float) -> dict:
        try:
            _, item = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no report within {timeout:g} s") from None
        if item is None:
            raise RuntimeError("the reporting process ended")
        return item


class Server:
    """A benchmark server process (`python -m benchmarks.<module>`) whose first line is its port."""

    def __init__(self, module: str, *args: str):
        self.proc = subprocess.Popen(
            [PYTHON, "-m", f"benchmarks.{module}", *args], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.reports = Reporter(self.proc)
        try:
            self.port = self.reports.next(30)["port"]
        except (TimeoutError, RuntimeError):
            self.close()
            raise RuntimeError(f"benchmarks.{module} did not start: {self.proc.stderr.read()[-2000:]}")

    def close(self) -> None:
        stop(self.proc, 5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen, grace: float = 10) -> None:
    """Terminate a process, and kill it if it has not ended within ``grace`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def run_client(argv: list[str], timeout: float, env: Optional[dict] = None,
               stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **PASSWORD_ENV, **(env or {}))
    return subprocess.run(argv, cwd=ROOT, env=full_env, stdout=stdout, stderr=subprocess.PIPE,
                          timeout=timeout, check=False)


def last_json(text: bytes) -> dict:
    for line in reversed(text.decode("utf-8", "replace").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    return {}
