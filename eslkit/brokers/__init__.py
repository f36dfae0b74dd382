"""Message brokers: MQTT (Mosquitto, paho-mqtt) and AMQP (RabbitMQ, pika).

- `eslkit.brokers.urls`: what both URLs share (shape, password from the environment,
  how a URL is shown);
- `eslkit.brokers.buffer`: the bounded outbox a publisher drains;
- `eslkit.brokers.mqtt`, `eslkit.brokers.amqp`: per broker its addresses (topics,
  routing keys), its publisher (`eslkit relay --to`) and its subscriber (``--from``).

`publisher()` and `subscriber()` choose by the URL's scheme.
"""

from __future__ import annotations

import socket
from typing import Any, Callable, Optional, Protocol, Sequence
from urllib.parse import urlsplit

from eslkit.brokers.buffer import Buffer, Message
from eslkit.brokers.urls import safe_url
from eslkit.errors import BrokerError
from eslkit.event import Event

__all__ = ["Publisher", "Subscriber", "publisher", "subscriber"]

# Where a `--from` URL without a path finds the relay's topics (any hostname).
DEFAULT_PREFIX = "freeswitch/+"


class Publisher(Protocol):
    """What the relay publishes through (`MqttPublisher`, `AmqpPublisher`)."""

    buffer: Any
    published: Any
    rejected: Any
    disconnects: int
    connected: bool
    on_change: Optional[Callable[[str], None]]  # "connected" / "disconnected", from its thread
    on_reject: Optional[Callable[[str], None]]  # one line per message no broker would take

    async def start(self) -> None: ...
    def send(self, message: Message) -> Optional[Message]: ...
    def status(self, payload: dict) -> None: ...
    def describe(self) -> str: ...  # where messages go, for the start-up line
    def event_address(self, event: Event, ext: Optional[str]) -> str: ...
    def popup_address(self, hostname: Optional[str], ext: str) -> str: ...
    async def drain(self, timeout: float) -> bool: ...
    async def close(self, final_status: Optional[dict] = None) -> None: ...
    @property
    def unconfirmed(self) -> int: ...


class Subscriber(Protocol):
    """What a ``--from`` source reads through (`MqttSubscriber`, `AmqpSubscriber`); both
    call back from their own thread."""

    def start(self, deliver: Callable[[str, bytes], None], link: Callable[[str, str], None]) -> None: ...
    def stop(self) -> None: ...


def _unknown(url: str) -> BrokerError:
    return BrokerError(f"{safe_url(url)!r} is not a broker URL eslkit knows.",
                       "Use mqtt://HOST:PORT[/TOPIC-PREFIX], mqtts://HOST:PORT or amqp://USER@HOST:PORT/VHOST.")


def publisher(to: str, *, topic: Optional[str] = None, popup_topic: Optional[str] = None,
              status_topic: Optional[str] = None, qos: int = 1, client_id: Optional[str] = None,
              username: Optional[str] = None, password_env: Optional[str] = None, tls_ca: Optional[str] = None,
              exchange: str = "freeswitch", buffer: int = 100_000,
              buffer_bytes: Optional[int] = 256_000_000) -> Publisher:
    """The publisher for ``relay --to URL``, with an outbox of at most ``buffer`` messages
    and ``buffer_bytes`` bytes (payloads and addresses)."""
    parts = urlsplit(to)
    if parts.query:  # ?password_env=/?client_id= are --from's; the relay has options for both
        raise BrokerError(f"relay --to takes nothing after '?' in its URL ({safe_url(to)!r}).",
                          "Name the password's variable with --password-env VAR and the client with --client-id ID.")
    scheme = parts.scheme
    outbox: Buffer = Buffer(buffer, buffer_bytes)
    if scheme in ("mqtt", "mqtts"):
        from eslkit.brokers.mqtt import EVENT_TOPIC, POPUP_TOPIC, STATUS_TOPIC, MqttPublisher, parse_mqtt_url

        settings = parse_mqtt_url(to, username=username, password_env=password_env, tls_ca=tls_ca,
                                  client_id=client_id)
        return MqttPublisher(settings, outbox, qos=qos, topic=topic or EVENT_TOPIC,
                             popup_topic=popup_topic or POPUP_TOPIC, status_topic=status_topic or STATUS_TOPIC)
    if scheme in ("amqp", "amqps"):
        from eslkit.brokers.amqp import AmqpPublisher, parse_amqp_url

        settings = parse_amqp_url(to, username=username, password_env=password_env, exchange=exchange,
                                  tls_ca=tls_ca)
        return AmqpPublisher(settings, outbox, client_id=client_id)
    raise _unknown(to)


def subscriber(url: str, *, popup_exts: Optional[Sequence[str]] = None, client_id: Optional[str] = None,
               password_env: Optional[str] = None,
               tls_ca: Optional[str] = None) -> tuple[Subscriber, str, list[str]]:
    """What ``--from URL`` subscribes to: the events the relay publishes or, with
    ``popup_exts``, those agents' popup states.  Returns the (not yet started)
    subscriber, where it reads from, and its topics or routing keys."""
    scheme = urlsplit(url).scheme
    if scheme in ("mqtt", "mqtts"):
        from eslkit.brokers.mqtt import MqttSubscriber, parse_mqtt_url

        settings = parse_mqtt_url(url, password_env=password_env, tls_ca=tls_ca, client_id=client_id)
        prefix = settings.prefix or DEFAULT_PREFIX
        if popup_exts:
            topics = [f"{prefix}/agents/{ext}/popup" for ext in popup_exts]
        else:
            topics = [f"{prefix}/events/#"]
        persistent = bool(client_id)
        if popup_exts and not settings.client_id:
            # A desktop keeps one session: the broker queues its popup states while it is away.
            settings.client_id = f"eslkit-popup-{socket.gethostname()}-{'-'.join(popup_exts)}"[:128]
            persistent = True
        return MqttSubscriber(settings, topics, persistent=persistent), f"{settings.where}/{prefix}", topics
    if scheme in ("amqp", "amqps"):
        from eslkit.brokers.amqp import AMQP_POPUP_KEY, AmqpSubscriber, parse_amqp_url

        settings = parse_amqp_url(url, password_env=password_env)
        if popup_exts:
            keys = [AMQP_POPUP_KEY.format(hostname="*", ext=ext) for ext in popup_exts]
        else:
            keys = ["*.*.*.*"]
        return AmqpSubscriber(settings, keys), f"{settings.where} exchange {settings.exchange}", keys
    raise _unknown(url)
