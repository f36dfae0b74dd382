"""Publish to RabbitMQ (AMQP 0-9-1) with pika, as FreeSWITCH's mod_amqp does.

Events go to a topic exchange (default ``freeswitch``) with mod_amqp's routing
keys, ``Hostname.Event-Name.Event-Subclass.Unique-ID``: each part encoded the
way mod_amqp encodes it (letters, digits, ``-~_`` kept, ``.`` → ``%2E``, space →
``+``, anything else ``%XX``), an empty part as ``_``.  So consumers written for
mod_amqp (``*.CHANNEL_ANSWER.#``) work unchanged.  Popup states go to
``Hostname.agents.EXT.popup`` and the relay's status to ``relay.CLIENT-ID.status``.

The publisher speaks AMQP 0-9-1 itself on the relay's event loop (`amqp_wire`): it
takes messages from the relay's bounded buffer and publishes them with publisher
confirms, many in flight at once; a message leaves our hands only when RabbitMQ
has confirmed it.  If the connection breaks, the unconfirmed messages go back to
the front of the buffer and it reconnects with capped back-off.  What consumes
(``--from amqp://``, ``relay --control``) uses pika.
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
from functools import lru_cache
from typing import Callable, Sequence
from urllib.parse import unquote

from eslkit.backoff import Backoff
from eslkit.brokers.buffer import Buffer, Message
from eslkit.brokers.outbox import WindowedPublisher
from eslkit.brokers import amqp_wire
from eslkit.brokers.urls import connect_reason, not_installed, password_from_env, split_broker_url, tls_context
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
    # Host and event names come again and again, a call's uuid ~20 times: short words are
    # remembered (only short ones, so that the cache stays small whatever the switch sends).
    return _short_word(value) if len(value) <= 100 else _encoded_word(value)


@lru_cache(maxsize=4096)
def _short_word(value: str) -> str:
    return _encoded_word(value)


def _encoded_word(value: str) -> str:
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


CHANNEL = 1
MAX_FRAME = 131072  # RabbitMQ's default frame_max: an event's JSON fits in one body frame
HEARTBEAT = 30  # seconds, at most (the broker may ask for less)
BLOCKED_TIMEOUT = 30  # seconds RabbitMQ may block the connection before we reconnect
# Messages published and not yet confirmed.  RabbitMQ confirms a persistent message only
# once its queue has it on disk, in batches; with 1,000 in flight the relay often sat
# waiting for them (docs/performance.md: 4,000 relayed 4–12 % more a second).  After a
# lost link at most this many are sent again (at-least-once): ~17 MB of the switch's events.
WINDOW = 4000


class AmqpPublisher(WindowedPublisher):
    """The relay's AMQP side; the same face as MqttPublisher.

    It publishes on the relay's own event loop through eslkit's AMQP 0-9-1 writer
    (`eslkit.brokers.amqp_wire`), not pika: pika marshals each message's three frames in
    Python and sends each with a write of its own, which held the relay at about half of
    the rate RabbitMQ takes.  In confirm mode up to ``window`` messages are published and
    not yet confirmed; RabbitMQ confirms them asynchronously, often many with one
    ``Basic.Ack`` (``multiple``).  A message leaves our hands only when it is confirmed;
    if the connection breaks, everything unconfirmed goes back to the front of the
    buffer, in order, and is sent again on the next connection (at-least-once)."""

    protocol = "amqp"
    address_name = "routing key"

    def __init__(self, settings: AmqpSettings, buffer: Buffer[Message], *, client_id: str | None = None,
                 reconnect_delay: tuple[float, float] = (1.0, 30.0), connect_timeout: float = 10.0,
                 window: int = WINDOW, heartbeat: int = HEARTBEAT):
        super().__init__(buffer, window=window, reconnect_delay=reconnect_delay, connect_timeout=connect_timeout)
        self.settings = settings
        self.heartbeat = heartbeat  # seconds, at most: the broker may ask for less
        self.client_id = client_id or f"eslkit-relay-{socket.gethostname()}"
        self.status_key = AMQP_STATUS_KEY.format(client_id=short_key_part(self.client_id))
        self._link: _Link | None = None
        self._publish: amqp_wire.Publish | None = None
        self._tag = 0  # the delivery tag of the last message published on this channel
        self._attempts: dict[int, int] = {}  # id(message) -> times RabbitMQ refused it (nack)
        self._status: dict | None = None
        self._ssl: ssl.SSLContext | None = None
        self._keeping: asyncio.Future | None = None
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
        return self._link is not None and self._link.up

    async def start(self) -> None:
        """Connect; raise BrokerError if the first connection fails."""
        self._loop = asyncio.get_running_loop()
        self._ssl = tls_context(self.settings.tls_ca) if self.settings.tls else None
        await self._open()
        self._keeping = asyncio.ensure_future(self._heartbeat())

    def status(self, payload: dict) -> None:
        self._status = payload  # the next turn of the pump sends the latest one
        self._wake()

    async def close(self, final_status: dict | None = None) -> None:
        self._closing = True
        tasks = [t for t in (self._keeping, self._retry) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if final_status is not None and self.connected:
            self.status(final_status)
            deadline = time.monotonic() + 3
            while (self._status is not None or self._inflight) and self.connected and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        self.buffer.close()
        link = self._link
        if link is not None and not link.gone.done():
            link.shut()
            await asyncio.wait([link.gone], timeout=5)

    # --- the connection ----------------------------------------------------------------

    async def _open(self) -> None:
        """One connection: the handshake, a channel, the exchange declared as mod_amqp does
        (topic, durable), confirm mode.  Raises BrokerError when any step fails."""
        settings = self.settings
        try:
            _, link = await asyncio.wait_for(self._loop.create_connection(
                lambda: _Link(self), settings.host, settings.port, ssl=self._ssl,
                server_hostname=settings.host if self._ssl else None), self.connect_timeout)
        except asyncio.TimeoutError:
            raise self._silent() from None
        except (OSError, ssl.SSLError) as exc:
            raise BrokerError(f"Cannot reach RabbitMQ at {settings.where}: {connect_reason(exc)}.") from None
        try:
            await asyncio.wait_for(self._handshake(link), self.connect_timeout)
        except asyncio.TimeoutError:
            link.transport.abort()
            raise self._silent() from None
        except (BrokerError, asyncio.CancelledError):  # cancelled: close() while reconnecting
            link.transport.abort()
            raise
        self._publish = amqp_wire.Publish(CHANNEL, settings.exchange, link.frame_max)
        self._tag = 0
        link.up = True
        self._link = link
        self.connects += 1
        self._pump()

    def _silent(self) -> BrokerError:
        return BrokerError(f"RabbitMQ at {self.settings.where} did not answer within {self.connect_timeout:g} s.")

    async def _handshake(self, link: "_Link") -> None:
        settings, write = self.settings, link.transport.write
        write(amqp_wire.PROTOCOL_HEADER)
        start = await link.expect(amqp_wire.CONNECTION_START)
        if "PLAIN" not in amqp_wire.start_mechanisms(start):
            raise BrokerError(f"RabbitMQ at {settings.where} does not offer PLAIN logins.",
                              "Enable the PLAIN mechanism (auth_mechanisms in rabbitmq.conf).")
        write(amqp_wire.start_ok(settings.username, settings.password or "", {
            "product": "eslkit", "platform": "Python", "connection_name": self.client_id,
            "capabilities": {"publisher_confirms": True, "basic.nack": True, "connection.blocked": True,
                             "authentication_failure_close": True}}))
        link.stage = "login"
        channel_max, frame_max, heartbeat = amqp_wire.tune_of(await link.expect(amqp_wire.CONNECTION_TUNE))
        link.frame_max = min(frame_max or MAX_FRAME, MAX_FRAME)
        link.heartbeat = min(heartbeat, self.heartbeat) if heartbeat else self.heartbeat
        write(amqp_wire.tune_ok(channel_max, link.frame_max, link.heartbeat))
        link.stage = "vhost"
        write(amqp_wire.connection_open(settings.vhost))
        await link.expect(amqp_wire.CONNECTION_OPEN_OK)
        link.stage = "channel"
        write(amqp_wire.channel_open(CHANNEL))
        await link.expect(amqp_wire.CHANNEL_OPEN_OK)
        link.stage = "exchange"
        write(amqp_wire.exchange_declare(CHANNEL, settings.exchange))
        await link.expect(amqp_wire.EXCHANGE_DECLARE_OK)
        link.stage = "confirm"
        write(amqp_wire.confirm_select(CHANNEL))
        await link.expect(amqp_wire.CONFIRM_SELECT_OK)

    def _refused(self, stage: str, code: int, text: str) -> BrokerError:
        """RabbitMQ closed the connection or the channel while it was being opened: why, in one sentence."""
        where = self.settings.where
        if stage == "login" and code in (0, amqp_wire.ACCESS_REFUSED):
            return BrokerError(f"RabbitMQ at {where} refused the login.",
                               "Check the user name in the URL and the password in the variable named by "
                               "--password-env.")
        if stage == "vhost":
            return BrokerError(f"RabbitMQ at {where} denied access to the virtual host {self.settings.vhost!r}.",
                               "Give the user permissions on it (rabbitmqctl set_permissions).")
        if stage == "exchange":
            return BrokerError(f"RabbitMQ at {where} refused the exchange {self.settings.exchange!r}: "
                               f"{code} {text}.",
                               "Use another --exchange, or delete the existing one of another type.")
        if not code:
            return BrokerError(f"Cannot reach RabbitMQ at {where}: it closed the connection.")
        return BrokerError(f"Cannot reach RabbitMQ at {where}: {code} {text}.")

    def _lost(self, link: "_Link", why: object) -> None:
        """The link broke (or was closed): what was in flight goes back, in order."""
        if link is not self._link:
            return
        self._link = None
        self._link_lost(why)

    def _channel_closed(self, code: int, text: str) -> None:
        """RabbitMQ closes the channel on a message it cannot take (e.g. larger than its
        max_message_size), the oldest unconfirmed one: not again and again for ever."""
        if self._inflight and self._inflight[0][1] is not None and self._given_up(self._inflight[0][1]):
            self._inflight.popleft()
        self._link.shut(f"RabbitMQ closed the channel: {code} {text}")  # a new connection, a new channel

    async def _heartbeat(self) -> None:
        """A heartbeat frame twice per negotiated period; a broker silent for two periods is gone,
        and so is one that blocks us (a memory or disk alarm) for BLOCKED_TIMEOUT, as pika did."""
        while True:
            link = self._link
            await asyncio.sleep((link.heartbeat if link is not None else self.heartbeat) / 2)
            link = self._link
            if link is None or not link.up:
                continue
            now = time.monotonic()
            if now - link.heard > 2 * link.heartbeat:
                link.why = f"nothing heard from RabbitMQ for {2 * link.heartbeat} s (heartbeat)"
                link.transport.abort()
            elif link.blocked is not None and now - link.blocked > BLOCKED_TIMEOUT:
                link.why = f"RabbitMQ blocked the connection for more than {BLOCKED_TIMEOUT} s"
                link.transport.abort()
            else:
                link.transport.write(amqp_wire.HEARTBEAT_FRAME)

    # --- publishing ------------------------------------------------------------------------

    def _pump(self) -> None:
        """Publish what is buffered, up to the window (confirms wake us again), in one write."""
        self._pumping = False
        link = self._link
        if link is None or not link.up:
            return
        frames = self._publish.frames
        out: list[bytes] = []
        status, self._status = self._status, None
        if status is not None:
            out += frames(self.status_key.encode(), json.dumps(status).encode(), None)
            self._tag += 1
            self._sent(self._tag, None)
        room = self.window - len(self._inflight)
        for message in self.buffer.take_many(room, timeout=0) if room > 0 else ():
            try:
                out += frames(message.address.encode(), message.payload, message.headers)
            except (ValueError, TypeError) as exc:  # it can never be sent
                self._reject(message, str(exc) or type(exc).__name__)
                continue
            self._tag += 1
            self._sent(self._tag, message)
        if out:
            link.transport.writelines(out)

    def _confirmed(self, tag: int, multiple: bool, ack: bool) -> None:
        """RabbitMQ's Basic.Ack / Basic.Nack for one delivery tag, or for every tag up to it."""
        for message in self._acknowledged(tag, multiple):
            if ack:
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


