"""Publish to RabbitMQ (AMQP 0-9-1) with pika, as FreeSWITCH's mod_amqp does.

Events go to a topic exchange (default ``freeswitch``) with mod_amqp's routing
keys, ``Hostname.Event-Name.Event-Subclass.Unique-ID``: each part encoded the
way mod_amqp encodes it (letters, digits, ``-~_`` kept, ``.`` → ``%2E``, space →
``+``, anything else ``%XX``), an empty part as ``_``.  So consumers written for
mod_amqp (``*.CHANNEL_ANSWER.#``) work unchanged.  Popup states go to
``Hostname.agents.EXT.popup`` and the relay's status to ``relay.CLIENT-ID.status``.

pika is not thread-safe, so one thread owns the connection: it takes messages
from the relay's bounded buffer and publishes each with publisher confirms;
a message leaves our hands only when RabbitMQ has confirmed it.  If the
connection breaks, the unconfirmed message goes back to the front of the
buffer and the thread reconnects with capped back-off.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Sequence
from urllib.parse import unquote

from eslkit.backoff import Backoff
from eslkit.brokers.buffer import Buffer, Message
from eslkit.brokers.urls import not_installed, password_from_env, split_broker_url
from eslkit.errors import BrokerError
from eslkit.event import Event

AMQP_EVENT_FIELDS = ("FreeSWITCH-Hostname", "Event-Name", "Event-Subclass", "Unique-ID")
AMQP_POPUP_KEY = "{hostname}.agents.{ext}.popup"
AMQP_STATUS_KEY = "relay.{client_id}.status"

_SAFE = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-~_")


def key_part(value: str | None) -> str:
    """One routing-key word, encoded as mod_amqp's amqp_util_encode does; empty → ``_``."""
    if not value:
        return "_"
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
    except px.ProbableAuthenticationError:
        raise BrokerError(
            f"RabbitMQ at {settings.where} refused the login.",
            "Check the user name in the URL and the password in the variable named by --password-env.",
        ) from None
    except px.ProbableAccessDeniedError:
        raise BrokerError(f"RabbitMQ at {settings.where} denied access to the virtual host {settings.vhost!r}.",
                          "Give the user permissions on it (rabbitmqctl set_permissions).") from None
    except (px.AMQPError, OSError, socket.timeout) as exc:
        reason = str(exc) or type(exc).__name__
        raise BrokerError(f"Cannot reach RabbitMQ at {settings.where}: {reason}.") from exc


