"""The fast path: a scenario's calls made at load-generator speed (`eslkit sim --scenario
load:…` makes tens of thousands of events a second).

Everything here answers the same questions as `eslkit.sim.events.SimEvent` and makes the
same bytes as `Event.serialize` would — that is its contract, checked by
``tests/test_sim_fast_path.py`` (``test_contract_call_events_equal_event_serialize``,
``test_contract_bursts_equal_their_call_events``).  Read it only to make the simulator
faster; to change what an event holds, change the scenario data.

A `Template` is one event of a scenario file with ``~~TOKEN~~`` slots (see
`eslkit.sim.derive`).  It is serialised with `Event.serialize` once per format
and split at the tokens; the tokens every call of one second shares (dates,
times, Core-UUID) are filled in once per second.  A `CallEvent` — a template
fired in one call — then costs one lookup of its call's values (UUIDs,
numbers, Event-Sequence) and one join.  A `Burst` makes the frames of
consecutive events of a call in one go, heads included.
"""

from __future__ import annotations

import json
import re
import time
from operator import itemgetter
from typing import Callable, Optional

from eslkit._headers import join_array, url_encode
from eslkit.event import Event
from eslkit.protocol import event_head
from eslkit.sim.events import FORMATS, SimEvent

TOKEN_RE = re.compile(r"~~(U\d+|AGENT[12]|[A-Z]+)(-?\d*)~~")
TOKEN_KEY_RE = re.compile(r"(U\d+|AGENT[12]|[A-Z]+)(-?\d*)$")
_PLAIN_VALUE = re.compile(r"[0-9A-Za-z.\-]*")


class Template:
    """One scenario event with ``~~TOKEN~~`` slots, pre-split per wire format."""

    __slots__ = ("at", "event", "event_name", "subclass", "unique_id", "_parts", "_timed", "_raws", "_lower",
                 "_exact")

    def __init__(self, at: float, headers: list, body: Optional[str]):
        self.at = at
        self.event = Event([(k, v) for k, v in headers], body)
        self.event_name = self.event.get("Event-Name") or ""
        self.subclass = self.event.get("Event-Subclass")
        self._parts: dict[str, tuple] = {}
        self._timed: dict[str, dict] = {}
        self._raws: dict[tuple, list] = {}
        self._lower: dict[str, str] = {}
        self._exact: dict[str, str] = {}  # most lookups use the header's own spelling
        for k, v in headers:
            value = v if isinstance(v, str) else join_array(v)
            self._lower.setdefault(k.lower(), value)
            self._exact.setdefault(k, value)
        self.unique_id = self.raw("Unique-ID")  # with its tokens

    def raw(self, name: str) -> Optional[str]:
        """A header's value with its tokens, looked up case-insensitively."""
        raw = self._exact.get(name)
        return self._lower.get(name.lower()) if raw is None else raw

    def raws(self, names: tuple) -> list:
        done = self._raws.get(names)
        if done is None:
            done = self._raws[names] = [self.raw(name) for name in names]
        return done

    def compiled(self, fmt: str) -> tuple[list, tuple[str, ...]]:
        """The serialised event as UTF-8 pieces with a None slot for each token, and the tokens."""
        done = self._parts.get(fmt)
        if done is None:
            text = self.event.serialize(fmt)
            pieces: list = []
            keys = []
            pos = 0
            for m in TOKEN_RE.finditer(text):
                pieces.append(text[pos:m.start()].encode("utf-8"))
                pieces.append(None)
                keys.append(m.group(1) + m.group(2))  # a str key: its hash is cached, a tuple's is not
                pos = m.end()
            pieces.append(text[pos:].encode("utf-8"))
            done = self._parts[fmt] = (pieces, tuple(keys))
        return done

    def timed(self, fmt: str, values: "CallValues") -> tuple:
        """`compiled` with the tokens that every call started in the same second shares (dates,
        times, Core-UUID: a third of the slots) filled in, the per-call tokens left, and a getter
        that looks all of them up in a call's encoded values at once."""
        by_epoch = self._timed.get(fmt)
        if by_epoch is None:
            by_epoch = self._timed[fmt] = {}
        done = by_epoch.get(values.epoch)
        if done is None:
            if len(by_epoch) >= 8:  # calls of older seconds are over (or slow enough not to matter)
                by_epoch.clear()
            out, left = self.per_call(fmt, values)
            done = by_epoch[values.epoch] = (out, _getter(left))
        return done

    def per_call(self, fmt: str, values: "CallValues") -> tuple[list, list]:
        """The pieces with the per-second tokens of ``values`` filled in, and the tokens left."""
        pieces, keys = self.compiled(fmt)
        out = [pieces[0]]
        left = []
        for key, piece in zip(keys, pieces[2::2]):
            if TOKEN_KEY_RE.match(key).group(1) in _PER_SECOND:
                out[-1] += values.encoded[fmt].get(key) or values.encode(fmt, key)
                out[-1] += piece
            else:
                out += [None, piece]
                left.append(key)
        return out, left

    def instantiate(self, values: "CallValues", seq: int) -> "CallEvent":
        return CallEvent(self, values, seq)


