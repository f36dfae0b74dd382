"""The call-control api commands of the simulated switch: originate, uuid_kill, uuid_hold,
uuid_transfer, uuid_phone_event — with mod_commands' replies, acting on the simulator's
calls through the moves captured from a real switch (`eslkit.sim.moves`).

What the simulator's phones and dialplan do (there is no SIP behind them):

- every ``user/EXT`` is a registered phone; it rings and answers after the 3 s the
  captured phone took (scaled by ``--speed``), or at once on ``uuid_phone_event <uuid>
  talk`` — the simulated phones honour the talk NOTIFY, which real phones may not;
- ``originate {vars}user/EXT &bridge(ENDPOINT)`` rings the far party ENDPOINT once the
  agent answers; ``originate {vars}user/EXT NUMBER [XML [CONTEXT]]`` sends NUMBER
  through the dialplan, which here reaches ``sofia/external/NUMBER@127.0.0.1:5090``; the
  far party answers after the captured 3 s;
- ``uuid_transfer`` sends the leg to any destination: the dialplan rings that number's
  phone (``user/DEST``), which answers after the captured 2 s;
- ``api originate`` replies at once with the new leg's uuid (a real switch replies
  when the agent has answered); ``bgapi originate`` finishes, as on a real switch, when
  the agent answers (``+OK <uuid>``) or the call fails (``-ERR <CAUSE>``).

A command that takes legs out of a recorded scenario call (a hang-up or a transfer) stops
the recording for them: from then on they do what the commands say.  A transferred
caller hangs up when its recording had it hang up.
"""

from __future__ import annotations

import asyncio
import re
from typing import Optional

from eslkit.causes import CAUSES
from eslkit.sim.legs import LegState
from eslkit.sim.moves import Play, moves
from eslkit.sim.switch import Switch

KILL_USAGE = "-USAGE: <uuid> [cause]\n"
HOLD_USAGE = "-USAGE: [off|toggle] <uuid> [<display>]\n"
TRANSFER_USAGE = "-USAGE: <uuid> [-bleg|-both] <dest-exten> [<dialplan>] [<context>]\n"
PHONE_EVENT_USAGE = "-USAGE: <uuid>\n"
ORIGINATE_USAGE = ("-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] "
                   "[<cid_name>] [<cid_num>] [<timeout_sec>]\n")
NO_CHANNEL = "-ERR No such channel!\n"
FAILED = "-ERR Operation failed\n"


def cause_of(text: str) -> str:
    """switch_channel_str2cause: a name or a number; anything else is NORMAL_UNSPECIFIED."""
    text = text.strip().upper()
    if text.isdigit():
        return next((name for name, code in CAUSES.items() if code == int(text)), "NORMAL_UNSPECIFIED")
    return text if text in CAUSES else "NORMAL_UNSPECIFIED"


def _q850(cause: str) -> str:
    code = CAUSES.get(cause, 31)
    return str(code if code <= 127 else {"ORIGINATOR_CANCEL": 16, "LOSE_RACE": 16}.get(cause, 16))


# --- uuid_hold -----------------------------------------------------------------------------------


def uuid_hold(server: Switch, arg: str) -> str:
    words = arg.split()
    if not words:
        return HOLD_USAGE
    verb = words[0].lower()
    uuid = words[1] if verb in ("off", "toggle") and len(words) > 1 else words[0]
    legs = server.legs
    state = legs.state(uuid) if uuid in legs else None
    if state is None or not state.answered:
        return FAILED
    hold = not state.held if verb == "toggle" else verb != "off"
    if hold == state.held:
        return FAILED  # switch_ivr_hold / _unhold refuse a leg whose call state is already so
    roles = {"A": uuid}
    partner = legs.bridged(uuid)
    if partner is not None:
        roles["B"] = partner
    play = Play(server, moves()["hold" if hold else "unhold"], roles)
    phase = "hold" if hold else "unhold"
    play.fire_sync(phase)
    server.spawn(play.play(phase, sync_done=True))
    return "+OK Success\n"


