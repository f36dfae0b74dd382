"""`eslkit relay` as a user runs it: a real process, a real Mosquitto."""

from __future__ import annotations

import json
import re
import signal
import time

import pytest

from tests.support.brokers import MqttCollector
from tests.support.cli import Running, eslkit

pytestmark = pytest.mark.slow

QUEUE = "scenario_queue_plain"
AGENT_1001_LEG = "43776d3b-2666-488e-8278-331d8aebd289"


def popup_json(capture, exts) -> list[dict]:
    done = eslkit("popup", "--ext", exts, "--format", "json", "--replay", str(capture))
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_replay_publishes_events_per_agent_and_the_popup_states_of_popup_json(mosquitto, captures):
    cap = captures / f"{QUEUE}.raw"
    sub = MqttCollector(mosquitto, "freeswitch/vm/#")
    try:
        done = eslkit("relay", "--to", mosquitto.url, "--replay", str(cap), "--client-id", "cli-replay")
        assert done.returncode == 0, done.stderr
        assert "received 88 events; published 93 messages (88 events, 5 popup states); dropped 0" in done.stderr
        assert sub.wait_for(lambda m: len(m) >= 93)
        popups = [(t, json.loads(p)) for t, p, _ in sub.messages if "/agents/" in t]
        for ext in ("1001", "1002"):
            mine = [rec for t, rec in popups if t == f"freeswitch/vm/agents/{ext}/popup"]
            assert mine == popup_json(cap, ext)
            assert {rec["ext"] for rec in mine} == {ext}
        events = [(t, json.loads(p)) for t, p, _ in sub.messages if "/events/" in t]
        leg = [t for t, ev in events if ev.get("Unique-ID") == AGENT_1001_LEG]
        assert leg and all(t.endswith("/1001") for t in leg)
        assert all(t == f"freeswitch/vm/events/{ev['Event-Name']}/{t.rsplit('/', 1)[1]}" for t, ev in events)
    finally:
        sub.close()


def test_sigterm_delivers_prints_summary_and_leaves_offline(mosquitto, captures):
    status = "freeswitch/relay/cli-term/status"
    sub = MqttCollector(mosquitto, [status, "freeswitch/vm/events/#"])
    relay = Running("relay", "--to", mosquitto.url, "--replay", captures / f"{QUEUE}.raw", "--speed", "0.05",
                    "--client-id", "cli-term")
    try:
        assert sub.wait_for(lambda m: any(json.loads(p)["state"] == "online" for t, p, _ in m if t == status))
        assert sub.wait_for(lambda m: any("/events/" in t for t, _, _ in m))  # it is relaying
        assert relay.stop(signal.SIGTERM, timeout=20) == 0, relay.err
        err = "\n".join(relay.err)
        assert "eslkit relay: received" in err and "dropped 0" in err
        assert sub.wait_for(lambda m: [t for t, _, _ in m][-1] == status and json.loads(m[-1][1])["state"] == "offline")
        final = json.loads(sub.messages[-1][1])
        assert final["dropped"] == 0 and final["buffered"] == 0 and final["published"] >= final["received"] > 0
    finally:
        relay.kill()
        sub.close()


def test_last_will_says_offline_when_the_relay_dies(mosquitto, captures):
    status = "freeswitch/relay/cli-will/status"
    sub = MqttCollector(mosquitto, status)
    relay = Running("relay", "--to", mosquitto.url, "--replay", captures / f"{QUEUE}.raw", "--speed", "0.05",
                    "--client-id", "cli-will")
    try:
        assert sub.wait_for(lambda m: any(json.loads(p)["state"] == "online" for _, p, _ in m))
        relay.kill()  # no DISCONNECT: the broker publishes the Last Will
        assert sub.wait_for(lambda m: json.loads(m[-1][1]) == {"state": "offline"}, timeout=10)
    finally:
        relay.kill()
        sub.close()


def test_broker_gone_at_exit_is_reported_not_silent(fresh_mosquitto, captures):
    sub = MqttCollector(fresh_mosquitto, "freeswitch/relay/cli-gone/status")
    relay = Running("relay", "--to", fresh_mosquitto.url, "--replay", captures / f"{QUEUE}.raw",
                    "--speed", "4", "--client-id", "cli-gone", "--drain-timeout", "1", "--buffer-bytes", "64MiB")
    try:
        assert sub.wait_for(lambda m: len(m) >= 1)
        sub.close()
        fresh_mosquitto.stop()
        relay.proc.wait(30)  # the replay ends; nothing takes what is left
        code, err = relay.stop(), "\n".join(relay.err)
        assert code == 16, err
        assert "broker connection lost; buffering up to 100000 messages or 64 MiB, then dropping the oldest" in err
        assert "not confirmed by the broker" in err and "did not reach the broker" in err
        assert "(0 dropped from a full buffer" in err and "--buffer-bytes" not in err.split("fix: ")[-1]
    finally:
        relay.kill()


