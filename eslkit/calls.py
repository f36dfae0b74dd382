"""The call tracker: FreeSWITCH channel events in, agent-leg states out.  Pure.

A call to an agent is (at least) two channels: the caller's A leg, which
arrives on the switch, and one B leg per phone the switch rings (a queue that
rings 1001 and 1002 at once makes two).  The tracker follows each B leg that
rings a watched extension through ``ringing`` → ``answered`` → ``ended`` and
says, when it ends, what happened::

    answered            the agent talked
    answered_elsewhere  another leg took the call (LOSE_RACE, or the caller
                        bridged to / another leg of the same call answered)
    missed              the caller gave up or nobody answered
                        (ORIGINATOR_CANCEL, NO_ANSWER, timeouts)
    busy                USER_BUSY
    failed              anything else (and an unanswered leg whose end was never seen)

    tracker = CallTracker(exts={"1001"})
    for event in events:
        for leg in tracker.feed(event):      # LegView snapshots, one per change
            print(popup_record(leg))

Pitfalls of real switches it copes with (all visible in the 1.10.12 captures):
CHANNEL_ORIGINATE fires only on B legs; the caller's CHANNEL_ANSWER can name
the *losing* agent in Other-Leg-Unique-ID and variable_dialed_user (so A legs
are never matched to an agent); CHANNEL_BRIDGE arrives on the A leg; a B leg's
Channel-Call-UUID changes to its own uuid by HANGUP_COMPLETE (so a leg's call
is decided once, from the originator, and kept).
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Optional

from eslkit.event import Event

__all__ = [
    "CallTracker", "LegView", "popup_record", "RECORD_KEYS", "POPUP_EVENTS",
    "EXT_HEADERS", "outcome_for",
]

# What `eslkit popup` subscribes to, server-side: nothing else is needed.
POPUP_EVENTS = [
    "CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_HANGUP_COMPLETE",
    "CUSTOM", "callcenter::info", "fifo::info",
]

# Where an agent leg's extension is found, best first (`--match` replaces it).
EXT_HEADERS = (
    "variable_dialed_user",
    "Caller-Destination-Number",
    "Caller-Callee-ID-Number",
    "Channel-Presence-ID",
    "Channel-Name",
)

# The keys of one `--format json` object, in order (also what `relay` publishes).
RECORD_KEYS = (
    "time", "ext", "state", "outcome", "caller_number", "caller_name", "dialed", "queue",
    "call_uuid", "leg_uuid", "hangup_cause", "ring_seconds", "talk_seconds", "contact",
)

_MISSED = {
    "ORIGINATOR_CANCEL", "NO_ANSWER", "NO_USER_RESPONSE", "ALLOTTED_TIMEOUT",
    "PROGRESS_TIMEOUT", "RECOVERY_ON_TIMER_EXPIRE",
}
_END_EVENTS = {"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"}
# The channel events that can tell the tracker something.  The rest (CHANNEL_STATE,
# CHANNEL_CALLSTATE, CHANNEL_EXECUTE...) are skipped before any header is read:
# under `event ALL` they are most of the traffic.
_CHANNEL_EVENTS = _END_EVENTS | {
    "CHANNEL_CREATE", "CHANNEL_OUTGOING", "CHANNEL_ORIGINATE", "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CALL_UPDATE",
}
# No caller name or number is worth more than this; a hostile 10 kB name is cut.
MAX_VALUE = 1024


def outcome_for(cause: Optional[str], answered: bool, elsewhere: bool) -> str:
    """How an agent leg ended, from its hangup cause and what the call did."""
    if answered and not (elsewhere and cause == "LOSE_RACE"):
        return "answered"
    if cause == "LOSE_RACE" or elsewhere:
        return "answered_elsewhere"
    if cause in _MISSED:
        return "missed"
    if cause == "USER_BUSY":
        return "busy"
    return "failed"


@dataclass(frozen=True)
class LegView:
    """An agent leg at one moment: what the popup shows and scripts read."""

    ext: str
    state: str  # ringing | answered | ended
    leg_uuid: str
    call_uuid: str
    time: Optional[float] = None  # when this state began (switch clock, epoch seconds)
    outcome: Optional[str] = None
    caller_number: Optional[str] = None
    caller_name: Optional[str] = None
    dialed: Optional[str] = None
    queue: Optional[str] = None
    hangup_cause: Optional[str] = None
    created: Optional[float] = None
    answered_at: Optional[float] = None
    ended_at: Optional[float] = None
    answered_by: Optional[str] = None  # the extension that took the call instead
    wait_seconds: Optional[float] = None  # time the caller spent in a queue
    contact: Optional[dict] = None

    @property
    def ring_seconds(self) -> Optional[float]:
        stop = self.answered_at or self.ended_at
        if self.created is None or stop is None:
            return None
        return round(max(stop - self.created, 0.0), 1)

    @property
    def talk_seconds(self) -> Optional[float]:
        if self.answered_at is None or self.ended_at is None:
            return None
        return round(max(self.ended_at - self.answered_at, 0.0), 1)


def popup_record(leg: LegView) -> dict[str, Any]:
    """The JSON object `eslkit popup --format json` writes (and `relay` publishes)."""
    when = None
    if leg.time:  # 0 means the events carried no Event-Date-Timestamp
        when = datetime.fromtimestamp(leg.time, timezone.utc).isoformat(timespec="milliseconds")
        when = when.replace("+00:00", "Z")
    return {
        "time": when,
        "ext": leg.ext,
        "state": leg.state,
        "outcome": leg.outcome,
        "caller_number": leg.caller_number,
        "caller_name": leg.caller_name,
        "dialed": leg.dialed,
        "queue": leg.queue,
        "call_uuid": leg.call_uuid,
        "leg_uuid": leg.leg_uuid,
        "hangup_cause": leg.hangup_cause,
        "ring_seconds": leg.ring_seconds,
        "talk_seconds": leg.talk_seconds,
        "contact": leg.contact,
    }


class _Channel:
    """What the tracker remembers of one channel (any leg)."""

    __slots__ = (
        "uuid", "parent", "outbound", "loopback", "loopback_peer", "ext", "ext_rank",
        "caller_number", "caller_name", "destination", "origin_dest", "queue", "cc_name",
        "cc_number", "joined", "left", "created", "answered_at", "bridged_to", "ended_at",
        "cause", "state", "emitted", "last_seen", "contact_done", "contact", "call_key",
    )

    def __init__(self, uuid: str):
        self.uuid = uuid
        self.parent: Optional[str] = None  # the channel that originated this one
        self.outbound = False
        self.loopback = False
        self.loopback_peer: Optional[str] = None
        self.ext: Optional[str] = None
        self.ext_rank = len(EXT_HEADERS)
        self.caller_number: Optional[str] = None
        self.caller_name: Optional[str] = None
        self.destination: Optional[str] = None
        self.origin_dest: Optional[str] = None  # Other-Leg-Destination-Number of the originator
        self.queue: Optional[str] = None
        self.cc_name: Optional[str] = None
        self.cc_number: Optional[str] = None
        self.joined: Optional[float] = None
        self.left: Optional[float] = None
        self.created: Optional[float] = None
        self.answered_at: Optional[float] = None
        self.bridged_to: Optional[str] = None
        self.ended_at: Optional[float] = None
        self.cause: Optional[str] = None
        self.state: Optional[str] = None  # agent legs only: ringing | answered | ended
        self.emitted = False  # a state change was reported for this leg
        self.last_seen = 0.0
        self.contact_done = False
        self.contact: Optional[dict] = None
        self.call_key: Optional[str] = None  # where this agent leg is in CallTracker._calls


def live_uuids(body: Optional[str]) -> set[str]:
    """The channel uuids in the body of `api show channels as json` (what resync() takes).
    Raises ValueError when the body is not that JSON."""
    data = json.loads(body or "{}")
    if not isinstance(data, dict):
        raise ValueError("not the JSON of show channels")
    rows = data.get("rows") or []
    if not isinstance(rows, list):
        raise ValueError("not the JSON of show channels")
    return {row["uuid"] for row in rows if isinstance(row, dict) and isinstance(row.get("uuid"), str)}


class CallTracker:
    """Follows agent legs for the watched extensions (all agent legs if `exts` is None).

    `match` names the one header that holds the extension (default: EXT_HEADERS
    in order).  `lookup(number)` returns a contact record or None; it is called
    once per leg.  Memory is bounded: an ended channel is forgotten `linger`
    seconds after its end, a leg still ringing after `ring_timeout` seconds or
    any channel silent for `idle_timeout` seconds expires (its end event was
    lost), and at most `max_channels` channels are remembered.
    """

    def __init__(
        self,
        exts: Optional[Iterable[str]] = None,
        *,
        match: Optional[str] = None,
        lookup: Optional[Callable[[str], Optional[dict]]] = None,
        history: int = 10,
        linger: float = 60.0,
        ring_timeout: float = 300.0,
        idle_timeout: float = 4 * 3600.0,
        max_channels: int = 10_000,
    ):
        self.exts = None if exts is None else set(exts)
        self.match = match
        self.lookup = lookup
        self.linger = linger
        self.ring_timeout = ring_timeout
        self.idle_timeout = idle_timeout
        self.max_channels = max_channels
        self.now = 0.0  # the latest switch time seen
        self._channels: "OrderedDict[str, _Channel]" = OrderedDict()
        self._history_len = history
        self._history: dict[str, deque] = {}
        self._forgotten: deque = deque(maxlen=1000)
        self._calls: dict[str, set] = {}  # call uuid -> uuids of its agent legs

    # --- reading state ---------------------------------------------------------------

    def active(self, ext: Optional[str] = None) -> list[LegView]:
        """Agent legs that have not ended, oldest first."""
        return [
            self._view(ch) for ch in self._channels.values()
            if ch.emitted and ch.state != "ended" and (ext is None or ch.ext == ext)
        ]

    def recent(self, ext: Optional[str] = None) -> list[LegView]:
        """Ended legs, newest first (at most `history` per extension)."""
        if ext is not None:
            return list(reversed(self._history.get(ext, ())))
        out = [leg for h in self._history.values() for leg in h]
        return sorted(out, key=lambda leg: leg.ended_at or 0.0, reverse=True)

    def __len__(self) -> int:
        return len(self._channels)

    def ext_for(self, event: Event) -> Optional[str]:
        """The agent extension an (already fed) event belongs to: an agent leg's own,
        or for the caller's leg the agent it is bridged to; None otherwise."""
        ch = self._channels.get(event.unique_id or "")
        if ch is None:
            return None
        for leg in (ch, self._channels.get(ch.bridged_to) if ch.bridged_to else None):
            if leg is not None and leg.outbound and not leg.loopback and leg.ext:
                return leg.ext
        return None

    # --- feeding -----------------------------------------------------------------------

    def feed(self, event: Event) -> list[LegView]:
        """Take one event; return the agent-leg state changes it caused."""
        name = event.event_name
        if name not in _CHANNEL_EVENTS and name != "CUSTOM":
            return []
        ts = event.timestamp
        if ts is not None and ts > self.now:
            self.now = ts
        when = ts if ts is not None else self.now
        if name == "CUSTOM":
            self._queue_event(event, when)
            return []
        uuid = event.unique_id
        if not uuid:
            return []
        ch = self._channels.get(uuid)
        if ch is None:
            # A late event of a channel already forgotten must not bring it back.
            if uuid in self._forgotten or (name in _END_EVENTS and name != "CHANNEL_HANGUP_COMPLETE"):
                return []
            ch = self._channel(uuid)
        ch.last_seen = when
        self._learn(ch, event, when)
        changes: list[LegView] = []

        touched = [ch]
        if name == "CHANNEL_BRIDGE":
            touched += self._bridge(event, when)
        if name == "CHANNEL_ANSWER" and ch.answered_at is None:
            ch.answered_at = _usec(event.get("Caller-Channel-Answered-Time")) or when
        if name in _END_EVENTS and ch.ended_at is None:
            ch.ended_at = _usec(event.get("Caller-Channel-Hangup-Time")) or when
            ch.cause = _cap(event.hangup_cause)

        for leg in touched:
            if leg.outbound and not leg.loopback:
                self._index(leg)
                if leg.ext and self._watched(leg.ext):
                    self._advance(leg, changes, when)
        self._trim()
        return changes

    def expire(self, now: Optional[float] = None) -> list[LegView]:
        """Forget what is old; end the legs whose end was lost (outcome `answered` if
        the agent had answered, else `failed`; no cause)."""
        now = self.now if now is None else now
        changes: list[LegView] = []
        for uuid, ch in list(self._channels.items()):
            if ch.ended_at is not None:
                if now - ch.ended_at > self.linger:
                    self._forget(uuid)
                continue
            ringing_too_long = ch.state == "ringing" and now - (ch.created or ch.last_seen) > self.ring_timeout
            if ringing_too_long or now - ch.last_seen > self.idle_timeout:
                changes += self._end_lost(ch, now)
                self._forget(uuid)
        return changes

    def resync(self, live: Iterable[str], now: Optional[float] = None) -> list[LegView]:
        """After a reconnect: end what the switch no longer has up.

        `live` holds the uuids of `show channels as json`.  Events lost while
        the link was down are gone for good, so an agent leg that vanished ends
        with outcome `answered` if the agent had answered, else `failed`, and no
        cause (the real one was never seen).
        """
        now = self.now if now is None else now
        up = set(live)
        changes: list[LegView] = []
        for ch in list(self._channels.values()):
            if ch.uuid in up or ch.ended_at is not None:
                continue
            changes += self._end_lost(ch, now)
        return changes

    def _end_lost(self, ch: _Channel, now: float) -> list[LegView]:
        """End a leg whose end was never seen: `answered` if the agent had answered,
        else `failed`, no cause; a change only for a leg the popup has shown."""
        ch.ended_at = now
        if not ch.emitted or ch.state == "ended":
            return []
        ch.state = "ended"
        view = self._view(ch, time=now, outcome="answered" if ch.answered_at is not None else "failed")
        self._remember(view)
        return [view]

    # --- internals ---------------------------------------------------------------------

    def _watched(self, ext: str) -> bool:
        return self.exts is None or ext in self.exts

    def _channel(self, uuid: str) -> _Channel:
        ch = self._channels.get(uuid)
        if ch is None:
            ch = self._channels[uuid] = _Channel(uuid)
        return ch

    def _learn(self, ch: _Channel, event: Event, when: float) -> None:
        """Copy what this event says about its channel."""
        direction = event.direction
        if direction:
            ch.outbound = direction == "outbound"
        chan_name = event.channel_name or ""
        if chan_name.startswith("loopback/"):
            ch.loopback = True
            ch.loopback_peer = event.get("variable_other_loopback_leg_uuid") or ch.loopback_peer
        if ch.created is None:
            ch.created = _usec(event.get("Caller-Channel-Created-Time")) or when
        if ch.state == "ended":
            return  # an agent leg's last words (e.g. a changed Channel-Call-UUID) change nothing
        if ch.parent is None:
            ch.parent = _originator(event)
            if ch.parent and event.get("Other-Type") == "originator":
                ch.origin_dest = _cap(event.get("Other-Leg-Destination-Number"))
        ch.destination = _cap(event.destination) or ch.destination
        ch.caller_number = _cap(event.caller_number) or ch.caller_number
        ch.caller_name = _cap(event.caller_name) or ch.caller_name
        ch.queue = _cap(event.get("variable_cc_queue") or event.get("variable_fifo_name")) or ch.queue
        if ch.outbound and not ch.emitted:
            self._learn_ext(ch, event)

    def _learn_ext(self, ch: _Channel, event: Event) -> None:
        headers = (self.match,) if self.match else EXT_HEADERS
        for rank, header in enumerate(headers):
            if rank >= ch.ext_rank:
                return
            value = event.get(header)
            if value:
                ext = _user_part(value) if header in ("Channel-Presence-ID", "Channel-Name") or "@" in value else value
                if ext:
                    ch.ext, ch.ext_rank = _cap(ext), rank
                    return

    def _bridge(self, event: Event, when: float) -> list[_Channel]:
        """Both legs of a bridge know each other; returns the legs other than the event's own."""
        a = event.get("Bridge-A-Unique-ID") or event.unique_id
        b = event.get("Bridge-B-Unique-ID") or event.other_leg_uuid
        if not a or not b or a == b:
            return []
        self._channel(a), self._channel(b)
        for this, other in ((a, b), (b, a)):
            ch = self._channel(this)
            ch.bridged_to = other
            # A leg bridged to a channel it did not come from (mod_fifo, mod_callcenter
            # agents originated without a caller) now belongs to that call.
            if ch.outbound and ch.parent is None and not self._channels[other].outbound:
                ch.parent = other
            if ch.answered_at is None and ch.outbound:
                ch.answered_at = _usec(event.get("Caller-Channel-Bridged-Time")) or when
        return [self._channels[u] for u in (a, b) if u != event.unique_id]

    def _queue_event(self, event: Event, when: float) -> None:
        """mod_callcenter (callcenter::info) and mod_fifo (fifo::info) name the queue."""
        sub = event.subclass
        if sub == "callcenter::info":
            member = event.get("CC-Member-Session-UUID") or event.unique_id
            if not member:
                return
            ch = self._channel(member)
            ch.last_seen = when
            ch.queue = _cap(event.get("CC-Queue")) or ch.queue
            ch.cc_name = _cap(event.get("CC-Member-CID-Name")) or ch.cc_name
            ch.cc_number = _cap(event.get("CC-Member-CID-Number")) or ch.cc_number
            joined = _num(event.get("CC-Member-Joined-Time"))
            if joined:
                ch.joined = joined
            agent_leg = event.get("CC-Agent-UUID")
            if agent_leg and agent_leg in self._channels:
                self._channels[agent_leg].parent = self._channels[agent_leg].parent or member
            if event.get("CC-Action") in ("bridge-agent-start", "member-queue-end"):
                ch.left = _num(event.get("CC-Agent-Answered-Time") or event.get("CC-Member-Leaving-Time")) or when
        elif sub == "fifo::info":
            uuid = event.unique_id
            fifo = event.get("FIFO-Name")
            if uuid and fifo:
                ch = self._channel(uuid)
                ch.last_seen = when
                ch.queue = _cap(fifo)

    def _chain(self, ch: _Channel) -> list[_Channel]:
        """This channel, its originator, theirs... up to the caller's channel,
        crossing loopback pairs (loopback/x-b's peer is loopback/x-a)."""
        chain = [ch]
        seen = {ch.uuid}
        cur = ch
        while len(chain) < 8:
            nxt = cur.parent or (cur.loopback_peer if cur.loopback else None)
            found = self._channels.get(nxt) if nxt and nxt not in seen else None
            if found is None:
                break
            seen.add(nxt)
            chain.append(found)
            cur = found
        return chain

    def _call_uuid(self, ch: _Channel) -> str:
        """The caller's channel uuid (Channel-Call-UUID as it was when the call began)."""
        root = self._chain(ch)[-1]
        return root.parent or root.uuid

    def _index(self, leg: _Channel) -> None:
        """Keep `_calls` (the agent legs of each call) current: a leg's call can become
        known later (a bridge, a queue event), so it is looked up again each time."""
        key = self._call_uuid(leg)
        if key == leg.call_key:
            return
        self._unindex(leg)
        leg.call_key = key
        self._calls.setdefault(key, set()).add(leg.uuid)

    def _unindex(self, leg: _Channel) -> None:
        legs = self._calls.get(leg.call_key or "")
        if legs is not None:
            legs.discard(leg.uuid)
            if not legs:
                del self._calls[leg.call_key]
        leg.call_key = None

    def _siblings(self, ch: _Channel) -> list[_Channel]:
        """The other agent legs of this leg's call."""
        self._index(ch)
        found = (self._channels.get(u) for u in self._calls.get(ch.call_key or "", ()))
        return [o for o in found if o is not None and o is not ch]

    def _advance(self, ch: _Channel, changes: list, when: float) -> None:
        if ch.state == "ended":
            return
        if ch.ended_at is not None:
            elsewhere, by = self._elsewhere(ch)
            ch.state = "ended"
            view = self._view(
                ch, time=ch.ended_at, outcome=outcome_for(ch.cause, ch.answered_at is not None, elsewhere),
                answered_by=by,
            )
            ch.emitted = True
            self._remember(view)
            changes.append(view)
            return
        if ch.answered_at is not None and ch.state != "answered":
            ch.state = "answered"
            ch.emitted = True
            changes.append(self._view(ch, time=ch.answered_at))
        elif ch.state is None:
            ch.state = "ringing"
            ch.emitted = True
            changes.append(self._view(ch, time=when))

    def _elsewhere(self, ch: _Channel) -> tuple[bool, Optional[str]]:
        """Did another leg take this call?  And which extension was it?"""
        root = self._chain(ch)[-1]
        winner: Optional[_Channel] = None
        if root is not ch and root.bridged_to and root.bridged_to != ch.uuid:
            winner = self._channels.get(root.bridged_to)
            if winner is None:
                return True, None
        if winner is None:
            for o in self._siblings(ch):
                if o.answered_at is not None:
                    winner = o
                    break
        if winner is not None and ch.bridged_to != root.uuid:
            return True, winner.ext
        return ch.cause == "LOSE_RACE", None

    def _view(self, ch: _Channel, **changes: Any) -> LegView:
        chain = self._chain(ch)
        root = chain[-1]
        caller_number = _first(c.caller_number for c in chain[:1]) or _first(c.cc_number for c in chain) or root.caller_number
        caller_name = _first(c.caller_name for c in chain[:1]) or _first(c.cc_name for c in chain) or root.caller_name
        dialed = root.destination if root is not ch else None
        wait = None
        if root.joined and root.left:
            wait = round(max(root.left - root.joined, 0.0), 1)
        if not ch.contact_done and caller_number and self.lookup is not None:
            ch.contact_done = True
            ch.contact = self.lookup(caller_number)
        view = LegView(
            ext=ch.ext or "",
            state=ch.state or "ringing",
            leg_uuid=ch.uuid,
            call_uuid=self._call_uuid(ch),
            caller_number=caller_number,
            caller_name=caller_name,
            dialed=dialed or ch.origin_dest,
            queue=_first(c.queue for c in chain),
            hangup_cause=ch.cause,
            created=ch.created,
            answered_at=ch.answered_at,
            ended_at=ch.ended_at if ch.state == "ended" else None,
            wait_seconds=wait,
            contact=ch.contact,
        )
        return replace(view, **changes) if changes else view

    def _remember(self, view: LegView) -> None:
        h = self._history.get(view.ext)
        if h is None:
            h = self._history[view.ext] = deque(maxlen=self._history_len)
        h.append(view)

    def _forget(self, uuid: str) -> None:
        self._unindex(self._channels.pop(uuid))
        self._forgotten.append(uuid)

    def _trim(self) -> None:
        while len(self._channels) > self.max_channels:
            uuid, ch = self._channels.popitem(last=False)
            self._unindex(ch)
            self._forgotten.append(uuid)


