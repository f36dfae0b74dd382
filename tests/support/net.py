"""Ports for the servers a test starts (the simulated switch, brokers, fault servers)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from typing import Optional


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 10.0, proc: Optional[subprocess.Popen] = None,
                  greeting: bool = False) -> bool:
    """Until ``host:port`` accepts a connection (and, with ``greeting``, sends its first bytes);
    False at the timeout or when ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5) as s:
            if greeting:
                s.recv(64)  # closing now is like a client that never authenticates
            return True
        time.sleep(0.05)
    return False


class CutProxy:
    """A TCP forwarder (asyncio) a test can freeze and cut: ``freeze()`` drops every byte both
    ways from then on, as a dead link does; ``cut()`` closes the frozen connections, and
    connections made after it are forwarded again.  So a client's messages in flight are
    neither delivered nor acknowledged — the loss a broker outage causes, made exactly."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.port = 0
        self._server = None
        self._frozen = False
        self._deaf = False  # the broker's bytes dropped, the client's still forwarded
        self._pairs: list = []

    async def start(self) -> "CutProxy":
        import asyncio

        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader, writer) -> None:
        import asyncio

        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._pairs.append((writer, up_writer))

        async def pipe(src, dst, from_broker):
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    if not self._frozen and not (from_broker and self._deaf):
                        dst.write(data)
            dst.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))

    def freeze(self) -> None:
        self._frozen = True

    def silence_broker(self) -> None:
        """Drop what the broker sends, keep forwarding what the client sends: the broker
        stays content, the client hears nothing (only its own heartbeat check notices)."""
        self._deaf = True

    def cut(self) -> None:
        for client, upstream in self._pairs:
            client.close()
            upstream.close()
        self._pairs.clear()
        self._frozen = self._deaf = False

    async def close(self) -> None:
        self.cut()
        self._server.close()
        await self._server.wait_closed()
