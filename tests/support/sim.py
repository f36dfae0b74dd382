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
A scenario can also be fired in parts, when the test says (``scenario_in_parts``)::

    with sim_in_thread(speed=None) as sim:    # no scenario of its own
        talking, rest = scenario_in_parts(sim.server, "hold", 4.0)
        sim.call_soon(talking)                # 1001 talks to 6208
        ...                                   # a client connects, asks the switch
        sim.call_soon(rest)                   # then the hold, the unhold, the hangup
Fixtures: ``sim`` (thread, queue scenario at full speed) and ``sim_process``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Coroutine, Iterator, NamedTuple

import pytest

from eslkit.sim import SimServer
from eslkit.sim.fastpath import CallEvent, CallValues
from eslkit.sim.scenarios import fresh_uuids, load_scenario
from tests.support.cli import EXE
from tests.support.net import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
ESLKIT = ROOT / ".venv" / "bin" / "eslkit"  # the installed command (tests.support.cli.EXE runs it)


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

    def run(self, fn, *args) -> Any:
        """``fn(*args)`` on the simulator's loop, waited for (a part of `scenario_in_parts`)."""
        async def now() -> Any:
            return fn(*args)
        return self.call(now())

    def subscribed(self) -> int:
        """How many connections listen for events now (authenticated and subscribed)."""
        return sum(1 for conn in list(self.server.connections) if conn.session.events_on)

    def wait_subscribed(self, count: int = 1, timeout: float = 30.0) -> None:
        """Until ``count`` clients have subscribed (a loaded machine can take seconds to start Python)."""
        deadline = time.monotonic() + timeout
        while self.subscribed() < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.subscribed()} of {count} clients subscribed within {timeout} s")
            time.sleep(0.02)

    def stop(self) -> None:
        """Shut the switch down as FreeSWITCH does (SHUTDOWN, the disconnect notice), now."""
        self.call(self.server.close(), timeout=10)


@contextlib.contextmanager
def sim_in_thread(host: str = "127.0.0.1", password: str = "ClueCon", port: int = 0,
                  **kwargs) -> Iterator[ThreadedSim]:
    """`SimServer(host, port, password, **kwargs)` served from a daemon thread (port 0: any free one)."""
    loop = asyncio.new_event_loop()
    server = SimServer(host, port, password, **kwargs)
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


@contextlib.contextmanager
def sim_subprocess(*args: str, host: str = "127.0.0.1", password: str = "ClueCon",
                   timeout: float = 15.0) -> Iterator[SimAddress]:
    """``eslkit sim --port N ARGS`` as a child process; the password goes in ESL_PASSWORD."""
    port = free_port(host)
    env = {**os.environ, "ESL_PASSWORD": password}
    proc = subprocess.Popen(
        [*EXE, "sim", "--host", host, "--port", str(port), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        if not wait_for_port(host, port, timeout, proc, greeting=True):
            raise RuntimeError(f"eslkit sim did not listen on {host}:{port} within {timeout} s: "
                               f"{proc.stderr.read() if proc.poll() is not None and proc.stderr else ''}")
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


def scenario_in_parts(server: SimServer, name: str, *at: float) -> list[Callable[[], None]]:
    """The events of one call of scenario ``name`` cut at the seconds ``at``: one function per
    part that fires it at once, with the times of a call that started now (run them on the
    simulator's loop: ``sim.call_soon(part)``).  A test decides when each part happens (after
    a client connected, after it asked the switch) instead of racing the scenario's clock."""
    scenario = load_scenario(name)
    values = CallValues(int(time.time()) * 1_000_000 + scenario.start_fraction_us,
                        fresh_uuids(scenario.uuids), server.core_uuid, None)
    bounds = [-math.inf, *at, math.inf]
    parts = [[t for t in scenario.templates if start < t.at <= end] for start, end in zip(bounds, bounds[1:])]

    def fire(templates) -> None:
        for template in templates:
            server.fire(CallEvent(template, values, server.next_seq()))

    return [lambda part=part: fire(part) for part in parts]


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
