"""FreeSWITCH's ``ESL`` module without a compiler: the SWIG binding's API in pure Python.

Existing programs keep working unchanged::

    from eslkit import ESL        # or plain `import ESL` after `eslkit build --pure --install`

    con = ESL.ESLconnection("127.0.0.1", "8021", "ClueCon")
    con.events("plain", "CHANNEL_ANSWER")
    while con.connected():
        e = con.recvEvent()
        print(e.getHeader("Caller-Caller-ID-Number"))

The classes are esl_oop.cpp's ``ESLconnection`` and ``ESLevent`` as SWIG shows
them to Python — the same names, arguments, return values (None, 0/1, an
event of type SERVER_DISCONNECTED …, never an exception for a network
problem) and the same TypeError for an argument SWIG would refuse.  Underneath
is `eslkit.libesl`, a port of the C library on eslkit's protocol parser.
What differs from the C module, and why, is in docs/esl.md.
"""

from __future__ import annotations

from eslkit.libesl import log
from eslkit.libesl.event import BOTTOM, CUSTOM, MESSAGE, PUSH, UNSHIFT, EslEvent, fold, from_json, name_event
from eslkit.libesl.handle import SUCCESS, Handle, atoi, esl_true

__all__ = ["ESLevent", "ESLconnection", "eslSetLogLevel"]

_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_CONNECTION_OVERLOADS = """Wrong number or type of arguments for overloaded function 'new_ESLconnection'.
  Possible C/C++ prototypes are:
    ESLconnection::ESLconnection(char const *,int const,char const *,char const *)
    ESLconnection::ESLconnection(char const *,int const,char const *)
    ESLconnection::ESLconnection(char const *,char const *,char const *,char const *)
    ESLconnection::ESLconnection(char const *,char const *,char const *)
    ESLconnection::ESLconnection(int)
"""
_EVENT_OVERLOADS = """Wrong number or type of arguments for overloaded function 'new_ESLevent'.
  Possible C/C++ prototypes are:
    ESLevent::ESLevent(char const *,char const *)
    ESLevent::ESLevent(esl_event_t *,int)
    ESLevent::ESLevent(ESLevent *)
"""


# --- what SWIG does with arguments ------------------------------------------------------------


def _is_text(value) -> bool:
    """Would SWIG take this for a ``char const *``? (None is NULL.)"""
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")  # SWIG refuses what is not UTF-8 (lone surrogates)
    except UnicodeEncodeError:
        return False
    return True


def _text(value, method: str, argnum: int) -> str | None:
    """A ``char const *`` argument: str or None, cut at a NUL as C reads it."""
    if not _is_text(value):
        raise TypeError(f"in method '{method}', argument {argnum} of type 'char const *'")
    return _cut(value)


def _cut(value: str | None) -> str | None:
    if value is not None and "\0" in value:
        return value[: value.index("\0")]
    return value


def _needed_text(value, method: str, argnum: int) -> str:
    """A ``char const *`` the C code reads without checking for NULL: where the C module
    would crash on None, this module raises TypeError instead."""
    if value is None:
        raise TypeError(f"in method '{method}', argument {argnum} of type 'char const *' "
                        "(None would crash the C library)")
    return _text(value, method, argnum)


def _is_int(value) -> bool:
    return isinstance(value, int) and _INT_MIN <= value <= _INT_MAX


def _int(value, method: str, argnum: int) -> int:
    if isinstance(value, int):
        if _INT_MIN <= value <= _INT_MAX:
            return int(value)
        raise OverflowError(f"in method '{method}', argument {argnum} of type 'int'")
    raise TypeError(f"in method '{method}', argument {argnum} of type 'int'")


def _too_many(function: str, most: int, given: int) -> str:
    """SWIG's lead-in when an overloaded constructor gets more arguments than any takes."""
    if given <= most:
        return ""
    return f"{function} expected at most {most} arguments, got {given}\nAdditional information:\n"


def _oop_error(line: int, func: str, message: str) -> None:
    log.log(log.ERROR, f"esl_oop.cpp:{line}", func, message)


# --- ESLevent ---------------------------------------------------------------------------------


