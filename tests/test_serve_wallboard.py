"""`eslkit serve`'s wallboard and /metrics over real sockets, fed by the simulated switch:
the JSON twin has the figures `wallboard --format json` writes, /metrics is read back by
Prometheus' own text parser, and only supervisors (a login or an API token) get either."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from prometheus_client.parser import text_string_to_metric_families

from eslkit.metrics import CONTENT_TYPE, METRIC_NAMES
from eslkit.web.users import User, Users, hash_token
from tests.support.serve import CRM_TOKEN, serving, users
from tests.support.sim import sim_in_thread
from tests.test_serve_api import client, login, run

PROMETHEUS_TOKEN = "prometheus-scrape-token-0123456789abcdef"
SCRAPER = {"Authorization": f"Bearer {PROMETHEUS_TOKEN}"}
QUEUE = {"queue": "2000@default", "kind": "callcenter"}


def people() -> Users:
    """The usual users, and a supervisor with an API token for Prometheus."""
    return Users([*users().by_name.values(), User("prometheus", "supervisor", (), hash_token(PROMETHEUS_TOKEN))])


async def until(http, path: str, condition, headers=None, timeout: float = 20.0) -> dict:
    """GET ``path`` (JSON) again until ``condition(data)`` holds; the data, or a failure showing it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        async with http.get(path, headers=headers or {}) as response:
            assert response.status == 200, await response.text()
            data = await response.json()
        if condition(data):
            return data
        if loop.time() > deadline:
            raise AssertionError(f"not seen within {timeout} s: {json.dumps(data)[:2000]}")
        await asyncio.sleep(0.05)


def queue(data: dict, name: str = "2000@default") -> dict:
    return next((q for q in data["queues"] if q["name"] == name), None)


def answered(count: int):
    return lambda data: queue(data) is not None and queue(data)["answered"] == count and queue(data)["waiting"] == 0 \
        and all(a["state"] != "talking" for a in data["agents"])


def test_the_json_twin_has_the_wallboards_figures():
    """Two callers in mod_callcenter's queue, both answered: the twin says what `eslkit
    wallboard --format json` says of the same call, plus the link, the thresholds and notes."""
    async def main():
        async with serving(people(), scenario="two-callers", speed=None) as (sim, srv), client(srv) as http:
            await login(http, "sam")
            sim.spawn(sim.play())
            data = await until(http, "/wallboard.json", answered(2))
            q = queue(data)
            assert (q["offered"], q["answered"], q["abandoned"], q["missed"], q["kind"]) == (2, 2, 0, 0, "callcenter")
            assert q["service_level"] == 1.0 and q["service_level_seconds"] == 20.0
            agents = {a["name"]: a for a in data["agents"]}
            assert {n: (a["ext"], a["answered"]) for n, a in agents.items()} == {
                "1001@default": ("1001", 1), "1002@default": ("1002", 1)}
            assert data["calls"]["answered"] == 2 and data["calls"]["waiting"] == 0
            assert data["link"]["connected"] and data["link"]["text"].startswith("connected to 127.0.0.1:")
            assert (data["warn_wait"], data["target"], data["notes"]) == (60.0, 0.8, [])
            assert {"time", "day_start", "since"} <= set(data)
            # ?queue= narrows, as wallboard --queue does
            async with http.get("/wallboard.json?queue=nope") as response:
                narrowed = await response.json()
            assert narrowed["queues"] == [] and narrowed["agents"] == []
    run(main())


def test_only_supervisors_get_the_wallboard_and_the_metrics():
    async def main():
        async with serving(people()) as (_, srv):
            for path in ("/wallboard", "/wallboard.json", "/metrics"):
                async with client(srv) as anonymous, anonymous.get(path) as response:
                    assert response.status == 401, path
                    if path != "/wallboard":
                        assert response.headers["WWW-Authenticate"].startswith("Bearer")
                async with client(srv) as http:
                    await login(http, "alice")
                    async with http.get(path) as response:
                        assert response.status == 403 and "for supervisors" in await response.text(), path
                async with client(srv) as crm, crm.get(path, headers={"Authorization": f"Bearer {CRM_TOKEN}"}) \
                        as response:
                    assert response.status == 403, path  # an agent's token: its own calls only
                async with client(srv) as http:
                    await login(http, "sam")
                    async with http.get(path) as response:
                        assert response.status == 200, path
            async with client(srv) as http, http.get("/", allow_redirects=False) as response:
                assert response.status == 401
            async with client(srv) as http:
                await login(http, "sam")
                async with http.get("/") as response:
                    assert 'href="/wallboard"' in await response.text()  # a supervisor's start page links it
    run(main())


