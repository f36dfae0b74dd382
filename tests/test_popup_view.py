"""The popup panel and the JSON writer, rendered from snapshots the tracker made
from the captures, at fixed widths, on a StringIO console (the view never
looks at the terminal); and hostile caller names."""

from __future__ import annotations

import io
import json

import pytest
from rich.cells import cell_len
from rich.console import Console

from eslkit.calls import RECORD_KEYS, CallTracker, LegView
from eslkit.protocol import EventFrame, Parser
from eslkit.views.popup import JsonWriter, PopupSnapshot, PopupView, format_seconds
from eslkit.views.theme import THEME


def render(snapshot: PopupSnapshot, width: int = 80, color: bool = False) -> str:
    console = Console(file=io.StringIO(), width=width, theme=THEME, force_terminal=color,
                      color_system="truecolor" if color else None, legacy_windows=False)
    console.print(PopupView(snapshot))
    return console.file.getvalue()


def states(captures, name, ext):
    """One snapshot per state change, as the command would show it."""
    parser = Parser()
    tracker = CallTracker({ext})
    out = []
    for frame in parser.feed((captures / name).read_bytes()):
        if isinstance(frame, EventFrame):
            for leg in tracker.feed(frame.event):
                legs = tuple(tracker.active(ext)) or (leg,)
                out.append(PopupSnapshot(exts=(ext,), legs=legs, recent=tuple(tracker.recent(ext)),
                                         connection="connected to 127.0.0.1:8021", now=tracker.now + 2))
    return out


def test_each_state_of_scenario_queue(captures):
    ringing, answered, ended = states(captures, "scenario_queue_plain.raw", "1001")
    text = render(ringing)
    assert "1001 · Ringing" in text and "Caller 6208" in text and "6208" in text
    assert "Dialled 2000" in text and "d9001bbd" in text and "0:02" in text
    assert "● connected to 127.0.0.1:8021" in text
    text = render(answered)
    assert "1001 · Connected" in text and "Connected  0:02" in text
    text = render(ended)
    assert "1001 · Ended" in text and "talked 0:05" in text and "NORMAL_CLEARING" in text
    assert "Recent calls" in text and "Answered" in text


def test_answered_elsewhere_names_the_winner(captures):
    _, ended = states(captures, "scenario_queue_plain.raw", "1002")
    # the tracker saw the whole call, so it knows 1001 took it
    text = render(ended)
    assert "1002 · Answered by 1001" in text and "LOSE_RACE" in text


def test_missed(captures):
    _, missed = states(captures, "scenario_noanswer_plain.raw", "1002")
    text = render(missed)
    assert "1002 · Missed" in text and "rang 0:06" in text and "ORIGINATOR_CANCEL" in text


def test_missed_calls_are_highlighted_in_recent(captures):
    _, missed = states(captures, "scenario_noanswer_plain.raw", "1002")
    plain = render(missed)
    coloured = render(missed, color=True)
    assert "Missed" in plain
    # the recent row carries the esl.missed style (bold red) — a colour from the theme
    row = next(line for line in coloured.splitlines() if "Caller 6208" in line and "Missed" in line and "0:06" in line)
    assert "\x1b[1;31m" in row


def test_idle_line():
    text = render(PopupSnapshot(exts=("1001",), connection="connected to 127.0.0.1:8021", now=0))
    assert "waiting for calls on 1001" in text
    text = render(PopupSnapshot(exts=("1001",), connection="reconnecting — the switch at x disconnected: gone",
                                connected=False, now=0))
    assert "○ reconnecting — the switch at x disconnected: gone" in text


@pytest.mark.parametrize("width", [40, 80, 160])
def test_width_comes_from_the_render_options(captures, width):
    ringing = states(captures, "scenario_queue_plain.raw", "1001")[0]
    lines = render(ringing, width).splitlines()
    assert max(len(line) for line in lines) <= width
    assert lines[0].startswith("╭─ 1001")


HOSTILE = {
    "markup": "[bold red]BOSS[/] [link=http://evil]x[/link]",
    "ansi": "\x1b[2J\x1b[H\x1b[31mred",
    "osc": "\x1b]0;retitled\x07\x1b]8;;http://evil\x1b\\click",
    "bidi": "\u202eevil\u202c \u2066x\u2069",
    "c1": "\x9b2J \x85 x",
    "huge": "N" * 10_000,
}


