"""One inbound connection's state and its commands, as mod_event_socket has them.

No sockets here: `Session.handle()` takes one command and returns the bytes
to send back (and whether to hang up); `Session.wants()` decides whether an
event goes to this connection.  The reply texts, the order in which commands
are recognised and the quirks (``event bogusformat ALL`` keeps the current
format, ``nixevent NO_SUCH_EVENT`` is ``-ERR no keywords supplied``,
``myevents`` without a uuid is an unknown command on an inbound socket, …)
follow parse_command() in FreeSWITCH 1.10's mod_event_socket.c and the
captures in tests/data/fs-captures.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Callable, Optional

from eslkit.protocol import api_response, command_reply
from eslkit.sim.events import EVENT_NAMES, SimEvent, event_type

if TYPE_CHECKING:  # pragma: no cover
    from eslkit.sim.server import SimServer

# switch_log_str2level(): names, or a number.
LOG_LEVELS = {"CONSOLE": 0, "ALERT": 1, "CRIT": 2, "ERR": 3, "WARNING": 4, "NOTICE": 5, "INFO": 6, "DEBUG": 7}
MAX_FILTER_REGEX = 512  # a client's regex runs on every event: keep it small
MAX_FILTERS = 256  # each filter costs every event a lookup; FreeSWITCH has no limit, one client must not stall all


def str2level(text: str) -> Optional[int]:
    if text.isdigit():
        return min(int(text), 63)
    return LOG_LEVELS.get(text.upper())


class Session:
    """Subscriptions, filters, format and log level of one connection."""

    def __init__(self, switch: "SimServer", on_first_subscribe: Optional[Callable[["Session"], None]] = None):
        self.switch = switch
        self.authed = False
        self.format = "plain"
        self.events_on = False  # LFLAG_EVENTS
        self.event_list: set[str] = set()  # names; "ALL" for everything
        self.custom: set[str] = set()  # CUSTOM subclasses
        self.filters: list[tuple[str, str]] = []
        self._regex: dict[str, Optional[re.Pattern]] = {}
        self.myevents = False
        self.my_uuid: Optional[str] = None
        self.log_level: Optional[int] = None
        self.subscribed_once = False
        self._on_first_subscribe = on_first_subscribe
        self.connection = None  # the server's connection object, for replay and scenarios

    # --- commands ------------------------------------------------------------------

    def handle(self, cmd: str, headers: list[tuple[str, str]], body: Optional[bytes] = None) -> tuple[bytes, bool]:
        """One command → (bytes to send, hang up afterwards?)."""
        low = cmd.lower()
        if low.startswith("exit") or low.startswith("..."):
            return command_reply("+OK bye"), True
        if not self.authed:
            if low.startswith("auth "):
                if cmd[5:] == self.switch.password:
                    self.authed = True
                    return command_reply("+OK accepted"), False
                return command_reply("-ERR invalid"), True
            if low.startswith("userauth "):
                return command_reply("-ERR invalid"), True
            return command_reply("-ERR command not found"), False
        if low.startswith("filter "):
            return command_reply(self._filter(cmd[7:])), False
        if low.startswith("myevents "):
            return command_reply(self._myevents(cmd)), False
        if low.startswith("divert_events"):
            return command_reply("-ERR not controlling a session."), False
        if low.startswith("sendmsg"):
            return command_reply(self._sendmsg(cmd, headers)), False
        if low.startswith("sendevent"):
            return command_reply(self.switch.sendevent(cmd[9:].strip(" \t"), headers, body)), False
        if low.startswith("api "):
            name, _, arg = cmd[4:].partition(" ")
            return api_response(self.switch.api(name, arg or None, session=self)), False
        if low.startswith("bgapi "):
            name, _, arg = cmd[6:].partition(" ")
            job = _header(headers, "job-uuid") or self.switch.new_uuid()
            self.switch.bgapi(job, name, arg or None, session=self)
            return command_reply(f"+OK Job-UUID: {job}", [("Job-UUID", job)]), False
        if low.startswith("log"):
            return command_reply(self._log(cmd)), False
        if low.startswith("linger") or low.startswith("nolinger"):
            return command_reply("-ERR not controlling a session"), False
        if low.startswith("nolog"):
            if self.log_level is None:
                return command_reply("-ERR not loging"), False
            self.log_level = None
            return command_reply("+OK no longer logging"), False
        if low.startswith("event"):
            return command_reply(self._event(cmd)), False
        if low.startswith("nixevent"):
            return command_reply(self._nixevent(cmd)), False
        if low.startswith("noevents"):
            if not self.events_on:
                return command_reply("-ERR not listening for events"), False
            self.events_on = False
            self.event_list.clear()
            self.custom.clear()
            return command_reply("+OK no longer listening for events"), False
        return command_reply("-ERR command not found"), False

    def _words(self, cmd: str) -> list[str]:
        rest = cmd[5:]
        space = rest.find(" ")
        return [] if space < 0 else rest[space + 1:].split(" ")

    def _event(self, cmd: str) -> str:
        keys = 0
        custom = False
        for i, word in enumerate(self._words(cmd)):
            if i == 0 and word.lower() in ("plain", "json", "xml"):
                self.format = word.lower()
                continue
            if custom:
                self.custom.add(word)
                continue
            name = event_type(word)
            if name is None:
                continue
            keys += 1
            self.event_list.add(name)
            if name == "CUSTOM":
                custom = True
        if not keys:
            return "-ERR no keywords supplied"
        self._enable()
        return f"+OK event listener enabled {self.format}"

    def _nixevent(self, cmd: str) -> str:
        keys = 0
        custom = False
        for word in self._words(cmd):
            if custom:
                self.custom.discard(word)
                continue
            name = event_type(word)
            if name is None:
                continue
            keys += 1
            if name == "CUSTOM":
                custom = True
            elif name == "ALL":
                self.event_list.clear()
            else:
                if "ALL" in self.event_list:
                    # From "everything" to "everything but": list every type explicitly.
                    self.event_list = set(EVENT_NAMES[:-1])
                self.event_list.discard(name)
        if not keys:
            return "-ERR no keywords supplied"
        self._enable()
        return "+OK events nixed"

    def _enable(self) -> None:
        self.events_on = True
        if not self.subscribed_once:
            self.subscribed_once = True
            if self._on_first_subscribe is not None:
                self._on_first_subscribe(self)

    def _myevents(self, cmd: str) -> str:
        if self.myevents:
            return "-ERR aready enabled."
        uuid, _, fmt = cmd[9:].partition(" ")
        if uuid in self.switch.channels:
            self.my_uuid = uuid
        elif fmt:
            return "-ERR invalid uuid"
        self.event_list.update((
            "CHANNEL_ANSWER", "CHANNEL_APPLICATION", "CHANNEL_BRIDGE", "CHANNEL_CREATE", "CHANNEL_DATA",
            "CHANNEL_DESTROY", "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE", "CHANNEL_HANGUP",
            "CHANNEL_HANGUP_COMPLETE", "CHANNEL_ORIGINATE", "CHANNEL_UUID", "CHANNEL_OUTGOING",
            "CHANNEL_PARK", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_STATE",
            "CHANNEL_UNBRIDGE", "CHANNEL_UNPARK", "DETECTED_SPEECH", "DTMF", "NOTALK", "TALK",
        ))
        self.myevents = True
        if "xml" in cmd or "XML" in cmd:
            self.format = "xml"
        if "json" in cmd or "JSON" in cmd:
            self.format = "json"
        self._enable()
        return "+OK Events Enabled"

    def _sendmsg(self, cmd: str, headers: list[tuple[str, str]]) -> str:
        uuid = cmd[7:].strip(" ") or _header(headers, "session-id") or ""
        if uuid and uuid in self.switch.channels:
            return "+OK"
        return f"-ERR invalid session id [{uuid}]"

    def _log(self, cmd: str) -> str:
        level_s = cmd[3:]
        if level_s:
            level_s = level_s[1:]  # mod_event_socket skips one character, the space
        level = str2level(level_s) if level_s else 7
        if level is None:
            return "-ERR invalid log level"
        self.log_level = level
        return f"+OK log level {level_s} [{level}]"

    def _filter(self, args: str) -> str:
        args = args.lstrip(" ")
        name, sep, value = args.partition(" ")
        if name.lower() == "delete" and sep:
            name, sep2, value = value.partition(" ")
            if name.lower() == "all":
                self.filters.clear()
            else:
                self.filters = [
                    (k, v) for k, v in self.filters
                    if not (k.lower() == name.lower() and (not sep2 or v == value))
                ]
            return f"+OK filter deleted. [{name}][{value if sep2 else ''}]"
        if sep:
            if name.lower() == "add":
                name, _, value = value.partition(" ")
            if len(self.filters) >= MAX_FILTERS:
                return f"-ERR too many filters (eslkit sim keeps at most {MAX_FILTERS} per connection)"
            self.filters.append((name, value))
            return f"+OK filter added. [{name}]=[{value}]"
        return "-ERR invalid syntax"

    # --- events ------------------------------------------------------------------------

    @property
    def wants_everything(self) -> bool:
        """Every event, without looking: `event ... ALL`, no filter, no myevents."""
        return self.events_on and "ALL" in self.event_list and not self.filters and not self.myevents

    def wants(self, ev: SimEvent) -> bool:
        """Subscription, then filters, then myevents: event_handler() in mod_event_socket.c."""
        if not self.events_on:
            return False
        events = self.event_list
        if "ALL" not in events:
            if ev.event_name not in events:
                return False
            if ev.event_name == "CUSTOM" and ev.subclass and ev.subclass not in self.custom:
                return False
        if self.filters and not self._passes_filters(ev):
            return False
        if self.myevents:
            uuid = ev.unique_id
            if uuid is None or (self.my_uuid is not None and uuid != self.my_uuid):
                return False
        return True

    def _passes_filters(self, ev: SimEvent) -> bool:
        send = False
        for name, value in self.filters:
            hval = ev.get(name)
            if hval is None:
                continue
            positive = True
            i = 0
            while i < len(value) and value[i] in "+- ":
                if value[i] != " ":
                    positive = value[i] == "+"
                i += 1
            if send and positive:
                continue
            if value.startswith("/"):
                pattern = self._compiled(value)
                matched = bool(pattern and pattern.search(hval))
            else:
                matched = hval.lower() == value[i:].lower()
            if matched:
                if not positive:
                    return False
                send = True
        return send

    def _compiled(self, value: str) -> Optional[re.Pattern]:
        if value not in self._regex:
            body = value[1:]
            flags = 0
            end = body.rfind("/")
            if end >= 0:
                opts = body[end + 1:]
                body = body[:end]
                flags |= re.IGNORECASE if "i" in opts else 0
                flags |= re.DOTALL if "s" in opts else 0
            try:
                self._regex[value] = re.compile(body, flags) if len(body) <= MAX_FILTER_REGEX else None
            except re.error:
                self._regex[value] = None
        return self._regex[value]


def _header(headers: list[tuple[str, str]], name: str) -> Optional[str]:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None