class ESLevent:
    """An event: ``ESLevent(type[, subclass])``, ``ESLevent("json", text)``, or one the
    connection returns.  ``event`` is the libesl event underneath (None after it was
    moved into another ESLevent), ``serialized_string`` the last serialize() result."""

    thisown = True  # SWIG's ownership flag: kept for programs that set it; nothing to free here

    def __init__(self, *args):
        self.event: EslEvent | None = None
        self.serialized_string: str | None = None
        self.mine = 0
        self._hp: int | None = None
        if len(args) == 1 and isinstance(args[0], ESLevent):  # ESLevent(ESLevent *me): take it over
            other = args[0]
            self.event, self.mine = other.event, other.mine
            other.event, other.mine, other.serialized_string = None, 0, None
            return
        if 1 <= len(args) <= 2 and (args[0] is None or isinstance(args[0], EslEvent)) \
                and (len(args) == 1 or _is_int(args[1])):  # ESLevent(esl_event_t *wrap_me, int free_me = 0)
            self.event = args[0]
            self.mine = int(args[1]) if len(args) == 2 else 0
            return
        if 1 <= len(args) <= 2 and isinstance(args[0], str) and _is_text(args[0]) \
                and (len(args) == 1 or _is_text(args[1])):
            self._create(_text(args[0], "new_ESLevent", 1),
                         _text(args[1], "new_ESLevent", 2) if len(args) == 2 else None)
            return
        raise TypeError(_too_many("new_ESLevent", 2, len(args)) + _EVENT_OVERLOADS)

    def _create(self, kind: str, subclass: str | None) -> None:
        """ESLevent(const char *type, const char *subclass_name = NULL)."""
        if fold(kind) == "json" and subclass:
            # Unparsable text leaves no event, yet counts as success: esl_event_create_json()
            # returns ESL_FALSE, which is ESL_SUCCESS (0).
            self.event = from_json(subclass)
        else:
            event_id = name_event(kind)
            if event_id is None:
                event_id = MESSAGE
            if subclass and event_id != CUSTOM:
                log.log(log.WARNING, "esl_oop.cpp:310", "ESLevent",
                        "Changing event type to custom because you specified a subclass name!\n")
                event_id = CUSTOM
            self.event = EslEvent.create(event_id, subclass)
            if self.event is None:
                _oop_error(315, "ESLevent", "Failed to create event!\n")
        self.mine = 1

    def __repr__(self) -> str:
        kind = self.event.name if self.event is not None else "no event"
        return f"<{type(self).__module__}.ESLevent; {kind} at {id(self):#x} >"

    def serialize(self, format=None) -> str:
        """The event as text: "json" (cJSON's layout), anything else the plain
        "Name: value" form with URL-encoded values ("xml" too: libesl has no XML writer)."""
        format = _text(format, "ESLevent_serialize", 2)
        self.serialized_string = None
        if self.event is None:
            return ""
        if format is not None and format.lower() == "json":
            text = self.event.serialize_json()
        else:
            text = self.event.serialize(True)
        self.serialized_string = text
        return text

    def setPriority(self, *args) -> bool:
        # SWIG cannot convert any argument to esl_priority_t (not wrapped): only the default works.
        if args:
            raise TypeError("in method 'ESLevent_setPriority', argument 2 of type 'esl_priority_t'")
        if self.event is None:
            _oop_error(412, "setPriority", "Trying to setPriority an event that does not exist!\n")
            return False
        self.event.set_priority(0)
        return True

    def getHeader(self, header_name, idx=-1) -> str | None:
        """A header's value (any case; the first of that name), element ``idx`` of a
        multi-value header, or None."""
        if type(header_name) is not str or not header_name.isascii() or "\0" in header_name:
            header_name = _text(header_name, "ESLevent_getHeader", 2)
        if type(idx) is not int or not _INT_MIN <= idx <= _INT_MAX:
            idx = _int(idx, "ESLevent_getHeader", 3)
        if self.event is None:
            _oop_error(424, "getHeader", "Trying to getHeader an event that does not exist!\n")
            return None
        return self.event.get_header(header_name, idx)

    def getBody(self) -> str | None:
        if self.event is None:
            _oop_error(503, "getBody", "Trying to getBody an event that does not exist!\n")
            return None
        return self.event.body

    def getType(self) -> str:
        if self.event is None:
            _oop_error(516, "getType", "Trying to getType an event that does not exist!\n")
            return "invalid"
        return self.event.name

    def addBody(self, value) -> bool:
        value = _text(value, "ESLevent_addBody", 2)
        if self.event is None:
            _oop_error(489, "addBody", "Trying to addBody an event that does not exist!\n")
            return False
        self.event.body = "(null)" if value is None else value  # printf("%s", NULL)
        return True

    def _add(self, stack: int, line: int, method: str, header_name, value) -> bool:
        header_name = _needed_text(header_name, f"ESLevent_{method}", 2)
        value = _text(value, f"ESLevent_{method}", 3)
        if self.event is None:
            _oop_error(line, method, "Trying to addHeader an event that does not exist!\n")
            return False
        return self.event.add_header_string(stack, header_name, value)

    def addHeader(self, header_name, value) -> bool:
        return self._add(BOTTOM, 436, "addHeader", header_name, value)

    def pushHeader(self, header_name, value) -> bool:
        return self._add(PUSH, 449, "pushHeader", header_name, value)

    def unshiftHeader(self, header_name, value) -> bool:
        return self._add(UNSHIFT, 462, "unshiftHeader", header_name, value)

    def delHeader(self, header_name) -> bool:
        header_name = _needed_text(header_name, "ESLevent_delHeader", 2)
        if self.event is None:
            _oop_error(475, "delHeader", "Trying to delHeader an event that does not exist!\n")
            return False
        self.event.del_header(header_name)
        return True

    def firstHeader(self) -> str | None:
        if self.event is not None:
            self._hp = 0
        return self.nextHeader()

    def nextHeader(self) -> str | None:
        hp = self._hp
        if hp is None or self.event is None or hp >= len(self.event.names):
            self._hp = None
            return None
        self._hp = hp + 1
        return self.event.names[hp]