def hostile_leg(name: str) -> LegView:
    return LegView(ext="1001", state="ringing", leg_uuid="b" * 36, call_uuid="a" * 36,
                   caller_name=name, caller_number=name[:40], created=0.0, time=0.0,
                   contact={"number": "1", "name": name, "company": name})


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_caller_names_never_reach_the_terminal(kind):
    name = HOSTILE[kind]
    snap = PopupSnapshot(exts=("1001",), legs=(hostile_leg(name),), now=1.0,
                         recent=(LegView(ext="1001", state="ended", outcome="missed", leg_uuid="c", call_uuid="d",
                                         caller_name=name, caller_number=name, ended_at=0.5),),
                         connection="connected")
    for color in (False, True):
        out = render(snap, 80, color=color)
        if not color:
            assert "\x1b" not in out
            assert max(cell_len(line) for line in out.splitlines()) <= 80
        else:  # only the theme's own SGR sequences: no clear, no cursor move, no OSC, no title
            for bad in ("\x1b[2J", "\x1b[H", "\x1b]", "\x07", "\x9b", "\u202e", "\u2066", "\x85"):
                assert bad not in out
        assert len(out) < 6000  # 10 kB names are cut
    plain = render(snap, 80)
    if kind == "markup":
        assert "[bold red]BOSS[/]" in plain  # shown literally
    if kind == "ansi":
        assert "␛[2J" in plain
    if kind == "bidi":
        assert "<U+202E>" in plain
    if kind == "huge":
        assert "…" in plain


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_caller_names_in_json(kind):
    stream = io.StringIO()
    JsonWriter(stream).write(hostile_leg(HOSTILE[kind]))
    line = stream.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    assert line.isascii() and "\x1b" not in line and "\x07" not in line
    record = json.loads(line)
    assert tuple(record) == RECORD_KEYS
    assert record["caller_name"] == HOSTILE[kind]  # the value itself, for scripts


def test_format_seconds():
    assert [format_seconds(s) for s in (None, 0, 5.4, 65, 3725)] == ["–", "0:00", "0:05", "1:05", "1:02:05"]


def test_docs_show_what_the_view_renders(captures, monkeypatch):
    """docs/popup.md's renderings of ended / answered elsewhere / missed / idle are the real view."""
    import time as _time
    from pathlib import Path

    monkeypatch.setenv("TZ", "UTC")
    _time.tzset()
    try:
        docs = Path(__file__).resolve().parents[1] / "docs" / "popup.md"
        text = "\n".join(line.rstrip() for line in docs.read_text(encoding="utf-8").splitlines())

        def block(snap):
            return "\n".join(line.rstrip() for line in render(snap, 72).rstrip().splitlines())

        snaps = _with_contact(captures, {"name": "Ada Lovelace", "company": "Analytical Engines Ltd"})
        assert block(snaps[1]) in text  # connected
        assert block(snaps[2]) in text  # ended
        assert block(states(captures, "scenario_queue_plain.raw", "1002")[-1]) in text
        assert block(states(captures, "scenario_noanswer_plain.raw", "1002")[-1]) in text
        assert block(PopupSnapshot(exts=("1001",), connection="connected to 127.0.0.1:8021", now=0)) in text
    finally:
        monkeypatch.delenv("TZ")
        _time.tzset()


def test_every_style_the_popup_names_is_in_the_theme():
    import re
    from pathlib import Path

    import eslkit.app.demo as demo_module
    import eslkit.views.popup as popup_module

    used = set()
    for module in (popup_module, demo_module):
        used |= set(re.findall(r"esl\.[a-z_]+", Path(module.__file__).read_text()))
    missing = {name for name in used if name not in THEME.styles}
    assert used and not missing


B_CAPTURES = __import__("pathlib").Path(__file__).parent / "data" / "fs-captures" / "1.10.12-b"


def test_hold_shows_on_hold_then_connected_again():
    snaps = states(B_CAPTURES, "scenario_hold_plain.raw", "1001")
    labels = [next(line for line in render(s).splitlines() if line.startswith("╭─ 1001")) for s in snaps]
    assert ["On hold" in label for label in labels] == [False, False, True, False, False]
    assert "Status  On hold  0:04" in render(snaps[2])  # the talk timer runs on (hold at 1.6 s, +2 s)
    assert "Connected" in labels[3]


