"""`relay` → a real Mosquitto: topics, order, status, Last Will, outages, overflow."""

from __future__ import annotations

import asyncio
import json

import pytest

from eslkit.errors import BrokerError
from eslkit.event import Event
from eslkit.app.relay import RelayEngine as Relay
from eslkit.calls import CallTracker
from eslkit.subscription import Subscription
from eslkit.brokers.buffer import Buffer, Message
from eslkit.brokers.mqtt import MqttPublisher, parse_mqtt_url
from tests.support.brokers import MqttCollector
from tests.support.sources import capture_events, from_list

pytestmark = pytest.mark.slow


def make_sink(broker, *, limit=100_000, client_id="relay-test", **kw) -> MqttPublisher:
    settings = parse_mqtt_url(broker.url, client_id=client_id)
    return MqttPublisher(settings, Buffer(limit), reconnect_delay=(1, 1), **kw)


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_capture_reaches_a_subscriber_in_order_with_topics(mosquitto, captures, qos):
    events = capture_events(captures, "scenario_queue_plain")
    assert len(events) > 50
    sub = MqttCollector(mosquitto, "freeswitch/vm/events/#", qos=qos)
    try:
        relay = Relay(from_list(events), make_sink(mosquitto, client_id=f"relay-order-{qos}", qos=qos))
        summary = run(relay.run())
        assert summary.received == len(events)
        assert summary.published_events == len(events)
        assert summary.dropped == 0 and summary.unconfirmed == 0
        assert sub.wait_for(lambda m: len(m) >= len(events))
        got = sub.messages[: len(events)]
        assert [json.loads(p) for _, p, _ in got] == [ev.to_dict() for ev in events]
        assert [t for t, _, _ in got] == [f"freeswitch/vm/events/{ev.event_name}/-" for ev in events]
    finally:
        sub.close()


def test_filter_and_header_select_what_is_published(mosquitto, captures):
    events = capture_events(captures, "scenario_queue_plain")
    select = Subscription(["CHANNEL_ANSWER,CHANNEL_HANGUP_COMPLETE"], [("Call-Direction", "outbound")])
    want = [ev for ev in events if ev.event_name in ("CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE")
            and ev.get("Call-Direction") == "outbound"]
    assert 0 < len(want) < len(events)
    sub = MqttCollector(mosquitto, "sel/#")
    try:
        sink = make_sink(mosquitto, client_id="relay-select", topic="sel/{event}/{uuid}")
        summary = run(Relay(from_list(events), sink, select=select).run())
        assert summary.received == len(events) and summary.published_events == len(want)
        assert sub.wait_for(lambda m: len(m) >= len(want))
        assert [t for t, _, _ in sub.messages] == [f"sel/{ev.event_name}/{ev.unique_id}" for ev in want]
    finally:
        sub.close()


def test_status_topic_online_then_offline_with_counters(mosquitto, captures):
    events = capture_events(captures, "scenario_noanswer_plain")
    sink = make_sink(mosquitto, client_id="relay-status")
    sub = MqttCollector(mosquitto, sink.status_topic)
    try:
        summary = run(Relay(from_list(events), sink).run())
        assert sub.wait_for(lambda m: any(json.loads(p)["state"] == "offline" for _, p, _ in m))
        states = [json.loads(p) for _, p, _ in sub.messages]
        assert states[0]["state"] == "online"
        final = states[-1]
        assert final["state"] == "offline"
        assert final["received"] == summary.received == len(events)
        assert final["published"] == len(events) and final["dropped"] == 0 and final["buffered"] == 0
        assert final["hostname"] == "vm"
    finally:
        sub.close()
    # Retained: a desktop that comes later still learns the relay's state.
    late = MqttCollector(mosquitto, sink.status_topic)
    try:
        assert late.wait_for(lambda m: len(m) >= 1)
        topic, payload, retained = late.messages[0]
        assert retained and json.loads(payload)["state"] == "offline"
    finally:
        late.close()


