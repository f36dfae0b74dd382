"""`eslkit watch` through the CLI, on the real 1.10.12 captures via --replay."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import unquote
from xml.etree import ElementTree

import pytest

from eslkit.protocol import EventFrame, Parser
from tests.support.cli import EXE, invoke




def watch(*args: str):
    result = invoke("watch", *args)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def frames(path: Path) -> list[EventFrame]:
    return [f for f in Parser().feed(path.read_bytes()) if isinstance(f, EventFrame)]


# --- JSON lines, field by field against the captures (independent decoders) ----------------


def oracle_plain(body: bytes) -> dict:
    head, _, rest = body.decode().partition("\n\n")
    d = {}
    for line in head.split("\n"):
        name, _, value = line.partition(": ")
        value = unquote(value)
        d[name] = value[7:].split("|:") if value.startswith("ARRAY::") else value
    if rest:
        d["_body"] = rest
    return d


def oracle_json(body: bytes) -> dict:
    return json.loads(body)


def oracle_xml(body: bytes) -> dict:
    root = ElementTree.fromstring(body)
    d: dict = {}
    prev = None
    for child in root.find("headers"):
        value = unquote(child.text or "")
        if child.tag == prev:  # a multi-value header is a run of same-named tags
            d[prev] = (d[prev] if isinstance(d[prev], list) else [d[prev]]) + [value]
        else:
            d.setdefault(child.tag, value)
        prev = child.tag
    b = root.find("body")
    if b is not None:
        d["_body"] = b.text[: int(root.findtext("Content-Length"))]
        d["Content-Length"] = root.findtext("Content-Length")
    return d


@pytest.mark.parametrize("fmt, oracle", [("plain", oracle_plain), ("json", oracle_json), ("xml", oracle_xml)])
def test_json_lines_match_the_capture_field_by_field(captures, fmt, oracle):
    path = captures / f"scenario_queue_{fmt}.raw"
    result = watch("--replay", path, "--format", "json")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    expected = [oracle(f.body) for f in frames(path)]
    assert len(lines) == len(expected) >= 88
    for line, exp in zip(lines, expected):
        got = json.loads(line)
        assert set(got) == set(exp)
        for key, value in exp.items():
            assert got[key] == value, (key, got[key], value)
    first = json.loads(lines[0])
    assert first["Event-Name"] == "CHANNEL_STATE"
    answers = [json.loads(x) for x in lines if '"CHANNEL_ANSWER"' in x]
    assert {a["Caller-Caller-ID-Name"] for a in answers} == {"Caller 6208"}  # decoded, not Caller%206208


def test_json_is_the_default_when_stdout_is_not_a_terminal(captures):
    result = watch("--replay", captures / "scenario_noanswer_plain.raw")
    lines = result.stdout.splitlines()
    assert len(lines) == 51 and all(json.loads(x)["Event-Name"] for x in lines)
    assert "events received" in result.stderr and "events received" not in result.stdout


def test_background_job_body_is_kept_under_body(captures):
    result = watch("--replay", captures / "bgapi_status_plain.raw", "--format", "json")
    jobs = [json.loads(x) for x in result.stdout.splitlines() if "BACKGROUND_JOB" in x]
    assert [j["Job-Command"] for j in jobs] == ["status", "version"]
    assert jobs[0]["_body"].startswith("UP 0 years") and "\n" in jobs[0]["_body"]
    assert jobs[1]["_body"].startswith("FreeSWITCH Version 1.10.12")


# --- plain, as fs_cli shows it -------------------------------------------------------------


def test_plain_is_fs_cli_header_blocks(captures):
    result = watch("--replay", captures / "scenario_queue_plain.raw", "--format", "plain", "--count", "3")
    blocks = result.stdout.split("RECV EVENT\n")[1:]
    assert len(blocks) == 3
    assert blocks[0].startswith("Event-Name: CHANNEL_STATE\nCore-UUID: ")
    assert blocks[0].endswith("\n\n\n") or blocks[0].endswith("\n\n")
    assert "Caller-Caller-ID-Name: Caller 6208\n" in blocks[1]
    assert "%40" not in result.stdout  # values decoded


def test_plain_event_with_body_shows_content_length_and_body(captures):
    result = watch("--replay", captures / "bgapi_status_plain.raw", "--format", "plain", "--filter", "BACKGROUND_JOB")
    assert "Event-Name: BACKGROUND_JOB" in result.stdout
    assert re.search(r"Content-Length: \d+\n\nUP ", result.stdout)


# --- count, quiet, summary, stats ----------------------------------------------------------------


def test_count_stops_after_n_events(captures):
    result = watch("--replay", captures / "scenario_queue_plain.raw", "--count", "5", "--format", "json")
    assert len(result.stdout.splitlines()) == 5


def test_quiet_prints_only_the_summary_line(captures):
    result = watch("--replay", captures / "scenario_queue_plain.raw", "--quiet", "--format", "plain")
    assert result.stdout == ""
    assert re.fullmatch(r"eslkit watch: 88 events received, 0 dropped, [\d.]+ s, [\d.]+ events/s\n", result.stderr)


def test_stats_final_object_with_json(captures):
    result = watch("--replay", captures / "scenario_queue_plain.raw", "--format", "json", "--stats", "--quiet")
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    stats = json.loads(lines[0])["stats"]
    assert stats["events"] == 88
    assert stats["counts"]["CHANNEL_ANSWER"] == 2 and stats["counts"]["CHANNEL_CREATE"] == 3
    assert (stats["calls_answered"], stats["calls_missed"], stats["calls_busy"]) == (1, 0, 0)
    assert stats["active_calls"] == 0 and stats["active_channels"] == 0
    # 1001 answered 3 s after the call came in (the capture's own timestamps)
    assert stats["mean_ring_time"] == pytest.approx(3.02, abs=0.05)


def test_stats_missed_call(captures):
    result = watch("--replay", captures / "scenario_noanswer_plain.raw", "--format", "json", "--stats", "--quiet")
    stats = json.loads(result.stdout)["stats"]
    assert (stats["calls_answered"], stats["calls_missed"], stats["mean_ring_time"]) == (0, 1, None)


def test_stats_after_json_events_is_the_last_line(captures):
    result = watch("--replay", captures / "scenario_noanswer_plain.raw", "--format", "json", "--stats")
    lines = result.stdout.splitlines()
    assert len(lines) == 52 and "stats" in json.loads(lines[-1])


# --- filters on replays: the same meaning the switch gives them ------------------------------------


def test_filter_names_comma_and_repeat(captures):
    result = watch("--replay", captures / "scenario_queue_plain.raw", "--filter", "CHANNEL_ANSWER,CHANNEL_BRIDGE",
                   "--filter", "CHANNEL_HANGUP_COMPLETE")
    names = [json.loads(x)["Event-Name"] for x in result.stdout.splitlines()]
    assert names.count("CHANNEL_ANSWER") == 2 and names.count("CHANNEL_BRIDGE") == 1
    assert set(names) == {"CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_HANGUP_COMPLETE"}


def test_filter_custom_subclass(captures):
    result = watch("--replay", captures / "agents_register_plain.raw", "--filter", "CUSTOM sofia::register")
    events = [json.loads(x) for x in result.stdout.splitlines()]
    assert events and all(e["Event-Subclass"] == "sofia::register" for e in events)
    users = {e.get("from-user") for e in events}
    assert {"1001", "1002"} <= users


def test_header_filter_and_client_side_match(captures):
    path = captures / "scenario_queue_plain.raw"
    result = watch("--replay", path, "--header", "Caller-Destination-Number=1001")
    got = [json.loads(x) for x in result.stdout.splitlines()]
    assert got and {e["Caller-Destination-Number"] for e in got} == {"1001"}
    result = watch("--replay", path, "--match", "Channel-Name~^sofia/internal/100[12]@", "--match", "Event-Name~ANSWER")
    got = [json.loads(x) for x in result.stdout.splitlines()]
    assert [e["Channel-Name"] for e in got] == ["sofia/internal/1001@127.0.0.1:5071"]
    assert "1 matched" in result.stderr


@pytest.mark.parametrize("args, fragment", [
    (["--match", "Caller-Caller-ID-Name"], "NAME~REGEX"),
    (["--match", "X~(unclosed"], "not a valid regular expression"),
    (["--header", "NoEquals"], "NAME=VALUE"),
    (["--format", "yaml"], "yaml"),
    (["--count", "0"], "count"),
])
def test_bad_options_are_usage_errors(captures, args, fragment):
    result = watch("--replay", captures / "greeting.raw", *args)
    assert result.exit_code == 2
    assert fragment in result.output + result.stderr


# --- record, then replay what was recorded ------------------------------------------------------


@pytest.mark.parametrize("capture, links", [
    ("scenario_queue_xml.raw", ["connected"]),  # ends with the recorder's exit: nothing lost
    ("fs_stopped_while_connected.raw", ["connected", "disconnected"]),  # the switch shut down
])
def test_record_then_replay_gives_the_same_json(captures, tmp_path, capture, links):
    rec = tmp_path / "calls.jsonl"
    first = watch("--replay", captures / capture, "--record", rec, "--format", "json")
    lines = [json.loads(x) for x in rec.read_text().splitlines()]
    assert all(set(x) in ({"time", "event"}, {"time", "status"}) for x in lines)
    assert [x["status"]["state"] for x in lines if "status" in x] == links
    again = watch("--replay", rec, "--format", "json")
    assert again.stdout == first.stdout


def test_record_keeps_everything_even_what_match_hides(captures, tmp_path):
    rec = tmp_path / "r.jsonl"
    watch("--replay", captures / "scenario_queue_plain.raw", "--record", rec, "--match", "Event-Name~^HEARTBEAT$",
          "--quiet")
    assert sum(1 for x in rec.read_text().splitlines() if '"event"' in x) == 88


# --- hostile values never reach the terminal raw ----------------------------------------------------

HOSTILE_NAMES = [
    "[bold red]Boss[/bold red]", "\x1b[2J\x1b[HCleared", "\x1b]0;pwned\x07", "\x9b31mC1",
    "abc\u202edcba", "nul\x00byte", "new\nline", "\x1bP1$q\x1b\\",
]
RAW_CONTROL = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]")


@pytest.fixture
def hostile_recording(tmp_path) -> Path:
    path = tmp_path / "hostile.jsonl"
    with path.open("w") as fh:
        for i, name in enumerate(HOSTILE_NAMES):
            event = {"Event-Name": "CHANNEL_CREATE", "Unique-ID": f"uuid-{i}", "Caller-Caller-ID-Name": name,
                     "Caller-Caller-ID-Number": name, "Channel-Name": f"sofia/x/{name}", "X-\x1b[31m": "hdr"}
            fh.write(json.dumps({"time": 1000 + i, "event": event}) + "\n")
    return path


def run_cli(*args, timeout=30):
    return subprocess.run([*EXE, "watch", *map(str, args)], capture_output=True, timeout=timeout,
                          env={**os.environ, "HOME": "/nonexistent"})


@pytest.mark.parametrize("fmt", ["json", "plain"])
def test_hostile_values_never_emit_raw_controls(hostile_recording, fmt):
    r = run_cli("--replay", hostile_recording, "--format", fmt)
    assert r.returncode == 0
    assert r.stdout and not RAW_CONTROL.search(r.stdout), r.stdout[:400]
    assert not RAW_CONTROL.search(r.stderr)
    if fmt == "json":  # and nothing is lost: jq gets the exact values back
        names = [json.loads(x)["Caller-Caller-ID-Name"] for x in r.stdout.decode().splitlines()]
        assert names == HOSTILE_NAMES
    else:
        text = r.stdout.decode()
        assert "Caller-Caller-ID-Name: [bold red]Boss[/bold red]" in text
        assert "␛[2J␛[HCleared" in text and "abc<U+202E>dcba" in text and "new␊line" in text


def test_hostile_values_in_the_table_rendering(hostile_recording):
    """The table, forced onto a terminal-like console, shows hostile text only as visible text."""
    import io

    from rich.console import Console

    from eslkit.event import Event
    from eslkit.views.theme import THEME
    from eslkit.views.watch_table import DEFAULT_COLUMNS, WatchScreen, WatchSnapshot

    rows = [(0.0, Event.from_dict(json.loads(x)["event"])) for x in hostile_recording.read_text().splitlines()]
    snap = WatchSnapshot(rows=rows, state="connected", source="\x1b]0;evil\x07", reason="\x1b[2J")
    out = io.StringIO()
    Console(file=out, width=160, height=30, force_terminal=True, theme=THEME).print(
        WatchScreen(lambda: snap, DEFAULT_COLUMNS + ["X-\x1b[31m"]))
    residue = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())  # Rich's own colours
    assert not RAW_CONTROL.search(residue.encode())
    assert "[bold red]Boss" in residue and "␛" in residue


# --- exit codes and errors, through the real entry point -------------------------------------------


def test_missing_replay_file_is_one_clear_line(tmp_path):
    r = run_cli("--replay", tmp_path / "nope.jsonl")
    assert r.returncode == 11
    assert b"no file" in r.stderr and b"Traceback" not in r.stderr


def test_speed_without_replay_is_refused():
    r = run_cli("--speed", "2", "--port", "1")
    assert r.returncode == 2


def test_stdout_closed_early_is_not_an_error(captures):
    """`eslkit watch | head -1`: the reader going away ends watch quietly."""
    cmd = " ".join(EXE) + f" watch --replay {captures / 'fs_stopped_while_connected.raw'} --format json | head -1"
    r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == 1
    assert b"Traceback" not in r.stderr and b"BrokenPipe" not in r.stderr


# --- option parsing -------------------------------------------------------------------------------

def test_replay_and_from_together_are_refused(captures):
    result = watch("--replay", captures / "greeting.raw", "--from", "mqtt://127.0.0.1:1")
    assert result.exit_code == 2


# --- the table as a renderable, at fixed sizes ------------------------------------------------------


def render_screen(rows, width, height, **snap):
    import io

    from rich.console import Console

    from eslkit.views.theme import THEME
    from eslkit.views.watch_table import DEFAULT_COLUMNS, WatchScreen, WatchSnapshot

    out = io.StringIO()
    console = Console(file=out, width=width, height=height, theme=THEME, color_system=None)
    console.print(WatchScreen(lambda: WatchSnapshot(rows=rows, **snap), DEFAULT_COLUMNS), height=height)
    return out.getvalue().rstrip("\n").split("\n")


@pytest.mark.parametrize("width", [80, 160])
def test_table_shows_the_newest_rows_at_the_bottom(captures, width):
    events = [f.event for f in frames(captures / "scenario_queue_plain.raw")]
    rows = [(0.0, e) for e in events]
    lines = render_screen(rows, width, 20, state="connected", source="127.0.0.1:8021", received=88)
    assert len(lines) == 20 and all(len(x) <= width for x in lines)
    assert lines[0].startswith("● connected 127.0.0.1:8021") and "88 events" in lines[0]
    # the last capture event (the agent leg's final CHANNEL_STATE) is on the last line
    assert "CHANNEL_STATE" in lines[-1] and events[-1].unique_id[:8] in lines[-1]
    assert ("Channel" in lines[1]) == (width >= 110)  # narrow terminals drop the channel column


def test_status_line_shows_disconnection_and_gap():
    lines = render_screen([], 120, 5, state="disconnected", source="pbx:8021", reason="The system is being shut down.")
    assert "disconnected pbx:8021" in lines[0] and "retrying" in lines[0] and "shut down" in lines[0]
    lines = render_screen([], 180, 5, state="connected", source="pbx:8021", gap=2.5, dropped=7,
                          subscriptions=["CHANNEL_ANSWER"], filters=[("Caller-Destination-Number", "1001")])
    assert "back after a 2.5s gap" in lines[0] and "dropped 7" in lines[0]
    assert "event CHANNEL_ANSWER" in lines[0] and "filter Caller-Destination-Number 1001" in lines[0]



@pytest.mark.parametrize("width", [40, 50, 63, 70, 100])
def test_a_narrow_table_cuts_the_event_name_last(captures, width):
    events = [f.event for f in frames(captures / "scenario_queue_plain.raw")]
    hangup = next(e for e in events if e.event_name == "CHANNEL_HANGUP_COMPLETE")
    lines = render_screen([(0.0, hangup)], width, 6, state="connected", source="127.0.0.1:8021", received=1)
    row = lines[-1]
    assert len(row) <= width and "CHANNEL_HANGUP_COMPLETE" in row, lines  # the name whole, at any width
    if width >= 100:  # and its cause once there is room, before the uuid
        assert f"CHANNEL_HANGUP_COMPLETE {hangup.get('Hangup-Cause')}" in row and hangup.unique_id[:8] in row
    time_cell = row.split()[0]
    assert re.fullmatch(r"\d\d:\d\d:\d\d(\.\d{3})?", time_cell), row  # never a cut time


def test_status_line_counts_one_event_and_a_slow_rate_per_minute():
    line = render_screen([], 120, 3, state="connected", source="pbx:8021", received=1, rate=0.2)[0]
    assert "│ 1 event 12/min" in line and "events" not in line
    line = render_screen([], 120, 3, state="connected", source="pbx:8021", received=2, rate=3.25)[0]
    assert "│ 2 events 3.2/s" in line or "│ 2 events 3.3/s" in line


def test_unwritable_record_path_fails_before_anything_else(captures, tmp_path):
    r = run_cli("--replay", captures / "scenario_queue_plain.raw", "--record", tmp_path / "no" / "such" / "dir.jsonl")
    assert r.returncode == 11 and b"Cannot write the recording" in r.stderr
    assert r.stdout == b""


def test_table_format_into_a_file_is_one_final_screen(captures):
    r = run_cli("--replay", captures / "scenario_noanswer_plain.raw", "--format", "table", "--columns", "time,event")
    lines = r.stdout.decode().splitlines()
    assert r.returncode == 0 and lines[0].startswith("● ")
    assert "CHANNEL_HANGUP_COMPLETE ORIGINATOR_CANCEL" in r.stdout.decode()
    assert b"\x1b[?1049h" not in r.stdout  # no alternate screen when not on a terminal


def test_columns_that_name_no_column_give_the_default_table(captures):
    """--columns ',,' (or a variable that came out empty) drew a table with no column at all."""
    r = run_cli("--replay", captures / "scenario_noanswer_plain.raw", "--format", "table", "--columns", ",,")
    out = r.stdout.decode()
    assert r.returncode == 0 and "Event" in out and "Dir" in out and "CHANNEL_HANGUP" in out


def test_the_table_keys_page_search_and_quit():
    from eslkit.app.keys import decode
    from eslkit.views.table_keys import TableView

    assert decode("q /\x1b[A\x1b[6~\x1b[5~\x1b[H\x1b[F") == ["q", " ", "/", "up", "pagedown", "pageup", "home", "end"]
    view, rows = TableView(), tuple(range(50))
    assert not view.key(" ", rows) and view.frozen == rows  # paused on what was there
    view.key("up", rows + (50,))
    assert view.offset == 1 and view.frozen == rows
    for key in ["/", "a", "b", "backspace", "c", "enter"]:
        view.key(key, rows)
    assert view.search == "ac" and view.typing is None
    view.key("esc", rows)
    assert (view.search, view.frozen, view.offset) == ("", None, 0)
    assert view.key("q", rows) is True
