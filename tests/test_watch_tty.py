"""The live table in a real pseudo-terminal (tmux): draws, follows a resize, survives
hostile text, and Ctrl-C leaves a summary."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from tests.support.sim import sim_in_thread

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

PY = sys.executable


class Tmux:
    def __init__(self, command: str, width: int, height: int):
        self.name = f"eslkit-test-{uuid.uuid4().hex[:8]}"
        # A private tmux server (-L) with no config: other users' sessions and options cannot
        # change the window size under us.
        self.tmux = ["tmux", "-L", self.name, "-f", "/dev/null"]
        subprocess.run(self.tmux + ["new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
                                    command], check=True, timeout=10)
        self.resize(width, height)

    def capture(self) -> list[str]:
        out = subprocess.run(self.tmux + ["capture-pane", "-p", "-t", self.name], capture_output=True,
                             text=True, timeout=10).stdout
        return out.split("\n")

    def wait_for(self, test, timeout=15.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while True:
            lines = self.capture()
            if test(lines):
                return lines
            if time.monotonic() > deadline:
                raise AssertionError("screen never matched:\n" + "\n".join(lines))
            time.sleep(0.2)

    def resize(self, width: int, height: int) -> None:
        subprocess.run(self.tmux + ["resize-window", "-t", self.name, "-x", str(width), "-y", str(height)],
                       check=True, timeout=10)

    def keys(self, *keys: str) -> None:
        subprocess.run(self.tmux + ["send-keys", "-t", self.name, *keys], check=True, timeout=10)

    def title(self) -> str:
        return subprocess.run(self.tmux + ["display-message", "-p", "-t", self.name, "#{pane_title}"],
                              capture_output=True, text=True, timeout=10).stdout.strip()

    def kill(self) -> None:
        subprocess.run(self.tmux + ["kill-server"], capture_output=True, timeout=10)


def _watch_command(args: str) -> str:
    # HOME without profiles; keep the pane open after watch exits so the summary can be read.
    return f"cd / && env HOME=/nonexistent {PY} -m eslkit watch {args}; sleep 30"


def test_table_draws_follows_resize_and_exits_on_ctrl_c():
    with sim_in_thread(scenario="queue", loop=True, speed=3) as sim:
        tmux = Tmux(_watch_command(f"--port {sim.port} --stats"), 120, 30)
        try:
            lines = tmux.wait_for(lambda ls: ls[0].startswith("● connected") and any("CHANNEL_" in x for x in ls[6:])
                                  and any(x.startswith("Time") and "Channel" in x for x in ls))
            assert f"127.0.0.1:{sim.port}" in lines[0] and "event ALL" in lines[0]
            assert any(x.startswith("calls active") for x in lines[1:4])
            heading = next(i for i, x in enumerate(lines) if x.startswith("Time"))
            assert "Event" in lines[heading] and "Channel" in lines[heading] and "UUID" in lines[heading]
            assert all(len(x) <= 120 for x in lines)

            tmux.resize(72, 16)
            # The table re-lays itself out for 72 columns: fewer columns, still the newest rows at the bottom.
            lines = tmux.wait_for(lambda ls: len(ls) >= 16 and ls[0].startswith("● connected")
                                  and any(x.startswith("Time") and "Channel" not in x for x in ls)
                                  and ls[15].strip() != "")
            assert all(len(x) <= 72 for x in lines)
            assert lines[15][:2].isdigit()  # a row (it starts with the time) on the very last line

            tmux.resize(140, 24)
            tmux.wait_for(lambda ls: any(x.startswith("Time") and "Channel" in x for x in ls))

            tmux.keys("C-c")
            lines = tmux.wait_for(lambda ls: any("events received" in x for x in ls))
            summary = next(x for x in lines if "events received" in x)
            assert summary.startswith("eslkit watch: ") and "dropped" in summary and "events/s" in summary
        finally:
            tmux.kill()


def test_hostile_caller_names_cannot_clear_or_retitle_the_terminal(tmp_path):
    rec = tmp_path / "hostile.jsonl"
    names = ["\x1b[2J\x1b[HCLEARED", "\x1b]0;pwned\x07TITLE", "[bold red]Boss[/bold red]", "abc\u202edcba"]
    with rec.open("w") as fh:
        for i in range(40):
            name = names[i % len(names)]
            ev = {"Event-Name": "CHANNEL_CREATE", "Unique-ID": f"{i:08d}-x", "Caller-Caller-ID-Name": name,
                  "Caller-Caller-ID-Number": name, "Channel-Name": "sofia/internal/1001@x"}
            fh.write(json.dumps({"time": 1000 + i * 0.5, "event": ev}) + "\n")
    tmux = Tmux(_watch_command(f"--replay {rec} --speed 1 --columns time,event,caller,name"), 120, 20)
    try:
        lines = tmux.wait_for(lambda ls: sum("CHANNEL_CREATE" in x for x in ls) >= 5)
        screen = "\n".join(lines)
        assert lines[0].startswith("● connected")  # nothing cleared the screen or moved the cursor home
        assert "␛[2J␛[HCLEARED" in screen
        assert "[bold red]Boss[/bold" in screen  # markup shown (cut to the column), not applied
        assert "<U+202E>" in screen
        assert tmux.title() != "pwned"
    finally:
        tmux.kill()


def test_table_keeps_up_with_a_flood():
    """Hundreds of calls as fast as the simulator can send them: the table draws at its own
    pace while every event is taken in (nothing dropped), and the last screen shows the count."""
    with sim_in_thread(scenario="load:calls=300,cps=2000,concurrent=100,agents=20", speed=None) as sim:
        tmux = Tmux(_watch_command(f"--port {sim.port} --stats --count 5000"), 120, 30)
        try:
            lines = tmux.wait_for(lambda ls: any("events received" in x for x in ls), timeout=60)
        finally:
            tmux.kill()
    summary = next(x for x in lines if "events received" in x)
    received = int(summary.split("eslkit watch: ")[1].split(" ")[0])
    assert received >= 5000 and ", 0 dropped," in summary
    status = next(x for x in lines if x.startswith("● "))
    assert f"│ {received} events" in status and "dropped 0" in status
    assert any(x.startswith("calls active") for x in lines)


def _rows(lines: list[str]) -> list[str]:
    """The table's rows on the screen (they start with the time), as time and uuid: the
    columns' widths follow what is shown."""
    return [f"{x.split()[0]} {x.split()[-1]}" for x in lines if x[:2].isdigit() and x[2:3] == ":"]


