"""Difference suite, against the simulated switch: every ESLconnection call made through the
C module and through `eslkit.ESL`, side by side on the same `eslkit sim`, compared call by
call — return values, and every event they return, whole (`snapshot`: serialize in all
three formats, header order, every header, the body).

Both connections are open at once on one switch, so both receive the very same events
(the same bytes): the scenario starts only when the test says so, after both subscribed,
and a last CUSTOM event ("test::end") marks the end of what was sent.
"""

from __future__ import annotations

import socket
import time

import pytest

from eslkit.event import Event
from tests.support.esl_pair import describe, snapshot
from tests.support.sim import sim_in_thread

END = "test::end"




@pytest.fixture
def switch():
    """`eslkit sim` in a thread; the queue call plays only when a test calls ``play``."""
    with sim_in_thread(scenario="queue", speed=None, autostart=False) as sim:
        yield sim


def play(sim, scenario: str = "queue") -> None:
    """Play a call to the end, then fire the end marker to every subscriber."""
    sim.call(sim.server.play(scenario))
    end = sim.server.switch_event("CUSTOM", "test.c", "end", 1, [("Event-Subclass", END)])
    sim.call_soon(sim.server.fire, end)


def connect(module, sim, *args):
    con = module.ESLconnection(sim.host, str(sim.port), "ClueCon", *args)
    assert con.connected() == 1
    return con


def pair(esl_modules, sim):
    return [connect(m, sim) for m in esl_modules]


def same(calls) -> None:
    """Each item: (label, C call, pure call); both made in turn, their results compared."""
    for label, c_call, pure_call in calls:
        c_result = describe(c_call())
        pure_result = describe(pure_call())
        assert pure_result == c_result, label


def until_end(con) -> list:
    """Every event up to and including the end marker, as snapshots."""
    out = []
    while True:
        event = con.recvEvent()
        out.append(snapshot(event))
        if event.getHeader("Event-Subclass") == END or event.getType() == "SERVER_DISCONNECTED" \
                or "<Event-Subclass>test%3A%3Aend<" in (event.getBody() or ""):  # xml: the frame
            return out


def assert_same_streams(cons) -> None:
    c_stream, pure_stream = (until_end(con) for con in cons)
    assert len(pure_stream) == len(c_stream)
    for i, (c_event, pure_event) in enumerate(zip(c_stream, pure_stream)):
        assert pure_event == c_event, f"event {i}: {c_event['type']}"


# --- logging in -------------------------------------------------------------------------------


def test_connect_every_constructor(esl_modules, switch):
    """(host, "port", password), (host, port, password), the user form; what each gives."""
    results = []
    for m in esl_modules:
        cons = [m.ESLconnection(switch.host, str(switch.port), "ClueCon"),
                m.ESLconnection(switch.host, switch.port, "ClueCon"),
                m.ESLconnection(switch.host, f" {switch.port}trailing", "ClueCon"),
                m.ESLconnection(switch.host, str(switch.port), "ClueCon\0ignored"),
                m.ESLconnection(switch.host, switch.port, "user", "ClueCon"),  # userauth: the sim says -ERR
                m.ESLconnection(switch.host, str(switch.port), "", "ClueCon")]  # empty user: plain auth
        results.append([(c.connected(), c.socketDescriptor() >= 0, describe(c.getInfo()), c.disconnect(),
                         c.connected(), c.socketDescriptor()) for c in cons])
    assert results[1] == results[0]


def failed_calls(con, module) -> list:
    """Every call on a connection that is not (or no longer) connected."""
    event = module.ESLevent("CUSTOM", "t::x")
    return [describe(r) for r in (
        con.connected(), con.socketDescriptor() >= 0, con.getInfo(), con.send("api status"),
        con.sendRecv("api status"), con.api("status"), con.api("echo", "x"), con.bgapi("status"),
        con.bgapi("status", "", "job-1"), con.sendEvent(event), con.sendMSG(event), con.sendMSG(event, "uuid"),
        con.recvEvent(), con.recvEventTimed(10), con.recvEventTimed(0), con.filter("a", "b"),
        con.events("plain", "ALL"), con.execute("answer"), con.executeAsync("answer", "", "uuid"),
        con.setAsyncExecute(None), con.setAsyncExecute("yes"), con.setEventLock("1"),
        con.setEventLock(None), con.disconnect(), con.disconnect(), con.connected())]


