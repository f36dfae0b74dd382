"""The `eslkit` command as a new user meets it: version, help, module entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from eslkit import __version__
from tests.support.fstree import pyenv_python
from tests.support.cli import EXE

COMMANDS = ["sim", "watch", "popup", "wallboard", "serve", "passwd", "demo", "build", "doctor", "relay", "phone"]
ENV = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}


def run(*args, module=False):
    cmd = [sys.executable, "-m", "eslkit", *args] if module else [*EXE, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=ENV)


@pytest.mark.parametrize("module", [False, True], ids=["eslkit", "python -m eslkit"])
def test_version(module):
    result = run("--version", module=module)
    assert result.returncode == 0
    assert result.stdout.strip() == f"eslkit {__version__}"


def test_no_arguments_shows_help_with_every_command():
    result = run()
    out = result.stdout + result.stderr
    for name in COMMANDS:
        assert f" {name} " in out, name


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(name):
    result = run(name, "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    assert f"eslkit {name}" in result.stdout  # an example line using the command


@pytest.mark.parametrize("name", ["", *COMMANDS])
def test_help_reads_whole_at_80_columns(name):
    """At 80 columns, an example line is never cut in two, and a command's summary in the
    list of commands is one sentence wrapped as a paragraph, not broken where the source was."""
    out = subprocess.run([*EXE, *([name] if name else []), "--help"], capture_output=True, text=True, timeout=60,
                         env={**ENV, "COLUMNS": "80"}).stdout
    lines = out.split("\n")
    for line, after in zip(lines, lines[1:]):
        if line.startswith(" eslkit "):
            assert not after.startswith(" ") or after.startswith(" eslkit ") or not after.strip(), (line, after)
    if not name:
        summaries = [line for line in lines if line.startswith("│ ") and len(line) == 80]
        for line, after in zip(summaries, summaries[1:]):
            if after[2:12].strip() == "":  # the summary goes on: the line before was full
                assert len(line[13:].rstrip()) > 50, (line, after)


def _helps():
    import typer.main

    from eslkit import cli
    for name in COMMANDS:
        cli._register(name)

    def walk(group, prefix):
        for name, command in group.commands.items():
            yield prefix + name, command
            if hasattr(command, "commands"):
                yield from walk(command, prefix + name + " ")
    return list(walk(typer.main.get_command(cli.app), ""))


def test_help_paragraphs_are_not_broken_where_the_source_line_ran_past_80_columns():
    """Rich keeps a help text's line breaks: a source line longer than the 78 columns of the
    help box wraps, and the break after it then leaves a stub ("contact," alone on a line).
    Every line that a paragraph goes on after fits; a paragraph's last line may wrap."""
    import re

    long = []
    for name, command in _helps():
        lines = [re.sub(r"\[/?[a-z ]*\]", "", line.strip()) for line in (command.help or "").splitlines()]
        long += [(name, line) for line, after in zip(lines, lines[1:]) if len(line) > 78 and after]
    assert long == []


@pytest.mark.parametrize("command", [["watch"], ["popup", "--ext", "1001"], ["wallboard"],
                                     ["relay", "--to", "mqtt://127.0.0.1:1"]])
def test_speed_without_a_replay_is_refused_by_every_command_that_has_it(command):
    """popup took --speed 2 on a live switch without a word, where watch refused it."""
    result = run(*command, "--speed", "2", "--port", "1")
    assert result.returncode == 2 and "--speed only applies to --replay" in " ".join(result.stderr.split())


def test_unknown_option_is_a_usage_error_without_traceback():
    result = run("watch", "--no-such-option")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "No such option" in result.stderr


# --- the oldest Python eslkit supports ----------------------------------------------------------------

PY39 = Path(pyenv_python("3.9.18", "3.9") or "/nonexistent")  # found without HOME (tests/support/fstree.py)


@pytest.fixture(scope="module")
def venv39(tmp_path_factory):
    if not PY39.exists():
        pytest.skip("no Python 3.9 here (pyenv 3.9.18): the oldest supported version is not checked")
    venv = tmp_path_factory.mktemp("py39") / "venv"
    subprocess.run([str(PY39), "-m", "venv", str(venv)], check=True, timeout=300)
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                           "--disable-pip-version-check", str(root)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv / "bin" / "eslkit"


