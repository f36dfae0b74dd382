"""T8: the relay's throughput to Mosquitto (QoS 1) and to RabbitMQ (publisher confirms).

    .venv/bin/python benchmarks/run.py --only relay [--count 50000 --reps 3]

Each repetition, per broker, in this process one after the other:

- **the anchor**: a bare publisher of the same library with nothing else to do, publishing
  the very messages the relay publishes (topic or routing key, headers and JSON body, made
  before the clock starts by the relay's own engine) — paho at QoS 1, or pika with
  asynchronous publisher confirms, 1,000 in flight — until every message is acknowledged;
- **the relay**: eslkit's `RelayEngine` with the call tracker, as `eslkit relay --to URL`
  builds it, reading the real 1.10.12 capture events as `event json ALL` frames (the
  firehose's corpus) from bytes through eslkit's parser, until every message is confirmed.

events/s = events / (first event → last confirmation).  Nothing may be lost: before each
run a durable subscription is made (an MQTT session with clean_session off, held in
Mosquitto's memory; a durable RabbitMQ queue bound to ``#``, persistent messages) and
afterwards every event must be in it.  Brokers are
started for the run on free loopback ports and stopped after.

RabbitMQ is measured twice, each on a broker of its own: the queue a classic queue version
2 — recommended since RabbitMQ 3.13, the default from 4.0, the only one from 4.3 — and
version 1, the default of the RabbitMQ 3.10 Debian 12 ships.  The queue is the consumer's
choice, not the relay's, and changes RabbitMQ's CPU a message (docs/performance.md, T8).
"""

from __future__ import annotations

import asyncio
import functools
import os
import statistics
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

from benchmarks.harness import Figure, cpu_seconds

TARGET = 10_000  # events/s, the bound for a call centre's firehose


def _frames(n: int) -> list[bytes]:
    """The firehose's corpus as a live relay reads it: `event json ALL` frames."""
    from benchmarks.corpus import frames_in

    base = frames_in("json")
    return [base[i % len(base)] for i in range(n)]


def _events_from_bytes(frames: list[bytes]):
    """Events as a live relay gets them: frames parsed from the bytes, 64 kB at a time."""
    from eslkit.protocol import EventFrame, Parser

    parser = Parser()
    blob = b"".join(frames)
    for i in range(0, len(blob), 65536):
        for frame in parser.feed(blob[i:i + 65536]):
            if isinstance(frame, EventFrame):
                yield frame.event


def _messages(publisher_class, settings, frames: list[bytes]) -> list:
    """What the relay hands a publisher of this class for these frames (events and popup
    states, not its status), collected by its own engine: the anchors publish the same
    messages, so the broker does the same work for both.  ``settings``: the broker's
    (no broker is reached; only its addresses are made)."""
    from eslkit.app.relay import RelayEngine
    from eslkit.brokers.buffer import Buffer
    from eslkit.calls import CallTracker
    from eslkit.sources import EventsSource

    class Collector(publisher_class):  # the broker's own addresses; takes instead of publishing
        async def start(self):
            self._loop = asyncio.get_running_loop()

        def _pump(self):
            self._pumping = False
            for message in self.buffer.take_many(len(self.buffer), timeout=0):
                collected.append(message)
                self.published[message.kind] += 1

    collected: list = []
    sink = Collector(settings, Buffer(len(frames) * 2))

    async def run():
        await sink.start()
        await RelayEngine(EventsSource(_events_from_bytes(frames)), sink, tracker=CallTracker(history=0)).run()

    asyncio.run(run())
    return collected


async def _relay(sink, frames: list[bytes]) -> tuple[float, object]:
    from eslkit.app.relay import RelayEngine
    from eslkit.calls import CallTracker
    from eslkit.sources import EventsSource

    await sink.start()
    sink.start = _already  # the engine must not connect a second time
    engine = RelayEngine(EventsSource(_events_from_bytes(frames)), sink, tracker=CallTracker(history=0), drain_timeout=600)
    start = time.perf_counter()
    summary = await engine.run()
    return time.perf_counter() - start, summary


async def _already() -> None:
    return None


# --- MQTT ---------------------------------------------------------------------------------

def _mqtt_client(broker, client_id: str, clean: bool = True):
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean,
                         protocol=mqtt.MQTTv311)
    return client


