"""mod_callcenter's and mod_fifo's tables in the simulated switch, and their `api` answers.

The real modules keep who waits in which queue and what every agent does in tables
(mod_callcenter: SQLite ``members``, ``agents``, ``tiers``; mod_fifo: its nodes and
``fifo_outbound``); `callcenter_config … list` and `fifo list` print them.  The
simulator keeps the same rows from the ``callcenter::info`` and ``fifo::info`` events
it fires (a queue, an agent or a fifo member exists from the first event that names
it) and prints them in the shapes of mod_callcenter.c and mod_fifo.c (1.10.12): pipe
tables with a header line and ``+OK``, and the XML of ``switch_xml_toxml``.
"""

from __future__ import annotations

import time
from typing import Optional

from eslkit._headers import url_encode as _url  # switch_url_encode, as mod_fifo does to caller IDs
from eslkit.sim.events import SimEvent

__all__ = ["QueueRegistry"]

QUEUE_COLUMNS = (
    "name|strategy|moh_sound|time_base_score|tier_rules_apply|tier_rule_wait_second|"
    "tier_rule_wait_multiply_level|tier_rule_no_agent_no_wait|discard_abandoned_after|"
    "abandoned_resume_allowed|max_wait_time|max_wait_time_with_no_agent|"
    "max_wait_time_with_no_agent_time_reached|record_template|calls_answered|calls_abandoned|"
    "ring_progressively_delay|skip_agents_with_external_calls|agent_no_answer_status"
)
MEMBER_COLUMNS = ("queue", "instance_id", "uuid", "session_uuid", "cid_number", "cid_name", "system_epoch",
                  "joined_epoch", "rejoined_epoch", "bridge_epoch", "abandoned_epoch", "base_score",
                  "skill_score", "serving_agent", "serving_system", "state")
AGENT_COLUMNS = ("name", "instance_id", "uuid", "type", "contact", "status", "state", "max_no_answer",
                 "wrap_up_time", "reject_delay_time", "busy_delay_time", "no_answer_delay_time",
                 "last_bridge_start", "last_bridge_end", "last_offered_call", "last_status_change",
                 "no_answer_count", "calls_answered", "talk_time", "ready_time", "external_calls_count")
TIER_COLUMNS = ("queue", "agent", "state", "level", "position")
NULL = "(null)"  # what printf("%s") writes for an SQL NULL
DISCARD_ABANDONED_AFTER = 60  # mod_callcenter's default: an abandoned member's row stays this long
CC_USAGE = "-ERR Invalid!\n"
FIFO_SYNTAX = "list|list_verbose|count|debug|status|has_outbound|importance [<fifo name>]|reparse [del_all]\n"


def _pipe_table(columns, rows: list) -> str:
    """mod_callcenter's list_result_callback: a header line before the first row only."""
    if not rows:
        return "+OK\n"
    lines = ["|".join(columns)] + ["|".join(row[c] for c in columns) for row in rows]
    return "\n".join(lines) + "\n+OK\n"


