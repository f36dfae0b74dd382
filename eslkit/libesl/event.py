"""esl_event.c: libesl's event, line by line.

An event is an event id, an optional subclass name, headers in order and an
optional body.  A header has a name, a value and, once it holds several
values, an array (the value then reads ``ARRAY::a|:b``).  Lookups ignore case
(ASCII only, as strcasecmp) and take the first header of a name.  The rules
for adding a header are the C library's, bugs included, because old programs
see their results:

* an empty value deletes every header of that name instead of adding one;
* a value holding ``ARRAY::`` anywhere becomes an array of what follows the
  first seven bytes, split at ``|:``;
* ``name[i]`` writes element i of an array (up to 4000), padding with "";
* ``unshiftHeader`` on an existing header appends (ESL_STACK_UNSHIFT is
  TOP|PUSH and the code tests bits), and ``setPriority`` (TOP) makes a
  one-element array the first time.

The headers live in three parallel lists (names, values, arrays).  A received
plain event in FreeSWITCH's own shape (`_PlainEvent`) is read lazily: a lookup
reads the one line it needs, serialize("json") is made from the text, and the
lists are built only when something else needs them — that is what makes
recvEvent + getHeader faster than the C library.
"""

from __future__ import annotations

import re

from eslkit._headers import percent_decode_bytes, url_encode
from eslkit.event import EVENT_NAMES
from eslkit.libesl import cjson
from eslkit.libesl.url import decode, decode_bytes, encode, from_bytes, to_bytes

CUSTOM, CLONE = 0, 1
MESSAGE = EVENT_NAMES.index("MESSAGE")
SOCKET_DATA = EVENT_NAMES.index("SOCKET_DATA")
SERVER_DISCONNECTED = EVENT_NAMES.index("SERVER_DISCONNECTED")
_IDS = {name.lower(): i for i, name in enumerate(EVENT_NAMES)}

BOTTOM, TOP, PUSH, UNSHIFT = 0, 1, 2, 3  # esl_stack_t
PRIORITY_NAMES = ("NORMAL", "LOW", "HIGH")  # esl_priority_t 0, 1, 2


def name_event(name: str) -> int | None:
    """esl_name_event(): the event id of a name, any case, with or without 13 bytes of prefix
    ("SWITCH_EVENT_"); the lowest id either way matches."""
    data = to_bytes(name)
    found = [i for i in (_IDS.get(data.lower().decode("latin-1")),
                         _IDS.get(data[13:].lower().decode("latin-1")) if len(data) > 13 else None)
             if i is not None]
    return min(found) if found else None


def fold(name: str) -> str:
    """A header name as strcasecmp compares it: ASCII letters folded, nothing else."""
    if name.isascii():
        return name.lower()
    return to_bytes(name).lower().decode("utf-8", "surrogateescape")


def _fold_all(names: list) -> list:
    joined = "\0".join(names)  # C strings: no name holds a NUL
    if joined.isascii():
        return joined.lower().split("\0") if names else []
    return [fold(n) for n in names]


def _atoi(text: str) -> int:
    match = re.match(r"[ \t\n\v\f\r]*([+-]?\d+)", text)
    if not match:
        return 0
    value = int(match.group(1))
    return value if -2**31 <= value < 2**31 else -1  # overflow: out of the 0..4000 range either way


