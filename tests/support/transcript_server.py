"""Loopback TCP servers for client tests: one that answers with a real
capture's bytes, and small misbehaving ones for fault injection.

The transcript server is not a protocol mock: it sends the exact bytes the real
FreeSWITCH sent, frame by frame, each reply when the client's command arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Awaitable, Callable

from eslkit.protocol import ApiResponse, CommandReply, Parser, auth_request, command_reply


def _wire(frame) -> bytes:
    head = "".join(f"{k}: {v}\n" for k, v in frame.headers)
    return (head + "\n").encode() + frame.body


def script_from_capture(raw: bytes) -> tuple[bytes, list[bytes], bool]:
    """(greeting, one chunk per command, close_at_end) from a .raw capture.

    Each chunk is a reply plus everything the switch sent after it until the
    next reply (events, logs, the disconnect notice).
    """
    frames = Parser().feed(raw)
    greeting = b""
    chunks: list[bytes] = []
    for frame in frames:
        if isinstance(frame, (CommandReply, ApiResponse)):
            chunks.append(_wire(frame))
        elif chunks:
            chunks[-1] += _wire(frame)
        else:
            greeting += _wire(frame)
    return greeting, chunks, True


@contextlib.asynccontextmanager
async def serve(handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]):
    """Run ``handler`` for each connection on a free loopback port; yield the port."""
    tasks = set()

    async def _wrapped(reader, writer):
        task = asyncio.current_task()
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            tasks.discard(task)
            writer.close()

    server = await asyncio.start_server(_wrapped, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await server.wait_closed()


async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A tiny switch's handshake: auth/request, read the client's auth, accept it."""
    writer.write(auth_request())
    await read_command(reader)
    writer.write(command_reply("+OK accepted"))


async def read_command(reader: asyncio.StreamReader) -> bytes:
    """One client command (up to and including its blank line); b"" at EOF."""
    try:
        return await reader.readuntil(b"\n\n")
    except asyncio.IncompleteReadError:
        return b""


def transcript_handler(capture: Path):
    """A handler that plays back ``capture`` (.raw) one reply per command."""
    greeting, chunks, close_at_end = script_from_capture(capture.read_bytes())

    async def handler(reader, writer):
        writer.write(greeting)
        await writer.drain()
        for chunk in chunks:
            if not await read_command(reader):
                return
            writer.write(chunk)
            await writer.drain()
        if close_at_end:
            writer.close()

    return handler


class ThreadedServer:
    """A loopback asyncio server in its own thread, for tests that drive real
    processes (eslkit commands) against a switch that misbehaves on purpose.

    Subclasses write ``async def _handle(self, reader, writer)``; use as a
    context manager, then read ``.port``.
    """

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.server = None
        self.thread = None

    async def _handle(self, reader, writer) -> None:  # pragma: no cover - subclasses
        raise NotImplementedError

    def __enter__(self):
        import threading

        ready = threading.Event()

        async def start():
            self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()

        def run():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(start())
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(10), "the test server did not start"
        return self

    def __exit__(self, *exc) -> None:
        async def stop():
            self.server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