class CallEvent(SimEvent):
    """A template fired in one call: rendered from the call's values, with its own sequence number."""

    __slots__ = ("template", "values", "seq")

    def __init__(self, template: Template, values: "CallValues", seq: int):
        # No SimEvent.__init__ (this runs for every event the load generator makes) and no
        # cached frames: SimServer.fire makes each format once, and the call tracker may keep
        # the event a while without its kilobytes.
        self.event_name = template.event_name
        self.subclass = template.subclass
        self.template = template
        self.values = values
        self.seq = seq

    def get(self, name: str) -> Optional[str]:
        return self.values.resolve(self.template.raw(name), self.seq)

    @property
    def unique_id(self) -> Optional[str]:
        return self.values.resolve(self.template.unique_id, self.seq)

    def get_all(self, names: tuple) -> list:
        resolve = self.values.resolve
        seq = self.seq
        return [resolve(raw, seq) for raw in self.template.raws(names)]

    def frame_parts(self, fmt: str) -> tuple[bytes, bytes]:
        """The frame's head and payload: the connection's write joins them with the other frames,
        so the payload is copied once here, not once more to put the head in front."""
        values = self.values
        pieces, getter = self.template.timed(fmt, values)
        cache = values.encoded[fmt]
        cache[SEQ] = b"%d" % self.seq  # rendering is synchronous: safe to share the slot
        out = pieces[:]
        try:
            out[1::2] = getter(cache)
        except KeyError:  # the call's first event in this format: encode its values
            values.signature(fmt)
            out[1::2] = getter(cache)
        payload = b"".join(out)
        return event_head(fmt, len(payload)), payload

    def frame(self, fmt: str) -> bytes:
        return b"".join(self.frame_parts(fmt))

    def render(self, fmt: str) -> bytes:
        return self.frame_parts(fmt)[1]


def _getter(keys: list) -> Callable:
    """All of ``keys`` looked up in a dict at once, as a tuple: itemgetter does the lookups in C
    (with one key it returns the value, not a tuple)."""
    return itemgetter(*keys) if len(keys) > 1 else (lambda cache, k=tuple(keys): tuple(cache[x] for x in k))


