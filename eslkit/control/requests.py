"""Phone-control requests that come through a broker, for desktops without the ESL password.

A desktop publishes a request on its own control topic (MQTT) or routing key (AMQP)::

    freeswitch/<hostname>/agents/1001/control          <hostname>.agents.1001.control
    {"id": "a1b2", "action": "transfer", "target": "1002", "time": 1796124000.5}

and `eslkit relay --control` answers on the same address plus ``/reply`` (``.reply``)::

    {"id": "a1b2", "ok": true, "ext": "1001", "action": "transfer",
     "text": "1001: call from 6208 transferred to 1002", "error": null, …}

`Desk` is the relay's side, whatever the broker: it takes the extension from the address
(which the broker's ACL lets only that agent publish to) and never from the message,
refuses a message that is not a request, answers a request id once (a broker may
deliver twice), refuses requests older than ``max_age`` seconds (a desktop's click from
before the relay restarted must not hang up today's call), then hands the request to
`eslkit.control.Controller` — which limits each agent's requests (``Policy.rate``) and
checks, again, that the call is that agent's.

A request may say on whose behalf it is sent (``on_behalf_of``: the user logged in to
``serve --from … --control``, whose MQTT client id is one for all its agents).  That is a
claim, never a credential: it is written to the audit log beside the client id and used
for nothing else.

`Requester` is the desktop's side (``eslkit phone --via``, ``popup --from … --control``);
`eslkit.control.via` picks the broker's by the URL.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid as uuidlib
from collections import OrderedDict
from dataclasses import replace
from typing import Any, Optional

from eslkit.control import Action, ControlError, Controller, Request, RequestRefused, Result, error_for
from eslkit.errors import NoReply

__all__ = ["Desk", "Requester", "request_message", "parse_reply", "result_of", "MAX_REQUEST_BYTES"]

MAX_REQUEST_BYTES = 4096
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
CLIENT_ID = re.compile(r"[\x21-\x7e]{1,128}")  # printable ASCII, no spaces


Refused = RequestRefused


class Desk:
    """The relay's control desk: messages in, replies out (see the module doc)."""

    def __init__(self, controller: Controller, *, max_age: float = 30.0, remember: int = 10_000, clock=time.time):
        self.controller = controller
        self.max_age = max_age
        self.clock = clock
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._remember = remember
        self.counts = {"requests": 0, "done": 0, "refused": 0, "duplicates": 0}

    async def handle(self, ext: str, payload: bytes, *, via: str = "mqtt",
                     client_id: Optional[str] = None) -> Optional[dict]:
        """One message from ``ext``'s control address; the reply to publish, or None for a
        duplicate (already answered)."""
        self.counts["requests"] += 1
        request_id = data = None
        try:
            data = self._parse(ext, payload)
            if isinstance(data.get("id"), str) and REQUEST_ID.fullmatch(data["id"]):
                request_id = data["id"]  # the reply says which request it answers, refused or not
            request = self._read(ext, data, request_id, via, client_id)
            key = (ext, request_id)
            if key in self._seen:
                self.counts["duplicates"] += 1
                return None
            self._seen[key] = None
            if len(self._seen) > self._remember:
                self._seen.popitem(last=False)
            result = await self.controller.act(request)  # which audits it, done or not
        except ControlError as err:
            self.counts["refused"] += 1
            result = getattr(err, "result", None)
            if result is None:  # refused here, before the controller saw it
                result = Result(False, ext, _action_of(payload), str(err), error=err.kind, request_id=request_id)
                if self.controller.audit is not None:
                    self.controller.audit.entry(ext=ext, action=result.action, result=err.kind, text=str(err),
                                                via=via, request_id=request_id, client_id=client_id,
                                                on_behalf_of=_on_behalf_of(data))
        else:
            self.counts["done"] += 1
        reply = result.to_dict()
        reply["id"] = request_id
        reply["time"] = self.clock()
        return reply

    @staticmethod
    def _parse(ext: str, payload: bytes) -> dict:
        if len(payload) > MAX_REQUEST_BYTES:
            raise Refused("bad_request", f"A control request for {ext} of {len(payload)} bytes was refused: at most "
                                         f"{MAX_REQUEST_BYTES}.")
        try:
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise Refused("bad_request", f"A control message for {ext} is not JSON.") from None
        if not isinstance(data, dict):
            raise Refused("bad_request", f"A control message for {ext} is not a JSON object.")
        return data

    def _read(self, ext: str, data: dict, request_id: Optional[str], via: str, client_id: Optional[str]) -> Request:
        if request_id is None:
            raise Refused("bad_request", f"A control request for {ext} has no usable id (letters, digits, ._:- "
                                         "up to 64).")
        action = data.get("action")
        if action not in Action.__members__:
            raise Refused("bad_request", f"{_text(action)} is not an action: use one of "
                                         f"{', '.join(Action.__members__)}.")
        named = data.get("ext", ext)
        if named != ext:
            raise Refused("not_allowed", f"A request on {ext}'s control topic names extension {_text(named)}: "
                                         f"an agent controls only its own calls.")
        sent = data.get("time")
        if not isinstance(sent, (int, float)) or isinstance(sent, bool):
            raise Refused("bad_request", f"A control request for {ext} has no time (seconds since 1970).")
        age = self.clock() - sent
        if abs(age) > self.max_age:
            raise Refused("expired", f"{ext}'s {action} request is {abs(age):.0f} s "
                                     f"{'old' if age > 0 else 'in the future'}; requests expire after "
                                     f"{self.max_age:g} s.")
        fields = {}
        for name in ("target", "uuid", "cause"):
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise Refused("bad_request", f"{name} in {ext}'s request must be a string.")
            fields[name] = value
        claimed = client_id or data.get("client_id")
        if not (isinstance(claimed, str) and CLIENT_ID.fullmatch(claimed)):
            claimed = None
        return Request(ext, Action(action), fields["target"], fields["uuid"], fields["cause"], request_id,
                       claimed, via, on_behalf_of=_on_behalf_of(data))