def _wrap(event: EslEvent | None) -> ESLevent | None:
    """``new ESLevent(esl_event_dup(e), 1)``: what the connection hands back."""
    if event is None:
        return None
    out = ESLevent.__new__(ESLevent)
    out.event, out.serialized_string, out.mine, out._hp = event.dup(), None, 1, None
    return out


def _disconnected() -> ESLevent:
    return ESLevent("server_disconnected")


# --- ESLconnection ----------------------------------------------------------------------------


class ESLconnection:
    """``ESLconnection(host, port, password)``, ``(host, port, user, password)`` (port as a
    string or a number), or ``ESLconnection(fd)`` for an outbound socket FreeSWITCH opened
    to you.  A failed connection is an object whose ``connected()`` is 0."""

    thisown = True

    def __init__(self, *args):
        self._handle = handle = Handle()
        n = len(args)
        if n == 1 and _is_int(args[0]):
            handle.attach(args[0])
            return
        if n in (3, 4) and all(_is_text(a) for i, a in enumerate(args) if i != 1):
            host, port = args[0], args[1]
            user = args[2] if n == 4 else None
            password = args[-1]
            if _is_int(port) or (_is_text(port) and port is not None):
                port = port if _is_int(port) else atoi(_cut(port))
                handle.connect(_cut(host), port, _cut(user), _cut(password))
                return
            if port is None:
                return  # the C constructor returns before connecting
        raise TypeError(_too_many("new_ESLconnection", 4, n) + _CONNECTION_OVERLOADS)

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle is not None and not handle.destroyed:
            handle.disconnect()

    def __repr__(self) -> str:
        state = "connected" if self._handle.connected else "not connected"
        return f"<{type(self).__module__}.ESLconnection; {state} at {id(self):#x} >"

    def socketDescriptor(self) -> int:
        handle = self._handle
        return handle.sock.fileno() if handle.connected and handle.sock is not None else -1

    def connected(self) -> int:
        return int(self._handle.connected)

    def getInfo(self) -> ESLevent | None:
        """The channel's data on an outbound socket (the reply to "connect")."""
        handle = self._handle
        return _wrap(handle.info_event) if handle.connected else None

    def send(self, cmd) -> int:
        """Send a command without waiting for its reply: 0 if sent, 1 if not."""
        return self._handle.send(_needed_text(cmd, "ESLconnection_send", 2))

    def sendRecv(self, cmd) -> ESLevent | None:
        """Send a command and return its reply (api/response or command/reply)."""
        return self._send_recv(_needed_text(cmd, "ESLconnection_sendRecv", 2))

    def _send_recv(self, command: str) -> ESLevent | None:
        handle = self._handle
        if handle.send_recv(command) == SUCCESS:
            return _wrap(handle.last_sr_event)
        return None

    def api(self, cmd, arg=None) -> ESLevent | None:
        cmd = _text(cmd, "ESLconnection_api", 2)
        arg = _text(arg, "ESLconnection_api", 3)
        if cmd is None:
            return None
        return self._send_recv(f"api {cmd} {arg or ''}")

    def bgapi(self, cmd, arg=None, job_uuid=None) -> ESLevent | None:
        cmd = _text(cmd, "ESLconnection_bgapi", 2)
        arg = _text(arg, "ESLconnection_bgapi", 3)
        job_uuid = _text(job_uuid, "ESLconnection_bgapi", 4)
        if cmd is None:
            return None
        command = f"bgapi {cmd}{' ' if arg is not None else ''}{arg or ''}"
        if job_uuid is not None:
            command += f"\nJob-UUID: {job_uuid}"
        return self._send_recv(command)

    def sendEvent(self, send_me) -> ESLevent:
        """Fire an event on the switch.  Returns what libesl returns: a copy of the last event
        recvEvent took (not the reply), or a SERVER_DISCONNECTED event."""
        send_me = self._event_arg(send_me, "ESLconnection_sendEvent")
        handle = self._handle
        if handle.sendevent(send_me.event) == SUCCESS:
            last = handle.last_ievent or handle.last_event
            if last is not None:
                return _wrap(last)
        return _disconnected()

    def sendMSG(self, send_me, uuid=None) -> int:
        send_me = self._event_arg(send_me, "ESLconnection_sendMSG")
        uuid = _text(uuid, "ESLconnection_sendMSG", 3)
        if send_me.event is None:
            return 1  # the C library would crash serialising no event
        return 0 if self._handle.sendmsg(send_me.event, uuid) == SUCCESS else 1

    @staticmethod
    def _event_arg(value, method: str) -> ESLevent:
        if not isinstance(value, ESLevent):
            # SWIG takes None for NULL, on which the C library crashes.
            raise TypeError(f"in method '{method}', argument 2 of type 'ESLevent *'")
        return value

    def recvEvent(self) -> ESLevent:
        """The next event (or other frame) from the switch; blocks.  A SERVER_DISCONNECTED
        event when the connection is gone."""
        handle = self._handle
        if handle.recv_event(True) == SUCCESS:
            last = handle.last_ievent or handle.last_event
            if last is not None:
                return _wrap(last)
        return _disconnected()

    def recvEventTimed(self, ms) -> ESLevent | None:
        """Like recvEvent, but None after ``ms`` milliseconds without one (or when the
        connection is gone).  ``recvEventTimed(0)`` waits for ever, as in the C library."""
        ms = _int(ms, "ESLconnection_recvEventTimed", 2)
        handle = self._handle
        if handle.recv_event_timed(ms, True) == SUCCESS:
            last = handle.last_ievent or handle.last_event
            if last is not None:
                return _wrap(last)
        return None

    def filter(self, header, value) -> ESLevent | None:
        handle = self._handle
        status = handle.filter(_text(header, "ESLconnection_filter", 2), _text(value, "ESLconnection_filter", 3))
        if status == SUCCESS and handle.last_sr_event is not None:
            return _wrap(handle.last_sr_event)
        return None

    def events(self, etype, value) -> int:
        """Subscribe: ``events("plain" | "json" | "xml", "ALL" or names)``; 0 on success."""
        etype = _needed_text(etype, "ESLconnection_events", 2)
        value = _text(value, "ESLconnection_events", 3)
        kind = etype if etype in ("xml", "json") else "plain"
        return self._handle.events(kind, value)

    def execute(self, app, arg=None, uuid=None) -> ESLevent | None:
        handle = self._handle
        status = handle.execute(_text(app, "ESLconnection_execute", 2), _text(arg, "ESLconnection_execute", 3),
                                _text(uuid, "ESLconnection_execute", 4))
        return _wrap(handle.last_sr_event) if status == SUCCESS else None

    def executeAsync(self, app, arg=None, uuid=None) -> ESLevent | None:
        handle = self._handle
        app = _text(app, "ESLconnection_executeAsync", 2)
        arg = _text(arg, "ESLconnection_executeAsync", 3)
        uuid = _text(uuid, "ESLconnection_executeAsync", 4)
        saved, handle.async_execute = handle.async_execute, 1
        try:
            status = handle.execute(app, arg, uuid)
        finally:
            handle.async_execute = saved
        return _wrap(handle.last_sr_event) if status == SUCCESS else None

    def setAsyncExecute(self, val) -> int:
        val = _text(val, "ESLconnection_setAsyncExecute", 2)
        if val is not None:
            self._handle.async_execute = esl_true(val)
        return self._handle.async_execute

    def setEventLock(self, val) -> int:
        val = _text(val, "ESLconnection_setEventLock", 2)
        if val is not None:
            self._handle.event_lock = esl_true(val)
        return self._handle.event_lock

    def disconnect(self) -> int:
        handle = self._handle
        if not handle.destroyed:
            handle.disconnect()
        return 0


def eslSetLogLevel(level) -> None:
    """Turn on libesl's logging to stderr, up to ``level`` (0 emergencies … 7 debug)."""
    log.set_default_logger(_int(level, "eslSetLogLevel", 1))
