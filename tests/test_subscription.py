"""One set of subscription rules, four paths, and the real switch as the judge.

The same table of cases (``--filter`` names, ``--header`` filters) runs through:

1. the simulated switch's session, socket-free (what `eslkit sim` sends a connection);
2. `eslkit watch` live against `eslkit sim` (the client's `event`/`filter` commands, the
   simulator's decision, over a real socket);
3. `eslkit watch --replay` (no switch: the rules applied locally);
4. `eslkit relay --replay` into a real Mosquitto (what the relay publishes).

Each path must give exactly the events an independent, per-case oracle picks from the
real FreeSWITCH 1.10.12 events (decoded without eslkit).  Below the table, the rules
themselves are checked against the captures of the real switch: its replies to
``filter``/``event``/``nixevent`` and the events it sent a filtered connection.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

from eslkit.errors import Disconnected
from eslkit.event import Event
from eslkit.protocol import CommandReply, EventFrame, Parser
from eslkit.sim.events import SimEvent
from eslkit.sim.session import Session
from eslkit.errors import UnknownEventName
from eslkit.subscription import (
    EventNames,
    HeaderFilters,
    Subscription,
    checked_event_words,
    event_type,
    event_words,
)
from tests.support.brokers import MqttCollector
from tests.support.cli import eslkit, invoke
from tests.support.sim import sim_in_thread

CAPTURES = Path(__file__).parent / "data" / "fs-captures" / "1.10.12"
CORPUS = ("scenario_queue_plain", "agents_register_plain", "scenario_noanswer_plain")


def oracle(body: bytes) -> dict:
    """A plain event's headers, decoded without eslkit."""
    head = body.decode().partition("\n\n")[0]
    return {name: unquote(value) for name, _, value in (line.partition(": ") for line in head.split("\n"))}


def low(d: dict, name: str) -> str:
    return (d.get(name) or "").lower()


# id, --filter values, --header values, the oracle's choice
CASES = [
    ("everything", [], [], lambda d: True),
    ("names", ["CHANNEL_ANSWER,CHANNEL_HANGUP_COMPLETE"], [],
     lambda d: d["Event-Name"] in ("CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE")),
    ("names-any-case-and-prefix", ["channel_answer SWITCH_EVENT_CHANNEL_BRIDGE"], [],
     lambda d: d["Event-Name"] in ("CHANNEL_ANSWER", "CHANNEL_BRIDGE")),
    ("value-any-case", [], ["Call-Direction=OUTBOUND"], lambda d: low(d, "Call-Direction") == "outbound"),
    ("header-name-any-case", [], ["call-direction=outbound"], lambda d: low(d, "Call-Direction") == "outbound"),
    ("plus-prefix", [], ["Call-Direction=+outbound"], lambda d: low(d, "Call-Direction") == "outbound"),
    ("regex", [], ["Caller-Destination-Number=/^100[12]$/"],
     lambda d: d.get("Caller-Destination-Number") in ("1001", "1002")),
    ("regex-flag-i", [], ["Channel-Name=/SOFIA/INTERNAL/i"], lambda d: "sofia/internal" in low(d, "Channel-Name")),
    ("regex-case-sensitive", [], ["Channel-Name=/SOFIA/"], lambda d: False),
    ("any-positive-may-match", [], ["Caller-Destination-Number=1001", "Caller-Destination-Number=1002"],
     lambda d: d.get("Caller-Destination-Number") in ("1001", "1002")),
    ("negative-drops", [], ["Call-Direction=outbound", "Event-Name=-CHANNEL_STATE"],
     lambda d: low(d, "Call-Direction") == "outbound" and d["Event-Name"] != "CHANNEL_STATE"),
    ("negative-alone-passes-nothing", [], ["Event-Name=-CHANNEL_STATE"], lambda d: False),
    ("names-and-filter", ["CHANNEL_ANSWER"], ["Call-Direction=OUTBOUND"],
     lambda d: d["Event-Name"] == "CHANNEL_ANSWER" and low(d, "Call-Direction") == "outbound"),
    ("custom-subclass", ["CUSTOM sofia::register"], [],
     lambda d: d["Event-Name"] == "CUSTOM" and d.get("Event-Subclass") == "sofia::register"),
    ("bare-custom-gets-no-subclass", ["CUSTOM"], [], lambda d: d["Event-Name"] == "CUSTOM"
     and not d.get("Event-Subclass")),
]
IDS = [c[0] for c in CASES]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[dict]]:
    """The real events of three captures in one transcript, and their oracle decoding."""
    data = b"".join((CAPTURES / f"{name}.raw").read_bytes() for name in CORPUS)
    path = tmp_path_factory.mktemp("corpus") / "corpus.raw"
    path.write_bytes(data)
    decoded = [oracle(f.body) for f in Parser().feed(data) if isinstance(f, EventFrame)]
    assert len(decoded) > 100 and any(d["Event-Name"] == "CUSTOM" for d in decoded)
    return path, decoded


