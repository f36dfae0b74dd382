"""Scenario calls from `eslkit sim` carry the same events as the real FreeSWITCH calls
in the captures: same names, order, header names and count per call, with fresh
UUIDs, times and sequence numbers; many clients each get their own format and filters."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from eslkit.protocol import ApiResponse, EventFrame, Parser
from eslkit.sim import derive
from eslkit.sim.fastpath import CallValues
from eslkit.sim.data import data_text, read_data
from eslkit.sim.scenarios import LoadSpec, load_scenario
from tests.support.sim import sim_in_thread
from tests.test_sim_protocol import Client, talk


def capture_events(captures: Path, name: str) -> list:
    return derive.call_events((captures / name).read_bytes())


def shape(events) -> list[tuple[str, list[str]]]:
    return [(e.name, [k for k, _ in e.pairs()]) for e in events]


def collect(client: Client, done, timeout: float = 10.0) -> list:
    client.read_until(done, timeout)
    return [f.event for f in client.frames if isinstance(f, EventFrame)]


def channel_events(events) -> list:
    return [e for e in events if e.name not in ("API", "BACKGROUND_JOB")]


def test_data_files_are_derived_from_the_captures(captures: Path) -> None:
    for filename, data in derive.build_all(captures).items():
        assert data_text(Path(filename).stem) == derive.dump(data), filename


@pytest.mark.parametrize("name,capture", [("queue", "scenario_queue_plain.raw"),
                                          ("noanswer", "scenario_noanswer_plain.raw")])
def test_templates_render_the_captured_bytes(name: str, capture: str, captures: Path, monkeypatch) -> None:
    """Filled with the captured call's own uuids, times and sequence numbers, every
    template serialises to exactly the event FreeSWITCH sent, in all three formats."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    raw = (captures / capture).read_bytes()
    data, tok = derive.derive_with_tokens(raw, name, "", "")
    real = derive.call_events(raw)
    scenario = load_scenario(name)
    by_token = {t: u for u, t in tok.uuids.items()}
    values = CallValues(tok.base, [by_token[f"~~U{i}~~"] for i in range(len(by_token))], tok.core)
    assert len(scenario.templates) == len(real)
    for template, event in zip(scenario.templates, real):
        ours = template.instantiate(values, int(event.get("Event-Sequence")))
        for fmt in ("plain", "json", "xml"):
            assert ours.frame(fmt).split(b"\n\n", 1)[1] == event.serialize(fmt).encode(), (event.name, fmt)


@pytest.mark.parametrize("name,capture", [("queue", "scenario_queue_plain.raw"),
                                          ("noanswer", "scenario_noanswer_plain.raw"),
                                          ("busy", "scenario_noanswer_plain.raw")])