# --- uuid_kill ---------------------------------------------------------------------------------------


def uuid_kill(server: Switch, arg: str) -> str:
    if not arg.strip():
        return KILL_USAGE
    uuid, _, cause_text = arg.strip().partition(" ")
    legs = server.legs
    state = legs.state(uuid) if uuid in legs else None
    if state is None:
        return NO_CHANNEL if uuid not in server.channels else "+OK\n"
    if state.hung_up:
        return "+OK\n"
    cause = cause_of(cause_text) if cause_text.strip() else "NORMAL_CLEARING"
    hang_up(server, uuid, cause)
    return "+OK\n"


def hang_up(server: Switch, uuid: str, cause: str) -> None:
    """The leg hangs up with ``cause`` (its first event now, the rest after the reply);
    a leg bridged to it follows, as hangup_after_bridge has it."""
    legs = server.legs
    state = legs.state(uuid)
    dialing = server.dialing.get(uuid)
    if dialing is not None:
        dialing.cancel(cause)
    partner = legs.bridged(uuid)
    tokens = {"CAUSE": cause, "QCODE": _q850(cause)}
    if partner is not None:
        if uuid in legs.owner:
            name = "hangup_owner_out" if state.outbound else "hangup_owner"
        else:
            name = "hangup_bleg"
        roles = {"K": uuid, "P": partner}
    else:
        name, roles = "hangup_ringing", {"K": uuid}
    take(server, roles.values())
    play = Play(server, moves()[name], roles, tokens)
    steps = play.move.phase("hangup")
    play.fire(steps[0])
    server.spawn(play.play_steps(steps[1:]))
    for leg in server.dialing.get_far(uuid):
        hang_up(server, leg, "ORIGINATOR_CANCEL")  # the far party still ringing: cancelled


def take(server: Switch, uuids) -> None:
    """These legs leave their recording (if it still plays): the commands drive them now.
    (The recording forgets its taken legs when it ends.)"""
    legs = server.legs
    for uuid in uuids:
        values = legs.calls.get(uuid)
        if values is not None and values in legs.recordings:
            legs.taken.add(uuid)


# --- uuid_transfer ----------------------------------------------------------------------------------


def uuid_transfer(server: Switch, arg: str) -> str:
    words = arg.split()
    if len(words) < 2 or len(words) > 5:
        return TRANSFER_USAGE
    uuid, rest = words[0], words[1:]
    legs = server.legs
    if uuid not in legs:
        return NO_CHANNEL
    flag = rest.pop(0).lower() if rest[0].startswith("-") else None
    if not rest:
        return TRANSFER_USAGE
    dest, dialplan, context = (rest + [None, None])[:3]
    target, other = uuid, legs.bridged(uuid)
    if flag == "-bleg" and other is not None:
        target, other = other, uuid
    elif flag == "-both":
        return "-ERR eslkit sim: uuid_transfer -both is not simulated\n"
    if legs.state(target).hung_up:
        return "-ERR\n"
    server.spawn(transfer(server, target, other, dest, context or "default"))
    return "+OK\n"


async def transfer(server: Switch, target: str, other: Optional[str], dest: str, context: str) -> None:
    """``target`` leaves its bridge (``other`` hangs up) and goes to ``dest`` through the
    dialplan, which rings that number's phone; it answers after the captured pause."""
    legs = server.legs
    await asyncio.sleep(0)  # after the reply and the API event, as on the real switch
    take(server, [target] + ([other] if other else []))
    state = legs.state(target)
    if state.outbound:
        _flip_caller_id(state)
    roles = {"B": target}
    if other is not None:
        roles["A"] = other
    move = moves()["transfer"]
    play = Play(server, move, roles, {"DEST": dest, "CONTEXT": context, "AGENT1": _ext(legs.state(other))
                                      if other else dest, "CALLER": state.get("Caller-Caller-ID-Number") or ""},
                make=("N",))
    await play.play("transfer")
    await _pause(server, move.phases["answer"] - _last_at(move, "transfer"))
    if play.roles["N"] in legs and play.roles["B"] in legs:
        await play.play("answer")
    recorded_end(server, target)


