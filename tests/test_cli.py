"""The `eslkit` command as a new user meets it: version, help, module entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from eslkit import __version__

ESLKIT = Path(sys.executable).with_name("eslkit")
COMMANDS = ["sim", "watch", "popup", "demo", "build", "doctor", "relay"]
ENV = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}


def run(*args, module=False):
    cmd = [sys.executable, "-m", "eslkit", *args] if module else [str(ESLKIT), *args]
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


def test_unknown_option_is_a_usage_error_without_traceback():
    result = run("watch", "--no-such-option")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "No such option" in result.stderr
