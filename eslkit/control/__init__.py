"""Phone control: an agent's intent — dial, hang up, transfer, hold, answer — as checked
``api`` commands to FreeSWITCH, once, for every way in (``eslkit phone``, the popup's keys,
requests through ``relay --control``, the web page).

    control = Controller(switch, tracker.active, policy=Policy(context="agents"), audit=AuditLog("audit.jsonl"))
    engine.listen(control.observe)                # every LegView change the call tracker makes
    result = await control.hold("1001")           # or control.act(Request("1001", Action.hold))
    print(result.text)                            # "1001: call from 6208 on hold"

Nobody acts where they do not belong:

- a request names an extension and may touch only the channels the call tracker
  attributes to that extension right now (`authorise`): 1001 cannot hang up 1002's
  call, nor any uuid it names that is not one of its own legs;
- numbers and destinations are checked against a strict pattern before anything is sent
  (`Policy.number`): digits, ``*``, ``#``, ``+`` and the site's own extra patterns, and
  never a character that could end an ``api`` argument or start a new one (spaces,
  ``&``, ``{}``, ``,``, ``|``, quotes, newlines…);
- each extension may make at most ``Policy.rate`` requests (5 in 10 s) of a controller
  (`eslkit.control.limit`): the relay's desk and serve's buttons both end here;
- every action — done, refused or failed — is one JSON line in the audit log.

Each action waits for the switch's events that prove it (the tracker's view of the leg
changes: on hold, off hold, ended, answered, a new outgoing leg) and raises
`ActionTimeout` when none came.  The FreeSWITCH API each action sends (docs/phone.md):

    hangup    uuid_kill <agent leg> [CAUSE]
    hold      uuid_hold <agent leg>            unhold   uuid_hold off <agent leg>
    transfer  uuid_transfer <agent leg> -bleg DEST XML CONTEXT
    answer    uuid_phone_event <agent leg> talk      (phones that honour it only)
    dial      bgapi originate {origination_caller_id_number=EXT,origination_caller_id_name='Agent EXT'}
              user/EXT NUMBER XML CONTEXT      (or &bridge(ENDPOINT) with Policy.endpoint)
"""

from __future__ import annotations

import asyncio
import difflib
import enum
import json
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Sequence

from eslkit.calls import LegView
from eslkit.causes import CAUSES
from eslkit.control.limit import Limiter, RateLimit
from eslkit.errors import (
    ActionTimeout,
    BadNumber,
    ControlError,
    NoCall,
    NotAllowed,
    OutputError,
    RequestRefused,
    SwitchRefused,
)

__all__ = [
    "Action", "Request", "Result", "Policy", "RateLimit", "Controller", "Actor", "AuditLog", "authorise", "check_ext",
    "ControlError", "NotAllowed", "NoCall", "BadNumber", "SwitchRefused", "ActionTimeout", "RequestRefused",
    "error_for",
]


# The errors (one sentence each, a distinct exit code) are in eslkit.errors, with every other
# code: ControlError, NotAllowed, NoCall, BadNumber, SwitchRefused, ActionTimeout, RequestRefused.


def error_for(kind: Optional[str], text: str) -> ControlError:
    """The error a relay's reply names, as raised here (for `eslkit phone --via`)."""
    for cls in (NotAllowed, NoCall, BadNumber, SwitchRefused, ActionTimeout):
        if cls.kind == kind:
            return cls(text)
    return RequestRefused(kind or "failed", text)


# --- requests and results --------------------------------------------------------------------------


class Action(str, enum.Enum):
    dial = "dial"
    hangup = "hangup"
    transfer = "transfer"
    hold = "hold"
    unhold = "unhold"
    answer = "answer"

    @property
    def needs_target(self) -> bool:
        return self in (Action.dial, Action.transfer)


