"""Difference suite, outbound sockets: ``ESLconnection(fd)`` on a socket FreeSWITCH opened to
the program (the ``socket`` application), through the C module and `eslkit.ESL`.

`tests.support.outbound.OutboundCall` plays the switch's side with the agent leg of the
real queue call; each module gets its own call on the same listening socket.
"""

from __future__ import annotations

import os
import socket

import pytest

from tests.support.esl_pair import describe, snapshot
from tests.support.outbound import OutboundCall




def serve(module, listener: socket.socket, calls, **kwargs):
    call = OutboundCall(listener.getsockname()[1], **kwargs)
    conn, _ = listener.accept()
    fd = conn.detach()  # the ESLconnection owns the descriptor from here on (and closes it)
    con = module.ESLconnection(fd)
    result = calls(module, con)
    call.thread.join(10)
    return result, bytes(call.received)


def test_a_call_handled_from_start_to_end(esl_modules):
    def calls(m, con):
        out = [con.connected(), con.socketDescriptor() >= 0, describe(con.getInfo()),
               describe(con.getInfo()), describe(con.sendRecv("linger")), describe(con.sendRecv("myevents"))]
        out += [snapshot(con.recvEvent()) for _ in range(4)]
        out += [describe(con.execute("answer")), describe(con.executeAsync("playback", "/tmp/hello.wav")),
                describe(con.api("uuid_dump", "x")), con.setEventLock("true"),
                describe(con.execute("bridge", "user/1001")), describe(con.filter("Event-Name", "CHANNEL_ANSWER"))]
        out += [snapshot(con.recvEvent()) for _ in range(4)]
        out += [describe(con.sendRecv("exit")), snapshot(con.recvEvent()), con.connected(),
                describe(con.getInfo()), con.disconnect()]
        return out

    with socket.create_server(("127.0.0.1", 0)) as listener:
        (c_out, c_sent), (pure_out, pure_sent) = (serve(m, listener, calls) for m in esl_modules)
    assert pure_sent == c_sent
    assert pure_out == c_out
    info = pure_out[2]["event"]  # the channel's data, decoded, as the reply to "connect"
    values = dict(zip(info["names"], (h[0] for h in info["headers"])))
    assert info["type"] == "SOCKET_DATA"
    assert (values["Content-Type"], values["Reply-Text"], values["Socket-Mode"]) == ("command/reply", "+OK\n", "async")
    assert values["Caller-Caller-ID-Name"] == "Caller 6208"


def test_switch_that_does_not_answer_connect(esl_modules):
    def calls(m, con):
        return [con.connected(), describe(con.getInfo()), con.socketDescriptor(), con.disconnect()]

    with socket.create_server(("127.0.0.1", 0)) as listener:
        (c_out, _), (pure_out, _) = (serve(m, listener, calls, answer_connect=False) for m in esl_modules)
    assert pure_out == c_out == [0, None, -1, 0]


def test_a_descriptor_that_is_not_a_socket(esl_modules):
    """libesl's "connect" cannot be written; it gives up and closes the descriptor."""
    results = []
    for m in esl_modules:
        read_end, write_end = os.pipe()
        con = m.ESLconnection(write_end)
        with pytest.raises(OSError):
            os.fstat(write_end)  # closed by the connection
        os.close(read_end)
        results.append((con.connected(), describe(con.getInfo()), con.disconnect()))
    assert results[1] == results[0] == (0, None, 0)