def test_wrong_password(esl_modules, switch):
    c, pure = (m.ESLconnection(switch.host, str(switch.port), "wrong") for m in esl_modules)
    assert failed_calls(pure, esl_modules[1]) == failed_calls(c, esl_modules[0])


def test_nobody_listening(esl_modules):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    results = []
    for m in esl_modules:
        # (A port of None, a host that does not resolve: in test_esl_pure, in a process of its
        # own, because the C module closes file descriptor 0 over them.)
        cons = [m.ESLconnection("127.0.0.1", str(port), "ClueCon"), m.ESLconnection("127.0.0.1", port, "x")]
        results.append([failed_calls(con, m) for con in cons])
    assert results[1] == results[0]


def test_refused_by_acl(esl_modules):
    with sim_in_thread(scenario=None, allow=["10.0.0.0/8"]) as sim:
        cons = [m.ESLconnection(sim.host, str(sim.port), "ClueCon") for m in esl_modules]
        assert failed_calls(cons[1], esl_modules[1]) == failed_calls(cons[0], esl_modules[0])


# --- commands ---------------------------------------------------------------------------------


def test_api_bgapi_sendrecv(esl_modules, switch):
    c, pure = pair(esl_modules, switch)
    same([
        ("api version", lambda: c.api("version"), lambda: pure.api("version")),
        ("api with an argument", lambda: c.api("echo", "hello world"), lambda: pure.api("echo", "hello world")),
        ("api with an empty argument", lambda: c.api("echo", ""), lambda: pure.api("echo", "")),
        ("api of nothing", lambda: c.api(None), lambda: pure.api(None)),
        ("api unknown", lambda: c.api("no_such_command", "x"), lambda: pure.api("no_such_command", "x")),
        ("api show modules", lambda: c.api("show", "modules"), lambda: pure.api("show", "modules")),
        ("api show channels as json", lambda: c.api("show channels as json"),
         lambda: pure.api("show channels as json")),
        ("sendRecv api", lambda: c.sendRecv("api hostname"), lambda: pure.sendRecv("api hostname")),
        ("sendRecv with its blank line", lambda: c.sendRecv("api hostname\n\n"),
         lambda: pure.sendRecv("api hostname\n\n")),
        ("sendRecv unknown", lambda: c.sendRecv("bogus command"), lambda: pure.sendRecv("bogus command")),
        ("bgapi with a job uuid", lambda: c.bgapi("version", "", "job-c"), lambda: pure.bgapi("version", "", "job-c")),
        ("bgapi with an argument and job", lambda: c.bgapi("echo", "hi", "job-2"),
         lambda: pure.bgapi("echo", "hi", "job-2")),
        ("bgapi of nothing", lambda: c.bgapi(None), lambda: pure.bgapi(None)),
        ("log level", lambda: c.sendRecv("log 7"), lambda: pure.sendRecv("log 7")),
        ("nolog", lambda: c.sendRecv("nolog"), lambda: pure.sendRecv("nolog")),
        ("linger inbound", lambda: c.sendRecv("linger"), lambda: pure.sendRecv("linger")),
        ("myevents bad", lambda: c.sendRecv("myevents nope"), lambda: pure.sendRecv("myevents nope")),
        ("events json", lambda: c.events("json", "BACKGROUND_JOB"), lambda: pure.events("json", "BACKGROUND_JOB")),
        ("events bad", lambda: c.events("plain", "NO_SUCH_EVENT"), lambda: pure.events("plain", "NO_SUCH_EVENT")),
        ("filter", lambda: c.filter("Event-Name", "BACKGROUND_JOB"), lambda: pure.filter("Event-Name", "BACKGROUND_JOB")),
        ("filter delete", lambda: c.filter("delete", "Event-Name"), lambda: pure.filter("delete", "Event-Name")),
        ("filter bad", lambda: c.filter("", ""), lambda: pure.filter("", "")),
        ("send", lambda: c.send("api hostname"), lambda: pure.send("api hostname")),
    ])
    # The reply `send` did not wait for comes back from recvEvent.
    assert snapshot(pure.recvEvent()) == snapshot(c.recvEvent())