def _flip_caller_id(state: LegState) -> None:
    """switch_channel_sort_cid: an outbound leg sent to the dialplan shows its callee as
    its caller (the far party of an agent's call is the one transferred on)."""
    h = state.headers
    for what in ("Name", "Number"):
        callee = h.get(f"Caller-Callee-ID-{what}")
        if callee:
            state.variables[f"pre_transfer_caller_id_{what.lower()}"] = h.get(f"Caller-Caller-ID-{what}", "")
            h[f"Caller-Caller-ID-{what}"] = callee
            h[f"Caller-Callee-ID-{what}"] = ""


def _ext(state: Optional[LegState]) -> str:
    if state is None:
        return ""
    return state.get("variable_dialed_user") or state.get("Caller-Destination-Number") or ""


def recorded_end(server: Switch, uuid: str) -> None:
    """A leg taken out of a recording (a transferred caller) still hangs up when its
    recording had it hang up."""
    end = server.recorded_hangup(uuid)
    if end is None:
        return
    delay, cause = end

    async def later() -> None:
        await _pause(server, delay)
        state = server.legs.state(uuid) if uuid in server.legs else None
        if state is not None and not state.hung_up:
            hang_up(server, uuid, cause)

    server.spawn(later())


# --- uuid_phone_event ----------------------------------------------------------------------------------


def uuid_phone_event(server: Switch, arg: str) -> str:
    words = arg.split()
    if not words:
        return PHONE_EVENT_USAGE
    uuid = words[0]
    if uuid not in server.legs:
        return FAILED
    event = words[1].lower() if len(words) > 1 else ""
    dialing = server.dialing.get(uuid)
    if event == "talk" and dialing is not None:
        dialing.answer_now()  # a simulated phone takes the talk NOTIFY and answers
    return "+OK Success\n"


# --- originate ------------------------------------------------------------------------------------------

ORIGINATE_RE = re.compile(r"^(?:\{(?P<vars>[^}]*)\})?(?P<url>\S+)$")
SPLIT_RE = re.compile(r"(?:\{[^}]*\}|'[^']*'|[^\s'{])+")
ANSWER_AFTER = "answer"  # the phase that starts when the agent's phone answers


