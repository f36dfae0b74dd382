"""The simulated switch: an asyncio TCP server that speaks mod_event_socket.

    server = SimServer(port=0, scenario="queue")       # port 0: pick a free port
    await server.start()
    print(server.host, server.port)
    ...
    await server.close()                               # SHUTDOWN + disconnect notice, like FreeSWITCH

Fan-out is built for many clients: each fired event is serialised once per
wire format (`SimEvent.frame_parts`, in `fire`) and the same bytes go to every
connection that wants it; writes are batched per connection once per loop turn; a connection
whose socket buffer is over ``max_buffer`` loses events (counted in
``lost_events``) instead of slowing the others.  Commands are bounded in size
and an unauthenticated connection is closed after ``auth_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
import uuid as uuidlib
from typing import Callable, Iterable, Optional, Union

from eslkit.errors import FrameTooLarge
from eslkit.event import Event
from eslkit.protocol import (
    CommandParser,
    auth_request,
    command_reply,
    disconnect_notice,
    log_data,
    rude_rejection,
)
from eslkit.sim.api import run_api
from eslkit.sim.channels import CallRegistry
from eslkit.sim.events import SimEvent
from eslkit.sim.fastpath import CallEvent
from eslkit.sim.legs import Dialing, Legs
from eslkit.sim.obey import originate_job
from eslkit.sim.queues import QueueRegistry
from eslkit.sim.replay import load_replay, play_to
from eslkit.sim.scenarios import LoadSpec, load_scenario, play, recorded_hangup
from eslkit.sim.session import Session
from eslkit.subscription import event_type

HOSTNAME = "vm"  # the scenario files come from a switch called vm; keep them consistent
IPV4 = "192.0.2.2"
IPV6 = "fd00::2"
SHUTDOWN_TEXT = "The system is being shut down.\n"
# Playback starts this long after a client's first subscription, so that the
# filters it sends right after `event ...` apply from the first event.
START_GRACE = 0.25
CHANNEL_LOG_LINES = {
    "CHANNEL_CREATE": ("switch_channel.c", 1142, "New Channel {name} [{uuid}]"),
    "CHANNEL_ANSWER": ("switch_channel.c", 3846, "Channel [{name}] has been answered"),
    "CHANNEL_HANGUP": ("switch_channel.c", 3992, "Hangup {name} [{state}] [{cause}]"),
}

Speed = Optional[float]  # None = as fast as possible ("max")


# The phones registered on the switch the captures come from (agents_register_plain).
CAPTURED_PHONES = frozenset({"1001", "1002"})


def registered_phones(scenario, replay) -> Optional[frozenset]:
    """Who `sofia_contact` finds: the captured switch's phones and a load's agents; for a
    replay nobody knows, so everyone (a popup then never says "not registered")."""
    if replay is not None:
        return None
    if isinstance(scenario, LoadSpec):
        return CAPTURED_PHONES | {str(scenario.first_agent + i) for i in range(scenario.agents)}
    return CAPTURED_PHONES


class SimServer:
    """A FreeSWITCH-shaped event socket with simulated calls.

    ``scenario`` is a scenario name or file (see `eslkit.sim.scenarios`), a
    loaded `Scenario`, or None; it starts when the first connection
    subscribes to events (``autostart``), and repeats with ``loop``.
    ``replay`` is a transcript or recording that every connection gets played
    from its start instead.  ``speed`` scales scenario and replay timing
    (None = no delays).  ``allow`` lists CIDRs; other peers get the rude
    rejection.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8021,
        password: str = "ClueCon",
        *,
        scenario=None,
        loop: bool = False,
        replay: Union[str, None, object] = None,
        speed: Speed = 1.0,
        allow: Iterable[str] = (),
        autostart: bool = True,
        max_buffer: int = 16 * 1024 * 1024,
        auth_timeout: float = 25.0,
    ):
        if not password:
            raise ValueError("the simulator always requires a password")
        self.host = host
        self.port = port
        self.password = password
        self.speed = speed
        self.loop_scenario = loop
        self.autostart = autostart
        self.max_buffer = max_buffer
        self.auth_timeout = auth_timeout
        self.allow = [ipaddress.ip_network(c, strict=False) for c in allow]
        self.scenario = load_scenario(scenario) if isinstance(scenario, str) else scenario
        self.replay = None
        if replay is not None:
            self.replay = load_replay(replay) if isinstance(replay, str) else replay
        self.registered = registered_phones(self.scenario, self.replay)
        self.core_uuid = str(uuidlib.uuid4())
        self.started_at = time.time()
        self.channels = CallRegistry()
        self.legs = Legs()  # what the call-control commands act on (eslkit.sim.obey)
        self.dialing = Dialing()
        self.queues = QueueRegistry()  # mod_callcenter's and mod_fifo's tables (callcenter_config, fifo)
        self.connections: set[_Connection] = set()
        self._server: Optional[asyncio.base_events.Server] = None
        self._seq = 0
        self._tasks: set[asyncio.Task] = set()
        self._scenario_task: Optional[asyncio.Task] = None
        self.lost_events = 0
        self.events_fired = 0

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> "SimServer":
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), self.host, self.port,
                                                reuse_address=True, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        await self._server.serve_forever()

    async def __aenter__(self) -> "SimServer":
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        """Shut down like FreeSWITCH: SHUTDOWN event, then a disconnect notice to everyone."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        self.fire(self.switch_event("SHUTDOWN", "switch_core.c", "switch_core_destroy", 3023,
                                    [("Event-Info", "System Shutting Down")]))
        for conn in list(self.connections):
            conn.hang_up(SHUTDOWN_TEXT)
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            except asyncio.TimeoutError:
                pass
        await asyncio.sleep(0)

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- scenarios ---------------------------------------------------------------------

    def first_subscribe(self, conn: "_Connection") -> None:
        """A client subscribed for the first time: a replay starts for it, a scenario for all."""
        if self.replay is not None:
            self.spawn(play_to(self, conn, self.replay, START_GRACE))
        elif self.scenario is not None and self.autostart and self._scenario_task is None:
            self._scenario_task = self.spawn(self.run_scenario(delay=START_GRACE))

    async def run_scenario(self, scenario=None, loop: Optional[bool] = None, delay: float = 0.0) -> None:
        """Play the scenario (once, or forever with loop)."""
        await asyncio.sleep(delay)
        scenario = scenario or self.scenario
        loop = self.loop_scenario if loop is None else loop
        while True:
            await play(self, scenario)
            if not loop:
                return
            await asyncio.sleep(0 if self.speed is None else 2.0 / self.speed)

    async def play(self, scenario=None) -> None:
        """Play one run of a scenario (name, file or `Scenario`) and return when it ends."""
        if isinstance(scenario, str):
            scenario = load_scenario(scenario)
        await play(self, scenario or self.scenario)

    # --- events ----------------------------------------------------------------------

    def subscribers_behind(self) -> bool:
        """Every connection subscribed to events has half of max_buffer or more still to take:
        a load generator at full speed waits rather than make events only to lose them."""
        limit = self.max_buffer // 2
        behind = False
        for conn in self.connections:
            if conn.session.events_on:
                if conn.backlog <= limit:
                    return False
                behind = True
        return behind

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def new_uuid(self) -> str:
        return str(uuidlib.uuid4())

    def switch_event(self, name: str, file: str, func: str, line: int,
                     extra: Iterable[tuple[str, str]] = (), body: Optional[str] = None) -> Event:
        """An event the switch itself fires, with the standard headers in FreeSWITCH's order."""
        now = time.time()
        secs = int(now)
        headers = [
            ("Event-Name", name),
            ("Core-UUID", self.core_uuid),
            ("FreeSWITCH-Hostname", HOSTNAME),
            ("FreeSWITCH-Switchname", HOSTNAME),
            ("FreeSWITCH-IPv4", IPV4),
            ("FreeSWITCH-IPv6", IPV6),
            ("Event-Date-Local", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(secs))),
            ("Event-Date-GMT", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(secs))),
            ("Event-Date-Timestamp", str(int(now * 1_000_000))),
            ("Event-Calling-File", file),
            ("Event-Calling-Function", func),
            ("Event-Calling-Line-Number", str(line)),
            ("Event-Sequence", str(self.next_seq())),
            *extra,
        ]
        return Event(headers, body)

    def fire(self, event: Union[Event, SimEvent]) -> SimEvent:
        """Send an event to every connection that wants it (and track calls)."""
        ev = event if isinstance(event, SimEvent) else SimEvent.from_event(event)
        self._fire([ev])
        return ev

    def fire_burst(self, burst, values) -> None:
        """`fire` for a burst of a call's events at full speed (see `Burst`): numbered together,
        and a connection that takes every event gets them as one string of frames, made once
        per format, queued and counted together."""
        first = self._seq + 1
        self._seq += len(burst.templates)
        events = [CallEvent(t, values, first + j) for j, t in enumerate(burst.templates)]
        # A call played at full speed is over in milliseconds: no command can act on it, and
        # the call-control registry (self.legs) does not follow it (it would cost a load
        # generator a fifth of its events).
        if any(c.session.log_level is not None for c in self.connections):
            for ev in events:  # log lines go out between the events: one at a time
                self._fire([ev], controllable=False)
        else:
            self._fire(events, lambda fmt: burst.frames(fmt, values, first), controllable=False)

    def _fire(self, events: list, together: Optional[Callable[[str], tuple]] = None, *,
              controllable: bool = True) -> None:
        """Send events to every connection that wants them; ``together`` makes all their
        frames in a format at once (as `Burst.frames`), for the connections that want every event."""
        self.events_fired += len(events)
        for ev in events:
            self.channels.track(ev)
            if controllable:
                self.legs.track(ev)
            self.queues.track(ev)
        logging = False
        made: dict[str, list] = {}  # each frame made once per format, whatever the number of connections
        made_together: dict[str, tuple] = {}
        for conn in self.connections:
            session = conn.session
            logging = logging or session.log_level is not None
            if not session.events_on:
                continue
            fmt = session.format
            if together is not None and session.wants_everything:
                data = made_together.get(fmt)
                if data is None:
                    data = made_together[fmt] = together(fmt)
                conn.send_events(*data)
                continue
            frames = made.get(fmt)
            if frames is None:
                frames = made[fmt] = [None] * len(events)
            wanted = range(len(events)) if session.wants_everything else \
                [i for i, ev in enumerate(events) if session.wants(ev)]
            for i in wanted:
                if frames[i] is None:
                    frames[i] = events[i].frame_parts(fmt)
            conn.send_events([frames[i] for i in wanted])
        if logging:
            for ev in events:
                if ev.event_name in CHANNEL_LOG_LINES:
                    self._log_channel_event(ev)

    def _log_channel_event(self, ev: SimEvent) -> None:
        """The NOTICE lines FreeSWITCH logs as a channel comes, answers and goes."""
        file, line, text = CHANNEL_LOG_LINES[ev.event_name]
        self.log(5, text.format(name=ev.get("Channel-Name") or "", uuid=ev.get("Unique-ID") or "",
                                state=ev.get("Channel-State") or "", cause=ev.get("Hangup-Cause") or ""),
                 file, "switch_channel_perform", line, ev.get("Unique-ID"))

    def log(self, level: int, text: str, file: str = "switch_cpp.cpp", func: str = "log",
            line: int = 1, uuid: Optional[str] = None) -> None:
        """A log line to every connection that asked for `log` at this level or above."""
        names = {0: "CONSOLE", 1: "ALERT", 2: "CRIT", 3: "ERR", 4: "WARNING", 5: "NOTICE", 6: "INFO", 7: "DEBUG"}
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f".{int(now * 1e6) % 1_000_000:06d}"
        line_text = f"{stamp} 99.00% [{names.get(level, 'DEBUG')}] {file}:{line} {text}"
        if not line_text.endswith("\n"):
            line_text += "\n"
        headers = [("Text-Channel", "3" if uuid else "0"), ("Log-File", file), ("Log-Func", func),
                   ("Log-Line", str(line)), ("User-Data", "")]
        if uuid:
            headers.append(("Log-UUID", uuid))
        data = None
        for conn in self.connections:
            lvl = conn.session.log_level
            if lvl is not None and lvl >= level:
                data = data or log_data(line_text, level, headers)
                conn.send(data)

    # --- commands that reach the switch ---------------------------------------------------

    def api(self, name: str, arg: Optional[str]) -> str:
        # As switch_api_execute: the API event is made (and numbered) when the command
        # starts and fired when it returns, after what the command did at once.
        event = self._api_event(name, arg)
        body = run_api(self, name, arg)
        self.fire(event)
        return body

    def _api_event(self, name: str, arg: Optional[str]) -> Event:
        return self.switch_event("API", "switch_loadable_module.c", "switch_api_execute", 2954,
                                 [("API-Command", name)] + ([("API-Command-Argument", arg)] if arg else []))

    async def _background(self, name: str, arg: Optional[str]) -> str:
        """A bgapi command's body; originate's comes when the agent's phone answers."""
        if name.lower() != "originate":
            return self.api(name, arg)
        event = self._api_event(name, arg)
        body = await originate_job(self, arg or "")
        self.fire(event)
        return body

    def recorded_hangup(self, uuid: str) -> Optional[tuple[float, str]]:
        """Seconds until the recorded scenario call this leg came from hangs it up, and the cause."""
        return recorded_hangup(self, uuid)

    def bgapi(self, job_uuid: str, name: str, arg: Optional[str]) -> None:
        async def job() -> None:
            await asyncio.sleep(0)  # after the command/reply, as in FreeSWITCH
            body = await self._background(name, arg)
            extra = [("Job-UUID", job_uuid), ("Job-Command", name)]
            if arg:
                extra.append(("Job-Command-Arg", arg))
            self.fire(self.switch_event("BACKGROUND_JOB", "mod_event_socket.c", "api_exec", 1572, extra, body))

        self.spawn(job())

    def sendevent(self, name: str, headers: list[tuple[str, str]], body: Optional[bytes] = None) -> str:
        """``sendevent NAME`` with the command's headers (and body): fired to every listener."""
        event_uuid = self.new_uuid()
        ename = (event_type(name) or "CUSTOM") if name else "COMMAND"
        extra = [(k, v) for k, v in headers if k.lower() not in ("event-name", "content-length")]
        extra.append(("Event-UUID", event_uuid))
        text = body.decode("utf-8", "replace") if body else None
        self.fire(self.switch_event(ename, "mod_event_socket.c", "parse_command", 2245, extra, text))
        return f"+OK {event_uuid}"