def _on_behalf_of(data) -> Optional[str]:
    """The message's ``on_behalf_of`` when it is a name of printable ASCII, else None: it is
    only recorded, and nothing in it may style a terminal that shows the audit log."""
    claimed = data.get("on_behalf_of") if isinstance(data, dict) else None
    return claimed if isinstance(claimed, str) and CLIENT_ID.fullmatch(claimed) else None


def _text(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else repr(value[:40])
    return text[:60]


def _action_of(payload: bytes) -> str:
    try:
        action = json.loads(payload).get("action")
    except (ValueError, AttributeError, UnicodeDecodeError):
        return "-"
    return action if isinstance(action, str) and action in Action.__members__ else "-"


# --- the desktop's side ----------------------------------------------------------------------------


def request_message(request: Request, *, clock=time.time) -> tuple[str, bytes]:
    """(request id, the JSON payload) of a request to publish."""
    request_id = request.request_id or uuidlib.uuid4().hex
    data = {"id": request_id, "action": request.action.value, "ext": request.ext, "time": clock()}
    for name in ("target", "uuid", "cause", "client_id", "on_behalf_of"):
        value = getattr(request, name)
        if value is not None:
            data[name] = value
    return request_id, json.dumps(data).encode()


def parse_reply(payload: bytes) -> Optional[dict]:
    """A reply's JSON object, or None when the message is not one."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("id"), str) else None


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


class Requester:
    """The desktop's side, whatever the broker: `act` publishes one request for the agent
    and returns the relay's reply with the same id as a `Result` (or raises the
    ControlError it names).  A broker's subclass opens the link, calls `answer` with every
    reply (and `refused` when the broker turned a request away) and sends with `_send`."""

    description = ""

    def __init__(self, client_id: str, wait: float):
        self.client_id = client_id
        self.wait = wait
        self._pending: dict[str, asyncio.Future] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def answer(self, reply: dict) -> None:
        waiter = self._pending.get(reply["id"])
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    def refused(self, error: Exception) -> None:
        for waiter in self._pending.values():
            if not waiter.done():
                waiter.set_exception(error)

    def _send(self, ext: str, payload: bytes) -> None:
        raise NotImplementedError

    async def act(self, request: Request) -> Result:
        # This process is the client the broker knows; whoever asked it (serve's logged-in user)
        # goes along as "on behalf of", which the relay records and never trusts.
        request_id, payload = request_message(replace(request, client_id=self.client_id,
                                                      on_behalf_of=request.on_behalf_of or request.client_id))
        waiter = self._loop.create_future()
        self._pending[request_id] = waiter
        try:
            self._send(request.ext, payload)
            try:
                reply = await asyncio.wait_for(waiter, self.wait)
            except asyncio.TimeoutError:
                raise NoReply(f"No reply to {request.ext}'s {request.action.value} request from an eslkit relay "
                              f"--control at {self.description} within {self.wait:g} s.") from None
        finally:
            self._pending.pop(request_id, None)
        return result_of(reply)
