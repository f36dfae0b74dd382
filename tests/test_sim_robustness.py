"""A misbehaving client cannot hurt the other clients of `eslkit sim`: one that never
authenticates, one that sends megabytes without a newline, one that hangs up mid-command,
one that never reads its events. And many clients at once each get their own events."""

from __future__ import annotations

import socket
import time

from eslkit.protocol import DisconnectNotice, EventFrame
from eslkit.sim.scenarios import load_scenario
from tests.support.sim import sim_in_thread
from tests.test_sim_protocol import Client, talk


def served(sim) -> bool:
    """A fresh, well-behaved client still gets an api answer."""
    client = talk(sim.host, sim.port, b"auth ClueCon\n\napi version\n\n")
    client.close()
    return client.replies()[-1].text.startswith("FreeSWITCH Version 1.10.12")


def gone(sim, timeout: float = 3.0) -> bool:
    """Every connection has been closed and forgotten by the switch."""
    deadline = time.monotonic() + timeout
    while sim.server.connections and time.monotonic() < deadline:
        time.sleep(0.02)
    return not sim.server.connections


def test_client_that_never_authenticates_is_dropped_after_the_auth_timeout() -> None:
    with sim_in_thread(scenario=None, auth_timeout=0.5) as sim:
        idle = Client(sim.host, sim.port)
        assert served(sim)
        idle.read_until(lambda: idle.eof, timeout=3)
    assert [f.content_type for f in idle.frames] == ["auth/request", "text/disconnect-notice"]
    assert idle.eof


def test_megabytes_without_a_newline_end_that_connection_only() -> None:
    with sim_in_thread(scenario=None) as sim:
        flood = Client(sim.host, sim.port)
        try:
            for _ in range(64):
                flood.sock.sendall(b"x" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        flood.read_until(lambda: flood.eof, timeout=3)
        assert flood.eof
        assert served(sim)
        assert gone(sim)


def test_huge_command_body_is_refused() -> None:
    with sim_in_thread(scenario=None) as sim:
        client = talk(sim.host, sim.port, b"auth ClueCon\n\n")
        client.sock.sendall(b"sendevent CUSTOM\nContent-Length: 999999999\n\n")
        client.read_until(lambda: client.eof, timeout=3)
        assert client.eof and isinstance(client.frames[-1], DisconnectNotice)
        assert served(sim)


def test_hanging_up_in_the_middle_of_a_command() -> None:
    with sim_in_thread(scenario=None) as sim:
        for partial in (b"auth Clue", b"auth ClueCon\n\napi sta", b"auth ClueCon\n\nsendevent X\nContent-Length: 10\n\nabc"):
            s = socket.create_connection((sim.host, sim.port), timeout=3)
            s.sendall(partial)
            s.close()
        assert served(sim)
        assert gone(sim)


def test_a_client_that_never_reads_does_not_stall_the_others() -> None:
    spec = load_scenario("load:calls=60,cps=1000,concurrent=20,agents=10")
    events_per_call = len(load_scenario("queue").templates)
    with sim_in_thread(scenario=spec, speed=None, autostart=False, max_buffer=256 * 1024) as sim:
        stuck = talk(sim.host, sim.port, b"auth ClueCon\n\nevent xml ALL\n\n")
        stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        reader = talk(sim.host, sim.port, b"auth ClueCon\n\nevent plain CHANNEL_HANGUP_COMPLETE\n\n")
        sim.call_soon(sim.server.spawn, sim.server.play(spec))
        reader.read_until(
            lambda: sum(isinstance(f, EventFrame) for f in reader.frames) >= 60 * 3, timeout=20)
        got = sum(isinstance(f, EventFrame) for f in reader.frames)
        lost = sum(c.lost_events for c in sim.server.connections)
        backlog = max(c.backlog for c in sim.server.connections)
        assert served(sim)
        stuck.close()
        reader.close()
    assert got == 60 * 3  # every call's three legs, none lost for the reader
    assert lost > 0  # the stuck client lost events instead of holding the switch
    assert backlog <= 256 * 1024 + 64 * 1024  # its buffer stayed bounded
    assert sim.server.events_fired >= 60 * events_per_call


def test_at_full_speed_the_load_waits_for_a_slow_reader_instead_of_losing_events() -> None:
    """With every subscriber behind, the load generator waits: a slow reader gets every
    event of every call, in sequence, and nothing is counted lost."""
    from eslkit.protocol import Parser

    calls = 30
    spec = load_scenario(f"load:calls={calls},cps=1000,concurrent=20,agents=10")
    want = calls * len(load_scenario("queue").templates)
    with sim_in_thread(scenario=spec, speed=None, autostart=False, max_buffer=256 * 1024) as sim:
        sock = socket.create_connection((sim.host, sim.port), timeout=10)
        sock.sendall(b"auth ClueCon\n\nevent plain ALL\n\n")
        parser, head, events = Parser(), [], []
        while len(head) < 3:  # auth/request and the two replies
            head += parser.feed(sock.recv(65536))
        sim.call_soon(sim.server.spawn, sim.server.play(spec))
        deadline = time.monotonic() + 30
        while len(events) < want and time.monotonic() < deadline:
            events += [f.event for f in parser.feed(sock.recv(32768)) if isinstance(f, EventFrame)]
            time.sleep(0.002)  # a reader slower than the simulator
        lost = sim.server.lost_events
        sock.close()
    assert lost == 0
    assert len(events) == want
    seqs = [int(e.get("Event-Sequence")) for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == want


def test_a_hundred_clients_each_with_their_own_filter() -> None:
    with sim_in_thread(scenario="queue", speed=None, autostart=False) as sim:
        clients = []
        for i in range(100):
            agent = ("1001", "1002")[i % 2]
            fmt = ("plain", "json", "xml")[i % 3]
            client = Client(sim.host, sim.port)
            client.sock.sendall(f"auth ClueCon\n\nevent {fmt} CHANNEL_CREATE\n\n"
                                f"filter Caller-Destination-Number {agent}\n\n".encode())
            clients.append((agent, fmt, client))
        for agent, fmt, client in clients:
            client.read_until(lambda: len(client.replies()) == 4)  # greeting + three replies
        sim.call(sim.server.play("queue"))
        for agent, fmt, client in clients:
            client.read_until(lambda: any(isinstance(f, EventFrame) for f in client.frames), timeout=5)
            client.close()
    for agent, fmt, client in clients:
        events = [f for f in client.frames if isinstance(f, EventFrame)]
        assert [(f.content_type, f.event.destination) for f in events] == [(f"text/event-{fmt}", agent)]


def test_filters_per_connection_are_bounded() -> None:
    from eslkit.sim.session import MAX_FILTERS

    with sim_in_thread(scenario=None) as sim:
        client = talk(sim.host, sim.port, b"auth ClueCon\n\n")
        client.sock.sendall(b"".join(b"filter Unique-ID %d\n\n" % i for i in range(MAX_FILTERS + 1)))
        client.read_until(lambda: len(client.replies()) == 2 + MAX_FILTERS + 1, timeout=5)
        client.close()
    replies = [f.reply_text for f in client.replies()[2:]]
    assert replies[:-1] == [f"+OK filter added. [Unique-ID]=[{i}]" for i in range(MAX_FILTERS)]
    assert replies[-1].startswith("-ERR too many filters")
