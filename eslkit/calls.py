"""The call tracker: FreeSWITCH channel events in, agent-leg states out.  Pure.

A call to an agent is (at least) two channels: the caller's A leg, which
arrives on the switch, and one B leg per phone the switch rings (a queue that
rings 1001 and 1002 at once makes two).  The tracker follows each leg of a
watched extension through ``ringing`` → ``answered`` → ``ended`` and says, when
it ends, what happened::

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

A record is also emitted, in the same state, when what the agent sees changes
while the call is up: the call goes on or off hold, the far party of an
outgoing call becomes known, or an attended transfer hands the agent a caller.

Which leg is an agent's, and who the agent talks to, is decided on the agent's
own leg, never on the caller's (all visible in the 1.10.12 captures):

- agent legs are the legs the switch places to a directory user
  (``variable_dialed_user`` / ``Channel-Presence-ID``: a phone registered with
  another Contact user still has them), or, on an agent's own phone dialling
  out, the authenticated ``variable_user_name``; a ``loopback/`` leg is only
  the agent's when no phone leg is behind it;
- the caller the agent sees is the caller ID its leg rang with: mod_fifo and
  bridges flip ``Caller-Caller-ID-*`` to the agent itself after the answer;
  ``Caller-Orig-Caller-ID-*`` keeps the caller for a leg first seen mid-call;
- a leg whose caller ID is the agent's own number is the agent's outgoing call
  (click-to-dial); the far party is the leg it originates, or its callee;
- the caller's CHANNEL_ANSWER can name the *losing* agent in Other-Leg-Unique-ID
  and variable_dialed_user; CHANNEL_BRIDGE arrives on either leg; a B leg's
  Channel-Call-UUID changes to its own uuid by HANGUP_COMPLETE (so a leg's call
  is decided once, from its originator, and kept);
- the times are the ones the events carry (``Caller-Channel-Created-Time``,
  ``-Answered-Time``, ``-Hangup-Time``), not when they arrived: a call already
  up when the tracker starts still ends with its true outcome and durations.
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, NamedTuple, Optional, Union

from eslkit.event import Event

__all__ = [
    "CallTracker", "Known", "LegView", "popup_record", "RECORD_KEYS", "POPUP_EVENTS",
    "EXT_HEADERS", "outcome_for", "live_channels", "live_uuids", "leg_from_record",
]

# What `eslkit popup` subscribes to, server-side: nothing else is needed.
POPUP_EVENTS = [
    "CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
    "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_HOLD", "CHANNEL_UNHOLD", "CHANNEL_HANGUP_COMPLETE",
    "CUSTOM", "callcenter::info", "fifo::info",
]

# Where an agent leg's extension is found, best first (`--match` replaces it).  The
# directory user comes before the dialled number: a phone registered with another
# Contact user (sip:97825064@…) is dialled as 97825064 but is still user 1002.
EXT_HEADERS = (
    "variable_dialed_user",
    "Channel-Presence-ID",
    "Caller-Destination-Number",
    "Caller-Callee-ID-Number",
    "Channel-Name",
)

# The keys of one `--format json` object, in order (also what `relay` publishes).
RECORD_KEYS = (
    "time", "ext", "state", "outcome", "caller_number", "caller_name", "dialed", "queue",
    "call_uuid", "leg_uuid", "hangup_cause", "ring_seconds", "talk_seconds", "contact",
    "direction", "other_number", "other_name", "on_hold", "transferred_from",
)

_MISSED = {
    "ORIGINATOR_CANCEL", "NO_ANSWER", "NO_USER_RESPONSE", "ALLOTTED_TIMEOUT",
    "PROGRESS_TIMEOUT", "RECOVERY_ON_TIMER_EXPIRE",
}
_END_EVENTS = {"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY"}
_HOLD_EVENTS = {"CHANNEL_HOLD": True, "CHANNEL_UNHOLD": False}
# The channel events that can tell the tracker something.  The rest (CHANNEL_STATE,
# CHANNEL_CALLSTATE, CHANNEL_EXECUTE...) are skipped before any header is read:
# under `event ALL` they are most of the traffic.
_CHANNEL_EVENTS = _END_EVENTS | set(_HOLD_EVENTS) | {
    "CHANNEL_CREATE", "CHANNEL_OUTGOING", "CHANNEL_ORIGINATE", "CHANNEL_PROGRESS",
    "CHANNEL_PROGRESS_MEDIA", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CALL_UPDATE",
}
# CHANNEL_OUTGOING comes before a leg's CHANNEL_CREATE, without the user it rings
# or the call it belongs to: a leg is shown from its next event on.
_TOO_EARLY = "CHANNEL_OUTGOING"
# The events that can name a leg's originator (besides its first ones).
_MAY_ORIGINATE = {"CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_OUTGOING"}
# FreeSWITCH's callee name when nobody set one: not a name worth showing.
_NO_NAME = "Outbound Call"
# `show channels` call states of a channel that is up.  RING_WAIT: an answered leg whose
# bridge rings someone (an agent's click-to-dial leg while the far party rings).
_UP_STATES = {"ACTIVE": False, "HELD": True, "UNHELD": False, "RING_WAIT": False}
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
    direction: str = "incoming"  # from the agent's point of view: incoming | outgoing
    other_number: Optional[str] = None  # the party the agent talks to
    other_name: Optional[str] = None
    on_hold: bool = False
    transferred_from: Optional[str] = None  # the extension (or number) a transferred call came from
    bridged: bool = False  # talking to another leg (not in the records: what phone control checks)

    @property
    def ring_seconds(self) -> Optional[float]:
        stop = self.answered_at or self.ended_at
        if self.created is None or stop is None:
            return None
        return _seconds(stop - self.created)

    @property
    def talk_seconds(self) -> Optional[float]:
        if self.answered_at is None or self.ended_at is None:
            return None
        return _seconds(self.ended_at - self.answered_at)


def _seconds(span: float) -> float:
    """A duration as the records give it: a float, to 0.1 s, never negative."""
    return float(round(max(span, 0.0), 1))


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
        "direction": leg.direction,
        "other_number": leg.other_number,
        "other_name": leg.other_name,
        "on_hold": leg.on_hold,
        "transferred_from": leg.transferred_from,
    }


class _Channel:
    """What the tracker remembers of one channel (any leg)."""

    __slots__ = (
        "uuid", "known", "exact", "parent", "outbound", "loopback", "loopback_peer", "phone_behind", "ext", "ext_rank", "user",
        "dials_out", "caller_number", "caller_name", "callee_number", "callee_name", "destination", "origin_dest",
        "queue", "cc_name", "cc_number", "joined", "left", "created", "answered_at", "up", "held", "bridged_to",
        "ended_at", "cause", "state", "emitted", "shown", "ready", "direction", "other_number", "other_name",
        "far_number", "transfer", "transferred_from", "dialed", "last_seen", "contact_done", "contact", "call_key",
        "held_told",
    )

    def __init__(self, uuid: str):
        self.uuid = uuid
        self.known = False  # its direction (and kind) read from an event
        self.exact = False  # its creation time is the one the switch wrote
        self.parent: Optional[str] = None  # the channel that originated this one
        self.outbound = False
        self.loopback = False
        self.loopback_peer: Optional[str] = None
        self.phone_behind = False  # a loopback leg whose call goes on to a phone's leg
        self.ext: Optional[str] = None
        self.ext_rank = len(EXT_HEADERS)
        self.user = False  # rings a directory user (dialed_user / presence id)
        self.dials_out = False  # an agent's own phone, dialling out (an authenticated inbound leg)
        self.caller_number: Optional[str] = None  # as the leg rang (see _learn)
        self.caller_name: Optional[str] = None
        self.callee_number: Optional[str] = None
        self.callee_name: Optional[str] = None
        self.destination: Optional[str] = None  # the first one: a transfer changes it later
        self.origin_dest: Optional[str] = None  # Other-Leg-Destination-Number of the originator
        self.queue: Optional[str] = None
        self.cc_name: Optional[str] = None
        self.cc_number: Optional[str] = None
        self.joined: Optional[float] = None
        self.left: Optional[float] = None
        self.created: Optional[float] = None
        self.answered_at: Optional[float] = None
        self.up = False  # answered, at a time nobody told (learned from `show channels`)
        self.held = False
        self.held_told = 0  # `CallTracker._holds` at its last hold or unhold event
        self.bridged_to: Optional[str] = None
        self.ended_at: Optional[float] = None
        self.cause: Optional[str] = None
        self.state: Optional[str] = None  # agent legs only: ringing | answered | ended
        self.emitted = False  # a state change was reported for this leg
        self.shown: tuple = ()  # what the last record showed besides the state
        self.ready = False  # seen in an event that says who it rings (not just CHANNEL_OUTGOING)
        self.direction: Optional[str] = None  # incoming | outgoing, decided when first shown
        self.other_number: Optional[str] = None
        self.other_name: Optional[str] = None
        self.far_number: Optional[str] = None  # the number this leg's far leg dials (outgoing calls)
        self.transfer: Optional[tuple] = None  # (previous callee, RDNIS) when the originator was transferred
        self.transferred_from: Optional[str] = None
        self.dialed: Optional[str] = None
        self.last_seen = 0.0
        self.contact_done = False
        self.contact: Optional[dict] = None
        self.call_key: Optional[str] = None  # where this agent leg is in CallTracker._calls


def live_channels(body: Optional[str]) -> list[dict]:
    """The rows of `api show channels as json` (what resync() takes), in creation order.
    Raises ValueError when the body is not that JSON."""
    data = json.loads(body or "{}")
    if not isinstance(data, dict):
        raise ValueError("not the JSON of show channels")
    rows = data.get("rows") or []
    if not isinstance(rows, list):
        raise ValueError("not the JSON of show channels")
    return [row for row in rows if isinstance(row, dict) and isinstance(row.get("uuid"), str)]


def live_uuids(body: Optional[str]) -> set[str]:
    """The channel uuids in the body of `api show channels as json`."""
    return {row["uuid"] for row in live_channels(body)}


# A row of `show channels` read as the event that would have said the same.
_ROW_HEADERS = (
    ("uuid", "Unique-ID"), ("direction", "Call-Direction"), ("name", "Channel-Name"),
    ("cid_name", "Caller-Caller-ID-Name"), ("cid_num", "Caller-Caller-ID-Number"),
    ("initial_cid_name", "Caller-Orig-Caller-ID-Name"), ("initial_cid_num", "Caller-Orig-Caller-ID-Number"),
    ("presence_id", "Channel-Presence-ID"), ("callee_name", "Caller-Callee-ID-Name"),
    ("callee_num", "Caller-Callee-ID-Number"), ("call_uuid", "Channel-Call-UUID"),
    ("callstate", "Channel-Call-State"),
)


def _row_event(row: dict) -> Event:
    headers = [("Event-Name", "CHANNEL_CREATE")]
    headers += [(h, row[k]) for k, h in _ROW_HEADERS if isinstance(row.get(k), str) and row[k]]
    # The first destination (a transfer changes `dest`): what a caller dialled, the user an
    # agent leg was placed to (not where a transfer sent the leg on).
    dest = row.get("initial_dest") or (row.get("dest") if row.get("direction") != "inbound" else None)
    if isinstance(dest, str) and dest:
        headers.append(("Caller-Destination-Number", dest))
    epoch = row.get("created_epoch")
    if isinstance(epoch, str) and epoch.isdigit():
        headers.append(("Caller-Channel-Created-Time", epoch + "000000"))
    return Event(headers)


class Known(NamedTuple):
    """What the tracker knew when it asked the switch (`CallTracker.known`)."""
    channels: frozenset  # the channels it followed
    holds: int  # hold and unhold events fed so far


class CallTracker:
    """Follows agent legs for the watched extensions (all agent legs if `exts` is None).

    `match` names the one header that holds the extension (default: EXT_HEADERS
    in order).  `lookup(number)` returns a contact record or None; it is called
    once per leg, with the number of the party the agent talks to.  Memory is
    bounded: an ended channel is forgotten `linger` seconds after its end, a leg
    still ringing after `ring_timeout` seconds or any channel silent for
    `idle_timeout` seconds expires (its end event was lost), and at most
    `max_channels` channels are remembered.  `history` ended legs are kept per
    extension for `recent()`; 0 keeps none, where nothing shows them (a relay, the
    wallboard's figures): a switch's thousands of extensions would each hold ten legs.
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
        self._holds = 0  # hold and unhold events fed: which of them came after a question (`known`)
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

    def known(self) -> Known:
        """What the tracker knows now: pass it to `resync` with the answer of a `show channels`
        asked after this, so that a leg that began in between is kept and a hold seen in
        between is not undone."""
        return Known(frozenset(self._channels), self._holds)

    def __len__(self) -> int:
        return len(self._channels)

    def ext_for(self, event: Event) -> Optional[str]:
        """The agent extension an (already fed) event belongs to: an agent leg's own, for
        the caller's leg the agent it is bridged to, for the far leg of an agent's
        outgoing call that agent; None otherwise."""
        ch = self._channels.get(event.unique_id or "")
        if ch is None:
            return None
        for uuid in (ch.uuid, ch.bridged_to, ch.parent):
            leg = self._channels.get(uuid or "")
            if leg is not None and self._is_agent(leg):
                return leg.ext
        if not ch.ready and ch.outbound and not ch.loopback:
            return ch.ext  # a leg's first word (CHANNEL_OUTGOING): the extension it is placed to
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
        touched = [ch] + self._learn(ch, event, when, name in _MAY_ORIGINATE)
        if name != _TOO_EARLY:
            ch.ready = True
        if name == "CHANNEL_BRIDGE":
            touched += self._bridge(event, when)
        elif name in _HOLD_EVENTS:
            ch.held = _HOLD_EVENTS[name]
            self._holds += 1
            ch.held_told = self._holds
            touched += [c for c in (self._channels.get(ch.bridged_to or ""),) if c is not None]
        if name == "CHANNEL_ANSWER" and ch.answered_at is None:
            ch.answered_at = _usec(event.get("Caller-Channel-Answered-Time")) or when
        if name in _END_EVENTS and ch.ended_at is None:
            ch.ended_at = _usec(event.get("Caller-Channel-Hangup-Time")) or when
            ch.cause = _cap(event.hangup_cause)
        changes: list[LegView] = []
        for leg in touched:
            self._update(leg, changes, when)
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

    def resync(self, live: Iterable[Union[dict, str]], now: Optional[float] = None, *,
               known: Optional[Known] = None) -> list[LegView]:
        """What the switch has up, from `show channels as json` (on connect and after a reconnect).

        `live` holds its rows (`live_channels`), or just their uuids.  A leg the
        tracker was following that is no longer up ends: events lost while the link
        was down are gone for good, so it ends with outcome `answered` if the agent
        had answered, else `failed`, and no cause.  Only the legs in `known` (what
        the tracker knew when it asked, see `known()`) can end this way, and a row's
        hold state is older than a hold or unhold event fed since then (the events go
        on being read while the answer is on its way).  A leg the tracker did not know
        (a call already up when it started) is shown at once, ringing or answered; its
        true times come with its later events.
        """
        now = self.now if now is None else now
        rows = [row if isinstance(row, dict) else {"uuid": row} for row in live]
        up = {row.get("uuid") for row in rows}
        asked = None if known is None else known.channels
        holds = self._holds if known is None else known.holds
        changes: list[LegView] = []
        for ch in list(self._channels.values()):
            if ch.uuid in up or ch.ended_at is not None or (asked is not None and ch.uuid not in asked):
                continue
            changes += self._end_lost(ch, now)
        new: list[_Channel] = []  # reported once the rows are paired: a bridge may name the call
        for row in rows:
            uuid = row.get("uuid")
            if len(row) < 2 or not isinstance(uuid, str) or uuid in self._forgotten:
                continue
            ch = self._channels.get(uuid)
            if ch is None:
                new += self._learn_row(row, now)
                continue
            held = _UP_STATES.get(str(row.get("callstate") or ""))
            if held is not None and ch.held_told > holds:
                held = ch.held  # a hold or unhold seen since the question is newer than this row
            if ch.ended_at is None and held is not None and (ch.answered_at is None and not ch.up or held != ch.held):
                ch.up, ch.held = True, held  # answered, or put on hold, while the link was down
                self._update(ch, changes, now)
        self._pair(rows)
        for ch in new:
            self._update(ch, changes, now)
        return changes

    def _pair(self, rows: list[dict]) -> None:
        """`show channels` has no partner column: two legs up (talking, on hold) in one call
        (call_uuid) are bridged to each other."""
        calls: dict[str, list[str]] = {}
        for row in rows:
            call = row.get("call_uuid")
            if isinstance(call, str) and call and row.get("callstate") in ("ACTIVE", "HELD", "UNHELD"):
                calls.setdefault(call, []).append(row["uuid"])
        for legs in calls.values():
            pair = [self._channels.get(u) for u in legs]
            if len(pair) == 2 and None not in pair and pair[0].bridged_to is None and pair[1].bridged_to is None:
                pair[0].bridged_to, pair[1].bridged_to = pair[1].uuid, pair[0].uuid
                self._join(pair[0], pair[1])
                self._join(pair[1], pair[0])

    def _learn_row(self, row: dict, now: float) -> list[_Channel]:
        """A channel first known from its row; returns the channels to report."""
        ch = self._channel(row["uuid"])
        ch.last_seen = now
        held = _UP_STATES.get(str(row.get("callstate") or ""))
        if held is not None:
            ch.up, ch.held = True, held
        touched = [ch] + self._learn(ch, _row_event(row), now)
        ch.ready = True
        ch.exact = False  # created_epoch is whole seconds: its events will say to the µs
        return touched

    def _end_lost(self, ch: _Channel, now: float) -> list[LegView]:
        """End a leg whose end was never seen: `answered` if the agent had answered,
        else `failed`, no cause; a change only for a leg the popup has shown."""
        ch.ended_at = now
        if not ch.emitted or ch.state == "ended":
            return []
        ch.state = "ended"
        answered = ch.answered_at is not None or ch.up
        view = self._view(ch, time=now, outcome="answered" if answered else "failed")
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

    def _is_agent(self, ch: _Channel) -> bool:
        """A leg of an agent's: placed to a directory user, an agent's phone dialling out,
        or (with --ext or --match) any leg placed to a watched extension; a loopback
        leg only when no phone's leg is behind it."""
        if ch.dials_out:
            return True
        if not ch.outbound or not ch.ext:
            return False
        if ch.loopback:
            return not ch.phone_behind and (ch.answered_at is not None or ch.up or ch.ended_at is not None)
        if ch.user:
            return True
        # No user behind it: the far leg of an agent's own call is never an agent's.
        parent = self._channels.get(ch.parent or "")
        if parent is not None and (parent.user or parent.dials_out):
            return False
        return self.exts is not None or self.match is not None

    def _learn(self, ch: _Channel, event: Event, when: float, first: bool = True) -> list[_Channel]:
        """Copy what this event says about its channel; returns other channels it changed.
        `first`: an event that may name the channel's originator (its first events, an
        originate); under `event ALL` most events are not, and their headers are not read."""
        if not ch.known:
            direction = event.direction
            if direction:
                ch.known = True
                ch.outbound = direction == "outbound"
                ch.loopback = (event.channel_name or "").startswith("loopback/")
        if ch.loopback and ch.loopback_peer is None:
            ch.loopback_peer = event.get("variable_other_loopback_leg_uuid")
            peer = self._channels.get(ch.loopback_peer or "")
            if peer is not None and (peer.phone_behind or ch.phone_behind):
                # the pair learned late (`show channels` rows do not pair them): one phone behind both
                ch.phone_behind = peer.phone_behind = True
        # An agent leg known from `show channels` alone so far (its row names no originator:
        # mod_callcenter's offers): its next event does.  Not a caller's leg: after a bridge
        # its events call the agent leg its originator (mod_fifo).
        rows_only = not ch.exact and ch.outbound
        # The times the switch wrote, not when the event came: they are right even
        # for a call that was already up when the tracker started.
        if not ch.exact:
            created = _usec(event.get("Caller-Channel-Created-Time"))
            ch.created, ch.exact = (created, True) if created is not None else (ch.created or when, False)
        if ch.answered_at is None:
            ch.answered_at = _usec(event.get("Caller-Channel-Answered-Time"))
        if ch.state == "ended":
            return []  # an agent leg's last words (e.g. a changed Channel-Call-UUID) change nothing
        ch.destination = ch.destination or _cap(event.destination)
        others: list[_Channel] = []
        if ch.parent is None and (first or not ch.ready or rows_only):
            ch.parent = _originator(event)
            if ch.parent and event.get("Other-Type") == "originator":
                ch.origin_dest = _cap(event.get("Other-Leg-Destination-Number"))
                if event.get("Other-Leg-RDNIS"):
                    # the caller was sent here from elsewhere (uuid_transfer, a forward): who had it
                    ch.transfer = (_cap(event.get("Other-Leg-Callee-ID-Number")), _cap(event.get("Other-Leg-RDNIS")))
            others = self._originated(ch)
        if ch.caller_number is None and ch.caller_name is None and (event.caller_number or event.caller_name):
            # The caller ID the leg rang with; on a leg first seen already answered the
            # switch may have flipped it to the agent (mod_fifo): the original is kept.
            seen_late = ch.answered_at is not None or ch.up
            ch.caller_number = _cap((seen_late and event.get("Caller-Orig-Caller-ID-Number")) or event.caller_number)
            ch.caller_name = _cap((seen_late and event.get("Caller-Orig-Caller-ID-Name")) or event.caller_name)
        if ch.outbound and ch.direction != "incoming" and not ch.other_number:
            # an outgoing call's far party, once bridged (see _follow_far_party)
            ch.callee_number = _cap(event.get("Caller-Callee-ID-Number")) or ch.callee_number
            ch.callee_name = _cap(event.get("Caller-Callee-ID-Name")) or ch.callee_name
            if event.get("Other-Type") == "originatee":
                ch.far_number = _cap(event.get("Other-Leg-Destination-Number")) or ch.far_number
        # Whom a leg rings is in its first events (a caller's leg: only those); an outbound leg
        # may say it later while it rings, never once answered: the far party of an agent's
        # call, transferred on, runs a bridge to another user and gets its variable_dialed_user.
        learn = not ch.emitted and (first or not ch.ready or ch.outbound and ch.answered_at is None and not ch.up)
        if ch.queue is None and (learn or ch.emitted):
            # (an agent leg shown from `show channels`, which has no variables, finds it later)
            ch.queue = _cap(event.get("variable_cc_queue") or event.get("variable_fifo_name"))
        if learn:
            self._learn_ext(ch, event)
        return others

    def _learn_ext(self, ch: _Channel, event: Event) -> None:
        if not ch.outbound:
            user = event.get("variable_user_name")  # the switch authenticated the phone: an agent dialling
            if user and not ch.loopback:
                ch.ext, ch.dials_out, ch.user = _cap(user), True, True
            return
        if event.get("variable_dialed_user") or event.get("Channel-Presence-ID"):
            ch.user = True
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

    def _originated(self, ch: _Channel) -> list[_Channel]:
        """What a new leg tells its originator: a loopback leg now has a phone behind
        it; an agent's outgoing call now has a far party (returned to be updated)."""
        parent = self._channels.get(ch.parent or "")
        if parent is None or ch.loopback:
            return []
        if parent.loopback:
            parent.phone_behind = True
            peer = self._channels.get(parent.loopback_peer or "")
            if peer is not None:
                peer.phone_behind = True
            return []
        if ch.outbound and not parent.far_number:
            parent.far_number = ch.destination
            return [parent]
        return []

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
            self._join(ch, self._channels[other])
            if ch.answered_at is None and ch.outbound and not ch.up:
                # (a leg `show channels` says is up has its answer time in its own next event)
                ch.answered_at = _usec(event.get("Caller-Channel-Bridged-Time")) or when
            self._handed_over(ch, self._channels[other])
        return [self._channels[u] for u in (a, b) if u != event.unique_id]

    @staticmethod
    def _join(ch: _Channel, partner: _Channel) -> None:
        """A leg bridged to a channel it did not come from (mod_fifo, mod_callcenter agents
        originated without a caller) now belongs to that call."""
        if ch.outbound and ch.parent is None and not partner.outbound:
            ch.parent = partner.uuid

    def _handed_over(self, ch: _Channel, partner: _Channel) -> None:
        """An agent talking to someone, now bridged to a channel of another call: an attended
        transfer completed (uuid_bridge).  The agent now talks to that call's caller, sent by
        whoever the agent talked to before."""
        if ch.direction != "incoming" or not ch.emitted or partner.parent == ch.uuid:
            return
        if partner in self._chain(ch):
            return
        caller = self._chain(partner)[-1]
        before = self._channels.get(ch.parent or "")
        ch.transferred_from = before.ext if before is not None and self._is_agent(before) else ch.other_number
        ch.caller_number = ch.other_number = caller.caller_number or caller.cc_number
        ch.caller_name = ch.other_name = caller.caller_name or caller.cc_name

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
                ch.queue = ch.queue or _cap(fifo)

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

    def _update(self, ch: _Channel, changes: list, when: float) -> None:
        """Report what changed on an agent leg of a watched extension."""
        if not ch.ready or not self._is_agent(ch):
            return
        self._index(ch)
        if ch.ext and self._watched(ch.ext):
            self._advance(ch, changes, when)

    def _advance(self, ch: _Channel, changes: list, when: float) -> None:
        if ch.state == "ended":
            return
        if not ch.emitted:
            self._first_shown(ch)
            if ch.loopback:  # a loopback agent is known once answered (or ended): it rang from its start
                ch.state = "ringing"
                changes.append(self._view(ch, time=ch.created, answered_at=None, hangup_cause=None))
        self._follow_far_party(ch)
        ch.emitted = True
        if ch.ended_at is not None:
            elsewhere, by = self._elsewhere(ch)
            ch.state = "ended"
            view = self._view(
                ch, time=ch.ended_at, answered_by=by,
                outcome=outcome_for(ch.cause, ch.answered_at is not None or ch.up, elsewhere),
            )
            self._remember(view)
            changes.append(view)
            return
        shown = self._shown(ch)
        if (ch.answered_at is not None or ch.up) and ch.state != "answered":
            ch.state = "answered"
            changes.append(self._view(ch, time=ch.answered_at or when))
        elif ch.state is None:
            ch.state = "ringing"
            changes.append(self._view(ch, time=when))
        elif shown != ch.shown:  # on/off hold, the far party known: same state, news to show
            changes.append(self._view(ch, time=when))
        ch.shown = shown

    def _first_shown(self, ch: _Channel) -> None:
        """Decide, once, who the agent talks to and which way the call goes."""
        chain = self._chain(ch)
        root = chain[-1]
        own = ch.caller_number
        ch.direction = "outgoing" if ch.dials_out or (own and own == ch.ext) else "incoming"
        if ch.direction == "incoming":
            ch.caller_number = own or _first(c.cc_number for c in chain) or root.caller_number
            ch.caller_name = (ch.caller_name if own else None) or _first(c.cc_name for c in chain) or root.caller_name
            ch.other_number, ch.other_name = ch.caller_number, ch.caller_name
            ch.dialed = _dialed(root) if root is not ch else ch.origin_dest
        if ch.transfer is not None:
            callee, rdnis = ch.transfer
            before = self._channels.get(root.bridged_to or "") if root is not ch else None
            if before is not None and before is not ch and before.ext and self._is_agent(before):
                ch.transferred_from = before.ext
            else:
                ch.transferred_from = callee if callee and callee != ch.ext else rdnis

    def _follow_far_party(self, ch: _Channel) -> None:
        """An outgoing call's far party: the number dialled (an agent's phone), the leg
        it originated (click-to-dial), or its callee once bridged."""
        if ch.direction != "outgoing" or ch.other_number:
            return
        callee = ch.callee_number if ch.callee_number != ch.ext else None
        number = (ch.destination if ch.dials_out else None) or ch.far_number or callee
        if number:
            ch.other_number = number
            ch.other_name = ch.callee_name if callee and ch.callee_name != _NO_NAME else None
            ch.dialed = number

    def _shown(self, ch: _Channel) -> tuple:
        return (self._on_hold(ch), ch.other_number, ch.other_name, ch.transferred_from)

    def _on_hold(self, ch: _Channel) -> bool:
        """On hold: the agent's leg or the one it is bridged to (uuid_hold names either)."""
        partner = self._channels.get(ch.bridged_to or "")
        return ch.held or (partner is not None and partner.held)

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
        wait = None
        if root.joined and root.left:
            wait = round(max(root.left - root.joined, 0.0), 1)
        if not ch.contact_done and ch.other_number and self.lookup is not None:
            ch.contact_done = True
            ch.contact = self.lookup(ch.other_number)
        if ch.dialed is None and ch.direction == "incoming" and root is not ch:
            ch.dialed = _dialed(root)  # the call became known later (a bridge, a queue event)
        view = LegView(
            ext=ch.ext or "",
            state=ch.state or "ringing",
            leg_uuid=ch.uuid,
            call_uuid=self._call_uuid(ch),
            caller_number=ch.caller_number,
            caller_name=ch.caller_name,
            dialed=ch.dialed,
            queue=_first(c.queue for c in chain),
            hangup_cause=ch.cause,
            created=ch.created,
            answered_at=ch.answered_at,
            ended_at=ch.ended_at if ch.state == "ended" else None,
            wait_seconds=wait,
            contact=ch.contact,
            direction=ch.direction or "incoming",
            other_number=ch.other_number,
            other_name=ch.other_name,
            on_hold=self._on_hold(ch) if ch.state != "ended" else False,
            transferred_from=ch.transferred_from,
            bridged=ch.bridged_to is not None and ch.state != "ended",
        )
        return replace(view, **changes) if changes else view

    def _remember(self, view: LegView) -> None:
        if not self._history_len:
            return
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


def _dialed(root: _Channel) -> Optional[str]:
    """What the caller dialled: the destination of the call's first channel.  A loopback
    leg's is the agent it rings (a call first seen in `show channels`, its caller not known yet)."""
    return None if root.loopback else root.destination


def _originator(event: Event) -> Optional[str]:
    """The channel that created this one, when the event says so (mod_fifo ties its
    agents to the caller only by fifo_bridge_uuid)."""
    uuid = event.unique_id
    for header in ("variable_cc_member_session_uuid", "variable_fifo_bridge_uuid",
                   "variable_originating_leg_uuid", "variable_originator"):
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


# --- popup records from outside (a relay's messages) ------------------------------------


def _record_epoch(text: Any) -> Optional[float]:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _record_num(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _record_str(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None


def leg_from_record(record: Any) -> Optional[LegView]:
    """The `LegView` behind one `popup_record` (what `relay` publishes), or None if it is
    not one: the inverse of `popup_record`, for records that came from outside."""
    if not isinstance(record, dict):
        return None
    ext, state = _record_str(record.get("ext")), _record_str(record.get("state"))
    if not ext or state not in ("ringing", "answered", "ended"):
        return None
    when = _record_epoch(record.get("time"))
    ring, talk = _record_num(record.get("ring_seconds")), _record_num(record.get("talk_seconds"))
    answered_at = ended_at = created = None
    if state == "answered":
        answered_at = when
    elif state == "ended":
        ended_at = when
        if talk is not None and when is not None:
            answered_at = when - talk
    stop = answered_at or ended_at
    if ring is not None and stop is not None:
        created = stop - ring
    elif state == "ringing":
        created = when
    contact = record.get("contact")
    return LegView(
        ext=ext, state=state, leg_uuid=_record_str(record.get("leg_uuid")) or "",
        call_uuid=_record_str(record.get("call_uuid")) or "",
        time=when, outcome=_record_str(record.get("outcome")), caller_number=_record_str(record.get("caller_number")),
        caller_name=_record_str(record.get("caller_name")), dialed=_record_str(record.get("dialed")), queue=_record_str(record.get("queue")),
        hangup_cause=_record_str(record.get("hangup_cause")), created=created, answered_at=answered_at, ended_at=ended_at,
        contact=contact if isinstance(contact, dict) else None,
        direction="outgoing" if record.get("direction") == "outgoing" else "incoming",
        other_number=_record_str(record.get("other_number")), other_name=_record_str(record.get("other_name")),
        on_hold=record.get("on_hold") is True, transferred_from=_record_str(record.get("transferred_from")),
    )
