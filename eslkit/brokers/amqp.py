"""Publish to RabbitMQ (AMQP 0-9-1) with pika, as FreeSWITCH's mod_amqp does.

Events go to a topic exchange (default ``freeswitch``) with mod_amqp's routing
keys, ``Hostname.Event-Name.Event-Subclass.Unique-ID``: each part encoded the
way mod_amqp encodes it (letters, digits, ``-~_`` kept, ``.`` → ``%2E``, space →
``+``, anything else ``%XX``), an empty part as ``_``.  So consumers written for
mod_amqp (``*.CHANNEL_ANSWER.#``) work unchanged.  Popup states go to
``Hostname.agents.EXT.popup`` and the relay's status to ``relay.CLIENT-ID.status``.

The publisher runs on the relay's event loop (pika's asyncio adapter): it takes
messages from the relay's bounded buffer and publishes them with publisher
confirms, many in flight at once; a message leaves our hands only when RabbitMQ
has confirmed it.  If the connection breaks, the unconfirmed messages go back to
the front of the buffer and it reconnects with capped back-off.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence
from urllib.parse import unquote

from eslkit.backoff import Backoff
from eslkit.brokers.buffer import Buffer, Message
from eslkit.brokers.outbox import WindowedPublisher
from eslkit.brokers.urls import not_installed, password_from_env, split_broker_url
from eslkit.errors import BrokerError
from eslkit.event import Event

AMQP_EVENT_FIELDS = ("FreeSWITCH-Hostname", "Event-Name", "Event-Subclass", "Unique-ID")
AMQP_POPUP_KEY = "{hostname}.agents.{ext}.popup"
AMQP_STATUS_KEY = "relay.{client_id}.status"

_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-~_")
_SAFE_WORD = re.compile(r"[A-Za-z0-9~_-]+")


def key_part(value: str | None) -> str:
    """One routing-key word, encoded as mod_amqp's amqp_util_encode does; empty → ``_``."""
    if not value:
        return "_"
    if _SAFE_WORD.fullmatch(value):  # names, UUIDs, host names without dots: as they are
        return value
    out = []
    for byte in value.encode("utf-8"):
        if byte in _SAFE:
            out.append(chr(byte))
        elif byte == 0x2E:
            out.append("%2E")
        elif byte == 0x20:
            out.append("+")
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


MAX_ROUTING_KEY = 255  # AMQP's short string; mod_amqp's MAX_AMQP_ROUTING_KEY_LENGTH
MAX_KEY_WORD = 64  # one word of our own keys (popup, status), so their fixed words survive


def routing_key(event: Event) -> str:
    """mod_amqp's key: the encoded words joined by dots, cut at 255 bytes as it cuts it."""
    return ".".join(key_part(event.get(name)) for name in AMQP_EVENT_FIELDS)[:MAX_ROUTING_KEY]


def short_key_part(value: str | None) -> str:
    """key_part, at most MAX_KEY_WORD bytes: a longer word is cut and ends in ``~`` and
    8 hex digits of its SHA-1 (deterministic; two long values stay apart)."""
    word = key_part(value)
    if len(word) <= MAX_KEY_WORD:
        return word
    digest = hashlib.sha1(word.encode()).hexdigest()[:8]
    head = word[:MAX_KEY_WORD - 9]
    cut = head.rfind("%", len(head) - 2)  # never half a %XX escape
    return f"{head[:cut] if cut >= 0 else head}~{digest}"


@dataclass
class AmqpSettings:
    host: str
    port: int
    vhost: str = "/"
    username: str = "guest"
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    tls_ca: str | None = None
    exchange: str = "freeswitch"

    def __repr__(self) -> str:
        pw = "***" if self.password else None
        return (f"AmqpSettings(host={self.host!r}, port={self.port}, vhost={self.vhost!r}, "
                f"username={self.username!r}, password={pw!r}, tls={self.tls}, exchange={self.exchange!r})")

    @property
    def where(self) -> str:
        vhost = "" if self.vhost == "/" else self.vhost
        return f"{'amqps' if self.tls else 'amqp'}://{self.username}@{self.host}:{self.port}/{vhost}"


