"""What the agent pages show, kept per extension, and the fan-out of changes to their streams.

    board = CallBoard(["1001", "1002"], now=engine_clock, crm_url=url_action.url)
    board.publish(leg)                     # each LegView change and ConnectionStatus of the engine
    board.calls("1001")                    # the cards: calls up, and those ended in the last 30 s
    board.day("1001")                      # the day's ended calls (records), newest first
    async with board.subscribe(["1001"]) as stream:
        async for name, data in stream:    # ("snapshot", {...}) first, then ("leg", record), ...
            ...

The messages are what ``/api/agent/EXT/events`` sends as Server-Sent Events:

- ``snapshot`` — on (re)connect, and whenever a stream fell behind: the clock, the link,
  the cards, the day's calls, their CRM links and timers: the page redraws from it;
- ``leg`` — one record, exactly what ``eslkit popup --format json`` writes;
- ``crm`` — ``{"leg_uuid", "url"}``, before a leg's first record (with ``--open-url``);
- ``since`` — ``{"leg_uuid", "since"}``, before a record whose timer starts anew: when the
  phone began to ring, then when the call was answered (epoch seconds, the switch's clock;
  null when not known, as for what a relay published); a record's own ``time`` is when
  its state last changed, a hold for instance;
- ``link`` — ``{"connected", "text"}`` when the link to the switch or broker changes;
- ``clock`` — ``{"now"}`` every 15 s: the switch's clock (the page's timers use it) and a
  keep-alive for proxies; each stream on its own second, so that a thousand streams opened
  together (a restart) are not all woken together.

Publishing never waits for a reader: each stream has a bounded queue, and one that
fills is emptied and sent a fresh snapshot instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import deque
from datetime import datetime
from typing import AsyncIterator, Callable, Iterable, NamedTuple, Optional, Union

from eslkit.calls import RECORD_KEYS, LegView, popup_record
from eslkit.status import ConnectionStatus
from eslkit.views.popup import SHOW_ENDED_FOR

__all__ = ["CallBoard", "Stream", "SHOW_ENDED_FOR", "CLOCK_EVERY", "DAY_SIZE", "DAY_BYTES", "encode"]

CLOCK_EVERY = 15.0  # seconds between a stream's clock messages
DAY_SIZE = 500  # ended calls kept per extension for "today"
DAY_BYTES = 10_000_000  # and on the whole board: ~20,000 calls of ~500 bytes (a thousand agents)
_ENTRY_COST = 220  # bytes a day entry takes besides its values' text (tuple, float, uuid, deque slots)
QUEUE_SIZE = 256
Message = tuple  # (event name, JSON text)


_HTML = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def encode(data) -> str:
    """JSON in ASCII only, with < > & escaped too: no raw control or bidi character travels,
    and no reader that mistakes it for HTML finds markup in it (any JSON reader decodes them)."""
    return json.dumps(data, ensure_ascii=True, separators=(",", ":")).translate(_HTML)


class _Ended(NamedTuple):
    """A call on a day list, compact: its record's values as JSON text (~300 bytes, where the
    LegView and its strings took ~800)."""

    ended_at: float
    ext: str
    leg_uuid: str
    values: bytes  # encode(list of the record's values), ASCII

    def record(self) -> dict:
        return dict(zip(RECORD_KEYS, json.loads(self.values)))

    @property
    def cost(self) -> int:
        return len(self.values) + _ENTRY_COST


def _ended(leg: LegView, ext: str) -> _Ended:
    record = popup_record(leg)
    values = encode([record[key] for key in RECORD_KEYS]).encode("ascii")
    return _Ended(leg.ended_at or 0.0, ext, leg.leg_uuid, values)


def _since(leg: LegView) -> Optional[float]:
    """When the card's timer started: the first ring, then the answer (None: not known, as
    for the states a relay published)."""
    if leg.state == "ringing":
        return leg.created
    if leg.state == "answered":
        return leg.answered_at
    return None


class Stream:
    """One reader's queue of messages for some extensions."""

    def __init__(self, board: "CallBoard", exts: Iterable[str]):
        self.board = board
        self.exts = frozenset(exts)
        self.queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self.closed = False
        self.resyncs = 0
        self.clock_at = time.monotonic() + random.uniform(1.0, CLOCK_EVERY)  # its first, spread out

    def put(self, message: Message) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            # A slow reader: drop what it has not read, and tell it the whole state again.
            self.resyncs += 1
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(("snapshot", encode(self.board.snapshot(self.exts))))

    def close(self) -> None:
        self.closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Message]:
        while True:
            message = await self.queue.get()
            if message is None:
                return
            yield message


