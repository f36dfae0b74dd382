"""`eslkit popup` in a real pseudo-terminal (pexpect), against `eslkit sim` running
as its own process, and a replayed transcript full of hostile caller names."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect", reason="pexpect is in the test extras: pip install -e '.[test]'")

from eslkit.event import Event  # noqa: E402
from eslkit.protocol import EventFrame, Parser, event_frame  # noqa: E402
from tests.support.sim import ESLKIT, sim_subprocess  # noqa: E402

EXE = str(ESLKIT) if ESLKIT.exists() else sys.executable
PREFIX = [] if ESLKIT.exists() else ["-m", "eslkit"]


def spawn(*args: str, env_extra=None, rows=40, cols=100):
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)}
    env.pop("NO_COLOR", None)
    env.update(env_extra or {})
    child = pexpect.spawn(EXE, [*PREFIX, *args], env=env, dimensions=(rows, cols), timeout=20,
                          encoding="utf-8", codec_errors="replace")
    return child


CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Screen:
    """Everything a child printed: raw bytes (as text) and the same without SGR/cursor codes."""

    def __init__(self, child):
        self.child = child
        self.raw = ""

    @property
    def text(self) -> str:
        return CSI.sub("", self.raw)

    def wait_for(self, needle: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        start = len(self.text)
        while needle not in self.text[max(start - len(needle) - 200, 0):]:
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not shown; last output: {self.text[-600:]!r}")
            try:
                self.raw += self.child.read_nonblocking(65536, timeout=0.2)
            except pexpect.TIMEOUT:
                continue

    def wait_after(self, mark: str, needle: str, timeout: float = 20.0) -> None:
        """``needle`` shown after the last ``mark`` (the rest of a panel being drawn)."""
        deadline = time.monotonic() + timeout
        while needle not in self.text[self.text.rindex(mark):]:
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not shown after {mark!r}; last output: {self.text[-600:]!r}")
            try:
                self.raw += self.child.read_nonblocking(65536, timeout=0.2)
            except pexpect.TIMEOUT:
                continue

    def until_eof(self, timeout: float = 20.0) -> None:
        self.child.expect(pexpect.EOF, timeout=timeout)
        self.raw += self.child.before or ""
        self.child.close()


def stop(child) -> str:
    """Ctrl-C as a user would; returns what was printed after it."""
    child.sendintr()
    child.expect(pexpect.EOF, timeout=10)
    child.close()
    return child.before or ""


def test_panel_in_a_terminal_against_the_simulator():
    with sim_subprocess("--scenario", "queue", "--loop", "--speed", "4") as (host, port):
        child = spawn("popup", "--ext", "1001", "--host", host, "--port", str(port),
                      env_extra={"ESL_PASSWORD": "ClueCon"})
        screen = Screen(child)
        try:
            screen.wait_for("connected to 127.0.0.1")
            screen.wait_for("1001 · Ringing")
            for shown in ("Caller 6208", "Dialled 2000", "Ringing  0:0"):
                screen.wait_for(shown)  # the panel may still be drawing its lines
            screen.wait_for("1001 · Connected")
            screen.wait_for("1001 · Ended")
            screen.wait_after("1001 · Ended", "NORMAL_CLEARING")  # the panel may still be drawing its lines
            screen.wait_for("Recent calls")
        finally:
            rest = stop(child)
    assert child.exitstatus == 0, rest
    assert "Traceback" not in rest


def test_panel_shows_what_happened_to_1002():
    with sim_subprocess("--scenario", "queue", "--loop", "--speed", "4") as (host, port):
        child = spawn("popup", "--ext", "1002", "--host", host, "--port", str(port),
                      env_extra={"ESL_PASSWORD": "ClueCon"})
        screen = Screen(child)
        try:
            screen.wait_for("1002 · Ringing")
            screen.wait_for("1002 · Answered by 1001")
        finally:
            stop(child)
    assert child.exitstatus == 0


def test_wrong_password_is_one_line_and_an_exit_code():
    with sim_subprocess("--scenario", "queue") as (host, port):
        child = spawn("popup", "--ext", "1001", "--host", host, "--port", str(port),
                      env_extra={"ESL_PASSWORD": "not-the-password"})
        child.expect(pexpect.EOF)
        child.close()
    assert child.exitstatus == 5
    assert "Traceback" not in (child.before or "")


OSC_TITLE = "\x1b]0;PWNED\x07"
HOSTILE_NAME = OSC_TITLE + "\x1b[2J\x1b[31m[bold]Boss[/bold]\u202eevil" + "X" * 10_000


def hostile_transcript(captures: Path, out: Path) -> Path:
    parser = Parser()
    data = bytearray()
    for frame in parser.feed((captures / "scenario_queue_plain.raw").read_bytes()):
        if isinstance(frame, EventFrame):
            pairs = [(k, HOSTILE_NAME if k == "Caller-Caller-ID-Name" else v) for k, v in frame.event.pairs()]
            data += event_frame(Event(pairs, frame.event.body), "plain")
    out.write_bytes(bytes(data))
    return out


def test_hostile_caller_name_in_a_real_terminal(captures, tmp_path):
    path = hostile_transcript(captures, tmp_path / "hostile.raw")
    child = spawn("popup", "--ext", "1001", "--replay", str(path), "--speed", "10", "--format", "panel")
    screen = Screen(child)
    screen.wait_for("1001 · Ringing")
    screen.until_eof()
    out, seen = screen.raw, screen.text
    assert child.exitstatus == 0
    # shown, made visible and cut...
    assert "␛]0;PWNED␇" in seen or "␛]0;PWNED" in seen
    assert "[bold]Boss[/bold]" in seen
    assert "<U+202E>" in seen
    # ...and never obeyed: no title change, no clear screen, no red from the caller, no bidi override
    for bad in ("\x1b]0;PWNED", "\x1b[2J", "\x1b[31m[bold]", "\u202e"):
        assert bad not in out
    assert "X" * 200 not in out


def test_bell_rings_only_when_asked(captures):
    path = str(captures / "scenario_queue_plain.raw")
    outputs = {}
    for flag in ([], ["--bell"]):
        child = spawn("popup", "--ext", "1001", "--replay", path, "--speed", "20", "--format", "panel", *flag)
        screen = Screen(child)
        screen.until_eof()
        assert child.exitstatus == 0
        outputs[bool(flag)] = screen.raw
    assert "\x07" in outputs[True]
    assert "\x07" not in outputs[False]


def test_panel_says_when_the_switch_goes_away():
    with sim_subprocess("--scenario", "queue", "--speed", "max") as (host, port):
        child = spawn("popup", "--ext", "1001", "--host", host, "--port", str(port),
                      env_extra={"ESL_PASSWORD": "ClueCon"})
        screen = Screen(child)
        screen.wait_for(f"connected to {host}:{port}")
    # the simulator has shut down like FreeSWITCH does: the popup stays, says so, retries
    try:
        screen.wait_for("○ reconnecting — The switch at")
        assert "The system is being shut down" in screen.text
    finally:
        rest = stop(child)
    assert child.exitstatus == 0
    assert "Traceback" not in screen.text + rest


def test_exec_output_shows_above_the_panel(captures):
    """The --exec program's output was thrown away; in the panel it prints above the box,
    which Rich redraws below it."""
    child = spawn("popup", "--ext", "1002", "--replay", str(captures / "scenario_noanswer_plain.raw"),
                  "--speed", "4", "--exec", "echo", "CRM lookup for {caller_number}")
    screen = Screen(child)
    screen.wait_for("eslkit: --exec echo: CRM lookup for 6208")
    screen.until_eof()
    assert child.exitstatus == 0, screen.text[-1500:]
    text = screen.text
    assert "1002 · Ringing" in text
    assert text.rindex("eslkit: --exec echo: CRM lookup for 6208") < text.rindex("1002 · ")
