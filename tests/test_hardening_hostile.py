"""Hostile text from a switch, over a real socket, into `eslkit watch` and `eslkit popup`.

A small switch built on eslkit.protocol's encoders plays the real queue call
(scenario_queue_plain.raw) with the caller name and number, the channel names
and extra headers replaced by hostile values: Rich markup, ANSI/OSC/DCS escape
sequences, C1 controls, bidi overrides, NUL and other C0 bytes, invalid UTF-8
(raw in JSON/XML frames, %-encoded in plain ones) and a 10 kB value; in every
wire format the client may ask for.  Whatever the output format, no raw control
character from the network may reach the terminal, JSON must stay valid JSON
(and keep the values, for scripts), --open-url must URL-encode them and --exec
must pass each as one argument without a shell.  Error texts from the network
(an -ERR reply, a disconnect notice) are network text too.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import termios
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from eslkit.event import Event
from eslkit.protocol import (
    EventFrame,
    Parser,
    api_response,
    auth_request,
    command_reply,
    disconnect_notice,
    encode_frame,
)
from tests.support.cli import EXE
from tests.support.sim import ESLKIT
from tests.support.transcript_server import ThreadedServer, read_command

CAPTURES = Path(__file__).parent / "data" / "fs-captures" / "1.10.12"
PASSWORD = "hostile-Pw-31"

# Stands for bytes that are not UTF-8; swapped in after encoding (alphanumeric, so
# no wire format escapes it).
BAD_UTF8_MARK = "QQBADUTF8QQ"
BAD_UTF8 = b"\xff\xfe\xc0\xaf"
COMBO = ("[bold red]Boss[/bold red]"  # Rich markup
         "\x1b[2J\x1b[H"  # ANSI: clear screen, cursor home
         "\x1b[6n"  # ANSI: ask the terminal to answer (device status report)
         "\x1b]0;PWNED\x07"  # OSC: retitle the window
         "\x1b]8;;http://evil/\x1b\\link"  # OSC 8 hyperlink
         "\x1bP1$qm\x1b\\"  # DCS
         "\x9b31m\x9d0;c1\x9c"  # C1 CSI and OSC
         "\u202eRLO\u202c\u2066iso\u2069"  # bidi override and isolate
         "nul\x00bel\x07bs\x08cr\rlf\ndel\x7f"  # C0 and DEL
         "\u2028sep\u200bzw"
         + BAD_UTF8_MARK)
NAME = COMBO + "N" * 10_000  # and a 10 kB value
NUMBER = "+1 (555) $(touch pwned); `id` & x=1#frag?q " + COMBO
HOSTILE_HEADER = "X-\x1b[31mEvil\x1b]0;hdr\x07"

# What a terminal could act on, as bytes: C0 except LF, DEL, C1 (as UTF-8), bidi
# controls, line/paragraph separators.  Rich's own SGR/cursor sequences are removed first.
RAW_CONTROL = re.compile(
    rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\x8b-\x8f\xa8-\xae]|\xe2\x81[\xa6-\xa9]|\xef\xbb\xbf")
RICH_OWN = re.compile(rb"\x1b\[(\??[0-9;]*[mHJKlhABCDG]|[0-9]*;[0-9]*H)|\r\n|\r")


def hostile_events() -> list[Event]:
    """The real queue call, with hostile text wherever a switch passes a caller's."""
    events = []
    frames = Parser().feed((CAPTURES / "scenario_queue_plain.raw").read_bytes())
    for frame in frames:
        if not isinstance(frame, EventFrame):
            continue
        pairs = []
        for k, v in frame.event.pairs():
            if k in ("Caller-Caller-ID-Name", "Caller-Orig-Caller-ID-Name", "variable_effective_caller_id_name"):
                v = NAME
            elif k in ("Caller-Caller-ID-Number", "Caller-ANI", "variable_effective_caller_id_number"):
                v = NUMBER
            elif k in ("Channel-Name", "Caller-Channel-Name", "Other-Leg-Channel-Name") and isinstance(v, str):
                v = v + COMBO
            pairs.append((k, v))
        pairs.append(("X-Hostile", NAME))
        events.append(Event(pairs, frame.event.body))
    # And an event whose very name is hostile (anyone may sendevent a CUSTOM subclass),
    # often enough to be among the names --stats shows.
    events += [Event([("Event-Name", "CUSTOM"), ("Event-Subclass", COMBO), ("Core-UUID", "c-1"),
                      ("Event-Sequence", str(900000 + i))]) for i in range(40)]
    return events


