"""eslkit's own AMQP 0-9-1 publisher (`amqp_wire`) against a real RabbitMQ: what pika, as a
consumer, reads of the frames it writes; what it negotiates; how each refusal reads."""

from __future__ import annotations

import asyncio
import time

import pytest

from eslkit.brokers import amqp_wire
from eslkit.brokers.amqp import AmqpPublisher, parse_amqp_url
from eslkit.brokers.buffer import Buffer, Message
from eslkit.errors import BrokerError
from tests.test_relay_amqp import ENV, drain
from tests.test_relay_mqtt import run

pytestmark = pytest.mark.slow


def sink_for(rabbitmq, **kw) -> AmqpPublisher:
    settings = parse_amqp_url(rabbitmq.url(), password_env=ENV)
    return AmqpPublisher(settings, Buffer(100_000), **{"client_id": "wire-test", "reconnect_delay": (0.5, 1.0), **kw})


def test_frames_pika_reads_back_as_sent(amqp_env):
    """Bodies from empty to several frames long (RabbitMQ's frame_max is 128 kB), every header
    type, the properties pika used to send."""
    conn, ch, q = amqp_env.queue("wire.#")
    big = bytes(range(256)) * 1200  # 307,200 bytes: three body frames
    headers = {"ext": "1001", "n": -(2 ** 40), "ok": True, "raw": b"\x00\xff", "t": {"a": "é"}}
    sent = [("wire.empty", b"", {}), ("wire.big", big, {"ext": "1001"}), ("wire.headers", b"{}", headers),
            ("wire." + "k" * 250, b"x" * 131064, {}), ("wire.one-more", b"y" * 131065, {})]

    async def go():
        sink = sink_for(amqp_env)
        await sink.start()
        for key, body, hdrs in sent:
            sink.send(Message(key, body, "event", hdrs))
        assert await sink.drain(15)
        await sink.close()
        return sink

    before = int(time.time())
    sink = run(go(), timeout=60)
    assert sink.published["event"] == len(sent) and not sink.rejected
    got = []
    deadline = time.monotonic() + 15
    while len(got) < len(sent) and time.monotonic() < deadline:
        method, props, body = ch.basic_get(q, auto_ack=True)
        if method is None:
            conn.process_data_events(0.05)
            continue
        got.append((method.routing_key, body, props))
    conn.close()
    assert [(key, body) for key, body, _ in got] == [(key, body) for key, body, _ in sent]
    for (_, _, props), (_, _, hdrs) in zip(got, sent):
        assert props.content_type == "text/json" and props.delivery_mode == 2
        assert before <= props.timestamp <= time.time() + 1
    assert got[1][2].headers == {"ext": "1001"} and got[0][2].headers is None
    assert got[2][2].headers == {"ext": "1001", "n": -(2 ** 40), "ok": True, "raw": b"\x00\xff",
                                 "t": {"a": "é"}}


def test_tune_is_what_rabbitmq_says_it_negotiated(amqp_env):
    async def go():
        sink = sink_for(amqp_env, client_id="wire-tune")
        await sink.start()
        link = sink._link
        rows = await asyncio.to_thread(amqp_env.ctl, "list_connections", "client_properties", "frame_max",
                                       "timeout", "channels", "--no-table-headers")
        await sink.close()
        return link, rows

    link, rows = run(go(), timeout=60)
    mine = [row for row in rows.splitlines() if "wire-tune" in row]
    assert len(mine) == 1, rows
    frame_max, timeout, channels = mine[0].split("\t")[-3:]
    assert (int(frame_max), int(timeout), int(channels)) == (link.frame_max, link.heartbeat, 1)
    assert link.frame_max == 131072 and link.heartbeat == 30  # RabbitMQ offers 60 s; we ask for 30


def test_a_virtual_host_not_allowed_is_one_clear_error(amqp_env):
    amqp_env.ctl("add_vhost", "closed-to-eslkit")  # the user has no permissions on it
    settings = parse_amqp_url(amqp_env.url("closed-to-eslkit"), password_env=ENV)
    with pytest.raises(BrokerError, match="denied access to the virtual host 'closed-to-eslkit'") as err:
        run(AmqpPublisher(settings, Buffer(10)).start(), timeout=30)
    assert err.value.exit_code == 13 and "set_permissions" in err.value.fix


def test_an_exchange_of_another_type_is_one_clear_error(amqp_env):
    conn, ch, _ = amqp_env.queue()
    ch.exchange_declare("eslkit-direct", exchange_type="direct", durable=True)
    conn.close()
    settings = parse_amqp_url(amqp_env.url(), password_env=ENV, exchange="eslkit-direct")
    with pytest.raises(BrokerError, match="refused the exchange 'eslkit-direct': 406 PRECONDITION_FAILED") as err:
        run(AmqpPublisher(settings, Buffer(10)).start(), timeout=30)
    assert "--exchange" in err.value.fix


def test_nothing_listening_is_one_clear_error():
    from tests.support.brokers import free_port

    settings = parse_amqp_url(f"amqp://u@127.0.0.1:{free_port()}/")
    with pytest.raises(BrokerError, match=r"Cannot reach RabbitMQ at amqp://u@127\.0\.0\.1:\d+/: Connection refused\.$"):
        run(AmqpPublisher(settings, Buffer(10)).start(), timeout=30)