def expected(corpus, choose) -> list[tuple[str, str]]:
    return [(d["Event-Sequence"], d["Event-Name"]) for d in corpus[1] if choose(d)]


def keys(events: list[dict]) -> list[tuple[str, str]]:
    return [(e["Event-Sequence"], e["Event-Name"]) for e in events]


def options(names, headers) -> list[str]:
    return [*(x for n in names for x in ("--filter", n)), *(x for h in headers for x in ("--header", h))]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_simulated_switch_session_decides_by_the_rules(case, corpus):
    _, names, headers, choose = case
    session = Session(switch=None)
    session.authed = True
    reply = session.handle(f"event plain {' '.join(event_words(names) or ['ALL'])}", [])[0]
    assert b"+OK event listener enabled plain" in reply
    for header in headers:
        name, _, value = header.partition("=")
        assert b"+OK filter added." in session.handle(f"filter {name} {value}", [])[0]
    events = [f.event for f in Parser().feed(corpus[0].read_bytes()) if isinstance(f, EventFrame)]
    got = [e.to_dict() for e in events if session.wants(SimEvent.from_event(e))]
    assert keys(got) == expected(corpus, choose)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_watch_live_against_the_simulator(case, corpus):
    _, names, headers, choose = case
    with sim_in_thread(replay=str(corpus[0]), speed=None) as sim:
        result = invoke("watch", "--port", sim.port, "--password", "ClueCon", "--format", "json",
                        "--no-reconnect", *options(names, headers))
    # The simulator hangs up after the last event: watch ends as it would with a switch.
    assert isinstance(result.exception, Disconnected), result.output
    assert keys([json.loads(line) for line in result.stdout.splitlines()]) == expected(corpus, choose)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_watch_replay_applies_the_same_rules(case, corpus):
    _, names, headers, choose = case
    result = invoke("watch", "--replay", corpus[0], "--format", "json", *options(names, headers))
    assert result.exit_code == 0, result.output
    assert keys([json.loads(line) for line in result.stdout.splitlines()]) == expected(corpus, choose)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_relay_publishes_by_the_same_rules(case, corpus, mosquitto):
    name, names, headers, choose = case
    want = expected(corpus, choose)
    sub = MqttCollector(mosquitto, f"rules/{name}/#")
    try:
        result = invoke("relay", "--to", mosquitto.url, "--replay", corpus[0], "--client-id", f"rules-{name}",
                        "--topic", f"rules/{name}/{{event}}", *options(names, headers))
        assert result.exit_code == 0, result.output
        assert f"({len(want)} events," in result.stderr
        assert sub.wait_for(lambda m: len(m) >= len(want))
        assert keys([json.loads(p) for _, p, _ in sub.messages]) == want
    finally:
        sub.close()


# --- the real switch ---------------------------------------------------------------------------


def replies(name: str) -> list[str]:
    return [f.reply_text for f in Parser().feed((CAPTURES / f"{name}.raw").read_bytes())
            if isinstance(f, CommandReply)]


def sent(name: str) -> list[str]:
    return [c for c in (CAPTURES / f"{name}.sent").read_text().split("\n\n") if c]


