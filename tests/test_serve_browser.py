"""`eslkit serve` in a real Chromium: an agent logs in, watches a call ring, be answered and
end on the simulated switch; another agent's page is refused; a hostile caller name is text;
the page comes back by itself when serve restarts.

Set ESLKIT_SCREENSHOTS=DIR to keep screenshots of the agent page (docs/serve.md uses them).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from eslkit.sim.data import read_data
from tests.support.browser import chromium
from tests.support.serve import PASSWORDS, serve_process, write_users
from tests.support.sim import free_port, sim_in_thread

pytestmark = pytest.mark.slow
HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">\u202eevil\u202c & "q"'
SHOWN = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2"><U+202E>evil<U+202C> & "q"'
SHOTS = os.environ.get("ESLKIT_SCREENSHOTS")


def wait(browser, condition, timeout: float = 20.0, what: str = ""):
    """Poll the page until ``condition(browser)`` is truthy; its value, or a failure naming ``what``."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition(browser)
        except (NoSuchElementException, StaleElementReferenceException):  # the page is still loading
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not seen within {timeout} s: {what}\n{browser.page_source[-3000:]}")


def card(browser, state: str):
    """The text of the first card in ``state`` (ringing, answered, ended), or None."""
    return browser.execute_script(
        "const c = document.querySelector('#cards .card[data-state=\"' + arguments[0] + '\"]');"
        "return c && {name: c.querySelector('.name').textContent, number: c.querySelector('.number').textContent,"
        " state: c.querySelector('.state').textContent, timer: c.querySelector('.timer').textContent,"
        " outcome: c.querySelector('.outcome').textContent, contact: c.querySelector('.contact').textContent,"
        " queue: c.querySelector('.queue').textContent, badge: !c.querySelector('.badge').hidden,"
        " crm: c.querySelector('.crm').hidden ? null :"
        " c.querySelector('.crm').getAttribute('href'), text: c.innerText, html: c.innerHTML};", state)


def log_in(browser, base: str, name: str, path: str = "/") -> None:
    from selenium.webdriver.common.by import By

    browser.get(base + path)
    browser.find_element(By.NAME, "name").send_keys(name)
    browser.find_element(By.NAME, "password").send_keys(PASSWORDS[name])
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def no_script_errors(browser) -> None:
    errors = [entry["message"] for entry in browser.get_log("browser") if entry["source"] == "javascript"]
    assert not errors, errors


def shot(browser, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(SHOTS) / f"{name}.png"))


def start_call(sim, scenario=None) -> None:
    """One call of the scenario the simulator was started with (or another one, by name)."""
    sim.call_soon(lambda: sim.server.spawn(sim.server.play(scenario)))


def test_an_agent_watches_a_call_ring_be_answered_and_end(tmp_path):
    users = write_users(tmp_path / "users.txt")
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("number,name,company\n6208,Ada Lovelace,Analytical Engines\n")
    with sim_in_thread(scenario="callcenter", autostart=False) as sim, \
            serve_process(users, sim.port, "--contacts", str(contacts),
                          "--open-url", "https://crm.example/search?phone={caller_number}") as base, \
            chromium(notifications=True) as browser:
        log_in(browser, base, "alice")
        wait(browser, lambda b: b.current_url.endswith("/agent/1001"), what="alice's page")
        wait(browser, lambda b: "connected to" in b.find_element("id", "link").text, what="the link")
        assert "Waiting for calls" in browser.find_element("id", "cards").text
        # a spy on the real Notification API: the page asks for one when the phone rings
        browser.execute_script(
            "window.notified = []; const Real = window.Notification;"
            "window.Notification = new Proxy(Real, {construct(t, args) { window.notified.push(args); return new Real(...args); }});")
        start_call(sim)
        ringing = wait(browser, lambda b: card(b, "ringing"), what="the ringing card")
        assert ringing["name"] == "Caller 6208" and ringing["number"] == "6208"
        assert ringing["contact"] == "Ada Lovelace" and ringing["queue"] == "2000@default"
        assert ringing["crm"] == "https://crm.example/search?phone=6208"
        assert browser.title.startswith("☎ Ringing · 1001")
        notified = browser.execute_script("return window.notified")
        assert notified and notified[0][0] == "Call for 1001: Caller 6208"
        shot(browser, "serve-ringing")
        answered = wait(browser, lambda b: card(b, "answered"), what="the answered card")
        assert answered["state"] == "Connected"
        first = answered["timer"]
        later = wait(browser, lambda b: (card(b, "answered") or {}).get("timer", first) != first and card(b, "answered"),
                     timeout=5, what="the talk timer moving")
        assert later["timer"] in ("0:01", "0:02", "0:03") and first in ("0:00", "0:01", "0:02")
        shot(browser, "serve-answered")
        ended = wait(browser, lambda b: card(b, "ended"), what="the ended card")
        assert ended["state"] == "Ended" and ended["outcome"].startswith("talked 0:06 · ")
        row = wait(browser, lambda b: b.execute_script(
            "const r = document.querySelector('#day tbody tr'); return r && r.innerText;"), what="the day's call")
        assert "6208" in row and "Answered" in row and "0:06" in row
        shot(browser, "serve-ended")
        no_script_errors(browser)


