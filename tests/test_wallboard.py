"""`eslkit wallboard`: on the simulator's mixed load (figures that add up), on replays
(one JSON snapshot per interval of switch time), in a real terminal (tmux), its options'
errors, and the renderable at fixed widths."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from rich.console import Console
from rich.text import Text

from eslkit.stats import CallCentreStats
from eslkit.views.theme import THEME
from eslkit.views.wallboard import Wallboard, WallboardView
from tests.support.sim import sim_subprocess
from tests.test_stats_flows import DATA, capture_events

PY = sys.executable


def wallboard(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "ESL_PASSWORD": "ClueCon", "HOME": "/nonexistent"}
    return subprocess.run([PY, "-m", "eslkit", "wallboard", *args], capture_output=True, text=True,
                          env=env, timeout=120, **kw)


def adds_up(snap: dict) -> None:
    for q in snap["queues"]:
        assert q["offered"] == q["answered"] + q["abandoned"] + q["missed"] + q["waiting"], q


def test_on_the_simulators_mixed_load_every_figure_adds_up():
    """24 calls, 4 of each flow: the end figures are known from the mix itself."""
    mix = "queue+callcenter+fifo+abandon+two-callers+noanswer"
    with sim_subprocess("--scenario", f"load:calls=24,cps=4,concurrent=8,agents=4,template={mix}",
                        "--speed", "4") as (host, port):
        env = {**os.environ, "ESL_PASSWORD": "ClueCon", "HOME": "/nonexistent"}
        proc = subprocess.Popen([PY, "-m", "eslkit", "wallboard", "--host", host, "--port", str(port),
                                 "--format", "json", "--interval", "1"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        snaps = []
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                line = proc.stdout.readline()
                assert line, proc.stderr.read()
                snaps.append(json.loads(line))
                adds_up(snaps[-1])
                c = snaps[-1]["calls"]
                idle = all(a["state"] == "available" for a in snaps[-1]["agents"])
                if c["answered"] + c["missed"] + c["busy"] == 28 and c["waiting"] == 0 and idle:
                    break  # every call (two-callers has two) decided, and every agent off the phone
            else:
                raise AssertionError(f"the load never ended: {snaps[-1]}")
            proc.send_signal(signal.SIGINT)
            rest, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    final = json.loads(rest.strip().split("\n")[-1])  # Ctrl-C writes the last snapshot
    adds_up(final)
    queues = {(q["name"], q["kind"]): q for q in final["queues"]}
    got = {k: (q["offered"], q["answered"], q["abandoned"], q["missed"], q["waiting"]) for k, q in queues.items()}
    assert got == {
        ("2000", "group"): (8, 4, 4, 0, 0),  # queue: answered; abandon: the caller gives up
        ("2000", "fifo"): (4, 4, 0, 0, 0),
        ("2000@default", "callcenter"): (12, 12, 0, 0, 0),  # callcenter 4, two-callers 4 × 2
    }
    assert final["calls"] == {**final["calls"], "answered": 20, "missed": 8, "busy": 0}  # + 4 noanswer
    agents = {a["ext"]: a for a in final["agents"]}
    assert set(agents) == {"1001", "1002", "1003", "1004"}
    assert sum(a["answered"] for a in agents.values()) == 20
    assert all(a["state"] == "available" for a in agents.values())
    assert any(s["queues"] and any(q["waiting"] for q in s["queues"]) for s in snaps)  # someone waited


def test_replay_one_snapshot_per_interval_of_switch_time():
    run = wallboard("--replay", str(DATA / "1.10.12-b/scenario_two_callers_plain.raw"), "--format", "json",
                    "--interval", "2")
    assert run.returncode == 0, run.stderr
    snaps = [json.loads(line) for line in run.stdout.splitlines()]
    # the capture spans 347.88 → 362.94: snapshots at +2 s … +14 s, and the last word at the end
    assert [round(s["time"] - snaps[0]["time"]) for s in snaps[:-1]] == [0, 2, 4, 6, 8, 10, 12]
    for s in snaps:
        adds_up(s)
    first = snaps[0]["queues"][0]
    assert (first["waiting"], first["longest_wait"], [c["number"] for c in first["callers"]]) == (2, 2.0, ["6208", "6209"])
    last = snaps[-1]["queues"][0]
    assert (last["offered"], last["answered"], last["waiting"], last["wait_avg"]) == (2, 2, 0, 4.9)


def test_queue_narrows_the_snapshot():
    run = wallboard("--replay", str(DATA / "1.10.12-b/scenario_fifo_1002_plain.raw"), "--format", "json",
                    "--queue", "nope")
    last = json.loads(run.stdout.splitlines()[-1])
    assert last["queues"] == [] and last["agents"] == []
    run = wallboard("--replay", str(DATA / "1.10.12-b/scenario_fifo_1002_plain.raw"), "--format", "json",
                    "--queue", "2000")
    last = json.loads(run.stdout.splitlines()[-1])
    assert [q["name"] for q in last["queues"]] == ["2000"] and {a["name"] for a in last["agents"]} == {"1001", "1002"}


@pytest.mark.parametrize("args, hint", [
    (["--service-level", "abc"], "--service-level"),
    (["--service-level", "=20"], "--service-level"),
    (["--day-start", "25:00"], "--day-start"),
    (["--day-start", "noon"], "--day-start"),
    (["--format", "html"], "--format"),
    (["--speed", "2"], "--speed"),
])
def test_bad_options_say_which_and_exit_2(args, hint):
    run = wallboard(*args)
    assert run.returncode == 2
    assert hint in run.stderr and "Traceback" not in run.stderr


def test_a_missing_replay_file_is_one_sentence():
    run = wallboard("--replay", "/nonexistent/today.jsonl")
    assert run.returncode == 11
    assert "There is no file /nonexistent/today.jsonl." in run.stderr and "Traceback" not in run.stderr


def test_nothing_listening_is_one_sentence():
    from tests.support.net import free_port

    run = wallboard("--port", str(free_port()), "--no-reconnect")
    assert run.returncode == 3 and "Traceback" not in run.stderr


def render(board: Wallboard, width: int) -> list[str]:
    console = Console(file=io.StringIO(), width=width, theme=THEME, force_terminal=False, color_system=None)
    console.print(WallboardView(board))
    return console.file.getvalue().split("\n")


def test_the_board_at_80_to_160_columns():
    stats = CallCentreStats()
    for event in capture_events("1.10.12-b/scenario_two_callers_plain.raw"):
        stats.feed(event)
        if event.get("CC-Action") == "bridge-agent-start" and event.get("CC-Agent") == "1001@default":
            break
    snap = stats.snapshot()
    narrow = render(Wallboard(snap, source="127.0.0.1:8021", status="connected to 127.0.0.1:8021"), 80)
    text = "\n".join(narrow)
    assert max(len(line) for line in narrow) <= 80
    assert "Queues" in text and "Agents" in text
    row = next(line for line in narrow if line.lstrip().startswith("2000@default"))
    assert row.split()[1:6] == ["1", "0:02", "2", "1", "0"]  # waiting, longest, offered, answered, abandoned
    assert "Talking" in text and "Ringing" not in text.split("Agents")[0]
    assert narrow[0].startswith("eslkit wallboard") and "Queues" in narrow[1]  # the head: one line
    wide = render(Wallboard(snap), 160)
    assert any("Wait p90" in line for line in wide) and any("callcenter" in line for line in wide)
    assert not any("Wait p90" in line for line in narrow)
    for width in (139, 140, 149, 150, 151):  # every column shown only where the names still fit
        lines = render(Wallboard(snap, source="127.0.0.1:8021", status="connected to 127.0.0.1:8021"), width)
        assert max(len(line) for line in lines) <= width
        row = next(line for line in lines if "2000@" in line)
        assert row.split()[0] == "2000@default", (width, row)


def test_thresholds_and_hostile_names():
    from eslkit.event import Event

    stats = CallCentreStats()
    stats.feed(Event([("Event-Name", "CUSTOM"), ("Event-Subclass", "callcenter::info"),
                      ("CC-Queue", "\x1b[2J[bold red]evil"), ("CC-Action", "member-queue-start"),
                      ("CC-Member-UUID", "m1"), ("CC-Member-Session-UUID", "s1"),
                      ("Event-Date-Timestamp", "1796124347000000")]))
    snap = stats.snapshot(1796124347.0 + 75)
    console = Console(file=io.StringIO(), width=100, theme=THEME, force_terminal=True, color_system="truecolor")
    console.print(WallboardView(Wallboard(snap, warn_wait=60)))
    out = console.file.getvalue()
    assert "\x1b[2J" not in out and "␛[2J[bold red]evil" in out  # shown, not obeyed
    probe = Console(file=io.StringIO(), width=100, theme=THEME, force_terminal=True, color_system="truecolor")
    probe.print(Text("1:15", style="esl.alert"), end="")
    start = probe.file.getvalue().split("1:15")[0]  # the alert style's escape sequence
    alert = re.compile(re.escape(start) + r" *1:15")
    assert alert.search(out)  # the caller waiting 75 s > 60 s: in the alert style
    calm = Console(file=io.StringIO(), width=100, theme=THEME, force_terminal=True, color_system="truecolor")
    calm.print(WallboardView(Wallboard(snap, warn_wait=90)))
    assert not alert.search(calm.file.getvalue())


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_in_a_real_terminal(tmp_path):
    """The live screen in tmux: queues and agents while the replay plays, then Ctrl-C."""
    from tests.test_watch_tty import Tmux

    capture = DATA / "1.10.12-b/scenario_two_callers_plain.raw"
    command = f"cd / && env HOME=/nonexistent {PY} -m eslkit wallboard --replay {capture} --speed 1; sleep 30"
    tmux = Tmux(command, 100, 30)
    try:
        lines = tmux.wait_for(lambda ls: any("Caller" in line or "2000@default" in line for line in ls))
        screen = "\n".join(lines)
        assert "Queues" in screen and "Agents" in screen and "1001@default" in screen
        tmux.wait_for(lambda ls: any(line.lstrip().startswith("2000@default") and " 2 " in line for line in ls), 30)
        tmux.keys("C-c")
        tmux.wait_for(lambda ls: any("all calls" in line for line in ls))
    finally:
        tmux.kill()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_q_quits_as_ctrl_c_does():
    """q on the live screen: the last board, exit 0, and the terminal back (echo on)."""
    from tests.support.sim import sim_in_thread
    from tests.test_watch_tty import Tmux

    with sim_in_thread(scenario="queue", loop=True, speed=4) as sim:  # a switch that never ends by itself
        command = (f"cd / && env HOME=/nonexistent {PY} -m eslkit wallboard --port {sim.port}; "
                   "echo wallboard-exit-$?; stty -a; sleep 30")
        tmux = Tmux(command, 100, 30)
        try:
            tmux.wait_for(lambda ls: any(line.lstrip().startswith("1001 ") for line in ls))
            tmux.keys("q")
            lines = tmux.wait_for(lambda ls: any("icanon" in line for line in ls))
        finally:
            tmux.kill()
    assert "wallboard-exit-0" in lines and any("all calls" in line for line in lines)
    modes = " ".join(lines).split()
    assert "icanon" in modes and "echo" in modes and "-icanon" not in modes and "-echo" not in modes