@dataclass(frozen=True)
class Request:
    """What an agent asks for.  ``target``: the number to dial or the transfer destination;
    ``uuid``: which call (its leg or call uuid) when the extension has several."""

    ext: str
    action: Action
    target: Optional[str] = None
    uuid: Optional[str] = None
    cause: Optional[str] = None  # hangup only; NORMAL_CLEARING when not given
    request_id: Optional[str] = None  # broker requests
    client_id: Optional[str] = None  # who sent it: the broker's client, serve's logged-in user
    via: str = "cli"  # cli | popup | mqtt | amqp | web
    # Through a broker, whom the client says it acts for (serve's user): recorded, never trusted.
    on_behalf_of: Optional[str] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", Action(self.action))


@dataclass(frozen=True)
class Result:
    """What happened: ``text`` says it in one sentence ("1001: call with 6208 on hold")."""

    ok: bool
    ext: str
    action: str
    text: str
    uuid: Optional[str] = None  # the agent's leg acted on (dial: the new one)
    target: Optional[str] = None
    command: Optional[str] = None  # the api line sent (never anything secret)
    error: Optional[str] = None  # ControlError.kind when not ok
    request_id: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "ext": self.ext, "action": self.action, "text": self.text, "uuid": self.uuid,
                "target": self.target, "command": self.command, "error": self.error,
                "request_id": self.request_id}


# --- what may reach an api line ----------------------------------------------------------------------

NUMBER = re.compile(r"[0-9*#+]{1,32}")
# Whatever a site allows besides numbers, these never reach the switch: api arguments
# are split on spaces, originate variables on commas and braces, channels on | and ,.
SAFE = re.compile(r"[A-Za-z0-9*#+._-]{1,64}")
EXTENSION = re.compile(r"[A-Za-z0-9_.-]{1,32}")
CONTEXT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
UUID = re.compile(r"[0-9a-fA-F-]{8,64}")
ENDPOINT = re.compile(r"[A-Za-z0-9/_.:@-]*\{number\}[A-Za-z0-9/_.:@-]*")


def _cause(cause: Optional[str]) -> Optional[str]:
    """A hangup cause the switch knows, or None (uuid_kill's own NORMAL_CLEARING): the switch
    would turn any other word into NORMAL_UNSPECIFIED without a word, and say the call ended."""
    if cause is None or cause in CAUSES:
        return cause
    close = difflib.get_close_matches(cause.upper(), CAUSES, n=1)
    raise BadNumber(f"{_shown(cause)} is not a FreeSWITCH hangup cause"
                    + (f" (did you mean {close[0]}?)." if close else "."),
                    "Use e.g. NORMAL_CLEARING, USER_BUSY or CALL_REJECTED (docs/phone.md).")


def _shown(text: str, limit: int = 60) -> str:
    """A refused value, quoted and short, safe to put in a sentence (no newlines)."""
    text = text if len(text) <= limit else text[:limit] + "…"
    return repr(text)


