"""Real brokers for the relay tests: Mosquitto and RabbitMQ from Debian.

Each broker is the test run's own process: a free loopback port, a temporary
config and data directory, stopped (by its own pid / process group) at the
end.  Nothing here touches a system-wide broker.  ``restart()`` keeps the port
and the data directory, so a test can take the broker away mid-stream.

Use the fixtures ``mosquitto`` (session), ``fresh_mosquitto`` (one per test,
restartable) and ``rabbitmq`` (session; RabbitMQ takes seconds to boot).
"""

from __future__ import annotations

import base64
import hashlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.support.net import free_port, wait_for_port

MOSQUITTO = "/usr/sbin/mosquitto"
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
RABBITMQCTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
EPMD = shutil.which("epmd") or "/usr/bin/epmd"


def _stop(proc: subprocess.Popen | None, timeout: float = 10.0) -> None:
    """Stop a process we started, and its process group (its own children)."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def mosquitto_password_line(user: str, password: str) -> str:
    """A mosquitto_passwd line (`$6$`: salted SHA-512), made without putting
    the password in any process's argument list."""
    salt = os.urandom(12)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return f"{user}:$6${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}\n"


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 (openssl, no passphrases)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (d / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt"))
    ext = d / "san.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
        "-subj", "/CN=eslkit test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out", str(cert),
        "-days", "2", "-extfile", str(ext))
    for path in (key, ca_key):
        path.chmod(0o644)  # mosquitto may read it as another user
    return ca, cert, key