class AmqpPublisher:
    """The relay's AMQP side; the same face as MqttPublisher."""

    protocol = "amqp"

    def __init__(self, settings: AmqpSettings, buffer: Buffer[Message], *, client_id: str | None = None,
                 reconnect_delay: tuple[float, float] = (1.0, 30.0), connect_timeout: float = 10.0):
        self.settings = settings
        self.buffer = buffer
        self.client_id = client_id or f"eslkit-relay-{socket.gethostname()}"
        self.status_key = AMQP_STATUS_KEY.format(client_id=short_key_part(self.client_id))
        self.reconnect_delay = reconnect_delay
        self.connect_timeout = connect_timeout
        self.published: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()  # messages RabbitMQ would not take: counted, never re-sent
        self.on_reject: Callable[[str], None] | None = None
        self._strikes = 0  # failed attempts in a row at the oldest message
        self.connects = 0
        self.disconnects = 0
        self.last_error: str | None = None
        self.on_change: Callable[[str], None] | None = None
        self._connected = False
        self._conn = None
        self._channel = None
        self._status: dict | None = None
        self._status_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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

    @property
    def unconfirmed(self) -> int:
        return (self.buffer.added - self.buffer.dropped - sum(self.published.values())
                - sum(self.rejected.values()))

    async def start(self) -> None:
        await asyncio.to_thread(self._open)
        self._thread = threading.Thread(target=self._work, name="eslkit-amqp-publish", daemon=True)
        self._thread.start()

    def send(self, message: Message) -> Message | None:
        return self.buffer.put(message)

    def status(self, payload: dict) -> None:
        with self._status_lock:
            self._status = payload  # the publishing thread sends the latest one

    async def drain(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.unconfirmed:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def close(self, final_status: dict | None = None) -> None:
        if final_status is not None:
            self.status(final_status)
            deadline = time.monotonic() + 3
            while self._status is not None and self._connected and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        self._stop.set()
        self.buffer.close()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10)

    # --- the publishing thread --------------------------------------------------------

    def _open(self) -> None:
        """Connect, declare the exchange as mod_amqp does (topic, durable), confirm mode."""
        conn = connect(self.settings, self.connect_timeout)
        try:
            channel = conn.channel()
            channel.exchange_declare(self.settings.exchange, exchange_type="topic", durable=True)
            channel.confirm_delivery()
        except Exception as exc:
            _close_quietly(conn)
            raise BrokerError(f"RabbitMQ at {self.settings.where} refused the exchange "
                              f"{self.settings.exchange!r}: {exc}.",
                              "Use another --exchange, or delete the existing one of another type.") from None
        self._conn, self._channel = conn, channel
        self._connected = True
        self.connects += 1

    def _lost(self, exc: BaseException) -> None:
        self._connected = False
        self.disconnects += 1
        self.last_error = f"broker connection lost: {exc or type(exc).__name__}"
        _close_quietly(self._conn)
        self._conn = self._channel = None
        if self.on_change:
            self.on_change("disconnected")

    def _reconnect(self) -> None:
        low, high = self.reconnect_delay
        for delay in Backoff(initial=low, cap=high).delays():
            if self._stop.is_set():
                return
            try:
                self._open()
            except BrokerError as exc:
                self.last_error = str(exc)
                self._stop.wait(delay)
                continue
            if self.on_change:
                self.on_change("connected")
            return

    def _publish(self, key: str, body: bytes, headers: dict) -> None:
        pika = _pika()
        props = pika.BasicProperties(content_type="text/json", delivery_mode=2, headers=headers or None,
                                     timestamp=int(time.time()))
        # In confirm mode this returns once RabbitMQ has confirmed (or raises).
        self._channel.basic_publish(self.settings.exchange, key, body, properties=props)

    def _work(self) -> None:
        from pika import exceptions as px

        while not self._stop.is_set():
            if not self._connected:
                self._reconnect()
                continue
            try:
                with self._status_lock:
                    status, self._status = self._status, None
                if status is not None:
                    self._publish(self.status_key, json.dumps(status).encode(), {})
                message = self.buffer.take(timeout=0.2)
                if message is None:
                    self._conn.process_data_events(0)  # heartbeats while idle
                    continue
                try:
                    self._publish(message.address, message.payload, message.headers)
                except (ValueError, TypeError, px.ShortStringTooLong) as exc:
                    self._reject(message, str(exc) or type(exc).__name__)  # it can never be sent
                    continue
                except px.ChannelClosedByBroker as exc:
                    # RabbitMQ refused this message and closed the channel: not again.
                    self._reject(message, str(exc) or type(exc).__name__)
                    raise
                except px.NackError:
                    if self._strike(message, "RabbitMQ did not accept it"):
                        continue
                    self._stop.wait(0.5)  # RabbitMQ could not take it: try again
                    continue
                except BaseException as exc:
                    self._strike(message, f"the connection failed each time it was sent ({exc!r})")
                    raise
                self._strikes = 0
                self.published[message.kind] += 1
            except (px.AMQPError, OSError) as exc:
                self._lost(exc)
        if self._connected and self._status is not None:
            try:
                self._publish(self.status_key, json.dumps(self._status).encode(), {})
            except (px.AMQPError, OSError):
                pass
        _close_quietly(self._conn)
        self._connected = False


    def _reject(self, message: Message, why: str) -> None:
        self._strikes = 0
        self.rejected[message.kind] += 1
        self.last_error = f"a message to {message.address[:80]!r} was not published: {why}"
        if self.on_reject:
            self.on_reject(f"{message.kind} not published ({why}); routing key {message.address[:80]!r}")

    def _strike(self, message: Message, why: str) -> bool:
        """One more failed attempt at `message`: give it up (True) after MAX_ATTEMPTS in a
        row, so one message RabbitMQ refuses cannot hold up everything behind it for ever."""
        self._strikes += 1
        if self._strikes >= MAX_ATTEMPTS:
            self._reject(message, f"{why}; {MAX_ATTEMPTS} attempts")
            return True
        self.buffer.put_back([message])
        return False


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
