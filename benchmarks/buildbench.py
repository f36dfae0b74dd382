"""Target 6: `eslkit build` on a FreeSWITCH-shaped tree (the python-ESL sdist's
real C sources laid out as 1.11 ships them; tests/support/fstree.py).

(a) A second build with nothing changed, wall time of the whole command.
(b) A standalone build against the bare commands it runs: the swig, gcc and
g++ lines of its own ``--log``, run one after another by a shell.  Both are
wall time; the ratio is taken within a repetition, the median quoted.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import PYTHON, ROOT, Figure


def _timed(argv: list[str], timeout: float, **kw) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kw)
    return time.monotonic() - t0, proc


def measure(reps: int, timeout: float) -> list[Figure]:
    sys.path.insert(0, str(ROOT))
    from tests.support.fstree import make_tree

    second = Figure("build_second", "T6 eslkit build, second build (nothing changed)", unit="s",
                    target="≤ 0.5 s")
    standalone = Figure("build_standalone", "T6 eslkit build standalone vs its bare commands", unit="s",
                        target="≤ 1.2× bare")
    work = Path(tempfile.mkdtemp(prefix="eslkit-bench-build-"))
    try:
        tree = make_tree(work / "tree", "1.11")
        builds, bares, ratios, seconds, errors = [], [], [], [], []
        for rep in range(reps):
            out, log = work / f"out{rep}", work / f"build{rep}.log"
            t_build, proc = _timed([PYTHON, "-m", "eslkit", "build", "--src", str(tree), "--out", str(out),
                                    "--log", str(log), "--force", "--mode", "standalone"], timeout, cwd=ROOT)
            if proc.returncode != 0:
                errors.append((proc.stdout + proc.stderr)[-300:])
                break
            t_second, proc2 = _timed([PYTHON, "-m", "eslkit", "build", "--src", str(tree), "--out", str(out),
                                      "--mode", "standalone"], timeout, cwd=ROOT)
            if proc2.returncode != 0 or "up to date" not in proc2.stdout:
                errors.append("second build was not a no-op: " + (proc2.stdout + proc2.stderr)[-300:])
            seconds.append(t_second)
            commands = [line[2:] for line in log.read_text().splitlines() if line.startswith("$ ")]
            script = "set -e\n" + "\n".join(commands) + "\n"
            t_bare, proc3 = _timed(["bash", "-c", script], timeout)
            if proc3.returncode != 0:
                errors.append("bare commands failed: " + proc3.stderr[-300:])
                break
            builds.append(t_build)
            bares.append(t_bare)
            ratios.append(t_build / t_bare)
        if seconds:
            second.value = statistics.median(seconds)
            second.passed = second.value <= 0.5 and not errors
            second.checks = {"runs": seconds, "errors": errors}
        else:
            second.note = (errors or ["no build"])[0][:200]
        if ratios:
            standalone.value = statistics.median(builds)
            standalone.anchor_label, standalone.anchor = "bare", statistics.median(bares)
            standalone.ratio = statistics.median(ratios)
            standalone.passed = standalone.ratio <= 1.2 and not errors
            standalone.checks = {"builds": builds, "bare": bares, "commands": len(commands), "errors": errors}
        else:
            standalone.note = (errors or ["no build"])[0][:200]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return [second, standalone]
