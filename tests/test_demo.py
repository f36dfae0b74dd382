"""`eslkit demo` started and stopped the way a new user does: in a terminal, then Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest

pexpect = pytest.importorskip("pexpect", reason="pexpect is in the test extras: pip install -e '.[test]'")

from tests.test_popup_pty import EXE, PREFIX, Screen, spawn  # noqa: E402


def test_demo_in_a_terminal_then_ctrl_c():
    child = spawn("demo")  # exactly what the README tells a new user to type
    screen = Screen(child)
    try:
        screen.wait_for("1001 · Ringing")
        assert "1002 · Ringing" in screen.text or screen.wait_for("1002 · Ringing") is None
        assert "Caller 6208" in screen.text
        screen.wait_for("1002 · Answered by 1001", timeout=15)
        screen.wait_for("1001 · Connected", timeout=5)
    finally:
        child.sendintr()
        screen.until_eof(timeout=10)
    assert child.exitstatus == 0, screen.text[-2000:]
    assert "Traceback" not in screen.text and "Error" not in screen.text
    # the terminal is left usable: the cursor shown again, nothing half-drawn
    assert screen.raw.rstrip().endswith(("\x1b[?25h", "\n")) or "\x1b[?25h" in screen.raw[-200:]


def test_demo_loops_and_speaks_json():
    proc = subprocess.Popen([EXE, *PREFIX, "demo", "--format", "json", "--speed", "8"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ})
    records = []
    try:
        for line in proc.stdout:
            records.append(json.loads(line))
            if sum(r["state"] == "ended" and r["ext"] == "1001" for r in records) == 2:
                break  # the second call ended: the scenario loops
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    call = records[0]["call_uuid"]
    first = [(r["ext"], r["state"], r["outcome"]) for r in records if r["call_uuid"] == call]
    assert first == [("1001", "ringing", None), ("1002", "ringing", None), ("1001", "answered", None),
                     ("1002", "ended", "answered_elsewhere"), ("1001", "ended", "answered")]
    assert len({r["call_uuid"] for r in records}) == 2


@pytest.mark.parametrize("argv, sentence", [
    (["--control", "--format", "json"], "the phone keys need the panel on a terminal"),
])
def test_demo_control_without_a_panel_is_a_usage_error(argv, sentence):
    """The keys live in the terminal panel: asked for elsewhere, demo says so and starts nothing
    (`demo --web --control` has the page's buttons: tests/test_serve_browser.py)."""
    done = subprocess.run([EXE, *PREFIX, "demo", *argv], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 2, done.stderr
    assert sentence in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_demo_into_head_ends_quietly_like_watch_and_popup():
    """`eslkit demo | head -4` exited 1 with no word (BrokenPipeError at the reader's exit);
    `watch | head` and `popup | head` exit 0.  The intro line is not wrapped at 80 columns."""
    cmd = " ".join([EXE, *PREFIX]) + " demo --format json --speed 20 | head -4"
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert [json.loads(x)["ext"] for x in r.stdout.splitlines()] and len(r.stdout.splitlines()) == 4
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith("eslkit demo: a simulated switch on ")