@pytest.mark.slow
def test_every_command_works_on_python_39(venv39, tmp_path):
    for name in COMMANDS:
        result = subprocess.run([str(venv39), name, "--help"], capture_output=True, text=True,
                                timeout=60, env=ENV)
        assert result.returncode == 0 and "Traceback" not in result.stderr, (name, result.stderr[-1500:])
        assert "[OPTIONS]" in result.stdout and f"eslkit {name}" in result.stdout, name
    capture = Path(__file__).parent / "data" / "fs-captures" / "1.10.12" / "scenario_queue_plain.raw"
    watch = subprocess.run([str(venv39), "watch", "--replay", str(capture), "--format", "json",
                            "-f", "CHANNEL_ANSWER"], capture_output=True, text=True, timeout=60, env=ENV)
    assert watch.returncode == 0, watch.stderr[-1500:]
    assert len(watch.stdout.splitlines()) == 2
    popup = subprocess.run([str(venv39), "popup", "--ext", "1001", "--replay", str(capture), "--format", "json"],
                           capture_output=True, text=True, timeout=60, env=ENV)
    assert popup.returncode == 0, popup.stderr[-1500:]
    assert '"state": "answered"' in popup.stdout or '"state":"answered"' in popup.stdout


# --- one option name, one meaning (issue 20) --------------------------------------------------

CAPTURE = Path(__file__).parent / "data" / "fs-captures" / "1.10.12-b" / "scenario_fifo_1002_plain.raw"
REPLAYS = {
    "watch": ["watch", "--format", "json", "--replay", str(CAPTURE)],
    "popup": ["popup", "--ext", "1002", "--format", "json", "--replay", str(CAPTURE)],
    "wallboard": ["wallboard", "--format", "json", "--interval", "1", "--replay", str(CAPTURE)],
}


@pytest.mark.parametrize("command", sorted(REPLAYS))
@pytest.mark.parametrize("speed", ["0", "max", "MAX"])
def test_speed_max_and_0_mean_as_fast_as_possible_in_every_replay(command, speed):
    plain = run(*REPLAYS[command])
    fast = run(*REPLAYS[command], "--speed", speed)
    assert fast.returncode == 0 == plain.returncode, fast.stderr
    assert fast.stdout == plain.stdout and fast.stdout.count("\n") >= 3


@pytest.mark.parametrize("args", [
    ["watch", "--replay", str(CAPTURE)], ["popup", "--ext", "1002", "--replay", str(CAPTURE)],
    ["relay", "--to", "mqtt://127.0.0.1:1", "--replay", str(CAPTURE)], ["sim", "--port", "0"], ["demo"],
    ["wallboard", "--replay", str(CAPTURE)],
])
@pytest.mark.parametrize("bad, words", [("-2", "give a number above 0"), ("fast", "is not a number or max")])
def test_a_bad_speed_gets_the_same_sentence_in_every_command(args, bad, words):
    r = run(*args, "--speed", bad)
    assert r.returncode == 2, r.stderr
    assert words in r.stderr and "--speed" in r.stderr and "Traceback" not in r.stderr
    assert "x>=" not in r.stderr  # typer's range box said "0.0 is not in the range x>=0.001"


@pytest.mark.parametrize("command", ["watch", "popup", "relay", "sim", "demo", "wallboard"])
def test_speed_reads_the_same_in_every_help(command):
    wide = {**ENV, "COLUMNS": "400"}  # one line per option
    out = subprocess.run([*EXE, command, "--help"], capture_output=True, text=True, timeout=60, env=wide).stdout
    line = next(line for line in out.splitlines() if "--speed " in line and "│" in line)
    assert "X|max" in line and ("max (also 0): no delays" in line or "as fast as possible" in line), line


def test_popup_ext_header_is_the_extension_header_and_match_still_works_with_a_note():
    args = ["popup", "--ext", "1002", "--format", "json", "--replay", str(CAPTURE)]
    new = run(*args, "--ext-header", "Caller-Destination-Number")
    old = run(*args, "--match", "Caller-Destination-Number")
    assert new.returncode == 0 == old.returncode, new.stderr + old.stderr
    assert new.stdout == old.stdout and new.stdout
    assert "--match" not in new.stderr
    assert "--match is now --ext-header" in old.stderr
    both = run(*args, "--ext-header", "X", "--match", "Y")
    assert both.returncode == 2 and "--ext-header alone" in both.stderr
    for command in ("popup", "serve"):
        helptext = run(command, "--help").stdout
        assert "--ext-header" in helptext and "--match" not in helptext


@pytest.mark.parametrize("args", [["watch"], ["popup", "--ext", "1002"], ["wallboard"]])
def test_replay_and_from_together_get_one_sentence_in_every_command(args):
    r = run(*args, "--replay", str(CAPTURE), "--from", "mqtt://127.0.0.1:1")
    assert r.returncode == 2, r.stderr
    assert "give either --replay FILE or --from URL, not both." in " ".join(r.stderr.split())
    assert "Traceback" not in r.stderr
