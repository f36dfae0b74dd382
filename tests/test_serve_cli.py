"""`eslkit serve` as a user starts it: bad input ends with one sentence, the fix and an exit code."""

from __future__ import annotations

import socket
import subprocess

import pytest

from tests.support.serve import write_users
from tests.support.sim import ESLKIT, free_port, sim_subprocess


def serve(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(ESLKIT), "serve", *args], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "ESL_PASSWORD": "ClueCon", **(env or {})})


def test_a_missing_or_broken_users_file(tmp_path):
    missing = serve("--users", str(tmp_path / "nope.txt"))
    assert missing.returncode == 11 and "There is no users file" in missing.stderr
    assert "eslkit passwd" in missing.stderr
    broken = tmp_path / "users.txt"
    broken.write_text("alice:agent:1001:hunter2\n")
    result = serve("--users", str(broken))
    assert result.returncode == 11 and "line 1" in result.stderr and "hunter2" not in result.stderr
    for result in (missing, result):
        assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) <= 3


@pytest.mark.parametrize("listen", ["127.0.0.1:http", "127.0.0.1:70000", "nonsense:"])
def test_a_bad_listen_address(tmp_path, listen):
    result = serve("--users", str(write_users(tmp_path / "users.txt")), "--listen", listen)
    assert result.returncode == 15 and "--listen" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args, hint", [
    (["--service-level", "abc"], "--service-level"),
    (["--service-level", "=20"], "--service-level"),
    (["--day-start", "25:00"], "--day-start"),
    (["--target", "120"], "--target"),
])
def test_bad_statistics_options_say_which_and_exit_2(tmp_path, args, hint):
    """The wallboard's options, as `eslkit wallboard` takes them: refused before anything starts."""
    result = serve("--users", str(write_users(tmp_path / "users.txt")), *args)
    assert result.returncode == 2 and hint in result.stderr and "Traceback" not in result.stderr


def test_a_port_already_taken(tmp_path):
    with socket.socket() as taken, sim_subprocess() as (host, port):
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = serve("--users", str(write_users(tmp_path / "users.txt")), "--port", str(port),
                       "--listen", f"127.0.0.1:{taken.getsockname()[1]}")
    assert result.returncode == 15 and "Cannot listen on 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_crm_template_and_an_unreachable_switch(tmp_path):
    users = str(write_users(tmp_path / "users.txt"))
    template = serve("--users", users, "--open-url", "crm.example/{nope}")
    assert template.returncode == 14 and "unknown field {nope}" in template.stderr
    refused = serve("--users", users, "--port", str(free_port()))
    assert refused.returncode == 3 and "Traceback" not in refused.stderr


def test_the_web_stack_is_imported_only_when_serve_runs():
    code = ("import sys; sys.argv = ['eslkit'] + sys.argv[1:]\n"
            "from eslkit import cli\n"
            "cli._register(cli._command_in(sys.argv[1:]))\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'aiohttp' or m.startswith('eslkit.web')))")
    import sys

    for argv in (["--help"], ["popup", "--help"], ["passwd", "--help"], ["demo", "--help"], ["serve", "--help"]):
        done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stdout.strip() == "[]", (argv, done.stdout, done.stderr)


def test_control_options_without_control_or_through_a_broker(tmp_path):
    users = str(write_users(tmp_path / "users.txt"))
    wide = {"COLUMNS": "300", "NO_COLOR": "1", "TERM": "dumb"}  # the usage error's box: one line
    alone = serve("--users", users, "--audit", str(tmp_path / "audit.jsonl"), env=wide)
    assert alone.returncode == 2 and "go with --control" in alone.stderr
    broker = serve("--users", users, "--control", "--from", "mqtt://127.0.0.1:1", "--context", "agents", env=wide)
    assert broker.returncode == 2 and "relay --control has the destination rules" in broker.stderr
    for result in (alone, broker):
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "audit.jsonl").exists()


def test_an_audit_log_that_cannot_be_written(tmp_path):
    with sim_subprocess() as (host, port):
        result = serve("--users", str(write_users(tmp_path / "users.txt")), "--port", str(port), "--control",
                       "--audit", str(tmp_path / "no" / "such" / "dir" / "audit.jsonl"),
                       "--listen", f"127.0.0.1:{free_port()}")
    assert result.returncode == 17 and "Cannot open the audit log" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
