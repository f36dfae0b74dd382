"""Is this text one compact JSON event, as cJSON writes it — checked without decoding it?

``watch --format json`` writes an event the switch sent as JSON exactly as it
came, so it must know the text is valid JSON that is safe on a terminal.
``json.loads`` would tell, but it builds ~220 strings and a dict per event,
the largest cost of the whole command.  This check answers for the shape
FreeSWITCH sends — one object, no whitespace, values that are strings or
arrays of strings, ASCII, the simple escapes — in a few passes over the text;
anything else answers False and is decoded the careful way.
"""

from __future__ import annotations

import re
import sys

# Possessive repeats (Python 3.11+) never look back, which halves the match time;
# older Pythons get the plain ones, same answers.
_ANY = "*+" if sys.version_info >= (3, 11) else "*"
_STRING = '"[^"]%s"' % _ANY
_NAME = '"(?!_body")[^"]%s"' % _ANY  # an event with a body is decoded: the body is its own attribute
_VALUE = r"(?:%s|\[(?:%s(?:,%s)%s)?\])" % (_STRING, _STRING, _STRING, _ANY)
# Matched against the text with its escapes removed, so a string cannot hold a quote.
_OBJECT = re.compile(r"\{(?:%s:%s(?:,%s:%s)%s)?\}" % (_NAME, _VALUE, _NAME, _VALUE, _ANY))
_CONTROL = bytes(range(32))  # never raw in a JSON string; the escaped forms are fine
_ESCAPE = re.compile(r'\\["\\/bfnrt]')  # the escapes that stand for one character (not \uXXXX)


def is_compact_event(text: str) -> bool:
    """True when ``text`` is valid JSON of that shape, all printable ASCII."""
    if not text.isascii():
        return False
    if "\\" in text:
        text = _without_escapes(text)
        if text is None:
            return False
    raw = text.encode("ascii")
    if len(raw.translate(None, _CONTROL)) != len(raw):
        return False
    return _OBJECT.fullmatch(text) is not None


def _without_escapes(text: str) -> str | None:
    """The text with each escape sequence removed, or None for a bad or ``\\u`` escape
    (a backslash is left over)."""
    text = _ESCAPE.sub("", text)  # left to right, as a JSON reader pairs "\\\\" and '\\"'
    return None if "\\" in text else text
