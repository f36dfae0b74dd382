"""An asyncio inbound event-socket connection, wrapped around `eslkit.protocol`.

    async with Connection("127.0.0.1", 8021, "ClueCon") as conn:
        await conn.subscribe(["CHANNEL_ANSWER"])
        print(await conn.api("status"))
        async for item in conn.events():
            ...   # an Event, or a ConnectionStatus when the link goes down or comes back

One task reads the socket continuously — it is never paused for a slow
consumer, because api replies share the socket — and fans events into a
bounded queue that drops the oldest and counts the drops.  Commands are sent
one at a time and matched to replies in order.  With ``reconnect=True`` a lost
link is re-established with capped, jittered exponential back-off, and the
subscriptions and filters are sent again.
"""

from __future__ import annotations

import asyncio
import enum
import time
import uuid
from collections import deque
from typing import AsyncIterator, Iterable, Iterator, Optional, Union

from eslkit.backoff import Backoff
from eslkit.errors import (
    AclRejected,
    AuthError,
    CommandError,
    CommandTimeout,
    ConnectError,
    ConnectionRefused,
    ConnectTimeout,
    Disconnected,
    EslkitError,
    LocalProtocolError,
    ProtocolError,
)
from eslkit.event import Event
from eslkit.protocol import (
    DEFAULT_MAX_FRAME_SIZE,
    ApiResponse,
    AuthRequest,
    CommandReply,
    DisconnectNotice,
    EventFrame,
    Frame,
    LogData,
    Parser,
    RudeRejection,
    encode_command,
)
from eslkit.status import ConnectionStatus
from eslkit.subscription import HeaderFilters, event_words

__all__ = ["Connection", "ConnectionStatus", "ConnState", "Backoff"]

READ_SIZE = 256 * 1024


