"""The ESL and broker passwords stay out of sight, and `eslkit sim` is not an open door.

Already covered elsewhere (see docs/reliability.md): repr() of ConnectionSettings,
profiles, Connection and MqttSettings; the --password process-list warning; the
world-readable profile warning (library level); `eslkit sim` and `relay` never
printing their passwords; the relay's password not in its own argument list.
Here: every output, recording and error of the commands run as real processes,
the argument lists of the processes eslkit starts (popup --exec, --open-url's
browser, the build's verification interpreter), `build --dry-run`, the broker's
messages, the config warning through the CLI, and where `eslkit sim` listens.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.cli import EXE
from tests.support.net import wait_for_port
from tests.support.sim import ESLKIT, sim_in_thread
from tests.test_sim_protocol import Client

SECRET = "Esl-S3cret-pw-8841"
OTHER = "Wr0ng-Guess-pw-5512"


def base_env(tmp_path: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "ESL_PASSWORD"}
    return {**env, "HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config"),
            **extra}


def eslkit(tmp_path: Path, *args: str, timeout: float = 30, **env) -> subprocess.CompletedProcess:
    return subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=timeout,
                          env=base_env(tmp_path, **env))


def assert_hidden(secret: str, *texts: str) -> None:
    for text in texts:
        assert secret not in text, text[max(text.find(secret) - 200, 0):text.find(secret) + 50]


def recorder(tmp_path: Path) -> Path:
    """A program that writes its argument list and its environment, as JSON, to files of its own."""
    script = tmp_path / "record-argv"
    script.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                      f"open(os.path.join({str(tmp_path)!r}, 'env-%d.json' % os.getpid()), 'w')"
                      ".write(json.dumps(dict(os.environ)))\n"
                      f"open(os.path.join({str(tmp_path)!r}, 'argv-%d.json' % os.getpid()), 'w')"
                      ".write(json.dumps(sys.argv))\n")
    script.chmod(0o755)
    return script


def popup_for_a_while(tmp_path: Path, port: int, *args: str, states: int = 2, **env) -> tuple[int, str, str]:
    proc = subprocess.Popen([str(ESLKIT), "popup", "--port", str(port), "--ext", "1002", "--format", "json", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=base_env(tmp_path, **env))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    deadline = time.monotonic() + 15
    while len(lines) < states and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    with open(f"/proc/{proc.pid}/cmdline", "rb") as fh:
        own_argv = fh.read().decode()
    proc.send_signal(signal.SIGINT)  # the actions have started; popup waits for them before it exits
    try:
        err = proc.communicate(timeout=10)[1]
    finally:
        proc.kill()
    reader.join(5)
    return proc.returncode, "".join(lines) + own_argv, err


# --- the ESL password in outputs, recordings and errors -----------------------------------------------


def at_once(tmp_path: Path, *runs: tuple, timeout: float = 40) -> list[subprocess.CompletedProcess]:
    """Run several eslkit commands side by side: ``(args, env)`` each."""
    procs = [subprocess.Popen([str(ESLKIT), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=base_env(tmp_path, **env)) for args, env in runs]
    done = []
    for proc in procs:
        try:
            out, err = proc.communicate(timeout=timeout)
        finally:
            proc.kill()
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def test_esl_password_never_in_output_recording_or_errors(tmp_path):
    record = tmp_path / "calls.jsonl"
    with sim_in_thread(password=SECRET, scenario="busy", speed=4, loop=True) as sim:
        port = str(sim.port)
        watch, plain, *wrong = at_once(
            tmp_path,
            (("watch", "--port", port, "--format", "json", "--record", str(record), "--count", "20"),
             {"ESL_PASSWORD": SECRET}),
            (("watch", "--port", port, "--format", "plain", "--stats", "--count", "5", "--password", SECRET), {}),
            # A wrong password: the error says so without echoing what was sent (or the right one).
            (("watch", "--port", port, "--format", "json"), {"ESL_PASSWORD": OTHER}),
            (("popup", "--port", port, "--ext", "1001", "--format", "json"), {"ESL_PASSWORD": OTHER}),
            (("watch", "--port", port, "--format", "json", "--password", OTHER), {}),
        )
        code, popup_out, popup_err = popup_for_a_while(tmp_path, sim.port, ESL_PASSWORD=SECRET)
    assert watch.returncode == 0, watch.stderr
    assert plain.returncode == 0 and "process list" in plain.stderr, plain.stderr
    assert code == 0 and popup_out, popup_err
    for failed in wrong:
        assert failed.returncode == 5 and "rejected the password" in failed.stderr, failed.stderr
        assert_hidden(OTHER, failed.stdout, failed.stderr)
        assert_hidden(SECRET, failed.stdout, failed.stderr)
    assert_hidden(SECRET, watch.stdout, watch.stderr, record.read_text(), plain.stdout, plain.stderr,
                  popup_out, popup_err)
    assert len(record.read_text().splitlines()) >= 20


def test_esl_password_never_in_timeout_or_refused_errors(tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # accepts, never greets
    try:
        timeout = eslkit(tmp_path, "watch", "--port", str(silent.getsockname()[1]), "--timeout", "0.5",
                         "--no-reconnect", "--format", "json", ESL_PASSWORD=SECRET)
    finally:
        silent.close()
    refused = eslkit(tmp_path, "popup", "--port", "1", "--ext", "1001", "--format", "json", "--password", SECRET)
    assert timeout.returncode not in (0, 1) and "Traceback" not in timeout.stderr, timeout.stderr
    assert refused.returncode == 3, refused.stderr
    assert_hidden(SECRET, timeout.stdout, timeout.stderr, refused.stdout, refused.stderr)


def test_a_password_with_a_newline_is_refused_without_being_quoted(tmp_path):
    """ESL_PASSWORD=$(cat pw.txt) of a file with Windows line ends keeps the \r: refused
    before a byte is sent, as any command with a line break is — but that refusal quoted
    the whole `auth PASSWORD` line."""
    with sim_in_thread(password=SECRET) as sim:
        for command, end in ((("watch", "--format", "json"), "\r"), (("popup", "--ext", "1001", "--format", "json"), "\n")):
            done = eslkit(tmp_path, *command, "--port", str(sim.port), ESL_PASSWORD=SECRET + end)
            assert done.returncode == 2 and "password holds a newline" in done.stderr, done.stderr
            assert_hidden(SECRET, done.stdout, done.stderr)


# --- argument lists of the processes eslkit starts ---------------------------------------------------


def test_popup_children_never_get_the_password_as_an_argument(tmp_path):
    program = recorder(tmp_path)
    book = tmp_path / "contacts.csv"
    book.write_text("number,password\n99999,\n")  # a column named password, nobody's number
    with sim_in_thread(password=SECRET, scenario="busy", speed=None) as sim:
        code, out, err = popup_for_a_while(
            tmp_path, sim.port, "--open-url", "https://crm.example/?n={caller_number}&u={call_uuid}",
            "--contacts", book, "--exec", str(program), "{caller_name}", "{leg_uuid}", "{contact_password}",
            states=1, ESL_PASSWORD=SECRET, BROWSER=str(program))
    assert code == 0, err
    deadline = time.monotonic() + 10
    while len(list(tmp_path.glob("argv-*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    argvs = [json.loads(p.read_text()) for p in tmp_path.glob("argv-*.json")]
    assert len(argvs) == 2, argvs  # the browser and the --exec program
    assert any(a[1].startswith("https://crm.example/?n=") for a in argvs)
    assert any(len(a) == 4 and a[3] == "" for a in argvs)  # {contact_password} is just an empty field
    assert_hidden(SECRET, json.dumps(argvs), out, err)
    # Nor in their environment: not the --exec program, and not the browser --open-url starts
    # (Python's webbrowser passes eslkit's own environment on).
    envs = [json.loads(p.read_text()) for p in tmp_path.glob("env-*.json")]
    assert len(envs) == 2 and all("BROWSER" in e for e in envs)
    assert_hidden(SECRET, json.dumps(envs))


def test_build_check_passes_the_password_by_environment_not_argv(tmp_path, monkeypatch):
    """What `eslkit build --check` runs to verify the module: the target interpreter,
    with the password in its environment only (and it does log in with it)."""
    from eslkit.build import install
    from eslkit.build.interpreter import probe
    from tests.support.esl_sdist import EslSdistUnavailable, build_esl_module

    try:
        module_dir = build_esl_module()
    except EslSdistUnavailable as exc:
        pytest.skip(f"cannot build the C ESL module here: {exc}")
    log = tmp_path / "python-calls.jsonl"
    wrapper = tmp_path / "python-wrapper"
    wrapper.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"with open({str(log)!r}, 'a') as fh:\n"
        "    fh.write(json.dumps({'argv': sys.argv, 'env': sorted(k for k in os.environ "
        "if os.environ[k] == os.environ.get('ESL_PASSWORD_FOR_TEST'))}) + '\\n')\n"
        f"os.execv({sys.executable!r}, [{sys.executable!r}] + sys.argv[1:])\n")
    wrapper.chmod(0o755)
    target = replace(probe(sys.executable), executable=str(wrapper))
    monkeypatch.setenv("ESL_PASSWORD", SECRET)
    monkeypatch.setenv("ESL_PASSWORD_FOR_TEST", SECRET)
    with sim_in_thread(password=SECRET, scenario=None) as sim:
        result = install.verify(target, module_dir, f"127.0.0.1:{sim.port}")
    assert result.get("connected"), result
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls and all(SECRET not in " ".join(c["argv"]) for c in calls)
    assert any("ESLKIT_CHECK_PASSWORD" in c["env"] for c in calls)  # how it does reach the child
    assert_hidden(SECRET, json.dumps(result))


def test_build_dry_run_never_shows_the_password(tmp_path):
    from tests.support.esl_sdist import EslSdistUnavailable
    from tests.support.fstree import make_tree

    try:
        root = make_tree(tmp_path / "fs", "1.11", configured=True)
    except EslSdistUnavailable as exc:
        pytest.skip(f"python-ESL sdist unavailable: {exc}")
    r = eslkit(tmp_path, "build", "--src", str(root), "--out", str(tmp_path / "out"), "--check",
               "127.0.0.1:8021", "--dry-run", ESL_PASSWORD=SECRET, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "127.0.0.1:8021" in r.stdout + r.stderr  # the check is in the plan...
    assert_hidden(SECRET, r.stdout, r.stderr)  # ...its password is not


# --- the broker password -----------------------------------------------------------------------------


@pytest.mark.slow
def test_mqtt_password_never_in_the_brokers_messages(tmp_path, captures):
    from tests.support.brokers import MOSQUITTO, Mosquitto, MqttCollector

    if not os.access(MOSQUITTO, os.X_OK):
        pytest.skip(f"mosquitto is not installed ({MOSQUITTO})")
    broker = Mosquitto(tmp_path / "mqtt", users={"relay": SECRET, "reader": "reader-pw"}).start()
    try:
        sub = MqttCollector(broker, "#", username="reader", password="reader-pw")
        try:
            r = eslkit(tmp_path, "relay", "--to", f"mqtt://relay@127.0.0.1:{broker.port}", "--password-env",
                       "RELAY_PW", "--replay", str(captures / "scenario_noanswer_plain.raw"), "--client-id",
                       "secret-check", RELAY_PW=SECRET)
            assert r.returncode == 0, r.stderr
            assert sub.wait_for(lambda m: any(json.loads(p).get("state") == "offline"
                                              for t, p, _ in m if t.endswith("/status")))
        finally:
            sub.close()
        assert len(sub.messages) > 10
        assert_hidden(SECRET, r.stdout, r.stderr, *(t + p.decode("utf-8", "replace") for t, p, _ in sub.messages))
    finally:
        broker.stop()


def test_amqp_settings_repr_masks_the_password(monkeypatch):
    from eslkit.brokers.amqp import parse_amqp_url

    monkeypatch.setenv("AMQP_PW", SECRET)
    settings = parse_amqp_url("amqp://relay@127.0.0.1:5672/", password_env="AMQP_PW")
    assert settings.password == SECRET
    assert_hidden(SECRET, repr(settings), str(settings))


# --- config files readable by others, through the CLI ------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640])
def test_readable_profile_warns_through_the_cli(tmp_path, mode):
    conf = tmp_path / "home" / ".config" / "eslkit" / "config.toml"
    conf.parent.mkdir(parents=True)
    conf.write_text(f'[profiles.lab]\nhost = "127.0.0.1"\nport = 1\npassword = "{SECRET}"\n')
    conf.chmod(mode)
    r = eslkit(tmp_path, "watch", "--profile", "lab", "--format", "json", "--no-reconnect")
    assert r.returncode == 3, r.stderr
    assert "readable by other users" in r.stderr and f"chmod 600 {conf}" in r.stderr
    assert_hidden(SECRET, r.stdout, r.stderr)
    conf.chmod(0o600)
    quiet = eslkit(tmp_path, "watch", "--profile", "lab", "--format", "json", "--no-reconnect")
    assert "readable by other users" not in quiet.stderr


# --- eslkit sim: loopback by default, a password always -----------------------------------------------


def test_sim_listens_on_loopback_only_by_default_and_wants_the_password(tmp_path):
    from tests.support.net import free_port

    port = free_port()
    proc = subprocess.Popen([str(ESLKIT), "sim", "--port", str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=base_env(tmp_path, ESL_PASSWORD=SECRET))
    try:
        assert wait_for_port("127.0.0.1", port, 15, proc, greeting=True), "eslkit sim did not listen"
        # 127.0.0.2 is this machine too, but not the address the simulator bound.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.2", port), timeout=2).close()
        with open("/proc/net/tcp") as fh:
            table = fh.read().splitlines()[1:]
        listening = [line.split()[1] for line in table
                     if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"]
        assert listening == ["0100007F:%04X" % port], listening  # 127.0.0.1 only
        # No command before auth; no auth without the password (nor with an empty one).
        client = Client("127.0.0.1", port)
        client.read_until(lambda: client.replies())
        client.sock.sendall(b"api status\n\n")
        client.read_until(lambda: len(client.replies()) > 1)
        client.sock.sendall(b"auth \n\n")
        client.read_until(lambda: client.eof, timeout=3)
        kinds = [f.content_type for f in client.frames]
        assert "api/response" not in kinds, kinds
        texts = [f.header("Reply-Text") for f in client.frames if f.content_type == "command/reply"]
        assert len(texts) == 2 and all(t.startswith("-ERR") for t in texts), texts
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and SECRET not in out + err


def test_sim_refuses_an_empty_password_cleanly(tmp_path):
    r = eslkit(tmp_path, "sim", "--port", "0", "--password", "", timeout=15)
    assert r.returncode == 2, r.stderr
    assert "password" in r.stderr and "Traceback" not in r.stderr


def _descendants(root: int) -> dict[int, bytes]:
    """{pid: cmdline} of every live process below `root`."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    parents[int(entry)] = int(fh.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found = {}
    for pid in parents:
        p = pid
        while p in parents and p not in (0, 1):
            p = parents[p]
            if p == root:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as fh:
                        found[pid] = fh.read()
                except OSError:
                    pass
                break
    return found