def test_broker_restart_mid_stream_loses_nothing_at_qos1(fresh_mosquitto, captures):
    events = capture_events(captures, "scenario_queue_plain")
    # A durable subscriber: the broker keeps its subscription and queue across the restart.
    sub = MqttCollector(fresh_mosquitto, "freeswitch/vm/#", client_id="desk-restart", clean_session=False)
    outage = len(events) // 3

    async def scenario():
        sink = make_sink(fresh_mosquitto, client_id="relay-restart", qos=1)

        async def gate(i):
            if i == outage:
                # Let what was sent so far be acknowledged, then take the broker away.
                assert await sink.drain(10)
                await asyncio.to_thread(fresh_mosquitto.stop)
                await asyncio.sleep(0.3)
            if i == 2 * outage:
                assert not sink.connected and sink.unconfirmed > 0
                await asyncio.to_thread(fresh_mosquitto.start)

        relay = Relay(from_list(events, gate, every=outage), sink, drain_timeout=20)
        return await relay.run(), sink

    try:
        summary, sink = run(scenario(), timeout=60)
        assert summary.received == len(events)
        assert summary.dropped == 0 and summary.unconfirmed == 0
        assert summary.published_events >= len(events)
        assert sink.disconnects >= 1
        if not sub.wait_for(lambda m: len({p for _, p, _ in m}) >= len(events), timeout=20):
            want = [ev.to_json().encode() for ev in events]
            got = {p for _, p, _ in sub.messages}
            missing = [i for i, w in enumerate(want) if json.loads(w) not in [json.loads(g) for g in got]]
            pytest.fail(f"outage at {outage}; missing {missing} of {len(events)}; got {len(sub.messages)}\n{fresh_mosquitto.log()}")
        # At least once: a re-sent message may come twice; first arrivals keep the switch's order.
        seen, order = set(), []
        for _, payload, _ in sub.messages:
            if payload not in seen:
                seen.add(payload)
                order.append(json.loads(payload))
        assert order == [ev.to_dict() for ev in events]
    finally:
        sub.close()


def test_full_buffer_drops_oldest_counts_and_reports(fresh_mosquitto, captures):
    events = capture_events(captures, "scenario_queue_plain")[:60]
    limit = 10
    sub = MqttCollector(fresh_mosquitto, "freeswitch/vm/#", client_id="desk-overflow", clean_session=False)

    async def scenario():
        sink = make_sink(fresh_mosquitto, client_id="relay-overflow", limit=limit, window=5)
        relay = Relay(from_list(events), sink, drain_timeout=20)
        await sink_started_then_broker_down(relay, sink)
        return relay

    async def sink_started_then_broker_down(relay, sink):
        # Start the relay's broker side, then stop the broker before any event flows.
        await sink.start()
        sink.start = _noop_start
        await asyncio.to_thread(fresh_mosquitto.stop)
        while sink.connected:
            await asyncio.sleep(0.05)
        task = asyncio.ensure_future(relay.run())
        while relay.received < len(events):
            await asyncio.sleep(0.05)
        assert len(sink.buffer) == limit and sink.buffer.dropped == len(events) - limit
        await asyncio.to_thread(fresh_mosquitto.start)
        relay.summary = await task

    async def _noop_start():
        return None

    try:
        relay = run(scenario(), timeout=60)
        summary = relay.summary
        assert summary.received == len(events)
        assert summary.dropped == len(events) - limit
        assert summary.published_events == limit and summary.unconfirmed == 0
        assert "dropped 50" in summary.line()
        newest = [ev.to_dict() for ev in events[-limit:]]
        assert sub.wait_for(lambda m: len([1 for t, _, _ in m if "/events/" in t]) >= limit, timeout=20)
        got = [json.loads(p) for t, p, _ in sub.messages if "/events/" in t]
        assert got == newest
    finally:
        sub.close()


def test_password_comes_from_the_environment_only(monkeypatch):
    with pytest.raises(BrokerError, match="contains a password"):
        parse_mqtt_url("mqtt://agent:s3cret@127.0.0.1:1883")
    with pytest.raises(BrokerError, match="MQTT_PW_UNSET"):
        parse_mqtt_url("mqtt://127.0.0.1", password_env="MQTT_PW_UNSET")
    monkeypatch.setenv("MQTT_PW", "s3cret")
    settings = parse_mqtt_url("mqtt://relay@127.0.0.1", password_env="MQTT_PW")
    assert settings.password == "s3cret" and settings.username == "relay" and settings.port == 1883
    assert "s3cret" not in repr(settings)


def test_unreachable_broker_is_one_clear_error():
    from tests.support.net import free_port

    sink = MqttPublisher(parse_mqtt_url(f"mqtt://127.0.0.1:{free_port()}"), Buffer(10))
    with pytest.raises(BrokerError, match="Cannot reach the MQTT broker") as err:
        run(sink.start())
    assert err.value.exit_code == 13