@dataclass(frozen=True)
class Policy:
    """What this site allows: extra destination patterns (full-match regular expressions,
    e.g. ``9\\d{10}`` or ``sales``), the dialplan context of transfers and dials, an
    optional endpoint template for dialling (``sofia/gateway/pstn/{number}``: the far party
    is bridged directly instead of through the dialplan), and how many requests one
    extension may make (``rate``)."""

    patterns: tuple = ()
    context: str = "default"
    endpoint: Optional[str] = None
    caller_name: str = "Agent {ext}"
    rate: RateLimit = RateLimit()

    def __post_init__(self) -> None:
        compiled = []
        for p in self.patterns:
            try:
                compiled.append(p if isinstance(p, re.Pattern) else re.compile(p))
            except re.error as exc:
                raise BadNumber(f"The destination pattern {_shown(str(p))} is not a regular expression ({exc}).",
                                "Give a Python regular expression, e.g. --allow-dest '9\\d{10}'.") from None
        object.__setattr__(self, "patterns", tuple(compiled))
        if not CONTEXT.fullmatch(self.context or ""):
            raise BadNumber(f"The dialplan context {_shown(self.context or '')} is not a context name.",
                            "Use letters, digits, _ . - only, e.g. --context default.")
        if self.endpoint is not None and not ENDPOINT.fullmatch(self.endpoint):
            raise BadNumber(f"The endpoint {_shown(self.endpoint)} is not an endpoint template.",
                            "Use e.g. sofia/gateway/pstn/{number}: letters, digits, / _ . : @ - and {number} once.")
        if not re.fullmatch(r"[A-Za-z0-9 _.-]*(\{ext\})?[A-Za-z0-9 _.-]*", self.caller_name):
            raise BadNumber(f"The caller name {_shown(self.caller_name)} may hold letters, digits, spaces, "
                            "_ . - and {ext}.")

    def number(self, text: Optional[str], what: str = "number") -> str:
        """``text`` if it may be dialled or transferred to; else BadNumber."""
        if not text:
            raise BadNumber(f"No {what} given.", f"Give the {what}, e.g. 6208.")
        if SAFE.fullmatch(text) and (NUMBER.fullmatch(text) or any(p.fullmatch(text) for p in self.patterns)):
            return text
        extra = " or match an --allow-dest pattern" if self.patterns else ""
        raise BadNumber(f"{_shown(text)} is not a {what} eslkit will send to the switch: it must be digits, "
                        f"*, # or + (at most 32){extra}.")


def check_ext(ext: str) -> str:
    if not EXTENSION.fullmatch(ext or ""):
        raise BadNumber(f"{_shown(ext or '')} is not an extension.", "Give the agent's extension, e.g. --ext 1001.")
    return ext


# --- whose call is it? -----------------------------------------------------------------------------


def _describe(leg: LegView) -> str:
    """"call from 6208", "call to 6208", or "outgoing call" before its number is known."""
    if leg.direction == "outgoing":
        return f"call to {leg.other_number}" if leg.other_number else "outgoing call"
    return f"call from {leg.other_number or leg.caller_number or 'an unknown number'}"


def authorise(request: Request, legs: Sequence[LegView]) -> LegView:
    """The agent leg of ``request.ext`` the action is for: one the tracker attributes to
    that extension right now, in a state the action fits.  Raises NotAllowed or NoCall."""
    ext, action = request.ext, request.action
    mine = [leg for leg in legs if leg.ext == ext and leg.state != "ended"]
    if request.uuid:
        named = [leg for leg in mine if request.uuid in (leg.leg_uuid, leg.call_uuid)]
        if not named:
            raise NotAllowed(f"{ext} has no call {_shown(request.uuid, 40)} right now; eslkit acts only on "
                             f"{ext}'s own calls.")
        mine = named
    if not mine:
        raise NoCall(f"{ext} has no call right now.",
                     f"Try again while {ext} has a call (eslkit popup --ext {ext} shows its calls).")
    fits = {
        Action.hangup: lambda leg: True,
        # Not before the far party is there: a hold put on a click-to-dial leg while the number
        # still rings is lost when it answers (the switch sets the call ACTIVE, no UNHOLD event).
        Action.hold: lambda leg: leg.state == "answered" and leg.bridged and not leg.on_hold,
        Action.unhold: lambda leg: leg.state == "answered" and leg.on_hold,
        Action.transfer: lambda leg: leg.state == "answered" and leg.bridged,
        Action.answer: lambda leg: leg.state == "ringing",
    }[action]
    fitting = [leg for leg in mine if fits(leg)]
    if len(fitting) == 1:
        return fitting[0]
    if not fitting:
        leg = mine[0]
        # The sentence, and the fix: what the call must be, or do, first.
        why, fix = {
            Action.hold: ("is already on hold", "Take it off hold with unhold.") if leg.on_hold
            else ("is not connected to anyone yet", "Put it on hold once the other party answers.")
            if leg.state == "answered" else ("is not answered yet", "Put it on hold once it is answered."),
            Action.unhold: ("is not on hold", "Only a call on hold can be taken off hold."),
            Action.transfer: ("is not connected to anyone yet", "Transfer it once the other party answers.")
            if leg.state == "answered" else ("is not answered yet", "Transfer it once it is answered."),
            Action.answer: ("is not ringing", "Answer a call while it rings."),
        }.get(action, ("cannot be acted on", ""))
        raise NoCall(f"{ext}'s {_describe(leg)} {why}.", fix)
    listed = ", ".join(f"{leg.leg_uuid} ({_describe(leg)})" for leg in fitting)
    raise NoCall(f"{ext} has {len(fitting)} calls: {listed}.", "Name one with --uuid.")