def _first(values: Iterable[Optional[str]]) -> Optional[str]:
    for value in values:
        if value:
            return value
    return None


def _originator(event: Event) -> Optional[str]:
    """The channel that created this one, when the event says so."""
    uuid = event.unique_id
    for header in ("variable_cc_member_session_uuid", "variable_originating_leg_uuid", "variable_originator"):
        value = event.get(header)
        if value and value != uuid:
            return value
    if event.get("Other-Type") == "originator":
        value = event.other_leg_uuid
        if value and value != uuid:
            return value
    if event.direction == "outbound":
        value = event.call_uuid
        if value and value != uuid:
            return value
    return None


def _user_part(value: str) -> str:
    """`1001` from `sofia/internal/1001@127.0.0.1:5071`, `1001@domain` or `sip:1001@host`."""
    user = value.split("@", 1)[0].rsplit("/", 1)[-1]
    if user.startswith("sip:") or user.startswith("sips:"):
        user = user.split(":", 1)[1]
    return user


def _usec(value: Optional[str]) -> Optional[float]:
    """A `Caller-Channel-*-Time` header (microseconds; 0 means not yet) in seconds."""
    try:
        us = int(value) if value else 0
    except ValueError:
        return None
    return us / 1_000_000 if us > 0 else None


def _num(value: Optional[str]) -> Optional[float]:
    """A mod_callcenter time (epoch seconds)."""
    try:
        n = float(value) if value else 0.0
    except ValueError:
        return None
    return n if n > 0 else None


def _cap(value: Optional[str]) -> Optional[str]:
    if value and len(value) > MAX_VALUE:
        return value[:MAX_VALUE]
    return value or None
