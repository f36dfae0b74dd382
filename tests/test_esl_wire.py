"""Difference suite, on the wire: the bytes each module sends for every call, and what each
makes of the bytes a switch sends — FreeSWITCH's own frames and the odd ones libesl has
rules for (empty values, sscanf's view of "%" escapes, arrays, "name[i]" lines, a line
without a colon, CRLF, NUL and non-UTF-8 bytes, JSON it cannot parse...).

A `ScriptedSwitch` plays the switch: the C module is its connection 0, `eslkit.ESL`
connection 1, and the same calls are made through both.
"""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eslkit.protocol import Parser, api_response, command_reply, disconnect_notice, log_data
from tests.support.esl_pair import ScriptedSwitch, default_reply, describe, snapshot

from tests.conftest import CAPTURES




def frame(body: bytes, ctype: str = "text/event-plain", extra: bytes = b"") -> bytes:
    return b"Content-Length: %d\nContent-Type: %s\n%s\n%s" % (len(body), ctype.encode(), extra, body)


def accept_all(command, headers, body):
    """Also logs in users (userauth)."""
    if command.lower().startswith("userauth"):
        return command_reply("+OK accepted")
    return default_reply(command, headers, body)


# --- what goes out ----------------------------------------------------------------------------


def sent_by_each(esl_modules, calls, reply=accept_all, login=("ClueCon",)) -> list:
    """Run ``calls(module, connection)`` through each module in turn; the bytes each sent."""
    with ScriptedSwitch(reply) as switch:
        for m in esl_modules:
            con = m.ESLconnection("127.0.0.1", str(switch.port), *login)
            calls(m, con)
            con.disconnect()
        switch.wait_closed(2)
        return [bytes(b) for b in switch.sent]


def test_login_lines(esl_modules):
    for login in [("ClueCon",), ("pass word",), ("p" * 300,), (None,), ("agent", "secret"), ("", "secret"),
                  ("agent@example.com", "p" * 300)]:
        c_sent, pure_sent = sent_by_each(esl_modules, lambda m, con: None, login=login)
        assert pure_sent == c_sent, login


def test_commands_byte_for_byte(esl_modules):
    def calls(m, con):
        con.api("status")
        con.api("echo", "a b c")
        con.api("echo", "")
        con.api("uuid_kill", "x\ny: injected")  # libesl sends what it is given
        con.bgapi("status")
        con.bgapi("status", None, "job-1")
        con.bgapi("status", "", "")
        con.bgapi("echo", "hi", "job-2")
        con.sendRecv("api status")
        con.sendRecv("api status\n\n")
        con.sendRecv("api status\n")
        con.send("raw command")
        con.recvEvent()
        con.events("json", "ALL")
        con.events("JSON", "ALL")
        con.events("xml", None)
        con.events("bogus", "CHANNEL_ANSWER CUSTOM a::b")
        con.filter("Unique-ID", "u-1")
        con.filter(None, None)
        con.filter("X", "v" * 1100)  # a 1024-byte buffer in C
        con.execute("answer")
        con.execute("playback", "/tmp/a b.wav", "uuid-1")
        con.execute(None, None, None)
        con.execute("app", "", "")
        con.execute("app", "x" * 5000, "u" * 200)  # buffers of 4096 and 128 bytes
        con.setEventLock("yes")
        con.execute("lock")
        con.setAsyncExecute("1")
        con.execute("lock and async")
        con.setEventLock("no")
        con.setAsyncExecute("off")
        con.executeAsync("async once", "a", "u")
        con.execute("not async again")
        event = m.ESLevent("CUSTOM", "test::sent")
        event.addHeader("X-Spaces", "a b: c%25 \u00e9")
        event.pushHeader("X-List", "one")
        event.pushHeader("X-List", "two")
        event.addBody("body line 1\nline 2")
        con.sendEvent(event)
        con.sendEvent(m.ESLevent("CHANNEL_ANSWER"))
        msg = m.ESLevent("sendmsg")
        msg.addHeader("call-command", "execute")
        msg.addHeader("execute-app-name", "playback")
        con.sendMSG(msg)
        con.sendMSG(msg, "uuid-2")
        con.sendMSG(msg, "u" * 200)
    c_sent, pure_sent = sent_by_each(esl_modules, calls)
    assert pure_sent == c_sent


