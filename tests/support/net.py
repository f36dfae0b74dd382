"""Ports for the servers a test starts (the simulated switch, brokers, fault servers)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from typing import Optional


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host: str, port: int, timeout: float = 10.0, proc: Optional[subprocess.Popen] = None,
                  greeting: bool = False) -> bool:
    """Until ``host:port`` accepts a connection (and, with ``greeting``, sends its first bytes);
    False at the timeout or when ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5) as s:
            if greeting:
                s.recv(64)  # closing now is like a client that never authenticates
            return True
        time.sleep(0.05)
    return False