def test_password_from_env_only_never_shown(tmp_path, captures):
    from tests.support.brokers import Mosquitto

    secret = "pw-Zq81-secret"
    broker = Mosquitto(tmp_path / "auth", users={"relay": secret}).start()
    try:
        cap = str(captures / "scenario_noanswer_plain.raw")
        relay = Running("relay", "--to", f"mqtt://relay@127.0.0.1:{broker.port}", "--password-env", "RELAY_PW",
                        "--replay", cap, "--speed", "0.2", "--client-id", "cli-auth", env={"RELAY_PW": secret})
        sub = MqttCollector(broker, "freeswitch/relay/cli-auth/status", username="relay", password=secret)
        try:
            assert sub.wait_for(lambda m: any(json.loads(p)["state"] == "online" for _, p, _ in m))
        finally:
            sub.close()
        with open(f"/proc/{relay.proc.pid}/cmdline", "rb") as fh:
            assert secret.encode() not in fh.read()
        assert relay.stop(signal.SIGTERM, timeout=20) == 0, relay.err
        assert secret not in "\n".join(relay.out + relay.err)

        wrong = eslkit("relay", "--to", f"mqtt://relay@127.0.0.1:{broker.port}", "--password-env", "RELAY_PW",
                       "--replay", cap, env={"RELAY_PW": "not-" + secret})
        assert wrong.returncode == 13
        assert "refused the login" in wrong.stderr and secret not in wrong.stderr
        unset = eslkit("relay", "--to", broker.url, "--password-env", "NO_SUCH_VAR_X", "--replay", cap)
        assert unset.returncode == 13 and "NO_SUCH_VAR_X" in unset.stderr
        in_url = eslkit("relay", "--to", f"mqtp://relay:{secret}@127.0.0.1:1", "--replay", cap)
        assert in_url.returncode == 13 and secret not in in_url.stderr
    finally:
        broker.stop()


def test_unreachable_broker_exit_13_no_traceback(captures):
    from tests.support.net import free_port

    done = eslkit("relay", "--to", f"mqtt://127.0.0.1:{free_port()}", "--replay",
                  str(captures / f"{QUEUE}.raw"))
    assert done.returncode == 13
    assert "Cannot reach the MQTT broker" in done.stderr and "Traceback" not in done.stderr


def documented_acl() -> str:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "relay.md").read_text()
    after = text.split("<!-- acl-example", 1)[1]
    return after.split("```\n", 1)[1].split("```", 1)[0]


def test_documented_mosquitto_acl_lets_each_agent_read_only_its_own_topics(tmp_path, captures):
    from tests.support.brokers import Mosquitto

    users = {"relay": "relay-pw", "1001": "pw-1001", "1002": "pw-1002"}
    broker = Mosquitto(tmp_path / "acl", users=users, acl=documented_acl()).start()
    agents = {ext: MqttCollector(broker, "freeswitch/#", username=ext, password=users[ext]) for ext in ("1001", "1002")}
    try:
        done = eslkit("relay", "--to", f"mqtt://relay@127.0.0.1:{broker.port}", "--password-env", "RELAY_PW",
                      "--replay", str(captures / f"{QUEUE}.raw"), "--client-id", "acl-relay",
                      env={"RELAY_PW": users["relay"]})
        assert done.returncode == 0, done.stderr
        for ext, sub in agents.items():
            mine = popup_json(captures / f"{QUEUE}.raw", ext)
            count = len(mine)
            assert sub.wait_for(lambda m, n=count: len([t for t, _, _ in m if "/agents/" in t]) >= n)
            # The relay's offline status is the last it published: what was not allowed would be here.
            assert sub.wait_for(lambda m: any(t.endswith("/status") and json.loads(p)["state"] == "offline"
                                              for t, p, _ in m))
            topics = [t for t, _, _ in sub.messages]
            assert all(t.endswith("/" + ext) or t == f"freeswitch/vm/agents/{ext}/popup"
                       or t.startswith("freeswitch/relay/") for t in topics), topics
            assert [json.loads(p) for t, p, _ in sub.messages if "/agents/" in t] == mine
            assert any("/events/" in t for t in topics)
    finally:
        for sub in agents.values():
            sub.close()
        broker.stop()