class ConnState(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


class _Fatal:
    """Queued to make `events()` raise."""

    __slots__ = ("error",)

    def __init__(self, error: EslkitError):
        self.error = error


QueueItem = Union[Event, ConnectionStatus, LogData]


def _read_its_end(task: asyncio.Future) -> None:
    if not task.cancelled():
        task.exception()


class Connection:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8021,
        password: str = "ClueCon",
        *,
        timeout: float = 5.0,
        reconnect: bool = False,
        queue_size: int = 10_000,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        backoff: Backoff | None = None,
    ):
        self.host, self.port = host, port
        if "\n" in password or "\r" in password:  # refused here, as encode_command would, but unquoted
            raise LocalProtocolError("The ESL password holds a newline or carriage return; eslkit never sends it.",
                                     "Give the password of event_socket.conf.xml on one line (ESL_PASSWORD, "
                                     "a profile or --password).")
        self._password = password
        self.timeout = timeout
        self.reconnect = reconnect
        self.max_frame_size = max_frame_size
        self.backoff = backoff or Backoff()
        self.state = ConnState.IDLE
        self.received = 0
        self.dropped = 0
        # What a reconnect sends again: the words of `event` (in the order the switch
        # reads them) and the filters, kept with the switch's own rules.
        self.format = "plain"
        self.subscriptions: list[str] = []
        self._filters = HeaderFilters()
        self._queue: deque = deque()
        self._queue_size = queue_size
        # asyncio primitives are made in connect(): on Python 3.9 they bind to the
        # loop current at construction, and a Connection may be made before asyncio.run().
        self._ready: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._connected: asyncio.Event | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._parser = Parser(max_frame_size)
        self._frames: deque = deque()  # parsed but not yet handled (handshake reads)
        self._replies: deque = deque()  # futures waiting for command/reply or api/response, in order
        self._jobs: dict[str, asyncio.Future] = {}
        self._task: asyncio.Task | None = None
        self._hidden_bgjob = False  # we subscribed BACKGROUND_JOB for bgapi, not the user
        self._exiting = False
        self._stalled = False
        self._delays: Iterator[float] | None = None
        self._up_since = 0.0

    def __repr__(self) -> str:
        # Never the password.
        return f"<Connection {self.host}:{self.port} {self.state.value} received={self.received} dropped={self.dropped}>"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def filters(self) -> list[tuple[str, str]]:
        """The filters installed on the switch, as (header, value), in order."""
        return list(self._filters.items)

    # --- life cycle -------------------------------------------------------------------

    async def __aenter__(self) -> "Connection":
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def connect(self) -> None:
        """Connect and authenticate; errors here are raised, never retried."""
        self._ready, self._lock, self._connected = asyncio.Event(), asyncio.Lock(), asyncio.Event()
        self.state = ConnState.CONNECTING
        try:
            await self._open()
        except BaseException:
            self.state = ConnState.IDLE
            raise
        self.state = ConnState.CONNECTED
        self._up_since = time.monotonic()
        self._connected.set()
        self._task = asyncio.ensure_future(self._run())

    async def close(self) -> None:
        if self.state is ConnState.CLOSED:
            return
        self.state = ConnState.CLOSED
        # Close the socket first: a pending read then returns even if a cancel is lost.
        self._drop_socket()
        task = self._task
        if task is not None and task is not asyncio.current_task():
            for _ in range(3):
                task.cancel()
                done, _ = await asyncio.wait({task}, timeout=1.0)
                if done:
                    break
        self._fail_waiters(Disconnected("The connection was closed."))
        if self._ready is not None:
            self._ready.set()

    def _drop_socket(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer = self._reader = None
        if self._connected is not None:
            self._connected.clear()

    async def _open(self) -> None:
        """Open the socket, read the greeting, authenticate."""
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, limit=READ_SIZE), self.timeout
            )
        except ConnectionRefusedError as exc:
            raise ConnectionRefused(f"Nothing is listening on {self.address} (connection refused).") from exc
        except asyncio.TimeoutError:
            raise ConnectTimeout(f"No answer from {self.address} within {self.timeout:g} s.") from None
        except OSError as exc:
            raise ConnectError(f"Cannot connect to {self.address}: {exc.strerror or exc}.") from exc
        self._parser = Parser(self.max_frame_size)
        self._frames.clear()
        try:
            # One deadline for the whole handshake: a server dripping a byte at a time cannot stretch it.
            handshake = asyncio.ensure_future(self._handshake())
            # Cancelled (close() during a reconnect), wait_for leaves the handshake's own
            # end unread: read it, or asyncio prints "Task exception was never retrieved".
            handshake.add_done_callback(_read_its_end)
            await asyncio.wait_for(handshake, self.timeout)
        except asyncio.TimeoutError:
            self._drop_socket()
            raise ConnectTimeout(f"{self.address} did not complete the greeting and auth within "
                                 f"{self.timeout:g} s.") from None
        except BaseException:
            self._drop_socket()
            raise

    async def _handshake(self) -> None:
        """Read the greeting, send auth, read its reply."""
        greeting = await self._read_frame(self.timeout)
        if isinstance(greeting, RudeRejection):
            raise AclRejected(f"The switch at {self.address} refused this address by its ACL: "
                              f"{greeting.text.strip()!r}.")
        if isinstance(greeting, DisconnectNotice):
            raise Disconnected(f"The switch at {self.address} hung up at once: {greeting.text.strip()!r}.")
        if not isinstance(greeting, AuthRequest):
            raise ProtocolError(f"{self.address} did not greet with auth/request; "
                                "it does not look like mod_event_socket.")
        self._open_writer().write(encode_command(f"auth {self._password}"))
        reply = await self._read_frame(self.timeout)
        if not isinstance(reply, CommandReply):
            raise ProtocolError(f"{self.address} answered auth with {reply.content_type or 'garbage'}.")
        if not reply.ok:
            raise AuthError(f"The switch at {self.address} rejected the password ({reply.reply_text}).")

    def _open_writer(self) -> asyncio.StreamWriter:
        """The socket's writer, unless close() took it away meanwhile: a cancel that arrives as
        a read completes is swallowed by wait_for, and the handshake or restore goes on."""
        if self._writer is None:
            raise Disconnected("The connection was closed.")
        return self._writer

    async def _read_frame(self, timeout: float) -> Frame:
        """Read one frame directly (before the reader task runs: greeting, auth, restore)."""
        while not self._frames:
            try:
                reader = self._reader
                if reader is None:  # close() took the socket while we waited (see _open_writer)
                    raise Disconnected("The connection was closed.")
                data = await asyncio.wait_for(reader.read(READ_SIZE), timeout)
            except asyncio.TimeoutError:
                raise CommandTimeout(f"{self.address} sent nothing for {timeout:g} s during the handshake.") from None
            except OSError as exc:
                raise Disconnected(f"The connection to {self.address} broke: {exc.strerror or exc}.") from exc
            if not data:
                self._parser.feed(b"")  # raises if a frame was cut off
                raise Disconnected(f"The switch at {self.address} closed the connection.")
            self._frames.extend(self._parser.feed(data))
        return self._frames.popleft()

    # --- the reader task ---------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            reason = await self._read_loop()
            self._drop_socket()
            self._fail_waiters(Disconnected(reason))
            if self._exiting:  # we said exit: the switch closing is the expected end
                self.state = ConnState.CLOSED
                self._ready.set()
            if self.state is ConnState.CLOSED:
                return
            if not self.reconnect:  # the default fix says "reconnects by itself": not this time
                self._put(_Fatal(Disconnected(reason, "The switch may be restarting: run this again once it is back.")))
                return
            self._put(ConnectionStatus("disconnected", reason))
            lost_at = time.monotonic()
            self.state = ConnState.RECONNECTING
            fatal = await self._reconnect()
            if self.state is ConnState.CLOSED:  # closed while reconnecting (a cancel wait_for swallowed)
                self._drop_socket()
                return
            if fatal is not None:
                self.state = ConnState.CLOSED
                self._put(_Fatal(fatal))
                return
            self.state = ConnState.CONNECTED
            self._connected.set()
            self._put(ConnectionStatus("connected", "reconnected", gap=time.monotonic() - lost_at))

    async def _read_loop(self) -> str:
        """Read and dispatch until the link goes; return why it went."""
        reason = f"The switch at {self.address} closed the connection."
        try:
            for frame in list(self._frames):
                self._dispatch(frame)
            self._frames.clear()
            reader, parser = self._reader, self._parser
            loop = asyncio.get_running_loop()
            stall_after = max(self.timeout * 3, 1.0)
            self._stalled = False
            while True:
                if parser.buffered:
                    # Mid-frame: a peer that stalls here is broken, not idle.  A timer
                    # that closes the socket, not wait_for: wait_for can swallow a
                    # cancel (bpo-42130) and costs a task per read on the hot path.
                    timer = loop.call_later(stall_after, self._on_stall)
                    data = await reader.read(READ_SIZE)
                    timer.cancel()
                else:
                    data = await reader.read(READ_SIZE)
                if self._stalled:
                    return f"The switch at {self.address} stalled in the middle of a frame."
                if not data:
                    parser.feed(b"")
                    return reason
                for frame in parser.feed(data):
                    if isinstance(frame, DisconnectNotice):
                        text = frame.text.strip().splitlines()
                        if text:
                            reason = f"The switch at {self.address} disconnected: {text[0]}"
                    else:
                        self._dispatch(frame)
        except ProtocolError as exc:
            for frame in exc.frames:
                self._dispatch(frame)
            return str(exc)
        except OSError as exc:
            return f"The connection to {self.address} broke: {exc.strerror or exc}."

    def _on_stall(self) -> None:
        self._stalled = True
        if self._writer is not None:
            self._writer.close()  # the pending read returns and the loop reports the stall

    def _dispatch(self, frame: Frame) -> None:
        if isinstance(frame, EventFrame):
            event = frame.event
            if self._jobs and event.get("Event-Name") == "BACKGROUND_JOB":
                job = self._jobs.pop(event.get("Job-UUID") or "", None)
                if job is not None and not job.done():
                    job.set_result(event)
                if self._hidden_bgjob:
                    return
            self.received += 1
            self._put(event)
        elif isinstance(frame, (CommandReply, ApiResponse)):
            # Replies come in command order; a timed-out command's late reply
            # still belongs to it and is dropped here, not given to the next one.
            if self._replies:
                waiter = self._replies.popleft()
                if not waiter.done():
                    waiter.set_result(frame)
        elif isinstance(frame, LogData):
            self._put(frame)

    def _put(self, item) -> None:
        queue = self._queue
        if len(queue) >= self._queue_size and not isinstance(item, (_Fatal, ConnectionStatus)):
            queue.popleft()
            self.dropped += 1
        queue.append(item)
        self._ready.set()

    def _fail_waiters(self, error: EslkitError) -> None:
        while self._replies:
            waiter = self._replies.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        for job in self._jobs.values():
            if not job.done():
                job.set_exception(error)
        self._jobs.clear()

    async def _reconnect(self) -> EslkitError | None:
        # A switch that accepts and drops us at once must not be hammered: the
        # back-off only starts over after a session that lasted a while.
        if self._delays is None or time.monotonic() - self._up_since > self.backoff.reset_after:
            self._delays = self.backoff.delays()
        for delay in self._delays:
            await asyncio.sleep(delay)
            if self.state is ConnState.CLOSED:
                return None
            try:
                await self._open()
                await self._restore()
                self._up_since = time.monotonic()
                return None
            except (AuthError, AclRejected) as exc:
                return exc
            except EslkitError:
                self._drop_socket()
                continue

    async def _restore(self) -> None:
        """Send the subscriptions and filters again on a fresh link."""
        # Filters first: otherwise the switch streams unfiltered events in between.
        commands = [f"filter {h} {v}" for h, v in self._filters.items]
        if self.subscriptions:
            commands.append(f"event {self.format} {' '.join(self.subscriptions)}")
        for command in commands:
            self._open_writer().write(encode_command(command))
            while True:
                frame = await self._read_frame(self.timeout)
                if isinstance(frame, (CommandReply, ApiResponse)):
                    break
                self._dispatch(frame)

    # --- consuming events ---------------------------------------------------------------

    async def events(self) -> AsyncIterator[QueueItem]:
        """Events (and link changes) until the connection is closed."""
        if self._ready is None:
            raise Disconnected(f"Not connected to {self.address}: call connect() first.")
        queue, ready = self._queue, self._ready
        while True:
            while queue:
                item = queue.popleft()
                if isinstance(item, _Fatal):
                    raise item.error
                yield item
            if self.state is ConnState.CLOSED:
                return
            ready.clear()
            await ready.wait()

    # --- commands -------------------------------------------------------------------------

    async def _request(self, data: bytes, timeout: float | None, what: str) -> Frame:
        timeout = self.timeout if timeout is None else timeout
        if self._lock is None:
            raise Disconnected(f"Not connected to {self.address}: call connect() first.")
        async with self._lock:
            if self._writer is None or self.state is not ConnState.CONNECTED:
                raise Disconnected(f"Not connected to {self.address} right now; cannot send {what!r}.")
            waiter = asyncio.get_running_loop().create_future()
            self._replies.append(waiter)
            self._writer.write(data)
            try:
                return await asyncio.wait_for(asyncio.shield(waiter), timeout)
            except asyncio.TimeoutError:
                waiter.cancel()  # stays queued so its late reply is matched and skipped
                raise CommandTimeout(f"{what!r} got no reply from {self.address} within {timeout:g} s.") from None

    async def command(self, command: str, headers: Iterable[tuple[str, str]] = (),
                      timeout: float | None = None, check: bool = True) -> CommandReply:
        """Send one command; a -ERR reply raises CommandError when ``check``."""
        frame = await self._request(encode_command(command, headers), timeout, command.split(" ")[0])
        if not isinstance(frame, CommandReply):
            raise ProtocolError(f"{self.address} answered {command.split(' ')[0]!r} with {frame.content_type}.")
        if check and frame.reply_text.startswith("-ERR"):
            raise CommandError(f"The switch refused {command!r}: {frame.reply_text}.")
        return frame

    async def api(self, command: str, timeout: float | None = None) -> str:
        """Run an API command and return its output (``-ERR …`` text included)."""
        frame = await self._request(encode_command(f"api {command}"), timeout, f"api {command}")
        if isinstance(frame, CommandReply):  # e.g. "api" with nothing after it
            raise CommandError(f"The switch refused 'api {command}': {frame.reply_text}.")
        return frame.text

    async def bgapi(self, command: str, timeout: float | None = None) -> str:
        """Run an API command in the background; return the body of its BACKGROUND_JOB."""
        timeout = self.timeout if timeout is None else timeout
        if not ({"ALL", "BACKGROUND_JOB"} & set(self.subscriptions)) and not self._hidden_bgjob:
            await self.command(f"event {self.format} BACKGROUND_JOB")
            self._hidden_bgjob = True
        job_uuid = str(uuid.uuid4())
        # With any filter installed the switch only passes matching events: let this job through.
        if self._filters:
            await self.command(f"filter Job-UUID {job_uuid}")
        job = asyncio.get_running_loop().create_future()
        self._jobs[job_uuid] = job
        try:
            await self.command(f"bgapi {command}", [("Job-UUID", job_uuid)], timeout)
            try:
                event = await asyncio.wait_for(job, timeout)
            except asyncio.TimeoutError:
                raise CommandTimeout(f"'bgapi {command}' did not finish within {timeout:g} s.") from None
        finally:
            self._jobs.pop(job_uuid, None)
            if self._filters and self.state is ConnState.CONNECTED:
                await self.command(f"filter delete Job-UUID {job_uuid}", check=False)
        return event.body or ""

    async def subscribe(self, names: Iterable[str] = ("ALL",), format: str = "plain") -> str:
        """``event FORMAT NAMES``: names as `eslkit.subscription.event_words` reads them
        (commas or spaces; ``CUSTOM sofia::register`` for subclasses; none: ALL)."""
        words = event_words(names) or ["ALL"]
        reply = await self.command(f"event {format} {' '.join(words)}")
        self.format = format
        self.subscriptions = event_words(self.subscriptions + words)
        if "BACKGROUND_JOB" in words or "ALL" in words:
            self._hidden_bgjob = False
        return reply.reply_text

    async def nixevent(self, names: Iterable[str]) -> str:
        words = event_words(names)
        reply = await self.command(f"nixevent {' '.join(words)}")
        self.subscriptions = [n for n in self.subscriptions if n not in words or n == "CUSTOM"]
        return reply.reply_text

    async def noevents(self) -> str:
        reply = await self.command("noevents")
        self.subscriptions = []
        return reply.reply_text

    async def filter(self, header: str, value: str) -> str:
        reply = await self.command(f"filter {header} {value}")
        self._filters.add(header, value)
        return reply.reply_text

    async def filter_delete(self, header: str, value: Optional[str] = None) -> str:
        reply = await self.command(f"filter delete {header}" + (f" {value}" if value else ""))
        self._filters.delete(header, value)
        return reply.reply_text

    async def log(self, level: Union[int, str]) -> str:
        return (await self.command(f"log {level}")).reply_text

    async def nolog(self) -> str:
        return (await self.command("nolog")).reply_text

    async def exit(self) -> None:
        """Say goodbye politely; the switch answers +OK bye and closes."""
        self.reconnect = False
        self._exiting = True
        try:
            await self.command("exit", check=False)
        except Disconnected:
            pass