def test_scenario_events_over_the_socket(name: str, capture: str, captures: Path) -> None:
    real = capture_events(captures, capture)
    with sim_in_thread(scenario=None, speed=None) as sim:
        client = talk(sim.host, sim.port, b"auth ClueCon\n\nevent plain ALL\n\n")
        sim.call(sim.server.play(name))
        events = collect(client, lambda: sum(isinstance(f, EventFrame) for f in client.frames) >= len(real))
        client.close()
    if name == "busy":  # the agent's leg refuses first; same events and headers otherwise
        assert sorted(shape(events)) == sorted(shape(real))
        causes = {e.hangup_cause for e in events if e.name == "CHANNEL_HANGUP_COMPLETE"}
        assert causes == {"USER_BUSY"}
    else:
        assert shape(events) == shape(real)
    real_uuids = {e.unique_id for e in real}
    ours = {e.unique_id for e in events if e.unique_id}
    assert ours and not ours & real_uuids  # fresh uuids
    seqs = [e.sequence for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(abs(e.timestamp - time.time()) < 60 for e in events)
    answered = [e for e in events if e.name == "CHANNEL_ANSWER"]
    if name == "queue":
        caller = next(e for e in events if e.name == "CHANNEL_CREATE")
        assert (caller.caller_number, caller.caller_name, caller.destination) == ("6208", "Caller 6208", "2000")
        assert [e.destination for e in answered] == ["1001", "2000"]
        lost = [e for e in events if e.name == "CHANNEL_HANGUP_COMPLETE" and e.hangup_cause == "LOSE_RACE"]
        assert [e.destination for e in lost] == ["1002"]
        talk_time = answered[0].timestamp - caller.timestamp
        assert 2.9 < talk_time < 3.1  # 1001 answers after 3 s (event times, not wall time)
    else:
        assert not answered


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_scenario_in_other_formats_matches_their_capture(fmt: str, captures: Path) -> None:
    real = capture_events(captures, f"scenario_queue_{fmt}.raw")
    with sim_in_thread(scenario=None, speed=None) as sim:
        client = talk(sim.host, sim.port, f"auth ClueCon\n\nevent {fmt} ALL\n\n".encode())
        sim.call(sim.server.play("queue"))
        events = collect(client, lambda: sum(isinstance(f, EventFrame) for f in client.frames) >= len(real))
        client.close()
    assert {f.content_type for f in client.frames if isinstance(f, EventFrame)} == {f"text/event-{fmt}"}
    # another recording of the same call (its variables differ a little): the same events
    assert sorted(e.name for e in events) == sorted(e.name for e in real)


def test_many_clients_each_with_their_own_subscription_format_and_filters(captures: Path) -> None:
    popup_capture = Parser().feed((captures / "scenario_queue_plain_filtered_1001_with_api.raw").read_bytes())
    popup_real = [f.event for f in popup_capture if isinstance(f, EventFrame)]
    sent = (captures / "scenario_queue_plain_filtered_1001_with_api.sent").read_bytes()
    setup = sent.split(b"api show")[0]
    with sim_in_thread(scenario="queue", speed=None, autostart=False) as sim:
        popup = talk(sim.host, sim.port, setup)
        everything = talk(sim.host, sim.port, b"auth ClueCon\n\nevent json ALL\n\n")
        answers = talk(sim.host, sim.port, b"auth ClueCon\n\nevent xml CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE\n\n"
                                            b"filter Call-Direction inbound\n\n")
        not_1002 = talk(sim.host, sim.port, b"auth ClueCon\n\nevent plain CHANNEL_CREATE\n\n"
                                             b"filter Caller-Destination-Number /^10/\n\n"
                                             b"filter Caller-Destination-Number -1002\n\n")
        idle = talk(sim.host, sim.port, b"auth ClueCon\n\n")
        sim.call(sim.server.play("queue"))
        for c in (popup, everything, answers, not_1002, idle):
            c.read_until(lambda: False, timeout=0.3)
            c.close()
    names = lambda c: [(f.event.name, f.event.destination) for f in c.frames if isinstance(f, EventFrame)]  # noqa
    assert names(popup) == [(e.name, e.destination) for e in popup_real]
    assert all(f.content_type == "text/event-plain" for f in popup.frames if isinstance(f, EventFrame))
    assert len(names(everything)) == len(capture_events(captures, "scenario_queue_plain.raw"))
    assert names(answers) == [("CHANNEL_ANSWER", "2000"), ("CHANNEL_HANGUP_COMPLETE", "2000")]
    assert all(f.content_type == "text/event-xml" for f in answers.frames if isinstance(f, EventFrame))
    assert names(not_1002) == [("CHANNEL_CREATE", "1001")]
    assert names(idle) == []


def test_show_channels_and_calls_follow_the_call(captures: Path) -> None:
    real = [f for f in Parser().feed((captures / "scenario_queue_plain_filtered_1001_with_api.raw").read_bytes())
            if isinstance(f, ApiResponse)]
    real_rows = [json.loads(r.text)["rows"] for r in real]
    with sim_in_thread(scenario="queue", speed=2.0, autostart=False) as sim:
        client = talk(sim.host, sim.port, b"auth ClueCon\n\nevent plain CHANNEL_PROGRESS_MEDIA CHANNEL_BRIDGE "
                                           b"CHANNEL_HANGUP_COMPLETE\n\n")
        sim.call_soon(sim.server.spawn, sim.server.play("queue"))

        def api(cmd: bytes) -> str:
            before = len(client.replies())
            client.sock.sendall(b"api " + cmd + b"\n\n")
            client.read_until(lambda: len(client.replies()) > before)
            return client.replies()[-1].text

        seen = lambda n: lambda: sum(isinstance(f, EventFrame) and f.event.name == n for f in client.frames)  # noqa
        client.read_until(seen("CHANNEL_PROGRESS_MEDIA"), timeout=5)  # both agents ring, caller hears it
        ringing = json.loads(api(b"show channels as json"))
        ringing_calls = api(b"show calls")
        client.read_until(seen("CHANNEL_BRIDGE"), timeout=5)
        talking = json.loads(api(b"show channels as json"))
        talking_calls = json.loads(api(b"show calls as json"))
        client.read_until(lambda: seen("CHANNEL_HANGUP_COMPLETE")() >= 3, timeout=8)
        client.read_until(lambda: False, timeout=0.2)
        after = api(b"show channels")
        client.close()
    assert ringing["row_count"] == 3 and talking["row_count"] == 2
    for ours, theirs in ((ringing["rows"], real_rows[0]), (talking["rows"], real_rows[1])):
        assert [list(r) for r in ours] == [list(r) for r in theirs]
        assert [(r["direction"], r["dest"], r["callstate"], r["cid_name"]) for r in ours] == [
            (r["direction"], r["dest"], r["callstate"], r["cid_name"]) for r in theirs]
    assert ringing_calls.endswith("\n\n3 total.\n")  # nothing bridged yet: every leg is its own row
    assert talking_calls["row_count"] == 1
    row = talking_calls["rows"][0]
    assert (row["dest"], row["b_dest"]) == ("2000", "1001")
    assert after == "\n0 total.\n"


def test_load_generator_runs_concurrent_calls_over_the_agent_pool() -> None:
    spec = load_scenario("load:calls=12,cps=1000,concurrent=4,agents=3,first_agent=2001")
    assert isinstance(spec, LoadSpec) and spec.concurrent == 4
    per_call = len(load_scenario("queue").templates)
    with sim_in_thread(scenario=spec, speed=None, autostart=False) as sim:
        client = talk(sim.host, sim.port, b"auth ClueCon\n\nevent plain CHANNEL_CREATE CHANNEL_ANSWER\n\n")
        sim.call(sim.server.play(spec))
        events = collect(client, lambda: False, timeout=0.5)
        fired = sim.server.events_fired
        client.close()
    callers = [e for e in events if e.name == "CHANNEL_CREATE" and e.direction == "inbound"]
    assert len(callers) == 12 and len({e.call_uuid for e in callers}) == 12
    assert len({e.caller_number for e in callers}) == 12
    agents = {e.destination for e in events if e.name == "CHANNEL_CREATE" and e.direction == "outbound"}
    assert agents == {"2001", "2002", "2003"}
    assert fired >= 12 * per_call


@pytest.mark.parametrize("bad", ["load:calls=x", "load:nonsense=1", "load:agents=1", "nosuchscenario"])
def test_bad_scenarios_are_clear_errors(bad: str) -> None:
    from eslkit.errors import InputFileError

    with pytest.raises(InputFileError) as err:
        load_scenario(bad)
    assert err.value.fix and err.value.exit_code == 11


def test_scenario_file_and_loop(tmp_path: Path) -> None:
    custom = read_data("noanswer")
    custom["name"] = "mine"
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(custom))
    with sim_in_thread(scenario=str(path), speed=None, loop=True) as sim:
        client = talk(sim.host, sim.port, b"auth ClueCon\n\nevent plain CHANNEL_CREATE\n\n")
        client.read_until(lambda: sum(isinstance(f, EventFrame) for f in client.frames) >= 6, timeout=5)
        client.close()
    creates = [f.event for f in client.frames if isinstance(f, EventFrame)]
    assert len(creates) >= 6  # 2 legs a call, and it came round at least three times
    assert len({e.unique_id for e in creates}) == len(creates)



