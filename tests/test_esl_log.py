"""Difference suite, logging: ``eslSetLogLevel(level)`` turns on libesl's logger (stderr),
and the same session writes the same lines through both modules.

The line numbers of esl.c differ: the python-ESL sdist's esl.c is not 1.10.12's.  Those
are masked for the comparison; the pure module's own are checked to be 1.10.12's.
(Each run is its own process: the level is global to the library.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from eslkit.protocol import api_response, command_reply
from tests.support.esl_pair import ScriptedSwitch, default_reply

SESSION = r"""
import sys
if sys.argv[1] == "pure":
    from eslkit import ESL
else:
    import ESL
ESL.eslSetLogLevel(int(sys.argv[3]))
e = ESL.ESLevent("CHANNEL_ANSWER", "sub")        # WARNING: becomes CUSTOM
moved = ESL.ESLevent(e)
e.getHeader("a"); e.getBody(); e.addHeader("a", "b"); e.getType(); e.setPriority(); e.delHeader("a")
e.addBody("x"); e.pushHeader("a", "b"); e.unshiftHeader("a", "b")
ESL.ESLevent("json", "")                          # ERROR: Failed to create event
con = ESL.ESLconnection("127.0.0.1", sys.argv[2], "ClueCon")
con.api("version")
con.events("plain", "ALL")
con.bgapi("echo", "hi", "job-1")
con.recvEvent()
con.recvEvent()
msg = ESL.ESLevent("sendmsg"); msg.addHeader("call-command", "execute")
con.sendMSG(msg, "uuid-1")
event = ESL.ESLevent("CUSTOM", "x::y"); event.addBody("a body")
con.sendEvent(event)
con.disconnect()
"""

EVENT = (b"Event-Name: BACKGROUND_JOB\nCore-UUID: c\nJob-UUID: job-1\nJob-Command: echo\n"
         b"Job-Command-Arg: hi\nVariable: a%20b%3Ac\nContent-Length: 3\n\nhi\n")


def reply(command, headers, body):
    if command.startswith("bgapi"):
        frame = b"Content-Length: %d\nContent-Type: text/event-plain\n\n%s" % (len(EVENT), EVENT)
        return command_reply("+OK Job-UUID: job-1", [("Job-UUID", "job-1")]) + frame + frame
    if command.startswith("api"):
        return api_response("FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n")
    return default_reply(command, headers, body)


@pytest.fixture(scope="module")
def c_dir(esl_modules):
    return os.path.dirname(esl_modules[0].__file__)


def stderr_of(kind: str, c_dir, port: int, level: int) -> str:
    env = {**os.environ, "PYTHONPATH": str(c_dir) if kind == "C" else ""}
    proc = subprocess.run([sys.executable, "-c", SESSION, kind, str(port), str(level)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr


@pytest.mark.parametrize("level", [7, 4, 3, 0, 99, -1])
def test_the_same_log_lines(c_dir, level):
    with ScriptedSwitch(reply) as switch:
        c_log, pure_log = (stderr_of(kind, c_dir, switch.port, level) for kind in ("C", "pure"))
    masked = [re.sub(r"esl\.c:\d+ ", "esl.c:N ", text) for text in (c_log, pure_log)]
    assert masked[1] == masked[0]
    if level in (7, 99, -1):  # out of range means 7, as esl_global_set_default_logger() has it
        assert "RECV INNER HEADER [Variable] = [a b:c]" in pure_log and "SEND EVENT" in pure_log
        assert set(re.findall(r"esl\.c:(\d+) ", pure_log)) == {"504", "587", "1303", "1426", "1456", "1467", "1495"}
    elif level == 4:
        assert pure_log.splitlines()[0] == ("[WARNING] esl_oop.cpp:310 ESLevent() Changing event type to custom "
                                            "because you specified a subclass name!")
    elif level == 0:
        assert pure_log == ""