def seconds(timer: str) -> int:
    """A card's timer ("1:05") in seconds."""
    minutes, secs = timer.split(":")
    return int(minutes) * 60 + int(secs)


def press(browser, state: str, action: str) -> None:
    """Click a button of the first card in ``state``."""
    browser.find_element("css selector", f'#cards .card[data-state="{state}"] button[data-action="{action}"]').click()


def post(browser, path: str, csrf: bool = True) -> int:
    """A control POST from the page's own script: its status."""
    return browser.execute_async_script(
        "const done = arguments[2]; const headers = {'Content-Type': 'application/json'};"
        "if (arguments[1]) headers['X-CSRF-Token'] = document.getElementById('agent').dataset.csrf;"
        "fetch(arguments[0], {method: 'POST', headers: headers, body: '{}'}).then(r => done(r.status));",
        path, csrf)


def test_an_agent_dials_holds_unholds_and_hangs_up_from_the_page(tmp_path):
    """serve --control in Chromium: the dial field places a call (1001's phone rings, then
    answers), Hold shows the badge, Unhold takes it away, Hang up ends the card; a POST
    without the page's CSRF token, or for 1002's calls, is refused."""
    from selenium.webdriver.common.by import By

    users = write_users(tmp_path / "users.txt")
    # No scenario: only the calls the page places. Phones answer after 0.6 s instead of 3 s.
    with sim_in_thread(speed=5.0) as sim, serve_process(users, sim.port, "--control") as base, \
            chromium() as browser:
        log_in(browser, base, "alice")
        wait(browser, lambda b: "connected to" in b.find_element("id", "link").text, what="the link")
        browser.find_element(By.CSS_SELECTOR, "#dial input").send_keys("6208")
        browser.find_element(By.CSS_SELECTOR, "#dial button").click()
        ringing = wait(browser, lambda b: card(b, "ringing"), what="1001's phone ringing")
        assert ringing["name"].startswith("To")
        result = browser.find_element("id", "control-result")
        wait(browser, lambda b: "dialling 6208" in result.text, what="the dial's result")
        answered = wait(browser, lambda b: card(b, "answered"), what="the answered card")
        assert answered["state"] == "Connected" and not answered["badge"]
        wait(browser, lambda b: card(b, "answered")["number"] == "6208", what="the far party's number")
        wait(browser, lambda b: seconds(card(b, "answered")["timer"]) >= 2, what="the talk timer at 0:02")

        press(browser, "answered", "hold")
        held = wait(browser, lambda b: (card(b, "answered") or {}).get("badge") and card(b, "answered"),
                    what="the on-hold badge")
        assert held["state"] == "On hold"
        assert seconds(held["timer"]) >= 2  # the talk timer runs on through the hold
        wait(browser, lambda b: result.text == "1001: call to 6208 on hold", what="the hold's result")
        shot(browser, "serve-control")
        press(browser, "answered", "unhold")
        back = wait(browser, lambda b: card(b, "answered") and not card(b, "answered")["badge"] and card(b, "answered"),
                    what="the badge gone")
        assert back["state"] == "Connected"

        # What is typed in the transfer field survives the card's updates (its timer ticks).
        field = browser.find_element(By.CSS_SELECTOR, '#cards .card[data-state="answered"] .transfer input')
        field.send_keys("10")
        timer = card(browser, "answered")["timer"]
        wait(browser, lambda b: card(b, "answered")["timer"] != timer, what="the timer moving")
        assert field.get_attribute("value") == "10"
        assert browser.switch_to.active_element == field

        assert post(browser, "/api/agent/1001/calls/hold", csrf=False) == 403
        assert post(browser, "/api/agent/1002/calls/hangup") == 403
        assert post(browser, "/api/agent/1001/calls/answer") == 404
        assert card(browser, "answered") and not card(browser, "answered")["badge"]  # none of them did a thing

        press(browser, "answered", "hangup")
        ended = wait(browser, lambda b: card(b, "ended"), what="the ended card")
        assert ended["state"] == "Ended" and ended["outcome"].startswith("talked ")
        wait(browser, lambda b: result.text == "1001: call to 6208 hung up", what="the hang-up's result")
        assert not browser.find_element(By.CSS_SELECTOR, '#cards .card[data-state="ended"] .controls').is_displayed()
        no_script_errors(browser)