def test_mqtts_with_a_private_ca(tmp_path, tls_files, captures):
    from tests.support.brokers import Mosquitto

    ca, cert, key = tls_files
    broker = Mosquitto(tmp_path / "tls-broker", tls=(ca, cert, key)).start()
    try:
        import paho.mqtt.client as mqtt

        got = []
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tls-sub")
        sub.tls_set(ca_certs=str(ca))
        subscribed = __import__("threading").Event()
        sub.on_message = lambda c, u, m: got.append(m.topic)
        sub.on_subscribe = lambda *a: subscribed.set()
        sub.connect(broker.host, broker.port)
        sub.subscribe("freeswitch/vm/#", 1)
        sub.loop_start()
        assert subscribed.wait(10)
        cap = str(captures / "scenario_noanswer_plain.raw")
        done = eslkit("relay", "--to", broker.url, "--tls-ca", str(ca), "--replay", cap, "--client-id", "tls")
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 10
        while not any("/agents/1002/popup" in t for t in got) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any("/events/" in t for t in got) and any("/agents/1002/popup" in t for t in got)
        sub.disconnect()
        sub.loop_stop()
        # Without our CA the broker's certificate is not trusted: one clear error.
        untrusted = eslkit("relay", "--to", broker.url, "--replay", cap)
        assert untrusted.returncode == 13 and "certificate" in untrusted.stderr.lower(), untrusted.stderr
    finally:
        broker.stop()


def test_bad_options_are_usage_errors_before_any_connection():
    bad_header = eslkit("relay", "--to", "mqtt://127.0.0.1:1", "--header", "no-equals-sign", "--replay", "x")
    assert bad_header.returncode == 2 and "NAME=VALUE" in bad_header.stderr
    bad_scheme = eslkit("relay", "--to", "http://127.0.0.1:1", "--replay", "x")
    assert bad_scheme.returncode == 13 and "not a broker URL" in bad_scheme.stderr
    bad_template = eslkit("relay", "--to", "mqtt://127.0.0.1:1", "--topic", "x/{nope}", "--replay", "x")
    assert bad_template.returncode == 13 and "{nope}" in bad_template.stderr
    # --from's ?password_env= in --to was dropped without a word: the relay logged in anonymous.
    query = eslkit("relay", "--to", "mqtt://127.0.0.1:1?password_env=RELAY_PW", "--replay", "x")
    assert query.returncode == 13 and "relay --to takes nothing after '?'" in query.stderr
    assert "--password-env VAR" in query.stderr
    # --from's own way: the error names the variable, not an option that was never given.
    unset = eslkit("watch", "--from", "mqtt://127.0.0.1:1?password_env=NO_SUCH_VAR_Y")
    assert unset.returncode == 13 and unset.stderr.startswith(
        "eslkit: The environment variable NO_SUCH_VAR_Y, named to hold the broker password, is not set.")
    assert "Traceback" not in bad_header.stderr + bad_scheme.stderr + bad_template.stderr + query.stderr
    for size in ("12XB", "0", "-1MB"):
        bad_size = eslkit("relay", "--to", "mqtt://127.0.0.1:1", "--buffer-bytes", size, "--replay", "x")
        said = " ".join(bad_size.stderr.replace("│", " ").split())
        assert bad_size.returncode == 2 and f"Invalid value for --buffer-bytes: '{size}' is not a size" in said
        assert "(e.g. 256MB)" in said and "Traceback" not in bad_size.stderr


def test_help_says_both_bounds_of_the_outbox():
    done = eslkit("relay", "--help", env={"COLUMNS": "200"})
    assert done.returncode == 0
    text = " ".join(done.stderr.replace("│", " ").split() + done.stdout.replace("│", " ").split())
    assert "--buffer N" in text and "--buffer-bytes SIZE" in text and "[default: 256MB]" in text


def test_watch_from_mqtt_prints_what_watch_prints_for_the_switch(mosquitto, captures):
    cap = captures / "scenario_noanswer_plain.raw"
    direct = eslkit("watch", "--replay", str(cap), "--format", "json")
    assert direct.returncode == 0, direct.stderr
    want = [json.loads(line) for line in direct.stdout.splitlines()]
    topic = "freeswitch/vm/events/#"
    listening = mosquitto.subscriptions(topic)
    watcher = Running("watch", "--from", f"{mosquitto.url}/freeswitch/vm", "--format", "json",
                      "--count", len(want))
    try:
        # The broker keeps nothing for a fresh session: wait until it is subscribed.
        mosquitto.wait_subscribed(topic, listening + 1)
        relayed = eslkit("relay", "--to", mosquitto.url, "--replay", str(cap), "--client-id", "cli-watch-from")
        assert relayed.returncode == 0, relayed.stderr
        watcher.proc.wait(30)  # --count: it ends by itself
    finally:
        code = watcher.stop()
    assert code == 0, watcher.err
    assert watcher.records() == want


# --- a broker library that is not installed (issue 20) ----------------------------------


