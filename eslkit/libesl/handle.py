"""esl.c: libesl's connection handle — connect, send, receive, the reply queue.

A blocking socket framed by `eslkit.protocol.Parser`; the rest follows
esl_handle_t and the functions of 1.10.12's esl.c that ESLconnection calls:

* what a received frame becomes: an ESL_EVENT_SOCKET_DATA event of its
  (URL-decoded) headers and body, ``last_event``; for ``text/event-plain`` and
  ``text/event-json`` also the event inside, ``last_ievent``;
* ``send_recv`` waits for the next ``api/response`` or ``command/reply``: any
  other frame that arrives first (an event) is queued (``race``) for the next
  ``recv_event``;
* a ``text/disconnect-notice`` with a body and without ``linger``, end of
  stream, or a socket error marks the handle disconnected;
* ``recv_event_timed`` returns BREAK when nothing arrives in time, or when
  another thread holds the handle.

Statuses are esl_status_t: SUCCESS 0, FAIL 1, BREAK 2.
"""

from __future__ import annotations

import os
import select
import socket
import threading
from collections import deque

from eslkit.errors import ProtocolError
from eslkit.libesl import log
from eslkit.libesl.event import EslEvent, fold, from_frame, from_json, from_plain
from eslkit.libesl.url import decode, to_bytes
from eslkit.protocol import Parser

SUCCESS, FAIL, BREAK = 0, 1, 2
READ_SIZE = 256 * 1024
# libesl has no limit: a big `api show channels` must arrive whole.
NO_LIMIT = 1 << 62
_TRUE = ("yes", "on", "true", "enabled", "active", "allow")


def snprintf(text: str, size: int) -> str:
    """The first ``size - 1`` bytes of ``text``: what a C buffer of ``size`` bytes keeps."""
    data = to_bytes(text)
    return text if len(data) < size else data[: size - 1].decode("utf-8", "surrogateescape")


def c_format(value: str | None) -> str:
    """What glibc's printf writes for a ``%s`` of this string, "(null)" for NULL."""
    return "(null)" if value is None else value


def esl_true(value: str) -> int:
    """esl_true() from esl_config.h: yes/on/true/enabled/active/allow, or a non-zero number."""
    return int(value.lower() in _TRUE or atoi(value) != 0)


def atoi(text: str) -> int:
    text = text.lstrip(" \t\n\v\f\r")
    sign = -1 if text[:1] == "-" else 1
    digits = text[1:] if text[:1] in ("-", "+") else text
    n = 0
    for ch in digits:
        if not "0" <= ch <= "9":
            break
        n = n * 10 + ord(ch) - 48
    return sign * n