def test_another_agents_page_and_stream_are_refused(tmp_path):
    users = write_users(tmp_path / "users.txt")
    with sim_in_thread(scenario="queue", autostart=False) as sim, serve_process(users, sim.port) as base, \
            chromium() as browser:
        log_in(browser, base, "alice", "/agent/1002")  # the login page comes where 1002's page would
        wait(browser, lambda b: "may not see" in b.find_element("tag name", "main").text, what="the refusal")
        assert "alice may not see the calls of 1002" in browser.find_element("tag name", "main").text
        assert not browser.find_elements("css selector", "#cards")
        status = browser.execute_async_script(
            "const done = arguments[0]; fetch('/api/agent/1002/events').then(r => done(r.status));")
        assert status == 403
        status = browser.execute_async_script(
            "const done = arguments[0]; fetch('/api/agent/1001/calls').then(r => done(r.status));")
        assert status == 200
        shot(browser, "serve-refused")


def test_a_hostile_caller_name_is_shown_as_text(tmp_path):
    scenario = read_data("queue")
    for event in scenario["events"]:
        event["headers"] = [[k, v.replace("Caller ~~CALLER~~", HOSTILE) if isinstance(v, str) else v]
                            for k, v in event["headers"]]
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(scenario))
    users = write_users(tmp_path / "users.txt")
    with sim_in_thread(scenario=str(path), autostart=False) as sim, serve_process(users, sim.port) as base, \
            chromium() as browser:
        log_in(browser, base, "alice")
        wait(browser, lambda b: "connected to" in b.find_element("id", "link").text, what="the link")
        start_call(sim)
        ringing = wait(browser, lambda b: card(b, "ringing"), what="the ringing card")
        assert ringing["name"] == SHOWN
        assert "<script>" not in ringing["html"] and "<img" not in ringing["html"]
        assert browser.execute_script("return window.pwned === undefined && !document.querySelector('#cards img')")
        ended = wait(browser, lambda b: b.execute_script(
            "const r = document.querySelector('#day tbody tr'); return r && r.innerText;"), what="the day's call")
        assert SHOWN in ended
        assert browser.execute_script("return window.pwned === undefined")
        shot(browser, "serve-hostile")


def test_the_page_comes_back_by_itself_when_serve_restarts(tmp_path):
    users = write_users(tmp_path / "users.txt")
    port = free_port()
    key = {"ESLKIT_SESSION_KEY": "a key that outlives one run of serve"}
    with sim_in_thread(scenario="queue", autostart=False) as sim, chromium() as browser:
        with serve_process(users, sim.port, port=port, env=key) as base:
            log_in(browser, base, "alice")
            wait(browser, lambda b: "connected to" in b.find_element("id", "link").text, what="the link")
        wait(browser, lambda b: "reconnecting" in b.find_element("id", "link").text, what="the lost link")
        start_call(sim)  # rings while serve is down
        with serve_process(users, sim.port, port=port, env=key):
            ringing = wait(browser, lambda b: card(b, "ringing") or card(b, "answered"), what="the call after the restart")
            assert ringing["name"] == "Caller 6208"
            assert "connected to" in browser.find_element("id", "link").text


@pytest.mark.parametrize("control", [False, True], ids=["watch", "control"])
def test_demo_web_opens_agent_1001s_live_page(tmp_path, control):
    """`eslkit demo --web` as a new user runs it: the browser it starts (here a script that
    notes the address, then Chromium opens it) lands logged in on 1001's page, and calls come;
    with --control (and --scenario idle) the page's dial field places one and Hang up ends it."""
    import signal
    import subprocess

    from selenium.webdriver.common.by import By

    from tests.support.sim import ESLKIT

    opened = tmp_path / "opened"
    opener = tmp_path / "browser.sh"
    opener.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    opener.chmod(0o755)
    options = ["--control", "--scenario", "idle"] if control else []
    proc = subprocess.Popen([str(ESLKIT), "demo", "--web", "--speed", "2", *options],
                            env={**os.environ, "BROWSER": str(opener)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not (opened.exists() and opened.read_text().strip()) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        link = opened.read_text().strip()
        assert "/login?next=/agent/1001#token=" in link
        with chromium() as browser:
            browser.get(link)
            wait(browser, lambda b: b.current_url.endswith("/agent/1001"), what="1001's page")
            assert "#token" not in browser.current_url
            if control:
                wait(browser, lambda b: "connected to" in b.find_element("id", "link").text, what="the link")
                browser.find_element(By.CSS_SELECTOR, "#dial input").send_keys("6208")
                browser.find_element(By.CSS_SELECTOR, "#dial button").click()
            wait(browser, lambda b: card(b, "ringing") or card(b, "answered"), timeout=30, what="a call on 1001")
            if control:
                wait(browser, lambda b: card(b, "answered"), what="1001's phone answering")
                press(browser, "answered", "hangup")
                wait(browser, lambda b: card(b, "ended"), what="the ended card")
            else:
                shot(browser, "serve-demo")
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "agent 1001's page is http://127.0.0.1:" in err
