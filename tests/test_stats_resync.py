"""Starting in the middle of a day: the simulated switch answers mod_callcenter's and
mod_fifo's list commands in the real modules' shapes (mod_callcenter.c, mod_fifo.c at
v1.10.12), and a statistics engine that starts mid-call is right at once."""

from __future__ import annotations

import asyncio
import time

import pytest

from eslkit.client import Connection
from eslkit.queue_lists import SwitchState, ask_switch, parse_fifo_list, parse_pipe_table
from eslkit.sim.events import CallEvent, CallValues
from eslkit.sim.queues import AGENT_COLUMNS, MEMBER_COLUMNS, QUEUE_COLUMNS
from eslkit.sim.scenarios import fresh_uuids, load_scenario
from eslkit.stats import CallCentreStats
from tests.support.sim import sim_in_thread


def play_until(server, name: str, until: float, numbers=None):
    """Fire a scenario's events up to `until` seconds into the call (now, on the server's loop)."""
    scenario = load_scenario(name)
    values = CallValues(int(time.time()) * 1_000_000 + scenario.start_fraction_us,
                        fresh_uuids(scenario.uuids), server.core_uuid, numbers)
    fired = []
    for template in scenario.templates:
        if template.at > until:
            break
        fired.append(server.fire(CallEvent(template, values, server.next_seq())))
    return fired


async def ask(port: int) -> tuple[SwitchState, dict]:
    async with Connection("127.0.0.1", port, "ClueCon") as conn:
        raw = {c: await conn.api(c) for c in ("callcenter_config queue list", "callcenter_config agent list",
                                               "callcenter_config queue list members", "fifo list",
                                               "callcenter_config queue list members 9999@default")}
        return await ask_switch(conn), raw


def test_callcenter_tables_in_mod_callcenter_shapes():
    with sim_in_thread(scenario="queue", speed=None) as sim:
        sim.call(_fire(sim.server, "two-callers", 2.0))  # both callers in the queue, 1001 and 1002 offered 6208
        state, raw = asyncio.run(ask(sim.port))
    queues = raw["callcenter_config queue list"].split("\n")
    assert queues[0] == QUEUE_COLUMNS and queues[-2:] == ["+OK", ""]
    assert queues[1].startswith("2000@default|ring-all|")
    assert raw["callcenter_config agent list"].split("\n")[0] == "|".join(AGENT_COLUMNS)
    assert raw["callcenter_config queue list members"].split("\n")[0] == "|".join(MEMBER_COLUMNS + ("score",))
    assert raw["callcenter_config queue list members 9999@default"] == "+OK\n"  # no rows: no header either
    assert raw["fifo list"] == "<fifo_report></fifo_report>\n\n"
    members = {m["cid_number"]: m for m in state.members}
    assert {n: m["state"] for n, m in members.items()} == {"6208": "Trying", "6209": "Waiting"}
    assert {a["name"]: (a["status"], a["state"]) for a in state.agents} == {
        "1001@default": ("Available", "Receiving"), "1002@default": ("Available", "Receiving")}
    assert state.channels and state.fifos == []


async def _fire(server, name, until, numbers=None):
    return play_until(server, name, until, numbers)


def test_fifo_list_in_mod_fifo_shape():
    with sim_in_thread(scenario="queue", speed=None) as sim:
        sim.call(_fire(sim.server, "fifo", 1.0))  # 6208 pushed, 1001 and 1002 ringing
        state, raw = asyncio.run(ask(sim.port))
    body = raw["fifo list"]
    lines = body.split("\n")
    assert lines[0] == "<fifo_report>"
    assert lines[1].startswith('  <fifo name="2000" consumer_count="0" caller_count="1" waiting_count="1" ')
    assert lines[2] == "    <outbound>"
    assert lines[3].startswith('      <member simo="1" use_count="0" timeout="60" ')
    assert lines[3].endswith(">user/1001@127.0.0.1</member>")  # md5 of this is its FIFO-Outbound-UUID
    assert lines[7].startswith('      <caller uuid="') and 'caller_id_name="Caller%206208"' in lines[7]
    assert lines[-4:] == ["  </fifo>", "</fifo_report>", "", ""]
    (fifo,) = state.fifos
    assert fifo["name"] == "2000" and [(c["number"], c["name"]) for c in fifo["callers"]] == [("6208", "Caller 6208")]
    assert abs(fifo["callers"][0]["since"] - time.time()) < 5