def test_bgapi_without_a_job_uuid(esl_modules, switch):
    """The switch makes the Job-UUID: same shape, and the BACKGROUND_JOB that follows names it."""
    c, pure = pair(esl_modules, switch)
    for con in (c, pure):
        con.events("plain", "BACKGROUND_JOB")
    shapes = []
    for con in (c, pure):
        reply = con.bgapi("hostname")
        job = reply.getHeader("Job-UUID")
        event = con.recvEvent()
        while event.getHeader("Job-UUID") != job:
            event = con.recvEvent()
        shapes.append((reply.getHeader("Reply-Text") == f"+OK Job-UUID: {job}", reply.getType(),
                       event.getType(), event.getBody(), event.serialize("json").count("\n")))
    assert shapes[1] == shapes[0]


@pytest.mark.parametrize("fmt", ["plain", "json", "xml"])
def test_a_call_in_each_format(esl_modules, switch, fmt):
    """The queue call, every event, in the format asked for (xml: libesl hands back the frame)."""
    cons = pair(esl_modules, switch)
    for con in cons:
        assert con.events(fmt, "ALL") == 0
    play(switch)
    assert_same_streams(cons)


def test_subscriptions_and_filters(esl_modules, switch):
    cons = pair(esl_modules, switch)
    for con in cons:
        con.events("plain", "CHANNEL_ORIGINATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE CUSTOM " + END)
        con.filter("Caller-Destination-Number", "1001")
        con.filter("Event-Subclass", END)
    play(switch)
    assert_same_streams(cons)


def test_events_queued_behind_a_reply(esl_modules, switch):
    """Events that arrive while a command waits for its reply come back later, in order."""
    cons = pair(esl_modules, switch)
    for con in cons:
        con.events("json", "ALL")
    play(switch)
    for con in cons:  # the whole call is on the socket now: each api reply comes after it
        con.api("version")
        con.bgapi("echo", "queued", "job-q")
        con.sendRecv("api hostname")
    assert_same_streams(cons)


def test_send_event(esl_modules, switch):
    """sendEvent fires an event on the switch; it returns a copy of the last frame recvEvent
    read (libesl's own quirk), not the reply."""
    cons = pair(esl_modules, switch)
    for con in cons:
        con.events("plain", "CUSTOM test::sent " + END)
    results = []
    for m, con in zip(esl_modules, cons):
        event = m.ESLevent("CUSTOM", "test::sent")
        event.addHeader("X-From", m.__name__)
        event.addHeader("X-Spaces", "a b: c%")
        event.pushHeader("X-List", "one")
        event.pushHeader("X-List", "two")
        event.addBody("a body\nof two lines")
        results.append(describe(con.sendEvent(event)))
    assert results[1] == results[0]
    play(switch)
    streams = [until_end(con) for con in cons]
    for stream in streams:  # the Event-UUID the switch gave each event differs: compare the rest
        for item in stream:
            item.pop("plain", None), item.pop("json", None), item.pop("json_first", None), item.pop("xml", None)
            item.pop("JSON", None), item.pop("serialized_string", None)
            item["headers"] = [h for n, h in zip(item["names"], item["headers"]) if n != "Event-UUID"]
    assert streams[1] == streams[0]


def test_sendmsg_and_execute(esl_modules, switch):
    """On an inbound socket the sim answers -ERR (no session): the replies, and the calls."""
    c, pure = pair(esl_modules, switch)
    msgs = []
    for m in esl_modules:
        msg = m.ESLevent("sendmsg")
        msg.addHeader("call-command", "execute")
        msg.addHeader("execute-app-name", "playback")
        msg.addHeader("execute-app-arg", "/tmp/x.wav")
        msgs.append(msg)
    same([
        ("sendMSG", lambda: c.sendMSG(msgs[0]), lambda: pure.sendMSG(msgs[1])),
        ("sendMSG to a uuid", lambda: c.sendMSG(msgs[0], "no-such-uuid"), lambda: pure.sendMSG(msgs[1], "no-such-uuid")),
        ("execute", lambda: c.execute("answer"), lambda: pure.execute("answer")),
        ("execute with arg and uuid", lambda: c.execute("playback", "/tmp/a b.wav", "u-1"),
         lambda: pure.execute("playback", "/tmp/a b.wav", "u-1")),
        ("executeAsync", lambda: c.executeAsync("hangup", None, "u-2"), lambda: pure.executeAsync("hangup", None, "u-2")),
        ("setEventLock", lambda: c.setEventLock("true"), lambda: pure.setEventLock("true")),
        ("setAsyncExecute", lambda: c.setAsyncExecute("on"), lambda: pure.setAsyncExecute("on")),
        ("execute locked, async", lambda: c.execute("park"), lambda: pure.execute("park")),
        ("setAsyncExecute off", lambda: c.setAsyncExecute("nope"), lambda: pure.setAsyncExecute("nope")),
        ("setEventLock number", lambda: c.setEventLock("0x1"), lambda: pure.setEventLock("0x1")),
    ])


