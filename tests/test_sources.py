"""Event sources: replay of raw transcripts and recordings, the recorder, the live ESL source."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from eslkit.status import ConnectionStatus
from eslkit.config import ConnectionSettings
from eslkit.errors import AuthError, InputFileError
from eslkit.event import Event
from eslkit.recording import Recorder
from eslkit.sources import EslSource, ReplaySource
from tests.support.transcript_server import serve, transcript_handler
from tests.support.sources import events_in as capture_events


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def collect(source) -> list:
    await source.open()
    try:
        return [item async for item in source]
    finally:
        await source.close()


@pytest.mark.parametrize("name, n", [
    ("scenario_queue_plain", 88), ("scenario_queue_json", 88), ("scenario_queue_xml", 90),
    ("scenario_noanswer_plain", 51), ("agents_register_plain", None), ("fs_stopped_while_connected", 208),
])
def test_replay_of_raw_transcripts_gives_every_event(captures, name, n):
    path = captures / f"{name}.raw"
    items = run(collect(src := ReplaySource(path)))
    events = [i for i in items if isinstance(i, Event)]
    expected = capture_events(path)
    assert [e.to_dict() for e in events] == [e.to_dict() for e in expected]
    if n is not None:
        assert len(events) == n
    assert src.received == len(events) and src.kind == "transcript"
    assert isinstance(items[0], ConnectionStatus) and items[0].state == "connected"


def test_replay_reports_the_switchs_disconnect_notice(captures):
    items = run(collect(ReplaySource(captures / "fs_stopped_while_connected.raw")))
    statuses = [i for i in items if isinstance(i, ConnectionStatus)]
    assert statuses[-1].state == "disconnected"
    assert "shut down" in statuses[-1].reason


def test_recording_round_trip_events_and_status(captures, tmp_path):
    events = capture_events(captures / "scenario_queue_json.raw")
    rec_path = tmp_path / "rec.jsonl"
    with Recorder(rec_path) as rec:
        rec.status(ConnectionStatus("connected", "up"), 1000.0)
        for i, e in enumerate(events):
            rec.event(e, 1000.0 + i / 100)
        rec.status(ConnectionStatus("disconnected", "gone"), 1002.0)
        rec.status(ConnectionStatus("connected", "back", gap=1.5), 1003.5)
    lines = [json.loads(x) for x in rec_path.read_text().splitlines()]
    assert lines[0] == {"time": 1000.0, "status": {"state": "connected", "reason": "up", "gap": None}}
    assert lines[1]["time"] == 1000.0 and lines[1]["event"] == events[0].to_dict()
    assert lines[-1]["status"] == {"state": "connected", "reason": "back", "gap": 1.5}

    items = run(collect(src := ReplaySource(rec_path)))
    assert src.kind == "recording"
    replayed = [i for i in items if isinstance(i, Event)]
    assert [e.to_dict() for e in replayed] == [e.to_dict() for e in events]
    statuses = [(i.state, i.reason, i.gap) for i in items if isinstance(i, ConnectionStatus)]
    # the source's own "connected" first, then the three recorded ones
    assert statuses[1:] == [("connected", "up", None), ("disconnected", "gone", None), ("connected", "back", 1.5)]


def test_replay_speed_keeps_the_spacing(tmp_path):
    rec = tmp_path / "r.jsonl"
    ev = {"Event-Name": "HEARTBEAT"}
    rec.write_text("".join(json.dumps({"time": 100 + t, "event": ev}) + "\n" for t in (0, 0.5, 1.0)))
    t0 = time.monotonic()
    run(collect(ReplaySource(rec, speed=4)))  # 1 s of recording at 4x: at least 0.25 s
    paced = time.monotonic() - t0
    assert paced >= 0.24
    t0 = time.monotonic()
    run(collect(ReplaySource(rec)))  # as fast as possible: no sleeping at all
    assert time.monotonic() - t0 < paced


@pytest.mark.parametrize("content, fragment", [
    (b"hello world\n", "neither an eslkit recording"),
    (b'{"time": 1, "nothing": {}}\n', "line 1"),
    (b'{"time": 1, "event": {"Event-Name": "X"}}\n{broken\n', "line 2"),
    (b'{"time": "noon", "event": {}}\n', "line 1"),
])
def test_bad_replay_files_are_input_errors(tmp_path, content, fragment):
    path = tmp_path / "bad"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=fragment) as err:
        run(collect(ReplaySource(path)))
    assert err.value.exit_code == 11


def test_missing_replay_file(tmp_path):
    with pytest.raises(InputFileError, match="no file"):
        run(collect(ReplaySource(tmp_path / "nope.jsonl")))


def test_transcript_cut_off_mid_frame_keeps_what_came_before(captures, tmp_path):
    data = (captures / "scenario_queue_plain.raw").read_bytes()
    path = tmp_path / "cut.raw"
    path.write_bytes(data[: len(data) // 2])
    events = [i for i in run(collect(ReplaySource(path))) if isinstance(i, Event)]
    assert 10 < len(events) < 88


# --- the live source, over a real socket with the real switch's bytes --------------------


@pytest.mark.parametrize("fmt", ["plain", "json", "xml"])
def test_esl_source_streams_a_real_scenario(captures, fmt):
    capture = captures / f"scenario_queue_{fmt}.raw"
    expected = capture_events(capture)

    async def main():
        async with serve(transcript_handler(capture)) as port:
            src = EslSource(ConnectionSettings(port=port, timeout=3), format=fmt, reconnect=False)
            await src.open()
            got = []
            async for item in src:
                if isinstance(item, Event):
                    got.append(item)
                    if len(got) == len(expected):
                        break
            assert src.subscriptions == ["ALL"]
            await src.close()
            return got

    got = run(main())
    assert [e.to_dict() for e in got] == [e.to_dict() for e in expected]


def test_esl_source_wrong_password_raises_auth_error(captures):
    async def main():
        async with serve(transcript_handler(captures / "auth_wrong_password.raw")) as port:
            src = EslSource(ConnectionSettings(port=port, password="nope", timeout=3))
            with pytest.raises(AuthError):
                await src.open()
    run(main())


# --- the Source protocol: every kind says the same things -----------------------------------


def test_every_source_kind_answers_the_source_protocol(captures, mosquitto):
    """No engine probes a source: each kind has every member of `Source`, and says plainly
    what it can do (only a live switch has a `switch` to ask)."""
    from eslkit.sources import EventsSource, Source
    from eslkit.sources.broker import open_broker_source

    members = [m for m in dir(Source) if not m.startswith("_")] + ["__aiter__"]
    assert set(members) >= {"description", "live", "reconnects", "received", "dropped", "subscriptions",
                            "filters", "switch", "open", "close"}
    kinds = {
        "switch": EslSource(ConnectionSettings(port=1), names=["CHANNEL_ANSWER"], filters=[("Unique-ID", "x")]),
        "file": ReplaySource(captures / "scenario_queue_plain.raw", names=["CHANNEL_ANSWER"],
                             filters=[("Unique-ID", "x")]),
        "broker": open_broker_source(mosquitto.url, names=["CHANNEL_ANSWER"], filters=[("Unique-ID", "x")]),
        "memory": EventsSource([]),
    }
    for kind, source in kinds.items():
        missing = [m for m in members if not hasattr(source, m)]
        assert not missing, (kind, missing)
        assert isinstance(source.description, str) and source.received == 0 and source.dropped == 0
    assert [kinds[k].live for k in ("switch", "file", "broker", "memory")] == [True, False, True, False]
    assert [kinds[k].reconnects for k in ("switch", "file", "broker", "memory")] == [True, False, True, False]
    assert kinds["switch"].switch is kinds["switch"].conn
    assert all(kinds[k].switch is None for k in ("file", "broker", "memory"))
    assert [kinds[k].filters for k in ("file", "broker")] == [[("Unique-ID", "x")]] * 2
    assert kinds["file"].subscriptions == ["CHANNEL_ANSWER"]


def test_a_file_source_yields_what_a_switch_would_have_sent(captures):
    path = captures / "scenario_queue_plain.raw"
    src = ReplaySource(path, names=["CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE"],
                       filters=[("Call-Direction", "OUTBOUND")])
    events = [i for i in run(collect(src)) if isinstance(i, Event)]
    assert [(e.event_name, e.direction) for e in events] == [
        ("CHANNEL_ANSWER", "outbound"), ("CHANNEL_HANGUP_COMPLETE", "outbound"),
        ("CHANNEL_HANGUP_COMPLETE", "outbound")]
    assert src.received == 3  # counted as a switch counts what it sends