class EslEvent:
    """esl_event_t."""

    __slots__ = ("event_id", "subclass_name", "names", "values", "arrays", "body", "_folded", "_simple")

    def __init__(self) -> None:
        """An empty ESL_EVENT_CLONE event: id 0 (CUSTOM), no headers."""
        self.event_id = CUSTOM
        self.subclass_name: str | None = None
        self.names: list[str] = []
        self.values: list[str] = []
        self.arrays: list[list[str] | None] = []
        self.body: str | None = None
        self._folded: list[str] | None = []  # the names folded, built when first needed
        # Every header is a plain name and value that adding again gives back:
        # then a copy is a copy of the lists (esl_event_dup would rebuild the same).
        self._simple = True

    @classmethod
    def create(cls, event_id: int, subclass_name: str | None = None) -> "EslEvent | None":
        """esl_event_create_subclass(); None where it fails (a subclass on another type than CUSTOM)."""
        if event_id not in (CLONE, CUSTOM) and subclass_name is not None:
            return None
        ev = cls()
        if event_id != CLONE:
            ev.event_id = event_id
            ev.add_header_string(BOTTOM, "Event-Name", EVENT_NAMES[event_id])
        if subclass_name is not None:
            ev.subclass_name = subclass_name
            ev.add_header_string(BOTTOM, "Event-Subclass", subclass_name)
        return ev

    @property
    def name(self) -> str:
        """esl_event_name(event_id)."""
        return EVENT_NAMES[self.event_id]

    # --- lookups ---------------------------------------------------------------------

    def find(self, name: str) -> int:
        """esl_event_get_header_ptr(): the position of the first header of that name, or -1."""
        folded = self._folded
        if folded is None:
            folded = self._folded = _fold_all(self.names)
        try:
            return folded.index(fold(name))
        except ValueError:
            return -1

    def get_header(self, name: str | None, idx: int = -1) -> str | None:
        """esl_event_get_header_idx(): a value, an array element (idx >= 0), or the body for "_body"."""
        if name is None:
            return None
        i = self.find(name)
        if i >= 0:
            if idx > -1:
                array = self.arrays[i]
                return array[idx] if array is not None and idx < len(array) else None
            return self.values[i]
        if name == "_body":
            return self.body
        return None

    # --- changes ---------------------------------------------------------------------

    def _insert(self, pos: int, name: str, value: str, array: list | None) -> None:
        self.names.insert(pos, name)
        self.values.insert(pos, value)
        self.arrays.insert(pos, array)
        if self._folded is not None:
            self._folded.insert(pos, fold(name))
        self._simple = False

    def _delete(self, pos: int) -> None:
        del self.names[pos], self.values[pos], self.arrays[pos]
        if self._folded is not None:
            del self._folded[pos]

    def del_header(self, name: str, value: str | None = None) -> None:
        """esl_event_del_header_val(): every header of that name (with that exact value, if given)."""
        key = fold(name)
        for i in range(len(self.names) - 1, -1, -1):
            if fold(self.names[i]) == key and (not value or self.values[i] == value):
                self._delete(i)

    def add_header_string(self, stack: int, name: str, data: str | None) -> bool:
        """esl_event_add_header_string(): False (ESL_FAIL) only for a NULL value."""
        if data is None:
            return False
        self._add(stack, name, data)
        return True

    def _add(self, stack: int, name: str, data: str) -> None:
        """esl_event_base_add_header(), branch for branch."""
        if name == "_body":
            self.body = data
        index_at = name.find("[")
        index = 0
        if index_at >= 0:
            index = _atoi(name[index_at + 1:])
            name = name[:index_at]
        pos, fresh, exists, redraw = -1, False, False, False
        value: str | None = None
        array: list | None = None
        if index_at >= 0 or stack & PUSH or stack & UNSHIFT:
            pos = self.find(name)
            fresh = pos < 0 and index_at >= 0
            if pos >= 0:
                value, array = self.values[pos], self.arrays[pos]
            if pos >= 0 or fresh:
                if index_at >= 0:
                    if not -1 < index <= 4000:
                        return
                    if array is not None and index < len(array):
                        array[index] = data  # replaced in place; the value is not redrawn
                        self._simple = False
                        return
                    array = (array or []) + [""] * (index - len(array or [])) + [data]
                    exists = not fresh
                    redraw = True
                else:  # ESL_STACK_PUSH or UNSHIFT (TOP has the UNSHIFT bit too)
                    exists = True
                    stack &= ~(TOP | BOTTOM)
        if pos < 0 and not fresh:
            if not data:
                self.del_header(name)
                return
            if "ARRAY::" in data:
                self.add_array(name, data)
                return
        if redraw or stack & PUSH or stack & UNSHIFT:
            if not redraw:
                if value is not None and not array:
                    array, value = [value], None
                array = list(array or [])
                if stack & PUSH:
                    array.append(data)
                else:
                    array.insert(0, data)
            value = ("ARRAY::" if len(array) > 1 else "") + "|:".join(array)
        else:
            value = data
        if exists:
            self.values[pos], self.arrays[pos] = value, array
            self._simple = False
        elif stack & TOP:
            self._insert(0, name, value, array)
        else:
            simple = self._simple and array is None and name != "_body"
            self._insert(len(self.names), name, value, array)
            self._simple = simple

    def add_array(self, name: str, value: str) -> None:
        """esl_event_add_array(): push what follows the first 7 bytes, split at "|:"."""
        data = to_bytes(value)
        if len(data) < 8:
            return
        for item in data[7:].decode("utf-8", "surrogateescape").split("|:"):
            self.add_header_string(PUSH, name, item)

    def add_wire_header(self, name: str, value: str) -> None:
        """One decoded header line of a received event (esl_recv_event)."""
        if fold(name) == "event-name":
            self.del_header("event-name")
            found = name_event(value)
            if found is not None:
                self.event_id = found
        if value.startswith("ARRAY::"):
            self.add_array(name, value)
        else:
            self._add(BOTTOM, name, value)

    def set_priority(self, priority: int) -> None:
        """esl_event_set_priority()."""
        name = PRIORITY_NAMES[priority] if 0 <= priority < len(PRIORITY_NAMES) else "INVALID"
        self._add(TOP, "priority", name)

    # --- copies and text -----------------------------------------------------------------

    def dup(self) -> "EslEvent":
        """esl_event_dup(): the headers added again, one by one, to a new event."""
        if self._simple and self.subclass_name is None:
            ev = EslEvent()
            ev.names, ev.values = self.names[:], self.values[:]
            ev.arrays = [a[:] if a else None for a in self.arrays] if any(self.arrays) else self.arrays[:]
            ev._folded = self._folded[:] if self._folded is not None else None
        else:
            ev = EslEvent.create(CLONE, self.subclass_name)
            for name, value, array in zip(self.names, self.values, self.arrays):
                if self.subclass_name is not None and name == "Event-Subclass":
                    continue
                if array:
                    for item in array:
                        ev.add_header_string(PUSH, name, item)
                else:
                    ev.add_header_string(BOTTOM, name, value)
        ev.event_id = self.event_id
        if self.body is not None:
            ev.body = self.body
        return ev

    def serialize(self, encode_values: bool = True) -> str:
        """esl_event_serialize(): "Name: value" lines (URL-encoded, or as they are), then the body."""
        lines = []
        size = 1536  # the C code's encode buffer: it grows with the values but never shrinks
        for i, (name, value, array) in enumerate(zip(self.names, self.values, self.arrays)):
            if array:  # only an array's "ARRAY::a|:b" can outgrow the buffer: work the size out
                size = max([size, sum(len(to_bytes(x)) * 3 + 1 for x in array)]
                           + [len(to_bytes(v)) * 3 + 1 for v, a in zip(self.values[:i], self.arrays[:i])
                              if not a])
                text = encode(value, size) if encode_values else _cut(value, size)
            else:  # never cut: the buffer holds three times the value
                text = url_encode(value) if encode_values else value
            lines.append(f"{name}: {text or '_undef_'}\n")
        body = self.body
        if body:
            lines.append(f"Content-Length: {len(to_bytes(body))}\n\n{body}")
        else:
            lines.append("\n")
        return "".join(lines)

    def serialize_json(self) -> str:
        """esl_event_serialize_json(): cJSON_Print of the headers, then Content-Length and _body."""
        names, values, arrays = self.names, self.values, self.arrays
        if self.body is not None:
            names = names + ["Content-Length", "_body"]
            values = values + [str(len(to_bytes(self.body))), self.body]
            arrays = arrays + [None, None]
        return cjson.print_object(names, values, arrays)