def parse_amqp_url(url: str, *, username: str | None = None, password_env: str | None = None,
                   exchange: str = "freeswitch", tls_ca: str | None = None) -> AmqpSettings:
    """``amqp://USER@HOST:PORT/VHOST`` (or ``amqps://``); the password only from the environment."""
    parts, port, tls = split_broker_url(url, ("amqp", "amqps"), "amqp://USER@HOST:PORT/VHOST")
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    user = username or (unquote(parts.username) if parts.username else "guest")
    return AmqpSettings(host=parts.hostname, port=port or (5671 if tls else 5672), vhost=vhost, username=user,
                        password=password_from_env(password_env), tls=tls, tls_ca=tls_ca, exchange=exchange)


def _pika():
    try:
        import pika
    except ImportError:
        raise not_installed("AMQP", "pika>=1.3") from None
    # pika logs each failed attempt with a traceback; eslkit says it once, in one sentence.
    log = logging.getLogger("pika")
    if not log.handlers:
        log.addHandler(logging.NullHandler())
        log.propagate = False
    return pika


def connection_parameters(settings: AmqpSettings, timeout: float = 10.0):
    pika = _pika()
    options = None
    if settings.tls:
        context = ssl.create_default_context(cafile=settings.tls_ca)
        options = pika.SSLOptions(context, settings.host)
    return pika.ConnectionParameters(
        host=settings.host, port=settings.port, virtual_host=settings.vhost,
        credentials=pika.PlainCredentials(settings.username, settings.password or ""),
        heartbeat=30, blocked_connection_timeout=30, connection_attempts=1,
        socket_timeout=timeout, stack_timeout=timeout, ssl_options=options,
    )


def connect(settings: AmqpSettings, timeout: float = 10.0):
    """A BlockingConnection, or one BrokerError that says why not."""
    pika = _pika()
    from pika import exceptions as px

    try:
        return pika.BlockingConnection(connection_parameters(settings, timeout))
    except (px.AMQPError, OSError, socket.timeout) as exc:
        raise open_error(settings, exc) from None


def open_error(settings: AmqpSettings, exc: BaseException) -> BrokerError:
    """Why a connection to RabbitMQ could not be opened, in one sentence."""
    from pika import exceptions as px

    if isinstance(exc, px.ProbableAuthenticationError):
        return BrokerError(
            f"RabbitMQ at {settings.where} refused the login.",
            "Check the user name in the URL and the password in the variable named by --password-env.",
        )
    if isinstance(exc, px.ProbableAccessDeniedError):
        return BrokerError(f"RabbitMQ at {settings.where} denied access to the virtual host {settings.vhost!r}.",
                           "Give the user permissions on it (rabbitmqctl set_permissions).")
    reason = str(exc) or type(exc).__name__
    return BrokerError(f"Cannot reach RabbitMQ at {settings.where}: {reason}.")