def test_parsers_refuse_what_is_not_a_list():
    for bad in ("-ERR callcenter_config Command not found!\n", "", "name|x\n", "-ERR Invalid!\n"):
        with pytest.raises(ValueError):
            parse_pipe_table(bad)
    for bad in ("-ERR fifo Command not found!\n", "<fifo_report><fifo", "list|list_verbose|count\n"):
        with pytest.raises(ValueError):
            parse_fifo_list(bad)
    # a caller name holding "|" does not shift the columns after it
    table = "queue|uuid|cid_number|cid_name|joined_epoch|state\nq@d|u1|6208|A|B|C|1796124347|Waiting\n+OK\n"
    (row,) = parse_pipe_table(table)
    assert (row["cid_name"], row["joined_epoch"], row["state"]) == ("A|B|C", "1796124347", "Waiting")


def test_a_wallboard_started_mid_call_is_right_at_once():
    """Connect while 6208 talks to 1001 and 6209 waits (two-callers at 4 s): the engine
    asks the switch, then follows the events; the figures come out as if it had seen it all
    but for the call answered before it looked (offered and waiting count, the answer not)."""
    with sim_in_thread(scenario="queue", speed=None) as sim:
        sim.call(_fire(sim.server, "two-callers", 4.0))
        state, _ = asyncio.run(ask(sim.port))
    stats = CallCentreStats()
    stats.resync(state, time.time())
    snap = stats.snapshot(time.time())
    q = snap.queue("2000@default")
    assert (q.waiting, q.offered, q.answered) == (1, 1, 0)  # 6209 waits; 6208 was answered before we looked
    assert [c.number for c in q.callers] == ["6209"]
    assert snap.agent("1001@default").state == "talking"  # from its leg in show channels
    assert snap.agent("1001@default").ext == "1001"
    assert snap.agent("1002@default").state == "ringing"  # offered 6209 (mod_callcenter: Receiving)
    assert snap.agent("1001@default").answered == 0  # answered before eslkit looked: not today's count


def test_after_a_load_nothing_is_left_over():
    """300 calls of every flow at full speed, through a real socket: every caller decided,
    nothing kept per call once it is over (memory does not grow with the day's calls)."""
    from eslkit.calls import POPUP_EVENTS
    from eslkit.event import Event

    mix = "queue+callcenter+fifo+abandon+two-callers+busy-queue+noanswer+hold+blind-transfer+callcenter-loopback"
    stats = CallCentreStats()

    async def follow(sim) -> None:
        async with Connection("127.0.0.1", sim.port, "ClueCon") as conn:
            await conn.subscribe(POPUP_EVENTS)
            sim.call_soon(lambda: asyncio.ensure_future(sim.server.play(
                load_scenario(f"load:calls=300,cps=1000,concurrent=50,agents=10,template={mix}"))))
            events = conn.events().__aiter__()
            while True:
                try:
                    item = await asyncio.wait_for(events.__anext__(), 3)
                except asyncio.TimeoutError:
                    return  # the load is over
                if isinstance(item, Event):
                    stats.feed(item)

    with sim_in_thread(speed=None) as sim:
        asyncio.run(follow(sim))
    stats.tick(stats.now + 60)
    snap = stats.snapshot()
    for q in snap.queues:
        assert q.waiting == 0 and q.offered == q.answered + q.abandoned + q.missed, q
    # 30 noanswer calls join no queue; the 30 two-callers calls bring a second caller each
    assert sum(q.offered for q in snap.queues) == 300
    assert snap.calls.waiting == 0 and snap.calls.answered + snap.calls.missed + snap.calls.busy == 330
    assert not stats._calls and not stats._leg_agent and not stats._group_talks and not stats._counted
    assert all(not q.talking for q in stats.queues.values())
    assert all(not a.legs for a in stats.agents.values())