def _mqtt_session(broker, topic: str) -> None:
    """A durable session (QoS 1) the broker keeps messages for while it is away."""
    done = threading.Event()
    client = _mqtt_client(broker, "bench-keeper", clean=False)
    client.on_connect = lambda c, u, f, r, p: c.subscribe(topic, 1)
    client.on_subscribe = lambda *a: done.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    done.wait(10)
    client.disconnect()
    client.loop_stop()


def _mqtt_kept(broker, want: int, quiet: float = 2.0) -> int:
    """Messages the durable session got while away (waits until none come for `quiet` s)."""
    got = [0]
    client = _mqtt_client(broker, "bench-keeper", clean=False)
    client.on_message = lambda c, u, m: got.__setitem__(0, got[0] + 1)
    client.connect(broker.host, broker.port)
    client.loop_start()
    last, seen = time.monotonic(), 0
    while time.monotonic() - last < quiet and got[0] < want:
        time.sleep(0.1)
        if got[0] != seen:
            seen, last = got[0], time.monotonic()
    client.disconnect()
    client.loop_stop()
    # Start the next run with an empty session.
    cleaner = _mqtt_client(broker, "bench-keeper", clean=True)
    cleaner.connect(broker.host, broker.port)
    cleaner.disconnect()
    return got[0]


def _mqtt_bare(broker, messages: list) -> float:
    done = threading.Event()
    acked = [0]

    def on_publish(c, u, mid, reason, properties):
        acked[0] += 1
        if acked[0] == len(messages):
            done.set()

    client = _mqtt_client(broker, "bench-bare")
    client.max_inflight_messages_set(100)  # paho walks its in-flight list on every ack: 100 is its fastest here
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect(broker.host, broker.port)
    client.loop_start()
    start = time.perf_counter()
    for message in messages:
        client.publish(message.address, message.payload, qos=1)
    done.wait(600)
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return elapsed


def _mqtt_rep(broker, frames, messages) -> dict:
    from eslkit.brokers.buffer import Buffer
    from eslkit.brokers.mqtt import MqttPublisher, parse_mqtt_url

    n = len(frames)
    _mqtt_session(broker, "freeswitch/+/events/#")
    bare = _mqtt_bare(broker, messages)
    bare_kept = _mqtt_kept(broker, n)
    _mqtt_session(broker, "freeswitch/+/events/#")
    sink = MqttPublisher(parse_mqtt_url(broker.url, client_id="bench-relay"), Buffer(n + 1000), qos=1)
    elapsed, summary = asyncio.run(_relay(sink, frames))
    kept = _mqtt_kept(broker, n)
    return {"anchor": n / bare, "value": n / elapsed, "kept": kept, "anchor_kept": bare_kept,
            "complete": summary.complete, "line": summary.line()}


# --- AMQP ---------------------------------------------------------------------------------

QUEUE = "eslkit-bench-relay"


def _amqp_queue(broker, version: int) -> int:
    """The durable queue bound to everything, a classic queue of this version: how many
    events it holds (not popup states or the relay's status), taking them all out."""
    conn, ch, _ = broker.queue("#", durable=True, name=QUEUE, arguments={"x-queue-version": version})
    try:
        ch.basic_qos(prefetch_count=1000)
        events = 0
        for method, _, _ in ch.consume(QUEUE, auto_ack=True, inactivity_timeout=1.0):
            if method is None:
                break
            key = method.routing_key
            events += ".agents." not in key and not key.startswith("relay.")
        ch.cancel()
        return events
    finally:
        conn.close()


