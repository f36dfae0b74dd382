"""The channels the simulated switch has up: ``show channels``, ``show calls``, ``myevents``
and ``uuid_kill`` read them.  Kept from the events the switch fires, with FreeSWITCH's
column names (switch_core_sqldb.c)."""

from __future__ import annotations

import time
from collections import deque
from typing import Optional

from eslkit.sim.events import SimEvent
from eslkit.sim.fastpath import date_text

__all__ = ["CallRegistry", "CHANNEL_COLUMNS", "CALL_COLUMNS"]


CHANNEL_COLUMNS = (
    "uuid,direction,created,created_epoch,name,state,cid_name,cid_num,ip_addr,dest,application,"
    "application_data,dialplan,context,read_codec,read_rate,read_bit_rate,write_codec,write_rate,"
    "write_bit_rate,secure,hostname,presence_id,presence_data,accountcode,callstate,callee_name,"
    "callee_num,callee_direction,call_uuid,sent_callee_name,sent_callee_num,initial_cid_name,"
    "initial_cid_num,initial_ip_addr,initial_dest,initial_dialplan,initial_context"
).split(",")

# switch_core_sqldb.c: the basic_calls view behind `show calls` (a = the caller, b = its bridged callee).
CALL_COLUMNS = (
    "uuid,direction,created,created_epoch,name,state,cid_name,cid_num,ip_addr,dest,presence_id,"
    "presence_data,callstate,callee_name,callee_num,callee_direction,call_uuid,hostname,"
    "sent_callee_name,sent_callee_num"
).split(",")
CALLEE_COLUMNS = [c for c in CALL_COLUMNS if c != "hostname"]