@pytest.fixture
def tls_files(tmp_path) -> tuple[Path, Path, Path]:
    """make_tls_files in the test's own directory: (CA, server certificate, key)."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed: no certificate for a TLS broker (scripts/setup --test installs it)")
    return make_tls_files(tmp_path / "tls")


class Mosquitto:
    """One Mosquitto on 127.0.0.1:<free port>, persistent so that a restart keeps
    durable subscriptions and the messages queued for them."""

    def __init__(self, directory: Path, *, users: dict[str, str] | None = None, acl: str | None = None,
                 tls: tuple[Path, Path, Path] | None = None):
        self.dir = Path(directory)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        lines = [
            # Run as root, mosquitto switches to the user "mosquitto", who cannot
            # write our temp dir: stay the user who runs the tests.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            f"listener {self.port} {self.host}",
            "persistence true",
            f"persistence_location {self.dir / 'data'}/",
            "autosave_interval 1",
            f"log_dest file {self.dir / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type subscribe",  # `subscriptions`: a test waits until a client listens
            "max_queued_messages 100000",
            "max_inflight_messages 100",
        ]
        if users:
            (self.dir / "passwd").write_text("".join(mosquitto_password_line(u, p) for u, p in users.items()))
            lines += ["allow_anonymous false", f"password_file {self.dir / 'passwd'}"]
        else:
            lines.append("allow_anonymous true")
        if tls is not None:
            ca, cert, key = tls
            lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"]
        self.tls = tls is not None
        if acl is not None:
            (self.dir / "acl").write_text(acl)
            lines.append(f"acl_file {self.dir / 'acl'}")
        self.config = self.dir / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> "Mosquitto":
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "stderr.log", "ab"),
            start_new_session=True,
        )
        if not wait_for_port("127.0.0.1", self.port, timeout, self.proc):
            self.stop()
            raise RuntimeError(f"mosquitto did not start on port {self.port}: {self.log()}")
        return self

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        # The port may linger a moment in the kernel; mosquitto sets SO_REUSEADDR.
        self.start()

    def subscriptions(self, topic: str) -> int:
        """How many subscriptions to exactly ``topic`` the broker has taken so far (its log)."""
        log = self.dir / "mosquitto.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return sum(line.endswith(f" {topic}") and ": " in line for line in text.splitlines())

    def wait_subscribed(self, topic: str, count: int, timeout: float = 30.0) -> None:
        """Until the broker has taken ``count`` subscriptions to ``topic``: a message published
        to it from then on reaches the client that subscribed (a connection alone does not say so)."""
        deadline = time.monotonic() + timeout
        while self.subscriptions(topic) < count:
            assert time.monotonic() < deadline, f"{self.subscriptions(topic)} of {count} subscriptions to {topic}"
            time.sleep(0.05)

    def log(self) -> str:
        out = []
        for name in ("mosquitto.log", "stderr.log"):
            p = self.dir / name
            if p.exists():
                out.append(p.read_text(errors="replace")[-2000:])
        return "\n".join(out)


class RabbitMQ:
    """One RabbitMQ node with its own epmd, ports, Mnesia and logs in a temp dir."""

    def __init__(self, directory: Path, *, user: str = "eslkit", password: str = "relay-secret",
                 tls: tuple[Path, Path, Path] | None = None):
        self._ready = False
        self.dir = Path(directory)
        self.host = "127.0.0.1"
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.user, self.password = user, password
        self.proc: subprocess.Popen | None = None
        self.epmd: subprocess.Popen | None = None
        for sub in ("home", "mnesia", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "home").chmod(0o700)
        (self.dir / "rabbitmq-env.conf").write_text("")
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = {self.host}:{self.port}\n"
            f"default_user = {user}\n"
            f"default_pass = {password}\n"
            "loopback_users = none\n"
        )
        self.tls_port = free_port() if tls else None
        if tls:  # an amqps:// listener beside the plain one
            ca, cert, key = tls
            with (self.dir / "rabbitmq.conf").open("a") as conf:
                conf.write(f"listeners.ssl.default = {self.host}:{self.tls_port}\n"
                           f"ssl_options.cacertfile = {ca}\nssl_options.certfile = {cert}\n"
                           f"ssl_options.keyfile = {key}\nssl_options.verify = verify_none\n"
                           "ssl_options.fail_if_no_peer_cert = false\n")
        self.env = dict(
            os.environ,
            HOME=str(self.dir / "home"),
            RABBITMQ_CONF_ENV_FILE=str(self.dir / "rabbitmq-env.conf"),
            RABBITMQ_NODENAME=f"eslkit-test-{self.port}@localhost",
            RABBITMQ_NODE_IP_ADDRESS=self.host,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.dir / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.dir / "log"),
            RABBITMQ_CONFIG_FILE=str(self.dir / "rabbitmq"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.dir / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(self.dir / "rabbitmq.pid"),
            RABBITMQ_LOGS="-",
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS="127.0.0.1",
        )

    def url(self, vhost: str = "") -> str:
        return f"amqp://{self.user}@{self.host}:{self.port}/{vhost}"

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """rabbitmqctl against this node (users, permissions); raises on failure."""
        if not self._ready and args[0] != "await_startup":
            # The AMQP port opens before the rabbit app reports "running"; rabbitmqctl's
            # user commands refuse until then (seen under load in a full run).
            self.ctl("await_startup", "--timeout", str(int(timeout)), timeout=timeout + 5)
            self._ready = True
        done = subprocess.run([RABBITMQCTL, "--node", self.env["RABBITMQ_NODENAME"], *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {args[0]} failed: {done.stderr[-500:]}")
        return done.stdout

    def start(self, timeout: float = 60.0) -> "RabbitMQ":
        self._ready = False
        if self.epmd is None or self.epmd.poll() is not None:
            self.epmd = subprocess.Popen(
                [EPMD, "-port", str(self.epmd_port)],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            wait_for_port("127.0.0.1", self.epmd_port, 10, self.epmd)
        self.proc = subprocess.Popen(
            [RABBITMQ_SERVER],
            env=self.env,
            stdout=open(self.dir / "server.log", "ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # The AMQP port opens only once the node has booted.
        if not wait_for_port("127.0.0.1", self.port, timeout, self.proc):
            self.stop()
            raise RuntimeError(f"rabbitmq did not start on port {self.port}: {self.log()}")
        if self.tls_port and not wait_for_port("127.0.0.1", self.tls_port, timeout, self.proc):
            self.stop()
            raise RuntimeError(f"rabbitmq did not listen for TLS on port {self.tls_port}: {self.log()}")
        return self

    def stop(self) -> None:
        _stop(self.proc, timeout=20)
        self.proc = None

    def close(self) -> None:
        self.stop()
        _stop(self.epmd)
        self.epmd = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def queue(self, *keys: str, durable: bool = False, name: str = "", arguments: dict | None = None):
        """A consumer's own queue bound to the relay's exchange (``freeswitch``, topic) with
        ``keys``; returns (pika BlockingConnection, channel, queue name).  Not durable: an
        exclusive, auto-deleted queue with a name the broker chooses.  ``arguments``: the
        queue's x-arguments (``{"x-queue-version": 2}``)."""
        import pika

        params = pika.ConnectionParameters(self.host, self.port, "/", pika.PlainCredentials(self.user, self.password))
        conn = pika.BlockingConnection(params)
        ch = conn.channel()
        ch.exchange_declare("freeswitch", exchange_type="topic", durable=True)
        q = ch.queue_declare(name, durable=durable, exclusive=not durable, auto_delete=not durable,
                             arguments=arguments).method.queue
        for key in keys:
            ch.queue_bind(q, "freeswitch", routing_key=key)
        return conn, ch, q

    def log(self) -> str:
        p = self.dir / "server.log"
        return p.read_text(errors="replace")[-3000:] if p.exists() else ""


