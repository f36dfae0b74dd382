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

from typing import Callable, Optional

from eslkit.protocol import api_response, command_reply
from eslkit.sim.api import str2level
from eslkit.sim.events import SimEvent
from eslkit.sim.switch import Switch
from eslkit.subscription import Subscription

MAX_FILTERS = 256  # each filter costs every event a lookup; FreeSWITCH has no limit, one client must not stall all



class Session:
    """Subscriptions, filters, format and log level of one connection."""

    def __init__(self, switch: Switch, on_first_subscribe: Optional[Callable[["Session"], None]] = None):
        self.switch = switch
        self.authed = False
        self.format = "plain"
        self.subscription = Subscription()  # event names and filters, as the switch keeps them
        self.myevents = False
        self.my_uuid: Optional[str] = None
        self.log_level: Optional[int] = None
        self.subscribed_once = False
        self._on_first_subscribe = on_first_subscribe

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
            return command_reply(self.subscription.filters.command(cmd[7:], MAX_FILTERS)), False
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
            return api_response(self.switch.api(name, arg or None)), False
        if low.startswith("bgapi "):
            name, _, arg = cmd[6:].partition(" ")
            job = _header(headers, "job-uuid") or self.switch.new_uuid()
            self.switch.bgapi(job, name, arg or None)
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
            if not self.subscription.names.noevents():
                return command_reply("-ERR not listening for events"), False
            return command_reply("+OK no longer listening for events"), False
        return command_reply("-ERR command not found"), False

    @property
    def events_on(self) -> bool:
        """LFLAG_EVENTS: the connection listens for events at all."""
        return self.subscription.names.on

    def _words(self, cmd: str, skip: int) -> list[str]:
        rest = cmd[skip:]
        space = rest.find(" ")
        return [] if space < 0 else rest[space + 1:].split(" ")

    def _event(self, cmd: str) -> str:
        words = self._words(cmd, 5)
        if words and words[0].lower() in ("plain", "json", "xml"):
            self.format = words.pop(0).lower()
        if not self.subscription.names.event(words):
            return "-ERR no keywords supplied"
        self._enable()
        return f"+OK event listener enabled {self.format}"

    def _nixevent(self, cmd: str) -> str:
        if not self.subscription.names.nixevent(self._words(cmd, 8)):
            return "-ERR no keywords supplied"
        self._enable()
        return "+OK events nixed"

    def _enable(self) -> None:
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
        names = self.subscription.names
        names.on = True
        names.types.update((
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


    # --- events ------------------------------------------------------------------------

    @property
    def wants_everything(self) -> bool:
        """Every event, without looking: `event ... ALL`, no filter, no myevents."""
        return self.subscription.everything and not self.myevents

    def wants(self, ev: SimEvent) -> bool:
        """Subscription and filters, then myevents: event_handler() in mod_event_socket.c."""
        if not self.subscription.wants(ev):
            return False
        if self.myevents:
            uuid = ev.unique_id
            if uuid is None or (self.my_uuid is not None and uuid != self.my_uuid):
                return False
        return True


def _header(headers: list[tuple[str, str]], name: str) -> Optional[str]:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None
