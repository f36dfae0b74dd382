"""Phone-control requests over AMQP (RabbitMQ): routing keys of the same shape as the MQTT
topics of `eslkit.control.mqtt`, on the relay's topic exchange::

    <hostname>.agents.<ext>.control          a desktop's requests (JSON)
    <hostname>.agents.<ext>.control.reply    the relay's replies

RabbitMQ checks a message's ``user_id`` property against the user that published it, so
the relay records it as the client id: on AMQP the audit log's client is the broker user,
not a claim.  A RabbitMQ's topic permissions play the part of Mosquitto's ACL
(docs/phone.md).  pika is not thread-safe: one thread owns each connection, consumes, and
publishes what the asyncio side queued for it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from typing import Callable, Optional, Sequence

from eslkit.control.mqtt import ANY_SWITCH
from eslkit.control.requests import Desk, Requester, parse_reply
from eslkit.errors import BrokerError
from eslkit.brokers.amqp import AmqpSettings, _close_quietly, connect, short_key_part

CONTROL_KEY = "*.agents.*.control"


class _Worker:
    """One pika connection in its own thread: a private queue bound to ``keys``, messages to
    ``deliver(routing_key, body, user_id)``, and `publish` from any thread."""

    def __init__(self, settings: AmqpSettings, keys: Sequence[str], name: str, *, passive: bool = False):
        self.settings = settings
        self.keys = list(keys)
        self.name = name
        self.passive = passive  # a desktop: the relay declares the exchange, an agent may not
        self.failed: Optional[Callable[[str], None]] = None  # RabbitMQ closed the link (a refused publish)
        self._outbox: deque = deque()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: list[BaseException] = []
        self._thread: Optional[threading.Thread] = None

    def start(self, deliver: Callable[[str, bytes, Optional[str]], None]) -> None:
        self._thread = threading.Thread(target=self._run, args=(deliver,), name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(20):
            self.stop()
            raise BrokerError(f"RabbitMQ at {self.settings.where} did not answer within 20 s.")
        if self._error:
            raise self._error[0]

    def publish(self, key: str, body: bytes) -> None:
        self._outbox.append((key, body))

    def _run(self, deliver) -> None:
        from pika import BasicProperties
        from pika import exceptions as px

        first = True
        while not self._stop.is_set():
            try:
                conn = connect(self.settings)
            except BrokerError as exc:
                if first:
                    self._error.append(exc)
                    self._ready.set()
                    return
                self._stop.wait(1.0)
                continue
            try:
                channel = conn.channel()
                channel.exchange_declare(self.settings.exchange, exchange_type="topic", durable=True,
                                         passive=self.passive)
                queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
                for key in self.keys:
                    channel.queue_bind(queue, self.settings.exchange, routing_key=key)
                channel.basic_consume(queue, lambda ch, method, props, body: deliver(
                    method.routing_key, body, props.user_id), auto_ack=True)
                first = False
                self._ready.set()
                while not self._stop.is_set():
                    while self._outbox:
                        key, body = self._outbox.popleft()
                        channel.basic_publish(self.settings.exchange, key, body, BasicProperties(
                            content_type="text/json", delivery_mode=2, user_id=self.settings.username))
                    conn.process_data_events(0.05)
            except (px.AMQPError, OSError) as exc:
                if first:
                    self._error.append(BrokerError(f"RabbitMQ at {self.settings.where} refused phone control: "
                                                   f"{exc or type(exc).__name__}.",
                                                   "Give the user read and write on the exchange (docs/phone.md)."))
                    self._ready.set()
                    return
                if self.failed is not None:
                    self.failed(str(exc) or type(exc).__name__)
                self._stop.wait(1.0)
            finally:
                _close_quietly(conn)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


class AmqpDesk:
    """``relay --control`` on RabbitMQ: every agent's requests to the `Desk`, replies back."""

    def __init__(self, settings: AmqpSettings, desk: Desk, hostname: Callable[[], Optional[str]]):
        self.desk = desk
        self.hostname = hostname
        self._worker = _Worker(settings, [CONTROL_KEY], "eslkit-amqp-control")
        self._queue: Optional[asyncio.Queue] = None
        self._task: Optional[asyncio.Task] = None
        self.dropped = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(1000)

        def deliver(key: str, body: bytes, user_id: Optional[str]) -> None:
            loop.call_soon_threadsafe(self._put, key, body, user_id)

        await asyncio.to_thread(self._worker.start, deliver)
        self._task = asyncio.ensure_future(self._serve())

    def _put(self, key: str, body: bytes, user_id: Optional[str]) -> None:
        try:
            self._queue.put_nowait((key, body, user_id))
        except asyncio.QueueFull:
            self.dropped += 1

    async def _serve(self) -> None:
        while True:
            key, body, user_id = await self._queue.get()
            words = key.split(".")
            if len(words) != 4:
                continue
            switch, ext = words[0], words[2]
            ours = self.hostname()
            if switch != ANY_SWITCH and ours is not None and switch != short_key_part(ours):
                continue
            reply = await self.desk.handle(ext, body, via="amqp", client_id=user_id)
            if reply is not None:
                self._worker.publish(key + ".reply", json.dumps(reply, ensure_ascii=True).encode())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await asyncio.to_thread(self._worker.stop)


class AmqpControl(Requester):
    """A desktop's requests through ``relay --control`` on RabbitMQ (see `Requester`)."""

    def __init__(self, settings: AmqpSettings, exts: Sequence[str], *, wait: float = 10.0):
        super().__init__(settings.username, wait)
        self.settings = settings
        self.exts = list(exts)
        self.description = f"{settings.where} exchange {settings.exchange}"
        self._worker = _Worker(settings, [f"*.agents.{short_key_part(ext)}.control.reply" for ext in exts],
                               "eslkit-amqp-requests", passive=True)

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()

        def deliver(key: str, body: bytes, user_id: Optional[str]) -> None:
            reply = parse_reply(body)
            if reply is not None:
                self._loop.call_soon_threadsafe(self.answer, reply)

        def failed(why: str) -> None:
            self._loop.call_soon_threadsafe(self.refused, BrokerError(
                f"RabbitMQ at {self.settings.where} refused the request ({why}).",
                f"{self.settings.username} may only send requests for its own extension (docs/phone.md)."))

        self._worker.failed = failed
        await asyncio.to_thread(self._worker.start, deliver)

    def _send(self, ext: str, payload: bytes) -> None:
        self._worker.publish(f"{ANY_SWITCH}.agents.{short_key_part(ext)}.control", payload)

    async def close(self) -> None:
        await asyncio.to_thread(self._worker.stop)