def test_a_call_after_the_switch_hung_up(esl_modules):
    """libesl writes the command, then the blank line: the second write is the one that
    fails once the peer has closed.  Both esl_modules, after the switch has surely closed."""
    with ScriptedSwitch(lambda cmd, h, b: (command_reply("+OK bye"), "hang up") if cmd == "exit"
                        else accept_all(cmd, h, b)) as switch:
        results = []
        for i, m in enumerate(esl_modules):
            con = m.ESLconnection("127.0.0.1", str(switch.port), "ClueCon")
            first = describe(con.sendRecv("exit"))
            switch.wait_closed(i + 1)
            results.append([first, con.connected(), con.send("api status"), con.connected(),
                            con.send("api status\n\n"), describe(con.recvEvent())])
    assert results[1] == results[0]


# --- what comes in ----------------------------------------------------------------------------


def received_by_each(esl_modules, payload: bytes, calls=None) -> list:
    """Each module subscribes, the switch sends ``payload`` and hangs up; every event read."""
    def reply(command, headers, body):
        if command.startswith("event"):
            return command_reply("+OK event listener enabled plain") + payload, "hang up"
        return accept_all(command, headers, body)

    results = []
    with ScriptedSwitch(reply) as switch:
        for m in esl_modules:
            con = m.ESLconnection("127.0.0.1", str(switch.port), "ClueCon")
            got = [describe(con.events("plain", "ALL"))]
            for _ in range(5000):
                event = con.recvEvent()
                got.append(snapshot(event))
                if event.getType() == "SERVER_DISCONNECTED" and not con.connected():
                    break
            got.append(describe(con.recvEventTimed(10)))
            if calls:
                got.append(calls(m, con))
            results.append(got)
    return results


