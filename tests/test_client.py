"""The asyncio client over real loopback sockets: real capture bytes, and servers that misbehave."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from eslkit.client import Backoff, Connection, ConnectionStatus, ConnState
from eslkit.errors import (
    AclRejected,
    AuthError,
    CommandError,
    CommandTimeout,
    ConnectionRefused,
    ConnectTimeout,
    Disconnected,
    ProtocolError,
)
from eslkit.event import Event
from eslkit.protocol import auth_request, command_reply, event_frame
from tests.conftest import CAPTURES
from tests.support.transcript_server import greet, read_command, serve, transcript_handler


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def fast_backoff():
    return Backoff(initial=0.05, factor=2, cap=0.2, jitter=0.0)


def capture(name):
    return transcript_handler(CAPTURES / f"{name}.raw")


# --- the handshake and its failures ------------------------------------------------------------


def test_auth_and_exit_against_real_bytes():
    async def main():
        async with serve(capture("auth_ok_then_exit")) as port:
            conn = Connection(port=port)
            await conn.connect()
            assert conn.state is ConnState.CONNECTED
            await conn.exit()
            items = [item async for item in conn.events()]
            assert items == [] and conn.state is ConnState.CLOSED
            await conn.close()
    run(main())


def test_wrong_password():
    async def main():
        async with serve(capture("auth_wrong_password")) as port:
            with pytest.raises(AuthError, match=r"rejected the password \(-ERR invalid\)") as err:
                await Connection(port=port, password="secret-pw").connect()
            assert "secret-pw" not in str(err.value) and err.value.exit_code == 5
    run(main())


def test_acl_rejection():
    async def main():
        async with serve(capture("acl_rejected_from_127.0.0.2")) as port:
            with pytest.raises(AclRejected, match="Access Denied") as err:
                await Connection(port=port).connect()
            assert err.value.exit_code == 6
    run(main())


def test_connection_refused():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()

    async def main():
        with pytest.raises(ConnectionRefused, match="connection refused") as err:
            await Connection(port=port).connect()
        assert err.value.exit_code == 3 and err.value.fix
    run(main())


def test_connect_timeout_when_server_never_greets():
    async def silent(reader, writer):
        await asyncio.sleep(30)

    async def main():
        async with serve(silent) as port:
            started = time.monotonic()
            with pytest.raises((ConnectTimeout, CommandTimeout)):
                await Connection(port=port, timeout=0.5).connect()
            assert time.monotonic() - started < 3
    run(main())


@pytest.mark.parametrize("garbage", [b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", b"\x16\x03\x01\x02\x00garbage\n"])
def test_garbage_greeting_is_a_protocol_error(garbage):
    async def liar(reader, writer):
        writer.write(garbage)
        await asyncio.sleep(5)

    async def main():
        async with serve(liar) as port:
            with pytest.raises(ProtocolError) as err:
                await Connection(port=port, timeout=1).connect()
            assert err.value.exit_code == 8
    run(main())


def test_huge_content_length_in_greeting():
    async def liar(reader, writer):
        writer.write(b"Content-Type: auth/request\nContent-Length: 2147483648\n\n")
        await asyncio.sleep(5)

    async def main():
        async with serve(liar) as port:
            with pytest.raises(ProtocolError, match="limit"):
                await Connection(port=port, timeout=1).connect()
    run(main())


# --- commands ------------------------------------------------------------------------------------


def test_api_status_and_errors_against_real_bytes():
    async def main():
        async with serve(capture("api_errors")) as port:
            async with Connection(port=port) as conn:
                assert await conn.api("nosuchcommand") == "-ERR nosuchcommand Command not found!\n"
                with pytest.raises(CommandError, match="command not found"):
                    await conn.api("")
                assert "No such channel" in await conn.api("uuid_kill 00000000-0000-0000-0000-000000000000")
                assert (await conn.api("show nosuchthing")).startswith("-USAGE:")
    run(main())


def test_filters_and_subscriptions_are_tracked():
    async def main():
        async with serve(capture("filter_add_delete")) as port:
            async with Connection(port=port) as conn:
                assert await conn.filter("Caller-Destination-Number", "1001") == \
                    "+OK filter added. [Caller-Destination-Number]=[1001]"
                await conn.filter("Event-Name", "CHANNEL_ANSWER")
                assert conn.filters == [("Caller-Destination-Number", "1001"), ("Event-Name", "CHANNEL_ANSWER")]
                await conn.filter_delete("Caller-Destination-Number", "1001")
                assert conn.filters == [("Event-Name", "CHANNEL_ANSWER")]
                await conn.filter_delete("Caller-Destination-Number", "1001")
                await conn.filter_delete("all")
                assert conn.filters == []
    run(main())


def test_bgapi_resolves_through_background_job():
    async def main():
        async with serve(capture("bgapi_status_plain")) as port:
            async with Connection(port=port) as conn:
                await conn.subscribe(["BACKGROUND_JOB"])
                # The capture's switch chose the first Job-UUID itself; we match on ours,
                # so answer the first through the reply's Job-UUID instead.
                reply = await conn.command("bgapi status")
                assert reply.job_uuid and reply.reply_text == f"+OK Job-UUID: {reply.job_uuid}"
                jobs = []
                async for item in conn.events():
                    jobs.append(item)
                    break
                assert jobs[0].get("Job-UUID") == reply.job_uuid
                assert jobs[0].body.startswith("UP 0 years")
    run(main())


def test_bgapi_with_own_job_uuid():
    """A tiny switch that answers bgapi like the capture does, echoing our Job-UUID."""
    async def switch(reader, writer):
        await greet(reader, writer)
        while True:
            cmd = await read_command(reader)
            if not cmd:
                return
            if cmd.startswith(b"event"):
                writer.write(command_reply("+OK event listener enabled plain"))
            elif cmd.startswith(b"bgapi"):
                job = cmd.split(b"Job-UUID: ")[1].split(b"\n")[0].decode()
                writer.write(command_reply(f"+OK Job-UUID: {job}", [("Job-UUID", job)]))
                ev = Event([("Event-Name", "BACKGROUND_JOB"), ("Job-UUID", job), ("Job-Command", "status")],
                           body="UP 1 years\n")
                writer.write(event_frame(ev))

    async def main():
        async with serve(switch) as port:
            async with Connection(port=port) as conn:
                assert await conn.bgapi("status") == "UP 1 years\n"
                # bgapi subscribed BACKGROUND_JOB itself: those events stay out of events().
                assert conn.received == 0
    run(main())


def test_api_timeout_then_late_reply_is_not_misattributed():
    async def slow(reader, writer):
        await greet(reader, writer)
        await read_command(reader)          # api first -> answered late
        cmd2 = read_command(reader)
        await asyncio.sleep(0.6)
        writer.write(b"Content-Type: api/response\nContent-Length: 5\n\nlate\n")
        await cmd2
        writer.write(b"Content-Type: api/response\nContent-Length: 7\n\nsecond\n")
        await asyncio.sleep(5)

    async def main():
        async with serve(slow) as port:
            async with Connection(port=port) as conn:
                with pytest.raises(CommandTimeout):
                    await conn.api("first", timeout=0.3)
                assert await conn.api("second", timeout=3) == "second\n"
    run(main())


# --- events and the link ----------------------------------------------------------------------


def test_events_from_real_scenario():
    async def main():
        async with serve(capture("scenario_queue_plain")) as port:
            conn = Connection(port=port)
            await conn.connect()
            await conn.subscribe(["ALL"])
            names = []
            async for item in conn.events():
                names.append(item.name)
                if len(names) == 88:
                    await conn.exit()
            assert len(names) == 88 and names.count("CHANNEL_ANSWER") == 2
            assert conn.state is ConnState.CLOSED
            assert conn.received == 88 and conn.dropped == 0
            await conn.close()
    run(main())


def test_bounded_queue_drops_oldest_and_counts():
    async def main():
        async with serve(capture("scenario_queue_plain")) as port:
            conn = Connection(port=port, queue_size=10)
            await conn.connect()
            await conn.subscribe()
            await asyncio.sleep(0.5)  # nobody consumes: the queue overflows
            await conn.exit()
            items = [item async for item in conn.events()]
            assert len(items) == 10 and conn.dropped == 78
            assert items[-1].name == "CHANNEL_STATE"
            await conn.close()
    run(main())


def test_shutdown_notice_reason_is_reported():
    async def main():
        async with serve(capture("fs_stopped_while_connected")) as port:
            conn = Connection(port=port)
            await conn.connect()
            await conn.subscribe()
            with pytest.raises(Disconnected, match="The system is being shut down"):
                async for _ in conn.events():
                    pass
            await conn.close()
    run(main())


def test_close_mid_frame_is_reported_not_hung():
    async def cut(reader, writer):
        await greet(reader, writer)
        await read_command(reader)
        writer.write(command_reply("+OK event listener enabled plain"))
        writer.write(b"Content-Length: 500\nContent-Type: text/event-plain\n\nEvent-Name: CHAN")
        await writer.drain()
        writer.close()

    async def main():
        async with serve(cut) as port:
            conn = Connection(port=port)
            await conn.connect()
            await conn.subscribe()
            with pytest.raises(Disconnected, match="middle of a frame"):
                async for _ in conn.events():
                    pass
            await conn.close()
    run(main())


def test_reconnect_resubscribes_refilters_and_reports_gap():
    sessions = []

    async def flaky(reader, writer):
        """Each connection: handshake, answer commands, send one event, then drop the link."""
        n = len(sessions)
        sessions.append([])
        await greet(reader, writer)
        while True:
            try:
                cmd = await asyncio.wait_for(read_command(reader), 0.3)
            except asyncio.TimeoutError:
                break
            if not cmd:
                return
            sessions[n].append(cmd.decode().strip())
            writer.write(command_reply("+OK"))
        ev = Event([("Event-Name", "CHANNEL_CREATE"), ("Unique-ID", f"call-{n}")])
        writer.write(event_frame(ev))
        await writer.drain()
        if n < 2:
            writer.close()
        else:
            await asyncio.sleep(10)

    async def main():
        async with serve(flaky) as port:
            conn = Connection(port=port, reconnect=True, backoff=fast_backoff())
            await conn.connect()
            await conn.subscribe(["CHANNEL_CREATE", "CHANNEL_ANSWER"])
            await conn.filter("Caller-Destination-Number", "1001")
            seen = []
            async for item in conn.events():
                seen.append(item)
                if len([i for i in seen if isinstance(i, Event)]) == 3:
                    break
            kinds = [i.state if isinstance(i, ConnectionStatus) else i.unique_id for i in seen]
            assert kinds == ["call-0", "disconnected", "connected", "call-1", "disconnected",
                             "connected", "call-2"]
            gaps = [i.gap for i in seen if isinstance(i, ConnectionStatus) and i.state == "connected"]
            assert all(0.03 < g < 2 for g in gaps)
            for later in sessions[1:]:
                assert later == ["filter Caller-Destination-Number 1001",
                                 "event plain CHANNEL_CREATE CHANNEL_ANSWER"]
            await conn.close()
    run(main())


def test_reconnect_stops_on_wrong_password():
    attempts = []

    async def switch(reader, writer):
        attempts.append(1)
        writer.write(auth_request())
        await read_command(reader)
        if len(attempts) == 1:
            writer.write(command_reply("+OK accepted"))
            await asyncio.sleep(0.1)
            writer.close()
        else:
            writer.write(command_reply("-ERR invalid"))

    async def main():
        async with serve(switch) as port:
            conn = Connection(port=port, reconnect=True, backoff=fast_backoff())
            await conn.connect()
            statuses = []
            with pytest.raises(AuthError):
                async for item in conn.events():
                    statuses.append(item.state)
            assert statuses == ["disconnected"] and len(attempts) == 2
            await conn.close()
    run(main())


def test_backoff_is_capped_and_jittered():
    delays = Backoff(initial=0.5, factor=2, cap=4, jitter=0.25, rng=lambda: 1.0).delays()
    assert [next(delays) for _ in range(6)] == [0.375, 0.75, 1.5, 3.0, 3.0, 3.0]
    delays = Backoff(initial=0.5, factor=2, cap=4, jitter=0.25, rng=lambda: 0.0).delays()
    assert [next(delays) for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_repr_never_shows_password():
    conn = Connection(password="hunter2")
    assert "hunter2" not in repr(conn) and "hunter2" not in str(vars(conn).get("host"))


# --- fault injection: a server that misbehaves, every case ending in bounded time ------------------


def test_slow_drip_greeting_is_bounded_by_the_timeout():
    async def drip(reader, writer):
        for byte in b"Content-Type: auth/request\n\n":
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.1)

    async def main():
        async with serve(drip) as port:
            started = time.monotonic()
            with pytest.raises(ConnectTimeout, match="did not complete the greeting"):
                await Connection(port=port, timeout=1.0).connect()
            assert time.monotonic() - started < 2
    run(main())


def test_stall_mid_frame_ends_the_session():
    async def stall(reader, writer):
        await greet(reader, writer)
        await read_command(reader)
        writer.write(command_reply("+OK event listener enabled plain"))
        writer.write(b"Content-Length: 500\nContent-Type: text/event-plain\n\nEvent-Na")
        await writer.drain()
        await asyncio.sleep(30)

    async def main():
        async with serve(stall) as port:
            conn = Connection(port=port, timeout=0.3)
            await conn.connect()
            await conn.subscribe()
            started = time.monotonic()
            with pytest.raises(Disconnected, match="stalled in the middle of a frame"):
                async for _ in conn.events():
                    pass
            assert time.monotonic() - started < 3
            await conn.close()
    run(main())


def test_api_reply_that_never_comes_times_out():
    async def mute(reader, writer):
        await greet(reader, writer)
        await asyncio.sleep(30)

    async def main():
        async with serve(mute) as port:
            async with Connection(port=port) as conn:
                started = time.monotonic()
                with pytest.raises(CommandTimeout, match="no reply") as err:
                    await conn.api("status", timeout=0.5)
                assert time.monotonic() - started < 1.5 and err.value.exit_code == 9
    run(main())


def test_garbage_mid_session_ends_or_reconnects():
    async def liar(reader, writer):
        await greet(reader, writer)
        await read_command(reader)
        writer.write(command_reply("+OK event listener enabled plain"))
        writer.write(b"\x00\x01 binary junk \xff\n\n")
        await asyncio.sleep(30)

    async def main():
        async with serve(liar) as port:
            conn = Connection(port=port)
            await conn.connect()
            await conn.subscribe()
            with pytest.raises(Disconnected, match="not an event-socket header"):
                async for _ in conn.events():
                    pass
            await conn.close()
    run(main())


def test_disconnects_in_a_loop_back_off_and_close_promptly():
    accepted = []

    async def flapping(reader, writer):
        accepted.append(time.monotonic())
        await greet(reader, writer)
        await writer.drain()
        writer.close()

    async def main():
        async with serve(flapping) as port:
            conn = Connection(port=port, reconnect=True,
                              backoff=Backoff(initial=0.05, factor=2, cap=0.4, jitter=0.0))
            await conn.connect()
            statuses = []

            async def consume():
                async for item in conn.events():
                    statuses.append(item.state)

            consumer = asyncio.ensure_future(consume())
            await asyncio.sleep(1.5)
            started = time.monotonic()
            await conn.close()
            await asyncio.wait_for(consumer, 2)
            assert time.monotonic() - started < 1
            # Back-off bounds the rate: 0.05 + 0.1 + 0.2 + 0.4 + 0.4 ... in 1.5 s is at most ~7 tries.
            assert 3 <= len(accepted) <= 9
            assert statuses[:4] == ["disconnected", "connected", "disconnected", "connected"]
    run(main())


def test_close_while_events_stream_never_hangs():
    """Regression: a cancel lost inside wait_for left close() waiting for ever."""
    async def firehose(reader, writer):
        await greet(reader, writer)
        await read_command(reader)
        writer.write(command_reply("+OK event listener enabled plain"))
        frame = event_frame(Event([("Event-Name", "HEARTBEAT"), ("Event-Info", "x" * 3000)]))
        while True:
            writer.write(frame * 20 + frame[:100])  # always leave a frame half-sent
            await writer.drain()
            writer.write(frame[100:])
            await asyncio.sleep(0.001)

    async def main():
        async with serve(firehose) as port:
            for _ in range(15):
                conn = Connection(port=port)
                await conn.connect()
                await conn.subscribe()
                n = 0
                async for _ in conn.events():
                    n += 1
                    if n == 30:
                        break
                started = time.monotonic()
                await conn.close()
                assert time.monotonic() - started < 1.5
    run(main(), timeout=60)


def test_close_while_the_subscriptions_are_restored_ends_quietly():
    """Ctrl-C while a reconnect is restoring the filters and the subscription (the switch
    hangs up straight after each): close() can land while a reply is read — when the read
    completes in the same turn, asyncio's wait_for swallows the cancel — and the reader task
    must then end quietly, not write to the socket close() took away (an AttributeError
    traceback on the way out of `popup`, seen in CI)."""
    import random

    async def hang_up_after_subscribing(reader, writer):
        await greet(reader, writer)
        while True:
            cmd = await read_command(reader)
            if not cmd:
                return
            writer.write(command_reply("+OK"))
            if cmd.startswith(b"event"):
                await writer.drain()
                writer.close()
                return

    async def main():
        rng = random.Random(7)
        problems = []
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _, context: problems.append(context))
        async with serve(hang_up_after_subscribing) as port:
            for _ in range(40):
                conn = Connection(port=port, reconnect=True, backoff=Backoff(initial=0.001, factor=1, cap=0.001, jitter=0))
                await conn.connect()
                for header in ("Caller-Destination-Number", "Caller-Caller-ID-Number", "variable_sip_to_user"):
                    await conn.filter(header, "1001")
                await conn.subscribe(["CHANNEL_CREATE", "CHANNEL_ANSWER"])
                await asyncio.sleep(rng.uniform(0.0, 0.03))
                task = conn._task
                await conn.close()
                await asyncio.wait({task}, timeout=5)
                assert task.done()
                if not task.cancelled():
                    assert task.exception() is None, repr(task.exception())
        assert not problems, problems
    run(main(), timeout=120)