class Originate:
    """One originate: the agent's phone rings, answers (after the captured 3 s or on
    talk), then the far party rings and answers."""

    def __init__(self, server: Switch, ext: str, endpoint: Optional[str], variables: dict[str, str]):
        self.server = server
        self.ext = ext
        self.endpoint = endpoint
        number = endpoint.split("/")[-1].split("@")[0] if endpoint else ""
        roles = {}
        tokens = {
            "AGENT1": ext, "CALLER": number, "ENDPOINT": endpoint or "",
            "CIDNUM": variables.get("origination_caller_id_number", "0000000000"),
            "CIDNAME": variables.get("origination_caller_id_name", "FreeSWITCH"),
        }
        self.play = Play(server, moves()["originate"], roles, tokens, make=("A", "F") if endpoint else ("A",))
        self.answered = asyncio.Event()
        self.job: asyncio.Future = asyncio.get_running_loop().create_future()
        self.far_ringing = False
        self.far_answered = False
        self.cause: Optional[str] = None

    @property
    def uuid(self) -> str:
        return self.play.roles["A"]

    def answer_now(self) -> None:
        self.answered.set()

    def cancel(self, cause: str) -> None:
        self.cause = cause
        self.play.stopped = True
        if not self.job.done():
            self.job.set_result(f"-ERR {cause}\n")
        self.answered.set()

    async def run(self) -> None:
        move = self.play.move
        dialing = self.server.dialing
        dialing.add(self)
        try:
            await self.play.play("ring")
            ring_for = move.phases["answer"] - _last_at(move, "ring")
            speed = self.server.speed
            if speed is not None:
                try:
                    await asyncio.wait_for(self.answered.wait(), ring_for / speed)
                except asyncio.TimeoutError:
                    pass
            if self.cause is not None:
                return
            answer = move.phase("answer")
            split = next(i for i, s in enumerate(answer) if s.role == "F") if self.endpoint else len(answer)
            await self.play.play_steps(answer[:split], on_mark=self._job_done)
            if not self.endpoint or self.cause is not None:
                return
            self.far_ringing = True
            await self.play.play_steps(answer[split:])
            await _pause(self.server, move.phases["far_answer"] - move.phases["answer"] - _last_at(move, "answer"))
            if self.cause is not None or self.play.roles["F"] not in self.server.legs:
                return
            self.far_answered = True
            await self.play.play("far_answer")
        finally:
            if not self.job.done():
                self.job.set_result(f"-ERR {self.cause or 'NORMAL_CLEARING'}\n")
            dialing.remove(self)

    async def _job_done(self, mark: str) -> None:
        if mark == "job" and not self.job.done():
            self.job.set_result(f"+OK {self.uuid}\n")
            await asyncio.sleep(0)  # the API and BACKGROUND_JOB events go out here, as captured


def parse_originate(arg: str) -> Optional[tuple[str, Optional[str], dict[str, str]]]:
    """``{vars}user/EXT[@domain] &bridge(ENDPOINT)|NUMBER [dialplan] [context] …`` →
    (EXT, the far party's endpoint or None, the variables); None if not that shape."""
    words = SPLIT_RE.findall(arg.strip())
    if len(words) < 2 or len(words) > 7:
        return None
    m = ORIGINATE_RE.match(words[0])
    if not m or not m.group("url").lower().startswith("user/"):
        return None
    ext = m.group("url")[5:].split("@")[0]
    variables = {}
    for item in (m.group("vars") or "").split(","):
        key, sep, value = item.partition("=")
        if sep:
            variables[key.strip()] = value.strip().strip("'")
    exten = words[1]
    if exten.startswith("&"):
        app = re.match(r"&(\w+)(?:\((.*)\))?$", exten)
        if not app:
            return None
        endpoint = app.group(2) if app.group(1) == "bridge" and app.group(2) else None
    else:
        endpoint = f"sofia/external/{exten}@127.0.0.1:5090"  # the simulator's dialplan
    return ext, endpoint, variables


def originate(server: Switch, arg: str) -> str:
    """``api originate``: the call starts; the reply comes at once (see the module doc)."""
    parsed = parse_originate(arg)
    if parsed is None:
        return ORIGINATE_USAGE if len(arg.split()) < 2 else "-ERR CHAN_NOT_IMPLEMENTED\n"
    call = Originate(server, *parsed)
    server.spawn(call.run())
    return f"+OK {call.uuid}\n"


async def originate_job(server: Switch, arg: str) -> str:
    """``bgapi originate``: the job's body once the agent's phone answered (or the call failed)."""
    parsed = parse_originate(arg)
    if parsed is None:
        return ORIGINATE_USAGE if len(arg.split()) < 2 else "-ERR CHAN_NOT_IMPLEMENTED\n"
    call = Originate(server, *parsed)
    server.spawn(call.run())
    return await call.job


# --- timing -------------------------------------------------------------------------------------------


def _last_at(move, phase: str) -> float:
    steps = move.phase(phase)
    return steps[-1].at if steps else 0.0


async def _pause(server: Switch, seconds: float) -> None:
    if server.speed is not None and seconds > 0:
        await asyncio.sleep(seconds / server.speed)
    else:
        await asyncio.sleep(0)