@pytest.mark.slow
def test_real_build_with_check_never_puts_the_password_in_argv_log_or_output(tmp_path):
    from tests.support.esl_sdist import EslSdistUnavailable
    from tests.support.fstree import make_tree

    try:
        root = make_tree(tmp_path / "fs", "1.6")
    except EslSdistUnavailable as exc:
        pytest.skip(f"python-ESL sdist unavailable: {exc}")
    log = tmp_path / "build.log"
    seen: dict[int, bytes] = {}
    with sim_in_thread(password=SECRET, scenario=None) as sim:
        proc = subprocess.Popen([str(ESLKIT), "build", "--src", str(root), "--out", str(tmp_path / "out"),
                                 "--log", str(log), "--check", f"127.0.0.1:{sim.port}"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=base_env(tmp_path, ESL_PASSWORD=SECRET))
        deadline = time.monotonic() + 180
        while proc.poll() is None and time.monotonic() < deadline:
            seen.update(_descendants(proc.pid))  # swig, gcc, g++, the verifying python ...
            time.sleep(0.01)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
    assert f"api status via 127.0.0.1:{sim.port}" in out  # it did log in, with the password
    assert len(seen) >= 5, seen  # the poller did see the build's children
    assert_hidden(SECRET, out, err, log.read_text(errors="replace"),
                  *(c.replace(b"\0", b" ").decode(errors="replace") for c in seen.values()))