# --- one connection ------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """Bytes in → commands → Session; events and replies out, batched."""

    def __init__(self, server: SimServer):
        self.server = server
        self.session = Session(server, lambda session: server.first_subscribe(self))
        self.transport: Optional[asyncio.Transport] = None
        self._commands = CommandParser()
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._flush_scheduled = False
        self._closing = False
        self._paused = False
        self._drained: Optional[asyncio.Event] = None
        self._auth_timer: Optional[asyncio.TimerHandle] = None
        self.replaying = False
        self.lost_events = 0
        self.peer = ("", 0)

    # asyncio callbacks

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.peer = transport.get_extra_info("peername") or ("", 0)
        transport.set_write_buffer_limits(high=min(self.server.max_buffer, 1024 * 1024))
        if self.server.allow and not self._allowed(self.peer[0]):
            transport.write(rude_rejection() + disconnect_notice())
            transport.close()
            self._closing = True
            return
        self.server.connections.add(self)
        transport.write(auth_request())
        loop = asyncio.get_running_loop()
        self._auth_timer = loop.call_later(self.server.auth_timeout, self._auth_expired)

    def _allowed(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip.split("%")[0])
        except ValueError:
            return False
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        return any(addr in net for net in self.server.allow)

    def _auth_expired(self) -> None:
        if not self.session.authed:
            self.hang_up()

    def connection_lost(self, exc) -> None:
        self._closing = True
        self.server.connections.discard(self)
        if self._auth_timer is not None:
            self._auth_timer.cancel()
        if self._drained is not None:
            self._drained.set()

    def pause_writing(self) -> None:
        # The peer is not reading: stop reading its commands too (replies are never dropped).
        self._paused = True
        if self.transport is not None and not self._closing:
            self.transport.pause_reading()
        if self._drained is None:
            self._drained = asyncio.Event()
        self._drained.clear()

    def resume_writing(self) -> None:
        self._paused = False
        if self.transport is not None and not self._closing:
            self.transport.resume_reading()
        if self._drained is not None:
            self._drained.set()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        try:
            commands = self._commands.feed(data)
        except FrameTooLarge:
            self.hang_up()  # megabytes without a newline, or a huge body: this client goes
            return
        for cmd, headers, body in commands:
            if self._closing:
                return
            self._command(cmd, headers, body)

    # commands and output

    def _command(self, cmd: str, headers: list[tuple[str, str]], body: Optional[bytes] = None) -> None:
        try:
            reply, hang_up = self.session.handle(cmd, headers, body)
        except Exception:  # a bug must not take the whole switch down
            reply, hang_up = command_reply("-ERR internal error in eslkit sim"), False
        self.send(reply)
        if self.session.authed and self._auth_timer is not None:
            self._auth_timer.cancel()
            self._auth_timer = None
        if hang_up:
            self.hang_up()

    def send(self, data: bytes) -> None:
        if self._closing:
            return
        self._pending.append(data)
        self._pending_size += len(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def send_events(self, frames: list, counts: Optional[tuple] = None) -> None:
        """Queue event frames (each in parts, see `SimEvent.frame_parts`; ``counts``: how many
        frames each holds, see `Burst`); one that finds this client too far behind (over
        max_buffer) is counted lost instead, so it cannot hold the switch."""
        if self._closing or not frames:
            return
        pending, limit = self._pending, self.server.max_buffer
        written = self.transport.get_write_buffer_size()
        size = self._pending_size
        lost = 0
        for i, parts in enumerate(frames):
            if written + size > limit:
                lost += counts[i] if counts else 1
                continue
            pending.extend(parts)
            size += sum(map(len, parts))
        self._pending_size = size
        if lost:
            self.lost_events += lost
            self.server.lost_events += lost
        if pending and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._pending or self.transport is None or self.transport.is_closing():
            self._pending.clear()
            self._pending_size = 0
            return
        pending, self._pending = self._pending, []
        self._pending_size = 0
        self.transport.writelines(pending)  # Python 3.12+ sends the pieces without joining them first

    @property
    def closing(self) -> bool:
        """Hung up (or going): nothing more is sent."""
        return self._closing

    @property
    def backlog(self) -> int:
        """Bytes written but not yet taken by the peer."""
        if self.transport is None:
            return 0
        return self.transport.get_write_buffer_size() + self._pending_size

    async def drain(self) -> None:
        """Wait until the socket buffer is below its high-water mark (for per-connection replay)."""
        if self._flush_scheduled:
            self._flush()
        while self._paused and not self._closing:
            if self._drained is None:
                self._drained = asyncio.Event()
            await self._drained.wait()

    def hang_up(self, text: Optional[str] = None) -> None:
        """Disconnect notice, then close once everything queued is written."""
        if self._closing or self.transport is None:
            return
        if text is None:
            self.send(disconnect_notice())
        else:
            self.send(disconnect_notice(text))
        self._flush()
        self._closing = True
        self.server.connections.discard(self)
        self.transport.close()