# --- the switch, the audit log ------------------------------------------------------------------------


class Switch(Protocol):
    """A live event-socket connection (`eslkit.client.Connection` is one)."""

    async def api(self, command: str, timeout: Optional[float] = None) -> str: ...
    async def bgapi(self, command: str, timeout: Optional[float] = None) -> str: ...


class Actor(Protocol):
    """What carries a request out: a `Controller` on a switch connection, or a broker's
    requester (`eslkit.control.requests.Requester`) that asks ``relay --control``, whose
    controller checks it.  The popup's keys and serve's buttons take either."""

    async def act(self, request: Request) -> Result: ...


class AuditLog:
    """Every action, one JSON line: time, ext, action, target, uuid, result (and for broker
    requests the request id, the client id and whom it claims to act for).  Appended to,
    never overwritten; created readable by its owner only.  Never a password: none
    reaches this module."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise OutputError(f"Cannot open the audit log {self.path}: {exc.strerror}.",
                              "Give --audit a file in a directory you can write.") from None
        self._file = os.fdopen(fd, "a", encoding="utf-8")

    def write(self, request: Request, result: Result) -> None:
        self.entry(ext=request.ext, action=request.action.value, target=request.target,
                   uuid=result.uuid or request.uuid, result="ok" if result.ok else result.error, text=result.text,
                   command=result.command, via=request.via, request_id=request.request_id,
                   client_id=request.client_id, on_behalf_of=request.on_behalf_of)

    def entry(self, *, ext: str, action: str, result: Optional[str], text: str, via: str,
              target: Optional[str] = None, uuid: Optional[str] = None, command: Optional[str] = None,
              request_id: Optional[str] = None, client_id: Optional[str] = None,
              on_behalf_of: Optional[str] = None) -> None:
        """One line; ``request_id``, ``client_id`` and ``on_behalf_of`` only when known."""
        line = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "ext": ext, "action": action, "target": target, "uuid": uuid, "result": result, "text": text,
            "command": command, "via": via,
        }
        if request_id is not None:
            line["request_id"] = request_id
        if client_id is not None:
            line["client_id"] = client_id
        if on_behalf_of is not None:
            line["on_behalf_of"] = on_behalf_of
        try:
            self._file.write(json.dumps(line, ensure_ascii=False) + "\n")
            self._file.flush()
        except OSError as exc:
            raise OutputError(f"Cannot write the audit log {self.path}: {exc.strerror}.") from None

    def close(self) -> None:
        self._file.close()


KNOWN = 10_000  # leg uuids a controller remembers having seen (a relay runs for months)


# --- carrying it out ----------------------------------------------------------------------------------


@dataclass
class _Waiter:
    proof: Callable[[LegView], bool]
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Controller:
    """Carries out requests on one switch connection and proves them from the call
    tracker's legs (feed it every LegView with `observe`).

    ``legs(ext)`` gives the extension's current legs (``tracker.active``); ``wait``: how
    long a proof may take.  One request at a time per controller, so that two clicks do
    not send two commands for one call."""

    def __init__(self, switch: Switch, legs: Callable[[str], Sequence[LegView]], *, policy: Optional[Policy] = None,
                 audit: Optional[AuditLog] = None, wait: float = 5.0):
        self.switch = switch
        self.legs = legs
        self.policy = policy or Policy()
        self.audit = audit
        self.wait = wait
        self._waiters: list[_Waiter] = []
        self._lock: Optional[asyncio.Lock] = None
        self._known: OrderedDict[str, None] = OrderedDict()  # recent legs: a dial's new leg is none of them
        self._jobs: set[asyncio.Future] = set()  # originates still running in the switch
        self._limiter = Limiter(self.policy.rate)

    async def close(self) -> None:
        """Stop waiting for the originates still running (they go on in the switch) and
        close the audit log."""
        for job in list(self._jobs):
            job.cancel()
        await asyncio.gather(*self._jobs, return_exceptions=True)
        if self.audit is not None:
            self.audit.close()

    def observe(self, change: Any) -> None:
        """Take one change from the tracker (other items are ignored)."""
        if not isinstance(change, LegView):
            return
        self._known[change.leg_uuid] = None
        if len(self._known) > KNOWN:
            self._known.popitem(last=False)
        for waiter in list(self._waiters):
            if not waiter.future.done() and waiter.proof(change):
                waiter.future.set_result(change)

    # The async function set: one per action.

    async def dial(self, ext: str, number: str, **kw) -> Result:
        return await self.act(Request(ext, Action.dial, number, **kw))

    async def hangup(self, ext: str, uuid: Optional[str] = None, **kw) -> Result:
        return await self.act(Request(ext, Action.hangup, uuid=uuid, **kw))

    async def transfer(self, ext: str, destination: str, uuid: Optional[str] = None, **kw) -> Result:
        return await self.act(Request(ext, Action.transfer, destination, uuid=uuid, **kw))

    async def hold(self, ext: str, uuid: Optional[str] = None, **kw) -> Result:
        return await self.act(Request(ext, Action.hold, uuid=uuid, **kw))

    async def unhold(self, ext: str, uuid: Optional[str] = None, **kw) -> Result:
        return await self.act(Request(ext, Action.unhold, uuid=uuid, **kw))

    async def answer(self, ext: str, uuid: Optional[str] = None, **kw) -> Result:
        return await self.act(Request(ext, Action.answer, uuid=uuid, **kw))

    async def act(self, request: Request) -> Result:
        """Carry out one request; raises a ControlError (audited too) when it is not done.
        Every request counts against its extension's ``policy.rate`` — those refused later
        too, not those refused for being one too many."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        command = None
        try:
            # Counted before the queue for the lock: a flood is refused, not queued.
            self._limiter.admit(check_ext(request.ext))
            async with self._lock:
                plan = self.plan(request)
                command = plan.command
                result = await self._run(request, plan)
        except ControlError as err:
            err.result = Result(False, request.ext, request.action.value, str(err), request.uuid,
                                request.target, command, err.kind, request.request_id)
            self._audit(request, err.result)
            raise
        self._audit(request, result)
        return result

    def _audit(self, request: Request, result: Result) -> None:
        if self.audit is not None:
            self.audit.write(request, result)

    def plan(self, request: Request) -> "_Plan":
        """Check everything and decide the api line, before anything is sent."""
        ext = check_ext(request.ext)
        policy = self.policy
        if request.action is Action.dial:
            number = policy.number(request.target)
            name = policy.caller_name.replace("{ext}", ext)
            variables = f"{{origination_caller_id_number={ext},origination_caller_id_name='{name}'}}"
            where = f"&bridge({policy.endpoint.replace('{number}', number)})" if policy.endpoint else \
                f"{number} XML {policy.context}"
            known = set(self._known) | {leg.leg_uuid for leg in self.legs(ext)}
            return _Plan(f"originate {variables}user/{ext} {where}", None, number,
                         lambda leg: leg.ext == ext and leg.leg_uuid not in known and leg.direction == "outgoing",
                         lambda leg: f"{ext}: dialling {number} — {ext}'s phone is ringing; answer it to place "
                                     "the call", background=True)
        # What the agent typed is checked first: a bad destination or cause is refused as such, call or not.
        destination = policy.number(request.target, "destination") if request.action is Action.transfer else None
        cause = _cause(request.cause) if request.action is Action.hangup else None
        leg = authorise(request, self.legs(ext))
        uuid = leg.leg_uuid
        if not UUID.fullmatch(uuid):
            raise NotAllowed(f"{ext}'s leg {_shown(uuid, 40)} is not a uuid eslkit will send.")
        about = _describe(leg)
        if request.action is Action.hangup:
            return _Plan(f"uuid_kill {uuid}" + (f" {cause}" if cause else ""), uuid, None,
                         lambda v: v.leg_uuid == uuid and v.state == "ended",
                         lambda v: f"{ext}: {about} hung up")
        if request.action is Action.hold:
            return _Plan(f"uuid_hold {uuid}", uuid, None, lambda v: v.leg_uuid == uuid and v.on_hold,
                         lambda v: f"{ext}: {about} on hold")
        if request.action is Action.unhold:
            return _Plan(f"uuid_hold off {uuid}", uuid, None,
                         lambda v: v.leg_uuid == uuid and not v.on_hold and v.state == "answered",
                         lambda v: f"{ext}: {about} taken off hold")
        if request.action is Action.answer:
            return _Plan(f"uuid_phone_event {uuid} talk", uuid, None,
                         lambda v: v.leg_uuid == uuid and v.state in ("answered", "ended"),
                         lambda v: f"{ext}: {about} answered" if v.state == "answered"
                         else f"{ext}: {about} ended before it was answered",
                         unproven="the phone did not answer: answering from the computer works only on "
                                  "phones that honour FreeSWITCH's talk event (uuid_phone_event)")
        if destination == request.ext:
            raise BadNumber(f"{ext} cannot transfer a call to itself.")
        return _Plan(f"uuid_transfer {uuid} -bleg {destination} XML {policy.context}", uuid, destination,
                     lambda v: v.leg_uuid == uuid and v.state == "ended",
                     lambda v: f"{ext}: {about} transferred to {destination}")

    async def _run(self, request: Request, plan: "_Plan") -> Result:
        waiter = _Waiter(plan.proof)
        self._waiters.append(waiter)
        try:
            if plan.background:
                reply = await self._originate(plan, waiter)
            else:
                reply = (await self.switch.api(plan.command, timeout=self.wait)).strip()
            if reply.startswith("-"):
                raise SwitchRefused(f"The switch refused {plan.command.split()[0]} for {request.ext}: "
                                    f"{_first_line(reply)}.")
            try:
                proof = await asyncio.wait_for(asyncio.shield(waiter.future), self.wait)
            except asyncio.TimeoutError:
                why = plan.unproven or f"no event showed it within {self.wait:g} s"
                raise ActionTimeout(f"{request.ext}: the switch took {plan.command.split()[0]} "
                                    f"({_first_line(reply) or '+OK'}) but {why}.") from None
        finally:
            self._waiters.remove(waiter)
        return Result(True, request.ext, request.action.value, plan.describe(proof),
                      proof.leg_uuid if plan.uuid is None else plan.uuid, plan.target, plan.command,
                      request_id=request.request_id)

    async def _originate(self, plan: "_Plan", waiter: _Waiter) -> str:
        """bgapi originate: the job ends when the agent answers or the call fails; the proof
        (the agent's phone ringing) usually comes first, and then it is enough."""
        job = asyncio.ensure_future(self.switch.bgapi(plan.command, timeout=max(self.wait, 60.0)))
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        done, _ = await asyncio.wait({job, waiter.future}, timeout=self.wait, return_when=asyncio.FIRST_COMPLETED)
        if job in done:
            return job.result()  # raises what the connection raised
        return "+OK"


@dataclass(frozen=True)
class _Plan:
    command: str
    uuid: Optional[str]
    target: Optional[str]
    proof: Callable[[LegView], bool]
    describe: Callable[[LegView], str]
    background: bool = False
    unproven: Optional[str] = None


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:200]

