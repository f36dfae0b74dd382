"""`eslkit sim` (the real command, as a process) under 500 connections at once,
a third of them malicious, keeps serving the honest ones.

The single-misbehaviour cases (one client that never authenticates, one flood,
one hang-up mid-command, one that never reads, 100 honest clients with filters)
are in tests/test_sim_robustness.py; here they all come together, with the
honest clients arriving while the attack is going on.
"""

from __future__ import annotations

import asyncio
import socket
import struct

from eslkit.protocol import ApiResponse, CommandReply, EventFrame, Parser
from tests.support.sim import sim_subprocess

HONEST = 330
NEVER_AUTH = 80
FLOODS = 20
HANG_UPS = 50
NEVER_READ = 20
FLOOD_BYTES = 4 * 1024 * 1024  # per flooding client, no newline anywhere


async def frames_until(reader: asyncio.StreamReader, parser: Parser, got: list, predicate, timeout: float):
    async def loop():
        while not predicate(got):
            data = await reader.read(65536)
            if not data:
                return
            got.extend(parser.feed(data))
    await asyncio.wait_for(loop(), timeout)


async def honest(host: str, port: int, i: int) -> str:
    """Log in, ask the switch something, take one event of the looping scenario."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    parser, got = Parser(), []
    try:
        fmt = ("plain", "json", "xml")[i % 3]
        writer.write(b"auth ClueCon\n\napi status\n\n" + f"event {fmt} CHANNEL_HANGUP_COMPLETE\n\n".encode())
        await frames_until(reader, parser, got, lambda g: any(isinstance(f, EventFrame) for f in g), 20)
        replies = [f.reply_text for f in got if isinstance(f, CommandReply)]
        api = [f.text for f in got if isinstance(f, ApiResponse)]
        event = next(f for f in got if isinstance(f, EventFrame))
        assert replies[:2] == ["+OK accepted", f"+OK event listener enabled {fmt}"], replies
        assert api and api[0].startswith("UP "), api
        assert event.content_type == f"text/event-{fmt}" and event.event.event_name == "CHANNEL_HANGUP_COMPLETE"
        return "ok"
    finally:
        writer.close()


async def never_authenticates(host: str, port: int, hold: asyncio.Event) -> None:
    _, writer = await asyncio.open_connection(host, port)
    await hold.wait()
    writer.close()


async def floods(host: str, port: int) -> bool:
    """Megabytes without a newline: the switch must hang up on this one (and only it)."""
    reader, writer = await asyncio.open_connection(host, port)
    chunk = b"x" * 65536
    try:
        for _ in range(FLOOD_BYTES // len(chunk)):
            writer.write(chunk)
            await asyncio.wait_for(writer.drain(), 10)
        await asyncio.wait_for(reader.read(), 10)  # the switch hangs up (a timeout here fails the test)
        return True
    except (ConnectionError, OSError):
        return True
    finally:
        writer.close()


async def hangs_up_mid_command(host: str, port: int, i: int) -> None:
    _, writer = await asyncio.open_connection(host, port)
    partial = (b"auth Clue", b"auth ClueCon\n\napi sta", b"auth ClueCon\n\nsendevent X\nContent-Length: 50\n\nab",
               b"auth ClueCon\n\nevent plain ALL\n\nfilter Unique-ID")[i % 4]
    writer.write(partial)
    await writer.drain()
    if i % 2:  # half of them with a reset instead of a FIN
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


async def never_reads(host: str, port: int, hold: asyncio.Event) -> None:
    _, writer = await asyncio.open_connection(host, port)
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    writer.write(b"auth ClueCon\n\nevent xml ALL\n\n")
    await hold.wait()
    writer.close()


async def storm(host: str, port: int) -> list:
    hold = asyncio.Event()
    idle = [asyncio.ensure_future(never_authenticates(host, port, hold)) for _ in range(NEVER_AUTH)]
    stuck = [asyncio.ensure_future(never_reads(host, port, hold)) for _ in range(NEVER_READ)]
    attacks = [asyncio.ensure_future(floods(host, port)) for _ in range(FLOODS)]
    attacks += [asyncio.ensure_future(hangs_up_mid_command(host, port, i)) for i in range(HANG_UPS)]
    await asyncio.sleep(0.2)  # the attack is under way when the honest clients come
    honest_results = await asyncio.gather(*(honest(host, port, i) for i in range(HONEST)), return_exceptions=True)
    attack_results = await asyncio.gather(*attacks, return_exceptions=True)
    hold.set()
    await asyncio.gather(*idle, *stuck, return_exceptions=True)
    return [honest_results, attack_results]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_500_connections_a_third_malicious_the_honest_are_served():
    assert HONEST + NEVER_AUTH + FLOODS + HANG_UPS + NEVER_READ == 500
    with sim_subprocess("--scenario", "busy", "--loop", "--speed", "8") as (host, port):
        honest_results, attack_results = asyncio.run(asyncio.wait_for(storm(host, port), 60))
        failures = [r for r in honest_results if r != "ok"]
        assert not failures, f"{len(failures)} honest clients failed, e.g. {failures[:3]!r}"
        assert all(r is True for r in attack_results[:FLOODS]), attack_results[:FLOODS]
        assert not [r for r in attack_results[FLOODS:] if isinstance(r, BaseException)]
        # Still serving afterwards, to a newcomer.
        assert asyncio.run(honest(host, port, 0)) == "ok"
        sim_pid = _pid_listening_on(port)
        if sim_pid is not None:  # 20 floods x 4 MB were refused, not buffered
            assert rss_kib(sim_pid) < 300 * 1024


def _pid_listening_on(port: int) -> int | None:
    """The eslkit sim process (a child of this test) that listens on `port`."""
    import os

    inode = None
    with open("/proc/net/tcp") as fh:
        table = fh.read().splitlines()[1:]
    for line in table:
        parts = line.split()
        if parts[1].endswith(f":{port:04X}") and parts[3] == "0A":
            inode = parts[9]
    if inode is None:
        return None
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return int(pid)
        except OSError:
            continue
    return None