class QueueRegistry:
    def __init__(self) -> None:
        self.cc_queues: dict[str, dict] = {}  # name -> calls_answered, calls_abandoned
        self.members: dict[str, dict] = {}  # member uuid -> row
        self.agents: dict[str, dict] = {}  # name -> row
        self.tiers: dict[tuple, dict] = {}  # (queue, agent) -> row
        self.fifos: dict[str, dict] = {}  # name -> {"callers": {uuid: attrs}, "consumers": {...}, "members": {...}}

    # --- fed with every event the switch fires ------------------------------------------

    def track(self, ev: SimEvent) -> None:
        name = ev.event_name
        if name == "CUSTOM":
            sub = ev.get("Event-Subclass")
            if sub == "callcenter::info":
                self._callcenter(ev)
            elif sub == "fifo::info":
                self._fifo(ev)
        elif name == "CHANNEL_ORIGINATE":
            fifo = ev.get("variable_fifo_name")
            if fifo:
                self._fifo_member(fifo, ev)

    def _callcenter(self, ev: SimEvent) -> None:
        g = ev.get
        action, queue, agent = g("CC-Action"), g("CC-Queue"), g("CC-Agent")
        now = str(int(time.time()))
        if queue:
            self.cc_queues.setdefault(queue, {"calls_answered": 0, "calls_abandoned": 0})
        if agent:
            row = self._agent(agent)
            if queue and (queue, agent) not in self.tiers:
                self.tiers[(queue, agent)] = {"queue": queue, "agent": agent, "state": "Ready", "level": "1",
                                              "position": "1"}
            if action == "agent-state-change":
                row["state"] = g("CC-Agent-State") or row["state"]
                if row["state"] == "Receiving":
                    row["last_offered_call"] = now
            elif action == "agent-status-change":
                row["status"] = g("CC-Agent-Status") or row["status"]
                row["last_status_change"] = now
            elif action == "bridge-agent-start":
                row.update(uuid=g("CC-Agent-UUID") or "", last_bridge_start=now,
                           calls_answered=str(int(row["calls_answered"]) + 1), no_answer_count="0")
            elif action == "bridge-agent-end":
                talk = int(now) - int(row["last_bridge_start"] or now)
                row.update(uuid="", last_bridge_end=now, talk_time=str(int(row["talk_time"]) + talk))
        member = g("CC-Member-UUID")
        if not queue or not member:
            return
        if action in ("member-queue-start", "member-queue-resume"):
            self.members[member] = {
                "queue": queue, "instance_id": "single_box", "uuid": member,
                "session_uuid": g("CC-Member-Session-UUID") or "", "cid_number": g("CC-Member-CID-Number") or "",
                "cid_name": g("CC-Member-CID-Name") or "", "system_epoch": now, "joined_epoch": now,
                "rejoined_epoch": "0", "bridge_epoch": "0", "abandoned_epoch": "0", "base_score": "0",
                "skill_score": "0", "serving_agent": "ring-all", "serving_system": "", "state": "Waiting"}
            return
        row = self.members.get(member)
        if row is None:
            return
        if action == "agent-offering" and row["state"] == "Waiting":
            row["state"] = "Trying"
        elif action == "bridge-agent-start":
            row.update(state="Answered", serving_agent=agent or "", serving_system="single_box", bridge_epoch=now)
            self.cc_queues[queue]["calls_answered"] += 1
        elif action == "bridge-agent-fail" and row["state"] == "Trying":
            row["state"] = "Waiting"
        elif action == "member-queue-end":
            if g("CC-Cause") == "Cancel":
                row.update(state="Abandoned", session_uuid="", abandoned_epoch=now)
                self.cc_queues[queue]["calls_abandoned"] += 1
            else:
                del self.members[member]

    def _agent(self, name: str) -> dict:
        row = self.agents.get(name)
        if row is None:
            user = name.split("@", 1)[0]
            row = self.agents[name] = dict.fromkeys(AGENT_COLUMNS, "0")
            row.update(name=name, instance_id="single_box", uuid=NULL, type="callback",
                       contact=f"[leg_timeout=20]user/{user}", status="Available", state="Waiting")
        return row

    def _fifo(self, ev: SimEvent) -> None:
        g = ev.get
        name, action, uuid = g("FIFO-Name"), g("FIFO-Action"), g("Unique-ID")
        if not name or not uuid or name == "manual_calls":
            return
        node = self._node(name)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        if action == "push":
            node["callers"][uuid] = {
                "uuid": uuid, "status": "WAITING", "caller_id_name": _url(g("Caller-Caller-ID-Name") or ""),
                "caller_id_number": _url(g("Caller-Caller-ID-Number") or ""), "timestamp": stamp,
                "position": str(len(node["callers"]) + 1), "slot": g("FIFO-Slot") or "0"}
        elif action in ("caller_pop", "abort", "timeout", "bridge-caller-start"):
            node["callers"].pop(uuid, None)
        elif action == "channel-consumer-start":
            node["consumers"][uuid] = {
                "uuid": uuid, "status": "TALKING", "caller_id_name": _url(g("FIFO-Caller-CID-Name") or ""),
                "caller_id_number": _url(g("FIFO-Caller-CID-Number") or ""), "timestamp": stamp}
            member = node["members"].get(g("FIFO-Consumer-Outbound-ID") or "")
            if member is not None:
                member["use_count"] = g("FIFO-Consumer-Use-Count") or member["use_count"]
        elif action == "channel-consumer-stop":
            node["consumers"].pop(uuid, None)
            member = node["members"].get(g("FIFO-Consumer-Outbound-ID") or "")
            if member is not None:
                member["use_count"] = g("FIFO-Consumer-Use-Count") or "0"
                member["outbound-call-count"] = str(int(member["outbound-call-count"]) + 1)
                member["outbound-call-total-count"] = str(int(member["outbound-call-total-count"]) + 1)

    def _node(self, name: str) -> dict:
        return self.fifos.setdefault(name, {"callers": {}, "consumers": {}, "members": {}})

    def _fifo_member(self, fifo: str, ev: SimEvent) -> None:
        """An outbound member of the fifo, as fifo.conf.xml's <member> made it (seen on its first call)."""
        outbound = ev.get("variable_fifo_outbound_uuid")
        user, domain = ev.get("variable_dialed_user"), ev.get("variable_dialed_domain")
        members = self._node(fifo)["members"]
        if not outbound or not user or outbound in members:
            return
        members[outbound] = {
            "simo": "1", "use_count": "0", "timeout": ev.get("variable_leg_timeout") or "60", "lag": "10",
            "outbound-call-count": "0", "outbound-fail-count": "0", "taking-calls": "1", "status": "",
            "outbound-call-total-count": "0", "outbound-fail-total-count": "0", "logged-on-since": "now",
            "manual-calls-out-count": "0", "manual-calls-in-count": "0", "manual-calls-out-total-count": "0",
            "manual-calls-in-total-count": "0", "ring-count": "0", "start-time": "never", "stop-time": "never",
            "next-available": "now", "_text": f"user/{user}@{domain}" if domain else f"user/{user}"}

    # --- the api commands ------------------------------------------------------------------------

    def callcenter_config(self, arg: str) -> str:
        words = arg.split()
        if not words:
            return "-USAGE: \n" + CC_USAGE
        self._discard_abandoned()
        section, action, rest = words[0].lower(), (words[1].lower() if len(words) > 1 else ""), words[2:]
        if section == "agent" and action == "list":
            if len(rest) > 1:
                return CC_USAGE
            rows = [r for r in self.agents.values() if not rest or r["name"] == rest[0]]
            return _pipe_table(AGENT_COLUMNS, rows)
        if section == "tier" and action == "list":
            return _pipe_table(TIER_COLUMNS, list(self.tiers.values()))
        if section == "queue" and action == "list":
            if not rest:
                lines = [QUEUE_COLUMNS] + [
                    f"{name}|ring-all|local_stream://moh|queue|false|300|false|false|{DISCARD_ABANDONED_AFTER}|"
                    f"false|0|0|5|{NULL}|{q['calls_answered']}|{q['calls_abandoned']}|10|false|On Break"
                    for name, q in self.cc_queues.items()]
                return "\n".join(lines) + "\n+OK\n"
            sub, queue = rest[0].lower(), (rest[1] if len(rest) > 1 else None)
            if sub == "members":
                return self._members(queue)
            if sub == "agents":
                names = {a for (q, a) in self.tiers if q == queue}
                rows = [r for r in self.agents.values() if r["name"] in names]
                if len(rest) > 2:
                    rows = [r for r in rows if r["status"] == rest[2]]
                if len(rest) > 3:
                    rows = [r for r in rows if r["state"] == rest[3]]
                return _pipe_table(AGENT_COLUMNS, rows)
            if sub == "tiers":
                return _pipe_table(TIER_COLUMNS, [r for (q, _), r in self.tiers.items() if q == queue])
        return CC_USAGE

    def _members(self, queue: Optional[str]) -> str:
        now = int(time.time())
        rows = []
        for row in self.members.values():
            if queue is None or row["queue"] == queue:
                score = now - int(row["joined_epoch"]) + int(row["base_score"]) + int(row["skill_score"])
                rows.append({**row, "score": str(score)})
        rows.sort(key=lambda r: -int(r["score"]))
        if queue is None:
            rows.sort(key=lambda r: r["queue"])
        return _pipe_table(MEMBER_COLUMNS + ("score",), rows)

    def _discard_abandoned(self) -> None:
        limit = int(time.time()) - DISCARD_ABANDONED_AFTER
        for uuid, row in list(self.members.items()):
            if row["state"] == "Abandoned" and int(row["abandoned_epoch"]) < limit:
                del self.members[uuid]

    def fifo(self, arg: str) -> str:
        words = arg.split()
        if not words:
            return FIFO_SYNTAX
        if words[0].lower() != "list":
            return FIFO_SYNTAX if words[0].lower() not in ("count", "has_outbound") else self._count(words)
        names = [words[1]] if len(words) > 1 else list(self.fifos)
        report = ("fifo_report", [], [_fifo_xml(n, self.fifos[n]) for n in names if n in self.fifos], "")
        return _toxml(report) + "\n"

    def _count(self, words: list) -> str:
        names = [words[1]] if len(words) > 1 else list(self.fifos)
        lines = []
        for name in names:
            node = self.fifos.get(name)
            if node is None:
                continue
            if words[0].lower() == "count":
                lines.append(f"{name}:{len(node['consumers'])}:{len(node['callers'])}:{len(node['members'])}:0:0")
            else:
                lines.append(f"{name}:{1 if node['members'] else 0}")
        return "\n".join(lines) + "\n" if lines else "none\n"