def test_myevents_follows_one_live_channel() -> None:
    with sim_in_thread(scenario="queue", speed=4.0, autostart=False) as sim:
        watcher = talk(sim.host, sim.port, b"auth ClueCon\n\nevent plain CHANNEL_CREATE\n\n")
        sim.call_soon(sim.server.spawn, sim.server.play("queue"))
        watcher.read_until(lambda: any(isinstance(f, EventFrame) for f in watcher.frames), timeout=5)
        caller = next(f.event for f in watcher.frames if isinstance(f, EventFrame))
        mine = talk(sim.host, sim.port, f"auth ClueCon\n\nmyevents {caller.unique_id} json\n\n".encode())
        bad = talk(sim.host, sim.port, b"auth ClueCon\n\nmyevents json 00000000-0000-0000-0000-000000000000\n\n")
        mine.read_until(lambda: any(isinstance(f, EventFrame) and f.event.name == "CHANNEL_DESTROY"
                                    for f in mine.frames), timeout=8)
        watcher.close()
        mine.close()
        bad.close()
    assert mine.replies()[-1].reply_text == "+OK Events Enabled"
    assert bad.replies()[-1].reply_text == "-ERR invalid uuid"
    events = [f for f in mine.frames if isinstance(f, EventFrame)]
    assert events and {f.event.unique_id for f in events} == {caller.unique_id}
    assert {f.content_type for f in events} == {"text/event-json"}
    assert "CHANNEL_ANSWER" in [f.event.name for f in events]