class AmqpPublisher(WindowedPublisher):
    """The relay's AMQP side; the same face as MqttPublisher.

    A pika ``AsyncioConnection`` on the relay's own event loop (no thread to fight the
    relay for the GIL) keeps up to ``window`` messages published and not yet confirmed:
    RabbitMQ confirms them asynchronously, often many with one ``Basic.Ack``
    (``multiple``).  A message leaves our hands only when it is confirmed; if the
    connection breaks, everything unconfirmed goes back to the front of the buffer, in
    order, and is sent again on the next connection (at-least-once)."""

    protocol = "amqp"
    address_name = "routing key"

    def __init__(self, settings: AmqpSettings, buffer: Buffer[Message], *, client_id: str | None = None,
                 reconnect_delay: tuple[float, float] = (1.0, 30.0), connect_timeout: float = 10.0,
                 window: int = 1000):
        super().__init__(buffer, window=window, reconnect_delay=reconnect_delay, connect_timeout=connect_timeout)
        self.settings = settings
        self.client_id = client_id or f"eslkit-relay-{socket.gethostname()}"
        self.status_key = AMQP_STATUS_KEY.format(client_id=short_key_part(self.client_id))
        self._connected = False
        self._conn = None
        self._channel = None
        self._tag = 0  # the delivery tag of the last message published on this channel
        self._attempts: dict[int, int] = {}  # id(message) -> times RabbitMQ refused it (nack)
        self._status: dict | None = None
        self._opened: asyncio.Future | None = None  # the connection being opened is ready (or failed)
        self._closed: asyncio.Future | None = None
        self._retry: asyncio.Future | None = None

    # --- addresses --------------------------------------------------------------

    def describe(self) -> str:
        return (f"{self.settings.where}, exchange {self.settings.exchange}: events as "
                f"{'.'.join(AMQP_EVENT_FIELDS)}, popup states as {AMQP_POPUP_KEY}, status as {self.status_key}")

    def event_address(self, event: Event, ext: str | None) -> str:
        return routing_key(event)

    def popup_address(self, hostname: str | None, ext: str) -> str:
        return AMQP_POPUP_KEY.format(hostname=short_key_part(hostname), ext=short_key_part(ext))

    # --- lifecycle -----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    async def start(self) -> None:
        """Connect; raise BrokerError if the first connection fails."""
        self._loop = asyncio.get_running_loop()
        await self._open()

    def status(self, payload: dict) -> None:
        self._status = payload  # the next turn of the pump sends the latest one
        self._wake()

    async def close(self, final_status: dict | None = None) -> None:
        self._closing = True
        if self._retry is not None:
            self._retry.cancel()
            await asyncio.gather(self._retry, return_exceptions=True)
        if final_status is not None and self._connected:
            self.status(final_status)
            deadline = time.monotonic() + 3
            while (self._status is not None or self._inflight) and self._connected and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        self.buffer.close()
        conn = self._conn
        if conn is not None and conn.is_open:
            self._closed = self._loop.create_future()
            conn.close()
            await asyncio.wait([self._closed], timeout=5)

    # --- the connection, on the relay's event loop ----------------------------------------

    async def _open(self) -> None:
        """One connection: open, channel, exchange declared as mod_amqp does (topic, durable),
        confirm mode.  Raises BrokerError when any step fails."""
        _pika()  # a clear error if it is missing, and its logging quiet
        from pika.adapters.asyncio_connection import AsyncioConnection

        self._opened = self._loop.create_future()
        self._conn = AsyncioConnection(connection_parameters(self.settings, self.connect_timeout),
                                       on_open_callback=self._on_open, on_open_error_callback=self._on_open_error,
                                       on_close_callback=self._on_closed, custom_ioloop=self._loop)
        try:
            await asyncio.wait_for(asyncio.shield(self._opened), self.connect_timeout + 5)
        except asyncio.TimeoutError:
            if self._conn.is_open:
                self._conn.close()
            raise BrokerError(f"RabbitMQ at {self.settings.where} did not answer within "
                              f"{self.connect_timeout:g} s.") from None
        self._tag = 0
        self._connected = True
        self.connects += 1
        self._wake()

    def _on_open(self, conn) -> None:
        conn.channel(on_open_callback=self._on_channel)

    def _on_channel(self, channel) -> None:
        self._channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.exchange_declare(self.settings.exchange, exchange_type="topic", durable=True,
                                 callback=lambda _: channel.confirm_delivery(self._on_confirm,
                                                                             callback=self._on_ready))

    def _on_ready(self, _frame) -> None:
        if not self._opened.done():
            self._opened.set_result(None)

    def _on_open_error(self, conn, exc) -> None:
        if not self._opened.done():
            self._opened.set_exception(open_error(self.settings, exc))

    def _on_channel_closed(self, channel, reason) -> None:
        if not self._opened.done():
            self._opened.set_exception(BrokerError(
                f"RabbitMQ at {self.settings.where} refused the exchange {self.settings.exchange!r}: {reason}.",
                "Use another --exchange, or delete the existing one of another type."))
        elif self._connected and self._inflight and self._inflight[0][1] is not None:
            # RabbitMQ closes the channel on a message it cannot take (e.g. larger than its
            # max_message_size), the oldest unconfirmed one: not again and again for ever.
            if self._given_up(self._inflight[0][1]):
                self._inflight.popleft()
        if self._conn is not None and self._conn.is_open:
            self._conn.close()  # a new connection opens a new channel (and declares the exchange again)

    def _on_closed(self, conn, reason) -> None:
        if not self._opened.done():
            self._opened.set_exception(open_error(self.settings, reason))
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        if conn is not self._conn:
            return
        self._conn = self._channel = None
        if self._connected:
            self._connected = False
            self._link_lost(reason)
        else:  # never opened, or closed by us: nothing was published on it
            self.buffer.put_back([m for _, m in self._inflight if m is not None])
            self._inflight.clear()

    def _pump(self) -> None:
        """Publish what is buffered, up to the window (confirms wake us again)."""
        from pika import exceptions as px

        self._pumping = False
        channel = self._channel
        if not self._connected or channel is None or not channel.is_open:
            return
        status, self._status = self._status, None
        if status is not None:
            self._publish(self.status_key, json.dumps(status).encode(), {}, None)
        room = self.window - len(self._inflight)
        for message in self.buffer.take_many(room, timeout=0) if room > 0 else ():
            try:
                self._publish(message.address, message.payload, message.headers, message)
            except (ValueError, TypeError, px.ShortStringTooLong) as exc:  # it can never be sent
                self._reject(message, str(exc) or type(exc).__name__)

    def _publish(self, key: str, body: bytes, headers: dict, message: Message | None) -> None:
        from pika import BasicProperties  # imported by start() already: a dict lookup

        props = BasicProperties(content_type="text/json", delivery_mode=2, headers=headers or None,
                                timestamp=int(time.time()))
        self._channel.basic_publish(self.settings.exchange, key, body, properties=props)
        self._tag += 1
        self._sent(self._tag, message)

    def _on_confirm(self, frame) -> None:
        """RabbitMQ's Basic.Ack / Basic.Nack for one delivery tag, or for every tag up to it."""
        method = frame.method
        for message in self._acknowledged(method.delivery_tag, method.multiple):
            if method.NAME == "Basic.Ack":
                self._attempts.pop(id(message), None)
                self.published[message.kind] += 1
            elif not self._given_up(message):
                self.buffer.put_back([message])  # nacked: once more
                self._wake()

    def _given_up(self, message: Message) -> bool:
        """RabbitMQ refused `message` once more (a nack, or the channel closed on it): True,
        and counted as refused, after MAX_ATTEMPTS, so it does not come back for ever."""
        attempts = self._attempts.get(id(message), 0) + 1
        if attempts < MAX_ATTEMPTS:
            self._attempts[id(message)] = attempts
            return False
        self._attempts.pop(id(message), None)
        self._reject(message, f"RabbitMQ did not accept it; {MAX_ATTEMPTS} attempts")
        return True


