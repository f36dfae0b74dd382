"""Phone-control requests over MQTT: the relay's side (`MqttDesk`) and the desktop's
(`MqttControl`), on the topics of `eslkit.control_requests`::

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

from eslkit.control import ActionTimeout, ControlError, Request, Result, error_for
from eslkit.control_requests import Desk, parse_reply, request_message
from eslkit.errors import BrokerError
from eslkit.sinks.mqtt import MqttSettings, _FirstConnect, make_client, start_client, topic_part

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
        loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(QUEUE)
        first = _FirstConnect()

        def on_connect(client, userdata, flags, reason, properties):
            first.set(not reason.is_failure, reason)
            if not reason.is_failure:
                client.subscribe(CONTROL_TOPIC, qos=self.qos)  # again after each reconnect (clean session)

        def on_message(client, userdata, msg):
            loop.call_soon_threadsafe(self._put, msg.topic, msg.payload)

        client = make_client(self.settings, on_message=on_message)
        client.on_connect = on_connect
        client.reconnect_delay_set(1, 30)
        self._client = client
        await asyncio.to_thread(start_client, client, self.settings, first, 10.0)
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


class MqttControl:
    """A desktop's requests through ``relay --control``: `act` publishes one on the
    agent's control topic and returns the relay's reply as a `Result` (or raises the
    ControlError it names)."""

    def __init__(self, settings: MqttSettings, exts: Sequence[str], *, wait: float = 10.0):
        self.settings = replace(settings, client_id=settings.client_id or
                                f"eslkit-control-{socket.gethostname()}-{uuidlib.uuid4().hex[:8]}")
        self.exts = list(exts)
        self.wait = wait
        self.prefix = settings.prefix or f"freeswitch/{ANY_SWITCH}"
        self.description = f"{settings.where}/{self.prefix}"
        self._pending: dict[str, asyncio.Future] = {}
        self._client = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        first = _FirstConnect()
        subscribed: asyncio.Future = self._loop.create_future()
        replies = [(control_topic(self.settings.prefix or "freeswitch/+", ext) + "/reply", 1) for ext in self.exts]

        def on_connect(client, userdata, flags, reason, properties):
            first.set(not reason.is_failure, reason)
            if not reason.is_failure:
                client.subscribe(replies)

        def on_subscribe(client, userdata, mid, reasons, properties):
            self._loop.call_soon_threadsafe(lambda: subscribed.done() or subscribed.set_result(reasons))

        def on_message(client, userdata, msg):
            reply = parse_reply(msg.payload)
            if reply is not None:
                self._loop.call_soon_threadsafe(self._answer, reply)

        client = make_client(self.settings, on_message=on_message)
        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        self._client = client
        await asyncio.to_thread(start_client, client, self.settings, first, 10.0)
        try:
            reasons = await asyncio.wait_for(subscribed, 10.0)
        except asyncio.TimeoutError:
            raise BrokerError(f"The MQTT broker at {self.settings.where} did not confirm the subscription to "
                              "the control replies.") from None
        if any(getattr(r, "is_failure", False) for r in reasons):
            raise BrokerError(f"The MQTT broker at {self.settings.where} refused to let "
                              f"{self.settings.username or 'this user'} read the control replies of "
                              f"{', '.join(self.exts)}.", "Check the broker's ACL (docs/phone.md).")

    def _answer(self, reply: dict) -> None:
        waiter = self._pending.get(reply["id"])
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    async def act(self, request: Request) -> Result:
        request_id, payload = request_message(replace(request, client_id=self.settings.client_id))
        waiter = self._loop.create_future()
        self._pending[request_id] = waiter
        try:
            info = self._client.publish(control_topic(self.prefix, request.ext), payload, qos=1)
            if info.rc != 0:
                raise BrokerError(f"The request could not be sent to the MQTT broker at {self.settings.where}.")
            try:
                reply = await asyncio.wait_for(waiter, self.wait)
            except asyncio.TimeoutError:
                raise NoReply(f"No reply to {request.ext}'s {request.action.value} request from an eslkit relay "
                              f"--control at {self.description} within {self.wait:g} s.") from None
        finally:
            self._pending.pop(request_id, None)
        return result_of(reply)

    async def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            await asyncio.to_thread(self._client.loop_stop)


class NoReply(ActionTimeout):
    kind = "no_reply"
    exit_code = 36
    default_fix = ("Check that `eslkit relay --control` runs against this broker, and that the broker's ACL "
                   "lets this user publish to its control topic (docs/phone.md).")


def result_of(reply: dict) -> Result:
    """The relay's reply as a Result; a refusal raises its ControlError (same sentence, same
    exit code as on the relay)."""
    def text(name: str) -> Optional[str]:
        value = reply.get(name)
        return value if isinstance(value, str) else None

    result = Result(reply.get("ok") is True, text("ext") or "", text("action") or "", text("text") or "",
                    text("uuid"), text("target"), text("command"), text("error"), text("id"))
    if not result.ok:
        err: ControlError = error_for(result.error, result.text or "The relay refused the request.")
        err.result = result
        raise err
    return result
