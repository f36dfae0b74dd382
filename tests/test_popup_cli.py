"""`eslkit popup` as a command: one test per option, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import NamedTuple

import pytest

from eslkit import cli

# Its own Mosquitto: the relay tests leave persistent sessions on the shared one.
from tests.support.cli import EXE
from tests.support.brokers import mosquitto  # noqa: F401 (fixture)
from tests.support.sim import sim_in_thread



class Result(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def popup(capsys, monkeypatch):
    """Run `eslkit popup ARGS` through the real entry point (`eslkit.cli.main`), in this
    process to save start-up time; the live and terminal tests run real processes."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["eslkit", "popup", *args])
        try:
            cli.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def records(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("fmt", ["plain", "json", "xml"])
def test_replay_json_ends_with_the_file(captures, fmt, popup):
    result = popup("--ext", "1001", "--format", "json", "--replay", str(captures / f"scenario_queue_{fmt}.raw"))
    assert result.returncode == 0, result.stderr
    got = [(r["ext"], r["state"], r["outcome"], r["hangup_cause"], r["caller_number"], r["caller_name"], r["dialed"])
           for r in records(result)]
    assert got == [
        ("1001", "ringing", None, None, "6208", "Caller 6208", "2000"),
        ("1001", "answered", None, None, "6208", "Caller 6208", "2000"),
        ("1001", "ended", "answered", "NORMAL_CLEARING", "6208", "Caller 6208", "2000"),
    ]


def test_several_extensions_either_way(captures, popup):
    path = str(captures / "scenario_queue_plain.raw")
    a = records(popup("--ext", "1001,1002", "--format", "json", "--replay", path))
    b = records(popup("--ext", "1001", "--ext", "1002", "--format", "json", "--replay", path))
    assert a == b
    assert [(r["ext"], r["state"], r["outcome"]) for r in a if r["ext"] == "1002"] == [
        ("1002", "ringing", None), ("1002", "ended", "answered_elsewhere")]


def test_json_is_the_default_when_piped(captures, popup):
    result = popup("--ext", "1002", "--replay", str(captures / "scenario_noanswer_plain.raw"))
    assert [(r["state"], r["outcome"]) for r in records(result)] == [("ringing", None), ("ended", "missed")]


def test_panel_when_asked(captures, popup):
    result = popup("--ext", "1002", "--format", "panel", "--replay", str(captures / "scenario_noanswer_plain.raw"))
    assert result.returncode == 0
    assert "1002 · Missed" in result.stdout and "ORIGINATOR_CANCEL" in result.stdout


def test_contacts(captures, tmp_path, popup):
    csv = tmp_path / "contacts.csv"
    csv.write_text("number,name,company\n6208,Ada Lovelace,Analytical Engines\n")
    out = records(popup("--ext", "1001", "--format", "json", "--contacts", str(csv),
                        "--replay", str(captures / "scenario_queue_plain.raw")))
    assert out[0]["contact"] == {"number": "6208", "name": "Ada Lovelace", "company": "Analytical Engines"}
    panel = popup("--ext", "1001", "--format", "panel", "--contacts", str(csv),
                  "--replay", str(captures / "scenario_queue_plain.raw"))
    assert "Ada Lovelace" in panel.stdout


def write_argv_script(tmp_path):
    script = tmp_path / "argv.py"
    script.write_text("import json, sys\nwith open(sys.argv[1], 'a') as f:\n"
                      "    f.write(json.dumps(sys.argv[2:]) + '\\n')\n")
    return script


def wait_lines(path, n, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return [json.loads(line) for line in path.read_text().splitlines()]
        time.sleep(0.05)
    raise AssertionError(f"{path} did not get {n} lines")


@pytest.mark.parametrize("on,state", [("ring", "ringing"), ("answer", "answered")])
def test_exec_on_ring_or_answer(captures, tmp_path, on, state, popup):
    out = tmp_path / "calls.txt"
    script = write_argv_script(tmp_path)
    result = popup("--ext", "1001", "--format", "json", "--on", on,
                   "--replay", str(captures / "scenario_queue_plain.raw"),
                   "--exec", sys.executable, str(script), str(out), "Call from {caller_name}", "{state}", "{dialed}")
    assert result.returncode == 0, result.stderr
    assert wait_lines(out, 1) == [["Call from Caller 6208", state, "2000"]]


def test_bad_options_are_one_line_and_a_code(captures, tmp_path, popup):
    cases = [
        (["--ext", "1001", "--replay", str(tmp_path / "missing.jsonl")], 11, "There is no file"),
        (["--ext", "1001", "--open-url", "https://x/{nope}"], 14, "unknown field {nope}"),
        (["--ext", "1001", "--exec", "no-such-program-eslkit"], 14, "no program"),
        (["--ext", "1001", "--contacts", str(tmp_path / "none.csv")], 11, "Cannot read the contacts file"),
        (["--ext", ","], 2, "give the agent's extension"),
    ]
    for args, code, words in cases:
        result = popup(*args)
        assert result.returncode == code, (args, result.stderr)
        assert words in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args, words", [
    (["1001"], "1001 looks like an extension: give it with --ext, e.g. eslkit popup --ext 1001"),
    (["1001", "1002"], "e.g. eslkit popup --ext 1001,1002"),
    ([], "give the agent's extension, e.g. eslkit popup --ext 1001"),
    (["--ext", "1001", "--bel"], "there is no option --bel; did you mean --bell?"),
    (["--ext", "1001", "--contact", "c.csv"], "there is no option --contact; did you mean --contacts?"),
    (["--ext", "1001", "x.csv"], "unexpected argument 'x.csv' (arguments follow --exec CMD)"),
])
def test_common_slips_say_what_to_type(popup, args, words):
    """`eslkit popup 1001` answered "Missing option '--ext'" (1001 was taken as an --exec
    argument); a misspelt option now gets the closest one."""
    result = popup(*args)
    assert result.returncode == 2, result.stderr
    assert words in " ".join(result.stderr.replace("│", " ").split()), result.stderr