def test_filter_commands_answer_and_keep_what_the_real_switch_does():
    commands, texts = sent("filter_add_delete"), replies("filter_add_delete")
    assert commands[0] == "auth ClueCon" and commands[-1] == "exit"
    filters = HeaderFilters()
    states = []
    for command, text in zip(commands[1:-1], texts[1:-1]):
        if command.startswith("filter "):
            assert filters.command(command[7:]) == text
        else:  # bare "filter": not even the filter command (no space after it)
            assert text == "-ERR command not found"
        states.append(list(filters.items))
    assert states == [
        [("Caller-Destination-Number", "1001")],
        [("Caller-Destination-Number", "1001"), ("Event-Name", "CHANNEL_ANSWER")],
        [("Event-Name", "CHANNEL_ANSWER")],
        [("Event-Name", "CHANNEL_ANSWER")],
        [], [], [],
    ]


@pytest.mark.parametrize("name", ["event_formats_replies", "nixevent_noevents"])
def test_event_names_answer_what_the_real_switch_does(name):
    names = EventNames()
    for command, text in zip(sent(name)[1:-1], replies(name)[1:-1]):
        words = command.split(" ")[1:]
        if command.startswith("event"):
            if words and words[0] in ("plain", "json", "xml"):
                words = words[1:]
            assert names.event(words) > 0 if text.startswith("+OK") else names.event(words) == 0
        elif command.startswith("nixevent"):
            assert names.nixevent(words) > 0 if text.startswith("+OK") else names.nixevent(words) == 0
        else:
            assert names.noevents() == text.startswith("+OK")


def test_what_a_real_switch_sent_a_filtered_connection():
    """scenario_queue_plain_filtered_1001_with_api: the same call as scenario_queue_plain,
    recorded on a connection with a subscription and a filter.  The rules, applied to the
    unfiltered call, pick the events the switch sent that connection."""
    commands = sent("scenario_queue_plain_filtered_1001_with_api")
    words = next(c for c in commands if c.startswith("event ")).split(" ")[2:]
    header, value = next(c for c in commands if c.startswith("filter ")).split(" ")[1:]
    sub = Subscription(words, [(header, value)])
    every = [f.event for f in Parser().feed((CAPTURES / "scenario_queue_plain.raw").read_bytes())
             if isinstance(f, EventFrame)]
    real = [f.event for f in Parser().feed((CAPTURES / "scenario_queue_plain_filtered_1001_with_api.raw")
                                           .read_bytes()) if isinstance(f, EventFrame)]
    picked = [e for e in every if sub.wants(e)]
    assert len(real) == 5
    assert [(e.event_name, e.destination, e.direction) for e in picked] == \
        [(e.event_name, e.destination, e.direction) for e in real]
    assert all(sub.wants(e) for e in real)


# --- the rules, one by one ---------------------------------------------------------------------


def ev(**headers) -> Event:
    return Event({k.replace("_", "-"): v for k, v in headers.items()})


def test_event_words_put_custom_and_its_subclasses_last():
    assert event_words([]) == []
    assert event_words(["CHANNEL_ANSWER, CHANNEL_BRIDGE", "CHANNEL_ANSWER"]) == ["CHANNEL_ANSWER", "CHANNEL_BRIDGE"]
    assert event_words(["CUSTOM sofia::register,CHANNEL_ANSWER", "CUSTOM sofia::unregister"]) == [
        "CHANNEL_ANSWER", "CUSTOM", "sofia::register", "sofia::unregister"]
    assert event_words(["callcenter::info", "CHANNEL_CREATE"]) == ["CHANNEL_CREATE", "CUSTOM", "callcenter::info"]
    assert event_words(["CUSTOM myapp CHANNEL_ANSWER"]) == ["CHANNEL_ANSWER", "CUSTOM", "myapp"]
    assert event_words(["ALL"]) == ["ALL"] and event_words(["CUSTOM"]) == ["CUSTOM"]


