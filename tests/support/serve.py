"""``eslkit serve`` for a test, against the simulated switch, two ways.

In this test's own asyncio loop (the simulator, the source, the tracker and the web
server all in it, over real loopback sockets)::

    async with serving(USERS) as (sim, run):
        sim.spawn(sim.play("queue"))                       # a call, when the test says
        async with aiohttp.ClientSession(run.url) as http: # run.url = "http://127.0.0.1:PORT/"
            ...

As a process, exactly as a user runs it (``.venv/bin/eslkit serve --users FILE ...``)::

    with serve_process(users_file, sim_port, "--open-url", URL) as base:   # "http://127.0.0.1:PORT"
        ...

USERS (in memory) and `write_users(path)` give the same people: alice (agent 1001,
password "alice-password"), bob (agent 1002), sam (supervisor) and a CRM token for 1001.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import AsyncIterator, Iterator

from eslkit.app.popup import PopupEngine
from eslkit.calls import POPUP_EVENTS
from eslkit.config import ConnectionSettings
from eslkit.sim import SimServer
from eslkit.sources.esl import EslSource
from eslkit.web.users import User, Users, hash_password, hash_token
from tests.support.cli import Running
from tests.support.net import free_port, wait_for_port

PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "sam": "sam-password"}
SWITCH_PASSWORD = "Sw1tch-Secret-Pw"  # must never reach a page
CRM_TOKEN = "crm-token-for-1001-0123456789abcdef"
_HASHES = {name: hash_password(password) for name, password in PASSWORDS.items()}


def users() -> Users:
    return Users([
        User("alice", "agent", ("1001",), _HASHES["alice"]),
        User("bob", "agent", ("1002",), _HASHES["bob"]),
        User("sam", "supervisor", (), _HASHES["sam"]),
        User("crm", "agent", ("1001",), hash_token(CRM_TOKEN)),
    ])


def write_users(path: Path) -> Path:
    lines = [f"{u.name}:{u.role}:{','.join(u.exts)}:{u.secret}" for u in users().by_name.values()]
    path.write_text("\n".join(lines) + "\n")
    return path


@contextlib.asynccontextmanager
async def serving(people: Users = None, *, scenario="queue", speed=1.0, open_url=None, contacts=None,
                  mount=None, control: bool = False, audit: Path = None, **run_options) -> AsyncIterator[tuple]:
    """A simulator (its calls started by the test: ``sim.spawn(sim.play(NAME))``) and a
    ServeRun on a free port of 127.0.0.1, in the running loop; ``mount(run.web)`` adds pages
    before it starts; ``control``: the buttons, on serve's own switch connection (as
    ``eslkit serve --control [--audit FILE]``)."""
    from eslkit.app.popup_control import open_actor
    from eslkit.app.serve import ServeRun

    people = people or users()
    sim = SimServer("127.0.0.1", 0, SWITCH_PASSWORD, scenario=scenario, speed=speed, autostart=False)
    await sim.start()
    settings = ConnectionSettings(host="127.0.0.1", port=sim.port, password=SWITCH_PASSWORD, timeout=5.0)
    source = EslSource(settings, names=POPUP_EVENTS, reconnect=True)
    engine = PopupEngine(source, people.exts, lookup=contacts)
    await source.open()
    actor = await open_actor(engine, people.exts, audit=audit) if control else None
    run = ServeRun(engine, people, listen=("127.0.0.1", 0), open_url=open_url, control=actor, **run_options)
    if mount is not None:
        mount(run.web)
    task = asyncio.ensure_future(run.run())
    try:
        while run.url is None:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield sim, run
    finally:
        run.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
        await source.close()
        await sim.close()


@contextlib.contextmanager
def serve_process(users_file: Path, sim_port: int, *args: str, timeout: float = 15.0, port: int = 0,
                  env: dict = None) -> Iterator[str]:
    """``eslkit serve --users FILE --port SIM_PORT --listen 127.0.0.1:PORT ARGS`` as a child process
    (PORT: a free one unless given); stopped with Ctrl-C at the end, and it must not have
    printed a traceback."""
    port = port or free_port()
    with Running("serve", "--users", users_file, "--port", sim_port, "--listen", f"127.0.0.1:{port}", *args,
                 env={"ESL_PASSWORD": "ClueCon", **(env or {})}) as proc:
        if not wait_for_port("127.0.0.1", port, timeout, proc.proc):
            proc.stop()
            raise RuntimeError(f"eslkit serve did not listen on {port} within {timeout} s (exit code "
                               f"{proc.proc.returncode}): " + "\n".join(proc.err))
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.stop()
            assert not any("Traceback" in line for line in proc.err), "\n".join(proc.err)