def _cut(value: str, size: int) -> str:
    data = to_bytes(value)
    return value if len(data) < size else from_bytes(data[: size - 1])


# --- events from the wire and from JSON ---------------------------------------------------


def from_json(text: str) -> EslEvent | None:
    """esl_event_create_json(); None where cJSON cannot parse the text."""
    members = cjson.parse_object(text)
    if members is None:
        return None
    ev = EslEvent()
    for name, value in members:
        name = _c_string(name)
        if isinstance(value, str):
            value = _c_string(value)
            if fold(name) == "_body":
                body = format_body(value)
                if body is not None:
                    ev.body = body
                continue
            if fold(name) == "event-name":
                ev.del_header("event-name")
                found = name_event(value)
                if found is not None:
                    ev.event_id = found
            ev.add_header_string(BOTTOM, name, value)
        elif isinstance(value, list) and type(value) is not cjson._Object:
            for item in value:
                if isinstance(item, str):
                    ev.add_header_string(PUSH, name, _c_string(item))
    return ev


def _c_string(value: str) -> str:
    nul = value.find("\0")
    return value if nul < 0 else value[:nul]


_CONVERSION = re.compile(r"%([-+ #0'I]*)(\d*|\*)(\.\d*|\.\*)?(hh|h|ll|l|L|q|j|z|Z|t)?(.?)", re.S)