ODD_PLAIN = {
    "empty values delete": b"Event-Name: CUSTOM\nA: 1\nA: \nB: 2\nb:\nC:   \n\n",
    "percent escapes as sscanf reads them": (
        b"Event-Name: CUSTOM\nV1: %4g\nV2: % 41\nV3: %+4x\nV4: %-1z\nV5: %0x1\nV6: %\nV7: %4\n"
        b"V8: 100%\nV9: %zz\nV10: %c3%a9\nV11: %FF%FE\nV12: a%00b\nV13: %%41\nV14: %\t4q\nV15: %0\n\n"),
    "arrays": (b"Event-Name: CUSTOM\nA: ARRAY::a|:b\nB: ARRAY::\nC: ARRAY::x\nD: ARRAY::|:y\n"
               b"E: pre ARRAY::q|:r\nA: ARRAY::c\nF: ARRAY%3A%3Ad%7C%3Ae\nG: ARRAY::g|:|:h|:\n\n"),
    "indexes": b"Event-Name: CUSTOM\nX[2]: two\nX[0]: zero\nY[-1]: n\nZ: z\nZ[1]: one\nW[x: w\n\n",
    "Event-Name games": (b"Event-Name: CHANNEL_CREATE\nevent-name: CHANNEL_ANSWER\nEvent-Name: nonsense\n"
                         b"Unique-ID: u\nEVENT-NAME: SWITCH_EVENT_CHANNEL_HANGUP\n\n"),
    "a _body header": b"Event-Name: CUSTOM\n_body: from a header\nContent-Length: 4\n\nbody",
    "a _body header and no Content-Length": b"Event-Name: CUSTOM\n_body: from a header\n\n",
    "a line without a colon": b"Event-Name: CUSTOM\nno colon here\nNext: value\nLast: one\n\n",
    "two lines without a colon": b"Event-Name: CUSTOM\nfirst\nsecond\nNext: value\n\nbody",
    "CRLF lines": b"Event-Name: CUSTOM\r\nA: 1\r\n\r\n",
    "spaces, tabs, no space": b"Event-Name: CUSTOM\nA:    spaced\nB:\ttab\nC:nospace\nD: a: b: c\n\n",
    "non-UTF-8 bytes": b"Event-Name: CUSTOM\nRaw: caf\xe9 \xff\nEnc: caf%E9%FF\nOk: %C3%A9\n\n",
    "a body": b"Event-Name: BACKGROUND_JOB\nJob-UUID: j\nContent-Length: 11\n\n+OK done\n\n",
    "a body and no Content-Length": b"Event-Name: CUSTOM\nA: 1\n\nbody nobody declared",
    "a body with a NUL": b"Event-Name: CUSTOM\nContent-Length: 9\n\nbefore\x00after",
    "a NUL in the headers": b"Event-Name: CUSTOM\nA: x\x00y\nB: 2\n\n",
    "no blank line": b"Event-Name: CUSTOM\nA: 1",
    "Content-Length and no blank line": b"Event-Name: CUSTOM\nContent-Length: 3\nabc",
    "only a blank line": b"\n\n",
    "empty": b"",
    "many headers": b"".join(b"H-%d: value %%2F %d\n" % (i, i) for i in range(600)) + b"\n",
    "an empty name": b"Event-Name: CUSTOM\n: no name\n\n",
    "ARRAY in an Event-Name": b"Event-Name: ARRAY::CUSTOM|:API\nA: 1\n\n",
}


@pytest.mark.parametrize("case", ODD_PLAIN, ids=str)
def test_plain_events(esl_modules, case):
    body = ODD_PLAIN[case]
    c_got, pure_got = comparable(*received_by_each(esl_modules, frame(body)))
    assert pure_got == c_got


def comparable(c_got: list, pure_got: list) -> tuple[list, list]:
    """Leave out the plain serialisations of an event with a value beyond ASCII: libesl
    encodes those with undefined behaviour (docs/esl.md).  The pure module's own plain
    text tells: it writes such bytes as %80-%FF."""
    c_out, pure_out = [], []
    for c_item, pure_item in zip(c_got, pure_got):
        event = pure_item.get("event", pure_item) if isinstance(pure_item, dict) else None
        if event is not None and _HIGH_BYTE.search(event.get("plain", "")):
            c_item, pure_item = _without_plain(c_item), _without_plain(pure_item)
        c_out.append(c_item)
        pure_out.append(pure_item)
    return c_out + c_got[len(c_out):], pure_out + pure_got[len(pure_out):]


_HIGH_BYTE = re.compile("%[89A-F][0-9A-F]")


def _without_plain(item):
    if isinstance(item, dict):
        if "event" in item:
            return {"event": _without_plain(item["event"])}
        return {k: v for k, v in item.items() if k not in ("plain", "xml", "serialized_string")}
    return item


ODD_JSON = {
    "FreeSWITCH's own": (CAPTURES / "event_json_originate_answer.raw"),
    "arrays and numbers": b'{"Event-Name":"CUSTOM","a":["x",1,"y"],"n":5,"o":{"k":"v"},"t":true}',
    "escapes": b'{"Event-Name":"API","q":"a \\" b \\\\ c \\/ d \\n\\t\\u0001 \\u00e9 \\ud83d\\ude00"}',
    "a body that is a format": b'{"Event-Name":"CUSTOM","_body":"50%% done, %s"}',
    "a body with a lone %": b'{"Event-Name":"CUSTOM","Content-Length":"3","_body":"99%"}',
    "not JSON": b"this is not json",
    "an array": b'["Event-Name","CUSTOM"]',
    "whitespace and trailing bytes": b' \t\n{"Event-Name":"CUSTOM"} and more',
    "repeated names and empty values": b'{"A":"1","a":"2","A":"","B":"x","Event-Name":"CUSTOM"}',
    "bytes that are not UTF-8": b'{"Event-Name":"CUSTOM","raw":"caf\xe9"}',
}