def test_exec_takes_the_programs_own_options(captures, tmp_path, popup):
    """`--exec sh -c '…'` failed with "No such option: -c": the program's options are its own."""
    out = tmp_path / "said.txt"
    result = popup("--ext", "1002", "--replay", str(captures / "scenario_noanswer_plain.raw"), "--format", "json",
                   "--exec", "sh", "-c", f"echo ring {{caller_number}} >> {out}")
    assert result.returncode == 0, result.stderr
    assert out.read_text().splitlines() == ["ring 6208"]  # the run waited for the program to finish


def test_subscribes_only_to_what_it_needs():
    with sim_in_thread(scenario="queue", speed=None) as sim:
        proc = subprocess.Popen([*EXE, "popup", "--ext", "1001", "--format", "json", "--host", sim.host,
                                 "--port", str(sim.port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, "ESL_PASSWORD": "ClueCon"})
        try:
            line = proc.stdout.readline()  # the first popup: subscribed by now
            assert json.loads(line)["state"] == "ringing"
            sessions = [c.session for c in list(sim.server.connections)]
        finally:
            proc.terminate()
            proc.communicate(timeout=10)
    assert len(sessions) == 1
    names = sessions[0].subscription.names
    assert not names.all
    assert {"CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_HANGUP_COMPLETE"} <= names.types
    assert not names.types & {"CHANNEL_STATE", "CHANNEL_CALLSTATE", "CHANNEL_EXECUTE", "HEARTBEAT", "RE_SCHEDULE"}
    assert names.has_subclass("callcenter::info") and names.has_subclass("fifo::info")
    assert not names.has_subclass("sofia::register")


@pytest.mark.parametrize("scenario,ext,expected", [
    ("busy", "1002", [("ringing", None, None), ("ended", "busy", "USER_BUSY")]),
    ("noanswer", "1002", [("ringing", None, None), ("ended", "missed", "ORIGINATOR_CANCEL")]),
])
def test_live_against_the_simulator(scenario, ext, expected):
    with sim_in_thread(scenario=scenario, speed=None) as sim:
        proc = subprocess.Popen([*EXE, "popup", "--ext", ext, "--format", "json", "--host", sim.host,
                                 "--port", str(sim.port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env={**os.environ, "ESL_PASSWORD": "ClueCon"})
        got = []
        try:
            for line in proc.stdout:
                record = json.loads(line)
                got.append((record["state"], record["outcome"], record["hangup_cause"]))
                if record["state"] == "ended":
                    break
        finally:
            proc.terminate()
            proc.communicate(timeout=10)
    assert got == expected


def test_closed_pipe_ends_quietly(captures, tmp_path):
    """`eslkit popup --format json --replay big | head -1`: no traceback, no complaint."""
    from eslkit.event import Event
    from eslkit.protocol import EventFrame, Parser, event_frame

    parser = Parser()
    events = [f.event for f in parser.feed((captures / "scenario_queue_plain.raw").read_bytes())
              if isinstance(f, EventFrame) and f.event.event_name != "CHANNEL_EXECUTE"]
    ids = ("Unique-ID", "Channel-Call-UUID", "Other-Leg-Unique-ID", "Bridge-A-Unique-ID", "Bridge-B-Unique-ID")
    big = tmp_path / "many-calls.raw"
    with big.open("wb") as out:
        for i in range(100):  # 500 records, far more than a pipe holds
            for e in events:
                pairs = [(k, f"{v}-{i}" if k in ids else v) for k, v in e.pairs()]
                out.write(event_frame(Event(pairs, e.body), "plain"))
    proc = subprocess.Popen([*EXE, "popup", "--ext", "1001,1002", "--format", "json", "--replay", str(big)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=30)
    assert json.loads(first)["state"] == "ringing"
    assert proc.returncode == 0 and err == ""


@pytest.mark.parametrize("command", [
    ["popup", "--ext", "1001", "--format", "panel"],
    ["watch", "--format", "table"],
    ["wallboard", "--format", "rich"],
])
def test_a_screen_into_a_closed_pipe_ends_quietly_with_exit_0(captures, command):
    """`eslkit popup --format panel --replay … | head -1`: Rich's own answer to a reader
    that went away is exit 1 without a word; eslkit's is 0, as for JSON lines.  The reader
    here is gone before the first byte, so every write meets the closed pipe."""
    proc = subprocess.Popen([*EXE, *command, "--replay", str(captures / "scenario_queue_plain.raw")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=30)
    # Only watch's summary line may be said (it goes to stderr, which is still open).
    assert proc.returncode == 0 and all(line.startswith("eslkit watch: ") for line in err.splitlines()), err


def test_open_url_through_the_browser_python_would_use(captures, tmp_path):
    """--open-url ends in webbrowser.open; $BROWSER points it at a recorder script."""
    out = tmp_path / "opened.txt"
    script = write_argv_script(tmp_path)
    env = {**os.environ, "BROWSER": f"{sys.executable} {script} {out} %s"}
    result = subprocess.run([*EXE, "popup", "--ext", "1001", "--format", "json",
                             "--replay", str(captures / "scenario_queue_plain.raw"),
                             "--open-url", "https://crm.example/search?phone={caller_number}&name={caller_name}"],
                            capture_output=True, text=True, timeout=30, env=env)
    assert result.returncode == 0, result.stderr
    assert wait_lines(out, 1) == [["https://crm.example/search?phone=6208&name=Caller%206208"]]


def test_from_a_broker_shows_what_the_relay_published(captures, mosquitto):  # noqa: F811
    """`popup --from mqtt://…` prints the popup states a relay published, unchanged."""
    import paho.mqtt.client as mqtt

    from eslkit.calls import popup_record
    from tests.test_calls import capture_events, track

    _, changes = track(capture_events(captures / "scenario_queue_plain.raw"), exts={"1001"})
    published = [popup_record(leg) for leg in changes]
    topic = "freeswitch/vm/agents/1001/popup"
    proc = subprocess.Popen([*EXE, "popup", "--ext", "1001", "--format", "json",
                             "--from", f"mqtt://{mosquitto.host}:{mosquitto.port}/freeswitch/+"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    got: list[dict] = []
    reader = __import__("threading").Thread(target=lambda: got.extend(json.loads(line) for line in proc.stdout),
                                            daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:  # until the popup has subscribed
            client.publish(topic, json.dumps(published[0]), qos=1).wait_for_publish(5)
            time.sleep(0.3)
        for record in published[1:]:
            client.publish(topic, json.dumps(record), qos=1).wait_for_publish(5)
        while not any(r["state"] == "ended" for r in got) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        client.loop_stop()
        client.disconnect()
        proc.send_signal(__import__("signal").SIGINT)
        err = proc.communicate(timeout=10)[1]
    assert proc.returncode == 0, err
    states = [r["state"] for r in got]
    assert states[-2:] == ["answered", "ended"] and set(states[:-2]) == {"ringing"}
    assert got[-1] == published[-1]


# --- an extension no phone is registered as (issue 20) ----------------------------------------


def test_an_unregistered_extension_is_said_once_and_the_popup_keeps_waiting():
    from tests.support.cli import Running
    from tests.support.sim import sim_subprocess

    with sim_subprocess("--scenario", "queue", "--loop", "--speed", "4") as (host, port):
        env = {"ESL_PASSWORD": "ClueCon"}
        ghost = Running("popup", "--ext", "9999,1001", "--format", "json", "--host", host, "--port", str(port),
                        env=env)
        try:
            assert ghost.wait_for(lambda: any("no phone registered as 9999" in ln for ln in ghost.err), 20), ghost.err
            assert ghost.wait_for(lambda: ghost.records(), 30)  # 1001's calls still come; it kept going
            assert ghost.proc.poll() is None
        finally:
            assert ghost.stop() == 0, ghost.err
        said = [ln for ln in ghost.err if "registered" in ln]
        assert said == ["eslkit: the switch has no phone registered as 9999 (sofia_contact: user_not_registered); "
                        "waiting for its calls anyway"], ghost.err
        known = Running("popup", "--ext", "1001", "--format", "json", "--host", host, "--port", str(port), env=env)
        try:
            assert known.wait_for(lambda: known.records(), 30)
        finally:
            assert known.stop() == 0, known.err
        assert not [ln for ln in known.err if "registered" in ln], known.err


def test_the_simulator_answers_sofia_contact_as_mod_sofia():
    from eslkit.sim.api import run_api
    from eslkit.sim.server import registered_phones
    from eslkit.sim.scenarios import load_scenario

    class Switch:
        registered = registered_phones(load_scenario("queue"), None)

    assert run_api(Switch, "sofia_contact", "*/1001") == "sofia/internal/sip:1001@127.0.0.1:5071;transport=UDP"
    assert run_api(Switch, "sofia_contact", "internal/1002@192.0.2.1") .startswith("sofia/internal/sip:1002@")
    assert run_api(Switch, "sofia_contact", "*/9999") == "error/user_not_registered"
    assert "1020" in registered_phones(load_scenario("load:agents=20"), None)
    assert registered_phones(None, object()) is None  # a replay: anyone may be there
