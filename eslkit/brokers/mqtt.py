"""MQTT (Mosquitto): the relay's topics and publisher, and the subscriber for ``--from``.

The publisher speaks MQTT 3.1.1 itself on the relay's event loop (`mqtt_wire`):
up to ``window`` messages in flight, each counted as published when the broker
acknowledges it, everything unacknowledged back to the front of the bounded
`Buffer` when the link breaks, so the memory held while the broker is away is
the buffer's bound, and the broker's copy keeps the switch's order.  The
subscriber (``--from``) is paho-mqtt 2, in paho's own thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from string import Formatter
from typing import Any, Callable, Sequence
from urllib.parse import unquote

from eslkit.brokers import mqtt_wire
from eslkit.brokers.buffer import Buffer, Message
from eslkit.brokers.outbox import WindowedPublisher
from eslkit.brokers.urls import connect_reason, not_installed, password_from_env, split_broker_url, tls_context
from eslkit.errors import BrokerError
from eslkit.event import Event

EVENT_TOPIC = "freeswitch/{hostname}/events/{event}/{ext}"
POPUP_TOPIC = "freeswitch/{hostname}/agents/{ext}/popup"
STATUS_TOPIC = "freeswitch/relay/{client_id}/status"
TOPIC_FIELDS = ("hostname", "event", "subclass", "name", "uuid", "call_uuid", "ext")


@dataclass
class MqttSettings:
    """Where and how to reach the broker.  ``prefix`` is the URL's path (for --from)."""

    host: str
    port: int
    tls: bool = False
    tls_ca: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str = ""
    prefix: str = ""
    keepalive: int = 30

    def __repr__(self) -> str:  # the password never shows, even in a traceback
        pw = "***" if self.password else None
        return (f"MqttSettings(host={self.host!r}, port={self.port}, tls={self.tls}, "
                f"username={self.username!r}, password={pw!r}, client_id={self.client_id!r}, "
                f"prefix={self.prefix!r})")

    @property
    def where(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_mqtt_url(
    url: str,
    *,
    username: str | None = None,
    password_env: str | None = None,
    tls_ca: str | None = None,
    client_id: str | None = None,
) -> MqttSettings:
    """``mqtt://[USER@]HOST[:PORT][/TOPIC-PREFIX]`` or ``mqtts://…`` (TLS)."""
    parts, port, tls = split_broker_url(url, ("mqtt", "mqtts"), "mqtt://HOST:PORT or mqtts://HOST:PORT")
    return MqttSettings(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        tls=tls,
        tls_ca=tls_ca,
        username=username or (unquote(parts.username) if parts.username else None),
        password=password_from_env(password_env),
        client_id=client_id or "",
        prefix=unquote(parts.path.strip("/")),
    )


MAX_LEVEL_BYTES = 128  # one topic level from network text; MQTT allows 65535 bytes for a whole topic
MAX_TOPIC_BYTES = 65535


def _unsafe(c: str) -> bool:
    """Characters a broker refuses in a topic (MQTT 1.5.4, as Mosquitto checks it):
    controls (C0, DEL, C1), surrogates, non-characters; plus our level separator
    and the wildcards."""
    o = ord(c)
    return (c in "/+#" or o < 0x20 or 0x7F <= o <= 0x9F or 0xD800 <= o <= 0xDFFF
            or 0xFDD0 <= o <= 0xFDEF or (o & 0xFFFE) == 0xFFFE)


# The ASCII characters _unsafe() refuses (in a level, and in a whole topic where "/" is allowed).
_ASCII_UNSAFE_LEVEL = re.compile(r"[/+#\x00-\x1f\x7f]")
_ASCII_UNSAFE_TOPIC = re.compile(r"[+#\x00-\x1f\x7f]")


def topic_part(value: str | None) -> str:
    """One topic level from network text: never empty, never a wildcard or an extra level,
    nothing a broker refuses, at most MAX_LEVEL_BYTES of UTF-8.

    A longer value is cut and ends in ``~`` and 8 hex digits of its SHA-1, so the
    same value always gives the same level and two long values stay apart."""
    if not value:
        return "-"
    # Nearly every value (names, UUIDs, extensions) is short plain ASCII: one C-speed check.
    if value.isascii() and len(value) <= MAX_LEVEL_BYTES and _ASCII_UNSAFE_LEVEL.search(value) is None:
        return value
    safe = "".join("_" if _unsafe(c) else c for c in value)
    raw = safe.encode("utf-8")
    if len(raw) <= MAX_LEVEL_BYTES:
        return safe
    digest = hashlib.sha1(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    head = raw[:MAX_LEVEL_BYTES - 9].decode("utf-8", "ignore")  # never half a character
    return f"{head}~{digest}"


def topic_problem(topic: str) -> str | None:
    """Why a broker would refuse this topic (it would drop our connection), or None."""
    if not topic:
        return "the topic is empty"
    if topic.isascii() and len(topic) <= MAX_TOPIC_BYTES and _ASCII_UNSAFE_TOPIC.search(topic) is None:
        return None
    if "+" in topic or "#" in topic:
        return "the topic holds a wildcard"
    bad = next((c for c in topic if c != "/" and _unsafe(c)), None)
    if bad is not None:
        return f"the topic holds the character U+{ord(bad):04X}"
    if len(topic.encode("utf-8")) > MAX_TOPIC_BYTES:
        return f"the topic is longer than {MAX_TOPIC_BYTES} bytes"
    return None


def check_template(template: str, option: str) -> str:
    try:
        sample = template.format(**{f: "x" for f in TOPIC_FIELDS})
    except (KeyError, IndexError, ValueError) as exc:
        raise BrokerError(
            f"The {option} template {template!r} is not valid ({exc}).",
            "Use only the fields {" + "}, {".join(TOPIC_FIELDS) + "}.",
        ) from None
    problem = topic_problem(sample)
    if problem is not None:  # every message would be refused: say so now, once
        raise BrokerError(f"The {option} template {template!r} cannot be published to: {problem}.",
                          "Remove wildcards (+ #) and control characters from it; keep it short.")
    return template


_FIELD_VALUES: dict[str, Callable[[Event], str | None]] = {
    "hostname": lambda e: e.hostname,
    "event": lambda e: e.event_name,
    "subclass": lambda e: e.subclass,
    "name": lambda e: e.name,
    "uuid": lambda e: e.unique_id,
    "call_uuid": lambda e: e.call_uuid,
}


def template_fields(template: str) -> tuple[str, ...]:
    """The fields a (checked) topic template uses, so only those are looked up per event."""
    names = (re.match(r"\w*", name).group() for _, name, _, _ in Formatter().parse(template) if name)
    return tuple(dict.fromkeys(names))  # "{uuid[:8]}" uses uuid


def event_fields(event: Event, ext: str | None, names: Sequence[str] = TOPIC_FIELDS) -> dict[str, str]:
    return {name: topic_part(ext if name == "ext" else _FIELD_VALUES[name](event)) for name in names}


def make_client(settings: MqttSettings, *, clean_session: bool = True, on_message: Callable | None = None):
    """A configured paho client (not yet connected)."""
    try:
        import paho.mqtt.client as mqtt
    except ImportError:
        raise not_installed("MQTT", "paho-mqtt>=2.0") from None
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=settings.client_id,
        clean_session=clean_session,
        protocol=mqtt.MQTTv311,
    )
    if settings.username is not None or settings.password is not None:
        client.username_pw_set(settings.username or "", settings.password)
    if settings.tls:
        try:
            client.tls_set(ca_certs=settings.tls_ca)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerError(f"Cannot use the CA file {settings.tls_ca!r}: {exc}.",
                              "Give a PEM file with --tls-ca.") from None
    if on_message is not None:
        client.on_message = on_message
    return client


def connect_error(settings: MqttSettings, exc: BaseException) -> BrokerError:
    return BrokerError(f"Cannot reach the MQTT broker at {settings.where}: {connect_reason(exc)}.")


def refused_error(settings: MqttSettings, reason: Any) -> BrokerError:
    text = str(reason)
    if "authori" in text.lower() or "password" in text.lower():
        return BrokerError(
            f"The MQTT broker at {settings.where} refused the login ({text}).",
            "Check --username and the password in the variable named by --password-env.",
        )
    return BrokerError(f"The MQTT broker at {settings.where} refused the connection ({text}).")


class FirstConnect:
    """Waits (in a thread) for the first CONNACK, whatever it says."""

    def __init__(self):
        self.done = threading.Event()
        self.reason: Any = None
        self.ok = False

    def set(self, ok: bool, reason: Any) -> None:
        if not self.done.is_set():
            self.ok, self.reason = ok, reason
            self.done.set()


def start_client(client, settings: MqttSettings, first: FirstConnect, timeout: float) -> None:
    """Blocking: open the socket, start paho's thread, wait for the CONNACK.
    Raises BrokerError when the broker cannot be reached or refuses us."""
    try:
        client.connect(settings.host, settings.port, keepalive=settings.keepalive)
    except (OSError, ssl.SSLError, socket.timeout) as exc:
        raise connect_error(settings, exc) from exc
    client.loop_start()
    if not first.done.wait(timeout):
        client.loop_stop()
        client.disconnect()
        raise BrokerError(f"The MQTT broker at {settings.where} did not answer within {timeout:g} s.")
    if not first.ok:
        client.loop_stop()
        client.disconnect()
        raise refused_error(settings, first.reason)


def start_subscribed(client, settings: MqttSettings, topics: list, what: str,
                     on_connect: Callable[[Any], None] | None = None, timeout: float = 10.0) -> list:
    """Blocking: `start_client`, with ``client`` subscribed to ``topics`` on every connect (a
    clean session forgets them; ``on_connect(reason)`` is told of each connect too); returns
    the broker's reason codes once it has confirmed the first subscription (SUBACK): what is
    published to those topics before then does not reach us, so only then is a subscriber ready."""
    first = FirstConnect()
    confirmed = threading.Event()
    reasons: list = []

    def connected(client, userdata, flags, reason, properties):
        first.set(not reason.is_failure, reason)
        if not reason.is_failure:
            client.subscribe(topics)
        if on_connect is not None:
            on_connect(reason)

    def subscribed(client, userdata, mid, codes, properties):
        if not confirmed.is_set():
            reasons.extend(codes)
            confirmed.set()

    client.on_connect = connected
    client.on_subscribe = subscribed
    start_client(client, settings, first, timeout)
    if not confirmed.wait(timeout):
        client.loop_stop()
        client.disconnect()
        raise BrokerError(f"The MQTT broker at {settings.where} did not confirm the subscription to {what}.")
    return reasons


def refused(reasons: list) -> bool:
    """A SUBACK that refused a topic (the broker's ACL)."""
    return any(getattr(r, "is_failure", False) for r in reasons)


class MqttPublisher(WindowedPublisher):
    """The relay's MQTT side: topics, the status topic, and the publishing itself.

    It publishes on the relay's own event loop through eslkit's MQTT 3.1.1 writer
    (`eslkit.brokers.mqtt_wire`), not paho: paho's thread, its per-message bookkeeping
    and three reads per acknowledgement cost more CPU than the relay itself, and its
    thread fought the relay for the GIL.  Up to ``window`` messages are in flight; one
    leaves our hands when the broker has acknowledged it (PUBACK, or PUBCOMP at QoS 2).
    When the link breaks, everything unacknowledged goes back to the front of the
    buffer, in order, and is sent again after the reconnect (at-least-once, in the
    switch's order)."""

    protocol = "mqtt"
    address_name = "topic"

    def __init__(
        self,
        settings: MqttSettings,
        buffer: Buffer[Message],
        *,
        qos: int = 1,
        topic: str = EVENT_TOPIC,
        popup_topic: str = POPUP_TOPIC,
        status_topic: str = STATUS_TOPIC,
        window: int = 1000,
        reconnect_delay: tuple[float, float] = (1, 30),
        connect_timeout: float = 10.0,
    ):
        if qos not in (0, 1, 2):
            raise BrokerError(f"QoS {qos} does not exist.", "Use --qos 0, 1 or 2.")
        # packet ids are 16 bits
        super().__init__(buffer, window=min(window, 65535), reconnect_delay=reconnect_delay,
                         connect_timeout=connect_timeout)
        self.settings = settings
        if not settings.client_id:
            settings.client_id = f"eslkit-relay-{socket.gethostname()}"
        self.qos = qos
        self.topic = check_template(topic, "--topic")
        self._topic_fields = template_fields(self.topic)
        self.popup_topic = check_template(popup_topic, "--popup-topic")
        try:
            self.status_topic = status_topic.format(client_id=topic_part(settings.client_id))
        except (KeyError, IndexError, ValueError) as exc:
            raise BrokerError(f"The --status-topic template {status_topic!r} is not valid ({exc}).",
                              "Use only the field {client_id}.") from None
        problem = topic_problem(self.status_topic)
        if problem is not None:
            raise BrokerError(f"The --status-topic template {status_topic!r} cannot be published to: {problem}.",
                              "Remove wildcards (+ #) and control characters from it; keep it short.")
        self._link: _Link | None = None
        self._mid = 0
        self._keeping: asyncio.Future | None = None
        self._retry: asyncio.Future | None = None
        self._ssl: ssl.SSLContext | None = None

    # --- addresses -------------------------------------------------------------

    def describe(self) -> str:
        return (f"{self.settings.where}: events to {self.topic}, popup states to {self.popup_topic}, "
                f"status to {self.status_topic} (QoS {self.qos})")

    def event_address(self, event: Event, ext: str | None) -> str:
        return self.topic.format(**event_fields(event, ext, self._topic_fields))

    def popup_address(self, hostname: str | None, ext: str) -> str:
        fields = dict.fromkeys(TOPIC_FIELDS, "-")
        fields.update(hostname=topic_part(hostname), ext=topic_part(ext))
        return self.popup_topic.format(**fields)

    # --- lifecycle ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._link is not None and self._link.up

    async def start(self) -> None:
        """Connect; raise BrokerError when the broker cannot be reached or refuses us."""
        self._loop = asyncio.get_running_loop()
        self._ssl = tls_context(self.settings.tls_ca) if self.settings.tls else None
        await self._open()
        self._keeping = asyncio.ensure_future(self._keepalive())

    def status(self, payload: dict) -> None:
        """Best effort, retained: the next status replaces a missed one."""
        if self.connected:
            self._write(self.status_topic, json.dumps(payload).encode(), None, qos=1, retain=True)

    async def close(self, final_status: dict | None = None) -> None:
        self._closing = True
        self.buffer.close()
        tasks = [t for t in (self._keeping, self._retry) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        link = self._link
        if link is None or not link.up:
            return
        if final_status is not None:
            self.status(final_status)
            deadline = time.monotonic() + 3
            while self._inflight and link.up and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        link.transport.write(mqtt_wire.DISCONNECT_PACKET)
        link.transport.close()

    # --- the link ------------------------------------------------------------------

    async def _open(self) -> None:
        settings = self.settings
        loop = asyncio.get_running_loop()
        try:
            transport, link = await asyncio.wait_for(loop.create_connection(
                lambda: _Link(self), settings.host, settings.port, ssl=self._ssl,
                server_hostname=settings.host if self._ssl else None), self.connect_timeout)
        except asyncio.TimeoutError:
            raise BrokerError(f"The MQTT broker at {settings.where} did not answer within "
                              f"{self.connect_timeout:g} s.") from None
        except (OSError, ssl.SSLError) as exc:
            raise connect_error(settings, exc) from exc
        will = (self.status_topic, json.dumps({"state": "offline"}).encode(), 1, True)
        transport.write(mqtt_wire.connect_packet(settings.client_id, settings.keepalive, username=settings.username,
                                                 password=settings.password, will=will))
        try:
            code = await asyncio.wait_for(asyncio.shield(link.connack), self.connect_timeout)
        except asyncio.TimeoutError:
            transport.abort()
            raise BrokerError(f"The MQTT broker at {settings.where} did not answer within "
                              f"{self.connect_timeout:g} s.") from None
        except (OSError, ssl.SSLError) as exc:
            raise connect_error(settings, exc) from None
        if code != 0:
            transport.close()
            raise refused_error(settings, mqtt_wire.REFUSALS.get(code, f"refused, code {code}"))
        link.up = True
        self._link = link
        self.connects += 1
        self._pump()

    def _lost(self, link: "_Link", exc: BaseException | None) -> None:
        """The link broke (or we closed it): what was in flight goes back, in order."""
        if link is not self._link:
            return
        self._link = None
        self._link_lost(exc or "closed by the broker")

    async def _keepalive(self) -> None:
        """A PINGREQ twice per keep-alive period; a broker silent for 1.5 periods is gone."""
        period = max(1, self.settings.keepalive)
        while True:
            await asyncio.sleep(period / 2)
            link = self._link
            if link is None or not link.up:
                continue
            if time.monotonic() - link.heard > 1.5 * period:
                link.transport.abort()
            else:
                link.transport.write(mqtt_wire.PINGREQ_PACKET)

    # --- publishing ------------------------------------------------------------------

    def _pump(self) -> None:
        """Hand what is buffered to the link, up to the window."""
        self._pumping = False
        link = self._link
        if link is None or not link.up:
            return
        room = self.window - len(self._inflight)
        if room <= 0:
            return  # acknowledgements call us again
        for message in self.buffer.take_many(room, timeout=0):
            problem = topic_problem(message.address)
            if problem is None and len(message.payload) > mqtt_wire.MAX_PAYLOAD:
                problem = "the message is larger than MQTT allows"
            if problem is not None:  # the broker would drop the link and we would re-send it forever
                self._reject(message, problem)
                continue
            self._write(message.address, message.payload, message, self.qos)
        link.flush()

    def _write(self, topic: str, payload: bytes, message: Message | None, qos: int, retain: bool = False) -> None:
        mid = 0
        if qos:
            mid = self._mid = self._mid % 65535 + 1
            self._sent(mid, message)
        self._link.queue(mqtt_wire.publish_head(topic.encode(), len(payload), qos, mid, retain=retain), payload)
        if not qos and message is not None:
            self.published[message.kind] += 1  # QoS 0: nothing comes back
        if message is None:
            self._link.flush()

class _Link(asyncio.Protocol):
    """One TCP (or TLS) connection to the broker: writes queued packets, reads acknowledgements."""

    def __init__(self, publisher: MqttPublisher):
        self.publisher = publisher
        self.transport = None
        self.up = False
        self.connack = asyncio.get_running_loop().create_future()
        self.heard = time.monotonic()
        self._reader = mqtt_wire.PacketReader()
        self._out: list[bytes] = []

    def connection_made(self, transport) -> None:
        self.transport = transport

    def queue(self, head: bytes, payload: bytes) -> None:
        self._out += (head, payload)

    def flush(self) -> None:
        if self._out and self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(self._out)
        self._out = []

    def data_received(self, data: bytes) -> None:
        self.heard = time.monotonic()
        try:
            packets = self._reader.feed(data)
        except ValueError:
            self.transport.abort()
            return
        publisher = self.publisher
        for kind, _flags, body in packets:
            if kind == mqtt_wire.PUBACK or kind == mqtt_wire.PUBCOMP:  # it is the broker's now
                for message in publisher._acknowledged(mqtt_wire.mid_of(body)):
                    publisher.published[message.kind] += 1
            elif kind == mqtt_wire.PUBREC:  # QoS 2, step 2 of 4: release it
                self.transport.write(mqtt_wire.ack_packet(mqtt_wire.PUBREL, mqtt_wire.mid_of(body)))
            elif kind == mqtt_wire.CONNACK and not self.connack.done():
                self.connack.set_result(body[1] if len(body) >= 2 else 255)

    def connection_lost(self, exc) -> None:
        self.up = False
        if not self.connack.done():
            self.connack.set_exception(exc or ConnectionResetError("the broker closed the connection"))
        self.publisher._lost(self, exc)


class MqttSubscriber:
    """`--from mqtt://…`: paho subscribed to the relay's topics; messages and link changes
    handed to the callbacks from paho's thread."""

    def __init__(self, settings, topics: Sequence[str], qos: int = 1, persistent: bool = False):
        self.persistent = persistent
        self.settings = settings
        self.topics = list(topics)
        self.qos = qos
        self._client = None

    def start(self, deliver: Callable[[str, bytes], None], link: Callable[[str, str], None]) -> None:
        """Returns once the broker confirmed the subscription (nothing published after is missed)."""
        state = {"up": False}

        def on_connect(reason):
            if reason.is_failure:
                return
            if state["up"] is None:
                link("connected", f"connected again to {self.settings.where}")
            state["up"] = True

        def on_disconnect(client, userdata, flags, reason, properties):
            if state["up"]:
                state["up"] = None
                link("disconnected", f"broker connection lost ({reason})")

        def on_message(client, userdata, msg):
            deliver(msg.topic, msg.payload)

        client = make_client(self.settings, on_message=on_message, clean_session=not self.persistent)
        client.on_disconnect = on_disconnect
        client.reconnect_delay_set(1, 30)
        self._client = client
        start_subscribed(client, self.settings, [(t, self.qos) for t in self.topics], "the relay's topics",
                         on_connect)

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