def test_network_text_cannot_add_topic_levels_or_wildcards(mosquitto):
    hostile = Event({"Event-Name": "CHANNEL_ANSWER", "FreeSWITCH-Hostname": "evil/+/#\x1b[2J",
                     "Unique-ID": "u/1"})
    sub = MqttCollector(mosquitto, "freeswitch/#")
    try:
        sink = make_sink(mosquitto, client_id="relay-hostile", topic="freeswitch/{hostname}/{event}/{uuid}/{ext}")
        summary = run(Relay(from_list([hostile]), sink).run())
        assert summary.published_events == 1
        assert sub.wait_for(lambda m: any("CHANNEL_ANSWER" in t for t, _, _ in m))
        topic = next(t for t, _, _ in sub.messages if "CHANNEL_ANSWER" in t)
        assert topic == "freeswitch/evil_____[2J/CHANNEL_ANSWER/u_1/-"
    finally:
        sub.close()


def test_broker_source_skips_and_counts_what_is_not_an_event(mosquitto, captures):
    from eslkit.sources.broker import open_broker_source

    good = capture_events(captures, "scenario_noanswer_plain")[0]
    junk = [b"not json", b"[1, 2]", b'{"no": "name"}', b"\xff\xfe", b"{" * 5000]

    async def scenario():
        source = open_broker_source(f"{mosquitto.url}/junk/vm")
        await source.open()
        got = []

        async def read():
            async for item in source:
                if isinstance(item, Event):
                    got.append(item)
                    return

        reader = asyncio.ensure_future(read())
        import paho.mqtt.client as mqtt

        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="junk-pub")
        pub.connect(mosquitto.host, mosquitto.port)
        pub.loop_start()
        for payload in junk + [good.to_json().encode()]:
            pub.publish("junk/vm/events/X/-", payload, qos=1).wait_for_publish(5)
        await asyncio.wait_for(reader, 10)
        pub.disconnect()
        pub.loop_stop()
        await source.close()
        return got, source

    got, source = run(scenario())
    assert [ev.to_dict() for ev in got] == [good.to_dict()]
    assert source.invalid == len(junk) == source.dropped and source.received == 1


def test_popup_desktop_gets_the_states_it_missed_while_away(mosquitto, captures):
    from eslkit.app.popup import RelayedLegs
    from eslkit.calls import LegView
    from eslkit.sources.broker import open_broker_source

    events = capture_events(captures, "scenario_queue_plain")
    url = f"{mosquitto.url}/freeswitch/vm"

    async def scenario():
        # The desktop subscribes once (its session is kept), then goes away.
        source = open_broker_source(url, popup_exts=["1001"])
        await source.open()
        await source.close()
        summary = await Relay(from_list(events), make_sink(mosquitto, client_id="relay-away"),
                              tracker=CallTracker()).run()
        # Back: the broker hands over what came meanwhile, as the relay's tracker made it.
        source = open_broker_source(url, popup_exts=["1001"])
        legs = RelayedLegs(["1001"])
        await source.open()
        got = []

        async def read():
            async for item in source:
                if isinstance(item, LegView):
                    got.append(legs.take(item))
                    if len(got) == 3:
                        return

        await asyncio.wait_for(read(), 10)
        await source.close()
        return summary, got, legs

    summary, got, legs = run(scenario())
    assert summary.published_popups == 5
    assert [leg.state for leg in got] == ["ringing", "answered", "ended"]
    assert legs.active("1001") == [] and legs.recent("1001")[0].outcome == "answered"


def test_events_the_switch_connection_dropped_are_reported(mosquitto, captures):
    events = capture_events(captures, "scenario_noanswer_plain")

    # A source whose bounded queue had to drop 3 events (as the ESL client counts them).
    summary = run(Relay(from_list(events, dropped=3), make_sink(mosquitto, client_id="relay-behind")).run())
    assert summary.source_dropped == 3 and not summary.complete
    assert "3 events dropped before the relay could read them" in summary.line()


