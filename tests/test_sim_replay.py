"""`eslkit sim --replay`: every connection gets its own playback of a transcript or
recording, from the start, in its format, through its filters, then the disconnect notice."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from eslkit.errors import InputFileError
from eslkit.protocol import DisconnectNotice, EventFrame
from eslkit.sim.replay import load_replay
from tests.support.sim import sim_in_thread
from tests.test_sim_protocol import Client, talk
from tests.support.sources import events_in as real_events


def play(sim, subscribe: bytes) -> Client:
    client = talk(sim.host, sim.port, b"auth ClueCon\n\n" + subscribe)
    client.read_until(lambda: client.eof, timeout=10)
    return client


def test_replay_of_a_raw_transcript_at_max_speed(captures: Path) -> None:
    path = captures / "scenario_queue_plain.raw"
    real = real_events(path)
    with sim_in_thread(replay=str(path), speed=None) as sim:
        plain = play(sim, b"event plain ALL\n\n")
        as_json = play(sim, b"event json ALL\n\n")  # a later connection: its own playback from the start
        filtered = play(sim, b"event xml CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE\n\n"
                             b"filter Caller-Destination-Number 1001\n\n")
    ev = lambda c: [f.event for f in c.frames if isinstance(f, EventFrame)]  # noqa: E731
    assert [(e.name, e.pairs()) for e in ev(plain)] == [(e.name, e.pairs()) for e in real]
    assert [e.to_dict() for e in ev(as_json)] == [e.to_dict() for e in real]
    assert {f.content_type for f in as_json.frames if isinstance(f, EventFrame)} == {"text/event-json"}
    assert [(e.name, e.destination) for e in ev(filtered)] == [("CHANNEL_ANSWER", "1001"),
                                                              ("CHANNEL_HANGUP_COMPLETE", "1001")]
    for client in (plain, as_json, filtered):
        assert isinstance(client.frames[-1], DisconnectNotice) and client.eof


def test_replay_timing_follows_the_timeline_scaled_by_speed(captures: Path) -> None:
    path = captures / "scenario_noanswer_plain.raw"  # events over ~6 s of the timeline
    replay = load_replay(str(path))
    span = replay.items[-1][0] - replay.items[0][0]
    assert 5.5 < span < 7.0
    with sim_in_thread(replay=str(path), speed=10.0) as sim:
        start = time.monotonic()
        client = play(sim, b"event plain CHANNEL_CREATE CHANNEL_HANGUP_COMPLETE\n\n")
        elapsed = time.monotonic() - start
    assert [f.event.name for f in client.frames if isinstance(f, EventFrame)] == [
        "CHANNEL_CREATE", "CHANNEL_CREATE", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_HANGUP_COMPLETE"]
    assert elapsed >= span / 10 * 0.9  # the gaps were kept (scaled), not skipped


def test_replay_without_timeline_uses_event_dates(captures: Path, tmp_path: Path) -> None:
    copy = tmp_path / "call.raw"
    copy.write_bytes((captures / "scenario_noanswer_plain.raw").read_bytes())
    replay = load_replay(str(copy))
    real = real_events(copy)
    assert replay.items[-1][0] == pytest.approx(real[-1].timestamp - real[0].timestamp)


def test_replay_of_an_eslkit_recording(captures: Path, tmp_path: Path) -> None:
    real = real_events(captures / "scenario_queue_json.raw")
    path = tmp_path / "rec.jsonl"
    lines = [json.dumps({"time": 1_800_000_000.0 + i * 0.001, "event": e.to_dict()}) for i, e in enumerate(real)]
    lines.insert(3, json.dumps({"time": 1_800_000_000.0, "status": {"state": "disconnected", "reason": "x"}}))
    path.write_text("\n".join(lines) + "\n")
    with sim_in_thread(replay=str(path), speed=None) as sim:
        client = play(sim, b"event plain ALL\n\n")
    ours = [f.event for f in client.frames if isinstance(f, EventFrame)]
    assert [e.to_dict() for e in ours] == [e.to_dict() for e in real]


@pytest.mark.parametrize("content", [b"{not json\n", b'{"time": 1, "event": 5}\n', b"", b"Content-Type: x\n"])
def test_bad_replay_files_are_clear_errors(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "bad.raw"
    path.write_bytes(content)
    with pytest.raises(InputFileError) as err:
        load_replay(str(path))
    assert err.value.exit_code == 11 and str(err.value).endswith(".")


def test_missing_replay_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputFileError):
        load_replay(str(tmp_path / "nope.raw"))
