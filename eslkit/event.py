"""One `Event` for all three wire formats (plain, json, xml).

Plain events are decoded lazily: the first few header lookups scan the raw
header block with ``str.find`` (cheap for the two or three headers most
consumers read); after that the block is split into a dict once.  A JSON event
in cJSON's compact shape is validated when it arrives and decoded on first use
(`eslkit._compact_json`); other JSON and XML payloads are parsed at once.  Either
way a malformed one is a protocol error at the parser, never later.

Whatever the wire format, ``to_dict()`` gives FreeSWITCH's own ``event json``
shape: header names as keys, decoded values (a list for a multi-value header),
the body under ``_body``.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Iterable, Iterator, Union
from xml.etree import ElementTree

from eslkit._compact_json import is_compact_event
from eslkit._headers import (
    ARRAY_PREFIX,
    join_array,
    split_array,
    url_decode,
    url_decode_block,
    url_encode,
)

Value = Union[str, list]

# Every event name FreeSWITCH 1.10 knows, in the order of its event ids: switch_event.c's
# EVENT_NAMES (what switch_name_event() accepts) and libesl's copy in esl_event.c.
EVENT_NAMES = (
    "CUSTOM CLONE CHANNEL_CREATE CHANNEL_DESTROY CHANNEL_STATE CHANNEL_CALLSTATE CHANNEL_ANSWER "
    "CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_HOLD "
    "CHANNEL_UNHOLD CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_PROGRESS CHANNEL_PROGRESS_MEDIA "
    "CHANNEL_OUTGOING CHANNEL_PARK CHANNEL_UNPARK CHANNEL_APPLICATION CHANNEL_ORIGINATE CHANNEL_UUID "
    "API LOG INBOUND_CHAN OUTBOUND_CHAN STARTUP SHUTDOWN PUBLISH UNPUBLISH TALK NOTALK SESSION_CRASH "
    "MODULE_LOAD MODULE_UNLOAD DTMF MESSAGE PRESENCE_IN NOTIFY_IN PRESENCE_OUT PRESENCE_PROBE "
    "MESSAGE_WAITING MESSAGE_QUERY ROSTER CODEC BACKGROUND_JOB DETECTED_SPEECH DETECTED_TONE "
    "PRIVATE_COMMAND HEARTBEAT TRAP ADD_SCHEDULE DEL_SCHEDULE EXE_SCHEDULE RE_SCHEDULE RELOADXML "
    "NOTIFY PHONE_FEATURE PHONE_FEATURE_SUBSCRIBE SEND_MESSAGE RECV_MESSAGE REQUEST_PARAMS "
    "CHANNEL_DATA GENERAL COMMAND SESSION_HEARTBEAT CLIENT_DISCONNECTED SERVER_DISCONNECTED "
    "SEND_INFO RECV_INFO RECV_RTCP_MESSAGE SEND_RTCP_MESSAGE CALL_SECURE NAT RECORD_START "
    "RECORD_STOP PLAYBACK_START PLAYBACK_STOP CALL_UPDATE FAILURE SOCKET_DATA MEDIA_BUG_START "
    "MEDIA_BUG_STOP CONFERENCE_DATA_QUERY CONFERENCE_DATA CALL_SETUP_REQ CALL_SETUP_RESULT "
    "CALL_DETAIL DEVICE_STATE TEXT SHUTDOWN_REQUESTED ALL"
).split()

# After this many different headers looked up on a plain (or compact JSON) event, decode it all once.
# One lookup is a search of the text; decoding a ~4 kB event costs what 26 (plain) to 34 (JSON)
# lookups cost, and the call tracker asks up to ~15 headers of the events it learns from.
_LAZY_LOOKUPS = 20
# A line holding ": " twice (not FreeSWITCH's shape, whose values are URL-encoded).
_TWO_SEPARATORS = re.compile(r": [^\n]*: ")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]+")  # a header name JSON writes without escapes


class Event:
    """A FreeSWITCH event: decoded headers, an optional body, typed fields."""

    __slots__ = ("_text", "_end", "_h", "_pairs", "_encoded", "_lookups", "_seen", "body", "format")

    def __init__(
        self,
        headers: dict[str, Value] | Iterable[tuple[str, Value]] | None = None,
        body: str | None = None,
        *,
        format: str = "plain",
    ):
        """Make an event from decoded headers: a dict, or (name, value) pairs
        when a header repeats (FreeSWITCH does send some twice)."""
        self._h, self._pairs = _index(list(headers.items()) if isinstance(headers, dict) else list(headers or ()))
        self._encoded = False
        self._text = ""
        self._end = 0
        self._lookups = 0
        self._seen = None
        self.body = body
        self.format = format

    # --- construction from the wire ------------------------------------------

    @classmethod
    def from_plain(cls, text: str) -> "Event":
        ev = cls.__new__(cls)
        end = text.find("\n\n")
        if end < 0:
            end = len(text.rstrip("\n"))
            ev.body = None
        else:
            rest = text[end + 2:]
            ev.body = rest if rest else None
        ev._text = text
        ev._end = end
        ev._h = None
        ev._pairs = None
        ev._encoded = True
        ev._lookups = 0
        ev._seen = None
        ev.format = "plain"
        return ev

    @classmethod
    def from_json(cls, text: str) -> "Event":
        if is_compact_event(text):
            # The switch's own compact line, checked without building it: the
            # headers are decoded when first asked for (watch --format json never asks).
            ev = cls.__new__(cls)
            ev._text, ev._end, ev._lookups, ev._seen = text, 0, 0, None
            ev._h = ev._pairs = None
            ev._encoded, ev.body, ev.format = False, None, "json"
            return ev
        return cls._decode_json(text)

    @classmethod
    def _decode_json(cls, text: str) -> "Event":
        pairs = _decode_json_pairs(text)
        if type(pairs) is not _JsonObject:
            raise ValueError("a JSON event must be an object")
        escapes = "\\u" in text
        if escapes and _LONE_SURROGATE_ESCAPE.search(text):
            pairs = _JsonObject([(k, _scrub(v)) for k, v in pairs])
        h = dict(pairs)
        kinds = set(map(type, h.values()))
        if len(h) == len(pairs) and (kinds <= _STR or (kinds <= _STR_OR_LIST and _string_lists(h))) \
                and type(h.get("_body", "")) is str:
            # The common case (string values, arrays of strings, no repeated
            # header): the dict json.loads built is the event; no per-header work.
            ev = cls.__new__(cls)
            body = h.pop("_body", None)
            ev._h, ev._pairs, ev._encoded = h, None, False
            # Keep the switch's own text when it is already the compact ASCII
            # line json_line() would write (cJSON writes no raw whitespace).
            verbatim = text.isascii() and not escapes and "\n" not in text and "\r" not in text \
                and "\t" not in text
            ev._text, ev._end, ev._lookups, ev._seen = (text if verbatim else ""), 0, 0, None
            ev.body, ev.format = body, "json"
            return ev
        body = None
        headers = []
        for k, v in pairs:
            if k == "_body":
                body = v if isinstance(v, str) else json.dumps(v)
            elif isinstance(v, list):
                headers.append((k, [x if isinstance(x, str) else str(x) for x in v]))
            else:
                headers.append((k, v if isinstance(v, str) else str(v)))
        return cls(headers, body, format="json")

    @classmethod
    def from_xml(cls, text: str) -> "Event":
        root = ElementTree.fromstring(text)
        if root.tag != "event":
            raise ValueError("an XML event must be an <event> element")
        # A multi-value header is a run of adjacent same-named tags; a header
        # FreeSWITCH repeats (e.g. Hangup-Cause) appears again further down.
        headers: list[tuple[str, Value]] = []
        node = root.find("headers")
        for child in node if node is not None else ():
            value = child.text or ""
            if headers and headers[-1][0] == child.tag:
                prev = headers[-1][1]
                headers[-1] = (child.tag, (prev if isinstance(prev, list) else [prev]) + [value])
            else:
                headers.append((child.tag, value))
        body = None
        body_node = root.find("body")
        if body_node is not None:
            body = body_node.text or ""
            length = root.findtext("Content-Length")
            if length and length.isdigit():
                # FreeSWITCH indents the closing tag; the length says where the body ends.
                body = body.encode("utf-8")[: int(length)].decode("utf-8", "replace")
            headers.append(("Content-Length", str(len(body.encode("utf-8")))))
        ev = cls.__new__(cls)
        ev._h, ev._pairs = _index(headers)
        ev._encoded = True
        ev._text = ""
        ev._end = 0
        ev._lookups = 0
        ev._seen = None
        ev.body = body
        ev.format = "xml"
        return ev

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Event":
        """The inverse of `to_dict` (recordings, broker messages)."""
        data = {k: _scrub(v) for k, v in data.items()}
        body = data.pop("_body", None)
        headers = [(k, v if isinstance(v, (str, list)) else str(v)) for k, v in data.items()]
        return cls(headers, body, format="json")

    # --- header access ----------------------------------------------------------

    def _parse(self) -> dict[str, Value]:
        if self.format == "json":  # a compact JSON event, decoded on first use
            decoded = Event._decode_json(self._text)
            self._h, self._pairs = decoded._h, decoded._pairs
            return self._h
        block = self._text[: self._end]
        n = block.count("\n") + 1
        h: dict[str, Value] | None = None
        # Plain values are URL-encoded, so ": " only ever separates a name from
        # its value: one split of the whole block, paired up, is the fast path.
        # It needs exactly one ": " on every line: n of them, none twice on a line
        # (else a line with none and one with two would pair names with values wrongly).
        if block.count(": ") == n and _TWO_SEPARATORS.search(block) is None:
            parts = iter(block.replace(": ", "\n").split("\n"))
            h = dict(zip(parts, parts))
        if h is None or len(h) != n:
            lines = block.split("\n")
            pairs = []
            for line in lines:
                name, sep, value = line.partition(": ")
                if not sep:
                    name, sep, value = line.partition(":")
                    if not sep:
                        continue  # not a header line; FreeSWITCH never sends one
                pairs.append((name, value))
            h, self._pairs = _index(pairs)
        self._h = h
        return h

    def _decode(self, raw: Value) -> Value:
        if isinstance(raw, list):
            return [url_decode(v) for v in raw] if self._encoded else raw
        if self._encoded:
            raw = url_decode(raw)
            if self.format == "plain":
                return split_array(raw)
        return raw

    def _raw(self, name: str) -> Value | None:
        h = self._h
        if h is not None:
            return h.get(name)
        seen = self._seen
        if seen is not None and name in seen:  # callers ask for Event-Name and the hostname again and again
            return seen[name]
        if self._lookups >= _LAZY_LOOKUPS:
            return self._parse().get(name)
        self._lookups += 1
        value = self._json_raw(name) if self.format == "json" else self._plain_raw(name)
        if self._h is None:
            if seen is None:
                self._seen = {name: value}
            else:
                seen[name] = value
        return value

    def _plain_raw(self, name: str) -> Value | None:
        text, end = self._text, self._end
        key = name + ": "
        if text.startswith(key):
            start = len(key)
        else:
            i = text.find("\n" + key, 0, end)
            if i < 0:
                return None
            start = i + 1 + len(key)
        stop = text.find("\n", start, end)
        value = text[start: end if stop < 0 else stop]
        if text.find("\n" + key, start, end) >= 0:
            return self._parse().get(name)  # a repeated header: the careful path
        return value

    def _json_raw(self, name: str) -> Value | None:
        """One header of a compact JSON event (checked by is_compact_event) without decoding
        it all.  There a raw quote after ``{`` or ``,`` always opens a key, so ``,"Name":"``
        is that header with a string value (the first of a repeated header, as decoding keeps);
        a value with an escape, an array or a name that needs escaping take the careful path."""
        if not _plain_name(name):
            return self._parse().get(name)
        text = self._text
        key = '"' + name + '":'
        if text.startswith(key, 1):
            start = 1 + len(key)
        else:
            i = text.find("," + key)
            if i < 0:
                return None
            start = i + 1 + len(key)
        stop = text.find('"', start + 1)
        if text[start] != '"' or text.find("\\", start, stop) >= 0:
            return self._parse().get(name)
        return text[start + 1: stop]

    def get(self, name: str, default: str | None = None) -> str | None:
        """The decoded value of a header (the first one of a multi-value header)."""
        raw = self._raw(name)
        if raw is None:
            return default
        value = self._decode(raw)
        if isinstance(value, list):
            return value[0] if value else default
        return value

    def __getitem__(self, name: str) -> str:
        """``event["Unique-ID"]``: like `get`, but a header the event does not have is a KeyError."""
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def lookup(self, name: str) -> str | None:
        """A header as the switch's own switch_event_get_header() finds it, for filters
        (`eslkit.subscription`): the name in any case, ``_body`` the body when no header
        has that name, a multi-value header as one ``ARRAY::a|:b`` string."""
        raw = self._raw(name)
        if raw is None:
            h = self._h if self._h is not None else self._parse()
            low = name.lower()
            raw = next((v for k, v in h.items() if k.lower() == low), None)
            if raw is None:
                return self.body if name == "_body" else None
        value = self._decode(raw)
        return join_array(value) if isinstance(value, list) else value

    def get_all(self, name: str) -> list[str]:
        """Every value of a header: all items of a multi-value header, and
        each occurrence of a header that repeats."""
        if self._h is None:
            self._parse()
        if self._pairs is None:
            raws = [self._h[name]] if name in self._h else []
        else:
            raws = [v for k, v in self._pairs if k == name]
        out: list[str] = []
        for raw in raws:
            value = self._decode(raw)
            out.extend(value if isinstance(value, list) else [value])
        return out

    def __contains__(self, name: str) -> bool:
        return self._raw(name) is not None

    @property
    def headers(self) -> dict[str, Value]:
        """All headers, decoded, in wire order; a repeated header keeps its first value."""
        h = self._h if self._h is not None else self._parse()
        if not self._encoded:  # JSON: values arrived decoded
            return {k: (v[:] if isinstance(v, list) else v) for k, v in h.items()} if self._pairs else dict(h)
        if self.format == "plain":
            fast = _decode_plain_values(h)
            if fast is not None:
                return fast
        return {k: self._decode(v) for k, v in h.items()}

    def pairs(self) -> list[tuple[str, Value]]:
        """All headers as decoded (name, value) pairs, repeats included, in wire order."""
        h = self._h if self._h is not None else self._parse()
        raw = self._pairs if self._pairs is not None else h.items()
        return [(k, self._decode(v)) for k, v in raw]

    def items(self) -> Iterator[tuple[str, Value]]:
        return iter(self.headers.items())

    def to_dict(self) -> dict[str, Any]:
        """FreeSWITCH's ``event json`` shape: headers, then ``_body`` if any."""
        d: dict[str, Any] = self.headers
        if self.body is not None:
            d["_body"] = self.body
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    def json_line(self) -> str:
        """`to_dict()` as one line of ASCII JSON (no raw control character can
        reach a terminal).  An event that came as compact, all-ASCII JSON is
        already that line and is returned as received — a header the switch
        repeated stays repeated there (read first-wins, it is `to_dict()`)."""
        if self.format == "json" and self._text:
            return self._text
        return ascii_json(self.to_dict())

    # --- typed fields everybody needs ----------------------------------------------

    @property
    def event_name(self) -> str:
        return self.get("Event-Name") or ""

    @property
    def subclass(self) -> str | None:
        return self.get("Event-Subclass")

    @property
    def name(self) -> str:
        """`Event-Name`, or the `Event-Subclass` of a CUSTOM event."""
        name = self.get("Event-Name") or ""
        if name == "CUSTOM":
            return self.get("Event-Subclass") or name
        return name

    @property
    def unique_id(self) -> str | None:
        return self.get("Unique-ID")

    @property
    def call_uuid(self) -> str | None:
        return self.get("Channel-Call-UUID")

    @property
    def other_leg_uuid(self) -> str | None:
        return self.get("Other-Leg-Unique-ID")

    @property
    def direction(self) -> str | None:
        return self.get("Call-Direction")

    @property
    def caller_number(self) -> str | None:
        return self.get("Caller-Caller-ID-Number")

    @property
    def caller_name(self) -> str | None:
        return self.get("Caller-Caller-ID-Name")

    @property
    def destination(self) -> str | None:
        return self.get("Caller-Destination-Number")

    @property
    def channel_name(self) -> str | None:
        return self.get("Channel-Name")

    @property
    def hangup_cause(self) -> str | None:
        return self.get("Hangup-Cause")

    @property
    def job_uuid(self) -> str | None:
        return self.get("Job-UUID")

    @property
    def hostname(self) -> str | None:
        return self.get("FreeSWITCH-Hostname")

    @property
    def sequence(self) -> int | None:
        return _int(self.get("Event-Sequence"))

    @property
    def timestamp(self) -> float | None:
        """`Event-Date-Timestamp` in seconds since the epoch."""
        us = _int(self.get("Event-Date-Timestamp"))
        return None if us is None else us / 1_000_000

    def __repr__(self) -> str:
        return f"<Event {self.name} {self.unique_id or ''} ({self.format})>".replace(" )", ")")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    # --- serialising, as FreeSWITCH does (the simulator and tests use these) -----------

    def _wire_pairs(self) -> list[tuple[str, Value]]:
        return [(k, v) for k, v in self.pairs() if k != "Content-Length"]

    def to_plain(self) -> str:
        lines = []
        for k, v in self._wire_pairs():
            if isinstance(v, list):
                v = join_array(v)
            lines.append(f"{k}: {url_encode(v)}\n")
        if self.body is not None:
            lines.append(f"Content-Length: {len(self.body.encode('utf-8'))}\n\n{self.body}")
        else:
            lines.append("\n")
        return "".join(lines)

    def to_xml(self) -> str:
        parts = ["<event>\n  <headers>\n"]
        for k, v in self._wire_pairs():
            for item in v if isinstance(v, list) else [v]:
                parts.append(f"    <{k}>{_xml_text(url_encode(item))}</{k}>\n")
        parts.append("  </headers>\n")
        if self.body is not None:
            parts.append(
                f"  <Content-Length>{len(self.body.encode('utf-8'))}</Content-Length>\n"
                f"  <body>{_xml_text(self.body)}  </body>\n"
            )
        parts.append("</event>\n")
        return "".join(parts)

    def serialize(self, format: str) -> str:
        """The payload of a ``text/event-<format>`` frame."""
        if format == "json":
            pairs = self._wire_pairs()
            if self.body is not None:
                pairs += [("Content-Length", str(len(self.body.encode("utf-8")))), ("_body", self.body)]
            # Written by hand so a repeated header stays repeated, as cJSON writes it.
            dump = _json_string
            return "{" + ",".join(f"{dump(k)}:{dump(v)}" for k, v in pairs) + "}"
        if format == "xml":
            return self.to_xml()
        return self.to_plain()


# A JSON "\ud800" escape decodes to a lone surrogate, which no UTF-8 writer
# accepts: such values get U+FFFD, like invalid bytes on the plain wire.
_LONE_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _scrub(value):
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


@lru_cache(maxsize=1024)  # the same few names are asked of every event
def _plain_name(name: str) -> bool:
    return _PLAIN_NAME.fullmatch(name) is not None


class _JsonObject(list):
    """The (name, value) pairs of a JSON object, repeats kept."""


# One decoder for every event (json.loads would make one per call).
_decode_json_pairs = json.JSONDecoder(object_pairs_hook=_JsonObject).decode
_STR = {str}
_STR_OR_LIST = {str, list}


def _string_lists(h: dict) -> bool:
    return all(all(type(x) is str for x in v) for v in h.values() if type(v) is list)


# One line of ASCII JSON (no raw control or bidi character can reach a terminal): event
# lines, recordings and the objects beside them are all written with it.
ascii_json = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


def _json_string(value: Value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _index(pairs: list[tuple[str, Value]]) -> tuple[dict[str, Value], list | None]:
    """First value of each name, plus the full pair list only when a name repeats."""
    h: dict[str, Value] = {}
    for k, v in pairs:
        h.setdefault(k, v)
    return h, (pairs if len(h) != len(pairs) else None)


def _decode_plain_values(h: dict[str, Value]) -> dict[str, Value] | None:
    """Decode every value of a plain event at once (what ``watch --format json``
    needs): one pass over the joined values instead of ~100 calls to unquote.
    None when a value holds the NUL the values are joined with."""
    values = list(h.values())
    joined = "\0".join(values)  # plain values are strings, never lists
    decoded = url_decode_block(joined)
    if decoded is not joined:
        values = decoded.split("\0")
    if len(values) != len(h):
        return None
    d = dict(zip(h, values))
    if ARRAY_PREFIX in decoded:
        for k, v in d.items():
            if v.startswith(ARRAY_PREFIX):
                d[k] = split_array(v)
    return d


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _xml_text(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
