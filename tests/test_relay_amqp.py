"""`relay --to amqp://…` → a real RabbitMQ: mod_amqp routing keys, confirms, restart, --from amqp."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

import pytest

from eslkit.event import Event
from eslkit.app.relay import RelayEngine as Relay
from eslkit.calls import CallTracker
from eslkit.brokers.amqp import WINDOW, AmqpPublisher, key_part, parse_amqp_url, routing_key
from eslkit.brokers.buffer import Buffer
from eslkit.sources.broker import open_broker_source
from tests.support.brokers import AMQP_PASSWORD_ENV
from tests.support.sim import ESLKIT
from tests.support.sources import capture_events, from_list
from tests.test_relay_mqtt import run

pytestmark = pytest.mark.slow

ENV = AMQP_PASSWORD_ENV  # the amqp_env fixture puts the password there


def test_key_parts_are_encoded_like_mod_amqp():
    assert key_part("CHANNEL_ANSWER") == "CHANNEL_ANSWER"
    assert key_part("") == "_" and key_part(None) == "_"
    assert key_part("sofia::register") == "sofia%3A%3Aregister"
    assert key_part("a.b c#*") == "a%2Eb+c%23%2A"
    assert key_part("é") == "%C3%A9"
    # Words of up to 100 characters are remembered, longer ones encoded each time: the same
    # answer either way, also for a short word asked again (from the cache).
    for word in ("a.b" * 40, "a.b" * 30, "a.b" * 30):
        assert key_part(word) == "a%2Eb" * (len(word) // 3)


def drain(ch, q, want: int, timeout: float = 15.0):
    import time

    got = []
    deadline = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < deadline:
        method, props, body = ch.basic_get(q, auto_ack=True)
        if method is None:
            ch.connection.process_data_events(0.05)
            continue
        got.append((method.routing_key, json.loads(body), props))
    return got


def sink_for(rabbitmq, **kw) -> AmqpPublisher:
    settings = parse_amqp_url(rabbitmq.url(), password_env=ENV)
    return AmqpPublisher(settings, Buffer(kw.pop("limit", 100_000)), client_id="amqp-test",
                    reconnect_delay=(0.5, 1.0), **kw)


def test_events_carry_mod_amqp_routing_keys_in_order(amqp_env, captures):
    events = capture_events(captures, "scenario_queue_plain") + capture_events(captures, "agents_register_plain")
    conn, ch, q = amqp_env.queue("*.*.*.*")
    answers_conn, answers, aq = amqp_env.queue("*.CHANNEL_ANSWER.#")
    try:
        summary = run(Relay(from_list(events), sink_for(amqp_env)).run(), timeout=60)
        assert summary.received == len(events) == summary.published_events and summary.complete
        got = drain(ch, q, len(events))
        assert [body for _, body, _ in got] == [ev.to_dict() for ev in events]
        for (key, body, props), ev in zip(got, events):
            sub = body.get("Event-Subclass")
            want = f"vm.{body['Event-Name']}.{key_part(sub)}.{body.get('Unique-ID') or '_'}"
            assert key == want == routing_key(ev)
            assert props.content_type == "text/json"
        assert any(".CUSTOM.sofia%3A%3Aregister." in key for key, _, _ in got)
        only = drain(answers, aq, 100, timeout=1.0)
        assert only and {body["Event-Name"] for _, body, _ in only} == {"CHANNEL_ANSWER"}
    finally:
        conn.close()
        answers_conn.close()


def test_popup_states_on_per_agent_keys_match_popup_json(amqp_env, captures):
    cap = captures / "scenario_queue_plain.raw"
    conn, ch, q = amqp_env.queue("*.agents.1001.popup")
    try:
        done = subprocess.run([str(ESLKIT), "relay", "--to", amqp_env.url(), "--password-env", ENV,
                               "--replay", str(cap), "--client-id", "amqp-cli"],
                              capture_output=True, text=True, timeout=60, env=dict(os.environ))
        assert done.returncode == 0, done.stderr
        assert amqp_env.password not in done.stderr + done.stdout
        popup = subprocess.run([str(ESLKIT), "popup", "--ext", "1001", "--format", "json", "--replay", str(cap)],
                               capture_output=True, text=True, timeout=60)
        want = [json.loads(line) for line in popup.stdout.splitlines()]
        got = drain(ch, q, len(want))
        assert [body for _, body, _ in got] == want and len(want) == 3
        assert {key for key, _, _ in got} == {"vm.agents.1001.popup"}
        assert all(props.headers == {"ext": "1001"} for _, _, props in got)
    finally:
        conn.close()


def test_from_amqp_gives_watch_the_same_events(amqp_env, captures):
    events = capture_events(captures, "scenario_noanswer_plain")

    async def scenario():
        source = open_broker_source(amqp_env.url() + f"?password_env={ENV}")
        await source.open()
        got = []

        async def read():
            async for item in source:
                if isinstance(item, Event):
                    got.append(item)
                    if len(got) == len(events):
                        return

        reader = asyncio.ensure_future(read())
        summary = await Relay(from_list(events), sink_for(amqp_env), tracker=CallTracker()).run()
        await asyncio.wait_for(reader, 15)
        await source.close()
        return summary, got, source

    summary, got, source = run(scenario(), timeout=60)
    assert summary.published_popups > 0  # they share the exchange, and the watch source skips them
    assert [ev.to_dict() for ev in got] == [ev.to_dict() for ev in events]
    assert source.invalid == 0 and source.dropped == 0


def test_wrong_password_is_one_clear_error(rabbitmq, monkeypatch):
    from eslkit.errors import BrokerError

    monkeypatch.setenv(ENV, "not-" + rabbitmq.password)
    sink = sink_for(rabbitmq)
    with pytest.raises(BrokerError, match="refused the login") as err:
        run(sink.start())
    assert rabbitmq.password not in str(err.value) and err.value.exit_code == 13


def test_rabbitmq_restart_mid_stream_loses_nothing(amqp_env, captures):
    events = capture_events(captures, "scenario_queue_plain")
    # A durable queue, bound before, keeps the persistent messages across the restart.
    conn, ch, q = amqp_env.queue("#", durable=True, name="eslkit-restart-test")
    conn.close()
    third = len(events) // 3

    async def scenario():
        sink = sink_for(amqp_env)

        async def gate(i):
            if i == third:
                assert await sink.drain(10)
                await asyncio.to_thread(amqp_env.stop)
            if i == 2 * third:
                await asyncio.sleep(1.5)
                assert not sink.connected and sink.unconfirmed > 0
                await asyncio.to_thread(amqp_env.start)

        relay = Relay(from_list(events, gate, every=third), sink, drain_timeout=30)
        return await relay.run(), sink

    summary, sink = run(scenario(), timeout=120)
    assert summary.complete and summary.received == len(events)
    assert sink.disconnects >= 1 and sink.connects >= 2
    conn, ch, q = amqp_env.queue(durable=True, name="eslkit-restart-test")
    try:
        got = drain(ch, q, len(events) + 5, timeout=5)
        bodies = [body for key, body, _ in got if not key.startswith("relay.")]
        seen, order = [], []
        for body in bodies:
            if body not in seen:
                seen.append(body)
                order.append(body)
        assert order == [ev.to_dict() for ev in events]
    finally:
        ch.queue_delete(q)
        conn.close()


def test_status_messages_and_popup_from_amqp(amqp_env, captures):
    from eslkit.calls import LegView
    from eslkit.sources.broker import open_broker_source

    events = capture_events(captures, "scenario_queue_plain")
    conn, ch, q = amqp_env.queue("relay.*.status")

    async def scenario():
        source = open_broker_source(amqp_env.url() + f"?password_env={ENV}", popup_exts=["1002"])
        await source.open()
        got = []

        async def read():
            async for item in source:
                if isinstance(item, LegView):
                    got.append(item)
                    if len(got) == 2:
                        return

        reader = asyncio.ensure_future(read())
        summary = await Relay(from_list(events), sink_for(amqp_env), tracker=CallTracker()).run()
        await asyncio.wait_for(reader, 15)
        await source.close()
        return summary, got

    try:
        summary, got = run(scenario(), timeout=60)
        assert [(leg.state, leg.outcome) for leg in got] == [("ringing", None), ("ended", "answered_elsewhere")]
        statuses = drain(ch, q, 2, timeout=5)
        assert {key for key, _, _ in statuses} == {"relay.amqp-test.status"}
        assert statuses[0][1]["state"] == "online"
        final = statuses[-1][1]
        assert final["state"] == "offline" and final["received"] == len(events)
        assert final["published"] == summary.published_events + summary.published_popups and final["dropped"] == 0
    finally:
        conn.close()


def test_routing_keys_are_cut_at_255_bytes_as_mod_amqp_cuts_them():
    from eslkit.brokers.amqp import MAX_KEY_WORD, short_key_part

    event = Event({"Event-Name": "CHANNEL_CREATE", "FreeSWITCH-Hostname": "h" * 70_000, "Unique-ID": "u"})
    assert routing_key(event) == "h" * 255
    normal = Event({"Event-Name": "CHANNEL_CREATE", "FreeSWITCH-Hostname": "vm", "Unique-ID": "u"})
    assert routing_key(normal) == "vm.CHANNEL_CREATE._.u"
    # Our own keys (popup, status) bound each word, so ".agents.<ext>.popup" survives.
    word = short_key_part("é" * 100)
    assert len(word) <= MAX_KEY_WORD and word == short_key_part("é" * 100) and "%C3%A9~" in word
    assert short_key_part("1002") == "1002"


def test_a_message_rabbitmq_cannot_take_is_counted_and_the_next_still_goes(amqp_env):
    from eslkit.brokers.buffer import Message

    conn, ch, q = amqp_env.queue("refuse.#")
    said = []
    try:
        async def go():
            sink = sink_for(amqp_env)
            sink.on_reject = said.append
            await sink.start()
            sink.send(Message("refuse." + "x" * 300, b"{}", "event", {}))  # longer than AMQP allows
            sink.send(Message("refuse.ok", b'{"n": 1}', "event", {}))
            assert await sink.drain(5)
            await sink.close()
            return sink

        sink = run(go())
        assert sink.rejected["event"] == 1 and sink.published["event"] == 1 and sink.unconfirmed == 0
        assert len(said) == 1 and sink.disconnects == 0
        got = drain(ch, q, 1)
        assert [(key, body) for key, body, _ in got] == [("refuse.ok", {"n": 1})]
    finally:
        conn.close()


def test_a_dead_link_at_full_speed_loses_nothing_and_keeps_the_order(amqp_env, captures):
    """Thousands of events, more than 1,000 of them awaiting confirms when the link dies — neither
    delivered nor confirmed.  Every event still reaches the queue, first arrivals in order."""
    from tests.test_relay_mqtt import numbered, through_a_dying_link

    events = numbered(capture_events(captures, "scenario_queue_plain"), 40)  # 3,520 events
    conn, ch, q = amqp_env.queue("vm.#")

    def make_sink(port):
        settings = parse_amqp_url(f"amqp://{amqp_env.user}@127.0.0.1:{port}/", password_env=ENV)
        return AmqpPublisher(settings, Buffer(100_000), client_id="amqp-fast", reconnect_delay=(0.2, 0.2))

    try:
        summary, sink = run(through_a_dying_link(amqp_env, make_sink, events), timeout=120)
        assert summary.complete and summary.published_events >= len(events), summary.line()
        assert sink.disconnects == 1 and sink.window == WINDOW
        got = drain(ch, q, 10**9, timeout=5)  # all of it: re-sent messages come twice
        seen, order = set(), []
        for key, body, _ in got:
            if ".agents." not in key and body["Event-Sequence"] not in seen:
                seen.add(body["Event-Sequence"])
                order.append(body["Event-Sequence"])
        assert order == [str(i + 1) for i in range(len(events))]
    finally:
        conn.close()
