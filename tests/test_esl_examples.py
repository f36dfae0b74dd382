"""The article's two example programs (tests/data/esl_examples), unchanged, against
`eslkit sim`, once with ``import ESL`` giving the C module and once the pure one: they
print the same lines.

``import ESL`` gives the pure one through ``eslkit build --pure --out DIR``.  The simulator
replays a real capture (``--replay``) so that both runs see the very same
events, then hangs up.  The programs loop for ever — after the hang-up recvEvent keeps
returning a SERVER_DISCONNECTED event, which they print too — so each run is read until
that has been printed three times, then stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CAPTURES
from tests.support.sim import sim_subprocess

EXAMPLES = Path(__file__).parent / "data" / "esl_examples"


@pytest.fixture(scope="module")
def module_dirs(esl_modules, tmp_path_factory):
    """{"C": dir of the SWIG ESL.py + _ESL, "pure": dir where `import ESL` is eslkit's}."""
    c_dir = Path(esl_modules[0].__file__).parent
    pure_dir = tmp_path_factory.mktemp("pure-esl")
    subprocess.run([sys.executable, "-m", "eslkit", "build", "--pure", "--out", str(pure_dir)],
                   check=True, capture_output=True, timeout=120)
    return {"C": c_dir, "pure": pure_dir}


def run_example(script: str, module_dir: Path, port: int, marker: str, repeats: int = 3) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(module_dir), "ESL_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, str(EXAMPLES / script)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, text=True, cwd=module_dir)
    lines, seen = [], 0
    try:
        for line in proc.stdout:
            lines.append(line)
            seen += marker in line
            if seen == repeats:
                break
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    assert seen == repeats, f"{script} stopped after {len(lines)} lines"
    return lines


@pytest.mark.parametrize("script,capture,marker", [
    ("events_json.py", "scenario_queue_plain.raw", '"Event-Name":\t"SERVER_DISCONNECTED"'),
    ("display.py", "scenario_queue_plain.raw", "Event: SERVER_DISCONNECTED"),
    ("display.py", "scenario_noanswer_plain.raw", "Event: SERVER_DISCONNECTED"),
])
def test_example_prints_the_same_with_both_modules(module_dirs, script, capture, marker):
    outputs = {}
    for kind in ("C", "pure"):
        with sim_subprocess("--replay", str(CAPTURES / capture), "--speed", "max") as (host, port):
            outputs[kind] = run_example(script, module_dirs[kind], port, marker)
    assert outputs["pure"] == outputs["C"]
    events = [line for line in outputs["C"] if "CHANNEL_" in line and "Event" in line]
    assert events, "the program printed no call event"