MAX_ATTEMPTS = 5


def _close_quietly(conn) -> None:
    if conn is None:
        return
    try:
        if conn.is_open:
            conn.close()
    except Exception:  # closing a broken connection: nothing more to learn
        pass


class AmqpSubscriber:
    """`--from amqp://…`: a private queue bound to the exchange, consumed in its own thread."""

    def __init__(self, settings: AmqpSettings, keys: Sequence[str]):
        self.settings = settings
        self.keys = list(keys)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._up = False

    def _session(self, deliver, link, again: bool) -> None:
        conn = connect(self.settings)
        try:
            channel = conn.channel()
            channel.exchange_declare(self.settings.exchange, exchange_type="topic", durable=True)
            queue = channel.queue_declare("", exclusive=True, auto_delete=True).method.queue
            for key in self.keys:
                channel.queue_bind(queue, self.settings.exchange, routing_key=key)
            channel.basic_consume(queue, lambda ch, method, props, body: deliver(method.routing_key, body),
                                  auto_ack=True)
            self._up = True
            if again:
                link("connected", f"connected again to {self.settings.where}")
            self._ready.set()
            while not self._stop.is_set():
                conn.process_data_events(0.2)
        finally:
            _close_quietly(conn)

    def start(self, deliver: Callable[[str, bytes], None], link: Callable[[str, str], None]) -> None:
        error: list[BaseException] = []

        def run() -> None:
            from pika import exceptions as px

            delays = Backoff(initial=1.0, cap=5.0).delays()  # a desktop wants its popups back soon
            attempt = 0
            while not self._stop.is_set():
                try:
                    self._session(deliver, link, again=attempt > 0)
                except BrokerError as exc:
                    if attempt == 0:
                        error.append(exc)
                        self._ready.set()
                        return
                except (px.AMQPError, OSError) as exc:
                    if self._up:
                        self._up = False
                        delays = Backoff(initial=1.0, cap=5.0).delays()  # a session that worked: start over
                        link("disconnected", f"broker connection lost ({exc or type(exc).__name__})")
                attempt += 1
                self._stop.wait(next(delays))

        self._thread = threading.Thread(target=run, name="eslkit-amqp-consume", daemon=True)
        self._thread.start()
        if not self._ready.wait(20):
            self.stop()
            raise BrokerError(f"RabbitMQ at {self.settings.where} did not answer within 20 s.")
        if error:
            raise error[0]

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
