"""Phone-control requests over MQTT: the relay's side (`MqttDesk`) and the desktop's
(`MqttControl`), on the topics of `eslkit.control.requests`::

    freeswitch/<hostname>/agents/<ext>/control          a desktop's requests (JSON)
    freeswitch/<hostname>/agents/<ext>/control/reply    the relay's replies

A desktop that does not name the switch (no ``/freeswitch/<hostname>`` prefix in its URL)
publishes with ``-`` for the hostname: whichever switch the relay serves.  The Mosquitto ACL
in docs/phone.md lets each agent's broker user publish only to its own control topic and
read only its own replies; the relay takes the extension from the topic, never from the
message.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid as uuidlib
from dataclasses import replace
from typing import Callable, Optional, Sequence

from eslkit.control.requests import Desk, Requester, parse_reply
from eslkit.errors import BrokerError
from eslkit.brokers.mqtt import MqttSettings, make_client, refused, start_subscribed, topic_part

CONTROL_TOPIC = "freeswitch/+/agents/+/control"
ANY_SWITCH = "-"
QUEUE = 1000  # requests waiting for the desk; beyond that they are dropped (and counted)


def control_topic(prefix: str, ext: str) -> str:
    return f"{prefix}/agents/{topic_part(ext)}/control"


class MqttDesk:
    """``relay --control`` on MQTT: every agent's requests to the `Desk`, its replies back.

    ``hostname()`` is the switch's name as the relay has seen it (None before any event):
    requests for another switch's hostname are left to that switch's relay."""

    def __init__(self, settings: MqttSettings, desk: Desk, hostname: Callable[[], Optional[str]], *, qos: int = 1):
        self.settings = replace(settings, client_id=(settings.client_id or f"eslkit-relay-{socket.gethostname()}")
                                + "-control")
        self.desk = desk
        self.hostname = hostname
        self.qos = qos
        self.dropped = 0
        self._client = None
        self._queue: Optional[asyncio.Queue] = None
        self._task: Optional[asyncio.Task] = None

    async def start(self) -> None:
        """Returns once the broker confirmed the subscription: the relay says it is relaying
        only then, and a request sent after that line is not lost."""
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(QUEUE)

        def on_message(client, userdata, msg):
            loop.call_soon_threadsafe(self._put, msg.topic, msg.payload)

        client = make_client(self.settings, on_message=on_message)
        client.reconnect_delay_set(1, 30)
        self._client = client
        reasons = await asyncio.to_thread(start_subscribed, client, self.settings, [(CONTROL_TOPIC, self.qos)],
                                          "the control requests")
        if refused(reasons):
            raise BrokerError(f"The MQTT broker at {self.settings.where} refused to let "
                              f"{self.settings.username or 'the relay'} read the agents' control requests.",
                              "Check the broker's ACL (docs/phone.md).")
        self._task = asyncio.ensure_future(self._serve())

    def _put(self, topic: str, payload: bytes) -> None:
        try:
            self._queue.put_nowait((topic, payload))
        except asyncio.QueueFull:
            self.dropped += 1

    async def _serve(self) -> None:
        while True:
            topic, payload = await self._queue.get()
            levels = topic.split("/")
            if len(levels) != 5:
                continue
            switch, ext = levels[1], levels[3]
            ours = self.hostname()
            if switch != ANY_SWITCH and ours is not None and switch != topic_part(ours):
                continue  # another switch's relay answers that
            reply = await self.desk.handle(ext, payload, via="mqtt")
            if reply is not None:
                self._client.publish(topic + "/reply", json.dumps(reply, ensure_ascii=True), qos=self.qos)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._client is not None:
            self._client.disconnect()
            await asyncio.to_thread(self._client.loop_stop)


class MqttControl(Requester):
    """A desktop's requests through ``relay --control`` on MQTT (see `Requester`)."""

    def __init__(self, settings: MqttSettings, exts: Sequence[str], *, wait: float = 10.0):
        self.settings = replace(settings, client_id=settings.client_id or
                                f"eslkit-control-{socket.gethostname()}-{uuidlib.uuid4().hex[:8]}")
        super().__init__(self.settings.client_id, wait)
        self.exts = list(exts)
        # A request is published, and a topic to publish to has no wildcard: --from URL/freeswitch/+
        # (every switch's popups) sends to whichever switch's relay, as no prefix does.
        self.prefix = "/".join(ANY_SWITCH if level in ("+", "#") else level
                               for level in (settings.prefix or f"freeswitch/{ANY_SWITCH}").split("/"))
        self.description = f"{settings.where}/{self.prefix}"
        self._client = None

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        replies = [(control_topic(self.settings.prefix or "freeswitch/+", ext) + "/reply", 1) for ext in self.exts]

        def on_message(client, userdata, msg):
            reply = parse_reply(msg.payload)
            if reply is not None:
                self._loop.call_soon_threadsafe(self.answer, reply)

        client = make_client(self.settings, on_message=on_message)
        self._client = client
        reasons = await asyncio.to_thread(start_subscribed, client, self.settings, replies, "the control replies")
        if refused(reasons):
            raise BrokerError(f"The MQTT broker at {self.settings.where} refused to let "
                              f"{self.settings.username or 'this user'} read the control replies of "
                              f"{', '.join(self.exts)}.", "Check the broker's ACL (docs/phone.md).")

    def _send(self, ext: str, payload: bytes) -> None:
        info = self._client.publish(control_topic(self.prefix, ext), payload, qos=1)
        if info.rc != 0:
            raise BrokerError(f"The request could not be sent to the MQTT broker at {self.settings.where}.")

    async def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            await asyncio.to_thread(self._client.loop_stop)