def format_body(fmt: str) -> str | None:
    """The body of a JSON event: libesl passes the text to esl_event_add_body() as a printf
    format (with the arguments "%s", ""). None where vasprintf fails (a lone % at the end)."""
    if "%" not in fmt:
        return fmt
    args = ["%s", ""]
    out, pos = [], 0
    for match in _CONVERSION.finditer(fmt):
        out.append(fmt[pos:match.start()])
        pos = match.end()
        flags, width, precision, length, conv = match.groups()
        if conv == "%" and not (flags or width or precision or length):
            out.append("%")
        elif conv == "s" and length is None and "*" not in width + (precision or "") and args:
            out.append(("%" + flags.replace("'", "").replace("I", "") + width + (precision or "") + "s")
                       % args.pop(0))
        elif conv == "" or (conv == "s" and length is not None):
            return None  # an unfinished conversion: vasprintf returns -1
        else:
            out.append(match.group(0))  # undefined in C (the argument is not what it expects)
    out.append(fmt[pos:])
    return "".join(out)


_NOT_COLON_OR_NL = bytes(b for b in range(256) if b not in b":\n")
_BLANK_LINE = re.compile(rb"\n\n")  # the regex engine finds it faster than bytes.find
_SHAPES: dict[tuple, bytes] = {}


def _colon_lines(block: bytes) -> int | None:
    """The number of lines of ``block`` if each holds exactly one colon, else None."""
    kept = block.translate(None, _NOT_COLON_OR_NL)
    lines = (len(kept) + 1) // 2
    return lines if kept == _shape(lines, b":\n", b":") else None


def _shape(lines: int, line: bytes, last: bytes) -> bytes:
    """``line`` repeated for all lines but the last, then ``last``: what a block of
    ``lines`` lines leaves after translate() kept only the separators."""
    key = (lines, line, last)
    shape = _SHAPES.get(key)
    if shape is None:
        if len(_SHAPES) > 4096:
            _SHAPES.clear()
        shape = _SHAPES[key] = line * (lines - 1) + last
    return shape


def from_plain(data: bytes) -> EslEvent:
    """The inner event of a text/event-plain frame, as esl_recv_event() builds it from the
    frame's body (``data``, cut at its first NUL as strdup() would)."""
    nul = data.find(b"\0")
    if nul >= 0:
        data = data[:nul]
    return _PlainEvent.read(data) or _from_plain_slow(data)


# Filled in on first use by a _PlainEvent.
_BUILT = frozenset(("names", "values", "arrays", "_folded", "_simple"))