class Burst:
    """Consecutive templates of a call, fired together at full speed with consecutive sequence
    numbers: their frames, heads included, made by one lookup and one join per chunk.

    A frame's head holds its payload's length, which is known before the payload is made: the
    static pieces and the call's values have the same lengths in every call whose values have
    the same lengths (its `CallValues.signature`: a load generator's calls all do), and so have
    the sequence numbers of a burst, but for the rare one where they gain a digit.  So the heads
    are part of the static pieces, and only the call's values and the sequence numbers are put
    in.  The frames come in chunks of at most ~32 kB (whole frames): glibc hands the top of the
    heap back to the kernel whenever a chunk of 64 kB or more is freed, and faulting it in again
    cost more than the joins saved.
    """

    __slots__ = ("templates", "_made", "_numbers")
    CHUNK = 32 * 1024

    def __init__(self, templates):
        self.templates = tuple(templates)
        self._made: dict[tuple, tuple] = {}
        self._numbers = b" ".join([b"%d"] * len(self.templates))  # all the sequence numbers at once

    def frames(self, fmt: str, values: "CallValues", first_seq: int) -> tuple[list, tuple]:
        """Every frame of the burst in ``fmt``, the first with sequence number ``first_seq``:
        the chunks (each a 1-tuple, as `SimEvent.frame_parts`) and how many frames each holds."""
        n = len(self.templates)
        digits = len(str(first_seq))
        gains_digit = 10 ** digits - first_seq  # the frame whose number has one digit more
        row = values.row(fmt)
        key = (fmt, values.epoch, values.signature(fmt), digits, min(gains_digit, n))
        done = self._made.get(key)
        if done is None:
            if len(self._made) >= 8:  # older seconds' calls are over (or slow enough not to matter)
                self._made.clear()
            done = self._made[key] = self._make(fmt, values, first_seq)
        chunks, counts = done
        seq_at = len(values.simple)
        row[seq_at:seq_at + n] = (self._numbers % tuple(range(first_seq, first_seq + n))).split()
        made = []
        for pieces, getter in chunks:
            out = pieces[:]
            out[1::2] = getter(row)
            made.append((b"".join(out),))
        return made, counts

    def _make(self, fmt: str, values: "CallValues", first_seq: int) -> tuple:
        """The chunks' pieces (heads included) and getters, and how many frames each chunk holds."""
        cache = values.encoded[fmt]
        where = {token: i for i, token in enumerate(values.simple)}  # positions in values.row()
        chunks: list = []
        counts: list = []
        chunk_size = 0
        for j, template in enumerate(self.templates):
            out, left = template.per_call(fmt, values)
            # (a COMMAND event carries the Event-Sequence of the event it copies too: two slots)
            size = sum(map(len, out[0::2])) + len(b"%d" % (first_seq + j)) * left.count(SEQ)
            for k in left:
                if k != SEQ:
                    size += len(cache[k])  # signature() has encoded them all
            head = event_head(fmt, size)
            if not chunks or chunk_size + len(head) + size > self.CHUNK:  # this frame starts a chunk
                chunks.append(([b""], []))
                counts.append(0)
                chunk_size = 0
            chunk_size += len(head) + size
            counts[-1] += 1
            pieces, places = chunks[-1]
            pieces[-1] += head + out[0]
            pieces += out[1:]
            places += [len(where) + j if k == SEQ else where[k] for k in left]
        return [(pieces, _getter(places)) for pieces, places in chunks], tuple(counts)


SEQ = "SEQ"
# The numbers of the captured calls (eslkit.sim.derive made them tokens).
DEFAULT_NUMBERS = {"CALLER": "6208", "CALLERB": "6209", "AGENT1": "1001", "AGENT2": "1002"}
_PER_SECOND = ("CORE", "US", "S", "LOCAL", "GMT", "RFC")  # the same in every call of one second
_DATE_FORMATS = {"LOCAL": "%Y-%m-%d %H:%M:%S", "GMT": "%a, %d %b %Y %H:%M:%S GMT",
                 "RFC": "%a, %d %b %Y %H:%M:%S +0000"}
_dates: dict = {}  # (kind, second, time zone) -> the date text