def wire(event: Event, fmt: str) -> bytes:
    """One text/event-<fmt> frame, with invalid UTF-8 where the mark is."""
    pairs = list(event.pairs())
    if fmt != "xml":  # no XML element can be named like this; plain and JSON carry it
        pairs.append((HOSTILE_HEADER, "hostile header name"))
    payload = Event(pairs, event.body).serialize(fmt).encode("utf-8")
    bad = BAD_UTF8 if fmt == "json" else b"".join(b"%%%02X" % b for b in BAD_UTF8)
    payload = payload.replace(BAD_UTF8_MARK.encode(), bad)
    return encode_frame([("Content-Type", f"text/event-{fmt}")], payload)


class HostileSwitch(ThreadedServer):
    """Greets, accepts PASSWORD, answers every command, and after `event <fmt> ...`
    sends the hostile call in that format; then stays connected, idle."""

    def __init__(self, *, auth_reply: str = "+OK accepted", after_events: bytes = b""):
        super().__init__()
        self.auth_reply = auth_reply
        self.after_events = after_events
        self.events = hostile_events()
        self.commands: list[str] = []

    async def _handle(self, reader, writer) -> None:
        try:
            writer.write(auth_request())
            while True:
                cmd = await read_command(reader)
                if not cmd:
                    return
                line = cmd.decode("utf-8", "replace").split("\n", 1)[0]
                self.commands.append(line.split(" ", 1)[0])
                if line.startswith("auth "):
                    ok = line[5:] == PASSWORD
                    writer.write(command_reply(self.auth_reply if ok else "-ERR invalid"))
                    if not ok or not self.auth_reply.startswith("+OK"):
                        writer.write(disconnect_notice())
                        await writer.drain()
                        return
                elif line.startswith("api "):
                    writer.write(api_response('{"row_count": 0}' if "as json" in line else "+OK"))
                elif line.startswith("event "):
                    fmt = line.split()[1]
                    writer.write(command_reply(f"+OK event listener enabled {fmt}"))
                    for event in self.events:
                        writer.write(wire(event, fmt))
                    if self.after_events:
                        writer.write(self.after_events)
                        await writer.drain()
                        return
                elif line.startswith("exit"):
                    writer.write(command_reply("+OK bye") + disconnect_notice())
                    await writer.drain()
                    return
                else:
                    writer.write(command_reply("+OK"))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


def env(**extra) -> dict:
    out = {**os.environ, "ESL_PASSWORD": PASSWORD, "HOME": "/nonexistent", **extra}
    out.pop("NO_COLOR", None)
    return out


def expected(value: str) -> str:
    """The value a client decodes: the invalid bytes become U+FFFD."""
    return value.replace(BAD_UTF8_MARK, BAD_UTF8.decode("utf-8", "replace"))


def no_raw_control(data: bytes) -> None:
    residue = RICH_OWN.sub(b"", data)
    found = RAW_CONTROL.search(residue)
    assert found is None, residue[max(found.start() - 80, 0):found.end() + 40]


def run(*args: str, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*EXE, *args], capture_output=True, timeout=timeout, env=env(), **kw)


# --- eslkit watch ---------------------------------------------------------------------------------

WIRE_FORMATS = ["plain", "json", "xml"]