def test_a_connection_closed_by_rabbitmq_reconnects_and_loses_nothing(amqp_env):
    """Connection.Close from the broker (an operator's close_connection: 320 CONNECTION_FORCED)
    mid-stream: Close-Ok, reconnect, everything unconfirmed sent again."""
    conn, ch, q = amqp_env.queue("forced.#")
    n = 3000

    async def go():
        sink = sink_for(amqp_env, client_id="wire-forced", reconnect_delay=(0.2, 0.2))
        await sink.start()
        for i in range(n // 2):
            sink.send(Message("forced.a", b'{"n": %d}' % i, "event", {}))
        rows = await asyncio.to_thread(amqp_env.ctl, "list_connections", "pid", "client_properties",
                                       "--no-table-headers")
        pid = next(row.split("\t")[0] for row in rows.splitlines() if "wire-forced" in row)
        await asyncio.to_thread(amqp_env.ctl, "close_connection", pid, "eslkit test")
        for i in range(n // 2, n):
            sink.send(Message("forced.a", b'{"n": %d}' % i, "event", {}))
        assert await sink.drain(30)
        await sink.close()
        return sink

    try:
        sink = run(go(), timeout=90)
        assert sink.disconnects == 1 and sink.connects == 2, sink.last_error
        assert "320" in sink.last_error and "eslkit test" in sink.last_error
        got = drain(ch, q, 10 ** 9, timeout=3)
        assert {body["n"] for _, body, _ in got} == set(range(n))
    finally:
        conn.close()


def test_a_silent_broker_is_noticed_by_the_heartbeat_and_nothing_is_lost(amqp_env):
    """RabbitMQ's bytes stop arriving while ours still reach it (so RabbitMQ closes nothing):
    after two heartbeat periods of silence the publisher drops the link itself, reconnects,
    and sends again what was never confirmed."""
    from tests.support.net import CutProxy

    conn, ch, q = amqp_env.queue("silent.#")

    async def go():
        proxy = await CutProxy(amqp_env.host, amqp_env.port).start()
        settings = parse_amqp_url(f"amqp://{amqp_env.user}@127.0.0.1:{proxy.port}/", password_env=ENV)
        sink = AmqpPublisher(settings, Buffer(100), client_id="wire-silent", reconnect_delay=(0.2, 0.2),
                             connect_timeout=2, heartbeat=1)
        try:
            await sink.start()
            assert sink._link.heartbeat == 1
            sink.send(Message("silent.a", b'{"n": 0}', "event", {}))
            assert await sink.drain(5)
            proxy.silence_broker()
            sink.send(Message("silent.a", b'{"n": 1}', "event", {}))  # its confirm is never heard
            start = time.monotonic()
            while not sink.disconnects and time.monotonic() - start < 10:
                await asyncio.sleep(0.05)
            noticed, why = time.monotonic() - start, sink.last_error
            assert sink.unconfirmed == 1 and not sink.connected
            proxy.cut()  # the next connection goes through
            assert await sink.drain(15)
            await sink.close()
            return sink, noticed, why
        finally:
            await proxy.close()

    try:
        sink, noticed, why = run(go(), timeout=60)
        assert sink.disconnects == 1 and "for 2 s (heartbeat)" in why, why
        assert 2 <= noticed < 4
        got = drain(ch, q, 10 ** 9, timeout=3)
        assert {body["n"] for _, body, _ in got} == {0, 1}
    finally:
        conn.close()


def test_amqps_with_a_private_ca(tmp_path, tls_files, monkeypatch):
    from tests.support.brokers import RabbitMQ

    ca, cert, key = tls_files
    broker = RabbitMQ(tmp_path / "tls-broker", tls=(ca, cert, key)).start()
    try:
        conn, ch, q = broker.queue("tls.#")
        url = f"amqps://{broker.user}@127.0.0.1:{broker.tls_port}/"
        monkeypatch.setenv(ENV, broker.password)

        async def go(tls_ca):
            sink = AmqpPublisher(parse_amqp_url(url, password_env=ENV, tls_ca=tls_ca), Buffer(10))
            await sink.start()
            sink.send(Message("tls.ok", b'{"tls": true}', "event", {}))
            assert await sink.drain(10)
            await sink.close()

        run(go(str(ca)), timeout=60)
        assert [(key, body) for key, body, _ in drain(ch, q, 1)] == [("tls.ok", {"tls": True})]
        conn.close()
        with pytest.raises(BrokerError, match="Cannot reach RabbitMQ at amqps://.*CERTIFICATE_VERIFY_FAILED"):
            run(go(None), timeout=60)  # the system's CAs do not know this one
    finally:
        broker.close()


def test_frame_reader_takes_frames_split_anywhere():
    stream = (amqp_wire.HEARTBEAT_FRAME + amqp_wire.method_frame(1, amqp_wire.BASIC_ACK, b"\0" * 7 + b"\x05\x01")
              + amqp_wire.close(0, 320, "CONNECTION_FORCED"))
    for cut in range(len(stream) + 1):
        reader = amqp_wire.FrameReader()
        frames = reader.feed(stream[:cut]) + reader.feed(stream[cut:])
        assert [(kind, channel) for kind, channel, _ in frames] == [(8, 0), (1, 1), (1, 0)]
        assert amqp_wire.ack_of(frames[1][2]) == (5, True)
        assert amqp_wire.close_of(frames[2][2]) == (320, "CONNECTION_FORCED")
    with pytest.raises(ValueError):
        amqp_wire.FrameReader().feed(amqp_wire.HEARTBEAT_FRAME[:-1] + b"\x00")
