"""``popup --control``: the phone keys of the popup panel.

    panel = PanelControl(actor, ["1001"], lambda: engine_legs())
    for key in keys: panel.key(key)         # a, h, x, t, d, tab…
    snapshot = replace(snapshot, selected=panel.selected, footer=panel.bar())

``actor`` is what carries a `eslkit.control.Request` out: an `eslkit.control.Controller`
on the popup's own switch connection, or, with ``--from mqtt://…``, an
`eslkit.control.mqtt.MqttControl` that asks ``relay --control``.  Either checks the
request the same way; this class only decides which call the agent means and shows what
came back.  It never sends two requests at once: keys are ignored while one runs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from eslkit.calls import LegView
from eslkit.control import SAFE, Action, Actor, AuditLog, ControlError, Controller, Policy, Request
from eslkit.control.via import open_control
from eslkit.errors import EslkitError
from eslkit.views.control_bar import ControlBar

__all__ = ["PanelControl", "KEYS", "phone_keys", "open_actor"]

KEYS = (("a", "answer"), ("h", "hold/unhold"), ("x", "hang up"), ("t", "transfer"), ("d", "dial"),
        ("Tab", "next call"))
PROMPTS = {"t": (Action.transfer, "Transfer to"), "d": (Action.dial, "Dial")}
MAX_TYPED = 32


class PanelControl:
    def __init__(self, actor: Actor, exts: Sequence[str], legs: Callable[[], Sequence[LegView]], *,
                 via: str = "popup"):
        self.actor = actor  # closed with the panel when it has a close()
        self.exts = list(exts)
        self.legs = legs  # the legs up, in the order the panel shows them
        self.via = via
        self.selected: Optional[str] = None
        self.prompt: Optional[tuple[Action, str]] = None
        self.typed = ""
        self.message: Optional[tuple[str, str]] = None
        self.task: Optional[asyncio.Future] = None

    # --- what the panel shows ------------------------------------------------------------

    def current(self) -> Optional[LegView]:
        """The call the keys act on: the one selected while it is up, else a ringing one,
        else the first."""
        legs = [leg for leg in self.legs() if leg.state != "ended"]
        chosen = next((leg for leg in legs if leg.leg_uuid == self.selected), None)
        if chosen is None and legs:
            chosen = next((leg for leg in legs if leg.state == "ringing"), legs[0])
        self.selected = chosen.leg_uuid if chosen else None
        return chosen

    def bar(self) -> ControlBar:
        self.current()
        prompt = self.prompt[1] if self.prompt else None
        return ControlBar(KEYS, prompt, self.typed, self.message)

    # --- keys ------------------------------------------------------------------------------

    def key(self, key: str) -> None:
        if self.prompt is not None:
            self._typing(key)
            return
        if self.task is not None and not self.task.done():
            return  # one request at a time
        leg = self.current()
        if key in ("tab", "down", "backtab", "up"):
            self._next(-1 if key in ("backtab", "up") else 1)
        elif key in PROMPTS:
            self.prompt, self.typed = PROMPTS[key], ""
        elif key in ("a", "h", "x"):
            action = {"a": Action.answer, "x": Action.hangup}.get(key)
            if action is None:
                action = Action.unhold if leg is not None and leg.on_hold else Action.hold
            self._send(Request(leg.ext if leg else self.exts[0], action, uuid=leg.leg_uuid if leg else None,
                               via=self.via))

    def _typing(self, key: str) -> None:
        if key == "esc":
            self.prompt, self.typed = None, ""
        elif key == "backspace":
            self.typed = self.typed[:-1]
        elif key == "enter":
            (action, _), typed = self.prompt, self.typed
            self.prompt, self.typed = None, ""
            leg = self.current()
            ext = leg.ext if leg else self.exts[0]
            uuid = leg.leg_uuid if leg and action is Action.transfer else None
            self._send(Request(ext, action, typed, uuid=uuid, via=self.via))
        elif len(key) == 1 and SAFE.fullmatch(key) and len(self.typed) < MAX_TYPED:
            self.typed += key  # what could never be a number is not even shown

    def _next(self, step: int) -> None:
        legs = [leg for leg in self.legs() if leg.state != "ended"]
        if not legs:
            return
        uuids = [leg.leg_uuid for leg in legs]
        at = uuids.index(self.selected) if self.selected in uuids else -1
        self.selected = uuids[(at + step) % len(uuids)]

    def _send(self, request: Request) -> None:
        self.message = ("busy", f"{request.ext}: {request.action.value}…")
        self.task = asyncio.ensure_future(self._act(request))

    async def _act(self, request: Request) -> None:
        try:
            result = await self.actor.act(request)
        except ControlError as err:
            self.message = ("failed", str(err))
        except EslkitError as err:  # the link went, the broker refused…: said in the bar, the popup goes on
            self.message = ("failed", f"{request.ext}: {request.action.value} failed: {err}")
        else:
            self.message = ("ok", result.text)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        close = getattr(self.actor, "close", None)
        if close is not None:
            await close()  # the controller's audit log, the broker link


async def open_actor(engine, exts: Sequence[str], *, from_url: Optional[str] = None,
                     allow: Optional[List[str]] = None, context: Optional[str] = None, audit: Optional[Path] = None,
                     settings=None):
    """What carries out the requests of ``engine``'s agents (``popup --control``, ``serve
    --control``), ready to ``act``: a `Controller` on the engine's own switch connection,
    proved by its call tracker (it listens to the engine), or with ``from_url`` a requester
    that asks ``relay --control`` through the broker.  ``await actor.close()`` at the end."""
    if from_url is not None:
        actor = open_control(from_url, exts)
        await actor.open()
        return actor
    policy = Policy(patterns=tuple(allow or ()), context=context or (settings.context if settings else None)
                    or "default")
    actor = Controller(engine.source.switch, engine.tracker.active, policy=policy,
                       audit=AuditLog(audit) if audit is not None else None)
    engine.listen(actor.observe)
    return actor


def phone_keys(exts: Sequence[str], *, from_url: Optional[str] = None, allow: Optional[List[str]] = None,
               context: Optional[str] = None, audit: Optional[Path] = None, settings=None):
    """``--control``: what `eslkit.app.popup.show` calls, once the source is open, for the
    panel's keys: requests go to the popup's own switch connection (proved by its call
    tracker), or through the broker to ``relay --control``."""
    async def start(engine) -> PanelControl:
        actor = await open_actor(engine, exts, from_url=from_url, allow=allow, context=context, audit=audit,
                                 settings=settings)
        return PanelControl(actor, exts, lambda: [leg for ext in exts
                                                  for leg in engine.tracker.active(ext) + engine.relayed.active(ext)])

    return start
