"""Shared test fixtures.  Helpers for one area live in tests/support/<area>.py."""

from __future__ import annotations

from pathlib import Path

import pytest

# The simulated switch fixtures (`sim`: in a thread; `sim_process`: `eslkit sim` as a process).
from tests.support.sim import sim, sim_process  # noqa: F401
# Real brokers started by the tests (session-wide: one Mosquitto, one RabbitMQ for the whole run).
from tests.support.brokers import fresh_mosquitto, mosquitto, rabbitmq  # noqa: F401

CAPTURES = Path(__file__).parent / "data" / "fs-captures" / "1.10.12"


@pytest.fixture(scope="session")
def captures() -> Path:
    """The real FreeSWITCH 1.10.12 transcripts (copied from shared/fs-captures, bytes unchanged)."""
    return CAPTURES