class CallBoard:
    """Cards and day lists per extension, fed by a popup engine's changes."""

    def __init__(self, exts: Iterable[str], *, now: Callable[[], float] = time.time,
                 crm_url: Optional[Callable[[LegView], str]] = None, day_size: int = DAY_SIZE,
                 day_bytes: int = DAY_BYTES):
        self.exts = tuple(exts)
        self.now = now
        self.crm_url = crm_url
        self.connected = False
        self.link_text = "connecting"
        self.published = 0
        self._ext = {ext: ext for ext in self.exts}  # one string per extension, for the day entries
        self._legs: dict[str, dict[str, LegView]] = {ext: {} for ext in self.exts}  # by leg uuid
        self._ended: dict[str, deque[_Ended]] = {ext: deque() for ext in self.exts}  # newest first
        self._day_size = day_size
        # Every call put on a day list, oldest first: the board's oldest goes when they take more
        # than day_bytes (one no longer on its list, gone at midnight or past day_size, is passed over).
        self._ended_order: deque[_Ended] = deque()
        self._day_bytes = day_bytes
        self.day_held = 0  # calls on the day lists now
        self.day_bytes = 0  # and what they take
        self._crm: dict[str, str] = {}  # leg uuid -> CRM link
        self._since: dict[str, Optional[float]] = {}  # leg uuid -> when its timer started
        self._streams: set[Stream] = set()
        self._readers: dict[str, set[Stream]] = {ext: set() for ext in self.exts}  # a change goes to these only

    # --- in -------------------------------------------------------------------------------

    def publish(self, change: Union[LegView, ConnectionStatus]) -> None:
        if isinstance(change, ConnectionStatus):
            self.link(change.state == "connected", change.reason)
            return
        leg = change
        legs = self._legs.get(leg.ext)
        if legs is None:
            return  # not an extension anybody may see
        self.published += 1
        messages = []
        if self.crm_url is not None and leg.leg_uuid not in self._crm and leg.state != "ended":
            self._crm[leg.leg_uuid] = self.crm_url(leg)
            messages.append(("crm", encode({"leg_uuid": leg.leg_uuid, "url": self._crm[leg.leg_uuid]})))
        since = _since(leg)
        if leg.state == "ended":
            self._since.pop(leg.leg_uuid, None)  # an ended card has no timer
        elif self._since.get(leg.leg_uuid, -1) != since:
            self._since[leg.leg_uuid] = since
            messages.append(("since", encode({"leg_uuid": leg.leg_uuid, "since": since})))
        before = legs.get(leg.leg_uuid)
        legs[leg.leg_uuid] = leg
        if leg.state == "ended" and (before is None or before.state != "ended"):
            self._day_add(leg)
        self._trim(leg.ext)
        messages.append(("leg", encode(popup_record(leg))))
        for stream in list(self._readers[leg.ext]):
            for message in messages:
                stream.put(message)

    def _day_add(self, leg: LegView) -> None:
        day = self._ended[leg.ext]
        if any(old.leg_uuid == leg.leg_uuid for old in day):
            return
        entry = _ended(leg, self._ext[leg.ext])
        day.appendleft(entry)
        self._held(entry, +1)
        if len(day) > self._day_size:
            self._held(day.pop(), -1)
        order = self._ended_order
        order.append(entry)
        while self.day_bytes > self._day_bytes and order:
            oldest = order.popleft()
            day = self._ended[oldest.ext]
            if day and day[-1] is oldest:
                self._held(day.pop(), -1)
        if len(order) > 2 * self.day_held + 64:  # too many passed over: only what is held
            self._ended_order = deque(sorted((x for day in self._ended.values() for x in day),
                                             key=lambda x: x.ended_at))

    def _held(self, entry: _Ended, sign: int) -> None:
        self.day_held += sign
        self.day_bytes += sign * entry.cost

    def link(self, connected: bool, text: str) -> None:
        self.connected = connected
        self.link_text = text or ("connected" if connected else "disconnected")
        message = ("link", encode({"connected": connected, "text": self.link_text}))
        for stream in list(self._streams):
            stream.put(message)

    def tick(self) -> None:
        """The clock message, to the streams whose turn it is (each every CLOCK_EVERY s);
        called about every second."""
        now = time.monotonic()
        due = [stream for stream in self._streams if stream.clock_at <= now]
        if not due:
            return
        message = ("clock", encode({"now": self.now()}))
        for stream in due:
            stream.clock_at = now + CLOCK_EVERY
            stream.put(message)

    # --- out ------------------------------------------------------------------------------

    def calls(self, ext: str) -> list[LegView]:
        """The cards of ``ext``: calls up (oldest first), then those ended in the last 30 s."""
        self._trim(ext)
        now = self.now()
        legs = self._legs.get(ext, {}).values()
        up = [leg for leg in legs if leg.state != "ended"]
        ended = [leg for leg in legs if leg.state == "ended" and now - (leg.ended_at or now) <= SHOW_ENDED_FOR]
        return up + ended

    def day(self, ext: str) -> list[dict]:
        """The records of the calls of ``ext`` that ended today (the switch's clock, this
        machine's time zone), newest first."""
        return [entry.record() for entry in self._today(ext)]

    def _today(self, ext: str) -> list[_Ended]:
        day = self._ended.get(ext)
        if not day:
            return []
        midnight = datetime.fromtimestamp(self.now()).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        while day and day[-1].ended_at < midnight:
            self._held(day.pop(), -1)
        return list(day)

    def snapshot(self, exts: Iterable[str]) -> dict:
        calls = [leg for ext in sorted(exts) for leg in self.calls(ext)]
        day = sorted((entry for ext in exts for entry in self._today(ext)), key=lambda entry: entry.ended_at,
                     reverse=True)
        return {
            "now": self.now(),
            "link": {"connected": self.connected, "text": self.link_text},
            "calls": [popup_record(leg) for leg in calls],
            "day": [entry.record() for entry in day],
            "crm": {leg.leg_uuid: self._crm[leg.leg_uuid] for leg in calls if leg.leg_uuid in self._crm},
            "since": {leg.leg_uuid: self._since[leg.leg_uuid] for leg in calls
                      if self._since.get(leg.leg_uuid) is not None},
        }

    @contextlib.asynccontextmanager
    async def subscribe(self, exts: Iterable[str]) -> AsyncIterator[Stream]:
        stream = Stream(self, exts)
        stream.put(("snapshot", encode(self.snapshot(stream.exts))))
        self._streams.add(stream)
        for ext in stream.exts:
            self._readers.get(ext, set()).add(stream)
        try:
            yield stream
        finally:
            self._streams.discard(stream)
            for ext in stream.exts:
                self._readers.get(ext, set()).discard(stream)
            stream.closed = True

    @property
    def streams(self) -> int:
        return len(self._streams)

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        for stream in list(self._streams):
            stream.close()

    def _trim(self, ext: str) -> None:
        """Forget ended legs once they are off the cards (the day list keeps them)."""
        legs = self._legs.get(ext)
        if not legs:
            return
        now = self.now()
        for uuid in [uuid for uuid, leg in legs.items()
                     if leg.state == "ended" and now - (leg.ended_at or now) > SHOW_ENDED_FOR]:
            del legs[uuid]
            self._crm.pop(uuid, None)
            self._since.pop(uuid, None)
