"""Property-based tests of the parser and the event encoders (hypothesis).

Any byte stream, in any chunking, gives the same frames or one ProtocolError —
never another exception — and the parser never holds more than one frame's
worth of bytes.
"""

from __future__ import annotations

import json
import string

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from eslkit.errors import LocalProtocolError, ProtocolError
from eslkit.event import Event
from eslkit.protocol import MAX_HEADER_BLOCK, EventFrame, Parser, encode_command, event_frame
from tests.conftest import CAPTURES

SEEDS = [p.read_bytes()[:6000] for p in sorted(CAPTURES.glob("*.raw"))]
LIMIT = 4096  # a small frame limit so the bound is exercised


def outcome(data: bytes, cuts: list[int]):
    """('ok', frames) or ('error', None), feeding ``data`` cut at ``cuts``; checks the bound."""
    parser = Parser(max_frame_size=LIMIT)
    frames = []
    pos = 0
    try:
        for cut in sorted(set(c % (len(data) + 1) for c in cuts)) + [len(data)]:
            chunk = data[pos:cut]
            pos = max(pos, cut)
            if chunk:
                frames += parser.feed(chunk)
                assert parser.buffered <= LIMIT + MAX_HEADER_BLOCK + 2 + len(chunk)
        frames += parser.feed(b"")
    except ProtocolError:
        return ("error", None)
    return ("ok", frames)


def mutate(seed: bytes, edits: list[tuple[int, int]]) -> bytes:
    data = bytearray(seed)
    for where, byte in edits:
        if data:
            data[where % len(data)] = byte
    return bytes(data)


streams = st.one_of(
    st.binary(max_size=3000),
    st.builds(mutate, st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8)),
    st.builds(lambda a, b: a + b, st.sampled_from(SEEDS), st.binary(max_size=200)),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=streams, cuts=st.lists(st.integers(0, 10**6), max_size=12))
@example(data=b"Content-Length: 99999999\n\n", cuts=[3])
@example(data=b"\n\n\n", cuts=[1])
def test_any_bytes_any_chunking_same_frames_or_one_protocol_error(data, cuts):
    whole = outcome(data, [])
    assert outcome(data, cuts) == whole
    assert outcome(data, list(range(len(data)))) == whole if len(data) < 400 else True


# Names start with a letter: XML (one of the three wire formats) cannot carry others as tags.
header_names = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(string.ascii_letters),
    st.text(string.ascii_letters + string.digits + "-_", max_size=20),
).filter(
    lambda n: n not in ("Content-Length", "_body")
)
values = st.text(st.characters(exclude_categories=["Cs"]), max_size=40).filter(
    lambda v: not v.startswith("ARRAY::")
)
xml_safe = st.text(st.characters(exclude_categories=["Cs", "Cc"]) | st.just("\n"), min_size=1, max_size=80)


@st.composite
def events(draw, body=st.none() | xml_safe):
    pairs = [("Event-Name", draw(st.sampled_from(["CHANNEL_ANSWER", "CUSTOM", "BACKGROUND_JOB"])))]
    for name in draw(st.lists(header_names, max_size=12)):
        value = draw(values | st.lists(values, min_size=2, max_size=3))
        pairs.append((name, value))
    return Event(pairs, draw(body))


@settings(max_examples=300, deadline=None)
@given(ev=events(), fmt=st.sampled_from(["plain", "json", "xml"]))
def test_events_survive_every_wire_format(ev, fmt):
    frames = Parser().feed(event_frame(ev, fmt))
    assert len(frames) == 1 and isinstance(frames[0], EventFrame)
    again = frames[0].event
    expected = [(k, v) for k, v in ev.pairs()]
    got = [(k, v) for k, v in again.pairs() if k != "Content-Length"]
    if fmt == "xml":  # adjacent repeats of one name read back as one multi-value header
        expected = _merge_adjacent(expected)
    assert got == expected
    assert again.body == ev.body
    # A JSON event may be written as it came, a repeated header included: read first-wins.
    assert _first_wins(json.loads(again.json_line(), object_pairs_hook=list)) == again.to_dict()


def _first_wins(pairs):
    d = {}
    for k, v in pairs:
        d.setdefault(k, v)
    return d


def _merge_adjacent(pairs):
    out = []
    for k, v in pairs:
        if out and out[-1][0] == k:
            prev = out[-1][1]
            out[-1] = (k, (prev if isinstance(prev, list) else [prev]) + (v if isinstance(v, list) else [v]))
        else:
            out.append((k, v))
    return out


@given(st.text(max_size=60))
def test_encoder_refuses_exactly_the_newlines(command):
    if "\n" in command or "\r" in command or not command.strip():
        try:
            encode_command(command)
        except LocalProtocolError:
            return
        raise AssertionError("accepted a command it must refuse")
    data = encode_command(command)
    assert data.endswith(b"\n\n") and data.count(b"\n") == 2
