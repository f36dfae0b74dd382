"""Running eslkit's commands in tests, as a user runs them or in-process.

    from tests.support.cli import eslkit, Running, invoke

    r = eslkit("watch", "--replay", path, env={"HOME": "/nonexistent"})   # a real process, to its end
    with Running("popup", "--port", port, "--ext", "1001") as popup:       # a long-running one
        assert popup.wait_for(lambda: popup.records(), 20)                 # wait on what it printed
        popup.stop()                                                        # Ctrl-C, then its exit code
    result = invoke("watch", "--replay", path, "--format", "json")         # in-process through typer

The process is the installed command (``.venv/bin/eslkit``, else ``python -m eslkit``);
``env`` is added to this process's environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional

ROOT = Path(__file__).resolve().parents[2]
_INSTALLED = ROOT / ".venv" / "bin" / "eslkit"
EXE: list[str] = [str(_INSTALLED)] if _INSTALLED.exists() else [sys.executable, "-m", "eslkit"]


def environ(env: Optional[dict] = None) -> dict:
    return {**os.environ, **(env or {})}


def eslkit(*args, env: Optional[dict] = None, timeout: float = 60, text: bool = True,
           **kw) -> subprocess.CompletedProcess:
    """Run ``eslkit ARGS`` to its end; stdout and stderr captured (unless given in ``kw``)."""
    if "stdout" not in kw and "stderr" not in kw:
        kw["capture_output"] = True
    return subprocess.run([*EXE, *map(str, args)], text=text, timeout=timeout, env=environ(env), **kw)


class Running:
    """A long-running ``eslkit ARGS``: its stdout and stderr lines collected as they come."""

    def __init__(self, *args, env: Optional[dict] = None, new_session: bool = False):
        self.proc = subprocess.Popen([*EXE, *map(str, args)], env=environ(env), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=new_session)
        self.out: list[str] = []
        self.err: list[str] = []
        self._cv = threading.Condition()
        self._readers = [threading.Thread(target=self._pump, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for reader in self._readers:
            reader.start()

    def _pump(self, stream, lines: list[str]) -> None:
        for line in stream:
            with self._cv:
                lines.append(line.rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()  # the end of a stream can be what a waiter waits for

    def wait_for(self, predicate: Callable[[], object], timeout: float) -> bool:
        """Until ``predicate()`` holds (checked at every new line), the timeout, or the exit."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.2))
            return True

    def records(self) -> list[dict]:
        """Its stdout's JSON objects so far."""
        import json

        with self._cv:
            return [json.loads(line) for line in self.out if line.startswith("{")]

    def stop(self, sig: int = signal.SIGINT, timeout: float = 15) -> int:
        """Send ``sig`` (Ctrl-C by default) and wait for the exit; its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        for reader in self._readers:
            reader.join(5)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)

    def __enter__(self) -> "Running":
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


def invoke(*args):
    """``eslkit ARGS`` in this process through typer's test runner; stderr kept apart."""
    from typer.testing import CliRunner

    from eslkit import cli

    cli._register()
    try:
        runner = CliRunner(mix_stderr=False)  # older click mixes stderr into stdout by default
    except TypeError:
        runner = CliRunner()
    return runner.invoke(cli.app, [*map(str, args)])
