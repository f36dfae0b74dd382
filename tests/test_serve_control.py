"""`eslkit serve --control` over real sockets: the buttons' POSTs go through eslkit.control to
the simulated switch, which obeys them as a real one would; who may press them, the CSRF
token they need, and what is refused before anything reaches the switch (the switch's own
API events say what it was asked)."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from eslkit.client import Connection
from eslkit.event import Event
from tests.support.serve import SWITCH_PASSWORD, serving
from tests.test_serve_api import BEARER, client, login, run

CONTROL = {"originate", "uuid_kill", "uuid_hold", "uuid_transfer", "uuid_phone_event"}


class Switchboard:
    """What the switch was asked (its API events) and the legs it bridged (CHANNEL_BRIDGE),
    and the popup records of the agents' streams, all read in the test's loop."""

    def __init__(self, sim):
        self.sim = sim
        self.events: list[Event] = []
        self.conn = Connection("127.0.0.1", sim.port, SWITCH_PASSWORD, timeout=5.0)
        self._task = None

    async def __aenter__(self) -> "Switchboard":
        await self.conn.connect()
        await self.conn.subscribe(["API", "CHANNEL_BRIDGE"])
        self._task = asyncio.ensure_future(self._read())
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        await self.conn.close()

    async def _read(self) -> None:
        async for item in self.conn.events():
            if isinstance(item, Event):
                self.events.append(item)

    def acting(self) -> list[str]:
        """The call-control commands the switch got (not show channels, nor its dialplan's own)."""
        return [f"{e.get('API-Command')} {e.get('API-Command-Argument') or ''}".strip()
                for e in self.events if e.name == "API" and e.get("API-Command") in CONTROL]

    async def bridged(self, count: int = 1) -> None:
        await until(lambda: len([e for e in self.events if e.name == "CHANNEL_BRIDGE"]) >= count, "bridged")


async def until(predicate, what: str, timeout: float = 15.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"not within {timeout} s: {what}")


class Agent:
    """One logged-in browser session: its page's CSRF token, its buttons, its stream."""

    def __init__(self, http, ext: str):
        self.http = http
        self.ext = ext
        self.csrf = ""
        self.records: list[dict] = []
        self.since: list[dict] = []  # when each card's timer starts
        self._task = None

    async def open(self) -> "Agent":
        async with self.http.get(f"/agent/{self.ext}") as page:
            assert page.status == 200
            self.csrf = re.search(r'data-csrf="([^"]+)"', await page.text()).group(1)
        ready = asyncio.Event()
        self._task = asyncio.ensure_future(self._stream(ready))
        await asyncio.wait_for(ready.wait(), 10)
        return self

    async def _stream(self, ready: asyncio.Event) -> None:
        async with self.http.get(f"/api/agent/{self.ext}/events") as response:
            async for raw in response.content:
                line = raw.decode("ascii").rstrip("\n")
                if line.startswith("event: snapshot"):
                    ready.set()
                elif line.startswith("data: {\"time\""):
                    self.records.append(json.loads(line[6:]))
                elif line.startswith("data: {\"leg_uuid\"") and '"since"' in line:
                    self.since.append(json.loads(line[6:]))

    def close(self) -> None:
        self._task.cancel()

    async def press(self, action: str, ext: str = None, headers=None, **body) -> tuple[int, dict]:
        headers = {"X-CSRF-Token": self.csrf} if headers is None else headers
        async with self.http.post(f"/api/agent/{ext or self.ext}/calls/{action}", json=body, headers=headers) as r:
            return r.status, await r.json()

    async def seen(self, **want) -> dict:
        return await until(lambda: next((r for r in reversed(self.records)
                                         if all(r.get(k) == v for k, v in want.items())), None), f"a record {want}")


async def agent(http, name: str, ext: str) -> Agent:
    assert (await login(http, name)).status == 303
    return await Agent(http, ext).open()


def control_serving(**kw):
    # No scenario: only what the buttons start. Phones answer after 0.6 s instead of the captured 3 s.
    return serving(scenario=None, speed=5.0, control=True, **kw)


def test_dial_hold_unhold_and_hang_up_from_the_page(tmp_path):
    audit = tmp_path / "audit.jsonl"

    async def main():
        async with control_serving(audit=audit) as (sim, srv), Switchboard(sim) as switch, client(srv) as http:
            alice = await agent(http, "alice", "1001")
            status, dialled = await alice.press("dial", target="6208")
            assert (status, dialled["ok"]) == (200, True), dialled
            assert dialled["text"] == "1001: dialling 6208 — 1001's phone is ringing; answer it to place the call"
            ringing = await alice.seen(state="ringing", direction="outgoing")
            uuid = ringing["leg_uuid"]
            assert dialled["uuid"] == uuid
            await alice.seen(state="answered", leg_uuid=uuid)
            await switch.bridged()

            status, held = await alice.press("hold", uuid=uuid)
            assert (status, held["text"]) == (200, "1001: call to 6208 on hold"), held
            assert held["command"] == f"uuid_hold {uuid}"
            await alice.seen(leg_uuid=uuid, on_hold=True)
            status, back = await alice.press("unhold", uuid=uuid)
            assert (status, back["text"]) == (200, "1001: call to 6208 taken off hold"), back
            await alice.seen(leg_uuid=uuid, on_hold=False, state="answered")
            status, gone = await alice.press("hangup", uuid=uuid)
            assert (status, gone["text"]) == (200, "1001: call to 6208 hung up"), gone
            ended = await alice.seen(leg_uuid=uuid, state="ended")
            assert ended["outcome"] == "answered"
            # the talk timer ran on through the hold: it started at the ring, then at the answer only
            assert len([s for s in alice.since if s["leg_uuid"] == uuid]) == 2
            alice.close()
            assert [c.split()[0] for c in switch.acting()] == ["originate", "uuid_hold", "uuid_hold", "uuid_kill"]
        lines = [json.loads(line) for line in audit.read_text().splitlines()]
        assert [(e["action"], e["result"], e["via"], e["client_id"]) for e in lines] == [
            ("dial", "ok", "web", "alice"), ("hold", "ok", "web", "alice"), ("unhold", "ok", "web", "alice"),
            ("hangup", "ok", "web", "alice")]
    run(main())


def test_transfer_hands_the_caller_to_another_agent():
    async def main():
        async with control_serving() as (sim, srv), Switchboard(sim) as switch, \
                client(srv) as alice_http, client(srv) as bob_http:
            alice = await agent(alice_http, "alice", "1001")
            bob = await agent(bob_http, "bob", "1002")
            assert (await alice.press("dial", target="6208"))[0] == 200
            uuid = (await alice.seen(state="answered", direction="outgoing"))["leg_uuid"]
            await switch.bridged()
            status, moved = await alice.press("transfer", uuid=uuid, target="1002")
            assert (status, moved["text"]) == (200, "1001: call to 6208 transferred to 1002"), moved
            await alice.seen(leg_uuid=uuid, state="ended")
            ringing = await bob.seen(state="ringing")
            assert (ringing["caller_number"], ringing["transferred_from"]) == ("6208", "1001")
            answered = await bob.seen(state="answered", caller_number="6208")
            # bob hangs up his own call from his page; alice cannot touch it
            status, refused = await alice.press("hangup", uuid=answered["leg_uuid"])
            assert (status, refused["error"]) == (403, "not_allowed"), refused
            status, gone = await bob.press("hangup", uuid=answered["leg_uuid"])
            assert (status, gone["text"]) == (200, "1002: call from 6208 hung up"), gone
            await bob.seen(leg_uuid=answered["leg_uuid"], state="ended")
            alice.close()
            bob.close()
            assert [c.split()[0] for c in switch.acting()] == ["originate", "uuid_transfer", "uuid_kill"]
    run(main())


def test_what_is_refused_never_reaches_the_switch(tmp_path):
    """No CSRF token, another site's Origin, another agent's extension (by session or by
    token), a supervisor, a number that is not one, a call that is not there, an action that
    is not a button, a body that is not a request: each refused with one sentence, and the
    switch gets nothing but the one call that is allowed.  Every refusal of a logged-in
    user's request is in the audit log, with who asked."""
    audit = tmp_path / "audit.jsonl"

    async def main():
        async with control_serving(audit=audit) as (sim, srv), Switchboard(sim) as switch, \
                client(srv) as http, client(srv) as bob_http, client(srv) as sam_http, client(srv) as crm:
            bob = await agent(bob_http, "bob", "1002")
            assert (await bob.press("dial", target="6208"))[0] == 200
            bobs = (await bob.seen(state="answered", direction="outgoing"))["leg_uuid"]
            alice = await agent(http, "alice", "1001")

            async def refused(status: int, text: str, action: str, ext: str = "1001", who=alice, headers=None,
                              **body) -> None:
                got_status, got = await who.press(action, ext, headers, **body)
                assert got_status == status, (action, ext, got)
                assert text in (got.get("text") or got.get("error")), got

            await refused(403, "CSRF", "hangup", headers={})
            await refused(403, "CSRF", "hangup", headers={"X-CSRF-Token": "forged"})
            await refused(403, "CSRF", "hangup", headers={"X-CSRF-Token": alice.csrf, "Origin": "http://evil.example"})
            await refused(403, "alice may not see the calls of 1002", "hangup", "1002", uuid=bobs)
            await refused(403, "1001 has no call", "hangup", uuid=bobs)  # 1002's leg, named as 1001's
            await refused(409, "1001 has no call right now", "hold")
            await refused(422, "is not a number", "dial", target="6208 &park()")
            await refused(422, "is not a destination", "transfer", target="1002 XML evil")
            await refused(422, "No number given", "dial")
            await refused(404, "is not an action here", "answer")
            async with http.post("/api/agent/1001/calls/dial", data=b"[1]", headers={"X-CSRF-Token": alice.csrf}) as r:
                assert r.status == 400 and "JSON object" in (await r.json())["text"]
            async with http.post("/api/agent/1001/calls/dial", data=b"{" * 5000,
                                 headers={"X-CSRF-Token": alice.csrf}) as r:
                assert r.status == 400 and "at most 4096 bytes" in (await r.json())["text"]
            async with crm.post("/api/agent/1002/calls/hangup", json={"uuid": bobs}, headers=BEARER) as r:
                assert r.status == 403 and "crm may not see the calls of 1002" in (await r.json())["text"]
            sam = await agent(sam_http, "sam", "1002")
            await refused(403, "sam may see the calls of 1002 but not act on them", "hangup", "1002", who=sam,
                          uuid=bobs)
            assert "data-action" not in await (await sam_http.get("/agent/1002")).text()  # no buttons for him
            async with http.post("/api/agent/1001/calls/hangup", json={}) as r:  # no login at all
                assert r.status in (401, 403)
            async with client(srv) as nobody, nobody.post("/api/agent/1001/calls/hangup", json={}) as r:
                assert r.status == 401
            await asyncio.sleep(0.5)  # a refused command would have reached the switch by now
            assert [c.split()[0] for c in switch.acting()] == ["originate"]  # bob's own dial, nothing else
            await bob.seen(leg_uuid=bobs, state="answered")
            assert not [r for r in bob.records if r["leg_uuid"] == bobs and r["state"] == "ended"]
            bob.close()
            alice.close()
            sam.close()
        lines = [json.loads(line) for line in audit.read_text().splitlines()]
        assert [(e["client_id"], e["ext"], e["action"], e["result"]) for e in lines] == [
            ("bob", "1002", "dial", "ok"),
            ("alice", "1002", "hangup", "not_allowed"), ("alice", "1001", "hangup", "not_allowed"),
            ("alice", "1001", "hold", "no_call"), ("alice", "1001", "dial", "bad_number"),
            ("alice", "1001", "transfer", "bad_number"), ("alice", "1001", "dial", "bad_number"),
            ("alice", "1001", "answer", "bad_request"), ("alice", "1001", "dial", "bad_request"),
            ("alice", "1001", "dial", "bad_request"), ("crm", "1002", "hangup", "not_allowed"),
            ("sam", "1002", "hangup", "not_allowed")]
        assert {e["via"] for e in lines} == {"web"}
    run(main())


def test_a_crm_token_acts_on_its_own_extension_without_a_csrf_token():
    """A program with 1001's API token (Authorization: Bearer, which no browser sends by
    itself) needs no CSRF token; it acts on 1001's calls and nobody else's."""
    async def main():
        async with control_serving() as (sim, srv), Switchboard(sim) as switch, client(srv) as crm:
            async with crm.post("/api/agent/1001/calls/dial", json={"target": "6208"}, headers=BEARER) as r:
                assert r.status == 200, await r.text()
                uuid = (await r.json())["uuid"]
            await switch.bridged()
            async with crm.post("/api/agent/1001/calls/hangup", json={"uuid": uuid}, headers=BEARER) as r:
                assert r.status == 200 and (await r.json())["text"] == "1001: call to 6208 hung up"
    run(main())


def test_without_control_the_pages_have_no_buttons_and_posts_are_refused():
    async def main():
        async with serving(scenario=None) as (sim, srv), Switchboard(sim) as switch, client(srv) as http:
            alice = await agent(http, "alice", "1001")
            page = await (await http.get("/agent/1001")).text()
            assert 'data-control="off"' in page and "data-action" not in page and 'id="dial"' not in page
            status, got = await alice.press("dial", target="6208")
            assert status == 403 and "without --control" in got["error"]
            alice.close()
            await asyncio.sleep(0.3)
            assert switch.acting() == []
    run(main())


@pytest.mark.parametrize("body", [{"uuid": 5}, {"target": ["6208"]}])
def test_a_request_with_values_of_the_wrong_kind_is_refused(body):
    async def main():
        async with control_serving() as (_, srv), client(srv) as crm:
            async with crm.post("/api/agent/1001/calls/dial", json=body, headers=BEARER) as r:
                assert r.status == 400 and "is a string" in (await r.json())["text"]
    run(main())


def test_the_buttons_are_rate_limited_per_extension(tmp_path):
    """The controller's one limit (5 requests of an extension in 10 s, as through the relay)
    holds for the buttons: the sixth press is 429 with the result object and Retry-After,
    whoever presses for 1001 (a session or 1001's API token); 1002 goes on; the switch gets
    nothing of the flood; the refusal is audited with who pressed."""
    audit = tmp_path / "audit.jsonl"

    async def main():
        async with control_serving(audit=audit) as (sim, srv), Switchboard(sim) as switch, \
                client(srv) as http, client(srv) as bob_http, client(srv) as crm:
            alice = await agent(http, "alice", "1001")
            bob = await agent(bob_http, "bob", "1002")
            for _ in range(5):
                status, got = await alice.press("hold")
                assert (status, got["error"]) == (409, "no_call"), got
            async with http.post("/api/agent/1001/calls/hold", json={}, headers={"X-CSRF-Token": alice.csrf}) as r:
                assert r.status == 429
                assert 1 <= int(r.headers["Retry-After"]) <= 10
                limited = await r.json()
            assert limited == {"ok": False, "ext": "1001", "action": "hold", "error": "rate_limited",
                               "text": "1001 sent more than 5 control requests in 10 s; wait a moment.",
                               "uuid": None, "target": None, "command": None, "request_id": None}
            async with crm.post("/api/agent/1001/calls/dial", json={"target": "6208"}, headers=BEARER) as r:
                assert r.status == 429 and (await r.json())["error"] == "rate_limited"  # per extension
            status, got = await bob.press("hold")
            assert (status, got["error"]) == (409, "no_call"), got
            await asyncio.sleep(0.3)
            assert switch.acting() == []
            alice.close()
            bob.close()
        lines = [json.loads(line) for line in audit.read_text().splitlines()]
        assert [(e["client_id"], e["ext"], e["result"]) for e in lines] == \
            [("alice", "1001", "no_call")] * 5 + [("alice", "1001", "rate_limited"), ("crm", "1001", "rate_limited"),
                                                  ("bob", "1002", "no_call")]
    run(main())
