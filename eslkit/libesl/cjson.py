"""cJSON as libesl uses it: cJSON_Print's layout, cJSON_Parse's verdicts.

``ESLevent.serialize("json")`` is cJSON_Print of the event: formatted, one
header a line, a tab after each colon, arrays on one line with ``", "``::

    {
    \t"Event-Name":\t"CHANNEL_ANSWER",
    \t"variable_DP_MATCH":\t["1002", "1002"]
    }

Strings are escaped as cJSON escapes them — ``"``, ``\\`` and the control
characters, nothing else (no ``\\/``, UTF-8 kept as it is) — which is exactly
what the json module's encode_basestring does, at C speed.

Parsing uses the json module with cJSON's acceptance where FreeSWITCH's own
JSON could meet it: control characters may stand raw in strings, anything may
follow the value, and a ``\\u`` escape that is half a surrogate pair fails the
whole text.
"""

from __future__ import annotations

import json
import re
from json.encoder import encode_basestring as string
from typing import Union

Value = Union[str, list]


def print_object(names: list, values: list, arrays: list) -> str:
    """cJSON_Print of an object holding a string, or an array of strings, per name."""
    if not names:
        return "{\n}"
    if not any(arrays):
        items = map("\t{}:\t{}".format, map(string, names), map(string, values))
    else:
        items = map("\t{}:\t{}".format, map(string, names),
                    [_array(a) if a else string(v) for v, a in zip(values, arrays)])
    return "{\n" + ",\n".join(items) + "\n}"


def _array(items: list) -> str:
    return "[" + ", ".join(map(string, items)) + "]"


class _Object(list):
    """The (name, value) pairs of a JSON object, in order, repeats kept (cJSON keeps both)."""


def _refuse_constant(name: str):
    raise ValueError(f"cJSON has no {name}")


_DECODER = json.JSONDecoder(object_pairs_hook=_Object, strict=False, parse_constant=_refuse_constant)
_SURROGATE = re.compile("[\ud800-\udfff]")
# What surrogateescape makes of bytes that are not UTF-8; any other surrogate came from a \u escape.
_RAW_BYTE = re.compile("[\udc80-\udcff]")


def parse_object(text: str) -> list | None:
    """The top-level members of ``text`` as (name, value) pairs, as cJSON_Parse reads them;
    [] for JSON that is not an object; None where cJSON_Parse fails."""
    start = 0
    while start < len(text) and text[start] <= " ":  # cJSON skips every byte up to 32
        start += 1
    try:
        value, _ = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):
        return None
    if "\\u" in text and not _surrogates_ok(value, _RAW_BYTE.search(text) is not None):
        return None
    return value if type(value) is _Object else []


def _surrogates_ok(value, raw_bytes: bool) -> bool:
    """cJSON refuses a \\u escape of half a surrogate pair (json turns it into a lone surrogate)."""
    if isinstance(value, str):
        for s in _SURROGATE.findall(value):
            if not (raw_bytes and "\udc80" <= s <= "\udcff"):
                return False
        return True
    if isinstance(value, list):  # arrays, and objects as (name, value) pairs
        return all(_surrogates_ok(v, raw_bytes) for v in value)
    if isinstance(value, tuple):
        return _surrogates_ok(value[0], raw_bytes) and _surrogates_ok(value[1], raw_bytes)
    return True