def test_prometheus_scrapes_with_a_supervisors_token():
    """/metrics read by prometheus_client's own parser, as Prometheus reads it: every
    documented name, the figures of the call, a Content-Type Prometheus accepts."""
    async def main():
        async with serving(people(), scenario="two-callers", speed=None) as (sim, srv), client(srv) as scraper:
            sim.spawn(sim.play())
            async with client(srv) as http:
                await login(http, "sam")
                await until(http, "/wallboard.json", answered(2))
            async with scraper.get("/metrics", headers=SCRAPER) as response:
                assert response.status == 200
                # Prometheus' text format (what prometheus_client's own handler answers)
                assert response.headers["Content-Type"] == CONTENT_TYPE and CONTENT_TYPE.startswith("text/plain;")
                assert response.headers["Cache-Control"] == "no-store"
                text = await response.text()
        return {family.name: family for family in text_string_to_metric_families(text)}

    families = run(main())
    assert set(families) == set(METRIC_NAMES)

    def value(name: str, sample: str, **labels) -> float:
        (got,) = [s.value for s in families[name].samples if s.name == sample and
                  all(s.labels.get(k) == v for k, v in labels.items())]
        return got

    assert families["eslkit_queue_calls_answered"].type == "counter"
    assert value("eslkit_queue_calls_answered", "eslkit_queue_calls_answered_total", **QUEUE) == 2.0
    assert value("eslkit_queue_calls_today", "eslkit_queue_calls_today", outcome="offered", **QUEUE) == 2.0
    assert value("eslkit_queue_callers_waiting", "eslkit_queue_callers_waiting", **QUEUE) == 0.0
    assert value("eslkit_queue_wait_seconds", "eslkit_queue_wait_seconds_count", **QUEUE) == 2.0
    assert value("eslkit_agent_calls_answered_today", "eslkit_agent_calls_answered_today",
                 agent="1001@default", ext="1001") == 1.0
    assert value("eslkit_agent_state", "eslkit_agent_state", agent="1002@default", state="available") == 1.0
    assert value("eslkit_calls_today", "eslkit_calls_today", outcome="answered") == 2.0


def test_a_caller_waiting_shows_at_once_and_counts_as_waiting():
    """A caller already waiting in the queue when serve starts is on the wallboard at once
    (serve's wallboard asks the switch on connect, as `eslkit wallboard` does)."""
    from tests.test_stats_resync import _two_callers

    async def main(port: int):
        from eslkit.app.serve import ServeRun
        from eslkit.app.popup import PopupEngine
        from eslkit.calls import POPUP_EVENTS
        from eslkit.config import ConnectionSettings
        from eslkit.sources.esl import EslSource

        source = EslSource(ConnectionSettings(host="127.0.0.1", port=port, password="ClueCon", timeout=5.0),
                           names=POPUP_EVENTS, reconnect=True)
        serve = ServeRun(PopupEngine(source, ["1001", "1002"]), people(), listen=("127.0.0.1", 0))
        await source.open()
        task = asyncio.ensure_future(serve.run())
        try:
            while serve.url is None:
                await asyncio.sleep(0.01)
            async with client(serve) as http:
                await login(http, "sam")
                data = await until(http, "/wallboard.json", lambda d: queue(d) is not None and queue(d)["waiting"])
        finally:
            serve.stop()
            await asyncio.wait_for(task, 10)
            await source.close()
        return data

    with sim_in_thread(speed=None) as sim:
        first, _ = _two_callers(sim.server)
        sim.run(first)  # 6208 talks to 1001, 6209 waits: before serve connects
        data = run(main(sim.port))
    q = queue(data)
    assert (q["waiting"], [c["number"] for c in q["callers"]]) == (1, ["6209"])
    assert {a["name"]: a["state"] for a in data["agents"]}["1001@default"] == "talking"


def test_a_scraper_with_a_token_from_eslkit_passwd_and_serves_statistics_options(tmp_path):
    """What docs/serve.md tells an admin to do: `eslkit passwd FILE prometheus --supervisor
    --token`, `eslkit serve … --service-level 30`; Prometheus' request (the token as a
    bearer) is answered with what its parser reads, the JSON twin with serve's thresholds."""
    import urllib.error
    import urllib.request

    from tests.support.cli import eslkit
    from tests.support.serve import serve_process, write_users
    from tests.test_serve_browser import start_call

    users_file = write_users(tmp_path / "users.txt")
    made = eslkit("passwd", users_file, "prometheus", "--supervisor", "--token")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token and token not in users_file.read_text()  # only its hash is kept

    def get(url: str, bearer: str) -> tuple:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {bearer}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers["Content-Type"], response.read().decode()
        except urllib.error.HTTPError as refused:
            return refused.code, refused.headers["Content-Type"], refused.read().decode()

    with sim_in_thread(scenario="two-callers", autostart=False, speed=None) as sim, \
            serve_process(users_file, sim.port, "--service-level", "30", "--warn-wait", "45", "--target", "90") as base:
        assert get(f"{base}/metrics", "not-the-token")[0] == 401
        start_call(sim)
        async def answered_twice() -> dict:
            async with aiohttp.ClientSession(base) as http:
                return await until(http, "/wallboard.json", answered(2), headers={"Authorization": f"Bearer {token}"})
        data = run(answered_twice())
        status, content_type, text = get(f"{base}/metrics", token)
    assert (data["warn_wait"], data["target"], queue(data)["service_level_seconds"]) == (45.0, 0.9, 30.0)
    assert status == 200 and content_type == CONTENT_TYPE
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert set(families) == set(METRIC_NAMES)
    (answered_total,) = [s.value for s in families["eslkit_queue_calls_answered"].samples
                         if s.name.endswith("_total") and s.labels == QUEUE]
    assert answered_total == 2.0