def started(make, directory: Path, attempts: int = 2):
    """`make(dir).start()`, once more on new ports if the first try fails (a free port
    can be taken by someone else between choosing it and the broker binding it)."""
    for attempt in range(attempts):
        broker = make(Path(directory) / f"try{attempt}")
        try:
            return broker.start()
        except RuntimeError:
            getattr(broker, "close", broker.stop)()
            if attempt == attempts - 1:
                raise


def _require(path: str, what: str) -> None:
    if not os.access(path, os.X_OK):
        pytest.skip(f"{what} is not installed ({path}); scripts/setup --test installs it")


@pytest.fixture(scope="session")
def mosquitto():
    """A Mosquitto shared by the session's relay tests (do not restart it)."""
    _require(MOSQUITTO, "mosquitto")
    with tempfile.TemporaryDirectory(prefix="eslkit-mosquitto-") as d:
        broker = started(Mosquitto, Path(d))
        try:
            yield broker
        finally:
            broker.stop()


@pytest.fixture
def fresh_mosquitto(tmp_path):
    """A Mosquitto of this test alone: restart or stop it at will."""
    _require(MOSQUITTO, "mosquitto")
    broker = started(Mosquitto, tmp_path / "mosquitto")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def rabbitmq():
    _require(RABBITMQ_SERVER, "rabbitmq-server")
    _require(EPMD, "epmd (erlang-base)")
    with tempfile.TemporaryDirectory(prefix="eslkit-rabbitmq-") as d:
        broker = started(RabbitMQ, Path(d))
        try:
            yield broker
        finally:
            broker.close()


AMQP_PASSWORD_ENV = "ESLKIT_TEST_AMQP_PW"


@pytest.fixture
def amqp_env(rabbitmq, monkeypatch):
    """The session's RabbitMQ, its password in AMQP_PASSWORD_ENV (for --password-env)."""
    monkeypatch.setenv(AMQP_PASSWORD_ENV, rabbitmq.password)
    return rabbitmq


class MqttCollector:
    """A plain paho subscriber that records (topic, payload, retain) in arrival order."""

    def __init__(self, broker: Mosquitto, topics: list[str] | str = "#", *, client_id: str = "",
                 clean_session: bool = True, qos: int = 1, username: str | None = None,
                 password: str | None = None):
        import threading

        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self._cv = threading.Condition()
        self._subscribed = threading.Event()
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self.qos = qos
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=clean_session, protocol=mqtt.MQTTv311)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.reconnect_delay_set(1, 1)
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("test subscriber could not subscribe")

    def _on_connect(self, client, userdata, flags, reason, properties):
        client.subscribe([(t, self.qos) for t in self.topics])

    def _on_message(self, client, userdata, msg):
        with self._cv:
            self.messages.append((msg.topic, msg.payload, bool(msg.retain)))
            self._cv.notify_all()

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cv:
            while not predicate(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
            return True

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