class _PlainEvent(EslEvent):
    """A received text/event-plain event whose every header line holds one colon — the
    shape FreeSWITCH writes, its values URL-encoded — read lazily.

    In such a block what C makes of a header depends only on the lines of that name
    (and ``name[i]`` lines), so ``get_header`` reads the one line it needs from the
    text, and ``serialize_json`` writes cJSON's text from it (`_plain_json`); the header
    lists are built when anything else is asked (iterating, the plain serialisation, a
    change) or a lookup meets something unusual (a repeated name, an empty or
    ``ARRAY::`` value).  A copy shares the text.
    """

    __slots__ = ("_data", "_block", "_text", "_low", "_lines", "_lazy", "_copy")

    @classmethod
    def read(cls, data: bytes) -> "_PlainEvent | None":
        # Most events have no body: their header block ends where the data does (if an
        # earlier empty line ends it, that block fails the colon count).  Else search.
        end = len(data) - 2 if data.endswith(b"\n\n") else 0
        lines = _colon_lines(data[:end]) if end > 0 else None
        if lines is None:
            found = _BLANK_LINE.search(data)
            if found is None or found.start() in (0, end):
                return None
            end = found.start()
            lines = _colon_lines(data[:end])
            if lines is None:
                return None
        block = data[:end]
        if not block.isascii():
            return None
        text = block.decode("ascii")
        if text.startswith("_body:") or "\n_body:" in text:
            return None  # a "_body" header sets the body
        low = "\n" + text.lower()
        ev = cls.__new__(cls)
        ev._data, ev._block, ev._text, ev._low, ev._lines, ev._lazy = data, block, text, low, lines, True
        ev._copy, ev.subclass_name, ev.body = False, None, None
        if "\ncontent-length:" in low and ev.get_header("content-length") is not None:
            ev.body = from_bytes(data[end + 2:])  # whatever follows, as strdup() copies it
        return ev

    def __getattr__(self, attr: str):  # only for slots not filled in yet
        if attr in _BUILT:
            self._build()
        elif attr == "event_id":
            self.event_id = self._event_id()
        else:
            raise AttributeError(attr)
        return getattr(self, attr)

    def _build(self) -> None:
        lists = _plain_lists(self._text, self._low, self._lines)
        if lists is None:  # the C loop; and for a copy, esl_event_dup() after it
            full = _from_plain_slow(self._data)
            if self._copy:
                full = full.dup()
            self.names, self.values, self.arrays, self._simple = full.names, full.values, full.arrays, full._simple
        else:  # copying changes nothing here
            (self.names, self.values, self.arrays), self._simple = lists, True
        self._folded, self._lazy = None, False

    def _value(self, at: int, key: str) -> str:
        """The value of the line that starts at ``at``: after the colon and its spaces, decoded."""
        text = self._text
        start = at + len(key) + 1
        stop = text.find("\n", start)
        return decode(text[start: stop if stop >= 0 else len(text)].lstrip(" "))

    def _event_id(self) -> int:
        """Each Event-Name line sets the id when it names an event (esl_recv_event)."""
        event_id, at = CUSTOM, self._low.find("\nevent-name:")
        while at >= 0:
            found = name_event(self._value(at, "event-name"))
            if found is not None:
                event_id = found
            at = self._low.find("\nevent-name:", at + 1)
        return event_id

    def get_header(self, name: str | None, idx: int = -1) -> str | None:
        if not self._lazy or name is None:
            return EslEvent.get_header(self, name, idx)
        key = fold(name)
        head = "\n" + key
        low = self._low
        at = low.find(head + ":")
        if ":" in key or "\n" in key or "[" in key or low.find(head + "[") >= 0 \
                or (at >= 0 and low.find(head + ":", at + 1) >= 0):
            self._build()
            return EslEvent.get_header(self, name, idx)
        if at < 0:
            return self.body if name == "_body" else None
        value = self._value(at, key)
        if not value or "ARRAY::" in value:
            self._build()
            return EslEvent.get_header(self, name, idx)
        return value if idx < 0 else None

    def serialize_json(self) -> str:
        if self._lazy:
            headers = _plain_json(self._block, self._low, self._lines)
            if headers is not None:
                text = headers.decode("utf-8", "surrogateescape")
                if self.body is not None:
                    text += (f',\n\t"Content-Length":\t"{len(to_bytes(self.body))}",\n\t"_body":\t'
                             f'{cjson.string(self.body)}')
                return "{\n\t" + text + "\n}"
        return EslEvent.serialize_json(self)

    def dup(self) -> EslEvent:
        if not self._lazy:
            return EslEvent.dup(self)
        ev = _PlainEvent.__new__(_PlainEvent)
        ev._data, ev._block, ev._text, ev._low = self._data, self._block, self._text, self._low
        ev._lines, ev._lazy, ev.subclass_name, ev.body = self._lines, True, None, self.body
        ev._copy = True
        return ev


