"""`eslkit serve` over real sockets: the login, who sees what, CSRF, the brake on failed
logins, and the JSON API and event stream fed by the simulated switch."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Optional

import aiohttp
import pytest

from eslkit.calls import RECORD_KEYS
from tests.support.serve import CRM_TOKEN, PASSWORDS, SWITCH_PASSWORD, serving

BEARER = {"Authorization": f"Bearer {CRM_TOKEN}"}
ROUTES = ["/", "/agent/1001", "/api/me", "/api/agent/1001/calls", "/api/agent/1001/day", "/api/agent/1001/events"]


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def client(run_) -> aiohttp.ClientSession:
    # unsafe=True: aiohttp keeps no cookie for an IP address otherwise (browsers do).
    return aiohttp.ClientSession(run_.url, cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login(http: aiohttp.ClientSession, name: str, password: Optional[str] = None, *,
                origin: Optional[str] = None, **form) -> aiohttp.ClientResponse:
    async with http.get("/login") as page:
        csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text()).group(1)
    data = {"csrf": csrf, "name": name, "password": PASSWORDS.get(name, "") if password is None else password, **form}
    headers = {"Origin": origin} if origin else {}
    async with http.post("/login", data=data, allow_redirects=False, headers=headers) as response:
        await response.read()
        return response


async def events(http, path: str, until, headers=None, timeout: float = 20, then=None) -> list[tuple[str, dict]]:
    """Read Server-Sent Events from ``path`` until ``until(received)`` is true; ``then()``
    is called once the first message (the snapshot) is in: start the call there."""
    received: list[tuple[str, dict]] = []
    async with http.get(path, headers=headers or {}) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        name = None

        async def read() -> None:
            nonlocal name
            async for raw in response.content:
                line = raw.decode("ascii").rstrip("\n")  # the stream is ASCII only
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    received.append((name, json.loads(line[6:])))
                    if len(received) == 1 and then is not None:
                        then()
                    if until(received):
                        return

        await asyncio.wait_for(read(), timeout)
    return received


def legs(received, ext: str = "1001") -> list[tuple[str, Optional[str]]]:
    return [(data["state"], data["outcome"]) for name, data in received if name == "leg" and data["ext"] == ext]


async def queue_call(http, start, headers=None) -> list[tuple[str, dict]]:
    """1001's stream while the queue call rings, is answered and ends (``start()`` plays it
    once the snapshot is in)."""
    return await events(http, "/api/agent/1001/events", lambda r: ("ended", "answered") in legs(r),
                        headers=headers, then=start)


def test_without_a_login_every_page_and_stream_is_401():
    async def main():
        async with serving() as (_, srv), client(srv) as http:
            for path in ROUTES:
                async with http.get(path, allow_redirects=False) as response:
                    body = await response.text()
                    assert response.status == 401, path
                    if path.startswith("/api/"):
                        assert response.headers["WWW-Authenticate"].startswith("Bearer")
                        assert "Log in" in json.loads(body)["error"]
                    else:
                        assert 'action="/login"' in body  # the login form, where the page would be
            async with http.get("/api/agent/1001/calls", headers={"Authorization": "Bearer wrong-token"}) as response:
                assert response.status == 401
            async with http.get("/agent/1001", cookies={"eslkit_session": "forged.cookie"}) as response:
                assert response.status == 401
    run(main())


def test_an_agent_token_reads_its_own_extension_and_nothing_else():
    async def main():
        async with serving() as (sim, srv), client(srv) as http:
            got = await queue_call(http, lambda: sim.spawn(sim.play("queue")), BEARER)
            assert legs(got) == [("ringing", None), ("answered", None), ("ended", "answered")]
            async with http.get("/api/agent/1001/day", headers=BEARER) as response:
                day = (await response.json())["day"]
            assert [r["outcome"] for r in day] == ["answered"]
            for path in ("/agent/1002", "/api/agent/1002/calls", "/api/agent/1002/day", "/api/agent/1002/events"):
                async with http.get(path, headers=BEARER) as response:
                    assert response.status == 403, path
                    assert "1002" in await response.text()
            async with http.get("/api/me", headers=BEARER) as response:
                assert await response.json() == {"name": "crm", "role": "agent", "exts": ["1001"]}
    run(main())


def test_the_stream_carries_the_records_popup_json_writes():
    async def main():
        async with serving() as (sim, srv), client(srv) as http:
            got = await queue_call(http, lambda: sim.spawn(sim.play("queue")), BEARER)
            snapshot = got[0]
            assert snapshot[0] == "snapshot" and set(snapshot[1]) == {"now", "link", "calls", "day", "crm", "since"}
            assert snapshot[1]["link"]["connected"] is True
            records = [data for name, data in got if name == "leg"]
            # The card's timer: from the first ring, then from the answer (not from a record's time).
            assert [name for name, _ in got if name in ("since", "leg")] == ["since", "leg", "since", "leg", "leg"]
            ring, talk = [data for name, data in got if name == "since"]
            assert ring["leg_uuid"] == talk["leg_uuid"] == records[0]["leg_uuid"]
            assert talk["since"] - ring["since"] == pytest.approx(records[1]["ring_seconds"], abs=0.01)
            assert all(tuple(record) == RECORD_KEYS for record in records)
            assert {r["caller_number"] for r in records} == {"6208"}
            assert records[1]["ring_seconds"] == 3.0 and records[2]["talk_seconds"] == 5.0
            # 1002 lost the race: the agent on 1001 sees nothing of it.
            assert all(r["ext"] == "1001" for r in records)
    run(main())


def test_a_password_login_gives_a_safe_session_for_the_agents_own_page():
    async def main():
        async with serving() as (_, srv), client(srv) as http:
            response = await login(http, "alice")
            assert response.status == 303 and response.headers["Location"] == "/agent/1001"
            cookie = response.cookies["eslkit_session"]
            assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
            assert PASSWORDS["alice"] not in response.headers.get("Set-Cookie", "")
            async with http.get("/agent/1001") as page:
                html = await page.text()
                assert page.status == 200 and 'data-ext="1001"' in html
                assert page.headers["X-Frame-Options"] == "DENY"
                assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
                assert "script-src 'self'" in page.headers["Content-Security-Policy"]
            async with http.get("/agent/1002") as page:
                assert page.status == 403 and "alice may not see the calls of 1002" in await page.text()
            async with http.get("/api/agent/1002/events") as stream:
                assert stream.status == 403
            async with http.get("/", allow_redirects=False) as index:
                assert index.status == 303 and index.headers["Location"] == "/agent/1001"
    run(main())


def test_a_supervisor_sees_every_agent_and_only_the_agents_of_the_file():
    async def main():
        async with serving() as (sim, srv), client(srv) as http:
            assert (await login(http, "sam")).headers["Location"] == "/"
            async with http.get("/") as index:
                html = await index.text()
                assert 'href="/agent/1001"' in html and 'href="/agent/1002"' in html
            got = await events(http, "/api/agent/1002/events", lambda r: ("ended", "answered_elsewhere") in legs(r, "1002"),
                               then=lambda: sim.spawn(sim.play("queue")))
            assert legs(got, "1002") == [("ringing", None), ("ended", "answered_elsewhere")]
            async with http.get("/agent/9999") as page:
                assert page.status == 404
    run(main())


def test_wrong_passwords_unknown_names_and_a_missing_form_token_are_refused():
    async def main():
        async with serving() as (_, srv), client(srv) as http:
            assert (await login(http, "alice", "not-her-password")).status == 401
            assert (await login(http, "nobody", "whatever-it-is")).status == 401
            assert (await login(http, "crm", "")).status == 401  # a token user has no password
            async with http.post("/login", data={"name": "alice", "password": PASSWORDS["alice"]},
                                 allow_redirects=False) as response:
                assert response.status == 403  # no form token: a login forged by another site
            async with http.post("/login", data={"csrf": "ünïcødé", "name": "alice"}, allow_redirects=False) as response:
                assert response.status == 403
            other = await login(http, "alice", origin="http://evil.example")
            assert other.status == 403
            assert "eslkit_session" not in other.cookies
            token = await login(http, "", "", token=CRM_TOKEN)  # a token at the login page
            assert token.status == 303 and token.headers["Location"] == "/agent/1001"
    run(main())


def test_failed_logins_are_rate_limited():
    async def main():
        async with serving() as (_, srv), client(srv) as http:
            for _ in range(5):
                assert (await login(http, "alice", "wrong-password-x")).status == 401
            braked = await login(http, "alice")  # the right password, too late
            assert braked.status == 429 and int(braked.headers["Retry-After"]) > 0
            # another name from the same address is braked too
            assert (await login(http, "bob")).status == 429
    run(main())


def test_a_post_without_the_csrf_token_is_refused():
    async def main():
        async with serving() as (_, srv), client(srv) as http:
            await login(http, "alice")
            async with http.get("/agent/1001") as page:
                csrf = re.search(r'data-csrf="([^"]+)"', await page.text()).group(1)
            for data, headers in (({}, {}), ({"csrf": "forged"}, {}),
                                  ({"csrf": csrf}, {"Origin": "http://evil.example"})):
                async with http.post("/logout", data=data, headers=headers, allow_redirects=False) as response:
                    assert response.status == 403
                async with http.get("/api/me") as me:
                    assert me.status == 200  # still logged in
            copy = http.cookie_jar.filter_cookies(http._base_url)["eslkit_session"].value
            async with http.post("/logout", data={"csrf": csrf}, allow_redirects=False) as response:
                assert response.status == 303
            async with http.get("/api/me") as me:
                assert me.status == 401
            async with http.get("/api/me", cookies={"eslkit_session": copy}) as me:
                assert me.status == 401  # a copy of the cookie died with the session
    run(main())


def test_a_stream_that_reconnects_gets_the_call_in_progress():
    async def main():
        async with serving() as (sim, srv), client(srv) as http:
            await events(http, "/api/agent/1001/events", lambda r: ("ringing", None) in legs(r), headers=BEARER,
                         then=lambda: sim.spawn(sim.play("queue")))
            # the browser dropped the stream; on its return the snapshot has the call
            again = await events(http, "/api/agent/1001/events", lambda r: True, headers=BEARER)
            (name, snapshot), = again
            assert name == "snapshot"
            assert [c["state"] for c in snapshot["calls"]] in (["ringing"], ["answered"])
            async with http.get("/api/agent/1001/calls", headers=BEARER) as response:
                calls = (await response.json())["calls"]
            assert [c["leg_uuid"] for c in calls] == [c["leg_uuid"] for c in snapshot["calls"]]
    run(main())


def test_the_crm_link_comes_with_the_card():
    async def main():
        async with serving(open_url="https://crm.example/search?phone={caller_number}&n={caller_name}") as (sim, srv), \
                client(srv) as http:
            got = await events(http, "/api/agent/1001/events", lambda r: ("ringing", None) in legs(r), headers=BEARER,
                               then=lambda: sim.spawn(sim.play("queue")))
            links = [data for name, data in got if name == "crm"]
            ringing = [data for name, data in got if name == "leg"][0]
            assert links == [{"leg_uuid": ringing["leg_uuid"],
                              "url": "https://crm.example/search?phone=6208&n=Caller%206208"}]
    run(main())


def test_the_switch_password_never_reaches_a_page_or_a_stream():
    async def main():
        async with serving() as (sim, srv), client(srv) as http:
            await login(http, "sam")
            seen = []
            got = await queue_call(http, lambda: sim.spawn(sim.play("queue")))
            seen.append(json.dumps(got))
            for path in ("/", "/agent/1001", "/api/me", "/api/agent/1001/calls", "/api/agent/1001/day", "/login"):
                async with http.get(path) as response:
                    seen.append(await response.text())
            assert SWITCH_PASSWORD not in "".join(seen)
    run(main())


@pytest.mark.parametrize("path", ["/agent/<script>alert(1)</script>", "/api/agent/%3Cb%3E/calls"])
def test_a_hostile_path_is_shown_as_text(path):
    async def main():
        async with serving() as (_, srv), client(srv) as http:
            await login(http, "sam")
            async with http.get(path) as response:
                body = await response.text()
                assert response.status == 404
                assert "<script>" not in body and "<b>" not in body
    run(main())


def test_a_supervisors_page_is_mounted_in_one_line():
    """How another page joins serve (as /wallboard and /metrics do): the same login, supervisors only."""
    from aiohttp import web

    async def report(request, user):
        return web.Response(text=f"report for {user.name}")

    async def main():
        async with serving(mount=lambda site: site.page("/report", report, supervisor=True)) as (_, srv):
            async with client(srv) as anonymous, anonymous.get("/report") as response:
                assert response.status == 401
            async with client(srv) as http:
                await login(http, "alice")
                async with http.get("/report") as response:
                    assert response.status == 403 and "for supervisors" in await response.text()
            async with client(srv) as http:
                await login(http, "sam")
                async with http.get("/report") as response:
                    assert response.status == 200 and await response.text() == "report for sam"
    run(main())