def test_fifo_keeps_showing_the_caller_after_the_switch_flips_its_caller_id():
    text = render(states(B_CAPTURES, "scenario_fifo_1002_plain.raw", "1002")[-1])
    assert "Caller 6208" in text and "Outbound Call" not in text
    assert "Number  6208" in text and "Queue   2000" in text


def test_click_to_dial_is_an_outgoing_call_to_the_far_party():
    ringing, answered, known, ended = states(B_CAPTURES, "scenario_agent_outbound_plain.raw", "1001")
    text = render(ringing)
    assert "To     …" in text and "Agent 1001" not in text and "Caller" not in text
    assert "To     …" in render(answered)  # the far leg is dialled right after the agent picks up
    text = render(known)
    assert "To     6208" in text and "1001 · Connected" in text
    text = render(ended)
    assert "To     6208" in text and "talked 0:06" in text
    row = next(line for line in text.splitlines() if "Answered" in line and ":" in line[:9])
    assert "→ 6208" in row


def test_a_transferred_call_says_who_sent_it():
    snaps = states(B_CAPTURES, "scenario_blind_transfer_plain.raw", "1002")
    text = render(snaps[2])  # the transferred call ringing 1002
    assert "From    1001 (transferred)" in text and "Caller 6208" in text
    assert "From" not in render(snaps[0])


# --- the panel a new user expects (issue 20) -----------------------------------------------


def _with_contact(captures, contact):
    parser = Parser()
    tracker = CallTracker({"1001"}, lookup=lambda number: {"number": number, **contact})
    snaps = []
    for frame in parser.feed((captures / "scenario_queue_plain.raw").read_bytes()):
        if isinstance(frame, EventFrame):
            for leg in tracker.feed(frame.event):
                snaps.append(PopupSnapshot(exts=("1001",), legs=tuple(tracker.active("1001")) or (leg,),
                                           recent=tuple(tracker.recent("1001")),
                                           connection="connected to 127.0.0.1:8021", now=tracker.now + 2))
    return snaps


def test_the_panel_uses_a_wide_terminal_so_a_contact_note_is_whole(captures):
    note = "VIP since 2019; prefers email; escalate billing issues to Grace in accounts, ext 1042"
    ringing = _with_contact(captures, {"name": "Ada Lovelace", "note": note})[0]
    text = render(ringing, 110)
    assert note in text  # at 72 columns it was cut
    assert max(cell_len(line) for line in text.splitlines()) <= 110
    assert note not in render(ringing, 80)  # narrower, it is cut to fit, never wrapped


def test_the_contacts_name_replaces_the_caller_id_name(captures):
    ringing = _with_contact(captures, {"name": "Ada Lovelace", "company": "Analytical Engines Ltd"})[0]
    lines = render(ringing, 100).splitlines()
    caller = next(line for line in lines if "Caller  " in line)
    assert caller.split("Caller  ", 1)[1].startswith("Ada Lovelace")  # who calls, first
    assert "caller ID Caller 6208" in caller  # what the phone network said, after it
    assert not any("Contact Ada Lovelace" in line for line in lines)  # not twice
    assert any("Contact Analytical Engines Ltd" in line for line in lines)


def test_recent_calls_have_headings_and_each_duration_its_own_column(captures):
    answered_here = _with_contact(captures, {"name": "Ada Lovelace"})[-1]
    lines = [line.rstrip() for line in render(answered_here, 80).splitlines()]
    at = lines.index("Recent calls")
    assert lines[at + 1].split() == ["Ended", "Caller", "Outcome", "Rang", "Talked"]
    assert lines[at + 2].split()[-3:] == ["Answered", "0:03", "0:05"]  # rang 3 s, then talked 5 s
    _, elsewhere = states(captures, "scenario_queue_plain.raw", "1002")
    lines = [line.rstrip() for line in render(elsewhere, 80).splitlines()]
    at = lines.index("Recent calls")
    row = lines[at + 2]
    assert row.endswith("Answered by 1001  0:03")  # a ring time, under Rang; nothing under Talked
    assert lines[at + 1].index("Rang") <= row.index("0:03") < lines[at + 1].index("Talked")
