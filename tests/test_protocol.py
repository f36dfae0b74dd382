"""The sans-IO parser and encoder against the real FreeSWITCH 1.10.12 captures."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from eslkit.errors import FrameTooLarge, LocalProtocolError, ProtocolError
from eslkit.event import Event
from eslkit.protocol import (
    ApiResponse,
    AuthRequest,
    CommandReply,
    DisconnectNotice,
    EventFrame,
    LogData,
    Parser,
    RudeRejection,
    api_response,
    command_reply,
    disconnect_notice,
    encode_command,
    event_frame,
    rude_rejection,
)
from tests.conftest import CAPTURES

RAW = sorted(CAPTURES.glob("*.raw"))


def parse(data: bytes, chunks=None) -> list:
    parser = Parser()
    frames = []
    if chunks is None:
        frames += parser.feed(data)
    else:
        pos = 0
        for size in chunks:
            frames += parser.feed(data[pos: pos + size])
            pos += size
        frames += parser.feed(data[pos:])
    assert parser.buffered == 0
    frames += parser.feed(b"")  # EOF after whole frames is fine
    return frames


def wire(frame) -> bytes:
    return "".join(f"{k}: {v}\n" for k, v in frame.headers).encode() + b"\n" + frame.body


@pytest.mark.parametrize("path", RAW, ids=lambda p: p.stem)
def test_every_capture_parses_identically_in_any_chunking(path):
    data = path.read_bytes()
    whole = parse(data)
    assert whole, "every capture holds at least one frame"
    # The frames account for every byte, in order.
    assert b"".join(wire(f) for f in whole) == data
    assert parse(data, [1] * len(data)) == whole
    for size in (2, 7, 4096):
        assert parse(data, [size] * (len(data) // size)) == whole
    rng = random.Random(path.stem)
    cuts = []
    left = len(data)
    while left > 0:
        cuts.append(min(left, rng.randint(1, 3000)))
        left -= cuts[-1]
    assert parse(data, cuts) == whole


@pytest.mark.parametrize("path", RAW, ids=lambda p: p.stem)
def test_events_reserialise_byte_exactly(path):
    for frame in parse(path.read_bytes()):
        if isinstance(frame, EventFrame):
            fmt = frame.content_type.rsplit("-", 1)[1]
            assert event_frame(frame.event, fmt) == wire(frame)


def frames_of(name: str) -> list:
    return parse((CAPTURES / f"{name}.raw").read_bytes())


def test_frame_types_and_fields():
    frames = frames_of("auth_wrong_password")
    assert [type(f) for f in frames] == [AuthRequest, CommandReply, DisconnectNotice]
    assert frames[1].reply_text == "-ERR invalid" and not frames[1].ok
    assert frames[2].text.startswith("Disconnected, goodbye.")
    assert not frames[2].linger

    frames = frames_of("acl_rejected_from_127.0.0.2")
    assert isinstance(frames[0], RudeRejection)
    assert frames[0].text == "Access Denied, go away.\n"

    frames = frames_of("bgapi_unsubscribed")
    reply = frames[2]
    assert reply.reply_text == f"+OK Job-UUID: {reply.job_uuid}" and len(reply.job_uuid) == 36

    frames = frames_of("log_7")
    logs = [f for f in frames if isinstance(f, LogData)]
    assert [f.level for f in logs] == [5, 6, 6]
    assert logs[0].header("Log-File") == "mod_commands.c"
    assert logs[0].text.endswith("eslkit capture log line\n")

    frames = frames_of("fs_stopped_while_connected")
    assert isinstance(frames[-1], DisconnectNotice)
    assert frames[-1].text == "The system is being shut down.\n"


def test_api_response_body_counts_bytes():
    frames = frames_of("api_large_responses")
    bodies = [f for f in frames if isinstance(f, ApiResponse)]
    assert max(len(f.body) for f in bodies) > 30_000
    for f in bodies:
        assert int(f.header("Content-Length")) == len(f.body)


def test_linger_disconnect_notice():
    frame = parse(disconnect_notice(linger=True))[0]
    assert isinstance(frame, DisconnectNotice) and frame.linger


def test_multibyte_body_counts_bytes_not_characters():
    data = api_response("Ünïcødé ☎ caller\n") + command_reply("+OK")
    frames = parse(data, [1] * len(data))
    assert frames[0].text == "Ünïcødé ☎ caller\n"
    assert isinstance(frames[1], CommandReply)


# --- events ---------------------------------------------------------------------------------


def events_of(name: str) -> list[Event]:
    return [f.event for f in frames_of(name) if isinstance(f, EventFrame)]


def test_plain_values_are_url_decoded_after_splitting_lines():
    ev = events_of("scenario_queue_plain")[0]
    assert ev.get("Event-Date-GMT").startswith("Thu, 26 Nov 2026")
    assert ev.get("FreeSWITCH-IPv6") == "fd00::2"
    answer = next(e for e in events_of("scenario_queue_plain") if e.name == "CHANNEL_ANSWER")
    assert answer.caller_name == "Caller 6208"
    # An encoded newline stays inside its value and cannot forge a header.
    forged = Event.from_plain("Event-Name: CUSTOM\nCaller-Caller-ID-Name: a%0AUnique-ID: evil\n\n")
    assert forged.caller_name == "a\nUnique-ID: evil"
    assert forged.unique_id is None


def test_invalid_utf8_is_replaced_never_raised():
    payload = b"Event-Name: CUSTOM\nEvent-Subclass: x%FF%3A%3Ay\nCaller-Caller-ID-Name: \xc3(\n\n"
    frame = parse(b"Content-Length: %d\nContent-Type: text/event-plain\n\n" % len(payload) + payload)[0]
    assert frame.event.name == "x\ufffd::y"
    assert frame.event.caller_name == "\ufffd("
    raw = b"Content-Type: api/response\nContent-Length: 3\n\n\xff\xfeA"
    assert parse(raw)[0].text == "\ufffd\ufffdA"


def test_custom_event_name_is_the_subclass():
    registers = [e for e in events_of("agents_register_plain") if e.event_name == "CUSTOM"]
    names = {e.name for e in registers}
    assert "sofia::register" in names and all(n.startswith("sofia::") for n in names)


def test_repeated_headers_are_kept():
    hangup = next(e for e in events_of("scenario_queue_plain") if e.name == "CHANNEL_HANGUP_COMPLETE")
    causes = hangup.get_all("Hangup-Cause")
    assert len(causes) == 2 and causes[0] == hangup.hangup_cause
    assert sum(1 for k, _ in hangup.pairs() if k == "Hangup-Cause") == 2


def test_multi_value_headers_are_lists_in_every_format():
    for fmt in ("plain", "json", "xml"):
        legs = [e for e in events_of(f"scenario_queue_{fmt}") if e.get_all("variable_originated_legs")]
        assert legs, fmt
        value = legs[0].to_dict()["variable_originated_legs"]
        assert isinstance(value, list) and all(";Outbound Call;" in v for v in value), fmt


@pytest.mark.parametrize("fmt", ["plain", "json", "xml"])
def test_background_job_body_in_each_format(fmt):
    jobs = events_of(f"bgapi_status_{fmt}")
    assert [e.get("Job-Command") for e in jobs] == ["status", "version"]
    assert jobs[0].body.startswith("UP 0 years") and jobs[0].body.endswith("8192K\n")
    assert jobs[1].body == "FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n"
    d = jobs[0].to_dict()
    assert d["_body"] == jobs[0].body and d["Content-Length"] == str(len(jobs[0].body.encode()))


def test_dict_form_is_freeswitch_event_json():
    """Our dict of a JSON event is exactly what FreeSWITCH sent (repeats aside)."""
    for frame in frames_of("scenario_queue_json"):
        if isinstance(frame, EventFrame):
            assert frame.event.to_dict() == json.loads(frame.body)  or _repeats(frame)


def _repeats(frame) -> bool:
    # json.loads keeps the last of a repeated key; we keep the first, like esl_event_get_header.
    return len(frame.event.pairs()) != len(frame.event.headers)


def test_same_event_in_three_formats_decodes_the_same():
    for ev in events_of("scenario_queue_plain"):
        for fmt in ("json", "xml"):
            again = parse(event_frame(ev, fmt))[0].event
            assert again.to_dict() == ev.to_dict()
            assert again.pairs() == ev.pairs()


COMMON = ("Event-Name", "Caller-Caller-ID-Number", "Caller-Caller-ID-Name",
          "Caller-Destination-Number", "Call-Direction", "Answer-State", "Hangup-Cause")


def test_real_plain_json_xml_captures_agree():
    """Three real runs of the same call, one per wire format: the same call events."""
    def profile(fmt):
        events = [e for e in events_of(f"scenario_queue_{fmt}")
                  if e.name not in ("HEARTBEAT", "RE_SCHEDULE")]
        return Counter(tuple(e.get(h) for h in COMMON) for e in events)

    plain = profile("plain")
    assert profile("json") == plain
    assert profile("xml") == plain


def test_typed_fields():
    answer = next(e for e in events_of("scenario_queue_plain")
                  if e.name == "CHANNEL_ANSWER" and e.direction == "outbound")
    assert answer.caller_number == "6208"
    assert answer.destination in ("1001", "1002")
    assert answer.unique_id and answer.call_uuid
    assert answer.channel_name.startswith("sofia/internal/100")
    assert isinstance(answer.sequence, int)
    assert answer.timestamp > 1.7e9


# --- limits and garbage ------------------------------------------------------------------------


def test_huge_content_length_is_refused_before_buffering():
    parser = Parser(max_frame_size=1024)
    with pytest.raises(FrameTooLarge, match="over the 1024-byte limit"):
        parser.feed(b"Content-Type: api/response\nContent-Length: 2147483648\n\n")


def test_default_limit_is_16_mib():
    with pytest.raises(FrameTooLarge):
        Parser().feed(b"Content-Length: %d\n\n" % (16 * 1024 * 1024 + 1))
    parser = Parser()
    assert parser.feed(b"Content-Type: api/response\nContent-Length: %d\n\n" % (16 * 1024 * 1024)) == []


def test_endless_header_block_is_bounded():
    parser = Parser()
    with pytest.raises(FrameTooLarge):
        for _ in range(100):
            parser.feed(b"X" * 1024)


@pytest.mark.parametrize("garbage", [
    b"HTTP/1.1 400 Bad Request\r\n\r\n",
    b"\x00\x01\x02garbage\n\n",
    b"Content-Length: lots\n\n",
    b"SIP/2.0 200 OK\nVia: x\n\n",
])
def test_garbage_is_a_protocol_error(garbage):
    with pytest.raises(ProtocolError):
        Parser().feed(garbage)


def test_eof_mid_frame_is_a_protocol_error():
    parser = Parser()
    parser.feed(b"Content-Type: api/response\nContent-Length: 10\n\nabc")
    with pytest.raises(ProtocolError, match="middle of a frame"):
        parser.feed(b"")


def test_malformed_json_event_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="malformed text/event-json"):
        Parser().feed(b"Content-Length: 5\nContent-Type: text/event-json\n\n{nope")


# --- encoding commands ----------------------------------------------------------------------------


def test_encode_command():
    assert encode_command("api status") == b"api status\n\n"
    assert encode_command("bgapi version", {"Job-UUID": "abc"}) == b"bgapi version\nJob-UUID: abc\n\n"
    assert encode_command("sendevent CUSTOM", [("Event-Subclass", "x::y")], body="hi") == (
        b"sendevent CUSTOM\nEvent-Subclass: x::y\nContent-Length: 2\n\nhi"
    )


@pytest.mark.parametrize("bad", ["api status\n\napi shutdown", "api status\r", "auth x\nexit"])
def test_encoder_refuses_command_injection(bad):
    with pytest.raises(LocalProtocolError, match="newline or carriage return"):
        encode_command(bad)


def test_encoder_refuses_newline_in_header():
    with pytest.raises(LocalProtocolError):
        encode_command("bgapi status", {"Job-UUID": "x\n\napi shutdown"})
    with pytest.raises(LocalProtocolError):
        encode_command("")


def test_server_side_encoders_roundtrip():
    frames = parse(command_reply("+OK accepted") + rude_rejection() + disconnect_notice())
    assert [type(f) for f in frames] == [CommandReply, RudeRejection, DisconnectNotice]
    assert frames_of("acl_rejected_from_127.0.0.2") == frames[1:]


# --- the switch's side: splitting a client's commands ---------------------------------------------


def test_command_parser_splits_every_capture_sent_file_in_any_chunking():
    from eslkit.protocol import CommandParser

    for path in sorted(CAPTURES.glob("*.sent")):
        data = path.read_bytes()
        whole = CommandParser().feed(data)
        parser = CommandParser()
        drip = [c for i in range(len(data)) for c in parser.feed(data[i: i + 1])]
        assert drip == whole, path.name
        assert len(whole) == data.count(b"\n\n"), path.name
    bg = CommandParser().feed((CAPTURES / "bgapi_status_plain.sent").read_bytes())
    assert ("bgapi version", [("Job-UUID", "be4b51a9-2652-4da8-ae24-a436b7edcfec")], None) in bg


def test_command_parser_crlf_body_and_bounds():
    from eslkit.protocol import CommandParser

    parser = CommandParser(max_command=1000, max_body=10)
    got = parser.feed(b"\r\n\napi status\r\n\r\nsendevent CUSTOM\nContent-Length: 2\n\nhiexit\n\n")
    assert got == [("api status", [], None),
                   ("sendevent CUSTOM", [("Content-Length", "2")], b"hi"),
                   ("exit", [], None)]
    with pytest.raises(FrameTooLarge):
        CommandParser(max_command=1000).feed(b"x" * 2000)
    with pytest.raises(FrameTooLarge):
        CommandParser(max_body=10).feed(b"sendmsg\nContent-Length: 11\n\n")


def test_lone_surrogates_from_json_become_replacement_characters():
    """A JSON "\\ud800" escape (from a switch, a recording or a broker) must not poison output."""
    payload = b'{"Event-Name":"CUSTOM","Event-Subclass":"a\\ud800b","Caller-Caller-ID-Name":"\\ud83d\\ude00"}'
    frame = parse(b"Content-Length: %d\nContent-Type: text/event-json\n\n" % len(payload) + payload)[0]
    assert frame.event.name == "a\ufffdb"
    assert frame.event.caller_name == "\U0001F600"  # a proper pair stays what it is
    for fmt in ("plain", "json", "xml"):
        frame.event.serialize(fmt).encode("utf-8")
    assert Event.from_dict({"Event-Name": "X", "A": ["\udfff"]}).to_json().encode() == \
        '{"Event-Name":"X","A":["\ufffd"]}'.encode()


def test_malformed_plain_block_never_pairs_names_with_wrong_values():
    """One line with two ": " and one with none: the fast split must not shift the pairs."""
    ev = Event.from_plain("a: x: y\nb\nc: z\n\n")
    assert ev.headers == {"a": "x: y", "c": "z"}
    assert ev.get("c") == "z" and ev.get("b") is None


@pytest.mark.parametrize("fmt", ["plain", "json", "xml"])
def test_json_line_is_the_dict_form_in_ascii(fmt):
    for ev in events_of(f"scenario_queue_{fmt}") + events_of(f"bgapi_status_{fmt}"):
        line = ev.json_line()
        assert line.isascii() and "\n" not in line
        assert json.loads(line) == ev.to_dict()
    hostile = Event.from_json('{"Event-Name":"X","Caller-Caller-ID-Name":"\\u001b]0;t\\u0007 \\u202e"}')
    assert hostile.json_line().isascii() and json.loads(hostile.json_line()) == hostile.to_dict()


def test_a_missing_header_is_a_key_error_by_index_and_none_by_get():
    ev = Event({"Event-Name": "HEARTBEAT"})
    assert ev["Event-Name"] == "HEARTBEAT" and ev.get("Unique-ID") is None
    with pytest.raises(KeyError):
        ev["Unique-ID"]


def test_each_protocol_error_has_its_own_frames():
    good = b"Content-Type: command/reply\nReply-Text: +OK\n\n"
    with pytest.raises(ProtocolError) as first:
        Parser().feed(good + b"not a header\n\n")
    assert len(first.value.frames) == 1
    assert ProtocolError("another").frames == []  # not the first one's list
