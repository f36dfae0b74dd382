"""`eslkit sim` as a user runs it: options, password handling, clear errors, Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from eslkit.protocol import EventFrame
from tests.support.net import free_port, wait_for_port
from tests.support.sim import ESLKIT, sim_subprocess
from tests.test_sim_protocol import Client, talk


def run(*args: str, env: dict | None = None, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([str(ESLKIT), "sim", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_password_comes_from_esl_password_and_is_never_printed() -> None:
    secret = "s3cret-Pa55"
    with sim_subprocess("--scenario", "busy", "--speed", "max", password=secret) as (host, port):
        wrong = talk(host, port, b"auth ClueCon\n\n")
        right = talk(host, port, f"auth {secret}\n\nevent plain CHANNEL_HANGUP_COMPLETE\n\n".encode())
        right.read_until(lambda: sum(isinstance(f, EventFrame) for f in right.frames) >= 2, timeout=5)
        right.close()
    assert wrong.replies()[-2].reply_text == "-ERR invalid" and wrong.eof
    assert right.replies()[1].reply_text == "+OK accepted"
    assert {f.event.hangup_cause for f in right.frames if isinstance(f, EventFrame)} == {"USER_BUSY"}


def test_output_never_contains_the_password_and_ctrl_c_stops_cleanly() -> None:
    port = free_port()
    proc = subprocess.Popen([str(ESLKIT), "sim", "--port", str(port), "--password", "hunter2-xyz"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for_port("127.0.0.1", port, 15, proc, greeting=True), "eslkit sim did not listen"
        client = talk("127.0.0.1", port, b"auth hunter2-xyz\n\napi status\n\nexit\n\n")
        assert client.replies()[1].reply_text == "+OK accepted"
        listener = talk("127.0.0.1", port, b"auth hunter2-xyz\n\nevent plain SHUTDOWN\n\n")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        listener.read_until(lambda: listener.eof, timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "hunter2-xyz" not in out + err
    assert "listening on 127.0.0.1:%d" % port in err
    assert "Traceback" not in err
    # like a switch shutting down: SHUTDOWN, then the disconnect notice
    assert [f.event.name for f in listener.frames if isinstance(f, EventFrame)] == ["SHUTDOWN"]
    assert listener.frames[-1].text == "The system is being shut down.\n" and listener.eof


def test_replay_option_plays_a_transcript(captures: Path) -> None:
    with sim_subprocess("--replay", str(captures / "scenario_noanswer_plain.raw"), "--speed", "max") as addr:
        client = talk(*addr, b"auth ClueCon\n\nevent json CHANNEL_HANGUP_COMPLETE\n\n")
        client.read_until(lambda: client.eof, timeout=10)
    events = [f.event for f in client.frames if isinstance(f, EventFrame)]
    assert [e.hangup_cause for e in events] == ["ORIGINATOR_CANCEL", "ORIGINATOR_CANCEL"]
    assert client.frames[-1].content_type == "text/disconnect-notice"


def test_allow_option_rejects_other_addresses() -> None:
    with sim_subprocess("--allow", "127.0.0.1/32") as (host, port):
        other = Client(host, port, source="127.0.0.2")
        other.read_until(lambda: other.eof, timeout=3)
        mine = talk(host, port, b"auth ClueCon\n\n")
    assert [f.content_type for f in other.frames] == ["text/rude-rejection", "text/disconnect-notice"]
    assert mine.replies()[1].reply_text == "+OK accepted"


@pytest.mark.parametrize("args,code,text", [
    (["--speed", "fast"], 2, "is not a number or max"),
    (["--speed", "-1"], 2, "give a number above 0"),  # 0 is max, as in every --speed
    (["--allow", "10.0.0.300/8"], 2, "Invalid value for --allow: '10.0.0.300/8' is not an address or CIDR"),
    (["--scenario", "nosuch"], 11, "There is no scenario called 'nosuch'"),
    (["--scenario", "nosuch"], 11, "idle (no calls but those clients place)"),  # the fix names every choice
    (["--scenario", "load:cps=-1"], 11, "The load generator needs"),
    (["--replay", "/nonexistent/x.raw"], 11, "There is no file /nonexistent/x.raw"),
    (["--password", ""], 2, "always requires a password"),
])
def test_bad_options_end_with_one_clear_sentence(args: list[str], code: int, text: str, monkeypatch,
                                                 capfd) -> None:
    """In-process through eslkit.cli.main (the same path as the installed command, minus the
    interpreter start-up that makes subprocesses slow)."""
    from eslkit import cli

    monkeypatch.setattr("sys.argv", ["eslkit", "sim", "--port", "0", *args])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    err = capfd.readouterr().err
    assert exit_info.value.code == code
    assert text in " ".join(err.split())
    assert "Traceback" not in err


def test_port_in_use_is_a_clear_error() -> None:
    """The fix names the port that is taken (it named 8021 whatever --port said)."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("--port", str(port))
    assert result.returncode == 15
    assert result.stderr.splitlines() == [
        f"eslkit: Cannot listen on 127.0.0.1:{port}: Address already in use.",
        f"  fix: Another switch or simulator already listens on port {port}: stop it, or choose another "
        "--port (--port 0 takes any free one).",
    ]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_shuts_down_like_ctrl_c_and_like_freeswitch(sig) -> None:
    """systemd, docker stop and kill send SIGTERM: the simulator used to die (143) without
    the SHUTDOWN event and disconnect notice a real switch sends on shutdown
    (fs_stopped_while_connected)."""
    port = free_port()
    proc = subprocess.Popen([str(ESLKIT), "sim", "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "ESL_PASSWORD": "ClueCon"})
    try:
        assert wait_for_port("127.0.0.1", port, 15, proc, greeting=True), "eslkit sim did not listen"
        listener = talk("127.0.0.1", port, b"auth ClueCon\n\nevent plain SHUTDOWN\n\n")
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
        listener.read_until(lambda: listener.eof, timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert err.splitlines()[-1] == "eslkit sim: stopped." and "Traceback" not in err
    assert [f.event.name for f in listener.frames if isinstance(f, EventFrame)] == ["SHUTDOWN"]
    assert listener.frames[-1].text == "The system is being shut down.\n" and listener.eof