class Handle:
    """esl_handle_t and the esl.c functions on it."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # esl_mutex_t is recursive
        self._clear()

    def _clear(self) -> None:
        """memset(handle, 0, sizeof(*handle))."""
        self.sock: socket.socket | None = None
        self.parser: Parser | None = None
        self.packets: deque = deque()  # whole frames read from the socket, not yet taken
        self.broken = False  # the stream stopped being the event socket: no more frames
        self.connected = False
        self.destroyed = False
        self.last_event: EslEvent | None = None
        self.last_sr_event: EslEvent | None = None
        self.last_ievent: EslEvent | None = None
        self.info_event: EslEvent | None = None
        self.race: deque = deque()
        self.async_execute = 0
        self.event_lock = 0

    # --- connecting -------------------------------------------------------------------

    def connect(self, host: str | None, port: int, user: str | None, password: str | None) -> int:
        """esl_connect_timeout(..., 0): connect, take auth/request, log in; no timeout."""
        self.sock = None
        try:
            if host is None:
                raise OSError("Cannot resolve host")
            family, _, _, _, address = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0]
            if family not in (socket.AF_INET, socket.AF_INET6):
                raise OSError("Host resolves to unsupported address family")
            self.sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            self.destroyed = False
            self.sock.connect((address[0], port & 0xFFFF) + tuple(address[2:]))
        except (OSError, UnicodeError):
            return self._fail()
        self._start()
        if self.recv_event(False) != SUCCESS:
            return self._fail()
        if _lower(self.last_event.get_header("content-type")) != "auth/request":
            return self._fail()
        if user:
            command = snprintf(f"userauth {user}:{c_format(password)}\n\n", 256)
        else:
            command = snprintf(f"auth {c_format(password)}\n\n", 256)
        self.send(command)
        if self.recv_event(False) != SUCCESS:
            return self._fail()
        if _lower(self.last_event.get_header("reply-text")) != "+ok accepted":
            return self._fail()
        return SUCCESS

    def attach(self, fd: int) -> int:
        """esl_attach_handle(): an outbound socket FreeSWITCH connected to us; "connect" for
        the channel's data, kept as ``info_event``."""
        if fd == -1:
            return FAIL
        try:
            self.sock = socket.socket(fileno=fd)
        except OSError:  # not a socket: libesl's send fails and esl_disconnect() closes it
            try:
                os.close(fd)
            except OSError:
                pass
            self._clear()
            self.destroyed = True
            return FAIL
        self._start()
        self.send_recv("connect\n\n")
        if self.last_sr_event is not None:
            self.info_event, self.last_sr_event = self.last_sr_event, None
            return SUCCESS
        self.disconnect()
        return FAIL

    def _start(self) -> None:
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # sock_setup() does not look at the result either
        self.parser = Parser(NO_LIMIT, raw=True)
        self.connected = True

    def _fail(self) -> int:
        self.disconnect()
        return FAIL

    def disconnect(self) -> int:
        """esl_disconnect(): close, forget everything, and never again (``destroyed``)."""
        if self.destroyed:
            return FAIL
        if self.sock is not None:
            try:  # shutdown first: it wakes a thread blocked in recv() on this socket, close does not
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        with self.lock:
            self._clear()
            self.destroyed = True
        return SUCCESS

    @property
    def usable(self) -> bool:
        return self.connected and self.sock is not None

    # --- sending ------------------------------------------------------------------------

    def send(self, command: str) -> int:
        """esl_send(): the command as given (its caller wrote any header lines), then, in a
        second write, a blank line unless it ends with one.  The second write is libesl's
        too: it is the one that fails when the switch has already hung up."""
        if not self.usable:
            return FAIL
        _debug("esl.c:1495", "esl_send", f"SEND\n{command}\n")
        data = to_bytes(command)
        try:
            self.sock.sendall(data)
            if not data.endswith(b"\n\n"):
                self.sock.sendall(b"\n\n")
        except OSError:
            self.connected = False
            return FAIL
        return SUCCESS

    def send_recv(self, command: str) -> int:
        """esl_send_recv(): send, then read until an api/response or command/reply, queueing
        whatever else arrives first (events) for recv_event."""
        if not self.usable:
            return FAIL
        with self.lock:
            self.last_sr_event = None
            status = self.send(command)
            if status != SUCCESS:
                return status
            while True:
                self.last_sr_event = None
                status = self.recv_event(False, save=True)
                reply = self.last_sr_event
                if reply is not None:
                    ctype = _lower(reply.get_header("content-type"))
                    if ctype and ctype not in ("api/response", "command/reply"):
                        self.race.append(reply)
                        self.last_sr_event = None
                        if not self.usable:
                            self.connected = False
                            return FAIL
                        continue
                return status

    def execute(self, app: str | None, arg: str | None, uuid: str | None) -> int:
        """esl_execute(): sendmsg with call-command: execute, into C buffers of fixed size."""
        if not self.usable:
            return FAIL
        head = snprintf(f"sendmsg {uuid}", 128) if uuid is not None else "sendmsg"
        app_line = snprintf(f"execute-app-name: {app}\n", 512) if app is not None else ""
        arg_line = snprintf(f"execute-app-arg: {arg}\n", 4096) if arg is not None else ""
        command = (f"{head}\ncall-command: execute\n{app_line}{arg_line}"
                   f"{'event-lock: true' + chr(10) if self.event_lock else ''}"
                   f"{'async: true' + chr(10) if self.async_execute else ''}\n")
        return self.send_recv(snprintf(command, 5120))

    def sendevent(self, event: EslEvent | None) -> int:
        """esl_sendevent(): "sendevent NAME" and the event's headers, not URL-encoded."""
        if not self.connected or event is None:
            return FAIL
        text = event.serialize(encode_values=False)
        _debug("esl.c:504", "esl_sendevent", f"SEND EVENT\n{text}\n")
        return self.send_recv(snprintf(f"sendevent {event.name}\n{text}", len(to_bytes(text)) + 100))

    def sendmsg(self, event: EslEvent, uuid: str | None) -> int:
        """esl_sendmsg(): "sendmsg [uuid]" and the event's headers, not URL-encoded."""
        if not self.usable:
            return FAIL
        text = event.serialize(encode_values=False)
        command = f"sendmsg {uuid}\n{text}" if uuid is not None else f"sendmsg\n{text}"
        command = snprintf(command, len(to_bytes(text)) + 100)
        _debug("esl.c:587", "esl_sendmsg", f"{command}{text}\n")
        return self.send_recv(command)

    def filter(self, header: str | None, value: str | None) -> int:
        if not self.usable:
            return FAIL
        return self.send_recv(snprintf(f"filter {c_format(header)} {c_format(value)}\n\n", 1024))

    def events(self, kind: str, value: str | None) -> int:
        if not self.usable:
            return FAIL
        return self.send_recv(snprintf(f"event {kind} {c_format(value)}\n\n", 1024))

    # --- receiving ----------------------------------------------------------------------

    def recv_event(self, check_q: bool, save: bool = False) -> int:
        """esl_recv_event(): one frame (or the first queued one) into ``last_event`` (or, with
        ``save``, ``last_sr_event``), and the event inside it into ``last_ievent``."""
        if not self.usable:
            return FAIL
        debug = log.enabled(log.DEBUG)
        with self.lock:
            self.last_ievent = None
            if check_q and self.race:
                revent = self.race.popleft()
                raw_body = None
            else:
                frame = self._next_frame()
                if frame is None:
                    self.connected = False
                    return FAIL
                revent = from_frame(frame.headers, frame.body)
                raw_body = frame.body
                if debug:
                    for name, value in frame.headers:
                        value = decode(value.lstrip(" \t"))
                        _debug("esl.c:1303", "esl_recv_event", f"RECV HEADER [{name}] = [{value}]\n")
            if save:
                self.last_sr_event = revent
                return SUCCESS
            self.last_event = revent
            ctype = _lower(revent.get_header("content-type"))
            body = revent.body
            if ctype == "text/disconnect-notice" and body is not None:
                if _lower(revent.get_header("content-disposition")) != "linger":
                    self.connected = False
                    return FAIL
            if body is not None:
                if ctype == "text/event-plain":
                    self.last_ievent = inner = from_plain(raw_body if raw_body is not None else to_bytes(body))
                    if debug:
                        for name, value in zip(inner.names, inner.values):
                            _debug("esl.c:1426", "esl_recv_event", f"RECV INNER HEADER [{name}] = [{value}]\n")
                        _debug("esl.c:1456", "esl_recv_event", f"RECV EVENT\n{inner.serialize(False)}\n")
                elif ctype == "text/event-json":
                    self.last_ievent = from_json(body)
            if debug:
                _debug("esl.c:1467", "esl_recv_event", f"RECV MESSAGE\n{revent.serialize(False)}\n")
            return SUCCESS

    def recv_event_timed(self, ms: int, check_q: bool) -> int:
        """esl_recv_event_timed(): like recv_event, or BREAK if nothing is readable within
        ``ms`` (0: wait for ever, as recv_event; negative: for ever too, as the C cast makes it)."""
        if not ms:
            return self.recv_event(check_q)
        if not self.usable:
            return FAIL
        if check_q:
            with self.lock:
                if self.race or self.packets:
                    return self.recv_event(check_q)
        if self.packets or (self.parser is not None and self.parser.buffered):
            readable = True
        else:
            try:
                poller = select.poll()
                poller.register(self.sock, select.POLLIN | select.POLLERR)
                ready = poller.poll(ms if ms > 0 else None)
            except (OSError, ValueError):
                self.connected = False
                return FAIL
            readable = any(mask & select.POLLIN for _, mask in ready)
        if not readable or not self.lock.acquire(blocking=False):
            return BREAK
        try:
            return FAIL if self.recv_event(check_q) != SUCCESS else SUCCESS
        finally:
            self.lock.release()

    def _next_frame(self):
        """The next whole frame, reading the socket as needed; None at end of stream, on a
        socket error, or once the peer sent bytes that are not the event socket."""
        packets = self.packets
        while not packets:
            if self.broken:
                return None
            try:
                data = self.sock.recv(READ_SIZE)
            except OSError:
                return None
            if not data:
                return None
            try:
                packets.extend(self.parser.feed(data))
            except ProtocolError as exc:  # the frames before the bad bytes still count
                packets.extend(exc.frames)
                self.broken = True
        return packets.popleft()


def _lower(value: str | None) -> str | None:
    """For strcasecmp() against an ASCII literal (NULL never matches)."""
    return fold(value) if value is not None else None


def _debug(where: str, func: str, message: str) -> None:
    log.log(log.DEBUG, where, func, message)