@pytest.mark.parametrize("args, module, requirement", [
    # The relay publishes with eslkit's own MQTT and AMQP writers; reading from a broker takes
    # paho or pika.
    (["popup", "--ext", "1001", "--from", "mqtt://127.0.0.1:1"], "paho", "paho-mqtt>=2.0"),
    (["popup", "--ext", "1001", "--from", "amqp://127.0.0.1:1"], "pika", "pika>=1.3"),
])
def test_missing_broker_library_fix_is_the_command_for_this_python(captures, args, module, requirement):
    import shlex
    import subprocess
    import sys

    if args[0] == "relay":
        args = [*args, "--replay", str(captures / f"{QUEUE}.raw")]
    # eslkit as installed without the extra: the same Python, the library not importable.
    run_relay = (f"import sys; sys.modules[{module!r}] = None; from eslkit.cli import main; "
                 f"sys.argv = ['eslkit', *{args!r}]; main()")
    done = subprocess.run([sys.executable, "-c", run_relay], capture_output=True, text=True, timeout=60)
    assert done.returncode == 13, done.stderr
    assert "support is not installed" in done.stderr and "Traceback" not in done.stderr
    fix = done.stderr.split("fix: ", 1)[1].strip()
    assert fix == f"{shlex.quote(sys.executable)} -m pip install '{requirement}'"
    assert "eslkit[" not in fix  # `pip install 'eslkit[mqtt]'` would fetch another eslkit
    # The fix runs as printed, in the Python eslkit runs on (here the library is there already).
    check = subprocess.run([*shlex.split(fix), "--dry-run", "--no-index"], capture_output=True, text=True,
                           timeout=120)
    assert check.returncode == 0 and "already satisfied" in check.stdout, check.stdout + check.stderr


@pytest.mark.parametrize("module, url", [("paho", "mqtt://127.0.0.1:1"), ("pika", "amqp://127.0.0.1:1")])
def test_relay_publishes_without_the_broker_library(captures, module, url):
    """`relay --to` needs neither paho nor pika: it gets as far as the broker (here: none)."""
    import subprocess
    import sys

    args = ["relay", "--to", url, "--replay", str(captures / f"{QUEUE}.raw")]
    run_relay = (f"import sys; sys.modules[{module!r}] = None; from eslkit.cli import main; "
                 f"sys.argv = ['eslkit', *{args!r}]; main()")
    done = subprocess.run([sys.executable, "-c", run_relay], capture_output=True, text=True, timeout=60)
    assert done.returncode == 13, done.stderr
    assert "Connection refused." in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "not installed" not in done.stderr


def test_the_readme_set_up_installs_the_brokers_relay_needs():
    from pathlib import Path

    setup = (Path(__file__).parents[1] / "scripts" / "setup").read_text()
    extras = [line for line in setup.splitlines() if line.startswith("extras=")]
    assert extras and all("mqtt" in line and "amqp" in line for line in extras), extras


# --- what relay says while it runs (issue 20) ---------------------------------------------


def test_relay_says_where_it_relays_before_the_summary(mosquitto, captures):
    cap = captures / f"{QUEUE}.raw"
    done = eslkit("relay", "--to", mosquitto.url, "--replay", cap, "-f", "CHANNEL_ANSWER",
                  "--client-id", "cli-start")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    start = f"eslkit relay: relaying CHANNEL_ANSWER events (and every agent's popup states) from replay of {cap.name} "
    assert lines[0].startswith(start), lines
    assert (f"to {mosquitto.url}: events to freeswitch/{{hostname}}/events/{{event}}/{{ext}}, popup states to "
            "freeswitch/{hostname}/agents/{ext}/popup, status to freeswitch/relay/cli-start/status (QoS 1)") in lines[0]
    assert lines[-1].startswith("eslkit relay: received 88 events")
    # the transcript ends with the recorder's own exit: no disconnect to report
    assert not any("disconnected" in line for line in lines), lines
    assert " in, " not in done.stderr  # the live line is for a terminal only


def test_relay_on_a_terminal_shows_a_live_status_line_then_the_summary(mosquitto, captures):
    from tests.test_popup_pty import Screen, spawn

    child = spawn("relay", "--to", mosquitto.url, "--replay", str(captures / f"{QUEUE}.raw"), "--speed", "0.2",
                  "--client-id", "cli-live")
    screen = Screen(child)
    try:
        screen.wait_for("eslkit relay: relaying every event")
        screen.wait_for("broker connected; switch connected")
        shown = screen.text.replace("\r", "\n").splitlines()
        status = re.compile(r"\d+ events? in, \d+\.\d/s; \d+ out, \d+\.\d/s; buffer \d+; "
                            r"broker connected; switch connected *")
        assert any(status.fullmatch(line) for line in shown), shown[-3:]
        child.sendintr()
        screen.until_eof()
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, screen.text[-800:]
    tail = screen.text.rstrip().splitlines()[-1]
    assert tail.strip().startswith("eslkit relay: received"), screen.text[-800:]