def test_from_url_parameters(monkeypatch):
    from eslkit.sources.broker import open_broker_source

    monkeypatch.setenv("DESK_PW", "desk-secret")
    source = open_broker_source("mqtt://agent@127.0.0.1:1883/freeswitch/vm?password_env=DESK_PW&client_id=desk-7",
                                popup_exts=["1001"])
    settings = source.client.settings
    assert settings.password == "desk-secret" and settings.client_id == "desk-7" and settings.prefix == "freeswitch/vm"
    assert source.subscriptions == ["freeswitch/vm/agents/1001/popup"]
    assert "desk-secret" not in repr(settings)
    with pytest.raises(BrokerError, match="unknown parameter 'password'"):
        open_broker_source("mqtt://127.0.0.1/?password=oops")
    with pytest.raises(BrokerError, match="contains a password"):
        open_broker_source("mqtt://agent:oops@127.0.0.1/")


def test_topic_levels_are_bounded_and_deterministic():
    from eslkit.brokers.mqtt import MAX_LEVEL_BYTES, topic_part

    long = topic_part("h" * 70_000)
    assert len(long.encode()) == MAX_LEVEL_BYTES and long == topic_part("h" * 70_000)
    assert long != topic_part("h" * 70_001)  # two long values stay apart
    wide = topic_part("é" * 200)  # cut on a character boundary, still valid UTF-8
    assert len(wide.encode()) <= MAX_LEVEL_BYTES and wide.startswith("é" * 50)
    # Everything Mosquitto refuses in a topic becomes "_"; bidi marks are valid topic text.
    assert topic_part("a\x85b\x9fc\ud800d\ufdd0e\uffff") == "a_b_c_d_e_"
    assert topic_part("a\u202eb") == "a\u202eb"


def test_a_template_no_broker_would_take_is_refused_at_start(mosquitto):
    for kw in ({"topic": "x/+/{event}"}, {"popup_topic": "x/\x85/{ext}"}, {"status_topic": "s/#/{client_id}"}):
        with pytest.raises(BrokerError, match="cannot be published to") as err:
            make_sink(mosquitto, **kw)
        assert err.value.exit_code == 13


def test_a_message_the_broker_would_refuse_is_counted_and_the_next_still_goes(mosquitto):
    """A topic Mosquitto drops the connection for is never handed to paho (it would re-send
    it after every reconnect); it is counted and reported, and what follows is delivered."""
    from eslkit.brokers.buffer import Message

    sub = MqttCollector(mosquitto, "refuse/#")
    said = []
    try:
        async def go():
            sink = make_sink(mosquitto, client_id="relay-refuse")
            sink.on_reject = said.append
            await sink.start()
            sink.send(Message("refuse/\x85", b"{}", "event", {}))
            sink.send(Message("refuse/" + "x" * 70_000, b"{}", "event", {}))
            sink.send(Message("refuse/ok", b'{"n": 1}', "event", {}))
            assert await sink.drain(5)
            await sink.close()
            return sink

        sink = run(go())
        assert sink.rejected["event"] == 2 and sink.published["event"] == 1 and sink.unconfirmed == 0
        assert len(said) == 2 and "U+0085" in said[0] and "65535" in said[1]
        assert sub.wait_for(lambda m: any(t == "refuse/ok" for t, _, _ in m))
        assert sink.disconnects == 0
    finally:
        sub.close()


def numbered(events, copies: int) -> list[Event]:
    """`copies` runs of the capture, every event made unique by its Event-Sequence."""
    out = []
    for n in range(copies):
        for ev in events:
            d = ev.to_dict()
            d["Event-Sequence"] = str(len(out) + 1)
            out.append(Event.from_dict(d))
    return out


async def through_a_dying_link(broker, make_sink, events):
    """Relay `events` to `broker` through a CutProxy that goes dead after 1000 events and is
    cut after 2000, when the publisher's window is full of unacknowledged messages."""
    from tests.support.net import CutProxy

    proxy = await CutProxy(broker.host, broker.port).start()
    sink = make_sink(proxy.port)

    async def gate(i):
        if i == 1000:
            proxy.freeze()
        if i == 2000:
            assert sink.inflight > 900  # the window filled up: published, never acknowledged
            proxy.cut()

    relay = Relay(from_list(events, gate, every=1000), sink, drain_timeout=30)
    try:
        return await relay.run(), sink
    finally:
        await proxy.close()