class _Link(asyncio.Protocol):
    """One TCP (or TLS) connection to RabbitMQ: during the handshake it hands each method to
    `expect`; once up, it reads confirms, heartbeats and Close from the broker."""

    def __init__(self, publisher: AmqpPublisher):
        self.publisher = publisher
        self.transport = None
        self.up = False
        self.stage = "start"  # the handshake step waiting for an answer: says why a refusal came
        self.frame_max = amqp_wire.FRAME_MIN_SIZE
        self.heartbeat = publisher.heartbeat
        self.heard = time.monotonic()
        self.blocked: float | None = None  # when RabbitMQ blocked us (Connection.Blocked)
        self.why = "closed by the broker"
        self.gone = asyncio.get_running_loop().create_future()  # the connection is closed
        self._reader = amqp_wire.FrameReader()
        self._methods: asyncio.Queue = asyncio.Queue()  # (class, method) and payload, during the handshake

    def connection_made(self, transport) -> None:
        self.transport = transport

    async def expect(self, method: tuple[int, int]) -> bytes:
        """The next method from the broker, which must be `method`; a Close or a lost
        connection become the BrokerError that says why."""
        got, payload = await self._methods.get()
        if got is None:
            raise self.publisher._refused(self.stage, 0, "")
        if got in (amqp_wire.CONNECTION_CLOSE, amqp_wire.CHANNEL_CLOSE):
            raise self.publisher._refused(self.stage, *amqp_wire.close_of(payload))
        if got != method:
            raise BrokerError(f"RabbitMQ at {self.publisher.settings.where} answered {got} where "
                              f"{method} was expected: it does not speak AMQP 0-9-1 as eslkit does.")
        return payload

    def shut(self, why: str = "closed") -> None:
        """Close the connection politely (Connection.Close, then wait for Close-Ok); abort if
        RabbitMQ does not answer."""
        if self.transport is None or self.transport.is_closing():
            return
        self.up = False
        self.why = why
        self.transport.write(amqp_wire.close(0))
        asyncio.get_running_loop().call_later(5, self.transport.abort)

    def data_received(self, data: bytes) -> None:
        self.heard = time.monotonic()
        try:
            frames = self._reader.feed(data)
        except ValueError:
            self.transport.abort()
            return
        publisher = self.publisher
        for kind, channel, payload in frames:
            if kind != amqp_wire.METHOD:
                continue  # heartbeats (heard above); no content comes to a publisher
            method = amqp_wire.method_of(payload)
            if method == amqp_wire.BASIC_ACK or method == amqp_wire.BASIC_NACK:
                if self.up:
                    tag, multiple = amqp_wire.ack_of(payload)
                    publisher._confirmed(tag, multiple, method == amqp_wire.BASIC_ACK)
            elif method == amqp_wire.CONNECTION_CLOSE:
                self.transport.write(amqp_wire.close_ok(0))
                self.why = "RabbitMQ closed the connection: %d %s" % amqp_wire.close_of(payload)
                self._handshake_answer(method, payload)
                self.transport.close()
            elif method == amqp_wire.CONNECTION_CLOSE_OK:
                self.transport.close()
            elif method == amqp_wire.CHANNEL_CLOSE and self.up:
                self.transport.write(amqp_wire.close_ok(channel))
                publisher._channel_closed(*amqp_wire.close_of(payload))
            elif method == amqp_wire.CONNECTION_BLOCKED:
                self.blocked = time.monotonic()
                publisher.last_error = f"RabbitMQ blocked the connection ({amqp_wire.blocked_reason(payload)})"
            elif method == amqp_wire.CONNECTION_UNBLOCKED:
                self.blocked = None
            else:
                self._handshake_answer(method, payload)

    def _handshake_answer(self, method, payload: bytes) -> None:
        if not self.up:
            self._methods.put_nowait((method, payload))

    def connection_lost(self, exc) -> None:
        self.up = False
        self._methods.put_nowait((None, b""))
        if not self.gone.done():
            self.gone.set_result(None)
        self.publisher._lost(self, exc or self.why)


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
        _pika()  # missing: one clear error here, not a traceback in the thread and a 20 s wait
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