def test_event_type_is_switch_name_event():
    assert event_type("channel_answer") == "CHANNEL_ANSWER"
    assert event_type("SWITCH_EVENT_HEARTBEAT") == "HEARTBEAT"
    assert event_type("sofia::register") is None and event_type("NO_SUCH_EVENT") is None


def test_custom_subclasses_as_the_switch_keeps_them():
    reg = ev(Event_Name="CUSTOM", Event_Subclass="sofia::register")
    other = ev(Event_Name="CUSTOM", Event_Subclass="conference::maintenance")
    plain = ev(Event_Name="CUSTOM")
    answer = ev(Event_Name="CHANNEL_ANSWER")
    sub = Subscription(["CUSTOM sofia::register", "CHANNEL_ANSWER"])
    assert [sub.wants(e) for e in (reg, other, plain, answer)] == [True, False, True, True]
    sub = Subscription(["CUSTOM"])  # a bare CUSTOM: only CUSTOM events that have no subclass
    assert [sub.wants(e) for e in (reg, other, plain, answer)] == [False, False, True, False]
    names = EventNames()
    names.event(["ALL"])  # every subclass too, until one is nixed
    names.nixevent(["CUSTOM", "sofia::register"])
    assert (names.wants("CUSTOM", "sofia::register"), names.wants("CUSTOM", "x::y")) == (True, True)
    names.nixevent(["HEARTBEAT"])  # from ALL to "everything but": the subclass hash now counts
    assert (names.wants("CUSTOM", "sofia::register"), names.wants("CUSTOM", "x::y")) == (False, True)
    assert not names.wants("HEARTBEAT", None) and names.wants("CHANNEL_ANSWER", None)
    assert names.noevents() and not names.wants("CHANNEL_ANSWER", None) and not names.noevents()


def test_filter_values_as_mod_event_socket_compares_them():
    e = ev(Event_Name="CHANNEL_ANSWER", Caller_Caller_ID_Name="Zoë Ünal", Variable_x="a(b)")
    assert HeaderFilters([("caller-caller-id-name", "zoË ünal")]).passes(e) is False  # ASCII folding only
    assert HeaderFilters([("Caller-Caller-ID-Name", "ZOë üNAL")]).passes(e) is False
    assert HeaderFilters([("Caller-Caller-ID-Name", "zoë Ünal")]).passes(e) is True
    assert HeaderFilters([("Event-Name", "/answer/")]).passes(e) is False
    assert HeaderFilters([("Event-Name", "/answer/i")]).passes(e) is True
    assert HeaderFilters([("Event-Name", "/ANSWER")]).passes(e) is False  # no closing slash: never
    assert HeaderFilters([("Event-Name", "/(/")]).passes(e) is False  # does not compile: never
    assert HeaderFilters([("Variable-x", "-/a/")]).passes(e) is False  # not a regex: "/a/" compared
    eleven = "/" + "(.)" * 11 + "/"  # a match reaching group 10 does not fit FreeSWITCH's ovector
    assert HeaderFilters([("Event-Name", eleven)]).passes(e) is False
    assert HeaderFilters([("Event-Name", "/" + "(.)" * 9 + "/")]).passes(e) is True
    assert HeaderFilters([("No-Such-Header", "-x"), ("Event-Name", "CHANNEL_ANSWER")]).passes(e) is True
    body = Event({"Event-Name": "BACKGROUND_JOB"}, "+OK done\n")
    assert HeaderFilters([("_body", "/^\\+OK/")]).passes(body)


def test_filter_command_grammar():
    f = HeaderFilters()
    assert f.command("  Unique-ID abc") == "+OK filter added. [Unique-ID]=[abc]"
    assert f.command("add Unique-ID def") == "+OK filter added. [Unique-ID]=[def]"
    assert f.command("add Unique-ID") == "+OK filter added. [Unique-ID]=[(null)]"
    assert f.command("Caller-Caller-ID-Name John Smith") == \
        "+OK filter added. [Caller-Caller-ID-Name]=[John Smith]"
    assert f.command("delete unique-id abc") == "+OK filter deleted. [unique-id][abc]"
    assert f.items == [("Unique-ID", "def"), ("Caller-Caller-ID-Name", "John Smith")]
    assert f.command("delete UNIQUE-ID") == "+OK filter deleted. [UNIQUE-ID][]"
    assert f.items == [("Caller-Caller-ID-Name", "John Smith")]
    assert f.command("x", limit=1) == "-ERR invalid syntax"
    assert re.match(r"-ERR too many filters", f.command("Unique-ID x", limit=1))
    assert f.command("delete all") == "+OK filter deleted. [all][]" and not f