def test_a_dead_link_at_full_speed_loses_nothing_and_keeps_the_order(mosquitto, captures):
    """Thousands of events, a full window (1000) of them in flight when the link dies —
    neither delivered nor acknowledged.  Every event still arrives, first arrivals in order."""
    events = numbered(capture_events(captures, "scenario_queue_plain"), 40)  # 3,520 events
    sub = MqttCollector(mosquitto, "freeswitch/vm/events/#", client_id="desk-fast")

    def make_sink(port):
        settings = parse_mqtt_url(f"mqtt://127.0.0.1:{port}", client_id="relay-fast")
        return MqttPublisher(settings, Buffer(100_000), reconnect_delay=(0.2, 0.2))

    try:
        summary, sink = run(through_a_dying_link(mosquitto, make_sink, events), timeout=120)
        assert summary.complete and summary.published_events >= len(events), summary.line()
        assert sink.disconnects == 1 and sink.window == 1000
        assert sub.wait_for(lambda m: len({p for _, p, _ in m}) >= len(events), timeout=30), \
            f"{len({p for _, p, _ in sub.messages})} of {len(events)}"
        seen, order = set(), []
        for _, payload, _ in sub.messages:
            if payload not in seen:
                seen.add(payload)
                order.append(json.loads(payload)["Event-Sequence"])
        assert order == [str(i + 1) for i in range(len(events))]
    finally:
        sub.close()


def test_byte_bound_drops_the_oldest_counts_exactly_and_the_newest_arrive_in_order(fresh_mosquitto, captures):
    """`relay --buffer-bytes`: the broker is stopped, the relay reads a whole call, the outbox
    keeps the newest messages that fit in the bytes, drops and counts the rest, and hands the
    kept ones over in order when the broker is back."""
    from eslkit.brokers import publisher
    from eslkit.brokers.buffer import message_size
    from eslkit.sizes import size_text

    events = capture_events(captures, "scenario_queue_plain")
    status_topic = "freeswitch/relay/relay-bytes/status"
    sub = MqttCollector(fresh_mosquitto, ["freeswitch/vm/#", status_topic], client_id="desk-bytes",
                        clean_session=False)
    address = publisher(fresh_mosquitto.url).event_address
    sizes = [message_size(Message(address(ev, None), ev.to_json().encode())) for ev in events]
    # Room for the newest 12 events and a bit, not for a 13th: the bytes bound, not the count.
    bound = sum(sizes[-12:]) + min(sizes) // 2
    assert sum(sizes[-13:]) > bound
    sink = publisher(fresh_mosquitto.url, client_id="relay-bytes", buffer_bytes=bound)
    sink.reconnect_delay = (0.2, 0.2)
    assert sink.buffer.limit == 100_000 and sink.buffer.max_bytes == bound
    notices: list[str] = []

    async def scenario():
        async def gate(i):
            if i == 1:  # the first event is delivered; then the broker goes away
                assert await sink.drain(10)
                await asyncio.to_thread(fresh_mosquitto.stop)
                while sink.connected:
                    await asyncio.sleep(0.05)

        relay = Relay(from_list(events, gate, every=1), sink, drain_timeout=20, notice=notices.append)
        task = asyncio.ensure_future(relay.run())
        while relay.received < len(events):
            await asyncio.sleep(0.05)
        assert len(sink.buffer) == 12 and sink.buffer.bytes == sum(sizes[-12:]) <= bound
        assert relay.counters()["dropped"] == len(events) - 13
        await asyncio.to_thread(fresh_mosquitto.start)
        return await task

    try:
        summary = run(scenario(), timeout=60)
        assert summary.received == len(events) == 88
        assert summary.dropped == 75 and "dropped 75" in summary.line()
        assert summary.published_events == 13 and summary.unconfirmed == 0 and summary.broker_disconnects == 1
        said = f"broker connection lost; buffering up to 100000 messages or {size_text(bound)}, then dropping the oldest"
        assert said in notices, notices
        # At least once: the subscriber may get a message twice across the restart; first arrivals in order.
        assert sub.wait_for(lambda m: len({p for t, p, _ in m if "/events/" in t}) >= 13, timeout=20)
        got = [json.loads(p) for p in dict.fromkeys(p for t, p, _ in sub.messages if "/events/" in t)]
        assert got == [ev.to_dict() for ev in [events[0], *events[-12:]]]
        # The relay's final status message counts the drops as the summary does (the broker may
        # also publish the Last Will, {"state": "offline"}, of the connection its restart cut).
        def final(m):
            return [s for s in (json.loads(p) for t, p, _ in m if t == status_topic)
                    if s["state"] == "offline" and "dropped" in s]

        assert sub.wait_for(final, timeout=20)
        assert final(sub.messages)[-1]["dropped"] == 75 and final(sub.messages)[-1]["buffered"] == 0
    finally:
        sub.close()