@pytest.mark.parametrize("wire_format", WIRE_FORMATS)
def test_watch_json_stays_valid_and_keeps_the_values(wire_format):
    with HostileSwitch() as switch:
        n = len(switch.events)
        r = run("watch", "--port", str(switch.port), "--format", "json", "--wire-format", wire_format,
                "--count", str(n))
    assert r.returncode == 0, r.stderr[-500:]
    no_raw_control(r.stdout)
    no_raw_control(r.stderr)
    assert r.stdout.isascii()
    records = [json.loads(line) for line in r.stdout.decode().splitlines()]  # every line is JSON
    assert len(records) == n
    create = next(rec for rec in records if rec["Event-Name"] == "CHANNEL_CREATE")
    assert create["Caller-Caller-ID-Name"] == expected(NAME)  # nothing lost, nothing raw
    assert create["Caller-Caller-ID-Number"] == expected(NUMBER)
    assert create["Channel-Name"].endswith(expected(COMBO))
    if wire_format != "xml":
        assert create[HOSTILE_HEADER] == "hostile header name"


@pytest.mark.parametrize("wire_format", WIRE_FORMATS)
def test_watch_plain_shows_hostile_text_only_as_visible_text(wire_format):
    with HostileSwitch() as switch:
        n = len(switch.events)
        r = run("watch", "--port", str(switch.port), "--format", "plain", "--wire-format", wire_format,
                "--count", str(n), "--stats")
    assert r.returncode == 0, r.stderr[-500:]
    no_raw_control(r.stdout)
    no_raw_control(r.stderr)  # the --stats panel names the events, the hostile subclass too
    assert "[bold red]Boss" in r.stderr.decode()
    text = r.stdout.decode("utf-8")
    assert "[bold red]Boss[/bold red]␛[2J␛[H␛[6n␛]0;PWNED␇" in text
    assert "<U+202E>RLO" in text and "nul␀bel" in text and "\ufffd" in text
    if wire_format != "xml":
        assert "X-␛[31mEvil␛]0;hdr␇: hostile header name" in text


pexpect = pytest.importorskip("pexpect", reason="pexpect is in the test extras: pip install -e '.[test]'")


def in_terminal(*args: str, extra_env=None, until: str | None = None, timeout: float = 30) -> bytes:
    """Run eslkit in a pseudo-terminal; everything it wrote, as bytes.  With `until`,
    Ctrl-C once that text has appeared (escape codes removed); else wait for the end."""
    child = pexpect.spawn(str(ESLKIT), list(args), env=env(TERM="xterm-256color", **(extra_env or {})),
                          dimensions=(40, 120), timeout=timeout)
    # On Ctrl-C the terminal itself would throw away the output in flight and echo "^C"
    # into it, cutting one of Rich's own colour codes ("\x1b[0^C"): not what eslkit wrote.
    # Keep the output and echo nothing, so what is checked is eslkit's bytes alone.
    attrs = termios.tcgetattr(child.child_fd)
    attrs[3] = (attrs[3] | termios.NOFLSH) & ~(termios.ECHO | termios.ECHOCTL)
    termios.tcsetattr(child.child_fd, termios.TCSANOW, attrs)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                data += child.read_nonblocking(65536, timeout=0.2)
            except pexpect.TIMEOUT:
                pass
            except pexpect.EOF:
                break
            if until is not None and until.encode() in RICH_OWN.sub(b"", data):
                child.sendintr()
                until = None
        else:
            raise AssertionError(f"no end within {timeout} s: {data[-400:]!r}")
    finally:
        child.close(force=True)
    return data


def test_watch_table_in_a_terminal():
    with HostileSwitch() as switch:
        out = in_terminal("watch", "--port", str(switch.port), "--format", "table", "--count",
                          str(len(switch.events)), "--columns", "event,channel,caller,name,X-Hostile")
    no_raw_control(out)
    assert b"\x1b]" not in out and b"\x1bP" not in out and b"\x1b[6n" not in out
    assert b"[bold red]Bo" in RICH_OWN.sub(b"", out)  # markup shown (cut to the column), not applied


# --- eslkit popup ---------------------------------------------------------------------------------


