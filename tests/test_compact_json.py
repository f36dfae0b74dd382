"""The compact-JSON check that lets a JSON event skip decoding (eslkit._compact_json).

It may only say yes to text json.loads accepts as an object of string or
string-array values, with no raw control character and nothing but ASCII; and
it must say yes to what FreeSWITCH actually sends, or it saves nothing.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from eslkit import _compact_json
from eslkit._compact_json import is_compact_event
from eslkit.errors import ProtocolError
from eslkit.event import Event
from eslkit.protocol import EventFrame, Parser
from tests.conftest import CAPTURES


def first_wins(pairs):
    d = {}
    for k, v in pairs:
        d.setdefault(k, v)
    return d


def json_events(name: str) -> list[bytes]:
    frames = Parser().feed((CAPTURES / f"{name}.raw").read_bytes())
    return [f.body for f in frames if isinstance(f, EventFrame) and f.content_type == "text/event-json"]


def holds(text: str) -> None:
    """What a yes promises."""
    obj = json.loads(text, object_pairs_hook=list)
    assert isinstance(obj, list)  # an object (as pairs)
    for name, value in obj:
        assert name != "_body"
        assert type(value) is str or (type(value) is list and all(type(x) is str for x in value))
    assert text.isascii() and not any(ord(c) < 32 for c in text)


def test_every_event_freeswitch_sent_as_json_takes_the_fast_path():
    bodies = json_events("scenario_queue_json") + json_events("bgapi_status_json")
    assert len(bodies) == 90
    compact = escaped = 0
    for body in bodies:
        text = body.decode("utf-8")
        escaped += "\\" in text
        # Only the two BACKGROUND_JOB events, which carry a body, are decoded at once.
        assert is_compact_event(text) is ("_body" not in json.loads(text)), text[:120]
        if is_compact_event(text):
            compact += 1
            holds(text)
    assert compact == 88
    assert escaped > 30  # \r\n in SDP, \" in From headers: escapes are the common case


@pytest.mark.parametrize("text", [
    '{"a":"b"', '{"a":"b"}x', '{"a":"b",}', '{"a":}', '{"a":"b" }', '{ "a":"b"}', '{"a":1}',
    '{"a":null}', '{"a":{"b":"c"}}', '{"a":["b",]}', '{"a":["b","c"],"d":[1]}', '["a","b"]', '"a"',
    '{"a":"b\\x"}', '{"a":"b\\"}', '{"a":"\\u0041"}', '{"a":"b\\', '{"a":"\tb"}', '{"a":"b\x1b[2J"}',
    '{"a":"é"}', '{"_body":"x"}', '{"a":"b"}\r', '', '{', '{"a""b"}', '{"a":"b":"c"}', '{"a":["b"]x}',
])
def test_anything_else_is_left_to_the_careful_decoder(text):
    assert not is_compact_event(text)


@pytest.mark.parametrize("text", [
    '{}', '{"a":"b"}', '{"a":""}', '{"":""}', '{"a":[]}', '{"a":["b","c"],"d":"e"}',
    '{"a":"x\\"y\\\\z\\/\\b\\f\\n\\r\\t"}', '{"a\\\\":"\\\\"}', '{"a":"b","a":"c"}',
])
def test_the_shapes_cjson_writes_are_compact(text):
    assert is_compact_event(text)
    holds(text)


jsonish = st.text(alphabet='{}[]":,\\ abu0/n\t\x01é_', max_size=60)
flat = st.dictionaries(st.text(max_size=8), st.text(max_size=8) | st.lists(st.text(max_size=4), max_size=3),
                       max_size=6)


def mutate(text: str, edits) -> str:
    chars = list(text)
    for where, ch in edits:
        if chars:
            chars[where % len(chars)] = ch
    return "".join(chars)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.one_of(
    jsonish,
    st.builds(lambda d: json.dumps(d, separators=(",", ":")), flat),
    st.builds(mutate, st.builds(lambda d: json.dumps(d, separators=(",", ":")), flat),
              st.lists(st.tuples(st.integers(0, 500), st.sampled_from('{}[]":,\\ abu/\x00')), max_size=3)),
))
@example(text='{"a":"\\\\\\"","b":"c"}')
def test_yes_only_for_text_json_loads_accepts(text):
    if is_compact_event(text):
        holds(text)
    # Pythons before 3.11 get the same pattern with plain repeats: the same answers.
    assert (PLAIN_REPEATS.fullmatch(text) is None) == (_compact_json._OBJECT.fullmatch(text) is None)


PLAIN_REPEATS = re.compile(_compact_json._OBJECT.pattern.replace("*+", "*"))


@settings(max_examples=500, deadline=None)
@given(d=flat)
def test_yes_for_every_compact_ascii_object_without_u_escapes(d):
    text = json.dumps(d, separators=(",", ":"))
    if "\\u" not in text and "_body" not in d:
        assert is_compact_event(text)


def test_a_compact_event_is_decoded_on_first_use_and_written_as_it_came():
    for body in json_events("scenario_queue_json"):
        text = body.decode("utf-8")
        lazy = Event.from_json(text)
        eager = Event._decode_json(text)
        assert lazy.json_line() == text if is_compact_event(text) else True
        assert lazy.to_dict() == eager.to_dict() == first_wins(json.loads(text, object_pairs_hook=list))
        assert lazy.get("Unique-ID") == eager.get("Unique-ID")
        assert lazy.get_all("Hangup-Cause") == eager.get_all("Hangup-Cause")
        assert first_wins(json.loads(lazy.json_line(), object_pairs_hook=list)) == lazy.to_dict()
    repeated = Event.from_json('{"Event-Name":"CHANNEL_HANGUP_COMPLETE","Hangup-Cause":"A","Hangup-Cause":"B"}')
    assert repeated.hangup_cause == "A" and repeated.get_all("Hangup-Cause") == ["A", "B"]


def test_a_header_read_from_compact_json_without_decoding_is_the_decoded_value():
    """The relay reads a few headers of each JSON event straight from the text (Event._json_raw):
    each must be what decoding the whole event gives, for every header the switch sent."""
    for body in json_events("scenario_queue_json") + json_events("bgapi_status_json"):
        text = body.decode("utf-8")
        eager = Event._decode_json(text)
        for name in [*eager.headers, "No-Such-Header", "Event-Name"]:
            lazy = Event.from_json(text)
            assert (lazy.get(name), lazy.lookup(name)) == (eager.get(name), eager.lookup(name)), name


NAMES = ["a", "b", "Event-Name", "x_y", 'a"b', "a\\", ""]
tricky = st.text(alphabet='ab,":\\{}[] ', max_size=8)


@settings(max_examples=500, deadline=None)
@given(pairs=st.lists(st.tuples(st.sampled_from(NAMES), tricky | st.lists(tricky, max_size=2)), max_size=5),
       name=st.sampled_from(NAMES))
def test_a_lazy_json_lookup_agrees_with_json_loads(pairs, name):
    text = "{" + ",".join(json.dumps(k) + ":" + json.dumps(v, separators=(",", ":")) for k, v in pairs) + "}"
    if not is_compact_event(text):
        return
    want = first_wins(json.loads(text, object_pairs_hook=list)).get(name)
    if isinstance(want, list):
        want = want[0] if want else None
    assert Event.from_json(text).get(name) == want


@pytest.mark.parametrize("payload", [b'{"Event-Name":"X"', b'{"Event-Name":"X\\q"}', b'{"Event-Name":"X",}'])
def test_a_malformed_json_event_is_still_a_protocol_error_at_the_parser(payload):
    frame = b"Content-Length: %d\nContent-Type: text/event-json\n\n%s" % (len(payload), payload)
    with pytest.raises(ProtocolError, match="malformed text/event-json"):
        Parser().feed(frame)


@pytest.mark.parametrize("text", ['{"a":"b",\r"c":"d"}', '{"a":"b",\t"c":"d"}', '{"a":"b"}\r', ' {"a":"b"}\n'])
def test_valid_json_with_raw_whitespace_is_rewritten_not_passed_through(text):
    line = Event.from_json(text).json_line()
    assert line != text and not any(ord(c) < 32 for c in line)
    assert json.loads(line) == json.loads(text)
