"""A misbehaving switch against the commands as users run them (real processes).

tests/test_client.py injects the same faults into the library's Connection
(close/stall mid-frame, garbage, 2 GB Content-Length, slow drip, a reply that
never comes, disconnects in a loop).  Here the question is what the user sees:
`eslkit watch --no-reconnect` ends within a bounded time with one clear line
and the documented exit code, never a traceback or a hang; with reconnecting
on (watch's default, popup always) the command keeps trying with back-off and
Ctrl-C still ends it at once with its summary.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from eslkit.protocol import auth_request, command_reply
from tests.support.sim import ESLKIT
from tests.support.cli import EXE, eslkit
from tests.support.transcript_server import ThreadedServer, read_command

EVENT = b'{"Event-Name":"HEARTBEAT","Event-Info":"System Ready","Unique-ID":"u-1"}'
EVENT_FRAME = b"Content-Length: %d\nContent-Type: text/event-json\n\n%s" % (len(EVENT), EVENT)


class MisbehavingSwitch(ThreadedServer):
    """Greets, accepts any password, replies +OK to each command; once the client
    subscribes, `act(writer)` misbehaves.  Counts the connections it accepted."""

    def __init__(self, act):
        super().__init__()
        self.act = act
        self.accepted = 0
        self.times: list[float] = []  # when each connection came (monotonic)

    async def _handle(self, reader, writer):
        self.accepted += 1
        self.times.append(time.monotonic())
        try:
            writer.write(auth_request())
            while True:
                cmd = await read_command(reader)
                if not cmd:
                    return
                if cmd.startswith(b"event "):
                    writer.write(command_reply("+OK event listener enabled json"))
                    await writer.drain()
                    await self.act(writer)
                    return
                writer.write(command_reply("+OK accepted" if cmd.startswith(b"auth") else "+OK"))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


async def close_mid_frame(writer):
    writer.write(EVENT_FRAME[:-20])
    await writer.drain()


async def stall_mid_frame(writer):
    writer.write(EVENT_FRAME[:-20])
    await writer.drain()
    await asyncio.sleep(60)


async def garbage(writer):
    writer.write(b"\x00\x01\x02 \xff\xfe binary junk\n\n")
    await writer.drain()
    await asyncio.sleep(60)


async def two_gigabytes(writer):
    writer.write(b"Content-Length: 2147483648\nContent-Type: text/event-json\n\n{")
    await writer.drain()
    await asyncio.sleep(60)


async def endless_headers(writer):
    for _ in range(64):  # 4 MB of header lines without the blank line that ends them
        writer.write(b"X-Junk: " + b"j" * 65000 + b"\n")
        await writer.drain()
    await asyncio.sleep(60)


async def slow_drip(writer):
    """One event, one byte every 20 ms, then the switch goes away."""
    for byte in EVENT_FRAME:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)


async def event_then_close(writer):
    writer.write(EVENT_FRAME)
    await writer.drain()


def watch(port: int, *args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return eslkit("watch", "--port", port, "--format", "json", *args, timeout=timeout,
                  env={"ESL_PASSWORD": "ClueCon", "HOME": "/nonexistent"})


@pytest.mark.parametrize("act, code, words", [
    (close_mid_frame, 7, "middle of a frame"),
    (stall_mid_frame, 7, "stalled"),
    # Nonsense from the switch mid-session ends the session (Disconnected, exit 7), saying what it was.
    (garbage, 7, "not an event-socket"),
    (two_gigabytes, 7, "2147483648-byte frame"),
    (endless_headers, 7, "without finishing a header block"),
], ids=["close-mid-frame", "stall-mid-frame", "garbage", "2GB-content-length", "endless-headers"])
def test_watch_without_reconnect_ends_with_the_documented_code(act, code, words):
    with MisbehavingSwitch(act) as switch:
        started = time.monotonic()
        r = watch(switch.port, "--no-reconnect", "--timeout", "1")
        elapsed = time.monotonic() - started
    assert r.returncode == code, (r.returncode, r.stderr)
    assert words in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert "eslkit: " in r.stderr and "fix:" in r.stderr
    assert "unless --no-reconnect" not in r.stderr  # the fix does not advise what was given
    assert elapsed < 15


def test_a_slow_drip_still_delivers_the_event():
    with MisbehavingSwitch(slow_drip) as switch:
        r = watch(switch.port, "--no-reconnect", "--timeout", "1")
    assert r.stdout.strip() and '"Event-Name":"HEARTBEAT"' in r.stdout, r.stderr
    assert r.returncode == 7 and "Traceback" not in r.stderr  # then the switch went away


def test_the_last_events_before_the_switch_closes_are_not_lost():
    with MisbehavingSwitch(event_then_close) as switch:
        r = watch(switch.port, "--no-reconnect", "--timeout", "1")
    assert r.returncode == 7 and "1 event received" in r.stderr, r.stderr
    assert '"Event-Name":"HEARTBEAT"' in r.stdout


@pytest.mark.parametrize("command", ["watch", "popup"])
def test_disconnects_in_a_loop_back_off_and_ctrl_c_ends_at_once(command):
    async def hang_up(writer):
        pass  # straight after the subscription

    env = {**os.environ, "ESL_PASSWORD": "ClueCon", "HOME": "/nonexistent"}
    extra = ["--ext", "1001"] if command == "popup" else []
    with MisbehavingSwitch(hang_up) as switch:
        proc = subprocess.Popen([*EXE, command, "--port", str(switch.port), "--format", "json", *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            deadline = time.monotonic() + 30
            while switch.accepted < 4 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.05)
            assert switch.accepted >= 4, "it did not keep trying"
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=10)
            stopped_in = time.monotonic() - started
        finally:
            proc.kill()
    # With back-off (0.5 s doubling, a quarter of jitter; a session that ends at once does not
    # reset it), not in a tight loop: the waits between tries grow.
    gaps = [b - a for a, b in zip(switch.times, switch.times[1:4])]
    assert all(gap >= low for gap, low in zip(gaps, (0.3, 0.7, 1.4))), gaps
    assert stopped_in < 3
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    if command == "watch":
        assert "reconnecting" in err and "events received" in err.splitlines()[-1]
    else:
        assert "link lost" in err


def test_table_gives_the_terminal_back_when_the_switch_goes_away():
    pexpect = pytest.importorskip("pexpect", reason="pexpect is in the test extras: pip install -e '.[test]'")
    with MisbehavingSwitch(event_then_close) as switch:
        child = pexpect.spawn(str(ESLKIT), ["watch", "--port", str(switch.port), "--format", "table",
                                            "--no-reconnect", "--timeout", "1"],
                              env={**os.environ, "ESL_PASSWORD": "x", "TERM": "xterm-256color"},
                              dimensions=(30, 100), timeout=20)
        child.expect(pexpect.EOF)
        out = child.before
        child.close()
    assert child.exitstatus == 7
    assert b"\x1b[?1049h" in out  # the table did take the screen...
    last_enter = out.rindex(b"\x1b[?1049h")
    assert b"\x1b[?1049l" in out[last_enter:] and b"\x1b[?25h" in out[last_enter:]  # ...and gave it back
    assert out.index(b"closed the connection") > out.rindex(b"\x1b[?1049l")  # the error after, on the real screen


# --- the local side fails: a full disk -----------------------------------------------------------------

NOANSWER = Path(__file__).parent / "data" / "fs-captures" / "1.10.12" / "scenario_noanswer_plain.raw"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux) to make a write fail")
@pytest.mark.parametrize("case", ["watch-record", "watch-stdout", "popup-stdout"])
def test_a_full_disk_is_one_clear_error(case):
    args = {"watch-record": ["watch", "--format", "json", "--record", "/dev/full"],
            "watch-stdout": ["watch", "--format", "json"],
            "popup-stdout": ["popup", "--ext", "1002", "--format", "json"]}[case]
    with open("/dev/full" if case.endswith("stdout") else os.devnull, "wb") as out:
        r = eslkit(*args, "--replay", NOANSWER, stdout=out, stderr=subprocess.PIPE, timeout=30,
                   env={"HOME": "/nonexistent"})
    assert "Traceback" not in r.stderr, r.stderr[-600:]
    assert r.returncode == 17 and "No space left on device" in r.stderr, r.stderr  # OutputError
    assert "fix:" in r.stderr
