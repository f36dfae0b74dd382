"""Stopping `eslkit watch`: Ctrl-C with a reader that lags or stopped reading, Ctrl-C while
connecting, and a summary that says what was written.  Real processes, real pipes, signals."""

from __future__ import annotations

import fcntl
import json
import re
import signal
import socket
import subprocess
import termios
import threading
import time

from eslkit.event import Event
from eslkit.recording import Recorder, read
from tests.support.cli import EXE, environ, eslkit
from tests.support.sim import sim_in_thread

ENV = {"HOME": "/nonexistent", "ESL_PASSWORD": "ClueCon"}
F_GETPIPE_SZ = 1032


def big_recording(captures, path, copies=40):
    """The queue call's 88 events, ``copies`` times: megabytes of JSON lines to write."""
    events = [e.item for e in read(captures / "scenario_queue_plain.raw") if isinstance(e.item, Event)]
    with Recorder(path) as rec:
        for i in range(copies):
            for event in events:
                rec.event(event, 1_700_000_000.0 + i)
    return len(events) * copies


class Unread:
    """``eslkit ARGS`` whose stdout pipe nobody reads until asked; stderr lines as they come."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([*EXE, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, env=environ(ENV))
        self.err: list[str] = []
        self._cv = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stderr:
            with self._cv:
                self.err.append(line.decode(errors="replace"))
                self._cv.notify_all()

    def wait_for_err(self, text: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cv:
            while not any(text in line for line in self.err):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    return any(text in line for line in self.err)
                self._cv.wait(0.1)
            return True

    def wait_until_pipe_full(self, timeout: float = 30) -> None:
        """Until watch has filled its stdout pipe: its next write blocks."""
        fd = self.proc.stdout.fileno()
        size = fcntl.fcntl(fd, F_GETPIPE_SZ)
        deadline = time.monotonic() + timeout
        buf = bytearray(4)
        while True:
            fcntl.ioctl(fd, termios.FIONREAD, buf)
            if int.from_bytes(buf, "little") >= size:
                return
            assert time.monotonic() < deadline and self.proc.poll() is None, "".join(self.err)
            time.sleep(0.02)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)


def summary_count(stderr: str) -> int:
    return int(re.search(r"eslkit watch: .*?(\d+) events? received", stderr).group(1))


def test_ctrl_c_while_the_reader_lags_leaves_only_whole_lines(captures, tmp_path):
    """The pipe is full and watch's write blocked when Ctrl-C comes: the write is finished
    (Python's writer used to return half of it and forget the rest: half a JSON line),
    then everything watch took in is written, and the summary counts exactly those lines."""
    rec = tmp_path / "big.jsonl"
    total = big_recording(captures, rec)
    watch = Unread("watch", "--replay", rec, "--format", "json")
    try:
        watch.wait_until_pipe_full()
        watch.proc.send_signal(signal.SIGINT)
        out = watch.proc.stdout.read()  # the reader catches up
        assert watch.proc.wait(30) == 0, "".join(watch.err)
    finally:
        watch.kill()
    assert out.endswith(b"\n")
    lines = out.decode().splitlines()
    for i, line in enumerate(lines):
        try:
            json.loads(line)
        except ValueError:
            raise AssertionError(f"line {i} of {len(lines)} is not JSON: {line[:80]!r} … {line[-80:]!r}") from None
    assert 0 < len(lines) < total  # stopped part way
    assert summary_count("".join(watch.err)) == len(lines)


def test_a_second_ctrl_c_quits_when_the_reader_stopped_reading(captures, tmp_path):
    """Ctrl-C finishes what watch holds; with a reader that never reads again that would
    wait for ever, so watch says how to quit, and a second Ctrl-C quits at once (130)."""
    rec = tmp_path / "big.jsonl"
    big_recording(captures, rec)
    watch = Unread("watch", "--replay", rec, "--format", "json")
    try:
        watch.wait_until_pipe_full()
        watch.proc.send_signal(signal.SIGINT)
        assert watch.wait_for_err("press Ctrl-C again to quit at once", 20), "".join(watch.err)
        assert watch.proc.poll() is None  # still waiting for the reader, as it said
        watch.proc.send_signal(signal.SIGINT)
        assert watch.proc.wait(10) == 130
    finally:
        watch.kill()
    assert "Traceback" not in "".join(watch.err)


def ctrl_c_while_connecting(*args) -> tuple[int, str]:
    """``eslkit ARGS --port P`` against a switch that accepts the connection and never
    greets; Ctrl-C during the wait.  Its port and stderr, once it exited 0."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        proc = Unread(*args, "--port", port, "--timeout", "60")
        try:
            silent.settimeout(30)
            conn, _ = silent.accept()  # it is connecting: waiting for auth/request
            with conn:
                proc.proc.send_signal(signal.SIGINT)
                assert proc.proc.wait(10) == 0, "".join(proc.err)
        finally:
            proc.kill()
    return port, "".join(proc.err)


def test_ctrl_c_while_connecting_says_the_summary_and_exits_0():
    """Ctrl-C while connecting ends watch as Ctrl-C does later — the summary, exit 0 — not
    KeyboardInterrupt's 130."""
    port, err = ctrl_c_while_connecting("watch", "--format", "json")
    assert f"stopped while connecting to 127.0.0.1:{port}; 0 events received" in err, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def test_the_summary_counts_what_count_let_through(tmp_path):
    """`-n 3` writes 3 events and records 3: the summary says 3, whatever else the switch
    had already sent."""
    rec = tmp_path / "r.jsonl"
    with sim_in_thread(scenario="queue", speed=20) as sim:
        r = eslkit("watch", "--port", sim.port, "--format", "json", "--record", rec, "-n", 3, env=ENV)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 3
    assert len([x for x in rec.read_text().splitlines() if '"event"' in x]) == 3
    assert summary_count(r.stderr) == 3, r.stderr


def test_relay_ctrl_c_while_connecting_stops_it():
    """The relay took Ctrl-C during the connect as a request for later: it kept waiting for
    the switch and then relayed anyway.  Now it stops at once and says so."""
    port, err = ctrl_c_while_connecting("relay", "--to", "mqtt://127.0.0.1:1")
    assert f"stopped while connecting to 127.0.0.1:{port}; nothing was relayed" in err, err
    assert "Traceback" not in err