def date_text(kind: str, secs: int) -> str:
    """A LOCAL, GMT or RFC date of a second; strftime is slow, and every call started
    in the same second has the same dates."""
    key = (kind, secs, time.tzname)
    text = _dates.get(key)
    if text is None:
        if len(_dates) > 4096:
            _dates.clear()
        text = _dates[key] = time.strftime(_DATE_FORMATS[kind],
                                           time.localtime(secs) if kind == "LOCAL" else time.gmtime(secs))
    return text


class CallValues:
    """What one run of a scenario fills into the tokens: uuids, numbers, times.

    Each token is computed and encoded once per call and format; the events of
    a call share it (a uuid appears dozens of times in a call).
    """

    def __init__(self, base_us: int, uuids: list[str], core_uuid: str,
                 numbers: Optional[dict[str, str]] = None):
        self.base_us = base_us
        self.simple: dict[str, str] = {f"U{i}": u for i, u in enumerate(uuids)}
        self.simple["CORE"] = core_uuid
        self.simple.update(DEFAULT_NUMBERS)
        self.simple.update(numbers or {})
        # what the _PER_SECOND tokens depend on (LOCAL: the time zone too): calls with one epoch share them
        self.epoch = (base_us, self.simple["CORE"], time.tzname)
        self.encoded: dict[str, dict] = {fmt: {} for fmt in FORMATS}
        self._resolved: dict[str, str] = {}
        self._signatures: dict[str, tuple] = {}
        self._rows: dict[str, list] = {}

    def value(self, kind: str, off: int, seq: int = 0) -> str:
        if kind == "SEQ":
            return str(seq)
        simple = self.simple.get(kind)
        if simple is not None:
            return simple
        t = self.base_us + off
        if kind == "US":
            return str(t)
        if kind == "S":
            return str(t // 1_000_000)
        if kind not in _DATE_FORMATS:
            raise KeyError(kind)
        return date_text(kind, t // 1_000_000)

    def signature(self, fmt: str) -> tuple:
        """The call's tokens and the lengths of their values in ``fmt``, all encoded on the first
        call: calls with the same signature make frames of the same lengths (see `Burst`)."""
        sig = self._signatures.get(fmt)
        if sig is None:
            cache = self.encoded[fmt]
            for token in self.simple:
                if token not in cache:
                    self.encode(fmt, token)
            sig = self._signatures[fmt] = tuple((token, len(cache[token])) for token in self.simple)
        return sig

    def row(self, fmt: str) -> list:
        """The call's values in ``fmt`` as a list, in the order of ``simple`` (for `Burst`: a list
        is indexed faster than a dict is looked up), with room after them for a burst's
        sequence numbers."""
        row = self._rows.get(fmt)
        if row is None:
            self.signature(fmt)
            cache = self.encoded[fmt]
            row = self._rows[fmt] = [cache[token] for token in self.simple]
        return row

    def encode(self, fmt: str, token: str) -> bytes:
        m = TOKEN_KEY_RE.match(token)
        raw = self.value(m.group(1), int(m.group(2) or 0))
        if _PLAIN_VALUE.fullmatch(raw):  # uuids, numbers: the same in every format
            text = raw
        else:
            text = json.dumps(raw, ensure_ascii=False)[1:-1] if fmt == "json" else url_encode(raw)
        data = self.encoded[fmt][token] = text.encode("utf-8")
        return data

    def resolve(self, raw: Optional[str], seq: int) -> Optional[str]:
        """A header value (None: no such header) with its tokens filled in (decoded, for filters)."""
        if raw is None or "~~" not in raw:
            return raw
        if raw == "~~SEQ~~":
            return str(seq)
        text = self._resolved.get(raw)
        if text is None:
            whole = TOKEN_RE.fullmatch(raw)  # most are one token (a uuid, a number): no re.sub
            if whole:
                text = self.value(whole.group(1), int(whole.group(2) or 0))
            else:
                text = TOKEN_RE.sub(lambda m: self.value(m.group(1), int(m.group(2) or 0)), raw)
            self._resolved[raw] = text
        return text