def _amqp_bare(broker, messages: list) -> float:
    """pika alone: SelectConnection, confirm mode, as many messages in flight as the relay."""
    import pika

    from eslkit.brokers.amqp import WINDOW

    state = {"sent": 0, "acked": 0, "start": 0.0, "end": 0.0}
    # The relay's properties: its content type, persistent, its headers (the agent's extension), a timestamp.
    now = int(time.time())
    props = [pika.BasicProperties(content_type="text/json", delivery_mode=2, headers=m.headers or None, timestamp=now)
             for m in messages]
    outstanding: deque = deque()  # delivery tags not yet confirmed (confirms may come out of order)

    def publish_more(ch):
        while state["sent"] < len(messages) and len(outstanding) < WINDOW:
            message = messages[state["sent"]]
            ch.basic_publish("freeswitch", message.address, message.payload, properties=props[state["sent"]])
            state["sent"] += 1
            outstanding.append(state["sent"])

    def on_confirm(frame):
        tag = frame.method.delivery_tag
        if frame.method.multiple:
            while outstanding and outstanding[0] <= tag:
                outstanding.popleft()
                state["acked"] += 1
        elif tag in outstanding:
            outstanding.remove(tag)
            state["acked"] += 1
        if state["acked"] >= len(messages):
            state["end"] = time.perf_counter()
            conn.close()
        else:
            publish_more(channel[0])

    channel = []

    def on_channel(ch):
        channel.append(ch)
        ch.confirm_delivery(on_confirm, callback=lambda _: (state.__setitem__("start", time.perf_counter()),
                                                            publish_more(ch)))

    params = pika.ConnectionParameters(broker.host, broker.port, "/",
                                       pika.PlainCredentials(broker.user, broker.password))
    def failed(c, reason):
        state["error"] = reason
        c.ioloop.stop()

    conn = pika.SelectConnection(params, on_open_callback=lambda c: c.channel(on_open_callback=on_channel),
                                 on_open_error_callback=failed, on_close_callback=lambda c, r: c.ioloop.stop())
    conn.ioloop.call_later(600, lambda: failed(conn, "no confirms for 600 s"))
    conn.ioloop.start()
    if not state["end"]:
        raise RuntimeError(f"bare pika: {state['acked']} of {len(messages)} confirmed ({state.get('error')})")
    return state["end"] - state["start"]


def _amqp_writer(broker, messages: list) -> float:
    """eslkit's AMQP writer alone (the second anchor): `AmqpPublisher` handed the relay's
    messages ready made, nothing else to do, until every one is confirmed."""
    from eslkit.brokers.amqp import AmqpPublisher, parse_amqp_url
    from eslkit.brokers.buffer import Buffer

    async def go() -> float:
        sink = AmqpPublisher(parse_amqp_url(broker.url(), password_env="ESLKIT_BENCH_AMQP_PW"),
                             Buffer(len(messages) + 10), client_id="bench-writer")
        await sink.start()
        start = time.perf_counter()
        for message in messages:
            sink.send(message)
        if not await sink.drain(600):
            raise RuntimeError(f"eslkit's writer: {sink.unconfirmed} of {len(messages)} not confirmed")
        elapsed = time.perf_counter() - start
        await sink.close()
        return elapsed

    return asyncio.run(go())


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and everything under it (RabbitMQ: a script, then beam.smp)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += cpu_seconds(p)
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:  # it ended meanwhile
            continue
    return total


def _timed(broker, run):
    """(run's result, RabbitMQ's CPU seconds, this process's CPU seconds) while it ran."""
    broker_cpu, own = _tree_cpu(broker.proc.pid), time.process_time()
    result = run()
    return result, _tree_cpu(broker.proc.pid) - broker_cpu, time.process_time() - own


def _amqp_rep(broker, frames, messages, version: int) -> dict:
    from eslkit.brokers.amqp import AmqpPublisher, parse_amqp_url
    from eslkit.brokers.buffer import Buffer

    n = len(frames)
    os.environ["ESLKIT_BENCH_AMQP_PW"] = broker.password
    _amqp_queue(broker, version)
    bare, bare_broker, _ = _timed(broker, lambda: _amqp_bare(broker, messages))
    bare_kept = _amqp_queue(broker, version)
    writer, writer_broker, writer_own = _timed(broker, lambda: _amqp_writer(broker, messages))
    writer_kept = _amqp_queue(broker, version)
    sink = AmqpPublisher(parse_amqp_url(broker.url(), password_env="ESLKIT_BENCH_AMQP_PW"), Buffer(n + 1000),
                         client_id="bench-relay")
    (elapsed, summary), relay_broker, relay_own = _timed(broker, lambda: asyncio.run(_relay(sink, frames)))
    kept = _amqp_queue(broker, version)
    us = 1e6 / n
    return {"anchor": n / bare, "value": n / elapsed, "kept": kept, "anchor_kept": bare_kept,
            "complete": summary.complete and writer_kept >= n, "line": summary.line(),
            "writer": n / writer, "rabbitmq_us": [round(c * us) for c in (bare_broker, writer_broker, relay_broker)],
            "own_us": [round(writer_own * us), round(relay_own * us)]}


# --- the rows -----------------------------------------------------------------------------