def _fifo_xml(name: str, node: dict) -> tuple:
    attrs = [("name", name), ("consumer_count", str(len(node["consumers"]))),
             ("caller_count", str(len(node["callers"]))), ("waiting_count", str(len(node["callers"]))),
             ("importance", "0"), ("outbound_per_cycle", "1"), ("outbound_per_cycle_min", "1"),
             ("ring_timeout", "60"), ("default_lag", "30"), ("outbound_priority", "5"),
             ("outbound_strategy", "ringall")]
    members = [("member", [(k, v) for k, v in m.items() if k != "_text"], [], m["_text"])
               for m in node["members"].values()]
    callers = [("caller", list(c.items()), [], "") for c in node["callers"].values()]
    consumers = [("consumer", list(c.items()), [], "") for c in node["consumers"].values()]
    return ("fifo", attrs, [("outbound", [], members, ""), ("callers", [], callers, ""),
                            ("consumers", [], consumers, "")], "")


def _toxml(element: tuple, level: int = 0, out: Optional[list] = None) -> str:
    """switch_xml_toxml(xml, SWITCH_FALSE) for a tree of (name, attrs, children, text): two
    spaces per level, a newline after each closing tag, and ``<a></a>`` for an empty element."""
    top = out is None
    out = [] if top else out
    name, attrs, children, text = element
    if out and out[-1].endswith(">"):
        out.append("\n")
    out.append("  " * level + "<" + name + "".join(f' {k}="{_esc(v, True)}"' for k, v in attrs) + ">")
    if children:
        for child in children:
            _toxml(child, level + 1, out)
    else:
        out.append(_esc(text, False))
    if out[-1].endswith("\n"):
        out.append("  " * level)
    out.append(f"</{name}>\n")
    return "".join(out) if top else ""


def _esc(value: str, attr: bool) -> str:
    out = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#xD;")
    if attr:
        out = out.replace('"', "&quot;").replace("\n", "&#xA;").replace("\t", "&#x9;")
    return out