@pytest.mark.parametrize("case", ODD_JSON, ids=str)
def test_json_events(esl_modules, case):
    body = ODD_JSON[case]
    if not isinstance(body, bytes):  # the real frames of a capture, as they came
        payload = body.read_bytes().split(b"+OK event listener enabled json\n\n", 1)[1].rsplit(b"Content-Type: command/reply", 1)[0]
    else:
        payload = frame(body, "text/event-json")
    c_got, pure_got = comparable(*received_by_each(esl_modules, payload))
    assert pure_got == c_got


OTHER_FRAMES = {
    "xml events come back as the frame": frame(
        b"<event>\n  <headers>\n    <Event-Name>CUSTOM</Event-Name>\n  </headers>\n</event>", "text/event-xml"),
    "unasked replies": command_reply("+OK stray") + api_response("stray body\n") + api_response(""),
    "log lines": log_data("2026-01-01 00:00:00.000000 [DEBUG] a.c:1 hello\n", 7, [("Log-File", "a.c")]),
    "a lingering notice, then an event, then goodbye": (
        disconnect_notice(linger=True) + frame(b"Event-Name: CUSTOM\nA: after linger\n\n") + disconnect_notice()),
    "a notice without a body": b"Content-Type: text/disconnect-notice\n\n" + frame(b"Event-Name: CUSTOM\n\n"),
    "an unknown type": b"Content-Type: text/whatever\nContent-Length: 5\nX-Extra: %41%zz\n\nhello",
    "outer values are decoded too": b"Content-Type: text%2Fevent-plain\nContent-Length: 19\n\nEvent-Name: CUSTOM\n\n",
    "outer arrays and odd outer headers": (b"Content-Type: text/x\nA: ARRAY::p|:q\nB:\nC:\t tab\nD[1]: d\n"
                                           b"Content-Length: 2\n\nhi"),
    "an event split in two reads": frame(b"Event-Name: CUSTOM\n" + b"X: " + b"y" * 200000 + b"\n\n"),
}


@pytest.mark.parametrize("case", OTHER_FRAMES, ids=str)
def test_other_frames(esl_modules, case):
    c_got, pure_got = received_by_each(esl_modules, OTHER_FRAMES[case])
    assert pure_got == c_got


def test_events_arriving_during_a_command(esl_modules):
    """Frames that come before a reply wait in libesl's queue, behind none, ahead of the socket."""
    events = frame(b"Event-Name: CUSTOM\nSeq: 1\n\n") + frame(b"Event-Name: CUSTOM\nSeq: 2\n\n")

    def reply(command, headers, body):
        if command.startswith("api first"):
            return events + api_response("first\n")
        if command.startswith("api second"):
            return frame(b"Event-Name: CUSTOM\nSeq: 3\n\n") + command_reply("+OK not an api reply, taken anyway")
        return accept_all(command, headers, body)

    results = []
    with ScriptedSwitch(reply) as switch:
        for m in esl_modules:
            con = m.ESLconnection("127.0.0.1", str(switch.port), "ClueCon")
            results.append([describe(con.api("first")), describe(con.api("second")),
                            describe(con.recvEventTimed(500)), describe(con.recvEvent()),
                            describe(con.recvEvent()), describe(con.recvEventTimed(50)),
                            describe(con.sendEvent(m.ESLevent("CUSTOM", "a::b")))])
    assert results[1] == results[0]


