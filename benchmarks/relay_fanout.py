"""Fan-out through a real Mosquitto: events/s from `eslkit relay` to 1, 10, 100 desktops.

    .venv/bin/python -m benchmarks.relay_fanout [--events 3000] [--subscribers 1,10,100] [--qos 1]

The relay side is eslkit's own `Relay` + `MqttPublisher` (QoS 1, the default),
fed the real 1.10.12 capture events over and over.  The desktops are plain
paho clients in a separate process (so they do not share the relay's GIL),
each subscribed to ``freeswitch/#`` at the same QoS.  The clock runs from the
relay's first event to the moment the last desktop has its last message:
events/s = events / that time; deliveries/s = events x desktops / that time.
Mosquitto is started for the run on a free loopback port and stopped after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import ROOT, cpu_seconds

SUBSCRIBERS = r"""
import sys, threading, time
import paho.mqtt.client as mqtt
host, port, n, want, qos = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
counts = [0] * n
lock = threading.Lock()
done = threading.Event()
finished = [0]
subscribed = threading.Semaphore(0)
last = [0.0]
def make(i):
    def on_message(c, u, m):
        counts[i] += 1
        if counts[i] == want:
            with lock:
                finished[0] += 1
                last[0] = time.time()
                if finished[0] == n:
                    done.set()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fanout-{i}", protocol=mqtt.MQTTv311)
    c.on_message = on_message
    c.on_subscribe = lambda *a: subscribed.release()
    c.on_connect = lambda c, u, f, r, p: c.subscribe("freeswitch/+/events/#", qos)
    c.max_inflight_messages_set(100)
    c.connect(host, port, 60)
    c.loop_start()
    return c
clients = [make(i) for i in range(n)]
for _ in range(n):
    subscribed.acquire(timeout=30)
print("ready", flush=True)
ok = done.wait(600)
print(f"{'done' if ok else 'timeout'} {last[0]!r} {min(counts)} {sum(counts)}", flush=True)
for c in clients:
    c.disconnect(); c.loop_stop()
"""


def capture_events(n: int):
    from benchmarks.corpus import CAPTURES, SCENARIOS
    from eslkit.protocol import EventFrame, Parser

    base = []
    for name in SCENARIOS:
        frames = Parser().feed((CAPTURES / f"{name}.raw").read_bytes())
        base += [f.event for f in frames if isinstance(f, EventFrame)]
    return [base[i % len(base)] for i in range(n)]


async def relay_all(url: str, events, qos: int) -> tuple[float, float]:
    from eslkit.app.relay import RelayEngine
    from eslkit.brokers.buffer import Buffer
    from eslkit.brokers.mqtt import MqttPublisher, parse_mqtt_url
    from eslkit.sources import EventsSource

    sink = MqttPublisher(parse_mqtt_url(url, client_id="fanout-relay"), Buffer(len(events) + 10), qos=qos)
    await sink.start()
    sink.start = _already  # the relay below must not connect a second time
    start = time.time()
    summary = await RelayEngine(EventsSource(events), sink, drain_timeout=600).run()
    assert summary.complete, summary.line()
    return start, time.time()


async def _already() -> None:
    return None


def measure(broker, events, n: int, qos: int) -> dict:
    broker_cpu = cpu_seconds(broker.proc.pid)
    proc = subprocess.Popen([sys.executable, "-c", SUBSCRIBERS, broker.host, str(broker.port), str(n),
                             str(len(events)), str(qos)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        start, published = asyncio.run(relay_all(broker.url, events, qos))
        status, last, least, total = proc.stdout.readline().split()
        proc.wait(60)
    finally:
        proc.kill()
    if status != "done":
        raise RuntimeError(f"{n} subscribers: only {least} of {len(events)} events reached the slowest one")
    elapsed = float(last) - start
    broker_cpu = cpu_seconds(broker.proc.pid) - broker_cpu
    return {"broker_cpu_percent": round(100 * broker_cpu / elapsed),"subscribers": n, "events": len(events), "seconds": round(elapsed, 3),
            "events_per_s": round(len(events) / elapsed), "deliveries_per_s": round(int(total) / elapsed),
            "relay_publish_s": round(published - start, 3)}


def amqp_rate(events) -> dict:
    """`relay --to amqp://…`: confirmed publishes per second into a RabbitMQ on loopback."""
    from eslkit.app.relay import RelayEngine
    from eslkit.brokers.amqp import AmqpPublisher, parse_amqp_url
    from eslkit.brokers.buffer import Buffer
    from eslkit.sources import EventsSource
    from tests.support.brokers import RabbitMQ

    async def run(url: str) -> float:
        sink = AmqpPublisher(parse_amqp_url(url, password_env="ESLKIT_BENCH_AMQP_PW"), Buffer(len(events) + 10))
        start = time.time()
        summary = await RelayEngine(EventsSource(events), sink, drain_timeout=600).run()
        assert summary.complete, summary.line()
        return time.time() - start

    with tempfile.TemporaryDirectory(prefix="eslkit-fanout-amqp-") as d:
        broker = RabbitMQ(Path(d))
        os.environ["ESLKIT_BENCH_AMQP_PW"] = broker.password
        broker.start()
        try:
            elapsed = asyncio.run(run(broker.url()))
        finally:
            broker.close()
    return {"broker": "rabbitmq", "events": len(events), "seconds": round(elapsed, 3),
            "confirmed_per_s": round(len(events) / elapsed)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--subscribers", default="1,10,100")
    parser.add_argument("--qos", type=int, default=1, choices=(0, 1, 2))
    parser.add_argument("--amqp", action="store_true",
                        help="also measure confirmed publishes/s into a RabbitMQ (relay --to amqp://)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests.support.brokers import Mosquitto

    events = capture_events(args.events)
    with tempfile.TemporaryDirectory(prefix="eslkit-fanout-") as d:
        broker = Mosquitto(Path(d)).start()
        try:
            rows = [measure(broker, events, int(n), args.qos) for n in args.subscribers.split(",")]
        finally:
            broker.stop()
    amqp = amqp_rate(events) if args.amqp else None
    if args.json:
        for row in rows + ([amqp] if amqp else []):
            print(json.dumps(row))
        return
    print(f"Mosquitto {broker.port}, QoS {args.qos}, {args.events} events, {os.cpu_count()} CPUs")
    print("| subscribers | events/s (relay → every desktop) | deliveries/s | seconds | Mosquitto CPU |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['subscribers']} | {r['events_per_s']:,} | {r['deliveries_per_s']:,} | {r['seconds']} "
              f"| {r['broker_cpu_percent']} % |")
    if amqp:
        print(f"RabbitMQ, publisher confirms: {amqp['confirmed_per_s']:,} events/s ({amqp['seconds']} s)")


if __name__ == "__main__":
    main()
