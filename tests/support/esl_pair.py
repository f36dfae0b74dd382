"""The C ESL module and eslkit's pure one side by side: the difference suite's tools.

* the ``esl_modules`` fixture — (the C module, `eslkit.ESL`);
* ``c_module()`` — the SWIG ``ESL`` built from the python-ESL sdist
  (`tests.support.esl_sdist.build_esl_module`), imported into this process;
* ``snapshot(event)`` — everything a program can read from an ``ESLevent``, in an
  order that reaches the pure module's lazy paths first (JSON and lookups before
  iterating), so two modules can be compared with one ``==``;
* ``describe(result)`` — the same for any return value (None, 0/1, an event);
* `ScriptedSwitch` — a loopback server that greets, answers each command with
  bytes a test chooses (real captured frames, or deliberately odd ones) and
  records every byte each client sent, so what the two modules send can be
  compared byte for byte too.
"""

from __future__ import annotations

import importlib
import socket
import sys
import threading
from typing import Callable, Optional

import pytest

from eslkit.protocol import CommandParser, api_response, auth_request, command_reply

# Names looked up on every event before anything else touches it.
PROBES = ("Event-Name", "event-name", "EVENT-NAME", "Unique-ID", "Content-Type", "Content-Length",
          "Reply-Text", "Job-UUID", "Caller-Caller-ID-Name", "variable_DP_MATCH", "Event-Subclass",
          "_body", "No-Such-Header", "", "Event-Name[0]", "a:b")

_C = None


def c_module():
    """The C ESL module (SWIG), built once per machine and imported here as ``ESL``."""
    global _C
    if _C is None:
        from tests.support.esl_sdist import build_esl_module

        where = str(build_esl_module())
        if where not in sys.path:
            sys.path.insert(0, where)
        module = importlib.import_module("ESL")
        if not hasattr(module, "_ESL"):
            raise RuntimeError(f"`import ESL` gave {module.__file__}, not the C module in {where}")
        _C = module
    return _C


@pytest.fixture(scope="session")
def esl_modules():
    """(the C module, eslkit.ESL).  Where the C module cannot be built this is a missing
    prerequisite (a failure under CI): a difference suite with one side missing proves nothing."""
    from tests.support.esl_sdist import EslSdistUnavailable
    from tests.support.prerequisites import missing

    try:
        c = c_module()
    except EslSdistUnavailable as exc:
        missing(f"the difference suite needs the C ESL module, which cannot be built here: {exc}")
    from eslkit import ESL as pure

    return c, pure


def snapshot(event, plain: bool = True) -> Optional[dict]:
    """``plain=False`` leaves out the plain (URL-encoded) serialisations: for values beyond
    ASCII, which the C library encodes with undefined behaviour (see docs/esl.md)."""
    if event is None:
        return None
    out = {"json_first": event.serialize("json"), "type": event.getType()}
    out["lookups"] = [event.getHeader(name, idx) for name in PROBES for idx in (-1, 0, 1, 2)]
    names = []
    name = event.firstHeader()
    while name is not None:
        names.append(name)
        name = event.nextHeader()
    out["names"] = names
    out["after_end"] = event.nextHeader()
    out["headers"] = [[event.getHeader(n), event.getHeader(n.lower()), event.getHeader(n.upper()),
                       event.getHeader(n, 0), event.getHeader(n, 1), event.getHeader(n, 5)] for n in names]
    out["body"] = event.getBody()
    out["json"] = event.serialize("json")
    out["JSON"] = event.serialize("JSON")
    if plain:
        out["plain"] = event.serialize()
        out["xml"] = event.serialize("xml")
    out["serialized_string"] = event.serialized_string
    out["mine"] = event.mine
    return out


def describe(result):
    """A return value as data: events by their snapshot, anything else as it is."""
    if hasattr(result, "serialize") and hasattr(result, "getHeader"):
        return {"event": snapshot(result)}
    return result


def both(c_call: Callable, pure_call: Callable):
    """(C result, pure result), described."""
    return describe(c_call()), describe(pure_call())


# --- a switch that says what a test wants ---------------------------------------------------


def default_reply(command: str, headers: list, body: Optional[bytes]) -> Optional[bytes]:
    """mod_event_socket's answers to a well-behaved client, enough for most tests."""
    word = command.split(" ", 1)[0].lower()
    if word == "auth":
        return command_reply("+OK accepted")
    if word == "userauth":
        return command_reply("-ERR invalid")
    if word == "api":
        return api_response(f"you said: {command[4:]}\n")
    if word == "event":
        return command_reply("+OK event listener enabled plain")
    if word == "exit":
        return None
    return command_reply("+OK")


class ScriptedSwitch:
    """A loopback "switch": sends ``greeting``, then ``reply(command, headers, body)`` for
    each command: bytes to send, ``(bytes, "hang up")`` to send them and close, or None
    to close.  ``sent[i]`` is every byte connection i sent, in order."""

    def __init__(self, reply: Callable[[str, list, Optional[bytes]], Optional[bytes]] = default_reply,
                 greeting: bytes = auth_request()):
        self.reply = reply
        self.greeting = greeting
        self.sent: list[bytearray] = []
        self.closed: list[threading.Event] = []  # set when connection i has ended, either side
        self._socks: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> "ScriptedSwitch":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.close()
        for sock in self._socks:
            try:
                sock.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            self._socks.append(sock)
            record = bytearray()
            closed = threading.Event()
            self.sent.append(record)
            self.closed.append(closed)
            threading.Thread(target=self._serve, args=(sock, record, closed), daemon=True).start()

    def wait_closed(self, count: int, timeout: float = 10) -> None:
        """Until the first ``count`` connections have ended (all they sent is in ``sent``)."""
        deadline = threading.Event()
        for i in range(count):
            while len(self.closed) <= i:
                if deadline.wait(0.01) or timeout <= 0:
                    raise TimeoutError(f"connection {i} never came")
                timeout -= 0.01
            if not self.closed[i].wait(max(timeout, 0.1)):
                raise TimeoutError(f"connection {i} is still open")

    def _serve(self, sock: socket.socket, record: bytearray, closed: threading.Event) -> None:
        commands = CommandParser()
        try:
            if self.greeting:
                sock.sendall(self.greeting)
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                record += data
                for command, headers, body in commands.feed(data):
                    answer = self.reply(command, headers, body)
                    if answer is None:
                        return
                    hang_up = isinstance(answer, tuple)  # (bytes, "hang up"): send, then close
                    sock.sendall(answer[0] if hang_up else answer)
                    if hang_up:
                        return
        except OSError:
            pass
        finally:
            sock.close()
            closed.set()
