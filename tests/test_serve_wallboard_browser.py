"""The supervisors' wallboard of `eslkit serve` in a real Chromium (the setup of the agent
page's tests): a supervisor logs in and watches two callers wait in mod_callcenter's
queue — the long wait in the alert colour — and be answered; a hostile queue name is
text; an agent is refused the page.

ESLKIT_SCREENSHOTS=DIR keeps a screenshot of the wallboard (docs/serve.md uses it).
"""

from __future__ import annotations

import pytest

from eslkit.event import Event
from tests.support.browser import chromium
from tests.support.serve import serve_process, write_users
from tests.support.sim import sim_in_thread
from tests.test_serve_browser import HOSTILE, SHOWN, log_in, shot, start_call, wait

pytestmark = pytest.mark.slow


def queue_row(browser, name: str):
    """The queue's row as {column: text, ...} with the alert cells named, or None."""
    return browser.execute_script(
        "const heads = [...document.querySelectorAll('#queues thead th')].map(th => th.textContent);"
        "const row = [...document.querySelectorAll('#queues tbody tr')].find(tr => tr.dataset.queue === arguments[0]);"
        "if (!row) return null;"
        "const cells = [...row.children]; const out = {alerts: [], html: row.innerHTML};"
        "cells.forEach((td, i) => { out[heads[i]] = td.textContent; if (td.classList.contains('alert'))"
        " out.alerts.push(heads[i]); });"
        "return out;", name)


def agent_rows(browser) -> dict:
    return browser.execute_script(
        "const out = {}; for (const tr of document.querySelectorAll('#agents tbody tr'))"
        " out[tr.dataset.agent] = [...tr.children].map(td => td.textContent); return out;")


def test_a_supervisor_watches_the_queue_live(tmp_path):
    users = write_users(tmp_path / "users.txt")
    with sim_in_thread(scenario="two-callers", autostart=False) as sim, \
            serve_process(users, sim.port, "--warn-wait", "1", "--target", "90") as base, chromium(width=1400) as browser:
        log_in(browser, base, "sam", "/wallboard")  # the login form comes where the wallboard would
        wait(browser, lambda b: b.current_url.endswith("/wallboard"), what="the wallboard after the login")
        wait(browser, lambda b: "connected to" in b.find_element("id", "link").text, what="the link")
        assert browser.find_element("id", "queues-empty").is_displayed()
        start_call(sim)
        waiting = wait(browser, lambda b: (queue_row(b, "2000@default") or {}).get("Waiting") == "2"
                       and queue_row(b, "2000@default"), what="two callers waiting")
        assert waiting["Kind"] == "callcenter" and waiting["Offered"] == "2"
        # --warn-wait 1: a caller waiting longer is an alert, in the alert colour
        alert = wait(browser, lambda b: "Longest" in (queue_row(b, "2000@default") or {}).get("alerts", [])
                     and queue_row(b, "2000@default"), what="the long wait as an alert")
        assert alert["Longest"] not in ("–", "0:00", "0:01")
        color = browser.execute_script(
            "return getComputedStyle(document.querySelector('#queues tbody td.alert')).backgroundColor")
        assert color == "rgb(185, 28, 28)"  # --missed
        talking = wait(browser, lambda b: any(cells[1] == "Talking" for cells in agent_rows(b).values())
                       and agent_rows(b), what="an agent talking")
        assert "1001@default" in talking
        shot(browser, "serve-wallboard")
        done = wait(browser, lambda b: (queue_row(b, "2000@default") or {}).get("Answered") == "2"
                    and (queue_row(b, "2000@default") or {}).get("Waiting") == "0" and queue_row(b, "2000@default"),
                    timeout=40, what="both callers answered")
        assert done["Abandoned"] == "0" and done["Service"] == "100% <20s"  # both within 20 s: over --target 90
        agents = wait(browser, lambda b: all(cells[1] == "Available" for cells in agent_rows(b).values())
                      and agent_rows(b), timeout=30, what="both agents free again")
        assert {name: cells[3] for name, cells in agents.items()} == {"1001@default": "1", "1002@default": "1"}
        assert agents["1001@default"][0] == "1001@default 1001"  # the agent and its phone: one row
        calls = browser.find_element("id", "calls").text
        assert "2 answered" in calls and "0 waiting" in calls


def test_a_hostile_queue_name_is_text_and_agents_are_refused(tmp_path):
    users = write_users(tmp_path / "users.txt")
    with sim_in_thread(scenario="queue", autostart=False) as sim, serve_process(users, sim.port) as base:
        with chromium() as browser:
            log_in(browser, base, "sam", "/wallboard")
            wait(browser, lambda b: "connected to" in b.find_element("id", "link").text, what="the link")
            hostile = Event([("Event-Name", "CUSTOM"), ("Event-Subclass", "callcenter::info"),
                             ("CC-Action", "member-queue-start"), ("CC-Queue", HOSTILE),
                             ("CC-Member-UUID", "m-1"), ("CC-Member-Session-UUID", "s-1"),
                             ("CC-Member-CID-Number", "6208"), ("CC-Member-CID-Name", HOSTILE)])
            sim.call_soon(lambda: sim.server.fire(hostile))
            row = wait(browser, lambda b: queue_row(b, HOSTILE), what="the hostile queue's row")
            assert row["Queue"] == SHOWN and row["Waiting"] == "1"
            assert "<script>" not in row["html"] and "<img" not in row["html"]
            assert browser.execute_script("return window.pwned === undefined && !document.querySelector('main img')")
            # 900 px wide: the queue table scrolls in its section; the page itself does not
            assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        with chromium() as browser:
            log_in(browser, base, "alice", "/wallboard")
            wait(browser, lambda b: "for supervisors" in b.find_element("tag name", "main").text, what="the refusal")
            assert not browser.find_elements("css selector", "#queues")
            status = browser.execute_async_script(
                "const done = arguments[0]; fetch('/wallboard.json').then(r => done(r.status));")
            assert status == 403