def test_the_relay_asks_a_live_switch_for_what_its_tracker_needs():
    from eslkit.calls import POPUP_EVENTS
    from eslkit.app.relay import switch_subscription

    assert switch_subscription(["ALL"]) == ["ALL"]
    merged = switch_subscription(["CUSTOM", "sofia::register"])
    # Every word after CUSTOM is a subclass to FreeSWITCH: CUSTOM and its subclasses go last.
    assert merged[merged.index("CUSTOM") + 1:] == ["sofia::register", "callcenter::info", "fifo::info"]
    assert set(merged[: merged.index("CUSTOM")]) == {n for n in POPUP_EVENTS if n.isupper() and n != "CUSTOM"}


# --- what a user types: names checked before subscribing ---------------------------------------


def test_a_name_the_real_switch_refused_is_refused_before_subscribing():
    """`event plain NO_SUCH_EVENT`: the real switch answered -ERR no keywords supplied; a
    typo beside a good name it skips in silence.  eslkit says which word and why, first."""
    assert "NO_SUCH_EVENT" in sent("event_formats_replies")[-3]
    with pytest.raises(UnknownEventName, match=r"'NO_SUCH_EVENT' is not a FreeSWITCH event name\.$"):
        checked_event_words(["NO_SUCH_EVENT"])
    with pytest.raises(UnknownEventName) as err:
        checked_event_words(["CHANNEL_ANSWER,CHANNEL_HANGUPP_COMPLETE"])
    assert str(err.value).endswith("did you mean CHANNEL_HANGUP_COMPLETE?") and err.value.exit_code == 2
    with pytest.raises(UnknownEventName, match="did you mean CHANNEL_ANSWER for CHANNEL_ANSWR, "
                                                "CHANNEL_CREATE for CHANEL_CREATE"):
        checked_event_words(["CHANNEL_ANSWR CHANEL_CREATE"])


def test_names_the_switch_knows_pass_as_the_switch_reads_them():
    # The words of the capture the real switch accepted, in any case, with the prefix.
    assert checked_event_words(["CHANNEL_CREATE CHANNEL_HANGUP_COMPLETE CUSTOM sofia::register"]) == \
        ["CHANNEL_CREATE", "CHANNEL_HANGUP_COMPLETE", "CUSTOM", "sofia::register"]
    assert checked_event_words(["channel_answer", "SWITCH_EVENT_HEARTBEAT", "ALL"]) == \
        ["channel_answer", "SWITCH_EVENT_HEARTBEAT", "ALL"]
    # Subclasses are the modules' own names: free-form, after CUSTOM or with ::.
    assert checked_event_words(["CUSTOM my_module::anything callcenter::info"]) == \
        ["CUSTOM", "my_module::anything", "callcenter::info"]


@pytest.mark.parametrize("command", ["watch", "relay"])
def test_a_typo_in_filter_ends_with_the_suggestion_before_connecting(command):
    extra = ["--to", "mqtt://127.0.0.1:1"] if command == "relay" else []
    # Nothing listens on port 1: a check after connecting would say "refused" instead.
    r = eslkit(command, *extra, "--port", 1, "-f", "CHANNEL_ANSWER,CHANNEL_HANGUPP_COMPLETE",
               env={"HOME": "/nonexistent"})
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines()[0] == ("eslkit: 'CHANNEL_HANGUPP_COMPLETE' is not a FreeSWITCH event name; "
                                        "did you mean CHANNEL_HANGUP_COMPLETE?")
    assert "fix:" in r.stderr and "Traceback" not in r.stderr
