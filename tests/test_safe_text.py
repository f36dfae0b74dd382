"""The one sanitiser: network text can never style, move, retitle or clear a terminal."""

from __future__ import annotations

import io
import re

from hypothesis import given, strategies as st
from rich.console import Console

from eslkit.safe_text import ELLIPSIS, clean, safe_text, visible

HOSTILE = [
    "[bold red]Boss[/bold red]",  # Rich markup
    "\x1b[2J\x1b[HCleared",  # ANSI: clear screen, cursor home
    "\x1b]0;pwned\x07Title",  # OSC: retitle the window
    "\x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\",  # OSC 8 hyperlink
    "\x1bP1$qm\x1b\\DCS",  # DCS
    "\x9b31mC1 CSI",  # C1 CSI
    "\x9d0;x\x9cC1 OSC",
    "abc\u202edcba",  # right-to-left override
    "\u2066isolate\u2069",
    "nul\x00byte",
    "line\nbreak\rreturn\x08back",
    "\x7fdel",
    "sep\u2028arator",
    "zero\u200bwidth",
]

# Anything a terminal could act on: C0 (incl. ESC, CR, LF, BS), DEL, C1, bidi and separators.
DANGEROUS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")


def render(text, width=80) -> str:
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=True, color_system="truecolor").print(text)
    return out.getvalue()


def test_plain_text_is_unchanged():
    for s in ["Caller 6208", "José Müller", "李小龍", "📞 +1 (555) 0100", ""]:
        assert visible(s) == s


def test_each_hostile_value_is_made_visible():
    for s in HOSTILE:
        shown = visible(s)
        assert not DANGEROUS.search(shown), (s, shown)


def test_stand_ins_are_readable():
    assert visible("\x1b[31m") == "␛[31m"
    assert visible("a\x00b") == "a␀b"
    assert visible("\x7f") == "␡"
    assert visible("\x9b") == "<U+009B>"
    assert visible("x\u202ey") == "x<U+202E>y"
    assert visible("a\nb") == "a␊b"


def test_rich_markup_is_shown_literally():
    out = render(safe_text("[bold red]Boss[/bold red]"))
    assert "[bold red]Boss[/bold red]" in out
    assert "\x1b[1;31m" not in out  # never styled


def test_rendered_hostile_text_has_only_richs_own_escapes():
    for s in HOSTILE:
        out = render(safe_text(s, "bold"))
        # Strip the SGR sequences Rich itself writes; nothing else may remain.
        residue = re.sub(r"\x1b\[[0-9;]*m", "", out).rstrip("\n")
        assert not DANGEROUS.search(residue), (s, residue)


def test_invalid_utf8_and_lone_surrogates():
    assert visible(b"ok\xff\xfe") == "ok\ufffd\ufffd"
    shown = visible("a\udcffb")  # what surrogateescape leaves behind
    assert shown == "a<U+DCFF>b"
    shown.encode("utf-8")  # always encodable


def test_truncation_with_ellipsis():
    assert visible("abcdef", 4) == "abc" + ELLIPSIS
    assert visible("abcd", 4) == "abcd"
    assert clean("x" * 500) == "x" * 119 + ELLIPSIS
    assert len(visible("\x1b" * 50, 10)) == 10
    assert visible("anything", 0) == ""


def test_none_and_non_strings():
    assert visible(None) == ""
    assert visible(1234) == "1234"
    assert safe_text(None).plain == ""


@given(st.text())
def test_property_no_dangerous_character_survives(s):
    assert not DANGEROUS.search(visible(s))


@given(st.binary())
def test_property_bytes_always_give_encodable_text(b):
    visible(b).encode("utf-8")