def _figure(key: str, label: str, anchor_label: str, reps: list[dict], n: int) -> Figure:
    value = statistics.median(r["value"] for r in reps)
    anchor = statistics.median(r["anchor"] for r in reps)
    ratio = statistics.median(r["value"] / r["anchor"] for r in reps)
    lost = [max(0, n - r["kept"]) for r in reps]  # at-least-once: a re-sent event may be kept twice
    complete = all(r["complete"] for r in reps) and max(lost) <= 0
    load = os.getloadavg()
    runs = ", ".join(f"{r['value']:,.0f}" for r in reps)
    anchors = ", ".join(f"{r['anchor']:,.0f}" for r in reps)
    checks, note = {}, ""
    if "writer" in reps[0]:  # AMQP: eslkit's writer alone, and where the CPU went
        checks = {"writer_runs": [round(r["writer"]) for r in reps],
                  "ratio_to_writer": round(statistics.median(r["value"] / r["writer"] for r in reps), 2),
                  "rabbitmq_cpu_us_per_message(pika, writer, relay)": [r["rabbitmq_us"] for r in reps],
                  "eslkit_cpu_us_per_message(writer, relay)": [r["own_us"] for r in reps]}
        writers = ", ".join(f"{r['writer']:,.0f}" for r in reps)
        note = (f"; eslkit's writer alone {writers} "
                f"(relay/writer {checks['ratio_to_writer']:.2f}×); RabbitMQ's CPU a message "
                f"{statistics.median(r['rabbitmq_us'][2] for r in reps):.0f} µs")
    return Figure(key, label, value=value, unit="ev/s", anchor_label=anchor_label, anchor=anchor, ratio=ratio,
                  target=f"≥ {TARGET:,} ev/s, 0 lost", passed=complete and value >= TARGET,
                  checks={"events": n, "runs": [round(r["value"]) for r in reps],
                          "anchor_runs": [round(r["anchor"]) for r in reps],
                          "lost": lost, "anchor_lost": [max(0, n - r["anchor_kept"]) for r in reps],
                          "summary": reps[-1]["line"], "load_average": [round(x, 2) for x in load], **checks},
                  note=f"runs {runs} ev/s; anchor {anchors}{note}; load average {load[0]:.1f}")


def _mosquitto(d: Path):
    from tests.support.brokers import Mosquitto

    broker = Mosquitto(d / "mqtt")
    # The durable session's queue in memory, unbounded: the tests' broker writes its whole
    # store to disk every second, which at this rate measures the disk, not the relay.
    broker.config.write_text(broker.config.read_text().replace("persistence true", "persistence false")
                             .replace("max_queued_messages 100000", "max_queued_messages 0"))
    return broker.start()


def _rabbitmq(d: Path):
    from tests.support.brokers import RabbitMQ

    return RabbitMQ(d / "amqp").start()


def measure(count: int, reps: int, timeout: float = 600) -> list[Figure]:
    from eslkit.brokers.amqp import AmqpPublisher, parse_amqp_url
    from eslkit.brokers.mqtt import MqttPublisher, parse_mqtt_url

    frames = _frames(count)
    amqp = parse_amqp_url("amqp://eslkit@127.0.0.1:5672/")
    rows = (("relay_mqtt", "T8 relay → Mosquitto, QoS 1 (events confirmed)", "bare paho", _mosquitto,
             MqttPublisher, parse_mqtt_url("mqtt://127.0.0.1:1883"), _mqtt_rep, "stop"),
            ("relay_amqp", "T8 relay → RabbitMQ, publisher confirms, classic queue v2", "bare pika", _rabbitmq,
             AmqpPublisher, amqp, functools.partial(_amqp_rep, version=2), "close"),
            ("relay_amqp_v1", "T8 relay → RabbitMQ, publisher confirms, classic queue v1 (3.10's default)",
             "bare pika", _rabbitmq, AmqpPublisher, amqp, functools.partial(_amqp_rep, version=1), "close"))
    figures = []
    with tempfile.TemporaryDirectory(prefix="eslkit-bench-relay-") as d:
        for key, label, anchor, start, publisher_class, settings, rep, stop in rows:
            messages = _messages(publisher_class, settings, frames)
            broker = start(Path(d))
            try:
                runs = [rep(broker, frames, messages) for _ in range(reps)]
            finally:
                getattr(broker, stop)()
            figures.append(_figure(key, label, anchor, runs, count))
    return figures
