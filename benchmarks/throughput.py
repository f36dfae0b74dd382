"""Targets 1 and 2: events/s through each client on the same firehose, as ratios to the C module.

Every client reads the same ``count`` events.  The time is taken by the
firehose, from its first event byte to the client hanging up, so libraries,
the C module and eslkit's commands are all timed the same way.  Each
repetition runs every client once (in a rotated order) and a ratio is taken
within the repetition; the median over repetitions is quoted.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Optional

from benchmarks import env
from benchmarks.corpus import write_expected
from benchmarks.harness import PYTHON, ROOT, Figure, Server, last_json, run_client

CLIENTS = ROOT / "benchmarks" / "clients"
ANCHOR_LABELS = {"c_esl": "C ESL", "c_esl_json": "C ESL json"}
_SUMMARY = re.compile(r"(\d+) events received.*?(\d+) dropped")


class Client:
    def __init__(self, key: str, label: str, argv: Callable[[int], list[str]], *,
                 env: Optional[dict] = None, kind: str = "script", target: Optional[float] = None,
                 stdout_devnull: bool = False, anchor: str = "c_esl"):
        self.key, self.label, self.argv, self.env = key, label, argv, env
        self.kind = kind  # "script": prints a result line; "watch": eslkit watch
        self.target = target
        self.stdout_devnull = stdout_devnull
        self.anchor = anchor  # the C module row its ratio is taken against
        self.unavailable: Optional[str] = None


def clients(count: int, expected: Path) -> list[Client]:
    exp = str(expected)
    out: list[Client] = []
    try:
        cdir = str(env.c_module_dir())
    except env.Unavailable as exc:
        cdir = None
        reason = str(exc)
    c = [
        Client("c_esl", "C ESL module: recvEvent + getHeader",
               lambda p: [PYTHON, str(CLIENTS / "c_esl.py"), str(p), str(count), exp],
               env={"PYTHONPATH": cdir or ""}),
        Client("c_esl_json", "C ESL module: serialize(\"json\") + json.loads",
               lambda p: [PYTHON, str(CLIENTS / "c_esl.py"), str(p), str(count), exp, "--json"],
               env={"PYTHONPATH": cdir or ""}),
    ]
    if cdir is None:
        for cl in c:
            cl.unavailable = reason
    out += c
    # The same two loops on eslkit's pure-Python ESL module: `from eslkit import ESL`.
    out.append(Client("pure_esl", "eslkit.ESL (pure Python): recvEvent + getHeader",
                      lambda p: [PYTHON, str(CLIENTS / "c_esl.py"), str(p), str(count), exp, "--pure"],
                      target=1.0))
    out.append(Client("pure_esl_json", "eslkit.ESL (pure Python): serialize(\"json\") + json.loads",
                      lambda p: [PYTHON, str(CLIENTS / "c_esl.py"), str(p), str(count), exp, "--pure", "--json"],
                      target=1.0, anchor="c_esl_json"))
    try:
        other = str(env.others_python())
        reason = None
    except env.Unavailable as exc:
        other, reason = "false", str(exc)
    for key, label in (("greenswitch", "greenswitch 0.0.19 (gevent)"), ("genesis", "genesis (asyncio)")):
        cl = Client(key, label, lambda p, k=key: [other, str(CLIENTS / f"{k}_client.py"), str(p), str(count), exp])
        cl.unavailable = reason
        out.append(cl)
    out.append(Client("bare_socket", "bare Python socket, counting frames",
                      lambda p: [PYTHON, str(CLIENTS / "bare_socket.py"), str(p), str(count), exp]))
    out.append(Client("eslkit_client", "eslkit.client.Connection + Event-Name, Unique-ID",
                      lambda p: [PYTHON, str(CLIENTS / "eslkit_client.py"), str(p), str(count), exp]))
    watch = [PYTHON, "-m", "eslkit", "watch", "--host", "127.0.0.1", "--no-reconnect", "--count", str(count)]
    out.append(Client("watch_quiet", "T1 eslkit watch --format plain --quiet --count N",
                      lambda p: watch + ["--port", str(p), "--format", "plain", "--quiet"],
                      kind="watch", target=2.0))
    out.append(Client("watch_json", "T2 eslkit watch --format json > /dev/null",
                      lambda p: watch + ["--port", str(p), "--format", "json"],
                      kind="watch", target=1.0, stdout_devnull=True))
    return out


def _one(client: Client, server: Server, count: int, timeout: float) -> dict:
    """Run one client once; return its rate and what it checked."""
    stdout = subprocess.DEVNULL if client.stdout_devnull else subprocess.PIPE
    proc = run_client(client.argv(server.port), timeout, env=client.env, stdout=stdout)
    rep = server.reports.next(30)
    res = {"rc": proc.returncode, "seconds": rep.get("seconds"), "sent": rep.get("events")}
    if proc.returncode != 0:
        res["error"] = proc.stderr.decode("utf-8", "replace")[-500:]
        return res
    if client.kind == "script":
        got = last_json(proc.stdout or b"")
        res.update(events=got.get("events"), errors=got.get("errors"), first_error=got.get("first_error"),
                   dropped=got.get("dropped", 0), checked=got.get("checked", True))
    else:
        m = _SUMMARY.search(proc.stderr.decode("utf-8", "replace"))
        res.update(events=int(m.group(1)) if m else None, dropped=int(m.group(2)) if m else None,
                   errors=0, checked=False)
    if res["seconds"]:
        res["rate"] = count / res["seconds"]
    return res


def check_watch_json(server: Server, count: int, expected: Path, timeout: float) -> dict:
    """Untimed: every NDJSON line of `watch --format json` has the right Event-Name and Unique-ID."""
    want = [tuple(x) for x in json.loads(expected.read_text())]
    with tempfile.TemporaryFile() as out:
        proc = run_client([PYTHON, "-m", "eslkit", "watch", "--host", "127.0.0.1", "--port", str(server.port),
                           "--no-reconnect", "--count", str(count), "--format", "json"], timeout, stdout=out)
        server.reports.next(30)
        out.seek(0)
        lines = out.read().splitlines()
    errors, first = 0, None
    for i, line in enumerate(lines):
        d = json.loads(line)
        got = (d.get("Event-Name"), d.get("Unique-ID"))
        if got != want[i % len(want)]:
            errors += 1
            first = first or f"line {i}: {got!r} != {want[i % len(want)]!r}"
    return {"rc": proc.returncode, "events": len(lines), "errors": errors + abs(len(lines) - count),
            "first_error": first}


def measure(count: int, reps: int, timeout: float, only: Optional[list] = None) -> list[Figure]:
    """Every client (or the anchor plus ``only``), ``reps`` times each."""
    work = Path(tempfile.mkdtemp(prefix="eslkit-bench-"))
    expected = work / "expected.json"
    write_expected(expected)
    every = clients(count, expected)
    wanted = {key for c in every if not only or c.key in only for key in (c.key, c.anchor)}
    cls = [c for c in every if c.key in wanted or c.key == "c_esl"]
    runs: dict[str, list[dict]] = {c.key: [] for c in cls}
    try:
        with Server("firehose", "--count", str(count)) as server:
            json_check = check_watch_json(server, min(count, 20_000), expected, timeout)
            for rep in range(reps):
                order = cls[rep % len(cls):] + cls[:rep % len(cls)]
                for client in order:
                    if client.unavailable:
                        continue
                    runs[client.key].append(_one(client, server, count, timeout))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = []
    for client in cls:
        rs = runs[client.key]
        anchor = runs.get(client.anchor, [])
        ok = [r for r in rs if r.get("rc") == 0 and r.get("rate")]
        checks = {
            "runs": len(rs),
            "events": [r.get("events") for r in rs],
            "errors": sum(r.get("errors") or 0 for r in rs),
            "dropped": sum(r.get("dropped") or 0 for r in rs),
            "complete": all(r.get("sent") == count for r in rs),
            "first_error": next((r.get("first_error") or r.get("error") for r in rs
                                 if r.get("first_error") or r.get("error")), None),
        }
        if client.key == "watch_json":
            checks["ndjson_check"] = json_check
        fig = Figure(client.key, client.label, unit="ev/s", checks=checks)
        if client.unavailable or not ok:
            fig.note = client.unavailable or (checks["first_error"] or "failed")[:200]
            figures.append(fig)
            continue
        fig.value = statistics.median(r["rate"] for r in ok)
        ratios = [r.get("rate") / a.get("rate") for r, a in zip(rs, anchor)
                  if r.get("rate") and a.get("rate")]
        if client.key != "c_esl" and ratios:
            fig.anchor_label = ANCHOR_LABELS[client.anchor]
            fig.anchor = statistics.median(a["rate"] for a in anchor if a.get("rate"))
            fig.ratio = statistics.median(ratios)
        elif client.key == "c_esl":
            fig.ratio = 1.0
            fig.note = "anchor"
        correct = checks["errors"] == 0 and checks["dropped"] == 0 and checks["complete"] and \
            all(e is not None and e >= count for e in checks["events"])
        if client.key == "watch_json":
            correct = correct and json_check["errors"] == 0 and json_check["rc"] == 0
        checks["correct"] = correct
        if client.target is not None:
            fig.target = f"≥ {client.target:g}× {ANCHOR_LABELS[client.anchor]}"
            fig.passed = bool(fig.ratio is not None and fig.ratio >= client.target and correct)
        figures.append(fig)
    return figures
