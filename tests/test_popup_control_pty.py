"""`eslkit popup --control` in a real pseudo-terminal: the agent presses keys, the simulated
switch (its own process) does what a real one did, the panel shows it; what cannot be a
number never reaches the switch, and without --control the keys do nothing."""

from __future__ import annotations

import pytest

from tests.support.sim import sim_subprocess
from tests.test_phone import ApiLog

pexpect = pytest.importorskip("pexpect", reason="pexpect is in the test extras: pip install -e '.[test]'")

from tests.test_popup_pty import Screen, spawn, stop  # noqa: E402

ENV = {"ESL_PASSWORD": "ClueCon"}


def press(child, screen: Screen, keys: str, then: str) -> None:
    child.send(keys)
    screen.wait_for(then)


def test_the_keys_dial_hold_transfer_and_say_what_happened():
    with sim_subprocess("--scenario", "idle", "--speed", "5") as (host, port):
        api = ApiLog((host, port))
        child = spawn("popup", "--ext", "1001", "--control", "--host", host, "--port", str(port), env_extra=ENV)
        screen = Screen(child)
        try:
            screen.wait_for("a answer  h hold/unhold  x hang up  t transfer  d dial  Tab next call")
            press(child, screen, "d", "Dial: ")
            child.send("62 08&|'{")  # only what could be part of a number is taken
            screen.wait_for("Dial: 6208▏")
            press(child, screen, "\r", "✓ 1001: dialling 6208")
            screen.wait_for("▸ 1001 · Connected")
            screen.wait_for("To     6208")
            api.wait_bridged()
            press(child, screen, "h", "✓ 1001: call to 6208 on hold")
            screen.wait_for("1001 · On hold")
            press(child, screen, "h", "✓ 1001: call to 6208 taken off hold")
            press(child, screen, "t", "Transfer to: ")
            child.send("1003")
            screen.wait_for("Transfer to: 1003▏")
            press(child, screen, "\x1b", "✓ 1001: call to 6208 taken off hold")  # Esc: nothing sent
            press(child, screen, "t", "Transfer to: ")
            child.send("1002\r")
            screen.wait_for("✓ 1001: call to 6208 transferred to 1002")
            screen.wait_for("1001 · Ended")
            press(child, screen, "x", "✗ 1001 has no call right now.")
        finally:
            rest = stop(child)
        assert child.exitstatus == 0, rest
        assert "Traceback" not in screen.text + rest
        assert [c.split()[0] for c in api.acting()] == ["originate", "uuid_hold", "uuid_hold", "uuid_transfer"]
        assert "1003" not in " ".join(api.acting())


def test_without_control_the_keys_do_nothing():
    with sim_subprocess("--scenario", "idle", "--speed", "5") as (host, port):
        api = ApiLog((host, port))
        child = spawn("popup", "--ext", "1001", "--host", host, "--port", str(port), env_extra=ENV)
        screen = Screen(child)
        try:
            screen.wait_for("waiting for calls on 1001")
            child.send("d6208\rxh")
            screen.wait_for("waiting for calls on 1001")
        finally:
            stop(child)
        assert "hold/unhold" not in screen.text and "Dial:" not in screen.text
        assert api.acting() == []


def test_demo_with_control_acts_on_the_recorded_calls():
    """`eslkit demo --control`: the keys act on the morning's recorded calls too — 1001
    puts a queue call on hold and hangs up, and the recording does not play that call on."""
    child = spawn("demo", "--control", "--scenario", "queue", "--speed", "0.5")
    screen = Screen(child)
    try:
        screen.wait_for("1001 · Connected", timeout=30)
        child.send("h")
        screen.wait_for("✓ 1001: call from 6208 on hold")
        screen.wait_for("1001 · On hold")
        child.send("x")
        screen.wait_for("✓ 1001: call from 6208 hung up")
        screen.wait_for("1001 · Ended")
        shown = len(screen.text)
        screen.wait_for("1001 · Ringing", timeout=30)  # the next call: the last one did not come back
        assert "1001 · Connected" not in screen.text[shown:screen.text.index("1001 · Ringing", shown)]
    finally:
        rest = stop(child)
    assert child.exitstatus == 0, rest
    assert "Traceback" not in screen.text + rest
