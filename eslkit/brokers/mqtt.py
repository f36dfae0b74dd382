"""Publish to an MQTT broker (Mosquitto) with paho-mqtt 2.

paho runs its network loop in its own thread: it reconnects by itself (with
back-off) and re-sends unacknowledged QoS 1/2 messages after a reconnect.
Our own thread moves messages from the relay's bounded `Buffer` into paho,
at most ``window`` unacknowledged at a time, so the memory held while the
broker is away is the buffer's bound plus one window, never more.

After a reconnect, nothing new is handed to paho until its re-sent messages
are acknowledged: that keeps the broker's copy in the switch's order.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import ssl
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence
from urllib.parse import unquote

from eslkit.brokers.buffer import Buffer, Message
from eslkit.brokers.urls import not_installed, password_from_env, split_broker_url
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


def topic_part(value: str | None) -> str:
    """One topic level from network text: never empty, never a wildcard or an extra level,
    nothing a broker refuses, at most MAX_LEVEL_BYTES of UTF-8.

    A longer value is cut and ends in ``~`` and 8 hex digits of its SHA-1, so the
    same value always gives the same level and two long values stay apart."""
    if not value:
        return "-"
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


def event_fields(event: Event, ext: str | None) -> dict[str, str]:
    return {
        "hostname": topic_part(event.hostname),
        "event": topic_part(event.event_name),
        "subclass": topic_part(event.subclass),
        "name": topic_part(event.name),
        "uuid": topic_part(event.unique_id),
        "call_uuid": topic_part(event.call_uuid),
        "ext": topic_part(ext),
    }


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
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
    return BrokerError(f"Cannot reach the MQTT broker at {settings.where}: {reason}.")


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


class MqttPublisher:
    """The relay's MQTT side: topics, a publishing thread, the status topic."""

    protocol = "mqtt"

    def __init__(
        self,
        settings: MqttSettings,
        buffer: Buffer[Message],
        *,
        qos: int = 1,
        topic: str = EVENT_TOPIC,
        popup_topic: str = POPUP_TOPIC,
        status_topic: str = STATUS_TOPIC,
        window: int = 100,
        reconnect_delay: tuple[int, int] = (1, 30),
        connect_timeout: float = 10.0,
    ):
        if qos not in (0, 1, 2):
            raise BrokerError(f"QoS {qos} does not exist.", "Use --qos 0, 1 or 2.")
        self.settings = settings
        if not settings.client_id:
            settings.client_id = f"eslkit-relay-{socket.gethostname()}"
        self.buffer = buffer
        self.qos = qos
        self.topic = check_template(topic, "--topic")
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
        self.window = max(1, window)
        self.reconnect_delay = reconnect_delay
        self.connect_timeout = connect_timeout
        self.published: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()  # messages no broker would take: counted, never re-sent
        self.on_reject: Callable[[str], None] | None = None
        self.connects = 0
        self.disconnects = 0
        self.last_error: str | None = None
        self._cv = threading.Condition()
        self._connected = False
        self._resync = False  # after a reconnect: wait for paho's re-sends first
        self._inflight: deque = deque()  # (paho MQTTMessageInfo, kind), oldest first
        self._acks = 0  # PUBACKs seen since the last count
        self._stop = threading.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._first = FirstConnect()
        self._client = None
        self.on_change: Callable[[str], None] | None = None

    # --- addresses -------------------------------------------------------------

    def describe(self) -> str:
        return (f"{self.settings.where}: events to {self.topic}, popup states to {self.popup_topic}, "
                f"status to {self.status_topic} (QoS {self.qos})")

    def event_address(self, event: Event, ext: str | None) -> str:
        return self.topic.format(**event_fields(event, ext))

    def popup_address(self, hostname: str | None, ext: str) -> str:
        fields = dict.fromkeys(TOPIC_FIELDS, "-")
        fields.update(hostname=topic_part(hostname), ext=topic_part(ext))
        return self.popup_topic.format(**fields)

    # --- lifecycle ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    async def start(self) -> None:
        client = make_client(self.settings)
        client.will_set(self.status_topic, json.dumps({"state": "offline"}), qos=1, retain=True)
        client.reconnect_delay_set(*self.reconnect_delay)
        client.max_inflight_messages_set(self.window)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        await asyncio.to_thread(start_client, client, self.settings, self._first, self.connect_timeout)
        self._thread = threading.Thread(target=self._pump, name="eslkit-mqtt-publish", daemon=True)
        self._thread.start()

    def send(self, message: Message) -> Message | None:
        """Queue one message; returns the one dropped to make room, if any."""
        return self.buffer.put(message)

    def status(self, payload: dict) -> None:
        """Best effort, retained: the next status replaces a missed one."""
        if self._client is not None and self._connected:
            self._client.publish(self.status_topic, json.dumps(payload), qos=1, retain=True)

    async def drain(self, timeout: float) -> bool:
        """Wait until everything queued is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self._cv:
                self._reap()
            if not self.unconfirmed:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)

    @property
    def unconfirmed(self) -> int:
        """Messages accepted and neither acknowledged nor dropped: waiting in
        the buffer, held by the publishing thread, or in flight."""
        return (self.buffer.added - self.buffer.dropped - sum(self.published.values())
                - sum(self.rejected.values()))

    async def close(self, final_status: dict | None = None) -> None:
        self._closing = True
        self._stop.set()
        self.buffer.close()
        with self._cv:
            self._cv.notify_all()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 5)
        client = self._client
        if client is None:
            return
        if final_status is not None and self._connected:
            info = client.publish(self.status_topic, json.dumps(final_status), qos=1, retain=True)
            await asyncio.to_thread(_wait_published, info, 3.0)
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)

    # --- paho's thread -----------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        ok = not reason.is_failure
        self._first.set(ok, reason)
        if not ok:
            self.last_error = f"broker refused the connection: {reason}"
            return
        with self._cv:
            self._connected = True
            self.connects += 1
            self._cv.notify_all()
        if self.on_change:
            self.on_change("connected")

    def _on_disconnect(self, client, userdata, flags, reason, properties) -> None:
        with self._cv:
            was = self._connected
            self._connected = False
            self._resync = True
            if was and not self._closing:
                self.disconnects += 1
                self.last_error = f"broker connection lost: {reason}"
        if was and self.on_change and not self._closing:
            self.on_change("disconnected")

    def _on_publish(self, client, userdata, mid, reason, properties) -> None:
        # Called with paho's own lock held: only wake the pump, never call paho here.
        with self._cv:
            self._acks += 1
            self._cv.notify_all()

    def _reap(self) -> None:
        """Count the messages the broker has acknowledged (caller holds _cv).

        PUBACKs come in publishing order, so look at the oldest first; one
        that is acknowledged late (re-sent after a reconnect) only delays the
        count of those behind it, never loses them."""
        if self._acks:
            self._acks = 0
            inflight = self._inflight
            while inflight and _acked(inflight[0][0]):
                self.published[inflight.popleft()[1]] += 1
        if not self._inflight:
            self._resync = False

    def _pump(self) -> None:
        client = self._client
        while not self._stop.is_set():
            with self._cv:
                self._reap()
                room = self.window - len(self._inflight)
                if not (self._connected and not self._resync and room > 0):
                    self._cv.wait(0.2)
                    continue
            batch = self.buffer.take_many(room, timeout=0.2)
            if not batch:
                continue
            if not self._connected:
                self.buffer.put_back(batch)  # the link went while we waited: keep them in the bound
                continue
            # Never hold our lock while calling paho (it calls us back under its own).
            sent = []
            for i, message in enumerate(batch):
                problem = topic_problem(message.address)
                if problem is not None:  # the broker would drop the link and we would re-send it forever
                    self._reject(message, problem)
                    continue
                try:
                    info = client.publish(message.address, message.payload, qos=self.qos)
                except Exception as exc:  # one bad message must never end the publishing thread
                    self._reject(message, str(exc) or type(exc).__name__)
                    continue
                if info.rc != 0 and self.qos == 0:
                    self.buffer.put_back(batch[i:])  # QoS 0 is not queued by paho: keep them ourselves
                    break
                # QoS 1/2 while the link just dropped: paho keeps it and re-sends it.
                sent.append((info, message.kind))
            with self._cv:
                self._inflight.extend(sent)
        with self._cv:
            self._acks += 1
            self._reap()


    def _reject(self, message: Message, why: str) -> None:
        """Count a message that cannot be published, and say so (on_reject)."""
        with self._cv:
            self.rejected[message.kind] += 1
        self.last_error = f"a message to {message.address[:80]!r} was not published: {why}"
        if self.on_reject:
            self.on_reject(f"{message.kind} not published ({why}); topic {message.address[:80]!r}")


def _acked(info) -> bool:
    """Has the broker acknowledged this message?  paho's is_published() raises
    for a message handed over while the link was down, although paho queued it
    and will re-send it; its flag still tells the truth once the ack comes."""
    try:
        return info.is_published()
    except RuntimeError:
        return bool(getattr(info, "_published", False))


def _wait_published(info, timeout: float) -> None:
    try:
        info.wait_for_publish(timeout)
    except (RuntimeError, ValueError):
        pass  # the link went; the Last Will says "offline" for us


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
        first = FirstConnect()
        state = {"up": False}

        def on_connect(client, userdata, flags, reason, properties):
            first.set(not reason.is_failure, reason)
            if reason.is_failure:
                return
            # A clean session forgets subscriptions: subscribe again on every connect.
            client.subscribe([(t, self.qos) for t in self.topics])
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
        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.reconnect_delay_set(1, 30)
        self._client = client
        start_client(client, self.settings, first, 10.0)

    def stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