class CallRegistry:
    """Channel rows kept from the events the switch fires, in creation order."""

    def __init__(self) -> None:
        self.rows: dict[str, Optional[dict[str, str]]] = {}  # None: not made yet
        self.bridges: dict[str, tuple[str, str]] = {}  # caller uuid -> (callee uuid, epoch)
        self._callers: dict[str, set] = {}  # callee uuid -> the callers bridged to it
        self.created_total = 0
        self.peak = 0
        self._recent: deque[float] = deque()  # creation times within the last second
        self.peak_sps = 0
        # Rows are read rarely (show channels, show calls) and at full speed most channels are
        # gone before anyone asks: keep each channel's events and apply them to its row then.
        self._unapplied: dict[str, list[SimEvent]] = {}
        # The call_uuid column, as switch_core_sqldb.c keeps it: set by CHANNEL_ORIGINATE and
        # on both legs by CHANNEL_BRIDGE (the event's Channel-Call-UUID), back to the channel's
        # own uuid by CHANNEL_UNBRIDGE.
        self._call_uuid: dict[str, str] = {}
        self._in_call: dict[str, set] = {}  # call uuid -> channels whose call_uuid it is

    def __contains__(self, uuid: str) -> bool:
        return uuid in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def track(self, ev: SimEvent) -> None:
        name = ev.event_name
        if not name.startswith("CHANNEL_") and name not in ("CALL_UPDATE", "CODEC"):
            return
        uuid = ev.unique_id
        if not uuid:
            return
        if name == "CHANNEL_DESTROY":
            self.rows.pop(uuid, None)
            self._unapplied.pop(uuid, None)
            self._set_call(uuid, None)
            self._unbridge(uuid)
            for caller in self._callers.pop(uuid, ()):
                if self.bridges.get(caller, ("",))[0] == uuid:
                    del self.bridges[caller]
            return
        if uuid not in self.rows:
            if name != "CHANNEL_CREATE":
                return
            self.rows[uuid] = None  # made from its events when rows are asked for (_apply)
            self._count_new()
        if name in self._COLUMNS_BY_EVENT:
            unapplied = self._unapplied.get(uuid)
            if unapplied is None:
                self._unapplied[uuid] = [ev]
            else:
                unapplied.append(ev)
                if len(unapplied) >= 64:  # a long call: do not hold on to all its events
                    self._apply(uuid)
        if name == "CHANNEL_ORIGINATE":
            self._set_call(uuid, ev.get("Channel-Call-UUID") or "")
        elif name == "CHANNEL_UNBRIDGE":
            call = ev.get("Channel-Call-UUID") or ""
            for channel in list(self._in_call.get(call, ())):
                self._set_call(channel, channel)
        if name == "CHANNEL_BRIDGE":
            call = ev.get("Channel-Call-UUID") or ""
            a, b = ev.get("Bridge-A-Unique-ID"), ev.get("Bridge-B-Unique-ID")
            if not a or not b:
                a, b = ev.get("Caller-Unique-ID"), ev.get("Other-Leg-Unique-ID")
            for channel in (a, b):
                if channel in self.rows:
                    self._set_call(channel, call)
            other = ev.get("Other-Leg-Unique-ID") or ev.get("Bridge-B-Unique-ID")
            if other:
                self._unbridge(uuid)
                self.bridges[uuid] = (other, str(int(time.time())))
                self._callers.setdefault(other, set()).add(uuid)

    def _set_call(self, uuid: str, call: Optional[str]) -> None:
        old = self._call_uuid.pop(uuid, None)
        if old is not None:
            members = self._in_call.get(old)
            if members is not None:
                members.discard(uuid)
                if not members:
                    del self._in_call[old]
        if call is not None:
            self._call_uuid[uuid] = call
            self._in_call.setdefault(call, set()).add(uuid)

    def _unbridge(self, caller: str) -> None:
        """Forget the caller's bridge, if any (an index, not a scan: thousands may be up)."""
        old = self.bridges.pop(caller, None)
        if old is not None:
            callers = self._callers.get(old[0])
            if callers is not None:
                callers.discard(caller)
                if not callers:
                    del self._callers[old[0]]

    def _count_new(self) -> None:
        self.created_total += 1
        self.peak = max(self.peak, len(self.rows))
        now = time.monotonic()
        recent = self._recent
        while recent and now - recent[0] >= 1.0:
            recent.popleft()
        recent.append(now)
        self.peak_sps = max(self.peak_sps, len(recent))

    @property
    def sessions_per_second(self) -> int:
        now = time.monotonic()
        return sum(1 for t in self._recent if now - t < 1.0)

    _NEW_ROW = ("Unique-ID", "Call-Direction", "Channel-Name", "Caller-Network-Addr", "Caller-Dialplan",
                "Caller-Context", "FreeSWITCH-Hostname", "Channel-Presence-ID", "Caller-Caller-ID-Name",
                "Caller-Caller-ID-Number", "Caller-Destination-Number", "Caller-Channel-Created-Time",
                "Event-Date-Timestamp")

    def _new_row(self, ev: SimEvent) -> dict[str, str]:
        (uuid, direction, name, addr, dialplan, context, hostname, presence, cid_name, cid_num, dest,
         created_us, stamp) = [v or "" for v in ev.get_all(self._NEW_ROW)]
        ts = created_us or stamp
        epoch = str(int(ts) // 1_000_000) if ts.isdigit() else ""
        created = date_text("LOCAL", int(epoch)) if epoch else ""
        row = dict.fromkeys(CHANNEL_COLUMNS, "")
        row.update(
            uuid=uuid, direction=direction, created=created, created_epoch=epoch,
            name=name, ip_addr=addr, dialplan=dialplan, context=context, hostname=hostname,
            presence_id=presence, initial_cid_name=cid_name, initial_cid_num=cid_num,
            initial_ip_addr=addr, initial_dest=dest, initial_dialplan=dialplan, initial_context=context,
        )
        return row

    # Which columns an event can change (looking up every header on every event is slow).
    _STATE = (("state", "Channel-State"),)
    _CALLSTATE = (("state", "Channel-State"), ("callstate", "Channel-Call-State"))
    _FULL = (
        ("state", "Channel-State"), ("callstate", "Channel-Call-State"),
        ("cid_name", "Caller-Caller-ID-Name"), ("cid_num", "Caller-Caller-ID-Number"),
        ("dest", "Caller-Destination-Number"), ("callee_name", "Caller-Callee-ID-Name"),
        ("callee_num", "Caller-Callee-ID-Number"),
        ("read_codec", "Channel-Read-Codec-Name"), ("read_rate", "Channel-Read-Codec-Rate"),
        ("read_bit_rate", "Channel-Read-Codec-Bit-Rate"), ("write_codec", "Channel-Write-Codec-Name"),
        ("write_rate", "Channel-Write-Codec-Rate"), ("write_bit_rate", "Channel-Write-Codec-Bit-Rate"),
    )
    _COLUMNS_BY_EVENT = {
        "CHANNEL_STATE": _STATE, "CHANNEL_CALLSTATE": _CALLSTATE, "CHANNEL_EXECUTE": _STATE,
        "CHANNEL_CREATE": _FULL, "CHANNEL_ANSWER": _FULL, "CHANNEL_BRIDGE": _FULL, "CALL_UPDATE": _FULL,
        "CHANNEL_PROGRESS": _FULL, "CHANNEL_PROGRESS_MEDIA": _FULL, "CODEC": _FULL, "CHANNEL_HANGUP": _CALLSTATE,
    }

    _HEADERS_BY_EVENT = {name: tuple(h for _, h in cols) for name, cols in _COLUMNS_BY_EVENT.items()}

    def _update(self, row: dict[str, str], ev: SimEvent) -> None:
        g = ev.get
        columns = self._COLUMNS_BY_EVENT.get(ev.event_name)
        if columns:
            for (column, _), value in zip(columns, ev.get_all(self._HEADERS_BY_EVENT[ev.event_name])):
                if value is not None:
                    row[column] = value
        if ev.event_name == "CHANNEL_EXECUTE":
            row["application"] = g("Application") or ""
            row["application_data"] = g("Application-Data") or ""

    def _apply(self, uuid: str) -> None:
        events = self._unapplied.pop(uuid)
        row = self.rows[uuid]
        if row is None:  # events[0] is its CHANNEL_CREATE
            row = self.rows[uuid] = self._new_row(events[0])
        for ev in events:
            self._update(row, ev)

    def _apply_all(self) -> None:
        for uuid in list(self._unapplied):
            self._apply(uuid)
        for uuid, row in self.rows.items():
            if row is not None:
                row["call_uuid"] = self._call_uuid.get(uuid, "")

    def channel_rows(self) -> list[dict[str, str]]:
        self._apply_all()
        return list(self.rows.values())

    def call_rows(self) -> list[dict[str, str]]:
        """basic_calls: every channel that is not the callee of a bridge, with its callee as b_*."""
        self._apply_all()
        callees = {b for b, _ in self.bridges.values()}
        out = []
        for uuid, row in self.rows.items():
            if uuid in callees:
                continue
            call = {c: row.get(c, "") for c in CALL_COLUMNS}
            bridge = self.bridges.get(uuid)
            b = self.rows.get(bridge[0], {}) if bridge else {}
            for c in CALLEE_COLUMNS:
                call["b_" + c] = b.get(c, "")
            call["call_created_epoch"] = bridge[1] if bridge else ""
            out.append(call)
        return out