def test_recv_event_timed(esl_modules, switch):
    """Nothing arrives: None after the time given (and not before it)."""
    cons = pair(esl_modules, switch)
    for con in cons:
        con.events("plain", "CHANNEL_ANSWER")
    waited = []
    for con in cons:
        start = time.monotonic()
        result = con.recvEventTimed(150)
        waited.append((result, time.monotonic() - start >= 0.14))
    assert waited == [(None, True), (None, True)]
    play(switch)
    results = []
    for con in cons:
        got = []
        while True:
            event = con.recvEventTimed(5000)
            got.append(snapshot(event))
            if event is None or event.getType() == "CHANNEL_ANSWER" and len(got) >= 3:
                break
        results.append(got)
    assert results[1] == results[0]


# --- the end of a connection ------------------------------------------------------------------


def test_exit(esl_modules, switch):
    """The reply, then the disconnect notice, which recvEvent turns into SERVER_DISCONNECTED.
    (What a call between the two gives depends on whether the switch has closed yet, in
    the C library too: test_esl_wire waits for that and checks it.)"""
    cons = pair(esl_modules, switch)
    results = []
    for m, con in zip(esl_modules, cons):
        results.append([describe(con.sendRecv("exit")), con.connected(), describe(con.recvEvent())]
                       + failed_calls(con, m))
    assert results[1] == results[0]


def test_disconnect_then_calls(esl_modules, switch):
    cons = pair(esl_modules, switch)
    results = [[con.disconnect()] + failed_calls(con, m) for m, con in zip(esl_modules, cons)]
    assert results[1] == results[0]


def test_switch_shuts_down(esl_modules):
    """FreeSWITCH going away: SHUTDOWN, the disconnect notice, then nothing but
    SERVER_DISCONNECTED; a new connection to the switch that came back works."""
    with sim_in_thread(scenario=None) as sim:
        cons = pair(esl_modules, sim)
        for con in cons:
            con.events("plain", "ALL")
        sim.call(sim.server.close())
        streams = []
        for m, con in zip(esl_modules, cons):
            streams.append([snapshot(con.recvEvent()) for _ in range(3)] + failed_calls(con, m))
        assert streams[1] == streams[0]
    with sim_in_thread(scenario=None) as sim:  # reconnecting is a new ESLconnection
        again = pair(esl_modules, sim)
        same([("api after reconnect", lambda: again[0].api("version"), lambda: again[1].api("version"))])


def test_log_lines(esl_modules, switch):
    """log/data frames come back from recvEvent as the frame itself."""
    cons = pair(esl_modules, switch)
    for con in cons:
        con.sendRecv("log 7")
    for con in cons:
        con.api("log", "3 a log line from the test")
    c_stream, pure_stream = ([snapshot(con.recvEvent()) for _ in range(2)] for con in cons)
    assert pure_stream == c_stream


def test_event_objects_outlive_their_connection(esl_modules, switch):
    cons = pair(esl_modules, switch)
    replies = [con.api("version") for con in cons]
    for con in cons:
        con.disconnect()
        del con
    del cons
    assert snapshot(replies[1]) == snapshot(replies[0])


def test_sentinel_event_is_what_the_switch_fires(switch):
    """The end marker is an ordinary switch event (checked once, without the C module)."""
    end = switch.server.switch_event("CUSTOM", "test.c", "end", 1, [("Event-Subclass", END)])
    assert isinstance(end, Event) and end.get("Event-Subclass") == END
