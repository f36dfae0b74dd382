"""Start the simulated switch for a test, two ways.

In a background thread with its own event loop (fast; the test can reach the
server object)::

    from tests.support.sim import sim_in_thread

    with sim_in_thread(scenario="queue", speed=None) as sim:
        host, port = sim                      # sim.host, sim.port, sim.server too
        ...                                   # connect with any client, password "ClueCon"
        sim.call(sim.server.play("noanswer")) # run a coroutine on the simulator's loop, wait for it

As a real process, exactly as a user runs it (``.venv/bin/eslkit sim --port N``)::

    from tests.support.sim import sim_subprocess

    with sim_subprocess("--scenario", "busy", "--speed", "max") as (host, port):
        ...

Both pick a free port, wait until it accepts connections, and stop the
simulator at the end (the process with SIGINT, then SIGKILL after a timeout).
Fixtures: ``sim`` (thread, queue scenario at full speed) and ``sim_process``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Coroutine, Iterator, NamedTuple

import pytest

from eslkit.sim import SimServer

ROOT = Path(__file__).resolve().parents[2]
ESLKIT = ROOT / ".venv" / "bin" / "eslkit"


class SimAddress(NamedTuple):
    host: str
    port: int


class ThreadedSim:
    """A running `SimServer` in its own thread; unpacks as (host, port)."""

    def __init__(self, server: SimServer, loop: asyncio.AbstractEventLoop):
        self.server = server
        self.loop = loop

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    def __iter__(self):
        return iter((self.host, self.port))

    def call(self, coro: Coroutine, timeout: float = 30.0) -> Any:
        """Run a coroutine on the simulator's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call_soon(self, fn, *args) -> None:
        self.loop.call_soon_threadsafe(fn, *args)


@contextlib.contextmanager
def sim_in_thread(host: str = "127.0.0.1", password: str = "ClueCon", **kwargs) -> Iterator[ThreadedSim]:
    """`SimServer(host, 0, password, **kwargs)` served from a daemon thread."""
    loop = asyncio.new_event_loop()
    server = SimServer(host, 0, password, **kwargs)
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="eslkit-sim", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the simulator did not start within 10 s")
    if failure:
        raise failure[0]
    sim = ThreadedSim(server, loop)
    try:
        yield sim
    finally:
        with contextlib.suppress(Exception):
            sim.call(server.close(), timeout=5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        if not thread.is_alive():
            loop.close()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"eslkit sim exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5) as s:
            s.recv(64)  # the greeting; closing now is like a client that never authenticates
            return
        time.sleep(0.05)
    raise RuntimeError(f"eslkit sim did not listen on {host}:{port} within {timeout} s")


@contextlib.contextmanager
def sim_subprocess(*args: str, host: str = "127.0.0.1", password: str = "ClueCon",
                   timeout: float = 15.0) -> Iterator[SimAddress]:
    """``eslkit sim --port N ARGS`` as a child process; the password goes in ESL_PASSWORD."""
    port = free_port(host)
    env = {**os.environ, "ESL_PASSWORD": password}
    exe = [str(ESLKIT)] if ESLKIT.exists() else [sys.executable, "-m", "eslkit"]
    proc = subprocess.Popen(
        [*exe, "sim", "--host", host, "--port", str(port), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_for_port(host, port, timeout, proc)
        yield SimAddress(host, port)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def sim() -> Iterator[ThreadedSim]:
    """The simulator in a thread: queue scenario at full speed, starting on the first subscription."""
    with sim_in_thread(scenario="queue", speed=None) as running:
        yield running


@pytest.fixture
def sim_process() -> Iterator[SimAddress]:
    """``eslkit sim`` as a process (queue scenario, real timing)."""
    with sim_subprocess() as address:
        yield address