def test_keys_pause_scroll_search_and_quit_as_in_htop_and_less():
    with sim_in_thread(scenario="queue", loop=True, speed=4) as sim:
        tmux = Tmux(_watch_command(f"--port {sim.port}"), 120, 24)
        try:
            lines = tmux.wait_for(lambda ls: len(_rows(ls)) >= 15 and "q quit · space pause" in ls[1])
            tmux.keys("Space")  # pause: the rows hold still while events keep coming
            lines = tmux.wait_for(lambda ls: ls[1].startswith("PAUSED"))
            held = _rows(lines)
            lines = tmux.wait_for(lambda ls: " newer · space or End: live" in ls[1])
            assert _rows(lines) == held
            tmux.keys("Up", "Up", "Up")  # back three rows: the oldest three now show above the rest
            # (the keys arrive one by one: wait for all three, never on a sleep)
            tmux.wait_for(lambda ls: len(_rows(ls)) == len(held) and _rows(ls)[3:] == held[:-3])
            tmux.keys("End")  # live again
            tmux.wait_for(lambda ls: not ls[1].startswith("PAUSED"))
            tmux.keys("/", "H", "A", "N", "G", "U", "P", "Enter")  # only the hangups
            shown = lambda ls: [x for x in ls if x[:2].isdigit() and x[2:3] == ":"]  # noqa: E731
            tmux.wait_for(lambda ls: "/HANGUP · Esc clears" in ls[1] and shown(ls)
                          and all("HANGUP" in row for row in shown(ls)))
            tmux.keys("Escape")
            tmux.wait_for(lambda ls: "/HANGUP" not in ls[1] and any("HANGUP" not in row for row in shown(ls)))
            tmux.keys("q")  # quits as Ctrl-C does: the last screen and the summary
            lines = tmux.wait_for(lambda ls: any("events received" in x for x in ls))
            assert next(x for x in lines if "events received" in x).startswith("eslkit watch: ")
        finally:
            tmux.kill()


def test_the_terminal_is_given_back_as_it_was_after_q():
    with sim_in_thread(scenario="queue", loop=True, speed=4) as sim:
        # After watch, `stty -a` shows the mode the shell gets back: echo and line editing on.
        tmux = Tmux(f"cd / && env HOME=/nonexistent {PY} -m eslkit watch --port {sim.port}; stty -a; sleep 30",
                    160, 24)
        try:
            tmux.wait_for(lambda ls: "q quit" in ls[1])
            tmux.keys("q")
            lines = tmux.wait_for(lambda ls: any("icanon" in x for x in ls))
        finally:
            tmux.kill()
    modes = " ".join(lines).split()
    assert "icanon" in modes and "echo" in modes and "-icanon" not in modes and "-echo" not in modes
