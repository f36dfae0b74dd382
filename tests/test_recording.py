"""`eslkit.recording`: the one writer and reader of recordings and transcripts, and the
one set of errors that `watch --replay`, `popup --replay`, `relay --replay` and
`sim --replay` all give for a file they cannot use."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from eslkit import recording
from eslkit.errors import InputFileError
from eslkit.event import Event
from eslkit.protocol import EventFrame, Parser
from eslkit.sim.replay import load_replay
from eslkit.sources.replay import ReplaySource
from eslkit.status import ConnectionStatus
from tests.support.cli import eslkit, invoke



def test_what_the_recorder_writes_the_reader_reads_back(captures: Path, tmp_path: Path):
    events = [f.event for f in Parser().feed((captures / "scenario_queue_plain.raw").read_bytes())
              if isinstance(f, EventFrame)]
    path = tmp_path / "calls.jsonl"
    with recording.Recorder(path, batch=7) as rec:
        rec.status(ConnectionStatus("connected", "up"), 100.0)
        for i, event in enumerate(events):
            rec.event(event, 100.5 + i)
        rec.status(ConnectionStatus("disconnected", "gone", 1.5), 999.0)
    assert recording.file_kind(path) == recording.RECORDING
    entries = list(recording.read(path))
    assert [e.time for e in entries] == [100.0, *(100.5 + i for i in range(len(events))), 999.0]
    assert [e.item.to_dict() for e in entries[1:-1]] == [e.to_dict() for e in events]
    assert (entries[-1].item.state, entries[-1].item.reason, entries[-1].item.gap) == ("disconnected", "gone", 1.5)
    assert all(e.wire is None for e in entries)


def test_a_transcript_reads_as_the_switch_sent_it(captures: Path, tmp_path: Path):
    raw = captures / "scenario_noanswer_plain.raw"
    entries = list(recording.read(raw))
    frames = [f for f in Parser().feed(raw.read_bytes()) if isinstance(f, EventFrame)]
    events = [e for e in entries if isinstance(e.item, Event)]
    assert [e.wire for e in events] == [("plain", f.body) for f in frames]
    # Timed by the timeline beside it: seconds since the capture began, never going back.
    times = [e.time for e in events]
    assert times[0] < 60 and times == sorted(times) and times[-1] - times[0] > 5
    # Without the timeline, by each event's own Event-Date-Timestamp.
    alone = tmp_path / "noanswer.raw"
    alone.write_bytes(raw.read_bytes())
    assert [e.time for e in recording.read(alone) if isinstance(e.item, Event)] == \
        [f.event.timestamp for f in frames]


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


async def _drain(source):
    await source.open()
    return [item async for item in source]


BAD = [
    (b"hello world\n", "is neither an eslkit recording nor a raw ESL transcript."),
    (b'{"time": 1, "nothing": {}}\n', ": 1 damaged line was skipped (line 1: neither 'event' nor 'status')."),
    (b'{"time": "noon", "event": {}}\n', ": 1 damaged line was skipped (line 1: 'time' is not a number)."),
    (b'{"time": 1, "event": "CHANNEL_CREATE"}\n', ": 1 damaged line was skipped (line 1: 'event' is not an object)."),
    (b"  \n\n", " is empty: there is nothing to replay."),
    (b"Content-Type: text/event-plain\nContent-Length: x\n\n", " is not a valid ESL transcript: "),
]


@pytest.mark.parametrize("content,sentence", BAD)
def test_every_replay_gives_the_same_sentence_for_a_bad_file(tmp_path: Path, content: bytes, sentence: str):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    said = []
    for read in (lambda: _run(_drain(ReplaySource(path))), lambda: load_replay(str(path))):
        with pytest.raises(InputFileError) as err:
            read()
        said.append(str(err.value))
    for args in (["watch", "--format", "json"], ["popup", "--ext", "1001", "--format", "json"]):
        result = invoke(*args, "--replay", path)
        assert isinstance(result.exception, InputFileError) and result.exception.exit_code == 11
        said.append(str(result.exception))
    assert len(set(said)) == 1 and said[0].startswith(str(path)) and sentence in said[0]


def test_a_missing_file_and_a_directory(tmp_path: Path):
    with pytest.raises(InputFileError, match="There is no file"):
        load_replay(str(tmp_path / "nope.raw"))
    with pytest.raises(InputFileError, match="is a directory"):
        _run(_drain(ReplaySource(tmp_path)))


def test_a_recorder_that_cannot_write_says_so(tmp_path: Path):
    with pytest.raises(InputFileError, match="Cannot write the recording") as err:
        recording.Recorder(tmp_path / "no" / "such" / "dir.jsonl")
    assert isinstance(err.value.__cause__, OSError)  # the cause is kept for a traceback reader


# --- a recording is never overwritten ---------------------------------------------------------


def _record(*args):
    return eslkit("watch", "--format", "json", "--quiet", *args, env={"HOME": "/nonexistent"})


def test_record_refuses_to_overwrite_a_recording(captures: Path, tmp_path: Path):
    """`--record calls.jsonl` twice: the second run ends before reading anything, the first
    recording is untouched (265 lines used to become 4), and the fix names a free file."""
    rec = tmp_path / "calls.jsonl"
    assert _record("--replay", captures / "scenario_queue_plain.raw", "--record", rec).returncode == 0
    before = rec.read_bytes()
    (tmp_path / "calls-2.jsonl").write_text("")  # taken: the fix names the next one
    r = _record("--replay", captures / "greeting.raw", "--record", rec, "-n", 1)
    assert r.returncode == 11, r.stderr
    assert r.stderr.splitlines() == [
        f"eslkit: {rec} already holds a recording; eslkit never overwrites one.",
        f"  fix: Add --append to add to it, or record to a new file (e.g. --record {tmp_path}/calls-3.jsonl).",
    ]
    assert rec.read_bytes() == before


def test_record_refuses_any_other_file_without_calling_it_a_recording(captures: Path, tmp_path: Path):
    """--record contacts.csv (a slip): refused, untouched, and not told to --append to it."""
    other = tmp_path / "contacts.csv"
    other.write_text("number,name\n6208,Ada Lovelace\n")
    r = _record("--replay", captures / "greeting.raw", "--record", other, "-n", 1)
    assert r.returncode == 11, r.stderr
    assert r.stderr.splitlines() == [
        f"eslkit: {other} already exists and is not an eslkit recording; eslkit never overwrites a file.",
        f"  fix: Record to a new file (e.g. --record {tmp_path}/contacts-2.csv).",
    ]
    assert other.read_text() == "number,name\n6208,Ada Lovelace\n"


def test_record_append_adds_whole_lines_even_after_a_cut_off_one(captures: Path, tmp_path: Path):
    rec = tmp_path / "calls.jsonl"
    assert _record("--replay", captures / "scenario_queue_plain.raw", "--record", rec).returncode == 0
    first = rec.read_bytes()
    rec.write_bytes(first[:-40])  # the last line cut off, as by kill -9 or a full disk
    assert _record("--replay", captures / "scenario_noanswer_plain.raw", "--record", rec,
                   "--append").returncode == 0
    lines = rec.read_bytes().split(b"\n")
    assert lines[len(first[:-40].split(b"\n")) - 1] == first[:-40].split(b"\n")[-1]  # the cut line alone
    added = [json.loads(x) for x in lines[len(first[:-40].split(b"\n")):] if x]
    assert added[0]["status"]["state"] == "connected" and any("event" in x for x in added)


def test_record_into_an_empty_file_or_a_device_is_fine(captures: Path, tmp_path: Path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    for target in (empty, Path("/dev/null")):
        r = _record("--replay", captures / "greeting.raw", "--record", target)
        assert r.returncode == 0, r.stderr
    assert empty.read_text().startswith('{"time":')


def test_append_is_only_for_recordings(captures: Path, tmp_path: Path):
    transcript = tmp_path / "t.raw"
    transcript.write_bytes((captures / "greeting.raw").read_bytes())
    r = _record("--replay", captures / "greeting.raw", "--record", transcript, "--append")
    assert r.returncode == 11 and "is not an eslkit recording: --append adds only to one." in r.stderr
    assert transcript.read_bytes() == (captures / "greeting.raw").read_bytes()
    assert _record("--replay", captures / "greeting.raw", "--append").returncode == 2


# --- a damaged recording is replayed around the damage ------------------------------------------


def test_a_damaged_recording_plays_every_good_line_then_says_what_was_skipped(captures: Path, tmp_path: Path):
    """kill -9 or a full disk cuts the last line; a hand edit breaks one in the middle: the
    replay used to stop there (exit 11, "'str' object has no attribute 'items'", the summary
    before the error).  Now every other line plays, the summary comes, and the error last."""
    rec = tmp_path / "calls.jsonl"
    assert _record("--replay", captures / "scenario_queue_plain.raw", "--record", rec).returncode == 0
    lines = rec.read_bytes().split(b"\n")[:-1]
    events = sum(b'"event"' in x for x in lines[:5] + lines[6:9] + lines[10:-1])
    lines[5] = b'{"time": 1, "event": "oops"}'
    lines[9] = b'{"time": 1, "event": {"Event-Na'
    lines[-1] = lines[-1][:-25]  # and the last line cut off
    rec.write_bytes(b"\n".join(lines))
    r = eslkit("watch", "--replay", rec, "--format", "json", env={"HOME": "/nonexistent"})
    assert r.returncode == 11, r.stderr
    assert len(r.stdout.splitlines()) == events
    assert [json.loads(x)["Event-Name"] for x in r.stdout.splitlines()]  # whole lines only
    err = r.stderr.splitlines()
    assert err[0].startswith(f"eslkit watch: {events} events received")
    assert err[1] == (f"eslkit: {rec}: 3 damaged lines were skipped (line 6: 'event' is not an object; "
                      f"line 10: not JSON; line {len(lines)}: cut off).")
    assert err[2].startswith("  fix: Every other line was replayed.") and len(err) == 3


def test_a_recording_cut_off_by_kill_9_says_just_that(captures: Path, tmp_path: Path):
    rec = tmp_path / "calls.jsonl"
    assert _record("--replay", captures / "scenario_noanswer_plain.raw", "--record", rec).returncode == 0
    data = rec.read_bytes()
    rec.write_bytes(data[: data.rindex(b"{") + 30])
    r = eslkit("popup", "--ext", "1002", "--replay", rec, "--format", "json", env={"HOME": "/nonexistent"})
    assert r.returncode == 11
    assert r.stdout.count("\n") >= 2  # the call's popups, whole
    n = data.count(b"\n")
    assert r.stderr.splitlines()[-2:] == [
        f"eslkit: {rec}: 1 damaged line was skipped (line {n}: cut off).",
        "  fix: Every other line was replayed; a line is cut off when recording stops mid-write (kill -9, a full disk).",
    ]


def test_the_simulator_serves_a_damaged_recording_and_warns(captures: Path, tmp_path: Path):
    rec = tmp_path / "calls.jsonl"
    assert _record("--replay", captures / "scenario_queue_plain.raw", "--record", rec).returncode == 0
    lines = rec.read_bytes().split(b"\n")
    assert b'"event"' in lines[10]
    lines[10] = lines[10][:100]  # an event cut in two
    rec.write_bytes(b"\n".join(lines))
    replay = load_replay(str(rec))
    assert replay.damage.count == 1 and len(replay) == 87


@pytest.mark.parametrize("command", [["watch", "--format", "json"], ["popup", "--ext", "1002", "--format", "json"]])
def test_a_transcripts_disconnect_notice_is_not_a_reconnect(captures: Path, command):
    """The switch's disconnect notice inside a transcript is what the recorded switch did
    (here: it was shut down): a file does not reconnect, so nothing says "reconnecting"."""
    raw = captures / "fs_stopped_while_connected.raw"
    assert b"Reply-Text: +OK bye" not in raw.read_bytes()
    r = eslkit(*command, "--replay", raw, env={"HOME": "/nonexistent"})
    assert r.returncode == 0, r.stderr
    assert "eslkit: in the recording, the link was lost: The system is being shut down.\n" in r.stderr
    assert "reconnecting" not in r.stderr


@pytest.mark.parametrize("command", [["watch", "--format", "json"], ["popup", "--ext", "1002", "--format", "json"]])
def test_the_goodbye_after_the_recorders_exit_is_the_end_not_a_lost_link(captures: Path, command):
    """A capture ends with the recorder's own `exit`: the switch's "+OK bye" and its
    "Disconnected, goodbye." notice.  Nothing was lost, so nothing says so."""
    raw = captures.parent / "1.10.12-b" / "scenario_fifo_1002_plain.raw"
    data = raw.read_bytes()
    assert data.index(b"Reply-Text: +OK bye") < data.index(b"text/disconnect-notice")
    r = eslkit(*command, "--replay", raw, env={"HOME": "/nonexistent"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() and "lost" not in r.stderr and "goodbye" not in r.stderr, r.stderr