def _plain_json(block: bytes, low: str, lines: int) -> bytes | None:
    """What cJSON_Print writes for the headers of a block in FreeSWITCH's own shape — every
    line "Name: value", no other space, no "%" in a name — made without building lists.

    Each ": " becomes a NUL and each line end a \\x01, the values are decoded all at
    once, the characters JSON escapes are escaped (one replace each), and the two marks
    become cJSON's separators.  None where that cannot be exact: anything _plain_lists
    would not take, a decoded mark (%00, %01), an array not in the plain case."""
    if b"[" in block or low.count("\nevent-name:") > 1:
        return None
    # (each line holds one colon: read() saw to it)
    if block.translate(None, _NOT_SPACE_OR_NL) != _shape(lines, b" \n", b" ") or _NOT_A_VALUE.search(block):
        return None  # a space elsewhere than after the colon, or no value after ": "
    marked = block.replace(b":", b"").replace(b" ", b"\0").replace(b"\n", b"\1")
    if b"%" in marked:
        marks = marked.translate(None, _NOT_MARK_OR_PERCENT)
        if marks[:1] == b"%" or b"\1%" in marks:
            return None  # a "%" in a name: names are not decoded
        try:
            marked = percent_decode_bytes(marked)
        except ValueError:
            return None  # a "%" without two hex digits: sscanf's rules, slowly
    special = marked.translate(None, _NOT_JSON_SPECIAL)
    if special != _shape(lines, b"\0\1", b"\0"):
        if special.count(b"\0") != lines or special.count(b"\1") != lines - 1:
            return None
        for char in sorted(set(special) - {0, 1}, key=lambda c: c != 0x5C):  # backslash first
            marked = marked.replace(bytes((char,)), _JSON_ESCAPES[char])
    arrays = b"ARRAY::" in marked
    if arrays:
        marked = _json_arrays(marked, low)
        if marked is None:
            return None
    out = b'"' + marked.replace(b"\0", b'":\t"').replace(b"\1", b'",\n\t"') + b'"'
    return out.replace(b'"\x02', b'["').replace(b'\x03"', b'"]') if arrays else out


def _json_arrays(marked: bytes, low: str) -> bytes | None:
    """Each FreeSWITCH array value (an "ARRAY::a|:b" of a name of its own, its first item
    not empty) as the items of a cJSON array between \\x02 and \\x03, for the caller to
    turn into brackets once the quotes are in.  None for an array out of the plain case."""
    pieces, pos = [], 0
    at = marked.find(b"ARRAY::")
    while at >= 0:
        stop = marked.find(b"\1", at)
        stop = len(marked) if stop < 0 else stop
        value = marked[at + 7: stop]
        items = value.split(b"|:")
        if marked[at - 1] != 0 or not items[0] or b"ARRAY::" in value:
            return None  # not at the start of the value, or not the plain case
        start = marked.rfind(b"\1", 0, at) + 1
        if low.count("\n" + marked[start: at - 1].decode("ascii").lower() + ":") != 1:
            return None  # another header of that name takes the items
        pieces += [marked[pos: at], b"\x02", b'", "'.join(items), b"\x03"]
        pos = stop
        at = marked.find(b"ARRAY::", stop)
    pieces.append(marked[pos:])
    return b"".join(pieces)


_NOT_SPACE_OR_NL = bytes(b for b in range(256) if b not in b" \n")
_NOT_A_VALUE = re.compile(rb":(?! [^\n])")  # a colon not followed by a space and a value
_NOT_JSON_SPECIAL = bytes(b for b in range(256) if not (b < 0x20 or b in b'"\\'))
_JSON_ESCAPES = {c: ("\\u%04x" % c).encode() for c in range(0x20)}
_JSON_ESCAPES.update({0x08: b"\\b", 0x0C: b"\\f", 0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t",
                      0x22: b'\\"', 0x5C: b"\\\\"})
_NOT_MARK_OR_PERCENT = bytes(b for b in range(256) if b not in b"\0\1%")