def test_recv_event_timed_waits_for_the_rest_of_a_frame(esl_modules):
    """Half a frame has arrived: recvEventTimed reads on until the frame is whole."""
    whole = frame(b"Event-Name: CUSTOM\nA: 1\n\n")

    def reply(command, headers, body):
        if command.startswith("event"):
            def later():
                time.sleep(0.3)
                sock.sendall(whole[10:])
            threading.Thread(target=later, daemon=True).start()
            return command_reply("+OK") + whole[:10]
        return accept_all(command, headers, body)

    results = []
    with ScriptedSwitch(reply) as switch:
        for m in esl_modules:
            con = m.ESLconnection("127.0.0.1", str(switch.port), "ClueCon")
            con.events("plain", "ALL")
            sock = switch._socks[-1]
            results.append(describe(con.recvEventTimed(50)))
    assert results[1] == results[0]
    assert results[0]["event"]["lookups"][0] == "CUSTOM"


def _wire(frame) -> bytes:
    return ("".join(f"{k}: {v}\n" for k, v in frame.headers) + "\n").encode() + frame.body


@pytest.mark.parametrize("capture", sorted(CAPTURES.parent.glob("*/*.raw")), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_frame_of_the_real_captures(esl_modules, capture):
    """Everything a real FreeSWITCH 1.10.12 sent in a capture — events in all three formats,
    replies, log lines, notices — as recvEvent hands it back, through both modules."""
    frames = Parser().feed(capture.read_bytes())
    c_got, pure_got = comparable(*received_by_each(esl_modules, b"".join(map(_wire, frames))))
    # (up to the first disconnect notice, where recvEvent says SERVER_DISCONNECTED)
    notice = next((i for i, f in enumerate(frames) if f.content_type == "text/disconnect-notice"), len(frames))
    assert len(pure_got) == len(c_got) == notice + 3  # + the events() reply, SERVER_DISCONNECTED, recvEventTimed
    for i, (c_item, pure_item) in enumerate(zip(c_got, pure_got)):
        assert pure_item == c_item, f"frame {i}"


# --- random events ----------------------------------------------------------------------------

LINE = st.one_of(
    st.tuples(st.sampled_from(["Event-Name", "event-name", "A", "a", "B", "X[1]", "X", "_body", "Content-Length",
                               "Unique-ID", "", "N a", "K%41"]),
              st.sampled_from([": ", ":", ":  ", ":\t"]),
              st.one_of(st.sampled_from(["CUSTOM", "CHANNEL_ANSWER", "", "ARRAY::a|:b", "ARRAY::", "%41%4", "% 4",
                                         "x%00y", "%0A%0D%22%5C", "1", "ARRAY%3A%3Aa%7C%3Ab", "v|:w", "%"]),
                        st.text(alphabet="abc%ARY:|[]0123456789 \t\r", max_size=10))).map(lambda t: "".join(t)),
    st.sampled_from(["no colon", "", "\r"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINE, min_size=1, max_size=8), body=st.sampled_from([None, "", "body", "x\n\ny"]))
def test_random_plain_events(esl_modules, lines, body):
    text = "\n".join(lines) + "\n\n" + (body or "")
    if body is not None:
        text = text.replace("\n\n", f"\nContent-Length: {len(body)}\n\n", 1)
    c_got, pure_got = comparable(*received_by_each(esl_modules, frame(text.encode())))
    assert pure_got == c_got


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(members=st.lists(st.tuples(st.sampled_from(["Event-Name", "event-name", "A", "a", "_body", "_BODY", "N"]),
                                  st.one_of(st.sampled_from(["CUSTOM", "API", "", "x%%y", "%s"]),
                                            st.lists(st.sampled_from(["p", "", "ARRAY::q"]), max_size=3),
                                            st.integers(0, 9))), max_size=6))
def test_random_json_events(esl_modules, members):
    text = "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in members) + "}"
    c_got, pure_got = comparable(*received_by_each(esl_modules, frame(text.encode(), "text/event-json")))
    assert pure_got == c_got