def popup_until(switch: HostileSwitch, *args: str, states: int = 2, timeout: float = 20,
                extra_env=None) -> tuple[list[dict], bytes]:
    """`popup --format json` until `states` records came; Ctrl-C; (records, stderr)."""
    proc = subprocess.Popen([str(ESLKIT), "popup", "--port", str(switch.port), "--format", "json", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(**(extra_env or {})))
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    while len(lines) < states and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    # Ctrl-C now: the actions of the states written have started (they start as each state is
    # written), and popup waits for them before it exits.
    proc.send_signal(signal.SIGINT)
    try:
        err = proc.communicate(timeout=10)[1]
    finally:
        proc.kill()
    reader.join(5)
    out = b"".join(lines)
    no_raw_control(out)
    no_raw_control(err)
    assert out.isascii()
    return [json.loads(line) for line in out.splitlines()], err


def test_popup_json_stays_valid_and_keeps_the_values():
    with HostileSwitch() as switch:
        records, err = popup_until(switch, "--ext", "1001", states=3)
    assert [r["state"] for r in records] == ["ringing", "answered", "ended"], err
    # The values themselves, for scripts; the tracker keeps at most 1024 characters of each.
    assert {r["caller_name"] for r in records} == {expected(NAME)[:1024]}
    assert {r["caller_number"] for r in records} == {expected(NUMBER)}


def test_popup_panel_in_a_terminal():
    with HostileSwitch() as switch:
        out = in_terminal("popup", "--port", str(switch.port), "--ext", "1001", until="Recent calls")
    no_raw_control(out)
    assert b"\x1b]" not in out and b"\x1bP" not in out and b"\x1b[6n" not in out
    shown = RICH_OWN.sub(b"", out).decode("utf-8", "replace")
    assert "[bold red]Boss[/bold red]␛[2J" in shown


def recorder(tmp_path: Path) -> Path:
    """A program that writes its argument list, as JSON, to a file of its own."""
    script = tmp_path / "record-argv"
    script.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                      f"open(os.path.join({str(tmp_path)!r}, 'argv-%d.json' % os.getpid()), 'w')"
                      ".write(json.dumps(sys.argv[1:]))\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def recorded(tmp_path: Path, timeout: float = 10) -> list[list[str]]:
    """The argument lists the recorder wrote, once at least one file is there and whole."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("argv-*.json"))]
        except ValueError:  # a file still being written
            found = []
        if found:
            return found
        time.sleep(0.05)
    return []


def test_open_url_values_are_url_encoded(tmp_path):
    browser = recorder(tmp_path)
    with HostileSwitch() as switch:
        popup_until(switch, "--ext", "1001", "--open-url",
                    "https://crm.example/search?phone={caller_number}&name={caller_name}",
                    states=1, extra_env={"BROWSER": str(browser)})
    calls = recorded(tmp_path)
    assert len(calls) == 1 and len(calls[0]) == 1, calls
    url = calls[0][0]
    assert re.fullmatch(r"[A-Za-z0-9:/?=&%._~-]+", url), url  # nothing a caller could inject
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == ("https", "crm.example", "/search", "")
    query = parse_qs(parts.query, errors="replace")
    assert set(query) == {"phone", "name"}
    assert query["phone"] == [expected(NUMBER)]
    assert query["name"] == [expected(NAME)[:256]]


def test_exec_runs_without_a_shell_one_argument_per_value(tmp_path):
    program = recorder(tmp_path)
    with HostileSwitch() as switch:
        popup_until(switch, "--ext", "1001", "--exec", str(program), "{caller_number}", "n={caller_name}",
                    states=1, extra_env={}, )
    calls = recorded(tmp_path)
    assert len(calls) == 1 and len(calls[0]) == 2, calls
    number, name = calls[0]
    assert number.startswith("+1 (555) $(touch pwned); `id` & x=1#frag?q [bold red]Boss")
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    assert name.startswith("n=") and len(name) <= 2 + 256
    assert not RAW_CONTROL.search(name.encode())  # made visible: programs echo their arguments


# --- network text in error messages ---------------------------------------------------------------

HOSTILE_REASON = "\x1b]0;PWNED\x07\x1b[2J[bold]reason[/bold]\u202e"


@pytest.mark.parametrize("case", ["auth reply", "disconnect notice"])
def test_network_text_in_errors_is_shown_safely(case):
    kw = ({"auth_reply": "-ERR " + HOSTILE_REASON} if case == "auth reply"
          else {"after_events": disconnect_notice(HOSTILE_REASON)})
    with HostileSwitch(**kw) as switch:
        watch = run("watch", "--port", str(switch.port), "--format", "json", "--no-reconnect",
                    "--wire-format", "json")
    assert watch.returncode in (5, 7), watch.stderr
    no_raw_control(watch.stderr)
    assert b"Traceback" not in watch.stderr


# --- eslkit relay: network text in MQTT topics and AMQP routing keys ---------------------------------


def long_value_recording(path: Path) -> Path:
    """A 70 kB hostname (which the default topic / routing key holds), then a normal event."""
    with path.open("w") as fh:
        for i, host in enumerate(["h" * 70_000, "vm"]):
            event = {"Event-Name": "CHANNEL_CREATE", "Unique-ID": f"uuid-{i}", "FreeSWITCH-Hostname": host,
                     "Caller-Caller-ID-Name": "x"}
            fh.write(json.dumps({"time": 1000 + i, "event": event}) + "\n")
    return path


@pytest.mark.slow
def test_relay_survives_a_topic_too_long_for_mqtt(tmp_path, mosquitto):  # noqa: F811
    from tests.support.brokers import MqttCollector

    recording = long_value_recording(tmp_path / "long.jsonl")
    sub = MqttCollector(mosquitto, "freeswitch/vm/#")
    try:
        r = run("relay", "--to", mosquitto.url, "--replay", str(recording), "--client-id", "hostile-long",
                "--drain-timeout", "3")
        assert b"Traceback" not in r.stderr, r.stderr[-800:]
        assert sub.wait_for(lambda m: any(b"uuid-1" in p for _, p, _ in m), 5)  # the next event still goes out
        assert r.returncode in (0, 16), r.stderr
    finally:
        sub.close()


@pytest.mark.slow
def test_relay_survives_a_routing_key_too_long_for_amqp(tmp_path, rabbitmq):  # noqa: F811
    recording = long_value_recording(tmp_path / "long.jsonl")
    conn, ch, q = rabbitmq.queue("vm.#")
    try:
        proc = subprocess.run([str(ESLKIT), "relay", "--to", rabbitmq.url(), "--password-env", "HOSTILE_AMQP_PW",
                               "--replay", str(recording), "--drain-timeout", "3"], capture_output=True,
                              timeout=60, env=env(HOSTILE_AMQP_PW=rabbitmq.password))
        bodies = []
        deadline = time.monotonic() + 5
        while not any(b"uuid-1" in b for b in bodies) and time.monotonic() < deadline:
            method, _, body = ch.basic_get(q, auto_ack=True)
            if method is None:
                conn.process_data_events(0.05)
            else:
                bodies.append(body)
    finally:
        conn.close()
    assert b"Traceback" not in proc.stderr, proc.stderr[-800:]
    assert any(b"uuid-1" in b for b in bodies), proc.stderr[-800:]  # the next event still goes out
    assert proc.returncode == 0, proc.stderr[-800:]


# --- lone surrogates: a JSON "\ud800" escape (a JSON-speaking switch, a recording, a broker) -------------

SURROGATE_EVENTS = [
    {"Event-Name": "CHANNEL_CREATE", "Unique-ID": "uuid-0", "FreeSWITCH-Hostname": "vm",
     "Caller-Caller-ID-Name": "a\ud800b", "Caller-Destination-Number": "1001", "variable_dialed_user": "1001",
     "Call-Direction": "outbound", "Channel-Call-UUID": "call-0"},
    {"Event-Name": "CHANNEL_CREATE", "Unique-ID": "uuid-1", "FreeSWITCH-Hostname": "vm",
     "Caller-Caller-ID-Name": "fine"},
]


def surrogate_recording(path: Path) -> Path:
    """An eslkit recording (watch --record writes them so: JSON, ensure_ascii) holding a lone surrogate."""
    with path.open("w") as fh:
        for i, event in enumerate(SURROGATE_EVENTS):
            fh.write(json.dumps({"time": 1000 + i, "event": event}) + "\n")
    return path


def test_watch_and_popup_take_a_lone_surrogate(tmp_path):
    rec = surrogate_recording(tmp_path / "s.jsonl")
    for fmt in ("json", "plain"):
        r = run("watch", "--replay", str(rec), "--format", fmt, "--record", str(tmp_path / f"again-{fmt}.jsonl"))
        assert r.returncode == 0 and b"Traceback" not in r.stderr, r.stderr[-500:]
        no_raw_control(r.stdout)
        assert len((tmp_path / f"again-{fmt}.jsonl").read_text().splitlines()) == 3  # status + 2 events
    p = run("popup", "--ext", "1001", "--replay", str(rec), "--format", "json")
    assert p.returncode == 0 and json.loads(p.stdout.splitlines()[0])["state"] == "ringing", p.stderr[-500:]


def test_sim_replay_survives_a_lone_surrogate(tmp_path):
    from tests.support.sim import sim_subprocess
    from tests.test_sim_protocol import Client

    rec = surrogate_recording(tmp_path / "s.jsonl")
    with sim_subprocess("--replay", str(rec), "--speed", "max") as (host, port):
        client = Client(host, port)
        client.sock.sendall(b"auth ClueCon\n\nevent json ALL\n\n")
        client.read_until(lambda: any(isinstance(f, EventFrame) and f.event.unique_id == "uuid-1"
                                      for f in client.frames), timeout=5)
        client.close()
    assert [f.event.unique_id for f in client.frames if isinstance(f, EventFrame)][-1] == "uuid-1"


@pytest.mark.slow
def test_relay_survives_a_lone_surrogate(tmp_path, mosquitto):  # noqa: F811
    from tests.support.brokers import MqttCollector

    rec = surrogate_recording(tmp_path / "s.jsonl")
    sub = MqttCollector(mosquitto, "freeswitch/vm/#")
    try:
        r = run("relay", "--to", mosquitto.url, "--replay", str(rec), "--client-id", "hostile-surrogate",
                "--drain-timeout", "3")
        assert b"Traceback" not in r.stderr, r.stderr[-800:]
        assert r.returncode == 0, r.stderr[-800:]
        assert sub.wait_for(lambda m: any(b"uuid-1" in p for _, p, _ in m), 5)
    finally:
        sub.close()


@pytest.mark.slow
def test_relay_publishes_hostile_events_as_valid_json_on_safe_topics(mosquitto):  # noqa: F811
    """The hostile call over a live socket, through `relay` to Mosquitto: every payload is
    valid JSON with the values kept, every topic has exactly its levels and no wildcard."""
    from tests.support.brokers import MqttCollector

    sub = MqttCollector(mosquitto, "hostile/#")
    with HostileSwitch() as switch:
        n = len(switch.events)
        proc = subprocess.Popen([str(ESLKIT), "relay", "--port", str(switch.port), "--to", mosquitto.url,
                                 "--client-id", "hostile-live", "--topic", "hostile/events/{event}/{ext}/{name}",
                                 "--popup-topic", "hostile/agents/{ext}/{hostname}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())
        try:
            got = sub.wait_for(lambda m: sum("/events/" in t for t, _, _ in m) >= n, 10)
            assert got, (n, len(sub.messages))
            proc.send_signal(signal.SIGTERM)
            err = proc.communicate(timeout=20)[1]
        finally:
            proc.kill()
            sub.close()
    assert proc.returncode == 0 and b"Traceback" not in err, err[-600:]
    no_raw_control(err)
    events = [(t, json.loads(p)) for t, p, _ in sub.messages if "/events/" in t]
    popups = [(t, json.loads(p)) for t, p, _ in sub.messages if "/agents/" in t]
    assert len(events) == n and popups
    for topic, _ in events + popups:
        assert len(topic.split("/")) == (5 if "/events/" in topic else 4), topic
        # No wildcard, no control character (brokers refuse them: MQTT 1.5.4); bidi and other
        # format characters are valid topic text and stay (a subscriber shows topics safely).
        assert not re.search("[+#\x00-\x1f\x7f-\x9f\ufffe\uffff]", topic), topic
    create = next(ev for _, ev in events if ev["Event-Name"] == "CHANNEL_CREATE")
    assert create["Caller-Caller-ID-Name"] == expected(NAME)
    assert {rec["caller_name"] for _, rec in popups} == {expected(NAME)[:1024]}