def _plain_lists(text: str, low: str, lines: int) -> tuple | None:
    """The header lists of a block of ``lines`` lines that each hold one colon, when every
    line is a plain "Name: value" (one space, a value, no "name[i]", one Event-Name, arrays
    of their own name): a few passes at C speed.  None for anything else."""
    if "[" in text or low.count("\nevent-name:") > 1:
        return None
    parts = text.replace(": ", "\n").split("\n")
    if len(parts) != 2 * lines:  # a line without ": "
        return None
    names, values = parts[0::2], parts[1::2]
    raw = "\0".join(values)  # no value holds a NUL
    if raw[:1] == " " or "\0 " in raw or "" in values:  # spaces to skip, or an empty value
        return None
    arrays: list = [None] * len(names)
    if "%" in raw:
        try:  # all values at once: a decoded NUL (%00, which cuts a C string short) shows as one too many
            decoded = percent_decode_bytes(raw.encode("ascii"))
        except ValueError:
            return None  # a "%" without two hex digits: sscanf's rules, slowly
        if decoded.count(b"\0") != len(values) - 1:
            return None
        joined = decoded.decode("utf-8", "surrogateescape")
        values = joined.split("\0")
        at = joined.find("ARRAY::")
        while at >= 0:
            i = joined.count("\0", 0, at)
            value = values[i]
            items = value[7:].split("|:")
            # The plain case: an array of its own name whose first item is a real value.
            if not value.startswith("ARRAY::") or not items[0] or "ARRAY::" in items[0] \
                    or low.count("\n" + fold(names[i]) + ":") != 1:
                return None
            arrays[i] = items
            values[i] = value if len(items) > 1 else items[0]
            after = joined.find("\0", at)  # on to the next value
            at = joined.find("ARRAY::", after) if after >= 0 else -1
    return names, values, arrays


def _from_plain_slow(data: bytes) -> EslEvent:
    """The C loop itself, on a copy of the bytes where it writes its NULs: a line without a
    colon takes its value from the next colon on (strchr does not stop at the line's end)."""
    buf = bytearray(data)
    ev = EslEvent()
    beg = 0
    while True:
        c = _strchr(buf, 0x0A, beg)
        if c < 0:
            break
        hval = -1
        col = _strchr(buf, 0x3A, beg)
        if col >= 0:
            hval = col + 1
            buf[col] = 0
            while hval < len(buf) and buf[hval] == 0x20:
                hval += 1
        buf[c] = 0
        if hval >= 0:
            raw = _c_bytes(buf, hval)
            value = decode_bytes(raw)
            buf[hval: hval + len(value)] = value  # esl_url_decode() works in place
            if hval + len(value) < len(buf):
                buf[hval + len(value)] = 0
            ev.add_wire_header(from_bytes(_c_bytes(buf, beg)), from_bytes(value))
        beg = c + 1
        if beg < len(buf) and buf[beg] == 0x0A:
            beg += 1
            break
    if ev.find("content-length") >= 0:
        ev.body = from_bytes(_c_bytes(buf, beg))
    return ev


def from_frame(headers, body: bytes) -> EslEvent:
    """The event esl_recv_event() makes of a whole frame (an ESL_EVENT_SOCKET_DATA): its
    header lines, URL-decoded, and its body if it has a Content-Length."""
    ev = EslEvent()
    ev.event_id = SOCKET_DATA
    names = ["Event-Name"]
    values = ["SOCKET_DATA"]
    for name, value in headers:
        value = decode(value.lstrip(" \t"))
        if not value or "ARRAY::" in value or "[" in name or name == "_body":
            break  # not the plain case: header by header
        names.append(name)
        values.append(value)
    else:  # every header is a plain "Name: value": added, they just line up
        ev.names, ev.values, ev.arrays = names, values, [None] * len(names)
        ev._folded = _fold_all(names)
        if "content-length" in ev._folded:
            ev.body = from_bytes(body)
        return ev
    ev._add(BOTTOM, "Event-Name", "SOCKET_DATA")
    for name, value in headers:
        value = decode(value.lstrip(" \t"))
        if value.startswith("ARRAY::"):
            ev.add_array(name, value)
        else:
            ev._add(BOTTOM, name, value)
    if ev.find("content-length") >= 0:
        ev.body = from_bytes(body)
    return ev


def _strchr(buf: bytearray, byte: int, start: int) -> int:
    """strchr() on the C string at ``start``: -1 past its NUL."""
    nul = buf.find(0, start)
    return buf.find(byte, start, len(buf) if nul < 0 else nul)


def _c_bytes(buf: bytearray, start: int) -> bytes:
    nul = buf.find(0, start)
    return bytes(buf[start: len(buf) if nul < 0 else nul])
